//! The order saga's decisions: what each message (payment result, hold expiry, owner cancel)
//! does to an order in each status, and which compensations undo a failed checkout. The shell
//! performs the steps; this module only decides, so every case is tested on the host.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Pending,
    Completed,
    Cancelled,
    Failed,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Completed => "COMPLETED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Failed => "FAILED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "PENDING" => Some(OrderStatus::Pending),
            "COMPLETED" => Some(OrderStatus::Completed),
            "CANCELLED" => Some(OrderStatus::Cancelled),
            "FAILED" => Some(OrderStatus::Failed),
            _ => None,
        }
    }
}

/// What reaches the saga about an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SagaInput {
    /// The provider says the money arrived (verified, amount checked).
    PaymentSucceeded,
    /// The provider says the payment failed or was declined.
    PaymentFailed,
    /// The event's object expired the hold (the buyer did not pay in time).
    HoldExpired,
    /// The buyer cancelled the order before paying.
    CancelledByOwner,
    /// The order is free (an `isFree` event): it completes as soon as it is written, the way
    /// a paid one does when its money arrives, but nothing brings a closed one back.
    NothingToPay,
}

impl SagaInput {
    /// The name log lines carry (`input`).
    pub fn as_str(self) -> &'static str {
        match self {
            SagaInput::PaymentSucceeded => "PAYMENT_SUCCEEDED",
            SagaInput::PaymentFailed => "PAYMENT_FAILED",
            SagaInput::HoldExpired => "HOLD_EXPIRED",
            SagaInput::CancelledByOwner => "CANCELLED_BY_OWNER",
            SagaInput::NothingToPay => "NOTHING_TO_PAY",
        }
    }

    /// The input a payments-queue message carries, by its `type`; `None` for kinds that are
    /// not saga inputs (the queue may carry more kinds later).
    pub fn from_message_type(kind: &str) -> Option<Self> {
        match kind {
            "PAYMENT_COMPLETED" => Some(SagaInput::PaymentSucceeded),
            "PAYMENT_FAILED" => Some(SagaInput::PaymentFailed),
            "HOLD_EXPIRED" => Some(SagaInput::HoldExpired),
            _ => None,
        }
    }
}

/// The first step the shell takes for an input, before it knows the object's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SagaStep {
    /// Ask the event object to turn the hold into a sale (it re-reserves an expired hold if
    /// stock allows), then apply `after_confirm`.
    ConfirmHold,
    /// Release the hold, then move the order to `status`, free the checkout slot and announce.
    ReleaseAndClose {
        status: OrderStatus,
        checkout: CheckoutOutcome,
    },
    /// Move the order to `status` and free the checkout slot; the hold is already gone.
    Close {
        status: OrderStatus,
        checkout: CheckoutOutcome,
    },
    /// Already decided: a duplicate or late message with no effect.
    Ignore(IgnoreReason),
    /// Refused to the caller (only for owner cancel).
    Refuse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    AlreadyInThisState,
    AlreadyCompleted,
    AlreadyClosed,
}

pub use super::waitroom::CheckoutOutcome;

/// The domain event announcing how a checkout ended (the seed's CHECKOUT_* topics).
pub fn checkout_event_type(outcome: CheckoutOutcome) -> &'static str {
    match outcome {
        CheckoutOutcome::Completed => "CHECKOUT_COMPLETED",
        CheckoutOutcome::Failed | CheckoutOutcome::Cancelled => "CHECKOUT_FAILED",
        CheckoutOutcome::Expired => "CHECKOUT_EXPIRED",
    }
}

/// What becomes of the buyer's waitroom checkout when the saga closes their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutAfterClose {
    /// The checkout ends with this outcome (announced as its `CHECKOUT_*` event): the slot
    /// goes to the next fan.
    End(CheckoutOutcome),
    /// The order is unbound from the checkout, which stays the buyer's (ADMITTED, same
    /// deadline) for another order with the same token; nothing is announced for it.
    Reopen,
}

/// An expired hold ends the checkout only when the buyer had been shown a payment page: then
/// the delay was theirs (they left the page, or paid too late). A hold that ran out before the
/// provider ever gave a payment link (the create call hung or was cut off by a restart and
/// waited for its retry) was the platform's delay, so the checkout is reopened, as after a
/// failed create ([`CheckoutFailure::BeforePaymentPage`]). Every other close ends it.
pub fn checkout_after_close(
    outcome: CheckoutOutcome,
    payment_page_shown: bool,
) -> CheckoutAfterClose {
    match outcome {
        CheckoutOutcome::Expired if !payment_page_shown => CheckoutAfterClose::Reopen,
        outcome => CheckoutAfterClose::End(outcome),
    }
}

pub fn decide(status: OrderStatus, input: SagaInput) -> SagaStep {
    use OrderStatus::*;
    use SagaInput::*;
    match (status, input) {
        (Pending, PaymentSucceeded) => SagaStep::ConfirmHold,
        // Money that arrives after the order was closed is never dropped: the object
        // re-reserves if stock allows, otherwise the order is marked for refund.
        (Cancelled | Failed, PaymentSucceeded) => SagaStep::ConfirmHold,
        (Completed, PaymentSucceeded) => SagaStep::Ignore(IgnoreReason::AlreadyInThisState),

        (Pending, PaymentFailed) => SagaStep::ReleaseAndClose {
            status: Failed,
            checkout: CheckoutOutcome::Failed,
        },
        // A failure notice after the sale completed (a provider retry of an old attempt)
        // must not undo a paid order.
        (Completed, PaymentFailed) => SagaStep::Ignore(IgnoreReason::AlreadyCompleted),
        (Cancelled | Failed, PaymentFailed) => SagaStep::Ignore(IgnoreReason::AlreadyClosed),

        (Pending, HoldExpired) => SagaStep::Close {
            status: Cancelled,
            checkout: CheckoutOutcome::Expired,
        },
        (Completed, HoldExpired) => SagaStep::Ignore(IgnoreReason::AlreadyCompleted),
        (Cancelled | Failed, HoldExpired) => SagaStep::Ignore(IgnoreReason::AlreadyClosed),

        (Pending, CancelledByOwner) => SagaStep::ReleaseAndClose {
            status: Cancelled,
            checkout: CheckoutOutcome::Cancelled,
        },
        (Cancelled, CancelledByOwner) => SagaStep::Ignore(IgnoreReason::AlreadyInThisState),
        (Completed | Failed, CancelledByOwner) => SagaStep::Refuse,

        (Pending, NothingToPay) => SagaStep::ConfirmHold,
        (Completed, NothingToPay) => SagaStep::Ignore(IgnoreReason::AlreadyInThisState),
        // A free order closed meanwhile (its checkout abandoned and swept) stays closed: no
        // money is owed to anyone, so nothing justifies taking stock again.
        (Cancelled | Failed, NothingToPay) => SagaStep::Ignore(IgnoreReason::AlreadyClosed),
    }
}

/// What the event object answered to a confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmAnswer {
    Confirmed,
    NoStock,
    EventCancelled,
}

/// The order's end state after a confirm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterConfirm {
    pub status: OrderStatus,
    pub refund_reason: Option<&'static str>,
    pub checkout: CheckoutOutcome,
}

impl AfterConfirm {
    /// The same end for an order that paid nothing (`NothingToPay`, a free order): closed for
    /// want of stock or because the event was cancelled, it is owed no refund, so none is
    /// flagged (operators and refunds would otherwise chase money that never came).
    pub fn nothing_paid(self) -> Self {
        AfterConfirm {
            refund_reason: None,
            ..self
        }
    }
}

pub fn after_confirm(answer: ConfirmAnswer, status_before: OrderStatus) -> AfterConfirm {
    match answer {
        ConfirmAnswer::Confirmed => AfterConfirm {
            status: OrderStatus::Completed,
            refund_reason: None,
            checkout: CheckoutOutcome::Completed,
        },
        // Paid but nothing to deliver: keep the closed status (or close a pending one) and
        // flag the refund so an operator and the buyer can see it.
        ConfirmAnswer::NoStock | ConfirmAnswer::EventCancelled => AfterConfirm {
            status: if status_before == OrderStatus::Pending {
                OrderStatus::Cancelled
            } else {
                status_before
            },
            refund_reason: Some(if answer == ConfirmAnswer::NoStock {
                "PAID_BUT_SOLD_OUT"
            } else {
                "PAID_BUT_EVENT_CANCELLED"
            }),
            checkout: CheckoutOutcome::Failed,
        },
    }
}

/// The forward steps of creating an order, in order. Each is recorded when done so a
/// failure (or a crash found by the sweep) compensates exactly what happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckoutStep {
    Reserved,
    OrderWritten,
    CheckoutBound,
    PaymentCreated,
}

impl CheckoutStep {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutStep::Reserved => "RESERVED",
            CheckoutStep::OrderWritten => "ORDER_WRITTEN",
            CheckoutStep::CheckoutBound => "CHECKOUT_BOUND",
            CheckoutStep::PaymentCreated => "PAYMENT_CREATED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            CheckoutStep::Reserved,
            CheckoutStep::OrderWritten,
            CheckoutStep::CheckoutBound,
            CheckoutStep::PaymentCreated,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compensation {
    /// Give the held tickets back to the event.
    ReleaseHold,
    /// Mark the order FAILED (it stays for the buyer's history and for audit).
    FailOrder,
    /// End the buyer's waitroom checkout: the slot goes to the next fan.
    FreeCheckoutSlot,
    /// Unbind the order from the buyer's waitroom checkout, which stays theirs (ADMITTED,
    /// same deadline) for another order.
    ReopenCheckout,
}

impl Compensation {
    /// The name stored in `saga_steps.step` (status COMPENSATED) and logged: a stable name,
    /// not the Rust identifier, so renaming the variant cannot change what is stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Compensation::ReleaseHold => "RELEASE_HOLD",
            Compensation::FailOrder => "FAIL_ORDER",
            Compensation::FreeCheckoutSlot => "FREE_CHECKOUT_SLOT",
            Compensation::ReopenCheckout => "REOPEN_CHECKOUT",
        }
    }
}

/// Why a checkout is undone, as far as the buyer's waitroom checkout is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckoutFailure {
    /// The order never got a payment the buyer could see: the provider refused, failed or did
    /// not answer the create call (or the payment could not be planned, or the order not
    /// stored). The buyer did nothing wrong, so they keep their checkout and may order again
    /// with the same token, another method or the same one.
    BeforePaymentPage,
    /// The checkout died between its steps and was found later by the sweep: nobody is
    /// waiting on this answer, so the slot goes to the next fan.
    Abandoned,
}

/// The compensations for a checkout that got as far as `done`, in the order to run them:
/// the reverse of the forward steps. A payment that was never created needs none.
pub fn compensations(done: &[CheckoutStep], failure: CheckoutFailure) -> Vec<Compensation> {
    let mut steps: Vec<CheckoutStep> = done.to_vec();
    steps.sort();
    steps.dedup();
    steps
        .iter()
        .rev()
        .filter_map(|s| match s {
            CheckoutStep::PaymentCreated => None,
            CheckoutStep::CheckoutBound => Some(match failure {
                CheckoutFailure::BeforePaymentPage => Compensation::ReopenCheckout,
                CheckoutFailure::Abandoned => Compensation::FreeCheckoutSlot,
            }),
            CheckoutStep::OrderWritten => Some(Compensation::FailOrder),
            CheckoutStep::Reserved => Some(Compensation::ReleaseHold),
        })
        .collect()
}

/// A checkout stuck between steps (the Worker died mid-request) is compensated by the sweep
/// once it is older than this, unless its payment link was created (then the hold's own
/// expiry and the provider's notification finish it).
pub const STUCK_CHECKOUT_AFTER_MS: i64 = 2 * 60 * 1000;

pub fn sweep_decision(
    done: &[CheckoutStep],
    started_at_ms: i64,
    now_ms: i64,
) -> Option<Vec<Compensation>> {
    if done.contains(&CheckoutStep::PaymentCreated)
        || now_ms - started_at_ms < STUCK_CHECKOUT_AFTER_MS
    {
        return None;
    }
    Some(compensations(done, CheckoutFailure::Abandoned))
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::*;
    use SagaInput::*;

    const STATUSES: [OrderStatus; 4] = [Pending, Completed, Cancelled, Failed];
    const INPUTS: [SagaInput; 5] = [
        PaymentSucceeded,
        PaymentFailed,
        HoldExpired,
        CancelledByOwner,
        NothingToPay,
    ];

    #[test]
    fn every_status_and_input_has_a_decision_and_only_pending_or_paid_moves() {
        for status in STATUSES {
            for input in INPUTS {
                let step = decide(status, input);
                let moves = !matches!(step, SagaStep::Ignore(_) | SagaStep::Refuse);
                let expected =
                    status == Pending || input == PaymentSucceeded && status != Completed;
                assert_eq!(moves, expected, "{status:?} × {input:?} → {step:?}");
            }
        }
    }

    #[test]
    fn a_completed_order_is_never_undone() {
        for input in INPUTS {
            assert!(
                matches!(
                    decide(Completed, input),
                    SagaStep::Ignore(_) | SagaStep::Refuse
                ),
                "{input:?}"
            );
        }
    }

    #[test]
    fn duplicate_messages_have_no_second_effect() {
        // Apply each input, then the same input again from the resulting status.
        for input in INPUTS {
            let first = decide(Pending, input);
            let status = match first {
                SagaStep::ConfirmHold => after_confirm(ConfirmAnswer::Confirmed, Pending).status,
                SagaStep::ReleaseAndClose { status, .. } | SagaStep::Close { status, .. } => status,
                _ => Pending,
            };
            assert!(
                matches!(decide(status, input), SagaStep::Ignore(_)),
                "{input:?} twice"
            );
        }
    }

    #[test]
    fn payment_failure_releases_and_fails() {
        assert_eq!(
            decide(Pending, PaymentFailed),
            SagaStep::ReleaseAndClose {
                status: Failed,
                checkout: CheckoutOutcome::Failed
            }
        );
    }

    #[test]
    fn hold_expiry_cancels_and_expires_the_checkout() {
        assert_eq!(
            decide(Pending, HoldExpired),
            SagaStep::Close {
                status: Cancelled,
                checkout: CheckoutOutcome::Expired
            }
        );
    }

    #[test]
    fn late_money_is_confirmed_or_flagged_for_refund_never_dropped() {
        assert_eq!(decide(Cancelled, PaymentSucceeded), SagaStep::ConfirmHold);
        let ok = after_confirm(ConfirmAnswer::Confirmed, Cancelled);
        assert_eq!(ok.status, Completed);
        let sold_out = after_confirm(ConfirmAnswer::NoStock, Cancelled);
        assert_eq!(sold_out.status, Cancelled);
        assert_eq!(sold_out.refund_reason, Some("PAID_BUT_SOLD_OUT"));
        let pending = after_confirm(ConfirmAnswer::EventCancelled, Pending);
        assert_eq!(pending.status, Cancelled);
        assert_eq!(pending.refund_reason, Some("PAID_BUT_EVENT_CANCELLED"));
    }

    #[test]
    fn a_free_order_without_stock_is_closed_with_no_refund_owed() {
        assert_eq!(decide(Pending, NothingToPay), SagaStep::ConfirmHold);
        let ok = after_confirm(ConfirmAnswer::Confirmed, Pending).nothing_paid();
        assert_eq!((ok.status, ok.refund_reason), (Completed, None));
        for answer in [ConfirmAnswer::NoStock, ConfirmAnswer::EventCancelled] {
            let closed = after_confirm(answer, Pending).nothing_paid();
            assert_eq!(closed.status, Cancelled);
            assert_eq!(closed.refund_reason, None);
            assert_eq!(closed.checkout, CheckoutOutcome::Failed);
        }
    }

    #[test]
    fn owner_may_cancel_only_pending_orders() {
        assert!(matches!(
            decide(Pending, CancelledByOwner),
            SagaStep::ReleaseAndClose {
                status: Cancelled,
                ..
            }
        ));
        assert_eq!(decide(Completed, CancelledByOwner), SagaStep::Refuse);
        assert_eq!(decide(Failed, CancelledByOwner), SagaStep::Refuse);
    }

    #[test]
    fn compensations_run_in_reverse_of_what_was_done() {
        use CheckoutStep::*;
        for failure in [
            CheckoutFailure::BeforePaymentPage,
            CheckoutFailure::Abandoned,
        ] {
            assert_eq!(compensations(&[], failure), vec![]);
            assert_eq!(
                compensations(&[Reserved], failure),
                vec![Compensation::ReleaseHold]
            );
            assert_eq!(
                compensations(&[Reserved, OrderWritten], failure),
                vec![Compensation::FailOrder, Compensation::ReleaseHold]
            );
        }
        assert_eq!(
            compensations(
                &[
                    OrderWritten,
                    Reserved,
                    CheckoutBound,
                    PaymentCreated,
                    Reserved
                ],
                CheckoutFailure::Abandoned
            ),
            vec![
                Compensation::FreeCheckoutSlot,
                Compensation::FailOrder,
                Compensation::ReleaseHold
            ]
        );
    }

    #[test]
    fn an_expired_hold_ends_the_checkout_only_after_a_payment_page() {
        // The buyer saw the provider's page and let the hold run out: the slot moves on.
        assert_eq!(
            checkout_after_close(CheckoutOutcome::Expired, true),
            CheckoutAfterClose::End(CheckoutOutcome::Expired)
        );
        // The create call never gave a link before the hold ran out: the checkout is theirs.
        assert_eq!(
            checkout_after_close(CheckoutOutcome::Expired, false),
            CheckoutAfterClose::Reopen
        );
        // Every other close ends it, page or not.
        for outcome in [
            CheckoutOutcome::Completed,
            CheckoutOutcome::Failed,
            CheckoutOutcome::Cancelled,
        ] {
            for shown in [true, false] {
                assert_eq!(
                    checkout_after_close(outcome, shown),
                    CheckoutAfterClose::End(outcome)
                );
            }
        }
    }

    #[test]
    fn a_buyer_who_never_saw_a_payment_page_keeps_the_checkout() {
        use CheckoutStep::*;
        assert_eq!(
            compensations(
                &[Reserved, CheckoutBound, OrderWritten],
                CheckoutFailure::BeforePaymentPage
            ),
            vec![
                Compensation::ReopenCheckout,
                Compensation::FailOrder,
                Compensation::ReleaseHold
            ]
        );
        assert_eq!(
            compensations(
                &[Reserved, CheckoutBound],
                CheckoutFailure::BeforePaymentPage
            ),
            vec![Compensation::ReopenCheckout, Compensation::ReleaseHold]
        );
    }

    #[test]
    fn the_sweep_leaves_young_or_paid_checkouts_alone() {
        use CheckoutStep::*;
        assert_eq!(
            sweep_decision(&[Reserved], 0, STUCK_CHECKOUT_AFTER_MS - 1),
            None
        );
        assert_eq!(
            sweep_decision(&[Reserved, OrderWritten, PaymentCreated], 0, i64::MAX / 2),
            None
        );
        assert_eq!(
            sweep_decision(&[Reserved, OrderWritten], 0, STUCK_CHECKOUT_AFTER_MS),
            Some(vec![Compensation::FailOrder, Compensation::ReleaseHold])
        );
        // Nobody waits on an abandoned checkout's answer: its slot goes to the next fan.
        assert_eq!(
            sweep_decision(
                &[Reserved, CheckoutBound, OrderWritten],
                0,
                STUCK_CHECKOUT_AFTER_MS
            ),
            Some(vec![
                Compensation::FreeCheckoutSlot,
                Compensation::FailOrder,
                Compensation::ReleaseHold
            ])
        );
    }

    #[test]
    fn step_names_round_trip() {
        for s in [
            CheckoutStep::Reserved,
            CheckoutStep::OrderWritten,
            CheckoutStep::CheckoutBound,
            CheckoutStep::PaymentCreated,
        ] {
            assert_eq!(CheckoutStep::parse(s.as_str()), Some(s));
        }
        for s in STATUSES {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn compensation_and_input_names_are_distinct_and_never_a_forward_step() {
        let compensations = [
            Compensation::ReleaseHold,
            Compensation::FailOrder,
            Compensation::FreeCheckoutSlot,
            Compensation::ReopenCheckout,
        ];
        let mut names: Vec<&str> = compensations.iter().map(|c| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), compensations.len());
        // A compensation row must never be read back as a forward step by the sweep.
        assert!(names.iter().all(|n| CheckoutStep::parse(n).is_none()));
        let mut inputs: Vec<&str> = INPUTS.iter().map(|i| i.as_str()).collect();
        inputs.sort_unstable();
        inputs.dedup();
        assert_eq!(inputs.len(), INPUTS.len());
    }

    #[test]
    fn payment_messages_map_to_their_inputs_and_other_kinds_to_none() {
        assert_eq!(
            SagaInput::from_message_type("PAYMENT_COMPLETED"),
            Some(PaymentSucceeded)
        );
        assert_eq!(
            SagaInput::from_message_type("PAYMENT_FAILED"),
            Some(PaymentFailed)
        );
        assert_eq!(
            SagaInput::from_message_type("HOLD_EXPIRED"),
            Some(HoldExpired)
        );
        assert_eq!(SagaInput::from_message_type("ORDER_CREATED"), None);
    }
}
