// Real Better Auth server for interop tests.
//
// Listens on 127.0.0.1 with an OS-assigned port, then prints exactly one JSON
// line to stdout:  {"ready": true, "url": "http://127.0.0.1:PORT"}
// and serves until killed (SIGTERM / SIGINT).  Logs go to stderr.
//
// Environment:
//   BA_ALG                EdDSA (default) | ES256 | ES512 | RS256 | PS256
//   BA_ROTATION_INTERVAL  seconds -> jwt({ jwks: { rotationInterval } })
//   BA_GRACE_PERIOD       seconds -> jwt({ jwks: { gracePeriod } })
//   BA_HS256=1            sign tokens with HS256 using BETTER_AUTH_SECRET via the
//                         jwt plugin's custom `jwt.sign` hook (the /jwks endpoint
//                         is then disabled by Better Auth: it returns 404)
//   BETTER_AUTH_SECRET    shared secret (default below, >= 32 chars)
//   BA_EXIT_ON_STDIN_EOF=1  exit when stdin closes (so a crashed parent process
//                         never leaves an orphaned server behind)
import http from "node:http";
import { betterAuth } from "better-auth";
import { memoryAdapter } from "better-auth/adapters/memory";
import { toNodeHandler } from "better-auth/node";
import { bearer, jwt } from "better-auth/plugins";
import { SignJWT } from "jose";

const DEFAULT_SECRET = "interop-test-secret-0123456789-abcdefghijklmnopqrstuvwxyz";
const ALGS = new Set(["EdDSA", "ES256", "ES512", "RS256", "PS256"]);

function envSeconds(name) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number of seconds, got ${raw}`);
  return n;
}

const alg = process.env.BA_ALG || "EdDSA";
if (!ALGS.has(alg)) throw new Error(`BA_ALG must be one of ${[...ALGS].join(", ")}, got ${alg}`);
const secret = process.env.BETTER_AUTH_SECRET || DEFAULT_SECRET;
const hs256 = ["1", "true", "yes"].includes((process.env.BA_HS256 || "").toLowerCase());
const rotationInterval = envSeconds("BA_ROTATION_INTERVAL");
const gracePeriod = envSeconds("BA_GRACE_PERIOD");

// Listen first (port 0) so the baseURL -- which becomes the JWT iss/aud and
// the trusted origin -- contains the real port; the auth instance is created
// right after and installed as the request handler.
let handler = (_req, res) => {
  res.statusCode = 503;
  res.end("starting");
};
const server = http.createServer((req, res) => handler(req, res));
await new Promise((resolve, reject) => {
  server.once("error", reject);
  server.listen(0, "127.0.0.1", resolve);
});
const baseURL = `http://127.0.0.1:${server.address().port}`;

function jwtPluginOptions() {
  if (hs256) {
    const key = new TextEncoder().encode(secret);
    return {
      // Better Auth refuses `jwt.sign` without `jwks.remoteUrl`, and refuses
      // `remoteUrl` without `keyPairConfig.alg`. With remoteUrl set, the local
      // /jwks endpoint returns 404. The alg is only advertised in OIDC metadata.
      jwks: { remoteUrl: `${baseURL}/api/auth/jwks`, keyPairConfig: { alg: "HS256" } },
      jwt: {
        // payload already contains iat, exp, iss, aud, sub (+ the user fields).
        sign: async (payload, header) =>
          new SignJWT(payload)
            .setProtectedHeader({ ...(header || {}), alg: "HS256", typ: "JWT" })
            .sign(key),
      },
    };
  }
  const jwks = { keyPairConfig: { alg } };
  if (rotationInterval !== undefined) jwks.rotationInterval = rotationInterval;
  if (gracePeriod !== undefined) jwks.gracePeriod = gracePeriod;
  return { jwks };
}

const auth = betterAuth({
  baseURL,
  secret,
  trustedOrigins: [baseURL],
  database: memoryAdapter({ user: [], session: [], account: [], verification: [], jwks: [] }),
  emailAndPassword: { enabled: true },
  telemetry: { enabled: false },
  plugins: [jwt(jwtPluginOptions()), bearer()],
});
handler = toNodeHandler(auth);

process.stdout.write(`{"ready": true, "url": ${JSON.stringify(baseURL)}}\n`);
process.stderr.write(
  `[better-auth-harness] listening on ${baseURL} alg=${hs256 ? "HS256(custom sign)" : alg}` +
    ` rotationInterval=${rotationInterval ?? "-"} gracePeriod=${gracePeriod ?? "-"}\n`,
);

function shutdown(signal) {
  process.stderr.write(`[better-auth-harness] ${signal}, shutting down\n`);
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
if (process.env.BA_EXIT_ON_STDIN_EOF === "1") {
  process.stdin.on("end", () => shutdown("stdin EOF"));
  process.stdin.on("error", () => shutdown("stdin error"));
  process.stdin.resume();
}
