// Print every request the built client can send, as JSON [[method, path], ...].
//
// Each public method of `OtpClient` is called once with placeholder arguments against a
// fetch that records the request and answers `{}`; the drift test maps the paths to the
// OpenAPI operations. Run after `npm run build`.
import { OtpClient } from "../dist/esm/index.js";

const seen = [];
const client = new OtpClient({
  apiKey: "otp_test_operations",
  baseUrl: "http://sdk.invalid",
  maxRetries: 0,
  fetch: async (url, init) => {
    seen.push([init.method, new URL(url).pathname]);
    return new Response("{}", { status: 200, headers: { "content-type": "application/json" } });
  },
});

const plumbing = new Set(["constructor", "backoffDelayMs"]);
for (const name of Object.getOwnPropertyNames(OtpClient.prototype)) {
  const method = client[name];
  if (plumbing.has(name) || typeof method !== "function") continue;
  const args = Array.from({ length: method.length }, (_, i) => `arg${i}`);
  try {
    const result = method.apply(client, args);
    if (result && typeof result[Symbol.asyncIterator] === "function") {
      for await (const _ of result) break;
    } else {
      await result;
    }
  } catch {
    // `{}` is not every operation's answer: only the request matters here.
  }
}
process.stdout.write(`${JSON.stringify(seen)}\n`);
