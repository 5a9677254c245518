/**
 * What the API takes and answers, as TypeScript types.
 *
 * Written by hand from the service's OpenAPI document (`GET /openapi.json`); each
 * interface names its component schema with an `@schema` tag, and a test compares the
 * two (field names, and which fields are optional). Field names are the API's own
 * (snake_case), so a body reads the same here, in the HTTP reference and on the wire.
 *
 * Timestamps are ISO 8601 strings (`new Date(value)` turns one into a `Date`).
 * Enumerated values are plain strings: a newer service may add values, and an older
 * client must still read them. The constants below name the values known today.
 */

export const Status = {
  PENDING: "pending",
  APPROVED: "approved",
  EXPIRED: "expired",
  MAX_ATTEMPTS_REACHED: "max_attempts_reached",
  CANCELED: "canceled",
  UNDELIVERABLE: "undeliverable",
  BLOCKED: "blocked",
} as const;

export const Channel = {
  SMS: "sms",
  WHATSAPP: "whatsapp",
  VOICE: "voice",
  EMAIL: "email",
} as const;

export const CodeType = { NUMERIC: "numeric", ALPHANUMERIC: "alphanumeric" } as const;

export const Mode = { TEST: "test", LIVE: "live" } as const;

export const WebhookEventType = {
  CREATED: "verification.created",
  DELIVERED: "verification.delivered",
  APPROVED: "verification.approved",
  EXPIRED: "verification.expired",
  FAILED: "verification.failed",
  CANCELED: "verification.canceled",
  BLOCKED: "verification.blocked",
  DESTINATION_LOCKED: "destination.locked",
  TEST: "webhook.test",
} as const;

// ------------------------------------------------------------------ requests

/**
 * One step of a channel plan, as sent on start (left-out fields take the API's defaults).
 * @schema ChannelStepCreate
 */
export interface ChannelStep {
  channel: string;
  to?: string | null;
  timeout_s?: number;
}

/**
 * The body of `POST /v1/verifications`; left-out options take the application's defaults.
 * `user_id` (your opaque id of the end user) and `user_ip` (their address as your backend
 * saw it) feed the service's rate limits.
 * @schema VerificationCreate
 */
export interface StartVerificationParams {
  to: string;
  channels?: Array<ChannelStep | string> | null;
  code_length?: number;
  code_type?: string;
  ttl_s?: number;
  max_attempts?: number;
  locale?: string | null;
  brand?: string | null;
  client_ref?: string | null;
  user_id?: string | null;
  user_ip?: string | null;
  app_hash?: string | null;
  /** The most the verification may cost, a decimal string in the service's currency ("0.05"). */
  max_cost?: string | null;
}

/** @schema CheckRequest */
export interface CheckParams {
  code: string;
}

/** @schema WebhookEndpointCreate */
export interface CreateWebhookEndpointParams {
  url: string;
  description?: string;
  event_types?: string[];
}

/** Fields left out keep their value. @schema WebhookEndpointUpdate */
export interface UpdateWebhookEndpointParams {
  url?: string | null;
  description?: string | null;
  event_types?: string[] | null;
  enabled?: boolean | null;
}

/** @schema WebhookSecretRotate */
export interface RotateWebhookSecretParams {
  grace_period_s?: number;
}

// ------------------------------------------------------------- verifications

/** A step of a verification's plan, destination masked. @schema ChannelStepPublic */
export interface ChannelStepInfo {
  channel: string;
  to: string;
  timeout_s: number;
}

/** The sender a routing rule picked. @schema SenderPublic */
export interface Sender {
  /** "alphanumeric", "long_code", "short_code", "messaging_service" or "whatsapp_sender" */
  type: string;
  value: string;
}

/** What one delivery costs, decimal strings in the service's currency. @schema CostPublic */
export interface Cost {
  /** The provider's price once known, else the estimate. */
  amount: string;
  currency: string;
  estimate: string;
  reported?: string | null;
  reported_currency?: string | null;
  /** "table", "default" (flagged: the country is not in the table), "override" or "free" */
  source: string;
  units: number;
  /** "segment", "message" or "minute" */
  unit: string;
}

/** One delivery of the code: a plan step's send or a resend. @schema DeliveryPublic */
export interface Delivery {
  step_index: number;
  /** "step" or "resend" */
  kind: string;
  channel: string;
  provider?: string | null;
  /** "sending", "sent", "delivered" or "failed" */
  status: string;
  error_type?: string | null;
  started_at: string;
  updated_at: string;
  /** The application's routing rule that chose the provider, if any. */
  rule_id?: string | null;
  /** The rule's sender (none: the provider's own). */
  sender?: Sender | null;
  /** The application's message template version sent (null: the built-in catalogue). */
  template_version?: number | null;
  /** What it costs (null: nothing was sent, or not costed). */
  cost?: Cost | null;
}

/** A verification as it was started. @schema VerificationCreated */
export interface VerificationCreated {
  id: string;
  status: string;
  mode: string;
  to: string;
  channels: ChannelStepInfo[];
  code_length: number;
  code_type: string;
  locale: string;
  max_attempts: number;
  attempts_remaining: number;
  created_at: string;
  expires_at: string;
  client_ref?: string | null;
}

/** A verification now (`GET /v1/verifications/{id}`). @schema VerificationPublic */
export interface Verification {
  id: string;
  status: string;
  reason?: string | null;
  mode: string;
  to: string;
  channels: ChannelStepInfo[];
  current_step: number;
  deliveries: Delivery[];
  attempts_used: number;
  attempts_remaining: number;
  max_attempts: number;
  sends: number;
  max_sends: number;
  next_resend_at?: string | null;
  created_at: string;
  expires_at: string;
  finished_at?: string | null;
  client_ref?: string | null;
  locale: string;
  /** The total cost so far (a decimal string); null when nothing was costed. */
  cost?: string | null;
  currency?: string | null;
}

/** The answer to a check: `valid` with status `approved`, or a wrong code. @schema CheckResponse */
export interface CheckResult {
  id: string;
  status: string;
  valid: boolean;
  attempts_remaining: number;
}

/** @schema ResendResponse */
export interface ResendResult {
  id: string;
  delivery: Delivery;
  sends_remaining: number;
  next_resend_at: string;
}

/** @schema NextChannelResponse */
export interface NextChannelResult {
  id: string;
  step_index: number;
  delivery: Delivery;
}

/** @schema CancelResponse */
export interface CancelResult {
  id: string;
  status: string;
}

// ------------------------------------------------- search, events, analytics

/**
 * Query of `GET /v1/verifications` (`limit` up to the API's maximum page size).
 * @query GET /v1/verifications
 */
export interface SearchParams {
  status?: string;
  channel?: string;
  country?: string;
  to?: string;
  client_ref?: string;
  created_after?: Date | string;
  created_before?: Date | string;
  limit?: number;
  cursor?: string;
}

/** A verification as the store records it (kept after Temporal forgets it). @schema VerificationSummary */
export interface VerificationSummary {
  id: string;
  status: string;
  reason?: string | null;
  mode: string;
  channel?: string | null;
  channels: string[];
  country?: string | null;
  to: string;
  client_ref?: string | null;
  created_at: string;
  expires_at: string;
  finished_at?: string | null;
  attempts_used: number;
  sends: number;
  delivered: boolean;
  fallbacks: number;
  time_to_verify_ms?: number | null;
}

/** @schema VerificationPage */
export interface VerificationPage {
  data: VerificationSummary[];
  next_cursor?: string | null;
}

/** One entry of a verification's event log. @schema EventPublic */
export interface Event {
  type: string;
  occurred_at: string;
  channel?: string | null;
  provider?: string | null;
  provider_message_id?: string | null;
  country?: string | null;
  to?: string | null;
  step_index?: number | null;
  reason?: string | null;
  /** Sends: the application's message template version (null: the built-in catalogue). */
  template_version?: number | null;
}

/** @schema VerificationEvents */
export interface VerificationEvents {
  id: string;
  data: Event[];
}

/**
 * Query of `GET /v1/analytics` (default range: the last 7 days).
 * @query GET /v1/analytics
 */
export interface AnalyticsParams {
  created_after?: Date | string;
  created_before?: Date | string;
  /** "day", "channel", "country", or several of them. */
  group_by?: string | string[];
}

/** @schema AnalyticsFigures */
export interface AnalyticsFigures {
  day?: string | null;
  channel?: string | null;
  country?: string | null;
  started: number;
  delivered: number;
  approved: number;
  expired: number;
  failed: number;
  canceled: number;
  blocked: number;
  pending: number;
  conversion_rate: number | null;
  delivery_rate: number | null;
  fallback_rate: number | null;
  wrong_code_rate: number | null;
  time_to_verify_p50_ms?: number | null;
  time_to_verify_p95_ms?: number | null;
}

/** @schema AnalyticsReport */
export interface AnalyticsReport {
  created_after: string;
  created_before: string;
  group_by: string[];
  totals: AnalyticsFigures;
  groups: AnalyticsFigures[];
}

// ----------------------------------------------------------------- sandbox

/** @query GET /v1/sandbox/messages */
export interface SandboxMessagesParams {
  to?: string;
  verification_id?: string;
  limit?: number;
  /** Seconds (up to 20) the server may hold the answer until a first message lands. */
  wait?: number;
}

/** What the sandbox provider "delivered" (test keys only): the code is in `body`. @schema SandboxMessagePublic */
export interface SandboxMessage {
  message_id: string;
  verification_id: string;
  channel: string;
  to: string;
  subject: string;
  body: string;
  created_at: string;
}

/** @schema SandboxMessageList */
export interface SandboxMessageList {
  messages: SandboxMessage[];
}

// -------------------------------------------------------- webhook endpoints

/** @schema WebhookEndpointPublic */
export interface WebhookEndpoint {
  id: string;
  url: string;
  description: string;
  event_types: string[];
  enabled: boolean;
  disabled_reason?: string | null;
  mode: string;
  created_at: string;
  updated_at: string;
}

/** An endpoint as registered, with its `whsec_...` signing secret. @schema WebhookEndpointCreated */
export interface WebhookEndpointCreated extends WebhookEndpoint {
  secret: string;
}

/** @schema WebhookEndpointList */
export interface WebhookEndpointList {
  endpoints: WebhookEndpoint[];
}

/** @schema WebhookEndpointSecret */
export interface WebhookEndpointSecret {
  secret: string;
}

/** @schema WebhookSecretRotated */
export interface WebhookSecretRotated {
  secret: string;
  /** Until when the old secret also signs (null: it stopped at once). */
  previous_secret_expires_at: string | null;
}

/** @schema WebhookTestSent */
export interface WebhookTestSent {
  message_id: string;
  event_type?: string;
}

/** @query GET /v1/webhook-endpoints/{endpoint_id}/messages */
export interface WebhookMessagesParams {
  verification_id?: string;
  limit?: number;
}

/** One delivery of an event to an endpoint. @schema WebhookMessagePublic */
export interface WebhookMessage {
  message_id: string;
  event_type: string;
  verification_id?: string | null;
  status: string;
  attempts: number;
  last_status_code?: number | null;
  next_attempt_at?: string | null;
  created_at: string;
  updated_at: string;
}

/** @schema WebhookMessageList */
export interface WebhookMessageList {
  messages: WebhookMessage[];
}

/** @schema WebhookAttemptPublic */
export interface WebhookAttempt {
  attempt: number;
  attempted_at: string;
  status_code?: number | null;
  error?: string | null;
  duration_ms: number;
}

/** @schema WebhookAttemptList */
export interface WebhookAttemptList {
  attempts: WebhookAttempt[];
}

// ------------------------------------------------------------------ problems

/**
 * RFC 9457 problem details (`application/problem+json`); extension members are kept.
 * @schema Problem
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string | null;
  instance?: string | null;
  request_id?: string | null;
  errors?: Array<Record<string, unknown>> | null;
  status_of_verification?: string | null;
  retry_after?: number | null;
  [extension: string]: unknown;
}
