// Sign-in with a one-time code, without telling anyone which users exist.
//
// Every answer a visitor sees is the same whether or not the phone number or email
// belongs to a user, and it takes the same time:
// - `begin` records a pending sign-in and, for a known user only, starts the verification
//   in the background: the page "if this is yours, we sent a code" is answered before the
//   service is called, so its timing does not depend on the user existing. Unknown users
//   are never sent a code.
// - `check` answers a wrong code for an unknown user exactly as for a known one (the same
//   attempts left), and no sooner than CHECK_FLOOR_MS: a known user's check waits for the
//   service, an unknown user's does not, and the floor hides the difference.

import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { LRUCache } from "lru-cache";

export const CODE_TTL_S = 600; // the verification's lifetime, and the pending sign-in's
export const MAX_ATTEMPTS = 5; // checks allowed per code, mirrored for unknown users
export const CHECK_FLOOR_MS = 300; // no check is answered sooner than this

const PHONE = /^\+[1-9][0-9]{6,14}$/;
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const CODE = /^[0-9A-Za-z]{4,10}$/;

/** An E.164 phone number or a lower-cased email address; null if it is neither. */
export function normalize(identifier) {
  const text = String(identifier ?? "").trim();
  if (text.includes("@")) {
    const email = text.toLowerCase();
    return EMAIL.test(email) ? email : null;
  }
  const phone = text.replace(/[\s().-]/g, "");
  return PHONE.test(phone) ? phone : null;
}

/** Phone numbers and emails of the users who may sign in; stands in for your user table. */
export class UserDirectory {
  constructor(identifiers) {
    this.ids = new Map();
    for (const raw of identifiers) {
      const identifier = normalize(raw);
      if (identifier === null) {
        throw new Error(`not a phone number in E.164 or an email address: ${raw}`);
      }
      this.ids.set(identifier, `usr_${this.ids.size + 1}`);
    }
  }

  /** `APP_USERS`: comma-separated phone numbers and email addresses. */
  static parse(text) {
    return new UserDirectory(
      String(text ?? "")
        .split(",")
        .map((item) => item.trim())
        .filter(Boolean),
    );
  }

  userId(identifier) {
    return this.ids.get(identifier) ?? null;
  }
}

export const Outcome = Object.freeze({ APPROVED: "approved", WRONG: "wrong", ENDED: "ended" });

/** Pending sign-ins of this process (use a shared store when you run several). */
export class SignIns {
  constructor(otp, users, { brand, checkFloorMs = CHECK_FLOOR_MS, log = console }) {
    this.otp = otp;
    this.users = users;
    this.brand = brand;
    this.checkFloorMs = checkFloorMs;
    this.log = log;
    this.pending = new LRUCache({ max: 100_000, ttl: CODE_TTL_S * 1000 });
  }

  /** A new pending sign-in's id (kept in the session); a known user's code is sent meanwhile. */
  begin(identifier, { userIp }) {
    const signInId = randomBytes(32).toString("base64url");
    const userId = this.users.userId(identifier);
    const started = userId === null ? null : this.#start(identifier, userId, userIp);
    this.pending.set(signInId, { identifier, started, attemptsLeft: MAX_ATTEMPTS });
    return signInId;
  }

  /** The phone or email of a pending sign-in, as the visitor typed it (normalised). */
  identifier(signInId) {
    return (signInId && this.pending.get(signInId)?.identifier) || null;
  }

  /** Check a code typed for a pending sign-in, never faster than the floor. */
  async check(signInId, code) {
    const floor = sleep(this.checkFloorMs);
    try {
      return await this.#check(signInId, String(code ?? "").trim());
    } finally {
      await floor;
    }
  }

  async #start(identifier, userId, userIp) {
    try {
      const created = await this.otp.startVerification({
        to: identifier,
        ttl_s: CODE_TTL_S,
        max_attempts: MAX_ATTEMPTS,
        brand: this.brand,
        user_id: userId,
        user_ip: userIp,
      });
      this.log.info(`code sent to ${userId} (${created.id})`);
      return created.id;
    } catch (error) {
      // Refused (rate limit, risk policy) or unreachable: the visitor's page is the same.
      this.log.warn(`no code sent to ${userId}: ${error.message}`);
      return null;
    }
  }

  async #check(signInId, code) {
    const pending = signInId ? this.pending.get(signInId) : undefined;
    if (!pending) return { outcome: Outcome.ENDED };
    if (!CODE.test(code)) {
      return { outcome: Outcome.WRONG, attemptsLeft: pending.attemptsLeft }; // no attempt used
    }
    const verificationId = await pending.started;
    if (!verificationId) {
      pending.attemptsLeft -= 1; // an unknown user, or the send was refused
    } else {
      let result;
      try {
        result = await this.otp.check(verificationId, code);
      } catch (error) {
        if (error.status === 409 || error.status === 403) {
          pending.attemptsLeft = 0; // finished, or the destination is locked out
        } else if (error.status === 422) {
          return { outcome: Outcome.WRONG, attemptsLeft: pending.attemptsLeft };
        } else {
          throw error; // the service is unreachable or failing: nothing was decided
        }
      }
      if (result?.valid) {
        this.pending.delete(signInId);
        return { outcome: Outcome.APPROVED, identifier: pending.identifier };
      }
      if (result) pending.attemptsLeft = result.attempts_remaining;
    }
    if (pending.attemptsLeft <= 0) {
      this.pending.delete(signInId);
      return { outcome: Outcome.ENDED };
    }
    return { outcome: Outcome.WRONG, attemptsLeft: pending.attemptsLeft };
  }
}
