// The organizer's journey in headless Chromium against the built Worker in workerd: an
// organizer creates, configures and submits an event, a platform admin approves it, the
// organizer publishes it. It runs in Vietnamese and in English, at 1280 px and at 375 px;
// axe-core checks every page on the way (no serious or critical violation), no page logs an
// error, screenshots go to test-results/browser/.
//
// Needs `bash scripts/build.sh` (build/), /usr/bin/chromium and node_modules (axe-core).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startApp } from "../../bench/lib/runtime.mjs";
import { HOUR, apiClient, check, launch, logIn, noProblems, preflight, sees, visitor, vnInput } from "./support.mjs";

const PASSWORD = "journey-test-password";
let app;
let api;
let browser;
let admin;
let category;
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
  browser = await launch();
}, { timeout: 90_000 });

after(async () => {
  await browser?.close();
  await app?.dispose();
}, { timeout: 20_000 });

for (const { lang, width } of [{ lang: "en", width: 1280 }, { lang: "vi", width: 375 }]) {
  describe(`organizer, admin, organizer (${lang}, ${width} px)`, () => {
    const name = `Hanoi Jazz Night ${lang} ${suffix}`;
    let org;
    let eventId;

    test("the organizer creates an event, sees a server error next to its field, configures it, adds a class and submits it", async () => {
      const email = `organizer-${lang}-${suffix}@example.com`;
      await api("/api/auth/register", { body: { email, password: PASSWORD, firstName: "Hà", lastName: "Trần" } });
      org = await visitor(browser, { lang, width, name: "organizer" });
      const { page, t } = org;
      await page.goto(`${app.url}/login?next=/organizer`);
      await sees(page, "h1", t("login.heading"));
      await check(org, "login");
      await logIn(org, email, PASSWORD);
      await page.waitForURL(`${app.url}/organizer`);
      await sees(page, "#mine-heading", t("org.mine"));
      await sees(page, "#no-events", t("org.noEvents"));
      await check(org, "console");

      const start = Date.now() + 40 * 24 * HOUR;
      await page.locator("#name").fill(name);
      await page.locator("#description").fill("Jazz by the lake");
      await page.locator("#location").fill("Nhà hát Lớn Hà Nội");
      await page.locator("#startDate").fill(vnInput(start));
      await page.locator("#endDate").fill(vnInput(start + 3 * HOUR));
      await page.locator("#categoryIds").selectOption({ label: "Music" });
      await page.getByRole("button", { name: t("org.createButton") }).click();
      await page.waitForURL(/\/organizer\/events\/[^/]+$/);
      eventId = page.url().split("/").pop();
      await sees(page, "#event-name", name);
      await sees(page, "#status", t("status.DRAFT"));

      // The server refuses an end before the start; the page puts its words next to that field.
      await page.locator("#d-endDate").fill(vnInput(start - HOUR));
      org.expectFailure(400, `/api/events/${eventId}`);
      await page.getByRole("button", { name: t("org.saveDetails") }).click();
      await sees(page, '#details .field-error[data-field="endDate"]', /startDate/);
      assert.equal(await page.locator("#d-endDate").getAttribute("aria-invalid"), "true");
      await check(org, "field-error");
      await page.locator("#d-endDate").fill(vnInput(start + 3 * HOUR));
      await page.getByRole("button", { name: t("org.saveDetails") }).click();
      await sees(page, "#details .saved", t("account.saved"));
      assert.equal(await page.locator("#details .field-error").count(), 0);

      await page.locator("#k-name").fill("Standing");
      await page.locator("#k-price").fill("350000");
      await page.locator("#k-total").fill("200");
      await page.getByRole("button", { name: t("org.addClassButton") }).click();
      await sees(page, "#classes td", "Standing");

      await page.locator("#c-start").fill(vnInput(Date.now() - HOUR));
      await page.locator("#c-end").fill(vnInput(Date.now() + 10 * 24 * HOUR));
      await page.locator("#c-max-user").fill("4");
      await page.locator("#c-shards").fill("4");
      await page.getByRole("button", { name: t("org.saveAndSubmit") }).click();
      await sees(page, "#status", t("status.CONFIGURED"));
      // The queue shard count came back from the server: the field starts at 1 on a fresh load.
      await page.reload();
      await page.waitForFunction(() => document.querySelector("#c-shards").value === "4");
      await sees(page, "#status-text", t("org.statusText.CONFIGURED"));
      await check(org, "submitted");
      noProblems(org);
    });

    test("a platform admin approves it from the queue", async () => {
      const adm = await visitor(browser, { lang, width, name: "admin" });
      const { page, t } = adm;
      await page.goto(`${app.url}/admin`);
      await logIn(adm, admin.email, PASSWORD);
      await sees(page, "#events h2", name);
      await sees(page, "#events li", /Standing/);
      await check(adm, "queue");
      await page.getByRole("button", { name: `${t("admin.approve")}: ${name}` }).click();
      await sees(page, "#events li [role=status]", t("admin.approved"));
      await check(adm, "approved");
      noProblems(adm);
      await adm.context.close();
    });

    test("the organizer publishes it after confirming, and it is on the storefront", async () => {
      const { page, t } = org;
      await page.goto(`${app.url}/organizer/events/${eventId}`);
      await sees(page, "#status", t("status.APPROVED"));
      await page.getByRole("button", { name: t("org.publish") }).click();
      await sees(page, "#confirm-text", t("org.confirmPublish", { name }));
      await check(org, "confirm-publish");
      // Going back changes nothing; the second time it is confirmed.
      await page.getByRole("button", { name: t("org.back2") }).click();
      await sees(page, "#status", t("status.APPROVED"));
      await page.getByRole("button", { name: t("org.publish") }).click();
      await page.getByRole("button", { name: t("org.yesPublish") }).click();
      await sees(page, "#status", t("status.PUBLISHED"));
      const { event } = await api(`/api/events/${eventId}`);
      assert.equal(event.status, "PUBLISHED");
      await check(org, "published");
      await page.locator("#public-link").click();
      await page.waitForURL(`${app.url}/events/${eventId}`);
      await sees(page, "#event-name", name);
      await check(org, "public-page");
      noProblems(org);
      await org.context.close();
    });
  });
}

