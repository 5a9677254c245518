// The service as a test-mode key sees it, and a browser's sign-in against an integration.
import assert from "node:assert/strict";
import http from "node:http";
import { randomBytes } from "node:crypto";

const { OTP_URL, OTP_API_KEY } = process.env;
export const SENT = { message: "If this address can receive codes, one is on its way." };
export const WRONG = { verified: false, error: "The code is wrong or has expired." };

async function service(method, path, body) {
  const response = await fetch(new URL(path, OTP_URL), {
    method,
    headers: { Authorization: `Bearer ${OTP_API_KEY}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

export async function registerEndpoint(url) {
  const answer = await service("POST", "/v1/webhook-endpoints", { url });
  assert.equal(answer.status, 201, JSON.stringify(answer.body));
  return answer.body;
}

export async function codeFor(to) {
  const query = new URLSearchParams({ to, wait: "10" });
  const answer = await service("GET", `/v1/sandbox/messages?${query}`);
  assert.equal(answer.status, 200);
  assert.equal(answer.body.messages.length, 1, JSON.stringify(answer.body));
  const [message] = answer.body.messages;
  return { code: message.body.match(/\b(\d{6})\b/)[1], id: message.verification_id };
}

export async function delivered(endpointId, eventType, verificationId) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const answer = await service("GET", `/v1/webhook-endpoints/${endpointId}/messages`);
    const found = answer.body.messages.filter(
      (m) => m.event_type === eventType && m.verification_id === verificationId,
    );
    if (found.length && found[0].status !== "pending") return found[0];
    assert.ok(Date.now() < deadline, JSON.stringify(answer.body));
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export function wrongCode(code) {
  return [...code].map((c) => (c === "1" ? "2" : "1")).join("");
}

export async function listen(server) {
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${server.address().port}`;
}

export function close(server) {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(resolve));
}

// A browser: JSON posts with one cookie jar.
function browser(base) {
  const jar = new Map();
  return async function post(path, body, headers = {}) {
    const cookie = [...jar].map(([name, value]) => `${name}=${value}`).join("; ");
    const response = await fetch(new URL(path, base), {
      method: "POST",
      headers: { "Content-Type": "application/json", ...(cookie ? { cookie } : {}), ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const name = pair.slice(0, pair.indexOf("=")).trim();
      const value = pair.slice(pair.indexOf("=") + 1);
      const gone = /max-age=0|expires=thu, 01 jan 1970/i.test(line) || value === "";
      if (gone) jar.delete(name);
      else jar.set(name, value);
    }
    const text = await response.text();
    const json = (response.headers.get("content-type") ?? "").includes("json");
    return { status: response.status, body: json ? JSON.parse(text) : text || null };
  };
}

// Send -> code from the sandbox inbox -> verify, the neutral answers, forged webhooks.
export async function signIn(base, prefix, endpointId, stack) {
  const post = browser(base);
  const bad = await post(`${prefix}/send`, { to: "not an address" });
  assert.equal(bad.status, 400, JSON.stringify(bad.body));
  assert.deepEqual(await post(`${prefix}/verify`, { code: "123456" }), { status: 400, body: WRONG });
  // A premium-rate number: the default risk policy refuses it (403 risk-policy), and the
  // app answers exactly as if a code were sent.
  assert.deepEqual(await post(`${prefix}/send`, { to: "+19005550123" }), {
    status: 202,
    body: SENT,
  });
  assert.deepEqual(await post(`${prefix}/verify`, { code: "123456" }), { status: 400, body: WRONG });

  const to = `skill-${stack}-${randomBytes(5).toString("hex")}@example.com`;
  assert.deepEqual(await post(`${prefix}/send`, { to }), { status: 202, body: SENT });
  const { code, id } = await codeFor(to);
  assert.deepEqual(await post(`${prefix}/verify`, { code: wrongCode(code) }), {
    status: 400,
    body: WRONG,
  });
  assert.deepEqual(await post(`${prefix}/verify`, { code }), {
    status: 200,
    body: { verified: true },
  });
  assert.deepEqual(await post(`${prefix}/verify`, { code }), { status: 400, body: WRONG });

  const forged = await post(`${prefix}/webhook`, '{"type": "verification.approved"}', {
    "webhook-id": "msg_forged",
    "webhook-timestamp": String(Math.floor(Date.now() / 1000)),
    "webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
  });
  assert.equal(forged.status, 400);
  assert.equal((await post(`${prefix}/webhook`, { type: "verification.approved" })).status, 400);

  const approved = await delivered(endpointId, "verification.approved", id);
  assert.equal(approved.status, "succeeded", JSON.stringify(approved));
  assert.equal(approved.last_status_code, 204);
}

export { http };
