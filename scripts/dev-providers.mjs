// Local stand-ins for PayOS, VNPay and ZaloPay, for `npm run dev` (and the browser tests): the
// create APIs the Worker calls (checking its credentials and signatures as the real ones do),
// and a hosted payment page per payment where the buyer pays or cancels. Paying notifies the
// Worker, signed with the keys in .dev.vars, the way each provider does (PayOS webhook, VNPay
// IPN, ZaloPay callback), then sends the buyer back to the Worker's return URL. Cancelling
// does what the real page does: VNPay reports it in a signed IPN (response code 24); PayOS and
// ZaloPay notify only payments, so they just send the buyer back.
// Grown from the flash crowd's fakes (bench/lib/providers.mjs), whose signers it shares.
//
//   node scripts/dev-providers.mjs [workerUrl]   (listens where .dev.vars' PAYOS_API_BASE says)
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { hmac, payosCreateCanonical, payosSignature, vnpayIpnQuery, vnpayTime, zalopayCallbackBody, zalopayCreateInput } from "../bench/lib/providers.mjs";

/** `KEY=value` lines of a .dev.vars file (comments and blanks skipped). */
export function readDevVars(path) {
  const vars = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const m = line.match(/^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/);
    if (m) vars[m[1]] = m[2].replace(/^"(.*)"$/, "$1");
  }
  return vars;
}

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const vnd = (n) => new Intl.NumberFormat("vi-VN", { style: "currency", currency: "VND" }).format(n);

/** The hosted payment page; `action` is where its buttons post (`{action}/pay`, `{action}/cancel`, then `?query`). */
function hostedPage({ provider, title, amount, reference, action, query = "" }) {
  return `<!doctype html>
<html lang="vi">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<title>${escapeHtml(provider)} · local stand-in</title>
<style>body{font:16px/1.5 system-ui,sans-serif;background:#eef2f7;margin:0}main{max-width:440px;margin:40px auto;background:#fff;border-radius:12px;padding:24px}
.amount{font-size:2rem;font-weight:700}.actions{display:flex;gap:12px;margin-top:20px}button{font:inherit;padding:10px 18px;border-radius:8px;border:1px solid #8a94a3;background:#fff;cursor:pointer}
button.pay{background:#0b5cab;border-color:#0b5cab;color:#fff}.note{color:#4a5463;font-size:.9rem}</style></head>
<body><main>
<p class="note">${escapeHtml(provider)}: local stand-in for development, no real money moves.</p>
<h1>${escapeHtml(title)}</h1>
<p class="amount">${escapeHtml(vnd(amount))}</p>
<p>${escapeHtml(reference)}</p>
<div class="actions">
<form method="post" action="${escapeHtml(`${action}/pay${query}`)}"><button class="pay" type="submit">Thanh toán / Pay</button></form>
<form method="post" action="${escapeHtml(`${action}/cancel${query}`)}"><button type="submit">Hủy / Cancel</button></form>
</div></main></body></html>`;
}

/**
 * Starts the stand-ins on `port` (127.0.0.1; 0 for any). `vars`: the Worker's provider
 * settings (as in .dev.vars); `workerUrl`: where notifications go (or a function giving it). Returns `{ url, payments, close }`;
 * `payments` records what each payment became.
 */
export async function startDevProviders({ port = 8790, vars, workerUrl }) {
  const payos = new Map(); // paymentLinkId → the create request
  const zalopay = new Map(); // app_trans_id → the create parameters
  const payments = [];
  let self = "";

  async function notify(path, init) {
    const base = typeof workerUrl === "function" ? workerUrl() : workerUrl;
    const res = await fetch(`${base}${path}`, init);
    const body = await res.text();
    payments.push({ path, status: res.status, body });
    if (!res.ok) console.warn(`[dev-providers] ${path} answered ${res.status}: ${body}`);
  }

  async function handle(req, res, text) {
    const url = new URL(req.url ?? "/", "http://local");
    const path = url.pathname;
    const json = (status, value) => {
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(value));
    };
    const html = (body) => {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
      res.end(body);
    };
    const redirect = (to) => {
      res.writeHead(303, { Location: to });
      res.end();
    };
    let m;

    // ---- PayOS ------------------------------------------------------------------------------
    if (path === "/payos/v2/payment-requests" && req.method === "POST") {
      const b = JSON.parse(text);
      if (req.headers["x-client-id"] !== vars.PAYOS_CLIENT_ID || req.headers["x-api-key"] !== vars.PAYOS_API_KEY) {
        return json(200, { code: "401", desc: "Unauthorized", data: null });
      }
      if (hmac("sha256", vars.PAYOS_CHECKSUM_KEY, payosCreateCanonical(b)) !== b.signature) {
        return json(200, { code: "20", desc: "Invalid signature", data: null });
      }
      const paymentLinkId = `plink${b.orderCode}`;
      payos.set(paymentLinkId, b);
      const data = {
        bin: "970422", accountNumber: "0123456789", accountName: "TICKETBOTTLE", amount: b.amount, description: b.description,
        orderCode: b.orderCode, currency: "VND", paymentLinkId, status: "PENDING", checkoutUrl: `${self}/payos/web/${paymentLinkId}`, qrCode: `qr${b.orderCode}`,
      };
      return json(200, { code: "00", desc: "success", data, signature: payosSignature(data, vars.PAYOS_CHECKSUM_KEY) });
    }
    if ((m = path.match(/^\/payos\/web\/([^/]+)$/)) && req.method === "GET") {
      const b = payos.get(m[1]);
      if (!b) return json(404, { error: "no such payment link" });
      return html(hostedPage({ provider: "PayOS", title: b.description, amount: b.amount, reference: `orderCode ${b.orderCode}`, action: `/payos/web/${m[1]}` }));
    }
    if ((m = path.match(/^\/payos\/web\/([^/]+)\/(pay|cancel)$/)) && req.method === "POST") {
      const b = payos.get(m[1]);
      if (!b) return json(404, { error: "no such payment link" });
      if (m[2] === "cancel") return redirect(`${b.cancelUrl}${b.cancelUrl.includes("?") ? "&" : "?"}cancel=true&status=CANCELLED&orderCode=${b.orderCode}`);
      const data = {
        orderCode: b.orderCode, amount: b.amount, description: b.description, accountNumber: "0123456789", reference: `FT${b.orderCode}`,
        transactionDateTime: new Date(Date.now() + 7 * 3600e3).toISOString().replace("T", " ").slice(0, 19), currency: "VND", paymentLinkId: m[1],
        code: "00", desc: "success", counterAccountBankId: "", counterAccountBankName: "", counterAccountName: "", counterAccountNumber: "",
        virtualAccountName: "", virtualAccountNumber: "",
      };
      await notify("/api/payments/webhooks/payos", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ code: "00", desc: "success", success: true, data, signature: payosSignature(data, vars.PAYOS_CHECKSUM_KEY) }),
      });
      return redirect(`${b.returnUrl}${b.returnUrl.includes("?") ? "&" : "?"}code=00&status=PAID&orderCode=${b.orderCode}`);
    }

    // ---- VNPay (redirect only: the Worker signs the URL of this page) --------------------------
    if (path.endsWith("/vnpay/paymentv2/vpcpay.html") && req.method === "GET") {
      const params = Object.fromEntries(url.searchParams);
      const { vnp_SecureHash: hash, vnp_SecureHashType: _type, ...signed } = params;
      // VNPay signs the same canonical query as its IPN: check the merchant's signature first.
      if (vnpayIpnQuery(signed, vars.VNPAY_HASH_SECRET).split("&vnp_SecureHash=")[1] !== hash) {
        return html("<!doctype html><title>VNPay</title><p>Sai chữ ký / Invalid signature (vnp_SecureHash)</p>");
      }
      return html(hostedPage({
        provider: "VNPay", title: params.vnp_OrderInfo, amount: Number(params.vnp_Amount) / 100, reference: `vnp_TxnRef ${params.vnp_TxnRef}`,
        action: "/vnpay/session", query: `?${url.searchParams}`,
      }));
    }
    if ((m = path.match(/^\/vnpay\/session\/(pay|cancel)$/)) && req.method === "POST") {
      // The payment's parameters ride on the form's action, as they came to the page.
      const p = Object.fromEntries(url.searchParams);
      const paid = m[1] === "pay";
      const result = {
        vnp_Amount: p.vnp_Amount, vnp_BankCode: "NCB", vnp_BankTranNo: paid ? `VNP${Date.now()}` : "", vnp_CardType: "ATM", vnp_OrderInfo: p.vnp_OrderInfo,
        vnp_PayDate: vnpayTime(Date.now()), vnp_ResponseCode: paid ? "00" : "24", vnp_TmnCode: p.vnp_TmnCode, vnp_TransactionNo: paid ? String(Date.now() % 1e8) : "0",
        vnp_TransactionStatus: paid ? "00" : "02", vnp_TxnRef: p.vnp_TxnRef,
      };
      const query = vnpayIpnQuery(result, vars.VNPAY_HASH_SECRET);
      await notify(`/api/payments/webhooks/vnpay?${query}`, { method: "GET" });
      return redirect(`${p.vnp_ReturnUrl}${p.vnp_ReturnUrl.includes("?") ? "&" : "?"}${query}`);
    }

    // ---- ZaloPay --------------------------------------------------------------------------------
    if (path === "/zalopay/v2/create" && req.method === "POST") {
      const p = new URLSearchParams(text);
      if (p.get("app_id") !== vars.ZALOPAY_APP_ID || hmac("sha256", vars.ZALOPAY_KEY1, zalopayCreateInput(p)) !== p.get("mac")) {
        return json(200, { return_code: 2, return_message: "mac invalid", sub_return_code: -402, sub_return_message: "mac invalid" });
      }
      const id = p.get("app_trans_id");
      zalopay.set(id, Object.fromEntries(p));
      return json(200, {
        return_code: 1, return_message: "Giao dịch thành công", sub_return_code: 1, sub_return_message: "Giao dịch thành công",
        order_url: `${self}/zalopay/pay/${encodeURIComponent(id)}`, zp_trans_token: `zp${id}`, order_token: `zp${id}`,
      });
    }
    if ((m = path.match(/^\/zalopay\/pay\/([^/]+)$/)) && req.method === "GET") {
      const o = zalopay.get(decodeURIComponent(m[1]));
      if (!o) return json(404, { error: "no such order" });
      return html(hostedPage({ provider: "ZaloPay", title: o.description, amount: Number(o.amount), reference: `app_trans_id ${o.app_trans_id}`, action: `/zalopay/pay/${m[1]}` }));
    }
    if ((m = path.match(/^\/zalopay\/pay\/([^/]+)\/(pay|cancel)$/)) && req.method === "POST") {
      const o = zalopay.get(decodeURIComponent(m[1]));
      if (!o) return json(404, { error: "no such order" });
      const redirecturl = JSON.parse(o.embed_data || "{}").redirecturl;
      const paid = m[2] === "pay";
      if (paid) {
        const payment = {
          app_id: Number(o.app_id), app_trans_id: o.app_trans_id, app_time: Number(o.app_time), app_user: o.app_user, amount: Number(o.amount),
          embed_data: o.embed_data, item: o.item, zp_trans_id: Date.now() % 1e9, server_time: Date.now(), channel: 38, merchant_user_id: "",
          user_fee_amount: 0, discount_amount: 0,
        };
        await notify(new URL(o.callback_url).pathname, { method: "POST", headers: { "Content-Type": "application/json" }, body: zalopayCallbackBody(payment, vars.ZALOPAY_KEY2) });
      }
      const status = paid ? 1 : -49;
      return redirect(`${redirecturl}${redirecturl.includes("?") ? "&" : "?"}apptransid=${encodeURIComponent(o.app_trans_id)}&amount=${o.amount}&status=${status}`);
    }
    return json(404, { error: "no such stand-in endpoint" });
  }

  const server = createServer((req, res) => {
    let text = "";
    req.on("data", (c) => (text += c));
    req.on("end", () =>
      handle(req, res, text).catch((e) => {
        console.warn(`[dev-providers] ${req.method} ${req.url}: ${e.message}`);
        if (!res.headersSent) res.writeHead(500);
        res.end();
      }),
    );
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  self = `http://127.0.0.1:${server.address().port}`;
  return { url: self, payments, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const vars = readDevVars(`${root}/.dev.vars`);
  const port = Number(new URL(vars.PAYOS_API_BASE ?? "http://127.0.0.1:8790").port || 8790);
  const workerUrl = process.argv[2] ?? "http://127.0.0.1:8787";
  const { url } = await startDevProviders({ port, vars, workerUrl });
  console.log(`[dev-providers] PayOS, VNPay and ZaloPay stand-ins on ${url}, notifying ${workerUrl}`);
}
