// The fan's journey in headless Chromium against the built Worker in workerd: a fan finds an
// event on the storefront, buys through the waitroom and the sandbox, sees the order and its
// tickets in their account, and opens a ticket's QR code (large, as the door's scanner needs). It runs in Vietnamese and in English, at 1280 px and at 375 px; axe-core
// checks every page on the way (no serious or critical violation), no page logs an error,
// screenshots go to test-results/browser/.
//
// Needs `bash scripts/build.sh` (build/), /usr/bin/chromium and node_modules (axe-core).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startApp } from "../../bench/lib/runtime.mjs";
import { apiClient, check, launch, logIn, noProblems, preflight, publishedEvent, sees, visitor } from "./support.mjs";

const PASSWORD = "journey-test-password";
let app;
let api;
let browser;
let admin;
let category;
let fanEvent;
let fanClass;
const suffix = Date.now().toString(36);

async function account(email) {
  await api("/api/auth/register", { body: { email, password: PASSWORD, firstName: "Lan", lastName: "Nguyễn" } });
  const { accessToken, user } = await api("/api/auth/login", { body: { email, password: PASSWORD } });
  return { email, id: user.id, token: accessToken };
}

before(async () => {
  preflight();
  app = await startApp();
  api = apiClient(app.url);
  admin = await account("admin@ticketbottle.dev");
  ({ category } = await api("/api/categories", { token: admin.token, body: { name: "Music" } }));

  // The event fans buy from, set up through the API (its organizer's journey is tested below).
  const organizer = await account(`fan-event-organizer-${suffix}@example.com`);
  ({ event: fanEvent, ticketClass: fanClass } = await publishedEvent(api, {
    organizerToken: organizer.token,
    adminToken: admin.token,
    details: { name: `Mỹ Tâm Live ${suffix}`, description: "Đêm nhạc", location: "Hà Nội", categoryIds: [category.id] },
    config: { allowWaitRoom: true },
    ticketClass: { name: "General admission", priceCents: 450_000, total: 100 },
  }));
  browser = await launch();
}, { timeout: 90_000 });

after(async () => {
  await browser?.close();
  await app?.dispose();
}, { timeout: 20_000 });

for (const { lang, width } of [{ lang: "vi", width: 1280 }, { lang: "en", width: 375 }]) {
  test(`a fan finds the event on the storefront, buys through the waitroom and the sandbox, and sees the order and its tickets in the account and the QR code (${lang}, ${width} px)`, async () => {
    const email = `fan-${lang}-${suffix}@example.com`;
    await api("/api/auth/register", { body: { email, password: PASSWORD, firstName: "Minh", lastName: "Lê" } });
    const fan = await visitor(browser, { lang, width, name: "fan" });
    const { page, t } = fan;
    await page.goto(`${app.url}/`);
    await sees(page, "h1", t("store.heading"));
    await check(fan, "storefront");
    await page.locator("#q").fill("Tâm");
    await page.locator("#category").selectOption({ label: "Music" });
    await page.getByRole("button", { name: t("store.find") }).click();
    await page.waitForURL(/\?q=T%C3%A2m&category=music/);
    await page.getByRole("link", { name: fanEvent.name }).click();

    await page.waitForURL(`${app.url}/events/${fanEvent.id}`);
    await sees(page, "#event-name", fanEvent.name);
    await sees(page, "#classes td", "General admission");
    // VND the Vietnamese way in both languages.
    await sees(page, "#classes td.num", /^450\.000\s₫$/);
    await sees(page, "#sale-state", new RegExp(t("event.onSaleUntil", { at: "" }).trim()));
    await check(fan, "event");
    await page.getByRole("link", { name: t("event.buy") }).click();

    await page.waitForURL(`${app.url}/events/${fanEvent.id}/waitroom`);
    await sees(page, "#login p", t("waitroom.loginIntro"));
    await check(fan, "waitroom-login");
    await logIn(fan, email, PASSWORD, "waitroom.loginJoin");
    await page.waitForURL(`${app.url}/events/${fanEvent.id}/checkout`);
    await sees(page, "#classes td", "General admission");
    await sees(page, "#deadline", /\d+:\d\d/);
    // Only what the server takes, and no more tickets than the event's per-buyer limit.
    const methods = await page.locator("#method option").evaluateAll((os) => os.map((o) => o.value));
    assert.deepEqual(methods, ["sandbox", "payos", "vnpay", "zalopay"]);
    assert.equal(await page.locator(`input[data-class="${fanClass.id}"]`).getAttribute("max"), "4");
    await check(fan, "checkout");
    await page.locator(`input[data-class="${fanClass.id}"]`).fill("2");
    await sees(page, "#total", /^900\.000\s₫$/);
    await page.locator("#method").selectOption("sandbox");
    await page.getByRole("button", { name: t("checkout.pay") }).click();

    await page.waitForURL(/\/sandbox\/checkout\//);
    await check(fan, "sandbox");
    await page.getByRole("button", { name: "Pay", exact: true }).click();
    await sees(page, "#status", "PAID");
    await page.getByRole("link", { name: "See your order" }).click();
    await page.waitForURL(/\/orders\/TB-/);
    const code = decodeURIComponent(page.url().split("/").pop());
    await sees(page, "#status", "COMPLETED", 20_000);
    await sees(page, "#status-text", t("order.text.COMPLETED"));
    await check(fan, "order");

    await page.getByRole("link", { name: t("order.toAccount") }).click();
    await page.waitForURL(`${app.url}/account`);
    await sees(page, "#orders a", code);
    await sees(page, "#orders td", t("order.status.COMPLETED"));
    await sees(page, "#orders td", fanEvent.name);
    // One ticket per unit bought, each VALID, each linking to its QR code.
    await sees(page, "#tickets li", new RegExp(`General admission · \\S+\\s+${t("ticket.status.VALID")}`));
    assert.equal(await page.locator("#tickets li").count(), 2);
    await check(fan, "account");

    const ticketLink = page.locator("#tickets li a").first();
    const ticketCode = (await ticketLink.textContent()).split(" · ")[1];
    await ticketLink.click();
    await page.waitForURL(/\/tickets\/[^/]+$/);
    await sees(page, "#event-name", fanEvent.name);
    await sees(page, "#class-name", "General admission");
    await sees(page, "#code", ticketCode);
    await sees(page, "#status", t("ticket.status.VALID"));
    // The QR code is the server's SVG, drawn large enough to scan from a phone held up at the door.
    const qr = page.locator("#qr");
    await page.waitForFunction(() => document.querySelector("#qr")?.complete && document.querySelector("#qr").naturalWidth > 0);
    assert.match(await qr.getAttribute("src"), /^data:image\/svg\+xml/);
    const box = await qr.boundingBox();
    assert.ok(box && box.width >= Math.min(300, 0.7 * width) && Math.abs(box.width - box.height) < 2, `QR code is ${box?.width}×${box?.height} px`);
    assert.equal(await qr.getAttribute("alt"), t("ticket.qrAlt", { code: ticketCode }));
    await check(fan, "ticket");
    noProblems(fan);
    await fan.context.close();
  });
}

test("the language follows Accept-Language until the visitor switches, and the switch is remembered", async () => {
  const v = await visitor(browser, { lang: "vi", width: 375, name: "switch" });
  const { page } = v;
  await page.goto(`${app.url}/`);
  await sees(page, "h1", v.t("store.heading"));
  assert.equal(await page.evaluate(() => document.documentElement.lang), "vi");
  await page.locator("#lang-switch").selectOption("en");
  await sees(page, "h1", "Events on sale");
  assert.equal(await page.evaluate(() => document.documentElement.lang), "en");
  await page.reload();
  await sees(page, "h1", "Events on sale");
  assert.equal(await page.evaluate(() => document.documentElement.lang), "en");
  noProblems(v);
  await v.context.close();
});
