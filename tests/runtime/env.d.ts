declare module "cloudflare:test" {
  interface ProvidedEnv {
    DB: D1Database;
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
    EVENT_HUB: DurableObjectNamespace;
    EVENT_DOOR: DurableObjectNamespace;
    JWT_SECRET: string;
  }
}
