// Checkout: pick quantities, create the order (holds the tickets for 15 minutes) with the
// waitroom's checkout token, then go to the provider's payment page. The methods offered are
// the ones the server takes (`paymentMethods` of the event), and the quantities stop at what
// the server would accept: what is left, and the event's per-buyer limit less what this buyer
// already holds or bought (pending and completed orders, as the server counts them).
// A free event (`isFree`, the server's one method `free`) offers no method and nothing to pay:
// the order comes back COMPLETED with its tickets, and the page links to them.
import "/assets/layout.js";
import { $, api, pathParam } from "/assets/api.js";
import { ensureLoggedIn, problemText } from "/assets/forms.js";
import { formatMoney, formatTime, onLang, t } from "/assets/i18n.js";

const eventId = pathParam(2);
const eventPath = `/api/events/${encodeURIComponent(eventId)}`;
const waitroomPath = `/events/${encodeURIComponent(eventId)}/waitroom`;
let checkout = null;
try {
  checkout = JSON.parse(sessionStorage.getItem(`tb.checkout.${eventId}`) ?? "null");
} catch {
  checkout = null;
}
let event = null;
let classes = [];
let methods = [];
let currency = "VND";
let allowance = null; // tickets this buyer may still order here; null: no per-buyer limit
let waitroomMessage = null;
let deadlineTimer = null;
let done = null; // the free order, once COMPLETED

const isFree = () => Boolean(event?.config?.isFree) || (methods.length === 1 && methods[0] === "free");

// One Idempotency-Key per order body: a double click or a retry of the same choice cannot
// create two orders, and a changed choice after a refusal is a new request, not a reused key.
const keys = new Map();
function keyFor(body) {
  const text = JSON.stringify(body);
  if (!keys.has(text)) keys.set(text, crypto.randomUUID?.() ?? [...crypto.getRandomValues(new Uint32Array(4))].map((n) => n.toString(16)).join("-"));
  return keys.get(text);
}

const slotExpired = () => checkout?.expiresAt && Date.parse(checkout.expiresAt) <= Date.now();

function needWaitroom(key) {
  waitroomMessage = key;
  $("order").hidden = true;
  $("deadline").hidden = true;
  $("need-waitroom-text").textContent = t(key);
  $("waitroom-link").href = waitroomPath;
  $("need-waitroom").hidden = false;
}

function showDeadline() {
  if (!checkout?.expiresAt || waitroomMessage) return;
  const left = Math.max(0, Math.round((Date.parse(checkout.expiresAt) - Date.now()) / 1000));
  if (left === 0) {
    needWaitroom("checkout.slotExpired");
    return;
  }
  const mmss = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
  $("deadline").textContent = t("checkout.deadline", { at: formatTime(checkout.expiresAt), left: mmss });
  $("deadline").hidden = false;
}

function renderClasses() {
  const body = $("classes");
  const previous = new Map([...document.querySelectorAll("input[data-class]")].map((i) => [i.dataset.class, i.value]));
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
      qty.textContent = t(c.available <= 0 ? "event.soldOut" : "event.paused");
      qty.className = "muted";
    } else {
      const input = document.createElement("input");
      const max = allowance === null ? c.available : Math.min(c.available, allowance);
      Object.assign(input, { type: "number", min: "0", max: String(max), value: previous.get(c.id) ?? "0", className: "qty", inputMode: "numeric" });
      input.dataset.class = c.id;
      input.setAttribute("aria-label", t("checkout.qtyOf", { name: c.name }));
      qty.append(input);
    }
    row.append(...cells, qty);
    body.append(row);
  }
  const limit = $("limit");
  limit.hidden = allowance === null;
  if (allowance !== null) limit.textContent = t("checkout.limit", { max: event.config.maxTicketsPerUser, left: allowance });
  updateTotal();
}

function renderMethods() {
  const select = $("method");
  const chosen = select.value;
  select.replaceChildren(...methods.map((m) => new Option(t(`method.${m}`), m, false, m === chosen)));
}

/** A free event: no method to choose, nothing held while paying, the button gets the tickets. */
function showFree() {
  $("method-field").hidden = true;
  $("held").dataset.i18n = "checkout.freeNote";
  $("held").textContent = t("checkout.freeNote");
  $("pay").dataset.i18n = "checkout.getFree";
  $("pay").textContent = t("checkout.getFree");
}

/** The free order, COMPLETED in its request: its tickets are issued, the checkout is over. */
function showDone(order) {
  if (deadlineTimer) clearInterval(deadlineTimer);
  sessionStorage.removeItem(`tb.checkout.${eventId}`);
  checkout = null;
  $("order").hidden = true;
  $("deadline").hidden = true;
  done = order;
  renderDone();
  $("done-order").href = `/orders/${encodeURIComponent(order.code)}`;
  $("done").hidden = false;
  $("done-order").focus();
}

function renderDone() {
  const count = done.tickets?.length ?? done.items.reduce((n, i) => n + i.quantity, 0);
  $("done-text").textContent = t("checkout.freeDone", { code: done.code, count });
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

async function loadClasses() {
  ({ items: classes } = await api(`${eventPath}/ticket-classes`));
  currency = classes[0]?.currency ?? currency;
  renderClasses();
}

/** The per-buyer limit less the tickets in this buyer's pending and completed orders for the event. */
async function loadAllowance() {
  const max = event.config?.maxTicketsPerUser;
  if (max === null || max === undefined) return (allowance = null);
  const { items } = await api("/api/orders?pageSize=100");
  const held = items
    .filter((o) => o.eventId === eventId && (o.status === "PENDING" || o.status === "COMPLETED"))
    .reduce((n, o) => n + o.items.reduce((m, i) => m + i.quantity, 0), 0);
  allowance = Math.max(0, max - held);
}

(async () => {
  await ensureLoggedIn();
  let paymentMethods;
  ({ event, paymentMethods } = await api(eventPath));
  $("event-name").textContent = event.name;
  document.title = `${event.name} · ${t("title.checkout")} · TicketBottle`;
  // A server from before `paymentMethods` takes the sandbox in development and nothing else is known.
  methods = paymentMethods ?? ["sandbox"];
  renderMethods();
  if (isFree()) showFree();
  const waitroomEvent = Boolean(event.config?.allowWaitRoom);
  if (waitroomEvent && !checkout?.token) return needWaitroom("checkout.needWaitroom");
  if (waitroomEvent && slotExpired()) return needWaitroom("checkout.slotExpired");
  await loadAllowance();
  await loadClasses();
  $("order").hidden = false;
  if (waitroomEvent) {
    showDeadline();
    deadlineTimer = setInterval(showDeadline, 1_000);
  }
})().catch((e) => ($("error").textContent = problemText(e)));

onLang(() => {
  if (event) $("event-name").textContent = event.name;
  if (waitroomMessage) $("need-waitroom-text").textContent = t(waitroomMessage);
  renderMethods();
  if (classes.length) renderClasses();
  if (done) renderDone();
  showDeadline();
});

$("order").addEventListener("input", updateTotal);

$("order").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("error").textContent = "";
  const items = chosenLines();
  if (items.length === 0) {
    $("error").textContent = t("checkout.chooseOne");
    return;
  }
  const body = { eventId, items, paymentMethod: isFree() ? "free" : $("method").value };
  if (checkout?.token) body.checkoutToken = checkout.token;
  $("pay").disabled = true;
  try {
    const res = await api("/api/orders", { method: "POST", headers: { "Idempotency-Key": keyFor(body) }, body });
    // A free order is COMPLETED already (paymentUrl null): no payment page, its tickets are issued.
    // (One a retry finished too late, its hold lapsed and the stock gone, is shown on its page.)
    if (res.paymentUrl) location.assign(res.paymentUrl);
    else if (res.order.status === "COMPLETED") showDone(res.order);
    else location.assign(`/orders/${encodeURIComponent(res.order.code)}`);
  } catch (err) {
    $("pay").disabled = false;
    if (err.code === "CHECKOUT_TOKEN_REQUIRED" || err.code === "CHECKOUT_TOKEN_INVALID") {
      needWaitroom("checkout.tokenInvalid");
    } else if (err.code === "INSUFFICIENT_INVENTORY") {
      $("error").textContent = t("checkout.notEnough");
      await loadClasses().catch(() => {});
    } else {
      $("error").textContent = problemText(err);
    }
  }
});
