// Money back: refunds through the sandbox, VNPay and ZaloPay fakes (signed as the providers
// sign), PayOS's manual path closed by a platform admin, provider errors retried, who may ask,
// what a refund takes back (tickets voided at the door, stock returned before the event), and a
// payment whose notification was lost completed by reconciliation.
import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { adminUser, call, expectProblem, json, registerAndLogin, type TestUser } from "./helpers";
import { eventually, publishedEvent, ticketClasses, type PublishedEvent } from "./fixtures";

const FAKE = (env as any).FAKE_PROVIDERS_URL as string;
const PRICE = 150_000;

const hex = (buf: ArrayBuffer) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
async function hmac(hash: "SHA-256" | "SHA-512", key: string, msg: string) {
  const k = await crypto.subtle.importKey("raw", new TextEncoder().encode(key), { name: "HMAC", hash }, false, ["sign"]);
  return hex(await crypto.subtle.sign("HMAC", k, new TextEncoder().encode(msg)));
}

async function fake(path: string, body?: unknown) {
  const res = await fetch(`${FAKE}${path}`, body === undefined ? {} : { method: "POST", body: JSON.stringify(body) });
  return res.json() as Promise<any>;
}

interface Bought {
  event: PublishedEvent;
  buyer: TestUser;
  order: any;
  payment: { id: string; provider_ref: string };
  paymentUrl: string;
}

/** A published event and one PENDING order for `quantity` 150,000 VND tickets (one by default). */
async function pendingOrder(paymentMethod: string, event?: PublishedEvent, quantity = 1, buyer?: TestUser): Promise<Bought> {
  event ??= await publishedEvent({ classes: [{ name: "GA", priceCents: PRICE, total: 5 }] });
  buyer ??= await registerAndLogin();
  const res = await call("/api/orders", {
    token: buyer.token,
    headers: { "Idempotency-Key": crypto.randomUUID() },
    body: { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity }], paymentMethod },
  });
  expect(res.status).toBe(201);
  const created = await json(res);
  const payment = await env.DB.prepare("SELECT id, provider_ref FROM payments WHERE order_id = ?1").bind(created.order.id).first<any>();
  return { event, buyer, order: created.order, payment, paymentUrl: created.paymentUrl };
}

async function orderOf(b: Bought) {
  return (await json(await call(`/api/orders/${b.order.id}`, { token: b.buyer.token }))).order;
}

async function completed(b: Bought) {
  return eventually(async () => {
    const o = await orderOf(b);
    return o.status === "COMPLETED" && o;
  }, `order ${b.order.code} COMPLETED`);
}

/** Pays through the provider's own notification, as each provider delivers it. */
async function pay(b: Bought, method: string, txn = `${Date.now() % 1e8}`) {
  if (method === "sandbox") {
    const res = await call(`${new URL(b.paymentUrl).pathname}/pay`, { method: "POST" });
    expect(await json(res)).toEqual({ status: "PAID" });
  } else if (method === "vnpay") {
    const p: Record<string, string> = {
      vnp_Amount: String(PRICE * 100), vnp_BankCode: "NCB", vnp_OrderInfo: "Thanh toan", vnp_PayDate: "20261126100000",
      vnp_ResponseCode: "00", vnp_TmnCode: "TESTTMN1", vnp_TransactionNo: txn, vnp_TransactionStatus: "00", vnp_TxnRef: b.payment.provider_ref,
    };
    const query = new URLSearchParams(Object.keys(p).sort().map((k) => [k, p[k]])).toString();
    const signed = `${query}&vnp_SecureHash=${await hmac("SHA-512", "test-vnpay-hash-secret", query)}`;
    expect((await json(await call(`/api/payments/webhooks/vnpay?${signed}`))).RspCode).toBe("00");
  } else if (method === "zalopay") {
    const data = JSON.stringify({ app_id: 2553, app_trans_id: b.payment.provider_ref, app_time: Date.now(), app_user: "buyer", amount: PRICE, zp_trans_id: Number(txn) });
    const res = await call("/api/payments/webhooks/zalopay", { body: { data, mac: await hmac("SHA-256", "test-zalopay-key2", data), type: 1 } });
    expect((await json(res)).return_code).toBe(1);
  } else if (method === "payos") {
    const data: Record<string, unknown> = {
      orderCode: Number(b.payment.provider_ref), amount: PRICE, description: "TB", accountNumber: "0123456789",
      reference: `FT${txn}`, transactionDateTime: "2026-11-26 10:00:00", currency: "VND", paymentLinkId: `plink${b.payment.provider_ref}`, code: "00", desc: "success",
    };
    const canonical = Object.keys(data).sort().map((k) => `${k}=${data[k]}`).join("&");
    const body = JSON.stringify({ code: "00", desc: "success", success: true, data, signature: await hmac("SHA-256", "test-payos-checksum-key", canonical) });
    expect((await call("/api/payments/webhooks/payos", { rawBody: body })).status).toBe(200);
  }
  return completed(b);
}

async function refund(b: Bought, who: TestUser, reason = "Cannot attend") {
  return call(`/api/orders/${b.order.id}/refund`, { token: who.token, body: { reason } });
}

async function refunded(b: Bought) {
  return eventually(async () => {
    const o = await orderOf(b);
    return o.status === "REFUNDED" && o;
  }, `order ${b.order.code} REFUNDED`, 25_000);
}

describe("refunds through each provider", () => {
  it("sandbox: the event's admin refunds a paid order; it completes at once and the order is REFUNDED", async () => {
    const b = await pendingOrder("sandbox");
    await pay(b, "sandbox");
    const res = await refund(b, b.event.organizer);
    expect(res.status).toBe(202);
    const { refund: r } = await json(res);
    expect(r).toMatchObject({ orderId: b.order.id, amountCents: PRICE, currency: "VND", provider: "sandbox", reason: "Cannot attend" });
    expect(["REQUESTED", "PROCESSING", "REFUNDED"]).toContain(r.status);
    const o = await refunded(b);
    expect(o.refunds).toHaveLength(1);
    expect(o.refunds[0]).toMatchObject({ id: r.id, status: "REFUNDED" });
    // Asking again returns the same refund, never a second one.
    const again = await refund(b, b.event.organizer, "twice");
    expect(again.status).toBe(202);
    expect((await json(again)).refund.id).toBe(r.id);
    const list = await json(await call(`/api/events/${b.event.id}/refunds`, { token: b.event.organizer.token }));
    expect(list.items.map((x: any) => x.id)).toEqual([r.id]);
    const log = await eventually(async () => {
      const l = await json(await call(`/api/events/${b.event.id}/log`, { token: b.event.organizer.token }));
      return l.items.some((e: any) => e.type === "ORDER_REFUNDED") && l;
    }, "ORDER_REFUNDED in the event log");
    expect(log.items.filter((e: any) => e.type === "ORDER_REFUNDED")).toHaveLength(1);
  });

  it("VNPay: a platform admin's refund is one signed refund call for the whole amount", async () => {
    const b = await pendingOrder("vnpay");
    await pay(b, "vnpay", "14000077");
    const admin = await adminUser();
    const res = await refund(b, admin, "Event moved");
    expect(res.status).toBe(202);
    const o = await refunded(b);
    expect(o.refunds[0]).toMatchObject({ provider: "vnpay", status: "REFUNDED", attempts: 0 });
    const made = (await fake("/__refunds"))[b.payment.provider_ref];
    expect(made).toMatchObject({ amount: PRICE, requests: 1 });
  });

  it("ZaloPay: a refund answered 'processing' is asked about under the same m_refund_id, then REFUNDED", async () => {
    const b = await pendingOrder("zalopay");
    await pay(b, "zalopay", "260000123");
    await fake("/__failNext", { zalopay_refund_processing: 1 });
    const res = await refund(b, b.event.organizer);
    expect(res.status).toBe(202);
    const { refund: r } = await json(res);
    const o = await refunded(b);
    expect(o.refunds[0]).toMatchObject({ id: r.id, status: "REFUNDED", provider: "zalopay" });
    expect(o.refunds[0].providerRefundId).toBeTruthy();
    const made = Object.entries(await fake("/__refunds")).filter(([, v]: any) => v.ref === "260000123");
    expect(made).toHaveLength(1);
    const [mRefundId, entry] = made[0] as [string, any];
    expect(mRefundId).toMatch(new RegExp(`^\\d{6}_2553_${r.id.replace(/-/g, "")}$`));
    expect(entry).toMatchObject({ amount: PRICE, requests: 1 });
  });

  it("a provider error is retried with back-off and the refund still completes once", async () => {
    const b = await pendingOrder("vnpay");
    await pay(b, "vnpay", "14000078");
    await fake("/__failNext", { vnpay_refund: 1 });
    expect((await refund(b, b.event.organizer)).status).toBe(202);
    const o = await refunded(b);
    expect(o.refunds[0]).toMatchObject({ status: "REFUNDED", attempts: 1 });
    expect((await fake("/__refunds"))[b.payment.provider_ref]).toMatchObject({ requests: 1 });
  });

  it("PayOS has no refund API: MANUAL_REQUIRED, listed, then completed by a platform admin", async () => {
    const b = await pendingOrder("payos");
    await pay(b, "payos", "55501");
    const res = await refund(b, b.event.organizer);
    const { refund: r } = await json(res);
    const admin = await adminUser();
    const manual = await eventually(async () => {
      const l = await json(await call("/api/refunds?status=MANUAL_REQUIRED&pageSize=100", { token: admin.token }));
      return l.items.find((x: any) => x.id === r.id);
    }, "refund MANUAL_REQUIRED");
    expect(manual.lastError).toContain("no refund API");
    expect((await orderOf(b)).status).toBe("COMPLETED");
    expect((await call("/api/refunds", { token: b.event.organizer.token })).status).toBe(403);
    await expectProblem(
      await call(`/api/refunds/${r.id}/complete`, { token: b.event.organizer.token, body: { note: "paid back" } }),
      403,
      "FORBIDDEN",
    );
    await expectProblem(await call(`/api/refunds/${r.id}/complete`, { token: admin.token, body: {} }), 400, "VALIDATION_FAILED");
    const done = await call(`/api/refunds/${r.id}/complete`, { token: admin.token, body: { note: "Transfer FT123 to the buyer" } });
    expect(done.status).toBe(200);
    expect((await json(done)).refund).toMatchObject({ status: "REFUNDED", note: "Transfer FT123 to the buyer" });
    expect((await orderOf(b)).status).toBe("REFUNDED");
    await expectProblem(
      await call(`/api/refunds/${r.id}/complete`, { token: admin.token, body: { note: "again" } }),
      409,
      "INVALID_STATUS_TRANSITION",
    );
  });
});

describe("who may refund what", () => {
  it("refuses a PENDING order, the buyer without refundableUntil, and strangers", async () => {
    const b = await pendingOrder("sandbox");
    await expectProblem(await refund(b, b.event.organizer), 409, "INVALID_STATUS_TRANSITION");
    await pay(b, "sandbox");
    await expectProblem(await refund(b, b.buyer), 409, "REFUND_NOT_ALLOWED");
    const stranger = await registerAndLogin();
    await expectProblem(await refund(b, stranger), 404, "NOT_FOUND");
    await expectProblem(await call(`/api/orders/${b.order.id}/refund`, { body: { reason: "x" } }), 401, "UNAUTHENTICATED");
    await expectProblem(await refund(b, b.event.organizer, "   "), 400, "VALIDATION_FAILED");
    expect((await orderOf(b)).refunds).toEqual([]);
  });

  it("lets the buyer refund while the event's refundableUntil has not passed", async () => {
    const b = await pendingOrder("sandbox");
    await pay(b, "sandbox");
    const { event } = await json(await call(`/api/events/${b.event.id}`, { token: b.event.organizer.token }));
    const refundableUntil = new Date(Math.ceil((Date.now() + 3600_000) / 1000) * 1000).toISOString();
    const put = await call(`/api/events/${b.event.id}/config`, { method: "PUT", token: b.event.organizer.token, body: { ...event.config, refundableUntil } });
    expect(put.status).toBe(200);
    expect(Date.parse((await json(put)).event.config.refundableUntil)).toBe(Date.parse(refundableUntil));
    expect((await refund(b, b.buyer)).status).toBe(202);
    await refunded(b);
  });
});

describe("what a refund takes back", () => {
  /** A paid sandbox order of `quantity` tickets, once its tickets are issued. */
  async function paidWithTickets(event: PublishedEvent, quantity: number, buyer?: TestUser) {
    const b = await pendingOrder("sandbox", event, quantity, buyer);
    await pay(b, "sandbox");
    const o = await eventually(async () => {
      const o = await orderOf(b);
      return o.tickets?.length === quantity && o;
    }, `order ${b.order.code} with its tickets`);
    return { b, tickets: o.tickets as any[] };
  }

  async function ticketStatus(b: Bought, id: string) {
    return (await json(await call(`/api/tickets/${id}`, { token: b.buyer.token }))).ticket.status;
  }

  const checkIn = (event: PublishedEvent, body: Record<string, unknown>) =>
    call(`/api/events/${event.id}/check-ins`, { token: event.organizer.token, body });

  it("before the event: the tickets are VOID at the door and back on sale, and the buyer may buy again", async () => {
    const event = await publishedEvent({ classes: [{ name: "GA", priceCents: PRICE, total: 5 }], maxTicketsPerUser: 2 });
    const { b, tickets } = await paidWithTickets(event, 2);
    const [before] = await ticketClasses(event.id);
    expect(before).toMatchObject({ sold: 2, available: 3 });
    // At the limit: the buyer cannot buy a third ticket while holding two.
    const third = await call("/api/orders", {
      token: b.buyer.token,
      headers: { "Idempotency-Key": crypto.randomUUID() },
      body: { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 1 }], paymentMethod: "sandbox" },
    });
    await expectProblem(third, 422, "PURCHASE_LIMIT_EXCEEDED");

    expect((await refund(b, b.event.organizer)).status).toBe(202);
    await refunded(b);

    // Voided through the event's door: a check-in a moment later is refused.
    await eventually(async () => {
      const res = await checkIn(event, { qr: tickets[0].qr });
      return res.status === 409 && (await json(res)).code === "TICKET_VOID";
    }, "check-in refused as TICKET_VOID");
    await expectProblem(await checkIn(event, { code: tickets[1].code }), 409, "TICKET_VOID");
    for (const t of tickets) {
      await eventually(async () => (await ticketStatus(b, t.id)) === "VOID", `ticket ${t.code} VOID`);
    }
    const after = await eventually(async () => {
      const [c] = await ticketClasses(event.id);
      return c.available === before.available + 2 && c;
    }, "the two tickets back on sale");
    expect(after).toMatchObject({ total: 5, reserved: 0, sold: 0, available: 5 });
    const stats = await json(await call(`/api/events/${event.id}/check-ins/stats`, { token: event.organizer.token }));
    expect(stats.items).toEqual([{ ticketClassId: event.classes[0].id, name: "GA", sold: 0, checkedIn: 0 }]);

    // Returned tickets no longer count toward the buyer's limit; each is returned once.
    await paidWithTickets(event, 2, b.buyer);
    const [rebought] = await ticketClasses(event.id);
    expect(rebought).toMatchObject({ sold: 2, available: 3 });
    const voided = await json(await call(`/api/events/${event.id}/log?type=TICKET_VOIDED`, { token: event.organizer.token }));
    expect(voided.items.map((e: any) => e.data.ticketId).sort()).toEqual(tickets.map((t) => t.id).sort());
  });

  it("after the event has started: the tickets are VOID but not put back on sale", async () => {
    const event = await publishedEvent({ classes: [{ name: "GA", priceCents: PRICE, total: 5 }] });
    const { b, tickets } = await paidWithTickets(event, 1);
    // The doors opened a minute ago (only the start moves; the end stays after it).
    await env.DB.prepare("UPDATE events SET start_date = ?1 WHERE id = ?2").bind(Date.now() - 60_000, event.id).run();

    expect((await refund(b, b.event.organizer)).status).toBe(202);
    await refunded(b);
    await eventually(async () => (await ticketStatus(b, tickets[0].id)) === "VOID", "ticket VOID");
    await expectProblem(await checkIn(event, { qr: tickets[0].qr }), 409, "TICKET_VOID");
    // The stock would be returned right after the void; give it that long, then some.
    for (let i = 0; i < 10; i++) {
      const [c] = await ticketClasses(event.id);
      expect(c).toMatchObject({ sold: 1, available: 4 });
      await new Promise((r) => setTimeout(r, 200));
    }
  });
});

describe("reconciliation", () => {
  it("completes an order whose ZaloPay callback was lost, through the webhook's path", async () => {
    const b = await pendingOrder("zalopay");
    const admin = await adminUser();
    // Nothing paid yet: the provider says "processing" and nothing is applied.
    const before = await json(await call("/api/ops/reconcile", { token: admin.token, body: { olderThanSeconds: 0 } }));
    expect(before.checked).toBeGreaterThanOrEqual(1);
    expect((await orderOf(b)).status).toBe("PENDING");
    await fake("/__paid", { ref: b.payment.provider_ref, amount: PRICE, txn: "260000999" });
    const res = await call("/api/ops/reconcile", { token: admin.token, body: { olderThanSeconds: 0 } });
    expect(res.status).toBe(200);
    expect((await json(res)).applied).toBeGreaterThanOrEqual(1);
    await completed(b);
    const payment = await env.DB.prepare("SELECT status, provider_txn_id FROM payments WHERE id = ?1").bind(b.payment.id).first<any>();
    expect(payment).toEqual({ status: "COMPLETED", provider_txn_id: "260000999" });
    // The callback arriving late is a duplicate, acknowledged and not applied twice.
    const data = JSON.stringify({ app_id: 2553, app_trans_id: b.payment.provider_ref, app_time: Date.now(), app_user: "buyer", amount: PRICE, zp_trans_id: 260000999 });
    const late = await call("/api/payments/webhooks/zalopay", { body: { data, mac: await hmac("SHA-256", "test-zalopay-key2", data), type: 1 } });
    expect((await json(late)).return_code).toBe(1);
  });

  it("completes lost VNPay and PayOS payments by querying them, and only for platform admins", async () => {
    const vnpay = await pendingOrder("vnpay");
    const payos = await pendingOrder("payos", vnpay.event);
    await fake("/__paid", { ref: vnpay.payment.provider_ref, amount: PRICE, txn: "14000999" });
    await fake("/__paid", { ref: payos.payment.provider_ref, amount: PRICE, txn: "FT55599" });
    await expectProblem(await call("/api/ops/reconcile", { token: vnpay.buyer.token, body: {} }), 403, "FORBIDDEN");
    const admin = await adminUser();
    // Younger than RECONCILE_AFTER_SECONDS (300): not asked about yet.
    const early = await json(await call("/api/ops/reconcile", { method: "POST", token: admin.token }));
    expect(early).toEqual({ checked: 0, applied: 0 });
    const res = await json(await call("/api/ops/reconcile", { token: admin.token, body: { olderThanSeconds: 0 } }));
    expect(res.applied).toBeGreaterThanOrEqual(2);
    await completed(vnpay);
    await completed(payos);
  });
});

describe("event cancellation", () => {
  it("refunds every paid order of a cancelled published event once, in the cron's batches", async () => {
    const first = await pendingOrder("sandbox");
    const second = await pendingOrder("vnpay", first.event);
    const unpaid = await pendingOrder("sandbox", first.event);
    await pay(first, "sandbox");
    await pay(second, "vnpay", "14000555");
    const cancel = await call(`/api/events/${first.event.id}/cancel`, { method: "POST", token: first.event.organizer.token });
    expect(cancel.status).toBe(200);
    const cron = () => (exports as any).default.scheduled({ cron: "* * * * *", scheduledTime: new Date() });
    await cron();
    await refunded(first);
    await refunded(second);
    await cron();
    const rows = await env.DB.prepare("SELECT order_id, reason FROM refunds WHERE event_id = ?1").bind(first.event.id).all<any>();
    expect(rows.results.map((r: any) => r.order_id).sort()).toEqual([first.order.id, second.order.id].sort());
    expect(rows.results.every((r: any) => r.reason === "EVENT_CANCELLED")).toBe(true);
    expect((await orderOf(unpaid)).refunds).toEqual([]);
    expect((await fake("/__refunds"))[second.payment.provider_ref]).toMatchObject({ amount: PRICE, requests: 1 });
  });
});
