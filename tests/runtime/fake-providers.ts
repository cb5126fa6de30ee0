// Local fake payment providers for the runtime tests (a vitest globalSetup, running in Node):
// they speak PayOS's and ZaloPay's create-payment APIs, VNPay's merchant API (refund, querydr),
// ZaloPay's refund, refund query and order query, and PayOS's payment-request status, on
// 127.0.0.1; check the requests' credentials and signatures like the real ones do, and can be
// told to fail or hang. Tests drive them through `/__mode`, `/__paid` (a payment the provider
// took whose notification is lost), `/__failNext` and read `/__calls` and `/__refunds`.
// Also Turnstile's siteverify and an HTTP mail API, under /<host>/<path> of the hosts they fake
// (vitest.config.ts routes the Worker's requests for those hosts here).
import { createHmac } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { TestProject } from "vitest/node";

export const FAKE_KEYS = {
  payos: { clientId: "test-payos-client", apiKey: "test-payos-api-key", checksumKey: "test-payos-checksum-key" },
  zalopay: { appId: "2553", key1: "test-zalopay-key1", key2: "test-zalopay-key2" },
  vnpay: { tmnCode: "TESTTMN1", hashSecret: "test-vnpay-hash-secret" },
  sandbox: { secret: "test-sandbox-secret" },
  turnstile: { secret: "test-turnstile-secret", siteKey: "0x4AAAAAAA-test-site-key" },
  mail: { apiKey: "test-mail-api-key" },
};

/** Hosts whose HTTPS APIs this server fakes, as `/<host>/<path>`. */
export const FAKED_HOSTS = ["challenges.cloudflare.com", "mail-api.test"];

type Mode = "ok" | "down" | "hang";
const modes: Record<string, Mode> = { payos: "ok", zalopay: "ok", mail: "ok" };
const calls: Record<string, number> = { payos: 0, zalopay: 0, vnpay: 0 };
/** Payments the provider took, by its reference (VNPay TxnRef, ZaloPay app_trans_id, PayOS orderCode). */
const paid: Record<string, { amount: number; txn: string }> = {};
/** Refunds the provider made, by its key (VNPay TxnRef, ZaloPay m_refund_id), with how often each was asked for. */
const refunds: Record<string, { amount: number; requests: number; ref: string }> = {};
/** Endpoints told to fail their next calls: `vnpay_refund`, `zalopay_refund` (503), `zalopay_refund_processing` (return_code 3). */
const failNext: Record<string, number> = {};
const take = (name: string) => {
  if ((failNext[name] ?? 0) <= 0) return false;
  failNext[name] -= 1;
  return true;
};
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

/** VNPay's merchant-API answer hash fields, in its documented order. */
const VNPAY_RESPONSE_FIELDS = [
  "vnp_ResponseId", "vnp_Command", "vnp_ResponseCode", "vnp_Message", "vnp_TmnCode", "vnp_TxnRef", "vnp_Amount",
  "vnp_BankCode", "vnp_PayDate", "vnp_TransactionNo", "vnp_TransactionType", "vnp_TransactionStatus", "vnp_OrderInfo",
];

/** PayOS's canonical `data` string: keys sorted, arrays as JSON of key-sorted objects, null as empty. */
function payosCanonical(data: Record<string, unknown>): string {
  const sortKeys = (o: any) => Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
  return Object.keys(data).sort().map((k) => {
    const v = data[k];
    if (Array.isArray(v)) return `${k}=${JSON.stringify(v.map(sortKeys))}`;
    if (v === null || v === undefined || v === "null" || v === "undefined") return `${k}=`;
    return `${k}=${v}`;
  }).join("&");
}

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
    if (url.pathname === "/__paid" && req.method === "POST") {
      const p = JSON.parse(text);
      paid[String(p.ref)] = { amount: p.amount, txn: String(p.txn) };
      return json(200, paid);
    }
    if (url.pathname === "/__failNext" && req.method === "POST") {
      Object.assign(failNext, JSON.parse(text));
      return json(200, failNext);
    }
    if (url.pathname === "/__refunds") return json(200, refunds);
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
    if (provider === "payos" || provider === "zalopay" || provider === "vnpay") {
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
    if (url.pathname.startsWith("/payos/v2/payment-requests/") && req.method === "GET") {
      const k = FAKE_KEYS.payos;
      if (req.headers["x-client-id"] !== k.clientId || req.headers["x-api-key"] !== k.apiKey) {
        return json(200, { code: "401", desc: "Unauthorized", data: null });
      }
      const orderCode = url.pathname.split("/").pop() ?? "";
      const p = paid[orderCode];
      const data: Record<string, unknown> = {
        id: `plink${orderCode}`, orderCode: Number(orderCode), amount: p?.amount ?? 0, amountPaid: p?.amount ?? 0,
        amountRemaining: 0, status: p ? "PAID" : "PENDING", createdAt: "2026-11-26T10:00:00+07:00",
        transactions: p ? [{ reference: p.txn, amount: p.amount, accountNumber: "0123456789", description: "TB", transactionDateTime: "2026-11-26 10:00:00" }] : [],
        canceledAt: null, cancellationReason: null,
      };
      return json(200, { code: "00", desc: "success", data, signature: hmac(k.checksumKey, payosCanonical(data)) });
    }
    if (url.pathname === "/vnpay/merchant_webapi/api/transaction" && req.method === "POST") {
      const k = FAKE_KEYS.vnpay;
      const b = JSON.parse(text);
      const sign = (r: Record<string, unknown>, fields: string[]) => ({
        ...r, vnp_SecureHash: hmac(k.hashSecret, fields.map((f) => (r[f] === undefined ? "" : String(r[f]))).join("|"), "sha512"),
      });
      const base = { vnp_ResponseId: `r${Date.now()}`, vnp_Command: b.vnp_Command, vnp_TmnCode: k.tmnCode, vnp_TxnRef: b.vnp_TxnRef };
      if (b.vnp_Command === "refund") {
        const input = [b.vnp_RequestId, b.vnp_Version, "refund", b.vnp_TmnCode, b.vnp_TransactionType, b.vnp_TxnRef, b.vnp_Amount,
          b.vnp_TransactionNo, b.vnp_TransactionDate, b.vnp_CreateBy, b.vnp_CreateDate, b.vnp_IpAddr, b.vnp_OrderInfo].map(String).join("|");
        if (b.vnp_TmnCode !== k.tmnCode || hmac(k.hashSecret, input, "sha512") !== b.vnp_SecureHash) {
          return json(200, { ...base, vnp_ResponseCode: "97", vnp_Message: "Invalid checksum" });
        }
        if (take("vnpay_refund")) return json(503, { error: "maintenance" });
        const key = String(b.vnp_TxnRef);
        const known = refunds[key];
        refunds[key] = { amount: b.vnp_Amount / 100, requests: (known?.requests ?? 0) + 1, ref: key };
        const r = { ...base, vnp_ResponseCode: known ? "94" : "00", vnp_Message: known ? "Duplicate request" : "Refund success",
          vnp_Amount: String(b.vnp_Amount), vnp_BankCode: "NCB", vnp_PayDate: b.vnp_CreateDate, vnp_TransactionNo: known ? "" : `9${Date.now() % 1e7}`,
          vnp_TransactionType: b.vnp_TransactionType, vnp_TransactionStatus: "05", vnp_OrderInfo: b.vnp_OrderInfo };
        return json(200, sign(r, VNPAY_RESPONSE_FIELDS));
      }
      if (b.vnp_Command === "querydr") {
        const input = [b.vnp_RequestId, b.vnp_Version, "querydr", b.vnp_TmnCode, b.vnp_TxnRef, b.vnp_TransactionDate, b.vnp_CreateDate, b.vnp_IpAddr, b.vnp_OrderInfo].map(String).join("|");
        if (b.vnp_TmnCode !== k.tmnCode || hmac(k.hashSecret, input, "sha512") !== b.vnp_SecureHash) {
          return json(200, { ...base, vnp_ResponseCode: "97", vnp_Message: "Invalid checksum" });
        }
        const p = paid[String(b.vnp_TxnRef)];
        const r = { ...base, vnp_ResponseCode: "00", vnp_Message: "QueryDR Success", vnp_Amount: String((p?.amount ?? 0) * 100),
          vnp_OrderInfo: "Thanh toan", vnp_BankCode: p ? "NCB" : "", vnp_PayDate: p ? "20261126100000" : "", vnp_TransactionNo: p ? p.txn : "0",
          vnp_TransactionType: "01", vnp_TransactionStatus: p ? "00" : "01", vnp_PromotionCode: "", vnp_PromotionAmount: "" };
        return json(200, sign(r, [...VNPAY_RESPONSE_FIELDS, "vnp_PromotionCode", "vnp_PromotionAmount"]));
      }
      return json(200, { vnp_ResponseCode: "03", vnp_Message: "Unknown command" });
    }
    if (url.pathname === "/zalopay/v2/refund" && req.method === "POST") {
      const k = FAKE_KEYS.zalopay;
      const p = new URLSearchParams(text);
      const input = [p.get("app_id"), p.get("zp_trans_id"), p.get("amount"), p.get("description"), p.get("timestamp")].join("|");
      if (p.get("app_id") !== k.appId || hmac(k.key1, input) !== p.get("mac")) {
        return json(200, { return_code: 2, return_message: "mac invalid", sub_return_code: -402, sub_return_message: "mac invalid" });
      }
      if (take("zalopay_refund")) return json(503, { error: "maintenance" });
      const key = p.get("m_refund_id") ?? "";
      const known = refunds[key];
      refunds[key] = { amount: Number(p.get("amount")), requests: (known?.requests ?? 0) + 1, ref: p.get("zp_trans_id") ?? "" };
      const processing = take("zalopay_refund_processing");
      return json(200, {
        return_code: processing ? 3 : 1, return_message: processing ? "processing" : "success",
        sub_return_code: processing ? 2 : 1, sub_return_message: "", refund_id: 26000000 + Object.keys(refunds).length,
      });
    }
    if (url.pathname === "/zalopay/v2/query_refund" && req.method === "POST") {
      const k = FAKE_KEYS.zalopay;
      const p = new URLSearchParams(text);
      const input = [p.get("app_id"), p.get("m_refund_id"), p.get("timestamp")].join("|");
      if (p.get("app_id") !== k.appId || hmac(k.key1, input) !== p.get("mac")) {
        return json(200, { return_code: 2, return_message: "mac invalid", sub_return_code: -402, sub_return_message: "mac invalid" });
      }
      const known = refunds[p.get("m_refund_id") ?? ""];
      return json(200, known
        ? { return_code: 1, return_message: "success", sub_return_code: 1, sub_return_message: "" }
        : { return_code: 2, return_message: "not found", sub_return_code: -101, sub_return_message: "refund not found" });
    }
    if (url.pathname === "/zalopay/v2/query" && req.method === "POST") {
      const k = FAKE_KEYS.zalopay;
      const p = new URLSearchParams(text);
      const input = [p.get("app_id"), p.get("app_trans_id"), k.key1].join("|");
      if (p.get("app_id") !== k.appId || hmac(k.key1, input) !== p.get("mac")) {
        return json(200, { return_code: 2, return_message: "mac invalid", sub_return_code: -402, sub_return_message: "mac invalid" });
      }
      const t = paid[p.get("app_trans_id") ?? ""];
      return json(200, t
        ? { return_code: 1, return_message: "success", sub_return_code: 1, is_processing: false, amount: t.amount, zp_trans_id: Number(t.txn) }
        : { return_code: 3, return_message: "processing", sub_return_code: 0, is_processing: true, amount: 0, zp_trans_id: 0 });
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
