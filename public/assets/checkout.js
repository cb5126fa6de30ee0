// Checkout: pick quantities, create the order (holds the tickets for 15 minutes) with the
// waitroom's checkout token, then go to the provider's payment page.
import { $, api, ensureLoggedIn, formatMoney, pathParam } from "/assets/api.js";

const eventId = pathParam(2);
const eventPath = `/api/events/${encodeURIComponent(eventId)}`;
const waitroomPath = `/events/${encodeURIComponent(eventId)}/waitroom`;
let checkout = null;
try {
  checkout = JSON.parse(sessionStorage.getItem(`tb.checkout.${eventId}`) ?? "null");
} catch {
  checkout = null;
}
let classes = [];
let currency = "VND";
let waitroomEvent = false;
let maxPerUser = 10;

// One Idempotency-Key per order body: a double click or a retry of the same choice cannot
// create two orders, and a changed choice after a refusal is a new request, not a reused key.
const keys = new Map();
function keyFor(body) {
  const text = JSON.stringify(body);
  if (!keys.has(text)) keys.set(text, crypto.randomUUID?.() ?? [...crypto.getRandomValues(new Uint32Array(4))].map((n) => n.toString(16)).join("-"));
  return keys.get(text);
}

const slotExpired = () => checkout?.expiresAt && Date.parse(checkout.expiresAt) <= Date.now();

function needWaitroom(text) {
  $("order").hidden = true;
  $("deadline").hidden = true;
  $("need-waitroom-text").textContent = text;
  $("waitroom-link").href = waitroomPath;
  $("need-waitroom").hidden = false;
}

function showDeadline() {
  if (!checkout?.expiresAt) return;
  const left = Math.max(0, Math.round((Date.parse(checkout.expiresAt) - Date.now()) / 1000));
  if (left === 0) {
    needWaitroom("Your checkout slot has expired. Join the waiting room again for a new one.");
    return;
  }
  const mmss = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
  $("deadline").textContent = `Your checkout slot is held until ${new Date(checkout.expiresAt).toLocaleTimeString()} (${mmss} left).`;
  $("deadline").hidden = false;
  setTimeout(showDeadline, 1_000);
}

function renderClasses(maxPerUser) {
  const body = $("classes");
  body.replaceChildren();
  for (const c of classes) {
    const row = document.createElement("tr");
    const cells = [c.name, formatMoney(c.priceCents, c.currency), String(c.available)].map((text, i) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (i > 0) td.className = "num";
      return td;
    });
    const qty = document.createElement("td");
    if (c.status !== "ACTIVE" || c.available <= 0) {
      qty.textContent = c.available <= 0 ? "Sold out" : "Paused";
      qty.className = "muted";
    } else {
      const input = document.createElement("input");
      Object.assign(input, { type: "number", min: "0", max: String(Math.min(c.available, maxPerUser)), value: "0", className: "qty" });
      input.dataset.class = c.id;
      input.setAttribute("aria-label", `Quantity of ${c.name}`);
      qty.append(input);
    }
    row.append(...cells, qty);
    body.append(row);
  }
  updateTotal();
}

function chosenLines() {
  return [...document.querySelectorAll("input[data-class]")]
    .map((i) => ({ ticketClassId: i.dataset.class, quantity: Math.max(0, Math.floor(Number(i.value) || 0)) }))
    .filter((l) => l.quantity > 0);
}

function updateTotal() {
  const total = chosenLines().reduce((sum, l) => sum + l.quantity * (classes.find((c) => c.id === l.ticketClassId)?.priceCents ?? 0), 0);
  $("total").textContent = formatMoney(total, currency);
}

async function loadClasses(maxPerUser) {
  ({ items: classes } = await api(`${eventPath}/ticket-classes`));
  currency = classes[0]?.currency ?? currency;
  renderClasses(maxPerUser);
}

(async () => {
  await ensureLoggedIn();
  const { event } = await api(eventPath);
  $("event-name").textContent = event.name;
  document.title = `${event.name} · Checkout · TicketBottle`;
  waitroomEvent = Boolean(event.config?.allowWaitRoom);
  maxPerUser = Math.min(event.config?.maxTicketsPerUser ?? 10, 10);
  if (waitroomEvent && !checkout?.token) {
    needWaitroom("Tickets for this event are sold through its waiting room: take your place there first.");
    return;
  }
  if (waitroomEvent && slotExpired()) {
    needWaitroom("Your checkout slot has expired. Join the waiting room again for a new one.");
    return;
  }
  await loadClasses(maxPerUser);
  $("order").hidden = false;
  if (waitroomEvent) showDeadline();
})().catch((e) => ($("error").textContent = e.message));

$("order").addEventListener("input", updateTotal);

$("order").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("error").textContent = "";
  const items = chosenLines();
  if (items.length === 0) {
    $("error").textContent = "Choose at least one ticket.";
    return;
  }
  const body = { eventId, items, paymentMethod: $("method").value };
  if (checkout?.token) body.checkoutToken = checkout.token;
  $("pay").disabled = true;
  try {
    const res = await api("/api/orders", { method: "POST", headers: { "Idempotency-Key": keyFor(body) }, body });
    location.assign(res.paymentUrl);
  } catch (err) {
    $("pay").disabled = false;
    if (err.code === "CHECKOUT_TOKEN_REQUIRED" || err.code === "CHECKOUT_TOKEN_INVALID") {
      needWaitroom("Your checkout slot is no longer valid. Join the waiting room again for a new one.");
    } else if (err.code === "INSUFFICIENT_INVENTORY") {
      $("error").textContent = "Not enough tickets are left for that choice; nothing was held. The counts are updated.";
      await loadClasses(maxPerUser).catch(() => {});
    } else {
      $("error").textContent = err.message;
    }
  }
});
