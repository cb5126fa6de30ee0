// `/login`: the shared login form; afterwards back where the visitor came from (`?next=`).
import "/assets/layout.js";
import { $, nextPath } from "/assets/api.js";
import { renderAuthForm } from "/assets/forms.js";

renderAuthForm($("auth"), { mode: "login", submitKey: "login.submit", onDone: () => location.assign(nextPath("/account")) });
