// Users and auth through the real HTTP API: register, login, verification, profile, soft
// delete, admin lookup, token rejection and throttling.
import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import {
  ADMIN_EMAIL, PASSWORD, adminUser, call, expectProblem, json, registerAndLogin, uniqueEmail, type TestUser,
} from "./helpers";
import { accessClaims, signJwt, unsignedJwt } from "./tokens";

const JWT_SECRET = (env as any).JWT_SECRET as string;

async function register(email: string, extra: Record<string, unknown> = {}) {
  return call("/api/auth/register", {
    body: { email, password: PASSWORD, firstName: "Lan", lastName: "Nguyen", ...extra },
  });
}

async function countUsers(email: string): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM users WHERE email = ?1").bind(email).first<{ n: number }>();
  return row?.n ?? 0;
}

describe("registration", () => {
  it("creates an unverified user and never returns the password hash", async () => {
    const email = uniqueEmail();
    const res = await register(email.toUpperCase());
    expect(res.status).toBe(201);
    const { user } = await json(res);
    expect(user).toMatchObject({ email, firstName: "Lan", lastName: "Nguyen", emailVerified: false, role: "user", avatar: null });
    expect(user.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(user.createdAt)).not.toBeNaN();
    expect(JSON.stringify(user)).not.toMatch(/pbkdf2|password/i);
  });

  it("stores a versioned PBKDF2 hash", async () => {
    const email = uniqueEmail();
    await register(email);
    const row = await env.DB.prepare("SELECT password_hash FROM users WHERE email = ?1").bind(email).first<{ password_hash: string }>();
    expect(row?.password_hash).toMatch(/^\$pbkdf2-sha256\$v=1\$i=100000\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
  });

  it("refuses an email that is taken, whatever its case", async () => {
    const email = uniqueEmail();
    expect((await register(email)).status).toBe(201);
    await expectProblem(await register(email.toUpperCase()), 409, "EMAIL_TAKEN");
    expect(await countUsers(email)).toBe(1);
  });

  it("reports every bad field at once and writes nothing", async () => {
    const res = await call("/api/auth/register", {
      body: { email: "not-an-email", password: "short", firstName: "", lastName: "Nguyen" },
    });
    const body = await expectProblem(res, 400, "VALIDATION_FAILED");
    const fields = body.errors.map((e: any) => e.field).sort();
    expect(fields).toEqual(["email", "firstName", "password"]);
    expect(await countUsers("not-an-email")).toBe(0);
  });

  it("requires every field", async () => {
    const body = await expectProblem(await call("/api/auth/register", { body: {} }), 400, "VALIDATION_FAILED");
    expect(body.errors.map((e: any) => e.field).sort()).toEqual(["email", "firstName", "lastName", "password"]);
  });

  it("rejects malformed JSON", async () => {
    await expectProblem(await call("/api/auth/register", { rawBody: '{"email": "a@b.c",' }), 400, "MALFORMED_JSON");
  });

  it("rejects a wrongly typed field as a validation failure", async () => {
    await expectProblem(await call("/api/auth/register", { body: { email: 42 } }), 400, "VALIDATION_FAILED");
  });

  it("rejects an oversized body before reading it", async () => {
    const res = await call("/api/auth/register", { rawBody: JSON.stringify({ email: "x".repeat(70_000) }) });
    await expectProblem(res, 413, "PAYLOAD_TOO_LARGE");
  });

  it("rejects a body that is not JSON", async () => {
    const res = await call("/api/auth/register", { rawBody: "email=a", headers: { "Content-Type": "application/x-www-form-urlencoded" } });
    await expectProblem(res, 415, "UNSUPPORTED_MEDIA_TYPE");
  });

  it("lets a deleted account's email register again as a new account", async () => {
    const user = await registerAndLogin();
    expect((await call("/api/users/me", { method: "DELETE", token: user.token })).status).toBe(204);
    const res = await register(user.email);
    expect(res.status).toBe(201);
    const again = (await json(res)).user;
    expect(again.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(again.id).not.toBe(user.id);
  });
});

describe("login", () => {
  it("returns a bearer token that opens /api/users/me", async () => {
    const email = uniqueEmail();
    await register(email);
    const res = await call("/api/auth/login", { body: { email: email.toUpperCase(), password: PASSWORD } });
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body).toMatchObject({ tokenType: "Bearer", expiresIn: 3600, user: { email } });
    const me = await call("/api/users/me", { token: body.accessToken });
    expect(me.status).toBe(200);
    expect((await json(me)).user.email).toBe(email);
  });

  it("answers an unknown email and a wrong password identically", async () => {
    const email = uniqueEmail();
    await register(email);
    const wrong = await expectProblem(await call("/api/auth/login", { body: { email, password: "wrong password!" } }), 401, "INVALID_CREDENTIALS");
    const unknown = await expectProblem(
      await call("/api/auth/login", { body: { email: uniqueEmail("nobody"), password: PASSWORD } }),
      401,
      "INVALID_CREDENTIALS",
    );
    expect(unknown).toEqual(wrong);
  });

  it("gives platform admins the admin role", async () => {
    const admin = await adminUser();
    const me = await json(await call("/api/users/me", { token: admin.token }));
    expect(me.user).toMatchObject({ email: ADMIN_EMAIL, role: "admin" });
  });
});

describe("email verification", () => {
  it("delivers a single-use token through the dev mailbox", async () => {
    const email = uniqueEmail();
    await register(email);
    const box = await json(await call(`/api/dev/mailbox?email=${encodeURIComponent(email)}`));
    expect(box.items).toHaveLength(1);
    expect(box.items[0]).toMatchObject({ to: email, kind: "EMAIL_VERIFICATION" });
    const token = new URL(box.items[0].link, "https://x").searchParams.get("token")!;
    expect(token.length).toBeGreaterThan(30);

    const ok = await call("/api/auth/verify-email", { body: { token } });
    expect(ok.status).toBe(200);
    expect((await json(ok)).user).toMatchObject({ email, emailVerified: true });
    await expectProblem(await call("/api/auth/verify-email", { body: { token } }), 400, "INVALID_TOKEN");
  });

  it("rejects an unknown token", async () => {
    await expectProblem(await call("/api/auth/verify-email", { body: { token: "nope" } }), 400, "INVALID_TOKEN");
  });

  it("rejects an expired token", async () => {
    const email = uniqueEmail();
    await register(email);
    await env.DB.prepare("UPDATE email_verifications SET expires_at = 0 WHERE user_id IN (SELECT id FROM users WHERE email = ?1)").bind(email).run();
    const box = await json(await call(`/api/dev/mailbox?email=${encodeURIComponent(email)}`));
    const token = new URL(box.items[0].link, "https://x").searchParams.get("token")!;
    await expectProblem(await call("/api/auth/verify-email", { body: { token } }), 400, "INVALID_TOKEN");
  });
});

describe("profile", () => {
  let user: TestUser;
  beforeAll(async () => {
    user = await registerAndLogin();
  });

  it("updates names and avatar, and clears the avatar with null", async () => {
    let res = await call("/api/users/me", { method: "PATCH", token: user.token, body: { firstName: "Mai", avatar: "https://img.example/a.png" } });
    expect(res.status).toBe(200);
    expect((await json(res)).user).toMatchObject({ firstName: "Mai", lastName: "Fan", avatar: "https://img.example/a.png" });
    res = await call("/api/users/me", { method: "PATCH", token: user.token, body: { avatar: null } });
    expect((await json(res)).user.avatar).toBeNull();
  });

  it("rejects bad fields and changes nothing", async () => {
    const res = await call("/api/users/me", { method: "PATCH", token: user.token, body: { firstName: "", avatar: "javascript:alert(1)", password: "x" } });
    const body = await expectProblem(res, 400, "VALIDATION_FAILED");
    expect(body.errors.map((e: any) => e.field).sort()).toEqual(["avatar", "firstName", "password"]);
    const me = await json(await call("/api/users/me", { token: user.token }));
    expect(me.user.firstName).toBe("Mai");
  });

  it("changes the password", async () => {
    const u = await registerAndLogin();
    const res = await call("/api/users/me", { method: "PATCH", token: u.token, body: { password: "a brand new secret", currentPassword: PASSWORD } });
    expect(res.status).toBe(200);
    expect((await call("/api/auth/login", { body: { email: u.email, password: PASSWORD } })).status).toBe(401);
    expect((await call("/api/auth/login", { body: { email: u.email, password: "a brand new secret" } })).status).toBe(200);
  });

  it("requires a token", async () => {
    await expectProblem(await call("/api/users/me"), 401, "UNAUTHENTICATED");
  });
});

describe("soft delete", () => {
  it("ends login and hides the user from everyone but platform admins", async () => {
    const u = await registerAndLogin();
    const other = await registerAndLogin();
    const admin = await adminUser();
    expect((await call("/api/users/me", { method: "DELETE", token: u.token })).status).toBe(204);

    await expectProblem(await call("/api/auth/login", { body: { email: u.email, password: PASSWORD } }), 401, "INVALID_CREDENTIALS");
    await expectProblem(await call("/api/users/me", { token: u.token }), 401, "UNAUTHENTICATED");
    expect((await call(`/api/users/${u.id}`, { token: other.token })).status).toBeGreaterThanOrEqual(403);
    const seen = await call(`/api/users/${u.id}`, { token: admin.token });
    expect(seen.status).toBe(200);
    expect((await json(seen)).user.deletedAt).toBeTruthy();
  });
});

describe("reading users", () => {
  it("lets a user read themselves but not others", async () => {
    const a = await registerAndLogin();
    const b = await registerAndLogin();
    expect((await call(`/api/users/${a.id}`, { token: a.token })).status).toBe(200);
    const res = await call(`/api/users/${b.id}`, { token: a.token });
    expect([403, 404]).toContain(res.status);
    await expectProblem(await call(`/api/users/${b.id}`), 401, "UNAUTHENTICATED");
  });

  it("lets platform admins look up users by ids and by email", async () => {
    const admin = await adminUser();
    const a = await registerAndLogin();
    const b = await registerAndLogin();
    const byIds = await json(await call(`/api/users?ids=${a.id},${b.id},00000000-0000-0000-0000-000000000000`, { token: admin.token }));
    expect(byIds.items.map((u: any) => u.id).sort()).toEqual([a.id, b.id].sort());
    const byEmail = await json(await call(`/api/users?email=${encodeURIComponent(a.email.toUpperCase())}`, { token: admin.token }));
    expect(byEmail.items.map((u: any) => u.id)).toEqual([a.id]);
  });

  it("refuses batch lookup to non-admins and bad queries", async () => {
    const admin = await adminUser();
    const a = await registerAndLogin();
    await expectProblem(await call(`/api/users?ids=${a.id}`, { token: a.token }), 403, "FORBIDDEN");
    await expectProblem(await call(`/api/users?ids=${a.id}`), 401, "UNAUTHENTICATED");
    await expectProblem(await call("/api/users", { token: admin.token }), 400, "VALIDATION_FAILED");
    await expectProblem(await call("/api/users?email=nope", { token: admin.token }), 400, "VALIDATION_FAILED");
  });
});

describe("access token rejection", () => {
  let user: TestUser;
  beforeAll(async () => {
    user = await registerAndLogin();
  });
  const rejects = async (token: string) => expectProblem(await call("/api/users/me", { token }), 401, "UNAUTHENTICATED");

  it("accepts a correctly signed token (control)", async () => {
    const token = await signJwt({ alg: "HS256", typ: "JWT" }, accessClaims(user.id), JWT_SECRET);
    expect((await call("/api/users/me", { token })).status).toBe(200);
  });
  it("rejects alg none", async () => rejects(unsignedJwt(accessClaims(user.id))));
  it("rejects a token signed with another key", async () =>
    rejects(await signJwt({ alg: "HS256", typ: "JWT" }, accessClaims(user.id), "another-key-another-key-another-key")));
  it("rejects a token signed with another algorithm", async () =>
    rejects(await signJwt({ alg: "HS512", typ: "JWT" }, accessClaims(user.id), JWT_SECRET, "SHA-512")));
  it("rejects an expired token", async () => {
    const now = Math.floor(Date.now() / 1000);
    return rejects(await signJwt({ alg: "HS256" }, accessClaims(user.id, { iat: now - 7200, exp: now - 3600 }), JWT_SECRET));
  });
  it("rejects a token that is not yet valid", async () => {
    const now = Math.floor(Date.now() / 1000);
    return rejects(await signJwt({ alg: "HS256" }, accessClaims(user.id, { nbf: now + 3600 }), JWT_SECRET));
  });
  it("rejects a token for another audience", async () =>
    rejects(await signJwt({ alg: "HS256" }, accessClaims(user.id, { aud: "another-service" }), JWT_SECRET)));
  it("rejects a malformed token", async () => rejects("not.a.jwt"));
});

describe("throttling", () => {
  it("limits registrations per client IP with Retry-After", async () => {
    const ip = "203.0.113.7";
    let last: Response | undefined;
    // Rate-limit windows are aligned to the clock: a burst that straddles a window boundary
    // needs up to a second window's worth of requests.
    for (let i = 0; i < 61; i++) {
      last = await call("/api/auth/register", { ip, body: { email: uniqueEmail("burst"), password: PASSWORD, firstName: "A", lastName: "B" } });
      if (last.status === 429) break;
    }
    await expectProblem(last!, 429, "RATE_LIMITED");
    expect(Number(last!.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("limits login attempts per email from one client", async () => {
    const email = uniqueEmail("target");
    await register(email);
    const ip = "203.0.113.41";
    let last: Response | undefined;
    for (let i = 0; i < 21; i++) {
      last = await call("/api/auth/login", { ip, body: { email, password: "guess number " + i } });
      if (last.status === 429) break;
    }
    await expectProblem(last!, 429, "RATE_LIMITED");
  });
});

describe("dev mailbox", () => {
  it("requires an email", async () => {
    await expectProblem(await call("/api/dev/mailbox"), 400, "VALIDATION_FAILED");
  });
});
