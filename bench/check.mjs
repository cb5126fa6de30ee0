// The flash-crowd correctness checker: reads the final state of one event's sale through the
// HTTP API (ticket-class counters), D1 (orders, items, payments, outbox, event log) and the
// event's object (its operator status over the object's own RPC, and its SQLite file for the
// waitroom's admission record), and counts every broken guarantee. Each count must be 0.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

/** The object's SQLite file that holds `waitroom_session` (Miniflare persistence layout). */
export function findObjectDatabase(persistDir) {
  const files = [];
  const walk = (dir, depth) => {
    if (depth > 4) return;
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p, depth + 1);
      else if (name.endsWith(".sqlite") && !p.includes("D1DatabaseObject")) files.push(p);
    }
  };
  walk(persistDir, 0);
  return files;
}

/** The object's operator view (`{"op":"status"}`), straight from its RPC endpoint. */
export async function hubStatus(mf, eventId) {
  const ns = await mf.getDurableObjectNamespace("EVENT_HUB");
  const stub = ns.get(ns.idFromName(eventId));
  const res = await stub.fetch("https://event-hub/rpc", { method: "POST", body: JSON.stringify({ op: "status" }) });
  if (!res.ok) throw new Error(`hub status: ${res.status} ${await res.text()}`);
  return res.json();
}

/**
 * An order closed (FAILED, or CANCELLED with no refund owed) at least this long before its
 * hold's deadline must have had its hold RELEASED, not left to expire. The margin covers the
 * checkout's compensation, which records the close at the request's start and releases after
 * the provider call (up to the Worker's 8 s timeout), plus 5 s of queueing under load.
 */
export const CLOSE_MARGIN_MS = 13_000;

/**
 * Live part of the check (while the runtime is up): API counters, D1 and the object's status.
 * `harness` carries what the clients saw: `providerFailures` ({ userId, provider } of every
 * 502 PAYMENT_PROVIDER_UNAVAILABLE) and `acknowledged` ({ orderId, status } of every provider
 * notification the Worker answered as recorded).
 */
export async function checkLive({ url, mf, eventId, organizerToken, harness = {} }) {
  const db = await mf.getD1Database("DB");
  const all = async (sql, ...binds) => (await db.prepare(sql).bind(...binds).all()).results;
  const res = await fetch(`${url}/api/events/${eventId}/ticket-classes`, { headers: { Authorization: `Bearer ${organizerToken}` } });
  const classes = (await res.json()).items;
  const status = await hubStatus(mf, eventId);

  const byStatus = Object.fromEntries((await all("SELECT status, COUNT(*) AS n FROM orders WHERE event_id = ?1 GROUP BY status", eventId)).map((r) => [r.status, r.n]));
  const qty = await all(
    `SELECT i.ticket_class_id AS cls, o.status AS status, SUM(i.quantity) AS q
       FROM order_items i JOIN orders o ON o.id = i.order_id WHERE o.event_id = ?1 GROUP BY cls, status`, eventId);
  const sumQty = (cls, st) => qty.filter((r) => r.cls === cls && r.status === st).reduce((a, r) => a + r.q, 0);

  const counts = {};
  // 1. Oversold: counters past the total, or more tickets in completed orders than exist.
  counts.oversoldTickets = classes.reduce((a, c) => a + Math.max(0, c.sold + c.reserved - c.total) + Math.max(0, sumQty(c.id, "COMPLETED") - c.total), 0);
  // 2. Money in, no tickets and no refund flag.
  const paidNotCompleted = await all(
    `SELECT o.id AS orderId, o.status, p.id AS paymentId, p.provider, p.updated_at AS paidAt, o.updated_at AS orderUpdatedAt, o.expires_at AS holdExpiresAt
       FROM payments p JOIN orders o ON o.id = p.order_id
      WHERE o.event_id = ?1 AND p.status = 'COMPLETED' AND o.status <> 'COMPLETED' AND o.refund_status IS NULL`, eventId);
  counts.paidNotCompletedNorRefund = paidNotCompleted.length;
  // 3. Leaks once the sale has drained: holds, reserved tickets, checkout slots, pending orders.
  counts.leakedHolds = status.activeHolds + classes.reduce((a, c) => a + c.reserved, 0) + (byStatus.PENDING ?? 0);
  counts.leakedCheckoutSlots = (status.waitroom?.slotsInUse ?? 0) + (status.waitroom?.admitted ?? 0);
  // 4. Counters against orders: sold = tickets of COMPLETED orders, reserved = of PENDING ones,
  //    available = total - reserved - sold, and the object agrees with the API.
  const countersDisagree = classes.filter((c) => {
    const hub = status.classes.find((h) => (h.ticketClassId ?? h.id) === c.id);
    return c.sold !== sumQty(c.id, "COMPLETED") || c.reserved !== sumQty(c.id, "PENDING") ||
      c.available !== c.total - c.reserved - c.sold || (hub && (hub.sold !== c.sold || hub.reserved !== c.reserved));
  }).map((c) => ({ classId: c.id, name: c.name, sold: c.sold, soldInCompletedOrders: sumQty(c.id, "COMPLETED"), reserved: c.reserved, reservedInPendingOrders: sumQty(c.id, "PENDING") }));
  counts.countersDisagreeWithOrders = countersDisagree.length;
  // 6. Duplicate effects: each PAYMENT_* at most once per payment, each terminal announcement
  //    at most once per order. Two results for one payment are legitimate only as money after
  //    a failure (a second attempt on the provider's page, a link made despite a create error):
  //    PAYMENT_FAILED then PAYMENT_COMPLETED, and for its order a close (FAILED or CANCELLED)
  //    then ORDER_COMPLETED (re-reserved) or a refund flag. Anything else counts.
  const dupPayments = (await all(
    `SELECT COUNT(*) AS n FROM (SELECT aggregate_id FROM outbox WHERE event_type IN ('PAYMENT_COMPLETED','PAYMENT_FAILED')
      AND aggregate_id IN (SELECT p.id FROM payments p JOIN orders o ON o.id = p.order_id WHERE o.event_id = ?1)
      GROUP BY aggregate_id
      HAVING COUNT(*) > COUNT(DISTINCT event_type)
          OR MAX(CASE WHEN event_type = 'PAYMENT_FAILED' THEN rowid END) > MAX(CASE WHEN event_type = 'PAYMENT_COMPLETED' THEN rowid END))`, eventId))[0].n;
  const dupOrders = (await all(
    `SELECT COUNT(*) AS n FROM (SELECT json_extract(payload, '$.orderId') AS oid, event_type FROM outbox
      WHERE event_type IN ('ORDER_COMPLETED','ORDER_CANCELLED','ORDER_FAILED','ORDER_REFUND_REQUIRED')
      AND json_extract(payload, '$.orderId') IN (SELECT id FROM orders WHERE event_id = ?1)
      GROUP BY oid, event_type HAVING COUNT(*) > 1)`, eventId))[0].n;
  const terminal = await all(
    `SELECT json_extract(o.payload, '$.orderId') AS oid, o.event_type AS type, r.status, r.refund_status AS refund FROM outbox o
      JOIN orders r ON r.id = json_extract(o.payload, '$.orderId')
      WHERE o.event_type IN ('ORDER_COMPLETED','ORDER_CANCELLED','ORDER_FAILED') AND r.event_id = ?1
      ORDER BY o.rowid`, eventId);
  const byOrder = new Map();
  for (const t of terminal) byOrder.set(t.oid, [...(byOrder.get(t.oid) ?? []), t]);
  let multiTerminal = 0;
  for (const list of byOrder.values()) {
    if (list.length < 2 || list[0].refund) continue; // one close, or a close with money owed back
    const types = list.map((t) => t.type);
    const lateMoney = types.length === 2 && types[0] !== "ORDER_COMPLETED" && types[1] === "ORDER_COMPLETED" && list[0].status === "COMPLETED";
    if (!lateMoney) multiTerminal++;
  }
  counts.duplicateEffects = dupPayments + dupOrders + multiTerminal;

  // Tickets: every COMPLETED order holds exactly one ticket per unit and every other order none,
  // however often and in whatever order its completion was delivered (src/domain/tickets).
  counts.ticketsNotOnePerUnit = (await all(
    `SELECT COUNT(*) AS n FROM orders o WHERE o.event_id = ?1
      AND (SELECT COUNT(*) FROM tickets t WHERE t.order_id = o.id) !=
        CASE WHEN o.status = 'COMPLETED'
          THEN (SELECT COALESCE(SUM(i.quantity), 0) FROM order_items i WHERE i.order_id = o.id) ELSE 0 END`,
    eventId))[0].n;

  // 7. Provider failures at checkout: every buyer told 502 has its order with that provider
  //    FAILED with PAYMENT_PROVIDER_UNAVAILABLE and the payment CANCELLED (no link to pay later).
  const failures = harness.providerFailures ?? [];
  const failedRows = failures.length ? await all(
    `SELECT o.user_id AS userId, o.payment_method AS provider, o.status, o.failure_code AS failureCode, p.status AS payment
       FROM orders o JOIN payments p ON p.order_id = o.id
      WHERE o.event_id = ?1 AND o.user_id IN (SELECT value FROM json_each(?2))`, eventId, JSON.stringify(failures.map((f) => f.userId))) : [];
  counts.providerFailuresNotFailed = failures.filter((f) => {
    const rows = failedRows.filter((r) => r.userId === f.userId && r.provider === f.provider);
    return !rows.length || rows.some((r) => r.status !== "FAILED" || r.failureCode !== "PAYMENT_PROVIDER_UNAVAILABLE" || r.payment !== "CANCELLED");
  }).length;
  // 8. Notifications acknowledged as recorded (VNPay RspCode 00/02, ZaloPay return_code 1
  //    "success") whose payment does not carry that result: the provider will not send it again.
  const acks = harness.acknowledged ?? [];
  const ackRows = acks.length ? await all("SELECT order_id AS orderId, status FROM payments WHERE order_id IN (SELECT value FROM json_each(?1))", JSON.stringify(acks.map((a) => a.orderId))) : [];
  counts.acknowledgedNotApplied = acks.filter((a) => ackRows.find((r) => r.orderId === a.orderId)?.status !== a.status).length;

  // For the offline hold check: orders closed well before their hold's deadline.
  const closedEarly = (await all(
    `SELECT id FROM orders WHERE event_id = ?1 AND status IN ('FAILED', 'CANCELLED') AND refund_status IS NULL
        AND updated_at < expires_at - ?2`, eventId, CLOSE_MARGIN_MS)).map((r) => r.id);

  const refunds = (await all("SELECT COUNT(*) AS n FROM orders WHERE event_id = ?1 AND refund_status IS NOT NULL", eventId))[0].n;
  // What the counts above found, for the report when they are not 0.
  const evidence = { paidNotCompleted: paidNotCompleted.slice(0, 10), countersDisagree };
  return { counts, classes, status, byStatus, refunds, closedEarly, evidence };
}

/**
 * What the clients saw of the provider create calls against what the fake providers did: a
 * call the fakes failed (refusal, 5xx, dropped connection, no answer) must come back as 502
 * PAYMENT_PROVIDER_UNAVAILABLE, and a 502 needs a failed call. `providerOrders`: { mode (what
 * the fakes applied, null if they answered normally or were not called), status, code }.
 * Returns the entries that break it (the count is their number).
 */
export function providerAnswersWrong(providerOrders) {
  return providerOrders.filter((o) => {
    // The runtime restarted under the request; the client's retry found the key in flight.
    if (o.status === 409 && o.code === "IDEMPOTENCY_KEY_IN_FLIGHT") return false;
    // The restart cut the request before its create call reached the fake: the retry that took
    // the key over found an order without a payment link and answered 502, as it must.
    if (o.cut && o.mode === null && o.status === 502 && o.code === "PAYMENT_PROVIDER_UNAVAILABLE") return false;
    const failedCall = o.mode !== null && o.mode !== "ok";
    return failedCall !== (o.status === 502 && o.code === "PAYMENT_PROVIDER_UNAVAILABLE");
  });
}

/**
 * Offline (after the runtime stopped): orders closed well before their hold's deadline whose
 * hold in the object is not RELEASED. The end-of-run counts cannot see a close that forgot to
 * give the tickets back: the hold's own expiry returns them before the sale drains.
 */
export async function checkReleasedHolds(persistDir, orderIds) {
  if (!orderIds.length) return 0;
  const { DatabaseSync } = await import("node:sqlite");
  for (const file of findObjectDatabase(persistDir)) {
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      if (!db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'holds'").get()) continue;
      const state = db.prepare("SELECT state FROM holds WHERE order_id = ?");
      return orderIds.filter((id) => state.get(id)?.state !== "RELEASED").length;
    } finally {
      db.close();
    }
  }
  return orderIds.length;
}

/**
 * Offline part (after the runtime stopped, so the object's SQLite file is complete): the
 * admission order against the join order. A later joiner admitted strictly before an earlier
 * one still waiting is a violation; so is anyone still QUEUED or ADMITTED at the end, and
 * anyone from the pre-queue placed behind a fan who joined after the sale opened.
 */
export async function checkAdmissionOrder(persistDir) {
  const { DatabaseSync } = await import("node:sqlite");
  for (const file of findObjectDatabase(persistDir)) {
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      const has = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'waitroom_session'").get();
      if (!has) continue;
      const rows = db.prepare(
        "SELECT join_no, seq, status, admitted_at FROM waitroom_session ORDER BY COALESCE(seq, join_no), join_no").all();
      let violations = 0;
      let maxAdmittedSoFar = -Infinity;
      let admitted = 0;
      const firstLast = [Infinity, -Infinity];
      for (const r of rows) {
        if (r.admitted_at == null) {
          // Never admitted: fine only if the fan left (or was expired by a closed queue).
          if (r.status === "QUEUED" || r.status === "ADMITTED") violations++;
          continue;
        }
        admitted++;
        firstLast[0] = Math.min(firstLast[0], r.admitted_at);
        firstLast[1] = Math.max(firstLast[1], r.admitted_at);
        if (r.admitted_at < maxAdmittedSoFar) violations++;
        maxAdmittedSoFar = Math.max(maxAdmittedSoFar, r.admitted_at);
      }
      const spanS = (firstLast[1] - firstLast[0]) / 1000;
      // The pre-queue: fans who joined before the sale opened must all be placed ahead of
      // everyone who joined after (a violation each otherwise), in the shuffled order the
      // opening gave them; how far that order is from the join order is reported, not judged.
      const opensAt = db.prepare("SELECT sale_starts_at AS at FROM waitroom_config WHERE id = 1").get()?.at ?? -Infinity;
      const placed = db.prepare("SELECT join_no, seq, joined_at FROM waitroom_session WHERE seq IS NOT NULL ORDER BY seq").all();
      const early = placed.filter((r) => r.joined_at < opensAt);
      const lastEarlySeq = Math.max(-Infinity, ...early.map((r) => r.seq));
      const prequeueBehindLater = placed.filter((r) => r.joined_at >= opensAt && r.seq < lastEarlySeq).length;
      let outOfJoinOrder = 0;
      for (let i = 1; i < early.length; i++) if (early[i].join_no < early[i - 1].join_no) outOfJoinOrder++;
      const prequeue = { fans: early.length, outOfJoinOrder, behindLaterJoiners: prequeueBehindLater };
      return { sessions: rows.length, admitted, violations: violations + prequeueBehindLater, admissionSpanS: spanS, prequeue, file };
    } finally {
      db.close();
    }
  }
  return { sessions: 0, admitted: 0, violations: 1, admissionSpanS: 0, prequeue: { fans: 0, outOfJoinOrder: 0, behindLaterJoiners: 0 }, file: null };
}

// ----- queue shards (eventConfig.waitroom.shards > 1) ----------------------------------------

const FAN_EVENT_TYPES = ["QUEUE_JOINED", "QUEUE_READY", "QUEUE_LEFT"];

/**
 * A sharded waitroom's fan events from the event log (D1 `event_log`, what the DOMAIN_EVENTS
 * consumer recorded): each shard batches its QUEUE_JOINED / QUEUE_READY / QUEUE_LEFT as
 * `{type, id, eventId, occurredAt, shard, count, fans: [{userId, sessionId, at, arrivalKey,
 * tickId?}]}`; flattened here to one row per fan. The one-object waitroom's per-fan messages
 * (a `session` object, no `fans`) are left out. Runtime up and quiet (a binding proxy).
 */
export async function shardFanEvents(mf, eventId) {
  const db = await mf.getD1Database("DB");
  const rows = (await db.prepare(
    `SELECT type, payload FROM event_log WHERE event_id = ?1 AND type IN (${FAN_EVENT_TYPES.map((t) => `'${t}'`).join(", ")})`)
    .bind(eventId).all()).results;
  const events = [];
  for (const row of rows) {
    const body = JSON.parse(row.payload);
    if (!Array.isArray(body.fans)) continue;
    for (const f of body.fans) {
      events.push({ type: row.type, shard: body.shard, userId: f.userId, sessionId: f.sessionId, at: f.at,
        arrivalKey: f.arrivalKey ?? null, tickId: f.tickId ?? null });
    }
  }
  return events;
}

/**
 * One row per stay (a user's session: joining again after leaving, an ended checkout or an
 * idle skip is a new session, so a new stay) from flattened fan events: its arrival key, when
 * its shard recorded the join (`joinedAt`), its admission (`readyAt`, `tick`, every tick id
 * seen in `ticks`: a redelivered admit request confirms the same tick again, which is fine) and
 * its leave (`leftAt`). Times are the shards' clocks, which here are one machine's clock.
 */
export function staysOf(fanEvents) {
  const stays = new Map();
  for (const e of fanEvents) {
    const id = `${e.userId} ${e.sessionId}`;
    let s = stays.get(id);
    if (!s) stays.set(id, (s = { userId: e.userId, sessionId: e.sessionId, shard: e.shard, key: null, keys: new Set(),
      joinedAt: null, readyAt: null, tick: null, ticks: new Set(), leftAt: null }));
    if (e.arrivalKey !== null) { s.key ??= e.arrivalKey; s.keys.add(e.arrivalKey); }
    const earliest = (a, b) => (a === null ? b : Math.min(a, b));
    if (e.type === "QUEUE_JOINED") s.joinedAt = earliest(s.joinedAt, e.at);
    else if (e.type === "QUEUE_LEFT") s.leftAt = earliest(s.leftAt, e.at);
    else if (e.type === "QUEUE_READY") {
      s.readyAt = earliest(s.readyAt, e.at);
      if (e.tickId !== null) { s.ticks.add(e.tickId); s.tick = s.tick === null ? e.tickId : Math.min(s.tick, e.tickId); }
    }
  }
  return [...stays.values()];
}

/** Prefix minimum by `key` over positions 0..n-1 (a Fenwick tree; items only ever added). */
class PrefixMinByKey {
  constructor(n) { this.tree = new Array(n + 1).fill(null); }
  add(pos, item) {
    for (let i = pos + 1; i < this.tree.length; i += i & -i) if (!this.tree[i] || item.key < this.tree[i].key) this.tree[i] = item;
  }
  /** The item with the smallest key among positions 0..pos (null when none). */
  min(pos) {
    let best = null;
    for (let i = pos + 1; i > 0; i -= i & -i) if (this.tree[i] && (!best || this.tree[i].key < best.key)) best = this.tree[i];
    return best;
  }
}

/**
 * Admission order across queue shards, from the event log alone.
 *
 * The rule. A stay is one session of one fan (joining again is a new stay with a new arrival
 * key; only a pre-queue draw is the same on every join, being a function of the user, but it
 * comes with a new session, so it is still a new stay). An admitted stay X (QUEUE_READY, round
 * `tickId`) counts as out of order when some stay Y with a smaller arrival key was admitted by
 * a LATER round (Y.tick > X.tick) although Y had already joined when X was admitted (Y's
 * QUEUE_JOINED at or before X's QUEUE_READY) and had not left in between (no QUEUE_LEFT of Y at
 * or before X's admission). The string order of arrival keys is the admission order: pre-queue
 * `p:` keys (the shuffle's draws) before every queue `q:` key, then arrival ms and tie-break.
 *
 * Why that is a true violation and not an artefact of the two-phase round: the hub picks X only
 * when X is below every reporting shard's frontier (a shard records no later join below the
 * frontier it promised) and not past any report cut short. Y's key is below X's, so Y's shard
 * had recorded Y before it reported for X's round (after that report it records nothing below
 * its frontier, and X, hence Y, is below it); the shard applies X's pick after the hub stored
 * it, so "Y joined at or before X's QUEUE_READY" covers every Y queued at that report and can
 * only add Ys whose keys are above X's. Such a Y was queued, not idle (the harness's buyers
 * poll every ≤ 10 s or keep a socket open; the idle timeout is 600 s) and therefore at the head
 * before X: it had to be picked in X's round or earlier. Two exceptions the protocol allows,
 * neither of which this count forgives: a shard silent for 5 s is left out of rounds (its fans
 * may then be admitted after later places; the hub counts such rounds, `roundsWithStragglers`,
 * reported beside this count), and an idle fan at the head is skipped (no event; the shards'
 * files tell, `idleSkips`). Same-round admissions are never out of order (a round's picks are
 * a set). A stay with QUEUE_READY but no QUEUE_JOINED (a message lost with Miniflare's local
 * queue at the restart) is never taken as Y: nothing proves when it joined.
 *
 * Returns the count of such X, up to `limit` examples (X with its Y of smallest key), and the
 * stays.
 */
export function checkArrivalOrder(fanEvents, { limit = 10 } = {}) {
  const stays = staysOf(fanEvents);
  const admitted = stays.filter((s) => s.readyAt !== null && s.tick !== null && s.key !== null);
  // Candidates Y (joined, admitted) indexed by when they joined.
  const ys = admitted.filter((s) => s.joinedAt !== null).sort((a, b) => a.joinedAt - b.joinedAt);
  const joinedTimes = ys.map((s) => s.joinedAt);
  const position = new Map(ys.map((s, i) => [s, i]));
  const lastJoinedBy = (t) => { // index of the last Y with joinedAt <= t, -1 when none
    let lo = 0, hi = joinedTimes.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (joinedTimes[mid] <= t) lo = mid + 1; else hi = mid; }
    return lo - 1;
  };
  const tree = new PrefixMinByKey(ys.length);
  const inTree = [];
  const byTickDesc = [...admitted].sort((a, b) => b.tick - a.tick);
  const examples = [];
  let violations = 0;
  const stillQueued = (y, t) => !(y.leftAt !== null && y.leftAt >= y.joinedAt && y.leftAt <= t);
  for (let i = 0; i < byTickDesc.length;) {
    const tick = byTickDesc[i].tick;
    let j = i;
    while (j < byTickDesc.length && byTickDesc[j].tick === tick) j++;
    // Query this round's admissions against the later rounds' (already in the tree).
    for (let k = i; k < j; k++) {
      const x = byTickDesc[k];
      const last = lastJoinedBy(x.readyAt);
      if (last < 0) continue;
      let y = tree.min(last);
      // A Y that left before X's admission does not count (with correct shards no admitted
      // stay has a QUEUE_LEFT at all): look further, the slow way, only then.
      if (y && y.key < x.key && !stillQueued(y, x.readyAt)) {
        y = inTree.filter((c) => c.joinedAt <= x.readyAt && c.key < x.key && stillQueued(c, x.readyAt))
          .sort((a, b) => (a.key < b.key ? -1 : 1))[0] ?? null;
      }
      if (y && y.key < x.key) {
        violations++;
        if (examples.length < limit) examples.push({ x: brief(x), y: brief(y) });
      }
    }
    for (let k = i; k < j; k++) {
      const y = byTickDesc[k];
      if (position.has(y)) { tree.add(position.get(y), y); inTree.push(y); }
    }
    i = j;
  }
  return { violations, examples, stays };
}

const brief = (s) => ({ userId: s.userId, sessionId: s.sessionId, shard: s.shard, key: s.key, joinedAt: s.joinedAt, readyAt: s.readyAt, tick: s.tick });

/**
 * Other broken guarantees of a sharded waitroom visible in the event log: a stay admitted by
 * two different rounds (double admission; the same round twice is a redelivery), a stay
 * admitted after its own QUEUE_LEFT, a stay whose events disagree on its arrival key, and the
 * pre-queue: a stay recorded before the sale opened without a pre-queue (`p:`) place, or one
 * recorded more than the stamp grace (1 s) after the opening with one.
 */
export function checkShardStays(stays, saleOpensAt, graceMs = 1_000) {
  const twice = stays.filter((s) => s.ticks.size > 1);
  const afterLeaving = stays.filter((s) => s.readyAt !== null && s.leftAt !== null && s.leftAt <= s.readyAt);
  const keyChanged = stays.filter((s) => s.keys.size > 1);
  const joined = stays.filter((s) => s.joinedAt !== null);
  const early = joined.filter((s) => s.joinedAt < saleOpensAt);
  const earlyNotPrequeued = early.filter((s) => !String(s.key).startsWith("p:"));
  const lateButPrequeued = joined.filter((s) => s.joinedAt >= saleOpensAt + graceMs && String(s.key).startsWith("p:"));
  // How far the shuffle moved the pre-queue from the join order (reported, not judged).
  const placed = early.filter((s) => String(s.key).startsWith("p:")).sort((a, b) => (a.key < b.key ? -1 : 1));
  let outOfJoinOrder = 0;
  for (let i = 1; i < placed.length; i++) if (placed[i].joinedAt < placed[i - 1].joinedAt) outOfJoinOrder++;
  const admittedStays = stays.filter((s) => s.readyAt !== null);
  const readyTimes = admittedStays.map((s) => s.readyAt);
  return {
    sessions: joined.length,
    admitted: admittedStays.length,
    admissionSpanS: readyTimes.length ? (Math.max(...readyTimes) - Math.min(...readyTimes)) / 1000 : 0,
    admittedTwice: twice.length,
    admittedAfterLeaving: afterLeaving.length,
    keyChanged: keyChanged.length,
    prequeue: { fans: early.length, outOfJoinOrder, behindLaterJoiners: earlyNotPrequeued.length + lateButPrequeued.length },
    violations: twice.length + afterLeaving.length + keyChanged.length + earlyNotPrequeued.length + lateButPrequeued.length,
    examples: [...twice, ...afterLeaving, ...keyChanged, ...earlyNotPrequeued, ...lateButPrequeued].slice(0, 10).map(brief),
  };
}

/**
 * Offline (after the runtime stopped): what the shards' and the hub's SQLite files hold at the
 * end. Each shard keeps one row per user, their latest stay (`shard_fan.record_json`, a
 * `FanRecord`: `{sessionId, place, status: {status, ...}}`); the hub keeps its admission state
 * (`hub_admission.state_json`). A stay still QUEUED or ADMITTED after the drain is stuck; an
 * IDLE_AT_HEAD one was skipped as idle (the harness's fans never should be).
 */
export async function readShardFiles(persistDir) {
  const { DatabaseSync } = await import("node:sqlite");
  const fans = [];
  let hub = null;
  let shardFiles = 0;
  for (const file of findObjectDatabase(persistDir)) {
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      const has = (table) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table);
      if (has("shard_fan")) {
        shardFiles++;
        const meta = db.prepare("SELECT meta_json FROM shard_meta WHERE id = 1").get();
        const shard = meta ? JSON.parse(meta.meta_json).settings?.shard : null;
        for (const r of db.prepare("SELECT user_id, record_json FROM shard_fan").all()) {
          const record = JSON.parse(r.record_json);
          fans.push({ userId: r.user_id, shard, sessionId: record.sessionId, status: record.status?.status ?? String(record.status), record });
        }
      }
      if (has("hub_admission")) {
        const row = db.prepare("SELECT state_json FROM hub_admission WHERE id = 1").get();
        if (row) hub = JSON.parse(row.state_json);
      }
    } finally {
      db.close();
    }
  }
  const stuck = fans.filter((f) => f.status === "QUEUED" || f.status === "ADMITTED");
  return { shardFiles, fans, stuck, idleSkips: fans.filter((f) => f.status === "IDLE_AT_HEAD").length, hub };
}

/**
 * Offline: the stays the objects' files say were admitted ({ userId, sessionId }): the
 * one-object waitroom's sessions with an admission time, and the shards' latest stays that are
 * ADMITTED or whose checkout has ended (the shards keep only each user's latest stay; the
 * event log's QUEUE_READY has the others).
 */
export async function admittedStaysInObjects(persistDir) {
  const { DatabaseSync } = await import("node:sqlite");
  const stays = [];
  for (const file of findObjectDatabase(persistDir)) {
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      const has = (table) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table);
      if (has("waitroom_session")) {
        for (const r of db.prepare("SELECT user_id, session_id FROM waitroom_session WHERE admitted_at IS NOT NULL").all()) stays.push({ userId: r.user_id, sessionId: r.session_id });
      }
      if (has("shard_fan")) {
        for (const r of db.prepare("SELECT user_id, record_json FROM shard_fan").all()) {
          const record = JSON.parse(r.record_json);
          if (["ADMITTED", "CHECKOUT_ENDED"].includes(record.status?.status)) stays.push({ userId: r.user_id, sessionId: record.sessionId });
        }
      }
    } finally {
      db.close();
    }
  }
  return stays;
}

/**
 * WebSocket fans (the harness's `socketFans`: per user, every `position` the sockets of each
 * stay pushed and the session ids named by the checkout tokens of the `admitted` messages
 * received) against the stays the server admitted (`admittedStays`: { userId, sessionId }).
 * A fan counts once if, within one stay, a non-null position was larger than an earlier one,
 * or if one of their stays was admitted (the server says so) without an `admitted` message for
 * it ever arriving.
 */
export function checkSocketFans(socketFans, admittedStays, { limit = 10 } = {}) {
  const admittedBy = new Map();
  for (const s of admittedStays) {
    if (!socketFans.has(s.userId)) continue;
    admittedBy.set(s.userId, [...(admittedBy.get(s.userId) ?? []), s.sessionId]);
  }
  let rose = 0, missed = 0, count = 0;
  const examples = [];
  const allRises = [];
  for (const [userId, fan] of socketFans) {
    const rises = [];
    for (const stay of fan.stays) {
      let last = null;
      for (const p of stay.positions) {
        if (p.position === null || p.position === undefined) continue;
        if (last !== null && p.position > last.position) rises.push({ sessionId: stay.sessionId, stayJoinedAt: stay.joinedAt ?? null, from: last, to: p });
        last = p;
      }
    }
    allRises.push(...rises.map((r) => ({ userId, ...r })));
    const notTold = [...new Set(admittedBy.get(userId) ?? [])].filter((sid) => !fan.admittedSessions.has(sid));
    if (rises.length) rose++;
    if (notTold.length) missed++;
    if (rises.length || notTold.length) {
      count++;
      if (examples.length < limit) examples.push({ userId, rises: rises.slice(0, 3), rises_total: rises.length, admittedWithoutMessage: notTold });
    }
  }
  return { count, rose, missed, examples, rises: allRises };
}

/** The summary bucket of an arrival key, as `Place::bucket`: a queue place's arrival second, a draw's top 10 bits. */
export function bucketOfKey(key) {
  const n = BigInt(key.slice(2, 22));
  return key.startsWith("q:") ? `q${Math.floor(Number(n ^ (1n << 63n)) / 1000)}` : `p${n >> 54n}`;
}
/** A queue place's arrival ms (null for a pre-queue draw). */
export const arrivalMsOfKey = (key) => (key.startsWith("q:") ? Number(BigInt(key.slice(2, 22)) ^ (1n << 63n)) : null);

/**
 * Reported, not judged: the positions that rose (`rises` of {@link checkSocketFans}) set
 * against the error the README ("Queue shards", "Positions") allows a shown position with
 * shards: the other shards' fans in the fan's own summary bucket (its arrival second, or its
 * draw's bucket in the pre-queue), which the fan's shard estimates as a uniform share, plus
 * twice the other shards' joins the summaries cannot hold yet (those arriving in the 2 s up to
 * the fan's arrival). A rise is two shown positions, each off by at most that, so
 * `withinBound` counts the rises no larger than twice it. Also how long after the stay's join
 * (as the client saw it) the higher position arrived: a fan's shard holds summaries that cover
 * the fan's arrival second only a round or two after it. Exact positions at each message are
 * not computed: the client's receive times trail the shards' sends by up to ~100 ms under this
 * load, during which whole rounds are admitted.
 */
export function explainPositionRises(rises, stays) {
  const bySession = new Map(stays.map((s) => [s.sessionId, s]));
  const placed = stays.filter((s) => s.key !== null);
  const perBucket = new Map(); // bucket → Map(shard → count)
  for (const s of placed) {
    const b = bucketOfKey(s.key);
    const m = perBucket.get(b) ?? new Map();
    m.set(s.shard, (m.get(s.shard) ?? 0) + 1);
    perBucket.set(b, m);
  }
  const arrivals = placed.map((s) => ({ at: arrivalMsOfKey(s.key), shard: s.shard })).filter((a) => a.at !== null).sort((a, b) => a.at - b.at);
  const rows = [];
  for (const r of rises) {
    const stay = bySession.get(r.sessionId);
    if (!stay?.key) continue;
    const sameBucketOthers = [...(perBucket.get(bucketOfKey(stay.key)) ?? new Map())].filter(([shard]) => shard !== stay.shard).reduce((a, [, n]) => a + n, 0);
    const at = arrivalMsOfKey(stay.key);
    const recentOthers = at === null ? 0 : arrivals.filter((a) => a.shard !== stay.shard && a.at > at - 2000 && a.at <= at).length;
    const bound = sameBucketOthers + 2 * recentOthers;
    rows.push({ ...r, shard: stay.shard, rise: r.to.position - r.from.position, sameBucketOthers, recentOthers, bound,
      sinceJoinS: r.stayJoinedAt === null ? null : (r.to.at - r.stayJoinedAt) / 1000 });
  }
  const q = (xs, p) => { if (!xs.length) return null; const v = [...xs].sort((a, b) => a - b); return v[Math.min(v.length - 1, Math.floor(p * v.length))]; };
  const col = (k) => rows.map((x) => x[k]).filter((v) => v !== null);
  return {
    rises: rows.length,
    fans: new Set(rows.map((x) => x.userId)).size,
    withinBound: rows.filter((x) => x.rise <= 2 * x.bound).length,
    rise: { p50: q(col("rise"), 0.5), p99: q(col("rise"), 0.99), max: q(col("rise"), 1) },
    sinceJoinS: { p50: q(col("sinceJoinS"), 0.5), p99: q(col("sinceJoinS"), 0.99), max: q(col("sinceJoinS"), 1) },
    laterThan5sAfterJoin: rows.filter((x) => x.sinceJoinS !== null && x.sinceJoinS > 5).length,
    examples: [...rows].sort((a, b) => (b.rise - 2 * b.bound) - (a.rise - 2 * a.bound)).slice(0, 5),
  };
}

/**
 * Self-test of the pure checks above on small hand-made event lists, each with and without
 * the violation it must see: `node bench/check.mjs`.
 */
export function selfTest() {
  const assert = (cond, what) => { if (!cond) throw new Error(`check.mjs self-test: ${what}`); };
  const ev = (type, userId, at, key, tickId = null, sessionId = `s-${userId}`) => ({ type, shard: 0, userId, sessionId, at, arrivalKey: key, tickId });
  const q = (ms, user) => `q:${String(ms).padStart(20, "0")}:00000000000000000001:${user}`;
  const p = (draw, user) => `p:${String(draw).padStart(20, "0")}:${user}`;

  // In order: a (earlier key) in round 1, b in round 2.
  const ok = [ev("QUEUE_JOINED", "a", 100, q(100, "a")), ev("QUEUE_JOINED", "b", 110, q(110, "b")),
    ev("QUEUE_READY", "a", 2000, q(100, "a"), 1), ev("QUEUE_READY", "b", 3000, q(110, "b"), 2)];
  assert(checkArrivalOrder(ok).violations === 0, "in-order admissions counted");
  // Out of order: b (later key) admitted in round 1 while a had joined; a only in round 2.
  const bad = [ev("QUEUE_JOINED", "a", 100, q(100, "a")), ev("QUEUE_JOINED", "b", 110, q(110, "b")),
    ev("QUEUE_READY", "b", 2000, q(110, "b"), 1), ev("QUEUE_READY", "a", 3000, q(100, "a"), 2)];
  const r = checkArrivalOrder(bad);
  assert(r.violations === 1 && r.examples[0].x.userId === "b" && r.examples[0].y.userId === "a", "out-of-order admission missed");
  // Same round: never out of order.
  assert(checkArrivalOrder([ev("QUEUE_JOINED", "a", 100, q(100, "a")), ev("QUEUE_JOINED", "b", 110, q(110, "b")),
    ev("QUEUE_READY", "b", 2000, q(110, "b"), 1), ev("QUEUE_READY", "a", 2001, q(100, "a"), 1)]).violations === 0, "same round counted");
  // a joined only after b's admission: no violation (its key cannot be below b's in a real
  // run, but the rule asks for the join first).
  assert(checkArrivalOrder([ev("QUEUE_JOINED", "b", 110, q(110, "b")), ev("QUEUE_READY", "b", 2000, q(110, "b"), 1),
    ev("QUEUE_JOINED", "a", 2500, q(100, "a")), ev("QUEUE_READY", "a", 3000, q(100, "a"), 2)]).violations === 0, "a later joiner counted");
  // a left before b's admission, joined again (new session, later key), admitted later: fine.
  const rejoin = [ev("QUEUE_JOINED", "a", 100, q(100, "a")), ev("QUEUE_JOINED", "b", 110, q(110, "b")),
    ev("QUEUE_LEFT", "a", 500, q(100, "a")), ev("QUEUE_READY", "b", 2000, q(110, "b"), 1),
    ev("QUEUE_JOINED", "a", 2100, q(2100, "a"), null, "s-a2"), ev("QUEUE_READY", "a", 3000, q(2100, "a"), 2, "s-a2")];
  assert(checkArrivalOrder(rejoin).violations === 0, "a rejoin counted");
  // The pre-queue comes first: a queue fan admitted before a waiting pre-queue fan.
  const prequeue = [ev("QUEUE_JOINED", "a", 100, p(99, "a")), ev("QUEUE_JOINED", "b", 20_000, q(20_000, "b")),
    ev("QUEUE_READY", "b", 22_000, q(20_000, "b"), 1), ev("QUEUE_READY", "a", 23_000, p(99, "a"), 2)];
  assert(checkArrivalOrder(prequeue).violations === 1, "pre-queue fan passed over missed");
  // A redelivered admission (same round twice) is fine; two rounds for one stay is not.
  const again = [ev("QUEUE_JOINED", "a", 100, q(100, "a")), ev("QUEUE_READY", "a", 2000, q(100, "a"), 1), ev("QUEUE_READY", "a", 2300, q(100, "a"), 1)];
  assert(checkShardStays(staysOf(again), 0).violations === 0, "a redelivered admission counted");
  again.push(ev("QUEUE_READY", "a", 3000, q(100, "a"), 2));
  assert(checkShardStays(staysOf(again), 0).admittedTwice === 1, "a double admission missed");
  // Pre-queue places: joined before the opening at 10,000 without a draw.
  assert(checkShardStays(staysOf([ev("QUEUE_JOINED", "a", 9000, q(9000, "a"))]), 10_000).violations === 1, "an early joiner without a draw missed");
  assert(checkShardStays(staysOf([ev("QUEUE_JOINED", "a", 9000, p(5, "a"))]), 10_000).violations === 0, "an early joiner with a draw counted");

  // Sockets: positions 5, null, 3, 4 (went up) vs 5, 3, 3, 1; admitted without a message.
  const fan = (positions, told = []) => ({ stays: [{ sessionId: "s1", positions: positions.map((position) => ({ position })) }], admittedSessions: new Set(told) });
  const fans = new Map([["u1", fan([5, null, 3, 3, 1], ["s1"])], ["u2", fan([5, null, 3, 4])], ["u3", fan([null, 7, 2], [])]]);
  const w = checkSocketFans(fans, [{ userId: "u1", sessionId: "s1" }, { userId: "u3", sessionId: "s1" }]);
  assert(w.count === 2 && w.rose === 1 && w.missed === 1, `socket fans: ${JSON.stringify(w)}`);
  // A new stay starts its own sequence.
  const twoStays = new Map([["u1", { stays: [{ sessionId: "s1", positions: [{ position: 2 }] }, { sessionId: "s2", positions: [{ position: 9 }] }], admittedSessions: new Set() }]]);
  assert(checkSocketFans(twoStays, []).count === 0, "a new stay's position compared with the old one");
  // Buckets as the Rust side computes them: arrival second, the draw's top 10 bits.
  const at = 1_796_308_007_588;
  const qKey = `q:${((BigInt(at) ^ (1n << 63n))).toString().padStart(20, "0")}:00000000000000000001:u`;
  assert(bucketOfKey(qKey) === `q${Math.floor(at / 1000)}` && arrivalMsOfKey(qKey) === at, "bucket of a queue key");
  assert(bucketOfKey(p(2n ** 63n, "u")) === "p512", "bucket of a draw");
  return "ok";
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(`check.mjs self-test: ${selfTest()}`);
