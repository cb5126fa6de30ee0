// The purchase path end to end: checkout saga, sandbox and real-provider payments through
// local fakes, webhooks through the outbox and the payments queue, compensation and expiry.
import { env, runInDurableObject } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, expectProblem, json, registerAndLogin, runAlarmNow, type TestUser } from "./helpers";
import { eventually, publishedEvent, ticketClasses } from "./fixtures";

const FAKE = (env as any).FAKE_PROVIDERS_URL as string;

function hub(eventId: string) {
  return env.EVENT_HUB.get(env.EVENT_HUB.idFromName(eventId));
}

async function order(buyer: TestUser, body: Record<string, unknown>, key = crypto.randomUUID()) {
  return call("/api/orders", { token: buyer.token, body, headers: { "Idempotency-Key": key } });
}

async function orderStatus(buyer: TestUser, id: string) {
  return (await json(await call(`/api/orders/${id}`, { token: buyer.token }))).order;
}

async function payInSandbox(paymentUrl: string, action: "pay" | "decline" = "pay") {
  const path = new URL(paymentUrl).pathname;
  return call(`${path}/${action}`, { method: "POST" });
}

async function setProviderMode(modes: Record<string, string>) {
  await fetch(`${FAKE}/__mode`, { method: "POST", body: JSON.stringify(modes) });
}

async function countOutbox(aggregateId: string, type: string) {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM outbox WHERE aggregate_id = ?1 AND event_type = ?2")
    .bind(aggregateId, type)
    .first<{ n: number }>();
  return row?.n ?? 0;
}

describe("a buyer's whole purchase through the waitroom and the sandbox", () => {
  it("queues, admits, holds, pays and completes; counters show the sale and the slot is free", async () => {
    const event = await publishedEvent({ allowWaitRoom: true, classes: [{ name: "GA", priceCents: 250_000, total: 10 }] });
    const buyer = await registerAndLogin();

    const joined = await json(await call(`/api/events/${event.id}/waitroom/join`, { method: "POST", token: buyer.token }));
    expect(joined.waitroomSession.status).toMatch(/QUEUED|ADMITTED/);
    await runAlarmNow(hub(event.id));
    const { waitroomSession } = await json(await call(`/api/events/${event.id}/waitroom/session`, { token: buyer.token }));
    expect(waitroomSession.status).toBe("ADMITTED");
    expect(waitroomSession.checkoutToken).toBeTruthy();

    const res = await order(buyer, {
      eventId: event.id,
      items: [{ ticketClassId: event.classes[0].id, quantity: 2 }],
      paymentMethod: "sandbox",
      checkoutToken: waitroomSession.checkoutToken,
    });
    expect(res.status).toBe(201);
    const created = await json(res);
    expect(created.order).toMatchObject({ status: "PENDING", totalAmountCents: 500_000, currency: "VND", paymentMethod: "sandbox" });
    expect(created.order.code).toMatch(/^TB-[0-9A-Z]{10}$/);
    expect(created.paymentUrl).toContain("/sandbox/checkout/");
    let [ga] = await ticketClasses(event.id);
    expect(ga).toMatchObject({ total: 10, reserved: 2, sold: 0, available: 8 });

    const page = await call(new URL(created.paymentUrl).pathname);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(created.order.code);
    const paid = await payInSandbox(created.paymentUrl);
    expect(await json(paid)).toEqual({ status: "PAID" });

    const done = await eventually(async () => {
      const o = await orderStatus(buyer, created.order.id);
      return o.status === "COMPLETED" && o;
    }, "order COMPLETED");
    expect(done.items).toEqual([{ ticketClassId: event.classes[0].id, quantity: 2, priceCents: 250_000 }]);
    [ga] = await ticketClasses(event.id);
    expect(ga).toMatchObject({ reserved: 0, sold: 2, available: 8 });
    const after = await eventually(async () => {
      const s = (await json(await call(`/api/events/${event.id}/waitroom/session`, { token: buyer.token }))).waitroomSession;
      return s.status === "COMPLETED" && s;
    }, "waitroom session COMPLETED");
    expect(after.status).toBe("COMPLETED");
    const byCode = await call(`/api/orders/${created.order.code}`, { token: buyer.token });
    expect((await json(byCode)).order.id).toBe(created.order.id);
  });
});

describe("ordering", () => {
  it("requires an Idempotency-Key", async () => {
    const buyer = await registerAndLogin();
    const res = await call("/api/orders", { token: buyer.token, body: {} });
    await expectProblem(res, 400, "IDEMPOTENCY_KEY_REQUIRED");
  });

  it("replays the first response for the same key and refuses the key with another body", async () => {
    const event = await publishedEvent();
    const buyer = await registerAndLogin();
    const body = { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 1 }], paymentMethod: "sandbox" };
    const first = await order(buyer, body, "key-1");
    expect(first.status).toBe(201);
    const firstBody = await json(first);
    const again = await order(buyer, { paymentMethod: "sandbox", items: body.items, eventId: event.id }, "key-1");
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect((await json(again)).order.id).toBe(firstBody.order.id);
    await expectProblem(await order(buyer, { ...body, items: [{ ticketClassId: event.classes[0].id, quantity: 2 }] }, "key-1"), 422, "IDEMPOTENCY_KEY_REUSED");
    const [c] = await ticketClasses(event.id);
    expect(c.reserved).toBe(1);
  });

  it("refuses a waitroom event without a valid checkout token", async () => {
    const event = await publishedEvent({ allowWaitRoom: true });
    const buyer = await registerAndLogin();
    const body = { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 1 }], paymentMethod: "sandbox" };
    await expectProblem(await order(buyer, body), 403, "CHECKOUT_TOKEN_REQUIRED");
    await expectProblem(await order(buyer, { ...body, checkoutToken: "not-a-token" }), 403, "CHECKOUT_TOKEN_INVALID");
    const [c] = await ticketClasses(event.id);
    expect(c.reserved).toBe(0);
  });

  it("holds nothing when stock is short", async () => {
    const event = await publishedEvent({ classes: [{ name: "A", priceCents: 1000, total: 3 }, { name: "B", priceCents: 1000, total: 1 }] });
    const buyer = await registerAndLogin();
    const res = await order(buyer, {
      eventId: event.id,
      items: [{ ticketClassId: event.classes[0].id, quantity: 2 }, { ticketClassId: event.classes[1].id, quantity: 2 }],
      paymentMethod: "sandbox",
    });
    await expectProblem(res, 409, "INSUFFICIENT_INVENTORY");
    for (const c of await ticketClasses(event.id)) expect(c.reserved).toBe(0);
  });

  it("enforces the purchase limit across pending and completed orders", async () => {
    const event = await publishedEvent({ maxTicketsPerUser: 3 });
    const buyer = await registerAndLogin();
    const line = (q: number) => ({ eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: q }], paymentMethod: "sandbox" });
    expect((await order(buyer, line(2))).status).toBe(201);
    await expectProblem(await order(buyer, line(2)), 422, "PURCHASE_LIMIT_EXCEEDED");
    expect((await order(buyer, line(1))).status).toBe(201);
  });

  it("refuses bad bodies with every bad field", async () => {
    const buyer = await registerAndLogin();
    const res = await order(buyer, { eventId: "nope", items: [{ ticketClassId: "x", quantity: 0 }], paymentMethod: "cash" });
    const body = await expectProblem(res, 400, "VALIDATION_FAILED");
    expect(body.errors.map((e: any) => e.field).sort()).toEqual(["eventId", "items[0].ticketClassId", "paymentMethod"]);
  });

  it("creates PayOS and ZaloPay links through their create APIs", async () => {
    const event = await publishedEvent();
    const buyer = await registerAndLogin();
    for (const paymentMethod of ["payos", "zalopay", "vnpay"]) {
      const res = await order(buyer, { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 1 }], paymentMethod });
      expect(res.status, paymentMethod).toBe(201);
      const { paymentUrl } = await json(res);
      expect(paymentUrl).toMatch(paymentMethod === "payos" ? /pay\.payos\.test/ : paymentMethod === "zalopay" ? /zalopay\.test/ : /vnp_SecureHash=/);
    }
  });

  it("answers 502 when the provider is down, releases the hold and fails the order", async () => {
    const event = await publishedEvent();
    const buyer = await registerAndLogin();
    await setProviderMode({ payos: "down" });
    try {
      const res = await order(buyer, { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 2 }], paymentMethod: "payos" });
      await expectProblem(res, 502, "PAYMENT_PROVIDER_UNAVAILABLE");
    } finally {
      await setProviderMode({ payos: "ok" });
    }
    const [c] = await ticketClasses(event.id);
    expect(c).toMatchObject({ reserved: 0, sold: 0 });
    const mine = await json(await call("/api/orders", { token: buyer.token }));
    expect(mine.items[0]).toMatchObject({ status: "FAILED", failureCode: "PAYMENT_PROVIDER_UNAVAILABLE" });
  });
});

async function admittedSession(eventId: string, buyer: TestUser) {
  expect((await call(`/api/events/${eventId}/waitroom/join`, { method: "POST", token: buyer.token })).status).toBe(200);
  await runAlarmNow(hub(eventId));
  const s = await waitroomSession(eventId, buyer);
  expect(s.status).toBe("ADMITTED");
  return s;
}

async function waitroomSession(eventId: string, buyer: TestUser) {
  return (await json(await call(`/api/events/${eventId}/waitroom/session`, { token: buyer.token }))).waitroomSession;
}

async function myOrders(buyer: TestUser) {
  return json(await call("/api/orders?pageSize=100", { token: buyer.token }));
}

describe("an order request that died mid-checkout", () => {
  // A request the runtime killed leaves its Idempotency-Key IN_FLIGHT and never answers. The
  // tests make such a key from a real one: same user, key and body hash, answer removed.
  async function dieWithKey(buyer: TestUser, key: string, set: { orderId?: string; leaseExpiresAt: number }) {
    await env.DB.prepare(
      "UPDATE idempotency_keys SET state = 'IN_FLIGHT', response_status = NULL, response_body = NULL, " +
        "lease_expires_at = ?3, order_id = COALESCE(?4, order_id) WHERE user_id = ?1 AND key = ?2",
    )
      .bind(buyer.id, key, set.leaseExpiresAt, set.orderId ?? null)
      .run();
  }

  async function hubRpc(eventId: string, body: Record<string, unknown>) {
    const res = await hub(eventId).fetch("https://event-hub/rpc", { method: "POST", body: JSON.stringify(body) });
    expect(res.status).toBe(200);
    return res.json<any>();
  }

  it("waits out the dead request's lease, then gives back what it held and orders afresh", async () => {
    const event = await publishedEvent({ classes: [{ name: "GA", priceCents: 1000, total: 5 }] });
    const buyer = await registerAndLogin();
    const ga = event.classes[0].id;
    const body = { eventId: event.id, items: [{ ticketClassId: ga, quantity: 1 }], paymentMethod: "sandbox" };
    const first = await json(await order(buyer, body, "died-before-writing"));
    // It died after holding 2 tickets for "dead-order" and before writing that order.
    await hubRpc(event.id, { op: "reserve", orderId: "dead-order", userId: buyer.id, items: [{ ticketClassId: ga, quantity: 2 }] });
    await dieWithKey(buyer, "died-before-writing", { orderId: "dead-order", leaseExpiresAt: Date.now() + 60_000 });

    await expectProblem(await order(buyer, body, "died-before-writing"), 409, "IDEMPOTENCY_KEY_IN_FLIGHT");
    await dieWithKey(buyer, "died-before-writing", { leaseExpiresAt: Date.now() - 1 });

    const retried = await order(buyer, body, "died-before-writing");
    expect(retried.status).toBe(201);
    expect(retried.headers.get("idempotent-replayed")).toBeNull();
    const made = await json(retried);
    expect(made.order.id).toMatch(/^[0-9a-f-]{36}$/);
    expect([first.order.id, "dead-order"]).not.toContain(made.order.id);
    expect((await hubRpc(event.id, { op: "release", orderId: "dead-order" })).outcome).toBe("ALREADY_RELEASED");
    const [c] = await ticketClasses(event.id);
    expect(c.reserved).toBe(2); // the first order's ticket and the retry's, not the dead hold's
    const replayed = await order(buyer, body, "died-before-writing");
    expect(replayed.headers.get("idempotent-replayed")).toBe("true");
    expect((await json(replayed)).order.id).toBe(made.order.id);
  });

  it("answers with the order and payment link the dead request had written", async () => {
    const event = await publishedEvent();
    const buyer = await registerAndLogin();
    const body = { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 1 }], paymentMethod: "sandbox" };
    const first = await json(await order(buyer, body, "died-after-the-link"));
    await dieWithKey(buyer, "died-after-the-link", { leaseExpiresAt: Date.now() - 1 });

    const retried = await order(buyer, body, "died-after-the-link");
    expect(retried.status).toBe(201);
    const again = await json(retried);
    expect(again.order.id).toBe(first.order.id);
    expect(again.paymentUrl).toBe(first.paymentUrl);
    const [c] = await ticketClasses(event.id);
    expect(c.reserved).toBe(1);
  });

  it("closes a written order the dead request never got a payment link for, then orders afresh", async () => {
    const event = await publishedEvent();
    const buyer = await registerAndLogin();
    const body = { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 1 }], paymentMethod: "sandbox" };
    const first = await json(await order(buyer, body, "died-before-the-link"));
    await env.DB.prepare("UPDATE payments SET payment_url = NULL WHERE order_id = ?1").bind(first.order.id).run();
    await dieWithKey(buyer, "died-before-the-link", { leaseExpiresAt: Date.now() - 1 });

    await expectProblem(await order(buyer, body, "died-before-the-link"), 502, "PAYMENT_PROVIDER_UNAVAILABLE");
    expect(await orderStatus(buyer, first.order.id)).toMatchObject({ status: "FAILED", failureCode: "PAYMENT_PROVIDER_UNAVAILABLE" });
    expect((await ticketClasses(event.id))[0].reserved).toBe(0);

    // A 502 is not kept for replay: the same key now makes a new order.
    const fresh = await order(buyer, body, "died-before-the-link");
    expect(fresh.status).toBe(201);
    const freshId = (await json(fresh)).order.id;
    expect(freshId).toMatch(/^[0-9a-f-]{36}$/);
    expect(freshId).not.toBe(first.order.id);
    expect((await ticketClasses(event.id))[0].reserved).toBe(1);
  });
});

describe("ordering with a checkout token", () => {
  it("refuses a token whose checkout ended before holding or writing anything, in a sell-out too", async () => {
    const event = await publishedEvent({ allowWaitRoom: true, classes: [{ name: "GA", priceCents: 50_000, total: 1 }] });
    const [ann, bob] = [await registerAndLogin(), await registerAndLogin()];
    const line = (checkoutToken: string) => ({ eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 1 }], paymentMethod: "sandbox", checkoutToken });
    const annToken = (await admittedSession(event.id, ann)).checkoutToken;

    // Ann orders, then cancels: her checkout ends with the order.
    const first = await order(ann, line(annToken));
    expect(first.status).toBe(201);
    const { order: cancelled } = await json(first);
    expect((await call(`/api/orders/${cancelled.id}/cancel`, { method: "POST", token: ann.token })).status).toBe(200);
    expect(await waitroomSession(event.id, ann)).toMatchObject({ status: "EXPIRED", endReason: "ORDER_CANCELLED" });

    const annOrders = await myOrders(ann);
    expect(annOrders.total).toBe(1);
    let counters = await ticketClasses(event.id);
    expect(counters[0]).toMatchObject({ reserved: 0, sold: 0, available: 1 });
    await expectProblem(await order(ann, line(annToken)), 403, "CHECKOUT_TOKEN_INVALID");
    expect(await ticketClasses(event.id)).toEqual(counters);
    expect(await myOrders(ann)).toEqual(annOrders);

    // Bob takes the last ticket. The dead token hears that it is dead, not that tickets ran out.
    expect((await order(bob, line((await admittedSession(event.id, bob)).checkoutToken))).status).toBe(201);
    counters = await ticketClasses(event.id);
    expect(counters[0]).toMatchObject({ reserved: 1, available: 0 });
    await expectProblem(await order(ann, line(annToken)), 403, "CHECKOUT_TOKEN_INVALID");
    expect(await ticketClasses(event.id)).toEqual(counters);
    expect(await myOrders(ann)).toEqual(annOrders);
  });

  it("refuses a second order on a checkout that already holds one, holding nothing for it", async () => {
    const event = await publishedEvent({ allowWaitRoom: true, classes: [{ name: "GA", priceCents: 50_000, total: 5 }] });
    const buyer = await registerAndLogin();
    const { checkoutToken } = await admittedSession(event.id, buyer);
    const line = { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 2 }], paymentMethod: "sandbox", checkoutToken };
    expect((await order(buyer, line)).status).toBe(201);
    await expectProblem(await order(buyer, line), 403, "CHECKOUT_TOKEN_INVALID");
    expect((await ticketClasses(event.id))[0]).toMatchObject({ reserved: 2 });
    expect((await myOrders(buyer)).total).toBe(1);
  });

  it("keeps the buyer in checkout when the provider cannot create the payment: the same token orders again", async () => {
    const event = await publishedEvent({ allowWaitRoom: true, classes: [{ name: "GA", priceCents: 50_000, total: 5 }] });
    const buyer = await registerAndLogin();
    const admitted = await admittedSession(event.id, buyer);
    const line = (paymentMethod: string) => ({
      eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 2 }], paymentMethod, checkoutToken: admitted.checkoutToken,
    });
    await setProviderMode({ payos: "down", zalopay: "hang" });
    try {
      await expectProblem(await order(buyer, line("payos")), 502, "PAYMENT_PROVIDER_UNAVAILABLE");
      // No answer within the Worker's 8 s timeout: the same as an error.
      await expectProblem(await order(buyer, line("zalopay")), 502, "PAYMENT_PROVIDER_UNAVAILABLE");
    } finally {
      await setProviderMode({ payos: "ok", zalopay: "ok" });
    }
    // Still in checkout, with the deadline of the admission, and nothing held.
    const still = await waitroomSession(event.id, buyer);
    expect(still).toMatchObject({
      sessionId: admitted.sessionId, status: "ADMITTED", checkoutToken: admitted.checkoutToken, checkoutExpiresAt: admitted.checkoutExpiresAt,
    });
    expect((await ticketClasses(event.id))[0]).toMatchObject({ reserved: 0, sold: 0, available: 5 });

    const res = await order(buyer, line("sandbox"));
    expect(res.status).toBe(201);
    const created = await json(res);
    expect((await ticketClasses(event.id))[0]).toMatchObject({ reserved: 2, available: 3 });
    const mine = (await myOrders(buyer)).items;
    expect(mine.map((o: any) => [o.paymentMethod, o.status, o.failureCode])).toEqual([
      ["sandbox", "PENDING", null],
      ["zalopay", "FAILED", "PAYMENT_PROVIDER_UNAVAILABLE"],
      ["payos", "FAILED", "PAYMENT_PROVIDER_UNAVAILABLE"],
    ]);
    const payments = await env.DB.prepare("SELECT p.status FROM payments p JOIN orders o ON o.id = p.order_id WHERE o.user_id = ?1 AND o.status = 'FAILED'")
      .bind(buyer.id)
      .all<{ status: string }>();
    expect(payments.results.map((p) => p.status)).toEqual(["CANCELLED", "CANCELLED"]);

    // The new order owns the checkout now: paying it completes the session.
    await payInSandbox(created.paymentUrl);
    await eventually(async () => (await orderStatus(buyer, created.order.id)).status === "COMPLETED", "COMPLETED");
    await eventually(async () => (await waitroomSession(event.id, buyer)).status === "COMPLETED", "session COMPLETED");
  });

  it("ends the checkout when a hold expires after its payment page, and reopens it when no page was ever made", async () => {
    const event = await publishedEvent({ allowWaitRoom: true, classes: [{ name: "GA", priceCents: 50_000, total: 5 }] });
    const buyer = await registerAndLogin();
    const admitted = await admittedSession(event.id, buyer);
    const line = { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 1 }], paymentMethod: "sandbox", checkoutToken: admitted.checkoutToken };

    // The request that made this order died before the provider gave its link (the link is
    // taken away here), and its hold ran out meanwhile: the platform's delay, not the buyer's.
    const cut = (await json(await order(buyer, line))).order;
    await env.DB.prepare("UPDATE payments SET payment_url = NULL WHERE order_id = ?1").bind(cut.id).run();
    await expireHold(event.id, cut.id);
    await eventually(async () => (await orderStatus(buyer, cut.id)).status === "CANCELLED", "CANCELLED");
    await eventually(async () => {
      const res = await order(buyer, line);
      return res.status === 201 && (await json(res)).order;
    }, "the same token orders again");
    expect(await waitroomSession(event.id, buyer)).toMatchObject({ status: "ADMITTED", sessionId: admitted.sessionId, checkoutExpiresAt: admitted.checkoutExpiresAt });

    // This order's buyer had the payment page and let the hold run out: the checkout ends.
    const shown = (await myOrders(buyer)).items.find((o: any) => o.status === "PENDING");
    await expireHold(event.id, shown.id);
    await eventually(async () => (await waitroomSession(event.id, buyer)).status === "EXPIRED", "session EXPIRED");
    expect(await waitroomSession(event.id, buyer)).toMatchObject({ endReason: "ORDER_EXPIRED" });
    await expectProblem(await order(buyer, line), 403, "CHECKOUT_TOKEN_INVALID");
    expect((await ticketClasses(event.id))[0]).toMatchObject({ reserved: 0, sold: 0, available: 5 });
  });
});

async function pendingSandboxOrder(quantity = 1, total = 10) {
  const event = await publishedEvent({ classes: [{ name: "GA", priceCents: 50_000, total }] });
  const buyer = await registerAndLogin();
  const res = await order(buyer, { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity }], paymentMethod: "sandbox" });
  expect(res.status).toBe(201);
  const created = await json(res);
  const payment = await env.DB.prepare("SELECT id, provider_ref FROM payments WHERE order_id = ?1").bind(created.order.id).first<any>();
  return { event, buyer, created, payment };
}

async function signSandbox(event: Record<string, unknown>, secret = "test-sandbox-secret") {
  const data = JSON.stringify(event);
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const sig = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(data)));
  return JSON.stringify({ data, signature: [...sig].map((b) => b.toString(16).padStart(2, "0")).join("") });
}

/** The sandbox provider's signed notification for a stored payment. */
function sandboxNotice(payment: { id: string; provider_ref: string }, amount: number, outcome: string, txnId: string) {
  return signSandbox({ paymentId: payment.id, orderRef: payment.provider_ref, amount, currency: "VND", outcome, txnId, issuedAtMs: Date.now() });
}

describe("webhooks", () => {
  it("applies a payment delivered three times exactly once", async () => {
    const { event, buyer, created, payment } = await pendingSandboxOrder(2);
    const raw = await sandboxNotice(payment, 100_000, "paid", "dup-txn-1");
    for (let i = 0; i < 3; i++) {
      const res = await call("/api/payments/webhooks/sandbox", { rawBody: raw });
      expect(res.status).toBe(200);
    }
    await eventually(async () => (await orderStatus(buyer, created.order.id)).status === "COMPLETED", "COMPLETED");
    expect(await countOutbox(payment.id, "PAYMENT_COMPLETED")).toBe(1);
    const [c] = await ticketClasses(event.id);
    expect(c).toMatchObject({ sold: 2, reserved: 0 });
  });

  it("ignores a failure notice after the order completed", async () => {
    const { buyer, created, payment } = await pendingSandboxOrder();
    await payInSandbox(created.paymentUrl);
    await eventually(async () => (await orderStatus(buyer, created.order.id)).status === "COMPLETED", "COMPLETED");
    const late = await sandboxNotice(payment, 50_000, "declined", "late-decline");
    expect((await call("/api/payments/webhooks/sandbox", { rawBody: late })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await orderStatus(buyer, created.order.id)).status).toBe("COMPLETED");
  });

  it("rejects a forged signature and changes nothing", async () => {
    const { buyer, created, payment } = await pendingSandboxOrder();
    const forged = await signSandbox(
      { paymentId: payment.id, orderRef: payment.provider_ref, amount: 50_000, currency: "VND", outcome: "paid", txnId: "forged", issuedAtMs: Date.now() },
      "not-the-secret",
    );
    const res = await call("/api/payments/webhooks/sandbox", { rawBody: forged });
    expect(res.status).toBe(400);
    const row = await env.DB.prepare("SELECT status FROM payments WHERE id = ?1").bind(payment.id).first<any>();
    expect(row.status).toBe("PENDING");
    expect(await countOutbox(payment.id, "PAYMENT_COMPLETED")).toBe(0);
    expect((await orderStatus(buyer, created.order.id)).status).toBe("PENDING");
  });

  it("declines fail the order and give the tickets back", async () => {
    const { event, buyer, created } = await pendingSandboxOrder(3);
    expect(await json(await payInSandbox(created.paymentUrl, "decline"))).toEqual({ status: "DECLINED" });
    await eventually(async () => (await orderStatus(buyer, created.order.id)).status === "FAILED", "FAILED");
    const [c] = await ticketClasses(event.id);
    expect(c).toMatchObject({ reserved: 0, sold: 0, available: 10 });
  });

  it("records money taken after a decline (a second attempt on the provider's page): the tickets are sold again", async () => {
    const { event, buyer, created, payment } = await pendingSandboxOrder(2);
    await payInSandbox(created.paymentUrl, "decline");
    await eventually(async () => (await orderStatus(buyer, created.order.id)).status === "FAILED", "FAILED");
    const paid = await sandboxNotice(payment, 100_000, "paid", "second-attempt-paid");
    for (let i = 0; i < 2; i++) expect((await call("/api/payments/webhooks/sandbox", { rawBody: paid })).status).toBe(200);
    await eventually(async () => (await orderStatus(buyer, created.order.id)).status === "COMPLETED", "COMPLETED after the late money");
    const row = await env.DB.prepare("SELECT status, provider_txn_id FROM payments WHERE id = ?1").bind(payment.id).first<any>();
    expect(row).toEqual({ status: "COMPLETED", provider_txn_id: "second-attempt-paid" });
    expect(await countOutbox(payment.id, "PAYMENT_COMPLETED")).toBe(1);
    const [c] = await ticketClasses(event.id);
    expect(c).toMatchObject({ reserved: 0, sold: 2 });
    // A failure notice for the same payment afterwards changes nothing.
    const late = await sandboxNotice(payment, 100_000, "declined", "third-attempt-declined");
    expect((await call("/api/payments/webhooks/sandbox", { rawBody: late })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await orderStatus(buyer, created.order.id)).status).toBe("COMPLETED");
  });

  it("records money for a payment whose create call failed (a link the provider made anyway)", async () => {
    const event = await publishedEvent({ classes: [{ name: "GA", priceCents: 150_000, total: 5 }] });
    const buyer = await registerAndLogin();
    await setProviderMode({ payos: "down" });
    let orderId: string;
    try {
      const res = await order(buyer, { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 1 }], paymentMethod: "payos" });
      const problem = await expectProblem(res, 502, "PAYMENT_PROVIDER_UNAVAILABLE");
      orderId = (await json(await call("/api/orders", { token: buyer.token }))).items[0].id;
      expect(problem).toBeTruthy();
    } finally {
      await setProviderMode({ payos: "ok" });
    }
    const payment = await env.DB.prepare("SELECT id, provider_ref, status FROM payments WHERE order_id = ?1").bind(orderId).first<any>();
    expect(payment.status).toBe("CANCELLED");
    const body = await payosPaidWebhook(payment.provider_ref);
    const res = await call("/api/payments/webhooks/payos", { rawBody: body });
    expect(await json(res)).toEqual({ success: true });
    await eventually(async () => (await orderStatus(buyer, orderId)).status === "COMPLETED", "COMPLETED after the late money");
    const [c] = await ticketClasses(event.id);
    expect(c).toMatchObject({ reserved: 0, sold: 1 });
  });
});

async function expireHold(eventId: string, orderId: string) {
  // Time travel inside the object: the hold's deadline moves to the past, then its alarm runs.
  await runInDurableObject(hub(eventId), async (_instance: unknown, state: DurableObjectState) => {
    state.storage.sql.exec("UPDATE holds SET expires_at = 1 WHERE order_id = ?", orderId);
  });
  await runAlarmNow(hub(eventId));
}

describe("hold expiry and late payment", () => {
  it("cancels the order, returns the stock and frees the checkout slot", async () => {
    const { event, buyer, created } = await pendingSandboxOrder(2);
    await expireHold(event.id, created.order.id);
    await eventually(async () => (await orderStatus(buyer, created.order.id)).status === "CANCELLED", "CANCELLED");
    const [c] = await ticketClasses(event.id);
    expect(c).toMatchObject({ reserved: 0, sold: 0, available: 10 });
  });

  it("closes a pending order whose hold lapsed without its HOLD_EXPIRED message (the cron sweep)", async () => {
    const { event, buyer, created } = await pendingSandboxOrder(2);
    // The message was lost (dead-lettered, or a local queue restarted): D1 still says PENDING
    // long after the deadline, and the object still holds the tickets.
    await env.DB.prepare("UPDATE orders SET expires_at = ?1 WHERE id = ?2").bind(Date.now() - 3 * 60_000, created.order.id).run();
    expect((await ticketClasses(event.id))[0].reserved).toBe(2);
    await (exports as any).default.scheduled({ cron: "* * * * *", scheduledTime: new Date() });
    await eventually(async () => (await orderStatus(buyer, created.order.id)).status === "CANCELLED", "CANCELLED by the sweep");
    const [c] = await ticketClasses(event.id);
    expect(c).toMatchObject({ reserved: 0, sold: 0, available: 10 });
    // Money arriving now still takes the late path.
    await payInSandbox(created.paymentUrl);
    await eventually(async () => (await orderStatus(buyer, created.order.id)).status === "COMPLETED", "late COMPLETED");
  });

  it("completes a payment that arrives after expiry when stock allows", async () => {
    const { buyer, created, event } = await pendingSandboxOrder(1);
    await expireHold(event.id, created.order.id);
    await eventually(async () => (await orderStatus(buyer, created.order.id)).status === "CANCELLED", "CANCELLED");
    await payInSandbox(created.paymentUrl);
    await eventually(async () => (await orderStatus(buyer, created.order.id)).status === "COMPLETED", "late COMPLETED");
    const [c] = await ticketClasses(event.id);
    expect(c.sold).toBe(1);
  });

  it("flags a late payment for refund when the tickets are gone, never losing it", async () => {
    const { buyer, created, event } = await pendingSandboxOrder(1, 1);
    await expireHold(event.id, created.order.id);
    await eventually(async () => (await orderStatus(buyer, created.order.id)).status === "CANCELLED", "CANCELLED");
    const other = await registerAndLogin();
    expect((await order(other, { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 1 }], paymentMethod: "sandbox" })).status).toBe(201);
    await payInSandbox(created.paymentUrl);
    const o = await eventually(async () => {
      const o = await orderStatus(buyer, created.order.id);
      return o.refundStatus && o;
    }, "refund flagged");
    expect(o).toMatchObject({ status: "CANCELLED", refundStatus: "REFUND_REQUIRED", refundReason: "PAID_BUT_SOLD_OUT" });
    const [c] = await ticketClasses(event.id);
    expect(c.reserved + c.sold).toBeLessThanOrEqual(c.total);
  });
});

describe("owner cancel and order queries", () => {
  it("lets the owner cancel a pending order and no one else", async () => {
    const { event, buyer, created } = await pendingSandboxOrder(2);
    const stranger = await registerAndLogin();
    expect((await call(`/api/orders/${created.order.id}/cancel`, { method: "POST", token: stranger.token })).status).toBe(404);
    const res = await call(`/api/orders/${created.order.id}/cancel`, { method: "POST", token: buyer.token });
    expect(res.status).toBe(200);
    expect((await json(res)).order.status).toBe("CANCELLED");
    const [c] = await ticketClasses(event.id);
    expect(c.reserved).toBe(0);
    // Cancelling again is idempotent: same answer, nothing released twice.
    const again = await call(`/api/orders/${created.order.id}/cancel`, { method: "POST", token: buyer.token });
    expect((await json(again)).order.status).toBe("CANCELLED");
    expect((await ticketClasses(event.id))[0].reserved).toBe(0);
  });

  it("refuses to cancel an order that is no longer pending", async () => {
    const { buyer, created } = await pendingSandboxOrder();
    await payInSandbox(created.paymentUrl);
    await eventually(async () => (await orderStatus(buyer, created.order.id)).status === "COMPLETED", "COMPLETED");
    await expectProblem(await call(`/api/orders/${created.order.id}/cancel`, { method: "POST", token: buyer.token }), 409, "ORDER_NOT_CANCELLABLE");
  });

  it("shows an event's orders to its role holders only", async () => {
    const { event, created } = await pendingSandboxOrder();
    const res = await call(`/api/events/${event.id}/orders`, { token: event.organizer.token });
    expect(res.status).toBe(200);
    const page = await json(res);
    expect(page).toMatchObject({ page: 1, total: 1 });
    expect(page.items[0].id).toBe(created.order.id);
    const stranger = await registerAndLogin();
    expect((await call(`/api/events/${event.id}/orders`, { token: stranger.token })).status).toBe(403);
  });
});

describe("cancelling an event", () => {
  it("stops sales at once", async () => {
    const event = await publishedEvent();
    const buyer = await registerAndLogin();
    expect((await call(`/api/events/${event.id}/cancel`, { method: "POST", token: event.organizer.token })).status).toBe(200);
    const res = await order(buyer, { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 1 }], paymentMethod: "sandbox" });
    await expectProblem(res, 409, "SALE_NOT_OPEN");
    expect((await ticketClasses(event.id))[0].reserved).toBe(0);
  });
});

describe("the event log", () => {
  it("records the order's lifecycle once per event for its organizers", async () => {
    const { event, buyer, created } = await pendingSandboxOrder();
    await payInSandbox(created.paymentUrl);
    await eventually(async () => (await orderStatus(buyer, created.order.id)).status === "COMPLETED", "COMPLETED");
    const log = await eventually(async () => {
      const page = await json(await call(`/api/events/${event.id}/log?pageSize=50`, { token: event.organizer.token }));
      const types = page.items.map((e: any) => e.type);
      return ["ORDER_CREATED", "ORDER_COMPLETED", "CHECKOUT_COMPLETED"].every((t) => types.includes(t)) && page;
    }, "log entries");
    const completed = log.items.filter((e: any) => e.type === "ORDER_COMPLETED");
    expect(completed).toHaveLength(1);
    expect(completed[0].data.orderId).toBe(created.order.id);
    expect((await call(`/api/events/${event.id}/log`, { token: buyer.token })).status).toBe(403);
  });
});

// Real providers' notifications, signed as the providers sign them (see tests/fixtures for
// the vector-checked signers), through their real endpoints.
const hex = (buf: ArrayBuffer) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
async function hmac(hash: "SHA-256" | "SHA-512", key: string, msg: string) {
  const k = await crypto.subtle.importKey("raw", new TextEncoder().encode(key), { name: "HMAC", hash }, false, ["sign"]);
  return hex(await crypto.subtle.sign("HMAC", k, new TextEncoder().encode(msg)));
}

/** A PayOS "paid" webhook for 150,000 VND, signed as PayOS signs it (sorted `data` fields). */
async function payosPaidWebhook(providerRef: string) {
  const data: Record<string, unknown> = {
    orderCode: Number(providerRef), amount: 150_000, description: "TB order", accountNumber: "0123456789",
    reference: `FT${providerRef}`, transactionDateTime: "2026-11-26 10:00:00", currency: "VND",
    paymentLinkId: `plink${providerRef}`, code: "00", desc: "success",
  };
  const canonical = Object.keys(data).sort().map((k) => `${k}=${data[k]}`).join("&");
  return JSON.stringify({ code: "00", desc: "success", success: true, data, signature: await hmac("SHA-256", "test-payos-checksum-key", canonical) });
}

async function providerOrder(paymentMethod: string) {
  const event = await publishedEvent({ classes: [{ name: "GA", priceCents: 150_000, total: 5 }] });
  const buyer = await registerAndLogin();
  const res = await order(buyer, { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 1 }], paymentMethod });
  expect(res.status).toBe(201);
  const created = await json(res);
  const payment = await env.DB.prepare("SELECT id, provider_ref FROM payments WHERE order_id = ?1").bind(created.order.id).first<any>();
  return { event, buyer, created, payment };
}

describe("provider notifications", () => {
  it("PayOS: a signed webhook completes the order and is answered {success:true}", async () => {
    const { buyer, created, payment } = await providerOrder("payos");
    const body = await payosPaidWebhook(payment.provider_ref);
    const res = await call("/api/payments/webhooks/payos", { rawBody: body });
    expect(res.status).toBe(200);
    expect(await json(res)).toEqual({ success: true });
    await eventually(async () => (await orderStatus(buyer, created.order.id)).status === "COMPLETED", "PayOS COMPLETED");
    const forged = body.replace('"amount":150000', '"amount":1');
    expect((await call("/api/payments/webhooks/payos", { rawBody: forged })).status).toBe(400);
  });

  it("VNPay: a signed IPN answers 00, then 02 for the same order, 97 for a bad hash, 04 for a wrong amount", async () => {
    const { buyer, created, payment } = await providerOrder("vnpay");
    const params: Record<string, string> = {
      vnp_Amount: String(150_000 * 100), vnp_BankCode: "NCB", vnp_OrderInfo: "Thanh toan don hang", vnp_PayDate: "20261126100000",
      vnp_ResponseCode: "00", vnp_TmnCode: "TESTTMN1", vnp_TransactionNo: "14000001", vnp_TransactionStatus: "00", vnp_TxnRef: payment.provider_ref,
    };
    const sign = async (p: Record<string, string>) => {
      const query = new URLSearchParams(Object.keys(p).sort().map((k) => [k, p[k]])).toString();
      return `${query}&vnp_SecureHash=${await hmac("SHA-512", "test-vnpay-hash-secret", query)}`;
    };
    const ipn = async (q: string) => json(await call(`/api/payments/webhooks/vnpay?${q}`));
    expect((await ipn(await sign({ ...params, vnp_Amount: "100" }))).RspCode).toBe("04");
    const good = await sign(params);
    expect((await ipn(good.replace(/vnp_SecureHash=[0-9a-f]{4}/, "vnp_SecureHash=0000"))).RspCode).toBe("97");
    expect((await ipn(good)).RspCode).toBe("00");
    expect((await ipn(good)).RspCode).toBe("02");
    await eventually(async () => (await orderStatus(buyer, created.order.id)).status === "COMPLETED", "VNPay COMPLETED");
  });

  it("ZaloPay: a callback MAC'd with key2 completes the order; key1 is refused", async () => {
    const { buyer, created, payment } = await providerOrder("zalopay");
    const data = JSON.stringify({
      app_id: 2553, app_trans_id: payment.provider_ref, app_time: Date.now(), app_user: "buyer", amount: 150_000,
      embed_data: "{}", item: "[]", zp_trans_id: 260001, server_time: Date.now(), channel: 38, merchant_user_id: "u", user_fee_amount: 0, discount_amount: 0,
    });
    const wrong = await json(await call("/api/payments/webhooks/zalopay", { body: { data, mac: await hmac("SHA-256", "test-zalopay-key1", data), type: 1 } }));
    expect(wrong.return_code).toBe(-1);
    const ok = await json(await call("/api/payments/webhooks/zalopay", { body: { data, mac: await hmac("SHA-256", "test-zalopay-key2", data), type: 1 } }));
    expect(ok.return_code).toBe(1);
    await eventually(async () => (await orderStatus(buyer, created.order.id)).status === "COMPLETED", "ZaloPay COMPLETED");
  });
});
