// Production ([env.production] of wrangler.toml) with the bot check on (TURNSTILE_SECRET) and
// its mail API, against fakes of Turnstile's siteverify and the mail API reached at their
// configured https:// URLs (vitest.config.ts): bots are refused at register and join, an
// unverified account can neither queue nor order, and the verification mail really goes out.
import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { FAKE_KEYS } from "../fake-providers";
import { PASSWORD, call, expectProblem, json, uniqueEmail } from "../helpers";
import { operatorToken } from "./operator";

const FAKE = (env as any).FAKE_PROVIDERS_URL as string;
const JWT_SECRET = (env as any).JWT_SECRET as string;
const HOUR = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();

const fake = async (path: string, body?: unknown) =>
  (await fetch(`${FAKE}${path}`, body === undefined ? {} : { method: "POST", body: JSON.stringify(body) })).json() as Promise<any>;
const cron = (at = Date.now()) => (exports as any).default.scheduled({ cron: "* * * * *", scheduledTime: new Date(at) });
const mailsTo = async (email: string) => ((await fake("/__mail")).mails as any[]).filter((m) => m.to.includes(email));

async function register(email: string, turnstileToken?: string, headers: Record<string, string> = {}) {
  return call("/api/auth/register", { body: { email, password: PASSWORD, firstName: "Fan", lastName: "Test", turnstileToken }, headers });
}

async function signedIn(email = uniqueEmail("fan")) {
  expect((await register(email, "pass-register")).status).toBe(201);
  const login = await json(await call("/api/auth/login", { body: { email, password: PASSWORD } }));
  return { id: login.user.id as string, email, token: login.accessToken as string };
}

async function waitroomEvent(): Promise<{ id: string; classId: string }> {
  // The platform admin: the ADMIN_EMAILS address, verified (README, "Deploying", step 7).
  const ops = await operatorToken("ops@example.com", JWT_SECRET);
  const organizer = await signedIn(uniqueEmail("organizer"));
  const now = Date.now();
  const must = async (res: Response, status = 200) => {
    if (res.status !== status) throw new Error(`${res.status} ${await res.text()}`);
    return json(res);
  };
  const { event } = await must(
    await call("/api/events", {
      token: organizer.token,
      body: { name: "Guarded on-sale", description: "Fans only", location: "Hanoi", startDate: iso(now + 720 * HOUR), endDate: iso(now + 723 * HOUR) },
    }),
    201,
  );
  await must(
    await call(`/api/events/${event.id}/config`, {
      method: "PUT",
      token: organizer.token,
      body: {
        ticketSaleStartDate: iso(now - HOUR), ticketSaleEndDate: iso(now + 100 * HOUR), isFree: false, maxAttendees: null, isPublic: true,
        requiresApproval: false, allowWaitRoom: true, isNewTrending: false, maxTicketsPerUser: 4,
      },
    }),
  );
  const { ticketClass } = await must(
    await call(`/api/events/${event.id}/ticket-classes`, { token: organizer.token, body: { name: "Standard", priceCents: 100_000, currency: "VND", total: 10 } }),
    201,
  );
  await must(await call(`/api/events/${event.id}/approve`, { method: "POST", token: ops }));
  await must(await call(`/api/events/${event.id}/publish`, { method: "POST", token: organizer.token }));
  return { id: event.id, classId: ticketClass.id };
}

describe("the bot check (TURNSTILE_SECRET set)", () => {
  it("refuses a registration without a token or with one siteverify rejects", async () => {
    const email = uniqueEmail("bot");
    // The refusal names the widget's site key: the page shows the widget and tries again.
    expect((await expectProblem(await register(email), 403, "BOT_CHECK_FAILED")).siteKey).toBe(FAKE_KEYS.turnstile.siteKey);
    expect((await expectProblem(await register(email, "fail-bot"), 403, "BOT_CHECK_FAILED")).siteKey).toBe(FAKE_KEYS.turnstile.siteKey);
    // Refused registrations created nothing: the address is still free.
    const ok = await call("/api/auth/register", {
      ip: "203.0.113.44",
      body: { email, password: PASSWORD, firstName: "Fan", lastName: "Test" },
      headers: { "CF-Turnstile-Response": "pass-header" },
    });
    expect(ok.status).toBe(201);
    const asked = (await fake("/__siteverify")) as any[];
    expect(asked).toContainEqual({ secret: FAKE_KEYS.turnstile.secret, response: "pass-header", remoteip: "203.0.113.44" });
    expect(asked.some((r) => r.response === undefined || r.response === "")).toBe(false);
  });
});

describe("a verified email (on in production)", () => {
  it("is needed to join a waitroom or order, and the verification mail goes out through the mail API", async () => {
    const event = await waitroomEvent();
    const fan = await signedIn();
    const join = (turnstileToken?: string) =>
      call(`/api/events/${event.id}/waitroom/join`, { token: fan.token, body: turnstileToken ? { turnstileToken } : {} });

    await expectProblem(await join("pass-join"), 403, "EMAIL_NOT_VERIFIED");
    const order = await call("/api/orders", {
      token: fan.token,
      headers: { "Idempotency-Key": crypto.randomUUID() },
      body: { eventId: event.id, items: [{ ticketClassId: event.classId, quantity: 1 }], paymentMethod: "payos" },
    });
    await expectProblem(order, 403, "EMAIL_NOT_VERIFIED");

    // The cron delivers the verification mail; it carries the token.
    await cron();
    const [mail, ...more] = await mailsTo(fan.email);
    expect(more).toEqual([]);
    expect(mail.subject).toMatch(/verif|confirm/i);
    const token = /verify-email\?token=([A-Za-z0-9_-]+)/.exec(mail.text)?.[1];
    expect(token).toBeTruthy();
    const verified = await json(await call("/api/auth/verify-email", { body: { token } }));
    expect(verified.user.emailVerified).toBe(true);

    // Verified, the fan still needs to pass the bot check, then joins.
    await expectProblem(await join(), 403, "BOT_CHECK_FAILED");
    const joined = await join("pass-join");
    expect(joined.status).toBe(200);
    expect((await json(joined)).waitroomSession.eventId).toBe(event.id);

    // Another cron run sends nothing twice.
    await cron();
    expect(await mailsTo(fan.email)).toHaveLength(1);
  });

  it("keeps a mail the mail API could not take and sends it once on a later run", async () => {
    await fake("/__mode", { mail: "down" });
    const email = uniqueEmail("later");
    try {
      expect((await register(email, "pass-register")).status).toBe(201);
      const before = (await fake("/__mail")).attempts;
      await cron();
      expect((await fake("/__mail")).attempts).toBeGreaterThan(before);
      expect(await mailsTo(email)).toEqual([]);
    } finally {
      await fake("/__mode", { mail: "ok" });
    }
    // Not before its back-off: the next minute's run.
    await cron(Date.now() + 2 * 60_000);
    expect(await mailsTo(email)).toHaveLength(1);
    await cron(Date.now() + 5 * 60_000);
    expect(await mailsTo(email)).toHaveLength(1);
  });
});
