//! What the checkout saga reads from the catalogue and writes for a new order: prices and
//! roles, the order with its items, payment row and first saga steps in one
//! batch, and the idempotency keys of `POST /api/orders`.

use serde::Deserialize;
use serde_json::{Map, Value};
use worker::D1Database;

use super::d1::{all, first, int, opt_text, run, stmt, text};
use super::outbox::{OutboxMessage, Queue};
use crate::domain::saga::CheckoutStep;
use crate::error::ApiError;

#[derive(Debug, Clone, Deserialize)]
pub struct PricedClass {
    pub id: String,
    pub name: String,
    pub price_cents: i64,
    pub currency: String,
}

pub async fn priced_classes(
    db: &D1Database,
    event_id: &str,
    ids: &[String],
) -> Result<Vec<PricedClass>, ApiError> {
    let list = serde_json::to_string(ids).map_err(ApiError::internal)?;
    all(
        db,
        "SELECT id, name, price_cents, currency FROM ticket_classes \
         WHERE event_id = ?1 AND id IN (SELECT value FROM json_each(?2))",
        &[text(event_id), text(&list)],
    )
    .await
}

pub async fn role_of(
    db: &D1Database,
    event_id: &str,
    user_id: &str,
) -> Result<Option<String>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        role: String,
    }
    Ok(first::<Row>(
        db,
        "SELECT role FROM event_roles WHERE event_id = ?1 AND user_id = ?2",
        &[text(event_id), text(user_id)],
    )
    .await?
    .map(|r| r.role))
}

pub struct NewOrder<'a> {
    pub id: &'a str,
    pub code: &'a str,
    pub event_id: &'a str,
    pub user_id: &'a str,
    pub total: i64,
    pub currency: &'a str,
    pub payment_method: &'a str,
    pub waitroom_session_id: Option<&'a str>,
    pub expires_at: i64,
    /// (ticket class id, quantity, unit price)
    pub items: Vec<(String, i64, i64)>,
    pub payment_id: &'a str,
    pub provider_ref: &'a str,
}

/// The order, its items, its payment row (so an early webhook always finds it), the saga's
/// first steps and ORDER_CREATED: all or nothing.
pub async fn write_order(db: &D1Database, o: &NewOrder<'_>, now: i64) -> Result<String, ApiError> {
    let mut statements = vec![stmt(
        db,
        "INSERT INTO orders (id, code, event_id, user_id, status, total_amount_cents, currency, \
         payment_method, waitroom_session_id, expires_at, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, 'PENDING', ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
        &[
            text(o.id),
            text(o.code),
            text(o.event_id),
            text(o.user_id),
            int(o.total),
            text(o.currency),
            text(o.payment_method),
            opt_text(o.waitroom_session_id),
            int(o.expires_at),
            int(now),
        ],
    )?];
    for (class_id, quantity, price) in &o.items {
        statements.push(stmt(
            db,
            "INSERT INTO order_items (order_id, ticket_class_id, quantity, price_cents) VALUES (?1, ?2, ?3, ?4)",
            &[text(o.id), text(class_id), int(*quantity), int(*price)],
        )?);
    }
    statements.push(stmt(
        db,
        "INSERT INTO payments (id, order_id, provider, provider_ref, amount, currency, status, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'PENDING', ?7, ?7)",
        &[
            text(o.payment_id),
            text(o.id),
            text(o.payment_method),
            text(o.provider_ref),
            int(o.total),
            text(o.currency),
            int(now),
        ],
    )?);
    // A waitroom order was bound to its checkout by the reserve itself (one step in the
    // object), so the record says so from the start: a compensation then always frees or
    // reopens the checkout, with no window in which the order is bound but not known to be.
    let bound = o.waitroom_session_id.map(|_| CheckoutStep::CheckoutBound);
    for step in [CheckoutStep::Reserved, CheckoutStep::OrderWritten]
        .into_iter()
        .chain(bound)
    {
        statements.push(step_statement(db, o.id, step, now)?);
    }
    let mut payload = Map::new();
    payload.insert("orderId".into(), o.id.into());
    payload.insert("orderCode".into(), o.code.into());
    payload.insert("userId".into(), o.user_id.into());
    payload.insert("totalAmountCents".into(), o.total.into());
    payload.insert("currency".into(), o.currency.into());
    payload.insert("paymentMethod".into(), o.payment_method.into());
    payload.insert(
        "items".into(),
        Value::Array(
            o.items
                .iter()
                .map(|(c, q, p)| serde_json::json!({"ticketClassId": c, "quantity": q, "priceCents": p}))
                .collect(),
        ),
    );
    let outbox_id = format!("order-{}-created", o.id);
    statements.push(
        OutboxMessage::new(
            outbox_id.clone(),
            Queue::DomainEvents,
            "ORDER_CREATED",
            ("order", o.id),
            o.event_id,
            now,
            payload,
        )
        .insert(db, now)?,
    );
    db.batch(statements).await.map_err(ApiError::from)?;
    Ok(outbox_id)
}

fn step_statement(
    db: &D1Database,
    order_id: &str,
    step: CheckoutStep,
    now: i64,
) -> Result<worker::D1PreparedStatement, ApiError> {
    stmt(
        db,
        "INSERT OR IGNORE INTO saga_steps (order_id, step, status, at) VALUES (?1, ?2, 'DONE', ?3)",
        &[text(order_id), text(step.as_str()), int(now)],
    )
}

pub async fn set_payment_url(
    db: &D1Database,
    payment_id: &str,
    order_id: &str,
    url: &str,
    now: i64,
) -> Result<(), ApiError> {
    db.batch(vec![
        stmt(
            db,
            "UPDATE payments SET payment_url = ?2, updated_at = ?3 WHERE id = ?1",
            &[text(payment_id), text(url), int(now)],
        )?,
        step_statement(db, order_id, CheckoutStep::PaymentCreated, now)?,
    ])
    .await
    .map_err(ApiError::from)?;
    Ok(())
}

/// The payment of an order as the order request left it: its id and, once the provider gave
/// one, the link the buyer pays at.
#[derive(Debug, Deserialize)]
pub struct CheckoutPayment {
    pub id: String,
    pub payment_url: Option<String>,
}

pub async fn checkout_payment(
    db: &D1Database,
    order_id: &str,
) -> Result<Option<CheckoutPayment>, ApiError> {
    first(
        db,
        "SELECT id, payment_url FROM payments WHERE order_id = ?1 ORDER BY created_at LIMIT 1",
        &[text(order_id)],
    )
    .await
}

/// The payment could not be created: it is cancelled so a late notification cannot settle it.
pub async fn cancel_payment(db: &D1Database, payment_id: &str, now: i64) -> Result<(), ApiError> {
    run(
        db,
        "UPDATE payments SET status = 'CANCELLED', updated_at = ?2 WHERE id = ?1 AND status = 'PENDING'",
        &[text(payment_id), int(now)],
    )
    .await?;
    Ok(())
}

// ----------------------------------------------------------------------------------------
// Idempotency keys of POST /api/orders (kept 24 hours).

pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

/// How long a request owns its key. An order request finishes well within it (the provider's
/// create call times out after 8 s); a key still IN_FLIGHT after it belongs to a request that
/// died, and a retry with the same body may take it over. (Were a live request ever slower,
/// the retry would give back its hold and make a second order; a payment for the first would
/// still be settled by the late-payment path, re-reserving or refunding.)
pub const IDEMPOTENCY_LEASE_MS: i64 = 60 * 1000;

#[derive(Debug, Deserialize)]
pub struct KeyRow {
    pub request_hash: String,
    pub state: String,
    pub response_status: Option<i64>,
    pub response_body: Option<String>,
    /// The order its request makes (`None` for keys written before keys named their order).
    pub order_id: Option<String>,
    created_at: i64,
    lease_expires_at: Option<i64>,
}

impl KeyRow {
    /// Whether the request holding the key has outlived its lease, that is, died. Keys written
    /// before the lease count from their creation.
    fn lease_over(&self, now: i64) -> bool {
        self.lease_expires_at
            .unwrap_or(self.created_at + IDEMPOTENCY_LEASE_MS)
            <= now
    }
}

pub enum Claim {
    /// This request owns the key now and makes the order it claimed the key for.
    Fresh,
    /// This request took the key over from one that died while holding it; that request was
    /// creating `dead_order_id` (`None` for a key written before keys named their order).
    TakenOver {
        dead_order_id: Option<String>,
    },
    Existing(KeyRow),
}

/// Claims the key for a request that will create `order_id`.
pub async fn claim_key(
    db: &D1Database,
    user_id: &str,
    key: &str,
    hash: &str,
    order_id: &str,
    now: i64,
) -> Result<Claim, ApiError> {
    // An expired key may be reused; the delete and the insert race harmlessly (PRIMARY KEY).
    run(
        db,
        "DELETE FROM idempotency_keys WHERE user_id = ?1 AND key = ?2 AND expires_at <= ?3",
        &[text(user_id), text(key), int(now)],
    )
    .await?;
    let inserted = run(
        db,
        "INSERT OR IGNORE INTO idempotency_keys \
         (user_id, key, request_hash, state, order_id, lease_expires_at, created_at, expires_at) \
         VALUES (?1, ?2, ?3, 'IN_FLIGHT', ?4, ?5, ?6, ?7)",
        &[
            text(user_id),
            text(key),
            text(hash),
            text(order_id),
            int(now + IDEMPOTENCY_LEASE_MS),
            int(now),
            int(now + IDEMPOTENCY_TTL_MS),
        ],
    )
    .await?;
    if inserted == 1 {
        return Ok(Claim::Fresh);
    }
    let row: Option<KeyRow> = first(
        db,
        "SELECT request_hash, state, response_status, response_body, order_id, created_at, \
         lease_expires_at FROM idempotency_keys WHERE user_id = ?1 AND key = ?2",
        &[text(user_id), text(key)],
    )
    .await?;
    let Some(row) = row else {
        // Deleted between our insert and read (expired): treat as in flight, the client retries.
        return Err(ApiError::rule(
            409,
            "IDEMPOTENCY_KEY_IN_FLIGHT",
            "Retry in a moment.",
        ));
    };
    if row.state == "IN_FLIGHT" && row.request_hash == hash && row.lease_over(now) {
        // Its request died. The UPDATE is the lock: of two retries racing, only one still finds
        // the lease over and the order it read. The key names our order from now on, so that,
        // should this request die too, the next one finds what this one made.
        let taken = run(
            db,
            "UPDATE idempotency_keys SET lease_expires_at = ?3, order_id = ?4 \
             WHERE user_id = ?1 AND key = ?2 AND state = 'IN_FLIGHT' AND order_id IS ?5 \
               AND COALESCE(lease_expires_at, created_at + ?6) <= ?7",
            &[
                text(user_id),
                text(key),
                int(now + IDEMPOTENCY_LEASE_MS),
                text(order_id),
                opt_text(row.order_id.as_deref()),
                int(IDEMPOTENCY_LEASE_MS),
                int(now),
            ],
        )
        .await?;
        if taken == 1 {
            return Ok(Claim::TakenOver {
                dead_order_id: row.order_id,
            });
        }
    }
    Ok(Claim::Existing(row))
}

pub async fn store_response(
    db: &D1Database,
    user_id: &str,
    key: &str,
    status: u16,
    body: &str,
) -> Result<(), ApiError> {
    run(
        db,
        "UPDATE idempotency_keys SET state = 'DONE', response_status = ?3, response_body = ?4 WHERE user_id = ?1 AND key = ?2",
        &[text(user_id), text(key), int(i64::from(status)), text(body)],
    )
    .await?;
    Ok(())
}

/// A server-side failure is not a result worth replaying: free the key for a retry.
pub async fn release_key(db: &D1Database, user_id: &str, key: &str) -> Result<(), ApiError> {
    run(
        db,
        "DELETE FROM idempotency_keys WHERE user_id = ?1 AND key = ?2 AND state = 'IN_FLIGHT'",
        &[text(user_id), text(key)],
    )
    .await?;
    Ok(())
}
