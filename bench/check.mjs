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
 * Live part of the check (while the runtime is up): API counters, D1 and the object's status.
 * `harness` carries what the clients saw (duplicate deliveries sent, ...).
 */
export async function checkLive({ url, mf, eventId, organizerToken }) {
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
  // 6. Duplicate effects: one PAYMENT_* per payment, one terminal announcement per order,
  //    one event-log line per announced order event.
  const dupPayments = (await all(
    `SELECT COUNT(*) AS n FROM (SELECT aggregate_id FROM outbox WHERE event_type IN ('PAYMENT_COMPLETED','PAYMENT_FAILED')
      AND aggregate_id IN (SELECT p.id FROM payments p JOIN orders o ON o.id = p.order_id WHERE o.event_id = ?1)
      GROUP BY aggregate_id HAVING COUNT(*) > 1)`, eventId))[0].n;
  const dupOrders = (await all(
    `SELECT COUNT(*) AS n FROM (SELECT json_extract(payload, '$.orderId') AS oid, event_type FROM outbox
      WHERE event_type IN ('ORDER_COMPLETED','ORDER_CANCELLED','ORDER_FAILED','ORDER_REFUND_REQUIRED')
      AND json_extract(payload, '$.orderId') IN (SELECT id FROM orders WHERE event_id = ?1)
      GROUP BY oid, event_type HAVING COUNT(*) > 1)`, eventId))[0].n;
  const multiTerminal = (await all(
    `SELECT COUNT(*) AS n FROM (SELECT json_extract(payload, '$.orderId') AS oid FROM outbox
      WHERE event_type IN ('ORDER_COMPLETED','ORDER_CANCELLED','ORDER_FAILED')
      AND json_extract(payload, '$.orderId') IN (SELECT id FROM orders WHERE event_id = ?1 AND refund_status IS NULL)
      GROUP BY oid HAVING COUNT(DISTINCT event_type) > 1)`, eventId))[0].n;
  counts.duplicateEffects = dupPayments + dupOrders + multiTerminal;

  const refunds = (await all("SELECT COUNT(*) AS n FROM orders WHERE event_id = ?1 AND refund_status IS NOT NULL", eventId))[0].n;
  return { counts, classes, status, byStatus, refunds };
}

/**
 * Offline part (after the runtime stopped, so the object's SQLite file is complete): the
 * admission order against the join order. A later joiner admitted strictly before an earlier
 * one still waiting is a violation; so is anyone still QUEUED or ADMITTED at the end.
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
      return { sessions: rows.length, admitted, violations, admissionSpanS: spanS, file };
    } finally {
      db.close();
    }
  }
  return { sessions: 0, admitted: 0, violations: 1, admissionSpanS: 0, file: null };
}
