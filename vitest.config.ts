// Runtime tests: the built Rust Worker runs in workerd through Miniflare, configured from
// wrangler.toml (D1, the EventHub Durable Object, queues, rate limiters, assets).
// `npm test` builds the Worker first; this plugin does not run [build]. Payment providers
// are local fakes (tests/runtime/fake-providers.ts) on 127.0.0.1: no test touches the internet.
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import { FAKE_KEYS } from "./tests/runtime/fake-providers";

const migrations = await readD1Migrations(fileURLToPath(new URL("./migrations", import.meta.url)));

export default defineConfig({
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
            SANDBOX_WEBHOOK_SECRET: FAKE_KEYS.sandbox.secret,
          },
        },
      };
    }),
  ],
  test: {
    include: ["tests/runtime/**/*.spec.ts"],
    globalSetup: ["./tests/runtime/fake-providers.ts"],
    setupFiles: ["./tests/runtime/setup.ts"],
    testTimeout: 30_000,
    // The Worker logs one JSON line per request; keep test output readable.
    onConsoleLog: (log) => !log.includes('"msg":"request"'),
  },
});
