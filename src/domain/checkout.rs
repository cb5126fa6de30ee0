//! The rules a checkout decides before anything is held: the order lines a buyer may ask for,
//! whether a checkout token admits this buyer to this event, the price of the order from
//! the catalogue, in one currency, and how it is settled (a provider, or nothing to pay).
//!
//! Pure: no `worker` types, time passed in. The checkout service (`crate::checkout`) reads the
//! catalogue and the token, asks these functions, and only then goes to the event's object.
//! The ledger (`domain::ledger`) checks the lines again (positive quantities, no class twice)
//! because the object trusts nobody: these rules give the buyer every bad field at once, the
//! ledger's check keeps a buggy caller from corrupting the counters.

use super::ids::TicketClassId;
use super::tokens::{CheckoutClaims, TokenKey};
use super::validation::{json_integer, FieldError, ValidationFailed, Validator};

/// Most lines one order may have.
pub const MAX_LINES: usize = 10;
/// Most tickets of one class one order may ask for.
pub const MAX_QUANTITY_PER_LINE: i64 = 100;

/// One line as the client sent it: both fields optional so every bad line is reported.
#[derive(Debug, Clone, PartialEq)]
pub struct RawLine {
    pub ticket_class_id: Option<String>,
    pub quantity: Option<serde_json::Value>,
}

/// One valid order line: a ticket class of the request and how many of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub ticket_class_id: TicketClassId,
    pub quantity: i64,
}

/// 1 to [`MAX_LINES`] lines, each class once, each quantity 1 to [`MAX_QUANTITY_PER_LINE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLines(Vec<OrderLine>);

impl OrderLines {
    /// Parses the `items` of an order request, recording each bad line in `v` under
    /// `items[i].…` (or `items` itself when missing or of the wrong length).
    pub fn parse(items: Option<Vec<RawLine>>, v: &mut Validator) -> Option<OrderLines> {
        let items = match items {
            None => {
                v.push(FieldError::new("items", "is required"));
                return None;
            }
            Some(items) if items.is_empty() || items.len() > MAX_LINES => {
                v.push(FieldError::new(
                    "items",
                    format!("give 1 to {MAX_LINES} lines"),
                ));
                return None;
            }
            Some(items) => items,
        };
        let mut lines: Vec<OrderLine> = Vec::with_capacity(items.len());
        let mut all_valid = true;
        for (i, line) in items.into_iter().enumerate() {
            let id = line
                .ticket_class_id
                .and_then(|id| TicketClassId::parse(&id).ok());
            let quantity = line
                .quantity
                .as_ref()
                .and_then(|q| json_integer(q).ok())
                .filter(|q| (1..=MAX_QUANTITY_PER_LINE).contains(q));
            match (id, quantity) {
                (Some(id), Some(quantity)) if !lines.iter().any(|l| l.ticket_class_id == id) => {
                    lines.push(OrderLine {
                        ticket_class_id: id,
                        quantity,
                    })
                }
                (Some(_), Some(_)) => {
                    all_valid = false;
                    v.push(FieldError::new(
                        format!("items[{i}].ticketClassId"),
                        "appears twice",
                    ))
                }
                (None, _) => {
                    all_valid = false;
                    v.push(FieldError::new(
                        format!("items[{i}].ticketClassId"),
                        "must be a ticket class id",
                    ))
                }
                (_, None) => {
                    all_valid = false;
                    v.push(FieldError::new(
                        format!("items[{i}].quantity"),
                        format!("must be a whole number from 1 to {MAX_QUANTITY_PER_LINE}"),
                    ))
                }
            }
        }
        all_valid.then_some(OrderLines(lines))
    }

    pub fn iter(&self) -> impl Iterator<Item = &OrderLine> {
        self.0.iter()
    }

    /// The ticket class ids, in the order the buyer listed them.
    pub fn class_ids(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|l| l.ticket_class_id.as_str().to_owned())
            .collect()
    }
}

/// Why a buyer may not check out with the token they sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRefusal {
    /// The event sells through its waitroom and no token came with the order.
    Required,
    /// The token is forged, expired, for another audience, or for another buyer or event.
    Invalid,
}

impl TokenRefusal {
    pub fn code(self) -> &'static str {
        match self {
            TokenRefusal::Required => "CHECKOUT_TOKEN_REQUIRED",
            TokenRefusal::Invalid => "CHECKOUT_TOKEN_INVALID",
        }
    }
}

/// How the buyer came to the checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutPass {
    /// The event has no waitroom: anyone who may order, orders.
    Open,
    /// Admitted by the waitroom: the order is bound to this waitroom session's checkout slot.
    Admitted { session_id: String },
}

impl CheckoutPass {
    pub fn session_id(&self) -> Option<&str> {
        match self {
            CheckoutPass::Open => None,
            CheckoutPass::Admitted { session_id } => Some(session_id),
        }
    }
}

/// Whether `token` lets `user_id` check out on `event_id` at `now_ms`. Only events that sell
/// through a waitroom need one; a token is valid when its signature and lifetime are and it
/// names this buyer and this event (a token is worth a checkout slot, so it is not
/// transferable). Whether the slot is still the buyer's is the event object's to say.
pub fn admit(
    sells_through_waitroom: bool,
    token: Option<&str>,
    key: &TokenKey,
    user_id: &str,
    event_id: &str,
    now_ms: i64,
) -> Result<CheckoutPass, TokenRefusal> {
    if !sells_through_waitroom {
        return Ok(CheckoutPass::Open);
    }
    let token = token.ok_or(TokenRefusal::Required)?;
    let claims: CheckoutClaims = key
        .verify_checkout(token, now_ms)
        .map_err(|_| TokenRefusal::Invalid)?;
    if claims.sub != user_id || claims.evt != event_id {
        return Err(TokenRefusal::Invalid);
    }
    Ok(CheckoutPass::Admitted {
        session_id: claims.sid,
    })
}

/// A ticket class as the catalogue prices it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct PricedClass {
    pub id: String,
    pub name: String,
    pub price_cents: i64,
    pub currency: String,
}

/// One line of a priced order: the catalogue's name and unit price, never the client's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLine {
    pub ticket_class_id: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

/// What the buyer will pay: every line priced from the catalogue, in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedOrder {
    pub lines: Vec<PricedLine>,
    pub currency: String,
    pub total_cents: i64,
}

/// Prices `lines` from `classes` (the event's classes the lines name). A line whose class is
/// not the event's, and classes in more than one currency, are validation errors: a payment
/// has one amount in one currency.
pub fn price(lines: &OrderLines, classes: &[PricedClass]) -> Result<PricedOrder, ValidationFailed> {
    let mut v = Validator::new();
    let mut priced = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match classes
            .iter()
            .find(|c| c.id == line.ticket_class_id.as_str())
        {
            Some(c) => priced.push(PricedLine {
                ticket_class_id: c.id.clone(),
                name: c.name.clone(),
                quantity: line.quantity,
                unit_price_cents: c.price_cents,
            }),
            None => v.push(FieldError::new(
                format!("items[{i}].ticketClassId"),
                "is not a ticket class of this event",
            )),
        }
    }
    let currency = classes
        .first()
        .map(|c| c.currency.clone())
        .unwrap_or_default();
    if classes.iter().any(|c| c.currency != currency) {
        v.push(FieldError::new(
            "items",
            "ticket classes of one order must share a currency",
        ));
    }
    // Checked so an absurd catalogue price cannot wrap the total around.
    let total = priced.iter().try_fold(0i64, |sum, l| {
        l.quantity
            .checked_mul(l.unit_price_cents)
            .and_then(|line| sum.checked_add(line))
    });
    if total.is_none() {
        v.push(FieldError::new("items", "the order's total is too large"));
    }
    v.finish(|| {
        Some(PricedOrder {
            lines: priced,
            currency,
            total_cents: total?,
        })
    })
}

/// The payment method an order request named, parsed: `P` is the deployment's provider type
/// (generic so these rules need not know the providers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodAsked<P> {
    /// No `paymentMethod`: enough for a free event, missing for a priced one.
    Unnamed,
    /// `paymentMethod: "free"`.
    Free,
    Provider(P),
}

/// How a priced order is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement<P> {
    /// Nothing to pay: the order completes in the request that places it.
    Free,
    /// Paid through this provider's payment page.
    Pay(P),
}

/// Why an order cannot be settled the way it asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettlementRefusal {
    /// A priced order named no method.
    MethodRequired,
    /// `free` on an order that costs something.
    FreeNotAvailable,
    /// A provider for an order of a free event: there is nothing to pay it.
    NothingToPay,
}

impl SettlementRefusal {
    pub fn code(self) -> &'static str {
        match self {
            SettlementRefusal::MethodRequired => "VALIDATION_FAILED",
            SettlementRefusal::FreeNotAvailable | SettlementRefusal::NothingToPay => {
                "PAYMENT_METHOD_UNAVAILABLE"
            }
        }
    }
}

/// How an order of `order` (priced from the catalogue) is settled. An order is free only when
/// its event is free *and* its total is 0, so a class priced by mistake on a free event is
/// never given away: it refuses `free` as any priced order does.
pub fn settle<P>(
    asked: MethodAsked<P>,
    free_event: bool,
    order: &PricedOrder,
) -> Result<Settlement<P>, SettlementRefusal> {
    let nothing_to_pay = free_event && order.total_cents == 0;
    match (asked, nothing_to_pay) {
        (MethodAsked::Unnamed | MethodAsked::Free, true) => Ok(Settlement::Free),
        (MethodAsked::Provider(_), true) => Err(SettlementRefusal::NothingToPay),
        (MethodAsked::Provider(p), false) => Ok(Settlement::Pay(p)),
        (MethodAsked::Free, false) => Err(SettlementRefusal::FreeNotAvailable),
        (MethodAsked::Unnamed, false) => Err(SettlementRefusal::MethodRequired),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CLASS_A: &str = "0190f3a2-7c1e-7b4d-9a3f-00000000000a";
    const CLASS_B: &str = "0190f3a2-7c1e-7b4d-9a3f-00000000000b";

    fn raw(id: &str, quantity: serde_json::Value) -> RawLine {
        RawLine {
            ticket_class_id: Some(id.into()),
            quantity: Some(quantity),
        }
    }

    fn parse(items: Option<Vec<RawLine>>) -> Result<OrderLines, ValidationFailed> {
        let mut v = Validator::new();
        let lines = OrderLines::parse(items, &mut v);
        v.finish(|| lines)
    }

    fn class(id: &str, price_cents: i64, currency: &str) -> PricedClass {
        PricedClass {
            id: id.into(),
            name: format!("class {id}"),
            price_cents,
            currency: currency.into(),
        }
    }

    fn fields(e: ValidationFailed) -> Vec<String> {
        e.errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn valid_lines_keep_the_buyers_order() {
        let lines = parse(Some(vec![raw(CLASS_B, json!(2)), raw(CLASS_A, json!(1.0))])).unwrap();
        assert_eq!(lines.class_ids(), vec![CLASS_B, CLASS_A]);
        assert_eq!(lines.iter().map(|l| l.quantity).collect::<Vec<_>>(), [2, 1]);
    }

    #[test]
    fn every_bad_line_is_reported_at_once() {
        let e = parse(Some(vec![
            raw(CLASS_A, json!(0)),
            raw("not-an-id", json!(1)),
            raw(CLASS_B, json!(1)),
            raw(CLASS_B, json!(101)),
            raw(CLASS_B, json!(3)),
            RawLine {
                ticket_class_id: Some(CLASS_A.into()),
                quantity: None,
            },
        ]))
        .unwrap_err();
        assert_eq!(
            fields(e),
            [
                "items[0].quantity",
                "items[1].ticketClassId",
                "items[3].quantity",
                "items[4].ticketClassId",
                "items[5].quantity"
            ]
        );
    }

    #[test]
    fn an_order_has_one_to_ten_lines() {
        assert_eq!(fields(parse(None).unwrap_err()), ["items"]);
        assert_eq!(fields(parse(Some(vec![])).unwrap_err()), ["items"]);
        let eleven = (0..11)
            .map(|i| {
                raw(
                    &format!("0190f3a2-7c1e-7b4d-9a3f-0000000000{i:02}"),
                    json!(1),
                )
            })
            .collect();
        assert_eq!(fields(parse(Some(eleven)).unwrap_err()), ["items"]);
    }

    #[test]
    fn a_quantity_must_be_a_whole_number_in_range() {
        for bad in [json!(1.5), json!("2"), json!(-1), json!(null)] {
            assert!(
                parse(Some(vec![raw(CLASS_A, bad.clone())])).is_err(),
                "{bad}"
            );
        }
        assert!(parse(Some(vec![raw(CLASS_A, json!(MAX_QUANTITY_PER_LINE))])).is_ok());
    }

    #[test]
    fn prices_come_from_the_catalogue() {
        let lines = parse(Some(vec![raw(CLASS_A, json!(2)), raw(CLASS_B, json!(1))])).unwrap();
        let order = price(
            &lines,
            &[class(CLASS_B, 500, "VND"), class(CLASS_A, 1_000, "VND")],
        )
        .unwrap();
        assert_eq!(order.total_cents, 2_500);
        assert_eq!(order.currency, "VND");
        assert_eq!(order.lines[0].ticket_class_id, CLASS_A);
        assert_eq!(order.lines[0].unit_price_cents, 1_000);
        assert_eq!(order.lines[1].name, format!("class {CLASS_B}"));
    }

    #[test]
    fn a_class_of_another_event_is_refused_by_its_line() {
        let lines = parse(Some(vec![raw(CLASS_A, json!(2)), raw(CLASS_B, json!(1))])).unwrap();
        let e = price(&lines, &[class(CLASS_A, 1_000, "VND")]).unwrap_err();
        assert_eq!(fields(e), ["items[1].ticketClassId"]);
    }

    #[test]
    fn one_order_pays_in_one_currency() {
        let lines = parse(Some(vec![raw(CLASS_A, json!(1)), raw(CLASS_B, json!(1))])).unwrap();
        let e = price(
            &lines,
            &[class(CLASS_A, 1_000, "VND"), class(CLASS_B, 1_000, "USD")],
        )
        .unwrap_err();
        assert_eq!(fields(e), ["items"]);
    }

    #[test]
    fn a_total_that_would_overflow_is_refused_not_wrapped() {
        let lines = parse(Some(vec![raw(CLASS_A, json!(100))])).unwrap();
        let e = price(&lines, &[class(CLASS_A, i64::MAX / 10, "VND")]).unwrap_err();
        assert_eq!(fields(e), ["items"]);
    }

    const USER: &str = "0190f3a2-7c1e-7b4d-9a3f-000000000001";
    const EVENT: &str = "0190f3a2-7c1e-7b4d-9a3f-0000000000e1";
    const NOW: i64 = 1_748_736_000_000;

    fn key() -> TokenKey {
        TokenKey::new(b"a test secret that is long enough to sign with")
    }

    fn token(user: &str, event: &str) -> String {
        key()
            .issue_checkout(user, event, "session-1", NOW, NOW + 900_000)
            .unwrap()
    }

    #[test]
    fn an_event_without_a_waitroom_needs_no_token() {
        assert_eq!(
            admit(false, None, &key(), USER, EVENT, NOW),
            Ok(CheckoutPass::Open)
        );
    }

    #[test]
    fn a_waitroom_event_needs_the_buyers_own_token_for_this_event() {
        assert_eq!(
            admit(true, None, &key(), USER, EVENT, NOW),
            Err(TokenRefusal::Required)
        );
        let mine = token(USER, EVENT);
        assert_eq!(
            admit(true, Some(&mine), &key(), USER, EVENT, NOW),
            Ok(CheckoutPass::Admitted {
                session_id: "session-1".into()
            })
        );
        let someone_elses = token("0190f3a2-7c1e-7b4d-9a3f-000000000002", EVENT);
        assert_eq!(
            admit(true, Some(&someone_elses), &key(), USER, EVENT, NOW),
            Err(TokenRefusal::Invalid)
        );
        let other_event = token(USER, "0190f3a2-7c1e-7b4d-9a3f-0000000000e2");
        assert_eq!(
            admit(true, Some(&other_event), &key(), USER, EVENT, NOW),
            Err(TokenRefusal::Invalid)
        );
        assert_eq!(
            admit(true, Some("not.a.token"), &key(), USER, EVENT, NOW),
            Err(TokenRefusal::Invalid)
        );
        let forged = TokenKey::new(b"another secret that is long enough to sign")
            .issue_checkout(USER, EVENT, "session-1", NOW, NOW + 900_000)
            .unwrap();
        assert_eq!(
            admit(true, Some(&forged), &key(), USER, EVENT, NOW),
            Err(TokenRefusal::Invalid)
        );
    }

    fn priced_at(total_cents: i64) -> PricedOrder {
        PricedOrder {
            lines: Vec::new(),
            currency: "VND".into(),
            total_cents,
        }
    }

    #[test]
    fn a_free_event_settles_free_whether_free_is_named_or_not_and_refuses_a_provider() {
        let free = priced_at(0);
        assert_eq!(
            settle::<&str>(MethodAsked::Free, true, &free),
            Ok(Settlement::Free)
        );
        assert_eq!(
            settle::<&str>(MethodAsked::Unnamed, true, &free),
            Ok(Settlement::Free)
        );
        assert_eq!(
            settle(MethodAsked::Provider("sandbox"), true, &free),
            Err(SettlementRefusal::NothingToPay)
        );
    }

    #[test]
    fn a_priced_order_needs_a_provider_and_is_never_free() {
        let priced = priced_at(150_000);
        assert_eq!(
            settle(MethodAsked::Provider("vnpay"), false, &priced),
            Ok(Settlement::Pay("vnpay"))
        );
        let free = settle::<&str>(MethodAsked::Free, false, &priced).unwrap_err();
        assert_eq!(free.code(), "PAYMENT_METHOD_UNAVAILABLE");
        assert_eq!(
            settle::<&str>(MethodAsked::Unnamed, false, &priced),
            Err(SettlementRefusal::MethodRequired)
        );
        // A priced class on a free event (a catalogue mistake) is not given away.
        assert_eq!(
            settle::<&str>(MethodAsked::Free, true, &priced),
            Err(SettlementRefusal::FreeNotAvailable)
        );
        // Nor is a 0-priced class of an event that is not free (its providers decide).
        assert_eq!(
            settle::<&str>(MethodAsked::Free, false, &priced_at(0)),
            Err(SettlementRefusal::FreeNotAvailable)
        );
    }
}
