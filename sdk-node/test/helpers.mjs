// Shared by the tests: the service under test (from the environment) and small helpers.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createServer } from "node:http";

import { OtpClient } from "@otp-orchestrator/client";

/** The service the pytest driver started: OTP_BASE_URL, OTP_TEST_KEY, OTP_LIVE_KEY. */
export function service() {
  const baseUrl = process.env.OTP_BASE_URL;
  const testKey = process.env.OTP_TEST_KEY;
  const liveKey = process.env.OTP_LIVE_KEY;
  assert.ok(
    baseUrl && testKey && liveKey,
    "OTP_BASE_URL, OTP_TEST_KEY and OTP_LIVE_KEY are needed",
  );
  return { baseUrl, testKey, liveKey };
}

export function testClient(options = {}) {
  const { baseUrl, testKey } = service();
  return new OtpClient({ apiKey: testKey, baseUrl, ...options });
}

// The code is the one word of 4-10 upper-case letters or digits in every template.
const CODE_RE = /\b([0-9A-Z]{4,10})\b/;

/** The code in the sandbox inbox once `count` messages arrived (newest first). */
export async function readCode(client, verificationId, count = 1) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const messages = await client.sandboxMessages({ verification_id: verificationId, wait: 10 });
    if (messages.length >= count || Date.now() > deadline) {
      assert.equal(messages.length, count, JSON.stringify(messages));
      const match = CODE_RE.exec(messages[0].body);
      assert.ok(match, messages[0].body);
      return match[1];
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A code of the same shape that is certainly not `code`. */
export function wrongCode(code) {
  return [...code].map((c) => (c !== "1" ? "1" : "2")).join("");
}

export function uniqueEmail() {
  return `node-${randomUUID().slice(0, 12)}@example.com`;
}

/** A local HTTP server on a free loopback port; `handler(req, res, body)`. */
export async function listen(handler) {
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => handler(req, res, Buffer.concat(chunks)));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

/** Wait until `probe()` returns a truthy value (or fail after `ms`). */
export async function eventually(probe, ms = 15_000, what = "condition") {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
