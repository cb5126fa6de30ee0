// What the journey tests share: the app in workerd, Chromium, a page per visitor (language,
// width, the problems it reports), axe-core injected from node_modules (never served by the
// app), screenshots under test-results/browser/, and the pages' own texts to click by.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { messages } from "../../public/assets/messages.js";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const SHOTS = join(ROOT, "test-results", "browser");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const AXE = join(ROOT, "node_modules", "axe-core", "axe.min.js");
export const WAIT_MS = 15_000;
export const HOUR = 3600_000;

/** The pages' text for `key` in `lang`, `{name}` placeholders filled (as the pages' `t()`). */
export function text(lang, key, vars = {}) {
  const s = messages[lang][key];
  assert.ok(s !== undefined, `no ${lang} text for ${key}`);
  return s.replace(/\{(\w+)\}/g, (_, n) => String(vars[n]));
}

export function preflight() {
  assert.ok(existsSync(join(ROOT, "build", "index_bg.wasm")), "build/ is missing: run `bash scripts/build.sh` first");
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run \`bash scripts/setup.sh\` (installs Debian's chromium)`);
  assert.ok(existsSync(AXE), "node_modules/axe-core is missing: run `npm install`");
  mkdirSync(SHOTS, { recursive: true });
}

export function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** JSON over the app's HTTP API; throws with the problem details on an error status. */
export function apiClient(base) {
  return async function api(path, { method, body, token, headers = {} } = {}) {
    const h = { ...headers };
    if (body !== undefined) h["Content-Type"] = "application/json";
    if (token) h.Authorization = `Bearer ${token}`;
    const verb = method ?? (body === undefined ? "GET" : "POST");
    const res = await fetch(`${base}${path}`, { method: verb, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    const t = await res.text();
    if (!res.ok) throw new Error(`${verb} ${path}: ${res.status} ${t}`);
    return t ? JSON.parse(t) : null;
  };
}

/**
 * A visitor: a fresh context in `lang` (Accept-Language and navigator.languages) at `width` px,
 * recording page errors and console errors/warnings.
 */
export async function visitor(browser, { lang, width, name }) {
  const context = await browser.newContext({
    viewport: { width, height: width < 600 ? 800 : 900 },
    locale: lang === "vi" ? "vi-VN" : "en-US",
    reducedMotion: "reduce",
  });
  context.setDefaultTimeout(WAIT_MS);
  const page = await context.newPage();
  const v = {
    name: `${name}-${lang}-${width}`, lang, width, context, page, problems: [], t: (k, vars) => text(lang, k, vars),
    // Failures a test provokes on purpose (`{ status, path }`): Chromium logs each once.
    expected: [],
    expectFailure(status, path) {
      this.expected.push({ status, path });
    },
  };
  page.on("pageerror", (e) => v.problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() !== "error" && m.type() !== "warning") return;
    const url = m.location().url ?? "";
    const path = url ? new URL(url).pathname : "";
    const i = v.expected.findIndex((e) => m.text().includes(`status of ${e.status}`) && e.path === path);
    if (i >= 0) return void v.expected.splice(i, 1);
    v.problems.push(`console.${m.type()}: ${m.text()} (${url})`);
  });
  return v;
}

/** Waits until `selector` is visible with text matching `expected` (a string matches whole). */
export async function sees(page, selector, expected, timeout = WAIT_MS) {
  const hasText = typeof expected === "string" ? new RegExp(`^\\s*${expected.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s*$`) : expected;
  try {
    await page.locator(selector, { hasText }).first().waitFor({ state: "visible", timeout });
  } catch {
    const shown = await page.locator(selector).first().textContent({ timeout: 1_000 }).catch(() => "(absent)");
    const errors = await page.locator("#error, .form-error").allTextContents().catch(() => []);
    await page.screenshot({ path: join(SHOTS, `failed-${Date.now()}.png`), fullPage: true }).catch(() => {});
    throw new Error(`${page.url()}: ${selector} shows ${JSON.stringify(shown)}, not ${hasText}; errors: ${JSON.stringify(errors.filter(Boolean))}`);
  }
}

/**
 * Runs axe-core on the page as it is now (injected from node_modules) and fails on any serious
 * or critical violation; saves a full-page screenshot as `{visitor}-{step}.png`.
 */
export async function check(v, step) {
  const { page } = v;
  await page.screenshot({ path: join(SHOTS, `${v.name}-${step}.png`), fullPage: true });
  // Evaluated through the DevTools protocol, which the page's CSP does not govern (a script
  // tag would be refused, rightly): the app never serves axe.
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(readFileSync(AXE, "utf8"));
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations
      .filter((x) => x.impact === "serious" || x.impact === "critical")
      .map((x) => `${x.impact} ${x.id}: ${x.help} (${x.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")})`);
  });
  assert.deepEqual(violations, [], `${v.name} ${step} (${page.url()}): axe found serious or critical violations`);
  const lang = await page.evaluate(() => document.documentElement.lang);
  if (!/\/sandbox\//.test(page.url())) assert.equal(lang, v.lang, `${v.name} ${step}: <html lang>`);
}

export function noProblems(v) {
  assert.deepEqual(v.problems, [], `${v.name}'s pages reported problems`);
}

/** Logs in through the page's shared form (on /login, or the form a page shows in place). */
export async function logIn(v, email, password, buttonKey = "login.submit") {
  await v.page.locator("#email").fill(email);
  await v.page.locator("#password").fill(password);
  await v.page.getByRole("button", { name: v.t(buttonKey), exact: true }).click();
}

/**
 * An event published through the API, as the journeys' fixtures need one: created by the
 * organizer (`details` over a default date three weeks out), configured (`config` over terms on
 * sale since an hour ago for a week), one ticket class in VND, approved by the admin, published.
 */
export async function publishedEvent(api, { organizerToken, adminToken, details, config = {}, ticketClass }) {
  const now = Date.now();
  const iso = (ms) => new Date(ms).toISOString();
  const { event } = await api("/api/events", {
    token: organizerToken,
    body: { startDate: iso(now + 20 * 24 * HOUR), endDate: iso(now + 20 * 24 * HOUR + 3 * HOUR), ...details },
  });
  await api(`/api/events/${event.id}/config`, {
    method: "PUT",
    token: organizerToken,
    body: {
      ticketSaleStartDate: iso(now - HOUR), ticketSaleEndDate: iso(now + 7 * 24 * HOUR), isFree: false, maxAttendees: null, isPublic: true,
      requiresApproval: false, allowWaitRoom: false, isNewTrending: false, maxTicketsPerUser: 4,
      waitroom: { maxConcurrentCheckouts: 50, checkoutTtlSeconds: 900, admissionBatch: 50 },
      ...config,
    },
  });
  const { ticketClass: created } = await api(`/api/events/${event.id}/ticket-classes`, {
    token: organizerToken,
    body: { currency: "VND", ...ticketClass },
  });
  await api(`/api/events/${event.id}/approve`, { method: "POST", token: adminToken });
  await api(`/api/events/${event.id}/publish`, { method: "POST", token: organizerToken });
  return { event, ticketClass: created };
}

/** A `datetime-local` value for `ms` in Vietnam's time (UTC+7, no daylight saving). */
export const vnInput = (ms) => new Date(ms + 7 * HOUR).toISOString().slice(0, 16);
