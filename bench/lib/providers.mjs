// Fake payment providers for the flash crowd: PayOS's and ZaloPay's create-payment APIs on
// 127.0.0.1 (ephemeral port), checking the Worker's credentials and signatures as the real ones
// do, and answering each call the way `route` says: normally, with the provider's refusal, with
// HTTP 5xx, by dropping the connection, or never (so the Worker's provider timeout fires).
// Also the signers for the notifications PayOS, VNPay and ZaloPay send back to the Worker
// (keyed: `npm run dev`'s stand-ins, scripts/dev-providers.mjs, sign with .dev.vars' keys), and
// the providers' refund and status APIs (VNPay's merchant API `refund`/`querydr`, ZaloPay's
// `/v2/refund`, `/v2/query_refund`, `/v2/query`, PayOS's `GET /v2/payment-requests/{id}`),
// answering from `paid` (payments the provider took, notified or not) and recording `refunds`.
// Self-contained on purpose: the runtime tests have their own fake (tests/runtime), with modes
// switched globally, which a crowd of concurrent buyers with different plans cannot share.
import { createHmac } from "node:crypto";
import { createServer } from "node:http";

/** Credentials the bench gives the Worker (as bindings) and the fakes check. Not secrets. */
export const BENCH_KEYS = {
  payos: { clientId: "bench-payos-client", apiKey: "bench-payos-api-key", checksumKey: "bench-payos-checksum-key" },
  zalopay: { appId: "2553", key1: "bench-zalopay-key1", key2: "bench-zalopay-key2" },
  vnpay: { tmnCode: "BENCHTMN", hashSecret: "bench-vnpay-hash-secret" },
};

/** What a fake can do with one create call. */
export const MODES = ["ok", "reject", "5xx", "reset", "hang"];

/** The Worker bindings that point its providers at the fakes under `url`. */
export function providerBindings(url) {
  const k = BENCH_KEYS;
  return {
    PAYOS_API_BASE: `${url}/payos`, PAYOS_CLIENT_ID: k.payos.clientId, PAYOS_API_KEY: k.payos.apiKey, PAYOS_CHECKSUM_KEY: k.payos.checksumKey,
    ZALOPAY_API_BASE: `${url}/zalopay`, ZALOPAY_APP_ID: k.zalopay.appId, ZALOPAY_KEY1: k.zalopay.key1, ZALOPAY_KEY2: k.zalopay.key2,
    // VNPay's payment page is a signed redirect the Worker never calls; its merchant API is.
    VNPAY_PAY_URL: `${url}/vnpay/paymentv2/vpcpay.html`, VNPAY_TMN_CODE: k.vnpay.tmnCode, VNPAY_HASH_SECRET: k.vnpay.hashSecret,
    VNPAY_API_URL: `${url}/vnpay/merchant_webapi/api/transaction`,
  };
}

const hmac = (alg, key, msg) => createHmac(alg, key).update(msg).digest("hex");

/** PayOS's canonical form of a flat data object (sorted keys, `k=v` joined by `&`). */
export const payosCanonical = (data) => Object.keys(data).sort().map((k) => `${k}=${data[k] ?? ""}`).join("&");

/** The signature PayOS puts beside a flat `data` object (its answers and its webhooks). */
export const payosSignature = (data, checksumKey) => hmac("sha256", checksumKey, payosCanonical(data));

/** PayOS's canonical string of a create-payment request, which the merchant signs. */
export const payosCreateCanonical = (b) =>
  `amount=${b.amount}&cancelUrl=${b.cancelUrl}&description=${b.description}&orderCode=${b.orderCode}&returnUrl=${b.returnUrl}`;

/** ZaloPay's create-order MAC input, signed with key1. */
export const zalopayCreateInput = (p) => ["app_id", "app_trans_id", "app_user", "amount", "app_time", "embed_data", "item"].map((n) => p.get(n)).join("|");

/**
 * Starts the fakes. `route({ provider, orderRef, appUser, orderCode })` resolves to one of
 * MODES for that call (`orderRef`: PayOS's orderCode or ZaloPay's app_trans_id; `appUser`:
 * ZaloPay's buyer id; `orderCode`: our order code, from PayOS's return URL).
 * Returns `{ url, stats, zalopayOrders, paid, refunds, close }`: `stats` counts calls by provider
 * and outcome; `zalopayOrders` maps a buyer id to the last ZaloPay order created for it
 * ({ appTransId, amount, appTime }), what ZaloPay puts in its callback; `paid` maps a provider
 * reference (VNPay TxnRef, ZaloPay app_trans_id, PayOS orderCode) to `{ amount, txn }` for
 * payments the provider took (set it for a payment whose notification is to be lost);
 * `refunds` maps the provider's refund key (VNPay TxnRef, ZaloPay m_refund_id) to
 * `{ amount, requests, txn }` (`txn`: the refunded transaction). `refundRoute({ provider, kind })` (`kind`: "refund", "refund-query",
 * "status") picks a mode for those calls: "ok", "5xx", "reset", "hang" or, for refunds,
 * "processing" (ZaloPay return_code 3).
 */
export async function startFakeProviders({ route, refundRoute = async () => "ok" }) {
  const stats = {};
  const zalopayOrders = new Map();
  const paid = new Map();
  const refunds = new Map();
  const count = (k) => { stats[k] = (stats[k] ?? 0) + 1; };
  const hanging = new Set();
  const server = createServer((req, res) => {
    let text = "";
    req.on("data", (c) => (text += c));
    req.on("end", () => handle(req, res, text).catch(() => { count("fake error"); if (!res.headersSent) { res.writeHead(500); res.end(); } }));
  });

  const isMoneyBack = (path, method) =>
    (path === "/vnpay/merchant_webapi/api/transaction" && method === "POST") ||
    (["/zalopay/v2/refund", "/zalopay/v2/query_refund", "/zalopay/v2/query"].includes(path) && method === "POST") ||
    (path.startsWith("/payos/v2/payment-requests/") && method === "GET");

  async function moneyBack(req, res, path, text, json) {
    const vnFields = ["vnp_ResponseId", "vnp_Command", "vnp_ResponseCode", "vnp_Message", "vnp_TmnCode", "vnp_TxnRef", "vnp_Amount",
      "vnp_BankCode", "vnp_PayDate", "vnp_TransactionNo", "vnp_TransactionType", "vnp_TransactionStatus", "vnp_OrderInfo"];
    const vnSign = (r, fields) => ({ ...r, vnp_SecureHash: hmac("sha512", BENCH_KEYS.vnpay.hashSecret, fields.map((f) => (r[f] ?? "")).join("|")) });
    let provider;
    let kind;
    let answer; // () => [status, body]
    if (path.startsWith("/vnpay/")) {
      provider = "vnpay";
      const k = BENCH_KEYS.vnpay;
      const b = JSON.parse(text);
      const base = { vnp_ResponseId: `r${Date.now()}`, vnp_Command: b.vnp_Command, vnp_TmnCode: k.tmnCode, vnp_TxnRef: b.vnp_TxnRef };
      const fields = b.vnp_Command === "refund"
        ? [b.vnp_RequestId, b.vnp_Version, "refund", b.vnp_TmnCode, b.vnp_TransactionType, b.vnp_TxnRef, b.vnp_Amount, b.vnp_TransactionNo,
          b.vnp_TransactionDate, b.vnp_CreateBy, b.vnp_CreateDate, b.vnp_IpAddr, b.vnp_OrderInfo]
        : [b.vnp_RequestId, b.vnp_Version, "querydr", b.vnp_TmnCode, b.vnp_TxnRef, b.vnp_TransactionDate, b.vnp_CreateDate, b.vnp_IpAddr, b.vnp_OrderInfo];
      if (b.vnp_TmnCode !== k.tmnCode || hmac("sha512", k.hashSecret, fields.map(String).join("|")) !== b.vnp_SecureHash) {
        count("vnpay refused bad credentials or signature");
        return json(200, { ...base, vnp_ResponseCode: "97", vnp_Message: "Invalid checksum" });
      }
      kind = b.vnp_Command === "refund" ? "refund" : "status";
      answer = () => {
        if (kind === "refund") {
          const known = refunds.get(String(b.vnp_TxnRef));
          refunds.set(String(b.vnp_TxnRef), { amount: b.vnp_Amount / 100, requests: (known?.requests ?? 0) + 1, txn: String(b.vnp_TransactionNo) });
          return [200, vnSign({ ...base, vnp_ResponseCode: known ? "94" : "00", vnp_Message: known ? "Duplicate request" : "Refund success",
            vnp_Amount: String(b.vnp_Amount), vnp_BankCode: "NCB", vnp_PayDate: String(b.vnp_CreateDate), vnp_TransactionNo: known ? "" : `9${Date.now() % 1e7}`,
            vnp_TransactionType: b.vnp_TransactionType, vnp_TransactionStatus: "05", vnp_OrderInfo: b.vnp_OrderInfo }, vnFields)];
        }
        const p = paid.get(String(b.vnp_TxnRef));
        return [200, vnSign({ ...base, vnp_ResponseCode: "00", vnp_Message: "QueryDR Success", vnp_Amount: String((p?.amount ?? 0) * 100),
          vnp_OrderInfo: "Thanh toan", vnp_BankCode: p ? "NCB" : "", vnp_PayDate: p ? "20261126100000" : "", vnp_TransactionNo: p ? String(p.txn) : "0",
          vnp_TransactionType: "01", vnp_TransactionStatus: p ? "00" : "01", vnp_PromotionCode: "", vnp_PromotionAmount: "" },
        [...vnFields, "vnp_PromotionCode", "vnp_PromotionAmount"])];
      };
    } else if (path.startsWith("/zalopay/")) {
      provider = "zalopay";
      const k = BENCH_KEYS.zalopay;
      const p = new URLSearchParams(text);
      const macInput = path === "/zalopay/v2/refund"
        ? ["app_id", "zp_trans_id", "amount", "description", "timestamp"].map((n) => p.get(n)).join("|")
        : path === "/zalopay/v2/query_refund"
          ? ["app_id", "m_refund_id", "timestamp"].map((n) => p.get(n)).join("|")
          : `${p.get("app_id")}|${p.get("app_trans_id")}|${k.key1}`;
      if (p.get("app_id") !== k.appId || hmac("sha256", k.key1, macInput) !== p.get("mac")) {
        count("zalopay refused bad credentials or signature");
        return json(200, { return_code: 2, return_message: "mac invalid", sub_return_code: -402, sub_return_message: "mac invalid" });
      }
      kind = path === "/zalopay/v2/refund" ? "refund" : path === "/zalopay/v2/query_refund" ? "refund-query" : "status";
      answer = (mode) => {
        if (kind === "refund") {
          const key = p.get("m_refund_id");
          const known = refunds.get(key);
          refunds.set(key, { amount: Number(p.get("amount")), requests: (known?.requests ?? 0) + 1, txn: p.get("zp_trans_id") });
          const processing = mode === "processing";
          return [200, { return_code: processing ? 3 : 1, return_message: processing ? "processing" : "success", sub_return_code: processing ? 2 : 1, refund_id: 26e6 + refunds.size }];
        }
        if (kind === "refund-query") {
          return [200, refunds.has(p.get("m_refund_id")) ? { return_code: 1, return_message: "success" } : { return_code: 2, sub_return_code: -101, sub_return_message: "refund not found" }];
        }
        const t = paid.get(p.get("app_trans_id"));
        return [200, t ? { return_code: 1, amount: t.amount, zp_trans_id: Number(t.txn), is_processing: false } : { return_code: 3, is_processing: true }];
      };
    } else {
      provider = "payos";
      kind = "status";
      const k = BENCH_KEYS.payos;
      if (req.headers["x-client-id"] !== k.clientId || req.headers["x-api-key"] !== k.apiKey) {
        count("payos refused bad credentials or signature");
        return json(200, { code: "401", desc: "Unauthorized", data: null });
      }
      const orderCode = path.split("/").pop();
      answer = () => {
        const p = paid.get(orderCode);
        const data = { id: `plink${orderCode}`, orderCode: Number(orderCode), amount: p?.amount ?? 0, amountPaid: p?.amount ?? 0, amountRemaining: 0,
          status: p ? "PAID" : "PENDING", createdAt: "2026-11-26T10:00:00+07:00", canceledAt: null, cancellationReason: null };
        // No transactions array: the link id names the payment, as PayOS's webhook fallback does.
        return [200, { code: "00", desc: "success", data, signature: hmac("sha256", k.checksumKey, payosCanonical(data)) }];
      };
    }
    const mode = await refundRoute({ provider, kind });
    count(`${provider} ${kind} ${mode}`);
    switch (mode) {
      case "5xx": return json(503, { error: "maintenance" });
      case "reset": req.socket.destroy(); return;
      case "hang": hanging.add(res); res.on("close", () => hanging.delete(res)); return;
      default: { const [status, body] = answer(mode); return json(status, body); }
    }
  }

  async function handle(req, res, text) {
    const json = (status, value) => { res.writeHead(status, { "Content-Type": "application/json" }); res.end(JSON.stringify(value)); };
    const path = new URL(req.url ?? "/", "http://fake").pathname;
    let provider;
    let orderRef;
    let appUser;
    let orderCode;
    let refuse; // the provider's own answer to a request with wrong credentials or signature
    let ok; // builds the normal answer
    let rejected; // the provider's refusal of a well-formed request
    if (path === "/payos/v2/payment-requests" && req.method === "POST") {
      provider = "payos";
      const k = BENCH_KEYS.payos;
      const b = JSON.parse(text);
      orderRef = String(b.orderCode);
      orderCode = new URL(b.returnUrl, "http://fake").searchParams.get("order");
      const canonical = payosCreateCanonical(b);
      if (req.headers["x-client-id"] !== k.clientId || req.headers["x-api-key"] !== k.apiKey) refuse = { code: "401", desc: "Unauthorized", data: null };
      else if (hmac("sha256", k.checksumKey, canonical) !== b.signature) refuse = { code: "20", desc: "Invalid signature", data: null };
      ok = () => {
        const data = { bin: "970422", accountNumber: "0123456789", accountName: "TICKETBOTTLE", amount: b.amount, description: b.description,
          orderCode: b.orderCode, currency: "VND", paymentLinkId: `plink${b.orderCode}`, status: "PENDING",
          checkoutUrl: `https://pay.payos.test/web/plink${b.orderCode}`, qrCode: `qr${b.orderCode}` };
        // Signed like PayOS signs its answers, so the Worker's check of that signature runs too.
        return { code: "00", desc: "success", data, signature: payosSignature(data, k.checksumKey) };
      };
      rejected = { code: "231", desc: "Đơn thanh toán đã tồn tại", data: null };
    } else if (path === "/zalopay/v2/create" && req.method === "POST") {
      provider = "zalopay";
      const k = BENCH_KEYS.zalopay;
      const p = new URLSearchParams(text);
      orderRef = p.get("app_trans_id");
      appUser = p.get("app_user");
      const input = zalopayCreateInput(p);
      if (p.get("app_id") !== k.appId || hmac("sha256", k.key1, input) !== p.get("mac")) {
        refuse = { return_code: 2, return_message: "mac invalid", sub_return_code: -402, sub_return_message: "mac invalid" };
      }
      ok = () => {
        zalopayOrders.set(appUser, { appTransId: orderRef, amount: Number(p.get("amount")), appTime: Number(p.get("app_time")) });
        return { return_code: 1, return_message: "Giao dịch thành công", sub_return_code: 1, sub_return_message: "Giao dịch thành công",
          order_url: `https://qcgateway.zalopay.test/openinapp?order=${orderRef}`, zp_trans_token: `zp${orderRef}`, order_token: `zp${orderRef}` };
      };
      rejected = { return_code: 2, return_message: "Giao dịch thất bại", sub_return_code: -68, sub_return_message: "Trùng mã giao dịch app_trans_id" };
    } else if (isMoneyBack(path, req.method)) {
      return moneyBack(req, res, path, text, json);
    } else {
      count("fake 404");
      return json(404, { error: "no such fake endpoint" });
    }
    if (refuse) { count(`${provider} refused bad credentials or signature`); return json(200, refuse); }
    const mode = await route({ provider, orderRef, appUser, orderCode });
    count(`${provider} ${mode}`);
    switch (mode) {
      case "reject": return json(200, rejected);
      case "5xx": return json(503, { error: "maintenance" });
      case "reset": req.socket.destroy(); return;
      case "hang": hanging.add(res); res.on("close", () => hanging.delete(res)); return; // never answers
      default: return json(200, ok());
    }
  }

  // Keep workerd's pooled connections open for the whole run: with Node's default 5 s idle
  // timeout a create call sent just as the fake closed an idle connection failed with a reset
  // the fake never saw (the Worker rightly answered 502, but nothing recorded a failed call).
  server.keepAliveTimeout = 30 * 60_000;
  server.headersTimeout = 30 * 60_000 + 1000;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    stats,
    zalopayOrders,
    paid,
    refunds,
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** VNPay's time format: yyyyMMddHHmmss in GMT+7. */
export const vnpayTime = (ms) => new Date(ms + 7 * 3600e3).toISOString().replace(/[-:T]/g, "").slice(0, 14);

/**
 * An IPN query string as VNPay sends it: the `vnp_*` parameters, sorted, form-encoded, with
 * `vnp_SecureHash` (HMAC-SHA512 over that text) last.
 */
export function vnpayIpnQuery(params, hashSecret = BENCH_KEYS.vnpay.hashSecret) {
  const sorted = Object.keys(params).filter((k) => params[k] !== "").sort();
  const query = new URLSearchParams(sorted.map((k) => [k, params[k]])).toString();
  return `${query}&vnp_SecureHash=${hmac("sha512", hashSecret, query)}`;
}

/** A ZaloPay payment callback body: `data` (JSON text) MAC'd with key2. */
export function zalopayCallbackBody(payment, key2 = BENCH_KEYS.zalopay.key2) {
  const data = JSON.stringify(payment);
  return JSON.stringify({ data, mac: hmac("sha256", key2, data), type: 1 });
}

export { hmac };
