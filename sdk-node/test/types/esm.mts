// Type-checked, not run: the package as an ES module consumer sees it (the "import" types).
import {
  type CheckResult,
  OtpClient,
  RateLimitedError,
  type Verification,
  VerificationFinishedError,
  type WebhookEvent,
  webhooks,
} from "@otp-orchestrator/client";

export async function flow(apiKey: string, code: string): Promise<boolean> {
  const otp = new OtpClient({ apiKey, baseUrl: "http://127.0.0.1:8000", maxRetries: 2 });
  const started = await otp.startVerification(
    { to: "+14155552671", channels: ["sms", { channel: "email", to: "ada@example.com" }] },
    { idempotencyKey: "signup-42" },
  );
  try {
    const result: CheckResult = await otp.check(started.id, code);
    return result.valid;
  } catch (error) {
    if (error instanceof VerificationFinishedError)
      return error.statusOfVerification === "approved";
    if (error instanceof RateLimitedError) return (error.retryAfter ?? 0) < 0;
    throw error;
  }
}

export async function expired(otp: OtpClient): Promise<string[]> {
  const ids: string[] = [];
  for await (const summary of otp.iterSearch({ status: "expired", created_after: new Date() })) {
    ids.push(summary.id);
  }
  const state: Verification = await otp.get(ids[0] ?? "ver_x");
  return [...ids, state.status];
}

export function received(secret: string, headers: Record<string, string>, body: Buffer): string {
  const event: WebhookEvent = webhooks.verify(secret, headers, body, { toleranceS: 60 });
  return `${event.type} ${event.message_id ?? ""} ${event.data.client_ref ?? ""}`;
}

// @ts-expect-error: the API's field names, not camelCase ones.
export const wrong = (otp: OtpClient) => otp.startVerification({ to: "+1", clientRef: "x" });
