// The catalogue through the real HTTP API: categories, organizers, events and their search,
// sale terms, the status workflow, roles (with the full role matrix) and ticket classes.
// Every test makes its own users, events and categories: the file shares one D1.
import { env, runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { adminUser, call, expectProblem, json, registerAndLogin, type TestUser } from "./helpers";
import { publishedEvent as saleFixture, ticketClasses } from "./fixtures";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const iso = (ms: number) => new Date(ms).toISOString();
/** Far enough ahead that no sale window or event start passes while the suite runs. */
const BASE = Date.now() + 10 * DAY;

let counter = 0;
function uid(): string {
  counter += 1;
  return `${Date.now().toString(36)}${counter}`;
}

function eventBody(extra: Record<string, unknown> = {}) {
  return {
    name: `Đêm nhạc ${uid()}`,
    description: "Một đêm nhạc\nwith two lines",
    startDate: iso(BASE + 60 * DAY),
    endDate: iso(BASE + 60 * DAY + 4 * HOUR),
    location: "Nhà hát Lớn Hà Nội",
    ...extra,
  };
}

function configBody(extra: Record<string, unknown> = {}) {
  return {
    ticketSaleStartDate: iso(BASE + DAY),
    ticketSaleEndDate: iso(BASE + 30 * DAY),
    maxTicketsPerUser: 4,
    ...extra,
  };
}

let owner: TestUser; // creates the shared fixtures: their events' admin
let editor: TestUser;
let viewer: TestUser;
let plain: TestUser; // signed in, no role anywhere
let admin: TestUser; // platform admin (ADMIN_EMAILS), no event role

beforeAll(async () => {
  [owner, editor, viewer, plain, admin] = await Promise.all([
    registerAndLogin(),
    registerAndLogin(),
    registerAndLogin(),
    registerAndLogin(),
    adminUser(),
  ]);
});

async function ok(res: Response, status = 200): Promise<any> {
  if (res.status !== status) throw new Error(`expected ${status}, got ${res.status}: ${await res.text()}`);
  return res.status === 204 ? null : json(res);
}

async function createEvent(by: TestUser, extra: Record<string, unknown> = {}): Promise<any> {
  return (await ok(await call("/api/events", { token: by.token, body: eventBody(extra) }), 201)).event;
}

async function configure(id: string, by: TestUser, extra: Record<string, unknown> = {}): Promise<Response> {
  return call(`/api/events/${id}/config`, { method: "PUT", token: by.token, body: { eventConfig: configBody(extra) } });
}

async function move(id: string, action: "approve" | "publish" | "cancel", by?: TestUser): Promise<Response> {
  return call(`/api/events/${id}/${action}`, { method: "POST", token: by?.token });
}

/** DRAFT → CONFIGURED → APPROVED → PUBLISHED. */
async function publishedEvent(by: TestUser = owner, extra: Record<string, unknown> = {}, config: Record<string, unknown> = {}): Promise<any> {
  const event = await createEvent(by, extra);
  await ok(await configure(event.id, by, config));
  await ok(await move(event.id, "approve", admin));
  return (await ok(await move(event.id, "publish", by))).event;
}

async function grant(eventId: string, by: TestUser, user: TestUser, role: string): Promise<Response> {
  return call(`/api/events/${eventId}/roles/${user.id}`, { method: "PUT", token: by.token, body: { role } });
}

function fields(problem: any): string[] {
  return problem.errors.map((e: any) => e.field).sort();
}

async function countEvents(name: string): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM events WHERE name = ?1").bind(name).first<{ n: number }>();
  return row?.n ?? 0;
}

describe("categories", () => {
  it("are created by platform admins with a slug and listed for everyone", async () => {
    const name = `Âm nhạc ${uid()}`;
    const res = await call("/api/categories", { token: admin.token, body: { name } });
    const { category } = await ok(res, 201);
    expect(category.slug).toMatch(/^am-nhac-[a-z0-9]+$/);
    const list = await ok(await call("/api/categories"));
    expect(list.items).toContainEqual({ id: category.id, name, slug: category.slug });
  });

  it("refuse a second category with the same slug", async () => {
    const name = `Thể thao ${uid()}`;
    await ok(await call("/api/categories", { token: admin.token, body: { name } }), 201);
    await expectProblem(await call("/api/categories", { token: admin.token, body: { name: name.toUpperCase() } }), 409, "CATEGORY_EXISTS");
  });

  it("are only created by platform admins, with a valid name", async () => {
    await expectProblem(await call("/api/categories", { body: { name: "X" } }), 401, "UNAUTHENTICATED");
    await expectProblem(await call("/api/categories", { token: plain.token, body: { name: "X" } }), 403, "FORBIDDEN");
    const bad = await expectProblem(await call("/api/categories", { token: admin.token, body: { name: "!!!" } }), 400, "VALIDATION_FAILED");
    expect(fields(bad)).toEqual(["name"]);
  });
});

describe("organizers", () => {
  it("are owned by their creator and readable by anyone", async () => {
    const res = await call("/api/organizers", {
      token: owner.token,
      body: { name: "Saigon Live", description: "Concerts", logoUrl: "https://img.example.com/logo.png" },
    });
    const { organizer } = await ok(res, 201);
    expect(organizer).toMatchObject({ name: "Saigon Live", description: "Concerts", ownerId: owner.id });
    const read = await ok(await call(`/api/organizers/${organizer.id}`));
    expect(read.organizer).toEqual(organizer);
  });

  it("reject bad fields, anonymous callers and unknown ids", async () => {
    const bad = await expectProblem(
      await call("/api/organizers", { token: owner.token, body: { name: "", logoUrl: "ftp://x" } }),
      400,
      "VALIDATION_FAILED",
    );
    expect(fields(bad)).toEqual(["logoUrl", "name"]);
    await expectProblem(await call("/api/organizers", { body: { name: "A" } }), 401, "UNAUTHENTICATED");
    await expectProblem(await call(`/api/organizers/${crypto.randomUUID()}`), 404, "NOT_FOUND");
    await expectProblem(await call("/api/organizers/not-a-uuid"), 404, "NOT_FOUND");
  });

  it("only file events of their owner", async () => {
    const { organizer } = await ok(await call("/api/organizers", { token: owner.token, body: { name: "Mine" } }), 201);
    const own = await createEvent(owner, { organizerId: organizer.id });
    expect(own.organizerId).toBe(organizer.id);
    const res = await call("/api/events", { token: plain.token, body: eventBody({ organizerId: organizer.id }) });
    expect(fields(await expectProblem(res, 400, "VALIDATION_FAILED"))).toEqual(["organizerId"]);
  });
});

describe("creating an event", () => {
  it("makes a DRAFT with the caller as its admin", async () => {
    const { category } = await ok(await call("/api/categories", { token: admin.token, body: { name: `Jazz ${uid()}` } }), 201);
    const body = eventBody({ thumbnailUrl: "https://img.example.com/t.png", categoryIds: [category.slug] });
    const res = await call("/api/events", { token: owner.token, body });
    const { event } = await ok(res, 201);
    expect(event).toMatchObject({
      name: body.name,
      description: body.description,
      location: body.location,
      thumbnailUrl: body.thumbnailUrl,
      status: "DRAFT",
      organizerId: null,
      config: null,
      categories: [{ id: category.id, name: category.name, slug: category.slug }],
    });
    expect(Date.parse(event.startDate)).toBe(Date.parse(body.startDate));
    const roles = await ok(await call(`/api/events/${event.id}/roles`, { token: owner.token }));
    expect(roles.items).toEqual([{ userId: owner.id, role: "admin", email: owner.email }]);
  });

  it("reports every bad field and writes nothing", async () => {
    const name = `Never ${uid()}`;
    const res = await call("/api/events", {
      token: owner.token,
      body: {
        name,
        description: "x",
        startDate: iso(BASE + 2 * DAY),
        endDate: iso(BASE + DAY),
        location: "",
        thumbnailUrl: "javascript:alert(1)",
        categoryIds: [crypto.randomUUID()],
      },
    });
    const problem = await expectProblem(res, 400, "VALIDATION_FAILED");
    expect(fields(problem)).toEqual(["endDate", "location", "thumbnailUrl"]);
    const unknownCategory = await expectProblem(
      await call("/api/events", { token: owner.token, body: eventBody({ name, categoryIds: ["no-such-category"] }) }),
      400,
      "VALIDATION_FAILED",
    );
    expect(fields(unknownCategory)).toEqual(["categoryIds[0]"]);
    expect(await countEvents(name)).toBe(0);
  });

  it("requires every field and a signed-in user", async () => {
    const problem = await expectProblem(await call("/api/events", { token: owner.token, body: {} }), 400, "VALIDATION_FAILED");
    expect(fields(problem)).toEqual(["description", "endDate", "location", "name", "startDate"]);
    await expectProblem(await call("/api/events", { body: eventBody() }), 401, "UNAUTHENTICATED");
    await expectProblem(await call("/api/events", { token: owner.token, body: { ...eventBody(), status: "PUBLISHED" } }), 400, "VALIDATION_FAILED");
  });
});

describe("status workflow", () => {
  it("goes DRAFT → CONFIGURED → APPROVED → PUBLISHED", async () => {
    const event = await createEvent(owner);
    const configured = (await ok(await configure(event.id, owner, { isNewTrending: true }))).event;
    expect(configured.status).toBe("CONFIGURED");
    expect(configured.config).toEqual({
      ticketSaleStartDate: iso(BASE + DAY),
      ticketSaleEndDate: iso(BASE + 30 * DAY),
      isFree: false,
      maxAttendees: null,
      isPublic: true,
      requiresApproval: false,
      allowWaitRoom: false,
      isNewTrending: true,
      maxTicketsPerUser: 4,
      waitroom: { maxConcurrentCheckouts: 100, checkoutTtlSeconds: 900, admissionBatch: 100, shards: 1 },
    });
    expect((await ok(await move(event.id, "approve", admin))).event.status).toBe("APPROVED");
    expect((await ok(await move(event.id, "publish", owner))).event.status).toBe("PUBLISHED");
    const read = await ok(await call(`/api/events/${event.id}`));
    expect(read.event.status).toBe("PUBLISHED");
  });

  it("refuses moves the current status does not allow", async () => {
    const event = await createEvent(owner);
    await expectProblem(await move(event.id, "approve", admin), 409, "INVALID_STATUS_TRANSITION");
    await expectProblem(await move(event.id, "publish", owner), 409, "INVALID_STATUS_TRANSITION");
    await ok(await configure(event.id, owner));
    await expectProblem(await move(event.id, "publish", owner), 409, "INVALID_STATUS_TRANSITION");
    await ok(await move(event.id, "approve", admin));
    await expectProblem(await move(event.id, "approve", admin), 409, "INVALID_STATUS_TRANSITION");
    await ok(await move(event.id, "publish", owner));
    await expectProblem(await move(event.id, "publish", owner), 409, "INVALID_STATUS_TRANSITION");
    await expectProblem(await move(event.id, "approve", admin), 409, "INVALID_STATUS_TRANSITION");
  });

  it("sends an approved event back to CONFIGURED when its terms change", async () => {
    const event = await createEvent(owner);
    await ok(await configure(event.id, owner));
    await ok(await move(event.id, "approve", admin));
    expect((await ok(await configure(event.id, owner, { maxAttendees: 500 }))).event.status).toBe("CONFIGURED");
  });

  it("cancels from any status, finally", async () => {
    const draft = await createEvent(owner);
    const configured = await createEvent(owner);
    await ok(await configure(configured.id, owner));
    const approved = await createEvent(owner);
    await ok(await configure(approved.id, owner));
    await ok(await move(approved.id, "approve", admin));
    const published = await publishedEvent();
    for (const e of [draft, configured, approved, published]) {
      expect((await ok(await move(e.id, "cancel", owner))).event.status).toBe("CANCELLED");
    }
    // Platform admins cancel too.
    const other = await publishedEvent();
    expect((await ok(await move(other.id, "cancel", admin))).event.status).toBe("CANCELLED");
    // Nothing happens to a cancelled event any more.
    await expectProblem(await move(draft.id, "cancel", owner), 409, "INVALID_STATUS_TRANSITION");
    await expectProblem(await configure(draft.id, owner), 409, "INVALID_STATUS_TRANSITION");
    await expectProblem(
      await call(`/api/events/${draft.id}`, { method: "PATCH", token: owner.token, body: { name: "Back" } }),
      409,
      "INVALID_STATUS_TRANSITION",
    );
    await expectProblem(
      await call(`/api/events/${draft.id}/ticket-classes`, { token: owner.token, body: { name: "GA", priceCents: 0, currency: "VND", total: 1 } }),
      409,
      "INVALID_STATUS_TRANSITION",
    );
  });

  it("keeps a cancelled published event visible, and a cancelled draft hidden", async () => {
    const published = await publishedEvent();
    await ok(await move(published.id, "cancel", owner));
    expect((await ok(await call(`/api/events/${published.id}`))).event.status).toBe("CANCELLED");
    const draft = await createEvent(owner);
    await ok(await move(draft.id, "cancel", owner));
    await expectProblem(await call(`/api/events/${draft.id}`), 404, "NOT_FOUND");
    await expectProblem(await call(`/api/events/${draft.id}`, { token: plain.token }), 404, "NOT_FOUND");
  });
});

describe("editing", () => {
  it("changes only the fields sent and clears with null", async () => {
    const { category } = await ok(await call("/api/categories", { token: admin.token, body: { name: `Rock ${uid()}` } }), 201);
    const event = await createEvent(owner, { thumbnailUrl: "https://img.example.com/a.png" });
    const res = await call(`/api/events/${event.id}`, {
      method: "PATCH",
      token: owner.token,
      body: { name: "Renamed", thumbnailUrl: null, categoryIds: [category.id] },
    });
    const updated = (await ok(res)).event;
    expect(updated).toMatchObject({ name: "Renamed", thumbnailUrl: null, location: event.location, description: event.description });
    expect(updated.categories.map((c: any) => c.id)).toEqual([category.id]);
    const cleared = (await ok(await call(`/api/events/${event.id}`, { method: "PATCH", token: owner.token, body: { categoryIds: [] } }))).event;
    expect(cleared.categories).toEqual([]);
  });

  it("rejects bad fields and changes nothing", async () => {
    const event = await createEvent(owner);
    const res = await call(`/api/events/${event.id}`, {
      method: "PATCH",
      token: owner.token,
      body: { name: "", endDate: iso(BASE), location: "ok" },
    });
    expect(fields(await expectProblem(res, 400, "VALIDATION_FAILED"))).toEqual(["endDate", "name"]);
    const after = (await ok(await call(`/api/events/${event.id}`, { token: owner.token }))).event;
    expect(after).toMatchObject({ name: event.name, location: event.location, updatedAt: event.updatedAt });
  });

  it("keeps the sale window inside the event", async () => {
    const event = await createEvent(owner);
    const late = await configure(event.id, owner, { ticketSaleEndDate: iso(BASE + 61 * DAY) });
    expect(fields(await expectProblem(late, 400, "VALIDATION_FAILED"))).toEqual(["ticketSaleEndDate"]);
    const backwards = await configure(event.id, owner, { ticketSaleStartDate: iso(BASE + 31 * DAY) });
    expect(fields(await expectProblem(backwards, 400, "VALIDATION_FAILED"))).toEqual(["ticketSaleEndDate"]);
    const bad = await call(`/api/events/${event.id}/config`, {
      method: "PUT",
      token: owner.token,
      body: { ticketSaleStartDate: "soon", maxAttendees: 0, waitroom: { checkoutTtlSeconds: 5 } },
    });
    expect(fields(await expectProblem(bad, 400, "VALIDATION_FAILED"))).toEqual([
      "maxAttendees",
      "ticketSaleEndDate",
      "ticketSaleStartDate",
      "waitroom.checkoutTtlSeconds",
    ]);
    expect((await ok(await call(`/api/events/${event.id}`, { token: owner.token }))).event.status).toBe("DRAFT");
  });

  it("accepts the bare config object as well as {eventConfig}", async () => {
    const event = await createEvent(owner);
    const res = await call(`/api/events/${event.id}/config`, { method: "PUT", token: owner.token, body: configBody({ allowWaitRoom: true }) });
    expect((await ok(res)).event.config.allowWaitRoom).toBe(true);
  });

  it("holds a published event to what buyers rely on", async () => {
    const event = await publishedEvent();
    const earlierEnd = await configure(event.id, owner, { ticketSaleEndDate: iso(BASE + 20 * DAY) });
    expect(fields(await expectProblem(earlierEnd, 400, "VALIDATION_FAILED"))).toEqual(["ticketSaleEndDate"]);
    const freeNow = await configure(event.id, owner, { isFree: true });
    expect(fields(await expectProblem(freeNow, 400, "VALIDATION_FAILED"))).toEqual(["isFree"]);
    const laterEnd = await ok(await configure(event.id, owner, { ticketSaleEndDate: iso(BASE + 40 * DAY) }));
    expect(laterEnd.event).toMatchObject({ status: "PUBLISHED", config: { ticketSaleEndDate: iso(BASE + 40 * DAY) } });

    const earlierStart = await call(`/api/events/${event.id}`, { method: "PATCH", token: owner.token, body: { startDate: iso(BASE + 59 * DAY) } });
    expect(fields(await expectProblem(earlierStart, 400, "VALIDATION_FAILED"))).toEqual(["startDate"]);
    const { organizer } = await ok(await call("/api/organizers", { token: owner.token, body: { name: "Late" } }), 201);
    const newOrganizer = await call(`/api/events/${event.id}`, { method: "PATCH", token: owner.token, body: { organizerId: organizer.id } });
    expect(fields(await expectProblem(newOrganizer, 400, "VALIDATION_FAILED"))).toEqual(["organizerId"]);
    const postponed = await call(`/api/events/${event.id}`, {
      method: "PATCH",
      token: owner.token,
      body: { startDate: iso(BASE + 62 * DAY), endDate: iso(BASE + 62 * DAY + 4 * HOUR) },
    });
    expect((await ok(postponed)).event).toMatchObject({ status: "PUBLISHED", startDate: iso(BASE + 62 * DAY) });
  });
});

describe("queue shards (eventConfig.waitroom.shards)", () => {
  const shards = (n: unknown) => ({ waitroom: { shards: n } });
  const shardsOf = async (id: string) => (await ok(await call(`/api/events/${id}`, { token: owner.token }))).event.config.waitroom.shards;

  /** The setup the event's object stored at its last sync: what it was told, not what D1 holds. */
  async function setupInObject(id: string): Promise<any> {
    let setup: any;
    await runInDurableObject(env.EVENT_HUB.get(env.EVENT_HUB.idFromName(id)), async (_instance: unknown, state: DurableObjectState) => {
      const [row] = state.storage.sql.exec("SELECT setup_json FROM hub_event WHERE id = 1").toArray() as { setup_json: string }[];
      setup = row && JSON.parse(row.setup_json);
    });
    return setup;
  }

  it("are configured, read back, default to 1 and reach the event's object", async () => {
    const event = await createEvent(owner);
    const configured = (await ok(await configure(event.id, owner, shards(4)))).event;
    expect(configured.config.waitroom).toEqual({ maxConcurrentCheckouts: 100, checkoutTtlSeconds: 900, admissionBatch: 100, shards: 4 });
    expect(await shardsOf(event.id)).toBe(4);
    expect((await setupInObject(event.id)).shards).toBe(4);

    const plainEvent = await createEvent(owner);
    expect((await ok(await configure(plainEvent.id, owner))).event.config.waitroom.shards).toBe(1);
    expect((await ok(await configure(plainEvent.id, owner, shards(null)))).event.config.waitroom.shards).toBe(1);
    expect((await ok(await configure(plainEvent.id, owner, shards(64)))).event.config.waitroom.shards).toBe(64);
  });

  it("refuse 0, 65, 2.5 and \"x\" with a field error at waitroom.shards, writing nothing", async () => {
    const event = await createEvent(owner);
    for (const bad of [0, 65, 2.5, "x"]) {
      const problem = await expectProblem(await configure(event.id, owner, shards(bad)), 400, "VALIDATION_FAILED");
      expect(fields(problem), `shards: ${JSON.stringify(bad)}`).toEqual(["waitroom.shards"]);
    }
    const after = (await ok(await call(`/api/events/${event.id}`, { token: owner.token }))).event;
    expect(after).toMatchObject({ status: "DRAFT", config: null });
  });

  it("are never lowered, in any status, also by leaving the field out", async () => {
    const draft = await createEvent(owner);
    await ok(await configure(draft.id, owner, shards(4)));
    for (const lower of [shards(2), {}]) {
      const problem = await expectProblem(await configure(draft.id, owner, lower), 400, "VALIDATION_FAILED");
      expect(fields(problem)).toEqual(["waitroom.shards"]);
    }
    expect(await shardsOf(draft.id)).toBe(4);

    const published = await publishedEvent(owner, {}, shards(8));
    const problem = await expectProblem(await configure(published.id, owner, shards(4)), 400, "VALIDATION_FAILED");
    expect(fields(problem)).toEqual(["waitroom.shards"]);
    expect(await shardsOf(published.id)).toBe(8);
  });

  it("may be raised until the sale starts, and not after", async () => {
    const before = await publishedEvent();
    const raised = (await ok(await configure(before.id, owner, shards(16)))).event;
    expect(raised).toMatchObject({ status: "PUBLISHED", config: { waitroom: { shards: 16 } } });
    expect((await setupInObject(before.id)).shards).toBe(16);

    const started = iso(Date.now() - HOUR);
    const onSale = await publishedEvent(owner, {}, { ticketSaleStartDate: started });
    const problem = await expectProblem(
      await configure(onSale.id, owner, { ticketSaleStartDate: started, ...shards(2) }),
      400,
      "VALIDATION_FAILED",
    );
    expect(fields(problem)).toEqual(["waitroom.shards"]);
    expect(await shardsOf(onSale.id)).toBe(1);
    // The same count is no change: the rest of the terms may still be tuned.
    const tuned = await configure(onSale.id, owner, { ticketSaleStartDate: started, waitroom: { shards: 1, admissionBatch: 50 } });
    expect((await ok(tuned)).event.config.waitroom).toMatchObject({ shards: 1, admissionBatch: 50 });
  });

  it("are in the OpenAPI document, asked and answered", async () => {
    const doc = await ok(await call("/api/openapi.json"));
    expect(doc.components.schemas.WaitroomRequest.properties.shards).toBeDefined();
    expect(doc.components.schemas.WaitroomConfig.properties.shards).toBeDefined();
    expect(doc.components.schemas.WaitroomConfig.required).toContain("shards");
  });
});

describe("roles", () => {
  it("are granted, changed, listed and removed by event admins", async () => {
    const event = await createEvent(owner);
    expect((await ok(await grant(event.id, owner, editor, "editor"))).role).toEqual({ userId: editor.id, role: "editor", email: editor.email });
    await ok(await grant(event.id, owner, viewer, "viewer"));
    const list = await ok(await call(`/api/events/${event.id}/roles`, { token: viewer.token }));
    expect(list.items.map((r: any) => [r.userId, r.role])).toEqual([
      [owner.id, "admin"],
      [editor.id, "editor"],
      [viewer.id, "viewer"],
    ]);
    expect((await ok(await grant(event.id, owner, viewer, "editor"))).role.role).toBe("editor");
    await ok(await call(`/api/events/${event.id}/roles/${viewer.id}`, { method: "DELETE", token: owner.token }), 204);
    await expectProblem(await call(`/api/events/${event.id}/roles/${viewer.id}`, { method: "DELETE", token: owner.token }), 404, "NOT_FOUND");
    await expectProblem(await call(`/api/events/${event.id}`, { token: viewer.token }), 404, "NOT_FOUND");
  });

  it("never leave an event without an admin", async () => {
    const event = await createEvent(owner);
    await expectProblem(await grant(event.id, owner, owner, "editor"), 409, "LAST_ADMIN");
    await expectProblem(await call(`/api/events/${event.id}/roles/${owner.id}`, { method: "DELETE", token: owner.token }), 409, "LAST_ADMIN");
    await ok(await grant(event.id, owner, editor, "admin"));
    expect((await ok(await grant(event.id, editor, owner, "viewer"))).role.role).toBe("viewer");
    await expectProblem(await call(`/api/events/${event.id}/roles/${editor.id}`, { method: "DELETE", token: editor.token }), 409, "LAST_ADMIN");
    const roles = await ok(await call(`/api/events/${event.id}/roles`, { token: editor.token }));
    expect(roles.items.filter((r: any) => r.role === "admin").map((r: any) => r.userId)).toEqual([editor.id]);
  });

  it("reject an unknown user or role", async () => {
    const event = await createEvent(owner);
    await expectProblem(
      await call(`/api/events/${event.id}/roles/${crypto.randomUUID()}`, { method: "PUT", token: owner.token, body: { role: "viewer" } }),
      404,
      "NOT_FOUND",
    );
    const bad = await expectProblem(await grant(event.id, owner, viewer, "owner"), 400, "VALIDATION_FAILED");
    expect(fields(bad)).toEqual(["role"]);
  });
});

// ---------------------------------------------------------------------------------------------
// The role matrix: every event endpoint × every kind of caller, exact status per cell.
// ---------------------------------------------------------------------------------------------

type Who = "anonymous" | "user" | "viewer" | "editor" | "admin" | "platformAdmin";
const WHO: Who[] = ["anonymous", "user", "viewer", "editor", "admin", "platformAdmin"];

interface Fixture {
  eventId: string;
  classId: string;
  target: TestUser; // a user roles are granted to and removed from
}

interface Row {
  name: string;
  request: (f: Fixture) => { method: string; path: string; body?: unknown };
  /** One status per column of WHO. */
  expected: string;
  /** The successful cells change the event for good: each runs on a fresh fixture. */
  destructive?: boolean;
}

function tokenOf(who: Who): string | undefined {
  return { anonymous: undefined, user: plain.token, viewer: viewer.token, editor: editor.token, admin: owner.token, platformAdmin: admin.token }[who];
}

async function fixture(published: boolean): Promise<Fixture> {
  const event = await createEvent(owner);
  await ok(await grant(event.id, owner, editor, "editor"));
  await ok(await grant(event.id, owner, viewer, "viewer"));
  const cls = await ok(
    await call(`/api/events/${event.id}/ticket-classes`, { token: owner.token, body: { name: "GA", priceCents: 100000, currency: "VND", total: 100 } }),
    201,
  );
  if (published) {
    await ok(await configure(event.id, owner));
    await ok(await move(event.id, "approve", admin));
    await ok(await move(event.id, "publish", owner));
  }
  return { eventId: event.id, classId: cls.ticketClass.id, target: await registerAndLogin() };
}

const ROWS: Row[] = [
  { name: "GET event", request: (f) => ({ method: "GET", path: `/api/events/${f.eventId}` }), expected: "200 200 200 200 200 200" },
  {
    name: "PATCH event",
    // Categories: not a material edit, so a published event takes it without a new review.
    request: (f) => ({ method: "PATCH", path: `/api/events/${f.eventId}`, body: { categoryIds: [] } }),
    expected: "401 403 403 200 200 403",
  },
  {
    name: "PUT config",
    request: (f) => ({ method: "PUT", path: `/api/events/${f.eventId}/config`, body: { eventConfig: configBody() } }),
    expected: "401 403 403 200 200 403",
  },
  { name: "POST approve", request: (f) => ({ method: "POST", path: `/api/events/${f.eventId}/approve` }), expected: "401 403 403 403 403 409" },
  { name: "POST publish", request: (f) => ({ method: "POST", path: `/api/events/${f.eventId}/publish` }), expected: "401 403 403 403 409 403" },
  { name: "GET roles", request: (f) => ({ method: "GET", path: `/api/events/${f.eventId}/roles` }), expected: "401 403 200 200 200 200" },
  {
    name: "PUT role",
    request: (f) => ({ method: "PUT", path: `/api/events/${f.eventId}/roles/${f.target.id}`, body: { role: "viewer" } }),
    expected: "401 403 403 403 200 403",
  },
  {
    name: "DELETE role",
    request: (f) => ({ method: "DELETE", path: `/api/events/${f.eventId}/roles/${f.target.id}` }),
    expected: "401 403 403 403 204 403",
  },
  { name: "GET ticket classes", request: (f) => ({ method: "GET", path: `/api/events/${f.eventId}/ticket-classes` }), expected: "200 200 200 200 200 200" },
  {
    name: "POST ticket class",
    request: (f) => ({ method: "POST", path: `/api/events/${f.eventId}/ticket-classes`, body: { name: "Extra", priceCents: 50000, currency: "VND", total: 10 } }),
    // Allowed to the editor and admin, but a new class is a material edit: refused once published.
    expected: "401 403 403 409 409 403",
  },
  {
    name: "PATCH ticket class",
    request: (f) => ({ method: "PATCH", path: `/api/events/${f.eventId}/ticket-classes/${f.classId}`, body: { name: "General" } }),
    expected: "401 403 403 200 200 403",
  },
  { name: "POST cancel", request: (f) => ({ method: "POST", path: `/api/events/${f.eventId}/cancel` }), expected: "401 403 403 403 200 200", destructive: true },
];

/** A draft is hidden: callers without a role are told it does not exist. */
const DRAFT_ROWS: Row[] = [
  { ...ROWS[0], expected: "404 404 200 200 200 200" },
  { ...ROWS[1], expected: "401 404 403 200 200 403" },
  { ...ROWS[3], expected: "401 404 403 403 403 409" },
  { ...ROWS[4], expected: "401 404 403 403 409 403" },
  { ...ROWS[5], expected: "401 404 200 200 200 200" },
  { ...ROWS[6], expected: "401 404 403 403 200 403" },
  { ...ROWS[7], expected: "401 404 403 403 204 403" },
  { ...ROWS[8], expected: "404 404 200 200 200 200" },
  { ...ROWS[9], expected: "401 404 403 201 201 403" },
  { ...ROWS[10], expected: "401 404 403 200 200 403" },
  { ...ROWS[11], expected: "401 404 403 403 200 200" },
  // Last: configuring moves the draft on, which would change the approve and publish rows.
  { ...ROWS[2], expected: "401 404 403 200 200 403" },
];

async function runMatrix(rows: Row[], published: boolean) {
  const shared = await fixture(published);
  for (const row of rows) {
    const actual: string[] = [];
    for (const [i, who] of WHO.entries()) {
      const wantsSuccess = row.expected.split(" ")[i].startsWith("2");
      const f = row.destructive && wantsSuccess ? await fixture(published) : shared;
      const { method, path, body } = row.request(f);
      const res = await call(path, { method, body, token: tokenOf(who) });
      actual.push(String(res.status));
      if (res.status >= 400) {
        expect(res.headers.get("content-type"), `${row.name} as ${who}`).toBe("application/problem+json");
      }
    }
    expect(`${row.name}: ${actual.join(" ")}`).toBe(`${row.name}: ${row.expected}`);
  }
}

describe("role matrix", () => {
  it("on a published event", async () => {
    await runMatrix(ROWS, true);
  }, 120_000);

  it("on a draft", async () => {
    await runMatrix(DRAFT_ROWS, false);
  }, 120_000);

  it("for an unknown event: 401 before anything else, then 404", async () => {
    const f: Fixture = { eventId: crypto.randomUUID(), classId: crypto.randomUUID(), target: plain };
    for (const row of ROWS) {
      const { method, path, body } = row.request(f);
      const anonymous = await call(path, { method, body });
      const signedIn = await call(path, { method, body, token: admin.token });
      const publicRead = method === "GET" && !path.endsWith("/roles");
      expect(`${row.name}: ${anonymous.status} ${signedIn.status}`).toBe(`${row.name}: ${publicRead ? 404 : 401} 404`);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------------------------

describe("listing and search", () => {
  let word: string;
  let category: any;
  let other: any;
  let ids: string[]; // the published public events carrying `word`, in list order

  beforeAll(async () => {
    word = `kw${uid()}`;
    category = (await ok(await call("/api/categories", { token: admin.token, body: { name: `Search ${uid()}` } }), 201)).category;
    other = (await ok(await call("/api/categories", { token: admin.token, body: { name: `Other ${uid()}` } }), 201)).category;
    const at = (day: number) => ({ startDate: iso(BASE + day * DAY), endDate: iso(BASE + day * DAY + 3 * HOUR) });
    const made = [];
    // Two on the same day: the id decides their order.
    for (const [day, cat, title] of [
      [40, category.id, "Âm vang"],
      [35, category.id, "Rock"],
      [45, other.id, "Jazz"],
      [35, category.id, "Pop"],
      [50, category.id, "Folk"],
    ] as const) {
      const e = await publishedEvent(owner, { name: `${title} ${word}`, categoryIds: [cat], ...at(day) });
      made.push(e);
    }
    ids = [...made]
      .sort((a, b) => Date.parse(a.startDate) - Date.parse(b.startDate) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((e) => e.id);
    // Not listed publicly: a draft, a private published event, a cancelled one.
    await createEvent(owner, { name: `Draft ${word}`, categoryIds: [category.id] });
    await publishedEvent(owner, { name: `Private ${word}` }, { isPublic: false });
    const gone = await publishedEvent(owner, { name: `Gone ${word}` });
    await ok(await move(gone.id, "cancel", owner));
  }, 120_000);

  async function list(query: string, token?: string): Promise<any> {
    return ok(await call(`/api/events?${query}`, { token }));
  }

  it("finds published public events by text, ordered by start date then id", async () => {
    const page = await list(`q=${word}`);
    expect(page).toMatchObject({ page: 1, pageSize: 20, total: 5 });
    expect(page.items.map((e: any) => e.id)).toEqual(ids);
    expect(page.items.every((e: any) => e.status === "PUBLISHED" && e.config.isPublic)).toBe(true);
  });

  it("matches words as prefixes, ignoring case and diacritics", async () => {
    for (const q of [`am vang ${word}`, `ÂM ${word}`, `${word} vÀn`]) {
      const page = await list(`q=${encodeURIComponent(q)}`);
      expect(page.items.map((e: any) => e.name), q).toEqual([`Âm vang ${word}`]);
    }
    // Query syntax in the text is only ever words to match.
    expect((await list(`q=${encodeURIComponent(`"${word}" * ( ^`)}`)).total).toBe(5);
  });

  it("filters by category id or slug", async () => {
    const bySlug = await list(`q=${word}&category=${category.slug}`);
    const byId = await list(`q=${word}&category=${category.id}`);
    expect(bySlug.total).toBe(4);
    expect(byId.items).toEqual(bySlug.items);
    expect((await list(`category=${other.slug}`)).items.map((e: any) => e.name)).toEqual([`Jazz ${word}`]);
    expect((await list(`q=${word}&category=unknown-category-${uid()}`)).total).toBe(0);
  });

  it("filters by date range", async () => {
    const page = await list(`q=${word}&from=${iso(BASE + 36 * DAY)}&to=${iso(BASE + 46 * DAY)}`);
    expect(page.items.map((e: any) => e.name)).toEqual([`Âm vang ${word}`, `Jazz ${word}`]);
    expect((await list(`q=${word}&from=${iso(BASE + 51 * DAY)}`)).total).toBe(0);
  });

  it("pages through a stable order with the total on every page", async () => {
    const seen: string[] = [];
    for (const page of [1, 2, 3]) {
      const res = await list(`q=${word}&page=${page}&pageSize=2`);
      expect(res).toMatchObject({ page, pageSize: 2, total: 5 });
      seen.push(...res.items.map((e: any) => e.id));
    }
    expect(seen).toEqual(ids);
    expect((await list(`q=${word}&page=4&pageSize=2`)).items).toEqual([]);
  });

  it("lists the caller's events in any status with mine=true", async () => {
    const mine = await list(`mine=true&q=${word}`, owner.token);
    expect(mine.total).toBe(8);
    const statuses = mine.items.map((e: any) => e.status).sort();
    expect(statuses).toEqual(["CANCELLED", "DRAFT", "PUBLISHED", "PUBLISHED", "PUBLISHED", "PUBLISHED", "PUBLISHED", "PUBLISHED"]);
    expect((await list(`mine=true&q=${word}`, plain.token)).total).toBe(0);
    expect((await list(`mine=false&q=${word}`, plain.token)).total).toBe(5);
  });

  it("rejects bad parameters and an anonymous mine=true", async () => {
    await expectProblem(await call("/api/events?mine=true"), 401, "UNAUTHENTICATED");
    const bad = await expectProblem(
      await call(`/api/events?q=${encodeURIComponent("!!!")}&from=${iso(BASE + DAY)}&to=${iso(BASE)}&page=0&pageSize=101&mine=maybe&category=${encodeURIComponent("Not a slug")}`),
      400,
      "VALIDATION_FAILED",
    );
    expect(fields(bad)).toEqual(["category", "mine", "page", "pageSize", "q", "to"]);
  });

  it("follows renames in the search index", async () => {
    const e = await createEvent(owner, { name: `Before ${word}x` });
    await ok(await configure(e.id, owner));
    await ok(await move(e.id, "approve", admin));
    // A rename after approval goes back for review before it can be published.
    await ok(await call(`/api/events/${e.id}`, { method: "PATCH", token: owner.token, body: { name: `After ${word}y` } }));
    await ok(await move(e.id, "approve", admin));
    await ok(await move(e.id, "publish", owner));
    expect((await list(`q=${word}x`)).total).toBe(0);
    expect((await list(`q=${word}y`)).items.map((i: any) => i.id)).toEqual([e.id]);
  });
});

// ---------------------------------------------------------------------------------------------
// Ticket classes
// ---------------------------------------------------------------------------------------------

describe("ticket classes", () => {
  async function addClass(eventId: string, body: Record<string, unknown>, by: TestUser = owner): Promise<Response> {
    return call(`/api/events/${eventId}/ticket-classes`, { token: by.token, body });
  }

  it("are created with live counters and listed like the event", async () => {
    const event = await createEvent(owner);
    const res = await addClass(event.id, { name: "VIP", priceCents: 1500000, currency: "vnd", total: 50 });
    const { ticketClass } = await ok(res, 201);
    expect(ticketClass).toMatchObject({
      eventId: event.id,
      name: "VIP",
      priceCents: 1500000,
      currency: "VND",
      total: 50,
      reserved: 0,
      sold: 0,
      available: 50,
      saleStartAt: null,
      saleEndAt: null,
      status: "ACTIVE",
    });
    // The shared editor holds no role on this draft yet: it does not exist for them.
    await ok(await addClass(event.id, { name: "GA", priceCents: 0, currency: "VND", total: 500 }, editor), 404);
    await ok(await grant(event.id, owner, editor, "editor"));
    await ok(await addClass(event.id, { name: "GA", priceCents: 0, currency: "VND", total: 500 }, editor), 201);
    const list = await ok(await call(`/api/events/${event.id}/ticket-classes`, { token: owner.token }));
    expect(list.items.map((c: any) => [c.name, c.available])).toEqual([
      ["VIP", 50],
      ["GA", 500],
    ]);
    await expectProblem(await call(`/api/events/${event.id}/ticket-classes`), 404, "NOT_FOUND");
  });

  it("reject a negative price, unknown currency, empty total and bad dates, writing nothing", async () => {
    const event = await createEvent(owner);
    const res = await addClass(event.id, { name: "", priceCents: -1, currency: "XYZ", total: 0, saleStartAt: "now" });
    expect(fields(await expectProblem(res, 400, "VALIDATION_FAILED"))).toEqual(["currency", "name", "priceCents", "saleStartAt", "total"]);
    const typed = await addClass(event.id, { name: "A", priceCents: "100", currency: "VND", total: 1.5 });
    expect(fields(await expectProblem(typed, 400, "VALIDATION_FAILED"))).toEqual(["priceCents", "total"]);
    expect((await ok(await call(`/api/events/${event.id}/ticket-classes`, { token: owner.token }))).items).toEqual([]);
  });

  it("sell inside the event's ticket-sale window, in one currency, free on a free event", async () => {
    const event = await createEvent(owner);
    await ok(await configure(event.id, owner));
    const early = await addClass(event.id, { name: "Early", priceCents: 1, currency: "VND", total: 1, saleStartAt: iso(BASE), saleEndAt: iso(BASE + 31 * DAY) });
    expect(fields(await expectProblem(early, 400, "VALIDATION_FAILED"))).toEqual(["saleEndAt", "saleStartAt"]);
    const inside = await addClass(event.id, { name: "Early", priceCents: 1, currency: "VND", total: 1, saleStartAt: iso(BASE + DAY), saleEndAt: iso(BASE + 5 * DAY) });
    expect((await ok(inside, 201)).ticketClass).toMatchObject({ saleStartAt: iso(BASE + DAY), saleEndAt: iso(BASE + 5 * DAY) });
    const dollars = await addClass(event.id, { name: "USD", priceCents: 1000, currency: "USD", total: 1 });
    expect(fields(await expectProblem(dollars, 400, "VALIDATION_FAILED"))).toEqual(["currency"]);
    // Narrowing the sale window past an existing class is refused too.
    const narrower = await configure(event.id, owner, { ticketSaleStartDate: iso(BASE + 2 * DAY) });
    expect(fields(await expectProblem(narrower, 400, "VALIDATION_FAILED"))).toEqual([expect.stringMatching(/^ticketClasses\..+\.saleStartAt$/)]);

    const free = await createEvent(owner);
    await ok(await configure(free.id, owner, { isFree: true }));
    const priced = await addClass(free.id, { name: "GA", priceCents: 1000, currency: "VND", total: 1 });
    expect(fields(await expectProblem(priced, 400, "VALIDATION_FAILED"))).toEqual(["priceCents"]);
  });

  it("are updated: name, price, total, status; never the currency", async () => {
    const event = await createEvent(owner);
    await ok(await configure(event.id, owner));
    const { ticketClass } = await ok(await addClass(event.id, { name: "GA", priceCents: 100000, currency: "VND", total: 100 }), 201);
    await ok(await move(event.id, "approve", admin));
    await ok(await move(event.id, "publish", owner));
    const path = `/api/events/${event.id}/ticket-classes/${ticketClass.id}`;
    // The shared editor holds no role here yet: the published event is visible, the edit is not theirs.
    await expectProblem(await call(path, { method: "PATCH", token: editor.token, body: { name: "X" } }), 403, "FORBIDDEN");
    await ok(await grant(event.id, owner, editor, "editor"));
    const updated = await ok(
      await call(path, { method: "PATCH", token: editor.token, body: { name: "General", priceCents: 90000, total: 150, status: "PAUSED" } }),
    );
    expect(updated.ticketClass).toMatchObject({ name: "General", priceCents: 90000, total: 150, available: 150, status: "PAUSED", currency: "VND" });
    const currency = await call(path, { method: "PATCH", token: owner.token, body: { currency: "USD", total: 0 } });
    expect(fields(await expectProblem(currency, 400, "VALIDATION_FAILED"))).toEqual(["currency", "total"]);
    await expectProblem(await call(`/api/events/${event.id}/ticket-classes/${crypto.randomUUID()}`, { method: "PATCH", token: owner.token, body: { name: "X" } }), 404, "NOT_FOUND");
    const list = await ok(await call(`/api/events/${event.id}/ticket-classes`));
    expect(list.items[0]).toMatchObject({ name: "General", total: 150, status: "PAUSED" });
  });

  it("refuse a total below reserved + sold with 409 TOTAL_BELOW_COMMITTED, and keep the old total", async () => {
    const event = await saleFixture({ classes: [{ name: "Few", priceCents: 1000, total: 5 }] });
    const buyer = await registerAndLogin();
    const placed = await call("/api/orders", {
      token: buyer.token,
      headers: { "Idempotency-Key": crypto.randomUUID() },
      body: { eventId: event.id, items: [{ ticketClassId: event.classes[0].id, quantity: 3 }], paymentMethod: "sandbox" },
    });
    expect(placed.status).toBe(201);
    const path = `/api/events/${event.id}/ticket-classes/${event.classes[0].id}`;
    const res = await call(path, { method: "PATCH", token: event.organizer.token, body: { total: 2 } });
    expect(res.status).toBe(409);
    expect((await res.json<any>()).code).toBe("TOTAL_BELOW_COMMITTED");
    const [c] = await ticketClasses(event.id);
    expect(c).toMatchObject({ total: 5, reserved: 3, available: 2 });
    const lowered = await call(path, { method: "PATCH", token: event.organizer.token, body: { total: 3 } });
    expect(lowered.status).toBe(200);
    expect((await lowered.json<any>()).ticketClass).toMatchObject({ total: 3, reserved: 3, available: 0 });
  });
});

describe("OpenAPI", () => {
  // Which paths and methods the document has is checked for every endpoint in routes.spec.ts.
  it("describes the catalogue's schemas", async () => {
    const doc = await ok(await call("/api/openapi.json"));
    for (const schema of ["Event", "EventConfig", "TicketClass", "Organizer", "Category", "EventConfigRequest", "EventPage"]) {
      expect(doc.components.schemas[schema], schema).toBeDefined();
    }
  });
});

describe("what the pages read", () => {
  it("gives platform admins every event in one status: the approval queue, public or not", async () => {
    const waiting = await createEvent(owner);
    await ok(await configure(waiting.id, owner, { isPublic: false }));
    const draft = await createEvent(owner);
    const queue = await ok(await call("/api/events?status=configured&pageSize=100", { token: admin.token }));
    const ids = queue.items.map((e: any) => e.id);
    expect(ids).toContain(waiting.id);
    expect(ids).not.toContain(draft.id);
    expect(queue.items.every((e: any) => e.status === "CONFIGURED")).toBe(true);
    expect(queue.total).toBe(queue.items.length);
  });

  it("refuses the status filter to anyone but a platform admin, and an unknown status", async () => {
    await expectProblem(await call("/api/events?status=CONFIGURED"), 401, "UNAUTHENTICATED");
    await expectProblem(await call("/api/events?status=CONFIGURED", { token: owner.token }), 403, "FORBIDDEN");
    const bad = await expectProblem(await call("/api/events?status=SOLD", { token: admin.token }), 400, "VALIDATION_FAILED");
    expect(fields(bad)).toEqual(["status"]);
  });

  it("names the payment methods this deployment takes on the event a buyer reads, and only there", async () => {
    const event = await publishedEvent();
    const read = await ok(await call(`/api/events/${event.id}`));
    // Development: the sandbox, then PAYMENT_PROVIDERS in its order.
    expect(read.paymentMethods).toEqual(["sandbox", "payos", "vnpay", "zalopay"]);
    const created = await ok(await call("/api/events", { token: owner.token, body: eventBody() }), 201);
    expect(created).not.toHaveProperty("paymentMethods");
  });
});
