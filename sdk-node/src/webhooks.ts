/**
 * Receive the service's webhooks: Standard Webhooks signature check and typed events.
 *
 *     import { webhooks } from "@otp-orchestrator/client";
 *     const event = webhooks.verify(secret, req.headers, rawBody); // throws if not authentic
 *     if (event.type === "verification.approved") { ... }
 *
 * `webhook-signature` holds space-separated `v1,<base64 HMAC-SHA256>` signatures of
 * `"{webhook-id}.{webhook-timestamp}.{body}"`, keyed with the base64-decoded part of the
 * endpoint's `whsec_...` secret. Deduplicate on `event.message_id`: it is the same on
 * every retry of a delivery.
 */

import { createHmac, timingSafeEqual } from "node:crypto";

export const SECRET_PREFIX = "whsec_";
export const DEFAULT_TOLERANCE_S = 300;

/** The request is not an authentic, fresh webhook of this endpoint. */
export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WebhookVerificationError";
  }
}

/** The state change behind a verification event. */
export interface WebhookEventDetail {
  type: string;
  occurred_at?: string | null;
  channel?: string | null;
  provider?: string | null;
  reason?: string | null;
}

/**
 * The event's `data`: the verification as webhooks show it (no code, masked `to`).
 * Fields of other event types (`endpoint_id`, `message` of `webhook.test`) are kept.
 */
export interface WebhookEventData {
  /** The verification id (absent for `webhook.test`). */
  id?: string | null;
  application_id: string;
  mode: string;
  status?: string | null;
  reason?: string | null;
  channel?: string | null;
  channels?: string[];
  country?: string | null;
  to?: string | null;
  client_ref?: string | null;
  created_at?: string | null;
  expires_at?: string | null;
  finished_at?: string | null;
  attempts_used?: number | null;
  sends?: number | null;
  event?: WebhookEventDetail | null;
  [extra: string]: unknown;
}

/** `{"type", "timestamp", "data"}` plus the delivery's `webhook-id` as `message_id`. */
export interface WebhookEvent {
  type: string;
  timestamp: string;
  data: WebhookEventData;
  message_id?: string;
}

/** Node's `req.headers`, a fetch `Headers`, or any name -> value map (any case). */
export type HeadersLike =
  Headers | Record<string, string | string[] | undefined> | Iterable<[string, string]>;

export interface VerifyOptions {
  /** Seconds the timestamp may differ from now (default 300). */
  toleranceS?: number;
  /** Unix seconds to check against instead of the clock (tests). */
  now?: number;
}

function key(secret: string): Buffer {
  const raw = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (!raw || !/^[A-Za-z0-9+/]+={0,2}$/.test(raw) || raw.length % 4 !== 0) {
    throw new WebhookVerificationError("the secret is not whsec_<base64>");
  }
  return Buffer.from(raw, "base64");
}

function asBuffer(body: string | Uint8Array): Buffer {
  return typeof body === "string" ? Buffer.from(body, "utf8") : Buffer.from(body);
}

/** `v1,<signature>` of a message, as a sender computes it (for tests and tools). */
export function sign(
  secret: string,
  msgId: string,
  timestamp: number,
  body: string | Uint8Array,
): string {
  const digest = createHmac("sha256", key(secret))
    .update(`${msgId}.${Math.trunc(timestamp)}.`)
    .update(asBuffer(body))
    .digest("base64");
  return `v1,${digest}`;
}

function header(headers: HeadersLike, name: string): string {
  const entries: Iterable<[string, string | string[] | undefined]> =
    typeof (headers as Iterable<unknown>)[Symbol.iterator] === "function"
      ? (headers as Iterable<[string, string]>)
      : Object.entries(headers as Record<string, string | string[] | undefined>);
  for (const [k, v] of entries) {
    const value = Array.isArray(v) ? v[0] : v;
    if (k.toLowerCase() === name && value !== undefined) return value;
  }
  throw new WebhookVerificationError(`missing ${name} header`);
}

/** Throw `WebhookVerificationError` unless the request is authentic; its webhook-id. */
export function checkSignature(
  secret: string,
  headers: HeadersLike,
  body: string | Uint8Array,
  options: VerifyOptions = {},
): string {
  const msgId = header(headers, "webhook-id");
  const rawTs = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!/^\d+$/.test(rawTs.trim())) {
    throw new WebhookVerificationError("webhook-timestamp is not unix seconds");
  }
  const timestamp = Number(rawTs.trim());
  const now = options.now ?? Date.now() / 1000;
  if (Math.abs(now - timestamp) > (options.toleranceS ?? DEFAULT_TOLERANCE_S)) {
    throw new WebhookVerificationError("webhook-timestamp is outside the tolerance");
  }
  const expected = Buffer.from(sign(secret, msgId, timestamp, body).slice(3));
  for (const item of signatures.trim().split(/\s+/)) {
    const comma = item.indexOf(",");
    if (comma < 0 || item.slice(0, comma) !== "v1") continue;
    const candidate = Buffer.from(item.slice(comma + 1));
    if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) {
      return msgId;
    }
  }
  throw new WebhookVerificationError("no matching signature");
}

/** The typed event of a body (no signature check: use `verify` on received requests). */
export function parseEvent(body: string | Uint8Array, messageId?: string): WebhookEvent {
  let event: unknown;
  try {
    event = JSON.parse(asBuffer(body).toString("utf8"));
  } catch (error) {
    throw new WebhookVerificationError(`the body is not a webhook event: ${String(error)}`);
  }
  const e = event as Partial<WebhookEvent> | null;
  if (
    e === null ||
    typeof e !== "object" ||
    typeof e.type !== "string" ||
    typeof e.timestamp !== "string" ||
    e.data === null ||
    typeof e.data !== "object"
  ) {
    throw new WebhookVerificationError("the body is not a webhook event");
  }
  return messageId === undefined
    ? (e as WebhookEvent)
    : { ...(e as WebhookEvent), message_id: messageId };
}

/**
 * Check the signature and freshness of a received webhook, then parse it.
 *
 * `headers`: the request's headers (any case); `body`: the raw body as received (not
 * re-serialised JSON).
 */
export function verify(
  secret: string,
  headers: HeadersLike,
  body: string | Uint8Array,
  options: VerifyOptions = {},
): WebhookEvent {
  const msgId = checkSignature(secret, headers, body, options);
  return parseEvent(body, msgId);
}
