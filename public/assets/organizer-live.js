// `/organizer/events/{id}/live`: the sale as it happens, for the event's team. Polls public and
// role-holder reads only: the classes' counters every 2 s, the waitroom's edge-cached status
// every 2 s where the server has it (a 404 hides the queue figures), the door's check-ins per
// class every 5 s, the event's orders every 10 s (up to MAX_ORDER_PAGES pages). The chart (uPlot, served from the Worker's assets) keeps
// what this page has seen since it opened; the pace to sell-out is measured over its last minute.
import uPlot from "/vendor/uplot/uPlot.esm.js";
import "/assets/layout.js";
import { $, api, pathParam } from "/assets/api.js";
import { ensureLoggedIn, problemText } from "/assets/forms.js";
import { eventZone, formatMoney, formatNumber, formatTime, onLang, t } from "/assets/i18n.js";

const eventId = pathParam(3);
const eventPath = `/api/events/${encodeURIComponent(eventId)}`;
const FAST_MS = 2_000;
const ORDERS_MS = 10_000;
const CHECK_INS_MS = 5_000;
const MAX_ORDER_PAGES = 5;
const PACE_WINDOW_MS = 60_000;

let event = null;
let classes = [];
let orders = [];
let checkIns = []; // per class: tickets sold and checked in at the door
let ordersTruncated = false;
let status = null; // the waitroom status, null where the server has none
let hasStatus = true;
let updatedAt = null;
const samples = { t: [], sold: [], held: [], queue: [] };
let chart = null;

const sum = (f) => classes.reduce((n, c) => n + f(c), 0);

function pace() {
  const now = samples.t.length ? samples.t[samples.t.length - 1] : 0;
  let i = samples.t.findIndex((s) => s >= now - PACE_WINDOW_MS / 1000);
  if (i < 0 || i === samples.t.length - 1) return null;
  const sold = samples.sold[samples.sold.length - 1] - samples.sold[i];
  const seconds = now - samples.t[i];
  return seconds > 0 ? sold / seconds : null;
}

function renderFigures() {
  const available = sum((c) => Math.max(0, c.available));
  $("f-sold").textContent = formatNumber(sum((c) => c.sold));
  $("f-held").textContent = formatNumber(sum((c) => c.reserved));
  $("f-available").textContent = formatNumber(available);
  const paid = orders.filter((o) => o.status === "COMPLETED");
  $("f-revenue").textContent = formatMoney(paid.reduce((n, o) => n + o.totalAmountCents, 0), paid[0]?.currency ?? "VND");
  $("f-queue").textContent = status ? formatNumber(status.queueLength ?? 0) : "–";
  $("f-admitted").textContent = status?.admittedLastMinute !== undefined ? formatNumber(status.admittedLastMinute) : "–";
  const perSecond = pace();
  $("f-sellout").textContent =
    available === 0 ? t("live.soldOut") : perSecond && perSecond > 0 ? t("live.minutes", { m: formatNumber(Math.ceil(available / perSecond / 60)) }) : "–";
  $("updated").textContent = updatedAt ? formatTime(new Date(updatedAt).toISOString(), eventZone(event)) : "";
}

function rows(tbody, data) {
  tbody.replaceChildren(
    ...data.map((cells) => {
      const tr = document.createElement("tr");
      cells.forEach((text, i) => {
        const td = document.createElement("td");
        td.textContent = text;
        if (i > 0) td.className = "num";
        tr.append(td);
      });
      return tr;
    }),
  );
}

function renderTables() {
  rows($("classes"), classes.map((c) => [c.name, formatNumber(c.sold), formatNumber(c.reserved), formatNumber(Math.max(0, c.available))]));
  const byStatus = new Map();
  const byProvider = new Map();
  for (const o of orders) {
    byStatus.set(o.status, (byStatus.get(o.status) ?? 0) + 1);
    if (o.status !== "COMPLETED") continue;
    const p = byProvider.get(o.paymentMethod) ?? { n: 0, amount: 0, currency: o.currency };
    p.n += 1;
    p.amount += o.totalAmountCents;
    byProvider.set(o.paymentMethod, p);
  }
  rows($("check-ins"), checkIns.map((c) => [c.name, formatNumber(c.checkedIn), formatNumber(c.sold)]));
  rows($("by-status"), [...byStatus].map(([s, n]) => [t(`order.status.${s}`), formatNumber(n)]));
  rows($("by-provider"), [...byProvider].map(([m, p]) => [t(`method.${m}`), formatNumber(p.n), formatMoney(p.amount, p.currency)]));
  $("orders-note").textContent = ordersTruncated ? t("live.truncated", { n: formatNumber(orders.length) }) : "";
}

function chartOptions(width) {
  return {
    width,
    height: 240,
    scales: { x: { time: true } },
    // The axis in the event's time, like every other time on the pages.
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), eventZone(event)),
    series: [
      {},
      { label: t("live.sold"), stroke: "#1a7a43", width: 2 },
      { label: t("live.held"), stroke: "#8f5500", width: 2 },
      { label: t("live.queue"), stroke: "#0b5cab", width: 2, scale: "queue" },
    ],
    axes: [{}, {}, { scale: "queue", side: 1, grid: { show: false } }],
  };
}

function renderChart() {
  const host = $("chart");
  const width = Math.max(260, host.clientWidth || 600);
  const data = [samples.t, samples.sold, samples.held, samples.queue];
  if (!chart) chart = new uPlot(chartOptions(width), data, host);
  else chart.setData(data);
}

function sample() {
  samples.t.push(Date.now() / 1000);
  samples.sold.push(sum((c) => c.sold));
  samples.held.push(sum((c) => c.reserved));
  samples.queue.push(status?.queueLength ?? null);
}

async function refreshFast() {
  try {
    ({ items: classes } = await api(`${eventPath}/ticket-classes`));
    if (hasStatus) {
      try {
        status = await api(`${eventPath}/waitroom/status`);
      } catch (err) {
        if (err.status !== 404) throw err;
        hasStatus = false;
        status = null;
      }
    }
    updatedAt = Date.now();
    $("error").textContent = "";
    sample();
    renderFigures();
    renderTables();
    renderChart();
  } catch (err) {
    $("error").textContent = problemText(err);
  }
}

async function refreshOrders() {
  try {
    const all = [];
    let page = 1;
    let total = 0;
    do {
      const res = await api(`${eventPath}/orders?page=${page}&pageSize=100`);
      all.push(...res.items);
      total = res.total;
      page += 1;
    } while (all.length < total && page <= MAX_ORDER_PAGES);
    orders = all;
    ordersTruncated = all.length < total;
    renderFigures();
    renderTables();
  } catch (err) {
    $("error").textContent = problemText(err);
  }
}

async function refreshCheckIns() {
  try {
    ({ items: checkIns } = await api(`${eventPath}/check-ins/stats`));
    renderTables();
  } catch (err) {
    $("error").textContent = problemText(err);
  }
}

onLang(() => {
  if (!event) return;
  renderFigures();
  renderTables();
  chart?.destroy();
  chart = null;
  renderChart();
});
window.addEventListener("resize", () => chart?.setSize({ width: Math.max(260, $("chart").clientWidth), height: 240 }));

(async () => {
  await ensureLoggedIn();
  $("back").href = `/organizer/events/${encodeURIComponent(eventId)}`;
  try {
    ({ event } = await api(eventPath));
  } catch (err) {
    $("error").textContent = err.status === 404 ? t("org.notFound") : problemText(err);
    return;
  }
  $("event-name").textContent = event.name;
  document.title = `${event.name} · ${t("title.live")} · TicketBottle`;
  $("live").hidden = false;
  await Promise.all([refreshFast(), refreshOrders(), refreshCheckIns()]);
  setInterval(refreshFast, FAST_MS);
  setInterval(refreshOrders, ORDERS_MS);
  setInterval(refreshCheckIns, CHECK_INS_MS);
})().catch((err) => ($("error").textContent = problemText(err)));
