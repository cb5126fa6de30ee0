// The plumbing every endpoint shares: health, docs, problem+json errors, headers, CORS.
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";

const BASE = "https://tb.test";

async function problem(res: Response) {
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  const body = (await res.json()) as Record<string, unknown>;
  expect(body.status).toBe(res.status);
  expect(typeof body.type).toBe("string");
  expect(typeof body.title).toBe("string");
  expect(typeof body.detail).toBe("string");
  return body;
}

describe("health", () => {
  it("reports ok with a real D1 check and the version", async () => {
    const res = await SELF.fetch(`${BASE}/api/health`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body).toMatchObject({ status: "ok", checks: { d1: "ok" } });
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe("unknown routes and methods", () => {
  it("answers an unknown path with a 404 problem", async () => {
    const res = await SELF.fetch(`${BASE}/api/no-such-thing`);
    expect(res.status).toBe(404);
    expect((await problem(res)).code).toBe("NOT_FOUND");
  });

  it("answers a wrong method with a 405 problem and an Allow header", async () => {
    const res = await SELF.fetch(`${BASE}/api/health`, { method: "DELETE" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toContain("GET");
    expect((await problem(res)).code).toBe("METHOD_NOT_ALLOWED");
  });
});

describe("headers on every response", () => {
  it("carries security headers and a generated request id", async () => {
    const res = await SELF.fetch(`${BASE}/api/health`);
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers.get("strict-transport-security")).toContain("max-age=");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
  });

  it("echoes a well-formed request id, also on errors", async () => {
    const res = await SELF.fetch(`${BASE}/api/nope`, { headers: { "X-Request-Id": "trace-abc_123" } });
    expect(res.status).toBe(404);
    expect(res.headers.get("x-request-id")).toBe("trace-abc_123");
  });

  it("replaces a request id that could inject into logs", async () => {
    const res = await SELF.fetch(`${BASE}/api/health`, { headers: { "X-Request-Id": "bad id\"}" } });
    // A fresh id of our own, not merely something other than the one sent (a missing header).
    expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe("CORS", () => {
  it("answers a preflight from a configured origin", async () => {
    const res = await SELF.fetch(`${BASE}/api/auth/login`, {
      method: "OPTIONS",
      headers: {
        Origin: "http://localhost:5173",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, authorization",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("http://localhost:5173");
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
    expect(res.headers.get("access-control-allow-headers")).toContain("authorization");
  });

  it("grants nothing to an unknown origin", async () => {
    const res = await SELF.fetch(`${BASE}/api/health`, { headers: { Origin: "https://evil.example" } });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("adds CORS headers to simple requests from a configured origin", async () => {
    const res = await SELF.fetch(`${BASE}/api/health`, { headers: { Origin: "http://localhost:5173" } });
    expect(res.headers.get("access-control-allow-origin")).toBe("http://localhost:5173");
    expect(res.headers.get("vary")).toContain("Origin");
  });
});

describe("API documentation", () => {
  it("serves an OpenAPI 3.1 document generated from the code", async () => {
    const res = await SELF.fetch(`${BASE}/api/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as any;
    expect(doc.openapi).toMatch(/^3\.1/);
    expect(doc.paths["/api/health"].get).toBeDefined();
    expect(doc.components.schemas.Problem).toBeDefined();
  });

  it("serves Swagger UI from the app's own assets", async () => {
    const res = await SELF.fetch(`${BASE}/api/docs`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("/docs/vendor/swagger-ui-bundle.js");
    expect(html).not.toMatch(/https?:\/\/(cdn|unpkg|cdnjs)/);
    const bundle = await SELF.fetch(`${BASE}/docs/vendor/swagger-ui-bundle.js`);
    expect(bundle.status).toBe(200);
    expect((await bundle.text()).length).toBeGreaterThan(100_000);
  });
});

describe("API rate limit", () => {
  it("answers 429 with Retry-After once a client exceeds its budget", async () => {
    const headers = { "CF-Connecting-IP": "198.51.100.99" };
    let last: Response | undefined;
    // Up to two windows' worth: the limiter's windows are aligned to the clock.
    for (let i = 0; i < 1201; i++) {
      last = await SELF.fetch(`${BASE}/api/openapi.json`, { headers });
      if (last.status === 429) break;
      await last.arrayBuffer();
    }
    expect(last!.status).toBe(429);
    expect(Number(last!.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await problem(last!)).code).toBe("RATE_LIMITED");
  });
});
