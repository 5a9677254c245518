// Webhook verification: against the official `standardwebhooks` package both ways, and
// against real deliveries of the service (endpoint CRUD, secret rotation, a test send).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";

import { NotFoundError, WebhookVerificationError, webhooks } from "@otp-orchestrator/client";
import { Webhook } from "standardwebhooks";

import { eventually, listen, testClient } from "./helpers.mjs";

const SECRET = `whsec_${randomBytes(24).toString("base64")}`;
const BODY = JSON.stringify({
  type: "verification.approved",
  timestamp: "2026-01-02T03:04:05Z",
  data: {
    id: `ver_${"c".repeat(26)}`,
    application_id: "default",
    mode: "live",
    status: "approved",
    channels: ["sms"],
    to: "+1415*****23",
    client_ref: "order-7",
    event: { type: "approved", occurred_at: "2026-01-02T03:04:05+00:00" },
    added_later: 1,
  },
});

function officialHeaders(body, { msgId = "msg_official", date = new Date() } = {}) {
  const signature = new Webhook(SECRET).sign(msgId, date, body);
  return {
    "webhook-id": msgId,
    "webhook-timestamp": String(Math.floor(date.getTime() / 1000)),
    "webhook-signature": signature,
  };
}

test("the SDK verifies what the official package signs", () => {
  const event = webhooks.verify(SECRET, officialHeaders(BODY), BODY);
  assert.equal(event.type, "verification.approved");
  assert.equal(event.message_id, "msg_official");
  assert.equal(event.data.client_ref, "order-7");
  assert.equal(event.data.added_later, 1, "unknown fields are kept");
  // Buffer bodies, fetch Headers and mixed-case names too.
  const headers = new Headers(officialHeaders(BODY));
  assert.equal(webhooks.verify(SECRET, headers, Buffer.from(BODY)).message_id, "msg_official");
  const upper = Object.fromEntries(
    Object.entries(officialHeaders(BODY)).map(([k, v]) => [k.toUpperCase(), v]),
  );
  assert.equal(webhooks.verify(SECRET, upper, BODY).type, "verification.approved");
});

test("the official package verifies what the SDK signs", () => {
  const timestamp = Math.floor(Date.now() / 1000);
  const headers = {
    "webhook-id": "msg_sdk",
    "webhook-timestamp": String(timestamp),
    "webhook-signature": webhooks.sign(SECRET, "msg_sdk", timestamp, BODY),
  };
  const payload = new Webhook(SECRET).verify(BODY, headers);
  assert.equal(payload.type, "verification.approved");
  assert.equal(
    webhooks.sign(SECRET, "msg_sdk", timestamp, BODY),
    new Webhook(SECRET).sign("msg_sdk", new Date(timestamp * 1000), BODY),
  );
});

test("tampering, another secret, stale timestamps and missing headers are refused", () => {
  const headers = officialHeaders(BODY);
  const refuse = (fn, pattern) =>
    assert.throws(fn, (e) => e instanceof WebhookVerificationError && pattern.test(e.message));
  refuse(
    () => webhooks.verify(SECRET, headers, BODY.replace("order-7", "order-8")),
    /no matching signature/,
  );
  const other = `whsec_${randomBytes(24).toString("base64")}`;
  refuse(() => webhooks.verify(other, headers, BODY), /no matching signature/);
  const old = officialHeaders(BODY, { date: new Date(Date.now() - 600_000) });
  refuse(() => webhooks.verify(SECRET, old, BODY), /tolerance/);
  assert.equal(
    webhooks.verify(SECRET, old, BODY, { toleranceS: 900 }).type,
    "verification.approved",
  );
  refuse(
    () => webhooks.verify(SECRET, { ...headers, "webhook-timestamp": "soon" }, BODY),
    /unix seconds/,
  );
  const { "webhook-signature": _, ...unsigned } = headers;
  refuse(() => webhooks.verify(SECRET, unsigned, BODY), /missing webhook-signature/);
  refuse(() => webhooks.verify("whsec_not base64!", headers, BODY), /whsec_/);
  // During a rotation two signatures are sent: either secret verifies.
  const both = {
    ...headers,
    "webhook-signature": `v1,${"A".repeat(44)} ${headers["webhook-signature"]}`,
  };
  assert.equal(webhooks.verify(SECRET, both, BODY).message_id, "msg_official");
  // The official package agrees on what it refuses.
  assert.throws(() => new Webhook(SECRET).verify(BODY.replace("order-7", "order-8"), headers));
});

test("endpoints: create, list, read, update, test send verified, rotate, delete", async () => {
  const received = [];
  const receiver = await listen((req, res, body) => {
    received.push({ headers: req.headers, body });
    res.writeHead(204);
    res.end();
  });
  const otp = testClient();
  try {
    const created = await otp.createWebhookEndpoint({
      url: `${receiver.url}/hooks`,
      description: "node sdk",
      event_types: ["verification.approved"],
    });
    assert.match(created.secret, /^whsec_/);
    assert.equal(created.mode, "test");
    assert.ok((await otp.listWebhookEndpoints()).some((e) => e.id === created.id));
    assert.equal((await otp.getWebhookEndpoint(created.id)).url, `${receiver.url}/hooks`);
    assert.equal(await otp.getWebhookEndpointSecret(created.id), created.secret);
    const updated = await otp.updateWebhookEndpoint(created.id, { description: "renamed" });
    assert.deepEqual(
      [updated.description, updated.event_types],
      ["renamed", ["verification.approved"]],
    );

    const sent = await otp.sendWebhookTest(created.id);
    const delivery = await eventually(() => received[0], 20_000, "the test webhook");
    const event = webhooks.verify(created.secret, delivery.headers, delivery.body);
    assert.equal(event.type, "webhook.test");
    assert.equal(event.message_id, sent.message_id);
    assert.deepEqual(
      new Webhook(created.secret).verify(delivery.body.toString(), delivery.headers),
      JSON.parse(delivery.body),
    );

    const messages = await eventually(
      async () => {
        const list = await otp.listWebhookMessages(created.id);
        return list.find((m) => m.message_id === sent.message_id && m.attempts > 0) && list;
      },
      15_000,
      "the delivery record",
    );
    const attempts = await otp.listWebhookAttempts(created.id, messages[0].message_id);
    assert.ok(attempts.length >= 1 && attempts[0].attempt === 1);

    const rotated = await otp.rotateWebhookEndpointSecret(created.id, { grace_period_s: 0 });
    assert.match(rotated.secret, /^whsec_/);
    assert.notEqual(rotated.secret, created.secret);
    assert.equal(rotated.previous_secret_expires_at, null);
    assert.equal(await otp.getWebhookEndpointSecret(created.id), rotated.secret);

    await otp.deleteWebhookEndpoint(created.id);
    const gone = await otp.getWebhookEndpoint(created.id).catch((e) => e);
    assert.ok(gone instanceof NotFoundError, String(gone));
  } finally {
    await receiver.close();
  }
});
