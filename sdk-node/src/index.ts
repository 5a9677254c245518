/** Client of the OTP verification API: `OtpClient`, typed models and errors, webhooks. */

export {
  DEFAULT_BASE_URL,
  DEFAULT_TIMEOUT_MS,
  OtpClient,
  USER_AGENT,
  type OtpClientOptions,
  type RequestOptions,
} from "./client.js";
export * from "./errors.js";
export * from "./models.js";
export { VERSION } from "./version.js";
export * as webhooks from "./webhooks.js";
export { WebhookVerificationError } from "./webhooks.js";
export type { WebhookEvent, WebhookEventData, WebhookEventDetail } from "./webhooks.js";
