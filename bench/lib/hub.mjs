// The event object (`EventHub`) under load: workerd through Miniflare on 127.0.0.1 running the
// app as wrangler.toml describes it, plus a small bench-only JS Worker ("bench-gate") bound to the
// same `EventHub` namespace. The gate exists only in this harness, never in the deployed Worker:
// - `GET /ws?event=E&user=U` forwards a WebSocket upgrade to the object's `/ws` with
//   `X-Hub-User-Id: U`, exactly as the app's authenticated route does after checking the token
//   (a Durable Object stub reached from Node cannot return a WebSocket);
// - `POST /hub/rpc?event=E` and `POST /hub/ping?event=E` forward to the object's `/rpc` and
//   `/ping`: the object behind one plain HTTP hop (Node HTTP client → Worker → object);
// - `POST /shard/rpc?event=E&shard=K` and `POST /shard/ping?event=E&shard=K` do the same for
//   queue shard K of event E (`QUEUE_SHARD.idFromName("E:K")`, as the app names it);
// - `/app/<path>` goes to the app itself (a service binding), e.g. the counting wrapper's
//   `/__bench/counts`;
// - `POST /drive` runs a closed load loop inside workerd (Worker → object, no Node in between)
//   and returns counts, as the in-runtime companion of the Node-driven figures.
// `countingModules()` (below) is a second bench-only piece: the app's own module behind a thin
// wrapper that counts its D1 statements and the requests reaching its objects.
import { readFileSync, readdirSync, mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import http from "node:http";
import { createHash, createHmac } from "node:crypto";
import { join, relative } from "node:path";
import { Miniflare, convertV4MiniflareOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { splitSql } from "./runtime.mjs";

const ROOT = new URL("../..", import.meta.url).pathname;
export const HUB_ORIGIN = "https://event-hub";
/** Only used when neither .dev.vars nor the environment provides one (the object needs a secret). */
const BENCH_JWT_SECRET = "bench-only-jwt-secret-0123456789abcdef";

const quiet = { handleRuntimeStdio: (out, err) => { out.resume(); err.resume(); } };

const GATE = `
const origin = "${HUB_ORIGIN}";
function hub(env, event) { return env.EVENT_HUB.get(env.EVENT_HUB.idFromName(event)); }
function shard(env, event, k) { return env.QUEUE_SHARD.get(env.QUEUE_SHARD.idFromName(event + ":" + k)); }
// A join as the app's Worker sends it to the fan's shard (src/api/waitroom.rs): a fresh session
// id, the edge's stamp (its clock and a random tie-break), and the sale settings of that shard,
// given as JSON text so that the u64 shuffle seed keeps every digit.
function shardJoin(userId, settingsJson) {
  const tieBreak = Math.floor(Math.random() * 9007199254740991);
  return '{"op":"join","userId":' + JSON.stringify(userId) + ',"sessionId":"' + crypto.randomUUID() +
    '","stamp":{"atMs":' + Date.now() + ',"tieBreak":' + tieBreak + '},"settings":' + settingsJson + '}';
}
async function call(stub, path, body) {
  const res = await stub.fetch(origin + path, { method: "POST", body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(path + " " + res.status + " " + text.slice(0, 200));
  return text;
}
async function drive(env, spec) {
  const stub = hub(env, spec.event);
  // Shard kinds: "shard-ping" pings shard spec.shard (without it: each of spec.shardCount
  // shards in turn); "shard-join" joins spec.users[i] (each once, in order over all clients)
  // into shard spec.shards[i] (or spec.shard), spec.settings[k] being shard k's settings JSON.
  const shardStubs = new Map();
  const shardStub = (k) => { if (!shardStubs.has(k)) shardStubs.set(k, shard(env, spec.event, k)); return shardStubs.get(k); };
  const deadline = Date.now() + spec.seconds * 1000;
  let ops = 0, requests = 0, errors = 0, firstError;
  const t0 = Date.now();
  const maxOps = Math.min(spec.maxOps ?? Infinity, spec.kind === "shard-join" ? spec.users.length : Infinity);
  let started = 0;
  async function loop(client) {
    for (let n = 0; Date.now() < deadline && started < maxOps; n++) {
      const i = started++;
      const id = spec.prefix + "-" + client + "-" + n;
      try {
        if (spec.kind === "ping") { await call(stub, "/ping"); requests += 1; }
        else if (spec.kind === "shard-ping") { await call(shardStub(spec.shard ?? i % spec.shardCount), "/ping"); requests += 1; }
        else if (spec.kind === "shard-join") {
          const k = spec.shards ? spec.shards[i] : spec.shard;
          await call(shardStub(k), "/rpc", shardJoin(spec.users[i], spec.settings[k]));
          requests += 1;
        } else if (spec.kind === "ledger") {
          await call(stub, "/rpc", { op: "reserve", orderId: id, userId: "u-" + id, items: [{ ticketClassId: spec.classId, quantity: spec.quantity }] });
          await call(stub, "/rpc", { op: "release", orderId: id });
          requests += 2;
        } else if (spec.kind === "availability") { await call(stub, "/rpc", { op: "availability" }); requests += 1; }
        else if (spec.kind === "join") { await call(stub, "/rpc", { op: "join", userId: id }); requests += 1; }
        else if (spec.kind === "session") {
          await call(stub, "/rpc", { op: "session", userId: spec.users[(client + n * spec.clients) % spec.users.length] });
          requests += 1;
        } else throw new Error("unknown kind " + spec.kind);
        ops += 1;
      } catch (e) {
        errors += 1; firstError ??= String(e && e.message || e);
        if (errors > 100 && errors > ops) break;
      }
    }
  }
  await Promise.all(Array.from({ length: spec.clients }, (_, i) => loop(i)));
  return { ops, requests, elapsed: (Date.now() - t0) / 1000, errors, firstError };
}
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/ws") {
      const event = url.searchParams.get("event"), user = url.searchParams.get("user");
      if (!event || !user) return new Response("event and user required", { status: 400 });
      return hub(env, event).fetch(origin + "/ws", { headers: { Upgrade: "websocket", "X-Hub-User-Id": user } });
    }
    if ((url.pathname === "/hub/rpc" || url.pathname === "/hub/ping") && request.method === "POST") {
      const event = url.searchParams.get("event");
      if (!event) return new Response("event required", { status: 400 });
      return hub(env, event).fetch(origin + url.pathname.slice(4), { method: "POST", body: request.body });
    }
    if ((url.pathname === "/shard/rpc" || url.pathname === "/shard/ping") && request.method === "POST") {
      const event = url.searchParams.get("event"), k = url.searchParams.get("shard");
      if (!event || !/^[0-9]+$/.test(k ?? "")) return new Response("event and shard required", { status: 400 });
      return shard(env, event, k).fetch(origin + url.pathname.slice(6), { method: "POST", body: request.body });
    }
    if (url.pathname.startsWith("/app/")) {
      return env.APP.fetch(new Request("https://app" + url.pathname.slice(4) + url.search, request));
    }
    if (url.pathname === "/drive" && request.method === "POST") {
      return Response.json(await drive(env, await request.json()));
    }
    return new Response("not found", { status: 404 });
  },
};
`;

// The app's module behind a counting wrapper (bench-only, never deployed; see countingModules):
// every D1 statement the app runs (by its SQL, with a batch as one round trip), and every
// request and alarm reaching its EventHub and QueueShard objects (by path and op), and the
// critical errors it logs (Rust panics). The objects run in the app's isolate, so one
// module-level tally sees them all; `GET /__bench/counts` reads it and `POST /__bench/counts`
// reads and clears it.
const COUNTING_WRAPPER = (appModule) => `
import App, { EventHub as AppEventHub, QueueShard as AppQueueShard } from "./${appModule}";
export * from "./${appModule}";
const fresh = () => ({ d1: {}, d1Statements: 0, objects: {}, critical: 0, firstCritical: null });
let tally = fresh();
const bump = (table, key, n = 1) => { table[key] = (table[key] ?? 0) + n; };
// A Rust panic reaches the console as a critical error (then the wasm instance is rebuilt).
const consoleError = console.error.bind(console);
console.error = (...args) => {
  const text = args.map(String).join(" ");
  if (/panicked at|^Critical|RuntimeError: unreachable/.test(text)) {
    tally.critical += 1;
    tally.firstCritical ??= text.split("\\n").slice(0, 2).join(" / ");
  }
  consoleError(...args);
};
const sqlKey = (sql) => sql.replace(/\\s+/g, " ").trim();
// The class names are the runtime's own: workers-rs accepts a D1 binding by its constructor name.
class D1PreparedStatement {
  constructor(inner, sql) { this.inner = inner; this.sql = sql; }
  bind(...values) { return new D1PreparedStatement(this.inner.bind(...values), this.sql); }
  note() { bump(tally.d1, sqlKey(this.sql)); tally.d1Statements += 1; }
  first(column) { this.note(); return this.inner.first(column); }
  all() { this.note(); return this.inner.all(); }
  run() { this.note(); return this.inner.run(); }
  raw(options) { this.note(); return this.inner.raw(options); }
}
class D1Database {
  constructor(inner) { this.inner = inner; }
  prepare(sql) { return new D1PreparedStatement(this.inner.prepare(sql), sql); }
  batch(statements) {
    bump(tally.d1, "batch: " + statements.map((s) => sqlKey(s.sql)).join(" | "));
    tally.d1Statements += statements.length;
    return this.inner.batch(statements.map((s) => s.inner));
  }
  exec(sql) { bump(tally.d1, "exec: " + sqlKey(sql)); tally.d1Statements += 1; return this.inner.exec(sql); }
  dump() { return this.inner.dump(); }
}
const counted = (env) => {
  const db = env.DB ? new D1Database(env.DB) : undefined;
  return new Proxy(env, { get: (target, key) => (key === "DB" ? db : Reflect.get(target, key)) });
};
function noteObject(kind, request) {
  const path = new URL(request.url).pathname;
  if (path !== "/rpc") { bump(tally.objects, kind + " " + path); return Promise.resolve(); }
  return request.clone().text().then((body) => {
    const op = /"op"\\s*:\\s*"([A-Za-z]+)"/.exec(body)?.[1] ?? "?";
    const type = op === "admission" ? ":" + (/"type"\\s*:\\s*"([A-Za-z]+)"/.exec(body)?.[1] ?? "?") : "";
    bump(tally.objects, kind + " rpc " + op + type);
  });
}
export default class CountingApp extends App {
  constructor(ctx, env) { super(ctx, counted(env)); }
  fetch(request) {
    if (new URL(request.url).pathname === "/__bench/counts") {
      const body = Response.json(tally);
      if (request.method === "POST") tally = fresh();
      return body;
    }
    return super.fetch(request);
  }
}
export class EventHub extends AppEventHub {
  fetch(request) { return noteObject("hub", request).then(() => super.fetch(request)); }
  alarm() { bump(tally.objects, "hub alarm"); return super.alarm(); }
}
export class QueueShard extends AppQueueShard {
  fetch(request) { return noteObject("shard", request).then(() => super.fetch(request)); }
  alarm() { bump(tally.objects, "shard alarm"); return super.alarm(); }
}
`;

/**
 * The app's modules for Miniflare with the counting wrapper as the main module (for
 * `startApp({ modules })`): the Worker, its queue consumers and its objects are the app's own,
 * reached through the wrapper's subclasses. `GET {url}/__bench/counts` answers the tally.
 */
export function countingModules() {
  const { main } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"));
  const build = join(ROOT, "build");
  const appModule = relative(build, main);
  return [
    { type: "ESModule", path: join(build, "bench-counting.mjs"), contents: COUNTING_WRAPPER(appModule) },
    { type: "ESModule", path: main },
    { type: "CompiledWasm", path: join(build, "index_bg.wasm") },
  ];
}

/**
 * Starts the app and the gate. `persistDir`: keep storage (D1, the objects' SQLite files) in
 * that directory across restarts (`migrate: false` on a restart); without it, a fresh directory
 * under `storageRoot()` is used and removed on dispose. `inspectorPort`: open workerd's
 * DevTools inspector there (bench/profile.mjs). `count`: run the app behind the counting
 * wrapper (`countingModules`); the gate forwards `/app/<path>` to the app, so
 * `counts()` reads (and with `reset`, clears) its tally.
 */
export async function startHub({ persistDir, migrate = true, storage = benchStorage(), inspectorPort, count = false } = {}) {
  let ownDir;
  if (!persistDir) persistDir = ownDir = mkdtempSync(join(storageRoot(storage), "tb-bench-"));
  const { workerOptions, main } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"));
  const { modulesRules: _rules, rootPath: _root, ...options } = workerOptions;
  const build = join(ROOT, "build");
  const bindings = { ...(options.bindings ?? {}) };
  bindings.JWT_SECRET ??= jwtSecret();
  const app = {
    ...options,
    name: "ticketbottle-edge",
    modulesRoot: build,
    modules: count
      ? countingModules()
      : [
          { type: "ESModule", path: main },
          { type: "CompiledWasm", path: join(build, "index_bg.wasm") },
        ],
    // As in runtime.mjs: no rate-limiting bindings (the Worker skips an absent limiter).
    ratelimits: {},
    bindings,
  };
  const gate = {
    name: "bench-gate",
    modules: true,
    script: GATE,
    compatibilityDate: "2026-11-01",
    durableObjects: {
      EVENT_HUB: { className: "EventHub", scriptName: "ticketbottle-edge" },
      QUEUE_SHARD: { className: "QueueShard", scriptName: "ticketbottle-edge" },
    },
    serviceBindings: { APP: "ticketbottle-edge" },
  };
  const verbose = process.env.BENCH_VERBOSE === "1";
  // The runtime's log lines, printed as Miniflare prints them by default, and its critical
  // errors counted (a Rust panic, after which the wasm instance is rebuilt and every object in
  // the isolate loses what it held in memory): a scenario fails on them even when no request
  // it made failed, e.g. a panic inside an object's alarm.
  const critical = { count: 0, first: undefined };
  const handleStructuredLogs = ({ level, message }) => {
    if (/panicked at|^Critical|RuntimeError: unreachable/.test(message)) {
      critical.count += 1;
      critical.first ??= message.split("\n").slice(0, 2).join(" / ");
    }
    if (level === "error" || level === "warn") console.error(message);
    else console.log(message);
  };
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: "127.0.0.1",
      port: 0,
      handleStructuredLogs,
      ...(verbose ? {} : quiet),
      resourcePersistencePath: persistDir,
      ...(inspectorPort === undefined ? {} : { inspectorPort }),
      // The gate is first, so the listening URL reaches it; the app keeps its own bindings.
      workers: [gate, app],
    }),
  );
  const url = (await mf.ready).href.replace(/\/$/, "");
  if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(url)) throw new Error(`refusing a non-loopback runtime: ${url}`);
  if (migrate) {
    const db = await mf.getD1Database("DB", "ticketbottle-edge");
    const dir = join(ROOT, "migrations");
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
      for (const statement of splitSql(readFileSync(join(dir, file), "utf8"))) await db.prepare(statement).run();
    }
  }
  const namespace = await mf.getDurableObjectNamespace("EVENT_HUB", "bench-gate");
  return {
    mf,
    url,
    namespace,
    /** The object of one event, as the app reaches it (`idFromName(eventId)`). */
    hub(eventId) {
      const id = namespace.idFromName(eventId);
      return { id: id.toString(), stub: namespace.get(id) };
    },
    /**
     * The object behind the gate's plain HTTP hop, shaped like a stub (`fetch(url, init)` with
     * `https://event-hub/<path>` URLs), so `rpc()` and `ping()` take either.
     */
    http(eventId) {
      const q = `?event=${encodeURIComponent(eventId)}`;
      return {
        fetch: (target, init = {}) => post(`${url}/hub${new URL(target).pathname}${q}`, init.body),
      };
    },
    /** Queue shard `shard` of an event behind the gate's plain HTTP hop, shaped like `http()`. */
    shardHttp(eventId, shard) {
      const q = `?event=${encodeURIComponent(eventId)}&shard=${shard}`;
      return {
        fetch: (target, init = {}) => post(`${url}/shard${new URL(target).pathname}${q}`, init.body),
      };
    },
    /** The counting wrapper's tally (only with `count`); `reset` clears it after reading. */
    async counts({ reset = false } = {}) {
      const res = await fetch(`${url}/app/__bench/counts`, { method: reset ? "POST" : "GET" });
      if (!res.ok) throw new Error(`counts: ${res.status} ${await res.text()}`);
      return res.json();
    },
    /** The app's D1 database through Miniflare's proxy (blocks Node: not while load runs). */
    d1: () => mf.getD1Database("DB", "ticketbottle-edge"),
    /** Runs a closed loop inside workerd (see the file header). */
    async driveInside(spec) {
      const res = await fetch(`${url}/drive`, { method: "POST", body: JSON.stringify(spec) });
      if (!res.ok) throw new Error(`/drive ${res.status}: ${await res.text()}`);
      const r = await res.json();
      return {
        ...r,
        opsPerSec: r.ops / r.elapsed,
        reqPerSec: r.requests / r.elapsed,
        p50: NaN,
        p99: NaN,
        mean: NaN,
        firstError: r.firstError ? new Error(r.firstError) : undefined,
      };
    },
    storage,
    /** Critical errors the runtime logged so far (Rust panics): `{count, first}`. */
    critical: () => ({ ...critical }),
    /** The JWT secret the app runs with (checkout tokens, the pre-queue's shuffle seed). */
    jwtSecret: bindings.JWT_SECRET,
    async dispose() {
      await mf.dispose();
      if (ownDir) rmSync(ownDir, { recursive: true, force: true });
    },
  };
}

/**
 * Where the objects' SQLite files live (BENCH_STORAGE): `shm` (default) a directory in /dev/shm,
 * so a commit costs no disk flush and other tenants' disk traffic does not swing the figures;
 * `disk` the OS temp directory (Miniflare's own default: every commit waits for the disk, and
 * on a shared machine that wait dominates and swings every figure that writes). workerd's
 * in-memory objects have no SQLite, so they cannot run EventHub.
 */
export function benchStorage() {
  const storage = process.env.BENCH_STORAGE ?? "shm";
  if (!["shm", "disk"].includes(storage)) throw new Error(`BENCH_STORAGE must be shm or disk, got ${storage}`);
  return storage;
}

/** A directory for storage files of the given kind (falls back to the temp dir without /dev/shm). */
export function storageRoot(storage = benchStorage()) {
  return storage === "shm" && existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
}

// node:http with keep-alive: much cheaper per request than `fetch`, and Node shares the two
// cores with workerd, so the client's own cost would otherwise cap the figures.
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
function post(target, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(target, { method: "POST", agent }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        const status = res.statusCode ?? 0;
        resolve({ ok: status >= 200 && status < 300, status, text: async () => text });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body ?? undefined);
  });
}

/** The JWT secret the bench gives the app (the environment, else .dev.vars, else a bench-only one). */
export function jwtSecret() {
  return process.env.JWT_SECRET ?? devVar("JWT_SECRET") ?? BENCH_JWT_SECRET;
}

function devVar(name) {
  try {
    const line = readFileSync(join(ROOT, ".dev.vars"), "utf8")
      .split("\n")
      .find((l) => l.startsWith(`${name}=`));
    return line?.slice(name.length + 1).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Thrown for a non-2xx reply of the object, with its `{status, code, detail}`. */
export class HubError extends Error {
  constructor(op, status, body) {
    super(`${op}: ${status} ${body?.code ?? ""} ${body?.detail ?? ""}`.trim());
    this.status = status;
    this.code = body?.code;
  }
}

/** One protocol call (`POST https://event-hub/rpc`), parsed; throws HubError on non-2xx. */
export async function rpc(stub, body) {
  const res = await stub.fetch(`${HUB_ORIGIN}/rpc`, { method: "POST", body: JSON.stringify(body) });
  const text = await res.text();
  let parsed;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = { detail: text.slice(0, 200) };
  }
  if (!res.ok) throw new HubError(body.op, res.status, parsed);
  return parsed;
}

/** The trivial round trip: `/ping` writes one counter row in the object's SQLite. */
export async function ping(stub) {
  const res = await stub.fetch(`${HUB_ORIGIN}/ping`, { method: "POST" });
  const text = await res.text();
  if (!res.ok) throw new Error(`ping: ${res.status} ${text.slice(0, 200)}`);
}

/**
 * A PUBLISHED event whose sale opened an hour ago and ends in a day (or the given window),
 * optionally with a waitroom. `waitroom`: `{maxConcurrentCheckouts, checkoutTtlSeconds,
 * admissionBatch, idleTimeoutSeconds}` (0 slots pauses admission); `shards`: queue shards
 * (`EventSetup.shards`, 1 when absent).
 */
export function eventSetup(eventId, { waitroom, maxTicketsPerUser, shards, saleStartsAtMs, saleEndsAtMs } = {}) {
  const now = Date.now();
  return {
    op: "syncEvent",
    eventId,
    status: "PUBLISHED",
    saleStartsAtMs: saleStartsAtMs ?? now - 3_600_000,
    saleEndsAtMs: saleEndsAtMs ?? now + 86_400_000,
    ...(maxTicketsPerUser ? { maxTicketsPerUser } : {}),
    allowWaitRoom: Boolean(waitroom),
    ...(waitroom ? { waitroom: { maxConcurrentCheckouts: 100, checkoutTtlSeconds: 900, admissionBatch: 100, ...waitroom } } : {}),
    ...(shards ? { shards } : {}),
  };
}

// ----- queue shards (src/domain/admission/place.rs, src/durable/shard_protocol.rs) -------------

/**
 * The shard of a user, as `shard_of` computes it: jump consistent hashing over the first 8
 * bytes (big-endian) of SHA-256 of the user id. The f64 steps are the Rust code's, operation
 * for operation, so the answers agree exactly; shards refuse a join meant for another shard
 * (409), which is how bench/shards.mjs checks this copy against the app before it relies on it.
 */
export function shardOf(userId, count) {
  let key = createHash("sha256").update(userId, "utf8").digest().readBigUInt64BE(0);
  let bucket = -1;
  let next = 0;
  while (next < count) {
    bucket = next;
    key = (key * 2862933555777941757n + 1n) & 0xffffffffffffffffn;
    const step = 2147483648 / (Number(key >> 33n) + 1);
    next = Math.trunc((bucket + 1) * step);
  }
  return Math.max(bucket, 0);
}

/** The event's pre-queue shuffle seed (`durable::protocol::shuffle_seed`), as a decimal u64. */
export function shuffleSeed(secret, eventId) {
  return createHmac("sha256", secret).update(`prequeue:${eventId}`).digest().readBigUInt64BE(0).toString();
}

/**
 * The JSON text of shard `shard`'s settings (`ShardSettings`) as the app's Worker sends them
 * with a join: the seed is written as digits, not as a JS number, so it stays exact.
 */
export function shardSettingsJson(eventId, shard, shards, { secret, saleStartsAtMs, saleEndsAtMs, idleTimeoutSeconds = 600 }) {
  return (
    `{"eventId":${JSON.stringify(eventId)},"shard":${shard},"shards":${shards},"shuffleSeed":${shuffleSeed(secret, eventId)},` +
    `"saleStartsAt":${saleStartsAtMs},"saleEndsAt":${saleEndsAtMs},"cancelled":false,"idleTimeoutSeconds":${idleTimeoutSeconds}}`
  );
}

/** Integer env var with a default, refusing nonsense. */
export function envInt(name, fallback, { min = 0 } = {}) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw.replace(/_/g, ""));
  if (!Number.isFinite(value) || value < min) throw new Error(`${name} must be a number >= ${min}, got ${raw}`);
  return Math.floor(value);
}

/** Resident memory (MB) of the workerd processes this Node process started, if readable. */
export function workerdRssMb() {
  try {
    let total = 0;
    for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      let stat;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      } catch {
        continue;
      }
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (comm === "workerd" && ppid === process.pid) {
        const rss = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/);
        if (rss) total += Number(rss[1]) / 1024;
      }
    }
    return total || undefined;
  } catch {
    return undefined;
  }
}
