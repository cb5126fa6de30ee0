// Issue "ledger": reserve+release round trips on one event object versus the object's trivial
// round trip (`/ping`, one SQLite counter write), measured in the same run, interleaved.
//
// One EventHub object (a PUBLISHED event, open sale window, one class with a large total). Each
// client loops: `reserve` 1 ticket for a fresh order, then `release` it, so stock never runs out
// and the per-user limit never applies. A read-only protocol call (`availability`) is measured
// too, to separate the protocol's fixed cost (decode, transaction, alarm check, JSON reply) from
// the ledger's writes. Three drivers, each with its own /ping baseline:
//   stub   Node → Miniflare's stub (`getDurableObjectNamespace("EVENT_HUB")` → `idFromName` →
//          `get` → `stub.fetch("https://event-hub/rpc")`): every call crosses Miniflare's
//          Node↔workerd proxy, whose own cost dominates and flattens ratios towards 1;
//   http   Node `fetch` → bench-only gate Worker → object (one plain HTTP hop, like the app's
//          routes minus auth; bench/lib/hub.mjs);
//   worker the same loop run inside workerd by the gate Worker (Worker → object, no Node):
//          the closest to the object's own cost, and to production's Worker → object path.
// The ratio is requests/s (reserve and release each count) over /ping requests/s, per driver.
// At the end the class must show reserved = sold = 0: every hold was released.
//
// Environment (defaults in brackets):
//   BENCH_SECONDS       seconds per measurement round [3]
//   BENCH_ROUNDS        rounds per figure, interleaved and alternating (a b c, c b a, ...) [3]
//   BENCH_CLIENTS       concurrent clients [32]
//   BENCH_DRIVERS       which drivers, comma-separated [stub,http,worker]
//   INVENTORY_TOTAL     the class's total [1000000]
//   INVENTORY_QUANTITY  tickets per reserve [1]
//   BENCH_STORAGE       shm | disk: where the objects' SQLite files live [shm] (bench/lib/hub.mjs)
import { startHub, rpc, ping, eventSetup, envInt } from "./lib/hub.mjs";
import { drive, interleaved, ratio, table, fmt, assertNoErrors } from "./lib/drive.mjs";

const seconds = envInt("BENCH_SECONDS", 3, { min: 1 });
const rounds = envInt("BENCH_ROUNDS", 3, { min: 1 });
const clients = envInt("BENCH_CLIENTS", 32, { min: 1 });
const drivers = (process.env.BENCH_DRIVERS ?? "stub,http,worker").split(",").map((d) => d.trim()).filter(Boolean);
for (const d of drivers) if (!["stub", "http", "worker"].includes(d)) throw new Error(`unknown BENCH_DRIVERS entry: ${d}`);
const total = envInt("INVENTORY_TOTAL", 1_000_000, { min: 1 });
const quantity = envInt("INVENTORY_QUANTITY", 1, { min: 1 });

const EVENT = "bench-inventory";
const CLASS = "ga";

const hub = await startHub();
try {
  const { stub } = hub.hub(EVENT);
  await rpc(stub, eventSetup(EVENT));
  await rpc(stub, { op: "upsertClass", id: CLASS, total });

  const pair = async (target, id) => {
    const reserved = await rpc(target, {
      op: "reserve",
      orderId: id,
      userId: `u-${id}`,
      items: [{ ticketClassId: CLASS, quantity }],
    });
    if (reserved.hold?.state !== "ACTIVE") throw new Error(`reserve ${id}: unexpected ${JSON.stringify(reserved)}`);
    await rpc(target, { op: "release", orderId: id });
    return 2;
  };
  const read = async (target) => {
    const { items } = await rpc(target, { op: "availability" });
    if (items?.[0]?.id !== CLASS) throw new Error(`availability: unexpected ${JSON.stringify(items)}`);
  };
  const http = hub.http(EVENT);
  // Warm the isolates, the object and its SQLite (wasm instantiation, schema) before measuring.
  for (const target of [stub, http]) {
    for (let i = 0; i < 50; i++) await ping(target);
    for (let i = 0; i < 20; i++) await pair(target, `warm-${i}-${target === stub ? "s" : "h"}`);
  }

  const figures = ["ping", "availability", "ledger"];
  const results = {};
  for (const driver of drivers) {
    results[driver] = await interleaved(figures, rounds, (name, r) => {
      if (driver === "worker") {
        return hub.driveInside({ event: EVENT, kind: name, seconds, clients, prefix: `w${r}`, classId: CLASS, quantity });
      }
      const target = driver === "stub" ? stub : http;
      const step =
        name === "ping" ? () => ping(target) : name === "availability" ? () => read(target) : (c, n) => pair(target, `${driver}${r}-${c}-${n}`);
      return drive({ seconds, clients, step });
    });
  }

  const [cls] = (await rpc(stub, { op: "availability" })).items;
  const label = { stub: "Node -> stub (Miniflare proxy)", http: "Node -> HTTP -> Worker -> object", worker: "Worker -> object (in workerd)" };
  const rows = [];
  for (const driver of drivers) {
    const r = results[driver];
    const row = (figure, x, pairs) => [
      label[driver],
      figure,
      fmt(x.reqPerSec),
      pairs ? fmt(x.opsPerSec) : "",
      fmt(x.p50, 1),
      fmt(x.p99, 1),
      ratio(x, r.ping).text,
      x === r.ping ? "" : ratio(x, r.ping).range,
      fmt(x.errors),
    ];
    rows.push(row("/ping (trivial round trip)", r.ping));
    rows.push(row("availability (read-only rpc)", r.availability));
    rows.push(row("reserve+release, per request", r.ledger, true));
  }
  console.log(
    `\nInventory ledger: one EventHub object, ${clients} clients, ${rounds} x ${seconds} s per figure (interleaved), workerd via Miniflare on 127.0.0.1`,
  );
  console.log(
    table(
      [["driver", "l"], ["figure", "l"], ["req/s", "r"], ["pairs/s", "r"], ["p50 ms", "r"], ["p99 ms", "r"], ["ratio", "r"], ["per round", "r"], ["errors", "r"]],
      rows,
    ),
  );
  console.log("ratio = requests/s over the same driver's /ping requests/s (issue target for reserve+release: >= 0.70); per round = its lowest-highest value over the interleaved rounds");
  console.log("p50/p99 are per call, per pair (reserve then release) on the ledger rows; the in-workerd driver gives throughput only");
  const pairs = drivers.reduce((n, d) => n + results[d].ledger.ops, 0);
  console.log(`class ${CLASS}: total ${fmt(cls.total)}, reserved ${fmt(cls.reserved)}, sold ${fmt(cls.sold)} after ${fmt(pairs)} measured pairs`);

  for (const driver of drivers) for (const f of figures) assertNoErrors(`${driver} ${f}`, results[driver][f]);
  if (cls.reserved !== 0 || cls.sold !== 0) throw new Error(`ledger counters did not return to zero: ${JSON.stringify(cls)}`);
} finally {
  await hub.dispose();
}
