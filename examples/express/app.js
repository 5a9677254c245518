// Sign in with a one-time code: an Express backend calling the OTP service server-side.
//
// The API key stays on this server: the browser only ever sees the pages and an opaque
// session cookie. Configuration comes from the environment (see configFromEnv).

import { randomBytes } from "node:crypto";
import express from "express";
import session from "express-session";
import { LRUCache } from "lru-cache";
import { Webhook } from "standardwebhooks";
import { createOtpClient } from "./otp.js";
import { Outcome, SignIns, UserDirectory, normalize } from "./signin.js";
import { accountPage, codePage, signInPage } from "./views.js";

const SESSION_TTL_MS = 12 * 3600 * 1000;

/**
 * - OTP_URL: the service's base URL (http://127.0.0.1:8000 for `make run`);
 * - OTP_API_KEY: the application's API key; used here only, never sent to the browser;
 * - OTP_WEBHOOK_SECRET: the whsec_... secret of the webhook endpoint pointing at
 *   /webhooks/otp (without it, webhooks are refused with 503);
 * - APP_USERS: comma-separated phone numbers and emails of the users who may sign in
 *   (stands in for your user table); APP_BRAND: the name shown in the message;
 * - SESSION_SECRET: signs the session cookie (random per start when unset);
 * - COOKIE_SECURE=1: mark cookies Secure (whenever the site is served over https).
 */
export function configFromEnv(env) {
  const missing = ["OTP_URL", "OTP_API_KEY"].filter((name) => !env[name]);
  if (missing.length) throw new Error(`set ${missing.join(" and ")} (see README.md)`);
  return {
    otpUrl: env.OTP_URL,
    otpApiKey: env.OTP_API_KEY,
    webhookSecret: env.OTP_WEBHOOK_SECRET || null,
    users: UserDirectory.parse(env.APP_USERS),
    brand: env.APP_BRAND || "Example",
    sessionSecret: env.SESSION_SECRET || null,
    secureCookies: ["1", "true"].includes(env.COOKIE_SECURE ?? ""),
  };
}

export function createApp(config, log = console) {
  const otp = createOtpClient({ url: config.otpUrl, apiKey: config.otpApiKey });
  const signIns = new SignIns(otp, config.users, { brand: config.brand, log });
  const webhook = config.webhookSecret ? new Webhook(config.webhookSecret) : null;
  const seenWebhooks = new LRUCache({ max: 100_000, ttl: 24 * 3600 * 1000 });
  if (!webhook) log.warn("OTP_WEBHOOK_SECRET is not set: webhooks are refused");
  if (!config.sessionSecret) log.warn("SESSION_SECRET is not set: sessions end on restart");

  const app = express();
  app.disable("x-powered-by");
  const form = express.urlencoded({ extended: false, limit: "10kb" });
  app.use(
    session({
      name: "session",
      secret: config.sessionSecret || randomBytes(32).toString("hex"),
      resave: false,
      saveUninitialized: false,
      // The default MemoryStore suits one process in development; use a shared store
      // (Redis, your database) in production.
      cookie: {
        httpOnly: true,
        sameSite: "lax",
        secure: config.secureCookies,
        maxAge: SESSION_TTL_MS,
      },
    }),
  );

  app.get("/", (req, res) => {
    if (req.session.user) return res.redirect(303, "/account");
    res.send(signInPage());
  });

  app.post("/sign-in", form, (req, res) => {
    const identifier = normalize(req.body?.identifier);
    if (identifier === null) {
      const error = "Enter a phone number in international format (+14155550123) or an email.";
      return res.status(422).send(signInPage({ error }));
    }
    req.session.signInId = signIns.begin(identifier, { userIp: req.ip });
    res.redirect(303, "/sign-in/code");
  });

  app.get("/sign-in/code", (req, res) => {
    const identifier = signIns.identifier(req.session.signInId);
    if (identifier === null) return res.redirect(303, "/");
    res.send(codePage({ identifier }));
  });

  app.post("/sign-in/code", form, async (req, res) => {
    const identifier = signIns.identifier(req.session.signInId);
    let answer;
    try {
      answer = await signIns.check(req.session.signInId, req.body?.code);
    } catch (error) {
      log.error(`check failed: ${error.message}`);
      return res.status(503).send(codePage({ identifier, unavailable: true }));
    }
    if (answer.outcome === Outcome.WRONG) {
      return res.status(400).send(codePage({ identifier, attemptsLeft: answer.attemptsLeft }));
    }
    if (answer.outcome === Outcome.ENDED) {
      delete req.session.signInId;
      const error = "That code can no longer be used. Ask for a new one.";
      return res.status(400).send(signInPage({ error }));
    }
    // A new session id on sign-in, so a session id known before it is worth nothing after.
    await new Promise((done, fail) => req.session.regenerate((e) => (e ? fail(e) : done())));
    req.session.user = answer.identifier;
    res.redirect(303, "/account");
  });

  app.get("/account", (req, res) => {
    if (!req.session.user) return res.redirect(303, "/");
    res.send(accountPage({ user: req.session.user }));
  });

  app.post("/sign-out", async (req, res) => {
    await new Promise((done, fail) => req.session.destroy((e) => (e ? fail(e) : done())));
    res.clearCookie("session");
    res.redirect(303, "/");
  });

  // Standard Webhooks: the signature covers the raw body, so read it unparsed.
  app.post("/webhooks/otp", express.raw({ type: () => true, limit: "1mb" }), (req, res) => {
    if (!webhook) return res.status(503).type("text").send("webhooks are not configured");
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    let event;
    try {
      event = webhook.verify(body, req.headers); // throws unless authentic and fresh
    } catch (error) {
      log.warn(`webhook refused: ${error.message}`);
      return res.status(400).type("text").send("invalid signature");
    }
    const messageId = req.get("webhook-id"); // the same on every retry of a delivery
    if (!seenWebhooks.has(messageId)) {
      seenWebhooks.set(messageId, true);
      // Your handling goes here: audit, analytics, alerting on verification.blocked...
      log.info(`webhook ${event?.type} ${event?.data?.id} (${messageId})`);
    }
    res.status(204).end();
  });

  app.use((error, req, res, next) => {
    log.error(`${req.method} ${req.path} failed: ${error.stack ?? error}`);
    if (res.headersSent) return next(error);
    res.status(error.status ?? 500).type("text").send("Something went wrong.");
  });

  return app;
}
