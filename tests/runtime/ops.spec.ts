// The operator endpoint: one event's sale for platform admins (queue, admissions, checkout
// slots, holds, sold per class, orders, outbox and dead letters), and the dead-letter
// consumers that make DLQ depth something a Worker can report.
import { env } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { adminUser, call, expectProblem, json, registerAndLogin, runAlarmNow, type TestUser } from "./helpers";
import { eventually, publishedEvent } from "./fixtures";

const hub = (eventId: string) => env.EVENT_HUB.get(env.EVENT_HUB.idFromName(eventId));

async function status(eventId: string, token?: string) {
  return call(`/api/ops/events/${eventId}/status`, { token });
}

async function statusOf(eventId: string) {
  const res = await status(eventId, (await adminUser()).token);
  expect(res.status).toBe(200);
  return json(res);
}

async function session(eventId: string, buyer: TestUser) {
  return (await json(await call(`/api/events/${eventId}/waitroom/session`, { token: buyer.token }))).waitroomSession;
}

describe("who may read an event's sale status", () => {
  it("is platform admins only: 401 anonymous, 403 for buyers and for the event's own admins", async () => {
    const event = await publishedEvent();
    await expectProblem(await status(event.id), 401, "UNAUTHENTICATED");
    await expectProblem(await status(event.id, (await registerAndLogin()).token), 403, "FORBIDDEN");
    await expectProblem(await status(event.id, event.organizer.token), 403, "FORBIDDEN");
    expect((await status(event.id, (await adminUser()).token)).status).toBe(200);
  });

  it("answers 404 for an unknown or malformed event id", async () => {
    const admin = await adminUser();
    await expectProblem(await status("0190c7a0-0000-7000-8000-000000000000", admin.token), 404, "NOT_FOUND");
    await expectProblem(await status("not-an-id", admin.token), 404, "NOT_FOUND");
  });

  it("is in the OpenAPI document", async () => {
    const doc = await json(await call("/api/openapi.json"));
    const op = doc.paths["/api/ops/events/{id}/status"].get;
    expect(op.tags).toEqual(["operations"]);
    expect(op.responses["200"].content["application/json"].schema.$ref).toContain("SaleStatus");
    expect(doc.components.schemas.SaleStatus.properties.deadLetters).toBeDefined();
  });
});

describe("an event's sale status during an on-sale", () => {
  it("follows the queue, the admitted checkout, its hold and the sale", async () => {
    const event = await publishedEvent({
      allowWaitRoom: true,
      classes: [
        { name: "GA", priceCents: 100_000, total: 10 },
        { name: "VIP", priceCents: 500_000, total: 2 },
      ],
      waitroom: { maxConcurrentCheckouts: 1, admissionBatch: 1 },
    });
    const [first, second] = [await registerAndLogin(), await registerAndLogin()];
    await call(`/api/events/${event.id}/waitroom/join`, { method: "POST", token: first.token });
    await runAlarmNow(hub(event.id));
    expect((await session(event.id, first)).status).toBe("ADMITTED");
    await call(`/api/events/${event.id}/waitroom/join`, { method: "POST", token: second.token });
    await runAlarmNow(hub(event.id));
    expect((await session(event.id, second)).status).toBe("QUEUED");

    const created = await json(
      await call("/api/orders", {
        token: first.token,
        headers: { "Idempotency-Key": crypto.randomUUID() },
        body: {
          eventId: event.id,
          items: [{ ticketClassId: event.classes[0].id, quantity: 2 }],
          paymentMethod: "sandbox",
          checkoutToken: (await session(event.id, first)).checkoutToken,
        },
      }),
    );
    expect(created.order.status).toBe("PENDING");

    const during = await statusOf(event.id);
    expect(during).toMatchObject({
      eventId: event.id,
      eventStatus: "PUBLISHED",
      eventHubError: null,
      eventHub: {
        saleState: "OPEN",
        waitroom: { queueLength: 1, admitted: 1, checkoutSlotsInUse: 1, maxCheckoutSlots: 1, saleOpened: true, closed: null },
        activeHolds: 1,
      },
      orders: { pending: 1, pendingPastHold: 0, completed: 0, cancelled: 0, failed: 0, refundRequired: 0 },
      deadLetters: { openForEvent: 0 },
    });
    expect(during.eventHub.classes).toEqual([
      { id: event.classes[0].id, name: "GA", total: 10, reserved: 2, sold: 0, available: 8, status: "ACTIVE" },
      { id: event.classes[1].id, name: "VIP", total: 2, reserved: 0, sold: 0, available: 2, status: "ACTIVE" },
    ]);
    expect(new Date(during.generatedAt).getTime()).toBeGreaterThan(Date.now() - 60_000);

    const paid = await call(`${new URL(created.paymentUrl).pathname}/pay`, { method: "POST" });
    expect(paid.status).toBe(200);
    // The freed checkout slot goes to the fan who was waiting.
    const after = await eventually(async () => {
      await runAlarmNow(hub(event.id));
      const s = await statusOf(event.id);
      return s.orders.completed === 1 && s.eventHub.waitroom.queueLength === 0 && s;
    }, "the order completed and the next fan admitted");
    expect((await session(event.id, second)).status).toBe("ADMITTED");
    expect(after.eventHub.waitroom).toMatchObject({ queueLength: 0, admitted: 1, checkoutSlotsInUse: 1 });
    expect(after.eventHub.activeHolds).toBe(0);
    expect(after.eventHub.classes[0]).toMatchObject({ reserved: 0, sold: 2, available: 8 });
    expect(after.orders).toMatchObject({ pending: 0, completed: 1 });
  });

  it("counts this event's unpublished outbox rows and PENDING orders past their hold", async () => {
    const event = await publishedEvent();
    const buyer = await registerAndLogin();
    const created = await json(
      await call("/api/orders", {
        token: buyer.token,
        headers: { "Idempotency-Key": crypto.randomUUID() },
        body: { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 1 }], paymentMethod: "sandbox" },
      }),
    );
    // A stuck saga: the hold ran out but nothing closed the order; and a relay that keeps failing.
    const past = Date.now() - 60_000;
    const stuckId = `stuck-${crypto.randomUUID()}`;
    await env.DB.prepare("UPDATE orders SET expires_at = ?2 WHERE id = ?1").bind(created.order.id, past).run();
    await env.DB.prepare(
      "INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, queue, payload, created_at, retry_count, last_error) " +
        "VALUES (?1, 'order', ?2, 'ORDER_CREATED', 'DOMAIN_EVENTS', ?3, ?4, 3, 'queue unavailable')",
    )
      .bind(stuckId, created.order.id, JSON.stringify({ type: "ORDER_CREATED", id: stuckId, eventId: event.id }), past)
      .run();

    const s = await statusOf(event.id);
    expect(s.orders).toMatchObject({ pending: 1, pendingPastHold: 1, oldestExpiredHoldAt: new Date(past).toISOString() });
    expect(s.outbox.unpublishedForEvent).toBe(1);
    expect(s.outbox.unpublished).toBeGreaterThanOrEqual(1);
    expect(s.outbox.failing).toBeGreaterThanOrEqual(1);
    // Across all events, so at most as old as the row stuck here.
    expect(Date.parse(s.outbox.oldestUnpublishedAt)).toBeLessThanOrEqual(past);
  });
});

describe("dead letters", () => {
  it("records a message that lands on a dead-letter queue, counts it, and replays it as the README says", async () => {
    const event = await publishedEvent();
    const before = (await statusOf(event.id)).deadLetters;
    const body = { type: "PAYMENT_COMPLETED", id: `msg-${crypto.randomUUID()}`, eventId: event.id, orderId: "order-x" };
    const sentAt = Date.now();
    await (env as any).TEST_PAYMENT_EVENTS_DLQ.send(body, { contentType: "json" });
    const s = await eventually(async () => {
      const s = await statusOf(event.id);
      return s.deadLetters.openForEvent === 1 && s;
    }, "the dead letter recorded");
    expect(s.deadLetters.open).toBe(before.open + 1);
    expect(s.deadLetters.paymentEvents).toBe(before.paymentEvents + 1);
    expect(Date.parse(s.deadLetters.newestAt)).toBeGreaterThanOrEqual(sentAt);
    const row = await env.DB.prepare("SELECT * FROM dead_letters WHERE body_id = ?1").bind(body.id).first<any>();
    expect(row).toMatchObject({
      queue: "tb-payment-events-dlq",
      source: "PAYMENT_EVENTS",
      type: "PAYMENT_COMPLETED",
      event_id: event.id,
      order_id: "order-x",
      resolved_at: null,
    });
    expect(JSON.parse(row.body)).toEqual(body);

    // The README's replay: back into the outbox, published by the cron relay, consumed once.
    const replay = [
      `INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, queue, payload, created_at)
       SELECT 'replay-' || message_id, 'dead_letter', message_id, COALESCE(type, 'UNKNOWN'), source, body,
              unixepoch('now') * 1000
       FROM dead_letters WHERE message_id = ?1 AND resolved_at IS NULL`,
      `UPDATE dead_letters SET resolved_at = unixepoch('now') * 1000 WHERE message_id = ?1`,
    ];
    for (const sql of replay) await env.DB.prepare(sql).bind(row.message_id).run();
    // The cron run (the Worker's scheduled handler) relays the outbox.
    await (exports as any).default.scheduled({ cron: "* * * * *", scheduledTime: new Date() });
    await eventually(
      async () => env.DB.prepare("SELECT 1 AS done FROM processed_messages WHERE message_id = ?1").bind(body.id).first(),
      "the replayed message consumed",
    );
    expect((await statusOf(event.id)).deadLetters.openForEvent).toBe(0);
  });

  it("catches a poison message after the payment queue's retries (wrangler.toml's dead_letter_queue)", { timeout: 90_000 }, async () => {
    const event = await publishedEvent();
    // No `id`: the saga refuses it on every delivery until the queue gives up.
    const body = { type: "PAYMENT_COMPLETED", eventId: event.id, orderId: "poison-order" };
    await (env as any).PAYMENT_EVENTS.send(body, { contentType: "json" });
    const row = await eventually(
      async () => env.DB.prepare("SELECT * FROM dead_letters WHERE order_id = 'poison-order' AND event_id = ?1").bind(event.id).first<any>(),
      "the poison message dead-lettered",
      80_000,
    );
    expect(row).toMatchObject({ queue: "tb-payment-events-dlq", source: "PAYMENT_EVENTS", body_id: null });
    expect((await statusOf(event.id)).deadLetters.openForEvent).toBe(1);
  });
});
