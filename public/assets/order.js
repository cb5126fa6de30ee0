// The order page after payment (or a free order): shows the order and follows it until the saga settles it.
import "/assets/layout.js";
import { $, api, pathParam } from "/assets/api.js";
import { ensureLoggedIn, problemText } from "/assets/forms.js";
import { formatMoney, onLang, t } from "/assets/i18n.js";

const code = pathParam(2);
const POLL_MS = 2_000;
const POLL_FOR_MS = 5 * 60_000;
let names = null; // ticket class id → name, read once from the event
let order = null;
let gaveUp = false;

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

function render() {
  if (!order) return;
  $("code").textContent = t("order.heading", { code: order.code });
  // The status itself stays the API's word (what support and the buyer's emails name).
  $("status").textContent = order.status;
  $("status").className = order.status === "COMPLETED" ? "status-ok" : order.status === "PENDING" ? "" : "status-bad";
  // A free order (an isFree event) was never paid: it says so, not "Paid".
  const freeDone = order.paymentMethod === "free" && order.status === "COMPLETED";
  $("status-text").textContent = gaveUp ? t("order.stillWaiting") : freeDone ? t("order.freeCompleted") : t(`order.text.${order.status}`);
  $("refund").hidden = !order.refundStatus;
  $("total").textContent = formatMoney(order.totalAmountCents, order.currency);
  $("items").replaceChildren(
    ...order.items.map((i) => {
      const row = document.createElement("tr");
      for (const [text, cls] of [
        [names?.get(i.ticketClassId) ?? i.ticketClassId, ""],
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
}

async function refresh() {
  ({ order } = await api(`/api/orders/${encodeURIComponent(code)}`));
  await classNames(order.eventId);
  render();
  return order.status;
}

onLang(render);

(async () => {
  await ensureLoggedIn();
  const until = Date.now() + POLL_FOR_MS;
  while ((await refresh()) === "PENDING") {
    if (Date.now() > until) {
      gaveUp = true;
      render();
      return;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
})().catch((e) => ($("error").textContent = e.status === 404 ? t("order.notFound") : problemText(e)));
