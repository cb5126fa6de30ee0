// Forms the pages share: the one login / registration form, and API problems shown where they
// belong (each `errors[]` entry next to the field it names, the rest above the buttons).
import { $, api, clearToken, hasFreshToken, login } from "/assets/api.js";
import { withBotCheck } from "/assets/bot-check.js";
import { t } from "/assets/i18n.js";

/** The text for an API failure: our own words for the codes people meet, else the server's. */
export function problemText(err) {
  if (err.status === 429) return t("error.rateLimited");
  if (err.code && t(`code.${err.code}`) !== `code.${err.code}`) return t(`code.${err.code}`);
  if (err.status === undefined) return t("error.network");
  return err.message;
}

/** Removes what `showProblem` added to `form`. */
export function clearProblems(form) {
  for (const el of form.querySelectorAll(".field-error")) el.remove();
  for (const el of form.querySelectorAll("[aria-invalid]")) {
    el.removeAttribute("aria-invalid");
    const ids = (el.getAttribute("aria-describedby") ?? "").split(" ").filter((id) => id && !id.startsWith("fe-"));
    if (ids.length) el.setAttribute("aria-describedby", ids.join(" "));
    else el.removeAttribute("aria-describedby");
  }
  const general = form.querySelector(".form-error");
  if (general) general.textContent = "";
}

/** The control an API field name (`name`, `waitroom.admissionBatch`, `categoryIds[0]`) stands for. */
function controlFor(form, field) {
  const candidates = [field, field.replace(/\[\d+\]$/, ""), field.split(".").pop()];
  for (const name of candidates) {
    const el = form.querySelector(`[name="${CSS.escape(name)}"]`);
    if (el) return el;
  }
  return null;
}

/**
 * Shows an API failure in `form`: every `errors[]` entry beside its field (with
 * `aria-invalid` and `aria-describedby`), whatever names no field in the form's `.form-error`.
 * Focuses the first bad field.
 */
export function showProblem(form, err) {
  clearProblems(form);
  const general = [];
  let first = null;
  for (const [i, { field, message }] of (err.errors ?? []).entries()) {
    const control = controlFor(form, field ?? "");
    if (!control) {
      general.push(`${field}: ${message}`);
      continue;
    }
    const note = document.createElement("p");
    note.className = "field-error";
    note.id = `fe-${form.id || "form"}-${i}`;
    note.dataset.field = field;
    note.textContent = message;
    const anchor = control.closest(".check") ?? control;
    anchor.after(note);
    control.setAttribute("aria-invalid", "true");
    control.setAttribute("aria-describedby", [control.getAttribute("aria-describedby"), note.id].filter(Boolean).join(" "));
    first ??= control;
  }
  const out = form.querySelector(".form-error");
  const text = general.length ? general.join(" · ") : (err.errors ?? []).length ? t("error.fields") : problemText(err);
  if (out) out.textContent = text;
  (first ?? out)?.focus?.();
}

function field(id, type, key, autocomplete) {
  const label = document.createElement("label");
  label.htmlFor = id;
  label.dataset.i18n = key;
  label.textContent = t(key);
  const input = document.createElement("input");
  Object.assign(input, { id, name: id, type, required: true, autocomplete });
  return [label, input];
}

/**
 * Builds the login or registration form into `container` (emptied first). `submitKey` names
 * the button's text. Resolves `onDone` after a successful login (registration logs in too).
 */
export function renderAuthForm(container, { mode = "login", submitKey = "login.submit", introKey, onDone }) {
  const form = document.createElement("form");
  form.id = `${mode}-form`;
  form.noValidate = false;
  const parts = [];
  if (introKey) {
    const intro = document.createElement("p");
    intro.dataset.i18n = introKey;
    intro.textContent = t(introKey);
    parts.push(intro);
  }
  if (mode === "register") {
    parts.push(...field("firstName", "text", "auth.firstName", "given-name"), ...field("lastName", "text", "auth.lastName", "family-name"));
  }
  parts.push(...field("email", "email", "auth.email", "username"));
  parts.push(...field("password", "password", "auth.password", mode === "register" ? "new-password" : "current-password"));
  if (mode === "register") {
    const hint = document.createElement("p");
    hint.className = "muted small";
    hint.dataset.i18n = "auth.passwordHint";
    hint.textContent = t("auth.passwordHint");
    parts.push(hint);
  }
  // Where the server has the bot check on, its widget appears here after the first try.
  const botCheck = document.createElement("div");
  botCheck.className = "bot-check";
  botCheck.hidden = true;
  if (mode === "register") parts.push(botCheck);
  const actions = document.createElement("div");
  actions.className = "actions";
  const button = document.createElement("button");
  button.type = "submit";
  button.className = "primary";
  button.dataset.i18n = submitKey;
  button.textContent = t(submitKey);
  const other = document.createElement("a");
  // From /login or /register, pass `?next=` on; from a page's own login form, come back to it.
  const onAuthPage = location.pathname === "/login" || location.pathname === "/register";
  const next = onAuthPage ? new URLSearchParams(location.search).get("next") : location.pathname + location.search;
  const otherPath = mode === "register" ? "/login" : "/register";
  other.href = next ? `${otherPath}?next=${encodeURIComponent(next)}` : otherPath;
  other.dataset.i18n = mode === "register" ? "auth.haveAccount" : "auth.noAccount";
  other.textContent = t(other.dataset.i18n);
  actions.append(button, other);
  const out = document.createElement("p");
  out.className = "error form-error";
  out.setAttribute("role", "alert");
  out.tabIndex = -1;
  out.id = `${mode}-error`;
  parts.push(actions, out);
  form.append(...parts);
  container.replaceChildren(form);

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    button.disabled = true;
    clearProblems(form);
    const email = form.email.value.trim();
    const password = form.password.value;
    try {
      if (mode === "register") {
        const body = { email, password, firstName: form.firstName.value.trim(), lastName: form.lastName.value.trim() };
        await withBotCheck(botCheck, (turnstileToken) =>
          api("/api/auth/register", { method: "POST", body: turnstileToken ? { ...body, turnstileToken } : body }),
        );
      }
      await login(email, password);
      form.password.value = "";
      await onDone?.();
    } catch (err) {
      showProblem(form, err);
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

let loggingIn = null;

/**
 * Resolves once a fresh token exists; until then shows the shared login form in the page's
 * `#login` container. Safe to call again, for instance after a 401: one form at a time.
 */
export function ensureLoggedIn({ submitKey = "login.submit", introKey = "login.intro" } = {}) {
  if (hasFreshToken()) return Promise.resolve();
  clearToken();
  loggingIn ??= new Promise((resolve) => {
    const container = $("login");
    container.hidden = false;
    const form = renderAuthForm(container, {
      mode: "login",
      submitKey,
      introKey,
      onDone: () => {
        container.hidden = true;
        container.replaceChildren();
        loggingIn = null;
        document.dispatchEvent(new CustomEvent("tb:login"));
        resolve();
      },
    });
    form.email.focus();
  });
  return loggingIn;
}
