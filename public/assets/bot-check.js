// The bot check on the pages. Where the server asks for Cloudflare Turnstile (a 403
// BOT_CHECK_FAILED that names the widget's `siteKey`), the widget is shown in the page and the
// request is sent once more with its token. Turnstile's script can only come from Cloudflare;
// it is loaded then and only then, so a server without the bot check never makes a page fetch it.
import { lang, t } from "/assets/i18n.js";

const SCRIPT = "https://challenges.cloudflare.com/turnstile/v0/api.js?render=explicit";
let loading = null;

/** A failure of the check itself, with a status so the forms show its own words. */
const failure = (key) => Object.assign(new Error(t(key)), { status: 0 });

function loadTurnstile() {
  loading ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = SCRIPT;
    script.async = true;
    script.onload = () => (window.turnstile ? resolve(window.turnstile) : reject(failure("botCheck.unavailable")));
    script.onerror = () => {
      loading = null; // a later try may reach Cloudflare again
      reject(failure("botCheck.unavailable"));
    };
    document.head.append(script);
  });
  return loading;
}

/** Shows the widget in `container`; resolves with its token once the visitor passes. */
async function challenge(container, siteKey) {
  const turnstile = await loadTurnstile();
  const note = document.createElement("p");
  note.className = "muted small";
  note.dataset.i18n = "botCheck.prompt";
  note.textContent = t("botCheck.prompt");
  const slot = document.createElement("div");
  container.replaceChildren(note, slot);
  container.hidden = false;
  return new Promise((resolve, reject) => {
    turnstile.render(slot, {
      sitekey: siteKey,
      language: lang(),
      callback: resolve,
      "error-callback": () => reject(failure("botCheck.failed")),
    });
  });
}

/**
 * Runs `send(token)`, first with no token. When the server answers 403 `BOT_CHECK_FAILED` with
 * a `siteKey`, shows the widget in `container` and sends once more with the widget's token (a
 * token is good for one request, so each retry needs a new pass).
 */
export async function withBotCheck(container, send) {
  try {
    return await send(undefined);
  } catch (err) {
    const siteKey = err.code === "BOT_CHECK_FAILED" ? err.problem?.siteKey : undefined;
    if (!siteKey || !container) throw err;
    const token = await challenge(container, siteKey);
    try {
      return await send(token);
    } finally {
      container.hidden = true;
      container.replaceChildren();
    }
  }
}
