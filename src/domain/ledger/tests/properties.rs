//! Random interleavings of every operation under a moving clock, each step checked against
//! an independent model of what it should answer, and every invariant checked after it.

use super::*;
use proptest::prelude::*;

const CLASS_IDS: [&str; 4] = ["c0", "c1", "c2", "unknown"];
/// Times move in coarse steps so that expiries and sale-window edges land exactly on `now`.
const STEP_MS: Millis = 500;

#[derive(Debug, Clone)]
enum Step {
    Reserve {
        order: u8,
        user: u8,
        lines: Vec<(usize, i64)>,
        hold_for: Millis,
    },
    Confirm {
        order: u8,
    },
    Release {
        order: u8,
    },
    /// A refund puts the order's sold tickets back on sale.
    ReturnSold {
        order: u8,
    },
    ExpireDue {
        limit: usize,
    },
    SetTotal {
        class: usize,
        total: i64,
    },
    SetClassStatus {
        class: usize,
        status: ClassStatus,
    },
    SetSaleState(SaleState),
    SetLimit(Option<u32>),
    Tick(Millis),
    FailNextWrite,
}

fn step() -> impl Strategy<Value = Step> {
    let quantity = prop_oneof![1 => -1i64..=0, 10 => 1i64..4];
    let lines = prop_oneof![
        1 => Just(vec![]),
        15 => prop::collection::vec((0usize..4, quantity), 1..4),
    ];
    prop_oneof![
        8 => (0u8..8, 0u8..3, lines, 1i64..7).prop_map(|(order, user, lines, steps)| {
            Step::Reserve { order, user, lines, hold_for: steps * STEP_MS }
        }),
        4 => (0u8..8).prop_map(|order| Step::Confirm { order }),
        3 => (0u8..8).prop_map(|order| Step::Release { order }),
        2 => (0u8..8).prop_map(|order| Step::ReturnSold { order }),
        2 => (0usize..4).prop_map(|limit| Step::ExpireDue { limit }),
        1 => (0usize..4, -1i64..10).prop_map(|(class, total)| Step::SetTotal { class, total }),
        1 => (0usize..4, prop_oneof![2 => Just(ClassStatus::Active), 1 => Just(ClassStatus::Paused)])
            .prop_map(|(class, status)| Step::SetClassStatus { class, status }),
        1 => prop_oneof![
            6 => Just(SaleState::Open),
            3 => Just(SaleState::Closed),
            1 => Just(SaleState::Cancelled),
        ]
        .prop_map(Step::SetSaleState),
        1 => proptest::option::of(0u32..9).prop_map(Step::SetLimit),
        5 => (0i64..5).prop_map(|steps| Step::Tick(steps * STEP_MS)),
        1 => Just(Step::FailNextWrite),
    ]
}

fn seeded_ledger() -> Ledger<MemoryLedgerStore> {
    let mut ledger = Ledger::new(MemoryLedgerStore::new());
    ledger.set_sale_state(SaleState::Open).unwrap();
    ledger.set_max_tickets_per_user(Some(6)).unwrap();
    ledger.upsert_class(spec("c0", 5)).unwrap();
    ledger.upsert_class(spec("c1", 3)).unwrap();
    ledger
        .upsert_class(TicketClassSpec {
            sale_start_at: Some(T0 + 2 * STEP_MS),
            sale_end_at: Some(T0 + 40 * STEP_MS),
            ..spec("c2", 4)
        })
        .unwrap();
    ledger
}

/// The model's answer: `Ok(())` for success, else the expected error code.
type Expected = Result<(), &'static str>;

fn code_of<T>(result: &Result<T, LedgerError>) -> Expected {
    result.as_ref().map(drop).map_err(LedgerError::code)
}

fn confirm_tag(outcome: &ConfirmOutcome) -> &'static str {
    match outcome {
        ConfirmOutcome::Confirmed(_) => "CONFIRMED",
        ConfirmOutcome::PaidButNoStock(_) => "PAID_BUT_NO_STOCK",
        ConfirmOutcome::PaidButEventCancelled(_) => "PAID_BUT_EVENT_CANCELLED",
    }
}

fn owned_by(holds: &BTreeMap<String, Hold>, user_id: &str) -> u64 {
    holds
        .values()
        .filter(|h| h.user_id == user_id)
        .filter(|h| matches!(h.state, HoldState::Active | HoldState::Confirmed))
        .filter(|h| h.returned_at.is_none())
        .map(Hold::quantity)
        .sum()
}

/// What a fresh reserve should answer, rule by rule, in the ledger's documented order.
fn expected_reserve(before: &Contents, req: &ReserveRequest, now: Millis, armed: bool) -> Expected {
    let mut lines: Vec<(&str, i64)> = req
        .items
        .iter()
        .map(|i| (i.ticket_class_id.as_str(), i.quantity))
        .collect();
    lines.sort();
    if lines.is_empty()
        || lines.iter().any(|(_, q)| *q <= 0)
        || lines.windows(2).any(|pair| pair[0].0 == pair[1].0)
    {
        return Err("VALIDATION_FAILED");
    }
    if let Some(existing) = before.2.get(&req.order_id) {
        let same_lines: Vec<(&str, i64)> = existing
            .items
            .iter()
            .map(|i| (i.ticket_class_id.as_str(), i64::from(i.quantity)))
            .collect();
        return if existing.user_id == req.user_id && same_lines == lines {
            Ok(())
        } else {
            Err("ORDER_ID_CONFLICT")
        };
    }
    let settings = before.0.clone().unwrap_or_default();
    if settings.state != SaleState::Open {
        return Err("SALE_NOT_OPEN");
    }
    for (id, _) in &lines {
        let Some(class) = before.1.get(*id) else {
            return Err("UNKNOWN_TICKET_CLASS");
        };
        if class.status == ClassStatus::Paused {
            return Err("CLASS_NOT_ON_SALE");
        }
        let started = class.sale_start_at.is_none_or(|at| at <= now);
        let not_ended = class.sale_end_at.is_none_or(|at| now < at);
        if !(started && not_ended) {
            return Err("SALE_NOT_OPEN");
        }
    }
    let requested: i64 = lines.iter().map(|(_, q)| q).sum();
    let over_limit = settings.max_tickets_per_user.is_some_and(|limit| {
        owned_by(&before.2, &req.user_id) + requested as u64 > u64::from(limit)
    });
    if over_limit {
        return Err("PURCHASE_LIMIT_EXCEEDED");
    }
    if lines
        .iter()
        .any(|(id, q)| before.1[*id].available() < *q as u32)
    {
        return Err("INSUFFICIENT_INVENTORY");
    }
    if armed {
        return Err("INTERNAL_ERROR");
    }
    Ok(())
}

/// What confirm should answer (an outcome tag, or an error code).
fn expected_confirm(
    before: &Contents,
    order_id: &str,
    armed: bool,
) -> Result<&'static str, &'static str> {
    let Some(hold) = before.2.get(order_id) else {
        return Err("HOLD_NOT_FOUND");
    };
    match hold.refused_payment.map(|r| r.reason) {
        Some(RefusalReason::NoStock) => return Ok("PAID_BUT_NO_STOCK"),
        Some(RefusalReason::EventCancelled) => return Ok("PAID_BUT_EVENT_CANCELLED"),
        None => {}
    }
    if hold.state == HoldState::Confirmed {
        return Ok("CONFIRMED");
    }
    if armed {
        return Err("INTERNAL_ERROR");
    }
    if before.0.as_ref().map(|s| s.state) == Some(SaleState::Cancelled) {
        return Ok("PAID_BUT_EVENT_CANCELLED");
    }
    let fits = hold
        .items
        .iter()
        .all(|i| before.1[&i.ticket_class_id].available() >= i.quantity);
    if hold.state == HoldState::Active || fits {
        Ok("CONFIRMED")
    } else {
        Ok("PAID_BUT_NO_STOCK")
    }
}

/// What a return should answer (an outcome tag, or an error code).
fn expected_return(
    before: &Contents,
    order_id: &str,
    armed: bool,
) -> Result<&'static str, &'static str> {
    match before.2.get(order_id) {
        None => Ok("UNKNOWN_ORDER"),
        Some(hold) if hold.returned_at.is_some() => Ok("ALREADY_RETURNED"),
        Some(hold) if hold.state != HoldState::Confirmed => Ok("NOT_SOLD"),
        Some(_) if armed => Err("INTERNAL_ERROR"),
        Some(_) => Ok("RETURNED"),
    }
}

fn return_tag(outcome: &ReturnOutcome) -> &'static str {
    match outcome {
        ReturnOutcome::Returned(_) => "RETURNED",
        ReturnOutcome::AlreadyReturned(_) => "ALREADY_RETURNED",
        ReturnOutcome::NotSold(_) => "NOT_SOLD",
        ReturnOutcome::UnknownOrder => "UNKNOWN_ORDER",
    }
}

fn ensure(condition: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    condition.then_some(()).ok_or_else(message)
}

/// Applies one step and checks its answer against the model; an `Err` describes a breach.
fn apply(
    ledger: &mut Ledger<MemoryLedgerStore>,
    now: &mut Millis,
    step: &Step,
) -> Result<(), String> {
    let before = contents(ledger.store());
    let armed = ledger.store().fail_next_write;
    let answered = |expected: Expected, got: Expected| -> Result<(), String> {
        ensure(expected == got, || {
            format!("expected {expected:?}, got {got:?}")
        })
    };
    // Whatever was refused, failed, or was a no-op must leave every row as it was.
    let unchanged_unless =
        |ledger: &Ledger<MemoryLedgerStore>, changed: bool| -> Result<(), String> {
            ensure(changed || contents(ledger.store()) == before, || {
                "a no-op changed state".into()
            })
        };
    match step {
        Step::Reserve {
            order,
            user,
            lines,
            hold_for,
        } => {
            let req = ReserveRequest {
                order_id: format!("o{order}"),
                user_id: format!("u{user}"),
                items: lines
                    .iter()
                    .map(|(c, q)| RequestedItem::new(CLASS_IDS[*c], *q))
                    .collect(),
                hold_for_ms: Some(*hold_for),
            };
            let repeat = before.2.get(&req.order_id).cloned();
            let expected = expected_reserve(&before, &req, *now, armed && repeat.is_none());
            let result = ledger.reserve(&req, *now);
            answered(expected, code_of(&result))?;
            unchanged_unless(ledger, result.is_ok() && repeat.is_none())?;
            if let Ok(hold) = result {
                match repeat {
                    Some(existing) => ensure(hold == existing, || {
                        "a repeat reserve gave another hold".into()
                    })?,
                    None => ensure(
                        hold.state == HoldState::Active && hold.expires_at == *now + hold_for,
                        || format!("fresh hold {hold:?}"),
                    )?,
                }
                ensure(
                    ledger.hold(&req.order_id).ok().flatten().as_ref() == Some(&hold),
                    || "the answer is not what was stored".into(),
                )?;
                let snapshot = contents(ledger.store());
                let again = ledger.reserve(&req, *now + 1);
                ensure(
                    again.as_ref() == Ok(&hold) && contents(ledger.store()) == snapshot,
                    || format!("reserve is not idempotent: {again:?}"),
                )?;
            }
        }
        Step::Confirm { order } => {
            let order_id = format!("o{order}");
            let expected = expected_confirm(&before, &order_id, armed);
            let result = ledger.confirm(&order_id, *now);
            let got = result.as_ref().map(confirm_tag).map_err(LedgerError::code);
            ensure(expected == got, || {
                format!("expected {expected:?}, got {got:?}")
            })?;
            let wrote = before
                .2
                .get(&order_id)
                .is_some_and(|h| h.state != HoldState::Confirmed && h.refused_payment.is_none());
            unchanged_unless(ledger, result.is_ok() && wrote)?;
            if let Ok(outcome) = result {
                let (ConfirmOutcome::Confirmed(hold)
                | ConfirmOutcome::PaidButNoStock(hold)
                | ConfirmOutcome::PaidButEventCancelled(hold)) = &outcome;
                let was = before.2[&order_id].state;
                let state_ok = match &outcome {
                    ConfirmOutcome::Confirmed(_) => hold.state == HoldState::Confirmed,
                    ConfirmOutcome::PaidButNoStock(_) => hold.state == was,
                    ConfirmOutcome::PaidButEventCancelled(_) => {
                        hold.state
                            == if was == HoldState::Active {
                                HoldState::Released
                            } else {
                                was
                            }
                    }
                };
                ensure(state_ok, || format!("{outcome:?} after {was:?}"))?;
                let snapshot = contents(ledger.store());
                let again = ledger.confirm(&order_id, *now + 1);
                ensure(
                    again.as_ref() == Ok(&outcome) && contents(ledger.store()) == snapshot,
                    || format!("confirm is not idempotent: {again:?}"),
                )?;
            }
        }
        Step::Release { order } => {
            let order_id = format!("o{order}");
            let was = before.2.get(&order_id).map(|h| h.state);
            let result = ledger.release(&order_id, *now);
            let got = match &result {
                Ok(ReleaseOutcome::Released(h)) if h.state == HoldState::Released => {
                    Ok(Some(HoldState::Active))
                }
                Ok(ReleaseOutcome::Released(_)) => Err("RELEASED_BUT_NOT"),
                Ok(ReleaseOutcome::AlreadyReleased(_)) => Ok(Some(HoldState::Released)),
                Ok(ReleaseOutcome::AlreadyExpired(_)) => Ok(Some(HoldState::Expired)),
                Ok(ReleaseOutcome::AlreadyConfirmed(_)) => Ok(Some(HoldState::Confirmed)),
                Ok(ReleaseOutcome::UnknownOrder) => Ok(None),
                Err(e) => Err(e.code()),
            };
            let writes = was == Some(HoldState::Active);
            let expected = if writes && armed {
                Err("INTERNAL_ERROR")
            } else {
                Ok(was)
            };
            ensure(expected == got, || {
                format!("expected {expected:?}, got {got:?}")
            })?;
            unchanged_unless(ledger, writes && result.is_ok())?;
        }
        Step::ReturnSold { order } => {
            let order_id = format!("o{order}");
            let expected = expected_return(&before, &order_id, armed);
            let result = ledger.return_sold(&order_id, *now);
            let got = result.as_ref().map(return_tag).map_err(LedgerError::code);
            ensure(expected == got, || {
                format!("expected {expected:?}, got {got:?}")
            })?;
            let returned = got == Ok("RETURNED");
            unchanged_unless(ledger, returned)?;
            if returned {
                let hold = &before.2[&order_id];
                for item in &hold.items {
                    let was = &before.1[&item.ticket_class_id];
                    let is = class(ledger, &item.ticket_class_id);
                    ensure(is.sold + item.quantity == was.sold, || {
                        format!("{order_id}: sold {} -> {}", was.sold, is.sold)
                    })?;
                }
                let snapshot = contents(ledger.store());
                let again = ledger.return_sold(&order_id, *now + 1);
                ensure(
                    matches!(again, Ok(ReturnOutcome::AlreadyReturned(_)))
                        && contents(ledger.store()) == snapshot,
                    || format!("return is not idempotent: {again:?}"),
                )?;
            }
        }
        Step::ExpireDue { limit } => {
            let mut due: Vec<(Millis, String)> = before
                .2
                .values()
                .filter(|h| h.state == HoldState::Active && h.expires_at <= *now)
                .map(|h| (h.expires_at, h.order_id.clone()))
                .collect();
            due.sort();
            due.truncate(*limit);
            let expected = if armed && !due.is_empty() {
                Err("INTERNAL_ERROR")
            } else {
                Ok(due)
            };
            let result = ledger.expire_due_at_most(*now, *limit);
            let got = result
                .as_ref()
                .map(|expired| {
                    expired
                        .iter()
                        .map(|e| (e.expires_at, e.order_id.clone()))
                        .collect()
                })
                .map_err(LedgerError::code);
            ensure(expected == got, || {
                format!("expected {expected:?}, got {got:?}")
            })?;
            unchanged_unless(ledger, result.is_ok_and(|expired| !expired.is_empty()))?;
            if let Ok(expired) = &got {
                for (_, order_id) in expired {
                    ensure(state_of(ledger, order_id) == HoldState::Expired, || {
                        format!("{order_id} reported but not expired")
                    })?;
                }
            }
        }
        Step::SetTotal { class, total } => {
            let id = CLASS_IDS[*class];
            let expected = match before.1.get(id) {
                None => Err("UNKNOWN_TICKET_CLASS"),
                Some(_) if *total < 0 => Err("VALIDATION_FAILED"),
                Some(c) if (*total as u64) < c.committed() => Err("TOTAL_BELOW_COMMITTED"),
                Some(_) if armed => Err("INTERNAL_ERROR"),
                Some(_) => Ok(()),
            };
            let result = ledger.set_total(id, *total);
            answered(expected, code_of(&result))?;
            unchanged_unless(ledger, result.is_ok())?;
        }
        Step::SetClassStatus { class, status } => {
            let id = CLASS_IDS[*class];
            let expected = match before.1.get(id) {
                None => Err("UNKNOWN_TICKET_CLASS"),
                Some(_) if armed => Err("INTERNAL_ERROR"),
                Some(_) => Ok(()),
            };
            let result = ledger.set_class_status(id, *status);
            answered(expected, code_of(&result))?;
            unchanged_unless(ledger, result.is_ok())?;
        }
        Step::SetSaleState(state) => {
            let current = before.0.as_ref().map(|s| s.state).unwrap_or_default();
            let expected = if current == SaleState::Cancelled && *state != SaleState::Cancelled {
                Err("INVALID_STATUS_TRANSITION")
            } else if armed {
                Err("INTERNAL_ERROR")
            } else {
                Ok(())
            };
            let result = ledger.set_sale_state(*state);
            answered(expected, code_of(&result))?;
            unchanged_unless(ledger, result.is_ok())?;
        }
        Step::SetLimit(limit) => {
            let result = ledger.set_max_tickets_per_user(*limit);
            answered(
                if armed { Err("INTERNAL_ERROR") } else { Ok(()) },
                code_of(&result),
            )?;
            unchanged_unless(ledger, result.is_ok())?;
        }
        Step::Tick(by) => *now += by,
        Step::FailNextWrite => ledger.store_mut().fail_next_write(),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_step_of_any_interleaving_answers_as_modelled_and_keeps_the_invariants(
        steps in prop::collection::vec(step(), 1..60),
    ) {
        let mut ledger = seeded_ledger();
        let mut now = T0;
        for (index, step) in steps.iter().enumerate() {
            let checked = apply(&mut ledger, &mut now, step)
                .and_then(|()| check_invariants(ledger.store()));
            prop_assert!(checked.is_ok(), "step {} {:?}: {}", index, step, checked.unwrap_err());
        }
    }
}
