// The organizer's live dashboard in headless Chromium against the built Worker in workerd: it
// shows the sale's figures and moves without a reload while a scripted buyer pays (classes'
// counters, orders by status, revenue by payment method, the uPlot chart); the door checks real
// tickets in (typed code, and the camera read through jsQR) and the dashboard counts them. In
// Vietnamese and English, at 1280 px and 375 px, axe-core on every page, no console errors.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startApp } from "../../bench/lib/runtime.mjs";
import { HOUR, apiClient, check, launch, logIn, noProblems, preflight, sees, visitor } from "./support.mjs";

const PASSWORD = "live-test-password";
let app;
let api;
let browser;
let organizer;
let admin;
const suffix = Date.now().toString(36);

async function account(email) {
  await api("/api/auth/register", { body: { email, password: PASSWORD, firstName: "Thu", lastName: "Võ" } });
  const { accessToken, user } = await api("/api/auth/login", { body: { email, password: PASSWORD } });
  return { email, id: user.id, token: accessToken };
}

/** A published event without a waitroom, one class of 100 at 450,000 VND. */
async function publishedEvent(admin, name) {
  const now = Date.now();
  const iso = (ms) => new Date(ms).toISOString();
  const { event } = await api("/api/events", {
    token: organizer.token,
    body: { name, description: "Trực tiếp", startDate: iso(now + 12 * 24 * HOUR), endDate: iso(now + 12 * 24 * HOUR + 2 * HOUR), location: "Huế" },
  });
  await api(`/api/events/${event.id}/config`, {
    method: "PUT",
    token: organizer.token,
    body: {
      ticketSaleStartDate: iso(now - HOUR), ticketSaleEndDate: iso(now + 5 * 24 * HOUR), isFree: false, maxAttendees: null, isPublic: true,
      requiresApproval: false, allowWaitRoom: false, isNewTrending: false, maxTicketsPerUser: 10,
      waitroom: { maxConcurrentCheckouts: 10, checkoutTtlSeconds: 900, admissionBatch: 10 },
    },
  });
  const { ticketClass } = await api(`/api/events/${event.id}/ticket-classes`, {
    token: organizer.token,
    body: { name: "Khán đài A", priceCents: 450_000, currency: "VND", total: 100 },
  });
  await api(`/api/events/${event.id}/approve`, { method: "POST", token: admin.token });
  await api(`/api/events/${event.id}/publish`, { method: "POST", token: organizer.token });
  return { event, ticketClass };
}

/** A buyer orders `quantity` tickets through the sandbox and pays, as a script would; returns the order's tickets. */
async function scriptedPurchase(event, ticketClass, quantity) {
  const buyer = await account(`live-buyer-${Math.random().toString(36).slice(2)}@example.com`);
  const created = await api("/api/orders", {
    token: buyer.token,
    headers: { "Idempotency-Key": `live-${Math.random().toString(36).slice(2)}` },
    body: { eventId: event.id, items: [{ ticketClassId: ticketClass.id, quantity }], paymentMethod: "sandbox" },
  });
  await api(`${new URL(created.paymentUrl).pathname}/pay`, { method: "POST" });
  for (const until = Date.now() + 20_000; Date.now() < until; await new Promise((r) => setTimeout(r, 250))) {
    const { order } = await api(`/api/orders/${created.order.id}`, { token: buyer.token });
    if (order.tickets?.length === quantity) return { buyer, tickets: order.tickets };
  }
  throw new Error(`order ${created.order.code}: no ${quantity} tickets within 20 s`);
}

/** `HH:MM` of an RFC 3339 instant at the door in Vietnam (UTC+7, no daylight saving). */
const vnClock = (iso) => new Date(Date.parse(iso) + 7 * HOUR).toISOString().slice(11, 16);

before(async () => {
  preflight();
  app = await startApp();
  api = apiClient(app.url);
  browser = await launch();
  organizer = await account(`live-organizer-${suffix}@example.com`);
  admin = await account("admin@ticketbottle.dev");
}, { timeout: 60_000 });

after(async () => {
  await browser?.close();
  await app?.dispose();
}, { timeout: 20_000 });

for (const { lang, width } of [{ lang: "vi", width: 1280 }, { lang: "en", width: 375 }]) {
  test(`the live dashboard moves while a scripted buyer pays (${lang}, ${width} px)`, async () => {
    const { event, ticketClass } = await publishedEvent(admin, `Huế Festival ${lang} ${suffix}`);
    const v = await visitor(browser, { lang, width, name: "live" });
    const { page, t } = v;
    await page.goto(`${app.url}/organizer/events/${event.id}`);
    await logIn(v, organizer.email, PASSWORD);
    await page.getByRole("link", { name: t("org.live") }).click();
    await page.waitForURL(`${app.url}/organizer/events/${event.id}/live`);
    await sees(page, "#event-name", event.name);
    await sees(page, "#f-sold", "0");
    await sees(page, "#f-available", "100");
    // The figures may come from the orders' refresh before the counters' refresh (which waits
    // for the waitroom status) draws the chart: wait for the chart, then count it.
    await page.locator("#chart canvas").first().waitFor({ state: "attached" });
    assert.equal(await page.locator("#chart canvas").count(), 1, "the chart is drawn once");
    await check(v, "before");
    const navigations = [];
    page.on("framenavigated", (f) => f === page.mainFrame() && navigations.push(f.url()));

    await scriptedPurchase(event, ticketClass, 2);
    await sees(page, "#f-sold", "2", 20_000);
    await sees(page, "#f-available", "98");
    await sees(page, "#by-status td", t("order.status.COMPLETED"), 20_000);
    await sees(page, "#by-provider td", /^900\.000\s₫$/);
    await sees(page, "#f-revenue", /^900\.000\s₫$/);
    assert.deepEqual(navigations, [], "the dashboard reloaded");
    await check(v, "after");
    noProblems(v);
    await v.context.close();
  });
}

// The door against the real check-in API: a ticket bought through the sandbox is let in by its
// typed code, the same code again is refused with when and at which gate; a second ticket is
// read by the camera through jsQR (the browser's BarcodeDetector removed, the camera fed the
// ticket's own QR SVG from the API); the dashboard then counts both check-ins.
for (const { lang, width } of [{ lang: "en", width: 1280 }, { lang: "vi", width: 375 }]) {
  test(`the door checks a real ticket in by code, refuses it the second time with when and where, and scans another (${lang}, ${width} px)`, async () => {
    const { event, ticketClass } = await publishedEvent(admin, `Door ${lang} ${suffix}`);
    const { buyer, tickets: [typed, scanned] } = await scriptedPurchase(event, ticketClass, 2);
    const svg = await (await fetch(`${app.url}/api/tickets/${scanned.id}/qr.svg`, { headers: { Authorization: `Bearer ${buyer.token}` } })).text();
    assert.match(svg, /^<\?xml|^<svg/);
    const v = await visitor(browser, { lang, width, name: "door" });
    const { page, t } = v;
    // A camera that shows the second ticket's QR code, and no BarcodeDetector: the page must
    // fall back to jsQR. Injected through the DevTools protocol, as axe is.
    await v.context.addInitScript((qrSvg) => {
      delete window.BarcodeDetector;
      navigator.mediaDevices.getUserMedia = async () => {
        const img = new Image();
        img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(qrSvg)}`;
        await img.decode();
        const canvas = document.createElement("canvas");
        canvas.width = 480;
        canvas.height = 480;
        const g = canvas.getContext("2d");
        const draw = () => {
          g.fillStyle = "#fff";
          g.fillRect(0, 0, 480, 480);
          g.drawImage(img, 40, 40, 400, 400);
        };
        draw();
        setInterval(draw, 100);
        return canvas.captureStream(10);
      };
    }, svg);
    v.expectFailure(409, `/api/events/${event.id}/check-ins`);
    await page.goto(`${app.url}/organizer/events/${event.id}`);
    await logIn(v, organizer.email, PASSWORD);
    await page.getByRole("link", { name: t("org.door") }).click();
    await page.waitForURL(`${app.url}/organizer/events/${event.id}/door`);
    await sees(page, "#event-name", event.name);
    await page.locator("#gate").fill("B");
    await page.locator("#code").fill(typed.code.toLowerCase());
    await page.getByRole("button", { name: t("door.checkIn") }).click();
    await sees(page, "#result-title", t("door.ok"));
    await sees(page, "#result-detail", `${ticketClass.name} · ${typed.code}`);
    assert.equal(await page.locator("#result").getAttribute("data-ok"), "true");
    await check(v, "checked-in");

    await page.locator("#code").fill(typed.code);
    const refused = page.waitForResponse((r) => r.url().endsWith(`/api/events/${event.id}/check-ins`) && r.status() === 409);
    await page.keyboard.press("Enter");
    const problem = await (await refused).json();
    assert.equal(problem.code, "ALREADY_CHECKED_IN");
    assert.equal(problem.gate, "B");
    await sees(page, "#result-title", t("door.already"));
    await sees(page, "#result-detail", t("door.alreadyDetail", { at: vnClock(problem.checkedInAt), gate: "B" }));
    assert.equal(await page.locator("#result").getAttribute("data-ok"), "false");
    await check(v, "refused");

    await page.getByRole("button", { name: t("door.camera") }).click();
    await sees(page, "#result-title", t("door.ok"), 20_000);
    await sees(page, "#result-detail", `${ticketClass.name} · ${scanned.code}`);
    await check(v, "scanned");

    await page.getByRole("link", { name: t("live.back") }).click();
    await page.getByRole("link", { name: t("org.live") }).click();
    await page.waitForURL(`${app.url}/organizer/events/${event.id}/live`);
    await sees(page, "#check-ins tr", new RegExp(`^\\s*${ticketClass.name}\\s*2\\s*2\\s*$`));
    await check(v, "live-check-ins");
    noProblems(v);
    await v.context.close();
  });
}
