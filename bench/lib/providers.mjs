// Fake payment providers for the flash crowd: PayOS's and ZaloPay's create-payment APIs on
// 127.0.0.1 (ephemeral port), checking the Worker's credentials and signatures as the real ones
// do, and answering each call the way `route` says: normally, with the provider's refusal, with
// HTTP 5xx, by dropping the connection, or never (so the Worker's provider timeout fires).
// Also the signers for the notifications PayOS, VNPay and ZaloPay send back to the Worker
// (keyed: `npm run dev`'s stand-ins, scripts/dev-providers.mjs, sign with .dev.vars' keys).
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
    // VNPay is redirect-only: the Worker signs a URL to this page and never calls it.
    VNPAY_PAY_URL: `${url}/vnpay/paymentv2/vpcpay.html`, VNPAY_TMN_CODE: k.vnpay.tmnCode, VNPAY_HASH_SECRET: k.vnpay.hashSecret,
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
 * Returns `{ url, stats, zalopayOrders, close }`: `stats` counts calls by provider and outcome;
 * `zalopayOrders` maps a buyer id to the last ZaloPay order created for it ({ appTransId,
 * amount, appTime }), what ZaloPay puts in its callback.
 */
export async function startFakeProviders({ route }) {
  const stats = {};
  const zalopayOrders = new Map();
  const count = (k) => { stats[k] = (stats[k] ?? 0) + 1; };
  const hanging = new Set();
  const server = createServer((req, res) => {
    let text = "";
    req.on("data", (c) => (text += c));
    req.on("end", () => handle(req, res, text).catch(() => { count("fake error"); if (!res.headersSent) { res.writeHead(500); res.end(); } }));
  });

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
