// Runtime tests: the built Rust Worker runs in workerd through Miniflare, configured from
// wrangler.toml (D1, the EventHub Durable Object, queues, rate limiters, assets).
// `npm test` builds the Worker first; this plugin does not run [build]. Payment providers
// are local fakes (tests/runtime/fake-providers.ts) on 127.0.0.1: no test touches the internet.
//
// Projects:
// - `runtime`: the development configuration (the top level of wrangler.toml), the whole API.
// - `production`, `staging`: the Worker as those [env.*] sections configure it, with secrets a
//   real deployment would have; `production-misconfigured`: production with secrets missing and
//   development features switched on, where the Worker must refuse to serve.
//   These three never see the developer's own `.dev.vars` (see `deployedConfigPath`): their
//   bindings are wrangler.toml's section plus the values given here, nothing else.
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { fetch as miniflareFetch } from "miniflare";
import { defineConfig } from "vitest/config";
import { experimental_readRawConfig } from "wrangler";
import { FAKE_KEYS, FAKED_HOSTS } from "./tests/runtime/fake-providers";

const ROOT = fileURLToPath(new URL(".", import.meta.url));
const migrations = await readD1Migrations(join(ROOT, "migrations"));

/**
 * wrangler.toml, copied where no `.dev.vars` can be. Wrangler loads `.dev.vars` (or, without
 * one, `.env`) from the directory of the config file it reads, for every environment, over the
 * section's vars: a local `ENVIRONMENT=development`, a normal thing to have, would turn the
 * deployed configurations under test into development. The copy lives in a directory of this
 * repository's tool cache that holds nothing else, with its file paths made absolute.
 */
function deployedConfigPath(): string {
  const { rawConfig } = experimental_readRawConfig({ config: join(ROOT, "wrangler.toml") });
  const sections = [rawConfig, ...Object.values(rawConfig.env ?? {})] as any[];
  for (const section of sections) {
    if (section.main) section.main = resolve(ROOT, section.main);
    if (section.assets?.directory) section.assets.directory = resolve(ROOT, section.assets.directory);
    for (const db of section.d1_databases ?? []) {
      if (db.migrations_dir) db.migrations_dir = resolve(ROOT, db.migrations_dir);
    }
  }
  const dir = join(ROOT, "node_modules", ".cache", "deployed-wrangler-config");
  mkdirSync(dir, { recursive: true });
  const path = join(dir, "wrangler.json");
  writeFileSync(path, JSON.stringify(rawConfig, null, 2));
  return path;
}

const DEPLOYED_CONFIG = deployedConfigPath();

// The Worker logs one object per request, saga step and webhook (printed here as inspected
// objects, colours included); info lines are hidden to keep test output readable, warnings and
// errors still show, except the SERVICE_MISCONFIGURED lines `production-misconfigured` provokes
// on purpose (and asserts).
const ANSI = new RegExp(String.fromCharCode(27) + "\\[[0-9;]*m", "g");
const isInfoLine = (log: string) => /level: 'info'|"level":"info"/.test(log.replace(ANSI, ""));

const shared = {
  setupFiles: ["./tests/runtime/setup.ts"],
  testTimeout: 30_000,
};

/** Production-like secrets: long enough, not the development values, https endpoints. */
const DEPLOYED_SECRETS = {
  JWT_SECRET: "deployed-jwt-secret-0123456789abcdef0123456789",
  // 32 bytes, base64url (an Ed25519 seed), not the development key.
  TICKET_SIGNING_KEY: "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1-f4CBgoM",
  SANDBOX_WEBHOOK_SECRET: "deployed-sandbox-webhook-secret",
  PAYOS_CLIENT_ID: FAKE_KEYS.payos.clientId,
  PAYOS_API_KEY: FAKE_KEYS.payos.apiKey,
  PAYOS_CHECKSUM_KEY: FAKE_KEYS.payos.checksumKey,
  PAYOS_API_BASE: "https://api-merchant.payos.vn",
  VNPAY_TMN_CODE: FAKE_KEYS.vnpay.tmnCode,
  VNPAY_HASH_SECRET: FAKE_KEYS.vnpay.hashSecret,
  ZALOPAY_APP_ID: FAKE_KEYS.zalopay.appId,
  ZALOPAY_KEY1: FAKE_KEYS.zalopay.key1,
  ZALOPAY_KEY2: FAKE_KEYS.zalopay.key2,
  ADMIN_EMAILS: "ops@example.com",
  MAIL_API_KEY: FAKE_KEYS.mail.apiKey,
};

/**
 * The Worker's outbound requests: those for a host the fake server fakes (Turnstile's
 * siteverify, the mail API) go to it, at their real https:// URLs as configured, so the
 * deployed configuration under test is the real one; everything else passes through.
 */
function fakeOutbound(fake: string) {
  return async (request: Request) => {
    const url = new URL(request.url);
    const target = FAKED_HOSTS.includes(url.hostname) ? `${fake}/${url.hostname}${url.pathname}${url.search}` : request.url;
    const body = request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer();
    return miniflareFetch(target, { method: request.method, headers: [...request.headers], body });
  };
}

/** Every secret value `.dev.vars.example` hands each clone (endpoints and ZaloPay's public
 * sandbox app id aside): deployed, each must be refused by name. */
const EXAMPLE_SECRETS: Record<string, string> = Object.fromEntries(
  readFileSync(fileURLToPath(new URL("./.dev.vars.example", import.meta.url)), "utf8")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith("#") && line.includes("="))
    .map((line) => [line.slice(0, line.indexOf("=")).trim(), line.slice(line.indexOf("=") + 1).trim()])
    .filter(([name, value]) => value && !value.includes("://") && name !== "ZALOPAY_APP_ID"),
);

function deployed(name: string, environment: "staging" | "production", bindings: Record<string, string>) {
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: DEPLOYED_CONFIG, environment },
        miniflare: { bindings: { TEST_MIGRATIONS: migrations, ...DEPLOYED_SECRETS, ...bindings } },
      }),
    ],
    test: { ...shared, name, include: [`tests/runtime/deployed/${name}.spec.ts`] },
  };
}

export default defineConfig({
  test: {
    onConsoleLog: (log) => !isInfoLine(log) && !log.includes("SERVICE_MISCONFIGURED"),
    projects: [
      {
        plugins: [
          cloudflareTest(({ inject }) => {
            const fake = inject("fakeProvidersUrl");
            return {
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                bindings: {
                  TEST_MIGRATIONS: migrations,
                  FAKE_PROVIDERS_URL: fake,
                  PAYOS_CLIENT_ID: FAKE_KEYS.payos.clientId,
                  PAYOS_API_KEY: FAKE_KEYS.payos.apiKey,
                  PAYOS_CHECKSUM_KEY: FAKE_KEYS.payos.checksumKey,
                  PAYOS_API_BASE: `${fake}/payos`,
                  ZALOPAY_APP_ID: FAKE_KEYS.zalopay.appId,
                  ZALOPAY_KEY1: FAKE_KEYS.zalopay.key1,
                  ZALOPAY_KEY2: FAKE_KEYS.zalopay.key2,
                  ZALOPAY_API_BASE: `${fake}/zalopay`,
                  VNPAY_TMN_CODE: FAKE_KEYS.vnpay.tmnCode,
                  VNPAY_HASH_SECRET: FAKE_KEYS.vnpay.hashSecret,
                  VNPAY_PAY_URL: `${fake}/vnpay/paymentv2/vpcpay.html`,
                  VNPAY_API_URL: `${fake}/vnpay/merchant_webapi/api/transaction`,
                  SANDBOX_WEBHOOK_SECRET: FAKE_KEYS.sandbox.secret,
                },
                // Test-only: lets a test put a message straight onto a dead-letter queue.
                queueProducers: { TEST_PAYMENT_EVENTS_DLQ: { queueName: "tb-payment-events-dlq" } },
              },
            };
          }),
        ],
        test: {
          ...shared,
          name: "runtime",
          globalSetup: ["./tests/runtime/fake-providers.ts"],
          include: ["tests/runtime/**/*.spec.ts"],
          exclude: ["tests/runtime/deployed/**"],
        },
      },
      // Production with the bot check on (TURNSTILE_SECRET), its verified-email rule and its
      // mail API, against fakes of siteverify and the mail API at their configured URLs.
      {
        plugins: [
          cloudflareTest(({ inject }) => {
            const fake = inject("fakeProvidersUrl");
            return {
              wrangler: { configPath: DEPLOYED_CONFIG, environment: "production" },
              miniflare: {
                bindings: {
                  TEST_MIGRATIONS: migrations,
                  ...DEPLOYED_SECRETS,
                  FAKE_PROVIDERS_URL: fake,
                  TURNSTILE_SECRET: FAKE_KEYS.turnstile.secret,
                  TURNSTILE_SITE_KEY: FAKE_KEYS.turnstile.siteKey,
                  MAIL_API_URL: "https://mail-api.test/emails",
                  VNPAY_PAY_URL: "https://pay.vnpay.vn/vpcpay.html",
                  ZALOPAY_API_BASE: "https://openapi.zalopay.vn",
                },
                outboundService: fakeOutbound(fake),
              },
            };
          }),
        ],
        test: {
          ...shared,
          name: "production-guarded",
          globalSetup: ["./tests/runtime/fake-providers.ts"],
          include: ["tests/runtime/deployed/production-guarded.spec.ts"],
        },
      },
      deployed("production", "production", {
        VNPAY_PAY_URL: "https://pay.vnpay.vn/vpcpay.html",
        ZALOPAY_API_BASE: "https://openapi.zalopay.vn",
      }),
      deployed("staging", "staging", {
        VNPAY_PAY_URL: "https://sandbox.vnpayment.vn/paymentv2/vpcpay.html",
        ZALOPAY_API_BASE: "https://sb-openapi.zalopay.vn",
      }),
      deployed("production-example-secrets", "production", {
        ...EXAMPLE_SECRETS,
        EXAMPLE_SECRET_NAMES: Object.keys(EXAMPLE_SECRETS).join(","),
        VNPAY_PAY_URL: "https://pay.vnpay.vn/vpcpay.html",
        ZALOPAY_API_BASE: "https://openapi.zalopay.vn",
      }),
      deployed("production-misconfigured", "production", {
        JWT_SECRET: "too-short",
        SANDBOX_PAYMENTS: "enabled",
        SANDBOX_WEBHOOK_SECRET: "dev-only-sandbox-secret",
        DEV_MAILBOX: "enabled",
        PAYOS_API_KEY: "",
        VNPAY_PAY_URL: "https://sandbox.vnpayment.vn/paymentv2/vpcpay.html",
        ZALOPAY_API_BASE: "https://openapi.zalopay.vn",
        ADMIN_EMAILS: "ops@example.com,admin@ticketbottle.dev",
      }),
    ],
  },
});
