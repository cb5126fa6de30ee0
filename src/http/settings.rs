//! Runtime settings read once per request from the Worker's vars and secrets. The rules (and
//! the misconfiguration guard) live in [`crate::config`], where the host tests exercise them.

use worker::Env;

pub use crate::config::Settings;

fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string())
}

/// A secret or var as bound, empty included.
fn raw(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .ok()
        .map(|v| v.to_string())
        .or_else(|| var(env, name))
}

/// Secrets set with `wrangler secret put` (or `.dev.vars` locally); plain vars as a fallback.
pub fn secret(env: &Env, name: &str) -> Option<String> {
    raw(env, name).filter(|v| !v.is_empty())
}

impl Settings {
    pub fn from_env(env: &Env) -> Self {
        // Raw values: an explicitly empty `PAYMENT_PROVIDERS` means "none", not "default".
        Settings::from_lookup(|name| raw(env, name))
    }
}
