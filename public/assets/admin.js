// `/admin`: the platform admin's approval queue (`GET /api/events?status=CONFIGURED`): each
// event with its dates, sale terms and classes, and Approve.
import "/assets/layout.js";
import { $, api } from "/assets/api.js";
import { ensureLoggedIn, problemText } from "/assets/forms.js";
import { eventZone, formatDateTime, formatMoney, onLang, t } from "/assets/i18n.js";

let events = [];
const classes = new Map();
const approved = new Set();

function item(e) {
  const li = document.createElement("li");
  li.className = "panel";
  const h = document.createElement("h2");
  h.textContent = e.name;
  const meta = document.createElement("p");
  meta.className = "muted";
  meta.textContent = `${formatDateTime(e.startDate, eventZone(e))} · ${e.location}`;
  const terms = document.createElement("p");
  if (e.config) {
    terms.textContent = t("admin.terms", {
      opens: formatDateTime(e.config.ticketSaleStartDate, eventZone(e)),
      closes: formatDateTime(e.config.ticketSaleEndDate, eventZone(e)),
      max: e.config.maxTicketsPerUser ?? "–",
    });
  }
  const list = document.createElement("ul");
  for (const c of classes.get(e.id) ?? []) {
    const li2 = document.createElement("li");
    li2.textContent = `${c.name}: ${formatMoney(c.priceCents, c.currency)} × ${c.total}`;
    list.append(li2);
  }
  const actions = document.createElement("div");
  actions.className = "actions";
  const out = document.createElement("p");
  out.setAttribute("role", "status");
  if (approved.has(e.id)) {
    out.className = "status-ok";
    out.textContent = t("admin.approved");
  } else {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "primary";
    button.textContent = t("admin.approve");
    button.setAttribute("aria-label", `${t("admin.approve")}: ${e.name}`);
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await api(`/api/events/${encodeURIComponent(e.id)}/approve`, { method: "POST" });
        approved.add(e.id);
        render();
      } catch (err) {
        out.className = "error";
        out.textContent = problemText(err);
        button.disabled = false;
      }
    });
    actions.append(button);
  }
  li.append(h, meta, terms, list, actions, out);
  return li;
}

function render() {
  $("none").hidden = events.length > 0;
  $("events").replaceChildren(...events.map(item));
}

onLang(render);

(async () => {
  await ensureLoggedIn();
  try {
    ({ items: events } = await api("/api/events?status=CONFIGURED&pageSize=100"));
  } catch (err) {
    $("error").textContent = err.status === 403 ? t("admin.forbidden") : problemText(err);
    return;
  }
  await Promise.all(
    events.map(async (e) => {
      try {
        classes.set(e.id, (await api(`/api/events/${encodeURIComponent(e.id)}/ticket-classes`)).items);
      } catch {
        classes.set(e.id, []);
      }
    }),
  );
  render();
  $("queue").hidden = false;
})().catch((err) => ($("error").textContent = problemText(err)));
