// The two calls this backend makes to the OTP verification service, with fetch.
//
// The service's Node SDK can replace this file: it adds typed answers and retries that
// keep the same Idempotency-Key. Here every start and check already carries a fresh
// Idempotency-Key, so a caller that retries one may pass the same key again.

import { randomUUID } from "node:crypto";

export class OtpApiError extends Error {
  constructor(status, problem) {
    super(`${status} ${problem?.title ?? "error"}${problem?.detail ? `: ${problem.detail}` : ""}`);
    this.name = "OtpApiError";
    this.status = status; // 0 when the service could not be reached
    this.problem = problem ?? {}; // the RFC 9457 problem document
  }
}

export function createOtpClient({ url, apiKey, timeoutMs = 15_000 }) {
  const base = url.replace(/\/+$/, "");

  async function call(path, body) {
    let response;
    try {
      response = await fetch(`${base}${path}`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${apiKey}`,
          "content-type": "application/json",
          "idempotency-key": randomUUID(),
        },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new OtpApiError(0, { title: "unreachable", detail: error.message });
    }
    const answer = await response.json().catch(() => null);
    if (!response.ok) throw new OtpApiError(response.status, answer);
    return answer;
  }

  return {
    /** POST /v1/verifications: `{id, status, expires_at, ...}`. */
    startVerification: (fields) => call("/v1/verifications", fields),
    /** POST /v1/verifications/{id}/check: `{valid, status, attempts_remaining}`; 409 once finished. */
    check: (verificationId, code) =>
      call(`/v1/verifications/${encodeURIComponent(verificationId)}/check`, { code }),
  };
}
