// Closed-loop load from Node: `clients` concurrent loops, each awaiting one operation at a time,
// for a fixed time. Returns throughput and latency figures, and the first error seen.

/**
 * @param {object} o
 * @param {number} o.seconds  how long to run
 * @param {number} o.clients  concurrent loops
 * @param {(client: number, n: number) => Promise<number|void>} o.step  one operation; may return
 *   how many requests it made (default 1), e.g. 2 for a reserve+release pair
 * @param {number} [o.maxOps]  stop early after this many operations (all clients together)
 */
export async function drive({ seconds, clients, step, maxOps = Infinity }) {
  const latencies = [];
  let ops = 0;
  let requests = 0;
  let errors = 0;
  let firstError;
  let started = 0;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  async function loop(client) {
    let n = 0;
    while (performance.now() < deadline && started < maxOps) {
      started += 1;
      const t = performance.now();
      try {
        const made = await step(client, n++);
        latencies.push(performance.now() - t);
        ops += 1;
        requests += typeof made === "number" ? made : 1;
      } catch (error) {
        errors += 1;
        firstError ??= error;
        if (errors > 100 && errors > ops) break; // something is plainly broken: stop hammering
      }
    }
  }
  await Promise.all(Array.from({ length: clients }, (_, i) => loop(i)));
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : NaN);
  return {
    ops,
    requests,
    elapsed,
    opsPerSec: ops / elapsed,
    reqPerSec: requests / elapsed,
    p50: pct(0.5),
    p99: pct(0.99),
    mean: latencies.reduce((s, x) => s + x, 0) / (latencies.length || 1),
    errors,
    firstError,
  };
}

/** Merges rounds of the same figure measured at different times (interleaved with a baseline). */
export function merge(rounds) {
  const sum = (k) => rounds.reduce((s, r) => s + r[k], 0);
  const elapsed = sum("elapsed");
  const ops = sum("ops");
  const requests = sum("requests");
  return {
    ops,
    requests,
    elapsed,
    opsPerSec: ops / elapsed,
    reqPerSec: requests / elapsed,
    // Percentiles cannot be merged exactly; the median of the rounds' values is printed.
    p50: median(rounds.map((r) => r.p50)),
    p99: median(rounds.map((r) => r.p99)),
    mean: rounds.reduce((s, r) => s + r.mean * r.ops, 0) / (ops || 1),
    errors: sum("errors"),
    firstError: rounds.find((r) => r.firstError)?.firstError,
    rounds,
  };
}

export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
}

/**
 * The ratio of two merged figures (requests/s), and its range over the rounds: round r of `x`
 * against round r of `base`, measured seconds apart, so the range shows the machine's noise.
 */
export function ratio(x, base) {
  const overall = x.reqPerSec / base.reqPerSec;
  const per = (x.rounds ?? []).map((r, i) => r.reqPerSec / base.rounds[i].reqPerSec).filter(Number.isFinite);
  const range = per.length > 1 ? `${Math.min(...per).toFixed(2)}-${Math.max(...per).toFixed(2)}` : "";
  return { overall, range, text: overall.toFixed(2) };
}

/**
 * Runs `measure(name, round)` for each name, `rounds` times, interleaved and alternating
 * (a b c, c b a, a b c, ...) so that no figure always runs right after the same other one;
 * `after(name)` runs after each measurement (e.g. to let background work settle). Merged per name.
 */
export async function interleaved(names, rounds, measure, after) {
  const out = Object.fromEntries(names.map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) {
    for (const name of r % 2 ? [...names].reverse() : names) {
      out[name].push(await measure(name, r));
      if (after) await after(name);
    }
  }
  return Object.fromEntries(names.map((n) => [n, merge(out[n])]));
}

// ----- printing ------------------------------------------------------------------------------

export function fmt(x, digits = 0) {
  if (x === undefined || x === null || Number.isNaN(x)) return "-";
  return x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A fixed-width table: `columns` are [header, align('l'|'r')], rows are arrays of strings. */
export function table(columns, rows) {
  const widths = columns.map(([h], i) => Math.max(h.length, ...rows.map((r) => String(r[i] ?? "").length)));
  const cell = (v, i) => (columns[i][1] === "l" ? String(v ?? "").padEnd(widths[i]) : String(v ?? "").padStart(widths[i]));
  const line = (r) => r.map(cell).join("  ").trimEnd();
  return [line(columns.map(([h]) => h)), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

/** Fails the scenario (non-zero exit) when a measurement saw errors: slow is fine, broken is not. */
export function assertNoErrors(label, result) {
  if (result.errors > 0) {
    const detail = result.firstError?.message ?? String(result.firstError);
    throw new Error(`${label}: ${result.errors} failed operations (first: ${detail})`);
  }
}
