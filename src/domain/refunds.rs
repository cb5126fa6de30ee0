//! Refunds: who may ask for one, the state machine from request to money back, retries with
//! back-off, the idempotency keys we show providers, and what a provider's answer to a status
//! query means for a payment still waiting for its webhook (reconciliation).
//!
//! A refund is its own record, never a flag on the order: it has a life of its own (a provider
//! can take minutes or days, refuse, or have no refund API at all) and every step must be
//! visible. The states:
//!
//! ```text
//! REQUESTED ──attempt──▶ PROCESSING ──refunded──▶ REFUNDED
//!     ▲                     │  │  └──refused / out of retries──▶ FAILED ──admin──▶ REFUNDED
//!     └──provider error─────┘  └──no refund API / processing too long──▶ MANUAL_REQUIRED ──admin──▶ REFUNDED
//! ```
//!
//! Decisions worth knowing:
//! - One refund per order covers the whole amount; a second request returns the refund that is
//!   not FAILED (idempotent), and a FAILED one may be requested again.
//! - A crash between a provider's answer and our write is safe because every request carries a
//!   key derived from the refund id: ZaloPay deduplicates `m_refund_id`; VNPay refuses a second
//!   refund of one transaction (code 94), which we read as "already refunded".
//! - A REFUNDED order gives back more than money: its tickets are voided at the event's door
//!   (always: a refunded ticket must let nobody in), and its units go back on sale only while
//!   the event has not started ([`tickets_go_back_on_sale`]); after that nobody can use them.
//! - Time is passed in; nothing here performs I/O.

use std::fmt;

use super::access::{Actor, EventRole};
use super::ids::UserId;

/// How often a provider error is retried before the refund is FAILED.
pub const MAX_ATTEMPTS: u32 = 5;
/// How often a "still processing" answer is checked again before an admin is asked to look.
pub const MAX_STATUS_CHECKS: u32 = 10;
/// Delay before the first retry; each next one waits four times longer, up to [`MAX_BACKOFF_SECONDS`].
pub const FIRST_BACKOFF_SECONDS: u32 = 2;
pub const MAX_BACKOFF_SECONDS: u32 = 600;
/// How long to wait before asking again about a refund the provider is still processing:
/// soon the first time (most finish within seconds), then every [`STATUS_CHECK_SECONDS`].
pub const FIRST_STATUS_CHECK_SECONDS: u32 = 5;
pub const STATUS_CHECK_SECONDS: u32 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundStatus {
    Requested,
    Processing,
    Refunded,
    Failed,
    ManualRequired,
}

impl RefundStatus {
    pub const ALL: [RefundStatus; 5] = [
        RefundStatus::Requested,
        RefundStatus::Processing,
        RefundStatus::Refunded,
        RefundStatus::Failed,
        RefundStatus::ManualRequired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Requested => "REQUESTED",
            RefundStatus::Processing => "PROCESSING",
            RefundStatus::Refunded => "REFUNDED",
            RefundStatus::Failed => "FAILED",
            RefundStatus::ManualRequired => "MANUAL_REQUIRED",
        }
    }

    pub fn parse(raw: &str) -> Option<RefundStatus> {
        RefundStatus::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// Whether the machine may still move it without a person.
    pub fn is_automatic(self) -> bool {
        matches!(self, RefundStatus::Requested | RefundStatus::Processing)
    }
}

impl fmt::Display for RefundStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refund as the state machine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub id: String,
    pub status: RefundStatus,
    /// How its provider gives money back (`payments::Provider::refund_route`).
    pub route: RefundRoute,
    /// Provider calls made so far that ended in an error (the retry budget).
    pub attempts: u32,
    /// "Still processing" answers so far (the patience budget).
    pub status_checks: u32,
    /// When the next automatic step is due (unix ms); `None` when nothing is scheduled.
    pub next_attempt_at: Option<i64>,
    /// The provider's id for the refund once it has one (ZaloPay `refund_id`, VNPay transaction no).
    pub provider_refund_id: Option<String>,
    pub last_error: Option<String>,
    pub updated_at: i64,
}

/// Why a refund request or step is refused; each maps to one API code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundRefusal {
    /// The buyer asked after `refundableUntil` (or the event allows no buyer refunds).
    #[error("refunds of this order are no longer open to its buyer")]
    NotAllowed,
    /// Not someone who may refund this order at all.
    #[error("only the event's admins, platform admins and the buyer may refund an order")]
    Forbidden,
    /// The order (or refund) is not in a state this step applies to.
    #[error("{0}")]
    InvalidStatus(String),
}

impl RefundRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            RefundRefusal::NotAllowed => "REFUND_NOT_ALLOWED",
            RefundRefusal::Forbidden => "FORBIDDEN",
            RefundRefusal::InvalidStatus(_) => "INVALID_STATUS_TRANSITION",
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            RefundRefusal::Forbidden => 403,
            RefundRefusal::NotAllowed | RefundRefusal::InvalidStatus(_) => 409,
        }
    }
}

/// May `actor` (holding `role` on the order's event) refund an order owned by `owner`, now?
/// Event admins and platform admins at any time; the buyer while `refundable_until` (unix ms)
/// has not passed, never when the event sets no such date.
pub fn may_request(
    actor: &Actor,
    role: Option<EventRole>,
    owner: &UserId,
    refundable_until: Option<i64>,
    now_ms: i64,
) -> Result<(), RefundRefusal> {
    let Actor::User { id, platform_admin } = actor else {
        return Err(RefundRefusal::Forbidden);
    };
    if *platform_admin || role == Some(EventRole::Admin) {
        return Ok(());
    }
    if id == owner {
        return match refundable_until {
            Some(until) if now_ms <= until => Ok(()),
            _ => Err(RefundRefusal::NotAllowed),
        };
    }
    Err(RefundRefusal::Forbidden)
}

/// Where the order stands for a refund, from its stored status and refund flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderStanding<'a> {
    pub status: &'a str,
    /// `orders.refund_status`: `REFUND_REQUIRED` (money arrived, tickets could not be delivered)
    /// or `REFUNDED`.
    pub refund_status: Option<&'a str>,
}

/// An order may be refunded when it is COMPLETED, or when money arrived that it could not use
/// (flagged `REFUND_REQUIRED`, whatever its status). Not twice: a refunded order is refused.
pub fn check_refundable(order: OrderStanding<'_>) -> Result<(), RefundRefusal> {
    match (order.status, order.refund_status) {
        (_, Some("REFUNDED")) => Err(RefundRefusal::InvalidStatus(
            "This order is already refunded.".into(),
        )),
        (_, Some("REFUND_REQUIRED")) | ("COMPLETED", _) => Ok(()),
        (status, _) => Err(RefundRefusal::InvalidStatus(format!(
            "Only a COMPLETED order can be refunded; this one is {status}."
        ))),
    }
}

/// Whether a refunded order's tickets return to sale: only before the event starts (from its
/// start on, a seat given back cannot be sold to anyone who could still use it).
pub fn tickets_go_back_on_sale(event_starts_at_ms: i64, now_ms: i64) -> bool {
    now_ms < event_starts_at_ms
}

/// How a provider gives money back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundRoute {
    /// Refunded at once (the sandbox moves no money).
    Immediate,
    /// No refund API (PayOS): a platform admin pays back by hand and closes the refund.
    Manual,
    /// A signed call to the provider's refund API.
    ProviderApi,
}

/// A refund created now for this order, in REQUESTED.
pub fn new_refund(id: String, route: RefundRoute, now_ms: i64) -> Refund {
    Refund {
        id,
        status: RefundStatus::Requested,
        route,
        attempts: 0,
        status_checks: 0,
        next_attempt_at: Some(now_ms),
        provider_refund_id: None,
        last_error: None,
        updated_at: now_ms,
    }
}

/// What the processing step should do with a refund it was handed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Nothing: already decided, or a person has to act.
    Nothing,
    /// Not due yet (a duplicate or early message): look again in this many seconds.
    NotYet { in_seconds: u32 },
    /// Mark it PROCESSING and act on the route (the refund after the mark is given).
    Act { refund: Refund, route: RefundRoute },
}

/// The first half of a processing step: whether to act now. Duplicate deliveries of a queue
/// message find the refund not due, or already past, and do nothing.
pub fn begin(refund: &Refund, now_ms: i64) -> Step {
    if !refund.status.is_automatic() {
        return Step::Nothing;
    }
    if let Some(due) = refund.next_attempt_at {
        if due > now_ms {
            let seconds = (due - now_ms + 999) / 1000;
            return Step::NotYet {
                in_seconds: u32::try_from(seconds).unwrap_or(u32::MAX),
            };
        }
    } else if refund.status == RefundStatus::Processing {
        // Processing without a due time: another worker holds it (set in `act`'s mark).
        return Step::Nothing;
    }
    let mut marked = refund.clone();
    marked.status = RefundStatus::Processing;
    marked.next_attempt_at = None;
    marked.updated_at = now_ms;
    Step::Act {
        refund: marked,
        route: refund.route,
    }
}

/// What the provider (or the route) said about our refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderAnswer {
    /// The money is on its way back; `provider_refund_id` names it at the provider.
    Refunded { provider_refund_id: Option<String> },
    /// Accepted, not finished: ask again later.
    Processing { provider_refund_id: Option<String> },
    /// A definite no (transaction unknown, not refundable): retrying cannot help.
    Rejected { code: String, message: String },
    /// No usable answer (timeout, 5xx, unreadable, "unknown error"): worth retrying.
    Unavailable { detail: String },
    /// This provider cannot refund through an API.
    ManualOnly,
}

/// What the shell does after recording the refund [`after_answer`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FollowUp {
    /// Finished (REFUNDED), or waiting for a person (FAILED, MANUAL_REQUIRED).
    Settled,
    /// Run the step again after this many seconds.
    RunAgainIn { seconds: u32 },
}

/// Retry delay after the `attempt`-th error (1-based): 2 s, 8 s, 32 s, 128 s, 512 s, then capped.
pub fn backoff_seconds(attempt: u32) -> u32 {
    let exponent = attempt.saturating_sub(1).min(8);
    FIRST_BACKOFF_SECONDS
        .saturating_mul(4u32.saturating_pow(exponent))
        .min(MAX_BACKOFF_SECONDS)
}

/// The second half of a processing step: the refund after the provider's answer, and whether
/// to run again. `refund` is the one [`begin`] returned.
pub fn after_answer(refund: &Refund, answer: ProviderAnswer, now_ms: i64) -> (Refund, FollowUp) {
    let mut next = refund.clone();
    next.updated_at = now_ms;
    let again = |next: &mut Refund, seconds: u32| {
        next.status = RefundStatus::Processing;
        next.next_attempt_at = Some(now_ms + i64::from(seconds) * 1000);
        FollowUp::RunAgainIn { seconds }
    };
    let follow = match answer {
        ProviderAnswer::Refunded { provider_refund_id } => {
            next.status = RefundStatus::Refunded;
            next.next_attempt_at = None;
            next.provider_refund_id = provider_refund_id.or(next.provider_refund_id);
            next.last_error = None;
            FollowUp::Settled
        }
        ProviderAnswer::ManualOnly => {
            next.status = RefundStatus::ManualRequired;
            next.next_attempt_at = None;
            next.last_error = Some(
                "the provider has no refund API: pay the buyer back, then complete this refund"
                    .into(),
            );
            FollowUp::Settled
        }
        ProviderAnswer::Processing { provider_refund_id } => {
            next.provider_refund_id = provider_refund_id.or(next.provider_refund_id);
            next.status_checks = refund.status_checks.saturating_add(1);
            if next.status_checks >= MAX_STATUS_CHECKS {
                next.status = RefundStatus::ManualRequired;
                next.next_attempt_at = None;
                next.last_error = Some(format!(
                    "still processing after {} checks: confirm with the provider",
                    next.status_checks
                ));
                FollowUp::Settled
            } else if next.status_checks == 1 {
                again(&mut next, FIRST_STATUS_CHECK_SECONDS)
            } else {
                again(&mut next, STATUS_CHECK_SECONDS)
            }
        }
        ProviderAnswer::Rejected { code, message } => {
            next.status = RefundStatus::Failed;
            next.next_attempt_at = None;
            next.last_error = Some(format!("refused by the provider ({code}): {message}"));
            FollowUp::Settled
        }
        ProviderAnswer::Unavailable { detail } => {
            next.attempts = refund.attempts.saturating_add(1);
            next.last_error = Some(detail);
            if next.attempts >= MAX_ATTEMPTS {
                next.status = RefundStatus::Failed;
                next.next_attempt_at = None;
                FollowUp::Settled
            } else {
                let delay = backoff_seconds(next.attempts);
                again(&mut next, delay)
            }
        }
    };
    (next, follow)
}

/// A platform admin closes a refund they paid back by hand (PayOS) or after a provider gave up.
pub fn complete_by_admin(refund: &Refund, now_ms: i64) -> Result<Refund, RefundRefusal> {
    match refund.status {
        RefundStatus::ManualRequired | RefundStatus::Failed => {
            let mut done = refund.clone();
            done.status = RefundStatus::Refunded;
            done.next_attempt_at = None;
            done.updated_at = now_ms;
            Ok(done)
        }
        other => Err(RefundRefusal::InvalidStatus(format!(
            "Only a MANUAL_REQUIRED or FAILED refund is completed by hand; this one is {other}."
        ))),
    }
}

/// The 32 hex digits of a refund's UUID: the base of every key we show a provider, so a
/// repeated request after a crash is recognisably the same refund.
pub fn provider_key(refund_id: &str) -> String {
    refund_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_lowercase())
        .take(32)
        .collect()
}

/// VNPay's `vnp_RequestId` (at most 32 characters, unique per request): the refund's key with
/// the attempt number in its last four digits. VNPay recognises the second refund of one
/// transaction itself (answer 94), so the id only has to be unique.
pub fn vnpay_request_id(refund_id: &str, attempt: u32) -> String {
    let key = provider_key(refund_id);
    let head: String = key.chars().take(28).collect();
    format!("{head}{:04}", attempt % 10_000)
}

// ---------------------------------------------------------------------------------------------
// Reconciliation: a payment still PENDING whose notification never came.

/// What a provider's status query says about a payment, in provider-neutral terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentQueryAnswer {
    /// Paid: the same transaction id the provider's webhook would carry.
    Paid {
        amount: i64,
        provider_txn_id: String,
    },
    /// Open: the buyer may still pay.
    Pending,
    /// Closed without money (cancelled, expired, declined).
    Failed { code: String, reason: String },
    /// The provider does not know it (the buyer never opened the payment page).
    Unknown,
}

/// What to do with an answer for a payment created for `expected_amount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciliation {
    /// Apply as the webhook would have: money arrived.
    ApplyPaid {
        amount: i64,
        provider_txn_id: String,
    },
    /// Apply as a failure webhook would have.
    ApplyFailed { code: String, reason: String },
    /// Nothing to apply yet; the hold's expiry closes the order if it never gets paid.
    Leave,
    /// Paid, but not what we asked for: never applied automatically, an operator looks.
    AmountMismatch { paid: i64 },
}

pub fn reconcile(answer: PaymentQueryAnswer, expected_amount: i64) -> Reconciliation {
    match answer {
        PaymentQueryAnswer::Paid {
            amount,
            provider_txn_id,
        } if amount == expected_amount => Reconciliation::ApplyPaid {
            amount,
            provider_txn_id,
        },
        PaymentQueryAnswer::Paid { amount, .. } => Reconciliation::AmountMismatch { paid: amount },
        PaymentQueryAnswer::Failed { code, reason } => Reconciliation::ApplyFailed { code, reason },
        PaymentQueryAnswer::Pending | PaymentQueryAnswer::Unknown => Reconciliation::Leave,
    }
}

/// Payments are queried once they are this old without a result, and no longer after a day
/// (the provider has long expired them; the sweep has closed their orders).
pub const RECONCILE_MAX_AGE_MS: i64 = 24 * 3600 * 1000;

/// The creation-time window `[from, to]` of payments due for a status query now.
pub fn reconcile_window(now_ms: i64, after_ms: i64) -> (i64, i64) {
    (now_ms - RECONCILE_MAX_AGE_MS, now_ms - after_ms.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_225_600_000;
    const RID: &str = "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";

    fn user(id: &str, platform_admin: bool) -> Actor {
        Actor::User {
            id: UserId::new(id),
            platform_admin,
        }
    }

    fn requested(route: RefundRoute) -> Refund {
        new_refund(RID.into(), route, NOW)
    }

    fn acted(refund: &Refund, now: i64) -> Refund {
        match begin(refund, now) {
            Step::Act { refund, .. } => refund,
            other => panic!("expected to act, got {other:?}"),
        }
    }

    #[test]
    fn refunded_tickets_go_back_on_sale_only_before_the_event_starts() {
        let starts = NOW + 3_600_000;
        assert!(tickets_go_back_on_sale(starts, NOW));
        assert!(tickets_go_back_on_sale(starts, starts - 1));
        assert!(!tickets_go_back_on_sale(starts, starts));
        assert!(!tickets_go_back_on_sale(starts, starts + 1));
    }

    #[test]
    fn event_admins_and_platform_admins_may_refund_at_any_time() {
        let owner = UserId::new("buyer");
        let long_ago = Some(NOW - 86_400_000);
        assert_eq!(
            may_request(
                &user("org", false),
                Some(EventRole::Admin),
                &owner,
                long_ago,
                NOW
            ),
            Ok(())
        );
        assert_eq!(
            may_request(&user("ops", true), None, &owner, None, NOW),
            Ok(())
        );
    }

    #[test]
    fn the_buyer_may_refund_only_until_refundable_until() {
        let owner = UserId::new("buyer");
        let me = user("buyer", false);
        assert_eq!(may_request(&me, None, &owner, Some(NOW), NOW), Ok(()));
        assert_eq!(
            may_request(&me, None, &owner, Some(NOW - 1), NOW),
            Err(RefundRefusal::NotAllowed)
        );
        assert_eq!(
            may_request(&me, None, &owner, None, NOW),
            Err(RefundRefusal::NotAllowed),
            "no refundableUntil means no buyer refunds"
        );
    }

    #[test]
    fn editors_viewers_and_strangers_may_not_refund() {
        let owner = UserId::new("buyer");
        for role in [Some(EventRole::Editor), Some(EventRole::Viewer), None] {
            assert_eq!(
                may_request(&user("someone", false), role, &owner, Some(NOW), NOW),
                Err(RefundRefusal::Forbidden),
                "{role:?}"
            );
        }
        assert_eq!(
            may_request(&Actor::Anonymous, None, &owner, Some(NOW), NOW),
            Err(RefundRefusal::Forbidden)
        );
    }

    #[test]
    fn only_completed_or_refund_owing_orders_are_refundable_and_only_once() {
        let standing = |status, refund_status| OrderStanding {
            status,
            refund_status,
        };
        assert_eq!(check_refundable(standing("COMPLETED", None)), Ok(()));
        assert_eq!(
            check_refundable(standing("CANCELLED", Some("REFUND_REQUIRED"))),
            Ok(())
        );
        for status in ["PENDING", "FAILED", "CANCELLED"] {
            let refusal = check_refundable(standing(status, None)).unwrap_err();
            assert_eq!(refusal.code(), "INVALID_STATUS_TRANSITION", "{status}");
            assert_eq!(refusal.http_status(), 409);
        }
        assert!(check_refundable(standing("COMPLETED", Some("REFUNDED"))).is_err());
    }

    #[test]
    fn a_refunded_answer_ends_the_refund() {
        let r = acted(&requested(RefundRoute::ProviderApi), NOW);
        assert_eq!(r.status, RefundStatus::Processing);
        let (done, follow) = after_answer(
            &r,
            ProviderAnswer::Refunded {
                provider_refund_id: Some("zp-1".into()),
            },
            NOW + 5,
        );
        assert_eq!(done.status, RefundStatus::Refunded);
        assert_eq!(done.provider_refund_id.as_deref(), Some("zp-1"));
        assert_eq!(follow, FollowUp::Settled);
        assert_eq!(begin(&done, NOW + 10), Step::Nothing);
    }

    #[test]
    fn provider_errors_are_retried_with_growing_delays_then_fail() {
        let mut r = requested(RefundRoute::ProviderApi);
        let mut now = NOW;
        let mut delays = Vec::new();
        loop {
            let marked = acted(&r, now);
            let (next, follow) = after_answer(
                &marked,
                ProviderAnswer::Unavailable {
                    detail: "HTTP 503".into(),
                },
                now,
            );
            r = next;
            match follow {
                FollowUp::RunAgainIn { seconds } => {
                    delays.push(seconds);
                    // Not due a moment too early: a duplicate message finds nothing to do.
                    assert!(matches!(begin(&r, now + 1), Step::NotYet { .. }));
                    now += i64::from(seconds) * 1000;
                }
                FollowUp::Settled => break,
            }
        }
        assert_eq!(delays, vec![2, 8, 32, 128]);
        assert_eq!(r.status, RefundStatus::Failed);
        assert_eq!(r.attempts, MAX_ATTEMPTS);
        assert_eq!(r.last_error.as_deref(), Some("HTTP 503"));
    }

    #[test]
    fn an_error_then_success_refunds_on_the_retry() {
        let marked = acted(&requested(RefundRoute::ProviderApi), NOW);
        let (waiting, follow) = after_answer(
            &marked,
            ProviderAnswer::Unavailable {
                detail: "timeout".into(),
            },
            NOW,
        );
        assert_eq!(follow, FollowUp::RunAgainIn { seconds: 2 });
        assert_eq!(waiting.status, RefundStatus::Processing);
        let again = acted(&waiting, NOW + 2_000);
        let (done, _) = after_answer(
            &again,
            ProviderAnswer::Refunded {
                provider_refund_id: None,
            },
            NOW + 2_100,
        );
        assert_eq!(done.status, RefundStatus::Refunded);
        assert_eq!(done.attempts, 1);
    }

    #[test]
    fn a_refusal_fails_at_once_and_an_admin_may_close_it() {
        let marked = acted(&requested(RefundRoute::ProviderApi), NOW);
        let (failed, follow) = after_answer(
            &marked,
            ProviderAnswer::Rejected {
                code: "-101".into(),
                message: "transaction not found".into(),
            },
            NOW,
        );
        assert_eq!(follow, FollowUp::Settled);
        assert_eq!(failed.status, RefundStatus::Failed);
        assert!(failed.last_error.as_deref().unwrap_or("").contains("-101"));
        assert_eq!(
            complete_by_admin(&failed, NOW + 1).map(|r| r.status),
            Ok(RefundStatus::Refunded)
        );
    }

    #[test]
    fn payos_refunds_wait_for_an_admin() {
        let step = begin(&requested(RefundRoute::Manual), NOW);
        let Step::Act { refund, route } = step else {
            panic!("{step:?}")
        };
        assert_eq!(route, RefundRoute::Manual);
        let (manual, follow) = after_answer(&refund, ProviderAnswer::ManualOnly, NOW);
        assert_eq!(manual.status, RefundStatus::ManualRequired);
        assert_eq!(follow, FollowUp::Settled);
        assert_eq!(begin(&manual, NOW + 60_000), Step::Nothing);
        let done = complete_by_admin(&manual, NOW + 1).expect("completes");
        assert_eq!(done.status, RefundStatus::Refunded);
        assert!(complete_by_admin(&done, NOW + 2).is_err(), "not twice");
        assert!(complete_by_admin(&requested(RefundRoute::Manual), NOW).is_err());
    }

    #[test]
    fn processing_too_long_asks_a_person_instead_of_failing() {
        let mut r = requested(RefundRoute::ProviderApi);
        let mut now = NOW;
        for check in 1..=MAX_STATUS_CHECKS {
            let marked = acted(&r, now);
            let (next, follow) = after_answer(
                &marked,
                ProviderAnswer::Processing {
                    provider_refund_id: Some("zp-9".into()),
                },
                now,
            );
            r = next;
            if check < MAX_STATUS_CHECKS {
                let wait = if check == 1 {
                    FIRST_STATUS_CHECK_SECONDS
                } else {
                    STATUS_CHECK_SECONDS
                };
                assert_eq!(follow, FollowUp::RunAgainIn { seconds: wait });
                now += i64::from(wait) * 1000;
            } else {
                assert_eq!(follow, FollowUp::Settled);
            }
        }
        assert_eq!(r.status, RefundStatus::ManualRequired);
        assert_eq!(r.attempts, 0, "processing is not an error");
        assert_eq!(r.provider_refund_id.as_deref(), Some("zp-9"));
    }

    #[test]
    fn a_processing_refund_without_a_due_time_is_held_by_another_step() {
        let marked = acted(&requested(RefundRoute::ProviderApi), NOW);
        assert_eq!(begin(&marked, NOW + 60_000), Step::Nothing);
    }

    #[test]
    fn backoff_grows_fourfold_and_is_capped() {
        assert_eq!(backoff_seconds(1), 2);
        assert_eq!(backoff_seconds(2), 8);
        assert_eq!(backoff_seconds(5), 512);
        assert_eq!(backoff_seconds(6), MAX_BACKOFF_SECONDS);
        assert_eq!(backoff_seconds(u32::MAX), MAX_BACKOFF_SECONDS);
    }

    #[test]
    fn provider_keys_come_from_the_refund_id() {
        assert_eq!(provider_key(RID), "0f8e7d6c5b4a439281706f5e4d3c2b1a");
        assert_eq!(
            provider_key("0F8E7D6C-5B4A-4392-8170-6F5E4D3C2B1A"),
            provider_key(RID)
        );
        let first = vnpay_request_id(RID, 1);
        assert_eq!(first, "0f8e7d6c5b4a439281706f5e4d3c0001");
        assert_eq!(first.len(), 32);
        assert_ne!(first, vnpay_request_id(RID, 2));
    }

    #[test]
    fn reconciliation_applies_paid_and_failed_answers_and_leaves_open_ones() {
        assert_eq!(
            reconcile(
                PaymentQueryAnswer::Paid {
                    amount: 150_000,
                    provider_txn_id: "14226112".into()
                },
                150_000
            ),
            Reconciliation::ApplyPaid {
                amount: 150_000,
                provider_txn_id: "14226112".into()
            }
        );
        assert_eq!(
            reconcile(
                PaymentQueryAnswer::Paid {
                    amount: 1,
                    provider_txn_id: "x".into()
                },
                150_000
            ),
            Reconciliation::AmountMismatch { paid: 1 }
        );
        assert_eq!(
            reconcile(
                PaymentQueryAnswer::Failed {
                    code: "EXPIRED".into(),
                    reason: "link expired".into()
                },
                150_000
            ),
            Reconciliation::ApplyFailed {
                code: "EXPIRED".into(),
                reason: "link expired".into()
            }
        );
        assert_eq!(
            reconcile(PaymentQueryAnswer::Pending, 150_000),
            Reconciliation::Leave
        );
        assert_eq!(
            reconcile(PaymentQueryAnswer::Unknown, 150_000),
            Reconciliation::Leave
        );
    }

    #[test]
    fn the_reconcile_window_starts_after_the_grace_period_and_ends_after_a_day() {
        let (from, to) = reconcile_window(NOW, 300_000);
        assert_eq!(to, NOW - 300_000);
        assert_eq!(from, NOW - RECONCILE_MAX_AGE_MS);
        assert_eq!(reconcile_window(NOW, -5).1, NOW);
    }

    #[test]
    fn statuses_round_trip() {
        for s in RefundStatus::ALL {
            assert_eq!(RefundStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(RefundStatus::parse("refunded"), None);
    }
}
