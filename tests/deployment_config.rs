//! The deployment files agree with each other and with the guard in `src/config.rs`:
//! `.dev.vars.example` lists every secret the guard can require, the README sets each one,
//! `wrangler.toml` holds none of them, and each environment's vars, with its secrets set,
//! pass the guard.

use std::collections::HashMap;

use ticketbottle_edge::config::{Environment, Settings, MAIL_SECRETS, REAL_PROVIDERS};
use ticketbottle_edge::payments::Provider;

const README: &str = include_str!("../README.md");
const DEV_VARS: &str = include_str!("../.dev.vars.example");
const WRANGLER: &str = include_str!("../wrangler.toml");

/// `NAME=value` lines of `.dev.vars.example`: (secrets, endpoints), split at the endpoints header.
fn dev_vars() -> (Vec<&'static str>, Vec<&'static str>) {
    let (secrets, endpoints) = DEV_VARS
        .split_once("# --- endpoints")
        .expect(".dev.vars.example has an endpoints section");
    let names = |text: &'static str| -> Vec<&'static str> {
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim()))
            .filter(|k| !k.is_empty())
            .collect()
    };
    (names(secrets), names(endpoints))
}

/// The lines of wrangler.toml after the `[section]` header.
fn after_header(section: &str) -> impl Iterator<Item = &'static str> {
    let header = format!("[{section}]");
    let start = WRANGLER
        .lines()
        .position(|l| l.trim() == header)
        .unwrap_or_else(|| panic!("wrangler.toml has {header}"));
    WRANGLER.lines().skip(start + 1)
}

/// The `KEY = "value"` lines of one `[section]` of wrangler.toml.
fn toml_vars(section: &str) -> HashMap<String, String> {
    after_header(section)
        .take_while(|l| !l.trim_start().starts_with('['))
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

fn required_secrets() -> Vec<&'static str> {
    let mut names = vec!["JWT_SECRET", "TICKET_SIGNING_KEY"];
    names.extend(MAIL_SECRETS);
    for provider in REAL_PROVIDERS.into_iter().chain([Provider::Sandbox]) {
        names.extend(provider.required_secrets());
    }
    names
}

#[test]
fn dev_vars_example_lists_exactly_the_secrets_the_guard_requires() {
    let (mut secrets, _) = dev_vars();
    let mut required = required_secrets();
    secrets.sort_unstable();
    required.sort_unstable();
    assert_eq!(secrets, required);
}

#[test]
fn the_readme_sets_every_secret_with_wrangler_secret_put() {
    let deploying = README
        .split_once("## Deploying to Cloudflare")
        .and_then(|(_, rest)| rest.split_once("\n## "))
        .map(|(section, _)| section)
        .expect("README has a deployment section");
    assert!(deploying.contains("wrangler secret put"));
    for name in dev_vars().0 {
        assert!(
            deploying.contains(&format!("`{name}`")),
            "README's deployment section does not list {name}"
        );
    }
    for name in dev_vars().1 {
        assert!(deploying.contains(name), "README does not mention {name}");
    }
}

#[test]
fn wrangler_toml_holds_no_secret() {
    for line in WRANGLER
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
    {
        let key = line.split('=').next().unwrap_or("").trim();
        assert!(
            !required_secrets().contains(&key),
            "wrangler.toml sets the secret {key}: {line}"
        );
    }
}

/// Each environment's vars, with every secret set to a plausible value, pass the guard.
#[test]
fn every_environment_is_servable_once_its_secrets_are_set() {
    for (section, environment) in [
        ("vars", Environment::Development),
        ("env.staging.vars", Environment::Staging),
        ("env.production.vars", Environment::Production),
    ] {
        let vars = toml_vars(section);
        let settings = Settings::from_lookup(|name| {
            vars.get(name).cloned().or_else(|| {
                required_secrets().contains(&name).then(|| match name {
                    "ZALOPAY_APP_ID" => "2553".to_string(),
                    // 32 bytes, base64url: an Ed25519 seed.
                    "TICKET_SIGNING_KEY" => {
                        "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1-f4CBgoM".to_string()
                    }
                    _ => format!("{name}-a-long-random-production-value"),
                })
            })
        });
        assert_eq!(settings.environment, environment, "[{section}]");
        assert_eq!(
            settings.misconfiguration,
            Vec::<String>::new(),
            "[{section}]"
        );
        if environment == Environment::Production {
            assert!(!settings.sandbox_enabled && !settings.dev_mailbox_enabled);
            assert_eq!(settings.payment_providers, REAL_PROVIDERS.to_vec());
        }
    }
}

#[test]
fn production_without_secrets_refuses_to_serve() {
    let vars = toml_vars("env.production.vars");
    let settings = Settings::from_lookup(|name| vars.get(name).cloned());
    assert!(settings
        .misconfiguration
        .contains(&"JWT_SECRET is missing".to_string()));
    assert!(settings
        .misconfiguration
        .iter()
        .any(|p| p.starts_with("PAYOS_CLIENT_ID, PAYOS_API_KEY, PAYOS_CHECKSUM_KEY are missing")));
}

/// The `{ name = "...", class_name = "..." }` bindings of one `[..durable_objects]` section.
fn object_bindings(section: &str) -> Vec<(String, String)> {
    after_header(section)
        .take_while(|l| l.trim() != "]")
        .filter_map(|l| {
            let field = |name: &str| {
                let rest = l.split_once(&format!("{name} = \""))?.1;
                Some(rest.split_once('"')?.0.to_string())
            };
            Some((field("name")?, field("class_name")?))
        })
        .collect()
}

#[test]
fn every_environment_binds_every_durable_object_class_a_migration_creates() {
    let created: Vec<String> = WRANGLER
        .lines()
        .filter_map(|l| l.trim().strip_prefix("new_sqlite_classes = "))
        .flat_map(|list| {
            list.trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .map(|c| c.trim().trim_matches('"').to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let expected = [
        ("EVENT_HUB", "EventHub"),
        ("EVENT_DOOR", "EventDoor"),
        ("QUEUE_SHARD", "QueueShard"),
    ];
    for section in [
        "durable_objects",
        "env.staging.durable_objects",
        "env.production.durable_objects",
    ] {
        let bound = object_bindings(section);
        for (name, class) in expected {
            assert!(
                bound.contains(&(name.to_string(), class.to_string())),
                "{section} binds {name} to {class}: {bound:?}"
            );
            assert!(
                created.contains(&class.to_string()),
                "a migration creates {class}"
            );
        }
    }
}
