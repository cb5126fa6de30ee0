//! Delivering what `mail_outbox` holds through an HTTP mail API: the request a mail becomes,
//! what the API's answer means, and when a failed mail is tried again.
//!
//! Pure; the cron (`queue/mail.rs`) claims due mails, sends them and records the outcome.
//! Decisions worth knowing:
//! - **At most one send per claim, and one delivery per mail**: a mail is claimed with a
//!   conditional write (a lease) before it is sent, and the request carries the mail's id as
//!   `Idempotency-Key`, so a cron run that dies after the API accepted a mail, and the retry
//!   that follows, do not reach the fan twice where the API honours the key.
//! - **Retries back off** (1, 2, 4 ... minutes, at most an hour apart) for [`MAX_ATTEMPTS`];
//!   then the mail is given up and logged: a verification mail days late helps nobody, and
//!   the fan can register again.
//! - The request body is `{from, to: [..], subject, text}` with `Authorization: Bearer <key>`,
//!   the shape of common transactional mail APIs (Resend's among them).

use serde::Serialize;

/// Sends after which a mail is given up.
pub const MAX_ATTEMPTS: u32 = 8;

/// How long a claimed mail is left to its sender before another run may take it over.
pub const CLAIM_MS: i64 = 60_000;

const MINUTE_MS: i64 = 60_000;

/// One mail as the outbox holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    pub id: String,
    pub to: String,
    pub subject: String,
    pub body: String,
}

#[derive(Serialize)]
struct MailApiBody<'a> {
    from: &'a str,
    to: [&'a str; 1],
    subject: &'a str,
    text: &'a str,
}

/// The HTTP request a mail becomes: headers and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailApiRequest {
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

pub fn mail_api_request(mail: &OutgoingMail, from: &str, api_key: &str) -> MailApiRequest {
    let body = MailApiBody {
        from,
        to: [&mail.to],
        subject: &mail.subject,
        text: &mail.body,
    };
    MailApiRequest {
        headers: vec![
            ("Content-Type", "application/json".to_string()),
            ("Authorization", format!("Bearer {api_key}")),
            ("Idempotency-Key", mail.id.clone()),
        ],
        // Plain strings: serialising cannot fail.
        body: serde_json::to_string(&body).unwrap_or_default(),
    }
}

/// What the mail API's answer means for the mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted (2xx): the mail is sent.
    Sent,
    /// Worth trying again: no answer, 5xx, 408 or 429.
    Retry,
    /// Refused for good (another 4xx: a bad address, a bad key): retrying sends nothing more.
    Rejected,
}

/// `None`: no answer at all (network error, timeout).
pub fn classify(status: Option<u16>) -> Delivery {
    match status {
        Some(200..=299) => Delivery::Sent,
        Some(408 | 429) | Some(500..) | None => Delivery::Retry,
        Some(_) => Delivery::Rejected,
    }
}

/// When a mail that failed its `attempts`-th send is tried next, or `None` to give it up.
pub fn next_attempt_at(attempts: u32, now_ms: i64) -> Option<i64> {
    if attempts >= MAX_ATTEMPTS {
        return None;
    }
    let minutes = 1_i64 << attempts.saturating_sub(1).min(6);
    Some(now_ms + minutes.min(60) * MINUTE_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> OutgoingMail {
        OutgoingMail {
            id: "mail-1".into(),
            to: "fan@example.com".into(),
            subject: "Confirm your email".into(),
            body: "Your token: abc".into(),
        }
    }

    #[test]
    fn a_mail_becomes_one_authenticated_idempotent_request() {
        let req = mail_api_request(&mail(), "TicketBottle <no-reply@tickets.example>", "key-1");
        assert_eq!(
            req.body,
            r#"{"from":"TicketBottle <no-reply@tickets.example>","to":["fan@example.com"],"subject":"Confirm your email","text":"Your token: abc"}"#
        );
        assert!(req
            .headers
            .contains(&("Authorization", "Bearer key-1".to_string())));
        assert!(req
            .headers
            .contains(&("Idempotency-Key", "mail-1".to_string())));
    }

    #[test]
    fn only_a_2xx_is_sent_and_only_passing_trouble_is_retried() {
        assert_eq!(classify(Some(200)), Delivery::Sent);
        assert_eq!(classify(Some(202)), Delivery::Sent);
        for status in [None, Some(500), Some(503), Some(429), Some(408)] {
            assert_eq!(classify(status), Delivery::Retry, "{status:?}");
        }
        for status in [Some(400), Some(401), Some(403), Some(422), Some(302)] {
            assert_eq!(classify(status), Delivery::Rejected, "{status:?}");
        }
    }

    #[test]
    fn retries_back_off_to_an_hour_and_stop_after_the_last_attempt() {
        let now = 1_000_000;
        let waits: Vec<i64> = (1..MAX_ATTEMPTS)
            .filter_map(|a| next_attempt_at(a, now))
            .map(|at| (at - now) / MINUTE_MS)
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60]);
        assert_eq!(next_attempt_at(MAX_ATTEMPTS, now), None);
    }
}
