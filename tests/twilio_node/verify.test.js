// The official twilio Node SDK, unchanged but for the Verify domain's base URL.
import assert from "node:assert/strict";
import { test } from "node:test";
import twilio from "twilio";

const { SERVICE_URL, OTP_USERNAME, OTP_KEY } = process.env;
// Verify URLs carry no account sid; the SDK requires one that starts with AC.
const ACCOUNT_SID = "AC" + "0".repeat(32);

function client(username = OTP_USERNAME, password = OTP_KEY) {
  const c = twilio(username, password, { accountSid: ACCOUNT_SID });
  c.verify.baseUrl = SERVICE_URL; // the one change a Twilio user makes
  return c;
}

// VE + hex of 16 bytes -> ver_ + lowercase base32 of the same bytes.
function verificationId(sid) {
  const bytes = Buffer.from(sid.slice(2), "hex");
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return "ver_" + out;
}

async function sandboxCode(sid) {
  const url = `${SERVICE_URL}/v1/sandbox/messages?verification_id=${verificationId(sid)}&wait=10`;
  const deadline = Date.now() + 15000;
  for (;;) {
    const response = await fetch(url, { headers: { Authorization: `Bearer ${OTP_KEY}` } });
    assert.equal(response.status, 200);
    const { messages } = await response.json();
    if (messages.length > 0) return messages[0].body.match(/\b([0-9A-Z]{4,10})\b/)[1];
    assert.ok(Date.now() < deadline, "no code arrived");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const wrong = (code) => [...code].map((c) => (c === "1" ? "2" : "1")).join("");

async function refused(promise) {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  assert.fail("the call should have been refused");
}

test("services, verifications and checks through the twilio Node SDK", async () => {
  const verify = client().verify.v2;
  const service = await verify.services.create({ friendlyName: "Node Acme", codeLength: 6 });
  assert.match(service.sid, /^VA[0-9a-f]{32}$/);
  assert.equal(service.codeLength, 6);
  await verify.services.create({ friendlyName: "Node Extra 1" });
  await verify.services.create({ friendlyName: "Node Extra 2" });
  const listed = await verify.services.list({ pageSize: 2 }); // follows next_page_url
  assert.ok(listed.length >= 3);
  assert.ok(listed.some((s) => s.sid === service.sid));
  assert.equal((await verify.services(service.sid).fetch()).friendlyName, "Node Acme");

  const to = "+14155550151";
  const started = await verify.services(service.sid).verifications.create({ to, channel: "sms" });
  assert.match(started.sid, /^VE[0-9a-f]{32}$/);
  assert.equal(started.status, "pending");
  const code = await sandboxCode(started.sid);
  const checks = verify.services(service.sid).verificationChecks;
  const bad = await checks.create({ to, code: wrong(code) });
  assert.deepEqual([bad.status, bad.valid], ["pending", false]);
  const good = await checks.create({ verificationSid: started.sid, code });
  assert.deepEqual([good.status, good.valid], ["approved", true]);
  const fetched = await verify.services(service.sid).verifications(started.sid).fetch();
  assert.equal(fetched.status, "approved");
  const after = await refused(checks.create({ verificationSid: started.sid, code }));
  assert.deepEqual([after.status, after.code], [404, 20404]);

  const other = await verify.services(service.sid).verifications.create({
    to: "+14155550152",
    channel: "sms",
  });
  const canceled = await verify
    .services(service.sid)
    .verifications(other.sid)
    .update({ status: "canceled" });
  assert.equal(canceled.status, "canceled");

  const approve = await verify.services(service.sid).verifications.create({
    to: "+14155550154",
    channel: "sms",
  });
  const approved = await verify
    .services(service.sid)
    .verifications(approve.sid)
    .update({ status: "approved" });
  assert.deepEqual([approved.status, approved.valid], ["approved", true]);

  const limited = await verify.services(service.sid).verifications.create({
    to: "+14155550153",
    channel: "sms",
  });
  const limitedCode = await sandboxCode(limited.sid);
  for (let i = 0; i < 5; i++) {
    await checks.create({ verificationSid: limited.sid, code: wrong(limitedCode) });
  }
  const maxed = await refused(checks.create({ verificationSid: limited.sid, code: limitedCode }));
  assert.deepEqual([maxed.status, maxed.code], [429, 60202]);

  const invalid = await refused(
    verify.services(service.sid).verifications.create({ to: "+1", channel: "sms" }),
  );
  assert.deepEqual([invalid.status, invalid.code], [400, 60200]);

  let attempts = [];
  for (const deadline = Date.now() + 15000; attempts.length < 4 && Date.now() < deadline; ) {
    attempts = await verify.verificationAttempts.list({ verifyServiceSid: service.sid });
    if (attempts.length < 4) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(attempts.length, 4); // started, other, approve, limited
  const summary = await verify.verificationAttemptsSummary().fetch({ verifyServiceSid: service.sid });
  assert.deepEqual(
    [summary.totalAttempts, summary.totalConverted, summary.totalUnconverted],
    [4, 2, 2],
  );

  const denied = await refused(client(OTP_USERNAME, "otp_test_wrong").verify.v2.services(service.sid).fetch());
  assert.deepEqual([denied.status, denied.code], [401, 20003]);
});
