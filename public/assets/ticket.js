// `/tickets/{id}`: one ticket with its QR code, large, black on white, for the door's scanner.
// The code image comes through the API client (it needs the buyer's token, which an <img>
// cannot send) and is shown from a data: URL.
import "/assets/layout.js";
import { $, api, getToken, pathParam } from "/assets/api.js";
import { ensureLoggedIn, problemText } from "/assets/forms.js";
import { formatDateTime, onLang, t } from "/assets/i18n.js";

const ticketId = pathParam(2);
let ticket = null;

function render() {
  if (!ticket) return;
  $("class-name").textContent = ticket.ticketClassName ?? "";
  $("code").textContent = ticket.code;
  $("status").textContent = t(`ticket.status.${ticket.status}`);
  $("qr").alt = t("ticket.qrAlt", { code: ticket.code });
  $("checked-in").hidden = !ticket.checkedInAt;
  if (ticket.checkedInAt) $("checked-in").textContent = t("ticket.checkedInAt", { at: formatDateTime(ticket.checkedInAt), gate: ticket.gate ?? "–" });
  $("details").hidden = false;
}

onLang(render);

(async () => {
  await ensureLoggedIn();
  try {
    ({ ticket } = await api(`/api/tickets/${encodeURIComponent(ticketId)}`));
  } catch (err) {
    $("error").textContent = err.status === 404 ? t("ticket.notFound") : problemText(err);
    return;
  }
  render();
  try {
    const { event } = await api(`/api/events/${encodeURIComponent(ticket.eventId)}`);
    $("event-name").textContent = event.name;
  } catch {
    // The ticket stands without its event's name.
  }
  const res = await fetch(`/api/tickets/${encodeURIComponent(ticketId)}/qr.svg`, { headers: { Authorization: `Bearer ${getToken()}` } });
  if (res.ok) $("qr").src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(await res.text())}`;
})().catch((err) => ($("error").textContent = problemText(err)));
