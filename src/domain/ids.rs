//! Identifier newtypes (users, events, orders, ...) and the human-facing order code `TB-XXXXXXXXXX`.
//!
//! Ids are UUIDs minted at the edge; a newtype per resource stops a user id from being passed
//! where an event id is expected. The order code is what a buyer reads out at the door or types
//! into support chat, so it is short, case-insensitive and free of look-alike letters.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::validation::FieldError;

/// Whether `text` is a UUID in canonical hyphenated form (any version, lowercase or uppercase).
fn is_uuid_text(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// An id this system minted or stored (a D1 row, a verified token's subject).
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// An id from a request (a path segment, `?ids=`): must be a canonical UUID, kept
            /// lowercase so it compares equal to the stored one.
            pub fn parse(raw: &str) -> Result<Self, FieldError> {
                let text = raw.trim();
                if is_uuid_text(text) {
                    Ok(Self(text.to_ascii_lowercase()))
                } else {
                    Err(FieldError::new("id", "must be a UUID"))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

uuid_id!(
    /// A registered user.
    UserId
);
uuid_id!(
    /// An event (the unit of roles, config, inventory and waitroom).
    EventId
);
uuid_id!(
    /// An organizer: the company or person that runs events.
    OrganizerId
);
uuid_id!(
    /// A category events are filed under.
    CategoryId
);
uuid_id!(
    /// One kind of ticket of an event ("VIP", "Standard").
    TicketClassId
);
uuid_id!(
    /// An order (the saga instance); its buyer-facing name is its [`OrderCode`].
    OrderId
);

/// Crockford's base32: no I, L, O or U, so a code read aloud or copied by hand survives.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The buyer-facing order number: `TB-` and 10 Crockford base32 characters (50 random bits).
///
/// 50 bits keep a collision unlikely (about 1 in 2,000 after a million orders) but not
/// impossible: the store keeps codes unique and retries with fresh bytes on a clash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct OrderCode(String);

impl OrderCode {
    pub const PREFIX: &'static str = "TB-";
    pub const BODY_LEN: usize = 10;

    /// Encodes the high 50 bits of `random` (8 bytes from the edge's CSPRNG).
    pub fn from_random(random: [u8; 8]) -> Self {
        let bits = u64::from_be_bytes(random) >> (64 - 5 * Self::BODY_LEN);
        let mut code = String::with_capacity(Self::PREFIX.len() + Self::BODY_LEN);
        code.push_str(Self::PREFIX);
        for index in (0..Self::BODY_LEN).rev() {
            let digit = (bits >> (5 * index)) & 0x1f;
            code.push(char::from(CROCKFORD[digit as usize]));
        }
        Self(code)
    }

    /// A code as a person typed it: any case, with Crockford's look-alikes read as digits
    /// (`O` as 0, `I`/`L` as 1) and hyphens or spaces inside ignored.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = || FieldError::new("code", "must look like TB-XXXXXXXXXX");
        let text = raw.trim();
        let body = text
            .get(..Self::PREFIX.len())
            .filter(|prefix| prefix.eq_ignore_ascii_case(Self::PREFIX))
            .and_then(|_| text.get(Self::PREFIX.len()..))
            .ok_or_else(invalid)?;
        let mut code = String::with_capacity(Self::PREFIX.len() + Self::BODY_LEN);
        code.push_str(Self::PREFIX);
        for c in body.chars().filter(|c| !matches!(c, '-' | ' ')) {
            let canonical = match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                other => other,
            };
            if !canonical.is_ascii() || !CROCKFORD.contains(&(canonical as u8)) {
                return Err(invalid());
            }
            code.push(canonical);
        }
        if code.len() == Self::PREFIX.len() + Self::BODY_LEN {
            Ok(Self(code))
        } else {
            Err(invalid())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What `GET /api/orders/{idOrCode}` was given: an order's UUID or its code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OrderRef {
    Id(OrderId),
    Code(OrderCode),
}

impl OrderRef {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        OrderId::parse(raw)
            .map(Self::Id)
            .or_else(|_| OrderCode::parse(raw).map(Self::Code))
            .map_err(|_| FieldError::new("idOrCode", "must be an order id or an order code"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_from_requests_must_be_uuids_and_are_lowercased() {
        assert_eq!(
            UserId::parse("0190F3A2-7C1E-7B4D-9A3F-5E2D1C0B9A87").map(UserId::into_inner),
            Ok("0190f3a2-7c1e-7b4d-9a3f-5e2d1c0b9a87".to_string())
        );
        for bad in [
            "",
            "42",
            "0190f3a2-7c1e-7b4d-9a3f-5e2d1c0b9a8",
            "0190f3a27c1e7b4d9a3f5e2d1c0b9a87",
            "0190f3a2-7c1e-7b4d-9a3f-5e2d1c0b9a8g",
            "0190f3a2_7c1e-7b4d-9a3f-5e2d1c0b9a87",
            "../../etc/passwd",
        ] {
            assert!(EventId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn order_codes_have_the_prefix_and_ten_crockford_characters() {
        assert_eq!(OrderCode::from_random([0; 8]).as_str(), "TB-0000000000");
        assert_eq!(OrderCode::from_random([0xff; 8]).as_str(), "TB-ZZZZZZZZZZ");
        // The high 50 bits are ten groups of 0b00001: each digit is 1.
        assert_eq!(
            OrderCode::from_random([0x08, 0x42, 0x10, 0x84, 0x21, 0x08, 0x40, 0x00]).as_str(),
            "TB-1111111111"
        );
    }

    #[test]
    fn a_typed_order_code_is_read_despite_case_and_look_alikes() {
        assert_eq!(
            OrderCode::parse(" tb-o1il-abcd-xy ").map(|c| c.0),
            Ok("TB-0111ABCDXY".to_string())
        );
        for bad in [
            "",
            "TB-",
            "TB-123",
            "TB-00000000000",
            "XX-0000000000",
            "TB-000000000U",
            "TB-ĐĐĐĐĐĐĐĐĐĐ",
        ] {
            assert!(OrderCode::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_order_reference_is_an_id_or_a_code() {
        assert!(matches!(
            OrderRef::parse("0190f3a2-7c1e-7b4d-9a3f-5e2d1c0b9a87"),
            Ok(OrderRef::Id(_))
        ));
        assert!(matches!(
            OrderRef::parse("TB-7K3M9Q2X4D"),
            Ok(OrderRef::Code(_))
        ));
        assert!(OrderRef::parse("nope").is_err());
    }

    proptest! {
        #[test]
        fn every_generated_code_parses_back_to_itself(random in any::<[u8; 8]>()) {
            let code = OrderCode::from_random(random);
            prop_assert_eq!(code.as_str().len(), 13);
            prop_assert_eq!(OrderCode::parse(code.as_str()), Ok(code.clone()));
            prop_assert_eq!(OrderCode::parse(&code.as_str().to_lowercase()), Ok(code));
        }

        #[test]
        fn distinct_high_bits_give_distinct_codes(a in any::<u64>(), b in any::<u64>()) {
            let same_bits = (a >> 14) == (b >> 14);
            let same_code = OrderCode::from_random(a.to_be_bytes()) == OrderCode::from_random(b.to_be_bytes());
            prop_assert_eq!(same_bits, same_code);
        }
    }
}
