// Production ([env.production] of wrangler.toml) with a short JWT secret, a provider secret
// missing, VNPay still on its sandbox, the development features switched on and the demo admin
// listed: the Worker refuses every request, health says why, and every log line names it.
import { SELF } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { accessClaims, signJwt } from "../tokens";
import { operatorToken } from "./operator";

const BASE = "https://tb.test";
// This configuration's (too short) JWT_SECRET, from vitest.config.ts.
const JWT_SECRET = "too-short";

const EXPECTED = [
  "JWT_SECRET is shorter than 32 bytes",
  "SANDBOX_PAYMENTS=enabled is not allowed in production",
  "DEV_MAILBOX=enabled is not allowed in production",
  "SANDBOX_WEBHOOK_SECRET is the development value",
  "PAYOS_API_KEY is missing (PAYMENT_PROVIDERS enables payos)",
  "VNPAY_PAY_URL is vnpay's sandbox in production (set the production endpoint)",
  "ADMIN_EMAILS lists the development account admin@ticketbottle.dev",
];

async function expectRefused(res: Response) {
  expect(res.status).toBe(500);
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  const body = (await res.json()) as any;
  expect(body).toMatchObject({ status: 500, code: "SERVICE_MISCONFIGURED" });
  expect(body.detail).toBe("The service is not configured to serve requests safely.");
  // Only health lists the causes.
  expect(body.misconfiguration).toBeUndefined();
  expect(res.headers.get("x-request-id")).toBeTruthy();
}

describe("a misconfigured production deployment", () => {
  it("answers anonymous health with the 500 problem but not the list of causes", async () => {
    const res = await SELF.fetch(`${BASE}/api/health`);
    expect(res.status).toBe(500);
    const body = (await res.json()) as any;
    expect(body).toMatchObject({ status: 500, code: "SERVICE_MISCONFIGURED", checks: { config: "error" } });
    expect(body).not.toHaveProperty("misconfiguration");
    // A signed-in user who is not a platform admin sees no more.
    const user = await signJwt({ alg: "HS256" }, accessClaims("some-user"), JWT_SECRET);
    const asUser = (await (await SELF.fetch(`${BASE}/api/health`, { headers: { Authorization: `Bearer ${user}` } })).json()) as any;
    expect(asUser).not.toHaveProperty("misconfiguration");
  });

  it("answers a platform admin's health with a 500 problem that names every cause, and no secret value", async () => {
    const token = await operatorToken("ops@example.com", JWT_SECRET);
    const res = await SELF.fetch(`${BASE}/api/health`, { headers: { Authorization: `Bearer ${token}` } });
    expect(res.status).toBe(500);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    const body = (await res.json()) as any;
    expect(body).toMatchObject({
      status: 500,
      code: "SERVICE_MISCONFIGURED",
      environment: "production",
      checks: { d1: "ok", config: "error" },
    });
    expect(body.misconfiguration).toEqual(EXPECTED);
    expect(JSON.stringify(body)).not.toContain("too-short");
    expect(JSON.stringify(body)).not.toContain("dev-only-sandbox-secret");
  });

  it("refuses every other request with the same 500 problem", async () => {
    const requests: [string, RequestInit?][] = [
      ["/api/events"],
      ["/api/openapi.json"],
      ["/api/auth/login", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" }],
      ["/api/dev/mailbox?email=a@example.com"],
      ["/api/payments/webhooks/sandbox", { method: "POST", body: "{}" }],
      ["/api/ops/events/evt/status"],
      ["/api/no-such-route"],
      ["/events/some-event/waitroom"],
      ["/assets/site.css"],
    ];
    for (const [path, init] of requests) {
      await expectRefused(await SELF.fetch(`${BASE}${path}`, init));
    }
  });

  describe("logs", () => {
    // The Worker logs each line as one plain object (Workers Logs indexes its fields).
    let lines: unknown[];
    beforeEach(() => {
      lines = [];
      for (const method of ["log", "warn", "error"] as const) {
        vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
          lines.push(...args);
        });
      }
    });
    afterEach(() => vi.restoreAllMocks());

    it("writes one JSON line per request naming what is wrong, with request id, route, status and code", async () => {
      await SELF.fetch(`${BASE}/api/events`, { headers: { "X-Request-Id": "guard-test-1" } });
      await SELF.fetch(`${BASE}/api/health`, { headers: { "X-Request-Id": "guard-test-2" } });
      const requests = lines.filter((l): l is any => typeof l === "object" && (l as any)?.msg === "request");
      expect(requests).toHaveLength(2);
      expect(JSON.parse(JSON.stringify(requests[0]))).toEqual(requests[0]);
      expect(requests[0]).toMatchObject({
        level: "error",
        requestId: "guard-test-1",
        route: "/api/events",
        path: "/api/events",
        status: 500,
        code: "SERVICE_MISCONFIGURED",
        misconfiguration: EXPECTED,
      });
      expect(typeof requests[0].durationMs).toBe("number");
      expect(requests[1]).toMatchObject({
        level: "error",
        requestId: "guard-test-2",
        route: "/api/health",
        status: 500,
        code: "SERVICE_MISCONFIGURED",
        misconfiguration: EXPECTED,
      });
    });
  });
});
