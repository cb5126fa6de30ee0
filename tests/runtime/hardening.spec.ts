// Attacks tried through the real HTTP API (issue "Hardening"): each test fails on a Worker
// without the defence it names.
import { describe, expect, it } from "vitest";
import { SELF, env } from "cloudflare:test";
import { BASE, PASSWORD, adminUser, call, expectProblem, json, registerAndLogin, uniqueEmail } from "./helpers";
import { accessClaims, signJwt } from "./tokens";

describe("login throttle", () => {
  it("lets the victim log in while an attacker bursts wrong passwords at their email", async () => {
    const victim = await registerAndLogin(uniqueEmail("victim"));
    const attacker = "198.51.100.66";
    let last: Response | undefined;
    for (let i = 0; i < 21; i++) {
      last = await call("/api/auth/login", { ip: attacker, body: { email: victim.email, password: `guess ${i}` } });
      if (last.status === 429) break;
    }
    // The attacker is throttled...
    await expectProblem(last!, 429, "RATE_LIMITED");
    // ...the victim, from their own address, is not.
    const own = await call("/api/auth/login", { ip: "203.0.113.200", body: { email: victim.email, password: PASSWORD } });
    expect(own.status).toBe(200);
    expect((await json(own)).user.id).toBe(victim.id);
  });
});

describe("IPv6 clients", () => {
  it("counts two addresses of one /64 as one client", async () => {
    const first = "2001:db8:77:1::10";
    const sameSlash64 = "2001:db8:77:1:ffff:ffff:ffff:fffe";
    const register = (ip: string) =>
      call("/api/auth/register", { ip, body: { email: uniqueEmail("v6"), password: PASSWORD, firstName: "A", lastName: "B" } });
    let last: Response | undefined;
    // Up to two windows' worth: the limiter's windows are aligned to the clock.
    for (let i = 0; i < 61; i++) {
      last = await register(first);
      if (last.status === 429) break;
    }
    await expectProblem(last!, 429, "RATE_LIMITED");
    await expectProblem(await register(sameSlash64), 429, "RATE_LIMITED");
    // A different /64 is a different client.
    expect((await register("2001:db8:77:2::10")).status).toBe(201);
  });
});

describe("payment notifications", () => {
  it("are answered in the provider's format even when the sender's address used up the API budget", async () => {
    const ip = "198.51.100.77";
    let last: Response | undefined;
    for (let i = 0; i < 1201; i++) {
      last = await call("/api/no-such-endpoint", { ip });
      if (last.status === 429) break;
      await last.arrayBuffer();
    }
    await expectProblem(last!, 429, "RATE_LIMITED");
    // A VNPay IPN with a bad signature: VNPay's own answer (97), not our 429 problem.
    const ipn = await call("/api/payments/webhooks/vnpay?vnp_TxnRef=X1&vnp_Amount=100&vnp_SecureHash=00", { ip });
    expect(ipn.status).toBe(200);
    expect(ipn.headers.get("content-type")).toBe("application/json");
    expect(await json(ipn)).toEqual({ RspCode: "97", Message: expect.any(String) });
  });
});

describe("request bodies", () => {
  it("refuses a chunked body without Content-Length once it passes the cap, without reading it all", async () => {
    // A body that never ends: only a reader that stops at the cap can answer at all.
    let sent = 0;
    const chunk = new TextEncoder().encode(`{"email":"${"a".repeat(16 * 1024)}`);
    const endless = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
    const res = await SELF.fetch(`${BASE}/api/auth/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "CF-Connecting-IP": "198.51.100.78" },
      body: endless,
      // @ts-expect-error: Node/undici and workerd need this for a streamed request body.
      duplex: "half",
    });
    await expectProblem(res, 413, "PAYLOAD_TOO_LARGE");
    expect(sent).toBeLessThan(4 * 1024 * 1024);
  });
});

describe("sessions", () => {
  const JWT_SECRET = (env as any).JWT_SECRET as string;
  const login = async (email: string, password = PASSWORD) =>
    (await json(await call("/api/auth/login", { body: { email, password } }))).accessToken as string;

  it("refuses a deleted account's token everywhere, not only on its profile", async () => {
    const u = await registerAndLogin();
    expect((await call("/api/users/me", { method: "DELETE", token: u.token })).status).toBe(204);
    await expectProblem(await call("/api/orders", { token: u.token }), 401, "UNAUTHENTICATED");
    await expectProblem(await call("/api/auth/logout-all", { method: "POST", token: u.token }), 401, "UNAUTHENTICATED");
  });

  it("ends every earlier token with logout-all", async () => {
    const u = await registerAndLogin();
    const second = await login(u.email);
    expect((await call("/api/orders", { token: second })).status).toBe(200);
    expect((await call("/api/auth/logout-all", { method: "POST", token: u.token })).status).toBe(204);
    for (const token of [u.token, second]) {
      await expectProblem(await call("/api/users/me", { token }), 401, "UNAUTHENTICATED");
    }
    // A fresh login works again.
    expect((await call("/api/users/me", { token: await login(u.email) })).status).toBe(200);
  });

  it("needs the current password to change it, and the change ends earlier tokens", async () => {
    const u = await registerAndLogin();
    const change = (body: object) => call("/api/users/me", { method: "PATCH", token: u.token, body });
    await expectProblem(await change({ password: "a brand new secret" }), 403, "INVALID_CREDENTIALS");
    await expectProblem(await change({ password: "a brand new secret", currentPassword: "not my password" }), 403, "INVALID_CREDENTIALS");
    // Refused changes wrote nothing: the old password and token still work.
    expect((await call("/api/users/me", { token: u.token })).status).toBe(200);
    expect((await change({ password: "a brand new secret", currentPassword: PASSWORD })).status).toBe(200);
    await expectProblem(await call("/api/users/me", { token: u.token }), 401, "UNAUTHENTICATED");
    expect((await call("/api/users/me", { token: await login(u.email, "a brand new secret") })).status).toBe(200);
  });

  it("takes the platform role from ADMIN_EMAILS at each request, not from the token", async () => {
    // A token that says admin for an account not listed (as after removal from ADMIN_EMAILS).
    const u = await registerAndLogin();
    const claimsAdmin = await signJwt({ alg: "HS256", typ: "JWT" }, accessClaims(u.id, { role: "admin" }), JWT_SECRET);
    await expectProblem(await call(`/api/users?email=${encodeURIComponent(u.email)}`, { token: claimsAdmin }), 403, "FORBIDDEN");
  });
});

describe("approval", () => {
  const HOUR = 3_600_000;
  const iso = (ms: number) => new Date(ms).toISOString();

  it("cannot be sidestepped by editing what was approved", async () => {
    const organizer = await registerAndLogin(uniqueEmail("organizer"));
    const admin = await adminUser();
    const now = Date.now();
    const { event } = await json(
      await call("/api/events", {
        token: organizer.token,
        body: { name: "Charity evening", description: "A small concert", location: "Hanoi", startDate: iso(now + 720 * HOUR), endDate: iso(now + 723 * HOUR) },
      }),
    );
    const edit = (body: object) => call(`/api/events/${event.id}`, { method: "PATCH", token: organizer.token, body });
    const addClass = (name: string, priceCents: number) =>
      call(`/api/events/${event.id}/ticket-classes`, { token: organizer.token, body: { name, priceCents, currency: "VND", total: 10 } });
    const status = async () => (await json(await call(`/api/events/${event.id}`, { token: organizer.token }))).event.status;
    const configured = await call(`/api/events/${event.id}/config`, {
      method: "PUT",
      token: organizer.token,
      body: {
        ticketSaleStartDate: iso(now - HOUR), ticketSaleEndDate: iso(now + 100 * HOUR), isFree: false, maxAttendees: null, isPublic: true,
        requiresApproval: false, allowWaitRoom: false, isNewTrending: false, maxTicketsPerUser: 4,
      },
    });
    expect(configured.status).toBe(200);
    const { ticketClass } = await json(await addClass("Standard", 100_000));
    const approve = () => call(`/api/events/${event.id}/approve`, { method: "POST", token: admin.token });
    expect((await approve()).status).toBe(200);

    // APPROVED: a rename sends it back to review; publishing it unreviewed is refused.
    expect((await edit({ name: "Famous Band live" })).status).toBe(200);
    expect(await status()).toBe("CONFIGURED");
    await expectProblem(await call(`/api/events/${event.id}/publish`, { method: "POST", token: organizer.token }), 409, "INVALID_STATUS_TRANSITION");
    expect((await approve()).status).toBe(200);
    // A new class after approval needs a review too.
    expect((await addClass("Late", 50_000)).status).toBe(201);
    expect(await status()).toBe("CONFIGURED");
    expect((await approve()).status).toBe(200);
    expect((await call(`/api/events/${event.id}/publish`, { method: "POST", token: organizer.token })).status).toBe(200);

    // PUBLISHED: renaming, tripling a price or adding a class is refused and changes nothing.
    await expectProblem(await edit({ name: "Another act entirely", description: "Not what was approved" }), 409, "REAPPROVAL_REQUIRED");
    const classPath = `/api/events/${event.id}/ticket-classes/${ticketClass.id}`;
    await expectProblem(await call(classPath, { method: "PATCH", token: organizer.token, body: { priceCents: 300_000 } }), 409, "REAPPROVAL_REQUIRED");
    await expectProblem(await addClass("VIP", 900_000), 409, "REAPPROVAL_REQUIRED");
    const after = (await json(await call(`/api/events/${event.id}`))).event;
    expect(after).toMatchObject({ name: "Famous Band live", description: "A small concert", status: "PUBLISHED" });
    const classes = (await json(await call(`/api/events/${event.id}/ticket-classes`))).items;
    expect(classes.map((c: any) => [c.name, c.priceCents])).toEqual([["Standard", 100_000], ["Late", 50_000]]);
    // Operational edits still go through: a lower price, a pause.
    expect((await call(classPath, { method: "PATCH", token: organizer.token, body: { priceCents: 80_000, status: "PAUSED" } })).status).toBe(200);
  });
});
