// `/organizer`: the events the caller holds a role on, in any status, and a form to create one
// (it starts as a DRAFT whose admin is the caller; the rest happens on its own page).
import "/assets/layout.js";
import { $, api } from "/assets/api.js";
import { clearProblems, ensureLoggedIn, problemText, showProblem } from "/assets/forms.js";
import { DEFAULT_TZ, eventZone, formatDateTime, onLang, t, zonedInputToIso } from "/assets/i18n.js";

let events = [];

function render() {
  $("no-events").hidden = events.length > 0;
  $("events").replaceChildren(
    ...events.map((e) => {
      const row = document.createElement("tr");
      const name = document.createElement("td");
      const a = document.createElement("a");
      a.href = `/organizer/events/${encodeURIComponent(e.id)}`;
      a.textContent = e.name;
      name.append(a);
      const status = document.createElement("td");
      const badge = document.createElement("span");
      badge.className = `tag status-${e.status.toLowerCase()}`;
      badge.textContent = t(`status.${e.status}`);
      status.append(badge);
      const starts = document.createElement("td");
      starts.textContent = formatDateTime(e.startDate, eventZone(e));
      row.append(name, status, starts);
      return row;
    }),
  );
}

async function load() {
  ({ items: events } = await api("/api/events?mine=true&pageSize=100"));
  render();
  try {
    const { items } = await api("/api/categories");
    const select = $("categoryIds");
    for (const c of items) select.append(new Option(c.name, c.id));
  } catch {
    // An event may be created without a category.
  }
  $("console").hidden = false;
}

$("create").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  clearProblems(form);
  const body = {
    name: form.name.value.trim(),
    description: form.description.value.trim(),
    location: form.location.value.trim(),
    startDate: zonedInputToIso(form.startDate.value, DEFAULT_TZ),
    endDate: zonedInputToIso(form.endDate.value, DEFAULT_TZ),
  };
  if (form.thumbnailUrl.value.trim()) body.thumbnailUrl = form.thumbnailUrl.value.trim();
  if (form.categoryIds.value) body.categoryIds = [form.categoryIds.value];
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const { event } = await api("/api/events", { method: "POST", body });
    location.assign(`/organizer/events/${encodeURIComponent(event.id)}`);
  } catch (err) {
    showProblem(form, err);
    button.disabled = false;
  }
});

onLang(render);

(async () => {
  await ensureLoggedIn();
  await load();
})().catch((err) => ($("error").textContent = problemText(err)));
