//! What the checkout saga reads from the catalogue and writes for a new order: prices and
//! roles, the order with its items, payment row and first saga steps in one
//! batch, and the idempotency keys of `POST /api/orders`.

use serde::Deserialize;
use serde_json::{Map, Value};
use worker::D1Database;

use super::d1::{all, first, int, opt_text, run, stmt, text};
use super::outbox::{OutboxMessage, Queue};
use crate::checkout::ports::{CheckoutPayment, KeyRow, KeyTakeover, NewKey, NewOrder};
use crate::domain::checkout::PricedClass;
use crate::domain::saga::CheckoutStep;
use crate::error::ApiError;

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
    if let Some(payment) = &o.payment {
        statements.push(stmt(
            db,
            "INSERT INTO payments (id, order_id, provider, provider_ref, amount, currency, status, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'PENDING', ?7, ?7)",
            &[
                text(payment.id),
                text(o.id),
                text(o.payment_method),
                text(payment.provider_ref),
                int(o.total),
                text(o.currency),
                int(now),
            ],
        )?);
    }
    // A waitroom order's binding is recorded from the start (see `NewOrder::steps_done`):
    // no window in which the order is bound but not known to be.
    for step in o.steps_done() {
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
// Idempotency keys of POST /api/orders (the protocol is `checkout::idempotency`).

/// Deletes the key if it has expired, so it may be used again.
pub async fn delete_expired_key(
    db: &D1Database,
    user_id: &str,
    key: &str,
    now: i64,
) -> Result<(), ApiError> {
    run(
        db,
        "DELETE FROM idempotency_keys WHERE user_id = ?1 AND key = ?2 AND expires_at <= ?3",
        &[text(user_id), text(key), int(now)],
    )
    .await?;
    Ok(())
}

/// Inserts the key IN_FLIGHT unless it exists; whether it was inserted.
pub async fn insert_key(db: &D1Database, k: &NewKey<'_>) -> Result<bool, ApiError> {
    let inserted = run(
        db,
        "INSERT OR IGNORE INTO idempotency_keys \
         (user_id, key, request_hash, state, order_id, lease_expires_at, created_at, expires_at) \
         VALUES (?1, ?2, ?3, 'IN_FLIGHT', ?4, ?5, ?6, ?7)",
        &[
            text(k.user_id),
            text(k.key),
            text(k.request_hash),
            text(k.order_id),
            int(k.lease_expires_at),
            int(k.created_at),
            int(k.expires_at),
        ],
    )
    .await?;
    Ok(inserted == 1)
}

pub async fn read_key(
    db: &D1Database,
    user_id: &str,
    key: &str,
) -> Result<Option<KeyRow>, ApiError> {
    first(
        db,
        "SELECT request_hash, state, response_status, response_body, order_id, created_at, \
         lease_expires_at FROM idempotency_keys WHERE user_id = ?1 AND key = ?2",
        &[text(user_id), text(key)],
    )
    .await
}

/// Takes an IN_FLIGHT key over from a dead request; the UPDATE is the lock (see
/// `KeyTakeover`). Whether this call took it.
pub async fn take_over_key(db: &D1Database, t: &KeyTakeover<'_>) -> Result<bool, ApiError> {
    let taken = run(
        db,
        "UPDATE idempotency_keys SET lease_expires_at = ?3, order_id = ?4 \
         WHERE user_id = ?1 AND key = ?2 AND state = 'IN_FLIGHT' AND order_id IS ?5 \
           AND COALESCE(lease_expires_at, created_at + ?6) <= ?7",
        &[
            text(t.user_id),
            text(t.key),
            int(t.lease_expires_at),
            text(t.order_id),
            opt_text(t.dead_order_id),
            int(t.lease_ms),
            int(t.now),
        ],
    )
    .await?;
    Ok(taken == 1)
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
