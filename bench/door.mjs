// Issue "tickets": check-ins per second on one event's door (`EventDoor`) versus trivial round
// trips measured in the same run, interleaved: the door's own `ping` (decode + one SQLite read)
// and the event object's `/ping` (one SQLite counter write), the baseline of the other scenarios.
//
// Every check-in presents a different ticket, signed here with the same Ed25519 seed the app
// uses (`TICKET_SIGNING_KEY` from .dev.vars, else the development key the app falls back to),
// so each one is admitted: the object verifies the signature, reads, decides, writes the row and
// sends TICKET_CHECKED_IN to the domain-events queue (which the app consumes meanwhile, as it
// would in production). At the end the door's count must equal the check-ins measured.
// Driver: Node -> Miniflare's stub (every call crosses its Node<->workerd proxy, which flattens
// ratios towards 1; see bench/inventory.mjs for the other drivers).
//
// Environment (defaults in brackets):
//   BENCH_SECONDS  seconds per measurement round [3]
//   BENCH_ROUNDS   rounds per figure, interleaved [3]
//   BENCH_CLIENTS  concurrent clients [32]
import { createHash, createPrivateKey, createPublicKey, randomUUID, sign } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { startHub, ping, envInt } from "./lib/hub.mjs";
import { drive, interleaved, ratio, table, fmt, assertNoErrors } from "./lib/drive.mjs";

const seconds = envInt("BENCH_SECONDS", 3, { min: 1 });
const rounds = envInt("BENCH_ROUNDS", 3, { min: 1 });
const clients = envInt("BENCH_CLIENTS", 32, { min: 1 });

const DEV_KEY = "ZGV2LW9ubHktdGlja2V0LXNpZ25pbmcta2V5LTAwMDE";
const EVENT = randomUUID();
const CLASS = randomUUID();
const DOOR = "https://event-door";

function signingKeyText() {
  const file = new URL("../.dev.vars", import.meta.url);
  if (!existsSync(file)) return DEV_KEY;
  const line = readFileSync(file, "utf8").split("\n").find((l) => l.startsWith("TICKET_SIGNING_KEY="));
  return line?.slice("TICKET_SIGNING_KEY=".length).trim() || DEV_KEY;
}

const b64url = (bytes) => Buffer.from(bytes).toString("base64url");
const seed = Buffer.from(signingKeyText(), "base64url");
if (seed.length !== 32) throw new Error("TICKET_SIGNING_KEY is not 32 bytes");
// PKCS#8 wrapping of a raw Ed25519 seed (RFC 8410).
const privateKey = createPrivateKey({ key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), seed]), format: "der", type: "pkcs8" });
const publicRaw = createPublicKey(privateKey).export({ format: "der", type: "spki" }).subarray(-32);
const kid = b64url(createHash("sha256").update(publicRaw).digest().subarray(0, 6));
const uuidBytes = (uuid) => Buffer.from(uuid.replace(/-/g, ""), "hex");

/** The qr the platform would issue for a ticket (src/domain/tickets/qr.rs). */
function qrFor(ticketId) {
  const signed = ["TB1", kid, b64url(uuidBytes(EVENT)), b64url(uuidBytes(ticketId)), b64url(uuidBytes(CLASS))].join(".");
  return `${signed}.${b64url(sign(null, Buffer.from(signed), privateKey))}`;
}

async function door(stub, body) {
  const res = await stub.fetch(DOOR, { method: "POST", body: JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${body.op}: ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

const hub = await startHub();
try {
  const namespace = await hub.mf.getDurableObjectNamespace("EVENT_DOOR", "ticketbottle-edge");
  const stub = namespace.get(namespace.idFromName(EVENT));
  const { stub: hubStub } = hub.hub(EVENT);
  const checkIn = async () => {
    const answer = await door(stub, { op: "checkIn", eventId: EVENT, qr: qrFor(randomUUID()), gate: "bench", atMs: Date.now() });
    if (answer.status !== "CHECKED_IN") throw new Error(`check-in: unexpected ${JSON.stringify(answer)}`);
  };
  for (let i = 0; i < 50; i++) {
    await door(stub, { op: "ping" });
    await ping(hubStub);
  }
  for (let i = 0; i < 20; i++) await checkIn();

  const figures = ["hubPing", "doorPing", "checkIn"];
  const results = await interleaved(figures, rounds, (name) => {
    const step = name === "hubPing" ? () => ping(hubStub) : name === "doorPing" ? () => door(stub, { op: "ping" }) : checkIn;
    return drive({ seconds, clients, step });
  });
  const { items } = await door(stub, { op: "stats" });
  const counted = items.reduce((n, c) => n + c.checkedIn, 0);

  const row = (figure, x) => [figure, fmt(x.reqPerSec), fmt(x.p50, 1), fmt(x.p99, 1), ratio(x, results.hubPing).text, ratio(x, results.doorPing).text, fmt(x.errors)];
  console.log(`\nDoor: one EventDoor object, ${clients} clients, ${rounds} x ${seconds} s per figure (interleaved), Node -> stub, workerd via Miniflare on 127.0.0.1`);
  console.log(
    table(
      [["figure", "l"], ["req/s", "r"], ["p50 ms", "r"], ["p99 ms", "r"], ["vs hub /ping", "r"], ["vs door ping", "r"], ["errors", "r"]],
      [
        row("EventHub /ping (one SQLite write)", results.hubPing),
        row("door ping (one SQLite read)", results.doorPing),
        row("check-in (verify, decide, write, queue send)", results.checkIn),
      ],
    ),
  );
  console.log(`door count: ${fmt(counted)} checked in after ${fmt(results.checkIn.ops + 20)} check-ins (20 warm-up)`);
  for (const f of figures) assertNoErrors(f, results[f]);
  if (counted !== results.checkIn.ops + 20) throw new Error(`the door counted ${counted} check-ins, ${results.checkIn.ops + 20} were admitted`);
} finally {
  await hub.dispose();
}
