// Server-rendered pages. Every interpolated value goes through escape-html.

import escapeHtml from "escape-html";

function layout(title, content) {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${escapeHtml(title)}</title>
  <style>
    body { font-family: system-ui, sans-serif; max-width: 26rem; margin: 4rem auto; padding: 0 1rem; }
    input, button { font-size: 1rem; padding: .5rem; width: 100%; box-sizing: border-box; margin: .25rem 0; }
    .error { color: #b00020; }
  </style>
</head>
<body>
${content}
</body>
</html>
`;
}

function alert(text) {
  return text ? `<p class="error" role="alert">${escapeHtml(text)}</p>\n` : "";
}

export function signInPage({ error } = {}) {
  return layout(
    "Sign in",
    `<h1>Sign in</h1>
${alert(error)}<form method="post" action="/sign-in">
  <label for="identifier">Phone number or email</label>
  <input id="identifier" name="identifier" autocomplete="username" required
         placeholder="+14155550123 or you@example.com">
  <button type="submit">Send me a code</button>
</form>`,
  );
}

export function codePage({ identifier, attemptsLeft, unavailable = false }) {
  let error = "";
  if (unavailable) {
    error = "Sign-in is unavailable right now. Try again in a moment.";
  } else if (attemptsLeft !== undefined) {
    error = `That code is not right. ${attemptsLeft} attempt${attemptsLeft === 1 ? "" : "s"} left.`;
  }
  return layout(
    "Enter your code",
    `<h1>Enter your code</h1>
<p>If ${escapeHtml(identifier)} belongs to an account, we sent it a code. It is valid for 10 minutes.</p>
${alert(error)}<form method="post" action="/sign-in/code">
  <label for="code">Code</label>
  <input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" required>
  <button type="submit">Sign in</button>
</form>
<p><a href="/">Use another phone number or email</a></p>`,
  );
}

export function accountPage({ user }) {
  return layout(
    "Your account",
    `<h1>Your account</h1>
<p>Signed in as ${escapeHtml(user)}.</p>
<form method="post" action="/sign-out"><button type="submit">Sign out</button></form>`,
  );
}
