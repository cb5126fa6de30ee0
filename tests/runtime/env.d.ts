declare module "cloudflare:test" {
  interface ProvidedEnv {
    DB: D1Database;
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
    EVENT_HUB: DurableObjectNamespace;
    EVENT_DOOR: DurableObjectNamespace;
    QUEUE_SHARD: DurableObjectNamespace;
    JWT_SECRET: string;
  }
}

// Vite's `?raw` imports: a file's text (routes.spec.ts reads the endpoint declaration).
declare module "*?raw" {
  const text: string;
  export default text;
}
