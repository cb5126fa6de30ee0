// Every endpoint is declared once, in `endpoints!` (src/api/mod.rs), and the Worker derives its
// route table, dispatch and OpenAPI path list from it. What the derivation cannot guarantee is
// checked here against the running Worker: each route of the `openapi` block is in the served
// document with the same method and path and the document has nothing else (a handler's
// `#[utoipa::path]` names its own method and path), the router answers every declared path with
// exactly the declared methods (so this file reads the declaration right), and no route is
// hidden behind an earlier one.
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import declaration from "../../src/api/mod.rs?raw";

const BASE = "https://tb.test";
const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"];

type Block = "openapi" | "not_in_openapi" | "pages";
type Route = { block: Block; endpoint: string; method: string; path: string };

/** The entries of `endpoints! { ... }` in table order; a line it cannot read fails the test. */
function declaredRoutes(source: string): Route[] {
  const lines = source.split("\n");
  const start = lines.findIndex((line) => line.trim() === "endpoints! {");
  if (start < 0) throw new Error("src/api/mod.rs has no `endpoints! {` line");
  const routes: Route[] = [];
  let block: Block | undefined;
  for (const raw of lines.slice(start + 1)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("//")) continue;
    if (line === "}") {
      if (block === undefined) return routes;
      block = undefined;
      continue;
    }
    const header = /^(openapi|not_in_openapi|pages) \{$/.exec(line);
    const entry = /^(\w+):\s+(\w+)\s+"([^"]+)"\s+=>\s+[^\s,]+,$/.exec(line);
    if (header && block === undefined) block = header[1] as Block;
    else if (entry && block !== undefined) routes.push({ block, endpoint: entry[1], method: entry[2], path: entry[3] });
    else throw new Error(`cannot read this line of endpoints! in src/api/mod.rs: ${line}`);
  }
  throw new Error("endpoints! in src/api/mod.rs is not closed");
}

/** The router's rule (src/http/router.rs): same number of segments, `{name}` takes any one. */
function matches(pattern: string, path: string): boolean {
  const want = pattern.split("/");
  const got = path.split("/");
  return want.length === got.length && want.every((segment, i) => segment.startsWith("{") || segment === got[i]);
}

const routes = declaredRoutes(declaration);
const key = (method: string, path: string) => `${method} ${path}`;

describe("the endpoint declaration", () => {
  it("is read whole: every block, and endpoints of each", () => {
    for (const block of ["openapi", "not_in_openapi", "pages"]) {
      expect(routes.some((r) => r.block === block), block).toBe(true);
    }
    expect(routes.find((r) => r.endpoint === "Health")).toEqual({ block: "openapi", endpoint: "Health", method: "GET", path: "/api/health" });
  });

  it("puts exactly the routes of its openapi block in the OpenAPI document, method and path alike", async () => {
    const doc = (await (await SELF.fetch(`${BASE}/api/openapi.json`)).json()) as any;
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((m) => [...METHODS, "HEAD", "OPTIONS", "TRACE"].includes(m.toUpperCase()))
        .map((m) => key(m.toUpperCase(), path)),
    );
    const declared = routes.filter((r) => r.block === "openapi").map((r) => key(r.method, r.path));
    const notInOpenapi = routes.filter((r) => r.block !== "openapi").map((r) => key(r.method, r.path));
    expect(declared.filter((k) => !documented.includes(k)), "declared in openapi { } but not in the document").toEqual([]);
    expect(documented.filter((k) => !declared.includes(k)), "in the document but not declared in openapi { }").toEqual([]);
    expect(notInOpenapi.filter((k) => documented.includes(k)), "declared outside openapi { } yet in the document").toEqual([]);
  });

  it("is the router's table: each declared path answers exactly the declared methods", async () => {
    const paths = [...new Set(routes.map((r) => r.path))];
    let probed = 0;
    for (const pattern of paths) {
      // A capture gets a value no literal segment has, so the path matches what it would in use.
      const path = pattern.replace(/\{[^}]+\}/g, "probe-segment");
      const declared = new Set(routes.filter((r) => matches(r.path, path)).map((r) => r.method));
      const other = METHODS.find((m) => !declared.has(m));
      if (other === undefined) continue;
      const res = await SELF.fetch(`${BASE}${path}`, { method: other, headers: { "CF-Connecting-IP": "198.51.100.31" } });
      expect(res.status, `${other} ${path}`).toBe(405);
      const allow = (res.headers.get("allow") ?? "").split(/,\s*/).filter(Boolean).sort();
      const expected = [...declared, ...(declared.has("GET") ? ["HEAD"] : []), "OPTIONS"].sort();
      expect(allow, `Allow of ${path}`).toEqual(expected);
      await res.arrayBuffer();
      probed += 1;
    }
    expect(probed).toBeGreaterThan(paths.length / 2);
  });

  it("hides no route behind an earlier one (a literal segment is listed before a capture in its place)", () => {
    const hidden = routes.flatMap((later, j) =>
      routes
        .slice(0, j)
        .filter((earlier) => earlier.method === later.method && matches(earlier.path, later.path))
        .map((earlier) => `${key(later.method, later.path)} is answered by ${earlier.endpoint} (${earlier.path}) first`),
    );
    expect(hidden).toEqual([]);
  });
});
