// Type-checked, not run: the package as a CommonJS consumer sees it (the "require" types).
import { NotFoundError, OtpClient, type WebhookEndpointCreated } from "@otp-orchestrator/client";

export async function endpoint(otp: OtpClient, url: string): Promise<string> {
  const created: WebhookEndpointCreated = await otp.createWebhookEndpoint({ url });
  try {
    await otp.getWebhookEndpoint(created.id);
  } catch (error) {
    if (error instanceof NotFoundError) return error.problem.type;
    throw error;
  }
  const rotated = await otp.rotateWebhookEndpointSecret(created.id, { grace_period_s: 0 });
  return rotated.previous_secret_expires_at ?? rotated.secret;
}
