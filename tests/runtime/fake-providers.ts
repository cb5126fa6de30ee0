// Local fake payment providers for the runtime tests (a vitest globalSetup, running in Node):
// they speak PayOS's and ZaloPay's create-payment APIs on 127.0.0.1, check the requests'
// credentials and signatures like the real ones do, and can be told to fail or hang. Also
// Turnstile's siteverify and an HTTP mail API, under /<host>/<path> of the hosts they fake
// (vitest.config.ts routes the Worker's requests for those hosts here).
import { createHmac } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { TestProject } from "vitest/node";

export const FAKE_KEYS = {
  payos: { clientId: "test-payos-client", apiKey: "test-payos-api-key", checksumKey: "test-payos-checksum-key" },
  zalopay: { appId: "2553", key1: "test-zalopay-key1", key2: "test-zalopay-key2" },
  vnpay: { tmnCode: "TESTTMN1", hashSecret: "test-vnpay-hash-secret" },
  sandbox: { secret: "test-sandbox-secret" },
  turnstile: { secret: "test-turnstile-secret" },
  mail: { apiKey: "test-mail-api-key" },
};

/** Hosts whose HTTPS APIs this server fakes, as `/<host>/<path>`. */
export const FAKED_HOSTS = ["challenges.cloudflare.com", "mail-api.test"];

type Mode = "ok" | "down" | "hang";
const modes: Record<string, Mode> = { payos: "ok", zalopay: "ok", mail: "ok" };
const calls: Record<string, number> = { payos: 0, zalopay: 0 };
/** What siteverify was asked, and the mails the mail API accepted (newest last). */
const siteverifyRequests: unknown[] = [];
const mails: { idempotencyKey: string | undefined; from: string; to: string[]; subject: string; text: string }[] = [];
let mailAttempts = 0;

function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let data = "";
    req.on("data", (c) => (data += c));
    req.on("end", () => resolve(data));
  });
}

const hmac = (key: string, msg: string, alg = "sha256") => createHmac(alg, key).update(msg).digest("hex");

export default async function setup(project: TestProject) {
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://fake");
    const text = await body(req);
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(value));
    };
    if (url.pathname === "/__mode" && req.method === "POST") {
      Object.assign(modes, JSON.parse(text));
      return json(200, { modes, calls });
    }
    if (url.pathname === "/__calls") return json(200, calls);
    if (url.pathname === "/__siteverify") return json(200, siteverifyRequests);
    if (url.pathname === "/__mail") return json(200, { attempts: mailAttempts, mails });
    // Turnstile: a token passes when it starts with "pass" and the secret is the test one.
    if (url.pathname === "/challenges.cloudflare.com/turnstile/v0/siteverify" && req.method === "POST") {
      const b = JSON.parse(text || "{}");
      siteverifyRequests.push(b);
      if (b.secret !== FAKE_KEYS.turnstile.secret) return json(200, { success: false, "error-codes": ["invalid-input-secret"] });
      if (typeof b.response === "string" && b.response.startsWith("pass")) {
        return json(200, { success: true, "error-codes": [], challenge_ts: new Date().toISOString(), hostname: "tb.test" });
      }
      return json(200, { success: false, "error-codes": ["invalid-input-response"] });
    }
    // An HTTP mail API (Resend's shape): Bearer key, JSON {from, to, subject, text}.
    if (url.pathname === "/mail-api.test/emails" && req.method === "POST") {
      mailAttempts += 1;
      if (req.headers.authorization !== `Bearer ${FAKE_KEYS.mail.apiKey}`) return json(401, { message: "bad key" });
      if (modes.mail === "down") return json(503, { message: "try later" });
      const key = req.headers["idempotency-key"] as string | undefined;
      // Like the real APIs: a repeated idempotency key is not sent twice.
      if (!key || !mails.some((m) => m.idempotencyKey === key)) mails.push({ idempotencyKey: key, ...JSON.parse(text) });
      return json(200, { id: `email-${mails.length}` });
    }
    const provider = url.pathname.split("/")[1];
    if (provider === "payos" || provider === "zalopay") {
      calls[provider] += 1;
      if (modes[provider] === "down") return json(503, { error: "maintenance" });
      if (modes[provider] === "hang") return; // never answers: the Worker must time out
    }
    if (url.pathname === "/payos/v2/payment-requests" && req.method === "POST") {
      const k = FAKE_KEYS.payos;
      if (req.headers["x-client-id"] !== k.clientId || req.headers["x-api-key"] !== k.apiKey) {
        return json(200, { code: "401", desc: "Unauthorized", data: null });
      }
      const b = JSON.parse(text);
      const canonical = `amount=${b.amount}&cancelUrl=${b.cancelUrl}&description=${b.description}&orderCode=${b.orderCode}&returnUrl=${b.returnUrl}`;
      if (hmac(k.checksumKey, canonical) !== b.signature) return json(200, { code: "20", desc: "Invalid signature", data: null });
      return json(200, {
        code: "00",
        desc: "success",
        data: { checkoutUrl: `https://pay.payos.test/web/${b.orderCode}`, paymentLinkId: `plink${b.orderCode}`, orderCode: b.orderCode, amount: b.amount, status: "PENDING" },
      });
    }
    if (url.pathname === "/zalopay/v2/create" && req.method === "POST") {
      const k = FAKE_KEYS.zalopay;
      const p = new URLSearchParams(text);
      const input = [p.get("app_id"), p.get("app_trans_id"), p.get("app_user"), p.get("amount"), p.get("app_time"), p.get("embed_data"), p.get("item")].join("|");
      if (p.get("app_id") !== k.appId || hmac(k.key1, input) !== p.get("mac")) {
        return json(200, { return_code: 2, return_message: "mac invalid", sub_return_code: -402, sub_return_message: "mac invalid" });
      }
      return json(200, { return_code: 1, return_message: "success", order_url: `https://sb-openapi.zalopay.test/order/${p.get("app_trans_id")}`, zp_trans_token: `zp${p.get("app_trans_id")}` });
    }
    json(404, { error: "no such fake endpoint" });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  project.provide("fakeProvidersUrl", `http://127.0.0.1:${port}`);
  return async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
}

declare module "vitest" {
  export interface ProvidedContext {
    fakeProvidersUrl: string;
  }
}
