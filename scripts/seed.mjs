// Loads the demo data through the public API, idempotently: running it again finds what
// exists and creates only what is missing. Usage: node scripts/seed.mjs http://127.0.0.1:8787
const BASE = process.argv[2] ?? "http://127.0.0.1:8787";

export const DEMO_USERS = {
  admin: { email: "admin@ticketbottle.dev", password: "admin-password-123", firstName: "Platform", lastName: "Admin" },
  organizer: { email: "organizer@ticketbottle.dev", password: "organizer-password-123", firstName: "Saigon", lastName: "Live" },
  buyer: { email: "buyer@ticketbottle.dev", password: "buyer-password-123", firstName: "Minh", lastName: "Tran" },
};
const DEMO_EVENT = "Sơn Tùng M-TP Live in Saigon";
const DRAFT_EVENT = "Hanoi Tech Summit 2027";
const CATEGORIES = ["Music", "Sports", "Conference"];

async function api(path, { method = "GET", body, token } = {}) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`${BASE}${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  return { status: res.status, data };
}

function must(res, what, ok = [200, 201]) {
  if (!ok.includes(res.status)) throw new Error(`${what}: HTTP ${res.status} ${JSON.stringify(res.data)}`);
  return res.data;
}

async function ensureUser(u) {
  const reg = await api("/api/auth/register", { method: "POST", body: u });
  must(reg, `register ${u.email}`, [201, 409]);
  if (reg.status === 201) {
    // Verify through the development mailbox, as a person would click the link.
    const box = must(await api(`/api/dev/mailbox?email=${encodeURIComponent(u.email)}`), "mailbox");
    const link = box.items.find((m) => m.kind === "EMAIL_VERIFICATION")?.link;
    const token = link && new URL(link, BASE).searchParams.get("token");
    if (token) must(await api("/api/auth/verify-email", { method: "POST", body: { token } }), "verify email");
  }
  const login = must(await api("/api/auth/login", { method: "POST", body: u }), `login ${u.email}`);
  return { ...u, id: login.user.id, token: login.accessToken };
}

async function ensureCatalogue(admin, organizer) {
  const cats = await api("/api/categories");
  if (cats.status === 404) return console.log("(events API not available yet: users only)");
  const existing = new Map(must(cats, "categories").items.map((c) => [c.name, c]));
  for (const name of CATEGORIES) {
    if (!existing.has(name)) existing.set(name, must(await api("/api/categories", { method: "POST", token: admin.token, body: { name } }), `category ${name}`).category);
  }
  const mine = must(await api("/api/events?mine=true&pageSize=100", { token: organizer.token }), "my events").items;
  const hour = 3600_000;
  const now = Date.now();
  const iso = (ms) => new Date(ms).toISOString();

  let event = mine.find((e) => e.name === DEMO_EVENT);
  if (!event) {
    const org = must(await api("/api/organizers", { method: "POST", token: organizer.token, body: { name: "Saigon Live Entertainment", description: "Concerts in Ho Chi Minh City" } }), "organizer").organizer;
    event = must(await api("/api/events", {
      method: "POST", token: organizer.token,
      body: {
        name: DEMO_EVENT, description: "The on-sale everyone is waiting for: 20,000 seats, fair queue.",
        startDate: iso(now + 60 * 24 * hour), endDate: iso(now + 60 * 24 * hour + 4 * hour),
        location: "Phú Thọ Stadium, Ho Chi Minh City", organizerId: org.id,
        categoryIds: [existing.get("Music").id],
      },
    }), "demo event").event;
  }
  if (event.status === "DRAFT") {
    event = must(await api(`/api/events/${event.id}/config`, {
      method: "PUT", token: organizer.token,
      body: {
        ticketSaleStartDate: iso(now - hour), ticketSaleEndDate: iso(now + 30 * 24 * hour),
        isFree: false, maxAttendees: 20000, isPublic: true, requiresApproval: false, allowWaitRoom: true,
        isNewTrending: true, maxTicketsPerUser: 4,
        waitroom: { maxConcurrentCheckouts: 100, checkoutTtlSeconds: 900, admissionBatch: 100 },
      },
    }), "configure demo event").event;
  }
  const classes = must(await api(`/api/events/${event.id}/ticket-classes`, { token: organizer.token }), "ticket classes").items;
  const wanted = [
    { name: "VIP Standing", priceCents: 4_500_000, currency: "VND", total: 5 },
    { name: "Category 1", priceCents: 2_500_000, currency: "VND", total: 5_000 },
    { name: "Category 2", priceCents: 1_200_000, currency: "VND", total: 15_000 },
  ];
  for (const tc of wanted) {
    if (!classes.some((c) => c.name === tc.name)) must(await api(`/api/events/${event.id}/ticket-classes`, { method: "POST", token: organizer.token, body: tc }), `class ${tc.name}`);
  }
  if (event.status === "CONFIGURED") event = must(await api(`/api/events/${event.id}/approve`, { method: "POST", token: admin.token }), "approve").event;
  if (event.status === "APPROVED") event = must(await api(`/api/events/${event.id}/publish`, { method: "POST", token: organizer.token }), "publish").event;

  let draft = mine.find((e) => e.name === DRAFT_EVENT);
  if (!draft) {
    draft = must(await api("/api/events", {
      method: "POST", token: organizer.token,
      body: {
        name: DRAFT_EVENT, description: "Two days of talks on building for the edge.",
        startDate: iso(now + 120 * 24 * hour), endDate: iso(now + 122 * 24 * hour),
        location: "National Convention Center, Hanoi", categoryIds: [existing.get("Conference").id],
      },
    }), "draft event").event;
  }
  // Submitted for approval, so the admin's queue (/admin) has something to approve.
  if (draft.status === "DRAFT") {
    const has = must(await api(`/api/events/${draft.id}/ticket-classes`, { token: organizer.token }), "summit classes").items.length > 0;
    if (!has) must(await api(`/api/events/${draft.id}/ticket-classes`, { method: "POST", token: organizer.token, body: { name: "Two-day pass", priceCents: 1_500_000, currency: "VND", total: 2_000 } }), "summit class");
    must(await api(`/api/events/${draft.id}/config`, {
      method: "PUT", token: organizer.token,
      body: {
        ticketSaleStartDate: iso(now + 24 * hour), ticketSaleEndDate: iso(now + 100 * 24 * hour),
        isFree: false, maxAttendees: 2000, isPublic: true, requiresApproval: false, allowWaitRoom: false,
        isNewTrending: false, maxTicketsPerUser: 2,
        waitroom: { maxConcurrentCheckouts: 100, checkoutTtlSeconds: 900, admissionBatch: 100 },
      },
    }), "configure summit");
  }
  return event;
}

/**
 * Makes the VIP class "nearly sold out" the honest way: the demo buyer queues, is admitted,
 * orders 4 of its 5 tickets and pays in the sandbox. Skipped once anything was sold.
 */
async function ensureEarlySales(event, buyer) {
  const classes = must(await api(`/api/events/${event.id}/ticket-classes`), "ticket classes").items;
  const vip = classes.find((c) => c.name === "VIP Standing");
  if (!vip || vip.sold > 0 || vip.reserved > 0) return;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  let session = must(await api(`/api/events/${event.id}/waitroom/join`, { method: "POST", token: buyer.token }), "join").waitroomSession;
  for (let i = 0; i < 30 && session.status !== "ADMITTED"; i++) {
    await sleep(1000);
    session = must(await api(`/api/events/${event.id}/waitroom/session`, { token: buyer.token }), "session").waitroomSession;
  }
  if (session.status !== "ADMITTED") return console.log("(the demo buyer was not admitted in time; VIP left unsold)");
  const res = await fetch(`${BASE}/api/orders`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${buyer.token}`, "Idempotency-Key": `demo-vip-${event.id}` },
    body: JSON.stringify({ eventId: event.id, items: [{ ticketClassId: vip.id, quantity: 4 }], paymentMethod: "sandbox", checkoutToken: session.checkoutToken }),
  });
  const created = await res.json();
  if (res.status !== 201) throw new Error(`demo order: HTTP ${res.status} ${JSON.stringify(created)}`);
  must(await api(`${new URL(created.paymentUrl).pathname}/pay`, { method: "POST" }), "sandbox pay");
  for (let i = 0; i < 30; i++) {
    const { order } = must(await api(`/api/orders/${created.order.id}`, { token: buyer.token }), "order");
    if (order.status === "COMPLETED") return;
    await sleep(500);
  }
}

const admin = await ensureUser(DEMO_USERS.admin);
const organizer = await ensureUser(DEMO_USERS.organizer);
const buyer = await ensureUser(DEMO_USERS.buyer);
const event = await ensureCatalogue(admin, organizer);
if (event) await ensureEarlySales(event, buyer);

console.log(`
TicketBottle Edge is running at ${BASE}
  Storefront:     ${BASE}/
  Organizer:      ${BASE}/organizer   (log in as the organizer)
  Admin:          ${BASE}/admin       (log in as the platform admin: events awaiting approval)
  Your account:   ${BASE}/account
  API docs:       ${BASE}/api/docs
${event ? `  Demo event:     ${BASE}/events/${event.id}  (${event.status}; its organizer console: ${BASE}/organizer/events/${event.id})\n` : ""}
Demo accounts:
  platform admin  ${DEMO_USERS.admin.email} / ${DEMO_USERS.admin.password}
  organizer       ${DEMO_USERS.organizer.email} / ${DEMO_USERS.organizer.password}
  buyer           ${DEMO_USERS.buyer.email} / ${DEMO_USERS.buyer.password}

Payments: the sandbox, and local stand-ins of PayOS, VNPay and ZaloPay (scripts/dev-providers.mjs)
whose pages pay or cancel and notify the Worker, signed. The cron runs every minute.
`);
