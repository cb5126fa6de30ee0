// The order page after payment: shows the order and follows it until the saga settles it.
import { $, api, ensureLoggedIn, formatMoney, pathParam } from "/assets/api.js";

const code = pathParam(2);
const POLL_MS = 2_000;
const POLL_FOR_MS = 5 * 60_000;
let names = null; // ticket class id → name, read once from the event

const STATUS_TEXT = {
  PENDING: "Waiting for the payment provider to confirm your payment…",
  COMPLETED: "Paid. Your tickets are yours.",
  CANCELLED: "This order was cancelled; its tickets were released.",
  FAILED: "This order did not go through; nothing was charged for it.",
};

async function classNames(eventId) {
  if (names) return names;
  names = new Map();
  try {
    const [{ event }, { items }] = await Promise.all([
      api(`/api/events/${encodeURIComponent(eventId)}`),
      api(`/api/events/${encodeURIComponent(eventId)}/ticket-classes`),
    ]);
    $("event-name").textContent = event.name;
    for (const c of items) names.set(c.id, c.name);
  } catch {
    // The ids stand in for the names.
  }
  return names;
}

async function refresh() {
  const { order } = await api(`/api/orders/${encodeURIComponent(code)}`);
  const byId = await classNames(order.eventId);
  $("code").textContent = `Order ${order.code}`;
  $("status").textContent = order.status;
  $("status").className = order.status === "COMPLETED" ? "status-ok" : order.status === "PENDING" ? "" : "status-bad";
  $("status-text").textContent = STATUS_TEXT[order.status] ?? "";
  $("refund").hidden = !order.refundStatus;
  $("total").textContent = formatMoney(order.totalAmountCents, order.currency);
  $("items").replaceChildren(
    ...order.items.map((i) => {
      const row = document.createElement("tr");
      for (const [text, cls] of [
        [byId.get(i.ticketClassId) ?? i.ticketClassId, ""],
        [`× ${i.quantity}`, "num"],
        [formatMoney(i.priceCents, order.currency), "num"],
      ]) {
        const td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        row.append(td);
      }
      return row;
    }),
  );
  $("details").hidden = false;
  return order.status;
}

(async () => {
  await ensureLoggedIn();
  const until = Date.now() + POLL_FOR_MS;
  while ((await refresh()) === "PENDING") {
    if (Date.now() > until) {
      $("status-text").textContent = "Still waiting for the payment provider. Reload this page later to check again.";
      return;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
})().catch((e) => ($("error").textContent = e.status === 404 ? "There is no such order on your account." : e.message));
