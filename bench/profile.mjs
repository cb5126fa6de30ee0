// Where the event object's time goes: a V8 CPU profile of the object's isolate (the Rust
// Worker compiled to wasm, with its name section, so Rust functions appear by name) while the
// in-workerd driver of bench/inventory.mjs runs one kind of call against it.
//
// It prints the functions with the most self time and the app's own functions with the most
// total time, as shares of the samples, and the calls per second reached while profiled (the
// profiler slows everything down, so use inventory.mjs for throughput and this for shares).
//
// Environment (defaults in brackets):
//   PROFILE_KIND     ledger | availability | ping | join | shard-join | shard-ping [ledger]
//                    | app-404 [ledger]
//                    (the shard kinds: shard 0 of an event with SHARDS_COUNT [8] shards, new fans;
//                    app-404: the app's Worker over HTTP answering an unknown /api route, its
//                    fixed per-request cost, driven by autocannon)
//   PROFILE_SECONDS  seconds profiled [5]
//   BENCH_CLIENTS    concurrent clients [32]
//   PROFILE_TOP      rows per table [20]
//   PROFILE_OUT      also write the raw profile there (open it in Chrome DevTools) [unset]
import { writeFileSync } from "node:fs";
import net from "node:net";
import { startHub, rpc, eventSetup, envInt, shardOf, shardSettingsJson } from "./lib/hub.mjs";
import autocannon from "autocannon";
import { table } from "./lib/drive.mjs";
import { startApp } from "./lib/runtime.mjs";

const kind = process.env.PROFILE_KIND ?? "ledger";
if (!["ledger", "availability", "ping", "join", "shard-join", "shard-ping", "app-404"].includes(kind)) throw new Error(`unknown PROFILE_KIND: ${kind}`);
const seconds = envInt("PROFILE_SECONDS", 5, { min: 1 });
const clients = envInt("BENCH_CLIENTS", 32, { min: 1 });
const top = envInt("PROFILE_TOP", 20, { min: 1 });
const EVENT = "bench-profile";
const CLASS = "ga";
const shardCount = envInt("SHARDS_COUNT", 8, { min: 2 });

/** `n` user ids `${prefix}-<i>` that hash to shard 0 (the app's `shard_of`). */
function usersOfShard0(prefix, n) {
  const out = [];
  for (let i = 0; out.length < n; i++) if (shardOf(`${prefix}-${i}`, shardCount) === 0) out.push(`${prefix}-${i}`);
  return out;
}

/** A port nobody listens on right now, for workerd's inspector. */
async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A minimal DevTools-protocol client: send(method, params) resolves with the result. */
async function inspector(url) {
  // Node 22's own WebSocket client (the browser API).
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve, { once: true });
    ws.addEventListener("error", () => reject(new Error(`cannot reach the inspector at ${url}`)), { once: true });
  });
  let next = 0;
  const waiting = new Map();
  ws.addEventListener("message", ({ data }) => {
    const message = JSON.parse(data);
    const settle = waiting.get(message.id);
    if (!settle) return;
    waiting.delete(message.id);
    if (message.error) settle.reject(new Error(`${message.error.message} (${message.error.code})`));
    else settle.resolve(message.result);
  });
  return {
    send: (method, params = {}) =>
      new Promise((resolve, reject) => {
        const id = ++next;
        waiting.set(id, { resolve, reject });
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}

/** Self and total sample counts per function name (a function counted once per sample). */
function summarize(profile) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  // Rust symbols lose their hash and crate path, and `<Type as Trait>::f` reads `Type::f`.
  const name = (node) =>
    (node.callFrame.functionName || "(anonymous)")
      .replace(/::h[0-9a-f]{16}$/, "")
      .replace(/<([^<>]+) as [^<>]+(?:<[^<>]*>)?>::/g, "$1::")
      .replaceAll("ticketbottle_edge::", "");
  const self = new Map();
  const total = new Map();
  for (const id of profile.samples) {
    const leaf = byId.get(id);
    self.set(name(leaf), (self.get(name(leaf)) ?? 0) + 1);
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const n = name(byId.get(at));
      if (seen.has(n)) continue;
      seen.add(n);
      total.set(n, (total.get(n) ?? 0) + 1);
    }
  }
  return { samples: profile.samples.length, self, total };
}

/** Profiles the app's isolate behind the inspector at `port` while `run(seconds)` drives it. */
async function profiled(port, run) {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const target = targets.find((t) => t.webSocketDebuggerUrl.endsWith("/core:user:ticketbottle-edge"));
  if (!target) throw new Error(`no inspector target for the app among ${targets.length}`);
  const devtools = await inspector(target.webSocketDebuggerUrl);
  await devtools.send("Profiler.enable");
  await devtools.send("Profiler.start");
  const result = await run(seconds);
  const { profile } = await devtools.send("Profiler.stop");
  devtools.close();
  return { result, profile };
}

/** autocannon GETs of `url` for `secs` seconds, every answer `status`. */
async function cannon(url, secs, status) {
  const r = await autocannon({ url, connections: clients, duration: secs, expectBody: undefined });
  const wrong = r.non2xx && status < 300 ? r.non2xx : r[`${Math.floor(status / 100)}xx`] === r.requests.total ? 0 : r.requests.total;
  return { reqPerSec: r.requests.total / r.duration, errors: r.errors + r.timeouts + wrong, firstError: `${wrong} answers not ${status}` };
}

const port = await freePort();
let run;
let profile;
if (kind.startsWith("app-")) {
  process.env.BENCH_INSPECTOR_PORT = String(port);
  const app = await startApp(process.env.PROFILE_NO_ASSETS ? { assets: undefined } : {});
  try {
    const url = `${app.url}/api/__no_such_route`;
    await cannon(url, 1, 404);
    ({ result: run, profile } = await profiled(port, (secs) => cannon(url, secs, 404)));
  } finally {
    await app.dispose();
  }
} else {
  const hub = await startHub({ inspectorPort: port });
  try {
    const { stub } = hub.hub(EVENT);
    const sharded = kind.startsWith("shard-");
    const setup = sharded ? eventSetup(EVENT, { waitroom: {}, shards: shardCount }) : eventSetup(EVENT);
    await rpc(stub, setup);
    await rpc(stub, { op: "upsertClass", id: CLASS, total: 1_000_000 });
    const settings = sharded
      ? [shardSettingsJson(EVENT, 0, shardCount, { secret: hub.jwtSecret, saleStartsAtMs: setup.saleStartsAtMs, saleEndsAtMs: setup.saleEndsAtMs })]
      : undefined;
    const drive = (prefix, secs) =>
      hub.driveInside({
        event: EVENT, kind, seconds: secs, clients, prefix, classId: CLASS, quantity: 1,
        ...(sharded ? { shard: 0, settings, users: kind === "shard-join" ? usersOfShard0(prefix, secs * 8_000) : [] } : {}),
      });
    await drive("warm", 1);
    ({ result: run, profile } = await profiled(port, (secs) => drive("profiled", secs)));
  } finally {
    await hub.dispose();
  }
}
if (run.errors) throw new Error(`${run.errors} calls failed while profiled: ${run.firstError}`);
if (process.env.PROFILE_OUT) writeFileSync(process.env.PROFILE_OUT, JSON.stringify(profile));

const { samples, self, total } = summarize(profile);
const share = (count) => `${((100 * count) / samples).toFixed(1)} %`;
const rows = (map, keep) =>
  [...map]
    .filter(([n]) => keep(n))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([n, count]) => [share(count), n.length > 110 ? `${n.slice(0, 107)}...` : n]);
console.log(`\n${kind.startsWith("app-") ? "App Worker" : "Event object"} profile: ${kind}, ${clients} clients, ${seconds} s, ${samples} samples, ${Math.round(run.reqPerSec)} calls/s while profiled`);
console.log("\nSelf time (native calls such as SQLite's `exec` and `transactionSync` show under their JS names):");
console.log(table([["share", "r"], ["function", "l"]], rows(self, () => true)));
console.log("\nTotal time of the app's own functions:");
console.log(table([["share", "r"], ["function", "l"]], rows(total, (n) => /^(domain|durable|api|http|payments|queue|store|worker|log)::/.test(n))));
