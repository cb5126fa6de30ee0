// Tickets and the door through the HTTP API: issue on payment, the signed qr and its image,
// check-in in the event's door object (concurrent gates, tampering, codes, roles), the D1 row
// following the door, check-in stats, the receipt mail, and currencies nobody can pay in.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, expectProblem, json, registerAndLogin, uniqueEmail, type TestUser } from "./helpers";
import { eventually, publishedEvent, type PublishedEvent } from "./fixtures";

async function buy(event: PublishedEvent, buyer: TestUser, quantity: number, classIndex = 0) {
  const res = await call("/api/orders", {
    token: buyer.token,
    headers: { "Idempotency-Key": crypto.randomUUID() },
    body: { eventId: event.id, items: [{ ticketClassId: event.classes[classIndex].id, quantity }], paymentMethod: "sandbox" },
  });
  expect(res.status).toBe(201);
  const created = await json(res);
  const paid = await call(`${new URL(created.paymentUrl).pathname}/pay`, { method: "POST" });
  expect(paid.status).toBe(200);
  return eventually(async () => {
    const { order } = await json(await call(`/api/orders/${created.order.id}`, { token: buyer.token }));
    return order.status === "COMPLETED" && order.tickets?.length === quantity && order;
  }, "order COMPLETED with its tickets");
}

async function checkIn(eventId: string, token: string, body: Record<string, unknown>) {
  return call(`/api/events/${eventId}/check-ins`, { token, body });
}

function b64urlBytes(text: string): Uint8Array {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

async function grant(event: PublishedEvent, user: TestUser, role: string) {
  const res = await call(`/api/events/${event.id}/roles/${user.id}`, { method: "PUT", token: event.organizer.token, body: { role } });
  expect(res.status).toBe(200);
}

describe("tickets", () => {
  it("are issued once an order is paid: on the order, in the buyer's list, with a QR image and a receipt", async () => {
    const event = await publishedEvent({ classes: [{ name: "GA", priceCents: 100_000, total: 20 }] });
    const buyer = await registerAndLogin();
    const order = await buy(event, buyer, 3);

    expect(order.tickets).toHaveLength(3);
    for (const t of order.tickets) {
      expect(t).toMatchObject({ orderId: order.id, eventId: event.id, ticketClassId: event.classes[0].id, ticketClassName: "GA", status: "VALID", checkedInAt: null, gate: null });
      expect(t.code).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
      expect(t.qr).toMatch(/^TB1\./);
    }
    expect(new Set(order.tickets.map((t: any) => t.code)).size).toBe(3);

    const mine = await json(await call("/api/tickets", { token: buyer.token }));
    expect(mine.items.map((t: any) => t.id).sort()).toEqual(order.tickets.map((t: any) => t.id).sort());
    const one = await json(await call(`/api/tickets/${order.tickets[0].id}`, { token: buyer.token }));
    expect(one.ticket).toEqual(order.tickets[0]);

    const svg = await call(`/api/tickets/${order.tickets[0].id}/qr.svg`, { token: buyer.token });
    expect(svg.status).toBe(200);
    expect(svg.headers.get("content-type")).toBe("image/svg+xml");
    expect(await svg.text()).toMatch(/^<\?xml[\s\S]*<svg[\s\S]*<\/svg>\s*$/);

    // Another user neither sees the ticket nor its image.
    const stranger = await registerAndLogin();
    await expectProblem(await call(`/api/tickets/${order.tickets[0].id}`, { token: stranger.token }), 404, "NOT_FOUND");
    await expectProblem(await call(`/api/tickets/${order.tickets[0].id}/qr.svg`, { token: stranger.token }), 404, "NOT_FOUND");
    await expectProblem(await call(`/api/tickets/${order.tickets[0].id}`), 401, "UNAUTHENTICATED");
    expect((await json(await call("/api/tickets", { token: stranger.token }))).items).toEqual([]);

    // The receipt lists every code.
    const mail = await json(await call(`/api/dev/mailbox?email=${encodeURIComponent(buyer.email)}`));
    const receipt = mail.items.find((m: any) => m.kind === "ORDER_RECEIPT");
    expect(receipt.subject).toContain(order.code);
    for (const t of order.tickets) expect(receipt.body).toContain(t.code);

    // Redelivering the completion changes nothing: still three tickets.
    const again = await json(await call(`/api/orders/${order.id}`, { token: buyer.token }));
    expect(again.order.tickets.map((t: any) => t.id)).toEqual(order.tickets.map((t: any) => t.id));
  });

  it("carry a qr anyone verifies offline with the published Ed25519 key", async () => {
    const event = await publishedEvent({ classes: [{ name: "GA", priceCents: 100_000, total: 5 }] });
    const buyer = await registerAndLogin();
    const [ticket] = (await buy(event, buyer, 1)).tickets;
    const res = await call("/api/tickets/public-key");
    expect(res.status).toBe(200);
    const key = await json(res);
    expect(key.alg).toBe("Ed25519");
    const parts = ticket.qr.split(".");
    expect(parts).toHaveLength(6);
    expect(parts[1]).toBe(key.kid);
    const publicKey = await crypto.subtle.importKey("raw", b64urlBytes(key.publicKey), { name: "Ed25519" }, false, ["verify"]);
    const signed = new TextEncoder().encode(parts.slice(0, 5).join("."));
    expect(await crypto.subtle.verify({ name: "Ed25519" }, publicKey, b64urlBytes(parts[5]), signed)).toBe(true);
    const forged = new TextEncoder().encode(parts.slice(0, 4).join(".") + "." + parts[2]);
    expect(await crypto.subtle.verify({ name: "Ed25519" }, publicKey, b64urlBytes(parts[5]), forged)).toBe(false);
  });
});

describe("check-in at the door", () => {
  it("lets one of 20 gates presenting the same ticket at once in, and tells the other 19 when and where", async () => {
    const event = await publishedEvent({ classes: [{ name: "GA", priceCents: 100_000, total: 20 }] });
    const buyer = await registerAndLogin();
    const [ticket] = (await buy(event, buyer, 1)).tickets;

    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, gate) => checkIn(event.id, event.organizer.token, { qr: ticket.qr, gate: `Gate ${gate}` })),
    );
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(19);
    const winner = await json(answers[statuses.indexOf(200)]);
    expect(winner.ticket).toMatchObject({ id: ticket.id, status: "CHECKED_IN" });
    expect(winner.ticket.gate).toMatch(/^Gate \d+$/);
    for (const res of answers.filter((r) => r.status === 409)) {
      const problem = await expectProblem(res, 409, "ALREADY_CHECKED_IN");
      expect(problem.checkedInAt).toBe(winner.ticket.checkedInAt);
      expect(problem.gate).toBe(winner.ticket.gate);
    }

    // The D1 row follows the door through the domain-events queue.
    await eventually(async () => {
      const { ticket: now } = await json(await call(`/api/tickets/${ticket.id}`, { token: buyer.token }));
      return now.status === "CHECKED_IN" && now.gate === winner.ticket.gate && now;
    }, "ticket row CHECKED_IN");
    const stats = await json(await call(`/api/events/${event.id}/check-ins/stats`, { token: event.organizer.token }));
    expect(stats.items).toEqual([{ ticketClassId: event.classes[0].id, name: "GA", sold: 1, checkedIn: 1 }]);
  });

  it("refuses a tampered, truncated or foreign qr and unknown codes with TICKET_INVALID, writing nothing", async () => {
    const event = await publishedEvent({ classes: [{ name: "GA", priceCents: 100_000, total: 5 }] });
    const other = await publishedEvent({ classes: [{ name: "GA", priceCents: 100_000, total: 5 }] });
    const buyer = await registerAndLogin();
    const [ticket] = (await buy(event, buyer, 1)).tickets;
    const [foreign] = (await buy(other, buyer, 1)).tickets;

    const last = ticket.qr.at(-1);
    const tampered = ticket.qr.slice(0, -1) + (last === "A" ? "B" : "A");
    for (const qr of [tampered, ticket.qr.slice(0, 40), "TB1.garbage", foreign.qr, "x".repeat(5000)]) {
      await expectProblem(await checkIn(event.id, event.organizer.token, { qr }), 422, "TICKET_INVALID");
    }
    await expectProblem(await checkIn(event.id, event.organizer.token, { code: "0000-0000-0000" }), 422, "TICKET_INVALID");
    await expectProblem(await checkIn(event.id, event.organizer.token, { code: foreign.code }), 422, "TICKET_INVALID");
    await expectProblem(await checkIn(event.id, event.organizer.token, { code: "not a code" }), 422, "TICKET_INVALID");
    await expectProblem(await checkIn(event.id, event.organizer.token, {}), 400, "VALIDATION_FAILED");
    await expectProblem(await checkIn(event.id, event.organizer.token, { qr: ticket.qr, code: ticket.code }), 400, "VALIDATION_FAILED");

    const stats = await json(await call(`/api/events/${event.id}/check-ins/stats`, { token: event.organizer.token }));
    expect(stats.items[0]).toMatchObject({ sold: 1, checkedIn: 0 });
    // The untouched ticket still gets in, by its code typed in lower case.
    const typed = await checkIn(event.id, event.organizer.token, { code: ticket.code.toLowerCase().replace(/-/g, " ") });
    expect(typed.status).toBe(200);
    expect((await json(typed)).ticket).toMatchObject({ id: ticket.id, status: "CHECKED_IN", gate: null });
  });

  it("refuses a voided ticket with TICKET_VOID, checked in or not, and the D1 row follows the void", async () => {
    const event = await publishedEvent({ classes: [{ name: "GA", priceCents: 100_000, total: 10 }] });
    const buyer = await registerAndLogin();
    const [first, second] = (await buy(event, buyer, 2)).tickets;
    expect((await checkIn(event.id, event.organizer.token, { qr: first.qr })).status).toBe(200);

    // What the refund flow will call: the event's door voids tickets, once.
    const door = env.EVENT_DOOR.get(env.EVENT_DOOR.idFromName(event.id));
    const voidTickets = () =>
      door.fetch("https://event-door", {
        method: "POST",
        body: JSON.stringify({
          op: "void",
          eventId: event.id,
          atMs: Date.now(),
          tickets: [first, second].map((t) => ({ ticketId: t.id, ticketClassId: t.ticketClassId })),
        }),
      });
    expect(await (await voidTickets()).json()).toEqual({ voided: 2 });
    expect(await (await voidTickets()).json()).toEqual({ voided: 0 });

    await expectProblem(await checkIn(event.id, event.organizer.token, { qr: first.qr }), 409, "TICKET_VOID");
    await expectProblem(await checkIn(event.id, event.organizer.token, { code: second.code }), 409, "TICKET_VOID");
    await eventually(async () => {
      const { items } = await json(await call("/api/tickets", { token: buyer.token }));
      return items.filter((t: any) => t.status === "VOID").length === 2;
    }, "both ticket rows VOID");
    const stats = await json(await call(`/api/events/${event.id}/check-ins/stats`, { token: event.organizer.token }));
    expect(stats.items).toEqual([{ ticketClassId: event.classes[0].id, name: "GA", sold: 0, checkedIn: 0 }]);
  });

  it("is open to the event's staff, editors and admins, not to viewers, buyers or anonymous callers", async () => {
    const event = await publishedEvent({ classes: [{ name: "GA", priceCents: 100_000, total: 10 }] });
    const buyer = await registerAndLogin();
    const tickets = (await buy(event, buyer, 2)).tickets;
    const staff = await registerAndLogin(uniqueEmail("staff"));
    const viewer = await registerAndLogin(uniqueEmail("viewer"));
    await grant(event, staff, "staff");
    await grant(event, viewer, "viewer");

    await expectProblem(await checkIn(event.id, viewer.token, { qr: tickets[0].qr }), 403, "FORBIDDEN");
    await expectProblem(await checkIn(event.id, buyer.token, { qr: tickets[0].qr }), 403, "FORBIDDEN");
    await expectProblem(await checkIn(event.id, "", { qr: tickets[0].qr }), 401, "UNAUTHENTICATED");
    const ok = await checkIn(event.id, staff.token, { qr: tickets[0].qr, gate: "Door 1" });
    expect(ok.status).toBe(200);

    // Staff look tickets up and read the door's counts, but not orders or roles.
    expect((await call(`/api/tickets/${tickets[1].id}`, { token: staff.token })).status).toBe(200);
    expect((await call(`/api/events/${event.id}/check-ins/stats`, { token: staff.token })).status).toBe(200);
    await expectProblem(await call(`/api/events/${event.id}/orders`, { token: staff.token }), 403, "FORBIDDEN");
    await expectProblem(await call(`/api/events/${event.id}/roles`, { token: staff.token }), 403, "FORBIDDEN");
    await expectProblem(await call(`/api/orders/${tickets[1].orderId}`, { token: staff.token }), 404, "NOT_FOUND");
    await expectProblem(await call(`/api/events/${event.id}/check-ins/stats`, { token: buyer.token }), 403, "FORBIDDEN");
  });
});

describe("currencies", () => {
  it("refuse a class no enabled payment method takes when it is created, and accept VND", async () => {
    const organizer = await registerAndLogin(uniqueEmail("organizer"));
    const now = Date.now();
    const iso = (ms: number) => new Date(ms).toISOString();
    const { event } = await json(
      await call("/api/events", {
        token: organizer.token,
        body: { name: "Currency test", description: "d", startDate: iso(now + 40 * 86_400_000), endDate: iso(now + 41 * 86_400_000), location: "Hanoi" },
      }),
    );
    const add = (currency: string) =>
      call(`/api/events/${event.id}/ticket-classes`, { token: organizer.token, body: { name: "GA", priceCents: 1000, currency, total: 5 } });
    await expectProblem(await add("USD"), 422, "CURRENCY_NOT_SUPPORTED");
    await expectProblem(await add("EUR"), 422, "CURRENCY_NOT_SUPPORTED");
    const classes = await json(await call(`/api/events/${event.id}/ticket-classes`, { token: organizer.token }));
    expect(classes.items).toEqual([]);
    expect((await add("VND")).status).toBe(201);
  });
});
