// Tiny client shared by the pages: the access token lives in localStorage (the pages are
// same-origin with the API), errors are problem+json.
export const tokenKey = "tb.accessToken";
export const getToken = () => localStorage.getItem(tokenKey);

export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const h = { ...headers };
  const token = getToken();
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined) h["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const err = new Error(data?.detail ?? `HTTP ${res.status}`);
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

/** Wires a login form (if the page has one) and resolves once a token exists. */
export function ensureLoggedIn() {
  if (getToken()) return Promise.resolve();
  const form = document.getElementById("login");
  form.hidden = false;
  return new Promise((resolve) => {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const out = document.getElementById("login-error");
      try {
        await login(form.email.value, form.password.value);
        form.hidden = true;
        resolve();
      } catch (err) {
        out.textContent = err.message;
      }
    });
  });
}

export const formatMoney = (cents, currency) =>
  new Intl.NumberFormat("vi-VN", { style: "currency", currency, minimumFractionDigits: 0 }).format(cents);

export function formatWait(seconds) {
  if (seconds === null || seconds === undefined) return "calculating…";
  if (seconds < 60) return "less than a minute";
  const m = Math.round(seconds / 60);
  return m < 60 ? `about ${m} min` : `about ${Math.floor(m / 60)} h ${m % 60} min`;
}
