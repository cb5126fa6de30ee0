// Flash crowd: N buyers join one event's waitroom within seconds, are admitted by the object's
// one-second ticks, order 1–4 tickets across three classes and pay in the sandbox with a mix
// of success, decline, abandonment (hold expiry), late payment after expiry, owner cancels,
// duplicate and out-of-order webhooks; some pay with ZaloPay (signed callback), and some first
// meet a failing provider: PayOS or ZaloPay dropping the connection, refusing, answering 5xx or
// never answering (the Worker's 8 s timeout), after which they order again with the same
// checkout token through the sandbox, or a VNPay IPN reporting a cancelled payment, after which
// they join again and buy through the sandbox. The fake PayOS/ZaloPay APIs are
// bench/lib/providers.mjs. Faults: the runtime is restarted mid-sale (state persisted on disk),
// payment messages are redelivered. Some ZaloPay payments lose their callback: only
// reconciliation (the cron asking ZaloPay's /v2/query) can complete those orders. Then the
// checker (bench/check.mjs) reads the final state and every count must be 0; then the organizer
// cancels the event (FC_CANCEL=0 skips it) and every paid order must be refunded exactly once.
//
// Everything runs on 127.0.0.1 against workerd through Miniflare, bounded in count and time.
// Env: FC_BUYERS (default 2000, at most 100000), FC_SEED, FC_CONCURRENCY (in-flight requests,
// default 64), FC_HOLD_SECONDS (default 20), FC_RESTART (default 1), FC_MAX_SECONDS (hard stop,
// default 900, or a fifth of a second per buyer above 4,500 buyers: 10,000 take about 15 min here), FC_CANCEL (default 1), FC_RECONCILE_AFTER_SECONDS (default 5),
// FC_BASELINE_SECONDS (default 5), FC_PREQUEUE_SECONDS (the sale opens this long
// after the event is configured, default 10, so the first joiners wait in the pre-queue and are
// placed by its shuffle; 0 opens the sale before anyone joins), FC_SHARDS (the event's
// `waitroom.shards`, default 1: with more, the queue is spread over that many QueueShard
// objects and the event's object admits across them), FC_WS_BUYERS (how many buyers follow
// their place over the waitroom WebSocket instead of polling their session and act on its
// `admitted` message; default 1000 with shards, else 0; at most FC_BUYERS), FC_KEEP (1 keeps
// the run's directory, with D1 and the objects' SQLite files; it is kept anyway when a count
// fails).
import { createHmac, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startApp, startNoop, startTrivialObject } from "./lib/runtime.mjs";
import { load } from "./lib/load.mjs";
import { BENCH_KEYS, providerBindings, startFakeProviders, vnpayIpnQuery, vnpayTime, zalopayCallbackBody } from "./lib/providers.mjs";
import { checkAdmissionOrder, checkArrivalOrder, checkLive, providerAnswersWrong, checkReleasedHolds, checkShardStays, checkSocketFans,
  admittedStaysInObjects, explainPositionRises, readShardFiles, shardFanEvents } from "./check.mjs";

const ROOT = new URL("..", import.meta.url).pathname;
const N = Math.min(100_000, Math.max(1, Number(process.env.FC_BUYERS ?? 2000)));
const SEED = Number(process.env.FC_SEED ?? 20261101);
const CONCURRENCY = Number(process.env.FC_CONCURRENCY ?? 64);
const HOLD_SECONDS = Number(process.env.FC_HOLD_SECONDS ?? 20);
const RESTART = (process.env.FC_RESTART ?? "1") === "1";
const CANCEL = (process.env.FC_CANCEL ?? "1") === "1";
const MAX_SECONDS = Number(process.env.FC_MAX_SECONDS ?? Math.max(900, Math.ceil(N / 5)));
const BASELINE_SECONDS = Number(process.env.FC_BASELINE_SECONDS ?? 5);
const PREQUEUE_SECONDS = Math.max(0, Number(process.env.FC_PREQUEUE_SECONDS ?? 10));
const SHARDS = Math.min(64, Math.max(1, Math.floor(Number(process.env.FC_SHARDS ?? 1))));
const WS_BUYERS = Math.min(N, Math.max(0, Math.floor(Number(process.env.FC_WS_BUYERS ?? (SHARDS > 1 ? 1000 : 0)))));
const KEEP = process.env.FC_KEEP === "1";
const started = Date.now();
const deadline = started + MAX_SECONDS * 1000;
const hardStop = setTimeout(() => { console.error(`flash crowd over ${MAX_SECONDS} s: aborting`); process.exit(3); }, MAX_SECONDS * 1000 + 60_000);
hardStop.unref();

// ----- small tools -------------------------------------------------------------------------
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function rng(seed) { // mulberry32
  let a = seed >>> 0;
  return () => { a = (a + 0x6d2b79f5) >>> 0; let t = a; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}
const pct = (xs, p) => { if (!xs.length) return NaN; const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
const devVars = Object.fromEntries(readFileSync(join(ROOT, ".dev.vars"), "utf8").split("\n")
  .filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1).trim()]));
const b64url = (b) => Buffer.from(b).toString("base64url");
function accessToken(userId, nowS) { // what POST /api/auth/login issues (HS256, dev JWT_SECRET)
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const claims = b64url(JSON.stringify({ sub: userId, role: "user", iss: "ticketbottle-edge", aud: "ticketbottle-api", iat: nowS, exp: nowS + 3 * 3600 }));
  const sig = createHmac("sha256", devVars.JWT_SECRET).update(`${header}.${claims}`).digest("base64url");
  return `${header}.${claims}.${sig}`;
}
function signSandbox(event) { // what the sandbox provider posts (HMAC-SHA256 over `data`)
  const data = JSON.stringify(event);
  return JSON.stringify({ data, signature: createHmac("sha256", devVars.SANDBOX_WEBHOOK_SECRET).update(data).digest("hex") });
}

let inFlight = 0;
const waiters = [];
// Two lines: the polls of fans still waiting in the queue (`low`) and everything else (joins,
// purchase steps, webhooks, setup). With thousands of fans each keeping a poll in line, one
// line would make an admitted buyer's order wait behind every waiting fan's poll (a 10,000-fan
// run stalled that way until the first checkouts, 300 s, ran out); each fan has their own
// connection in reality. Every fourth free slot still goes to a waiting poll, so polls never
// starve.
const lowWaiters = [];
// How often a waiting fan polls: about when its estimate says (0.7 of it), at least every second,
// at most every POLL_MAX_MS; without an estimate (the pre-queue, a sharded queue before every
// shard reported) every POLL_UNKNOWN_MS. Up to 2,000 buyers as always (10 s, 1 s); above, the
// client pool cannot carry every waiting fan's poll every 10 s (10,000 fans would ask 1,000
// polls a second of a runtime that serves about 100 requests a second here), so 60 s and 5 s.
const POLL_MAX_MS = N <= 2000 ? 10_000 : 60_000;
const POLL_UNKNOWN_MS = N <= 2000 ? 1_000 : 5_000;
let grants = 0;
async function slot(priority = "high") {
  if (inFlight < CONCURRENCY && !waiters.length && !lowWaiters.length) { inFlight++; return; }
  await new Promise((r) => (priority === "low" ? lowWaiters : waiters).push(r));
  inFlight++;
}
function release() {
  inFlight--;
  const pollsTurn = ++grants % 4 === 0 || !waiters.length;
  const w = (pollsTurn && lowWaiters.length ? lowWaiters : waiters).shift();
  if (w) w();
}

let base = ""; // current app URL (changes never: the restart reuses the port)
let restarting = null; // a promise while the runtime is down
const lat = { join: [], order: [], webhook: [], session: [], admittedPoll: [], admittedSocket: [] };
const tally = {};
const bump = (k, n = 1) => { tally[k] = (tally[k] ?? 0) + n; };

/** One HTTP call, retried through the restart window and transient network errors. */
async function call(kind, path, { method = "GET", token, body, raw, headers = {}, priority = "high" } = {}) {
  let cut = false; // an attempt lost its connection (the restart): the runtime may have acted on it
  for (let attempt = 0; attempt < 40; attempt++) {
    if (Date.now() > deadline) throw new Error("deadline");
    if (restarting) await restarting;
    await slot(priority);
    // A restart that began while this call waited for its slot: wait it out too (the restart's
    // redelivery must not meet client traffic, and thousands of calls can be waiting).
    if (restarting) { release(); attempt--; continue; }
    const t0 = performance.now();
    try {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: { ...(body ? { "Content-Type": "application/json" } : {}), ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers },
        body: raw ?? (body ? JSON.stringify(body) : undefined),
      });
      const text = await res.text();
      const ms = performance.now() - t0;
      if (lat[kind]) lat[kind].push(ms);
      if (res.status >= 500 && res.status !== 502) { bump(`5xx ${kind}`); await sleep(100 * (attempt + 1)); continue; }
      return { status: res.status, body: text ? safeJson(text) : null, ms, cut };
    } catch {
      cut = true;
      bump(`network retry ${kind}`);
      await sleep(Math.min(2000, 100 * (attempt + 1)));
    } finally {
      release();
    }
  }
  throw new Error(`${method} ${path}: gave up`);
}
const safeJson = (t) => { try { return JSON.parse(t); } catch { return t; } };

// ----- baselines ---------------------------------------------------------------------------
const noop = await startNoop();
const trivial = await startTrivialObject();
await fetch(`${noop.url}/`); await fetch(`${trivial.url}/`);
const baseNoop = await load(`${noop.url}/`, { seconds: BASELINE_SECONDS, connections: CONCURRENCY });
const baseTrivial = await load(`${trivial.url}/`, { seconds: BASELINE_SECONDS, connections: CONCURRENCY });
await noop.dispose(); await trivial.dispose();

// ----- fake payment providers ---------------------------------------------------------------
// Each buyer with a provider plan says here what the fakes do with its create call; the fakes
// find the buyer of a call from the call itself, so concurrent buyers never mix up modes.
//
// While clients run, the harness reaches the runtime only over HTTP. Miniflare's binding
// proxies (mf.getD1Database(...).prepare/bind, object stubs, getWorker) make synchronous round
// trips that park Node's main thread (Atomics.wait); nothing reads workerd's stdout meanwhile,
// and with a busy runtime logging every request the pipe fills, workerd blocks on the write and
// each waits for the other for good (seen right after the restart of a 200-buyer run). Proxies
// are used only while no client traffic runs: setup, the restart's redelivery, the checker.
const faults = new Map(); // buyer id → { provider, mode }
const injected = new Map(); // buyer id → the failure the fakes applied to its create call
async function routeProviderCall({ provider, appUser, orderCode }) {
  let userId = appUser; // ZaloPay names the buyer (app_user)
  for (let attempt = 0; !userId && orderCode && attempt < 5; attempt++) {
    // PayOS's request names no buyer, but its return URL carries our order code, and the order
    // (written before the Worker calls the provider) names the buyer. Plain fetch, not `call`:
    // the Worker's request waiting for this answer may hold one of the client pool's slots.
    if (restarting) await restarting;
    try {
      const res = await fetch(`${base}/api/orders/${orderCode}`, { headers: { Authorization: `Bearer ${organizer}` } });
      if (res.ok) userId = (await res.json()).order?.userId;
      else { await res.text(); await sleep(300); }
    } catch { await sleep(500); }
  }
  const f = userId && faults.get(userId);
  if (!f || f.provider !== provider) return "ok";
  injected.set(userId, f.mode);
  return f.mode;
}
const fakes = await startFakeProviders({ route: routeProviderCall });

// ----- the app, persisted on disk so a restart keeps D1 and the object's SQLite -------------
const persistDir = mkdtempSync(join(tmpdir(), "tb-flash-"));
// Lost notifications are looked for 5 s after a payment is created (the contract's 300 s would
// outlast the run; FC_RECONCILE_AFTER_SECONDS=86400 switches reconciliation off in effect, which
// the pendingButProviderPaid count must catch).
const RECONCILE_AFTER = process.env.FC_RECONCILE_AFTER_SECONDS ?? "5";
const appOptions = { bindings: { HOLD_SECONDS: String(HOLD_SECONDS), RECONCILE_AFTER_SECONDS: RECONCILE_AFTER, ...providerBindings(fakes.url) } };
let app = await startApp(appOptions, { persistDir });
base = app.url;
const port = Number(new URL(app.url).port);
let db = await app.mf.getD1Database("DB");

// Cron: the Worker's scheduled handler (outbox relay, stuck-checkout sweep) runs every minute
// in production; here every 15 s so a run of a few minutes sees it several times.
// Through the runtime's trigger route (a plain request, see startApp), not getWorker's proxy.
async function cron() {
  try {
    const res = await fetch(`${base}/cdn-cgi/local/scheduled?cron=${encodeURIComponent("* * * * *")}`);
    await res.text();
    bump(res.ok ? "cron runs" : "cron errors");
  } catch { bump("cron errors"); }
}
const cronTimer = setInterval(() => { if (!restarting) cron(); }, 15_000);

async function restart() {
  let done;
  restarting = new Promise((r) => (done = r));
  const t0 = Date.now();
  // One run stopped for good inside this function (Node and workerd idle); say where, should
  // it happen again.
  let step = "dispose";
  const watchdog = setInterval(() => console.log(`restart: still at "${step}" after ${Math.round((Date.now() - t0) / 1000)} s`), 30_000);
  await app.dispose();
  step = "start";
  app = await startApp(appOptions, { persistDir, port, migrate: false });
  step = "D1 binding";
  db = await app.mf.getD1Database("DB");
  base = app.url;
  const downMs = Date.now() - t0;
  // A queue keeps accepted messages across a restart; Miniflare's local queue does not. Deliver
  // every payment and domain message the outbox published again (at-least-once delivery: the
  // consumers must ignore what they already applied).
  // Which: everything published in the minute before the restart, and every published message
  // its consumer has not applied yet (the saga records the payment messages it applied in
  // processed_messages, the event log records domain events by message id): under a large
  // crowd the consumers trail by minutes (a 10,000-buyer run lost a backlog of 1,400 payment
  // messages published up to 3 minutes before the restart).
  // Done before the clients resume: these proxies must not meet client traffic (see the fakes).
  step = "outbox read";
  const rows = (await db.prepare(
    `SELECT queue, payload FROM outbox WHERE published_at IS NOT NULL AND (published_at >= ?1
       OR (queue = 'PAYMENT_EVENTS' AND id NOT IN (SELECT message_id FROM processed_messages))
       OR (queue = 'DOMAIN_EVENTS' AND id NOT IN (SELECT message_id FROM event_log)))`).bind(t0 - 60_000).all()).results;
  step = "queue producers";
  const queues = { PAYMENT_EVENTS: await app.mf.getQueueProducer("PAYMENT_EVENTS"), DOMAIN_EVENTS: await app.mf.getQueueProducer("DOMAIN_EVENTS") };
  for (const q of Object.keys(queues)) {
    step = `redelivery to ${q}`;
    const bodies = rows.filter((r) => r.queue === q).map((r) => ({ body: JSON.parse(r.payload) }));
    for (let k = 0; k < bodies.length; k += 100) await queues[q].sendBatch(bodies.slice(k, k + 100));
  }
  clearInterval(watchdog);
  bump("redelivered queue messages", rows.length);
  const redeliveryMs = Date.now() - t0 - downMs;
  done();
  restarting = null;
  return { downMs, redeliveryMs };
}

// ----- the sale ----------------------------------------------------------------------------
const must = async (p, what) => { const r = await p; if (r.status >= 300) throw new Error(`${what}: ${r.status} ${JSON.stringify(r.body)}`); return r.body; };
const iso = (ms) => new Date(ms).toISOString();
const register = async (email) => {
  const password = "flash-crowd-password-1";
  await must(call("setup", "/api/auth/register", { method: "POST", body: { email, password, firstName: "Flash", lastName: "Crowd" } }), "register");
  return (await must(call("setup", "/api/auth/login", { method: "POST", body: { email, password } }), "login")).accessToken;
};
// Buyers first (the pre-queue window below starts with the event): rows written straight into D1 and tokens minted with the dev JWT secret, exactly what
// register + login produce, without 2N PBKDF2 runs that would measure the password hash.
const nowS = Math.floor(Date.now() / 1000);
const buyers = Array.from({ length: N }, (_, i) => {
  const id = randomUUID();
  // FC_WS_BUYERS of them, spread evenly over the join order, follow their place over the socket.
  const socket = Math.floor(((i + 1) * WS_BUYERS) / N) > Math.floor((i * WS_BUYERS) / N);
  return { i, id, token: accessToken(id, nowS), rand: rng(SEED + i), socket };
});
for (let k = 0; k < N; k += 500) {
  await db.batch(buyers.slice(k, k + 500).map((b) => db.prepare(
    "INSERT INTO users (id, email, password_hash, first_name, last_name, email_verified, created_at, updated_at) VALUES (?1, ?2, 'x', 'Fan', ?3, 1, ?4, ?4)")
    .bind(b.id, `fan${b.i}@flash.test`, String(b.i), Date.now())));
}

const organizer = await register("organizer@flash.test");
const admin = await register("admin@ticketbottle.dev");
const now = Date.now();
const { event } = await must(call("setup", "/api/events", { method: "POST", token: organizer, body: {
  name: "Flash crowd on-sale", description: "bench", location: "Hanoi",
  startDate: iso(now + 30 * 86400e3), endDate: iso(now + 30 * 86400e3 + 3 * 3600e3) } }), "event");
const slots = Math.min(10_000, Math.max(100, Math.ceil(N / 4)));
const saleOpensAt = PREQUEUE_SECONDS > 0 ? now + PREQUEUE_SECONDS * 1000 : now - 3600e3;
await must(call("setup", `/api/events/${event.id}/config`, { method: "PUT", token: organizer, body: {
  ticketSaleStartDate: iso(saleOpensAt), ticketSaleEndDate: iso(now + 7 * 86400e3), isFree: false, maxAttendees: null,
  isPublic: true, requiresApproval: false, allowWaitRoom: true, isNewTrending: false, maxTicketsPerUser: 4,
  waitroom: { maxConcurrentCheckouts: slots, checkoutTtlSeconds: 300, admissionBatch: slots, shards: SHARDS } } }), "config");
// About 1.2 tickets per buyer against ~2.5 asked: the sale sells out (refusals, late-pay refunds).
const classSpecs = [
  { name: "VIP", priceCents: 3_000_000, total: Math.max(1, Math.round(N * 0.1)) },
  { name: "GA", priceCents: 1_000_000, total: Math.max(1, Math.round(N * 0.6)) },
  { name: "Economy", priceCents: 500_000, total: Math.max(1, Math.round(N * 0.5)) },
];
const classes = [];
for (const c of classSpecs) classes.push((await must(call("setup", `/api/events/${event.id}/ticket-classes`, { method: "POST", token: organizer, body: { ...c, currency: "VND" } }), c.name)).ticketClass);
await must(call("setup", `/api/events/${event.id}/approve`, { method: "POST", token: admin }), "approve");
await must(call("setup", `/api/events/${event.id}/publish`, { method: "POST", token: organizer }), "publish");

// What each admitted buyer does with the checkout. The provider plans first order with a real
// provider that fails (its create call, through the fakes, or VNPay's IPN), then order again
// with the same checkout token through the sandbox. A create call that failed leaves the buyer
// in checkout (they never saw a payment page: src/domain/waitroom/, UnbindOrder), so that
// order must be accepted; a payment the buyer cancelled on VNPay's page ends the checkout
// session by design (the slot goes to the next fan), so that one is refused and the buyer joins
// again, waits for admission and buys through the sandbox.
const PLAN = [["pay", 0.34], ["zalopay-lost", 0.03], ["pay-duplicates", 0.10], ["decline", 0.10], ["decline-then-pay", 0.05],
  ["abandon", 0.10], ["late-pay", 0.05], ["cancel", 0.03], ["provider-down", 0.05], ["provider-error", 0.04],
  ["provider-timeout", 0.03], ["vnpay-failed", 0.04], ["zalopay-paid", 0.04]];
if (Math.abs(PLAN.reduce((a, [, w]) => a + w, 0) - 1) > 1e-9) throw new Error("PLAN weights must sum to 1");
function pickPlan(r) { let x = r(); for (const [p, w] of PLAN) { if ((x -= w) < 0) return p; } return "pay"; }
const CREATE_FAULT_PLANS = new Set(["provider-down", "provider-error", "provider-timeout"]);

const joinTimes = [];
const joinedSessions = []; // session ids of the joins the clients were answered (every stay)
const admittedSessions = []; // session ids of the admissions the clients acted on
const orderTimes = [];
const lateWork = [];
const providerOrders = []; // first orders of the create-fault and ZaloPay plans: what the fakes did, what the client got
const providerFailures = []; // { userId, provider } of every 502 PAYMENT_PROVIDER_UNAVAILABLE
const retriesRefused = []; // buyers answered 502 whose same-token order after it was refused (403)
const acknowledged = []; // { orderId, status }: notifications the Worker acknowledged as recorded
let ordersCreated = 0;
let restartMs = null;
const restartAfterOrders = RESTART ? Math.floor(N * 0.3) : Infinity;

// ----- buyers on the WebSocket ---------------------------------------------------------------
// As the waitroom page does (public/assets/waitroom.js): after the join, one socket on
// GET .../waitroom/ws?token=...; `position` messages while queued, `admitted` with the checkout
// token (the buyer orders with it, and only with it), `expired` or `status` when the stay ended
// otherwise; a ping now and then (the rules: a burst of 5, then 1 a second); while the socket
// is down, a poll of the session every 5 s (which also shows the shard the fan is still there)
// and a jittered reconnect. Every socket opened on connect says where the stay stands, so an
// admission pushed while the socket was down (the restart) arrives as `admitted` on reconnect;
// a poll that shows ADMITTED is therefore only noted, and acted on only if no socket has told
// within 60 s (the checker then counts the fan). One socket per buyer at a time (a fan may keep
// 4; a fifth would close the oldest with 4409, which is counted).
const SOCKET_PING_MS = 20_000;
const SOCKET_POLL_MS = 5_000;
const SOCKET_OPEN_TIMEOUT_MS = 15_000;
// Upgrades have their own small pool: a socket is one request per stay (and per reconnect),
// not a place in the line of polls and purchase steps.
const HANDSHAKES = 16;
let handshaking = 0;
const handshakeWaiters = [];
async function handshakeSlot() { if (handshaking < HANDSHAKES) { handshaking++; return; } await new Promise((r) => handshakeWaiters.push(r)); handshaking++; }
function handshakeRelease() { handshaking--; const w = handshakeWaiters.shift(); if (w) w(); }
const POLLED_ADMISSION_GRACE_MS = 60_000;
/** user id → { stays: [{ sessionId, positions: [{ position, queueLength, at }] }], admittedSessions: Set of session ids } */
const socketFans = new Map();
const sockets = { opened: 0, refused: 0, reconnects: 0, replaced4409: 0, open: 0, maxOpen: 0,
  messages: 0, positions: 0, nullPositions: 0, admitted: 0, expired: 0, status: 0, pings: 0, pongs: 0, polledAdmitted: 0, actedOnPoll: 0 };
/** The waitroom session a checkout token names (its `sid` claim). */
const checkoutSession = (token) => { try { return JSON.parse(Buffer.from(String(token).split(".")[1], "base64url")).sid ?? null; } catch { return null; } };

/**
 * Follows one stay over the socket until admitted (resolves with the session as the API shows
 * an admitted one), until the stay ends otherwise or the deadline passes (resolves with a
 * session whose status says which).
 */
function followOverSocket(b, session) {
  const fan = socketFans.get(b.id) ?? { stays: [], admittedSessions: new Set() };
  socketFans.set(b.id, fan);
  const stay = { sessionId: session.sessionId, joinedAt: Date.now(), positions: [] };
  fan.stays.push(stay);
  return new Promise((resolve) => {
    let ws = null; // the current socket: events of an older one are ignored
    let done = false;
    let retry = 0;
    let polledAdmissionAt = null;
    const timers = new Set();
    const later = (fn, ms) => { const t = setTimeout(() => { timers.delete(t); fn(); }, ms); timers.add(t); };
    const finish = (result) => {
      if (done) return;
      done = true;
      for (const t of timers) clearTimeout(t);
      clearInterval(pinger);
      clearInterval(poller);
      const open = ws;
      ws = null;
      if (open) { try { open.close(1000, "done"); } catch {} }
      resolve(result);
    };
    const onMessage = (sock, m) => {
      if (sock !== ws || done) return;
      sockets.messages++;
      let msg;
      try { msg = JSON.parse(m.data); } catch { return; }
      if (msg.type === "position") {
        sockets.positions++;
        if (msg.position === null || msg.position === undefined) sockets.nullPositions++;
        stay.positions.push({ position: msg.position ?? null, queueLength: msg.queueLength, at: Date.now() });
      } else if (msg.type === "admitted") {
        sockets.admitted++;
        const sid = checkoutSession(msg.checkoutToken);
        fan.admittedSessions.add(sid);
        finish({ status: "ADMITTED", sessionId: sid, checkoutToken: msg.checkoutToken, checkoutExpiresAt: msg.checkoutExpiresAt, via: "socket" });
      } else if (msg.type === "expired") {
        sockets.expired++;
        finish({ status: "EXPIRED" });
      } else if (msg.type === "status") {
        sockets.status++;
        if (msg.status !== "QUEUED" && msg.status !== "ADMITTED") finish({ status: msg.status });
      } else if (msg.type === "pong") sockets.pongs++;
    };
    const connect = async () => {
      if (restarting) await restarting;
      if (done) return;
      if (Date.now() > deadline) return finish({ status: "DEADLINE" });
      await handshakeSlot();
      if (restarting) { handshakeRelease(); later(connect, 0); return; }
      let settled = false; // the handshake is over and its slot given back
      let opened = false;
      let handshake = null;
      const settle = () => { if (!settled) { settled = true; clearTimeout(handshake); handshakeRelease(); } };
      let sock;
      try {
        sock = new WebSocket(`${base.replace(/^http/, "ws")}/api/events/${event.id}/waitroom/ws?token=${encodeURIComponent(b.token)}`);
      } catch {
        settle();
        sockets.refused++;
        later(connect, 1000);
        return;
      }
      ws = sock;
      handshake = setTimeout(() => { settle(); try { sock.close(); } catch {} }, SOCKET_OPEN_TIMEOUT_MS);
      sock.onopen = () => {
        settle();
        opened = true;
        sockets.opened++;
        sockets.open++;
        sockets.maxOpen = Math.max(sockets.maxOpen, sockets.open);
        if (sock !== ws || done) { try { sock.close(1000, "done"); } catch {} } else retry = 0;
      };
      sock.onmessage = (m) => onMessage(sock, m);
      sock.onerror = () => {}; // a close follows
      sock.onclose = (e) => {
        settle();
        if (opened) sockets.open--;
        else sockets.refused++;
        if (sock !== ws || done) return;
        ws = null;
        if (e.code === 4409) sockets.replaced4409++;
        sockets.reconnects++;
        // Jitter keeps a crowd that lost its connections at once (the restart) from coming back at once.
        retry = Math.min(retry + 1, 6);
        later(connect, 500 * 2 ** retry * (0.75 + Math.random() / 2));
      };
    };
    // A ping now and then, as the page does, while the socket is open.
    const pinger = setInterval(() => {
      if (ws && ws.readyState === WebSocket.OPEN) { try { ws.send(JSON.stringify({ type: "ping" })); sockets.pings++; } catch {} }
    }, SOCKET_PING_MS + Math.floor(Math.random() * 5000));
    // While the socket is down: poll the session as the page does.
    const poller = setInterval(async () => {
      if (done || (ws && ws.readyState === WebSocket.OPEN)) return;
      if (Date.now() > deadline) return finish({ status: "DEADLINE" });
      let r;
      try { r = await call("session", `/api/events/${event.id}/waitroom/session`, { token: b.token, priority: "low" }); } catch { return; }
      if (done) return;
      if (r.status === 404) return finish({ status: "NOT_FOUND" });
      const polled = r.status === 200 ? r.body.waitroomSession : null;
      if (!polled || polled.sessionId !== stay.sessionId) return;
      if (polled.status === "ADMITTED" && polled.checkoutToken) {
        if (polledAdmissionAt === null) { polledAdmissionAt = Date.now(); sockets.polledAdmitted++; }
        if (Date.now() - polledAdmissionAt > POLLED_ADMISSION_GRACE_MS) {
          sockets.actedOnPoll++;
          finish({ ...polled, via: "poll" });
        }
      } else if (polled.status !== "QUEUED") finish(polled);
    }, SOCKET_POLL_MS);
    later(() => finish({ status: "DEADLINE" }), Math.max(0, deadline - Date.now()));
    connect();
  });
}

async function buyer(b) {
  const t0 = Date.now();
  const j = await call("join", `/api/events/${event.id}/waitroom/join`, { method: "POST", token: b.token });
  joinTimes.push([t0, Date.now()]);
  if (j.status !== 200) { bump(`join ${j.status}`); return; }
  joinedSessions.push(j.body.waitroomSession.sessionId);
  // Wait for admission: over the socket (b.socket), or poll about when the estimate says, never
  // faster than 1 s. `since`: when this stay's join was sent (time to admitted).
  const admitted = async (s, since) => {
    if (b.socket && (s.status === "QUEUED" || s.status === "ADMITTED")) {
      s = await followOverSocket(b, s);
      if (s.status === "DEADLINE") { bump("gave up waiting"); return null; }
      if (s.status === "ADMITTED") lat[s.via === "socket" ? "admittedSocket" : "admittedPoll"].push(Date.now() - since);
    }
    const polled = s.status === "QUEUED";
    while (s.status === "QUEUED") {
      if (Date.now() > deadline) { bump("gave up waiting"); return null; }
      const est = s.estimatedWaitSeconds;
      await sleep(est == null ? POLL_UNKNOWN_MS : Math.min(POLL_MAX_MS, Math.max(1000, est * 700)));
      // Near the head, a poll is as urgent as a purchase step: its fan is about to hold a slot.
      const near = est != null && est <= 30;
      const r = await call("session", `/api/events/${event.id}/waitroom/session`, { token: b.token, priority: near ? "high" : "low" });
      if (r.status === 200) s = r.body.waitroomSession;
    }
    if (s.status !== "ADMITTED") { bump(`session ${s.status}`); return null; }
    if (polled) lat.admittedPoll.push(Date.now() - since);
    admittedSessions.push(s.sessionId ?? checkoutSession(s.checkoutToken));
    return s;
  };
  let s = await admitted(j.body.waitroomSession, t0);
  if (!s) return;
  bump("admitted");
  const plan = pickPlan(b.rand);
  const lines = [];
  const wanted = 1 + Math.floor(b.rand() * 4);
  const first = Math.floor(b.rand() * 3);
  const split = wanted > 1 && b.rand() < 0.4;
  lines.push({ ticketClassId: classes[first].id, quantity: split ? wanted - 1 : wanted });
  if (split) lines.push({ ticketClassId: classes[(first + 1) % 3].id, quantity: 1 });
  const order = async (items, paymentMethod, kind = "order") => {
    const key = randomUUID();
    const t = Date.now();
    const r = await call(kind, "/api/orders", { method: "POST", token: b.token, headers: { "Idempotency-Key": key },
      body: { eventId: event.id, items, paymentMethod, checkoutToken: s.checkoutToken } });
    orderTimes.push([t, Date.now()]);
    return r;
  };
  // The lines asked for; if they are sold out, once more with one ticket of a class still open.
  const placeOrder = async (paymentMethod, kind) => {
    let r = await order(lines, paymentMethod, kind);
    if (r.status === 409 && r.body?.code === "INSUFFICIENT_INVENTORY") {
      bump("refused: insufficient inventory");
      const live = (await call("setup", `/api/events/${event.id}/ticket-classes`)).body?.items ?? [];
      const open = live.find((c) => c.available > 0);
      if (open) r = await order([{ ticketClassId: open.id, quantity: 1 }], paymentMethod, kind);
    }
    return r;
  };
  const giveUp = async (r) => {
    bump(`order ${r.status} ${r.body?.code ?? ""}`.trim());
    await call("session", `/api/events/${event.id}/waitroom/session`, { method: "DELETE", token: b.token });
  };
  const created = () => {
    ordersCreated++;
    if (ordersCreated === restartAfterOrders && restartMs === null) { restartMs = -1; restart().then((ms) => (restartMs = ms)); }
  };
  // After a 502 from a provider's create call: the checkout is still the buyer's, so the same
  // checkout token orders again through the sandbox (sold-out lines fall back as any order's).
  const afterProviderFailure = async () => {
    const again = await placeOrder("sandbox");
    bump(`same-token reorder after a 502 → ${again.status} ${again.body?.code ?? ""}`.trim());
    // Refused while the checkout still had time: the failure ended it (counted). Refused once
    // its deadline had passed (the client pool and a busy runtime can hold a request that long
    // under a large crowd): the checkout ran out, as it should.
    // The answer came before the deadline, so the object decided while the checkout was live.
    const deadlineAt = Date.parse(s.checkoutExpiresAt ?? "") || Infinity;
    if (again.status === 403 && Date.now() < deadlineAt) retriesRefused.push({ userId: b.id, checkoutExpiresAt: s.checkoutExpiresAt, answeredAt: new Date().toISOString(), ms: again.ms });
    else if (again.status === 403) bump("same-token reorder after the checkout's deadline → 403");
    return again;
  };
  // After a failed payment (declined on the provider's page): the same checkout token again,
  // then (refused: the failure ended the checkout) wait until the session has left ADMITTED,
  // join again and wait for admission. Returns the sandbox order's response, or null when the
  // buyer could not get back in.
  const afterFailedPayment = async () => {
    const again = await order(lines, "sandbox");
    bump(`same-token reorder ${again.status} ${again.body?.code ?? ""}`.trim());
    if (again.status === 201) return again;
    for (let k = 0; ; k++) {
      const r = await call("session", `/api/events/${event.id}/waitroom/session`, { token: b.token });
      if (r.status === 404 || (r.status === 200 && r.body.waitroomSession.status !== "ADMITTED")) break;
      // Bounded: a saga the restart delayed still closes the order (hold expiry, cron sweeps).
      if (k >= 300 || Date.now() > deadline) { bump("checkout never ended after the failure"); return null; }
      await sleep(1000);
    }
    const rejoinedAt = Date.now();
    const rj = await call("rejoin", `/api/events/${event.id}/waitroom/join`, { method: "POST", token: b.token });
    if (rj.status !== 200) { bump(`rejoin ${rj.status}`); return null; }
    joinedSessions.push(rj.body.waitroomSession.sessionId);
    bump("rejoined after a failed order");
    s = await admitted(rj.body.waitroomSession, rejoinedAt);
    if (!s) return null;
    bump("admitted again");
    return placeOrder("sandbox");
  };

  let r;
  if (CREATE_FAULT_PLANS.has(plan)) {
    // The fakes fail this buyer's create call: the Worker must answer 502 with the hold released,
    // the order FAILED and the payment CANCELLED, within its 8 s provider timeout.
    const provider = plan === "provider-down" || b.rand() < 0.5 ? "payos" : "zalopay";
    const mode = plan === "provider-down" ? "reset" : plan === "provider-timeout" ? "hang" : b.rand() < 0.5 ? "reject" : "5xx";
    faults.set(b.id, { provider, mode });
    // Its own request kind keeps these out of the order latency figures (a hang takes 8 s).
    const r0 = await placeOrder(provider, "fault-order");
    // The fake decides after looking the order up, which waits out a restart; the Worker may
    // have given up (its 8 s timeout) before that decision was recorded.
    for (let waited = 0; r0.status === 502 && !injected.has(b.id) && waited < 30_000; waited += 250) await sleep(250);
    const applied = injected.get(b.id) ?? null;
    providerOrders.push({ userId: b.id, provider, mode: applied, status: r0.status, code: r0.body?.code ?? null, ms: r0.ms, cut: r0.cut });
    bump(`${provider} create ${applied ?? "not called"} → ${r0.status}`);
    if (r0.status === 201) { created(); return; } // a fault the Worker did not see (counted by the checker); the hold expires
    if (r0.status !== 502) { await giveUp(r0); return; }
    providerFailures.push({ userId: b.id, provider });
    r = await afterProviderFailure();
  } else if (plan === "vnpay-failed") {
    // VNPay is redirect-only: the order is created with a signed payment URL; the buyer cancels
    // on VNPay's page (vnp_ResponseCode 24), whose IPN arrives twice at once.
    const r0 = await placeOrder("vnpay");
    if (r0.status !== 201) { await giveUp(r0); return; }
    created();
    const o = r0.body.order;
    const signed = new URL(r0.body.paymentUrl).searchParams; // what VNPay receives
    const query = vnpayIpnQuery({
      vnp_Amount: signed.get("vnp_Amount"), vnp_BankCode: "NCB", vnp_CardType: "ATM", vnp_OrderInfo: signed.get("vnp_OrderInfo"),
      vnp_PayDate: vnpayTime(Date.now()), vnp_ResponseCode: "24", vnp_TmnCode: signed.get("vnp_TmnCode"),
      vnp_TransactionNo: "0", vnp_TransactionStatus: "02", vnp_TxnRef: signed.get("vnp_TxnRef") });
    const answers = await Promise.all([0, 1].map(() => call("webhook", `/api/payments/webhooks/vnpay?${query}`)));
    for (const a of answers) bump(`vnpay IPN RspCode ${a.body?.RspCode}`);
    // 00: recorded now; 02: already recorded (the other delivery). Either way the payment is FAILED.
    if (answers.some((a) => ["00", "02"].includes(a.body?.RspCode))) acknowledged.push({ orderId: o.id, status: "FAILED" });
    bump("duplicate deliveries sent");
    // The saga fails the order (and ends the checkout) off the payments queue: wait for it.
    let status = "PENDING";
    for (let k = 0; k < 120 && status === "PENDING" && Date.now() < deadline; k++) {
      await sleep(1000);
      status = (await call("session", `/api/orders/${o.id}`, { token: b.token })).body?.order?.status ?? status;
    }
    bump(`vnpay order ${status}`);
    r = await afterFailedPayment();
    if (!r) return;
  } else {
    const zalopay = plan === "zalopay-paid" || plan === "zalopay-lost";
    r = await placeOrder(zalopay ? "zalopay" : "sandbox");
    if (zalopay) {
      providerOrders.push({ userId: b.id, provider: "zalopay", mode: injected.get(b.id) ?? null, status: r.status, code: r.body?.code ?? null, cut: r.cut });
    }
  }
  if (r.status !== 201) { await giveUp(r); return; }
  created();
  const { order: o, paymentUrl } = r.body;
  const paymentPath = new URL(paymentUrl).pathname;
  const pay = (action) => call("webhook", `${paymentPath}/${action}`, { method: "POST" });
  bump(`plan ${plan}`);
  switch (plan) {
    case "pay": await pay("pay"); break;
    case "provider-down": case "provider-error": case "provider-timeout": case "vnpay-failed": await pay("pay"); break;
    case "zalopay-paid": {
      // ZaloPay's callback (success only; MAC'd with key2) for the order the fake created,
      // delivered twice at once.
      const z = fakes.zalopayOrders.get(b.id);
      if (!z) { bump("zalopay order unknown to the fake"); break; }
      const now = Date.now();
      const raw = zalopayCallbackBody({ app_id: Number(BENCH_KEYS.zalopay.appId), app_trans_id: z.appTransId, app_time: z.appTime,
        app_user: b.id, amount: z.amount, embed_data: "{}", item: "[]", zp_trans_id: 260_000_000 + b.i, server_time: now,
        channel: 38, merchant_user_id: "bench", user_fee_amount: 0, discount_amount: 0 });
      const answers = await Promise.all([0, 1].map(() => call("webhook", "/api/payments/webhooks/zalopay", { method: "POST", raw, headers: { "Content-Type": "application/json" } })));
      for (const a of answers) bump(`zalopay callback ${a.body?.return_code} ${a.body?.return_message}`);
      if (answers.some((a) => a.body?.return_code === 1 && a.body?.return_message === "success")) acknowledged.push({ orderId: o.id, status: "COMPLETED" });
      bump("duplicate deliveries sent");
      break;
    }
    case "zalopay-lost": {
      // ZaloPay took the money but its callback never arrives: the fake answers /v2/query "paid".
      const z = fakes.zalopayOrders.get(b.id);
      if (!z) { bump("zalopay order unknown to the fake"); break; }
      fakes.paid.set(z.appTransId, { amount: z.amount, txn: String(270_000_000 + b.i) });
      bump("callbacks lost");
      break;
    }
    case "pay-duplicates": {
      // The same provider transaction delivered several times, concurrently, plus a signed
      // redelivery of that transaction straight to the webhook.
      await Promise.all([pay("pay"), pay("pay"), pay("pay")]);
      // What the sandbox signs: its payment (the checkout URL's last segment), our order code
      // without dashes as its reference, the order's amount.
      const paymentId = paymentPath.split("/").pop();
      const raw = signSandbox({ paymentId, orderRef: o.code.replaceAll("-", ""), amount: o.totalAmountCents, currency: "VND", outcome: "paid", txnId: `sbx_${paymentId}_paid`, issuedAtMs: Date.now() });
      await Promise.all([0, 1].map(() => call("webhook", "/api/payments/webhooks/sandbox", { method: "POST", raw, headers: { "Content-Type": "application/json" } })));
      bump("duplicate deliveries sent", 4);
      break;
    }
    case "decline": await pay("decline"); break;
    case "decline-then-pay": await pay("decline"); await pay("pay"); bump("out-of-order deliveries sent"); break;
    case "abandon": break; // the hold expires after HOLD_SECONDS
    case "cancel": await call("order", `/api/orders/${o.id}/cancel`, { method: "POST", token: b.token }); break;
    case "late-pay":
      // The provider's webhook arrives after the hold expired: wait for the expiry, then pay.
      lateWork.push((async () => {
        try {
          for (let k = 0; k < 240 && Date.now() < deadline; k++) {
            await sleep(1000);
            const g = await call("session", `/api/orders/${o.id}`, { token: b.token });
            if (g.body?.order?.status === "CANCELLED") { await pay("pay"); bump("late payments sent"); return; }
          }
        } catch (error) {
          // The run's deadline passed while waiting: the report says so (drained 1) instead of
          // the harness dying on an unhandled rejection.
          if (String(error?.message) !== "deadline") throw error;
        }
        bump("late payment never sent");
      })());
      break;
  }
}

/** The operator view (GET /api/ops/events/{id}/status): the object's status plus D1's counts, over HTTP. */
async function opsStatus() {
  const res = await fetch(`${base}/api/ops/events/${event.id}/status`, { headers: { Authorization: `Bearer ${admin}` } });
  const body = await res.json();
  if (!res.ok || !body.eventHub) throw new Error(`ops status ${res.status} ${body.eventHubError ?? ""}`);
  return body;
}

const saleStart = Date.now();
const progress = setInterval(async () => {
  let st = {};
  try { st = await opsStatus(); } catch {}
  const hub = st.eventHub ?? {};
  console.error(`[${((Date.now() - saleStart) / 1000).toFixed(0)} s] joined ${joinTimes.length}/${N} admitted ${tally.admitted ?? 0} orders ${ordersCreated} ` +
    `queue ${hub.waitroom?.queueLength} slots ${hub.waitroom?.checkoutSlotsInUse} holds ${hub.activeHolds} hubOutbox ${hub.outboxBacklog}` +
    (WS_BUYERS ? ` sockets open ${sockets.open} (admitted ${sockets.admitted}, reconnects ${sockets.reconnects})` : ""));
}, 5000);
// Joins arrive as fast as the client pool sends them: everyone within seconds.
await Promise.all(buyers.map((b) => buyer(b).catch((e) => { bump(`buyer error ${String(e.message).slice(0, 60)}`); if (process.env.FC_DEBUG) console.error(e); })));
await Promise.all(lateWork);
const clientsDone = Date.now();

// Drain: until no order is pending, no hold is active, nobody waits or holds a slot, and the
// outbox is empty (bounded).
async function drain(rounds) {
  let last;
  for (let k = 0; k < rounds && Date.now() < deadline; k++) {
    let st;
    try { st = await opsStatus(); } catch (e) { last = { error: e.message }; await sleep(1000); continue; }
    const hub = st.eventHub;
    last = { pending: st.orders.pending, unpublished: st.outbox.unpublished, holds: hub.activeHolds, queue: hub.waitroom?.queueLength,
      admitted: hub.waitroom?.admitted, hubOutbox: hub.outboxBacklog };
    if (Object.values(last).every((v) => !v)) return { drained: true, last };
    if (k % 10 === 9) await cron();
    await sleep(1000);
  }
  return { drained: false, last };
}
let { drained, last } = await drain(600);
const drainedAt = Date.now();
clearInterval(progress);
await sleep(1500); // let the event-log consumer catch up with the last announcements
clearInterval(cronTimer);

// Payments the provider took whose order D1 still shows waiting: reconciliation missed them.
// The cron asks a provider about a payment again only a minute after its last question
// (src/queue/refunds.rs, the requery grace): a question cut short by the restart, or answered
// before the fake had taken the money (the harness marks a lost callback's payment paid once
// its client has the 201, which the restart can delay past the cron's first question), leaves
// such a payment PENDING for that minute. Run the cron through one grace, then drain again
// (the late money goes through the saga), before checking.
let stillPending;
let paidButPending;
const reconcileWaitStarted = Date.now();
for (let k = 0; ; k++) {
  stillPending = (await db.prepare("SELECT provider_ref FROM payments WHERE status = 'PENDING'").all()).results;
  paidButPending = stillPending.filter((p) => fakes.paid.has(p.provider_ref)).length;
  if (!paidButPending || k >= 15) break;
  await sleep(5000);
  await cron();
}
const reconcileWaitS = (Date.now() - reconcileWaitStarted) / 1000;
if (reconcileWaitS > 1) {
  ({ drained, last } = await drain(120));
  await sleep(1500);
}

// Money whose order is closed is flagged for refund by the saga when it consumes the payment's
// event; the drain sees the outbox published, not the queue consumed, and under a large crowd
// the consumer trails by minutes. Wait (bounded) until no such order is left unflagged, so the
// checker counts what the saga failed to do, not what it had not reached yet.
const SETTLE_SQL = `SELECT COUNT(*) AS n FROM payments p JOIN orders o ON o.id = p.order_id
  WHERE o.event_id = ?1 AND p.status = 'COMPLETED' AND o.status <> 'COMPLETED' AND o.refund_status IS NULL`;
const settleStarted = Date.now();
for (let k = 0; k < 24; k++) {
  const { n } = await db.prepare(SETTLE_SQL).bind(event.id).first();
  if (!n) break;
  await sleep(5000);
  await cron();
}
const settleS = (Date.now() - settleStarted) / 1000;
if (settleS > 1) console.log(`settle       waited ${settleS.toFixed(1)} s for the saga to flag money on closed orders`);

const live = await checkLive({ url: base, mf: app.mf, eventId: event.id, organizerToken: organizer, harness: { providerFailures, acknowledged } });
// The organizer cancels the event after the sale: the cron refunds every paid order, in batches.
let cancellation = { ran: false };
if (CANCEL) {
  const res = await fetch(`${base}/api/events/${event.id}/cancel`, { method: "POST", headers: { Authorization: `Bearer ${organizer}` } });
  await res.text();
  // Over HTTP while refund steps run (binding proxies only once the runtime is quiet, see above).
  const owedOverHttp = async () => {
    let n = 0;
    for (let page = 1; ; page++) {
      const r = await fetch(`${base}/api/events/${event.id}/orders?page=${page}&pageSize=100`, { headers: { Authorization: `Bearer ${organizer}` } });
      const body = await r.json();
      n += body.items.filter((o) => o.status === "COMPLETED" || o.refundStatus === "REFUND_REQUIRED").length;
      if (page * 100 >= body.total) return n;
    }
  };
  const started = Date.now();
  let owed = -1;
  for (let k = 0; k < 180 && Date.now() < deadline + 120_000; k++) {
    await cron();
    owed = await owedOverHttp();
    if (owed === 0) break;
    await sleep(1000);
  }
  await sleep(1500);
  const twiceInD1 = (await db.prepare("SELECT order_id FROM refunds WHERE event_id = ?1 AND status = 'REFUNDED' GROUP BY order_id HAVING COUNT(*) > 1").bind(event.id).all()).results.length;
  const byTxn = new Map();
  for (const r of fakes.refunds.values()) byTxn.set(r.txn, (byTxn.get(r.txn) ?? 0) + 1);
  const twiceAtProvider = [...byTxn.values()].filter((n) => n > 1).length;
  const refunds = (await db.prepare("SELECT status, COUNT(*) AS n FROM refunds WHERE event_id = ?1 GROUP BY status").bind(event.id).all()).results;
  cancellation = { ran: res.ok, status: res.status, owed, twice: twiceInD1 + twiceAtProvider, seconds: (Date.now() - started) / 1000, refunds };
}
// The shards' fan events as the event log recorded them (the runtime is quiet by now).
const fanEvents = SHARDS > 1 ? await shardFanEvents(app.mf, event.id) : [];
await app.dispose();
await fakes.close();
const holdsNotReleased = await checkReleasedHolds(persistDir, live.closedEarly);
// Admission: the one-object waitroom's own record (its SQLite file), or, with shards, the
// event log's fan events (order across shards, double admissions, the pre-queue) and the
// shards' files (stays still QUEUED or ADMITTED after the drain).
let admission;
let arrivalOrder = { violations: 0, examples: [] };
let shardFiles = null;
if (SHARDS > 1) {
  arrivalOrder = checkArrivalOrder(fanEvents);
  shardFiles = await readShardFiles(persistDir);
  const stays = checkShardStays(arrivalOrder.stays, saleOpensAt);
  admission = { ...stays, violations: stays.violations + shardFiles.stuck.length + (shardFiles.shardFiles === SHARDS ? 0 : 1) };
} else {
  admission = await checkAdmissionOrder(persistDir);
}
// Socket fans: what their sockets said against the stays the server admitted.
const admittedStays = [...(await admittedStaysInObjects(persistDir)),
  ...(arrivalOrder.stays ?? []).filter((s) => s.readyAt !== null).map((s) => ({ userId: s.userId, sessionId: s.sessionId }))];
const socketCheck = checkSocketFans(socketFans, admittedStays);
const risesExplained = SHARDS > 1 && socketCheck.rises.length ? explainPositionRises(socketCheck.rises, arrivalOrder.stays) : null;
// What the clients saw against what the event log holds (Miniflare's local queue loses the
// messages it had accepted but not delivered when the runtime restarts; a gap here is that).
const clientStays = { joined: new Set(joinedSessions), admitted: new Set(admittedSessions) };
const logStays = new Map((arrivalOrder.stays ?? []).map((s) => [s.sessionId, s]));
const notInLog = {
  joined: [...clientStays.joined].filter((sid) => logStays.get(sid)?.joinedAt == null).length,
  admitted: [...clientStays.admitted].filter((sid) => logStays.get(sid)?.readyAt == null).length,
};

// ----- report ------------------------------------------------------------------------------
const span = (ts) => (ts.length ? (Math.max(...ts.map((t) => t[1])) - Math.min(...ts.map((t) => t[0]))) / 1000 : NaN);
const joinSpan = span(joinTimes);
const orderSpan = span(orderTimes);
const f = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");
const wrongProviderAnswers = providerAnswersWrong(providerOrders);
const counts = { ...live.counts, providerAnswersWrong: wrongProviderAnswers.length, providerRetriesRefused: retriesRefused.length,
  closedOrdersHoldNotReleased: holdsNotReleased, admissionOrderViolations: admission.violations,
  admittedOutOfArrivalOrder: arrivalOrder.violations, socketPositionUpOrNoAdmitted: socketCheck.count, drained: drained ? 0 : 1,
  pendingButProviderPaid: paidButPending,
  ...(CANCEL ? { notRefundedAfterCancel: cancellation.ran ? cancellation.owed : 1, refundsIssuedTwice: cancellation.twice } : {}) };
console.log(`\nFlash crowd: ${N} buyers, ${classes.length} classes (${classSpecs.map((c) => `${c.name} ${c.total}`).join(", ")}), ` +
  `${slots} checkout slots, holds ${HOLD_SECONDS} s, ${CONCURRENCY} requests in flight, seed ${SEED}, restart ${RESTART ? "on" : "off"}, ` +
  `${SHARDS} queue shard${SHARDS > 1 ? "s" : ""}, ${WS_BUYERS} buyers on the WebSocket`);
console.log(`baselines (same run, ${CONCURRENCY} connections, ${BASELINE_SECONDS} s): no-op Worker ${f(baseNoop.rps)} req/s p50 ${baseNoop.p50} ms p99 ${baseNoop.p99} ms; ` +
  `trivial object ${f(baseTrivial.rps)} req/s p50 ${baseTrivial.p50} ms p99 ${baseTrivial.p99} ms`);
console.log(`joins       ${joinTimes.length} in ${f(joinSpan, 1)} s = ${f(joinTimes.length / joinSpan)} joins/s (${f(joinTimes.length / joinSpan / baseNoop.rps * 100, 1)}% of no-op, ${f(joinTimes.length / joinSpan / baseTrivial.rps * 100, 1)}% of trivial object); p50 ${f(pct(lat.join, 50))} ms p99 ${f(pct(lat.join, 99))} ms`);
console.log(`orders      ${orderTimes.length} requests in ${f(orderSpan, 1)} s = ${f(orderTimes.length / orderSpan)} orders/s; p50 ${f(pct(lat.order, 50))} ms p99 ${f(pct(lat.order, 99))} ms (created ${ordersCreated})`);
console.log(`webhooks    ${lat.webhook.length} deliveries; p50 ${f(pct(lat.webhook, 50))} ms p99 ${f(pct(lat.webhook, 99))} ms`);
// The order request's round trip up to its 502, by what the fake did with the create call.
const faultMs = (modes) => providerOrders.filter((o) => modes.includes(o.mode) && o.status === 502).map((o) => o.ms);
console.log(`providers   create calls at the fakes ${JSON.stringify(fakes.stats)}; order → 502 after a refusal/5xx/reset p50 ${f(pct(faultMs(["reject", "5xx", "reset"]), 50))} ms, ` +
  `after no answer (8 s timeout) p50 ${f(pct(faultMs(["hang"]), 50))} ms max ${f(Math.max(...faultMs(["hang"])))} ms; ${live.closedEarly.length} orders closed early checked for a released hold`);
console.log(`admission   ${admission.admitted} of ${admission.sessions} sessions admitted over ${f(admission.admissionSpanS, 1)} s = ${f(admission.admitted / Math.max(admission.admissionSpanS, 1))} admissions/s`);
console.log(`pre-queue   ${admission.prequeue.fans} fans joined before the sale opened (it opened ${PREQUEUE_SECONDS} s after the event was configured); placed by the shuffle with ` +
  `${admission.prequeue.outOfJoinOrder} of ${Math.max(0, admission.prequeue.fans - 1)} neighbours out of join order; ${admission.prequeue.behindLaterJoiners} placed behind a later joiner`);
if (SHARDS > 1) {
  const hub = shardFiles?.hub ?? {};
  console.log(`shards      ${SHARDS} queue shards (${shardFiles?.shardFiles} shard files); ${arrivalOrder.stays.length} stays in the event log from ${fanEvents.length} fan events; ` +
    `${hub.nextTickId ? hub.nextTickId - 1 : "?"} rounds, ${hub.roundsWithStragglers ?? "?"} decided without every shard; ${shardFiles?.idleSkips} skipped as idle; ` +
    `${shardFiles?.stuck.length} stays still QUEUED/ADMITTED in the shards; admitted twice ${admission.admittedTwice}, after leaving ${admission.admittedAfterLeaving}, key changed ${admission.keyChanged}`);
  console.log(`event log   client-seen stays missing from it: ${notInLog.joined} of ${clientStays.joined.size} joins, ${notInLog.admitted} of ${clientStays.admitted.size} admissions`);
}
console.log(`admitted in time from the join to the admission seen: polling p50 ${f(pct(lat.admittedPoll, 50))} ms p99 ${f(pct(lat.admittedPoll, 99))} ms (${lat.admittedPoll.length}); ` +
  `socket p50 ${f(pct(lat.admittedSocket, 50))} ms p99 ${f(pct(lat.admittedSocket, 99))} ms (${lat.admittedSocket.length}); all p50 ${f(pct([...lat.admittedPoll, ...lat.admittedSocket], 50))} ms p99 ${f(pct([...lat.admittedPoll, ...lat.admittedSocket], 99))} ms`);
if (WS_BUYERS > 0) {
  const positionsPerFan = [...socketFans.values()].map((x) => x.stays.reduce((a, st) => a + st.positions.length, 0));
  console.log(`sockets     ${WS_BUYERS} buyers on the WebSocket (${socketFans.size} followed a stay): ${JSON.stringify(sockets)}; position messages per fan p50 ${f(pct(positionsPerFan, 50))} max ${f(Math.max(0, ...positionsPerFan))}; ` +
    `fans whose position went up ${socketCheck.rose}, admitted without an admitted message ${socketCheck.missed}`);
}
console.log(`drain       ${f((drainedAt - clientsDone) / 1000, 1)} s after the last client action (${drained ? "drained" : `NOT drained: ${JSON.stringify(last)}`}); whole sale ${f((drainedAt - saleStart) / 1000, 1)} s`);
console.log(`restart     ${restartMs === null ? "not injected" : `after ${restartAfterOrders} orders: runtime down ${restartMs.downMs} ms, ${tally["redelivered queue messages"] ?? 0} messages redelivered in ${restartMs.redeliveryMs} ms`}`);
console.log(`orders by status ${JSON.stringify(live.byStatus)}, refunds flagged ${live.refunds}`);
console.log(`cancellation ${CANCEL ? `event cancelled (HTTP ${cancellation.status}), refunds ${JSON.stringify(cancellation.refunds)} within ${f(cancellation.seconds, 1)} s` : "skipped (FC_CANCEL=0)"}; ` +
  `${fakes.paid.size} payments taken at the fakes, ${stillPending.length} payments still PENDING in D1 (after waiting ${f(reconcileWaitS, 1)} s for reconciliation)`);
console.log(`classes     ${live.classes.map((c) => `${c.name} total ${c.total} sold ${c.sold} reserved ${c.reserved}`).join("; ")}`);
console.log(`client tally ${JSON.stringify(Object.fromEntries(Object.entries(tally).sort()))}`);
console.log("\nchecker (every count must be 0):");
for (const [k, v] of Object.entries(counts)) console.log(`  ${k.padEnd(28)} ${v}`);
const failed = Object.values(counts).some((v) => v !== 0);
// Evidence for whatever failed: examples, and the run's directory (D1 and the objects' SQLite files).
const evidence = { ...live.evidence, providerAnswersWrong: wrongProviderAnswers.slice(0, 10), providerRetriesRefused: retriesRefused.slice(0, 10) };
for (const [name, list] of Object.entries(evidence)) {
  if (list.length) console.log(`\n${name}, first ${Math.min(10, list.length)}:\n${list.slice(0, 10).map((e) => JSON.stringify(e)).join("\n")}`);
}
if (arrivalOrder.violations) console.log(`\nadmitted out of arrival order (X admitted, Y with a smaller key admitted by a later round), first ${arrivalOrder.examples.length}:\n${arrivalOrder.examples.map((e) => JSON.stringify(e)).join("\n")}`);
if (admission.examples?.length && admission.violations) console.log(`\nadmission anomalies, first ${admission.examples.length}:\n${admission.examples.map((e) => JSON.stringify(e)).join("\n")}`);
if (shardFiles?.stuck.length) console.log(`\nstays still QUEUED/ADMITTED in the shards, first 10:\n${shardFiles.stuck.slice(0, 10).map((x) => JSON.stringify(x.record)).join("\n")}`);
if (socketCheck.count) console.log(`\nsocket fans, first ${socketCheck.examples.length}:\n${socketCheck.examples.map((e) => JSON.stringify(e)).join("\n")}`);
if (risesExplained) {
  const { examples, ...figures } = risesExplained;
  console.log(`\npositions that rose, against the estimate's documented error (bound: other shards' fans in the fan's bucket + 2 × their arrivals in the 2 s up to the fan's; withinBound: rises ≤ 2 × bound; sinceJoinS: from the join to the higher position), the five furthest beyond it:\n${JSON.stringify(figures)}\n${examples.map((e) => JSON.stringify(e)).join("\n")}`);
}
if (failed || KEEP) {
  // What the sockets said, beside the run's D1 and objects, for a later look.
  writeFileSync(join(persistDir, "harness-sockets.json"), JSON.stringify([...socketFans].map(([userId, fan]) => ({ userId, stays: fan.stays, admittedSessions: [...fan.admittedSessions] }))));
  console.log(`\nthe run's directory is kept (harness-sockets.json: what each socket fan received): ${persistDir}`);
}
else rmSync(persistDir, { recursive: true, force: true });
console.log(failed ? "\nFAILED" : "\nOK");
console.log(`(${((Date.now() - started) / 1000).toFixed(0)} s in all)`);
process.exit(failed ? 1 : 0);
