// The Express block (generated/express/otp.mjs) against the real service.
import { test } from "node:test";
import express from "express";
import { close, http, listen, registerEndpoint, signIn } from "./support.mjs";

test("Express: sign in with a code, neutral answers, the service's signed webhooks", async () => {
  const server = http.createServer();
  const base = await listen(server);
  const endpoint = await registerEndpoint(`${base}/otp/webhook`);
  process.env.OTP_WEBHOOK_SECRET = endpoint.secret; // read when the module loads
  const { otpRoutes } = await import("./generated/express/otp.mjs");
  const app = express();
  app.use(otpRoutes);
  server.on("request", app);
  try {
    await signIn(base, "/otp", endpoint.id, "express");
  } finally {
    await close(server);
  }
});
