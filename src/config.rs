//! The deployment's configuration, read from its vars and secrets, and the one place that
//! decides whether the deployment is safe to serve ([`Settings::misconfiguration`]).
//!
//! Pure: the values come through a lookup function (the Worker passes its bindings, the host
//! tests a map), so every rule here is tested with `cargo test`.
//!
//! What makes a deployment unsafe, outside `ENVIRONMENT=development`:
//! - `JWT_SECRET` missing (in every environment), shorter than 32 bytes, or the development
//!   value from `.dev.vars.example`;
//! - a payment provider enabled by `PAYMENT_PROVIDERS` whose secrets are missing or unusable,
//!   whose endpoint is not `https://`, or (in production) is still the provider's sandbox;
//! - a development-only feature switched on in production: the sandbox payment provider
//!   (`SANDBOX_PAYMENTS=enabled`) or the mailbox (`DEV_MAILBOX=enabled`); in staging they may
//!   be on, and the sandbox then needs its `SANDBOX_WEBHOOK_SECRET`;
//! - `ADMIN_EMAILS` listing a development account (`@ticketbottle.dev`);
//! - `TICKET_SIGNING_KEY` (the Ed25519 seed that signs tickets) missing or the development
//!   value; in every environment, one that is not base64url of 32 bytes. Development falls back
//!   to the development key, so `npm run dev` needs no setup.
//! - the bot check (`TURNSTILE_SECRET`) with one of Cloudflare's test secrets, or a
//!   `TURNSTILE_VERIFY_URL` that is not `https://`;
//! - `REQUIRE_VERIFIED_EMAIL=disabled` in production;
//! - production without a mail API (`MAIL_API_URL`, `MAIL_API_KEY`, `MAIL_FROM`): it must send
//!   the verification mail that joining and ordering depend on; anywhere, a mail API that is
//!   half set or not `https://`.

use crate::domain::bot_check::{CLOUDFLARE_SITEVERIFY_URL, TEST_SECRETS};
use crate::domain::tickets::currency::{CurrencySupport, PaymentMethod};
use crate::domain::tickets::TicketSigner;
use crate::domain::tokens::MIN_SECRET_BYTES;
use crate::payments::{vnpay, zalopay, Gateway, Provider};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Staging,
    Production,
}

impl Environment {
    pub fn parse(raw: &str) -> Self {
        match raw.trim().to_ascii_lowercase().as_str() {
            "staging" => Environment::Staging,
            // Development only when it says so explicitly; an empty or misspelt value must not
            // switch development features on, so anything else is production.
            "development" => Environment::Development,
            _ => Environment::Production,
        }
    }

    pub fn is_development(self) -> bool {
        self == Environment::Development
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Staging => "staging",
            Environment::Production => "production",
        }
    }
}

/// The real providers, enabled when `PAYMENT_PROVIDERS` is absent.
pub const REAL_PROVIDERS: [Provider; 3] = [Provider::Payos, Provider::Vnpay, Provider::Zalopay];

/// A payment without a result after this long is queried at its provider (API contract).
pub const DEFAULT_RECONCILE_AFTER_SECONDS: i64 = 300;

/// Values in `.dev.vars.example` start with this; they are refused outside development.
const DEV_VALUE_PREFIX: &str = "dev-only-";

/// The local secrets every clone starts with. Any of its secret values deployed outside
/// development is as good as published, so the guard refuses each of them by name.
const DEV_VARS_EXAMPLE: &str = include_str!("../.dev.vars.example");

/// Names in `.dev.vars.example` whose example value is not a secret: endpoints (URLs) are
/// checked by `endpoint_problems`, and 2553 is ZaloPay's public sandbox app id, which the
/// sandbox-endpoint check already keeps out of production.
const PUBLIC_EXAMPLE_NAMES: [&str; 1] = ["ZALOPAY_APP_ID"];

/// `(name, value)` of every secret in `.dev.vars.example`.
pub fn example_secrets() -> impl Iterator<Item = (&'static str, &'static str)> {
    DEV_VARS_EXAMPLE
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .filter(|(k, v)| !v.is_empty() && !v.contains("://") && !PUBLIC_EXAMPLE_NAMES.contains(k))
}
/// The ticket signing key of `.dev.vars.example` (base64url of `dev-only-ticket-signing-key-0001`):
/// used in development when none is set, refused everywhere else.
pub const DEV_TICKET_SIGNING_KEY: &str = "ZGV2LW9ubHktdGlja2V0LXNpZ25pbmcta2V5LTAwMDE";

/// The development accounts' domain (the demo seed); never a platform admin elsewhere.
const DEV_ACCOUNT_DOMAIN: &str = "@ticketbottle.dev";

/// The Turnstile bot check on register and waitroom join, on when `TURNSTILE_SECRET` is set.
#[derive(Debug, Clone)]
pub struct TurnstileSettings {
    pub secret: String,
    /// `TURNSTILE_VERIFY_URL`, default Cloudflare's siteverify.
    pub verify_url: String,
    /// `TURNSTILE_SITE_KEY`, the widget's public key: sent with a 403 `BOT_CHECK_FAILED` so a
    /// page can show the widget and try again (pages have no other way to learn it).
    pub site_key: Option<String>,
}

/// The HTTP mail API the cron delivers `mail_outbox` through (`domain::mail`), on when
/// `MAIL_API_URL` is set; development keeps its mail in the dev mailbox instead.
#[derive(Debug, Clone)]
pub struct MailApiSettings {
    pub url: String,
    pub api_key: String,
    pub from: String,
}

/// The secrets of the mail API (for the deployment files' agreement test).
pub const MAIL_SECRETS: [&str; 1] = ["MAIL_API_KEY"];

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
    /// `GET /api/dev/mailbox`: on in development, or with `DEV_MAILBOX=enabled` (staging).
    pub dev_mailbox_enabled: bool,
    /// The real providers buyers may pay with (`PAYMENT_PROVIDERS`).
    pub payment_providers: Vec<Provider>,
    /// The bot check, when `TURNSTILE_SECRET` is set (`domain::bot_check`).
    pub turnstile: Option<TurnstileSettings>,
    /// Joining a waitroom and ordering need a verified email: `REQUIRE_VERIFIED_EMAIL`
    /// (`enabled` / `disabled`), default on outside development and always on in production,
    /// so one person cannot hold many places with throwaway addresses.
    pub require_verified_email: bool,
    /// Where mail is delivered, when `MAIL_API_URL`, `MAIL_API_KEY` and `MAIL_FROM` are set.
    pub mail_api: Option<MailApiSettings>,
    /// What makes this deployment unsafe to serve; empty when all is well. Names settings,
    /// never their values.
    pub misconfiguration: Vec<String>,
    /// How long an order's tickets are held, when not the ledger's default (15 minutes):
    /// `HOLD_SECONDS`, honoured in development only (the flash-crowd harness shortens holds
    /// so abandoned checkouts expire within a run).
    pub hold_for_ms: Option<i64>,
    /// The Ed25519 seed tickets are signed with (`TICKET_SIGNING_KEY`; in development the
    /// development key when unset). `None` only when the deployment is misconfigured.
    pub ticket_signing_seed: Option<[u8; 32]>,
    /// How long a payment may wait for its notification before its provider is asked where
    /// it stands (`RECONCILE_AFTER_SECONDS`, default 300).
    pub reconcile_after_ms: i64,
}

fn enabled(value: Option<String>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("enabled"))
}

impl Settings {
    /// Reads every setting through `lookup` (secret or var by name; empty counts as absent).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let list = |name: &str| -> Vec<String> {
            get(name)
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let environment = Environment::parse(&get("ENVIRONMENT").unwrap_or_default());
        let dev = environment.is_development();
        let mut misconfiguration = Vec::new();

        // Payment providers: absent means every real one; present lists them (may be empty).
        let mut payment_providers = Vec::new();
        match lookup("PAYMENT_PROVIDERS") {
            None => payment_providers.extend(REAL_PROVIDERS),
            Some(raw) => {
                for name in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    match name.to_ascii_lowercase().parse::<Provider>() {
                        Ok(Provider::Sandbox) => misconfiguration.push(
                            "PAYMENT_PROVIDERS lists sandbox (the sandbox is switched by SANDBOX_PAYMENTS)"
                                .to_string(),
                        ),
                        Ok(p) if !payment_providers.contains(&p) => payment_providers.push(p),
                        Ok(_) => {}
                        Err(_) => misconfiguration
                            .push(format!("PAYMENT_PROVIDERS names an unknown provider {name:?}")),
                    }
                }
            }
        }

        let settings = Settings {
            environment,
            jwt_secret: get("JWT_SECRET"),
            sandbox_enabled: dev || enabled(get("SANDBOX_PAYMENTS")),
            dev_mailbox_enabled: dev || enabled(get("DEV_MAILBOX")),
            payment_providers,
            admin_emails: list("ADMIN_EMAILS")
                .into_iter()
                .map(|e| e.to_lowercase())
                .collect(),
            cors_origins: list("CORS_ORIGINS"),
            hold_for_ms: get("HOLD_SECONDS")
                .filter(|_| dev)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|s| (1..=86_400).contains(s))
                .map(|s| s * 1000),
            reconcile_after_ms: get("RECONCILE_AFTER_SECONDS")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .filter(|s| (0..=86_400).contains(s))
                .unwrap_or(DEFAULT_RECONCILE_AFTER_SECONDS)
                * 1000,
            max_body_bytes: get("MAX_BODY_BYTES")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(64 * 1024),
            ticket_signing_seed: match get("TICKET_SIGNING_KEY") {
                Some(text) => TicketSigner::parse_seed(&text).ok(),
                None if dev => TicketSigner::parse_seed(DEV_TICKET_SIGNING_KEY).ok(),
                None => None,
            },
            turnstile: get("TURNSTILE_SECRET").map(|secret| TurnstileSettings {
                secret: secret.trim().to_string(),
                verify_url: get("TURNSTILE_VERIFY_URL")
                    .map(|u| u.trim().to_string())
                    .unwrap_or_else(|| CLOUDFLARE_SITEVERIFY_URL.to_string()),
                site_key: get("TURNSTILE_SITE_KEY")
                    .map(|k| k.trim().to_string())
                    .filter(|k| !k.is_empty()),
            }),
            require_verified_email: match get("REQUIRE_VERIFIED_EMAIL")
                .map(|v| v.trim().to_ascii_lowercase())
                .as_deref()
            {
                Some("enabled") => true,
                Some("disabled") => false,
                _ => !dev,
            },
            mail_api: match (get("MAIL_API_URL"), get("MAIL_API_KEY"), get("MAIL_FROM")) {
                (Some(url), Some(api_key), Some(from)) => Some(MailApiSettings {
                    url: url.trim().to_string(),
                    api_key: api_key.trim().to_string(),
                    from: from.trim().to_string(),
                }),
                _ => None,
            },
            misconfiguration: Vec::new(),
        };
        misconfiguration.extend(settings.unsafe_to_serve(&get));
        Settings {
            misconfiguration,
            ..settings
        }
    }

    /// The one place that decides what makes this deployment unsafe to serve.
    fn unsafe_to_serve(&self, get: &impl Fn(&str) -> Option<String>) -> Vec<String> {
        let mut problems = Vec::new();
        let production = self.environment == Environment::Production;
        match &self.jwt_secret {
            None => problems.push("JWT_SECRET is missing".to_string()),
            Some(_) if self.environment.is_development() => {}
            Some(s) if s.len() < MIN_SECRET_BYTES => problems.push(format!(
                "JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes"
            )),
            Some(s) if s.starts_with(DEV_VALUE_PREFIX) => {
                problems.push("JWT_SECRET is the development value".to_string())
            }
            Some(_) => {}
        }
        let dev_seed = TicketSigner::parse_seed(DEV_TICKET_SIGNING_KEY).ok();
        match get("TICKET_SIGNING_KEY") {
            None if self.environment.is_development() => {}
            None => problems.push("TICKET_SIGNING_KEY is missing".to_string()),
            Some(_) if self.ticket_signing_seed.is_none() => problems.push(
                "TICKET_SIGNING_KEY is not an Ed25519 seed (32 bytes, base64url)".to_string(),
            ),
            Some(_)
                if !self.environment.is_development() && self.ticket_signing_seed == dev_seed =>
            {
                problems.push("TICKET_SIGNING_KEY is the development value".to_string())
            }
            Some(_) => {}
        }
        let unknown = get("QUEUE_SHARD_LOCATION_HINTS")
            .map(|h| crate::domain::admission::place::unknown_location_hints(&h))
            .unwrap_or_default();
        if !unknown.is_empty() {
            problems.push(format!(
                "QUEUE_SHARD_LOCATION_HINTS names unknown location hints: {}",
                unknown.join(", ")
            ));
        }
        if self.environment.is_development() {
            return problems;
        }

        if production && self.sandbox_enabled {
            problems.push("SANDBOX_PAYMENTS=enabled is not allowed in production".to_string());
        }
        if production && self.dev_mailbox_enabled {
            problems.push("DEV_MAILBOX=enabled is not allowed in production".to_string());
        }
        if self.sandbox_enabled {
            match get("SANDBOX_WEBHOOK_SECRET") {
                None => problems
                    .push("SANDBOX_WEBHOOK_SECRET is missing (SANDBOX_PAYMENTS=enabled)".into()),
                Some(s) if s.starts_with(DEV_VALUE_PREFIX) => {
                    problems.push("SANDBOX_WEBHOOK_SECRET is the development value".into())
                }
                Some(_) => {}
            }
        }

        for &provider in &self.payment_providers {
            let missing: Vec<&str> = provider
                .required_secrets()
                .iter()
                .copied()
                .filter(|name| get(name).is_none())
                .collect();
            if !missing.is_empty() {
                problems.push(format!(
                    "{} missing (PAYMENT_PROVIDERS enables {provider})",
                    match missing.as_slice() {
                        [one] => format!("{one} is"),
                        many => format!("{} are", many.join(", ")),
                    }
                ));
                continue;
            }
            match Gateway::from_secrets(provider, get) {
                Err(e) => problems.push(format!("{provider}: {e}")),
                Ok(gateway) => problems.extend(endpoint_problems(&gateway, production)),
            }
        }

        // Checked by name and value, whether or not the feature that reads it is on: a key
        // copied from the example is a leak waiting for its feature to be switched on.
        for (name, example) in example_secrets() {
            if get(name).is_some_and(|v| v.trim() == example)
                && !problems.iter().any(|p| p.starts_with(name))
            {
                problems.push(format!(
                    "{name} is the example value from .dev.vars.example"
                ));
            }
        }

        if let Some(turnstile) = &self.turnstile {
            if TEST_SECRETS.contains(&turnstile.secret.as_str()) {
                problems.push(
                    "TURNSTILE_SECRET is one of Cloudflare's test secrets (the bot check would pass or fail everyone)"
                        .to_string(),
                );
            }
            if !turnstile.verify_url.starts_with("https://") {
                problems.push("TURNSTILE_VERIFY_URL is not an https:// URL".to_string());
            }
        }
        if let Some(raw) = get("REQUIRE_VERIFIED_EMAIL") {
            if !["enabled", "disabled"].contains(&raw.trim().to_ascii_lowercase().as_str()) {
                problems.push(format!(
                    "REQUIRE_VERIFIED_EMAIL is {raw:?} (enabled or disabled)"
                ));
            }
        }
        if get("MAIL_API_URL").is_some() {
            let missing: Vec<&str> = ["MAIL_API_KEY", "MAIL_FROM"]
                .into_iter()
                .filter(|name| get(name).is_none())
                .collect();
            if !missing.is_empty() {
                problems.push(format!(
                    "{} missing (MAIL_API_URL is set)",
                    missing.join(", ")
                ));
            }
        } else if production {
            problems.push("MAIL_API_URL is missing (production sends mail)".into());
        }
        if let Some(url) = get("MAIL_API_URL") {
            if !url.trim().starts_with("https://") {
                problems.push("MAIL_API_URL is not an https:// URL".to_string());
            }
        }
        if production && !self.require_verified_email {
            problems
                .push("REQUIRE_VERIFIED_EMAIL=disabled is not allowed in production".to_string());
        }

        if let Some(dev_admin) = self
            .admin_emails
            .iter()
            .find(|e| e.ends_with(DEV_ACCOUNT_DOMAIN))
        {
            problems.push(format!(
                "ADMIN_EMAILS lists the development account {dev_admin}"
            ));
        }
        problems
    }

    /// Whether buyers may pay with `provider` here.
    pub fn provider_enabled(&self, provider: Provider) -> bool {
        match provider {
            Provider::Sandbox => self.sandbox_enabled,
            real => self.payment_providers.contains(&real),
        }
    }

    /// The ticket signer, or `SERVICE_MISCONFIGURED`-worthy absence (the guard names why).
    pub fn ticket_signer(&self) -> Option<TicketSigner> {
        self.ticket_signing_seed
            .as_ref()
            .map(TicketSigner::from_seed)
    }

    /// Which currencies buyers can pay in here, from the providers enabled (sandbox included
    /// where it is on).
    pub fn currency_support(&self) -> CurrencySupport {
        CurrencySupport::from_methods(
            Provider::ALL
                .into_iter()
                .filter(|provider| self.provider_enabled(*provider))
                .filter_map(|provider| PaymentMethod::parse(provider.as_str())),
        )
    }

    pub fn origin_allowed(&self, origin: &str) -> bool {
        self.cors_origins.iter().any(|o| o == "*" || o == origin)
    }

    /// Platform admins are the `ADMIN_EMAILS`; outside development the address must also be
    /// verified, so nobody becomes admin by registering a listed address first.
    pub fn is_platform_admin(&self, email: &str, email_verified: bool) -> bool {
        let listed = self
            .admin_emails
            .iter()
            .any(|a| a.eq_ignore_ascii_case(email));
        listed && (email_verified || self.environment.is_development())
    }
}

/// Endpoints a deployed provider must not use: plain HTTP anywhere outside development, and
/// the provider's sandbox in production.
fn endpoint_problems(gateway: &Gateway, production: bool) -> Vec<String> {
    /// Setting name, its value, and the provider's sandbox value refused in production.
    type Endpoint<'a> = (&'static str, &'a String, Option<&'static str>);
    let (provider, endpoints): (Provider, Vec<Endpoint<'_>>) = match gateway {
        Gateway::Payos(cfg) => (
            Provider::Payos,
            vec![("PAYOS_API_BASE", &cfg.api_base, None)],
        ),
        Gateway::Vnpay(cfg) => (
            Provider::Vnpay,
            vec![
                ("VNPAY_PAY_URL", &cfg.pay_url, Some(vnpay::SANDBOX_PAY_URL)),
                ("VNPAY_API_URL", &cfg.api_url, Some(vnpay::SANDBOX_API_URL)),
            ],
        ),
        Gateway::Zalopay(cfg) => (
            Provider::Zalopay,
            vec![(
                "ZALOPAY_API_BASE",
                &cfg.api_base,
                Some(zalopay::SANDBOX_API_BASE),
            )],
        ),
        Gateway::Sandbox(_) => return Vec::new(),
    };
    let mut problems = Vec::new();
    for (name, url, sandbox) in endpoints {
        if !url.starts_with("https://") {
            problems.push(format!("{name} is not an https:// URL ({provider})"));
        }
        if production && sandbox.is_some_and(|s| url.trim_end_matches('/') == s) {
            problems.push(format!(
                "{name} is {provider}'s sandbox in production (set the production endpoint)"
            ));
        }
    }
    problems
}

/// Reading settings from the Worker's bindings (wasm32 only; the rules above are host-tested).
#[cfg(target_arch = "wasm32")]
mod from_env {
    use worker::Env;

    use super::Settings;

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

    thread_local! {
        static READ: std::cell::OnceCell<std::rc::Rc<Settings>> = const { std::cell::OnceCell::new() };
    }

    impl Settings {
        pub fn from_env(env: &Env) -> Self {
            // Raw values: an explicitly empty `PAYMENT_PROVIDERS` means "none", not "default".
            Settings::from_lookup(|name| raw(env, name))
        }

        /// The settings as this isolate first read them. An isolate runs one version of the
        /// Worker with one set of bindings (a changed var or secret is a new version, served by
        /// new isolates), so reading them again on every request (a binding lookup per setting
        /// and a key to decode: a tenth of a plain request's time) learns nothing new.
        /// Shared, not copied: a request's settings are this isolate's.
        pub fn of_isolate(env: &Env) -> std::rc::Rc<Self> {
            READ.with(|read| {
                std::rc::Rc::clone(read.get_or_init(|| std::rc::Rc::new(Settings::from_env(env))))
            })
        }
    }
}
#[cfg(target_arch = "wasm32")]
pub use from_env::secret;

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const GOOD_JWT: &str = "0123456789abcdef0123456789abcdef-production";
    /// base64url of the bytes 100..132.
    const GOOD_TICKET_KEY: &str = "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1-f4CBgoM";

    /// A production deployment that is fully and correctly configured.
    fn production() -> HashMap<&'static str, String> {
        let mut vars: HashMap<&'static str, String> = [
            ("ENVIRONMENT", "production"),
            ("JWT_SECRET", GOOD_JWT),
            ("TICKET_SIGNING_KEY", GOOD_TICKET_KEY),
            ("ADMIN_EMAILS", "Ops@Example.com"),
            ("PAYMENT_PROVIDERS", "payos,vnpay,zalopay"),
            ("PAYOS_CLIENT_ID", "client"),
            ("PAYOS_API_KEY", "key"),
            ("PAYOS_CHECKSUM_KEY", "checksum"),
            ("VNPAY_TMN_CODE", "TMN01"),
            ("VNPAY_HASH_SECRET", "hash"),
            ("VNPAY_PAY_URL", "https://pay.vnpay.vn/vpcpay.html"),
            ("VNPAY_API_URL", vnpay::PRODUCTION_API_URL),
            ("ZALOPAY_APP_ID", "2553"),
            ("ZALOPAY_KEY1", "k1"),
            ("ZALOPAY_KEY2", "k2"),
            ("ZALOPAY_API_BASE", zalopay::PRODUCTION_API_BASE),
            ("MAIL_API_URL", "https://mail.example.com/emails"),
            ("MAIL_API_KEY", "mail-key"),
            ("MAIL_FROM", "TicketBottle <no-reply@tickets.example.com>"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_string()))
        .collect();
        vars.insert("MAX_BODY_BYTES", "65536".into());
        vars
    }

    fn settings(vars: &HashMap<&'static str, String>) -> Settings {
        Settings::from_lookup(|name| vars.get(name).cloned())
    }

    fn problems_with(change: impl FnOnce(&mut HashMap<&'static str, String>)) -> Vec<String> {
        let mut vars = production();
        change(&mut vars);
        settings(&vars).misconfiguration
    }

    #[test]
    fn a_complete_production_configuration_serves() {
        let s = settings(&production());
        assert_eq!(s.misconfiguration, Vec::<String>::new());
        assert_eq!(s.environment, Environment::Production);
        assert!(!s.sandbox_enabled && !s.dev_mailbox_enabled);
        assert_eq!(s.payment_providers, REAL_PROVIDERS.to_vec());
        assert!(s.provider_enabled(Provider::Vnpay));
        assert!(!s.provider_enabled(Provider::Sandbox));
    }

    #[test]
    fn unknown_or_missing_environment_is_production() {
        for raw in [None, Some(""), Some("prod"), Some("Developmnt")] {
            let s = Settings::from_lookup(|name| match name {
                "ENVIRONMENT" => raw.map(str::to_string),
                "JWT_SECRET" => Some(GOOD_JWT.into()),
                "TICKET_SIGNING_KEY" => Some(GOOD_TICKET_KEY.into()),
                "PAYMENT_PROVIDERS" => Some(String::new()),
                "MAIL_API_URL" => Some("https://mail.example.com/emails".into()),
                "MAIL_API_KEY" | "MAIL_FROM" => Some("set".into()),
                _ => None,
            });
            assert_eq!(s.environment, Environment::Production, "{raw:?}");
            assert!(!s.sandbox_enabled && !s.dev_mailbox_enabled);
            assert_eq!(s.misconfiguration, Vec::<String>::new());
        }
    }

    #[test]
    fn jwt_secret_must_be_present_long_and_not_the_development_value() {
        assert_eq!(
            problems_with(|v| {
                v.remove("JWT_SECRET");
            }),
            ["JWT_SECRET is missing"]
        );
        assert_eq!(
            problems_with(|v| {
                v.insert("JWT_SECRET", "   ".into());
            }),
            ["JWT_SECRET is missing"]
        );
        assert_eq!(
            problems_with(|v| {
                v.insert("JWT_SECRET", "short".into());
            }),
            ["JWT_SECRET is shorter than 32 bytes"]
        );
        assert_eq!(
            problems_with(|v| {
                v.insert(
                    "JWT_SECRET",
                    "dev-only-jwt-secret-change-me-0123456789abcdef".into(),
                );
            }),
            ["JWT_SECRET is the development value"]
        );
    }

    #[test]
    fn the_ticket_signing_key_must_be_a_seed_and_not_the_development_value() {
        let s = settings(&production());
        let signer = s.ticket_signer().expect("a configured key signs");
        let dev_signer = TicketSigner::parse_seed(DEV_TICKET_SIGNING_KEY)
            .map(|seed| TicketSigner::from_seed(&seed))
            .expect("the development key is a seed");
        assert_eq!(signer.kid().len(), 8);
        assert_ne!(signer.kid(), dev_signer.kid());
        assert_eq!(
            problems_with(|v| {
                v.remove("TICKET_SIGNING_KEY");
            }),
            ["TICKET_SIGNING_KEY is missing"]
        );
        assert_eq!(
            problems_with(|v| {
                v.insert("TICKET_SIGNING_KEY", DEV_TICKET_SIGNING_KEY.into());
            }),
            ["TICKET_SIGNING_KEY is the development value"]
        );
        assert_eq!(
            problems_with(|v| {
                v.insert("TICKET_SIGNING_KEY", "c2hvcnQ".into());
            }),
            ["TICKET_SIGNING_KEY is not an Ed25519 seed (32 bytes, base64url)"]
        );
        let mut staging = production();
        staging.insert("ENVIRONMENT", "staging".into());
        staging.insert("TICKET_SIGNING_KEY", DEV_TICKET_SIGNING_KEY.into());
        assert_eq!(
            settings(&staging).misconfiguration,
            ["TICKET_SIGNING_KEY is the development value"]
        );
    }

    #[test]
    fn development_signs_tickets_with_the_development_key_unless_told_otherwise() {
        let dev = |key: Option<&str>| {
            Settings::from_lookup(|name| match name {
                "ENVIRONMENT" => Some("development".into()),
                "JWT_SECRET" => Some("short".into()),
                "TICKET_SIGNING_KEY" => key.map(str::to_string),
                _ => None,
            })
        };
        let dev_seed = TicketSigner::parse_seed(DEV_TICKET_SIGNING_KEY).ok();
        let unset = dev(None);
        assert_eq!(unset.misconfiguration, Vec::<String>::new());
        assert_eq!(unset.ticket_signing_seed, dev_seed);
        let own = dev(Some(GOOD_TICKET_KEY));
        assert_eq!(own.misconfiguration, Vec::<String>::new());
        assert_ne!(own.ticket_signing_seed, dev_seed);
        assert!(own.ticket_signing_seed.is_some());
        assert_eq!(
            dev(Some("garbage")).misconfiguration,
            ["TICKET_SIGNING_KEY is not an Ed25519 seed (32 bytes, base64url)"]
        );
    }

    #[test]
    fn every_provider_is_a_payment_method_the_currency_rules_know() {
        for provider in Provider::ALL {
            assert!(
                PaymentMethod::parse(provider.as_str()).is_some(),
                "{provider}"
            );
        }
    }

    #[test]
    fn currency_support_follows_the_enabled_providers() {
        use crate::domain::validation::CurrencyCode;
        let s = settings(&production());
        assert_eq!(
            s.currency_support().check_class(CurrencyCode::VND, false),
            Ok(())
        );
        assert!(s
            .currency_support()
            .check_class(CurrencyCode::USD, false)
            .is_err());
        let mut none = production();
        none.insert("PAYMENT_PROVIDERS", String::new());
        let s = settings(&none);
        assert!(s
            .currency_support()
            .check_class(CurrencyCode::VND, false)
            .is_err());
        assert_eq!(
            s.currency_support().check_class(CurrencyCode::VND, true),
            Ok(())
        );
        none.insert("ENVIRONMENT", "staging".into());
        none.insert("SANDBOX_PAYMENTS", "enabled".into());
        let s = settings(&none);
        assert_eq!(
            s.currency_support().check_class(CurrencyCode::VND, false),
            Ok(())
        );
    }

    #[test]
    fn development_only_requires_a_jwt_secret() {
        let dev = |jwt: Option<&str>| {
            Settings::from_lookup(|name| match name {
                "ENVIRONMENT" => Some("development".into()),
                "JWT_SECRET" => jwt.map(str::to_string),
                "ADMIN_EMAILS" => Some("admin@ticketbottle.dev".into()),
                _ => None,
            })
        };
        let s = dev(Some("short"));
        assert_eq!(s.misconfiguration, Vec::<String>::new());
        assert!(s.sandbox_enabled && s.dev_mailbox_enabled);
        assert!(s.is_platform_admin("admin@ticketbottle.dev", false));
        assert_eq!(dev(None).misconfiguration, ["JWT_SECRET is missing"]);
    }

    #[test]
    fn development_features_are_refused_in_production_and_allowed_in_staging() {
        let problems = problems_with(|v| {
            v.insert("SANDBOX_PAYMENTS", "enabled".into());
            v.insert("DEV_MAILBOX", "Enabled".into());
            v.insert("SANDBOX_WEBHOOK_SECRET", "sandbox-secret".into());
        });
        assert_eq!(
            problems,
            [
                "SANDBOX_PAYMENTS=enabled is not allowed in production",
                "DEV_MAILBOX=enabled is not allowed in production",
            ]
        );
        let mut staging = production();
        staging.insert("ENVIRONMENT", "staging".into());
        staging.insert("SANDBOX_PAYMENTS", "enabled".into());
        staging.insert("DEV_MAILBOX", "enabled".into());
        staging.insert("VNPAY_PAY_URL", vnpay::SANDBOX_PAY_URL.into());
        staging.insert("ZALOPAY_API_BASE", zalopay::SANDBOX_API_BASE.into());
        assert_eq!(
            settings(&staging).misconfiguration,
            ["SANDBOX_WEBHOOK_SECRET is missing (SANDBOX_PAYMENTS=enabled)"]
        );
        staging.insert("SANDBOX_WEBHOOK_SECRET", "staging-sandbox-secret".into());
        let s = settings(&staging);
        assert_eq!(s.misconfiguration, Vec::<String>::new());
        assert!(s.sandbox_enabled && s.dev_mailbox_enabled);
        staging.insert("SANDBOX_WEBHOOK_SECRET", "dev-only-sandbox-secret".into());
        assert_eq!(
            settings(&staging).misconfiguration,
            ["SANDBOX_WEBHOOK_SECRET is the development value"]
        );
        staging.insert("SANDBOX_PAYMENTS", "yes".into());
        assert!(!settings(&staging).sandbox_enabled);
    }

    #[test]
    fn enabled_providers_need_every_secret_and_production_endpoints() {
        assert_eq!(
            problems_with(|v| {
                v.remove("PAYOS_API_KEY");
                v.remove("PAYOS_CHECKSUM_KEY");
                v.insert("VNPAY_HASH_SECRET", " ".into());
            }),
            [
                "PAYOS_API_KEY, PAYOS_CHECKSUM_KEY are missing (PAYMENT_PROVIDERS enables payos)",
                "VNPAY_HASH_SECRET is missing (PAYMENT_PROVIDERS enables vnpay)",
            ]
        );
        assert_eq!(
            problems_with(|v| {
                v.insert("ZALOPAY_APP_ID", "not-a-number".into());
            }),
            ["zalopay: provider misconfigured: ZALOPAY_APP_ID \"not-a-number\" is not a number"]
        );
        assert_eq!(
            problems_with(|v| {
                v.insert("PAYOS_API_BASE", "http://127.0.0.1:8790/payos".into());
                v.remove("VNPAY_PAY_URL");
                v.remove("VNPAY_API_URL");
                v.remove("ZALOPAY_API_BASE");
            }),
            [
                "PAYOS_API_BASE is not an https:// URL (payos)",
                "VNPAY_PAY_URL is vnpay's sandbox in production (set the production endpoint)",
                "VNPAY_API_URL is vnpay's sandbox in production (set the production endpoint)",
                "ZALOPAY_API_BASE is zalopay's sandbox in production (set the production endpoint)",
            ]
        );
    }

    #[test]
    fn reconciliation_waits_five_minutes_unless_told_otherwise() {
        let mut vars = production();
        assert_eq!(settings(&vars).reconcile_after_ms, 300_000);
        vars.insert("RECONCILE_AFTER_SECONDS", "60".into());
        assert_eq!(settings(&vars).reconcile_after_ms, 60_000);
        for bad in ["-1", "ten", "86401"] {
            vars.insert("RECONCILE_AFTER_SECONDS", bad.into());
            assert_eq!(settings(&vars).reconcile_after_ms, 300_000, "{bad}");
        }
    }

    #[test]
    fn only_enabled_providers_are_checked() {
        let mut vars = production();
        vars.insert("PAYMENT_PROVIDERS", " PayOS ".into());
        for name in ["VNPAY_TMN_CODE", "VNPAY_HASH_SECRET", "ZALOPAY_KEY1"] {
            vars.remove(name);
        }
        let s = settings(&vars);
        assert_eq!(s.misconfiguration, Vec::<String>::new());
        assert_eq!(s.payment_providers, [Provider::Payos]);
        assert!(!s.provider_enabled(Provider::Vnpay));

        vars.insert("PAYMENT_PROVIDERS", String::new());
        assert_eq!(settings(&vars).payment_providers, []);
        vars.remove("PAYMENT_PROVIDERS");
        assert_eq!(
            settings(&vars).misconfiguration,
            [
                "VNPAY_TMN_CODE, VNPAY_HASH_SECRET are missing (PAYMENT_PROVIDERS enables vnpay)",
                "ZALOPAY_KEY1 is missing (PAYMENT_PROVIDERS enables zalopay)",
            ]
        );
    }

    #[test]
    fn provider_list_typos_are_named() {
        assert_eq!(
            problems_with(|v| {
                v.insert("PAYMENT_PROVIDERS", "payos,vnpy,sandbox".into());
            }),
            [
                "PAYMENT_PROVIDERS names an unknown provider \"vnpy\"",
                "PAYMENT_PROVIDERS lists sandbox (the sandbox is switched by SANDBOX_PAYMENTS)",
            ]
        );
    }

    #[test]
    fn development_accounts_are_never_admins_elsewhere() {
        assert_eq!(
            problems_with(|v| {
                v.insert(
                    "ADMIN_EMAILS",
                    "ops@example.com, admin@ticketbottle.dev".into(),
                );
            }),
            ["ADMIN_EMAILS lists the development account admin@ticketbottle.dev"]
        );
    }

    #[test]
    fn admins_need_a_verified_address_outside_development() {
        let s = settings(&production());
        assert!(s.is_platform_admin("ops@example.com", true));
        assert!(!s.is_platform_admin("ops@example.com", false));
        assert!(!s.is_platform_admin("fan@example.com", true));
    }

    #[test]
    fn required_secrets_are_exactly_what_the_gateways_need() {
        for provider in REAL_PROVIDERS {
            let names = provider.required_secrets();
            let lookup = |name: &str| {
                names.contains(&name).then(|| match name {
                    "ZALOPAY_APP_ID" => "2553".to_string(),
                    _ => "value".to_string(),
                })
            };
            assert!(
                Gateway::from_secrets(provider, lookup).is_ok(),
                "{provider}"
            );
            for skipped in names {
                let without = |name: &str| (name != *skipped).then(|| lookup(name)).flatten();
                assert!(
                    Gateway::from_secrets(provider, without).is_err(),
                    "{provider} without {skipped}"
                );
            }
        }
    }

    #[test]
    fn every_example_secret_is_refused_outside_development() {
        let names: Vec<&str> = example_secrets().map(|(k, _)| k).collect();
        // The example file is the source; make sure the parser sees its secrets.
        for expected in [
            "JWT_SECRET",
            "VNPAY_HASH_SECRET",
            "PAYOS_CHECKSUM_KEY",
            "ZALOPAY_KEY2",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} not read from the example"
            );
        }
        for (name, example) in example_secrets() {
            for environment in ["production", "staging"] {
                let problems = problems_with(|vars| {
                    vars.insert("ENVIRONMENT", environment.into());
                    vars.insert(name, example.to_string());
                });
                assert!(
                    problems.iter().any(|p| p.starts_with(name)),
                    "{name}={example} accepted in {environment}: {problems:?}"
                );
            }
        }
    }

    #[test]
    fn example_secrets_are_fine_in_development() {
        let vars: HashMap<&'static str, String> = example_secrets()
            .map(|(k, v)| (k, v.to_string()))
            .chain([("ENVIRONMENT", "development".to_string())])
            .collect();
        assert_eq!(settings(&vars).misconfiguration, Vec::<String>::new());
    }

    #[test]
    fn an_example_secret_of_a_disabled_feature_is_still_refused() {
        let problems = problems_with(|vars| {
            vars.insert("PAYMENT_PROVIDERS", "payos".into());
            vars.insert("ZALOPAY_KEY2", "dev-zalopay-key2".into());
        });
        assert!(
            problems.iter().any(|p| p.starts_with("ZALOPAY_KEY2")),
            "{problems:?}"
        );
    }

    #[test]
    fn the_bot_check_is_off_without_a_secret_and_refuses_test_secrets_when_deployed() {
        assert!(settings(&production()).turnstile.is_none());
        let on = {
            let mut vars = production();
            vars.insert("TURNSTILE_SECRET", "0x4AAAAAAA-real-secret".into());
            settings(&vars)
        };
        assert_eq!(on.misconfiguration, Vec::<String>::new());
        assert_eq!(
            on.turnstile.map(|t| t.verify_url).as_deref(),
            Some(CLOUDFLARE_SITEVERIFY_URL)
        );
        assert_eq!(
            problems_with(|v| {
                v.insert("TURNSTILE_SECRET", TEST_SECRETS[0].into());
                v.insert("TURNSTILE_VERIFY_URL", "http://siteverify.example".into());
            }),
            [
                "TURNSTILE_SECRET is one of Cloudflare's test secrets (the bot check would pass or fail everyone)",
                "TURNSTILE_VERIFY_URL is not an https:// URL",
            ]
        );
        let dev = Settings::from_lookup(|name| match name {
            "ENVIRONMENT" => Some("development".into()),
            "JWT_SECRET" => Some("short".into()),
            "TURNSTILE_SECRET" => Some(TEST_SECRETS[0].into()),
            "TURNSTILE_VERIFY_URL" => Some("http://127.0.0.1:8790/siteverify".into()),
            _ => None,
        });
        assert_eq!(dev.misconfiguration, Vec::<String>::new());
        assert!(dev.turnstile.is_some());
    }

    #[test]
    fn verified_email_is_required_outside_development_and_always_in_production() {
        assert!(settings(&production()).require_verified_email);
        assert_eq!(
            problems_with(|v| {
                v.insert("REQUIRE_VERIFIED_EMAIL", "disabled".into());
            }),
            ["REQUIRE_VERIFIED_EMAIL=disabled is not allowed in production"]
        );
        assert_eq!(
            problems_with(|v| {
                v.insert("REQUIRE_VERIFIED_EMAIL", "yes".into());
            }),
            ["REQUIRE_VERIFIED_EMAIL is \"yes\" (enabled or disabled)"]
        );
        let mut staging = production();
        staging.insert("ENVIRONMENT", "staging".into());
        assert!(settings(&staging).require_verified_email);
        staging.insert("REQUIRE_VERIFIED_EMAIL", "disabled".into());
        let s = settings(&staging);
        assert!(!s.require_verified_email);
        assert_eq!(s.misconfiguration, Vec::<String>::new());
        let dev = |value: Option<&str>| {
            Settings::from_lookup(|name| match name {
                "ENVIRONMENT" => Some("development".into()),
                "JWT_SECRET" => Some("short".into()),
                "REQUIRE_VERIFIED_EMAIL" => value.map(str::to_string),
                _ => None,
            })
            .require_verified_email
        };
        assert!(!dev(None));
        assert!(dev(Some("enabled")));
    }

    #[test]
    fn unknown_queue_shard_location_hints_are_refused() {
        let with = |hints: &'static str| {
            Settings::from_lookup(|name| match name {
                "QUEUE_SHARD_LOCATION_HINTS" => Some(hints.to_string()),
                "ENVIRONMENT" => Some("development".to_string()),
                "JWT_SECRET" => Some("dev-secret".to_string()),
                _ => None,
            })
            .misconfiguration
        };
        assert!(with("apac, oc").is_empty());
        let problems = with("apac, hanoi");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("hanoi"), "{problems:?}");
    }

    #[test]
    fn production_needs_a_whole_https_mail_api() {
        assert!(settings(&production()).mail_api.is_some());
        assert_eq!(
            problems_with(|v| {
                for name in ["MAIL_API_URL", "MAIL_API_KEY", "MAIL_FROM"] {
                    v.remove(name);
                }
            }),
            ["MAIL_API_URL is missing (production sends mail)"]
        );
        assert_eq!(
            problems_with(|v| {
                v.remove("MAIL_API_KEY");
                v.insert("MAIL_API_URL", "http://mail.example.com".into());
            }),
            [
                "MAIL_API_KEY missing (MAIL_API_URL is set)",
                "MAIL_API_URL is not an https:// URL"
            ]
        );
        assert_eq!(
            problems_with(|v| {
                v.remove("MAIL_API_URL");
            }),
            ["MAIL_API_URL is missing (production sends mail)"]
        );
        // Staging may keep its mail in the dev mailbox.
        let mut staging = production();
        staging.insert("ENVIRONMENT", "staging".into());
        for name in ["MAIL_API_URL", "MAIL_API_KEY", "MAIL_FROM"] {
            staging.remove(name);
        }
        let s = settings(&staging);
        assert_eq!(s.misconfiguration, Vec::<String>::new());
        assert!(s.mail_api.is_none());
    }
}
