//! [`WaitroomConfig`]: the organiser's waitroom settings and the sale window, with the one set
//! of defaults.

use serde::{Deserialize, Serialize};

use super::ClosedReason;

pub const DEFAULT_MAX_CONCURRENT_CHECKOUTS: u32 = 100;
pub const DEFAULT_CHECKOUT_TTL_SECONDS: u32 = 900;
pub const DEFAULT_ADMISSION_BATCH: u32 = 100;
pub const DEFAULT_IDLE_TIMEOUT_SECONDS: u32 = 600;

/// The organiser's waitroom settings plus the sale window. Changes apply from the next command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WaitroomConfig {
    /// Checkout slots: how many fans may hold a checkout at once. 0 pauses admission.
    pub max_concurrent_checkouts: u32,
    /// Lifetime of a checkout token (and of an admitted session with no order yet).
    pub checkout_ttl_seconds: u32,
    /// The most fans one admission tick lets in.
    pub admission_batch: u32,
    /// A queued fan not seen for this long is skipped when reaching the head.
    pub idle_timeout_seconds: u32,
    /// `ticketSaleStartDate` in unix ms: joins before it wait in the pre-queue.
    pub sale_starts_at: i64,
    /// `ticketSaleEndDate` in unix ms: the queue closes at it.
    pub sale_ends_at: i64,
    /// The event was cancelled: the queue closes, no one is admitted any more.
    pub cancelled: bool,
}

impl Default for WaitroomConfig {
    fn default() -> Self {
        Self {
            max_concurrent_checkouts: DEFAULT_MAX_CONCURRENT_CHECKOUTS,
            checkout_ttl_seconds: DEFAULT_CHECKOUT_TTL_SECONDS,
            admission_batch: DEFAULT_ADMISSION_BATCH,
            idle_timeout_seconds: DEFAULT_IDLE_TIMEOUT_SECONDS,
            sale_starts_at: 0,
            sale_ends_at: i64::MAX,
            cancelled: false,
        }
    }
}

impl WaitroomConfig {
    /// Rejects settings under which the machine cannot work (a zero token lifetime would admit
    /// fans into an already expired checkout).
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.checkout_ttl_seconds == 0 {
            return Err("checkoutTtlSeconds must be at least 1");
        }
        if self.idle_timeout_seconds == 0 {
            return Err("idleTimeoutSeconds must be at least 1");
        }
        if self.sale_ends_at <= self.sale_starts_at {
            return Err("the sale must end after it starts");
        }
        Ok(())
    }

    pub(super) fn checkout_ttl_ms(&self) -> i64 {
        i64::from(self.checkout_ttl_seconds) * 1_000
    }

    pub(super) fn idle_timeout_ms(&self) -> i64 {
        i64::from(self.idle_timeout_seconds) * 1_000
    }

    /// Why the queue is closed at `now`, if it is.
    pub(super) fn closure_at(&self, now: i64) -> Option<ClosedReason> {
        if self.cancelled {
            Some(ClosedReason::EventCancelled)
        } else if now >= self.sale_ends_at {
            Some(ClosedReason::SaleEnded)
        } else {
            None
        }
    }
}
