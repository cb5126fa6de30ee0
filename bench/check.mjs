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
  counts.paidNotCompletedNorRefund = (await all(
    `SELECT COUNT(*) AS n FROM payments p JOIN orders o ON o.id = p.order_id
      WHERE o.event_id = ?1 AND p.status = 'COMPLETED' AND o.status <> 'COMPLETED' AND o.refund_status IS NULL`, eventId))[0].n;
  // 3. Leaks once the sale has drained: holds, reserved tickets, checkout slots, pending orders.
  counts.leakedHolds = status.activeHolds + classes.reduce((a, c) => a + c.reserved, 0) + (byStatus.PENDING ?? 0);
  counts.leakedCheckoutSlots = (status.waitroom?.slotsInUse ?? 0) + (status.waitroom?.admitted ?? 0);
  // 4. Counters against orders: sold = tickets of COMPLETED orders, reserved = of PENDING ones,
  //    available = total - reserved - sold, and the object agrees with the API.
  counts.countersDisagreeWithOrders = classes.reduce((a, c) => {
    const hub = status.classes.find((h) => (h.ticketClassId ?? h.id) === c.id);
    const bad = c.sold !== sumQty(c.id, "COMPLETED") || c.reserved !== sumQty(c.id, "PENDING") ||
      c.available !== c.total - c.reserved - c.sold || (hub && (hub.sold !== c.sold || hub.reserved !== c.reserved));
    return a + (bad ? 1 : 0);
  }, 0);
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
  return { counts, classes, status, byStatus, refunds, closedEarly };
}

/**
 * What the clients saw of the provider create calls against what the fake providers did: a
 * call the fakes failed (refusal, 5xx, dropped connection, no answer) must come back as 502
 * PAYMENT_PROVIDER_UNAVAILABLE, and a 502 needs a failed call. `providerOrders`: { mode (what
 * the fakes applied, null if they answered normally or were not called), status, code }.
 */
export function checkProviderAnswers(providerOrders) {
  return providerOrders.filter((o) => {
    // The runtime restarted under the request; the client's retry found the key in flight.
    if (o.status === 409 && o.code === "IDEMPOTENCY_KEY_IN_FLIGHT") return false;
    const failedCall = o.mode !== null && o.mode !== "ok";
    return failedCall !== (o.status === 502 && o.code === "PAYMENT_PROVIDER_UNAVAILABLE");
  }).length;
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
