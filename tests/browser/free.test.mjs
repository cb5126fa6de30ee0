// A free event's checkout in headless Chromium against the built Worker in workerd: no payment
// method to choose, one button that gets the tickets, a confirmation that links to the order
// (COMPLETED, "free", not "paid") and to the buyer's tickets. In Vietnamese at 1280 px and in
// English at 375 px; axe-core checks each page, no page logs an error.
//
// Needs `bash scripts/build.sh` (build/), /usr/bin/chromium and node_modules (axe-core).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startApp } from "../../bench/lib/runtime.mjs";
import { apiClient, check, launch, logIn, noProblems, preflight, publishedEvent, sees, visitor } from "./support.mjs";

const PASSWORD = "free-journey-password";
let app;
let api;
let browser;
let freeEvent;
let freeClass;
const suffix = Date.now().toString(36);

async function account(email) {
  await api("/api/auth/register", { body: { email, password: PASSWORD, firstName: "Lan", lastName: "Nguyễn" } });
  const { accessToken } = await api("/api/auth/login", { body: { email, password: PASSWORD } });
  return { email, token: accessToken };
}

before(async () => {
  preflight();
  app = await startApp();
  api = apiClient(app.url);
  const admin = await account("admin@ticketbottle.dev");
  const organizer = await account(`free-organizer-${suffix}@example.com`);
  ({ event: freeEvent, ticketClass: freeClass } = await publishedEvent(api, {
    organizerToken: organizer.token,
    adminToken: admin.token,
    details: { name: `Đêm thơ miễn phí ${suffix}`, description: "Vào cửa tự do", location: "Huế" },
    config: { isFree: true },
    ticketClass: { name: "Free entry", priceCents: 0, total: 100 },
  }));
  browser = await launch();
}, { timeout: 90_000 });

after(async () => {
  await browser?.close();
  await app?.dispose();
}, { timeout: 20_000 });

for (const { lang, width } of [{ lang: "vi", width: 1280 }, { lang: "en", width: 375 }]) {
  test(`a fan gets free tickets without a payment step and finds them (${lang}, ${width} px)`, async () => {
    const email = `free-fan-${lang}-${suffix}@example.com`;
    await api("/api/auth/register", { body: { email, password: PASSWORD, firstName: "Minh", lastName: "Lê" } });
    const fan = await visitor(browser, { lang, width, name: "free-fan" });
    const { page, t } = fan;
    await page.goto(`${app.url}/events/${freeEvent.id}/checkout`);
    await logIn(fan, email, PASSWORD);
    await sees(page, "#classes td", "Free entry");
    // Nothing to choose and nothing to pay.
    assert.equal(await page.locator("#method").isVisible(), false);
    await sees(page, "#held", t("checkout.freeNote"));
    await check(fan, "free-checkout");
    await page.locator(`input[data-class="${freeClass.id}"]`).fill("2");
    await page.getByRole("button", { name: t("checkout.getFree") }).click();

    const escaped = t("checkout.freeDone", { code: "CODE", count: 2 }).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    await sees(page, "#done-text", new RegExp(escaped.replace("CODE", "TB-\\S+")));
    assert.equal(await page.locator("#order").isVisible(), false);
    assert.equal(await page.getByRole("link", { name: t("checkout.toTickets") }).getAttribute("href"), "/account#tickets-heading");
    await check(fan, "free-done");
    await page.getByRole("link", { name: t("checkout.toOrder") }).click();

    await page.waitForURL(/\/orders\/TB-/);
    await sees(page, "#status", "COMPLETED");
    await sees(page, "#status-text", t("order.freeCompleted"));
    await check(fan, "free-order");
    await page.getByRole("link", { name: t("order.toAccount") }).click();
    await page.waitForURL(`${app.url}/account`);
    await sees(page, "#tickets li", /\S/);
    assert.equal(await page.locator("#tickets li").count(), 2);
    noProblems(fan);
    await fan.context.close();
  });
}
