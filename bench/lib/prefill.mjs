// Fills an event object's waitroom queue by writing its SQLite file directly, while workerd is
// stopped: a test-harness shortcut so that a 1,000,000-deep queue takes seconds instead of the
// half hour one-by-one joins would take here. Nothing in the Worker is involved or changed.
//
// The rows are what `join` writes after the sale opened (see src/domain/waitroom/rules.rs): session
// `bench-u-<i>` for user i = 1..count, QUEUED, dense seqs continuing `next_seq`, join numbers
// continuing `next_join_no`, and the state's counters (`next_seq`, `next_join_no`, `queued`)
// moved by `count`. No departures, so the Fenwick table is untouched. `joined_at` and
// `last_seen_at` are one minute in the past (so a fan's first position read records a
// sighting, as it would for a fan who joined a minute ago). The outbox is not written: the
// `QUEUE_JOINED` domain events of these joins are not part of the measurement.
import { DatabaseSync } from "node:sqlite";
import { readdirSync, existsSync } from "node:fs";
import { join } from "node:path";

/** Where Miniflare keeps an object's SQLite file under `resourcePersistencePath`. */
export function objectFile(persistDir, objectId, uniqueKey = "ticketbottle-edge-EventHub") {
  const dir = join(persistDir, "do", uniqueKey);
  const file = join(dir, `${objectId}.sqlite`);
  if (!existsSync(file)) {
    const found = existsSync(dir) ? readdirSync(dir).join(", ") : "(no directory)";
    throw new Error(`no SQLite file for object ${objectId} in ${dir}: ${found}`);
  }
  return file;
}

/** Appends `count` queued sessions; returns the user id of seq position k (1-based) via `userOf`. */
export function prefillQueue(file, count, { now = Date.now() } = {}) {
  const db = new DatabaseSync(file);
  try {
    const state = db.prepare("SELECT next_seq, next_join_no, queued, prequeued, slots_in_use, sale_opened, closed_reason FROM waitroom_state WHERE id = 1").get();
    if (!state) throw new Error("the waitroom is not configured (no waitroom_state row)");
    if (state.sale_opened !== 1 || state.closed_reason !== null) throw new Error(`the sale must be open and the queue not closed: ${JSON.stringify(state)}`);
    if (state.queued !== 0 || state.prequeued !== 0 || state.slots_in_use !== 0) {
      throw new Error(`prefill expects an empty waitroom: ${JSON.stringify(state)}`);
    }
    const firstSeq = state.next_seq;
    const firstJoin = state.next_join_no;
    const seen = now - 60_000;
    // This connection only: a page cache large enough for the random-order index inserts.
    db.exec("PRAGMA cache_size = -524288");
    db.exec("BEGIN");
    try {
      // One statement generating the rows inside SQLite; session ids are random v4-shaped uuids.
      db.prepare(`
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
        INSERT INTO waitroom_session (session_id, user_id, join_no, seq, status, joined_at, last_seen_at)
        SELECT lower(substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-4' || substr(h, 14, 3) || '-a' ||
                     substr(h, 18, 3) || '-' || substr(h, 21, 12)),
               'bench-u-' || i, ? + i - 1, ? + i - 1, 'QUEUED', ?, ?
        FROM (SELECT i, hex(randomblob(16)) AS h FROM n)
      `).run(count, firstJoin, firstSeq, seen, seen);
      db.prepare("UPDATE waitroom_state SET next_seq = next_seq + ?, next_join_no = next_join_no + ?, queued = queued + ? WHERE id = 1").run(count, count, count);
      db.exec("COMMIT");
    } catch (error) {
      db.exec("ROLLBACK");
      throw error;
    }
    const check = db.prepare("SELECT COUNT(*) AS n, MIN(seq) AS lo, MAX(seq) AS hi FROM waitroom_session WHERE status = 'QUEUED' AND seq IS NOT NULL").get();
    if (check.n !== count || check.hi - check.lo + 1 !== count) throw new Error(`prefill check failed: ${JSON.stringify(check)}`);
  } finally {
    db.close();
  }
}

/** User id of the i-th prefilled fan (1-based; seq order). */
export const prefilledUser = (i) => `bench-u-${i}`;
