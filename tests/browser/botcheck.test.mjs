// The bot check in the pages: with TURNSTILE_SECRET and TURNSTILE_SITE_KEY set, a fan who
// registers on /register and then joins a waitroom meets Cloudflare Turnstile's widget after
// the server's first 403 BOT_CHECK_FAILED, passes it, and the page sends the request again with
// the widget's token, which the Worker confirms with siteverify.
//
// Nothing here reaches Cloudflare: siteverify is a local fake (a token passes when it starts
// with "pass"), and Turnstile's script, which a page may only load from Cloudflare, is answered
// by Playwright with a stand-in widget (a button that hands the page a token, as the real one
// does once the visitor passes). Headless Chromium against the built Worker in workerd.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { startApp } from "../../bench/lib/runtime.mjs";
import { apiClient, check, launch, noProblems, preflight, publishedEvent, sees, visitor } from "./support.mjs";

const PASSWORD = "bot-check-test-password";
const SECRET = "browser-test-turnstile-secret";
const SITE_KEY = "0x4AAAAAAA-browser-test-site-key";
const WIDGET_LABEL = "Verify (test widget)";
// Turnstile's explicit-render API as far as the pages use it: render(el, { sitekey, callback }).
const FAKE_WIDGET = `window.turnstile = {
  render(el, opts) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = ${JSON.stringify(WIDGET_LABEL)};
    b.addEventListener("click", () => opts.callback("pass-" + opts.sitekey));
    el.append(b);
    return "test-widget";
  },
};`;

let app;
let api;
let browser;
let siteverify;
let event;
const asked = [];
const suffix = Date.now().toString(36);

before(async () => {
  preflight();
  siteverify = createServer((req, res) => {
    let text = "";
    req.on("data", (c) => (text += c));
    req.on("end", () => {
      const body = JSON.parse(text || "{}");
      asked.push(body);
      const ok = body.secret === SECRET && typeof body.response === "string" && body.response.startsWith("pass");
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify(ok ? { success: true, "error-codes": [] } : { success: false, "error-codes": ["invalid-input-response"] }));
    });
  });
  await new Promise((resolve) => siteverify.listen(0, "127.0.0.1", resolve));
  app = await startApp({
    bindings: {
      TURNSTILE_SECRET: SECRET,
      TURNSTILE_SITE_KEY: SITE_KEY,
      TURNSTILE_VERIFY_URL: `http://127.0.0.1:${siteverify.address().port}/siteverify`,
    },
  });
  api = apiClient(app.url);
  // The setup's own accounts pass the check through the header, as any API client may.
  const human = { "CF-Turnstile-Response": "pass-setup" };
  await api("/api/auth/register", { headers: human, body: { email: "admin@ticketbottle.dev", password: PASSWORD, firstName: "A", lastName: "B" } });
  const admin = await api("/api/auth/login", { body: { email: "admin@ticketbottle.dev", password: PASSWORD } });
  await api("/api/auth/register", { headers: human, body: { email: `org-${suffix}@example.com`, password: PASSWORD, firstName: "O", lastName: "R" } });
  const org = await api("/api/auth/login", { body: { email: `org-${suffix}@example.com`, password: PASSWORD } });
  ({ event } = await publishedEvent(api, {
    organizerToken: org.accessToken,
    adminToken: admin.accessToken,
    details: { name: `Hội An Lantern Night ${suffix}`, description: "Có phòng chờ", location: "Hội An" },
    config: { allowWaitRoom: true, waitroom: { maxConcurrentCheckouts: 10, checkoutTtlSeconds: 900, admissionBatch: 10 } },
    ticketClass: { name: "Vé đèn lồng", priceCents: 150_000, total: 20 },
  }));
  browser = await launch();
}, { timeout: 60_000 });

after(async () => {
  await browser?.close();
  await app?.dispose();
  await new Promise((resolve) => (siteverify ? siteverify.close(resolve) : resolve()));
}, { timeout: 20_000 });

for (const { lang, width } of [{ lang: "vi", width: 375 }, { lang: "en", width: 1280 }]) {
  test(`a fan passes the bot check on /register and again to join the waitroom (${lang}, ${width} px)`, async () => {
    const v = await visitor(browser, { lang, width, name: "botcheck" });
    const { page, t } = v;
    let widgetLoads = 0;
    await v.context.route("https://challenges.cloudflare.com/**", (route) => {
      widgetLoads += 1;
      return route.fulfill({ status: 200, contentType: "text/javascript", body: FAKE_WIDGET });
    });
    // Each first try is refused on purpose: that 403 is how the page learns the site key.
    v.expectFailure(403, "/api/auth/register");
    v.expectFailure(403, `/api/events/${event.id}/waitroom/join`);

    const email = `fan-${lang}-${suffix}@example.com`;
    await page.goto(`${app.url}/register?next=${encodeURIComponent(`/events/${event.id}/waitroom`)}`);
    await page.locator("#firstName").fill("Lan");
    await page.locator("#lastName").fill("Trần");
    await page.locator("#email").fill(email);
    await page.locator("#password").fill(PASSWORD);
    assert.equal(widgetLoads, 0, "the widget's script is fetched only once the server asks for it");
    await page.getByRole("button", { name: t("register.submit"), exact: true }).click();
    await sees(page, ".bot-check p", t("botCheck.prompt"));
    await check(v, "register-bot-check");
    await page.getByRole("button", { name: WIDGET_LABEL }).click();

    // Registered and logged in, the page goes on to the waitroom, whose join asks again.
    await page.waitForURL(new RegExp(`/events/${event.id}/waitroom`));
    await sees(page, "#bot-check p", t("botCheck.prompt"));
    await check(v, "waitroom-bot-check");
    await page.getByRole("button", { name: WIDGET_LABEL }).click();
    await page.waitForURL(new RegExp(`/events/${event.id}/checkout`));

    const tokens = asked.filter((b) => b.response === `pass-${SITE_KEY}`);
    assert.ok(tokens.length >= 2 * (lang === "vi" ? 1 : 2), `siteverify saw the widget's tokens: ${JSON.stringify(asked)}`);
    assert.ok(tokens.every((b) => b.secret === SECRET));
    noProblems(v);
    await v.context.close();
  });
}
