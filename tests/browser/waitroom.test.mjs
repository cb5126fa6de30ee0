// The waitroom page in a real browser: Debian's Chromium, driven by playwright-core, against
// the built Worker in workerd (bench/lib/runtime.mjs) on 127.0.0.1.
//
// One event whose only checkout slot is held by a fan who joined first, so the two fans the
// test follows stay QUEUED: the second sees position 2, then 1 when the first leaves, pushed
// over the WebSocket without a reload. A third fan's socket is cut and comes back. When the
// slot holder leaves, the second fan is admitted and the page moves on to checkout; from there
// a ticket is held, paid in the sandbox and the order page shows it completed. A fourth fan's
// page, its socket replaced by newer ones of the same fan, polls instead of reconnecting.
//
// Needs `bash scripts/build.sh` (build/) and /usr/bin/chromium (scripts/setup.sh installs it;
// CHROMIUM_PATH points elsewhere). Screenshots go to test-results/browser/ (git-ignored).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startApp } from "../../bench/lib/runtime.mjs";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = join(ROOT, "test-results", "browser");
const PASSWORD = "browser-test-password";
const WAIT_MS = 10_000;
const HOUR = 3600_000;

let app;
let browser;
let event;
let ticketClass;
let holder;
const fans = {};

/** JSON over the app's HTTP API; throws with the problem details on an error status. */
async function api(path, { method, body, token, headers = {} } = {}) {
  const h = { ...headers };
  if (body !== undefined) h["Content-Type"] = "application/json";
  if (token) h.Authorization = `Bearer ${token}`;
  const verb = method ?? (body === undefined ? "GET" : "POST");
  const res = await fetch(`${app.url}${path}`, { method: verb, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${verb} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function registerAndLogin(email, { login = true } = {}) {
  await api("/api/auth/register", { body: { email, password: PASSWORD, firstName: "Browser", lastName: "Fan" } });
  if (!login) return { email };
  const { accessToken, user } = await api("/api/auth/login", { body: { email, password: PASSWORD } });
  return { email, id: user.id, token: accessToken };
}

async function until(probe, what, timeoutMs = WAIT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/**
 * Waits until `selector` is visible with text matching `expected` (a string is matched whole);
 * on a timeout, says what the page shows instead and keeps a screenshot of it.
 */
async function sees(page, selector, expected, timeout = WAIT_MS) {
  const hasText = typeof expected === "string" ? new RegExp(`^\\s*${expected.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\s*$`) : expected;
  try {
    await page.locator(selector, { hasText }).waitFor({ state: "visible", timeout });
  } catch {
    const shown = await page.locator(selector).first().textContent({ timeout: 1_000 }).catch(() => "(absent)");
    const errors = await page.locator("#error").first().textContent({ timeout: 1_000 }).catch(() => "");
    await page.screenshot({ path: join(SHOTS, `failed-${Date.now()}.png`) }).catch(() => {});
    throw new Error(`${page.url()}: ${selector} shows ${JSON.stringify(shown)}, not ${hasText}${errors ? `; #error: ${errors}` : ""}`);
  }
}

/** A fresh browser context for one fan, recording what the page would show a developer. */
async function openFan(name) {
  // Reduced motion: the progress bar jumps to its width, so screenshots show where it ends.
  const context = await browser.newContext({ viewport: { width: 900, height: 760 }, reducedMotion: "reduce", locale: "en-US" });
  context.setDefaultTimeout(WAIT_MS);
  const page = await context.newPage();
  const fan = { name, context, page, problems: [], frames: [], navigations: 0 };
  page.on("pageerror", (e) => fan.problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") fan.problems.push(`console.${m.type()}: ${m.text()} (${m.location().url})`);
  });
  page.on("framenavigated", (frame) => {
    if (frame === page.mainFrame()) fan.navigations += 1;
  });
  page.on("websocket", (ws) => ws.on("framereceived", (f) => fan.frames.push(String(f.payload))));
  fans[name] = fan;
  return fan;
}

/** Logs in through the waitroom page's own form, which then joins the queue. */
async function enterWaitroom(fan, email) {
  await fan.page.goto(`${app.url}/events/${event.id}/waitroom`);
  await sees(fan.page, "#event-name", event.name);
  await fan.page.locator("#email").fill(email);
  await fan.page.locator("#password").fill(PASSWORD);
  await fan.page.getByRole("button", { name: "Log in and join" }).click();
  await sees(fan.page, "#connection", "live");
}

function noProblems(fan) {
  assert.deepEqual(fan.problems, [], `${fan.name}'s page reported problems`);
}

before(async () => {
  assert.ok(existsSync(join(ROOT, "build", "index_bg.wasm")), "build/ is missing: run `bash scripts/build.sh` first");
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run \`bash scripts/setup.sh\` (installs Debian's chromium)`);
  mkdirSync(SHOTS, { recursive: true });
  // The rate limiters stay out (startApp leaves them unbound): every call here comes from one IP.
  app = await startApp();

  const suffix = Date.now().toString(36);
  const organizer = await registerAndLogin(`organizer-${suffix}@example.com`);
  const admin = await registerAndLogin("admin@ticketbottle.dev");
  holder = await registerAndLogin(`holder-${suffix}@example.com`);
  fans.emails = Object.fromEntries(["first", "second", "third", "fourth"].map((n) => [n, `${n}-${suffix}@example.com`]));
  for (const email of Object.values(fans.emails)) await registerAndLogin(email, { login: false });

  const now = Date.now();
  const iso = (ms) => new Date(ms).toISOString();
  ({ event } = await api("/api/events", {
    token: organizer.token,
    body: {
      name: "Bottle Rockets · Hanoi",
      description: "The browser test's on-sale",
      startDate: iso(now + 30 * 24 * HOUR),
      endDate: iso(now + 30 * 24 * HOUR + 3 * HOUR),
      location: "Hanoi",
    },
  }));
  // One checkout slot: whoever holds it keeps everyone else QUEUED, in join order.
  await api(`/api/events/${event.id}/config`, {
    method: "PUT",
    token: organizer.token,
    body: {
      ticketSaleStartDate: iso(now - HOUR),
      ticketSaleEndDate: iso(now + 7 * 24 * HOUR),
      isFree: false,
      maxAttendees: null,
      isPublic: true,
      requiresApproval: false,
      allowWaitRoom: true,
      isNewTrending: false,
      maxTicketsPerUser: 4,
      waitroom: { maxConcurrentCheckouts: 1, checkoutTtlSeconds: 900, admissionBatch: 1 },
    },
  });
  ({ ticketClass } = await api(`/api/events/${event.id}/ticket-classes`, {
    token: organizer.token,
    body: { name: "General admission", priceCents: 450_000, currency: "VND", total: 100 },
  }));
  await api(`/api/events/${event.id}/approve`, { method: "POST", token: admin.token });
  await api(`/api/events/${event.id}/publish`, { method: "POST", token: organizer.token });

  // The slot holder joins first and is admitted on the object's next tick.
  await api(`/api/events/${event.id}/waitroom/join`, { method: "POST", token: holder.token });
  await until(async () => {
    const { waitroomSession } = await api(`/api/events/${event.id}/waitroom/session`, { token: holder.token });
    return waitroomSession.status === "ADMITTED" && waitroomSession;
  }, "the slot holder's admission");

  // Playwright starts Chromium on a new empty --user-data-dir of its own (and removes it after):
  // two isolated contexts need launch(), not launchPersistentContext().
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}, { timeout: 60_000 });

after(async () => {
  await browser?.close();
  await app?.dispose();
}, { timeout: 20_000 });

describe("the waitroom page", () => {
  test("the second fan sees position 2, then 1 when the first leaves, live over the socket", async () => {
    const first = await openFan("first");
    const second = await openFan("second");
    await enterWaitroom(first, fans.emails.first);
    await sees(first.page, "#position", "1");
    await enterWaitroom(second, fans.emails.second);
    await sees(second.page, "#position", "2");
    await sees(second.page, "#queue-length", "2");
    await sees(second.page, "#wait", /\S/);
    await second.page.screenshot({ path: join(SHOTS, "waitroom-position-2.png") });

    const navigations = second.navigations;
    await first.page.getByRole("button", { name: "Leave the queue" }).click();
    await sees(first.page, "#ended-text", "You left the queue.");

    await sees(second.page, "#position", "1");
    await sees(second.page, "#queue-length", "1");
    assert.equal(second.navigations, navigations, "the second page reloaded");
    const pushed = second.frames.map((f) => JSON.parse(f)).filter((m) => m.type === "position");
    assert.ok(pushed.some((m) => m.position === 1), `no position 1 over the socket: ${second.frames.join(" ")}`);
    await sees(second.page, "#connection", "live");
    await second.page.screenshot({ path: join(SHOTS, "waitroom-position-1.png") });
    await first.page.screenshot({ path: join(SHOTS, "waitroom-left.png") });
    noProblems(first);
    noProblems(second);
    await first.context.close();
  });

  test("a dropped socket reconnects and goes on carrying the position", async () => {
    const third = await openFan("third");
    // This fan's sockets run through Playwright's WebSocket route, so the test can cut one.
    const routes = [];
    await third.page.routeWebSocket(/\/waitroom\/ws/, (ws) => {
      const server = ws.connectToServer();
      routes.push({ ws, server });
      server.onMessage((m) => {
        third.frames.push(String(m));
        ws.send(m);
      });
      ws.onMessage((m) => server.send(m));
    });
    await enterWaitroom(third, fans.emails.third);
    await sees(third.page, "#position", "2");
    assert.equal(routes.length, 1);

    const { ws, server } = routes[0];
    await server.close({ code: 1001, reason: "dropped by the test" });
    await ws.close({ code: 1001, reason: "dropped by the test" });
    await sees(third.page, "#connection", "reconnecting…");
    await sees(third.page, "#connection", "live");
    assert.equal(routes.length, 2, "the page did not open a new socket");
    await sees(third.page, "#position", "2");
    noProblems(third);
  });

  test("a socket replaced by newer ones of the same fan (4409) polls instead of reconnecting", async () => {
    const fourth = await openFan("fourth");
    let opened = 0;
    fourth.page.on("websocket", () => (opened += 1));
    await enterWaitroom(fourth, fans.emails.fourth);
    await sees(fourth.page, "#position", "3");
    assert.equal(opened, 1);

    // The same fan on other devices: the server keeps 4 sockets per fan, so the fourth of
    // these closes the page's, the oldest.
    const { accessToken } = await api("/api/auth/login", { body: { email: fans.emails.fourth, password: PASSWORD } });
    const url = `${app.url.replace(/^http/, "ws")}/api/events/${event.id}/waitroom/ws?token=${encodeURIComponent(accessToken)}`;
    const others = [];
    for (let i = 0; i < 4; i++) {
      const ws = new WebSocket(url);
      await new Promise((resolve, reject) => {
        ws.onopen = resolve;
        ws.onerror = () => reject(new Error("a socket of the same fan did not open"));
      });
      others.push(ws);
    }
    await sees(fourth.page, "#connection", "live in your newer tab; this one updates every few seconds");
    // Longer than the first reconnect back-off (at most 1.25 s): no new socket.
    await new Promise((r) => setTimeout(r, 2_500));
    assert.equal(opened, 1, "the replaced page opened another socket");
    assert.ok(others.every((ws) => ws.readyState === WebSocket.OPEN), "the newer sockets were closed");

    // Shown again, the page takes a socket back.
    for (const ws of others) ws.close();
    await fourth.page.evaluate(() => document.dispatchEvent(new Event("visibilitychange")));
    await sees(fourth.page, "#connection", "live");
    assert.equal(opened, 2);
    await sees(fourth.page, "#position", "3");
    noProblems(fourth);
    await fourth.context.close();
  });

  test("admission moves the fan on to checkout", async () => {
    const { page } = fans.second;
    // The slot holder gives up the slot; the next tick admits the fan at the head.
    await api(`/api/events/${event.id}/waitroom/session`, { method: "DELETE", token: holder.token });
    await page.waitForURL(`${app.url}/events/${event.id}/checkout`, { timeout: WAIT_MS });
    assert.ok(fans.second.frames.some((f) => JSON.parse(f).type === "admitted"), "admission did not come over the socket");
    // The fan behind moves up over its reconnected socket.
    await sees(fans.third.page, "#position", "1");
    assert.ok(fans.third.frames.some((f) => JSON.parse(f).position === 1), "position 1 did not come over the new socket");
    await sees(page, "#event-name", event.name);
    await sees(page, "#deadline", /held until/);
    await sees(page, "#classes td", "General admission");
    await page.screenshot({ path: join(SHOTS, "checkout.png") });
    noProblems(fans.second);
  });

  test("checkout holds a ticket, the sandbox takes the payment, and the order page shows it completed", async () => {
    const { page } = fans.second;
    await page.locator(`input[data-class="${ticketClass.id}"]`).fill("2");
    await page.getByRole("button", { name: "Hold tickets and pay" }).click();
    await page.waitForURL(/\/sandbox\/checkout\//, { timeout: WAIT_MS });
    await sees(page, ".amount", /900\.000/);
    await page.getByRole("button", { name: "Pay", exact: true }).click();
    await sees(page, "#status", "PAID");
    await page.screenshot({ path: join(SHOTS, "sandbox-paid.png") });
    await page.getByRole("link", { name: "See your order" }).click();
    await page.waitForURL(/\/orders\/TB-/, { timeout: WAIT_MS });
    // The saga settles the order from the payments queue; the page follows it.
    await sees(page, "#status", "COMPLETED", 20_000);
    await sees(page, "#items td", "General admission");
    await sees(page, "#total", /900\.000/);
    await page.screenshot({ path: join(SHOTS, "order.png") });
    noProblems(fans.second);
  });
});
