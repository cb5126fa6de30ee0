// The order page after payment: shows the order and follows it until the saga settles it.
import { api, ensureLoggedIn, formatMoney } from "/assets/api.js";

const code = decodeURIComponent(location.pathname.split("/")[2]);
const $ = (id) => document.getElementById(id);

async function refresh() {
  const { order } = await api(`/api/orders/${encodeURIComponent(code)}`);
  $("code").textContent = `Order ${order.code}`;
  $("status").textContent = order.status;
  $("refund").hidden = !order.refundStatus;
  $("total").textContent = formatMoney(order.totalAmountCents, order.currency);
  $("items").innerHTML = "";
  for (const i of order.items) {
    const row = document.createElement("tr");
    row.innerHTML = `<td></td><td>× ${i.quantity}</td><td>${formatMoney(i.priceCents, order.currency)}</td>`;
    row.firstChild.textContent = i.ticketClassName ?? i.ticketClassId;
    $("items").append(row);
  }
  return order.status;
}

(async () => {
  await ensureLoggedIn();
  for (let i = 0; i < 60; i++) {
    if ((await refresh()) !== "PENDING") return;
    await new Promise((r) => setTimeout(r, 2_000));
  }
})().catch((e) => ($("error").textContent = e.message));
