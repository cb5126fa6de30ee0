// Languages, money and dates for every page: Vietnamese and English texts (messages.js), chosen
// from the visitor's stored choice, else the browser's languages (its Accept-Language), with
// `<html lang>` following; VND the Vietnamese way; times in the event's own time zone.
import { messages } from "/assets/messages.js";

export const LANGS = ["vi", "en"];
export const DEFAULT_TZ = "Asia/Ho_Chi_Minh";
const langKey = "tb.lang";

function detect() {
  const stored = localStorage.getItem(langKey);
  if (LANGS.includes(stored)) return stored;
  for (const tag of navigator.languages ?? [navigator.language]) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (LANGS.includes(base)) return base;
  }
  // The sales are Vietnamese: a browser that asks for neither language gets Vietnamese.
  return "vi";
}

let current = detect();
document.documentElement.lang = current;

export const lang = () => current;

/** Switches the language, remembers it, re-translates the static texts and tells the page. */
export function setLang(next) {
  if (!LANGS.includes(next) || next === current) return;
  current = next;
  localStorage.setItem(langKey, next);
  document.documentElement.lang = next;
  translate();
  document.dispatchEvent(new CustomEvent("tb:lang", { detail: next }));
}

/** Runs `render` now and again whenever the language changes. */
export function onLang(render) {
  document.addEventListener("tb:lang", () => render());
}

/** The text for `key` in the current language, `{name}` placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const text = messages[current]?.[key] ?? messages.en[key];
  if (text === undefined) {
    // A missing key shows itself, so a test or a reader notices; it never breaks the page.
    return key;
  }
  return text.replace(/\{(\w+)\}/g, (_, name) => (vars[name] === undefined ? `{${name}}` : String(vars[name])));
}

/**
 * Fills the static texts of `root`: `data-i18n` (text), `data-i18n-placeholder`,
 * `data-i18n-label` (aria-label), and the document title from `<title data-i18n>`.
 */
export function translate(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  const title = document.querySelector("title[data-i18n]");
  if (title && root === document) document.title = `${t(title.dataset.i18n)} · TicketBottle`;
}

const locale = () => (current === "vi" ? "vi-VN" : "en-GB");

/** Digits after the decimal point in `currency` (0 for VND, 2 for USD). */
function minorDigits(currency) {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
}

/**
 * An amount in the currency's minor unit (`priceCents`, `totalAmountCents`) as money. VND is
 * written the Vietnamese way in both languages (450.000 ₫): that is how the buyer's bank and the
 * providers' pages show it.
 */
export function formatMoney(minor, currency = "VND") {
  const digits = minorDigits(currency);
  const fmtLocale = currency === "VND" ? "vi-VN" : locale();
  try {
    return new Intl.NumberFormat(fmtLocale, { style: "currency", currency }).format(minor / 10 ** digits);
  } catch {
    return `${(minor / 10 ** digits).toFixed(digits)} ${currency}`;
  }
}

export function formatNumber(n) {
  return new Intl.NumberFormat(locale()).format(n);
}

/** An RFC 3339 instant as a date and time in `timeZone` (the event's; Vietnam's by default). */
export function formatDateTime(iso, timeZone = DEFAULT_TZ) {
  if (!iso) return "–";
  return new Intl.DateTimeFormat(locale(), { dateStyle: "medium", timeStyle: "short", timeZone }).format(new Date(iso));
}

export function formatDate(iso, timeZone = DEFAULT_TZ) {
  if (!iso) return "–";
  return new Intl.DateTimeFormat(locale(), { dateStyle: "full", timeZone }).format(new Date(iso));
}

export function formatTime(iso, timeZone = DEFAULT_TZ) {
  return new Intl.DateTimeFormat(locale(), { timeStyle: "short", timeZone }).format(new Date(iso));
}

/** The event's time zone: the event may name one (`timeZone`); Vietnam's otherwise. */
export const eventZone = (event) => event?.timeZone ?? DEFAULT_TZ;

/** Offset of `timeZone` from UTC at `ms`, in minutes. */
function zoneOffsetMinutes(ms, timeZone) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", { timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
      .formatToParts(new Date(ms))
      .map((p) => [p.type, p.value]),
  );
  const asUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour % 24, +parts.minute, +parts.second);
  return Math.round((asUtc - Math.floor(ms / 1000) * 1000) / 60_000);
}

/** A `datetime-local` value read as wall time in `timeZone`, as an RFC 3339 instant (UTC). */
export function zonedInputToIso(value, timeZone = DEFAULT_TZ) {
  if (!value) return null;
  const [date, time = "00:00"] = value.split("T");
  const [y, mo, d] = date.split("-").map(Number);
  const [h, mi] = time.split(":").map(Number);
  const wall = Date.UTC(y, mo - 1, d, h, mi);
  // Two passes settle the offset also next to a daylight-saving change.
  let ms = wall - zoneOffsetMinutes(wall, timeZone) * 60_000;
  ms = wall - zoneOffsetMinutes(ms, timeZone) * 60_000;
  return new Date(ms).toISOString().replace(".000Z", "Z");
}

/** An RFC 3339 instant as a `datetime-local` value in `timeZone`. */
export function isoToZonedInput(iso, timeZone = DEFAULT_TZ) {
  if (!iso) return "";
  const ms = Date.parse(iso);
  return new Date(ms + zoneOffsetMinutes(ms, timeZone) * 60_000).toISOString().slice(0, 16);
}

export function formatWait(seconds) {
  if (seconds === null || seconds === undefined) return t("wait.calculating");
  if (seconds < 60) return t("wait.underMinute");
  const m = Math.round(seconds / 60);
  return m < 60 ? t("wait.minutes", { m }) : t("wait.hours", { h: Math.floor(m / 60), m: m % 60 });
}

/** Time left until `ms` as `2 d 03:04:05` (days only when there are any). */
export function formatCountdown(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86_400);
  const hms = [Math.floor((s % 86_400) / 3600), Math.floor((s % 3600) / 60), s % 60].map((n) => String(n).padStart(2, "0")).join(":");
  return d > 0 ? t("countdown.days", { d, hms }) : hms;
}

translate();
