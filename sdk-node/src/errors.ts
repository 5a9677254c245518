/**
 * Errors: one class per kind of problem the API answers, each carrying the `Problem`.
 *
 * The classes mirror the Python SDK's (`otp_client.errors`): the HTTP status picks the
 * class, and a 409 whose problem `type` is `urn:otp:problem:verification-finished` is a
 * `VerificationFinishedError`.
 */

import type { Problem } from "./models.js";

export const PROBLEM_PREFIX = "urn:otp:problem:";
export const VERIFICATION_FINISHED = `${PROBLEM_PREFIX}verification-finished`;
export const IDEMPOTENCY_KEY_IN_FLIGHT = `${PROBLEM_PREFIX}idempotency-key-in-flight`;
export const IDEMPOTENCY_KEY_REUSED = `${PROBLEM_PREFIX}idempotency-key-reused`;

export interface OtpErrorOptions {
  problem?: Problem;
  idempotencyKey?: string;
  cause?: unknown;
}

/**
 * Base of every error the client throws.
 *
 * `problem` is the service's problem document (undefined when no answer arrived);
 * `idempotencyKey` is the key the request carried, if any: send the same operation again
 * with it later and it still happens at most once.
 */
export class OtpError extends Error {
  readonly problem: Problem | undefined;
  readonly idempotencyKey: string | undefined;

  constructor(message: string, options: OtpErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.problem = options.problem;
    this.idempotencyKey = options.idempotencyKey;
  }

  get statusCode(): number | undefined {
    return this.problem?.status;
  }
}

/** No answer: the connection failed or timed out (after the retries allowed). */
export class OtpConnectionError extends OtpError {}

/** The request timed out; it may or may not have reached the service. */
export class OtpTimeoutError extends OtpConnectionError {}

/** A success answer whose body is not what this operation returns. */
export class UnexpectedResponseError extends OtpError {}

/** The service answered with a problem (any status without a more specific class). */
export class ApiError extends OtpError {
  declare readonly problem: Problem;

  constructor(problem: Problem, options: { idempotencyKey?: string } = {}) {
    const text = problem.detail || problem.title || `HTTP ${problem.status}`;
    super(`${problem.status} ${problem.type}: ${text}`, {
      problem,
      idempotencyKey: options.idempotencyKey,
    });
  }

  override get statusCode(): number {
    return this.problem.status;
  }
}

/** 401: missing, unknown or revoked API key. */
export class AuthenticationError extends ApiError {}

/** 403: not allowed for this key (mode, channel, risk policy). */
export class PermissionDeniedError extends ApiError {}

/** 404: unknown for this key's application and mode. */
export class NotFoundError extends ApiError {}

/** 409: the resource is in a state that refuses the request. */
export class ConflictError extends ApiError {}

/** 409: the verification is finished; `statusOfVerification` says how. */
export class VerificationFinishedError extends ConflictError {
  get statusOfVerification(): string | undefined {
    return this.problem.status_of_verification ?? undefined;
  }
}

/** 422: the request is invalid; `problem.errors` points at each problem. */
export class InvalidRequestError extends ApiError {}

/** 429: too many requests or sends; retry after `retryAfter` seconds. */
export class RateLimitedError extends ApiError {
  readonly retryAfter: number | undefined;

  constructor(problem: Problem, options: { idempotencyKey?: string; retryAfter?: number } = {}) {
    super(problem, options);
    this.retryAfter = options.retryAfter;
  }
}

/** 5xx: the service failed; safe to retry only with an Idempotency-Key or on reads. */
export class ServerError extends ApiError {}

/** 503: the service cannot reach its engine now; retry after `retryAfter` seconds. */
export class ServiceUnavailableError extends ServerError {
  readonly retryAfter: number | undefined;

  constructor(problem: Problem, options: { idempotencyKey?: string; retryAfter?: number } = {}) {
    super(problem, options);
    this.retryAfter = options.retryAfter;
  }
}

/**
 * `Retry-After` in seconds (delta-seconds or an HTTP date), undefined if absent or invalid.
 */
export function retryAfterOf(headers: Headers, now: number = Date.now()): number | undefined {
  const raw = headers.get("retry-after")?.trim();
  if (!raw) return undefined;
  if (/^\d+$/.test(raw)) return Number(raw);
  const when = Date.parse(raw);
  if (Number.isNaN(when)) return undefined;
  return Math.max(0, (when - now) / 1000);
}

/** The answer's problem document, or one made from its status line. */
export function problemOf(status: number, statusText: string, text: string): Problem {
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  if (body !== null && typeof body === "object" && !Array.isArray(body)) {
    const doc = body as Record<string, unknown>;
    return {
      ...doc,
      type: typeof doc.type === "string" ? doc.type : "about:blank",
      title: typeof doc.title === "string" ? doc.title : "",
      status: typeof doc.status === "number" && doc.status !== 0 ? doc.status : status,
    } as Problem;
  }
  return { type: "about:blank", title: statusText, status };
}

type ApiErrorClass = new (problem: Problem, options: { idempotencyKey?: string }) => ApiError;

const BY_STATUS: Record<number, ApiErrorClass> = {
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  422: InvalidRequestError,
};

/** The error for a non-2xx answer. */
export function errorFromResponse(
  status: number,
  problem: Problem,
  headers: Headers,
  idempotencyKey: string | undefined,
): ApiError {
  let retryAfter = retryAfterOf(headers);
  if (retryAfter === undefined && typeof problem.retry_after === "number") {
    retryAfter = problem.retry_after;
  }
  if (status === 429) return new RateLimitedError(problem, { idempotencyKey, retryAfter });
  if (status === 503) return new ServiceUnavailableError(problem, { idempotencyKey, retryAfter });
  if (status >= 500) return new ServerError(problem, { idempotencyKey });
  if (status === 409 && problem.type === VERIFICATION_FINISHED) {
    return new VerificationFinishedError(problem, { idempotencyKey });
  }
  const Kind = BY_STATUS[status] ?? ApiError;
  return new Kind(problem, { idempotencyKey });
}
