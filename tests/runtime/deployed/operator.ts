// A verified platform admin written straight into D1, for deployments that refuse every request
// but health (so nobody can register through the API), and a token for it.
import { env } from "cloudflare:test";
import { accessClaims, signJwt } from "../tokens";

export async function operatorToken(email: string, jwtSecret: string): Promise<string> {
  const id = `op-${crypto.randomUUID()}`;
  const now = Date.now();
  await (env as any).DB.prepare(
    "INSERT INTO users (id, email, password_hash, first_name, last_name, email_verified, created_at, updated_at) VALUES (?1, ?2, 'unused', 'Ops', 'Admin', 1, ?3, ?3)",
  )
    .bind(id, email, now)
    .run();
  return signJwt({ alg: "HS256" }, accessClaims(id, { role: "admin" }), jwtSecret);
}
