// Retries: only where safe, with the same Idempotency-Key; backoff with jitter; Retry-After;
// timeouts. A local proxy in front of the real service loses answers on purpose.
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  OtpClient,
  OtpConnectionError,
  OtpTimeoutError,
  RateLimitedError,
  ServerError,
  ServiceUnavailableError,
  UnexpectedResponseError,
} from "@otp-orchestrator/client";

import { listen, readCode, service, uniqueEmail } from "./helpers.mjs";

/**
 * A proxy to the service that forwards each request, and for the first one matching
 * `method` and `suffix` lets the service answer, then cuts the connection: the request
 * was processed, its answer is lost.
 */
async function losingProxy(method, suffix) {
  const { baseUrl } = service();
  const exchanges = [];
  let lost = false;
  const proxy = await listen(async (req, res, body) => {
    const upstream = await fetch(baseUrl + req.url, {
      method: req.method,
      headers: Object.fromEntries(
        Object.entries(req.headers).filter(
          ([name]) => !["host", "connection", "content-length"].includes(name),
        ),
      ),
      body: body.length ? body : undefined,
    });
    const text = await upstream.text();
    const lose = !lost && req.method === method && req.url.split("?")[0].endsWith(suffix);
    lost ||= lose;
    exchanges.push({
      method: req.method,
      path: req.url.split("?")[0],
      key: req.headers["idempotency-key"],
      status: upstream.status,
      replayed: upstream.headers.get("idempotent-replayed") === "true",
      lost: lose,
      body: text,
    });
    if (lose) {
      res.socket.destroy();
      return;
    }
    const headers = Object.fromEntries(
      [...upstream.headers].filter(
        ([name]) =>
          !["content-length", "transfer-encoding", "content-encoding", "connection"].includes(name),
      ),
    );
    res.writeHead(upstream.status, headers);
    res.end(text);
  });
  const to = (m, s) => exchanges.filter((e) => e.method === m && e.path.endsWith(s));
  return { ...proxy, exchanges, to };
}

function proxiedClient(url, options = {}) {
  return new OtpClient({ apiKey: service().testKey, baseUrl: url, backoffMs: 10, ...options });
}

test("a start whose answer is lost is sent again with the same Idempotency-Key", async () => {
  const proxy = await losingProxy("POST", "/v1/verifications");
  try {
    const otp = proxiedClient(proxy.url);
    const created = await otp.startVerification({ to: uniqueEmail() });
    const starts = proxy.to("POST", "/v1/verifications");
    assert.equal(starts.length, 2, JSON.stringify(starts));
    assert.equal(starts[0].lost, true);
    assert.equal(starts[0].status, 201);
    assert.ok(starts[0].key && starts[0].key === starts[1].key, "one key on every attempt");
    assert.equal(starts[1].replayed, true);
    assert.equal(JSON.parse(starts[0].body).id, created.id, "the replay is the first verification");
    // One verification, one message: the repeat started nothing.
    await readCode(otp, created.id, 1);
  } finally {
    await proxy.close();
  }
});

test("a check whose answer is lost counts once", async () => {
  const proxy = await losingProxy("POST", "/check");
  try {
    const otp = proxiedClient(proxy.url);
    const created = await otp.startVerification({ to: uniqueEmail() });
    const code = await readCode(otp, created.id);
    const key = "node-check-key-1";
    const result = await otp.check(created.id, code, { idempotencyKey: key });
    assert.deepEqual([result.valid, result.status], [true, "approved"]);
    const checks = proxy.to("POST", "/check");
    assert.deepEqual(
      checks.map((c) => [c.key, c.lost, c.replayed]),
      [
        [key, true, false],
        [key, false, true],
      ],
    );
  } finally {
    await proxy.close();
  }
});

test("an unsafe call whose answer is lost is not sent again", async () => {
  const proxy = await losingProxy("POST", "/cancel");
  try {
    const otp = proxiedClient(proxy.url);
    const created = await otp.startVerification({ to: uniqueEmail() });
    const error = await otp.cancel(created.id).catch((e) => e);
    assert.ok(error instanceof OtpConnectionError, String(error));
    assert.ok(!(error instanceof OtpTimeoutError));
    assert.equal(proxy.to("POST", "/cancel").length, 1);
    assert.equal((await otp.get(created.id)).status, "canceled", "it did happen, once");
  } finally {
    await proxy.close();
  }
});

test("an unsafe call is retried when the connection could not be opened", async () => {
  const server = await listen((req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ id: "ver_x", status: "canceled" }));
  });
  try {
    let calls = 0;
    const refused = Object.assign(new TypeError("fetch failed"), {
      cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
    });
    const otp = new OtpClient({
      apiKey: "otp_test_x",
      baseUrl: server.url,
      backoffMs: 1,
      fetch: (url, init) => (++calls === 1 ? Promise.reject(refused) : fetch(url, init)),
    });
    assert.deepEqual(await otp.cancel("ver_x"), { id: "ver_x", status: "canceled" });
    assert.equal(calls, 2);
  } finally {
    await server.close();
  }
});

/** A local server that answers 429 (with `retryAfter`) `times` times, then 200. */
async function limitedServer(retryAfter, times = 1) {
  const seen = [];
  const server = await listen((req, res) => {
    seen.push({ at: Date.now(), key: req.headers["idempotency-key"], method: req.method });
    if (seen.length <= times) {
      res.writeHead(429, {
        "content-type": "application/problem+json",
        "retry-after": retryAfter(),
      });
      res.end(
        JSON.stringify({ type: "urn:otp:problem:rate-limited", title: "Too many", status: 429 }),
      );
      return;
    }
    res.writeHead(201, { "content-type": "application/json" });
    res.end(JSON.stringify({ id: "ver_limited", status: "pending" }));
  });
  return { ...server, seen };
}

test("Retry-After in seconds is honoured", async () => {
  const server = await limitedServer(() => "1");
  try {
    const otp = new OtpClient({ apiKey: "otp_test_x", baseUrl: server.url, backoffMs: 1 });
    const created = await otp.startVerification({ to: "+14155550123" });
    assert.equal(created.id, "ver_limited");
    assert.equal(server.seen.length, 2);
    const waited = server.seen[1].at - server.seen[0].at;
    assert.ok(waited >= 950 && waited < 3000, `waited ${waited} ms`);
    assert.equal(server.seen[0].key, server.seen[1].key);
  } finally {
    await server.close();
  }
});

test("Retry-After as an HTTP date is honoured", async () => {
  // HTTP dates have whole seconds: two seconds ahead means a wait of one to two seconds.
  const server = await limitedServer(() => new Date(Date.now() + 2000).toUTCString());
  try {
    const otp = new OtpClient({ apiKey: "otp_test_x", baseUrl: server.url, backoffMs: 1 });
    await otp.get("ver_limited");
    const waited = server.seen[1].at - server.seen[0].at;
    assert.ok(waited >= 900 && waited < 3500, `waited ${waited} ms`);
  } finally {
    await server.close();
  }
});

test("a Retry-After beyond maxRetryAfterMs is thrown, and unsafe calls are not retried", async () => {
  const server = await limitedServer(() => "120", 10);
  try {
    const otp = new OtpClient({ apiKey: "otp_test_x", baseUrl: server.url, maxRetryAfterMs: 5000 });
    const long = await otp.get("ver_limited").catch((e) => e);
    assert.ok(long instanceof RateLimitedError, String(long));
    assert.equal(long.retryAfter, 120);
    assert.equal(server.seen.length, 1);

    const unsafe = await new OtpClient({ apiKey: "otp_test_x", baseUrl: server.url })
      .resend("ver_limited")
      .catch((e) => e);
    assert.ok(unsafe instanceof RateLimitedError, String(unsafe));
    assert.equal(server.seen.length, 2);
  } finally {
    await server.close();
  }
});

test("backoff is exponential with full jitter, bounded by maxRetries", async () => {
  let calls = 0;
  const server = await listen((req, res) => {
    calls += 1;
    res.writeHead(503, { "content-type": "application/problem+json" });
    res.end(
      JSON.stringify({ type: "urn:otp:problem:unavailable", title: "Unavailable", status: 503 }),
    );
  });
  try {
    const waits = [];
    const otp = new OtpClient({
      apiKey: "otp_test_x",
      baseUrl: server.url,
      maxRetries: 4,
      backoffMs: 100,
      maxBackoffMs: 300,
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    const error = await otp.get("ver_x").catch((e) => e);
    assert.ok(error instanceof ServiceUnavailableError, String(error));
    assert.equal(calls, 5);
    assert.equal(waits.length, 4);
    const caps = [100, 200, 300, 300];
    waits.forEach((ms, i) => assert.ok(ms >= 0 && ms <= caps[i], `wait ${i}: ${ms} > ${caps[i]}`));
    const draws = Array.from({ length: 200 }, () => otp.backoffDelayMs(3));
    assert.ok(new Set(draws).size > 150, "jittered, not fixed");
    assert.ok(Math.max(...draws) <= 300);
  } finally {
    await server.close();
  }
});

test("a timeout is an OtpTimeoutError after the retries of a safe call", async () => {
  let calls = 0;
  const server = await listen(() => {
    calls += 1; // never answers
  });
  try {
    const otp = new OtpClient({
      apiKey: "otp_test_x",
      baseUrl: server.url,
      timeoutMs: 150,
      maxRetries: 1,
      backoffMs: 1,
    });
    const started = Date.now();
    const error = await otp.get("ver_x").catch((e) => e);
    assert.ok(error instanceof OtpTimeoutError, String(error));
    assert.equal(calls, 2);
    assert.ok(Date.now() - started < 2000);

    const unsafe = await otp.cancel("ver_x").catch((e) => e);
    assert.ok(unsafe instanceof OtpTimeoutError, String(unsafe));
    assert.equal(calls, 3, "an unsafe call that may have been sent is not retried");
  } finally {
    await server.close();
  }
});

/** A local server that answers each request with the next scripted answer. */
async function scripted(answers) {
  const seen = [];
  const server = await listen((req, res) => {
    seen.push({ method: req.method, key: req.headers["idempotency-key"] });
    const [status, headers, body] = answers[Math.min(seen.length, answers.length) - 1];
    res.writeHead(status, headers);
    res.end(body);
  });
  return { ...server, seen };
}

const PROBLEM = { "content-type": "application/problem+json" };
const JSON_TYPE = { "content-type": "application/json" };

test("409 idempotency-key-in-flight is retried with the same key; a replay is final", async () => {
  const inFlight = JSON.stringify({
    type: "urn:otp:problem:idempotency-key-in-flight",
    title: "In flight",
    status: 409,
  });
  const server = await scripted([
    [409, PROBLEM, inFlight],
    [201, JSON_TYPE, JSON.stringify({ id: "ver_1", status: "pending" })],
  ]);
  try {
    const otp = new OtpClient({ apiKey: "otp_test_x", baseUrl: server.url, backoffMs: 1 });
    assert.equal((await otp.startVerification({ to: "+14155550123" })).id, "ver_1");
    assert.equal(server.seen.length, 2);
    assert.equal(server.seen[0].key, server.seen[1].key);
  } finally {
    await server.close();
  }

  const replayed = await scripted([
    [
      503,
      { ...PROBLEM, "idempotent-replayed": "true" },
      JSON.stringify({ type: "urn:otp:problem:unavailable", title: "", status: 503 }),
    ],
  ]);
  try {
    const otp = new OtpClient({ apiKey: "otp_test_x", baseUrl: replayed.url, backoffMs: 1 });
    const error = await otp.check("ver_1", "123456", { idempotencyKey: "k-1" }).catch((e) => e);
    assert.ok(error instanceof ServiceUnavailableError, String(error));
    assert.equal(error.idempotencyKey, "k-1");
    assert.equal(replayed.seen.length, 1, "the same key would answer the same again");
  } finally {
    await replayed.close();
  }
});

test("answers that are not JSON: a problem from the status line, or UnexpectedResponseError", async () => {
  const server = await scripted([
    [502, { "content-type": "text/html" }, "<html>Bad gateway</html>"],
    [200, { "content-type": "text/html" }, "<html>a captive portal</html>"],
  ]);
  try {
    const otp = new OtpClient({ apiKey: "otp_test_x", baseUrl: server.url, maxRetries: 0 });
    const gateway = await otp.get("ver_1").catch((e) => e);
    assert.ok(gateway instanceof ServerError, String(gateway));
    assert.deepEqual([gateway.statusCode, gateway.problem.type], [502, "about:blank"]);
    const portal = await otp.get("ver_1").catch((e) => e);
    assert.ok(portal instanceof UnexpectedResponseError, String(portal));
  } finally {
    await server.close();
  }
});
