// A sharded waitroom (`eventConfig.waitroom.shards: 4`) through the Worker's HTTP API and
// WebSocket route: fans land on their queue shards, the event's object admits them in arrival
// order across the shards up to its checkout slots, orders bind the checkouts, leaves and the
// saga give slots back, and a restart of a shard or of the event's object loses nobody.
import { SELF, env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BASE, PASSWORD, call, expectProblem, json, registerAndLogin, runAlarmNow, type TestUser } from "./helpers";
import { eventually, publishedEvent, type PublishedEvent } from "./fixtures";

const SHARDS = 4;
const hub = (eventId: string) => env.EVENT_HUB.get(env.EVENT_HUB.idFromName(eventId));
const shardObject = (eventId: string, shard: number) => env.QUEUE_SHARD.get(env.QUEUE_SHARD.idFromName(`${eventId}:${shard}`));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const join = async (eventId: string, fan: TestUser) => {
  const res = await call(`/api/events/${eventId}/waitroom/join`, { method: "POST", token: fan.token });
  expect(res.status).toBe(200);
  return (await json(res)).waitroomSession;
};
const session = async (eventId: string, fan: TestUser) =>
  (await json(await call(`/api/events/${eventId}/waitroom/session`, { token: fan.token }))).waitroomSession;

/**
 * Lets admission rounds run: the event's object runs one a second from its alarm while the sale
 * is open, and admits a join only once every shard's frontier (its clock less the stamp grace
 * of 1 s) has passed it. Waits for `done` across rounds.
 */
async function rounds<T>(eventId: string, done: () => Promise<T | undefined | null | false>, what: string): Promise<T> {
  return eventually(async () => {
    await runAlarmNow(hub(eventId));
    return done();
  }, what);
}

const statuses = (eventId: string, fans: TestUser[]) => Promise.all(fans.map(async (f) => (await session(eventId, f)).status));

/** The fans each shard holds, read from the shards' own storage. */
async function fansPerShard(eventId: string, shards = SHARDS): Promise<string[][]> {
  const out: string[][] = [];
  for (let shard = 0; shard < shards; shard++) {
    out.push(
      await runInDurableObject(shardObject(eventId, shard), async (_: unknown, state: DurableObjectState) => {
        const tables = state.storage.sql.exec("SELECT name FROM sqlite_master WHERE name = 'shard_fan'").toArray();
        if (tables.length === 0) return [];
        // Fans waiting there (a stay that ended stays on record).
        return state.storage.sql
          .exec("SELECT user_id FROM shard_fan WHERE json_extract(record_json, '$.status.status') = 'QUEUED'")
          .toArray()
          .map((r: any) => r.user_id as string);
      }),
    );
  }
  return out;
}

async function shardedEvent(slots: number): Promise<PublishedEvent> {
  return publishedEvent({ allowWaitRoom: true, waitroom: { maxConcurrentCheckouts: slots, admissionBatch: 10, shards: SHARDS } });
}

/** Fans who join one after another, a few ms apart: their arrival order is their join order. */
async function crowd(eventId: string, size: number) {
  const fans: TestUser[] = [];
  const sessions: any[] = [];
  for (let i = 0; i < size; i++) {
    const fan = await registerAndLogin();
    fans.push(fan);
    sessions.push(await join(eventId, fan));
    await sleep(3);
  }
  return { fans, sessions };
}

const order = (event: PublishedEvent, fan: TestUser, checkoutToken: string) =>
  call("/api/orders", {
    token: fan.token,
    headers: { "Idempotency-Key": crypto.randomUUID() },
    body: { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 1 }], paymentMethod: "sandbox", checkoutToken },
  });

describe("a waitroom spread over queue shards", () => {
  it("puts each fan on one shard and admits in arrival order across shards up to the slots", async () => {
    const event = await shardedEvent(3);
    const { fans, sessions } = await crowd(event.id, 8);
    for (const s of sessions) {
      expect(s.status).toBe("QUEUED");
      expect(s.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    }
    // Joining again keeps the place: same session, still one record for the user.
    expect((await join(event.id, fans[2])).sessionId).toBe(sessions[2].sessionId);

    const perShard = await fansPerShard(event.id);
    const everyone = perShard.flat();
    expect(everyone.length).toBe(8);
    expect(new Set(everyone).size).toBe(8);
    expect(perShard.filter((f) => f.length > 0).length).toBeGreaterThan(1);

    await rounds(event.id, async () => (await statuses(event.id, fans)).filter((s) => s === "ADMITTED").length === 3, "three admitted");
    // Another round changes nothing: the slots are full.
    await sleep(1_100);
    await runAlarmNow(hub(event.id));
    const after = await Promise.all(fans.map((f) => session(event.id, f)));
    expect(after.map((s) => s.status)).toEqual(["ADMITTED", "ADMITTED", "ADMITTED", "QUEUED", "QUEUED", "QUEUED", "QUEUED", "QUEUED"]);
    for (const s of after.slice(0, 3)) expect(s.checkoutToken).toBeTruthy();
    // Everyone still queued counts the fans ahead of them on every shard.
    const positions = after.slice(3).map((s) => s.position);
    for (const p of positions) {
      expect(p).toBeGreaterThanOrEqual(1);
      expect(p).toBeLessThanOrEqual(5);
    }
    expect(after[3].queueLength).toBe(5);

    const status = await json(await call(`/api/events/${event.id}/waitroom/status`));
    expect(status.shards).toBe(SHARDS);
    expect(status.state).toBe("OPEN");
  });

  it("lets an admitted fan order with their token only, and the freed slot admits the next fan", async () => {
    const event = await shardedEvent(1);
    const { fans } = await crowd(event.id, 3);
    const first = await rounds(event.id, async () => {
      const s = await session(event.id, fans[0]);
      return s.status === "ADMITTED" && s;
    }, "the first fan admitted");
    // Someone else's token is refused, nothing held.
    await expectProblem(await order(event, fans[1], first.checkoutToken), 403, "CHECKOUT_TOKEN_INVALID");
    const placed = await order(event, fans[0], first.checkoutToken);
    expect(placed.status).toBe(201);
    const { order: created } = await json(placed);
    // A second order on the same checkout is refused.
    await expectProblem(await order(event, fans[0], first.checkoutToken), 403, "CHECKOUT_TOKEN_INVALID");
    // Leaving while the order holds the slot is refused.
    await expectProblem(await call(`/api/events/${event.id}/waitroom/session`, { method: "DELETE", token: fans[0].token }), 409, "CHECKOUT_IN_PROGRESS");

    // Cancelling the order frees the slot through the saga; the next round admits the next fan.
    expect((await call(`/api/orders/${created.id}/cancel`, { method: "POST", token: fans[0].token })).status).toBe(200);
    await rounds(event.id, async () => (await session(event.id, fans[1])).status === "ADMITTED", "the second fan admitted once the slot is free");
    expect((await session(event.id, fans[2])).status).toBe("QUEUED");
    expect((await session(event.id, fans[0])).status).not.toBe("ADMITTED");
  });

  it("gives a queued place up at the shard and an unused checkout back to the hub", async () => {
    const event = await shardedEvent(1);
    const { fans } = await crowd(event.id, 3);
    await rounds(event.id, async () => (await session(event.id, fans[0])).status === "ADMITTED", "the first fan admitted");
    // A queued fan leaves at their shard.
    expect((await call(`/api/events/${event.id}/waitroom/session`, { method: "DELETE", token: fans[1].token })).status).toBe(204);
    expect((await session(event.id, fans[1])).status).toBe("LEFT");
    // The admitted fan gives the unused checkout back: the slot goes to the next in line.
    expect((await call(`/api/events/${event.id}/waitroom/session`, { method: "DELETE", token: fans[0].token })).status).toBe(204);
    await eventually(async () => (await session(event.id, fans[0])).status === "LEFT", "the shard hears the checkout ended");
    await rounds(event.id, async () => (await session(event.id, fans[2])).status === "ADMITTED", "the next fan admitted");
    // A fan who left may join again, at the back.
    const again = await join(event.id, fans[1]);
    expect(again.status).toBe("QUEUED");
  });

  it("pushes positions and the admission over the socket of the fan's own shard", async () => {
    const event = await shardedEvent(1);
    const { fans } = await crowd(event.id, 2);
    const res = await SELF.fetch(`${BASE}/api/events/${event.id}/waitroom/ws?token=${encodeURIComponent(fans[1].token)}`, {
      headers: { Upgrade: "websocket" },
    });
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    ws.accept();
    const seen: any[] = [];
    ws.addEventListener("message", (m) => {
      seen.push(JSON.parse(m.data as string));
    });
    await rounds(event.id, async () => seen.find((m) => m.type === "position" && m.position === 1), "position 1 after the first round");
    // The first fan leaves their checkout; the next round admits the socket's fan.
    await call(`/api/events/${event.id}/waitroom/session`, { method: "DELETE", token: fans[0].token });
    const admitted = await rounds(event.id, async () => seen.find((m) => m.type === "admitted"), "an admitted message");
    // The same checkout, whichever answer minted the token (each is signed when it is read, so
    // two reads a second apart differ in `iat` only).
    const claims = (token: string) => {
      const b64 = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      const { sub, evt, sid, exp } = JSON.parse(atob(b64.padEnd(Math.ceil(b64.length / 4) * 4, "=")));
      return { sub, evt, sid, exp };
    };
    const polled = await session(event.id, fans[1]);
    expect(claims(admitted.checkoutToken)).toEqual(claims(polled.checkoutToken));
    expect(claims(admitted.checkoutToken)).toMatchObject({ sub: fans[1].id, evt: event.id, sid: polled.sessionId });
    ws.close();
  });

  it("loses nobody and admits nobody twice when a shard and the event's object restart mid-sale", async () => {
    const event = await shardedEvent(2);
    const { fans, sessions } = await crowd(event.id, 6);
    await rounds(event.id, async () => (await statuses(event.id, fans)).filter((s) => s === "ADMITTED").length === 2, "two admitted");
    const before = await Promise.all(fans.map((f) => session(event.id, f)));
    const holding = (await fansPerShard(event.id)).map((f, shard) => (f.length > 0 ? shard : -1)).filter((s) => s >= 0);
    for (const shard of holding) await evictDurableObject(shardObject(event.id, shard));
    await runAlarmNow(hub(event.id));
    await evictDurableObject(hub(event.id));
    const restarted = await Promise.all(fans.map((f) => session(event.id, f)));
    expect(restarted.map((s) => [s.sessionId, s.status])).toEqual(before.map((s) => [s.sessionId, s.status]));
    expect(restarted.map((s) => s.sessionId)).toEqual(sessions.map((s) => s.sessionId));

    // The two admitted give their checkouts back; the next two in arrival order follow.
    for (const fan of fans.slice(0, 2)) {
      expect((await call(`/api/events/${event.id}/waitroom/session`, { method: "DELETE", token: fan.token })).status).toBe(204);
    }
    await runAlarmNow(hub(event.id));
    await evictDurableObject(hub(event.id));
    await rounds(event.id, async () => {
      const now = await statuses(event.id, fans);
      return now[2] === "ADMITTED" && now[3] === "ADMITTED";
    }, "the next two admitted after the restart");
    const final = await Promise.all(fans.map((f) => session(event.id, f)));
    expect(final.map((s) => s.status)).toEqual(["LEFT", "LEFT", "ADMITTED", "ADMITTED", "QUEUED", "QUEUED"]);
    const status = await runInDurableObject(hub(event.id), async (_: unknown, state: DurableObjectState) => {
      const row = state.storage.sql.exec("SELECT state_json FROM hub_admission").toArray()[0] as any;
      return JSON.parse(row.state_json);
    });
    expect(status.slotsInUse).toBe(2);
  });

  it("answers a queued fan's polls from the shard's snapshot, calling the shard about once a second", async () => {
    const event = await shardedEvent(1);
    const { fans } = await crowd(event.id, 4);
    await rounds(event.id, async () => (await session(event.id, fans[0])).status === "ADMITTED", "the first fan admitted");
    await rounds(event.id, async () => (await session(event.id, fans[3])).position !== null, "positions once every shard reported");
    const last = fans[3];
    const shard = (await fansPerShard(event.id)).findIndex((f) => f.includes(last.id));
    const calls = { count: 0 };
    await runInDurableObject(shardObject(event.id, shard), async (instance: any) => {
      const fetch = instance.fetch.bind(instance);
      instance.fetch = (req: Request) => {
        calls.count++;
        return fetch(req);
      };
    });
    const started = Date.now();
    const first = await session(event.id, last);
    const seen = [];
    for (let i = 0; i < 10; i++) seen.push(await session(event.id, last));
    const elapsed = Date.now() - started;
    expect(seen.map((s) => [s.status, s.sessionId])).toEqual(seen.map(() => ["QUEUED", first.sessionId]));
    // Exactly 3; the bound (README, "Queue shards") allows the fans of the same arrival
    // second either way and the admission of the last round, still in the others' summary.
    for (const s of seen) {
      expect(s.position).toBeGreaterThanOrEqual(1);
      expect(s.position).toBeLessThanOrEqual(4);
    }
    // Eleven polls (well under a second on a quick machine): at most one snapshot for each
    // second they span, and one refresh of the record.
    expect(calls.count).toBeLessThanOrEqual(2 + Math.floor(elapsed / 1_000));
    // A fan admitted meanwhile is never shown queued: the snapshot says the hub picked them.
    expect((await call(`/api/events/${event.id}/waitroom/session`, { method: "DELETE", token: fans[0].token })).status).toBe(204);
    await rounds(event.id, async () => (await session(event.id, fans[1])).status === "ADMITTED", "the next fan admitted");
  });

  it("answers a queued fan's polls from their pass in an isolate that never read their record", async () => {
    const event = await shardedEvent(1);
    const { fans } = await crowd(event.id, 4);
    await rounds(event.id, async () => (await session(event.id, fans[0])).status === "ADMITTED", "the first fan admitted");
    await rounds(event.id, async () => (await session(event.id, fans[3])).position !== null, "positions once every shard reported");
    const [other, last] = [fans[2], fans[3]];
    const shard = (await fansPerShard(event.id)).findIndex((f) => f.includes(last.id));
    const reads: string[] = []; // the shard's reads of this fan's record, not its snapshots
    await runInDurableObject(shardObject(event.id, shard), async (instance: any) => {
      const fetch = instance.fetch.bind(instance);
      instance.fetch = async (req: Request) => {
        const body = await req.clone().json().catch(() => null);
        if (body?.op === "session" && body?.userId === last.id) reads.push(body.op);
        return fetch(req);
      };
    });
    const forget = async () => expect((await call("/api/dev/isolate-memory", { method: "DELETE" })).status).toBe(204);
    const poll = (fan: TestUser, pass?: string | null) =>
      call(`/api/events/${event.id}/waitroom/session`, { token: fan.token, headers: pass ? { "Waitroom-Pass": pass } : {} });

    // An isolate that knows nothing of the fan reads the record and hands out the pass.
    await forget();
    const first = await poll(last);
    const pass = first.headers.get("Waitroom-Pass");
    expect(pass).toMatch(/^[\w-]+\.[\w-]+$/);
    const queued = (await json(first)).waitroomSession;
    expect(queued.status).toBe("QUEUED");
    expect(reads.length).toBe(1);

    // Another such isolate answers from the pass alone: same session, no record read, no new pass.
    await forget();
    const fromPass = await poll(last, pass);
    expect(fromPass.headers.get("Waitroom-Pass")).toBeNull();
    expect((await json(fromPass)).waitroomSession).toMatchObject({ status: "QUEUED", sessionId: queued.sessionId });
    expect(reads.length).toBe(1);

    // Only a queued fan gets a pass: the one state a poll is answered in without the shard.
    await forget();
    const admittedPoll = await poll(fans[0]);
    expect((await json(admittedPoll)).waitroomSession.status).toBe("ADMITTED");
    expect(admittedPoll.headers.get("Waitroom-Pass")).toBeNull();

    // Someone else's pass, or a forged one, is ignored (never an error): the shard is asked.
    await forget();
    const otherPass = (await poll(other)).headers.get("Waitroom-Pass");
    expect(otherPass).toBeTruthy();
    for (const wrong of [otherPass!, `${pass!.split(".")[0]}.AAAA`, "junk"]) {
      await forget();
      const res = await poll(last, wrong);
      expect(res.status).toBe(200);
      expect((await json(res)).waitroomSession.sessionId).toBe(queued.sessionId);
    }
    expect(reads.length).toBe(4);

    // After a leave made here, the old pass answers nothing.
    expect((await call(`/api/events/${event.id}/waitroom/session`, { method: "DELETE", token: last.token })).status).toBe(204);
    const after = await poll(last, pass);
    expect(after.status === 404 || (await json(after)).waitroomSession.status !== "QUEUED").toBe(true);
  });

  it("slows its rounds while nobody waits, and the next fan's shard wakes it", async () => {
    const event = await shardedEvent(2);
    const admission = () =>
      runInDurableObject(hub(event.id), async (_: unknown, state: DurableObjectState) => {
        const row = state.storage.sql.exec("SELECT state_json FROM hub_admission").toArray()[0] as any;
        return JSON.parse(row.state_json);
      });
    const quiet = await rounds(event.id, async () => {
      const state = await admission();
      return state.idle && state;
    }, "an idle admission");
    const before = quiet.nextTickId;
    const fan = await registerAndLogin();
    await join(event.id, fan);
    // Rounds a second again: admitted well within the 30 s an idle hub would otherwise wait.
    await rounds(event.id, async () => (await session(event.id, fan)).status === "ADMITTED", "the woken hub admits");
    expect((await admission()).nextTickId).toBeGreaterThan(before);
  });

  it("moves pre-queued fans to their new shard when the count is raised before the sale", async () => {
    const event = await publishedEvent({ allowWaitRoom: true, saleStartsInMs: 120_000, waitroom: { maxConcurrentCheckouts: 5, shards: 2 } });
    const { fans, sessions } = await crowd(event.id, 12);
    expect(sessions.every((s) => s.status === "QUEUED")).toBe(true);
    expect((await fansPerShard(event.id, 2)).flat().length).toBe(12);
    const { event: read } = await json(await call(`/api/events/${event.id}`, { token: event.organizer.token }));
    const raised = await call(`/api/events/${event.id}/config`, {
      method: "PUT",
      token: event.organizer.token,
      body: { ...read.config, waitroom: { ...read.config.waitroom, shards: 6 } },
    });
    expect(raised.status).toBe(200);
    // The hub's alarm hands the moved fans over, then sends the new count.
    const perShard = await eventually(async () => {
      await runAlarmNow(hub(event.id));
      const now = await fansPerShard(event.id, 6);
      return now.slice(2).some((f) => f.length > 0) && now.flat().length === 12 && now;
    }, "the moved fans adopted and dropped from their old shards");
    expect(new Set(perShard.flat()).size).toBe(12);
    // Same session, still queued, wherever the Worker now routes the fan.
    await sleep(2_100); // the Worker's event gate sees the new count
    const after = await Promise.all(fans.map((f) => session(event.id, f)));
    expect(after.map((s) => [s.sessionId, s.status])).toEqual(sessions.map((s) => [s.sessionId, "QUEUED"]));
  });

  it("takes a verified fan's waitroom calls from the token alone, with no account read", async () => {
    const event = await shardedEvent(1);
    const fan = await registerAndLogin();
    await env.DB.prepare("UPDATE users SET email_verified = 1 WHERE id = ?").bind(fan.id).run();
    const login = await call("/api/auth/login", { body: { email: fan.email, password: PASSWORD } });
    const verified = { ...fan, token: (await json(login)).accessToken };
    // Behind the API's back the account's tokens are revoked (as a logout-all would).
    await env.DB.prepare("UPDATE users SET token_version = token_version + 1 WHERE id = ?").bind(fan.id).run();
    // The crowd's path does not read the account: the token stands until it expires...
    expect((await join(event.id, verified)).status).toBe("QUEUED");
    expect((await session(event.id, verified)).status).toBe("QUEUED");
    // ...every other route does, and refuses it.
    await expectProblem(await call("/api/users/me", { token: verified.token }), 401, "UNAUTHENTICATED");
    await expectProblem(
      await call("/api/orders", {
        token: verified.token,
        headers: { "Idempotency-Key": crypto.randomUUID() },
        body: { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 1 }], paymentMethod: "sandbox" },
      }),
      401,
      "UNAUTHENTICATED",
    );
  });

  it("refuses a message meant for another event or shard, writing nothing", async () => {
    const event = await shardedEvent(1);
    const { fans } = await crowd(event.id, 1);
    const shard = (await fansPerShard(event.id)).findIndex((f) => f.length === 1);
    const forged = await shardObject(event.id, shard).fetch("https://event-hub/rpc", {
      method: "POST",
      body: JSON.stringify({ op: "admission", message: { type: "Heads", eventId: "another-event", tickId: 1, want: 5, others: null, admissionRate: null } }),
    });
    expect(forged.status).toBe(409);
    expect((await forged.json<any>()).code).toBe("CONFLICT");
    const garbage = await shardObject(event.id, shard).fetch("https://event-hub/rpc", { method: "POST", body: "{\"op\":\"drop\"}" });
    expect(garbage.status).toBe(400);
    expect((await session(event.id, fans[0])).status).toBe("QUEUED");
  });
});
