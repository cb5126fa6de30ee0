// Catalogue fixtures built through the public API: an organizer with a published event.
import { adminUser, call, json, registerAndLogin, uniqueEmail, type TestUser } from "./helpers";

export interface ClassSpec {
  name: string;
  priceCents: number;
  total: number;
  currency?: string;
}

export interface PublishedEvent {
  id: string;
  organizer: TestUser;
  classes: { id: string; name: string; priceCents: number; total: number }[];
}

const HOUR = 3600_000;

export async function publishedEvent(opts: {
  allowWaitRoom?: boolean;
  isFree?: boolean;
  maxTicketsPerUser?: number;
  classes?: ClassSpec[];
  waitroom?: { maxConcurrentCheckouts?: number; checkoutTtlSeconds?: number; admissionBatch?: number; shards?: number };
  saleStartsInMs?: number;
} = {}): Promise<PublishedEvent> {
  const organizer = await registerAndLogin(uniqueEmail("organizer"));
  const admin = await adminUser();
  const now = Date.now();
  const iso = (ms: number) => new Date(ms).toISOString();
  const must = async (res: Response, what: string) => {
    if (res.status >= 300) throw new Error(`${what}: ${res.status} ${await res.text()}`);
    return json(res);
  };
  const { event } = await must(
    await call("/api/events", {
      token: organizer.token,
      body: {
        name: `Test on-sale ${Math.random().toString(36).slice(2, 8)}`,
        description: "A fixture event",
        startDate: iso(now + 30 * 24 * HOUR),
        endDate: iso(now + 30 * 24 * HOUR + 3 * HOUR),
        location: "Hanoi",
      },
    }),
    "create event",
  );
  await must(
    await call(`/api/events/${event.id}/config`, {
      method: "PUT",
      token: organizer.token,
      body: {
        ticketSaleStartDate: iso(now + (opts.saleStartsInMs ?? -HOUR)),
        ticketSaleEndDate: iso(now + 7 * 24 * HOUR),
        isFree: opts.isFree ?? false,
        maxAttendees: null,
        isPublic: true,
        requiresApproval: false,
        allowWaitRoom: opts.allowWaitRoom ?? false,
        isNewTrending: false,
        maxTicketsPerUser: opts.maxTicketsPerUser ?? 10,
        waitroom: { maxConcurrentCheckouts: 100, checkoutTtlSeconds: 900, admissionBatch: 100, ...opts.waitroom },
      },
    }),
    "configure",
  );
  const classes = [];
  for (const c of opts.classes ?? [{ name: "Standard", priceCents: 100_000, total: 50 }]) {
    const { ticketClass } = await must(
      await call(`/api/events/${event.id}/ticket-classes`, { token: organizer.token, body: { currency: "VND", ...c } }),
      `class ${c.name}`,
    );
    classes.push({ id: ticketClass.id, name: c.name, priceCents: c.priceCents, total: c.total });
  }
  await must(await call(`/api/events/${event.id}/approve`, { method: "POST", token: admin.token }), "approve");
  await must(await call(`/api/events/${event.id}/publish`, { method: "POST", token: organizer.token }), "publish");
  return { id: event.id, organizer, classes };
}

export async function ticketClasses(eventId: string, token?: string) {
  return (await json(await call(`/api/events/${eventId}/ticket-classes`, { token }))).items as any[];
}

/** Polls `probe` until it returns a truthy value (queues deliver asynchronously). */
export async function eventually<T>(probe: () => Promise<T | undefined | null | false>, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last as T;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}
