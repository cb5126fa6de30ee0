// The waitroom page: joins the event's queue (idempotent), then follows the live position over
// the object's WebSocket, reconnecting with back-off and polling while the socket is down.
import { api, ensureLoggedIn, formatWait, getToken } from "/assets/api.js";

const eventId = location.pathname.split("/")[2];
const $ = (id) => document.getElementById(id);
let firstPosition = null;
let socket = null;
let retry = 0;
let pollTimer = null;
let done = false;

function show(section) {
  for (const id of ["queue", "admitted", "ended"]) $(id).hidden = id !== section;
}

function render(s) {
  if (s.status === "QUEUED") {
    show("queue");
    $("position").textContent = s.position ?? "–";
    $("queue-length").textContent = s.queueLength;
    $("wait").textContent = formatWait(s.estimatedWaitSeconds);
    if (s.position) {
      firstPosition = Math.max(firstPosition ?? s.position, s.position);
      const pct = firstPosition <= 1 ? 100 : Math.round(((firstPosition - s.position) / (firstPosition - 1)) * 100);
      $("progress").style.width = `${pct}%`;
    }
  } else if (s.status === "ADMITTED" && s.checkoutToken) {
    admitted(s.checkoutToken, s.checkoutExpiresAt);
  } else {
    ended(s.status);
  }
}

function admitted(token, expiresAt) {
  done = true;
  show("admitted");
  sessionStorage.setItem(`tb.checkout.${eventId}`, JSON.stringify({ token, expiresAt }));
  setTimeout(() => location.assign(`/events/${eventId}/checkout`), 600);
}

function ended(status) {
  done = true;
  show("ended");
  $("ended-text").textContent =
    status === "LEFT" ? "You left the queue." : status === "COMPLETED" ? "Your checkout is complete." : "Your place in the queue has ended.";
}

function connect() {
  if (done) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/api/events/${eventId}/waitroom/ws?token=${encodeURIComponent(getToken())}`);
  socket.onopen = () => {
    retry = 0;
    $("connection").textContent = "live";
    stopPolling();
  };
  socket.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === "position") render({ status: "QUEUED", ...msg });
    else if (msg.type === "admitted") admitted(msg.checkoutToken, msg.checkoutExpiresAt);
    else if (msg.type === "expired") ended("EXPIRED");
  };
  socket.onclose = () => {
    if (done) return;
    $("connection").textContent = "reconnecting";
    startPolling();
    retry = Math.min(retry + 1, 6);
    setTimeout(connect, 500 * 2 ** retry);
  };
  // Tell the server we are still here even when the head does not move for a while.
  const ping = setInterval(() => (socket?.readyState === 1 ? socket.send(JSON.stringify({ type: "ping" })) : clearInterval(ping)), 30_000);
}

function startPolling() {
  if (pollTimer) return;
  pollTimer = setInterval(async () => {
    try {
      render((await api(`/api/events/${eventId}/waitroom/session`)).waitroomSession);
    } catch (e) {
      $("error").textContent = e.message;
    }
  }, 5_000);
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = null;
}

async function join() {
  done = false;
  firstPosition = null;
  const { waitroomSession } = await api(`/api/events/${eventId}/waitroom/join`, { method: "POST" });
  render(waitroomSession);
  connect();
}

$("leave").addEventListener("click", async () => {
  await api(`/api/events/${eventId}/waitroom/session`, { method: "DELETE" });
  socket?.close();
  ended("LEFT");
});
$("rejoin").addEventListener("click", () => join().catch((e) => ($("error").textContent = e.message)));

(async () => {
  try {
    const { event } = await api(`/api/events/${eventId}`);
    $("event-name").textContent = event.name;
  } catch {
    $("event-name").textContent = "Waiting room";
  }
  await ensureLoggedIn();
  try {
    await join();
  } catch (e) {
    $("error").textContent = e.code === "SALE_NOT_OPEN" ? "Sales for this event are not open." : e.message;
  }
})();
