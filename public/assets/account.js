// `/account`: the profile, a password change, the buyer's orders and tickets (`GET /api/tickets`,
// one per unit of every COMPLETED order, each linking to its QR code at `/tickets/{id}`).
import "/assets/layout.js";
import { $, api, clearToken } from "/assets/api.js";
import { clearProblems, ensureLoggedIn, problemText, showProblem } from "/assets/forms.js";
import { formatDateTime, formatMoney, onLang, t } from "/assets/i18n.js";

let user = null;
let orders = [];
let tickets = [];
const eventNames = new Map();

function renderProfile() {
  $("email-shown").textContent = user.email;
  $("verified").textContent = t(user.emailVerified ? "account.verified" : "account.unverified");
  const form = $("profile");
  form.firstName.value = user.firstName;
  form.lastName.value = user.lastName;
}

function cell(text, cls) {
  const td = document.createElement("td");
  if (text instanceof Node) td.append(text);
  else td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function renderOrders() {
  $("no-orders").hidden = orders.length > 0;
  $("orders").replaceChildren(
    ...orders.map((o) => {
      const row = document.createElement("tr");
      const link = document.createElement("a");
      link.href = `/orders/${encodeURIComponent(o.code)}`;
      link.textContent = o.code;
      row.append(
        cell(link),
        cell(eventNames.get(o.eventId) ?? ""),
        cell(t(`order.status.${o.status}`), o.status === "COMPLETED" ? "status-ok" : o.status === "PENDING" ? "" : "muted"),
        cell(formatMoney(o.totalAmountCents, o.currency), "num"),
        cell(formatDateTime(o.createdAt)),
      );
      return row;
    }),
  );
}

function renderTickets() {
  const list = $("tickets");
  $("tickets-note").textContent = tickets.length ? "" : t("account.noTickets");
  list.replaceChildren(
    ...tickets.map((k) => {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = `/tickets/${encodeURIComponent(k.id)}`;
      a.textContent = `${k.ticketClassName ?? ""} · ${k.code}`;
      const s = document.createElement("span");
      s.className = "tag";
      s.textContent = t(`ticket.status.${k.status}`);
      li.append(a, " ", s);
      return li;
    }),
  );
}

function render() {
  if (!user) return;
  renderProfile();
  renderOrders();
  renderTickets();
}

async function load() {
  ({ user } = await api("/api/users/me"));
  ({ items: orders } = await api("/api/orders?pageSize=100"));
  await Promise.all(
    [...new Set(orders.map((o) => o.eventId))].map(async (id) => {
      try {
        const { event } = await api(`/api/events/${encodeURIComponent(id)}`);
        eventNames.set(id, event.name);
      } catch {
        // An event the buyer can no longer see keeps its order, without a name.
      }
    }),
  );
  ({ items: tickets } = await api("/api/tickets"));
  render();
  $("account").hidden = false;
}

$("profile").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  clearProblems(form);
  $("profile-saved").textContent = "";
  try {
    ({ user } = await api("/api/users/me", { method: "PATCH", body: { firstName: form.firstName.value.trim(), lastName: form.lastName.value.trim() } }));
    renderProfile();
    $("profile-saved").textContent = t("account.saved");
  } catch (err) {
    showProblem(form, err);
  }
});

$("password-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  clearProblems(form);
  $("password-saved").textContent = "";
  const password = form.password.value;
  try {
    try {
      await api("/api/users/me", { method: "PATCH", body: { password, currentPassword: form.currentPassword.value } });
    } catch (err) {
      // A server from before revocable sessions knows no `currentPassword` and refuses the
      // unknown field; it takes the change without it.
      const unknown = err.code === "VALIDATION_FAILED" && err.errors.some((x) => /currentPassword/.test(`${x.field} ${x.message}`));
      if (!unknown) throw err;
      await api("/api/users/me", { method: "PATCH", body: { password } });
    }
    form.reset();
    $("password-saved").textContent = t("account.passwordChanged");
  } catch (err) {
    if (err.status === 401) {
      // A password change ends every earlier token (sessions): log in again with the new one.
      clearToken();
      location.assign("/login?next=/account");
      return;
    }
    showProblem(form, err);
  }
});

onLang(render);

(async () => {
  await ensureLoggedIn();
  await load();
})().catch((err) => ($("error").textContent = problemText(err)));
