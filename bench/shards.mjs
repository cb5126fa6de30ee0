// Issue 15, queue shards: an event whose waitroom is spread over `eventConfig.waitroom.shards`
// QueueShard objects, the event's EventHub keeping the checkout slots and running admission
// rounds from its alarm once a second. Four parts, each on its own fresh workerd (Miniflare on
// 127.0.0.1), every figure printed beside a baseline measured in the same run:
//
// join     A join into one queue shard versus that shard's `/ping` (the same trivial SQLite
//          round trip as the hub's), interleaved, run inside workerd by the gate Worker
//          (Worker → object, bench/lib/hub.mjs); beside them, from the same run, the one-object
//          waitroom: a join into an EventHub versus its `/ping`. Joins go to the shard that
//          `shard_of` names for the user (bench/lib/hub.mjs `shardOf`, checked against the app
//          first: every shard but the user's must refuse the join with 409).
// session  A fan's poll through the full Worker (`GET /api/events/{id}/waitroom/session` with
//          the fan's bearer token: auth, the event gate, the fan's shard) versus the no-op JS
//          Worker, both over HTTP with the same autocannon requests (each with the next fan's
//          token), interleaved; beside them, two floors from the same run: a JS Worker
//          forwarding to a trivial SQLite object (any Worker -> object call costs at least
//          that) and the app's Worker answering an unknown /api route (its own fixed cost). Whatever main does with polls is measured (no edge cache for
//          sessions today). With SESSION_FANS fans in turn, each fan polls every few seconds,
//          so the Worker's per-isolate caches (the event for 2 s, a fan's account for 30 s) and
//          the shard's sighting writes (at most one per fan per 10 s) behave as in a sale.
// admit    Admissions per second from one event with SHARDS_COUNT shards and SHARDS_QUEUED
//          fans queued. The queue is filled through joins into the shards (in workerd, all
//          shards at once; the fill rate is printed against the shards' `/ping` rate) with
//          admission paused (0 slots). Then one `syncEvent` opens SHARDS_SLOTS checkout slots
//          with an admission batch of SHARDS_BATCH, and the hub's alarm drives the rounds.
//          Slots turn over by expiry: checkout tokens live SHARDS_CHECKOUT_TTL seconds (set
//          through the hub's `syncEvent`; the API's minimum is 60 s), so the hub frees them
//          itself, as for any fan who never orders, and tells each fan's shard
//          (`CheckoutEnded`); the bench sends the hub nothing while it runs. Admission times
//          are the shards' own: every admitted fan's QUEUE_READY event carries its `at` and
//          the round's tick id, read from the event log in D1 at the end. Printed: the first
//          10,000 (or all, if fewer) admissions, the whole window, round to round (each round
//          plus the checkout ends that free its slots: the steady state), and per round;
//          checked: no fan admitted twice, and each round admitted only places after every
//          place of the rounds before (the admission order across shards). The window stops
//          after SHARDS_ADMIT_SECONDS even if fans are still queued.
// calls    SHARDS_CALL_JOINS fans join a sharded event through the full Worker (HTTP), the
//          app's module wrapped to count (bench/lib/hub.mjs `countingModules`): requests and
//          alarms reaching the EventHub (ideally none but the rounds' alarms), requests
//          reaching the shards, and D1 statements by SQL, per 1,000 joins (the Worker keeps
//          the event per isolate for 2 s; each fan's account standing is read once per 30 s).
//
// Exits non-zero only when something is wrong (errors, wrong answers), never because a
// figure is slow.
//
// Environment (defaults in brackets):
//   SHARDS_PARTS         which parts, comma-separated [join,session,admit,calls]
//   SHARDS_COUNT         queue shards of the sharded events [8]
//   BENCH_SECONDS        seconds per timed round (join, session) [3]
//   BENCH_ROUNDS         rounds per figure, interleaved and alternating (a b, b a, ...) [3]
//   BENCH_CLIENTS        concurrent clients (every part) [32]
//   SETTLE_MS            pause after each timed join figure, once the object's outbox is
//                        empty (a shard's fan events go out from its alarm within 1 s) [1500]
//   SESSION_FANS         fans joined, then polling in turn (session) [500]
//   SESSION_ASSETS       on | off: the app behind its [assets] as wrangler.toml deploys it, or
//                        without Miniflare's assets router in front (the Worker's own cost) [on]
//   SHARDS_QUEUED        fans queued before admission opens (admit) [100000]
//   SHARDS_SLOTS         checkout slots opened (admit; the validation maximum) [10000]
//   SHARDS_BATCH         admission batch (admit; the validation maximum) [10000]
//   SHARDS_CHECKOUT_TTL  checkout token lifetime in seconds, how fast slots turn over (admit) [1]
//   SHARDS_ADMIT_SECONDS how long admission runs at most; about 150 drains 100,000 here (admit) [60]
//   SHARDS_CALL_JOINS    joins through the full Worker (calls) [10000]
//   BENCH_STORAGE        shm | disk: where the objects' SQLite files live [shm] (bench/lib/hub.mjs)
import { createHmac, randomUUID } from "node:crypto";
import http from "node:http";
import autocannon from "autocannon";
import {
  startHub,
  rpc,
  ping,
  eventSetup,
  envInt,
  jwtSecret,
  shardOf,
  shardSettingsJson,
  countingModules,
  workerdRssMb,
} from "./lib/hub.mjs";
import { startApp, startNoop, startNoopBehindAssets, startTrivialObject } from "./lib/runtime.mjs";
import { drive, interleaved, ratio, table, fmt, assertNoErrors, median } from "./lib/drive.mjs";

const seconds = envInt("BENCH_SECONDS", 3, { min: 1 });
const rounds = envInt("BENCH_ROUNDS", 3, { min: 1 });
const clients = envInt("BENCH_CLIENTS", 32, { min: 1 });
const settleMs = envInt("SETTLE_MS", 1_500);
const shardCount = envInt("SHARDS_COUNT", 8, { min: 2 });
if (shardCount > 64) throw new Error(`SHARDS_COUNT must be at most 64 (MAX_SHARDS), got ${shardCount}`);
const sessionFans = envInt("SESSION_FANS", 500, { min: 1 });
const queued = envInt("SHARDS_QUEUED", 100_000, { min: 1 });
const slots = envInt("SHARDS_SLOTS", 10_000, { min: 1 });
const batch = envInt("SHARDS_BATCH", 10_000, { min: 1 });
const checkoutTtl = envInt("SHARDS_CHECKOUT_TTL", 1, { min: 1 });
const admitSeconds = envInt("SHARDS_ADMIT_SECONDS", 60, { min: 5 });
const callJoins = envInt("SHARDS_CALL_JOINS", 10_000, { min: 1 });
const withAssets = (process.env.SESSION_ASSETS ?? "on") !== "off";
const parts = (process.env.SHARDS_PARTS ?? "join,session,admit,calls").split(",").map((p) => p.trim()).filter(Boolean);
for (const p of parts) if (!["join", "session", "admit", "calls"].includes(p)) throw new Error(`unknown SHARDS_PARTS entry: ${p}`);

const WORKER = "Worker -> object (in workerd)";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const header = (text) => console.log(`\n${text}`);
const range = (n) => Array.from({ length: n }, (_, i) => i);
/** Everything wrong found along the way; the scenario fails at the end if any. */
const problems = [];
const wrong = (text) => {
  problems.push(text);
  console.log(`WRONG: ${text}`);
};

/** A runtime that logged critical errors (Rust panics) did something wrong, whatever it answered. */
function checkCritical(part, { count, first }) {
  if (count > 0) wrong(`${part}: the runtime logged ${count} critical error(s), the first: ${first}`);
}

// ----- shared helpers ------------------------------------------------------------------------

/** `n` user ids `${prefix}-<i>` that hash to shard `shard` of `count` (shardOf). */
function usersOfShard(prefix, shard, count, n) {
  const out = [];
  for (let i = 0; out.length < n; i++) {
    const id = `${prefix}-${i}`;
    if (shardOf(id, count) === shard) out.push(id);
  }
  return out;
}

/** A join body as the app's Worker sends it (the gate builds the same one inside workerd). */
function shardJoinBody(userId, settingsJson) {
  const tieBreak = Math.floor(Math.random() * Number.MAX_SAFE_INTEGER);
  return `{"op":"join","userId":${JSON.stringify(userId)},"sessionId":"${randomUUID()}","stamp":{"atMs":${Date.now()},"tieBreak":${tieBreak}},"settings":${settingsJson}}`;
}

/** The raw reply of one call to an HTTP-shaped target. */
async function rawCall(target, path, body) {
  const res = await target.fetch(`https://event-hub${path}`, { method: "POST", body });
  return { status: res.status, body: JSON.parse((await res.text()) || "null") };
}

/**
 * Checks bench/lib/hub.mjs `shardOf` against the app: each user's join is accepted by the
 * shard shardOf names and refused (409 CONFLICT) by every other shard. Returns the joins made.
 */
async function checkShardOf(hub, event, settings, users) {
  let accepted = 0;
  for (const user of users) {
    const mine = shardOf(user, shardCount);
    for (const k of range(shardCount)) {
      const { status, body } = await rawCall(hub.shardHttp(event, k), "/rpc", shardJoinBody(user, settings[k]));
      if (k === mine && (status !== 200 || body?.waitroomSession?.status !== "QUEUED")) {
        throw new Error(`shardOf disagrees with the app: ${user} -> shard ${k} answered ${status} ${JSON.stringify(body)}`);
      }
      if (k !== mine && (status !== 409 || body?.code !== "CONFLICT")) {
        throw new Error(`shardOf disagrees with the app: ${user} is not shard ${k}'s, yet it answered ${status} ${JSON.stringify(body)}`);
      }
      accepted += Number(k === mine);
    }
  }
  return accepted;
}

/** Sum of the fans in `type` batches (QUEUE_JOINED, QUEUE_READY, ...) in the event log (D1). */
async function loggedFans(db, eventId, type) {
  const row = await db
    .prepare("SELECT COALESCE(SUM(json_extract(payload, '$.count')), 0) AS n, COUNT(*) AS messages FROM event_log WHERE event_id = ?1 AND type = ?2")
    .bind(eventId, type)
    .first();
  return { fans: Number(row.n), messages: Number(row.messages) };
}

/** Waits until the event log holds `want` fans of `type` (or stops changing); returns what it holds. */
async function awaitLogged(db, eventId, type, want, timeoutMs = 60_000) {
  const deadline = performance.now() + timeoutMs;
  let last = -1;
  let stableSince = performance.now();
  for (;;) {
    const got = await loggedFans(db, eventId, type);
    if (want !== undefined && got.fans >= want) return got;
    if (got.fans !== last) {
      last = got.fans;
      stableSince = performance.now();
    } else if (want === undefined && performance.now() - stableSince > 4_000) return got;
    if (performance.now() > deadline) return got;
    await sleep(250);
  }
}

// HTTP client for the full-Worker parts: node:http with keep-alive (the same client for the
// no-op baseline and the app, so its own cost is the same on both sides).
const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
function request(url, { method = "GET", headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: body ? { "Content-Type": "application/json", ...headers } : headers }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body));
  });
}
async function api(base, path, { method = "GET", token, body } = {}) {
  const res = await request(`${base}${path}`, { method, body, headers: token ? { Authorization: `Bearer ${token}` } : {} });
  let parsed;
  try {
    parsed = res.text ? JSON.parse(res.text) : null;
  } catch {
    parsed = res.text;
  }
  return { status: res.status, body: parsed };
}
async function must(promise, what) {
  const res = await promise;
  if (res.status >= 300) throw new Error(`${what}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
  return res.body;
}

const b64url = (b) => Buffer.from(b).toString("base64url");
/** What POST /api/auth/login issues a verified fan (HS256 with the app's JWT secret; `ev`: the email is verified). */
function accessToken(secret, userId, nowS) {
  const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const claims = b64url(JSON.stringify({ sub: userId, role: "user", ver: 0, ev: true, iss: "ticketbottle-edge", aud: "ticketbottle-api", iat: nowS, exp: nowS + 3 * 3600 }));
  return `${head}.${claims}.${createHmac("sha256", secret).update(`${head}.${claims}`).digest("base64url")}`;
}

/**
 * `count` verified fans written straight into D1, with access tokens minted with the app's
 * secret: what register + login produce, without a PBKDF2 run per fan.
 */
async function insertFans(db, secret, prefix, count) {
  const nowS = Math.floor(Date.now() / 1000);
  const fans = range(count).map((i) => {
    const id = randomUUID();
    return { id, token: accessToken(secret, id, nowS), i };
  });
  for (let k = 0; k < count; k += 500) {
    await db.batch(
      fans.slice(k, k + 500).map((f) =>
        db
          .prepare("INSERT INTO users (id, email, password_hash, first_name, last_name, email_verified, created_at, updated_at) VALUES (?1, ?2, 'x', 'Fan', ?3, 1, ?4, ?4)")
          .bind(f.id, `${prefix}-${f.i}@shards.test`, String(f.i), Date.now()),
      ),
    );
  }
  return fans;
}

/** An organizer's published event with a sharded waitroom, made through the API as an organizer would. */
async function shardedEventViaApi(base, waitroom) {
  const account = async (email) => {
    const password = "shards-bench-password-1";
    const reg = await api(base, "/api/auth/register", { method: "POST", body: { email, password, firstName: "Bench", lastName: "Shards" } });
    if (reg.status >= 300 && reg.status !== 409) throw new Error(`register ${email}: ${reg.status} ${JSON.stringify(reg.body)}`);
    return (await must(api(base, "/api/auth/login", { method: "POST", body: { email, password } }), `login ${email}`)).accessToken;
  };
  const organizer = await account("organizer@shards.test");
  const admin = await account("admin@ticketbottle.dev");
  const now = Date.now();
  const iso = (ms) => new Date(ms).toISOString();
  const { event } = await must(
    api(base, "/api/events", {
      method: "POST",
      token: organizer,
      body: { name: "Queue shards bench", description: "bench", location: "Hanoi", startDate: iso(now + 30 * 86400e3), endDate: iso(now + 30 * 86400e3 + 3 * 3600e3) },
    }),
    "create event",
  );
  await must(
    api(base, `/api/events/${event.id}/config`, {
      method: "PUT",
      token: organizer,
      body: {
        ticketSaleStartDate: iso(now - 3600e3),
        ticketSaleEndDate: iso(now + 7 * 86400e3),
        isFree: false,
        maxAttendees: null,
        isPublic: true,
        requiresApproval: false,
        allowWaitRoom: true,
        isNewTrending: false,
        maxTicketsPerUser: 4,
        waitroom,
      },
    }),
    "configure",
  );
  await must(
    api(base, `/api/events/${event.id}/ticket-classes`, { method: "POST", token: organizer, body: { name: "GA", priceCents: 100_000, total: 1_000_000, currency: "VND" } }),
    "ticket class",
  );
  await must(api(base, `/api/events/${event.id}/approve`, { method: "POST", token: admin }), "approve");
  await must(api(base, `/api/events/${event.id}/publish`, { method: "POST", token: organizer }), "publish");
  return event.id;
}

/**
 * One autocannon run of GET `path` with each request carrying the next of `tokens` as its
 * bearer token; an answer other than `status` is an error, and `check(body)` is applied to
 * every 50th answer (a throw counts as an error).
 * Returns the shape of bench/lib/drive.mjs `drive`.
 */
async function cannon(base, path, tokens, { check, status: expected = 200, seconds: secs = seconds } = {}) {
  if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(base)) throw new Error(`refusing a non-loopback target: ${base}`);
  let n = 0;
  let answered = 0;
  let errors = 0;
  let firstError;
  const result = await autocannon({
    url: base,
    connections: clients,
    duration: secs,
    requests: [
      {
        method: "GET",
        path,
        setupRequest: (req) => ({ ...req, headers: { ...req.headers, authorization: `Bearer ${tokens[n++ % tokens.length]}` } }),
        onResponse: (status, body) => {
          if (status !== expected) {
            errors++;
            firstError ??= new Error(`GET ${path}: ${status} ${String(body).slice(0, 200)}`);
          } else if (check && answered++ % 50 === 0) {
            try {
              check(body);
            } catch (error) {
              errors++;
              firstError ??= error;
            }
          }
        },
      },
    ],
  });
  const requests = result.requests.total;
  const elapsed = result.duration;
  errors += result.errors + result.timeouts;
  return { ops: requests, requests, elapsed, opsPerSec: requests / elapsed, reqPerSec: requests / elapsed, p50: result.latency.p50, p99: result.latency.p99, mean: result.latency.average, errors, firstError };
}

/** `step(item)` once for every item, `clients` at a time; fails on any error. Returns the drive's figures. */
async function eachOnce(what, items, step) {
  let next = 0;
  const r = await drive({ seconds: 3_600, clients, maxOps: items.length, step: () => step(items[next++]) });
  assertNoErrors(what, r);
  return r;
}

/** Every fan joins through the full Worker; checks each answer. Returns the drive's figures. */
function joinAll(base, eventId, fans) {
  return eachOnce("joins through the Worker", fans, async (fan) => {
    const res = await api(base, `/api/events/${eventId}/waitroom/join`, { method: "POST", token: fan.token });
    if (res.status !== 200 || res.body?.waitroomSession?.status !== "QUEUED") {
      throw new Error(`join of fan ${fan.i}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
    }
  });
}

// ----- join: a join into a shard versus the shard's /ping ----------------------------------------

async function partJoin() {
  const hub = await startHub();
  try {
    const EVENT = "bench-shards-join";
    const ONE = "bench-shards-one";
    const setup = eventSetup(EVENT, { waitroom: {}, shards: shardCount });
    await rpc(hub.http(EVENT), setup);
    await rpc(hub.http(ONE), eventSetup(ONE, { waitroom: {} }));
    const settings = range(shardCount).map((k) =>
      shardSettingsJson(EVENT, k, shardCount, { secret: hub.jwtSecret, saleStartsAtMs: setup.saleStartsAtMs, saleEndsAtMs: setup.saleEndsAtMs }),
    );
    // shardOf against the app (also warms every shard), then warm the measured ones.
    let shardJoins = await checkShardOf(hub, EVENT, settings, range(16).map((i) => `check-${i}`));
    const shard0 = hub.shardHttp(EVENT, 0);
    const one = hub.http(ONE);
    for (let i = 0; i < 50; i++) {
      await ping(shard0);
      await ping(one);
    }
    for (const u of usersOfShard("warm", 0, shardCount, 20)) {
      await rawCall(shard0, "/rpc", shardJoinBody(u, settings[0]));
      shardJoins++;
    }
    for (let i = 0; i < 20; i++) await rpc(one, { op: "join", userId: `warm-${i}` });

    // Fresh fans of shard 0 for each round (a join of a fan already queued would only read).
    const perRound = seconds * 6_000;
    const names = ["shard-ping", "shard-join", "hub-ping", "hub-join"];
    const results = await interleaved(
      names,
      rounds,
      (name, r) => {
        const common = { seconds, clients, prefix: `w${r}` };
        if (name === "shard-ping") return hub.driveInside({ ...common, event: EVENT, kind: "shard-ping", shard: 0 });
        if (name === "shard-join") {
          const users = usersOfShard(`r${r}`, 0, shardCount, perRound);
          return hub.driveInside({ ...common, event: EVENT, kind: "shard-join", shard: 0, users, settings });
        }
        return hub.driveInside({ ...common, event: ONE, kind: name === "hub-ping" ? "ping" : "join" });
      },
      async (name) => {
        if (name === "hub-join") {
          const deadline = performance.now() + 30_000;
          while ((await rpc(one, { op: "status" })).outboxBacklog > 0 && performance.now() < deadline) await sleep(100);
          await sleep(settleMs);
        } else if (name === "shard-join") {
          await sleep(settleMs + 1_000);
        }
      },
    );
    for (const r of results["shard-join"].rounds) {
      if (r.ops >= perRound) console.log(`note: a join round used all ${fmt(perRound)} prepared fans before its ${seconds} s were up`);
    }
    shardJoins += results["shard-join"].ops;

    const rows = [];
    const pair = (label, base, x, what) => {
      rows.push([WORKER, `${label} /ping (trivial round trip)`, fmt(base.reqPerSec), "1.00", "", fmt(base.errors)]);
      const q = ratio(x, base);
      rows.push([WORKER, `${label} ${what}`, fmt(x.reqPerSec), q.text, q.range, fmt(x.errors)]);
      return q;
    };
    const shardRatio = pair(`shard 0 of ${shardCount}:`, results["shard-ping"], results["shard-join"], "join (new fan, its shard)");
    const hubRatio = pair("one EventHub:", results["hub-ping"], results["hub-join"], "join (new fan, one-object waitroom)");
    header(`Queue shard joins: shard 0 of an event with ${shardCount} shards, and a one-object waitroom for comparison; ${clients} clients, ${rounds} x ${seconds} s per figure (interleaved), workerd via Miniflare on 127.0.0.1`);
    console.log(table([["driver", "l"], ["figure", "l"], ["req/s", "r"], ["ratio", "r"], ["per round", "r"], ["errors", "r"]], rows));
    console.log(
      `ratio = joins/s over the same object's /ping requests/s; goal for a shard join >= 0.60 (the one-object join was 0.28); here shard ${shardRatio.text}, one-object ${hubRatio.text}`,
    );
    console.log(`shardOf checked against the app: 16 fans, each accepted by its own shard and refused (409) by the other ${shardCount - 1}`);

    // Every join into a shard is recorded once: its QUEUE_JOINED reaches the event log.
    const db = await hub.d1();
    const logged = await awaitLogged(db, EVENT, "QUEUE_JOINED", shardJoins, 30_000);
    console.log(`event log: ${fmt(logged.fans)} QUEUE_JOINED fans in ${fmt(logged.messages)} messages for ${fmt(shardJoins)} shard joins`);
    if (logged.fans !== shardJoins) wrong(`join: ${shardJoins} shard joins but ${logged.fans} QUEUE_JOINED fans in the event log`);
    for (const name of names) assertNoErrors(`join ${name}`, results[name]);
    checkCritical("join", hub.critical());
  } finally {
    await hub.dispose();
  }
}

// ----- session: a poll through the full Worker versus the no-op Worker ----------------------------

async function partSession() {
  const secret = jwtSecret();
  const noop = await startNoop();
  const trivial = await startTrivialObject();
  const noopAssets = await startNoopBehindAssets();
  // SESSION_ASSETS=off: the app without the local assets router in front (the Worker's own cost).
  const app = await startApp({ bindings: { JWT_SECRET: secret }, ...(withAssets ? {} : { assets: undefined }) });
  const FLOOR = "/api/__no_such_route";
  try {
    // One slot (the API's minimum) held for an hour: one fan is admitted, everyone else stays queued.
    const eventId = await shardedEventViaApi(app.url, { maxConcurrentCheckouts: 1, checkoutTtlSeconds: 3600, admissionBatch: 1, shards: shardCount });
    const db = await app.mf.getD1Database("DB");
    const fans = await insertFans(db, secret, "poll", sessionFans);
    const joined = await joinAll(app.url, eventId, fans);
    // Let a round or two run, so the shards hold every other shard's summary (positions).
    await sleep(2_500);

    const path = `/api/events/${eventId}/waitroom/session`;
    let checked = 0;
    const checkSession = (fan, text) => {
      const s = JSON.parse(text).waitroomSession;
      const fine =
        (s?.status === "QUEUED" && Number.isInteger(s.position) && s.position >= 1 && s.position <= sessionFans) || s?.status === "ADMITTED";
      if (!fine) throw new Error(`session of fan ${fan?.i ?? "?"}: unexpected ${text.slice(0, 200)}`);
      checked++;
    };
    // Every fan's session once, checked (also each fan's first sighting and account read).
    await eachOnce("session warm-up", fans, async (fan) => {
      const res = await request(`${app.url}${path}`, { headers: { Authorization: `Bearer ${fan.token}` } });
      if (res.status !== 200) throw new Error(`session of fan ${fan.i}: ${res.status} ${res.text.slice(0, 200)}`);
      checkSession(fan, res.text);
    });
    const tokens = fans.map((f) => f.token);
    await cannon(noop.url, "/", tokens, { seconds: 1 });
    await cannon(noopAssets.url, FLOOR, tokens, { seconds: 1 });

    await cannon(trivial.url, "/", tokens, { seconds: 1 });
    await cannon(app.url, FLOOR, tokens, { seconds: 1, status: 404 });

    // autocannon for every side (the cheapest client here, so the no-op side is not capped by
    // it), the same requests: GET with a fan's bearer token, fans in turn.
    const names = ["noop", "noopAssets", "trivial", "floor", "session"];
    const results = await interleaved(names, rounds, (name) =>
      name === "noop"
        ? cannon(noop.url, "/", tokens)
        : name === "noopAssets"
          ? cannon(noopAssets.url, FLOOR, tokens)
        : name === "trivial"
          ? cannon(trivial.url, "/", tokens)
          : name === "floor"
            ? cannon(app.url, FLOOR, tokens, { status: 404 })
            : cannon(app.url, path, tokens, { check: (text) => checkSession(undefined, text) }),
    );

    header(`Session polls through the full Worker versus the no-op JS Worker: ${fmt(sessionFans)} fans of an event with ${shardCount} shards polling in turn; ${clients} connections (autocannon), ${rounds} x ${seconds} s per figure (interleaved), workerd via Miniflare on 127.0.0.1`);
    const label = {
      noop: "no-op JS Worker GET / (baseline)",
      noopAssets: "no-op JS Worker behind the app's [assets], GET /api/...",
      trivial: "JS Worker -> trivial SQLite object (one hop)",
      floor: "the app's Worker, unknown /api route (404)",
      session: "GET .../waitroom/session (fan's token)",
    };
    console.log(
      table(
        [["figure", "l"], ["req/s", "r"], ["p50 ms", "r"], ["p99 ms", "r"], ["vs no-op", "r"], ["per round", "r"], ["vs no-op behind assets", "r"], ["vs one hop", "r"], ["errors", "r"]],
        names.map((name) => {
          const x = results[name];
          const q = ratio(x, results.noop);
          const qa = ratio(x, results.noopAssets);
          return [label[name], fmt(x.reqPerSec), fmt(x.p50, 1), fmt(x.p99, 1), q.text, name === "noop" ? "" : q.range, name === "noopAssets" ? "1.00" : `${qa.text} (${qa.range})`, ratio(x, results.trivial).text, fmt(x.errors)];
        }),
      ),
    );
    const perFan = sessionFans / results.session.reqPerSec;
    console.log(
      `app ${withAssets ? "behind its [assets] as deployed" : "without the local assets router (SESSION_ASSETS=off)"}; vs no-op = requests/s over the no-op Worker's, same client (goal for polls >= 0.80); vs no-op behind assets = over the no-op Worker deployed as the app is (the same assets router in front of it); vs one hop = over a JS Worker forwarding to an object that does one SQLite write (runtime.mjs startTrivialObject), the floor of any Worker -> object call here. Every fan polled about every ${fmt(perFan, 1)} s; ${fmt(checked)} polls checked (QUEUED with a position in 1..${fmt(sessionFans)}, or ADMITTED)`,
    );
    console.log(`setup: ${fmt(sessionFans)} joins through the full Worker in ${fmt(joined.elapsed, 1)} s = ${fmt(joined.opsPerSec)} joins/s (p50 ${fmt(joined.p50, 1)} ms, p99 ${fmt(joined.p99, 1)} ms)`);
    for (const name of names) assertNoErrors(name, results[name]);
  } finally {
    await app.dispose();
    await trivial.dispose();
    await noop.dispose();
    await noopAssets.dispose();
  }
}

// ----- admit: admissions per second from 8 shards with a deep queue ------------------------------

async function partAdmit() {
  const hub = await startHub({ count: true });
  try {
    const EVENT = "bench-shards-admit";
    const idleTimeoutSeconds = 3_600; // nobody is skipped as idle while the bench runs
    const waitroom = { maxConcurrentCheckouts: 0, admissionBatch: batch, checkoutTtlSeconds: checkoutTtl, idleTimeoutSeconds };
    const setup = eventSetup(EVENT, { waitroom, shards: shardCount });
    const http = hub.http(EVENT);
    await rpc(http, setup);
    const settings = range(shardCount).map((k) =>
      shardSettingsJson(EVENT, k, shardCount, { secret: hub.jwtSecret, saleStartsAtMs: setup.saleStartsAtMs, saleEndsAtMs: setup.saleEndsAtMs, idleTimeoutSeconds }),
    );
    for (const k of range(shardCount)) for (let i = 0; i < 20; i++) await ping(hub.shardHttp(EVENT, k));

    // Baseline for the fill: /ping over every shard, the same driver and clients.
    const users = range(queued).map((i) => `fan-${i}`);
    const shardsOf = users.map((u) => shardOf(u, shardCount));
    const pings = await hub.driveInside({ event: EVENT, kind: "shard-ping", shardCount, seconds, clients, prefix: "p" });
    assertNoErrors("shard pings", pings);
    const pingRate = pings.reqPerSec;

    // Fill through joins into the shards, in chunks so progress shows.
    const chunk = 10_000;
    const t = performance.now();
    let filled = 0;
    for (let from = 0; from < queued; from += chunk) {
      const r = await hub.driveInside({
        event: EVENT,
        kind: "shard-join",
        users: users.slice(from, from + chunk),
        shards: shardsOf.slice(from, from + chunk),
        settings,
        seconds: 3_600,
        clients,
        prefix: "fill",
      });
      assertNoErrors("fill", r);
      filled += r.ops;
      console.log(`fill: ${fmt(filled)} of ${fmt(queued)} joined (${fmt(filled / ((performance.now() - t) / 1000))} joins/s so far)`);
    }
    const fillSeconds = (performance.now() - t) / 1000;
    const db = await hub.d1();
    const joinedLog = await awaitLogged(db, EVENT, "QUEUE_JOINED", queued, 120_000);
    if (joinedLog.fans !== queued) wrong(`admit: ${queued} joins but ${joinedLog.fans} QUEUE_JOINED fans in the event log`);
    // The hub learns the shards' queues from their head reports, once a second.
    let status;
    for (const deadline = performance.now() + 15_000; performance.now() < deadline; await sleep(500)) {
      status = (await rpc(http, { op: "status" })).waitroom;
      if (status.queueLength === queued) break;
    }
    if (status.queueLength !== queued) wrong(`admit: the hub sees ${status.queueLength} queued after ${queued} joins`);
    const rssBefore = workerdRssMb();

    // Open the slots; the hub's alarm does the rest. Poll the hub's status for progress only.
    await hub.counts({ reset: true });
    const t0 = Date.now();
    await rpc(http, eventSetup(EVENT, { waitroom: { ...waitroom, maxConcurrentCheckouts: slots }, shards: shardCount, saleStartsAtMs: setup.saleStartsAtMs, saleEndsAtMs: setup.saleEndsAtMs }));
    const progress = [];
    let lastPrint = 0;
    for (;;) {
      await sleep(500);
      const s = (await rpc(http, { op: "status" })).waitroom;
      const at = (Date.now() - t0) / 1000;
      progress.push({ at, ...s });
      if (at - lastPrint >= 10) {
        lastPrint = at;
        console.log(`admission: ${fmt(at, 1)} s, ${fmt(s.queueLength)} queued, ${fmt(s.slotsInUse)} slots in use, ${fmt(s.admittedLastMinute)} admitted in the last minute`);
      }
      if (s.queueLength === 0 || at > admitSeconds) break;
    }
    const windowSeconds = (Date.now() - t0) / 1000;
    const calls = (await hub.counts()).objects;
    // Pause admission again, so nothing more happens while the event log catches up.
    await rpc(http, eventSetup(EVENT, { waitroom, shards: shardCount, saleStartsAtMs: setup.saleStartsAtMs, saleEndsAtMs: setup.saleEndsAtMs }));
    const rssAfter = workerdRssMb();
    const readyLog = await awaitLogged(db, EVENT, "QUEUE_READY", undefined, 120_000);

    // The admissions as the shards recorded them: one QUEUE_READY per admitted fan.
    const admitted = [];
    const rows = (await db.prepare("SELECT payload FROM event_log WHERE event_id = ?1 AND type = 'QUEUE_READY'").bind(EVENT).all()).results;
    for (const row of rows) for (const fan of JSON.parse(row.payload).fans) admitted.push(fan);
    const byUser = new Set(admitted.map((f) => f.userId));
    if (byUser.size !== admitted.length) wrong(`admit: ${admitted.length - byUser.size} fans admitted twice`);
    admitted.sort((a, b) => a.at - b.at);
    const ticks = new Map();
    for (const f of admitted) {
      const t = ticks.get(f.tickId) ?? { tick: f.tickId, n: 0, first: Infinity, last: -Infinity, lo: undefined, hi: undefined };
      t.n++;
      t.first = Math.min(t.first, f.at);
      t.last = Math.max(t.last, f.at);
      if (t.lo === undefined || f.arrivalKey < t.lo) t.lo = f.arrivalKey;
      if (t.hi === undefined || f.arrivalKey > t.hi) t.hi = f.arrivalKey;
      ticks.set(f.tickId, t);
    }
    const order = [...ticks.values()].sort((a, b) => a.tick - b.tick);
    let outOfOrder = 0;
    for (let i = 1; i < order.length; i++) if (order[i].lo < order[i - 1].hi) outOfOrder++;

    const total = admitted.length;
    const firstN = Math.min(10_000, total);
    const lastAt = total ? admitted[total - 1].at : t0;
    const firstNAt = firstN ? admitted[firstN - 1].at : t0;
    const rateAll = total / ((lastAt - t0) / 1000);
    const rateFirst = firstN / ((firstNAt - t0) / 1000);
    const firstAt = total ? admitted[0].at : t0;
    const perRound = order.map((t) => t.n);
    const gaps = order.slice(1).map((t, i) => (t.first - order[i].first) / 1000);
    const spans = order.map((t) => (t.last - t.first) / 1000);
    // Steady state: from the first round to the last, each interval one round plus the wave of
    // checkout ends that frees its slots (the last round's own fans are not in the numerator).
    const steady = order.length > 1 ? (total - order.at(-1).n) / ((order.at(-1).first - order[0].first) / 1000) : NaN;

    header(`Admissions: one event with ${shardCount} shards and ${fmt(queued)} fans queued, ${fmt(slots)} checkout slots, admission batch ${fmt(batch)}, checkout tokens ${checkoutTtl} s (slots turn over by expiry); the hub's alarm runs the rounds; workerd via Miniflare on 127.0.0.1`);
    const goal = 1_000;
    console.log(
      table(
        [["figure", "l"], ["fans", "r"], ["seconds", "r"], ["per second", "r"], ["baseline", "l"], ["ratio", "r"]],
        [
          [`fill: joins into the ${shardCount} shards (${clients} clients in workerd)`, fmt(queued), fmt(fillSeconds, 1), fmt(queued / fillSeconds), `/ping over the ${shardCount} shards ${fmt(pingRate)}/s`, (queued / fillSeconds / pingRate).toFixed(2)],
          [`admissions, the first ${fmt(firstN)}`, fmt(firstN), fmt((firstNAt - t0) / 1000, 2), fmt(rateFirst), `goal ${fmt(goal)}/s`, (rateFirst / goal).toFixed(2)],
          [`admissions, whole window`, fmt(total), fmt((lastAt - t0) / 1000, 1), fmt(rateAll), `goal ${fmt(goal)}/s`, (rateAll / goal).toFixed(2)],
          [`admissions, round to round (steady state)`, fmt(total - (order.at(-1)?.n ?? 0)), fmt(order.length > 1 ? (order.at(-1).first - order[0].first) / 1000 : NaN, 1), fmt(steady), `goal ${fmt(goal)}/s`, (steady / goal).toFixed(2)],
          [`admissions, ceiling of the settings`, "", "", fmt(Math.min(slots / checkoutTtl, batch)), `slots/ttl, batch per round`, ""],
        ],
      ),
    );
    console.log(
      `times are the shards' own (each admitted fan's QUEUE_READY \`at\`), from the syncEvent that opened the slots; first admission after ${fmt((firstAt - t0) / 1000, 2)} s; the window closed after ${fmt(windowSeconds, 1)} s (the hub's last answer then: ${fmt(progress.at(-1)?.queueLength)} queued), a round already running may admit after it`,
    );
    console.log(
      `rounds that admitted: ${order.length}; fans per round min/median/max ${fmt(Math.min(...perRound))}/${fmt(median(perRound))}/${fmt(Math.max(...perRound))}; between rounds' first admissions median ${fmt(median(gaps), 2)} s (max ${fmt(Math.max(...gaps, 0), 2)} s); a round's admissions spread over median ${fmt(median(spans), 2)} s`,
    );
    console.log(
      `checked: ${fmt(total)} admitted fans, none twice; rounds admitting a place before one of an earlier round: ${outOfOrder}; event log ${fmt(readyLog.fans)} QUEUE_READY fans in ${fmt(readyLog.messages)} messages; hub's smoothed rate at the end ${fmt(progress.at(-1)?.admissionsPerSecond)}/s; workerd RSS ${fmt(rssBefore)} -> ${fmt(rssAfter)} MB`,
    );
    console.log(`requests and alarms of the objects during the window (counting wrapper): ${JSON.stringify(calls)}`);
    if (outOfOrder > 0) wrong(`admit: ${outOfOrder} rounds admitted a place ahead of one an earlier round admitted`);
    if (total === 0) wrong("admit: nobody was admitted");
    checkCritical("admit", hub.critical());
  } finally {
    await hub.dispose();
  }
}

// ----- calls: what reaches the hub and D1 while fans join ---------------------------------------

async function partCalls() {
  const secret = jwtSecret();
  const app = await startApp({ modules: countingModules(), bindings: { JWT_SECRET: secret } });
  try {
    const eventId = await shardedEventViaApi(app.url, { maxConcurrentCheckouts: 100, checkoutTtlSeconds: 900, admissionBatch: 100, shards: shardCount });
    const db = await app.mf.getD1Database("DB");
    const fans = await insertFans(db, secret, "calls", callJoins);
    const counts = async (reset) => (await request(`${app.url}/__bench/counts`, { method: reset ? "POST" : "GET" })).text;
    await counts(true);
    const t = performance.now();
    const joined = await joinAll(app.url, eventId, fans);
    const during = JSON.parse(await counts(true));
    const joinSeconds = (performance.now() - t) / 1000;
    // The fan events the joins caused reach the event log (the queue consumer's D1 writes).
    const logged = await awaitLogged(db, eventId, "QUEUE_JOINED", callJoins, 60_000);
    const after = JSON.parse(await counts(false));
    if (logged.fans !== callJoins) wrong(`calls: ${callJoins} joins but ${logged.fans} QUEUE_JOINED fans in the event log`);

    const sum = (obj, pred) => Object.entries(obj).filter(([k]) => pred(k)).reduce((s, [, n]) => s + n, 0);
    const hubRequests = sum(during.objects, (k) => k.startsWith("hub ") && k !== "hub alarm");
    const hubAlarms = during.objects["hub alarm"] ?? 0;
    const shardJoins = during.objects["shard rpc join"] ?? 0;
    const shardOther = sum(during.objects, (k) => k.startsWith("shard ") && k !== "shard rpc join");
    const kindOf = (sql) =>
      /event_log/i.test(sql) ? "event log (queue consumer)" : /FROM users\b/i.test(sql) ? "account standing (auth)" : /\b(events|event_roles|categories|event_categories)\b/i.test(sql) ? "event (waitroom gate)" : "other";
    const d1ByKind = (tally) => {
      const out = {};
      for (const [sql, n] of Object.entries(tally.d1)) out[kindOf(sql)] = (out[kindOf(sql)] ?? 0) + n;
      return out;
    };
    const joinsD1 = d1ByKind(during);
    const drainD1 = d1ByKind(after);
    const per1000 = (n) => (n * 1000) / callJoins;
    const d1Total = Object.values(joinsD1).reduce((s, n) => s + n, 0);
    const d1Request = d1Total - (joinsD1["event log (queue consumer)"] ?? 0);

    header(`Calls per join: ${fmt(callJoins)} fans join an event with ${shardCount} shards through the full Worker (HTTP, ${clients} connections) in ${fmt(joinSeconds, 1)} s = ${fmt(joined.opsPerSec)} joins/s; the app's module wrapped to count (bench/lib/hub.mjs countingModules)`);
    console.log(
      table(
        [["figure", "l"], ["count", "r"], ["per 10,000 joins", "r"], ["per 1,000 joins", "r"], ["baseline", "l"], ["ratio", "r"]],
        [
          ["requests reaching the EventHub", fmt(hubRequests), fmt((hubRequests * 10_000) / callJoins, 1), fmt(per1000(hubRequests), 2), "one-object waitroom: 10,000 (one per join)", (hubRequests / callJoins).toFixed(4)],
          ["EventHub alarms (the rounds run from them)", fmt(hubAlarms), fmt((hubAlarms * 10_000) / callJoins, 1), fmt(per1000(hubAlarms), 2), `${fmt(joinSeconds, 1)} s of joins, one round a second`, ""],
          ["joins reaching the shards", fmt(shardJoins), fmt((shardJoins * 10_000) / callJoins), fmt(per1000(shardJoins)), "one per join", (shardJoins / callJoins).toFixed(2)],
          ["other shard requests (the rounds' messages)", fmt(shardOther), fmt((shardOther * 10_000) / callJoins, 1), fmt(per1000(shardOther), 2), "", ""],
          ["D1 round trips of the Worker's requests", fmt(d1Request), fmt((d1Request * 10_000) / callJoins), fmt(per1000(d1Request), 1), "goal < 10 per 1,000", (per1000(d1Request) / 10).toFixed(2)],
          ...Object.entries(joinsD1)
            .filter(([k]) => k !== "event log (queue consumer)")
            .map(([k, n]) => [`  of which ${k}`, fmt(n), fmt((n * 10_000) / callJoins), fmt(per1000(n), 1), k.startsWith("event (") ? "goal < 10 per 1,000" : "", k.startsWith("event (") ? (per1000(n) / 10).toFixed(2) : ""]),
          ["D1 round trips of the queue consumer (event log)", fmt((joinsD1["event log (queue consumer)"] ?? 0) + (drainD1["event log (queue consumer)"] ?? 0)), "", fmt(per1000((joinsD1["event log (queue consumer)"] ?? 0) + (drainD1["event log (queue consumer)"] ?? 0)), 1), `${fmt(logged.messages)} QUEUE_JOINED messages`, ""],
        ],
      ),
    );
    console.log("EventHub / QueueShard requests during the joins, by path and op:", JSON.stringify(during.objects));
    console.log("D1 statements during the joins, by SQL:");
    for (const [sql, n] of Object.entries(during.d1).sort((a, b) => b[1] - a[1])) console.log(`  ${String(n).padStart(7)}  ${sql.slice(0, 110)}`);
    if (shardJoins !== callJoins) wrong(`calls: ${callJoins} joins through the Worker but ${shardJoins} joins reached the shards`);
    checkCritical("calls", { count: during.critical + after.critical, first: during.firstCritical ?? after.firstCritical });
  } finally {
    await app.dispose();
  }
}

// ----- main -----------------------------------------------------------------------------------

if (parts.includes("join")) await partJoin();
if (parts.includes("session")) await partSession();
if (parts.includes("admit")) await partAdmit();
if (parts.includes("calls")) await partCalls();
agent.destroy();
if (problems.length) {
  console.error(`\n${problems.length} wrong answer(s):\n${problems.map((p) => `  ${p}`).join("\n")}`);
  process.exit(1);
}
