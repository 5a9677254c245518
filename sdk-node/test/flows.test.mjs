// The SDK against the real service: flows, problems, search pages, analytics, endpoints.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { test } from "node:test";

import {
  ApiError,
  AuthenticationError,
  ConflictError,
  InvalidRequestError,
  NotFoundError,
  OtpClient,
  OtpError,
  PermissionDeniedError,
  RateLimitedError,
  Status,
  VerificationFinishedError,
} from "@otp-orchestrator/client";

import { readCode, service, testClient, uniqueEmail, wrongCode } from "./helpers.mjs";

const PHONE = "+14155550123";

test("start, read the code from the sandbox, wrong then right code, approved", async () => {
  const otp = testClient();
  const created = await otp.startVerification({ to: PHONE, brand: "Acme", client_ref: "node-sdk" });
  assert.match(created.id, /^ver_/);
  assert.equal(created.status, Status.PENDING);
  assert.equal(created.to, "+1********23");
  assert.deepEqual(
    created.channels.map((c) => [c.channel, c.timeout_s]),
    [["sms", 60]],
  );
  assert.equal(created.attempts_remaining, 5);
  assert.equal(created.client_ref, "node-sdk");

  const code = await readCode(otp, created.id);
  const wrong = await otp.check(created.id, wrongCode(code));
  assert.deepEqual([wrong.valid, wrong.status, wrong.attempts_remaining], [false, "pending", 4]);
  const right = await otp.check(created.id, code);
  assert.deepEqual([right.valid, right.status, right.attempts_remaining], [true, "approved", 3]);

  const state = await otp.get(created.id);
  assert.equal(state.status, Status.APPROVED);
  assert.equal(state.attempts_used, 2);
  assert.ok(state.finished_at);
  assert.deepEqual(
    state.deliveries.map((d) => [d.channel, d.kind]),
    [["sms", "step"]],
  );

  const finished = await otp.check(created.id, code).catch((e) => e);
  assert.ok(finished instanceof VerificationFinishedError, String(finished));
  assert.ok(finished instanceof ConflictError && finished instanceof ApiError);
  assert.equal(finished.statusCode, 409);
  assert.equal(finished.statusOfVerification, "approved");
  assert.equal(finished.problem.instance, `/v1/verifications/${created.id}/check`);
  assert.ok(finished.idempotencyKey, "the error names the key the check carried");

  const events = await otp.events(created.id);
  assert.equal(events.id, created.id);
  assert.equal(events.data[0].type, "created");
});

test("resend in the cooldown, next channel, cancel", async () => {
  const otp = testClient();
  const email = uniqueEmail();
  const created = await otp.startVerification({
    to: PHONE,
    channels: [
      { channel: "sms", timeout_s: 300 },
      { channel: "email", to: email },
    ],
    code_length: 8,
  });
  assert.deepEqual(
    created.channels.map((c) => c.channel),
    ["sms", "email"],
  );
  assert.equal(created.code_length, 8);
  const code = await readCode(otp, created.id);
  assert.equal(code.length, 8);

  // Inside the cooldown: a 429 with Retry-After, thrown at once (a resend is not retried).
  const started = Date.now();
  const limited = await otp.resend(created.id).catch((e) => e);
  assert.ok(limited instanceof RateLimitedError, String(limited));
  assert.ok(Date.now() - started < 5000);
  assert.ok(limited.retryAfter > 0);
  assert.equal((await otp.sandboxMessages({ verification_id: created.id })).length, 1);

  const moved = await otp.nextChannel(created.id);
  assert.equal(moved.step_index, 1);
  assert.deepEqual([moved.delivery.channel, moved.delivery.kind], ["email", "step"]);
  assert.equal(await readCode(otp, created.id, 2), code, "the same code, by email");

  const canceled = await otp.cancel(created.id);
  assert.deepEqual([canceled.id, canceled.status], [created.id, Status.CANCELED]);
  const again = await otp.check(created.id, code).catch((e) => e);
  assert.ok(again instanceof VerificationFinishedError, String(again));
  assert.equal(again.statusOfVerification, "canceled");
  const state = await otp.get(created.id);
  assert.equal(state.status, "canceled");
  assert.equal(state.current_step, 1);
  assert.deepEqual(
    state.deliveries.map((d) => d.channel),
    ["sms", "email"],
  );
});

test("problems are error classes: 422 invalid, 401 unauthenticated, 404 not found, 403", async () => {
  const otp = testClient();
  const invalid = await otp.startVerification({ to: "not a number" }).catch((e) => e);
  assert.ok(invalid instanceof InvalidRequestError, String(invalid));
  assert.equal(invalid.statusCode, 422);
  assert.match(invalid.problem.type, /^urn:otp:problem:/);
  assert.ok(Array.isArray(invalid.problem.errors) && invalid.problem.errors.length > 0);

  const { baseUrl } = service();
  const stranger = new OtpClient({ apiKey: "otp_test_unknown", baseUrl });
  const unauthorized = await stranger.get("ver_unknown").catch((e) => e);
  assert.ok(unauthorized instanceof AuthenticationError, String(unauthorized));
  assert.equal(unauthorized.statusCode, 401);
  assert.ok(unauthorized instanceof OtpError);

  const missing = await otp.get(`ver_${"0".repeat(26)}`).catch((e) => e);
  assert.ok(missing instanceof NotFoundError, String(missing));
  assert.equal(missing.statusCode, 404);

  const { liveKey } = service();
  const live = new OtpClient({ apiKey: liveKey, baseUrl });
  const sandbox = await live.sandboxMessages().catch((e) => e);
  assert.ok(sandbox instanceof PermissionDeniedError, String(sandbox));
  assert.equal(sandbox.statusCode, 403);

  assert.throws(() => otp.get("../admin"), TypeError);
});

test("search pages: every verification once, newest first, across pages", async () => {
  const otp = testClient();
  const ref = `node-page-${Date.now()}`;
  const ids = [];
  for (let i = 0; i < 5; i += 1) {
    ids.push((await otp.startVerification({ to: uniqueEmail(), client_ref: ref })).id);
  }
  const pages = [];
  for await (const page of otp.searchPages({ client_ref: ref, limit: 2 })) pages.push(page);
  assert.deepEqual(
    pages.map((p) => p.data.length),
    [2, 2, 1],
  );
  assert.ok(pages[0].next_cursor && !pages[2].next_cursor);

  const seen = [];
  for await (const summary of otp.iterSearch({ client_ref: ref, limit: 2 })) seen.push(summary.id);
  assert.deepEqual([...seen].sort(), [...ids].sort());
  assert.equal(new Set(seen).size, 5);
  assert.deepEqual(
    seen,
    pages.flatMap((p) => p.data.map((s) => s.id)),
  );

  const first = await otp.search({
    client_ref: ref,
    limit: 2,
    created_after: new Date(Date.now() - 3600_000),
  });
  assert.equal(first.data.length, 2);
  assert.equal(first.data[0].client_ref, ref);

  const report = await otp.analytics({ group_by: ["channel"] });
  assert.deepEqual(report.group_by, ["channel"]);
  assert.ok(report.totals.started >= 5);
  assert.ok(report.groups.some((g) => g.channel === "email"));
});

test("the CommonJS build is the same client", () => {
  const require = createRequire(import.meta.url);
  const cjs = require("@otp-orchestrator/client");
  assert.equal(typeof cjs.OtpClient, "function");
  assert.equal(typeof cjs.webhooks.verify, "function");
  const error = new cjs.NotFoundError({ type: "urn:otp:problem:x", title: "", status: 404 });
  assert.ok(error instanceof cjs.ApiError && error instanceof Error);
  assert.equal(error.name, "NotFoundError");
});
