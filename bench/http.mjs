// HTTP baseline: a no-op JS Worker (the runtime's floor), the Rust Worker serving a cached
// document (routing + middleware, no I/O), and /api/health (one D1 round trip), measured in
// the same run on the same machine. Ratios are against the no-op Worker.
import { startApp, startNoop } from "./lib/runtime.mjs";
import { load, row } from "./lib/load.mjs";

const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 32);

const noop = await startNoop();
const app = await startApp();
try {
  // Warm both isolates (wasm instantiation, D1 open) before measuring.
  await fetch(`${app.url}/api/health`);
  await fetch(`${noop.url}/`);
  const base = await load(`${noop.url}/`, { seconds, connections });
  const doc = await load(`${app.url}/api/openapi.json`, { seconds, connections });
  const health = await load(`${app.url}/api/health`, { seconds, connections });
  console.log(`\nHTTP baseline (${connections} connections, ${seconds} s each, workerd via Miniflare on 127.0.0.1)`);
  console.log(row("no-op JS Worker (baseline)", base));
  console.log(row("Rust Worker GET /api/openapi.json", doc, base));
  console.log(row("Rust Worker GET /api/health (D1)", health, base));
} finally {
  await app.dispose();
  await noop.dispose();
}
