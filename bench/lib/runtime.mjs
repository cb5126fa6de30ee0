// Starts workerd through Miniflare on 127.0.0.1 for benchmarks and the flash-crowd harness:
// the app (configured from wrangler.toml, in-memory storage, D1 migrated) and a no-op JS
// Worker as the runtime's floor. Both listen on their own loopback port.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Miniflare, convertV4MiniflareOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

const ROOT = new URL("../..", import.meta.url).pathname;

// The app logs a JSON line per request; a benchmark drains them instead of printing them.
// Miniflare 5 hands the runtime's logs to `handleStructuredLogs` (printing them by default,
// which at thousands of requests a second falls behind and stalls workerd's writes).
const quiet = { handleRuntimeStdio: (out, err) => { out.resume(); err.resume(); }, handleStructuredLogs: () => {} };

async function start(worker, shared = {}) {
  const verbose = process.env.BENCH_VERBOSE === "1";
  const mf = new Miniflare(
    convertV4MiniflareOptions({ host: "127.0.0.1", port: 0, ...(verbose ? {} : quiet), ...shared, workers: [worker] }),
  );
  const url = await mf.ready;
  return { mf, url: url.href.replace(/\/$/, ""), dispose: () => mf.dispose() };
}

/** The no-op baseline: the cheapest possible Worker on the same runtime. */
export function startNoop() {
  return start({
    name: "noop",
    modules: true,
    script: "export default { fetch() { return new Response('ok'); } };",
    compatibilityDate: "2026-11-01",
  });
}

/**
 * The no-op Worker deployed the way the app is: behind the app's `[assets]` (wrangler.toml:
 * its directory, and `run_worker_first` for /api/*). Locally Miniflare runs the assets router
 * as a worker of its own in front of every request; this baseline pays it as the app does.
 */
export function startNoopBehindAssets() {
  const { workerOptions } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"));
  return start({
    name: "noop-assets",
    modules: true,
    script: "export default { fetch() { return new Response('ok'); } };",
    compatibilityDate: "2026-11-01",
    assets: workerOptions.assets,
  });
}

/**
 * The trivial-object baseline: a JS Worker forwarding each request to one SQLite-backed
 * Durable Object that does one write and one read, the floor of any Worker → object call.
 */
export function startTrivialObject() {
  return start({
    name: "trivial-object",
    modules: true,
    compatibilityDate: "2026-11-01",
    durableObjects: { OBJ: { className: "Counter", useSQLite: true } },
    script: `
      import { DurableObject } from "cloudflare:workers";
      export class Counter extends DurableObject {
        constructor(state, env) {
          super(state, env);
          state.storage.sql.exec("CREATE TABLE IF NOT EXISTS c (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)");
        }
        fetch() {
          const sql = this.ctx.storage.sql;
          sql.exec("INSERT INTO c (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1");
          return new Response(String(sql.exec("SELECT n FROM c WHERE id = 1").one().n));
        }
      }
      export default { fetch(req, env) { return env.OBJ.get(env.OBJ.idFromName("one")).fetch(req); } };`,
  });
}

/**
 * The app as wrangler.toml describes it, without the rate-limiting bindings (a benchmark is
 * one client hammering on purpose, and Miniflare emulates each limiter call as an extra
 * service hop that Cloudflare's in-process limiter does not cost; the Worker skips an absent
 * limiter), with `overrides` merged over the options. Its cron handler runs on a plain
 * request, `GET {url}/cdn-cgi/local/scheduled?cron=...`: Miniflare's proxies (getWorker, D1,
 * object stubs) block Node's main thread on synchronous round trips, which must not meet a
 * busy runtime (bench/flash-crowd.mjs says why). `BENCH_INSPECTOR_PORT` opens workerd's
 * DevTools inspector on that loopback port (a CPU profile of the app's isolate while a scenario
 * runs, as bench/profile.mjs takes one of the event object alone).
 */
export async function startApp(overrides = {}, { persistDir, port, migrate = true } = {}) {
  const { workerOptions, main } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"));
  const ratelimits = {};
  const { modulesRules: _rules, rootPath: _root, ...options } = workerOptions;
  const build = join(ROOT, "build");
  const { bindings: extraBindings, ...rest } = overrides;
  const app = await start({
    ...options,
    name: "ticketbottle-edge",
    modulesRoot: build,
    modules: [
      { type: "ESModule", path: main },
      { type: "CompiledWasm", path: join(build, "index_bg.wasm") },
    ],
    ratelimits,
    ...rest,
    bindings: { ...(options.bindings ?? {}), ...(extraBindings ?? {}) },
  }, {
    unsafeTriggerHandlers: true,
    ...(process.env.BENCH_INSPECTOR_PORT ? { inspectorPort: Number(process.env.BENCH_INSPECTOR_PORT) } : {}),
    ...(persistDir ? { resourcePersistencePath: persistDir } : {}),
    ...(port ? { port } : {}),
  });
  if (!migrate) return app;
  const db = await app.mf.getD1Database("DB");
  const dir = join(ROOT, "migrations");
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
    const sql = readFileSync(join(dir, file), "utf8");
    // D1's exec takes one statement per line; prepare each statement instead.
    for (const statement of splitSql(sql)) await db.prepare(statement).run();
  }
  return app;
}

/** Splits a migration into statements (no semicolons inside strings in our migrations, except triggers). */
export function splitSql(sql) {
  const lines = sql.split("\n").filter((l) => !l.trim().startsWith("--"));
  const out = [];
  let current = "";
  let inTrigger = false;
  for (const line of lines) {
    current += line + "\n";
    if (/CREATE\s+TRIGGER/i.test(line)) inTrigger = true;
    if (inTrigger ? /^\s*END\s*;\s*$/i.test(line) : line.trim().endsWith(";")) {
      if (current.trim()) out.push(current.trim());
      current = "";
      inTrigger = false;
    }
  }
  if (current.trim()) out.push(current.trim());
  return out;
}
