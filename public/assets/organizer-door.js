// `/organizer/events/{id}/door`: check tickets in at the door (event admins, editors, staff).
// A typed short code always works; where the browser has `BarcodeDetector` the camera scans
// the QR code. The answer is big, green or red, with the reason the server gives
// (`ALREADY_CHECKED_IN` carries when and at which gate). The gate is remembered per device.
import "/assets/layout.js";
import { $, api, pathParam } from "/assets/api.js";
import { ensureLoggedIn, problemText } from "/assets/forms.js";
import { eventZone, formatTime, onLang, t } from "/assets/i18n.js";

const eventId = pathParam(3);
const eventPath = `/api/events/${encodeURIComponent(eventId)}`;
const gateKey = "tb.door.gate";
let event = null;
let last = null; // the last answer, re-rendered on a language switch
let scanning = false;

function render() {
  if (!last) return;
  const box = $("result");
  box.hidden = false;
  box.dataset.ok = String(last.ok);
  $("result-title").textContent = t(last.titleKey);
  $("result-detail").textContent = last.detail();
}

function show(ok, titleKey, detail) {
  last = { ok, titleKey, detail };
  render();
}

async function checkIn(body) {
  const gate = $("gate").value.trim();
  if (gate) body.gate = gate;
  try {
    const { ticket } = await api(`${eventPath}/check-ins`, { method: "POST", body });
    show(true, "door.ok", () => `${ticket.ticketClassName ?? ""} · ${ticket.code}`);
  } catch (err) {
    const p = err.problem ?? {};
    if (err.code === "ALREADY_CHECKED_IN") {
      show(false, "door.already", () => t("door.alreadyDetail", { at: p.checkedInAt ? formatTime(p.checkedInAt, eventZone(event)) : "–", gate: p.gate ?? "–" }));
    } else if (err.code === "TICKET_VOID") {
      show(false, "door.void", () => t("door.voidDetail"));
    } else if (err.code === "TICKET_INVALID" || err.status === 422) {
      show(false, "door.invalid", () => t("door.invalidDetail"));
    } else if (err.status === 404) {
      show(false, "door.unavailable", () => t("door.unavailableDetail"));
    } else {
      show(false, "door.failed", () => problemText(err));
    }
  }
}

async function scanLoop(detector, video) {
  while (scanning) {
    try {
      const [found] = await detector.detect(video);
      if (found?.rawValue) {
        await checkIn({ qr: found.rawValue });
        // One answer per ticket held up: wait before reading the next.
        await new Promise((r) => setTimeout(r, 2_000));
      }
    } catch {
      // A frame that could not be read: try the next one.
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function startCamera() {
  const video = $("video");
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    scanning = true;
    $("camera").hidden = true;
    scanLoop(new window.BarcodeDetector({ formats: ["qr_code"] }), video);
  } catch {
    $("camera-note").textContent = t("door.noCamera");
  }
}

$("check").addEventListener("submit", async (e) => {
  e.preventDefault();
  const code = $("code").value.trim().toUpperCase();
  if (!code) return;
  await checkIn({ code });
  $("code").value = "";
  $("code").focus();
});
$("gate").addEventListener("change", () => localStorage.setItem(gateKey, $("gate").value.trim()));
$("camera").addEventListener("click", startCamera);
onLang(() => {
  render();
  if (!$("camera").hidden || scanning) return;
  if (!("BarcodeDetector" in window)) $("camera-note").textContent = t("door.typeOnly");
});

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
  document.title = `${event.name} · ${t("title.door")} · TicketBottle`;
  $("gate").value = localStorage.getItem(gateKey) ?? "";
  // Only browsers with a QR detector get the camera; the typed code works everywhere.
  const canScan = "BarcodeDetector" in window && navigator.mediaDevices?.getUserMedia;
  $("camera").hidden = !canScan;
  if (!canScan) $("camera-note").textContent = t("door.typeOnly");
  $("door").hidden = false;
  $("code").focus();
})().catch((err) => ($("error").textContent = problemText(err)));
