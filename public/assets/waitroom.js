// The waitroom page: logs in if needed, joins the event's queue (idempotent: a reload keeps the
// place), then follows the live position over the event's WebSocket. While the socket is down it
// polls the session and reconnects with jittered back-off; admission moves the fan to checkout.
import "/assets/layout.js";
import { $, api, clearToken, getToken, pathParam } from "/assets/api.js";
import { withBotCheck } from "/assets/bot-check.js";
import { ensureLoggedIn as askLogin, problemText } from "/assets/forms.js";
import { formatWait, onLang, t } from "/assets/i18n.js";

const ensureLoggedIn = () => askLogin({ submitKey: "waitroom.loginJoin", introKey: "waitroom.loginIntro" });

const eventId = pathParam(2);
const eventPath = `/api/events/${encodeURIComponent(eventId)}`;
const checkoutPath = `/events/${encodeURIComponent(eventId)}/checkout`;
const startKey = `tb.waitroom.start.${eventId}`;
const POLL_MS = 5_000;
const PING_MS = 30_000;
const REDIRECT_MS = 800;

let socket = null; // the current socket: events of an older one are ignored
let retry = 0;
let reconnectTimer = null;
let pollTimer = null;
let redirectTimer = null;
let done = true; // no session is being followed (before joining, after it ended)
let sessionId = null;
// A sharded waitroom's pass: the fan's own record, signed, which lets any edge answer a poll
// without asking the fan's queue shard. The join and some polls give a new one; a stale one
// is simply ignored by the server.
let pass = null;
const keepPass = (res) => {
  const fresh = res.headers.get("Waitroom-Pass");
  if (fresh) pass = fresh;
};

function show(section) {
  for (const id of ["queue", "admitted", "ended", "no-waitroom"]) $(id).hidden = id !== section;
}

let connection = "off";
function setConnection(state) {
  connection = state;
  $("connection-line").hidden = state === "off";
  $("connection-line").dataset.state = state;
  $("connection").textContent = t(`waitroom.connection.${state}`);
}

function setProgress(pct) {
  $("progress").style.width = `${pct}%`;
  document.querySelector(".progress").setAttribute("aria-valuenow", String(pct));
}

/** How far this session has come from the first position this tab saw for it, towards admission. */
function progressOf(position) {
  let start = null;
  try {
    start = JSON.parse(sessionStorage.getItem(startKey) ?? "null");
  } catch {
    start = null;
  }
  if (!start || start.sessionId !== sessionId || start.position < position) {
    start = { sessionId, position };
    sessionStorage.setItem(startKey, JSON.stringify(start));
  }
  return Math.round(((start.position - position) / start.position) * 100);
}

function render(s) {
  if (!s) return ended(null);
  if (s.sessionId) sessionId = s.sessionId;
  if (s.status === "QUEUED") queued(s);
  else if (s.status === "ADMITTED" && s.checkoutToken) admitted(s.checkoutToken, s.checkoutExpiresAt);
  else if (s.status !== "ADMITTED") ended(s.status);
}

let lastQueued = null;
function queued(q) {
  lastQueued = q;
  const { position, queueLength, estimatedWaitSeconds } = q;
  show("queue");
  const placed = position !== null && position !== undefined;
  $("position").textContent = placed ? String(position) : "–";
  $("queue-length").textContent = queueLength ?? "–";
  $("wait").textContent = placed ? formatWait(estimatedWaitSeconds) : t("waitroom.knownAtOpen");
  $("prequeue").hidden = placed;
  if (placed) setProgress(progressOf(position));
}

function admitted(token, expiresAt) {
  stop();
  setProgress(100);
  show("admitted");
  sessionStorage.setItem(`tb.checkout.${eventId}`, JSON.stringify({ token, expiresAt }));
  sessionStorage.removeItem(startKey);
  $("checkout-link").href = checkoutPath;
  redirectTimer = setTimeout(() => location.assign(checkoutPath), REDIRECT_MS);
}

let endedStatus = null;
function endedText() {
  return t(["LEFT", "COMPLETED", "EXPIRED"].includes(endedStatus) ? `waitroom.ended.${endedStatus}` : "waitroom.ended.none");
}

function ended(status) {
  stop();
  show("ended");
  sessionStorage.removeItem(startKey);
  endedStatus = status;
  $("ended-text").textContent = endedText();
}

/** Stops following the session: no socket, no polling, no pending redirect. */
function stop() {
  done = true;
  clearTimeout(reconnectTimer);
  clearTimeout(redirectTimer);
  stopPolling();
  const ws = socket;
  socket = null;
  ws?.close(1000, "done");
  setConnection("off");
}

function connect() {
  clearTimeout(reconnectTimer);
  if (done) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}${eventPath}/waitroom/ws?token=${encodeURIComponent(getToken() ?? "")}`);
  socket = ws;
  ws.onopen = () => {
    if (ws !== socket) return;
    retry = 0;
    stopPolling();
    setConnection("live");
    $("error").textContent = "";
  };
  ws.onmessage = (m) => {
    if (ws !== socket) return;
    let msg;
    try {
      msg = JSON.parse(m.data);
    } catch {
      return;
    }
    if (msg.type === "position") queued(msg);
    else if (msg.type === "admitted") admitted(msg.checkoutToken, msg.checkoutExpiresAt);
    else if (msg.type === "expired") ended("EXPIRED");
  };
  ws.onclose = (e) => {
    if (ws !== socket || done) return;
    socket = null;
    startPolling();
    // The server keeps a few sockets per fan and closed this, the oldest, for a newer one
    // (4409): reconnecting would close another tab's, and so on in a circle. Poll instead;
    // the tab takes a socket back when it is shown again (reconnectNow).
    if (e.code === 4409) return setConnection("elsewhere");
    setConnection("reconnecting");
    retry = Math.min(retry + 1, 6);
    // Jitter keeps a crowd that lost its connections at once from coming back at once.
    reconnectTimer = setTimeout(connect, 500 * 2 ** retry * (0.75 + Math.random() / 2));
  };
}

/** Straight back when the browser is online or the tab visible again, instead of waiting out the back-off. */
function reconnectNow() {
  if (done || socket || document.visibilityState === "hidden") return;
  retry = 0;
  connect();
}

function startPolling() {
  if (pollTimer) return;
  pollTimer = setInterval(poll, POLL_MS);
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = null;
}

async function poll() {
  try {
    const { waitroomSession } = await api(`${eventPath}/waitroom/session`, {
      headers: pass ? { "Waitroom-Pass": pass } : {},
      onResponse: keepPass,
    });
    if (!done) render(waitroomSession);
  } catch (e) {
    if (e.status === 401) return relogin();
    if (e.status === 404) return ended(null);
    $("error").textContent = t("waitroom.lost");
  }
}

/** The token expired or was refused: log in again, then take the same place back. */
async function relogin() {
  stop();
  clearToken();
  show(null);
  await ensureLoggedIn();
  await join();
}

async function join() {
  $("error").textContent = "";
  try {
    pass = null;
    const { waitroomSession } = await withBotCheck($("bot-check"), (turnstileToken) =>
      api(`${eventPath}/waitroom/join`, { method: "POST", onResponse: keepPass, ...(turnstileToken ? { body: { turnstileToken } } : {}) }),
    );
    done = false;
    retry = 0;
    render(waitroomSession);
    if (!done) {
      setConnection("connecting");
      connect();
    }
  } catch (e) {
    if (e.status === 401) return relogin();
    if (e.code === "WAITROOM_NOT_ENABLED") {
      show("no-waitroom");
      $("direct-checkout").href = checkoutPath;
      return;
    }
    $("error").textContent = e.code === "SALE_NOT_OPEN" ? t("waitroom.notOnSale") : problemText(e);
  }
}

$("leave").addEventListener("click", async () => {
  const button = $("leave");
  button.disabled = true;
  try {
    await api(`${eventPath}/waitroom/session`, { method: "DELETE" });
    pass = null;
    ended("LEFT");
  } catch (e) {
    $("error").textContent = e.code === "CHECKOUT_IN_PROGRESS" ? t("waitroom.checkoutStarted") : problemText(e);
  } finally {
    button.disabled = false;
  }
});
$("rejoin").addEventListener("click", () => join());
let eventName = null;
// A language switch re-renders what this page wrote itself (the static texts follow on their own).
onLang(() => {
  if (eventName) $("event-name").textContent = eventName;
  setConnection(connection);
  if (!$("ended").hidden) $("ended-text").textContent = endedText();
  if (!$("queue").hidden && lastQueued) queued(lastQueued);
});
window.addEventListener("online", reconnectNow);
document.addEventListener("visibilitychange", reconnectNow);
// Tells the server the fan is still here while the head of the queue does not move.
setInterval(() => {
  if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
}, PING_MS);

(async () => {
  try {
    const { event } = await api(eventPath);
    $("event-name").textContent = event.name;
    eventName = event.name;
    document.title = `${event.name} · ${t("title.waitroom")} · TicketBottle`;
  } catch (e) {
    $("event-name").textContent = t("title.waitroom");
    if (e.status === 404) {
      $("error").textContent = t("event.notFound");
      return;
    }
  }
  await ensureLoggedIn();
  await join();
})();
