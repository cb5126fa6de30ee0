// Crafts HS256 JWTs inside the test runtime (WebCrypto) to probe the token checks.
const enc = new TextEncoder();

function b64url(bytes: Uint8Array | string): string {
  const data = typeof bytes === "string" ? enc.encode(bytes) : bytes;
  let s = "";
  for (const b of data) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export async function signJwt(
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
  secret: string,
  hash: "SHA-256" | "SHA-512" = "SHA-256",
): Promise<string> {
  const head = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash }, false, ["sign"]);
  const sig = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(head)));
  return `${head}.${b64url(sig)}`;
}

export function unsignedJwt(claims: Record<string, unknown>): string {
  return `${b64url(JSON.stringify({ alg: "none", typ: "JWT" }))}.${b64url(JSON.stringify(claims))}.`;
}

export function accessClaims(sub: string, overrides: Record<string, unknown> = {}) {
  const now = Math.floor(Date.now() / 1000);
  return {
    sub,
    role: "user",
    iss: "ticketbottle-edge",
    aud: "ticketbottle-api",
    iat: now,
    exp: now + 3600,
    ...overrides,
  };
}
