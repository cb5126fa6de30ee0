// Free events through the HTTP API: an isFree event bought end to end through its waitroom
// (the order COMPLETED in the request, its tickets issued, the checkout slot freed for the
// next fan), the replay of its key, the purchase limit, a provider refused on a free event,
// `free` refused on a priced order, and what the event and the OpenAPI document say.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, expectProblem, json, registerAndLogin, runAlarmNow, type TestUser } from "./helpers";
import { publishedEvent, ticketClasses } from "./fixtures";

const hub = (eventId: string) => env.EVENT_HUB.get(env.EVENT_HUB.idFromName(eventId));
const join = (eventId: string, token: string) => call(`/api/events/${eventId}/waitroom/join`, { method: "POST", token });
const session = async (eventId: string, token: string) =>
  (await json(await call(`/api/events/${eventId}/waitroom/session`, { token }))).waitroomSession;

function order(buyer: TestUser, key: string, body: Record<string, unknown>) {
  return call("/api/orders", { token: buyer.token, headers: { "Idempotency-Key": key }, body });
}

describe("free events", () => {
  it("are bought through the waitroom: COMPLETED at once with tickets, and the slot goes to the next fan", async () => {
    const event = await publishedEvent({
      isFree: true,
      allowWaitRoom: true,
      waitroom: { maxConcurrentCheckouts: 1 },
      classes: [{ name: "Free entry", priceCents: 0, total: 10 }],
    });
    const [a, b] = [await registerAndLogin(), await registerAndLogin()];
    await join(event.id, a.token);
    await runAlarmNow(hub(event.id));
    const admitted = await session(event.id, a.token);
    expect(admitted.status).toBe("ADMITTED");
    await join(event.id, b.token);
    expect(await session(event.id, b.token)).toMatchObject({ status: "QUEUED", position: 1 });

    const key = crypto.randomUUID();
    const body = {
      eventId: event.id,
      items: [{ ticketClassId: event.classes[0].id, quantity: 2 }],
      paymentMethod: "free",
      checkoutToken: admitted.checkoutToken,
    };
    const res = await order(a, key, body);
    expect(res.status).toBe(201);
    const created = await json(res);
    expect(created.paymentUrl).toBeNull();
    expect(created.order).toMatchObject({ status: "COMPLETED", paymentMethod: "free", totalAmountCents: 0, currency: "VND" });
    expect(created.order.tickets).toHaveLength(2);
    for (const t of created.order.tickets) {
      expect(t).toMatchObject({ orderId: created.order.id, eventId: event.id, status: "VALID" });
      expect(t.qr).toMatch(/^TB1\./);
    }

    // The same tickets on the order as read later and in the buyer's list.
    const ids = created.order.tickets.map((t: any) => t.id).sort();
    const read = await json(await call(`/api/orders/${created.order.id}`, { token: a.token }));
    expect(read.order.status).toBe("COMPLETED");
    expect(read.order.tickets.map((t: any) => t.id).sort()).toEqual(ids);
    const mine = await json(await call("/api/tickets", { token: a.token }));
    expect(mine.items.map((t: any) => t.id).sort()).toEqual(ids);

    // Sold in the event's object, nothing left held.
    const [cls] = await ticketClasses(event.id);
    expect(cls).toMatchObject({ sold: 2, reserved: 0, available: 8 });

    // The key replays the first answer: the same order, no second one.
    const replay = await order(a, key, body);
    expect(replay.status).toBe(201);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect((await json(replay)).order.id).toBe(created.order.id);

    // The checkout ended with the order: its token orders nothing more.
    await expectProblem(await order(a, crypto.randomUUID(), body), 403, "CHECKOUT_TOKEN_INVALID");

    // The slot was freed: the next tick admits b, who orders without naming a method.
    await runAlarmNow(hub(event.id));
    const next = await session(event.id, b.token);
    expect(next.status).toBe("ADMITTED");
    const second = await order(b, crypto.randomUUID(), {
      eventId: event.id,
      items: [{ ticketClassId: event.classes[0].id, quantity: 1 }],
      checkoutToken: next.checkoutToken,
    });
    expect(second.status).toBe(201);
    const bought = await json(second);
    expect(bought.order.status).toBe("COMPLETED");
    expect(bought.order.tickets).toHaveLength(1);
    expect((await ticketClasses(event.id))[0]).toMatchObject({ sold: 3, reserved: 0 });
  });

  it("keep the purchase limit across free orders, and take no provider", async () => {
    const event = await publishedEvent({
      isFree: true,
      maxTicketsPerUser: 3,
      classes: [{ name: "Free entry", priceCents: 0, total: 10 }],
    });
    const read = await json(await call(`/api/events/${event.id}`));
    expect(read.paymentMethods).toEqual(["free"]);
    const buyer = await registerAndLogin();
    const lines = (quantity: number) => [{ ticketClassId: event.classes[0].id, quantity }];

    const first = await order(buyer, crypto.randomUUID(), { eventId: event.id, items: lines(2), paymentMethod: "free" });
    expect(first.status).toBe(201);
    expect((await json(first)).order).toMatchObject({ status: "COMPLETED", tickets: [{}, {}] });

    // 2 issued + 2 asked > 3: refused, nothing more held or written.
    await expectProblem(
      await order(buyer, crypto.randomUUID(), { eventId: event.id, items: lines(2), paymentMethod: "free" }),
      422,
      "PURCHASE_LIMIT_EXCEEDED",
    );
    // A provider on a free event: there is nothing to pay it.
    await expectProblem(
      await order(buyer, crypto.randomUUID(), { eventId: event.id, items: lines(1), paymentMethod: "sandbox" }),
      422,
      "PAYMENT_METHOD_UNAVAILABLE",
    );
    expect((await ticketClasses(event.id))[0]).toMatchObject({ sold: 2, reserved: 0 });
    const mine = await json(await call("/api/orders", { token: buyer.token }));
    expect(mine.items).toHaveLength(1);

    // Up to the limit is still fine.
    const last = await order(buyer, crypto.randomUUID(), { eventId: event.id, items: lines(1) });
    expect(last.status).toBe(201);
    expect((await json(last)).order.tickets).toHaveLength(1);
    expect((await json(await call("/api/tickets", { token: buyer.token }))).items).toHaveLength(3);
  });

  it("refuses free on a priced order, holding nothing", async () => {
    const event = await publishedEvent({ classes: [{ name: "GA", priceCents: 100_000, total: 5 }] });
    const buyer = await registerAndLogin();
    const res = await order(buyer, crypto.randomUUID(), {
      eventId: event.id,
      items: [{ ticketClassId: event.classes[0].id, quantity: 1 }],
      paymentMethod: "free",
    });
    await expectProblem(res, 422, "PAYMENT_METHOD_UNAVAILABLE");
    expect((await ticketClasses(event.id))[0]).toMatchObject({ reserved: 0, sold: 0 });
    const mine = await json(await call("/api/orders", { token: buyer.token }));
    expect(mine.items).toEqual([]);
  });

  it("are in the OpenAPI document: paymentUrl may be null, paymentMethod may be free", async () => {
    const doc = await json(await call("/api/openapi.json"));
    const schemas = doc.components.schemas;
    expect(schemas.CreatedOrder.required).toContain("paymentUrl");
    expect(schemas.CreatedOrder.properties.paymentUrl.type).toEqual(["string", "null"]);
    expect(schemas.PaymentMethod.enum).toContain("free");
    expect(JSON.stringify(schemas.CreateOrderRequest.properties.paymentMethod)).toContain("#/components/schemas/PaymentMethod");
    expect(schemas.Order.properties.paymentMethod.$ref).toBe("#/components/schemas/PaymentMethod");
  });
});
