// `/organizer/events/{id}/door`: check tickets in at the door (event admins, editors, staff).
// A typed short code always works; the camera scans the QR code through `BarcodeDetector` where
// the browser has it, else through jsQR (served from the Worker's assets, loaded only then). The answer is big, green or red, with the reason the server gives
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
    } else {
      show(false, "door.failed", () => problemText(err));
    }
  }
}

/** Loads jsQR (a classic script that defines `window.jsQR`) the first time it is needed. */
function loadJsQr() {
  if (window.jsQR) return Promise.resolve(window.jsQR);
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/vendor/jsqr/jsQR.js";
    script.onload = () => (window.jsQR ? resolve(window.jsQR) : reject(new Error("jsQR did not load")));
    script.onerror = () => reject(new Error("jsQR did not load"));
    document.head.append(script);
  });
}

/** A function reading the QR code in the video's current frame (its text, or null). */
async function qrReader() {
  if ("BarcodeDetector" in window) {
    const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    return async (video) => (await detector.detect(video))[0]?.rawValue ?? null;
  }
  const jsQR = await loadJsQr();
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  return async (video) => {
    if (!video.videoWidth || !video.videoHeight) return null;
    // jsQR's time grows with the pixels; a ticket held up to the camera fills much of a
    // 640 px frame, so larger frames are scaled down first.
    const scale = Math.min(1, 640 / Math.max(video.videoWidth, video.videoHeight));
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
    const frame = ctx.getImageData(0, 0, canvas.width, canvas.height);
    return jsQR(frame.data, frame.width, frame.height, { inversionAttempts: "dontInvert" })?.data ?? null;
  };
}

// A ticket stays in front of the camera for a while: the same code read again within this
// time is the same person, not a second attempt, so it is not sent again.
const SAME_TICKET_MS = 10_000;

async function scanLoop(read, video) {
  let lastQr = null;
  let lastAt = 0;
  while (scanning) {
    try {
      const qr = await read(video);
      if (qr && !(qr === lastQr && Date.now() - lastAt < SAME_TICKET_MS)) {
        lastQr = qr;
        lastAt = Date.now();
        await checkIn({ qr });
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
    const read = await qrReader();
    const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    scanning = true;
    $("camera").hidden = true;
    $("camera-note").textContent = "";
    scanLoop(read, video);
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
  if (!navigator.mediaDevices?.getUserMedia) $("camera-note").textContent = t("door.typeOnly");
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
  // Every browser with a camera can scan (jsQR stands in for BarcodeDetector); the typed code
  // works everywhere.
  const canScan = Boolean(navigator.mediaDevices?.getUserMedia);
  $("camera").hidden = !canScan;
  if (!canScan) $("camera-note").textContent = t("door.typeOnly");
  $("door").hidden = false;
  $("code").focus();
})().catch((err) => ($("error").textContent = problemText(err)));
