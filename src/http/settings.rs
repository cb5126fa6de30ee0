//! Runtime settings read once per request from the Worker's vars and secrets.

use worker::Env;

use crate::domain::tokens::MIN_SECRET_BYTES;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Staging,
    Production,
}

impl Environment {
    fn parse(raw: &str) -> Self {
        match raw.trim().to_ascii_lowercase().as_str() {
            "production" => Environment::Production,
            "staging" => Environment::Staging,
            // Anything unknown is treated as development only when it says so explicitly;
            // an empty or misspelt value must not switch development features on.
            "development" => Environment::Development,
            _ => Environment::Production,
        }
    }

    pub fn is_development(self) -> bool {
        self == Environment::Development
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub admin_emails: Vec<String>,
    pub cors_origins: Vec<String>,
    pub max_body_bytes: usize,
    pub jwt_secret: Option<String>,
    /// The sandbox payment provider: on in development, or where explicitly enabled
    /// (`SANDBOX_PAYMENTS=enabled`, e.g. a staging demo). Never on by accident.
    pub sandbox_enabled: bool,
    /// What makes this deployment unsafe to serve; empty when all is well.
    pub misconfiguration: Vec<String>,
    /// How long an order's tickets are held, when not the ledger's default (15 minutes):
    /// `HOLD_SECONDS`, honoured in development only (the flash-crowd harness shortens holds
    /// so abandoned checkouts expire within a run).
    pub hold_for_ms: Option<i64>,
}

fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string())
}

/// Secrets set with `wrangler secret put` (or `.dev.vars` locally); plain vars as a fallback.
pub fn secret(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .ok()
        .map(|v| v.to_string())
        .or_else(|| var(env, name))
        .filter(|v| !v.is_empty())
}

impl Settings {
    pub fn from_env(env: &Env) -> Self {
        let list = |name: &str| -> Vec<String> {
            var(env, name)
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let environment = Environment::parse(&var(env, "ENVIRONMENT").unwrap_or_default());
        let jwt_secret = secret(env, "JWT_SECRET");
        let sandbox_enabled = environment.is_development()
            || var(env, "SANDBOX_PAYMENTS").is_some_and(|v| v == "enabled");
        let mut misconfiguration = Vec::new();
        match &jwt_secret {
            None => misconfiguration.push("JWT_SECRET is missing".to_string()),
            Some(s) if s.len() < MIN_SECRET_BYTES && !environment.is_development() => {
                misconfiguration.push(format!(
                    "JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes"
                ))
            }
            _ => {}
        }
        Settings {
            environment,
            jwt_secret,
            sandbox_enabled,
            misconfiguration,
            admin_emails: list("ADMIN_EMAILS")
                .into_iter()
                .map(|e| e.to_lowercase())
                .collect(),
            cors_origins: list("CORS_ORIGINS"),
            hold_for_ms: var(env, "HOLD_SECONDS")
                .filter(|_| environment.is_development())
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|s| (1..=86_400).contains(s))
                .map(|s| s * 1000),
            max_body_bytes: var(env, "MAX_BODY_BYTES")
                .and_then(|v| v.parse().ok())
                .unwrap_or(64 * 1024),
        }
    }

    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.cors_origins.iter().any(|o| o == "*" || o == origin)
    }
}
