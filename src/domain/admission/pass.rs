//! The waitroom pass: a sharded fan's own record as their shard last gave it, signed by the
//! Worker and carried by the fan (`Waitroom-Pass`, README "Queue shards"). A poll that brings
//! it is answered from it and the shard's published snapshot by whichever isolate, at whichever
//! location, takes the poll, without asking the shard. Without it only the isolate that read
//! the record can do that, and Cloudflare spreads a crowd's polls over many isolates.
//!
//! A pass is good for [`PASS_TTL_MS`] after the shard gave the record: the same bound as an
//! isolate's own memory of it, so a fan is still seen by their shard about every 30 s (the
//! idle timeout is ten minutes) and a leave made elsewhere shows within that time. It names
//! the event and the user, so it answers nobody else's polls, and carries nothing the fan may
//! not see (their own session id, place and status).
//!
//! Format: `base64url(JSON body) "." base64url(HMAC-SHA256(key, first part))`, the key derived
//! from the deployment's JWT secret for this one use.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::shard::FanRecord;

/// How long a pass answers polls after its record was read from the shard.
pub const PASS_TTL_MS: i64 = 30_000;

/// How far ahead of this isolate's clock a pass may have been issued (another isolate's clock).
const CLOCK_SKEW_MS: i64 = 5_000;

/// Passes longer than this are refused before any decoding.
const MAX_PASS_LEN: usize = 2_048;

#[derive(Serialize, Deserialize)]
struct PassBody {
    #[serde(rename = "e")]
    event_id: String,
    #[serde(rename = "u")]
    user_id: String,
    #[serde(rename = "r")]
    record: FanRecord,
    /// When the shard gave the record (ms).
    #[serde(rename = "t")]
    issued_at: i64,
}

/// A pass's record, once its signature and names check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedPass {
    pub record: FanRecord,
    pub issued_at: i64,
}

/// Why a pass does not answer a poll. The poll is then answered the way it would be without
/// one (from the shard): a bad pass is never an error for the fan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassRefusal {
    Malformed,
    BadSignature,
    /// Signed for another event or another user.
    NotTheirs,
    /// Older than [`PASS_TTL_MS`], or issued further ahead than clocks disagree.
    Stale,
}

/// HMAC-SHA256 keyed by 32 bytes, padded to one 64-byte block, which makes `new` infallible.
fn keyed(key: &[u8; 32]) -> Hmac<Sha256> {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    <Hmac<Sha256> as hmac::digest::KeyInit>::new(&block.into())
}

/// The key passes are signed with, derived from the deployment's secret.
#[derive(Clone)]
pub struct PassKey([u8; 32]);

impl PassKey {
    pub fn derive(secret: &[u8]) -> Self {
        // The secret, of any length, is hashed to a key of one size.
        let mut mac = keyed(&<Sha256 as sha2::Digest>::digest(secret).into());
        mac.update(b"waitroom-pass:v1");
        Self(mac.finalize().into_bytes().into())
    }

    fn mac(&self) -> Hmac<Sha256> {
        keyed(&self.0)
    }

    /// The pass for `record` as the shard gave it at `now_ms`.
    pub fn issue(&self, event_id: &str, user_id: &str, record: &FanRecord, now_ms: i64) -> String {
        let body = PassBody {
            event_id: event_id.to_owned(),
            user_id: user_id.to_owned(),
            record: record.clone(),
            issued_at: now_ms,
        };
        // Serializing plain strings and numbers cannot fail; an empty body would not verify.
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let payload = B64.encode(json);
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        let tag = B64.encode(mac.finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    /// The record a pass carries, if it is signed with this key, names this event and user,
    /// and is fresh at `now_ms`.
    pub fn open(
        &self,
        pass: &str,
        event_id: &str,
        user_id: &str,
        now_ms: i64,
    ) -> Result<OpenedPass, PassRefusal> {
        if pass.len() > MAX_PASS_LEN {
            return Err(PassRefusal::Malformed);
        }
        let (payload, tag) = pass.split_once('.').ok_or(PassRefusal::Malformed)?;
        let tag = B64.decode(tag).map_err(|_| PassRefusal::Malformed)?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        // Constant time: a forger learns nothing from how long a refusal took.
        mac.verify_slice(&tag)
            .map_err(|_| PassRefusal::BadSignature)?;
        let json = B64.decode(payload).map_err(|_| PassRefusal::Malformed)?;
        let body: PassBody = serde_json::from_slice(&json).map_err(|_| PassRefusal::Malformed)?;
        if body.event_id != event_id || body.user_id != user_id {
            return Err(PassRefusal::NotTheirs);
        }
        let age = now_ms.saturating_sub(body.issued_at);
        if !(-CLOCK_SKEW_MS..PASS_TTL_MS).contains(&age) {
            return Err(PassRefusal::Stale);
        }
        Ok(OpenedPass {
            record: body.record,
            issued_at: body.issued_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::admission::place::Place;
    use crate::domain::admission::shard::FanStatus;

    const NOW: i64 = 1_800_000_000_000;

    fn record() -> FanRecord {
        FanRecord {
            session_id: "s-1".into(),
            place: Place::Queue {
                at_ms: NOW - 2_000,
                tie_break: u64::MAX - 7,
                user_id: "fan-1".into(),
            },
            status: FanStatus::Queued {
                joined_at: NOW - 2_000,
                last_seen_at: NOW - 2_000,
            },
        }
    }

    #[test]
    fn a_pass_gives_back_the_record_it_was_issued_for() {
        let key = PassKey::derive(b"a deployment secret of some length");
        let pass = key.issue("evt-1", "fan-1", &record(), NOW);
        assert_eq!(
            key.open(&pass, "evt-1", "fan-1", NOW + 29_999),
            Ok(OpenedPass {
                record: record(),
                issued_at: NOW
            })
        );
        assert!(!pass.contains(char::is_whitespace), "fits a header");
    }

    #[test]
    fn a_pass_answers_only_its_own_fan_and_event_and_only_while_fresh() {
        let key = PassKey::derive(b"a deployment secret of some length");
        let pass = key.issue("evt-1", "fan-1", &record(), NOW);
        assert_eq!(
            key.open(&pass, "evt-1", "fan-2", NOW),
            Err(PassRefusal::NotTheirs)
        );
        assert_eq!(
            key.open(&pass, "evt-2", "fan-1", NOW),
            Err(PassRefusal::NotTheirs)
        );
        assert_eq!(
            key.open(&pass, "evt-1", "fan-1", NOW + PASS_TTL_MS),
            Err(PassRefusal::Stale)
        );
        // Another isolate's clock a little ahead is fine; far ahead is not.
        assert!(key.open(&pass, "evt-1", "fan-1", NOW - 4_000).is_ok());
        assert_eq!(
            key.open(&pass, "evt-1", "fan-1", NOW - 6_000),
            Err(PassRefusal::Stale)
        );
    }

    #[test]
    fn a_forged_or_mangled_pass_is_refused() {
        let key = PassKey::derive(b"a deployment secret of some length");
        let other = PassKey::derive(b"another deployment's secret");
        let pass = key.issue("evt-1", "fan-1", &record(), NOW);
        assert_eq!(
            other.open(&pass, "evt-1", "fan-1", NOW),
            Err(PassRefusal::BadSignature)
        );
        // The body changed (another place), the signature kept.
        let (_, tag) = pass.split_once('.').expect("two parts");
        let mut moved = record();
        moved.place = Place::Queue {
            at_ms: 0,
            tie_break: 0,
            user_id: "fan-1".into(),
        };
        let forged_body = key.issue("evt-1", "fan-1", &moved, NOW);
        let (forged_payload, _) = forged_body.split_once('.').expect("two parts");
        assert_eq!(
            key.open(&format!("{forged_payload}.{tag}"), "evt-1", "fan-1", NOW),
            Err(PassRefusal::BadSignature)
        );
        for junk in [
            "",
            ".",
            "abc",
            "abc.def",
            "!!.!!",
            &"a".repeat(MAX_PASS_LEN + 1),
        ] {
            assert!(key.open(junk, "evt-1", "fan-1", NOW).is_err(), "{junk}");
        }
    }
}
