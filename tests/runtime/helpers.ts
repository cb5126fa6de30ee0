// Shared helpers for runtime tests: a fetch wrapper with a fresh client IP per call (so the
// per-IP rate limiters only bite where a test means them to), user fixtures, and running an
// object's alarm on demand.
import { SELF, runDurableObjectAlarm } from "cloudflare:test";
import { expect } from "vitest";

export const BASE = "https://tb.test";
export const ADMIN_EMAIL = "admin@ticketbottle.dev";
export const PASSWORD = "correct horse battery";

let ipCounter = 0;
export function freshIp(): string {
  ipCounter += 1;
  return `10.${(ipCounter >> 16) & 255}.${(ipCounter >> 8) & 255}.${ipCounter & 255}`;
}

export interface CallOptions {
  method?: string;
  body?: unknown;
  rawBody?: string;
  token?: string;
  ip?: string;
  headers?: Record<string, string>;
}

export async function call(path: string, opts: CallOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { "CF-Connecting-IP": opts.ip ?? freshIp(), ...opts.headers };
  let body: string | undefined;
  if (opts.rawBody !== undefined) body = opts.rawBody;
  else if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined && !headers["Content-Type"]) headers["Content-Type"] = "application/json";
  if (opts.token) headers["Authorization"] = `Bearer ${opts.token}`;
  return SELF.fetch(`${BASE}${path}`, { method: opts.method ?? (body ? "POST" : "GET"), headers, body });
}

export async function json<T = any>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

/** Asserts a problem+json response with the given status and code and returns its body. */
export async function expectProblem(res: Response, status: number, code: string): Promise<any> {
  expect(res.status, `expected ${status} ${code}`).toBe(status);
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  const body = await json(res);
  expect(body.code).toBe(code);
  expect(body.status).toBe(status);
  return body;
}

let userCounter = 0;
export function uniqueEmail(prefix = "fan"): string {
  userCounter += 1;
  return `${prefix}-${Date.now().toString(36)}-${userCounter}@example.com`;
}

export interface TestUser {
  id: string;
  email: string;
  token: string;
}

export async function registerAndLogin(email = uniqueEmail(), password = PASSWORD): Promise<TestUser> {
  const reg = await call("/api/auth/register", {
    body: { email, password, firstName: "Test", lastName: "Fan" },
  });
  if (reg.status !== 201 && reg.status !== 409) throw new Error(`register ${email}: ${reg.status} ${await reg.text()}`);
  const login = await call("/api/auth/login", { body: { email, password } });
  if (login.status !== 200) throw new Error(`login ${email}: ${login.status} ${await login.text()}`);
  const body = await json(login);
  return { id: body.user.id, email: body.user.email, token: body.accessToken };
}

// One admin login per test file: logins are throttled per email, as they are for real users.
let admin: Promise<TestUser> | undefined;
export function adminUser(): Promise<TestUser> {
  admin ??= registerAndLogin(ADMIN_EMAIL);
  return admin;
}

/**
 * Runs the object's alarm now: when this returns, a run of it (an admission round, due hold
 * expiries) began after the call did. The runtime also fires the alarm on its own (the event's
 * object rounds once a second while a sale is open), and while such a run is under way no alarm
 * is scheduled, so `runDurableObjectAlarm` alone would run nothing and a test would look for an
 * admission that has not happened yet. Waits for the running alarm to arm the next one and runs
 * that; `false` when no alarm is armed within `timeoutMs`.
 */
export async function runAlarmNow(stub: DurableObjectStub, timeoutMs = 2_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await runDurableObjectAlarm(stub))) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
  return true;
}
