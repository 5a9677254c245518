/**
 * `OtpClient`: the OTP verification API over the platform's `fetch`.
 *
 * A call is retried only when sending it twice cannot do the work twice (the same rules
 * as the Python SDK):
 *
 * - safe calls: reads (GET), a PATCH of an endpoint (it sets values), and the two POSTs
 *   that carry an `Idempotency-Key` (start, check; the service answers a repeat with the
 *   first outcome, and the key is the same on every attempt). They are retried on
 *   connection errors and timeouts, on 502/503/504, on 429 and on 409
 *   `idempotency-key-in-flight`, honouring `Retry-After`.
 * - unsafe calls: resend, next-channel, cancel, endpoint create/delete, secret rotation
 *   and test sends. They are retried only when the request certainly never left this
 *   process (the connection could not be opened); any later failure is thrown as it is.
 *
 * A replayed answer (`Idempotent-Replayed: true`) is final. Backoff is exponential with
 * full jitter; a `Retry-After` longer than `maxRetryAfterMs` is thrown, not slept through.
 */

import {
  IDEMPOTENCY_KEY_IN_FLIGHT,
  OtpConnectionError,
  OtpError,
  OtpTimeoutError,
  UnexpectedResponseError,
  errorFromResponse,
  problemOf,
  retryAfterOf,
} from "./errors.js";
import type {
  AnalyticsParams,
  AnalyticsReport,
  CancelResult,
  ChannelStep,
  CheckResult,
  CreateWebhookEndpointParams,
  NextChannelResult,
  ResendResult,
  RotateWebhookSecretParams,
  SandboxMessage,
  SandboxMessageList,
  SandboxMessagesParams,
  SearchParams,
  StartVerificationParams,
  UpdateWebhookEndpointParams,
  Verification,
  VerificationCreated,
  VerificationEvents,
  VerificationPage,
  VerificationSummary,
  WebhookAttempt,
  WebhookAttemptList,
  WebhookEndpoint,
  WebhookEndpointCreated,
  WebhookEndpointList,
  WebhookEndpointSecret,
  WebhookMessage,
  WebhookMessageList,
  WebhookMessagesParams,
  WebhookSecretRotated,
  WebhookTestSent,
} from "./models.js";
import { randomUUID } from "node:crypto";

import { VERSION } from "./version.js";

export const DEFAULT_BASE_URL = "http://127.0.0.1:8000";
export const DEFAULT_TIMEOUT_MS = 15_000;
export const USER_AGENT = `otp-verify-client-node/${VERSION}`;

const RETRY_STATUSES = new Set([429, 502, 503, 504]);
// Error codes of a connection that could not be opened: nothing was sent.
const NOT_SENT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_CONNECT_TIMEOUT",
]);

type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface OtpClientOptions {
  /** A `..._test_...` or `..._live_...` API key. */
  apiKey: string;
  baseUrl?: string;
  /** Per attempt, from sending the request to reading the whole answer. */
  timeoutMs?: number;
  maxRetries?: number;
  /** First backoff window; each retry doubles it, up to `maxBackoffMs`; full jitter. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A longer `Retry-After` is thrown (as `RateLimitedError`...), not slept through. */
  maxRetryAfterMs?: number;
  /** Replaces the platform's `fetch` (proxies, instrumentation, tests). */
  fetch?: FetchLike;
  /** Replaces the wait between attempts (tests). */
  sleep?: (ms: number) => Promise<void>;
}

export interface RequestOptions {
  /** Sent on every attempt of a start or check; a new UUID when left out. */
  idempotencyKey?: string;
}

enum Safety {
  SAFE,
  UNSAFE,
}

interface Call<T> {
  method: string;
  path: string;
  safety: Safety;
  query?: Record<string, string>;
  body?: unknown;
  idempotencyKey?: string;
  /** Seconds the server may hold the answer on purpose (a long poll): added to the timeout. */
  heldS?: number;
  parse: (body: unknown) => T;
}

function pathId(value: string): string {
  if (!value || value.includes("/") || value === "." || value === "..") {
    throw new TypeError(`not an id: ${JSON.stringify(value)}`);
  }
  return encodeURIComponent(value);
}

function query(values: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined || value === null) continue;
    if (value instanceof Date) out[name] = value.toISOString();
    else if (Array.isArray(value)) out[name] = value.join(",");
    else out[name] = String(value);
  }
  return out;
}

function steps(channels: Array<ChannelStep | string>): ChannelStep[] {
  return channels.map((step) => (typeof step === "string" ? { channel: step } : step));
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function asObject<T>(body: unknown): T {
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new TypeError("the body is not a JSON object");
  }
  return body as T;
}

function field<T>(name: string): (body: unknown) => T {
  return (body) => {
    const value = asObject<Record<string, unknown>>(body)[name];
    if (value === undefined) throw new TypeError(`the body has no "${name}"`);
    return value as T;
  };
}

function notSent(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string" && NOT_SENT_CODES.has(code)) return true;
    current = current.cause;
  }
  return false;
}

function inFlight(text: string): boolean {
  try {
    const body: unknown = JSON.parse(text);
    return asObject<{ type?: unknown }>(body).type === IDEMPOTENCY_KEY_IN_FLIGHT;
  } catch {
    return false;
  }
}

class AttemptTimeout extends Error {}

interface Answer {
  status: number;
  statusText: string;
  headers: Headers;
  text: string;
}

/** Blocking-free client of the OTP verification API; one instance per API key. */
export class OtpClient {
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly maxRetries: number;
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  readonly maxRetryAfterMs: number;
  readonly #headers: Record<string, string>;
  readonly #fetch: FetchLike;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(options: OtpClientOptions) {
    if (!options.apiKey) throw new TypeError("apiKey is required");
    const maxRetries = options.maxRetries ?? 3;
    if (!Number.isInteger(maxRetries) || maxRetries < 0) {
      throw new RangeError("maxRetries must be an integer >= 0");
    }
    this.baseUrl = (options.baseUrl ?? DEFAULT_BASE_URL).replace(/\/+$/, "");
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxRetries = maxRetries;
    this.backoffMs = options.backoffMs ?? 500;
    this.maxBackoffMs = options.maxBackoffMs ?? 8_000;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 30_000;
    this.#headers = {
      Authorization: `Bearer ${options.apiKey}`,
      Accept: "application/json, application/problem+json",
      "User-Agent": USER_AGENT,
    };
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  // ------------------------------------------------------------ verifications

  /**
   * Start a verification. Sent with `idempotencyKey` (a new UUID if left out) on every
   * attempt: a retry after a lost answer returns the same verification, never a second one.
   */
  startVerification(
    params: StartVerificationParams,
    options: RequestOptions = {},
  ): Promise<VerificationCreated> {
    const body = withoutUndefined({
      ...params,
      channels: params.channels ? steps(params.channels) : params.channels,
    });
    return this.#run({
      method: "POST",
      path: "/v1/verifications",
      safety: Safety.SAFE,
      body,
      idempotencyKey: options.idempotencyKey ?? randomUUID(),
      parse: asObject<VerificationCreated>,
    });
  }

  /** Check a code; a retried check counts as one attempt (same Idempotency-Key). */
  check(verificationId: string, code: string, options: RequestOptions = {}): Promise<CheckResult> {
    return this.#run({
      method: "POST",
      path: `/v1/verifications/${pathId(verificationId)}/check`,
      safety: Safety.SAFE,
      body: { code },
      idempotencyKey: options.idempotencyKey ?? randomUUID(),
      parse: asObject<CheckResult>,
    });
  }

  /** The verification now: status, deliveries, attempts. */
  get(verificationId: string): Promise<Verification> {
    return this.#get(`/v1/verifications/${pathId(verificationId)}`, asObject<Verification>);
  }

  /** Deliver the same code again. Not retried once the request may have been sent. */
  resend(verificationId: string): Promise<ResendResult> {
    return this.#unsafe(
      `/v1/verifications/${pathId(verificationId)}/resend`,
      asObject<ResendResult>,
    );
  }

  /** Fall back to the next channel now. Not retried once the request may have been sent. */
  nextChannel(verificationId: string): Promise<NextChannelResult> {
    return this.#unsafe(
      `/v1/verifications/${pathId(verificationId)}/next-channel`,
      asObject<NextChannelResult>,
    );
  }

  /** End the verification. Not retried once the request may have been sent. */
  cancel(verificationId: string): Promise<CancelResult> {
    return this.#unsafe(
      `/v1/verifications/${pathId(verificationId)}/cancel`,
      asObject<CancelResult>,
    );
  }

  // ---------------------------------------------------- search and analytics

  /** One page of verifications, newest first; pass `next_cursor` on as `cursor`. */
  search(params: SearchParams = {}): Promise<VerificationPage> {
    return this.#get("/v1/verifications", asObject<VerificationPage>, query({ ...params }));
  }

  /** Every page of a search, newest first, fetched as the loop asks for it. */
  async *searchPages(
    params: Omit<SearchParams, "cursor"> = {},
  ): AsyncGenerator<VerificationPage, void, undefined> {
    let cursor: string | undefined;
    for (;;) {
      const page = await this.search({ ...params, cursor });
      yield page;
      if (!page.next_cursor) return;
      cursor = page.next_cursor;
    }
  }

  /** Every matching verification, newest first, fetching pages (of `limit`) as needed. */
  async *iterSearch(
    params: Omit<SearchParams, "cursor"> = {},
  ): AsyncGenerator<VerificationSummary, void, undefined> {
    for await (const page of this.searchPages(params)) yield* page.data;
  }

  /** The verification's event log, oldest first. */
  events(verificationId: string): Promise<VerificationEvents> {
    return this.#get(
      `/v1/verifications/${pathId(verificationId)}/events`,
      asObject<VerificationEvents>,
    );
  }

  /** Figures over verifications created in a range (default: the last 7 days). */
  analytics(params: AnalyticsParams = {}): Promise<AnalyticsReport> {
    return this.#get("/v1/analytics", asObject<AnalyticsReport>, query({ ...params }));
  }

  /**
   * Test keys only: what the sandbox provider "delivered", newest first. With `wait`
   * (seconds, up to 20) the server holds the answer until a first message lands.
   */
  sandboxMessages(params: SandboxMessagesParams = {}): Promise<SandboxMessage[]> {
    return this.#run({
      method: "GET",
      path: "/v1/sandbox/messages",
      safety: Safety.SAFE,
      query: query({ ...params }),
      heldS: params.wait ?? 0,
      parse: (body) => asObject<SandboxMessageList>(body).messages,
    });
  }

  // -------------------------------------------------------- webhook endpoints

  /** Register an endpoint; the answer carries its `whsec_...` signing secret. */
  createWebhookEndpoint(params: CreateWebhookEndpointParams): Promise<WebhookEndpointCreated> {
    return this.#unsafe(
      "/v1/webhook-endpoints",
      asObject<WebhookEndpointCreated>,
      withoutUndefined(params),
    );
  }

  listWebhookEndpoints(): Promise<WebhookEndpoint[]> {
    return this.#get("/v1/webhook-endpoints", (body) =>
      field<WebhookEndpointList["endpoints"]>("endpoints")(body),
    );
  }

  getWebhookEndpoint(endpointId: string): Promise<WebhookEndpoint> {
    return this.#get(`/v1/webhook-endpoints/${pathId(endpointId)}`, asObject<WebhookEndpoint>);
  }

  /** The endpoint's current `whsec_...` signing secret. */
  getWebhookEndpointSecret(endpointId: string): Promise<string> {
    return this.#get(
      `/v1/webhook-endpoints/${pathId(endpointId)}/secret`,
      field<WebhookEndpointSecret["secret"]>("secret"),
    );
  }

  /**
   * Issue a new signing secret; the old one also signs for `grace_period_s` (default one
   * day). Not retried once sent: a repeat would issue yet another secret.
   */
  rotateWebhookEndpointSecret(
    endpointId: string,
    params: RotateWebhookSecretParams = {},
  ): Promise<WebhookSecretRotated> {
    return this.#unsafe(
      `/v1/webhook-endpoints/${pathId(endpointId)}/secret/rotate`,
      asObject<WebhookSecretRotated>,
      withoutUndefined(params),
    );
  }

  /** Change fields of an endpoint (a PATCH sets values: safe to send again). */
  updateWebhookEndpoint(
    endpointId: string,
    params: UpdateWebhookEndpointParams,
  ): Promise<WebhookEndpoint> {
    return this.#run({
      method: "PATCH",
      path: `/v1/webhook-endpoints/${pathId(endpointId)}`,
      safety: Safety.SAFE,
      body: withoutUndefined(params),
      parse: asObject<WebhookEndpoint>,
    });
  }

  /** Delete an endpoint. Not retried once sent: a repeat after a lost answer would 404. */
  async deleteWebhookEndpoint(endpointId: string): Promise<void> {
    await this.#run({
      method: "DELETE",
      path: `/v1/webhook-endpoints/${pathId(endpointId)}`,
      safety: Safety.UNSAFE,
      parse: () => undefined,
    });
  }

  /** Send a `webhook.test` event to the endpoint (the same durable path as real events). */
  sendWebhookTest(endpointId: string): Promise<WebhookTestSent> {
    return this.#unsafe(
      `/v1/webhook-endpoints/${pathId(endpointId)}/test`,
      asObject<WebhookTestSent>,
    );
  }

  /** Deliveries to the endpoint, newest first. */
  listWebhookMessages(
    endpointId: string,
    params: WebhookMessagesParams = {},
  ): Promise<WebhookMessage[]> {
    return this.#get(
      `/v1/webhook-endpoints/${pathId(endpointId)}/messages`,
      field<WebhookMessageList["messages"]>("messages"),
      query({ ...params }),
    );
  }

  /** The HTTP attempts of one delivery. */
  listWebhookAttempts(endpointId: string, messageId: string): Promise<WebhookAttempt[]> {
    return this.#get(
      `/v1/webhook-endpoints/${pathId(endpointId)}/messages/${pathId(messageId)}/attempts`,
      field<WebhookAttemptList["attempts"]>("attempts"),
    );
  }

  // ---------------------------------------------------------------- plumbing

  #get<T>(path: string, parse: (body: unknown) => T, q?: Record<string, string>): Promise<T> {
    return this.#run({ method: "GET", path, safety: Safety.SAFE, query: q, parse });
  }

  #unsafe<T>(path: string, parse: (body: unknown) => T, body?: unknown): Promise<T> {
    return this.#run({ method: "POST", path, safety: Safety.UNSAFE, body, parse });
  }

  /** The wait before retry number `retry` (0-based): full jitter over a doubling window. */
  backoffDelayMs(retry: number): number {
    const window = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** retry);
    return Math.random() * window;
  }

  async #run<T>(call: Call<T>): Promise<T> {
    const url = new URL(this.baseUrl + call.path);
    for (const [name, value] of Object.entries(call.query ?? {})) {
      url.searchParams.set(name, value);
    }
    const headers: Record<string, string> = { ...this.#headers };
    if (call.idempotencyKey !== undefined) headers["Idempotency-Key"] = call.idempotencyKey;
    if (call.body !== undefined) headers["Content-Type"] = "application/json";
    const init: RequestInit = {
      method: call.method,
      headers,
      body: call.body === undefined ? undefined : JSON.stringify(call.body),
    };
    const timeoutMs = this.timeoutMs + (call.heldS ?? 0) * 1000;

    for (let attempt = 0; ; attempt += 1) {
      const last = attempt >= this.maxRetries;
      let answer: Answer;
      try {
        answer = await this.#attempt(url.toString(), init, timeoutMs);
      } catch (error) {
        const retryable = notSent(error) || call.safety === Safety.SAFE;
        if (!last && retryable) {
          await this.#sleep(this.backoffDelayMs(attempt));
          continue;
        }
        throw this.#transportError(call, error);
      }
      if (!last && call.safety === Safety.SAFE) {
        const waitMs = this.#retryWaitMs(answer, attempt);
        if (waitMs !== undefined) {
          await this.#sleep(waitMs);
          continue;
        }
      }
      return this.#finish(call, answer);
    }
  }

  /** One exchange: the whole answer read within the timeout. */
  async #attempt(url: string, init: RequestInit, timeoutMs: number): Promise<Answer> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new AttemptTimeout()), timeoutMs);
    try {
      const response = await this.#fetch(url, { ...init, signal: controller.signal });
      const text = await response.text();
      return {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
        text,
      };
    } catch (error) {
      if (controller.signal.aborted) throw new AttemptTimeout("timed out", { cause: error });
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** How long to wait before sending a safe call again, or undefined if it is final. */
  #retryWaitMs(answer: Answer, attempt: number): number | undefined {
    if (answer.headers.get("idempotent-replayed")?.toLowerCase() === "true") return undefined;
    const { status } = answer;
    if (!RETRY_STATUSES.has(status) && !(status === 409 && inFlight(answer.text))) {
      return undefined;
    }
    const retryAfter = retryAfterOf(answer.headers);
    if (retryAfter === undefined) return this.backoffDelayMs(attempt);
    const ms = retryAfter * 1000;
    return ms <= this.maxRetryAfterMs ? ms : undefined;
  }

  #finish<T>(call: Call<T>, answer: Answer): T {
    const { status } = answer;
    if (status >= 200 && status < 300) {
      try {
        const body: unknown = answer.text ? JSON.parse(answer.text) : undefined;
        return call.parse(body);
      } catch (error) {
        throw new UnexpectedResponseError(
          `${call.method} ${call.path}: unexpected ${status} body: ${String(error)}`,
          { idempotencyKey: call.idempotencyKey, cause: error },
        );
      }
    }
    const problem = problemOf(status, answer.statusText, answer.text);
    throw errorFromResponse(status, problem, answer.headers, call.idempotencyKey);
  }

  #transportError(call: Call<unknown>, error: unknown): OtpError {
    const where = `${call.method} ${call.path}`;
    const options = { idempotencyKey: call.idempotencyKey, cause: error };
    if (error instanceof AttemptTimeout) {
      return new OtpTimeoutError(`${where}: timed out`, options);
    }
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
    const text = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    return new OtpConnectionError(`${where}: ${text}`, options);
  }
}
