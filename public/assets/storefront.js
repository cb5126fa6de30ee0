// The storefront: published public events, searched and filtered as `GET /api/events` allows
// (text, category, dates), a page at a time. The filters live in the page's URL
// (`/?q=&category=&from=&to=&page=`), so a search can be shared and the back button works.
import "/assets/layout.js";
import { $, api, withQuery } from "/assets/api.js";
import { problemText } from "/assets/forms.js";
import { DEFAULT_TZ, eventZone, formatDateTime, onLang, t, zonedInputToIso } from "/assets/i18n.js";

const PAGE_SIZE = 12;
const form = $("filters");
let last = null; // the last answer, re-rendered on a language switch

function readUrl() {
  const p = new URLSearchParams(location.search);
  return { q: p.get("q") ?? "", category: p.get("category") ?? "", from: p.get("from") ?? "", to: p.get("to") ?? "", page: Math.max(1, Number(p.get("page")) || 1) };
}

/** A day from the date filter as the API's instant: its start (from) or end (to) in Vietnam. */
function dayBound(day, end) {
  if (!day) return undefined;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return day; // already an instant
  const start = zonedInputToIso(`${day}T00:00`, DEFAULT_TZ);
  return end ? new Date(Date.parse(start) + 86_400_000 - 1000).toISOString().replace(".000Z", "Z") : start;
}

function card(event) {
  const li = document.createElement("li");
  li.className = "event-card";
  const h = document.createElement("h2");
  const a = document.createElement("a");
  a.href = `/events/${encodeURIComponent(event.id)}`;
  a.textContent = event.name;
  h.append(a);
  const when = document.createElement("p");
  when.className = "when";
  when.textContent = formatDateTime(event.startDate, eventZone(event));
  const where = document.createElement("p");
  where.className = "muted";
  where.textContent = event.location;
  li.append(h, when, where);
  if (event.categories?.length) {
    const tags = document.createElement("p");
    tags.className = "tags";
    for (const c of event.categories) {
      const tag = document.createElement("span");
      tag.className = "tag";
      tag.textContent = c.name;
      tags.append(tag);
    }
    li.append(tags);
  }
  return li;
}

function render() {
  if (!last) return;
  const { items, page, pageSize, total } = last;
  $("events").replaceChildren(...items.map(card));
  const pages = Math.max(1, Math.ceil(total / pageSize));
  $("summary").textContent = total === 0 ? t("store.none") : t("store.count", { n: total });
  $("pager").hidden = pages <= 1;
  $("page-of").textContent = t("store.pageOf", { page, pages });
  $("prev").disabled = page <= 1;
  $("next").disabled = page >= pages;
}

async function search() {
  const f = readUrl();
  $("error").textContent = "";
  try {
    last = await api(
      withQuery("/api/events", { q: f.q, category: f.category, from: dayBound(f.from, false), to: dayBound(f.to, true), page: f.page, pageSize: PAGE_SIZE }),
    );
    render();
  } catch (err) {
    $("error").textContent = problemText(err);
  }
}

function go(changes) {
  const f = { ...readUrl(), ...changes };
  history.pushState(null, "", withQuery("/", { q: f.q, category: f.category, from: f.from, to: f.to, page: f.page > 1 ? f.page : "" }));
  search();
}

async function loadCategories() {
  try {
    const { items } = await api("/api/categories");
    const select = $("category");
    for (const c of items) select.append(new Option(c.name, c.slug));
    select.value = readUrl().category;
  } catch {
    // Without categories the other filters still work.
  }
}

function fillForm() {
  const f = readUrl();
  form.q.value = f.q;
  form.category.value = f.category;
  form.from.value = /^\d{4}-\d{2}-\d{2}$/.test(f.from) ? f.from : "";
  form.to.value = /^\d{4}-\d{2}-\d{2}$/.test(f.to) ? f.to : "";
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  go({ q: form.q.value.trim(), category: form.category.value, from: form.from.value, to: form.to.value, page: 1 });
});
$("prev").addEventListener("click", () => go({ page: readUrl().page - 1 }));
$("next").addEventListener("click", () => go({ page: readUrl().page + 1 }));
window.addEventListener("popstate", () => {
  fillForm();
  search();
});
onLang(render);

fillForm();
loadCategories();
search();
