// The waitroom through the Worker's HTTP API and WebSocket route: join, positions, leave,
// admission with a checkout token, the socket's authentication, and what a flooding socket costs.
import { SELF, env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { BASE, call, expectProblem, json, registerAndLogin, runAlarmNow } from "./helpers";
import { eventually, publishedEvent } from "./fixtures";

const hub = (eventId: string) => env.EVENT_HUB.get(env.EVENT_HUB.idFromName(eventId));
const join = (eventId: string, token: string) => call(`/api/events/${eventId}/waitroom/join`, { method: "POST", token });
const session = async (eventId: string, token: string) =>
  (await json(await call(`/api/events/${eventId}/waitroom/session`, { token }))).waitroomSession;

async function openSocket(eventId: string, token: string) {
  const res = await SELF.fetch(`${BASE}/api/events/${eventId}/waitroom/ws?token=${encodeURIComponent(token)}`, {
    headers: { Upgrade: "websocket" },
  });
  return res;
}

function messages(ws: WebSocket) {
  const seen: any[] = [];
  ws.addEventListener("message", (m) => {
    seen.push(JSON.parse(m.data as string));
  });
  return seen;
}

async function until<T>(probe: () => T | undefined, what: string, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = probe();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out: ${what}`);
}

describe("joining the waitroom", () => {
  it("gives each fan a place in join order, the same place on a second join", async () => {
    // One checkout slot, taken by the first fan, so the others stay queued.
    const event = await publishedEvent({ allowWaitRoom: true, waitroom: { maxConcurrentCheckouts: 1 } });
    const [a, b, c] = [await registerAndLogin(), await registerAndLogin(), await registerAndLogin()];
    const first = (await json(await join(event.id, a.token))).waitroomSession;
    await runAlarmNow(hub(event.id));
    expect((await session(event.id, a.token)).status).toBe("ADMITTED");
    const sb = (await json(await join(event.id, b.token))).waitroomSession;
    const sc = (await json(await join(event.id, c.token))).waitroomSession;
    expect([sb.status, sb.position, sc.position]).toEqual(["QUEUED", 1, 2]);
    expect(sc.queueLength).toBe(2);
    const again = (await json(await join(event.id, c.token))).waitroomSession;
    expect(again.sessionId).toBe(sc.sessionId);
    expect(again.position).toBe(2);
    expect(first.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(sb.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(first.sessionId).not.toBe(sb.sessionId);

    expect((await call(`/api/events/${event.id}/waitroom/session`, { method: "DELETE", token: b.token })).status).toBe(204);
    expect((await session(event.id, c.token)).position).toBe(1);
    expect((await session(event.id, b.token)).status).toBe("LEFT");
  });

  it("requires a user, a waitroom and an open sale", async () => {
    const plain = await publishedEvent();
    const fan = await registerAndLogin();
    await expectProblem(await call(`/api/events/${plain.id}/waitroom/join`, { method: "POST" }), 401, "UNAUTHENTICATED");
    await expectProblem(await join(plain.id, fan.token), 409, "WAITROOM_NOT_ENABLED");
    await expectProblem(await join("00000000-0000-4000-8000-000000000000", fan.token), 404, "NOT_FOUND");
    const queued = await publishedEvent({ allowWaitRoom: true });
    await expectProblem(await call(`/api/events/${queued.id}/waitroom/session`, { token: fan.token }), 404, "NOT_FOUND");
    expect((await call(`/api/events/${queued.id}/cancel`, { method: "POST", token: queued.organizer.token })).status).toBe(200);
    await expectProblem(await join(queued.id, fan.token), 409, "SALE_NOT_OPEN");
  });
});

describe("the live socket", () => {
  it("refuses a missing or invalid token", async () => {
    const event = await publishedEvent({ allowWaitRoom: true });
    const res = await SELF.fetch(`${BASE}/api/events/${event.id}/waitroom/ws`, { headers: { Upgrade: "websocket" } });
    expect(res.status).toBe(401);
    expect((await openSocket(event.id, "forged.token.value")).status).toBe(401);
  });

  it("follows only its own user's place: position on connect, moves, admission", async () => {
    const event = await publishedEvent({ allowWaitRoom: true, waitroom: { maxConcurrentCheckouts: 1 } });
    const [a, b, c] = [await registerAndLogin(), await registerAndLogin(), await registerAndLogin()];
    await join(event.id, a.token);
    await runAlarmNow(hub(event.id));
    await join(event.id, b.token);
    await join(event.id, c.token);

    const res = await openSocket(event.id, c.token);
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    ws.accept();
    const seen = messages(ws);
    await until(() => seen.find((m) => m.type === "position" && m.position === 2), "position 2 on connect");

    await call(`/api/events/${event.id}/waitroom/session`, { method: "DELETE", token: b.token });
    await until(() => seen.find((m) => m.type === "position" && m.position === 1), "position 1 after a leave");

    // The admitted fan orders, then cancels: the slot frees and c is admitted on the next tick.
    const s = await session(event.id, a.token);
    expect(s.status).toBe("ADMITTED");
    const placed = await call("/api/orders", {
      token: a.token,
      headers: { "Idempotency-Key": crypto.randomUUID() },
      body: { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 1 }], paymentMethod: "sandbox", checkoutToken: s.checkoutToken },
    });
    const { order } = await json(placed);
    expect((await call(`/api/orders/${order.id}/cancel`, { method: "POST", token: a.token })).status).toBe(200);
    await runAlarmNow(hub(event.id));
    const admitted = await until(() => seen.find((m) => m.type === "admitted"), "admitted message");
    expect(admitted.checkoutToken).toBeTruthy();
    expect((await session(event.id, c.token)).status).toBe("ADMITTED");
    ws.close();
  });
});

/**
 * From now on, counts the event object's storage transactions and the socket messages it has
 * finished handling. The test runs in the object's isolate, so the counters are shared; the
 * object reaches `transactionSync` through its storage object, which this wraps. The alarm
 * armed by earlier requests (an outbox hand-on) runs first, so the window sees only what the
 * sockets cause.
 */
async function watchHub(eventId: string) {
  await runAlarmNow(hub(eventId));
  const seen = { transactions: 0, handled: 0 };
  await runInDurableObject(hub(eventId), async (instance: any, state: DurableObjectState) => {
    const storage = state.storage as any;
    const transactionSync = storage.transactionSync.bind(storage);
    storage.transactionSync = (work: () => unknown) => {
      seen.transactions++;
      return transactionSync(work);
    };
    const handle = instance.webSocketMessage.bind(instance);
    instance.webSocketMessage = async (...args: unknown[]) => {
      try {
        return await handle(...args);
      } finally {
        seen.handled++;
      }
    };
  });
  return seen;
}

/** A fan in the queue with an open socket that has had its position. */
async function queuedFanWithSocket(eventId: string, token?: string) {
  const fan = token ?? (await registerAndLogin()).token;
  await join(eventId, fan);
  const ws = (await openSocket(eventId, fan)).webSocket!;
  ws.accept();
  const seen = messages(ws);
  const closed: { code?: number; reason?: string } = {};
  ws.addEventListener("close", (e) => {
    Object.assign(closed, { code: e.code, reason: e.reason });
  });
  await until(() => seen.find((m) => m.type === "position"), "position on connect");
  return { token: fan, ws, seen, closed };
}

/** An on-sale whose one checkout slot is taken, so fans who join now stay queued. */
async function busyWaitroom() {
  const event = await publishedEvent({ allowWaitRoom: true, waitroom: { maxConcurrentCheckouts: 1 } });
  await join(event.id, (await registerAndLogin()).token);
  await runAlarmNow(hub(event.id));
  return event;
}

const ping = JSON.stringify({ type: "ping" });
const pongs = (seen: any[]) => seen.filter((m) => m.type === "pong").length;

describe("a socket that floods the object", () => {
  it("answers 1,000 pings with a few pongs and no storage transaction, and stays usable", async () => {
    const event = await busyWaitroom();
    const { token, ws, seen } = await queuedFanWithSocket(event.id);
    const watched = await watchHub(event.id);

    for (let i = 0; i < 1000; i++) ws.send(ping);
    await until(() => watched.handled >= 1000, "the object handled every ping", 20_000);

    // The allowance is a burst of 5 and one more a second: a flood earns a handful of pongs.
    expect(pongs(seen)).toBeGreaterThanOrEqual(1);
    expect(pongs(seen)).toBeLessThanOrEqual(30);
    // The connect just counted as seen, so no ping needed the session's last-seen time.
    expect(watched.transactions).toBe(0);

    // Once the allowance refills, the same socket is answered again.
    const before = pongs(seen);
    await new Promise((r) => setTimeout(r, 1_100));
    ws.send(ping);
    await until(() => pongs(seen) > before, "a pong after the allowance refilled");
    expect(ws.readyState).toBe(WebSocket.OPEN);
    expect(watched.transactions).toBe(0);
    ws.close();

    // The counter does see the object's transactions: a poll of the session is one.
    await session(event.id, token);
    expect(watched.transactions).toBeGreaterThan(0);
  });

  it("keeps at most four sockets per fan: a fifth closes the oldest with 4409", async () => {
    const event = await busyWaitroom();
    const first = await queuedFanWithSocket(event.id);
    const others = [];
    for (let i = 0; i < 4; i++) others.push(await queuedFanWithSocket(event.id, first.token));

    await until(() => first.closed.code, "the oldest socket closed");
    expect(first.closed).toEqual({ code: 4409, reason: "replaced by a newer socket of this fan" });
    for (const socket of others) {
      expect(socket.closed.code).toBeUndefined();
      socket.ws.send(ping);
      await until(() => pongs(socket.seen) > 0, "a pong on a socket within the cap");
      socket.ws.close();
    }
  });

  it("drops garbage without a transaction, a log line or closing the socket", async () => {
    const event = await busyWaitroom();
    const { token, ws, seen, closed } = await queuedFanWithSocket(event.id);
    const watched = await watchHub(event.id);
    const lines: unknown[] = [];
    let fromSockets: unknown[] = [];
    let transactions = -1;
    const spies = (["log", "info", "warn", "error"] as const).map((level) =>
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => void lines.push(args)),
    );
    try {
      ws.send("not json");
      ws.send(JSON.stringify({ type: "shout", text: "let me in" }));
      // A ping padded past the size a ping needs is not read at all.
      ws.send(JSON.stringify({ type: "ping", padding: "x".repeat(64 * 1024) }));
      ws.send(new Uint8Array([1, 2, 3]));
      ws.send(ping);
      await until(() => pongs(seen) > 0, "a pong for the one real ping");
      await until(() => watched.handled >= 5, "every message handled");
      fromSockets = [...lines];
      transactions = watched.transactions;
      // The spies and the counter do catch the Worker's work: a session poll runs a
      // transaction, and a refused call logs a line (successful polls are logged one in 100).
      await session(event.id, token);
      expect((await call(`/api/events/${crypto.randomUUID()}/waitroom/status`)).status).toBe(404);
      expect(lines.length).toBeGreaterThan(fromSockets.length);
      expect(watched.transactions).toBeGreaterThan(transactions);
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    expect(pongs(seen)).toBe(1);
    expect(transactions).toBe(0);
    expect(fromSockets).toEqual([]);
    expect(closed.code).toBeUndefined();
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.close();
  });
});

describe("the public waitroom status", () => {
  const status = async (eventId: string) => {
    const res = await call(`/api/events/${eventId}/waitroom/status`);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("public, max-age=1");
    return json(res);
  };
  const afterTheCachedSecond = () => new Promise((r) => setTimeout(r, 1_200));

  it("shows the pre-queue before the sale opens, to anyone, with no estimate yet", async () => {
    const event = await publishedEvent({ allowWaitRoom: true, saleStartsInMs: 3_600_000 });
    const [a, b] = [await registerAndLogin(), await registerAndLogin()];
    for (const fan of [a, b]) expect((await join(event.id, fan.token)).status).toBe(200);
    const s = await status(event.id);
    expect(s).toMatchObject({ state: "PREQUEUE", queueLength: 2, admittedLastMinute: 0, estimatedWaitSeconds: null, shards: 1 });
    expect(Date.parse(s.saleOpensAt)).toBeGreaterThan(Date.now());
  });

  it("counts the line and the last minute's admissions, served from the edge cache for a second", async () => {
    // One checkout slot: the first fan is admitted, the next two wait.
    const event = await publishedEvent({ allowWaitRoom: true, waitroom: { maxConcurrentCheckouts: 1 } });
    const fans = [await registerAndLogin(), await registerAndLogin(), await registerAndLogin()];
    expect((await join(event.id, fans[0].token)).status).toBe(200);
    await runAlarmNow(hub(event.id));
    for (const fan of fans.slice(1)) expect((await join(event.id, fan.token)).status).toBe(200);
    const seen = await status(event.id);
    expect(seen).toMatchObject({ state: "OPEN", queueLength: 2, admittedLastMinute: 1, shards: 1 });
    // Within the second, a newcomer changes nothing anyone sees: the answer is the cached one.
    const late = await registerAndLogin();
    expect((await join(event.id, late.token)).status).toBe(200);
    expect((await status(event.id)).queueLength).toBe(2);
    await afterTheCachedSecond();
    expect((await status(event.id)).queueLength).toBe(3);
  });

  it("says OPEN with no wait for an event sold without a waitroom, CLOSED once cancelled, and 404 for no event", async () => {
    const plain = await publishedEvent();
    expect(await status(plain.id)).toMatchObject({ state: "OPEN", queueLength: 0, estimatedWaitSeconds: 0 });
    const gone = await publishedEvent({ allowWaitRoom: true });
    expect((await call(`/api/events/${gone.id}/cancel`, { method: "POST", token: gone.organizer.token })).status).toBe(200);
    expect(await status(gone.id)).toMatchObject({ state: "CLOSED", queueLength: 0, estimatedWaitSeconds: null });
    await expectProblem(await call("/api/events/00000000-0000-4000-8000-000000000000/waitroom/status"), 404, "NOT_FOUND");
  });

  it("is SOLD_OUT once nothing is left and nothing is held", async () => {
    const event = await publishedEvent({ classes: [{ name: "Tiny", priceCents: 100_000, total: 1 }] });
    const buyer = await registerAndLogin();
    const ordered = await call("/api/orders", {
      token: buyer.token,
      headers: { "Idempotency-Key": crypto.randomUUID() },
      body: { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 1 }], paymentMethod: "sandbox" },
    });
    expect(ordered.status).toBe(201);
    // Held, not sold: the ticket may come back, so the sale is still open.
    expect((await status(event.id)).state).toBe("OPEN");
    const created = await json(ordered);
    expect((await call(`${new URL(created.paymentUrl).pathname}/pay`, { method: "POST" })).status).toBe(200);
    await eventually(async () => {
      const { order } = await json(await call(`/api/orders/${created.order.id}`, { token: buyer.token }));
      return order.status === "COMPLETED";
    }, "order COMPLETED");
    await afterTheCachedSecond();
    expect(await status(event.id)).toMatchObject({ state: "SOLD_OUT", estimatedWaitSeconds: null });
  });
});

describe("the waitroom's hot path", () => {
  it("reads the event from the isolate's two-second gate, not from D1 on every poll", async () => {
    const event = await publishedEvent({ allowWaitRoom: true });
    const fan = await registerAndLogin();
    expect((await join(event.id, fan.token)).status).toBe(200);
    // Behind the API's back, the event stops selling through a waitroom.
    await env.DB.prepare("UPDATE event_config SET allow_wait_room = 0 WHERE event_id = ?").bind(event.id).run();
    // A poll within the gate's two seconds is answered without reading the event again...
    expect((await call(`/api/events/${event.id}/waitroom/session`, { token: fan.token })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 2_100));
    // ...and the first one after them reads it.
    await expectProblem(await call(`/api/events/${event.id}/waitroom/session`, { token: fan.token }), 409, "WAITROOM_NOT_ENABLED");
  });
});
