// The header every page shares: the brand, where the visitor can go (their account or the
// login, the organizer console, the admin queue for platform admins) and the language switch.
import { clearToken, hasFreshToken, tokenClaims } from "/assets/api.js";
import { LANGS, lang, onLang, setLang, t } from "/assets/i18n.js";

const LANG_NAMES = { vi: "Tiếng Việt", en: "English" };

function link(href, key) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = t(key);
  if (location.pathname === href.split("?")[0]) a.setAttribute("aria-current", "page");
  return a;
}

function render(header) {
  const brand = document.createElement("a");
  brand.href = "/";
  brand.className = "brand";
  brand.textContent = "TicketBottle";

  const nav = document.createElement("nav");
  nav.setAttribute("aria-label", t("nav.label"));
  nav.append(link("/", "nav.events"));
  if (hasFreshToken()) {
    nav.append(link("/account", "nav.account"), link("/organizer", "nav.organizer"));
    if (tokenClaims()?.role === "admin") nav.append(link("/admin", "nav.admin"));
    const out = document.createElement("button");
    out.type = "button";
    out.className = "link";
    out.id = "logout";
    out.textContent = t("nav.logout");
    out.addEventListener("click", () => {
      clearToken();
      location.assign("/");
    });
    nav.append(out);
  } else {
    // Back here after logging in; from the login or registration page itself, nowhere special.
    const here = location.pathname === "/login" || location.pathname === "/register" ? "" : `?next=${encodeURIComponent(location.pathname + location.search)}`;
    nav.append(link(`/login${here}`, "nav.login"));
  }

  const label = document.createElement("label");
  label.className = "lang";
  const caption = document.createElement("span");
  caption.className = "visually-hidden";
  caption.textContent = t("nav.language");
  const select = document.createElement("select");
  select.id = "lang-switch";
  for (const code of LANGS) select.append(new Option(LANG_NAMES[code], code, false, code === lang()));
  select.addEventListener("change", () => setLang(select.value));
  label.append(caption, select);

  header.replaceChildren(brand, nav, label);
}

/** Fills `<header id="site-header">` and keeps it in the current language. */
export function mountHeader() {
  const header = document.getElementById("site-header");
  if (!header) return;
  render(header);
  onLang(() => render(header));
  document.addEventListener("tb:login", () => render(header));
}

mountHeader();
