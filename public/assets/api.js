// The one small API client the pages share: the access token lives in localStorage (the pages
// are same-origin with the API), errors are problem+json and keep their `code` and `errors[]`.
export const tokenKey = "tb.accessToken";
export const getToken = () => localStorage.getItem(tokenKey);
export const setToken = (token) => localStorage.setItem(tokenKey, token);
export const clearToken = () => localStorage.removeItem(tokenKey);
export const $ = (id) => document.getElementById(id);

/** Segment `index` of the page's path, decoded: 2 is the id in `/events/{id}/…` and the code in `/orders/{code}`. */
export function pathParam(index) {
  return decodeURIComponent(location.pathname.split("/")[index] ?? "");
}

/** `path` with the query parameters that have a value. */
export function withQuery(path, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== ""));
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

export async function api(path, { method = "GET", body, headers = {}, onResponse } = {}) {
  const h = { Accept: "application/json", ...headers };
  // An expired token would turn even a public read into a 401: send none instead.
  const sentToken = hasFreshToken(0);
  if (sentToken) h.Authorization = `Bearer ${getToken()}`;
  if (body !== undefined) h["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  // For callers that need a response header (the waitroom's pass).
  onResponse?.(res);
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // Not JSON (a proxy's error page, say): report the status below.
  }
  if (res.status === 401 && sentToken && data?.code === "UNAUTHENTICATED") {
    // The token was revoked (logout everywhere, a password change, a deleted account): it will
    // never work again. Drop it and ask once more as a visitor, so a public read still works and
    // a protected one comes back 401 for the page to ask for a login.
    clearToken();
    return api(path, { method, body, headers, onResponse });
  }
  if (!res.ok) {
    const err = new Error(data?.detail ?? data?.title ?? `HTTP ${res.status}`);
    err.status = res.status;
    err.code = data?.code;
    err.errors = Array.isArray(data?.errors) ? data.errors : [];
    err.problem = data;
    throw err;
  }
  return data;
}

export async function login(email, password) {
  const data = await api("/api/auth/login", { method: "POST", body: { email, password } });
  setToken(data.accessToken);
  return data;
}

/** The stored token's claims (`sub`, `role`, `exp`), read without verifying: for what to show, never for access. */
export function tokenClaims() {
  const token = getToken();
  if (!token) return null;
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch {
    return null;
  }
}

/** Whether the stored token exists and is not about to expire (its `exp`, read without verifying). */
export function hasFreshToken(marginSeconds = 30) {
  const claims = tokenClaims();
  if (!claims) return false;
  return typeof claims.exp !== "number" || claims.exp * 1000 > Date.now() + marginSeconds * 1000;
}

/** A same-site path to go back to after logging in (`?next=`); anything else is ignored. */
export function nextPath(fallback) {
  const next = new URLSearchParams(location.search).get("next");
  return next && next.startsWith("/") && !next.startsWith("//") ? next : fallback;
}
