// PostGraphile v5 for the bench: the amber preset over the bench database, served by
// grafserv's Node adaptor on node:http, with N cluster workers like v4's
// --cluster-workers (workers > 1: a cluster primary forks them; 1: one process).
//
// Run by bench/servers.py with Node >= 22 (v5's engines), e.g.
//   node bench/postgraphile5_server.cjs
// configured by the environment:
//   BENCH_PG5_DIR       the directory postgraphile@5 is installed in (bench/.postgraphile5)
//   BENCH_PG5_DB_URL    connection string (the same database and role as v4)
//   BENCH_PG5_HOST, BENCH_PG5_PORT, BENCH_PG5_WORKERS, BENCH_PG5_POOL_SIZE
//
// Production settings: no GraphiQL, no watch mode, no explain, no subscriptions /
// LISTEN (pubsub off, as v4 runs without --subscriptions), NODE_ENV=production.
"use strict";

const cluster = require("node:cluster");
const http = require("node:http");
const path = require("node:path");
const { createRequire } = require("node:module");

function env(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set`);
  }
  return value;
}

const dir = env("BENCH_PG5_DIR");
const host = process.env.BENCH_PG5_HOST || "127.0.0.1";
const port = Number(env("BENCH_PG5_PORT"));
const workers = Number(process.env.BENCH_PG5_WORKERS || "1");
const poolSize = Number(process.env.BENCH_PG5_POOL_SIZE || "10");

if (workers > 1 && cluster.isPrimary) {
  for (let i = 0; i < workers; i++) {
    cluster.fork();
  }
  cluster.on("exit", (worker, code, signal) => {
    console.error(`worker ${worker.process.pid} exited (${signal || code})`);
    // A worker that dies is a failed run, not something to paper over: stop.
    process.exit(1);
  });
  for (const sig of ["SIGTERM", "SIGINT"]) {
    process.on(sig, () => {
      for (const w of Object.values(cluster.workers || {})) {
        w?.process.kill("SIGTERM");
      }
      process.exit(0);
    });
  }
} else {
  const req = createRequire(path.join(dir, "package.json"));
  const { postgraphile } = req("postgraphile");
  const { PostGraphileAmberPreset } = req("postgraphile/presets/amber");
  const { makePgService } = req("postgraphile/adaptors/pg");
  const { grafserv } = req("postgraphile/grafserv/node");

  const preset = {
    extends: [PostGraphileAmberPreset],
    pgServices: [
      makePgService({
        connectionString: env("BENCH_PG5_DB_URL"),
        schemas: ["public"],
        poolConfig: { max: poolSize },
        pubsub: false,
      }),
    ],
    grafserv: { host, port, graphqlPath: "/graphql", graphiql: false, watch: false },
    grafast: { explain: false },
  };

  const pgl = postgraphile(preset);
  const serv = pgl.createServ(grafserv);
  const server = http.createServer();
  server.on("error", (e) => {
    console.error(e);
    process.exit(1);
  });
  serv
    .addTo(server)
    .then(() => {
      server.listen(port, host, () => {
        console.log(`postgraphile5 pid ${process.pid} listening on http://${host}:${port}/graphql`);
      });
    })
    .catch((e) => {
      console.error(e);
      process.exit(1);
    });
  for (const sig of ["SIGTERM", "SIGINT"]) {
    process.on(sig, () => {
      server.close();
      pgl.release().finally(() => process.exit(0));
    });
  }
}
