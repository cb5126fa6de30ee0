// Tiny client shared by the pages: the access token lives in localStorage (the pages are
// same-origin with the API), errors are problem+json.
export const tokenKey = "tb.accessToken";
export const getToken = () => localStorage.getItem(tokenKey);
export const clearToken = () => localStorage.removeItem(tokenKey);
export const $ = (id) => document.getElementById(id);

/** Segment `index` of the page's path, decoded: 2 is the id in `/events/{id}/…` and the code in `/orders/{code}`. */
export function pathParam(index) {
  return decodeURIComponent(location.pathname.split("/")[index] ?? "");
}

export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const h = { Accept: "application/json", ...headers };
  // An expired token would turn even a public read into a 401: send none instead.
  if (hasFreshToken(0)) h.Authorization = `Bearer ${getToken()}`;
  if (body !== undefined) h["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON (a proxy's error page, say): report the status below.
  }
  if (!res.ok) {
    const err = new Error(data?.detail ?? data?.title ?? `The server answered ${res.status}.`);
    err.status = res.status;
    err.code = data?.code;
    throw err;
  }
  return data;
}

export async function login(email, password) {
  const data = await api("/api/auth/login", { method: "POST", body: { email, password } });
  localStorage.setItem(tokenKey, data.accessToken);
  return data;
}

/** Whether the stored token exists and is not about to expire (its `exp`, read without verifying). */
export function hasFreshToken(marginSeconds = 30) {
  const token = getToken();
  if (!token) return false;
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const { exp } = JSON.parse(atob(payload));
    return typeof exp !== "number" || exp * 1000 > Date.now() + marginSeconds * 1000;
  } catch {
    return false;
  }
}

let loggingIn = null;

/**
 * Resolves once a fresh token exists; until then shows the page's login form (`#login` with
 * `email`, `password`, a submit button and `#login-error`). Safe to call again, for instance
 * after a 401: one form, one listener.
 */
export function ensureLoggedIn() {
  if (hasFreshToken()) return Promise.resolve();
  clearToken();
  loggingIn ??= new Promise((resolve) => {
    const form = $("login");
    const out = $("login-error");
    const button = form.querySelector('button[type="submit"]');
    form.hidden = false;
    form.email.focus();
    const submit = async (e) => {
      e.preventDefault();
      button.disabled = true;
      out.textContent = "";
      try {
        await login(form.email.value.trim(), form.password.value);
        form.removeEventListener("submit", submit);
        form.password.value = "";
        form.hidden = true;
        loggingIn = null;
        resolve();
      } catch (err) {
        out.textContent = err.status === 429 ? "Too many attempts. Wait a minute and try again." : err.message;
      } finally {
        button.disabled = false;
      }
    };
    form.addEventListener("submit", submit);
  });
  return loggingIn;
}

/** Digits after the decimal point in `currency` (0 for VND, 2 for USD). */
function minorDigits(currency) {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
  } catch {
    return 2;
  }
}

/** An amount in the currency's minor unit (`priceCents`, `totalAmountCents`) as money. */
export function formatMoney(minor, currency) {
  const digits = minorDigits(currency);
  try {
    return new Intl.NumberFormat("vi-VN", { style: "currency", currency, minimumFractionDigits: 0 }).format(minor / 10 ** digits);
  } catch {
    return `${(minor / 10 ** digits).toFixed(digits)} ${currency}`;
  }
}

export function formatWait(seconds) {
  if (seconds === null || seconds === undefined) return "calculating…";
  if (seconds < 60) return "less than a minute";
  const m = Math.round(seconds / 60);
  return m < 60 ? `about ${m} min` : `about ${Math.floor(m / 60)} h ${m % 60} min`;
}
