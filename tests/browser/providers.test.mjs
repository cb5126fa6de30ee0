// Every payment method works locally: a buyer on the checkout page pays through the local
// stand-ins of PayOS, VNPay and ZaloPay (scripts/dev-providers.mjs, as `npm run dev` runs
// them): the hosted page, the signed notification to the Worker, the way back to the order
// page, which shows the order COMPLETED; a VNPay payment cancelled on its page ends FAILED.
// Headless Chromium against the built Worker in workerd; axe-core on the pages on the way.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { startApp } from "../../bench/lib/runtime.mjs";
import { readDevVars, startDevProviders } from "../../scripts/dev-providers.mjs";
import { HOUR, ROOT, apiClient, check, launch, logIn, noProblems, preflight, publishedEvent, sees, visitor } from "./support.mjs";

const PASSWORD = "provider-test-password";
let app;
let api;
let providers;
let browser;
let event;
let ticketClass;
const suffix = Date.now().toString(36);
const target = { url: "" };

before(async () => {
  preflight();
  // The Worker reads its keys from .dev.vars (setup makes it from the example); so do the stand-ins.
  const vars = readDevVars(join(ROOT, existsSync(join(ROOT, ".dev.vars")) ? ".dev.vars" : ".dev.vars.example"));
  providers = await startDevProviders({ port: 0, vars, workerUrl: () => target.url });
  app = await startApp({
    bindings: {
      ...Object.fromEntries(Object.entries(vars).filter(([k]) => /^(PAYOS|VNPAY|ZALOPAY)_/.test(k))),
      PAYOS_API_BASE: `${providers.url}/payos`,
      VNPAY_PAY_URL: `${providers.url}/vnpay/paymentv2/vpcpay.html`,
      ZALOPAY_API_BASE: `${providers.url}/zalopay`,
    },
  });
  target.url = app.url;
  api = apiClient(app.url);
  await api("/api/auth/register", { body: { email: "admin@ticketbottle.dev", password: PASSWORD, firstName: "A", lastName: "B" } });
  const admin = await api("/api/auth/login", { body: { email: "admin@ticketbottle.dev", password: PASSWORD } });
  await api("/api/auth/register", { body: { email: `org-${suffix}@example.com`, password: PASSWORD, firstName: "O", lastName: "R" } });
  const org = await api("/api/auth/login", { body: { email: `org-${suffix}@example.com`, password: PASSWORD } });
  const now = Date.now();
  const iso = (ms) => new Date(ms).toISOString();
  ({ event, ticketClass } = await publishedEvent(api, {
    organizerToken: org.accessToken,
    adminToken: admin.accessToken,
    details: { name: `Đà Lạt Acoustic ${suffix}`, description: "Không phòng chờ", startDate: iso(now + 9 * 24 * HOUR), endDate: iso(now + 9 * 24 * HOUR + 2 * HOUR), location: "Đà Lạt" },
    config: { ticketSaleEndDate: iso(now + 5 * 24 * HOUR), maxTicketsPerUser: 10, waitroom: { maxConcurrentCheckouts: 10, checkoutTtlSeconds: 900, admissionBatch: 10 } },
    ticketClass: { name: "Ghế thường", priceCents: 250_000, total: 50 },
  }));
  browser = await launch();
}, { timeout: 60_000 });

after(async () => {
  await browser?.close();
  await app?.dispose();
  await providers?.close();
}, { timeout: 20_000 });

const CASES = [
  { method: "payos", decision: "pay", lang: "vi", width: 375, ends: "COMPLETED" },
  { method: "vnpay", decision: "pay", lang: "en", width: 1280, ends: "COMPLETED" },
  { method: "zalopay", decision: "pay", lang: "en", width: 375, ends: "COMPLETED" },
  { method: "vnpay", decision: "cancel", lang: "vi", width: 1280, ends: "FAILED" },
];

for (const { method, decision, lang, width, ends } of CASES) {
  test(`${method}: the buyer ${decision === "pay" ? "pays" : "cancels"} on the local stand-in's page and the order ends ${ends} (${lang}, ${width} px)`, async () => {
    const email = `buyer-${method}-${decision}-${suffix}@example.com`;
    await api("/api/auth/register", { body: { email, password: PASSWORD, firstName: "Mai", lastName: "Phạm" } });
    const v = await visitor(browser, { lang, width, name: `${method}-${decision}` });
    const { page, t } = v;
    await page.goto(`${app.url}/events/${event.id}/checkout`);
    await logIn(v, email, PASSWORD);
    await sees(page, "#classes td", "Ghế thường");
    await page.locator(`input[data-class="${ticketClass.id}"]`).fill("1");
    await page.locator("#method").selectOption(method);
    await page.getByRole("button", { name: t("checkout.pay") }).click();
    await page.waitForURL((u) => u.href.startsWith(providers.url));
    await sees(page, ".amount", /250\.000/);
    await page.getByRole("button", { name: decision === "pay" ? "Thanh toán / Pay" : "Hủy / Cancel" }).click();
    await page.waitForURL(/\/orders\/TB-/);
    await sees(page, "#status", ends, 20_000);
    await check(v, "order");
    const notices = providers.payments.filter((p) => p.status !== 200);
    assert.deepEqual(notices, [], "a notification was refused by the Worker");
    noProblems(v);
    await v.context.close();
  });
}
