//! Email addresses as stored: trimmed, lowercased, RFC 5322 dot-atom shaped.

use std::fmt;

use serde::Serialize;

use super::FieldError;

/// An email address as stored: trimmed and lowercased, so uniqueness and login ignore case.
///
/// The check is RFC 5322's dot-atom form, which is what real mailboxes use: no quoted local
/// parts, no IP-literal domains, ASCII only (an internationalised domain arrives as punycode).
/// Lowercasing the local part is, strictly, not RFC-safe; no mainstream provider distinguishes
/// case, and two accounts differing only in case would be a support problem.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// RFC 5321's limit on a forward path, which bounds any usable address.
    pub const MAX_LEN: usize = 254;
    const MAX_LOCAL_LEN: usize = 64;
    const MAX_LABEL_LEN: usize = 63;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(FieldError::new("email", "must not be empty"));
        }
        if text.len() > Self::MAX_LEN {
            return Err(FieldError::new(
                "email",
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        let lower = text.to_ascii_lowercase();
        let valid = lower
            .split_once('@')
            .is_some_and(|(local, domain)| Self::local_ok(local) && Self::domain_ok(domain));
        if valid {
            Ok(Self(lower))
        } else {
            Err(FieldError::new("email", "must be a valid email address"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after `@` (for per-domain rules such as the admin list or disposable domains).
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, domain)| domain)
    }

    fn local_ok(local: &str) -> bool {
        const ATEXT_SYMBOLS: &str = "!#$%&'*+/=?^_`{|}~-";
        !local.is_empty()
            && local.len() <= Self::MAX_LOCAL_LEN
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || ATEXT_SYMBOLS.contains(c))
    }

    fn domain_ok(domain: &str) -> bool {
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |label: &&str| {
            !label.is_empty()
                && label.len() <= Self::MAX_LABEL_LEN
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        // A top-level domain is never all digits; that shape is an IPv4 address typed as a domain.
        let tld_ok = labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && !tld.chars().all(|c| c.is_ascii_digit()));
        labels.len() >= 2 && labels.iter().all(label_ok) && tld_ok
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  Nguyen.Van.A+tickets@Gmail.COM\n").map(|e| e.0),
            Ok("nguyen.van.a+tickets@gmail.com".to_string())
        );
    }

    #[test]
    fn ordinary_email_shapes_are_accepted() {
        for ok in [
            "a@b.co",
            "first.last@sub.example.com.vn",
            "o'brien@example.ie",
            "x_y-z@xn--80ak6aa92e.com",
            "user+tag@example.travel",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "user@",
            "user@localhost",
            "user@@example.com",
            "a@b@example.com",
            ".user@example.com",
            "user.@example.com",
            "us..er@example.com",
            "user@-example.com",
            "user@example-.com",
            "user@example..com",
            "user@example.c",
            "user@1.2.3.4",
            "user@[1.2.3.4]",
            "us er@example.com",
            "\"quoted\"@example.com",
            "ngườidùng@example.com",
            "user@exa_mple.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_email_over_254_characters_is_refused() {
        let label = "a".repeat(63);
        let long = format!("user@{label}.{label}.{label}.{label}.com");
        assert!(long.len() > 254);
        assert_eq!(
            Email::parse(&long).err().map(|e| e.message),
            Some("must be at most 254 characters".to_string())
        );
        let local = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&local).is_err());
    }

    #[test]
    fn an_email_knows_its_domain() {
        assert_eq!(
            Email::parse("admin@TicketBottle.vn").map(|e| e.domain().to_string()),
            Ok("ticketbottle.vn".to_string())
        );
    }

    proptest! {
        #[test]
        fn accepted_emails_are_stored_lowercase_and_reparse_to_themselves(
            local in "[A-Za-z0-9][A-Za-z0-9._+-]{0,20}[A-Za-z0-9]",
            domain in "[A-Za-z][A-Za-z0-9-]{0,10}[A-Za-z0-9]\\.[A-Za-z]{2,6}",
        ) {
            let raw = format!("{local}@{domain}");
            if let Ok(email) = Email::parse(&raw) {
                prop_assert_eq!(email.as_str(), raw.to_ascii_lowercase());
                prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
            } else {
                prop_assert!(local.contains(".."));
            }
        }
    }
}
