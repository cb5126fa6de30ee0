//! The organiser's waitroom knobs in `eventConfig.waitroom`, range-checked into the one waitroom
//! configuration type, [`WaitroomConfig`], and the queue's [`ShardCount`]: a knob the request
//! leaves out keeps its default, and each bad one is reported under its path inside
//! `eventConfig`.

use std::ops::RangeInclusive;

use super::FieldError;
use crate::domain::admission::place::{ShardCount, MAX_SHARDS};
use crate::domain::waitroom::WaitroomConfig;

pub const MAX_CONCURRENT_CHECKOUTS: u32 = 10_000;
/// A checkout needs at least a minute to type a card number; an hour-long slot starves the queue.
pub const CHECKOUT_TTL_SECONDS: RangeInclusive<u32> = 60..=3_600;
pub const MAX_ADMISSION_BATCH: u32 = 10_000;

/// Field names are reported as `waitroom.<name>`, the path inside `eventConfig`. The sale
/// window, idle timeout and cancellation keep their defaults: the event's object fills them
/// in from the rest of the event.
pub fn parse_waitroom_settings(
    max_concurrent_checkouts: Option<i64>,
    checkout_ttl_seconds: Option<i64>,
    admission_batch: Option<i64>,
) -> Result<WaitroomConfig, Vec<FieldError>> {
    let defaults = WaitroomConfig::default();
    let mut errors = Vec::new();
    let mut within = |raw: Option<i64>, default: u32, min: u32, max: u32, field: &str| match raw {
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
    let settings = WaitroomConfig {
        max_concurrent_checkouts: within(
            max_concurrent_checkouts,
            defaults.max_concurrent_checkouts,
            1,
            MAX_CONCURRENT_CHECKOUTS,
            "maxConcurrentCheckouts",
        ),
        checkout_ttl_seconds: within(
            checkout_ttl_seconds,
            defaults.checkout_ttl_seconds,
            *CHECKOUT_TTL_SECONDS.start(),
            *CHECKOUT_TTL_SECONDS.end(),
            "checkoutTtlSeconds",
        ),
        admission_batch: within(
            admission_batch,
            defaults.admission_batch,
            1,
            MAX_ADMISSION_BATCH,
            "admissionBatch",
        ),
        ..defaults
    };
    if errors.is_empty() {
        Ok(settings)
    } else {
        Err(errors)
    }
}

/// `waitroom.shards`: how many queue shards the event's queue is spread over, 1 when absent.
/// Not part of [`WaitroomConfig`]: that is one queue's settings, the count is the event's.
pub fn parse_shard_count(raw: Option<i64>) -> Result<ShardCount, FieldError> {
    match raw {
        None => Ok(ShardCount::ONE),
        Some(raw) => u16::try_from(raw)
            .ok()
            .and_then(ShardCount::new)
            .ok_or_else(|| {
                FieldError::new(
                    "waitroom.shards",
                    format!("must be between 1 and {MAX_SHARDS}"),
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_waitroom_settings_take_the_api_defaults() {
        // API.md promises these three numbers; they are the domain type's defaults.
        let settings = parse_waitroom_settings(None, None, None);
        assert_eq!(
            settings.as_ref().map(|s| (
                s.max_concurrent_checkouts,
                s.checkout_ttl_seconds,
                s.admission_batch
            )),
            Ok((100, 900, 100))
        );
        assert_eq!(settings, Ok(WaitroomConfig::default()));
    }

    #[test]
    fn every_bad_waitroom_setting_is_reported_under_its_path() {
        let errors = parse_waitroom_settings(Some(0), Some(30), Some(-1))
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

    #[test]
    fn the_shard_count_defaults_to_one_and_stays_within_1_to_64() {
        assert_eq!(parse_shard_count(None), Ok(ShardCount::ONE));
        for ok in [1u16, 4, 64] {
            assert_eq!(
                parse_shard_count(Some(i64::from(ok))).map(ShardCount::get),
                Ok(ok)
            );
        }
        for bad in [0, -1, 65, i64::from(u16::MAX) + 1] {
            let error = parse_shard_count(Some(bad)).unwrap_err();
            assert_eq!(error.field, "waitroom.shards");
        }
    }
}
