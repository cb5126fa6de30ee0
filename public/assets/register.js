// `/register`: the shared form in its registration shape; the new account is logged in and
// sent on (`?next=`, else the account page).
import "/assets/layout.js";
import { $, nextPath } from "/assets/api.js";
import { renderAuthForm } from "/assets/forms.js";

renderAuthForm($("auth"), { mode: "register", submitKey: "register.submit", onDone: () => location.assign(nextPath("/account")) });
