// The Next.js route handlers (type-checked and compiled by tsc into generated/nextjs-dist)
// called as plain functions with the platform Request, behind a minimal HTTP adapter so
// the service can deliver its signed webhooks to them.
import { test } from "node:test";
import { createRequire } from "node:module";
import { close, http, listen, registerEndpoint, signIn } from "./support.mjs";

const require = createRequire(import.meta.url);
const dist = "./generated/nextjs-dist/app/api/otp";

function adapter(base, routes) {
  return async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      for (const one of [value].flat()) headers.append(name, one);
    }
    const request = new Request(new URL(req.url, base), {
      method: req.method,
      headers,
      body: chunks.length ? Buffer.concat(chunks) : undefined,
    });
    const handler = routes[new URL(req.url, base).pathname];
    const response = handler
      ? await handler(request)
      : new Response(null, { status: 404 });
    const out = {};
    response.headers.forEach((value, name) => {
      if (name !== "set-cookie") out[name] = value;
    });
    const cookies = response.headers.getSetCookie();
    if (cookies.length) out["set-cookie"] = cookies;
    res.writeHead(response.status, out);
    res.end(Buffer.from(await response.arrayBuffer()));
  };
}

test("Next.js: sign in with a code, neutral answers, the service's signed webhooks", async () => {
  const server = http.createServer();
  const base = await listen(server);
  const endpoint = await registerEndpoint(`${base}/api/otp/webhook`);
  process.env.OTP_WEBHOOK_SECRET = endpoint.secret;
  server.on(
    "request",
    adapter(base, {
      "/api/otp/send": require(`${dist}/send/route.js`).POST,
      "/api/otp/verify": require(`${dist}/verify/route.js`).POST,
      "/api/otp/webhook": require(`${dist}/webhook/route.js`).POST,
    }),
  );
  try {
    await signIn(base, "/api/otp", endpoint.id, "nextjs");
  } finally {
    await close(server);
  }
});
