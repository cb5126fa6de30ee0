//! Signed tokens: the access token a user logs in with and the checkout token the waitroom
//! hands out on admission. HS256 JWTs via `jwt-compact`; the clock is passed in.

use chrono::Duration;
use jwt_compact::{
    alg::{Hs256, Hs256Key},
    AlgorithmExt, Claims, Header, TimeOptions, UntrustedToken, ValidationError,
};
use serde::{Deserialize, Serialize};

use super::time::utc;
use super::ttl_cache::TtlCache;

/// Who issues our tokens, and who they are for. A token minted for another service (another
/// audience) or by another issuer is refused even if it were signed with the same key.
pub const ISSUER: &str = "ticketbottle-edge";
pub const ACCESS_AUDIENCE: &str = "ticketbottle-api";
pub const CHECKOUT_AUDIENCE: &str = "ticketbottle-checkout";

/// Leeway for clock skew between edge locations.
const LEEWAY_SECONDS: i64 = 30;
/// Shorter secrets make HS256 guessable; refuse them outside development.
pub const MIN_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlatformRole {
    User,
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    /// The role when the token was signed, for clients; the server re-derives it per request.
    pub role: PlatformRole,
    /// The account's token version when signed (`domain::sessions`); a token from before the
    /// versions existed reads as 0.
    #[serde(default)]
    pub ver: u32,
    /// The account's email was verified when signed (a verified address stays verified).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ev: bool,
    pub iss: String,
    pub aud: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutClaims {
    /// The admitted user.
    pub sub: String,
    /// The event the checkout slot belongs to.
    pub evt: String,
    /// The waitroom session holding the slot.
    pub sid: String,
    pub iss: String,
    pub aud: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token algorithm is not accepted")]
    WrongAlgorithm,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not yet valid")]
    NotYetValid,
    #[error("token was issued for another audience or issuer")]
    WrongAudience,
    #[error("token lacks a required claim")]
    MissingClaim,
    #[error("could not sign token")]
    Signing,
}

/// The HMAC key both token kinds are signed with.
pub struct TokenKey(Hs256Key);

impl TokenKey {
    pub fn new(secret: &[u8]) -> Self {
        TokenKey(Hs256Key::new(secret))
    }

    fn sign<T: Serialize>(
        &self,
        custom: T,
        now_ms: i64,
        ttl_seconds: i64,
    ) -> Result<String, TokenError> {
        let options = TimeOptions::new(Duration::seconds(LEEWAY_SECONDS), move || utc(now_ms));
        let claims =
            Claims::new(custom).set_duration_and_issuance(&options, Duration::seconds(ttl_seconds));
        self.signed(&claims)
    }

    fn signed<T: Serialize>(&self, claims: &Claims<T>) -> Result<String, TokenError> {
        Hs256
            .token(&Header::empty().with_token_type("JWT"), claims, &self.0)
            .map_err(|_| TokenError::Signing)
    }

    fn verify<T>(&self, token: &str, now_ms: i64) -> Result<Claims<T>, TokenError>
    where
        T: for<'de> Deserialize<'de> + Clone,
    {
        let untrusted = UntrustedToken::new(token).map_err(|_| TokenError::Malformed)?;
        // Only HS256 is ever accepted: this refuses `alg: none` and algorithm confusion.
        if untrusted.algorithm() != "HS256" {
            return Err(TokenError::WrongAlgorithm);
        }
        let checked = Hs256
            .validator::<T>(&self.0)
            .validate(&untrusted)
            .map_err(|e| match e {
                ValidationError::AlgorithmMismatch { .. } => TokenError::WrongAlgorithm,
                ValidationError::InvalidSignature
                | ValidationError::InvalidSignatureLen { .. }
                | ValidationError::MalformedSignature(_) => TokenError::BadSignature,
                _ => TokenError::Malformed,
            })?;
        let options = TimeOptions::new(Duration::seconds(LEEWAY_SECONDS), move || utc(now_ms));
        let claims = checked.claims();
        if claims.expiration.is_none() {
            return Err(TokenError::MissingClaim);
        }
        claims
            .validate_expiration(&options)
            .map_err(|_| TokenError::Expired)?;
        if claims.not_before.is_some() {
            claims
                .validate_maturity(&options)
                .map_err(|_| TokenError::NotYetValid)?;
        }
        // `iat` in the future (beyond leeway) means a token we did not issue on this clock.
        if let Some(iat) = claims.issued_at {
            if iat > utc(now_ms) + Duration::seconds(LEEWAY_SECONDS) {
                return Err(TokenError::NotYetValid);
            }
        }
        Ok(claims.clone())
    }

    pub fn issue_access(
        &self,
        user_id: &str,
        role: PlatformRole,
        token_version: u32,
        now_ms: i64,
        ttl_seconds: i64,
    ) -> Result<String, TokenError> {
        self.issue_access_for(user_id, role, token_version, false, now_ms, ttl_seconds)
    }

    /// [`Self::issue_access`] saying whether the account's email is verified (`ev`).
    pub fn issue_access_for(
        &self,
        user_id: &str,
        role: PlatformRole,
        token_version: u32,
        email_verified: bool,
        now_ms: i64,
        ttl_seconds: i64,
    ) -> Result<String, TokenError> {
        let claims = AccessClaims {
            sub: user_id.to_string(),
            role,
            ver: token_version,
            ev: email_verified,
            iss: ISSUER.into(),
            aud: ACCESS_AUDIENCE.into(),
        };
        self.sign(claims, now_ms, ttl_seconds)
    }

    pub fn verify_access(&self, token: &str, now_ms: i64) -> Result<AccessClaims, TokenError> {
        self.verify_access_until(token, now_ms)
            .map(|(claims, _)| claims)
    }

    /// The access token's claims and the last instant it is accepted (its `exp` plus the
    /// leeway), for [`VerifiedAccess`].
    pub fn verify_access_until(
        &self,
        token: &str,
        now_ms: i64,
    ) -> Result<(AccessClaims, i64), TokenError> {
        let claims = self.verify::<AccessClaims>(token, now_ms)?;
        let accepted_until = claims
            .expiration
            .map_or(now_ms, |exp| exp.timestamp_millis() + LEEWAY_SECONDS * 1000);
        let claims = claims.custom;
        if claims.aud != ACCESS_AUDIENCE || claims.iss != ISSUER {
            return Err(TokenError::WrongAudience);
        }
        Ok((claims, accepted_until))
    }

    /// A checkout token valid until `expires_at_ms` (the session's checkout deadline), signed
    /// at `issued_at_ms` (the admission, or a later read that mints it again). Its expiry is the
    /// deadline itself, in whole seconds rounded down, never derived from the signing time: every
    /// token of one checkout, minted by the event's object or by a queue shard at any moment,
    /// runs out at the same second, and none outlives the checkout.
    pub fn issue_checkout(
        &self,
        user_id: &str,
        event_id: &str,
        session_id: &str,
        issued_at_ms: i64,
        expires_at_ms: i64,
    ) -> Result<String, TokenError> {
        let mut claims = Claims::new(CheckoutClaims {
            sub: user_id.into(),
            evt: event_id.into(),
            sid: session_id.into(),
            iss: ISSUER.into(),
            aud: CHECKOUT_AUDIENCE.into(),
        });
        claims.issued_at = Some(utc(issued_at_ms.min(expires_at_ms)));
        claims.expiration = Some(utc(expires_at_ms));
        self.signed(&claims)
    }

    pub fn verify_checkout(&self, token: &str, now_ms: i64) -> Result<CheckoutClaims, TokenError> {
        let claims = self.verify::<CheckoutClaims>(token, now_ms)?.custom;
        if claims.aud != CHECKOUT_AUDIENCE || claims.iss != ISSUER {
            return Err(TokenError::WrongAudience);
        }
        Ok(claims)
    }
}

/// Access tokens this isolate verified, so that a fan polling every few seconds costs one
/// signature check per minute instead of one per poll (HS256 in wasm was a twelfth of a poll's
/// time). Only tokens that verified are kept, with the instant they stop being accepted; the
/// key is the whole token, so a hit is the very text that verified under this isolate's key.
pub struct VerifiedAccess(TtlCache<(AccessClaims, i64)>);

/// How long a verified token is trusted without checking its signature again.
const VERIFIED_TTL_MS: i64 = 60_000;
/// Tokens remembered (each about half a kilobyte with its claims).
const VERIFIED_CAPACITY: usize = 4_096;

impl Default for VerifiedAccess {
    fn default() -> Self {
        Self(TtlCache::new(VERIFIED_TTL_MS, VERIFIED_CAPACITY))
    }
}

impl VerifiedAccess {
    /// The claims of `token`, from memory while it is still accepted, else verified by `key`.
    pub fn verify(
        &mut self,
        key: &TokenKey,
        token: &str,
        now_ms: i64,
    ) -> Result<AccessClaims, TokenError> {
        if let Some((claims, until)) = self.0.get(token, now_ms) {
            if now_ms <= until {
                return Ok(claims);
            }
            return Err(TokenError::Expired);
        }
        let (claims, until) = key.verify_access_until(token, now_ms)?;
        self.0.put(token, (claims.clone(), until), now_ms);
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD as B64, Engine};

    const NOW: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    const SECRET: &[u8] = b"test-secret-of-at-least-thirty-two-bytes!";

    fn key() -> TokenKey {
        TokenKey::new(SECRET)
    }

    #[test]
    fn a_fresh_access_token_verifies_with_its_claims() {
        let token = key()
            .issue_access("u1", PlatformRole::Admin, 0, NOW, 3600)
            .unwrap();
        let claims = key().verify_access(&token, NOW + 1000).unwrap();
        assert_eq!(claims.sub, "u1");
        assert_eq!(claims.role, PlatformRole::Admin);
        assert_eq!(claims.aud, ACCESS_AUDIENCE);
    }

    #[test]
    fn alg_none_is_rejected() {
        let token = key()
            .issue_access("u1", PlatformRole::User, 0, NOW, 3600)
            .unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let header = B64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let forged = format!("{header}.{payload}.");
        assert_eq!(
            key().verify_access(&forged, NOW),
            Err(TokenError::WrongAlgorithm)
        );
    }

    #[test]
    fn another_algorithm_is_rejected() {
        let token = key()
            .issue_access("u1", PlatformRole::User, 0, NOW, 3600)
            .unwrap();
        let mut parts = token.split('.');
        parts.next();
        let payload = parts.next().unwrap();
        let sig = parts.next().unwrap();
        let header = B64.encode(br#"{"alg":"HS512","typ":"JWT"}"#);
        let forged = format!("{header}.{payload}.{sig}");
        assert_eq!(
            key().verify_access(&forged, NOW),
            Err(TokenError::WrongAlgorithm)
        );
    }

    #[test]
    fn a_token_signed_with_another_key_is_rejected() {
        let other = TokenKey::new(b"another-secret-of-at-least-32-bytes!!!");
        let token = other
            .issue_access("u1", PlatformRole::Admin, 0, NOW, 3600)
            .unwrap();
        assert_eq!(
            key().verify_access(&token, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn a_tampered_payload_is_rejected() {
        let token = key()
            .issue_access("u1", PlatformRole::User, 0, NOW, 3600)
            .unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let claims = String::from_utf8(B64.decode(parts[1]).unwrap())
            .unwrap()
            .replace("\"user\"", "\"admin\"");
        let forged = format!("{}.{}.{}", parts[0], B64.encode(claims), parts[2]);
        assert_eq!(
            key().verify_access(&forged, NOW),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn an_expired_token_is_rejected() {
        let token = key()
            .issue_access("u1", PlatformRole::User, 0, NOW, 60)
            .unwrap();
        assert_eq!(
            key().verify_access(&token, NOW + (60 + LEEWAY_SECONDS + 1) * 1000),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_token_issued_in_the_future_is_not_yet_valid() {
        let token = key()
            .issue_access("u1", PlatformRole::User, 0, NOW + 3_600_000, 7200)
            .unwrap();
        assert_eq!(
            key().verify_access(&token, NOW),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn a_checkout_token_is_not_an_access_token() {
        let token = key()
            .issue_checkout("u1", "e1", "s1", NOW, NOW + 900_000)
            .unwrap();
        assert_eq!(key().verify_access(&token, NOW), Err(TokenError::Malformed));
        let access = key()
            .issue_access("u1", PlatformRole::User, 0, NOW, 3600)
            .unwrap();
        assert!(key().verify_checkout(&access, NOW).is_err());
    }

    #[test]
    fn a_wrong_audience_is_rejected() {
        let claims = AccessClaims {
            sub: "u1".into(),
            role: PlatformRole::User,
            ver: 0,
            ev: false,
            iss: ISSUER.into(),
            aud: "someone-else".into(),
        };
        let token = key().sign(claims, NOW, 3600).unwrap();
        assert_eq!(
            key().verify_access(&token, NOW),
            Err(TokenError::WrongAudience)
        );
    }

    #[test]
    fn an_access_token_says_whether_the_email_was_verified_and_old_ones_read_as_not() {
        let verified = key()
            .issue_access_for("u1", PlatformRole::User, 3, true, NOW, 3600)
            .unwrap();
        let claims = key().verify_access(&verified, NOW).unwrap();
        assert!(claims.ev);
        assert_eq!(claims.ver, 3);
        let plain = key()
            .issue_access("u1", PlatformRole::User, 3, NOW, 3600)
            .unwrap();
        assert!(!key().verify_access(&plain, NOW).unwrap().ev);
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in ["", "abc", "a.b", "a.b.c", "....", "eyJ.eyJ.sig"] {
            assert!(key().verify_access(bad, NOW).is_err(), "{bad}");
        }
        assert_eq!(
            key().verify_access("not-a-token", NOW),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn checkout_token_carries_event_and_session_until_its_deadline() {
        let token = key()
            .issue_checkout("u1", "e1", "s1", NOW, NOW + 900_000)
            .unwrap();
        let c = key().verify_checkout(&token, NOW + 899_000).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.evt.as_str(), c.sid.as_str()),
            ("u1", "e1", "s1")
        );
        assert_eq!(
            key().verify_checkout(&token, NOW + 900_000 + (LEEWAY_SECONDS + 1) * 1000),
            Err(TokenError::Expired)
        );
    }

    /// Whenever it is minted, a checkout's token says the same expiry: the deadline's second.
    #[test]
    fn every_token_of_one_checkout_runs_out_at_the_deadline_whenever_it_is_minted() {
        let deadline = NOW + 900_500;
        let expiry_of = |token: &str| {
            UntrustedToken::new(token)
                .unwrap()
                .deserialize_claims_unchecked::<CheckoutClaims>()
                .unwrap()
                .expiration
                .unwrap()
                .timestamp_millis()
        };
        let expiries: Vec<i64> = [0, 1, 300, 499, 500, 501, 999, 1_000, 61_700, 899_999]
            .iter()
            .map(|after| {
                let token = key()
                    .issue_checkout("u1", "e1", "s1", NOW + after, deadline)
                    .unwrap();
                expiry_of(&token)
            })
            .collect();
        assert!(
            expiries.iter().all(|&e| e == deadline / 1000 * 1000),
            "{expiries:?}"
        );
        // A read after the deadline mints a token that is already over.
        let late = key()
            .issue_checkout("u1", "e1", "s1", deadline + 5_000, deadline)
            .unwrap();
        assert_eq!(expiry_of(&late), deadline / 1000 * 1000);
    }

    #[test]
    fn the_token_version_round_trips_and_an_unversioned_token_reads_as_zero() {
        let token = key()
            .issue_access("u1", PlatformRole::User, 7, NOW, 3600)
            .unwrap();
        assert_eq!(key().verify_access(&token, NOW).unwrap().ver, 7);
        #[derive(serde::Serialize)]
        struct Old {
            sub: String,
            role: PlatformRole,
            iss: String,
            aud: String,
        }
        let old = Old {
            sub: "u1".into(),
            role: PlatformRole::User,
            iss: ISSUER.into(),
            aud: ACCESS_AUDIENCE.into(),
        };
        let token = key().sign(old, NOW, 3600).unwrap();
        assert_eq!(key().verify_access(&token, NOW).unwrap().ver, 0);
    }

    #[test]
    fn verified_access_is_remembered_until_the_token_runs_out() {
        let token = key()
            .issue_access("u1", PlatformRole::User, 0, NOW, 60)
            .unwrap();
        let mut verified = VerifiedAccess::default();
        assert_eq!(verified.verify(&key(), &token, NOW).unwrap().sub, "u1");
        // From memory: another key would refuse it, so a hit cannot have checked it again.
        let other = TokenKey::new(b"another-secret-of-at-least-thirty-two-bytes");
        assert_eq!(
            verified.verify(&other, &token, NOW + 1_000).unwrap().sub,
            "u1"
        );
        // Past `exp` plus the leeway, memory refuses it as verification would.
        let late = NOW + (60 + LEEWAY_SECONDS + 1) * 1000;
        assert_eq!(
            verified.verify(&key(), &token, late),
            Err(TokenError::Expired)
        );
        assert_eq!(key().verify_access(&token, late), Err(TokenError::Expired));
    }

    #[test]
    fn verified_access_never_remembers_a_refused_token() {
        let token = key()
            .issue_access("u1", PlatformRole::User, 0, NOW, 3600)
            .unwrap();
        let other = TokenKey::new(b"another-secret-of-at-least-thirty-two-bytes");
        let mut verified = VerifiedAccess::default();
        assert_eq!(
            verified.verify(&other, &token, NOW),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verified.verify(&other, &token, NOW + 1),
            Err(TokenError::BadSignature)
        );
        // A token changed by one character is another key in memory, and is checked.
        let mut tampered = token.clone();
        tampered.push('A');
        verified.verify(&key(), &token, NOW).unwrap();
        assert!(verified.verify(&key(), &tampered, NOW).is_err());
    }
}
