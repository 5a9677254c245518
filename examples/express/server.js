// Start the example: `node server.js` (PORT, default 3000; HOST, default 127.0.0.1).

import { configFromEnv, createApp } from "./app.js";

const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || "127.0.0.1";
const server = createApp(configFromEnv(process.env)).listen(port, host, () => {
  console.info(`listening on http://${host}:${port}`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => server.close(() => process.exit(0)));
}
