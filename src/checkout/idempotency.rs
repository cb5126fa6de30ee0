//! The Idempotency-Key protocol of `POST /api/orders`: a key is claimed IN_FLIGHT by the
//! request that makes its order, answered from its stored response for 24 hours, and taken
//! over by a retry with the same body once the request holding it has surely died.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::ports::{CheckoutStore, KeyRow, KeyTakeover, NewKey};
use crate::domain::validation::FieldError;
use crate::error::{parse_json, ApiError};

/// How long a key answers with its first response.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;

/// How long a request owns its key. An order request finishes well within it (the provider's
/// create call times out after 8 s); a key still IN_FLIGHT after it belongs to a request that
/// died, and a retry with the same body may take it over. (Were a live request ever slower,
/// the retry would give back its hold and make a second order; a payment for the first would
/// still be settled by the late-payment path, re-reserving or refunding.)
pub const IDEMPOTENCY_LEASE_MS: i64 = 60 * 1000;

/// Longest key accepted, in bytes.
const MAX_KEY_LEN: usize = 200;

/// A client's `Idempotency-Key`: present, not blank, at most 200 bytes, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(header: Option<&str>) -> Result<Self, ApiError> {
        let key = header
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::rule(
                    400,
                    "IDEMPOTENCY_KEY_REQUIRED",
                    "Send an Idempotency-Key header.",
                )
            })?;
        if key.len() > MAX_KEY_LEN {
            return Err(FieldError::new(
                "Idempotency-Key",
                format!("is longer than {MAX_KEY_LEN} characters"),
            )
            .into());
        }
        Ok(IdempotencyKey(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The hash a key remembers its request by. serde_json's map is ordered by key, so the same
/// JSON with other spacing or key order hashes the same.
pub fn canonical_hash(body: &str) -> Result<String, ApiError> {
    let value: Value = parse_json(body.as_bytes())?;
    Ok(hex::encode(Sha256::digest(value.to_string().as_bytes())))
}

/// Whether the request holding `row` has outlived its lease, that is, died. Keys written
/// before the lease count from their creation.
fn lease_over(row: &KeyRow, now: i64) -> bool {
    row.lease_expires_at
        .unwrap_or(row.created_at + IDEMPOTENCY_LEASE_MS)
        <= now
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request owns the key now and makes the order it claimed the key for.
    Fresh,
    /// This request took the key over from one that died while holding it; that request was
    /// creating `dead_order_id` (`None` for a key written before keys named their order).
    TakenOver { dead_order_id: Option<String> },
    /// Someone else's: DONE (replay it), or IN_FLIGHT and alive, or for another body.
    Existing(KeyRow),
}

/// Claims `key` for a request (body hashed to `hash`) that will create `order_id`.
pub async fn claim_key<S: CheckoutStore>(
    store: &S,
    user_id: &str,
    key: &IdempotencyKey,
    hash: &str,
    order_id: &str,
    now: i64,
) -> Result<Claim, ApiError> {
    let key = key.as_str();
    // An expired key may be reused; the delete and the insert race harmlessly (primary key).
    store.delete_expired_key(user_id, key, now).await?;
    let inserted = store
        .insert_key(&NewKey {
            user_id,
            key,
            request_hash: hash,
            order_id,
            lease_expires_at: now + IDEMPOTENCY_LEASE_MS,
            created_at: now,
            expires_at: now + IDEMPOTENCY_TTL_MS,
        })
        .await?;
    if inserted {
        return Ok(Claim::Fresh);
    }
    let Some(row) = store.read_key(user_id, key).await? else {
        // Deleted between our insert and read (expired): treat as in flight, the client retries.
        return Err(ApiError::rule(
            409,
            "IDEMPOTENCY_KEY_IN_FLIGHT",
            "Retry in a moment.",
        ));
    };
    if row.state == "IN_FLIGHT" && row.request_hash == hash && lease_over(&row, now) {
        // Its request died. The conditional update is the lock: of two retries racing, only
        // one still finds the lease over and the order it read. The key names our order from
        // now on, so that, should this request die too, the next one finds what this one made.
        let taken = store
            .take_over_key(&KeyTakeover {
                user_id,
                key,
                dead_order_id: row.order_id.as_deref(),
                order_id,
                lease_expires_at: now + IDEMPOTENCY_LEASE_MS,
                lease_ms: IDEMPOTENCY_LEASE_MS,
                now,
            })
            .await?;
        if taken {
            return Ok(Claim::TakenOver {
                dead_order_id: row.order_id,
            });
        }
    }
    Ok(Claim::Existing(row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_required_trimmed_and_bounded() {
        assert_eq!(
            IdempotencyKey::parse(None).unwrap_err().code(),
            "IDEMPOTENCY_KEY_REQUIRED"
        );
        assert_eq!(
            IdempotencyKey::parse(Some("   ")).unwrap_err().code(),
            "IDEMPOTENCY_KEY_REQUIRED"
        );
        assert_eq!(
            IdempotencyKey::parse(Some(" k-1 ")).unwrap().as_str(),
            "k-1"
        );
        let long = "k".repeat(201);
        assert_eq!(
            IdempotencyKey::parse(Some(&long)).unwrap_err().code(),
            "VALIDATION_FAILED"
        );
        assert!(IdempotencyKey::parse(Some(&"k".repeat(200))).is_ok());
    }

    #[test]
    fn the_same_json_hashes_the_same_whatever_its_spacing_or_key_order() {
        let a = canonical_hash(r#"{"a":1,"b":[1,2]}"#).unwrap();
        let b = canonical_hash("{ \"b\": [1, 2],\n \"a\": 1 }").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, canonical_hash(r#"{"a":2,"b":[1,2]}"#).unwrap());
        assert_eq!(canonical_hash("{").unwrap_err().code(), "MALFORMED_JSON");
    }

    #[test]
    fn a_lease_counts_from_creation_for_keys_written_before_leases() {
        let row = KeyRow {
            request_hash: "h".into(),
            state: "IN_FLIGHT".into(),
            response_status: None,
            response_body: None,
            order_id: None,
            created_at: 1_000,
            lease_expires_at: None,
        };
        assert!(!lease_over(&row, 1_000 + IDEMPOTENCY_LEASE_MS - 1));
        assert!(lease_over(&row, 1_000 + IDEMPOTENCY_LEASE_MS));
        let leased = KeyRow {
            lease_expires_at: Some(5_000),
            ..row
        };
        assert!(!lease_over(&leased, 4_999));
        assert!(lease_over(&leased, 5_000));
    }
}
