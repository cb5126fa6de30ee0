// `/organizer/events/{id}`: one event's console. Details, sale terms (saving them sends a draft
// for approval), ticket classes, the team's roles, and the workflow (publish once approved,
// cancel at any time), each irreversible step behind an explicit confirmation. Every API
// error is shown next to the field it names.
import "/assets/layout.js";
import { $, api, pathParam } from "/assets/api.js";
import { clearProblems, ensureLoggedIn, problemText, showProblem } from "/assets/forms.js";
import { eventZone, formatNumber, isoToZonedInput, onLang, t, zonedInputToIso } from "/assets/i18n.js";

const eventId = pathParam(3);
const eventPath = `/api/events/${encodeURIComponent(eventId)}`;
const ROLES = ["admin", "editor", "viewer", "staff"];
let event = null;
let classes = [];
let roles = [];

const zone = () => eventZone(event);
const numberOrNull = (v) => (String(v).trim() === "" ? null : Number(v));

function saved(form) {
  const out = form.querySelector(".saved");
  out.textContent = t("account.saved");
  setTimeout(() => (out.textContent = ""), 4_000);
}

function renderWorkflow() {
  $("event-name").textContent = event.name;
  document.title = `${event.name} · TicketBottle`;
  const s = event.status;
  $("status").textContent = t(`status.${s}`);
  $("status").className = `tag status-${s.toLowerCase()}`;
  $("status-text").textContent = t(`org.statusText.${s}`);
  $("public-link-line").hidden = s !== "PUBLISHED";
  $("public-link").href = `/events/${encodeURIComponent(event.id)}`;
  $("live-link").href = `/organizer/events/${encodeURIComponent(event.id)}/live`;
  $("door-link").href = `/organizer/events/${encodeURIComponent(event.id)}/door`;
  $("publish").hidden = s !== "APPROVED";
  $("cancel").hidden = s === "CANCELLED";
  const submits = s === "DRAFT" || s === "APPROVED";
  $("config-submit").textContent = t(submits ? "org.saveAndSubmit" : "org.saveConfig");
  $("config-note").textContent = t(s === "PUBLISHED" ? "org.configNotePublished" : "org.configNote");
  for (const form of document.querySelectorAll("#manage form")) {
    for (const el of form.elements) el.disabled = s === "CANCELLED";
  }
}

function renderDetails() {
  const f = $("details");
  f.name.value = event.name;
  f.description.value = event.description;
  f.location.value = event.location;
  f.startDate.value = isoToZonedInput(event.startDate, zone());
  f.endDate.value = isoToZonedInput(event.endDate, zone());
  f.thumbnailUrl.value = event.thumbnailUrl ?? "";
}

function renderConfig() {
  const c = event.config;
  const f = $("config");
  if (!c) return;
  f.ticketSaleStartDate.value = isoToZonedInput(c.ticketSaleStartDate, zone());
  f.ticketSaleEndDate.value = isoToZonedInput(c.ticketSaleEndDate, zone());
  f.maxTicketsPerUser.value = c.maxTicketsPerUser ?? "";
  f.maxAttendees.value = c.maxAttendees ?? "";
  for (const k of ["isPublic", "allowWaitRoom", "isFree", "requiresApproval", "isNewTrending"]) f[k].checked = Boolean(c[k]);
  f["waitroom.maxConcurrentCheckouts"].value = c.waitroom.maxConcurrentCheckouts;
  f["waitroom.checkoutTtlSeconds"].value = c.waitroom.checkoutTtlSeconds;
  f["waitroom.admissionBatch"].value = c.waitroom.admissionBatch;
  f["waitroom.shards"].value = c.waitroom.shards;
}

function classRow(c) {
  const row = document.createElement("tr");
  const form = `class-${c.id}`;
  const input = (name, value, label) => {
    const el = document.createElement("input");
    Object.assign(el, { type: "number", name, value: String(value), min: name === "total" ? "1" : "0", className: "qty" });
    el.setAttribute("form", form);
    el.setAttribute("aria-label", `${label}: ${c.name}`);
    el.inputMode = "numeric";
    return el;
  };
  const td = (child, cls) => {
    const cell = document.createElement("td");
    cell.append(child);
    if (cls) cell.className = cls;
    return cell;
  };
  const status = document.createElement("select");
  status.name = "status";
  status.setAttribute("form", form);
  status.setAttribute("aria-label", `${t("org.classStatus")}: ${c.name}`);
  for (const s of ["ACTIVE", "PAUSED"]) status.append(new Option(t(`class.status.${s}`), s, false, s === c.status));
  const save = document.createElement("button");
  save.type = "submit";
  save.textContent = t("org.saveClass");
  save.setAttribute("form", form);
  save.setAttribute("aria-label", `${t("org.saveClass")}: ${c.name}`);
  // The row's controls belong to a form outside the table (a form may not wrap a row).
  const f = document.createElement("form");
  f.id = form;
  f.className = "row-form";
  f.addEventListener("submit", async (e) => {
    e.preventDefault();
    $("classes-error").textContent = "";
    try {
      await api(`${eventPath}/ticket-classes/${encodeURIComponent(c.id)}`, {
        method: "PATCH",
        body: { priceCents: Number(row.querySelector("[name=priceCents]").value), total: Number(row.querySelector("[name=total]").value), status: status.value },
      });
      await loadClasses();
      await reloadEvent();
    } catch (err) {
      $("classes-error").textContent = `${c.name}: ${err.errors?.map((x) => `${x.field}: ${x.message}`).join(" · ") || problemText(err)}`;
    }
  });
  const nameCell = document.createElement("td");
  nameCell.textContent = c.name;
  nameCell.append(f);
  row.append(
    nameCell,
    td(input("priceCents", c.priceCents, t("org.price")), "num"),
    td(input("total", c.total, t("org.total")), "num"),
    td(formatNumber(c.sold), "num"),
    td(formatNumber(c.reserved), "num"),
    td(status),
    td(save),
  );
  return row;
}

function renderClasses() {
  $("classes").replaceChildren(...classes.map(classRow));
}

function renderRoles() {
  $("r-role").replaceChildren(...ROLES.map((r) => new Option(t(`role.${r}`), r, false, r === "editor")));
  $("roles").replaceChildren(
    ...roles.map((r) => {
      const row = document.createElement("tr");
      const email = document.createElement("td");
      email.textContent = r.email;
      const role = document.createElement("td");
      const select = document.createElement("select");
      select.setAttribute("aria-label", `${t("org.role")}: ${r.email}`);
      for (const name of ROLES) select.append(new Option(t(`role.${name}`), name, false, name === r.role));
      select.addEventListener("change", () => setRole(r.userId, select.value));
      role.append(select);
      const actions = document.createElement("td");
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = t("org.removeRole");
      remove.setAttribute("aria-label", `${t("org.removeRole")}: ${r.email}`);
      remove.addEventListener("click", () => removeRole(r.userId));
      actions.append(remove);
      row.append(email, role, actions);
      return row;
    }),
  );
}

function render() {
  if (!event) return;
  renderWorkflow();
  renderClasses();
  renderRoles();
}

async function reloadEvent() {
  ({ event } = await api(eventPath));
  renderWorkflow();
}

async function loadClasses() {
  ({ items: classes } = await api(`${eventPath}/ticket-classes`));
  renderClasses();
}

async function loadRoles() {
  ({ items: roles } = await api(`${eventPath}/roles`));
  renderRoles();
}

async function setRole(userId, role) {
  $("roles-error").textContent = "";
  try {
    await api(`${eventPath}/roles/${encodeURIComponent(userId)}`, { method: "PUT", body: { role } });
  } catch (err) {
    $("roles-error").textContent = problemText(err);
  }
  await loadRoles();
}

async function removeRole(userId) {
  $("roles-error").textContent = "";
  try {
    await api(`${eventPath}/roles/${encodeURIComponent(userId)}`, { method: "DELETE" });
  } catch (err) {
    $("roles-error").textContent = problemText(err);
  }
  await loadRoles();
}

// ---- workflow: an irreversible step asks first ---------------------------------------------

let pending = null; // the step awaiting confirmation: "publish" | "cancel"

function ask(step) {
  pending = step;
  $("confirm-text").textContent = t(step === "publish" ? "org.confirmPublish" : "org.confirmCancel", { name: event.name });
  $("confirm-yes").textContent = t(step === "publish" ? "org.yesPublish" : "org.yesCancel");
  $("confirm-yes").className = step === "publish" ? "primary" : "danger";
  $("confirm").hidden = false;
  $("workflow-actions").hidden = true;
  $("confirm-no").focus();
}

function closeConfirm() {
  pending = null;
  $("confirm").hidden = true;
  $("workflow-actions").hidden = false;
}

$("publish").addEventListener("click", () => ask("publish"));
$("cancel").addEventListener("click", () => ask("cancel"));
$("confirm-no").addEventListener("click", () => {
  closeConfirm();
  $("cancel").hidden || $("cancel").focus();
});
$("confirm-yes").addEventListener("click", async () => {
  const step = pending;
  if (!step) return;
  $("workflow-error").textContent = "";
  $("confirm-yes").disabled = true;
  try {
    ({ event } = await api(`${eventPath}/${step}`, { method: "POST" }));
    closeConfirm();
    renderWorkflow();
    $("workflow-heading").scrollIntoView({ block: "nearest" });
  } catch (err) {
    $("workflow-error").textContent = problemText(err);
  } finally {
    $("confirm-yes").disabled = false;
  }
});

// ---- forms ----------------------------------------------------------------------------------

$("details").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.currentTarget;
  clearProblems(f);
  const body = {
    name: f.name.value.trim(),
    description: f.description.value.trim(),
    location: f.location.value.trim(),
    startDate: zonedInputToIso(f.startDate.value, zone()),
    endDate: zonedInputToIso(f.endDate.value, zone()),
    thumbnailUrl: f.thumbnailUrl.value.trim() || null,
  };
  try {
    ({ event } = await api(eventPath, { method: "PATCH", body }));
    renderWorkflow();
    saved(f);
  } catch (err) {
    showProblem(f, err);
  }
});

$("config").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.currentTarget;
  clearProblems(f);
  const body = {
    ticketSaleStartDate: zonedInputToIso(f.ticketSaleStartDate.value, zone()),
    ticketSaleEndDate: zonedInputToIso(f.ticketSaleEndDate.value, zone()),
    maxTicketsPerUser: numberOrNull(f.maxTicketsPerUser.value),
    maxAttendees: numberOrNull(f.maxAttendees.value),
    isPublic: f.isPublic.checked,
    allowWaitRoom: f.allowWaitRoom.checked,
    isFree: f.isFree.checked,
    requiresApproval: f.requiresApproval.checked,
    isNewTrending: f.isNewTrending.checked,
    waitroom: {
      maxConcurrentCheckouts: numberOrNull(f["waitroom.maxConcurrentCheckouts"].value),
      checkoutTtlSeconds: numberOrNull(f["waitroom.checkoutTtlSeconds"].value),
      admissionBatch: numberOrNull(f["waitroom.admissionBatch"].value),
      shards: numberOrNull(f["waitroom.shards"].value),
    },
  };
  try {
    ({ event } = await api(`${eventPath}/config`, { method: "PUT", body }));
    renderWorkflow();
    renderConfig();
    saved(f);
  } catch (err) {
    showProblem(f, err);
  }
});

$("add-class").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.currentTarget;
  clearProblems(f);
  try {
    await api(`${eventPath}/ticket-classes`, {
      method: "POST",
      body: { name: f.name.value.trim(), priceCents: numberOrNull(f.priceCents.value), currency: f.currency.value, total: numberOrNull(f.total.value) },
    });
    f.reset();
    await loadClasses();
    await reloadEvent();
  } catch (err) {
    showProblem(f, err);
  }
});

$("add-role").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.currentTarget;
  clearProblems(f);
  try {
    await api(`${eventPath}/roles/${encodeURIComponent(f.userId.value.trim())}`, { method: "PUT", body: { role: f.role.value } });
    f.userId.value = "";
    await loadRoles();
  } catch (err) {
    showProblem(f, err);
  }
});

onLang(render);

(async () => {
  await ensureLoggedIn();
  try {
    ({ event } = await api(eventPath));
  } catch (err) {
    $("error").textContent = err.status === 404 ? t("org.notFound") : problemText(err);
    return;
  }
  renderDetails();
  renderConfig();
  await Promise.all([loadClasses(), loadRoles()]);
  render();
  $("manage").hidden = false;
})().catch((err) => ($("error").textContent = problemText(err)));
