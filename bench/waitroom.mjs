// Issue "waitroom": three parts, each on its own fresh workerd (Miniflare on 127.0.0.1); bench/run.sh
// runs them as the scenarios waitroom-join, waitroom-depth and waitroom-ws.
//
// join   Joins per second on one event object versus its trivial round trip (`/ping`), same
//        run, interleaved; every join is a new fan (a new session at the back of the queue,
//        with its QUEUE_JOINED outbox row). Drivers as in bench/inventory.mjs: Node → Miniflare
//        stub, Node → HTTP → gate Worker → object, and the loop inside workerd (Worker → object).
//        This is also the rate at which a queue can be filled through joins here; the time a
//        1,000,000 fill would take at that rate is printed.
// depth  Join and position-read cost at queue depth DEPTH_LARGE versus DEPTH_SMALL: two objects
//        (one per depth) in the same workerd, timed in turn, round after round, so both see the
//        same machine. By default the queues are filled by writing each object's SQLite file
//        while workerd is stopped (bench/lib/prefill.mjs: the rows a join writes, counters
//        moved to match), because filling 1,000,000 through joins takes far longer than this
//        benchmark may run; DEPTH_FILL=joins fills through real joins instead (choose a depth
//        you can wait for). Then DEPTH_DEPARTURES fans spread over each queue leave (so
//        positions go through the departure tree). Every fan of a sample spread over the queue
//        has its position read once from Node and checked against its exact expected value;
//        then, timed, in interleaved rounds: /ping; `session` reads of the sample (the fan's
//        position, as GET .../waitroom/session asks it); `join` of new fans (a bounded count,
//        so the small queue stays small). Timed by the in-workerd driver by default
//        (DEPTH_DRIVERS), the one least diluted by client cost. Admission is paused (0 checkout
//        slots) so the queues hold still while measured.
// ws     One admission tick with many connected hibernating WebSockets: WS_COUNT fans join
//        (admission paused), each opens the object's `/ws` (through the gate, as the app's
//        route forwards it) and gets its first position. Then an event sync opens WS_ADMIT
//        checkout slots; the object's alarm runs an admission tick, which pushes `admitted` to
//        the first WS_ADMIT fans and a new position to everyone else. Measured: the time from
//        sending the sync until every socket has received its message (each is checked: right
//        type, position moved by exactly WS_ADMIT). Then the same for the head fan leaving
//        (one `leave`: every other queued socket gets its position moved by one).
//
// Environment (defaults in brackets):
//   WAITROOM_PARTS       which parts, comma-separated [join,depth,ws]
//   BENCH_SECONDS        seconds per timed round [3]
//   BENCH_ROUNDS         rounds per figure, interleaved and alternating (a b, b a, ...) [3]
//   BENCH_CLIENTS        concurrent clients [32]
//   BENCH_DRIVERS        drivers of the join part [stub,http,worker]
//   BENCH_STORAGE        shm | disk: where the objects' SQLite files live [shm] (bench/lib/hub.mjs)
//   DEPTH_SMALL          the small queue [1000]
//   DEPTH_LARGE          the large queue [1000000]
//   DEPTH_FILL           sqlite | joins [sqlite]
//   DEPTH_DRIVERS        drivers timing the depth part [worker]
//   DEPTH_JOINS          joins measured at each depth, over all rounds [2000]
//   DEPTH_SAMPLE         fans whose position is read, spread over the queue [1000]
//   DEPTH_DEPARTURES     fans who leave before measuring, spread over the queue [100]
//   SETTLE_MS            pause after each timed join figure, once the outbox is empty [1500]
//   WS_COUNT             sockets [2000]  (workerd holds ~2 open files and ~0.45 MB per socket:
//                        10000 needs `ulimit -n` above ~21000 and ~5 GB free)
//   WS_ADMIT             checkout slots opened by the tick = fans admitted [100]
//   WS_OPEN_CONCURRENCY  sockets being opened at once [50]
//   WS_TIMEOUT_SECONDS   how long to wait for every socket's message [60]
import { mkdtempSync, rmSync, readFileSync } from "node:fs";
import { join as joinPath } from "node:path";
import { startHub, rpc, ping, eventSetup, envInt, workerdRssMb, storageRoot } from "./lib/hub.mjs";
import { drive, interleaved, ratio, table, fmt, assertNoErrors } from "./lib/drive.mjs";
import { objectFile, prefillQueue, prefilledUser } from "./lib/prefill.mjs";

const seconds = envInt("BENCH_SECONDS", 3, { min: 1 });
const rounds = envInt("BENCH_ROUNDS", 3, { min: 1 });
const clients = envInt("BENCH_CLIENTS", 32, { min: 1 });
const driverList = (name, fallback) => {
  const list = (process.env[name] ?? fallback).split(",").map((d) => d.trim()).filter(Boolean);
  for (const d of list) if (!["stub", "http", "worker"].includes(d)) throw new Error(`unknown ${name} entry: ${d}`);
  return list;
};
const drivers = driverList("BENCH_DRIVERS", "stub,http,worker");
const settleMs = envInt("SETTLE_MS", 1_500);
const LABEL = { stub: "Node -> stub (Miniflare proxy)", http: "Node -> HTTP -> Worker -> object", worker: "Worker -> object (in workerd)" };

/**
 * One timed figure with one driver: `kind` ping | join | session, Node-driven through `target`
 * (stub or HTTP) or run inside workerd. Join ids are unique per `prefix`.
 */
function measure(hub, driver, target, event, kind, { prefix, users, maxOps, secs = seconds }) {
  if (driver === "worker") return hub.driveInside({ event, kind, seconds: secs, clients, prefix, users, maxOps });
  const step =
    kind === "ping"
      ? () => ping(target)
      : kind === "join"
        ? (c, n) => join(target, `${prefix}-${c}-${n}`)
        : (c, n) => rpc(target, { op: "session", userId: users[(c + n * clients) % users.length] });
  return drive({ seconds: secs, clients, step, maxOps });
}
/**
 * After a join figure: every join wrote a QUEUE_JOINED outbox row, which the object relays to a
 * queue whose consumer (in the same workerd) writes the event log to D1. Wait until the object's
 * outbox is empty, then SETTLE_MS more for the consumer, so that work is not billed to the next
 * figure.
 */
async function settle(hub, event, kind) {
  if (kind !== "join") return;
  const http = hub.http(event);
  const deadline = performance.now() + 30_000;
  while ((await rpc(http, { op: "status" })).outboxBacklog > 0 && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  await new Promise((r) => setTimeout(r, settleMs));
}
const targetOf = (hub, driver, event) => (driver === "stub" ? hub.hub(event).stub : driver === "http" ? hub.http(event) : undefined);
const parts = (process.env.WAITROOM_PARTS ?? "join,depth,ws").split(",").map((p) => p.trim()).filter(Boolean);
for (const p of parts) if (!["join", "depth", "ws"].includes(p)) throw new Error(`unknown WAITROOM_PARTS entry: ${p}`);

const header = (text) => console.log(`\n${text}`);
const join = (stub, userId) => rpc(stub, { op: "join", userId });

// ----- join: joins per second vs /ping ---------------------------------------------------------

async function partJoin() {
  const hub = await startHub();
  try {
    const EVENT = "bench-waitroom-join";
    const { stub } = hub.hub(EVENT);
    // Default waitroom settings: the first ticks admit up to 100 fans, then slots are full.
    await rpc(stub, eventSetup(EVENT, { waitroom: {} }));
    let warm = 0;
    for (const target of [stub, hub.http(EVENT)]) {
      for (let i = 0; i < 50; i++) await ping(target);
      for (let i = 0; i < 20; i++, warm++) await join(target, `warm-${warm}`);
    }

    const results = {};
    for (const driver of drivers) {
      const target = targetOf(hub, driver, EVENT);
      results[driver] = await interleaved(
        ["ping", "join"],
        rounds,
        (kind, r) => measure(hub, driver, target, EVENT, kind, { prefix: `${driver}${r}` }),
        (kind) => settle(hub, EVENT, kind),
      );
    }

    const status = await rpc(stub, { op: "status" });
    const joined = warm + drivers.reduce((n, d) => n + results[d].join.ops, 0);
    const inRoom = status.waitroom.queueLength + status.waitroom.admitted;

    const rows = [];
    for (const driver of drivers) {
      const r = results[driver];
      rows.push([LABEL[driver], "/ping (trivial round trip)", fmt(r.ping.reqPerSec), fmt(r.ping.p50, 1), fmt(r.ping.p99, 1), "1.00", "", fmt(r.ping.errors)]);
      const q = ratio(r.join, r.ping);
      rows.push([LABEL[driver], "join (new fan)", fmt(r.join.reqPerSec), fmt(r.join.p50, 1), fmt(r.join.p99, 1), q.text, q.range, fmt(r.join.errors)]);
    }
    header(`Waitroom joins: one EventHub object, ${clients} clients, ${rounds} x ${seconds} s per figure (interleaved), workerd via Miniflare on 127.0.0.1`);
    console.log(table([["driver", "l"], ["figure", "l"], ["req/s", "r"], ["p50 ms", "r"], ["p99 ms", "r"], ["ratio", "r"], ["per round", "r"], ["errors", "r"]], rows));
    const best = Math.max(...drivers.map((d) => results[d].join.reqPerSec));
    console.log(`ratio = joins/s over the same driver's /ping requests/s; per round = lowest-highest over the interleaved rounds`);
    console.log(`the waitroom now holds ${fmt(status.waitroom.queueLength)} queued + ${fmt(status.waitroom.admitted)} admitted = ${fmt(joined)} joins made`);
    console.log(`fill rate through joins: at best ${fmt(best)} joins/s -> a 1,000,000-deep queue would take ${fmt(1_000_000 / best / 60, 1)} min to fill this way`);

    for (const driver of drivers) for (const f of ["ping", "join"]) assertNoErrors(`${driver} ${f}`, results[driver][f]);
    if (inRoom !== joined) throw new Error(`the waitroom holds ${inRoom} sessions after ${joined} joins`);
  } finally {
    await hub.dispose();
  }
}

// ----- depth: join and position cost at a deep versus a shallow queue ---------------------------

const depthSmall = envInt("DEPTH_SMALL", 1_000, { min: 10 });
const depthLarge = envInt("DEPTH_LARGE", 1_000_000, { min: 10 });
const depthFill = process.env.DEPTH_FILL ?? "sqlite";
if (!["sqlite", "joins"].includes(depthFill)) throw new Error(`DEPTH_FILL must be sqlite or joins, got ${depthFill}`);
const depthJoins = envInt("DEPTH_JOINS", 2_000, { min: rounds });
const depthSample = envInt("DEPTH_SAMPLE", 1_000, { min: 1 });
const depthDepartures = envInt("DEPTH_DEPARTURES", 100);
const depthDrivers = driverList("DEPTH_DRIVERS", "worker");

/** Builds one queue per depth, on separate objects in the same workerd, and times them interleaved. */
async function measureDepths(depths) {
  const dir = mkdtempSync(joinPath(storageRoot(), "tb-bench-depth-"));
  let hub;
  try {
    hub = await startHub({ persistDir: dir });
    const rooms = depths.map((depth, k) => ({ depth, event: `bench-depth-${k}-${depth}` }));
    for (const room of rooms) {
      const { stub, id } = hub.hub(room.event);
      room.id = id;
      await rpc(stub, eventSetup(room.event, { waitroom: { maxConcurrentCheckouts: 0 } }));
    }
    // room.users(i) is the fan with seq i (queue order).
    if (depthFill === "sqlite") {
      await hub.dispose();
      hub = undefined;
      for (const room of rooms) {
        const t = performance.now();
        prefillQueue(objectFile(dir, room.id), room.depth);
        room.fillSeconds = (performance.now() - t) / 1000;
        room.users = prefilledUser;
      }
      hub = await startHub({ persistDir: dir, migrate: false });
    } else {
      for (const room of rooms) {
        const target = hub.http(room.event);
        const bySeq = new Array(room.depth);
        const t = performance.now();
        const r = await drive({
          seconds: 86_400,
          clients,
          maxOps: room.depth,
          step: async (c, n) => {
            const userId = `fill-${c}-${n}`;
            // No departures or admissions yet: a new fan's position is its place in seq order.
            bySeq[(await join(target, userId)).waitroomSession.position - 1] = userId;
          },
        });
        assertNoErrors(`fill ${room.depth} through joins`, r);
        room.fillSeconds = (performance.now() - t) / 1000;
        room.users = (i) => bySeq[i - 1];
      }
    }

    for (const room of rooms) {
      const { depth } = room;
      const http = hub.http(room.event);
      const status = await rpc(http, { op: "status" });
      if (status.waitroom.queueLength !== depth) throw new Error(`queue holds ${status.waitroom.queueLength}, expected ${depth}`);
      // Departures spread over the queue, then a sample of the others with their exact positions.
      const departed = new Set();
      const k = Math.min(depthDepartures, Math.floor(depth / 2));
      for (let j = 0; j < k; j++) departed.add(1 + Math.floor(((j + 0.5) * depth) / k));
      for (const i of departed) await rpc(http, { op: "leave", userId: room.users(i) });
      const sample = [];
      const want = Math.min(depthSample, depth - departed.size);
      const every = (depth - departed.size) / want;
      for (let i = 1, ahead = 0, seen = 0; i <= depth && sample.length < want; i++) {
        if (departed.has(i)) {
          ahead++;
          continue;
        }
        if (seen++ >= sample.length * every) sample.push({ userId: room.users(i), expected: i - ahead });
      }
      // Untimed: every sampled fan's position, checked exactly (also each one's first sighting).
      let next = 0;
      const checked = await drive({
        seconds: 600,
        clients,
        maxOps: sample.length,
        step: async () => {
          const s = sample[next++];
          const view = (await rpc(http, { op: "session", userId: s.userId })).waitroomSession;
          if (view?.status !== "QUEUED" || view.position !== s.expected) {
            throw new Error(`session of ${s.userId}: expected QUEUED at ${s.expected}, got ${JSON.stringify(view)}`);
          }
        },
      });
      assertNoErrors(`depth ${depth}: exact positions`, checked);
      for (let i = 0; i < 20; i++) await ping(http);
      room.departures = departed.size;
      room.sample = sample.map((s) => s.userId);
      room.results = {};
    }

    // Timed: ping, session, join on each queue in turn, round after round.
    const joinsPerRound = Math.ceil(depthJoins / rounds);
    const kinds = ["ping", "session", "join"];
    const names = rooms.flatMap((_, k) => kinds.map((kind) => `${kind}@${k}`));
    for (const driver of depthDrivers) {
      const roomOf = (name) => rooms[Number(name.split("@")[1])];
      const merged = await interleaved(
        names,
        rounds,
        (name, r) => {
          const room = roomOf(name);
          return measure(hub, driver, targetOf(hub, driver, room.event), room.event, name.split("@")[0], {
            prefix: `${driver}${r}`,
            users: room.sample,
            ...(name.startsWith("join@") ? { maxOps: joinsPerRound, secs: 120 } : {}),
          });
        },
        (name) => settle(hub, roomOf(name).event, name.split("@")[0]),
      );
      rooms.forEach((room, k) => {
        room.results[driver] = Object.fromEntries(kinds.map((kind) => [kind, merged[`${kind}@${k}`]]));
      });
    }
    for (const room of rooms) room.depthAfter = (await rpc(hub.http(room.event), { op: "status" })).waitroom.queueLength;
    return rooms;
  } finally {
    await hub?.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function partDepth() {
  const [small, large] = await measureDepths([depthSmall, depthLarge]);
  header(
    `Waitroom depth: queue of ${fmt(depthLarge)} versus ${fmt(depthSmall)} (filled by ${depthFill === "sqlite" ? "direct SQLite writes, see bench/lib/prefill.mjs" : "joins"}), one EventHub object per queue, ${clients} clients, ${rounds} rounds interleaved`,
  );
  const rows = [];
  for (const driver of depthDrivers) {
    for (const d of [small, large]) {
      const { ping: p, session: s, join: j } = d.results[driver];
      rows.push([
        LABEL[driver],
        fmt(d.depth),
        fmt(p.reqPerSec),
        fmt(s.reqPerSec),
        `${fmt(1000 / s.reqPerSec, 2)} ms`,
        fmt(j.reqPerSec),
        `${fmt(1000 / j.reqPerSec, 2)} ms`,
        `${fmt(d.depth - d.departures)} -> ${fmt(d.depthAfter)}`,
      ]);
    }
  }
  console.log(
    table(
      [["driver", "l"], ["depth", "r"], ["ping/s", "r"], ["session/s", "r"], ["per session", "r"], ["join/s", "r"], ["per join", "r"], ["queue during run", "r"]],
      rows,
    ),
  );
  for (const driver of depthDrivers) {
    const L = large.results[driver];
    const S = small.results[driver];
    const raw = (f) => {
      const q = ratio(L[f], S[f]);
      return q.range ? `${q.text} (rounds ${q.range})` : q.text;
    };
    const norm = (f) => (L[f].reqPerSec / L.ping.reqPerSec / (S[f].reqPerSec / S.ping.reqPerSec)).toFixed(2);
    console.log(
      `${LABEL[driver]}: throughput ratio ${fmt(depthLarge)}/${fmt(depthSmall)} (1.00 = depth costs nothing): session ${raw("session")}, join ${raw("join")}; normalised by each run's /ping: session ${norm("session")}, join ${norm("join")} (/ping itself: ${raw("ping")})`,
    );
  }
  console.log(
    `per op = 1 / throughput of the one object, i.e. its serial cost per call; both queues live on their own object in the same workerd and are timed in turn; fill of ${fmt(depthSmall)} / ${fmt(depthLarge)}: ${fmt(small.fillSeconds, 1)} s / ${fmt(large.fillSeconds, 1)} s`,
  );
  console.log(
    `before timing: ${small.departures} / ${large.departures} fans left (spread over the queue); all ${fmt(small.sample.length)} / ${fmt(large.sample.length)} sampled fans' positions checked exactly; ${fmt(depthJoins)} joins timed per depth and driver`,
  );
  if (depthFill === "sqlite") {
    const rate = Math.max(...depthDrivers.map((d) => small.results[d].join.reqPerSec));
    console.log(
      `why the prefill: at the join rate measured here on the small queue (${fmt(rate)} joins/s), filling ${fmt(depthLarge)} through joins would take ${fmt(depthLarge / rate / 60, 1)} min; the SQLite prefill took ${fmt(large.fillSeconds, 1)} s`,
    );
  }
  for (const d of [small, large]) for (const driver of depthDrivers) for (const f of ["ping", "session", "join"]) assertNoErrors(`depth ${d.depth} ${driver} ${f}`, d.results[driver][f]);
}

// ----- ws: one admission tick with many hibernating sockets -----------------------------------

const wsCount = envInt("WS_COUNT", 2_000, { min: 2 });
const wsAdmit = envInt("WS_ADMIT", 100, { min: 1 });
const wsOpenConcurrency = envInt("WS_OPEN_CONCURRENCY", 50, { min: 1 });
const wsTimeout = envInt("WS_TIMEOUT_SECONDS", 60, { min: 1 });

function openSocket(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const sock = { ws, messages: [], waiters: [] };
    const timer = setTimeout(() => reject(new Error(`socket ${url}: no first message within 30 s`)), 30_000);
    ws.addEventListener("message", (event) => {
      const at = performance.now();
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        data = { type: "unparsable", raw: String(event.data) };
      }
      sock.messages.push({ at, data });
      if (sock.messages.length === 1) {
        clearTimeout(timer);
        resolve(sock);
      }
    });
    ws.addEventListener("error", () => {
      clearTimeout(timer);
      reject(new Error(`socket ${url}: error`));
    });
    ws.addEventListener("close", (e) => {
      if (sock.messages.length === 0) {
        clearTimeout(timer);
        reject(new Error(`socket ${url}: closed ${e.code} before any message`));
      }
    });
  });
}

/** Waits until every socket in `expect` has a message after index `from[i]`; returns arrival times. */
async function awaitDelivery(socks, from, t0) {
  const deadline = performance.now() + wsTimeout * 1000;
  for (;;) {
    const missing = socks.filter((s, i) => s.messages.length <= from[i]).length;
    if (missing === 0) break;
    if (performance.now() > deadline) return { missing, times: [] };
    await new Promise((r) => setTimeout(r, 5));
  }
  const times = socks.map((s, i) => s.messages[from[i]].at - t0).sort((a, b) => a - b);
  return { missing: 0, times };
}

/** The soft limit on open files, which workerd inherits (it holds about two per socket). */
function openFilesLimit() {
  try {
    const line = readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith("Max open files"));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(soft) ? soft : undefined;
  } catch {
    return undefined;
  }
}

/** Refuses, before anything runs, a socket count this machine's open-file limit cannot hold. */
function checkWsLimit() {
  const limit = openFilesLimit();
  if (limit && wsCount * 2 + 1_000 > limit) {
    throw new Error(
      `WS_COUNT=${wsCount} needs about ${fmt(wsCount * 2 + 1_000)} open files in workerd (two per socket), but the limit here is ${fmt(limit)}: raise it (ulimit -n) or lower WS_COUNT to ${fmt(Math.floor((limit - 1_000) / 2))} or fewer`,
    );
  }
}

async function partWs() {
  const hub = await startHub();
  const socks = [];
  try {
    const EVENT = "bench-waitroom-ws";
    const { stub } = hub.hub(EVENT);
    await rpc(stub, eventSetup(EVENT, { waitroom: { maxConcurrentCheckouts: 0, admissionBatch: wsAdmit } }));
    const rssBefore = workerdRssMb();

    // Join (admission paused), then open one socket per fan; each gets its position on connect.
    let next = 0;
    const users = Array.from({ length: wsCount }, (_, k) => `ws-${k}`);
    let t = performance.now();
    const http = hub.http(EVENT);
    const filled = await drive({ seconds: 600, clients, maxOps: wsCount, step: () => join(http, users[next++]) });
    assertNoErrors("ws joins", filled);
    const joinSeconds = (performance.now() - t) / 1000;

    t = performance.now();
    let opened = 0;
    await Promise.all(
      Array.from({ length: Math.min(wsOpenConcurrency, wsCount) }, async () => {
        while (opened < users.length) {
          const userId = users[opened++];
          const url = `${hub.url.replace(/^http/, "ws")}/ws?event=${encodeURIComponent(EVENT)}&user=${encodeURIComponent(userId)}`;
          const sock = await openSocket(url);
          sock.userId = userId;
          socks.push(sock);
        }
      }),
    );
    const openSeconds = (performance.now() - t) / 1000;
    const rssOpen = workerdRssMb();
    const status = await rpc(stub, { op: "status" });
    if (status.connectedSockets !== wsCount) throw new Error(`object reports ${status.connectedSockets} sockets, expected ${wsCount}`);
    const positionOf = (sock) => {
      const last = sock.messages[sock.messages.length - 1].data;
      if (last.type !== "position" || !Number.isInteger(last.position)) throw new Error(`${sock.userId}: expected a position, got ${JSON.stringify(last)}`);
      return last.position;
    };
    const before = new Map(socks.map((s) => [s, positionOf(s)]));
    const positions = [...before.values()].sort((a, b) => a - b);
    if (positions[0] !== 1 || positions[positions.length - 1] !== wsCount) {
      throw new Error(`positions on connect span ${positions[0]}..${positions[positions.length - 1]}, expected 1..${wsCount}`);
    }

    // Trigger 1: open the checkout slots; the alarm's admission tick moves the head.
    const admitted = Math.min(wsAdmit, wsCount - 1);
    let from = socks.map((s) => s.messages.length);
    let t0 = performance.now();
    await rpc(stub, eventSetup(EVENT, { waitroom: { maxConcurrentCheckouts: admitted, admissionBatch: admitted } }));
    const syncMs = performance.now() - t0;
    const tick = await awaitDelivery(socks, from, t0);
    if (tick.missing) throw new Error(`admission tick: ${tick.missing} of ${wsCount} sockets got no message within ${wsTimeout} s`);
    let wrong = 0;
    let gotAdmitted = 0;
    for (const [i, s] of socks.entries()) {
      const m = s.messages[from[i]].data;
      const old = before.get(s);
      if (old <= admitted) {
        if (m.type === "admitted" && typeof m.checkoutToken === "string") gotAdmitted++;
        else wrong++;
      } else if (m.type !== "position" || m.position !== old - admitted) wrong++;
    }
    if (wrong || gotAdmitted !== admitted) throw new Error(`admission tick: ${wrong} wrong messages, ${gotAdmitted} admitted of ${admitted}`);

    // Trigger 2: the fan at the head leaves (after the 500 ms position-push coalescing window).
    await new Promise((r) => setTimeout(r, 700));
    const queued = socks.filter((s) => before.get(s) > admitted);
    const head = queued.find((s) => before.get(s) === admitted + 1);
    const others = queued.filter((s) => s !== head);
    const mid = new Map(others.map((s) => [s, positionOf(s)]));
    from = others.map((s) => s.messages.length);
    t0 = performance.now();
    await rpc(stub, { op: "leave", userId: head.userId });
    const leave = await awaitDelivery(others, from, t0);
    if (leave.missing) throw new Error(`head leave: ${leave.missing} of ${others.length} sockets got no message within ${wsTimeout} s`);
    const wrongLeave = others.filter((s, i) => {
      const m = s.messages[from[i]].data;
      return m.type !== "position" || m.position !== mid.get(s) - 1;
    }).length;
    if (wrongLeave) throw new Error(`head leave: ${wrongLeave} sockets got a wrong position`);

    header(`Waitroom sockets: ${fmt(wsCount)} hibernating WebSockets on one EventHub object (Node ws clients -> gate Worker -> object /ws), workerd via Miniflare on 127.0.0.1`);
    const pct = (times, p) => times[Math.min(times.length - 1, Math.floor(p * times.length))];
    console.log(
      table(
        [["step", "l"], ["sockets", "r"], ["first ms", "r"], ["p50 ms", "r"], ["p99 ms", "r"], ["all ms", "r"]],
        [
          [`admission tick (sync opens ${admitted} slots -> alarm -> ${admitted} admitted + positions)`, fmt(tick.times.length), fmt(tick.times[0], 0), fmt(pct(tick.times, 0.5), 0), fmt(pct(tick.times, 0.99), 0), fmt(tick.times[tick.times.length - 1], 0)],
          ["head fan leaves (one leave -> positions)", fmt(leave.times.length), fmt(leave.times[0], 0), fmt(pct(leave.times, 0.5), 0), fmt(pct(leave.times, 0.99), 0), fmt(leave.times[leave.times.length - 1], 0)],
        ],
      ),
    );
    console.log(`times from sending the request (sync reply after ${fmt(syncMs, 0)} ms) until each socket's message arrived in Node; every message checked (type, position moved by exactly ${admitted} / 1)`);
    console.log(
      `setup: ${fmt(wsCount)} joins in ${fmt(joinSeconds, 1)} s (${fmt(wsCount / joinSeconds)}/s); ${fmt(wsCount)} sockets opened in ${fmt(openSeconds, 1)} s (${wsOpenConcurrency} at a time); workerd RSS ${fmt(rssBefore)} MB -> ${fmt(rssOpen)} MB with the sockets open`,
    );
  } finally {
    for (const s of socks) s.ws.close();
    await hub.dispose();
  }
}

// ----- main -----------------------------------------------------------------------------------

if (parts.includes("ws")) checkWsLimit();
if (parts.includes("join")) await partJoin();
if (parts.includes("depth")) await partDepth();
if (parts.includes("ws")) await partWs();
