// Production with every secret copied from `.dev.vars.example`: each example value is refused
// by name, whether or not the feature that reads it is switched on.
import { SELF, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { operatorToken } from "./operator";

const BASE = "https://tb.test";

describe("a production deployment with the example secrets", () => {
  it("refuses to serve", async () => {
    const res = await SELF.fetch(`${BASE}/api/events`);
    expect(res.status).toBe(500);
    expect(((await res.json()) as any).code).toBe("SERVICE_MISCONFIGURED");
  });

  it("names every example secret in health (for a platform admin)", async () => {
    const names = String((env as any).EXAMPLE_SECRET_NAMES).split(",");
    expect(names).toEqual(expect.arrayContaining(["JWT_SECRET", "SANDBOX_WEBHOOK_SECRET", "PAYOS_API_KEY", "VNPAY_HASH_SECRET", "ZALOPAY_KEY1"]));
    // ADMIN_EMAILS of the deployed test configuration.
    const token = await operatorToken("ops@example.com", String((env as any).JWT_SECRET));
    const res = await SELF.fetch(`${BASE}/api/health`, { headers: { Authorization: `Bearer ${token}` } });
    expect(res.status).toBe(500);
    const { misconfiguration } = (await res.json()) as { misconfiguration: string[] };
    for (const name of names) {
      expect(misconfiguration.some((line) => line.startsWith(name)), `${name} accepted: ${misconfiguration.join("; ")}`).toBe(true);
    }
  });
});
