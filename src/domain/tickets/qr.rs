//! The `qr` payload: a compact, versioned string the platform signs with Ed25519 and anyone
//! holding the public key verifies offline.
//!
//! `TB1.<kid>.<eventId>.<ticketId>.<ticketClassId>.<signature>`: the ids are the 16 bytes of
//! their UUIDs and the signature its 64 bytes, all base64url without padding; `kid` names the
//! key (8 base64url characters of the public key's SHA-256), so keys can be rotated. The
//! signature covers the text before its own dot, byte for byte, and every part must be in its
//! one canonical spelling: any change to a signed qr is refused, not reinterpreted.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// The format's first part; a future layout gets a new one.
pub const QR_VERSION: &str = "TB1";
/// No valid qr is longer (version, kid, three ids, signature and dots come to 168 bytes):
/// refuse bigger input before decoding anything.
pub const MAX_QR_LEN: usize = 200;

/// What a valid qr says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketClaim {
    pub event_id: String,
    pub ticket_id: String,
    pub ticket_class_id: String,
    pub kid: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    #[error("the qr is not a ticket payload")]
    Malformed,
    #[error("the qr was signed with a key this platform does not hold")]
    UnknownKey,
    #[error("the qr's signature does not match")]
    BadSignature,
    #[error("an id to sign is not a UUID")]
    NotAUuid,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("TICKET_SIGNING_KEY must be 32 bytes, base64url-encoded")]
pub struct BadSigningKey;

/// Signs tickets. Built from a 32-byte Ed25519 seed (the `TICKET_SIGNING_KEY` secret); signing
/// is deterministic, so no random source is needed at the edge.
pub struct TicketSigner {
    key: SigningKey,
    kid: String,
}

impl TicketSigner {
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let kid = key_id(&key.verifying_key());
        Self { key, kid }
    }

    /// The secret's text: base64url (padding and the standard alphabet tolerated) of 32 bytes.
    pub fn parse_seed(text: &str) -> Result<[u8; 32], BadSigningKey> {
        let trimmed = text.trim().trim_end_matches('=');
        let normalised: String = trimmed
            .chars()
            .map(|c| match c {
                '+' => '-',
                '/' => '_',
                other => other,
            })
            .collect();
        URL_SAFE_NO_PAD
            .decode(normalised)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or(BadSigningKey)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn verifier(&self) -> TicketVerifier {
        TicketVerifier {
            key: self.key.verifying_key(),
            kid: self.kid.clone(),
        }
    }

    /// The qr of one ticket. Every id must be a UUID (they all are, minted by this platform).
    pub fn sign(
        &self,
        event_id: &str,
        ticket_id: &str,
        ticket_class_id: &str,
    ) -> Result<String, QrError> {
        let mut text = format!("{QR_VERSION}.{}", self.kid);
        for id in [event_id, ticket_id, ticket_class_id] {
            let uuid = uuid::Uuid::parse_str(id).map_err(|_| QrError::NotAUuid)?;
            text.push('.');
            text.push_str(&URL_SAFE_NO_PAD.encode(uuid.as_bytes()));
        }
        let signature = self.key.sign(text.as_bytes());
        text.push('.');
        text.push_str(&URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        Ok(text)
    }
}

/// Verifies qr payloads; all a door app needs is the public key.
#[derive(Debug, Clone)]
pub struct TicketVerifier {
    key: VerifyingKey,
    kid: String,
}

impl TicketVerifier {
    pub fn from_public_key(bytes: &[u8; 32]) -> Result<Self, QrError> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| QrError::UnknownKey)?;
        Ok(Self {
            kid: key_id(&key),
            key,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as the API serves it (`GET /api/tickets/public-key`).
    pub fn public_key_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.as_bytes())
    }

    pub fn verify(&self, qr: &str) -> Result<TicketClaim, QrError> {
        if qr.len() > MAX_QR_LEN {
            return Err(QrError::Malformed);
        }
        let (signed, signature) = qr.rsplit_once('.').ok_or(QrError::Malformed)?;
        let parts: Vec<&str> = signed.split('.').collect();
        let [version, kid, event, ticket, class] = parts.as_slice() else {
            return Err(QrError::Malformed);
        };
        if *version != QR_VERSION {
            return Err(QrError::Malformed);
        }
        let event_id = uuid_part(event)?;
        let ticket_id = uuid_part(ticket)?;
        let ticket_class_id = uuid_part(class)?;
        let signature: [u8; 64] = canonical_bytes(signature)?;
        if *kid != self.kid {
            return Err(QrError::UnknownKey);
        }
        self.key
            .verify_strict(signed.as_bytes(), &Signature::from_bytes(&signature))
            .map_err(|_| QrError::BadSignature)?;
        Ok(TicketClaim {
            event_id,
            ticket_id,
            ticket_class_id,
            kid: kid.to_string(),
        })
    }
}

/// The 8-character key id of a public key.
fn key_id(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..6])
}

/// Base64url of exactly `N` bytes in its one canonical spelling (a lenient decoder would let
/// two spellings of the last character mean the same bytes).
fn canonical_bytes<const N: usize>(part: &str) -> Result<[u8; N], QrError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| QrError::Malformed)?;
    if URL_SAFE_NO_PAD.encode(&bytes) != part {
        return Err(QrError::Malformed);
    }
    <[u8; N]>::try_from(bytes).map_err(|_| QrError::Malformed)
}

fn uuid_part(part: &str) -> Result<String, QrError> {
    let bytes: [u8; 16] = canonical_bytes(part)?;
    Ok(uuid::Uuid::from_bytes(bytes).hyphenated().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = "0190f3a2-7c1e-7b4d-9a3f-000000000e01";
    const TICKET: &str = "0190f3a2-7c1e-8b4d-9a3f-0000000000c1";
    const CLASS: &str = "0190f3a2-7c1e-7b4d-9a3f-0000000000a1";

    fn signer() -> TicketSigner {
        TicketSigner::from_seed(&[7u8; 32])
    }

    #[test]
    fn a_signed_qr_verifies_and_names_its_ticket() {
        let signer = signer();
        let qr = signer.sign(EVENT, TICKET, CLASS).expect("uuids sign");
        assert!(qr.starts_with("TB1."));
        assert!(qr.len() <= MAX_QR_LEN, "{}", qr.len());
        assert_eq!(
            signer.verifier().verify(&qr),
            Ok(TicketClaim {
                event_id: EVENT.into(),
                ticket_id: TICKET.into(),
                ticket_class_id: CLASS.into(),
                kid: signer.kid().into(),
            })
        );
        // Deterministic: re-issuing writes the same payload.
        assert_eq!(signer.sign(EVENT, TICKET, CLASS), Ok(qr));
    }

    #[test]
    fn the_public_key_alone_verifies() {
        let signer = signer();
        let qr = signer.sign(EVENT, TICKET, CLASS).expect("uuids sign");
        let published = signer.verifier().public_key_base64url();
        let bytes: [u8; 32] = URL_SAFE_NO_PAD
            .decode(published)
            .ok()
            .and_then(|b| b.try_into().ok())
            .expect("32 bytes");
        let door = TicketVerifier::from_public_key(&bytes).expect("a valid key");
        assert_eq!(door.kid(), signer.kid());
        assert!(door.verify(&qr).is_ok());
    }

    #[test]
    fn every_single_byte_change_of_a_qr_is_refused() {
        let signer = signer();
        let verifier = signer.verifier();
        let qr = signer.sign(EVENT, TICKET, CLASS).expect("uuids sign");
        let mut checked = 0;
        for position in 0..qr.len() {
            for value in 0..=255u8 {
                let mut bytes = qr.clone().into_bytes();
                if bytes[position] == value {
                    continue;
                }
                bytes[position] = value;
                // A change that is not UTF-8 never reaches the verifier as text.
                let Ok(changed) = String::from_utf8(bytes) else {
                    continue;
                };
                assert!(
                    verifier.verify(&changed).is_err(),
                    "accepted a change at {position} to {value}: {changed}"
                );
                checked += 1;
            }
        }
        assert!(checked > qr.len() * 100);
        // Truncation and extension are refused too.
        for end in 0..qr.len() {
            assert!(verifier.verify(&qr[..end]).is_err());
        }
        assert!(verifier.verify(&format!("{qr}A")).is_err());
        assert!(verifier.verify(&format!("{qr}.")).is_err());
    }

    #[test]
    fn another_key_or_version_is_refused() {
        let qr = signer().sign(EVENT, TICKET, CLASS).expect("uuids sign");
        let other = TicketSigner::from_seed(&[8u8; 32]);
        assert_eq!(other.verifier().verify(&qr), Err(QrError::UnknownKey));
        let v2 = qr.replacen("TB1.", "TB2.", 1);
        assert_eq!(signer().verifier().verify(&v2), Err(QrError::Malformed));
        assert_eq!(
            signer().sign("not-a-uuid", TICKET, CLASS),
            Err(QrError::NotAUuid)
        );
    }

    #[test]
    fn the_seed_is_read_as_base64url_of_32_bytes() {
        let seed = [9u8; 32];
        let text = URL_SAFE_NO_PAD.encode(seed);
        assert_eq!(TicketSigner::parse_seed(&text), Ok(seed));
        assert_eq!(TicketSigner::parse_seed(&format!(" {text}= ")), Ok(seed));
        let standard = base64::engine::general_purpose::STANDARD.encode([0xfbu8; 32]);
        assert_eq!(TicketSigner::parse_seed(&standard), Ok([0xfb; 32]));
        assert_eq!(TicketSigner::parse_seed("c2hvcnQ"), Err(BadSigningKey));
        assert_eq!(TicketSigner::parse_seed("not base64!"), Err(BadSigningKey));
    }
}
