//! Integers from request bodies and the ticket counts they set: a ticket class's total and the
//! per-buyer cap.

use serde::Serialize;

use super::FieldError;

/// An integer from a JSON value, for request bodies kept as `serde_json::Value` so that a wrong
/// type becomes a field error instead of a rejected body. `150000.0` counts; `1.5` and `"5"` do not.
pub fn json_integer(value: &serde_json::Value) -> Result<i64, FieldError> {
    let not_integer = || FieldError::new("value", "must be an integer");
    if let Some(n) = value.as_i64() {
        return Ok(n);
    }
    match value.as_f64() {
        // Beyond 2^53 a float no longer names one integer.
        Some(f) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 => Ok(f as i64),
        _ => Err(not_integer()),
    }
}

/// How many tickets a ticket class has in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TicketTotal(u32);

impl TicketTotal {
    /// A stadium holds about 100,000; ten times that is a typo, not an event.
    pub const MAX: u32 = 1_000_000;

    pub fn parse(raw: i64) -> Result<Self, FieldError> {
        if raw < 1 {
            return Err(FieldError::new("total", "must be at least 1"));
        }
        match u32::try_from(raw) {
            Ok(total) if total <= Self::MAX => Ok(Self(total)),
            _ => Err(FieldError::new(
                "total",
                format!("must be at most {}", Self::MAX),
            )),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// The per-buyer cap of an event's config (`maxTicketsPerUser`), across pending and completed orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct MaxTicketsPerUser(u32);

impl MaxTicketsPerUser {
    pub const MAX: u32 = 1_000;

    pub fn parse(raw: i64) -> Result<Self, FieldError> {
        match u32::try_from(raw) {
            Ok(cap) if (1..=Self::MAX).contains(&cap) => Ok(Self(cap)),
            _ => Err(FieldError::new(
                "maxTicketsPerUser",
                format!("must be between 1 and {}", Self::MAX),
            )),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_class_has_at_least_one_ticket() {
        assert!(TicketTotal::parse(0).is_err());
        assert!(TicketTotal::parse(-5).is_err());
        assert_eq!(TicketTotal::parse(1).map(TicketTotal::get), Ok(1));
        assert!(TicketTotal::parse(i64::from(TicketTotal::MAX) + 1).is_err());
        assert!(TicketTotal::parse(i64::MAX).is_err());
    }

    #[test]
    fn the_per_user_cap_is_between_1_and_1000() {
        assert!(MaxTicketsPerUser::parse(0).is_err());
        assert!(MaxTicketsPerUser::parse(1).is_ok());
        assert!(MaxTicketsPerUser::parse(1_000).is_ok());
        assert!(MaxTicketsPerUser::parse(1_001).is_err());
    }

    #[test]
    fn json_integers_accept_whole_floats_only() {
        use serde_json::json;
        assert_eq!(json_integer(&json!(150000)), Ok(150_000));
        assert_eq!(json_integer(&json!(150000.0)), Ok(150_000));
        assert_eq!(json_integer(&json!(-3)), Ok(-3));
        assert!(json_integer(&json!(1.5)).is_err());
        assert!(json_integer(&json!("5")).is_err());
        assert!(json_integer(&json!(null)).is_err());
        assert!(json_integer(&json!(1e300)).is_err());
    }
}
