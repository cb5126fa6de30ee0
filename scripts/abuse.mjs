// Abuse run for the test command: the built Worker in workerd (Miniflare, 127.0.0.1, D1
// migrated, in-memory state), a platform admin registered and logged in through the API, then
// schemathesis against the served /api/openapi.json with a bounded example count. Passes only
// with zero 5xx and zero responses that break the documented schema.
//
// Env: ABUSE_MAX_EXAMPLES (default 25 per operation), ABUSE_SEED (default fixed, so CI is
// reproducible; set another to explore), ABUSE_TIMEOUT_S (hard stop, default 240).
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startApp } from "../bench/lib/runtime.mjs";

const ROOT = new URL("..", import.meta.url).pathname;
const ST = join(ROOT, ".tools/venv/bin/schemathesis");
const maxExamples = Number(process.env.ABUSE_MAX_EXAMPLES ?? 25);
const seed = process.env.ABUSE_SEED ?? "20261101";
const timeoutS = Number(process.env.ABUSE_TIMEOUT_S ?? 240);
// Zero 5xx and zero responses outside the document: bodies, status codes and media types.
const checks = process.env.ABUSE_CHECKS ?? "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance";

if (!existsSync(ST)) {
  console.error(`schemathesis not found at ${ST}: run scripts/setup.sh`);
  process.exit(2);
}

const app = await startApp();
let code = 1;
try {
  const { accessToken, ids } = await fixtures(app.url);
  const reportDir = join(ROOT, "test-results", "schemathesis");
  mkdirSync(reportDir, { recursive: true });
  // Real identifiers, so path parameters reach the handlers' logic instead of 404 (the
  // generated bodies and query strings stay schemathesis's own).
  const configFile = join(reportDir, "schemathesis.toml");
  writeFileSync(configFile, config(ids));
  const args = [
    "--config-file", configFile,
    "run", `${app.url}/api/openapi.json`,
    "--url", app.url,
    "--checks", checks,
    "--max-examples", String(maxExamples),
    "--seed", seed,
    "--header", `Authorization: Bearer ${accessToken}`,
    // Deleting the caller or ending all its sessions would turn every later call into a 401:
    // both have their own runtime tests (users.spec.ts, hardening.spec.ts); everything else is
    // exercised with the live token.
    "--exclude-operation-id", "delete_me",
    "--exclude-operation-id", "logout_all",
    "--request-timeout", "15",
    "--workers", "2",
    "--no-color",
    "--report", "junit", "--report-dir", reportDir,
  ];
  console.log(`schemathesis against ${app.url}/api/openapi.json (max ${maxExamples} examples per operation, seed ${seed})`);
  const child = spawn(ST, args, { stdio: "inherit", env: { ...process.env, SCHEMATHESIS_TELEMETRY: "false" } });
  const timer = setTimeout(() => {
    console.error(`schemathesis over ${timeoutS} s: stopping it`);
    child.kill("SIGTERM");
  }, timeoutS * 1000);
  code = await new Promise((resolve) => child.on("exit", (c, sig) => resolve(sig ? 1 : c ?? 1)));
  clearTimeout(timer);
} catch (e) {
  console.error(e);
  code = 1;
} finally {
  await app.dispose();
}
process.exit(code);

/** Accounts and data through the public API: what the path parameters point at. */
async function fixtures(base) {
  const call = async (path, { method = "POST", token, body, headers = {} } = {}) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(body ? { "Content-Type": "application/json" } : {}),
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : {};
  };
  const account = async (email) => {
    const password = "abuse-password-123";
    const { user } = await call("/api/auth/register", { body: { email, password, firstName: "Abuse", lastName: "Run" } });
    const { accessToken } = await call("/api/auth/login", { body: { email, password } });
    return { id: user.id, token: accessToken };
  };
  // The admin email is listed in ADMIN_EMAILS (wrangler.toml): an admin token reaches the most handlers.
  const admin = await account("admin@ticketbottle.dev");
  const other = await account("abuse-other@example.com");
  const now = Date.now();
  const iso = (ms) => new Date(ms).toISOString();
  const event = async ({ waitroom, publish }) => {
    const { event } = await call("/api/events", {
      token: admin.token,
      body: {
        name: `Abuse ${waitroom ? "waitroom" : "direct"} sale`, description: "schemathesis fixture",
        startDate: iso(now + 30 * 86400e3), endDate: iso(now + 30 * 86400e3 + 3 * 3600e3), location: "Hanoi",
      },
    });
    await call(`/api/events/${event.id}/config`, {
      method: "PUT", token: admin.token,
      body: {
        ticketSaleStartDate: iso(now - 3600e3), ticketSaleEndDate: iso(now + 7 * 86400e3), isFree: false,
        maxAttendees: null, isPublic: true, requiresApproval: false, allowWaitRoom: waitroom, isNewTrending: false,
        maxTicketsPerUser: 10, waitroom: { maxConcurrentCheckouts: 100, checkoutTtlSeconds: 900, admissionBatch: 100 },
      },
    });
    const { ticketClass } = await call(`/api/events/${event.id}/ticket-classes`, {
      token: admin.token, body: { name: "GA", priceCents: 100_000, currency: "VND", total: 1000 },
    });
    if (publish) {
      await call(`/api/events/${event.id}/approve`, { token: admin.token });
      await call(`/api/events/${event.id}/publish`, { token: admin.token });
    }
    return { id: event.id, classId: ticketClass.id };
  };
  const sale = await event({ waitroom: true, publish: true });
  const direct = await event({ waitroom: false, publish: true });
  const draft = await event({ waitroom: false, publish: false });
  await call(`/api/events/${sale.id}/waitroom/join`, { token: admin.token });
  const order = async () =>
    call("/api/orders", {
      token: admin.token,
      headers: { "Idempotency-Key": crypto.randomUUID() },
      body: { eventId: direct.id, items: [{ ticketClassId: direct.classId, quantity: 1 }], paymentMethod: "sandbox" },
    });
  const paid = await order();
  const pending = await order();
  return {
    accessToken: admin.token,
    ids: {
      event: sale.id, ticketClass: sale.classId, user: other.id, draftEvent: draft.id,
      orderCode: paid.order.code, paymentId: new URL(paid.paymentUrl).pathname.split("/").pop(),
      pendingOrder: pending.order.id,
    },
  };
}

function config(ids) {
  const q = JSON.stringify;
  return `# Written by scripts/abuse.mjs for one run.
[parameters]
"path.id" = ${q(ids.event)}
"path.ticketClassId" = ${q(ids.ticketClass)}
"path.userId" = ${q(ids.user)}
"path.idOrCode" = ${q(ids.orderCode)}
"path.paymentId" = ${q(ids.paymentId)}
"path.provider" = "sandbox"
"query.order" = ${q(ids.orderCode)}

[[operations]]
include-operation-id = "cancel_event"
parameters = { "path.id" = ${q(ids.draftEvent)} }

[[operations]]
include-operation-id = "cancel_order"
parameters = { "path.id" = ${q(ids.pendingOrder)} }

[[operations]]
include-operation-id = "get_organizer"
parameters = { "path.id" = ${q(ids.user)} }
`;
}
