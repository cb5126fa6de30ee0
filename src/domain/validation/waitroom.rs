//! The waitroom knobs of `eventConfig.waitroom`, range-checked, each bad one named by its path.

use serde::{Deserialize, Serialize};

use super::FieldError;

/// The waitroom knobs of an event's config; missing values take the API's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitroomSettings {
    pub max_concurrent_checkouts: u32,
    pub checkout_ttl_seconds: u32,
    pub admission_batch: u32,
}

impl Default for WaitroomSettings {
    fn default() -> Self {
        Self {
            max_concurrent_checkouts: 100,
            checkout_ttl_seconds: 900,
            admission_batch: 100,
        }
    }
}

impl WaitroomSettings {
    pub const MAX_CONCURRENT_CHECKOUTS: u32 = 10_000;
    /// A checkout needs at least a minute to type a card number; an hour-long slot starves the queue.
    pub const CHECKOUT_TTL_SECONDS: std::ops::RangeInclusive<u32> = 60..=3_600;
    pub const MAX_ADMISSION_BATCH: u32 = 10_000;

    /// Field names are reported as `waitroom.<name>`, the path inside `eventConfig`.
    pub fn parse(
        max_concurrent_checkouts: Option<i64>,
        checkout_ttl_seconds: Option<i64>,
        admission_batch: Option<i64>,
    ) -> Result<Self, Vec<FieldError>> {
        let defaults = Self::default();
        let mut errors = Vec::new();
        let mut within = |raw: Option<i64>, default: u32, min: u32, max: u32, field: &str| match raw
        {
            None => default,
            Some(raw) => match u32::try_from(raw) {
                Ok(value) if (min..=max).contains(&value) => value,
                _ => {
                    errors.push(FieldError::new(
                        format!("waitroom.{field}"),
                        format!("must be between {min} and {max}"),
                    ));
                    default
                }
            },
        };
        let settings = Self {
            max_concurrent_checkouts: within(
                max_concurrent_checkouts,
                defaults.max_concurrent_checkouts,
                1,
                Self::MAX_CONCURRENT_CHECKOUTS,
                "maxConcurrentCheckouts",
            ),
            checkout_ttl_seconds: within(
                checkout_ttl_seconds,
                defaults.checkout_ttl_seconds,
                *Self::CHECKOUT_TTL_SECONDS.start(),
                *Self::CHECKOUT_TTL_SECONDS.end(),
                "checkoutTtlSeconds",
            ),
            admission_batch: within(
                admission_batch,
                defaults.admission_batch,
                1,
                Self::MAX_ADMISSION_BATCH,
                "admissionBatch",
            ),
        };
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_waitroom_settings_take_the_api_defaults() {
        assert_eq!(
            WaitroomSettings::parse(None, None, None),
            Ok(WaitroomSettings {
                max_concurrent_checkouts: 100,
                checkout_ttl_seconds: 900,
                admission_batch: 100
            })
        );
    }

    #[test]
    fn every_bad_waitroom_setting_is_reported_under_its_path() {
        let errors = WaitroomSettings::parse(Some(0), Some(30), Some(-1))
            .err()
            .unwrap_or_default();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "waitroom.maxConcurrentCheckouts",
                "waitroom.checkoutTtlSeconds",
                "waitroom.admissionBatch"
            ]
        );
    }
}
