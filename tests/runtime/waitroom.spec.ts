// The waitroom through the Worker's HTTP API and WebSocket route: join, positions, leave,
// admission with a checkout token, and the socket's authentication.
import { SELF, env, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BASE, call, expectProblem, json, registerAndLogin } from "./helpers";
import { publishedEvent } from "./fixtures";

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
  ws.addEventListener("message", (m) => seen.push(JSON.parse(m.data as string)));
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
    await runDurableObjectAlarm(hub(event.id));
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
    await runDurableObjectAlarm(hub(event.id));
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
    await runDurableObjectAlarm(hub(event.id));
    const admitted = await until(() => seen.find((m) => m.type === "admitted"), "admitted message");
    expect(admitted.checkoutToken).toBeTruthy();
    expect((await session(event.id, c.token)).status).toBe("ADMITTED");
    ws.close();
  });
});
