// The organizer's live dashboard in headless Chromium against the built Worker in workerd: it
// shows the sale's figures and moves without a reload while a scripted buyer pays (classes'
// counters, orders by status, revenue by payment method, the uPlot chart). In Vietnamese at
// 1280 px and English at 375 px, axe-core on the page, no console errors.
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

/** A buyer orders `quantity` tickets through the sandbox and pays, as a script would. */
async function scriptedPurchase(event, ticketClass, quantity) {
  const buyer = await account(`live-buyer-${Math.random().toString(36).slice(2)}@example.com`);
  const created = await api("/api/orders", {
    token: buyer.token,
    headers: { "Idempotency-Key": `live-${Math.random().toString(36).slice(2)}` },
    body: { eventId: event.id, items: [{ ticketClassId: ticketClass.id, quantity }], paymentMethod: "sandbox" },
  });
  await api(`${new URL(created.paymentUrl).pathname}/pay`, { method: "POST" });
}

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
    assert.equal(await page.locator("#chart canvas").count(), 1, "the chart is drawn");
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
