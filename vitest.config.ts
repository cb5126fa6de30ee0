// Runtime tests: the built Rust Worker runs in workerd through Miniflare, configured from
// wrangler.toml (D1, the EventHub Durable Object, queues, rate limiters, assets).
// `npm test` builds the Worker first; this plugin does not run [build].
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

const migrations = await readD1Migrations(fileURLToPath(new URL("./migrations", import.meta.url)));

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: { TEST_MIGRATIONS: migrations },
      },
    }),
  ],
  test: {
    include: ["tests/runtime/**/*.spec.ts"],
    setupFiles: ["./tests/runtime/setup.ts"],
    testTimeout: 30_000,
    // The Worker logs one JSON line per request; keep test output readable.
    onConsoleLog: (log) => !log.includes('"msg":"request"'),
  },
});
