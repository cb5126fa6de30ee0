//! The order resource on the wire: the body of `POST /api/orders` and the order as every
//! orders endpoint shows it. Here rather than in `api` because the checkout stores its first
//! answer (the Idempotency-Key replay) and so must produce it itself.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::ports::{ItemRow, OrderRow};
use crate::domain::checkout::RawLine;
use crate::domain::validation::format_rfc3339;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderItemView {
    pub ticket_class_id: String,
    pub quantity: i64,
    pub price_cents: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: String,
    pub code: String,
    pub event_id: String,
    pub user_id: String,
    /// PENDING, COMPLETED, CANCELLED, FAILED, or REFUNDED once its money went back.
    pub status: String,
    pub items: Vec<OrderItemView>,
    pub total_amount_cents: i64,
    pub currency: String,
    #[schema(value_type = PaymentMethod)]
    pub payment_method: String,
    pub expires_at: String,
    /// `REFUND_REQUIRED` when money arrived but the tickets could not be delivered.
    pub refund_status: Option<String>,
    pub refund_reason: Option<String>,
    pub failure_code: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Requests to give this order's money back, oldest first.
    pub refunds: Vec<Refund>,
    /// Once COMPLETED: one ticket per unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tickets: Option<Vec<crate::domain::tickets::Ticket>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedOrder {
    pub order: Order,
    /// Where to send the buyer to pay; `null` for a free order, COMPLETED already.
    #[schema(required = true)]
    pub payment_url: Option<String>,
}

/// A payment method as the orders API names it: a provider, or `free` for an order of an
/// `isFree` event (nothing to pay). Documentation only: the request keeps it a string, parsed
/// by the checkout, so a value not listed is a field error in a problem, not a malformed body.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaymentMethod {
    Payos,
    Vnpay,
    Zalopay,
    Sandbox,
    Free,
}

fn view(row: &OrderRow, items: Vec<OrderItemView>) -> Order {
    Order {
        id: row.id.clone(),
        code: row.code.clone(),
        event_id: row.event_id.clone(),
        user_id: row.user_id.clone(),
        // A refunded order keeps its stored status (the saga's guard) and shows REFUNDED.
        status: if row.refund_status.as_deref() == Some("REFUNDED") {
            "REFUNDED".into()
        } else {
            row.status.clone()
        },
        items,
        total_amount_cents: row.total_amount_cents,
        currency: row.currency.clone(),
        payment_method: row.payment_method.clone(),
        expires_at: format_rfc3339(row.expires_at),
        refund_status: row.refund_status.clone(),
        refund_reason: row.refund_reason.clone(),
        failure_code: row.failure_code.clone(),
        created_at: format_rfc3339(row.created_at),
        updated_at: format_rfc3339(row.updated_at),
        refunds: Vec::new(),
        tickets: None,
    }
}

/// The views of `rows`, each with its items out of `items` (the items of all of them).
pub fn order_views(rows: &[OrderRow], items: Vec<ItemRow>) -> Vec<Order> {
    let mut by_order: HashMap<String, Vec<OrderItemView>> = HashMap::new();
    for item in items {
        by_order
            .entry(item.order_id)
            .or_default()
            .push(OrderItemView {
                ticket_class_id: item.ticket_class_id,
                quantity: item.quantity,
                price_cents: item.price_cents,
            });
    }
    rows.iter()
        .map(|r| view(r, by_order.remove(&r.id).unwrap_or_default()))
        .collect()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    pub ticket_class_id: Option<String>,
    pub quantity: Option<Value>,
}

impl From<OrderLine> for RawLine {
    fn from(line: OrderLine) -> Self {
        RawLine {
            ticket_class_id: line.ticket_class_id,
            quantity: line.quantity,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateOrderRequest {
    pub event_id: Option<String>,
    pub items: Option<Vec<OrderLine>>,
    /// `payos`, `vnpay`, `zalopay` or `sandbox`; `free` (or omitted) for an `isFree` event.
    #[schema(value_type = Option<PaymentMethod>)]
    pub payment_method: Option<String>,
    /// Required for events with a waitroom: the token from admission.
    pub checkout_token: Option<String>,
}

/// A refund as the API shows it (`refund` in the contract), shared by the refunds endpoints and
/// `order.refunds`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    pub id: String,
    pub order_id: String,
    pub amount_cents: i64,
    pub currency: String,
    /// `payos`, `vnpay`, `zalopay` or `sandbox`.
    pub provider: String,
    /// REQUESTED, PROCESSING, REFUNDED, FAILED or MANUAL_REQUIRED.
    pub status: String,
    pub reason: String,
    /// Who asked for it (a user id).
    pub requested_by: Option<String>,
    /// Provider errors so far (retried with back-off, then FAILED).
    pub attempts: i64,
    /// The provider's id for the refund, once it has one.
    pub provider_refund_id: Option<String>,
    /// Why it failed or waits for a person.
    pub last_error: Option<String>,
    /// What the platform admin who completed it by hand wrote.
    pub note: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_of<T: utoipa::PartialSchema>() -> Value {
        serde_json::to_value(T::schema()).unwrap_or_default()
    }

    #[test]
    fn the_created_order_always_carries_a_payment_url_that_may_be_null() {
        let schema = schema_of::<CreatedOrder>();
        let required = schema["required"].as_array().cloned().unwrap_or_default();
        assert!(required.contains(&"paymentUrl".into()), "{schema}");
        let url = &schema["properties"]["paymentUrl"];
        assert!(url.to_string().contains("null"), "{url}");
    }

    #[test]
    fn an_order_request_names_free_among_its_payment_methods() {
        let schema = schema_of::<PaymentMethod>();
        let names: Vec<String> = schema["enum"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        assert_eq!(names, ["payos", "vnpay", "zalopay", "sandbox", "free"]);
        let request = schema_of::<CreateOrderRequest>();
        assert!(
            request["properties"]["paymentMethod"]
                .to_string()
                .contains("PaymentMethod"),
            "{request}"
        );
    }
}
