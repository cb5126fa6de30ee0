// An event's page: details, ticket classes with price and live availability, the countdown to
// the sale and one Buy button (the waitroom when the event has one, else checkout). Live
// figures come from public reads only: the classes every 10 s and, where the server has it,
// the waitroom's edge-cached status every 5 s (a 404 means it has none yet: stop asking).
import "/assets/layout.js";
import { $, api, pathParam } from "/assets/api.js";
import { problemText } from "/assets/forms.js";
import { eventZone, formatCountdown, formatDateTime, formatMoney, formatNumber, formatWait, onLang, t } from "/assets/i18n.js";

const eventId = pathParam(2);
const eventPath = `/api/events/${encodeURIComponent(eventId)}`;
const CLASSES_MS = 10_000;
const STATUS_MS = 5_000;
let event = null;
let classes = [];
let status = null;

function saleWindow() {
  const c = event?.config;
  if (!c) return { state: "unconfigured" };
  const now = Date.now();
  const opens = Date.parse(c.ticketSaleStartDate);
  const closes = Date.parse(c.ticketSaleEndDate);
  if (event.status === "CANCELLED") return { state: "cancelled" };
  if (event.status !== "PUBLISHED") return { state: "unpublished" };
  if (now < opens) return { state: "before", opens };
  if (now >= closes) return { state: "ended" };
  const left = classes.reduce((n, k) => n + (k.status === "ACTIVE" ? Math.max(0, k.available) : 0), 0);
  if (classes.length > 0 && left === 0) return { state: "soldOut" };
  return { state: "open", closes };
}

function availability(c) {
  if (c.status !== "ACTIVE") return [t("event.paused"), "muted"];
  if (c.available <= 0) return [t("event.soldOut"), "status-bad"];
  if (c.available <= Math.max(10, c.total / 10)) return [t("event.fewLeft", { n: formatNumber(c.available) }), "status-warn"];
  return [t("event.available", { n: formatNumber(c.available) }), "status-ok"];
}

function renderClasses() {
  $("classes").replaceChildren(
    ...classes.map((c) => {
      const row = document.createElement("tr");
      const name = document.createElement("td");
      name.textContent = c.name;
      const price = document.createElement("td");
      price.className = "num";
      price.textContent = formatMoney(c.priceCents, c.currency);
      const avail = document.createElement("td");
      const [text, cls] = availability(c);
      avail.className = `num ${cls}`;
      avail.textContent = text;
      row.append(name, price, avail);
      return row;
    }),
  );
}

function renderSale() {
  const w = saleWindow();
  const tz = eventZone(event);
  const buy = $("buy");
  const waitroom = Boolean(event.config?.allowWaitRoom);
  const target = `/events/${encodeURIComponent(eventId)}/${waitroom ? "waitroom" : "checkout"}`;
  // Before the sale a waitroom event already takes places (the pre-queue is drawn at random
  // when the sale opens); a sale without one has nothing to buy yet.
  const canBuy = w.state === "open" || (w.state === "before" && waitroom);
  if (canBuy) {
    buy.href = target;
    buy.removeAttribute("aria-disabled");
  } else {
    buy.removeAttribute("href");
    buy.setAttribute("aria-disabled", "true");
  }
  buy.textContent = t(w.state === "before" && waitroom ? "event.joinQueue" : "event.buy");
  $("sale-state").textContent = {
    before: t("event.opensAt", { at: formatDateTime(event.config?.ticketSaleStartDate, tz) }),
    open: t("event.onSaleUntil", { at: formatDateTime(event.config?.ticketSaleEndDate, tz) }),
    ended: t("event.saleEnded"),
    soldOut: t("event.allSoldOut"),
    cancelled: t("event.cancelled"),
    unpublished: t("event.unpublished"),
    unconfigured: t("event.unpublished"),
  }[w.state];
  $("countdown").hidden = w.state !== "before";
  if (w.state === "before") $("countdown").textContent = formatCountdown(w.opens - Date.now());
  $("buy-note").textContent = canBuy ? t(waitroom ? "event.viaWaitroom" : "event.viaCheckout") : "";
  const q = $("queue-info");
  q.hidden = !status || !waitroom;
  if (status) q.textContent = t("event.queue", { n: formatNumber(status.queueLength ?? 0), wait: formatWait(status.estimatedWaitSeconds) });
}

function render() {
  if (!event) return;
  const tz = eventZone(event);
  document.title = `${event.name} · TicketBottle`;
  $("event-name").textContent = event.name;
  $("when").textContent = `${formatDateTime(event.startDate, tz)} – ${formatDateTime(event.endDate, tz)}`;
  $("where").textContent = event.location;
  $("description").textContent = event.description;
  $("categories").replaceChildren(
    ...event.categories.map((c) => {
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = c.name;
      return tag;
    }),
  );
  renderClasses();
  renderSale();
  $("event").hidden = false;
}

async function refreshClasses() {
  try {
    ({ items: classes } = await api(`${eventPath}/ticket-classes`));
    renderClasses();
    renderSale();
  } catch {
    // Keep the last figures; the next poll tries again.
  }
}

let statusTimer = null;
async function refreshStatus() {
  try {
    status = await api(`${eventPath}/waitroom/status`);
    renderSale();
  } catch (err) {
    if (err.status === 404) {
      // This server has no status endpoint (or the event no waitroom): stop asking.
      clearInterval(statusTimer);
      status = null;
    }
  }
}

(async () => {
  try {
    [{ event }, { items: classes }] = await Promise.all([api(eventPath), api(`${eventPath}/ticket-classes`)]);
  } catch (err) {
    $("error").textContent = err.status === 404 ? t("event.notFound") : problemText(err);
    return;
  }
  render();
  setInterval(renderSale, 1_000);
  setInterval(refreshClasses, CLASSES_MS);
  if (event.config?.allowWaitRoom && event.status === "PUBLISHED") {
    refreshStatus();
    statusTimer = setInterval(refreshStatus, STATUS_MS);
  }
})();
onLang(render);
