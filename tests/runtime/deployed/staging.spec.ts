// Staging ([env.staging] of wrangler.toml): no real provider enabled, the sandbox provider and
// the mailbox switched on for rehearsals, with its own secrets.
import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";

const BASE = "https://tb.test";

function post(path: string, body: unknown) {
  return SELF.fetch(`${BASE}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "CF-Connecting-IP": "198.51.100.78" },
    body: JSON.stringify(body),
  });
}

async function hmacSha256Hex(secret: string, data: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(data)));
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
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
    // Signed with staging's own secret: verified and acknowledged (no such order here).
    const data = JSON.stringify({
      paymentId: "pay_staging",
      orderRef: "TB-STAGING",
      amount: 100_000,
      currency: "VND",
      outcome: "paid",
      txnId: "txn-staging-1",
      issuedAtMs: Date.now(),
    });
    const signed = await post("/api/payments/webhooks/sandbox", { data, signature: await hmacSha256Hex(env.SANDBOX_WEBHOOK_SECRET, data) });
    expect(signed.status).toBe(200);
    expect(await signed.json()).toEqual({ received: true, note: "order not found" });
    const forged = await post("/api/payments/webhooks/sandbox", { data, signature: "forged" });
    expect(forged.status).toBe(400);
    expect(await forged.json()).toEqual({ received: false, error: "bad signature" });
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
