// The per-event Durable Object on workerd, spoken to directly in its wire protocol
// (`POST https://hub/rpc` with an `op`-tagged JSON body; `GET /ws` for waitroom sockets).
// Every test uses its own event id, so its own object and storage.
import { env, evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { runAlarmNow } from "./helpers";

type Json = any;
type Hub = DurableObjectStub;

const MINUTE = 60_000;
const PAUSED = { maxConcurrentCheckouts: 0, checkoutTtlSeconds: 900, admissionBatch: 100 };

function hubOf(eventId: string): Hub {
  return env.EVENT_HUB.get(env.EVENT_HUB.idFromName(eventId));
}

async function call(hub: Hub, request: Json): Promise<{ status: number; body: Json }> {
  const res = await hub.fetch("https://hub/rpc", { method: "POST", body: JSON.stringify(request) });
  return { status: res.status, body: await res.json() };
}

async function ok(hub: Hub, request: Json): Promise<Json> {
  const { status, body } = await call(hub, request);
  expect(status, `${request.op}: ${JSON.stringify(body)}`).toBe(200);
  return body;
}

async function refused(hub: Hub, request: Json, status: number, code: string) {
  const res = await call(hub, request);
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body.code).toBe(code);
  return res.body;
}

interface EventOptions {
  status?: string;
  classes?: Array<[string, number]>;
  waitroom?: Json;
  maxTicketsPerUser?: number;
  saleStartsAtMs?: number;
  saleEndsAtMs?: number;
}

function setupOf(eventId: string, options: EventOptions = {}): Json {
  return {
    op: "syncEvent",
    eventId,
    status: options.status ?? "PUBLISHED",
    saleStartsAtMs: options.saleStartsAtMs ?? Date.now() - MINUTE,
    saleEndsAtMs: options.saleEndsAtMs ?? Date.now() + 60 * MINUTE,
    maxTicketsPerUser: options.maxTicketsPerUser,
    allowWaitRoom: options.waitroom !== undefined,
    waitroom: options.waitroom ?? { maxConcurrentCheckouts: 100, checkoutTtlSeconds: 900, admissionBatch: 100 },
  };
}

/** A fresh event's object, synced and with its ticket classes created. */
async function eventWith(options: EventOptions = {}) {
  const eventId = `evt-${crypto.randomUUID()}`;
  const hub = hubOf(eventId);
  await ok(hub, setupOf(eventId, options));
  for (const [id, total] of options.classes ?? []) {
    await ok(hub, { op: "upsertClass", id, total });
  }
  return { eventId, hub };
}

function reserve(orderId: string, userId: string, items: Array<[string, number]>, extra: Json = {}) {
  return {
    op: "reserve",
    orderId,
    userId,
    items: items.map(([ticketClassId, quantity]) => ({ ticketClassId, quantity })),
    ...extra,
  };
}

/** The order placed with an admitted session's checkout token: binds it and holds its tickets. */
function reserveForCheckout(sessionId: string, orderId: string, userId: string, items: Array<[string, number]>, extra: Json = {}) {
  const lines = items.map(([ticketClassId, quantity]) => ({ ticketClassId, quantity }));
  return { op: "reserveForCheckout", sessionId, reserve: { orderId, userId, items: lines, ...extra } };
}

async function classes(hub: Hub): Promise<Record<string, Json>> {
  const { items } = await ok(hub, { op: "availability" });
  return Object.fromEntries(items.map((c: Json) => [c.id, c]));
}

async function session(hub: Hub, userId: string): Promise<Json> {
  return (await ok(hub, { op: "session", userId })).waitroomSession;
}

async function join(hub: Hub, userId: string): Promise<Json> {
  return (await ok(hub, { op: "join", userId })).waitroomSession;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function base64UrlToBytes(text: string): Uint8Array {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

/** Verifies an HS256 JWT with the Worker's secret and returns its claims. */
async function verifiedClaims(token: string): Promise<Json> {
  const [header, payload, signature] = token.split(".");
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(env.JWT_SECRET),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
  const valid = await crypto.subtle.verify(
    "HMAC",
    key,
    base64UrlToBytes(signature),
    new TextEncoder().encode(`${header}.${payload}`),
  );
  expect(valid, "checkout token signature").toBe(true);
  expect(JSON.parse(new TextDecoder().decode(base64UrlToBytes(header))).alg).toBe("HS256");
  return JSON.parse(new TextDecoder().decode(base64UrlToBytes(payload)));
}

describe("inventory under concurrency", () => {
  it("gives exactly 50 holds to 200 concurrent one-ticket orders for a class of 50", async () => {
    const { hub } = await eventWith({ classes: [["ga", 50]] });

    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => call(hub, reserve(`o-${i}`, `u-${i}`, [["ga", 1]]))),
    );

    const held = results.filter((r) => r.status === 200);
    const refusedOnes = results.filter((r) => r.status !== 200);
    expect(held).toHaveLength(50);
    expect(refusedOnes).toHaveLength(150);
    for (const r of refusedOnes) expect([r.status, r.body.code]).toEqual([409, "INSUFFICIENT_INVENTORY"]);
    expect((await classes(hub)).ga).toMatchObject({ total: 50, reserved: 50, sold: 0, available: 0 });
    const status = await ok(hub, { op: "status" });
    expect(status.activeHolds).toBe(50);
  });

  it("holds multi-class orders all or nothing under 200 concurrent requests", async () => {
    const { hub } = await eventWith({ classes: [["ga", 50], ["vip", 20]] });
    const orders = Array.from({ length: 200 }, (_, i) =>
      i % 2 === 0 ? reserve(`o-${i}`, `u-${i}`, [["ga", 3], ["vip", 1]]) : reserve(`o-${i}`, `u-${i}`, [["ga", 1]]),
    );

    const results = await Promise.all(orders.map((order) => call(hub, order)));

    let ga = 0;
    let vip = 0;
    results.forEach((r, i) => {
      if (r.status !== 200) {
        expect(r.body.code).toBe("INSUFFICIENT_INVENTORY");
        return;
      }
      for (const item of orders[i].items) {
        if (item.ticketClassId === "ga") ga += item.quantity;
        else vip += item.quantity;
      }
    });
    const counters = await classes(hub);
    expect(counters.ga.reserved).toBe(ga);
    expect(counters.vip.reserved).toBe(vip);
    expect(ga).toBeLessThanOrEqual(50);
    expect(vip).toBeLessThanOrEqual(20);
    expect(counters.ga.available).toBe(50 - ga);
    expect(counters.vip.available).toBe(20 - vip);
    // GA is what runs out: every ticket is gone, none was held twice.
    expect(ga).toBe(50);
  });
});

describe("holds", () => {
  it("answers a repeated reserve, confirm and release with the first answer", async () => {
    const { hub } = await eventWith({ classes: [["ga", 10]] });

    const first = await ok(hub, reserve("o1", "u1", [["ga", 2]]));
    const again = await ok(hub, reserve("o1", "u1", [["ga", 2]]));
    expect(again).toEqual(first);
    expect((await classes(hub)).ga).toMatchObject({ reserved: 2, sold: 0, available: 8 });
    await refused(hub, reserve("o1", "u1", [["ga", 3]]), 409, "ORDER_ID_CONFLICT");

    const confirmed = await ok(hub, { op: "confirm", orderId: "o1" });
    expect(confirmed.outcome).toBe("CONFIRMED");
    expect(await ok(hub, { op: "confirm", orderId: "o1" })).toEqual(confirmed);
    expect((await ok(hub, { op: "release", orderId: "o1" })).outcome).toBe("ALREADY_CONFIRMED");
    expect((await classes(hub)).ga).toMatchObject({ reserved: 0, sold: 2, available: 8 });

    await ok(hub, reserve("o2", "u2", [["ga", 3]]));
    expect((await ok(hub, { op: "release", orderId: "o2" })).outcome).toBe("RELEASED");
    expect((await ok(hub, { op: "release", orderId: "o2" })).outcome).toBe("ALREADY_RELEASED");
    expect((await ok(hub, { op: "release", orderId: "nope" })).outcome).toBe("UNKNOWN_ORDER");
    await refused(hub, { op: "confirm", orderId: "nope" }, 404, "HOLD_NOT_FOUND");
    expect((await classes(hub)).ga).toMatchObject({ reserved: 0, sold: 2, available: 8 });
  });

  it("refuses a total below what is held or sold and pauses a class", async () => {
    const { hub } = await eventWith({ classes: [["ga", 10]] });
    await ok(hub, reserve("o1", "u1", [["ga", 6]]));

    const below = await refused(hub, { op: "updateClass", ticketClassId: "ga", total: 5 }, 409, "TOTAL_BELOW_COMMITTED");
    expect(below.detail).toContain("6");
    const exact = await ok(hub, { op: "updateClass", ticketClassId: "ga", total: 6 });
    expect(exact.ticketClass).toMatchObject({ total: 6, reserved: 6, available: 0 });

    // A refused total rolls back the status change written before it (one transaction).
    await refused(hub, { op: "updateClass", ticketClassId: "ga", total: 1, status: "PAUSED" }, 409, "TOTAL_BELOW_COMMITTED");
    expect((await classes(hub)).ga.status).toBe("ACTIVE");

    await ok(hub, { op: "updateClass", ticketClassId: "ga", total: 20, status: "PAUSED" });
    await refused(hub, reserve("o2", "u2", [["ga", 1]]), 409, "CLASS_NOT_ON_SALE");
    await refused(hub, { op: "updateClass", ticketClassId: "nope", total: 1 }, 404, "UNKNOWN_TICKET_CLASS");
  });

  it("sells only while the event is published and inside its sale window, within the user limit", async () => {
    const { eventId, hub } = await eventWith({ status: "APPROVED", classes: [["ga", 10]], maxTicketsPerUser: 2 });
    await refused(hub, reserve("o1", "u1", [["ga", 1]]), 409, "SALE_NOT_OPEN");

    await ok(hub, setupOf(eventId, { saleStartsAtMs: Date.now() + 60 * MINUTE, saleEndsAtMs: Date.now() + 120 * MINUTE, maxTicketsPerUser: 2 }));
    await refused(hub, reserve("o1", "u1", [["ga", 1]]), 409, "SALE_NOT_OPEN");

    await ok(hub, setupOf(eventId, { maxTicketsPerUser: 2 }));
    await ok(hub, reserve("o1", "u1", [["ga", 2]]));
    await refused(hub, reserve("o2", "u1", [["ga", 1]]), 422, "PURCHASE_LIMIT_EXCEEDED");
    await refused(hub, reserve("o3", "u2", [["ga", 0]]), 400, "VALIDATION_FAILED");
  });

  it("releases and confirms multi-class holds class by class, and counts only live tickets against the limit", async () => {
    // The object reads a hold with all its classes, and a reserve's hold, settings, classes and
    // the user's count, in one query each: these are the rows those queries must get right.
    const { hub } = await eventWith({ classes: [["ga", 10], ["vip", 5]], maxTicketsPerUser: 6 });
    await ok(hub, reserve("o1", "u1", [["ga", 2], ["vip", 1]]));
    await refused(hub, reserve("o2", "u1", [["ga", 1], ["nope", 1]]), 404, "UNKNOWN_TICKET_CLASS");
    expect((await ok(hub, { op: "release", orderId: "o1" })).outcome).toBe("RELEASED");
    expect(await classes(hub)).toMatchObject({ ga: { reserved: 0, sold: 0 }, vip: { reserved: 0, sold: 0 } });

    // The released tickets no longer count: 5 of the 6 allowed.
    await ok(hub, reserve("o3", "u1", [["ga", 3], ["vip", 2]]));
    expect((await ok(hub, { op: "confirm", orderId: "o3" })).outcome).toBe("CONFIRMED");
    await refused(hub, reserve("o4", "u1", [["vip", 2]]), 422, "PURCHASE_LIMIT_EXCEEDED");
    await ok(hub, reserve("o5", "u1", [["ga", 1]]));
    await ok(hub, reserve("o6", "u2", [["vip", 3]]));
    expect(await classes(hub)).toMatchObject({
      ga: { reserved: 1, sold: 3, available: 6 },
      vip: { reserved: 3, sold: 2, available: 0 },
    });
  });

  it("expires a lapsed hold from the alarm and frees its stock; the saga's word ends or reopens the checkout", async () => {
    const { eventId, hub } = await eventWith({
      classes: [["ga", 5]],
      waitroom: { maxConcurrentCheckouts: 1, checkoutTtlSeconds: 900, admissionBatch: 10 },
    });
    const first = await join(hub, "fan-1");
    await join(hub, "fan-2");
    await runAlarmNow(hub);
    expect((await session(hub, "fan-1")).status).toBe("ADMITTED");
    expect((await session(hub, "fan-2")).status).toBe("QUEUED");
    await ok(hub, reserveForCheckout(first.sessionId, "order-1", "fan-1", [["ga", 3]], { holdForMs: 1 }));
    expect((await classes(hub)).ga.available).toBe(2);
    await sleep(5);

    await runAlarmNow(hub);

    expect((await classes(hub)).ga).toMatchObject({ reserved: 0, available: 5 });
    expect((await ok(hub, { op: "release", orderId: "order-1" })).outcome).toBe("ALREADY_EXPIRED");
    // The checkout waits for the saga, which alone knows whether a payment page was shown.
    expect((await session(hub, "fan-1")).status).toBe("ADMITTED");
    expect((await session(hub, "fan-2")).status).toBe("QUEUED");
    // It found none (the create call was cut off): the checkout is fan-1's for another order.
    await ok(hub, { op: "unbindOrder", orderId: "order-1" });
    expect((await session(hub, "fan-1")).status).toBe("ADMITTED");
    await ok(hub, reserveForCheckout(first.sessionId, "order-2", "fan-1", [["ga", 1]], { holdForMs: 1 }));
    await sleep(5);
    await runAlarmNow(hub);
    // This one had a payment page: the saga closes it as expired and the checkout ends.
    await ok(hub, { op: "checkoutResolved", orderId: "order-2", outcome: "EXPIRED" });
    const lapsed = await session(hub, "fan-1");
    expect(lapsed).toMatchObject({ status: "EXPIRED", endReason: "ORDER_EXPIRED" });
    // The freed slot goes to the next fan in the next round.
    await runAlarmNow(hub);
    expect((await session(hub, "fan-2")).status).toBe("ADMITTED");
    const status = await ok(hub, { op: "status" });
    expect(status).toMatchObject({ eventId, activeHolds: 0, outboxBacklog: 0 });
    expect(status.waitroom).toMatchObject({ slotsInUse: 1, maxSlots: 1, admitted: 1 });
  });

  it("ends the checkout in the alarm itself when the hold outlives the checkout's deadline", async () => {
    const { hub } = await eventWith({
      classes: [["ga", 5]],
      waitroom: { maxConcurrentCheckouts: 1, checkoutTtlSeconds: 1, admissionBatch: 10 },
    });
    const first = await join(hub, "fan-1");
    await join(hub, "fan-2");
    await runAlarmNow(hub);
    await ok(hub, reserveForCheckout(first.sessionId, "order-1", "fan-1", [["ga", 1]], { holdForMs: 1_100 }));
    await sleep(1_200);

    // The token ran out before the hold: whatever the saga finds, it could not be used again.
    await runAlarmNow(hub);
    expect(await session(hub, "fan-1")).toMatchObject({ status: "EXPIRED", endReason: "ORDER_EXPIRED" });
    await runAlarmNow(hub);
    expect((await session(hub, "fan-2")).status).toBe("ADMITTED");
  });
});

describe("durability", () => {
  it("keeps identical counters, queue and positions when the object restarts", async () => {
    const { hub, eventId } = await eventWith({ classes: [["ga", 30], ["vip", 5]], waitroom: PAUSED });
    await ok(hub, reserve("o1", "u1", [["ga", 4], ["vip", 1]]));
    await ok(hub, reserve("o2", "u2", [["ga", 2]]));
    await ok(hub, { op: "confirm", orderId: "o2" });
    for (const fan of ["a", "b", "c", "d"]) await join(hub, fan);
    await ok(hub, { op: "leave", userId: "b" });
    const before = {
      classes: await classes(hub),
      positions: await Promise.all(["a", "c", "d"].map((fan) => session(hub, fan))),
      status: await ok(hub, { op: "status" }),
    };

    await evictDurableObject(hub);
    const restarted = hubOf(eventId);

    expect(await classes(restarted)).toEqual(before.classes);
    expect(await Promise.all(["a", "c", "d"].map((fan) => session(restarted, fan)))).toEqual(before.positions);
    expect(before.positions.map((s: Json) => s.position)).toEqual([1, 2, 3]);
    const status = await ok(restarted, { op: "status" });
    // The outbox may still be draining in the background; everything else is state.
    const { outboxBacklog: _before, ...stateBefore } = before.status;
    const { outboxBacklog: _after, ...stateAfter } = status;
    expect(stateAfter).toEqual(stateBefore);
    expect(status.waitroom.queueLength).toBe(3);
  });
});

describe("cancellation", () => {
  it("stops new holds at once and closes the waitroom without admitting anyone", async () => {
    const { eventId, hub } = await eventWith({ classes: [["ga", 10]], waitroom: PAUSED });
    await ok(hub, reserve("o1", "u1", [["ga", 1]]));
    for (const fan of ["a", "b", "c"]) await join(hub, fan);

    await ok(hub, setupOf(eventId, { status: "CANCELLED", waitroom: { ...PAUSED, maxConcurrentCheckouts: 10 } }));

    await refused(hub, reserve("o2", "u2", [["ga", 1]]), 409, "SALE_NOT_OPEN");
    await refused(hub, { op: "join", userId: "late" }, 409, "SALE_NOT_OPEN");
    await runAlarmNow(hub);
    for (const fan of ["a", "b", "c"]) {
      expect(await session(hub, fan)).toMatchObject({ status: "EXPIRED", endReason: "EVENT_CANCELLED", queueLength: 0 });
    }
    const status = await ok(hub, { op: "status" });
    expect(status.saleState).toBe("CANCELLED");
    expect(status.waitroom).toMatchObject({ closed: "EVENT_CANCELLED", queueLength: 0, slotsInUse: 0 });
    // A payment after the cancellation is refused for a refund.
    expect((await ok(hub, { op: "confirm", orderId: "o1" })).outcome).toBe("PAID_BUT_EVENT_CANCELLED");
    // Cancelled is final.
    await refused(hub, setupOf(eventId, { waitroom: PAUSED }), 409, "INVALID_STATUS_TRANSITION");
  });
});

describe("waitroom", () => {
  it("joins idempotently with positions 1..n, and a leave moves everyone behind up", async () => {
    const { eventId, hub } = await eventWith({ waitroom: PAUSED });
    const fans = ["f1", "f2", "f3", "f4", "f5"];
    const joined = [];
    for (const fan of fans) joined.push(await join(hub, fan));
    expect(joined.map((s) => s.position)).toEqual([1, 2, 3, 4, 5]);
    expect(joined[4]).toMatchObject({ eventId, status: "QUEUED", queueLength: 5 });

    const again = await join(hub, "f3");
    expect(again.sessionId).toBe(joined[2].sessionId);
    expect(again.position).toBe(3);

    await ok(hub, { op: "leave", userId: "f2" });
    const after = await Promise.all(fans.map((fan) => session(hub, fan)));
    expect(after.map((s) => s.status)).toEqual(["QUEUED", "LEFT", "QUEUED", "QUEUED", "QUEUED"]);
    expect(after.map((s) => s.position)).toEqual([1, null, 2, 3, 4]);
    expect(after[0].queueLength).toBe(4);
    expect(await session(hub, "stranger")).toBeNull();
  });

  it("admits up to the slot limit in join order with a verifiable checkout token; completion frees a slot", async () => {
    const { eventId, hub } = await eventWith({ classes: [["ga", 10]], waitroom: PAUSED });
    const fans = ["w1", "w2", "w3", "w4", "w5"];
    for (const fan of fans) await join(hub, fan);

    await ok(hub, setupOf(eventId, { waitroom: { maxConcurrentCheckouts: 2, checkoutTtlSeconds: 600, admissionBatch: 10 } }));
    await runAlarmNow(hub);

    const views = await Promise.all(fans.map((fan) => session(hub, fan)));
    expect(views.map((s) => s.status)).toEqual(["ADMITTED", "ADMITTED", "QUEUED", "QUEUED", "QUEUED"]);
    expect(views.slice(2).map((s) => s.position)).toEqual([1, 2, 3]);
    const admitted = views[0];
    expect(admitted.checkoutToken).toEqual(expect.any(String));
    expect(Date.parse(admitted.checkoutExpiresAt)).toBeGreaterThan(Date.now() + 500_000);
    const claims = await verifiedClaims(admitted.checkoutToken);
    expect(claims).toMatchObject({ sub: "w1", evt: eventId, sid: admitted.sessionId, aud: "ticketbottle-checkout" });
    expect(Math.abs(claims.exp * 1000 - Date.parse(admitted.checkoutExpiresAt))).toBeLessThan(1000);
    // Minted from the session: asking again gives the same token.
    expect((await session(hub, "w1")).checkoutToken).toBe(admitted.checkoutToken);

    await refused(hub, reserveForCheckout(admitted.sessionId, "x", "w2", [["ga", 1]]), 403, "CHECKOUT_TOKEN_INVALID");
    const bound = await ok(hub, reserveForCheckout(admitted.sessionId, "order-w1", "w1", [["ga", 1]]));
    expect(await ok(hub, reserveForCheckout(admitted.sessionId, "order-w1", "w1", [["ga", 1]]))).toEqual(bound);
    await refused(hub, { op: "leave", userId: "w1" }, 409, "CHECKOUT_IN_PROGRESS");
    await ok(hub, { op: "checkoutResolved", orderId: "order-w1", outcome: "COMPLETED" });
    await ok(hub, { op: "checkoutResolved", orderId: "order-w1", outcome: "COMPLETED" });
    await ok(hub, { op: "checkoutResolved", orderId: "unknown-order", outcome: "FAILED" });
    expect((await session(hub, "w1")).status).toBe("COMPLETED");

    await runAlarmNow(hub);
    const next = await Promise.all(fans.map((fan) => session(hub, fan)));
    expect(next.map((s) => s.status)).toEqual(["COMPLETED", "ADMITTED", "ADMITTED", "QUEUED", "QUEUED"]);
    const status = await ok(hub, { op: "status" });
    expect(status.waitroom).toMatchObject({ slotsInUse: 2, maxSlots: 2, queueLength: 2 });
  });

  it("binds a checkout's order and holds its tickets in one step, and unbinds it on request", async () => {
    const { hub } = await eventWith({
      classes: [["ga", 2]],
      waitroom: { maxConcurrentCheckouts: 10, checkoutTtlSeconds: 900, admissionBatch: 10 },
    });
    await join(hub, "fan-1");
    await join(hub, "fan-2");
    await runAlarmNow(hub);
    const admitted = await session(hub, "fan-1");
    expect(admitted.status).toBe("ADMITTED");
    const held = (orderId: string, userId: string, quantity: number, sessionId = admitted.sessionId) => ({
      op: "reserveForCheckout",
      sessionId,
      reserve: { orderId, userId, items: [{ ticketClassId: "ga", quantity }] },
    });

    // A hold the ledger refuses rolls the bind back: the checkout can still order.
    await refused(hub, held("o-big", "fan-1", 3), 409, "INSUFFICIENT_INVENTORY");
    const first = await ok(hub, held("o1", "fan-1", 1));
    expect(await ok(hub, held("o1", "fan-1", 1))).toEqual(first);
    // Dead tokens touch no stock: bound to another order, someone else's, unknown.
    await refused(hub, held("o2", "fan-1", 1), 403, "CHECKOUT_TOKEN_INVALID");
    await refused(hub, held("o3", "fan-2", 1), 403, "CHECKOUT_TOKEN_INVALID");
    await refused(hub, held("o4", "fan-1", 1, "no-such-session"), 403, "CHECKOUT_TOKEN_INVALID");
    expect((await classes(hub)).ga).toMatchObject({ reserved: 1, available: 1 });
    await refused(hub, { op: "leave", userId: "fan-1" }, 409, "CHECKOUT_IN_PROGRESS");

    // Unbound (its payment was never created): still ADMITTED, same deadline, free to order.
    await ok(hub, { op: "release", orderId: "o1" });
    await ok(hub, { op: "unbindOrder", orderId: "o1" });
    await ok(hub, { op: "unbindOrder", orderId: "o1" });
    await ok(hub, { op: "unbindOrder", orderId: "unknown-order" });
    expect(await session(hub, "fan-1")).toEqual(admitted);
    await ok(hub, held("o5", "fan-1", 2));
    expect((await classes(hub)).ga).toMatchObject({ reserved: 2, available: 0 });

    // A failed order ends the checkout: its token holds nothing any more.
    await ok(hub, { op: "release", orderId: "o5" });
    await ok(hub, { op: "checkoutResolved", orderId: "o5", outcome: "FAILED" });
    expect(await session(hub, "fan-1")).toMatchObject({ status: "EXPIRED", endReason: "ORDER_FAILED" });
    await refused(hub, held("o6", "fan-1", 1), 403, "CHECKOUT_TOKEN_INVALID");
    expect((await classes(hub)).ga).toMatchObject({ reserved: 0, available: 2 });
    const status = await ok(hub, { op: "status" });
    expect(status).toMatchObject({ activeHolds: 0 });
    expect(status.waitroom).toMatchObject({ slotsInUse: 1, admitted: 1 });
  });

  it("keeps early fans in a pre-queue and places them in a shuffled order when the sale opens", async () => {
    // Wide enough for setup and four joins on a loaded machine (2 cores running builds).
    const opensAt = Date.now() + 3_000;
    const { hub } = await eventWith({ waitroom: PAUSED, classes: [["ga", 5]], saleStartsAtMs: opensAt });
    const early = [];
    for (const fan of ["p1", "p2", "p3", "p4"]) early.push(await join(hub, fan));
    expect(early.map((s) => [s.status, s.position])).toEqual(Array(4).fill(["QUEUED", null]));
    expect(early[3].queueLength).toBe(4);
    await refused(hub, reserve("o1", "p1", [["ga", 1]]), 409, "SALE_NOT_OPEN");

    while (Date.now() < opensAt + 20) await sleep(50);
    await runAlarmNow(hub);

    const placed = await Promise.all(["p1", "p2", "p3", "p4"].map((fan) => session(hub, fan)));
    expect(placed.map((s) => s.position).sort()).toEqual([1, 2, 3, 4]);
    expect(placed.every((s) => s.status === "QUEUED" && s.queueLength === 4)).toBe(true);
    expect((await join(hub, "p5")).position).toBe(5);
  });

  it("refuses to join an event that is not published or has no waitroom", async () => {
    const draft = await eventWith({ status: "CONFIGURED", waitroom: PAUSED });
    await refused(draft.hub, { op: "join", userId: "u" }, 409, "SALE_NOT_OPEN");
    const plain = await eventWith({ classes: [["ga", 1]] });
    await refused(plain.hub, { op: "join", userId: "u" }, 404, "NOT_FOUND");
    expect(await session(plain.hub, "u")).toBeNull();
  });
});

/** Collects a socket's JSON messages and waits for one that matches. */
function inbox(ws: WebSocket) {
  const messages: Json[] = [];
  const received: Record<string, number> = {};
  const waiters: Array<() => void> = [];
  ws.addEventListener("message", (event) => {
    const message = JSON.parse(event.data as string);
    received[message.type] = (received[message.type] ?? 0) + 1;
    messages.push(message);
    waiters.splice(0).forEach((wake) => wake());
  });
  return {
    messages,
    received,
    async next(type: string, timeoutMs = 5_000): Promise<Json> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const index = messages.findIndex((m) => m.type === type);
        if (index >= 0) return messages.splice(index, 1)[0];
        if (Date.now() > deadline) throw new Error(`no ${type} message; got ${JSON.stringify(messages)}`);
        await Promise.race([new Promise<void>((wake) => waiters.push(wake)), sleep(50)]);
      }
    },
  };
}

async function openSocket(hub: Hub, userId: string) {
  const res = await hub.fetch("https://hub/ws", { headers: { Upgrade: "websocket", "X-Hub-User-Id": userId } });
  expect(res.status).toBe(101);
  const ws = res.webSocket!;
  const box = inbox(ws);
  ws.accept();
  return { ws, box };
}

describe("waitroom sockets", () => {
  it("pushes the position at once, moves it when the head moves, answers pings and announces admission", async () => {
    const { eventId, hub } = await eventWith({ waitroom: PAUSED });
    for (const fan of ["s1", "s2", "s3"]) await join(hub, fan);
    const { ws, box } = await openSocket(hub, "s3");
    const other = await openSocket(hub, "s1");

    expect(await box.next("position")).toMatchObject({ position: 3, queueLength: 3 });
    await ok(hub, { op: "leave", userId: "s2" });
    expect(await box.next("position")).toMatchObject({ position: 2, queueLength: 2 });

    ws.send(JSON.stringify({ type: "ping" }));
    await box.next("pong");

    await ok(hub, setupOf(eventId, { waitroom: { maxConcurrentCheckouts: 5, checkoutTtlSeconds: 600, admissionBatch: 10 } }));
    await runAlarmNow(hub);
    const admitted = await box.next("admitted");
    const claims = await verifiedClaims(admitted.checkoutToken);
    expect(claims.sub).toBe("s3");
    expect(admitted.checkoutExpiresAt).toBe((await session(hub, "s3")).checkoutExpiresAt);
    // The other fan's socket only ever carries its own token.
    const theirs = await other.box.next("admitted");
    expect((await verifiedClaims(theirs.checkoutToken)).sub).toBe("s1");
    expect(box.messages.filter((m) => m.type === "admitted")).toHaveLength(0);
    expect(other.box.messages.filter((m) => m.type === "admitted")).toHaveLength(0);

    const status = await ok(hub, { op: "status" });
    expect(status.connectedSockets).toBe(2);
    ws.close(1000, "done");
    other.ws.close(1000, "done");
  });

  it("coalesces a burst of departures into few position pushes that end at the right place", async () => {
    const { hub } = await eventWith({ waitroom: PAUSED });
    for (const fan of ["b1", "b2", "b3", "b4", "b5", "b6"]) await join(hub, fan);
    const { ws, box } = await openSocket(hub, "b6");
    expect(await box.next("position")).toMatchObject({ position: 6 });

    for (const fan of ["b1", "b2", "b3", "b4"]) await ok(hub, { op: "leave", userId: fan });

    let latest = await box.next("position");
    while (latest.position !== 2) latest = await box.next("position");
    expect(latest).toMatchObject({ position: 2, queueLength: 2 });
    expect(box.received.position).toBeLessThanOrEqual(3);
    ws.close(1000, "done");
  });

  it("tells an expired fan so, and refuses sockets without an authenticated user or a session", async () => {
    const { eventId, hub } = await eventWith({ waitroom: PAUSED });
    await join(hub, "gone");
    const { box } = await openSocket(hub, "gone");
    await box.next("position");
    await ok(hub, setupOf(eventId, { status: "CANCELLED", waitroom: PAUSED }));
    await runAlarmNow(hub);
    await box.next("expired");

    const anonymous = await hub.fetch("https://hub/ws", { headers: { Upgrade: "websocket" } });
    expect(anonymous.status).toBe(401);
    const stranger = await hub.fetch("https://hub/ws", { headers: { Upgrade: "websocket", "X-Hub-User-Id": "nobody" } });
    expect(stranger.status).toBe(404);
    const notUpgrade = await hub.fetch("https://hub/ws", { headers: { "X-Hub-User-Id": "gone" } });
    expect(notUpgrade.status).toBe(426);
  });
});

describe("protocol", () => {
  it("refuses a body that is not a hub request", async () => {
    const hub = hubOf(`evt-${crypto.randomUUID()}`);
    const res = await hub.fetch("https://hub/rpc", { method: "POST", body: JSON.stringify({ op: "dropTables" }) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as Json).code).toBe("VALIDATION_FAILED");
    const ping = await hub.fetch("https://hub/ping");
    expect(await ping.json()).toEqual({ ok: true });
  });
});
