// The event object (`EventHub`) under load: workerd through Miniflare on 127.0.0.1 running the
// app as wrangler.toml describes it, plus a small bench-only JS Worker ("bench-gate") bound to the
// same `EventHub` namespace. The gate exists only in this harness, never in the deployed Worker:
// - `GET /ws?event=E&user=U` forwards a WebSocket upgrade to the object's `/ws` with
//   `X-Hub-User-Id: U`, exactly as the app's authenticated route does after checking the token
//   (a Durable Object stub reached from Node cannot return a WebSocket);
// - `POST /hub/rpc?event=E` and `POST /hub/ping?event=E` forward to the object's `/rpc` and
//   `/ping`: the object behind one plain HTTP hop (Node HTTP client → Worker → object);
// - `POST /drive` runs a closed load loop inside workerd (Worker → object, no Node in between)
//   and returns counts, as the in-runtime companion of the Node-driven figures.
import { readFileSync, readdirSync, mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import http from "node:http";
import { join } from "node:path";
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
async function call(stub, path, body) {
  const res = await stub.fetch(origin + path, { method: "POST", body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(path + " " + res.status + " " + text.slice(0, 200));
  return text;
}
async function drive(env, spec) {
  const stub = hub(env, spec.event);
  const deadline = Date.now() + spec.seconds * 1000;
  let ops = 0, requests = 0, errors = 0, firstError;
  const t0 = Date.now();
  const maxOps = spec.maxOps ?? Infinity;
  let started = 0;
  async function loop(client) {
    for (let n = 0; Date.now() < deadline && started++ < maxOps; n++) {
      const id = spec.prefix + "-" + client + "-" + n;
      try {
        if (spec.kind === "ping") { await call(stub, "/ping"); requests += 1; }
        else if (spec.kind === "ledger") {
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
    if (url.pathname === "/drive" && request.method === "POST") {
      return Response.json(await drive(env, await request.json()));
    }
    return new Response("not found", { status: 404 });
  },
};
`;

/**
 * Starts the app and the gate. `persistDir`: keep storage (D1, the objects' SQLite files) in
 * that directory across restarts (`migrate: false` on a restart); without it, a fresh directory
 * under `storageRoot()` is used and removed on dispose. `inspectorPort`: open workerd's
 * DevTools inspector there (bench/profile.mjs).
 */
export async function startHub({ persistDir, migrate = true, storage = benchStorage(), inspectorPort } = {}) {
  let ownDir;
  if (!persistDir) persistDir = ownDir = mkdtempSync(join(storageRoot(storage), "tb-bench-"));
  const { workerOptions, main } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.toml"));
  const { modulesRules: _rules, rootPath: _root, ...options } = workerOptions;
  const build = join(ROOT, "build");
  const bindings = { ...(options.bindings ?? {}) };
  bindings.JWT_SECRET ??= process.env.JWT_SECRET ?? devVar("JWT_SECRET") ?? BENCH_JWT_SECRET;
  const app = {
    ...options,
    name: "ticketbottle-edge",
    modulesRoot: build,
    modules: [
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
    durableObjects: { EVENT_HUB: { className: "EventHub", scriptName: "ticketbottle-edge" } },
  };
  const verbose = process.env.BENCH_VERBOSE === "1";
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: "127.0.0.1",
      port: 0,
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
 * A PUBLISHED event whose sale opened an hour ago and ends in a day, optionally with a waitroom.
 * `waitroom`: `{maxConcurrentCheckouts, checkoutTtlSeconds, admissionBatch}` (0 slots pauses admission).
 */
export function eventSetup(eventId, { waitroom, maxTicketsPerUser } = {}) {
  const now = Date.now();
  return {
    op: "syncEvent",
    eventId,
    status: "PUBLISHED",
    saleStartsAtMs: now - 3_600_000,
    saleEndsAtMs: now + 86_400_000,
    ...(maxTicketsPerUser ? { maxTicketsPerUser } : {}),
    allowWaitRoom: Boolean(waitroom),
    ...(waitroom ? { waitroom: { maxConcurrentCheckouts: 100, checkoutTtlSeconds: 900, admissionBatch: 100, ...waitroom } } : {}),
  };
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
