//! Money: the ISO 4217 currencies we sell in, with their minor-unit exponents, and prices in
//! minor units.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::FieldError;

/// An ISO 4217 currency this platform sells in, with its minor-unit exponent (how many digits
/// `priceCents` carries after the decimal point: VND 0, so 150000 VND is `150000`; USD 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CurrencyCode {
    code: &'static str,
    exponent: u8,
}

impl CurrencyCode {
    pub const VND: Self = Self::new("VND", 0);
    pub const USD: Self = Self::new("USD", 2);
    pub const EUR: Self = Self::new("EUR", 2);
    pub const JPY: Self = Self::new("JPY", 0);
    pub const SGD: Self = Self::new("SGD", 2);
    pub const THB: Self = Self::new("THB", 2);

    /// Exponents are ISO 4217's, even where everyday use differs (IDR is listed with 2).
    pub const SUPPORTED: &'static [Self] = &[
        Self::VND,
        Self::USD,
        Self::EUR,
        Self::JPY,
        Self::SGD,
        Self::THB,
        Self::new("KRW", 0),
        Self::new("CNY", 2),
        Self::new("HKD", 2),
        Self::new("TWD", 2),
        Self::new("MYR", 2),
        Self::new("IDR", 2),
        Self::new("PHP", 2),
        Self::new("KHR", 2),
        Self::new("LAK", 2),
        Self::new("INR", 2),
        Self::new("GBP", 2),
        Self::new("CHF", 2),
        Self::new("AUD", 2),
        Self::new("NZD", 2),
        Self::new("CAD", 2),
    ];

    const fn new(code: &'static str, exponent: u8) -> Self {
        Self { code, exponent }
    }

    /// Accepts any case ("vnd") and answers with the canonical uppercase code.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let wanted = raw.trim();
        Self::SUPPORTED
            .iter()
            .copied()
            .find(|currency| currency.code.eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                FieldError::new("currency", "must be a supported ISO 4217 currency code")
            })
    }

    pub fn as_str(self) -> &'static str {
        self.code
    }

    pub fn minor_unit_exponent(self) -> u8 {
        self.exponent
    }
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl Serialize for CurrencyCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code)
    }
}

impl<'de> Deserialize<'de> for CurrencyCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A ticket price in minor units of its currency; 0 is a free ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PriceCents(i64);

impl PriceCents {
    /// 10^11 minor units (100 billion VND, 1 billion USD): far above any real ticket, and low
    /// enough that 10,000 tickets at this price (10^15) stay exact in a JavaScript number.
    pub const MAX: i64 = 100_000_000_000;

    pub fn parse(raw: i64) -> Result<Self, FieldError> {
        if raw < 0 {
            Err(FieldError::new("priceCents", "must not be negative"))
        } else if raw > Self::MAX {
            Err(FieldError::new(
                "priceCents",
                format!("must be at most {}", Self::MAX),
            ))
        } else {
            Ok(Self(raw))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_carry_their_minor_unit_exponent() {
        assert_eq!(
            CurrencyCode::parse("VND").map(|c| c.minor_unit_exponent()),
            Ok(0)
        );
        assert_eq!(CurrencyCode::parse("usd").map(|c| c.as_str()), Ok("USD"));
        assert_eq!(CurrencyCode::parse("JPY"), Ok(CurrencyCode::JPY));
        assert_eq!(
            CurrencyCode::parse("THB").map(|c| c.minor_unit_exponent()),
            Ok(2)
        );
        for bad in ["", "XXX", "US", "USDD", "đồng"] {
            assert!(CurrencyCode::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn currency_codes_are_unique_iso_shapes() {
        let codes: Vec<&str> = CurrencyCode::SUPPORTED.iter().map(|c| c.as_str()).collect();
        for code in &codes {
            assert_eq!(code.len(), 3);
            assert!(code.chars().all(|c| c.is_ascii_uppercase()));
        }
        let mut unique = codes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), codes.len());
    }

    #[test]
    fn a_currency_round_trips_through_json() {
        let json = serde_json::to_string(&CurrencyCode::VND).unwrap_or_default();
        assert_eq!(json, "\"VND\"");
        let back: Result<CurrencyCode, _> = serde_json::from_str("\"sgd\"");
        assert_eq!(back.ok(), Some(CurrencyCode::SGD));
        assert!(serde_json::from_str::<CurrencyCode>("\"ABC\"").is_err());
    }

    #[test]
    fn prices_are_non_negative_and_bounded() {
        assert_eq!(PriceCents::parse(0).map(PriceCents::get), Ok(0));
        assert_eq!(PriceCents::parse(150_000).map(PriceCents::get), Ok(150_000));
        assert!(PriceCents::parse(-1).is_err());
        assert!(PriceCents::parse(PriceCents::MAX).is_ok());
        assert!(PriceCents::parse(PriceCents::MAX + 1).is_err());
    }
}
