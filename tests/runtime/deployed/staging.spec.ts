// Staging ([env.staging] of wrangler.toml): no real provider enabled, the sandbox provider and
// the mailbox switched on for rehearsals, with its own secrets.
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";

const BASE = "https://tb.test";

function post(path: string, body: unknown) {
  return SELF.fetch(`${BASE}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "CF-Connecting-IP": "198.51.100.78" },
    body: JSON.stringify(body),
  });
}

describe("the staging deployment", () => {
  it("is healthy", async () => {
    const res = await SELF.fetch(`${BASE}/api/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ok", environment: "staging", checks: { config: "ok" } });
  });

  it("shows verification mail in the mailbox (DEV_MAILBOX=enabled)", async () => {
    const email = `tester-${Date.now()}@example.com`;
    expect((await post("/api/auth/register", { email, password: "correct horse battery", firstName: "T", lastName: "Ester" })).status).toBe(201);
    const res = await SELF.fetch(`${BASE}/api/dev/mailbox?email=${encodeURIComponent(email)}`);
    expect(res.status).toBe(200);
    const { items } = (await res.json()) as any;
    expect(items).toHaveLength(1);
  });

  it("takes sandbox webhooks (SANDBOX_PAYMENTS=enabled) and no real provider's", async () => {
    const sandbox = await post("/api/payments/webhooks/sandbox", { data: {}, signature: "forged" });
    expect(sandbox.status).not.toBe(404);
    const zalopay = await post("/api/payments/webhooks/zalopay", { data: "{}", mac: "x", type: 1 });
    expect(zalopay.status).toBe(404);
  });

  it("never shows the verification mail of an ADMIN_EMAILS address", async () => {
    // Whoever reads that link first would verify the address and become platform admin.
    const admin = "ops@example.com"; // ADMIN_EMAILS of the deployed test configuration
    expect((await post("/api/auth/register", { email: admin, password: "correct horse battery", firstName: "O", lastName: "Ps" })).status).toBe(201);
    const res = await SELF.fetch(`${BASE}/api/dev/mailbox?email=${encodeURIComponent(admin)}`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as any).code).toBe("NOT_FOUND");
    expect(JSON.stringify(await (await SELF.fetch(`${BASE}/api/dev/mailbox?email=OPS%40example.com`)).json())).not.toContain("verify");
  });
});
