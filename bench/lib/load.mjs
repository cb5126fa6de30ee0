// A bounded load run with autocannon against one loopback URL, reduced to the figures we print.
import autocannon from "autocannon";

export async function load(url, { seconds = 8, connections = 32, method = "GET", headers, body } = {}) {
  if (!/^http:\/\/127\.0\.0\.1:\d+/.test(url)) throw new Error(`refusing a non-loopback target: ${url}`);
  const result = await autocannon({ url, duration: seconds, connections, method, headers, body });
  return {
    url,
    requests: result.requests.total,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

export function row(name, r, baseline) {
  const ratio = baseline ? (r.rps / baseline.rps).toFixed(2) : "1.00";
  return `${name.padEnd(34)} ${r.rps.toFixed(0).padStart(8)} req/s   p50 ${String(r.p50).padStart(4)} ms   p99 ${String(r.p99).padStart(4)} ms   ratio ${ratio}   non-2xx ${r.non2xx}   errors ${r.errors}`;
}
