// Every text a page names exists in Vietnamese and in English, and no page carries an inline
// script (the CSP forbids them): read from the files, no browser needed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { messages } from "../../public/assets/messages.js";
import { ROOT } from "./support.mjs";

const PUBLIC = join(ROOT, "public");
const pages = readdirSync(PUBLIC).filter((f) => f.endsWith(".html"));
const scripts = readdirSync(join(PUBLIC, "assets")).filter((f) => f.endsWith(".js"));

/** Keys built at run time from a value: the values each can take (null: optional, with a fallback). */
const DYNAMIC = {
  "code.": null,
  "class.status.": ["ACTIVE", "PAUSED"],
  "method.": ["sandbox", "payos", "vnpay", "zalopay", "free"],
  "order.status.": ["PENDING", "COMPLETED", "CANCELLED", "FAILED", "REFUNDED"],
  "order.text.": ["PENDING", "COMPLETED", "CANCELLED", "FAILED", "REFUNDED"],
  "org.statusText.": ["DRAFT", "CONFIGURED", "APPROVED", "PUBLISHED", "CANCELLED"],
  "status.": ["DRAFT", "CONFIGURED", "APPROVED", "PUBLISHED", "CANCELLED"],
  "role.": ["admin", "editor", "viewer", "staff"],
  "ticket.status.": ["VALID", "CHECKED_IN", "VOID"],
  "waitroom.connection.": ["off", "connecting", "live", "reconnecting", "elsewhere"],
  "waitroom.ended.": ["LEFT", "COMPLETED", "EXPIRED", "none"],
};

function usedKeys() {
  const keys = new Set();
  for (const f of pages) {
    for (const m of readFileSync(join(PUBLIC, f), "utf8").matchAll(/data-i18n(?:-[a-z]+)?="([^"]+)"/g)) keys.add(m[1]);
  }
  for (const f of scripts) {
    const src = readFileSync(join(PUBLIC, "assets", f), "utf8");
    for (const m of src.matchAll(/\bt\("([^"]+)"/g)) keys.add(m[1]);
    for (const m of src.matchAll(/(?:submitKey|introKey|Key):\s*"([^"]+)"/g)) keys.add(m[1]);
    for (const m of src.matchAll(/t\(`([a-zA-Z.]+\.)\$\{/g)) {
      assert.ok(DYNAMIC[m[1]] !== undefined, `${f}: t(\`${m[1]}\${…}\`) builds keys this test does not know`);
      for (const v of DYNAMIC[m[1]] ?? []) keys.add(`${m[1]}${v}`);
    }
  }
  return keys;
}

test("every text a page uses exists in both languages", () => {
  const keys = usedKeys();
  assert.ok(keys.size > 150, `only ${keys.size} keys found: the scan is broken`);
  for (const lang of ["vi", "en"]) {
    const missing = [...keys].filter((k) => messages[lang][k] === undefined);
    assert.deepEqual(missing, [], `texts missing in ${lang}`);
  }
  assert.deepEqual(Object.keys(messages.vi).sort(), Object.keys(messages.en).sort(), "vi and en have different keys");
});

test("no page has an inline script or inline event handler", () => {
  for (const f of pages) {
    const html = readFileSync(join(PUBLIC, f), "utf8");
    for (const m of html.matchAll(/<script\b([^>]*)>/g)) assert.match(m[1], /\ssrc=/, `${f}: inline <script>`);
    assert.doesNotMatch(html, /\son[a-z]+=/i, `${f}: inline event handler`);
  }
});
