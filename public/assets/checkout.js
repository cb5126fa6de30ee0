// Checkout: pick quantities, create the order (holds the tickets for 15 minutes) with the
// waitroom's checkout token, then go to the provider's payment page.
import { api, ensureLoggedIn, formatMoney } from "/assets/api.js";

const eventId = location.pathname.split("/")[2];
const $ = (id) => document.getElementById(id);
const checkout = JSON.parse(sessionStorage.getItem(`tb.checkout.${eventId}`) ?? "null");
// One key per attempt: a double click or a retried request cannot create two orders.
const idempotencyKey = crypto.randomUUID();

(async () => {
  await ensureLoggedIn();
  const [{ event }, { items }] = await Promise.all([api(`/api/events/${eventId}`), api(`/api/events/${eventId}/ticket-classes`)]);
  $("event-name").textContent = event.name;
  if (checkout?.expiresAt) $("deadline").textContent = `Your checkout slot is held until ${new Date(checkout.expiresAt).toLocaleTimeString()}.`;
  $("classes").innerHTML = "";
  for (const c of items) {
    const row = document.createElement("tr");
    row.innerHTML = `<td></td><td>${formatMoney(c.priceCents, c.currency)}</td><td>${c.available}</td><td><input type="number" min="0" max="${Math.min(c.available, 10)}" value="0" data-class="${c.id}" style="width:5em"></td>`;
    row.firstChild.textContent = c.name;
    $("classes").append(row);
  }
  $("order").hidden = false;
})().catch((e) => ($("error").textContent = e.message));

$("order").addEventListener("submit", async (e) => {
  e.preventDefault();
  const lines = [...document.querySelectorAll("input[data-class]")]
    .map((i) => ({ ticketClassId: i.dataset.class, quantity: Number(i.value) }))
    .filter((l) => l.quantity > 0);
  try {
    const res = await api("/api/orders", {
      method: "POST",
      headers: { "Idempotency-Key": idempotencyKey },
      body: { eventId, items: lines, paymentMethod: $("method").value, checkoutToken: checkout?.token },
    });
    location.assign(res.paymentUrl);
  } catch (err) {
    $("error").textContent = err.message;
  }
});
