// Production ([env.production] of wrangler.toml) with every secret set: it serves, the
// development features are off, and a platform admin needs a verified address (README,
// "Deploying", step 7: the operator verifies it in D1).
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";

const BASE = "https://tb.test";
const OPS = "ops@example.com";
const PASSWORD = "correct horse battery";

function call(path: string, init: RequestInit = {}) {
  return SELF.fetch(`${BASE}${path}`, init);
}

function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return call(path, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(body) });
}

describe("a correctly configured production deployment", () => {
  it("is healthy and says which environment it is", async () => {
    const res = await call("/api/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      status: "ok",
      environment: "production",
      checks: { d1: "ok", config: "ok" },
    });
  });

  it("has no development mailbox and no sandbox payments", async () => {
    expect((await call("/api/dev/mailbox?email=fan@example.com")).status).toBe(404);
    expect((await post("/api/payments/webhooks/sandbox", { data: {}, signature: "x" })).status).toBe(404);
    expect((await call("/sandbox/checkout/pay_1")).status).toBe(404);
    expect((await post("/sandbox/checkout/pay_1/pay", {})).status).toBe(404);
  });

  it("answers a real provider's webhook (enabled by PAYMENT_PROVIDERS)", async () => {
    const res = await post("/api/payments/webhooks/zalopay", { data: "{}", mac: "bad", type: 1 });
    expect(res.status).toBe(200);
    expect((await res.json()) as any).toMatchObject({ return_code: -1 });
  });

  it("makes a listed admin a platform admin only once the address is verified", async () => {
    const ip = { "CF-Connecting-IP": "198.51.100.77" };
    const reg = await post("/api/auth/register", { email: OPS, password: PASSWORD, firstName: "Ops", lastName: "Person" }, ip);
    expect(reg.status).toBe(201);
    const login = async () => (await (await post("/api/auth/login", { email: OPS, password: PASSWORD }, ip)).json()) as any;

    const unverified = await login();
    expect(unverified.user.role).toBe("user");
    const denied = await call("/api/ops/events/00000000-0000-0000-0000-000000000000/status", {
      headers: { Authorization: `Bearer ${unverified.accessToken}` },
    });
    expect(denied.status).toBe(403);

    // What the README's bootstrap step runs with `wrangler d1 execute --remote`.
    await env.DB.prepare("UPDATE users SET email_verified = 1 WHERE email = ?1").bind(OPS).run();
    const verified = await login();
    expect(verified.user.role).toBe("admin");
    const allowed = await call("/api/ops/events/00000000-0000-0000-0000-000000000000/status", {
      headers: { Authorization: `Bearer ${verified.accessToken}` },
    });
    expect(allowed.status).toBe(404);
  });
});
