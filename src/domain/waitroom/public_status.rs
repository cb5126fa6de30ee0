//! The waitroom's public status (`GET /api/events/{id}/waitroom/status`): what anyone may know
//! about a sale's front door, from the event's sale terms and the counters its object keeps.
//! No fan's data is in it, so one answer serves every caller and the edge may cache it.

use serde::Serialize;

use super::estimated_wait_seconds;

/// Where the sale stands for someone arriving now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PublicSaleState {
    /// The sale has not started and the waitroom takes no one yet (the event's object has not
    /// set it up).
    NotOpen,
    /// The sale has not started; fans joining now wait in the pre-queue, shuffled at the start.
    Prequeue,
    /// On sale: fans join the back of the queue.
    Open,
    /// Nothing left to sell and nothing held that could come back.
    SoldOut,
    /// The sale ended or the event was cancelled.
    Closed,
}

/// What the status is made from: the event's terms (D1) and its object's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct PublicStatusInputs {
    pub now_ms: i64,
    pub sale_starts_at: i64,
    pub sale_ends_at: i64,
    /// The event was cancelled (or the object closed the waitroom for good).
    pub cancelled: bool,
    pub waitroom: Option<WaitroomCounters>,
    /// Tickets on sale right now across the event's active classes.
    pub available: u64,
    /// Tickets held for checkouts in progress: they come back if those buyers do not pay.
    pub held: u64,
    pub shards: u32,
}

/// The object's waitroom counters, as its operator view reports them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WaitroomCounters {
    pub queued: u64,
    pub prequeued: u64,
    pub slots_in_use: u64,
    pub max_slots: u32,
    pub admitted_last_minute: u64,
    /// Smoothed admissions per second; `None` until the object measured two admitting ticks.
    pub admissions_per_second: Option<f64>,
    pub closed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PublicWaitroomStatus {
    pub state: PublicSaleState,
    pub sale_opens_at: i64,
    /// Fans waiting: the queue, or the pre-queue before the sale opens.
    pub queue_length: u64,
    pub admitted_last_minute: u64,
    /// For a fan joining now; `None` where nobody can tell (no admission measured yet, the
    /// pre-queue's places not drawn yet) or where joining makes no sense (sold out, closed).
    pub estimated_wait_seconds: Option<u64>,
    pub shards: u32,
}

/// The public status, decided once from its inputs.
pub fn public_status(input: &PublicStatusInputs) -> PublicWaitroomStatus {
    let counters = input.waitroom;
    let closed =
        input.cancelled || input.now_ms >= input.sale_ends_at || counters.is_some_and(|c| c.closed);
    let before_sale = input.now_ms < input.sale_starts_at;
    let state = if closed {
        PublicSaleState::Closed
    } else if input.available == 0 && input.held == 0 {
        PublicSaleState::SoldOut
    } else if before_sale {
        if counters.is_some() {
            PublicSaleState::Prequeue
        } else {
            PublicSaleState::NotOpen
        }
    } else {
        PublicSaleState::Open
    };
    let queue_length = match (state, counters) {
        (PublicSaleState::Closed, _) | (_, None) => 0,
        (_, Some(c)) => c.queued + c.prequeued,
    };
    let estimated_wait_seconds = match (state, counters) {
        (PublicSaleState::Open, Some(c)) => {
            // A fan joining now is admitted at once when nobody waits and a slot is free.
            if c.queued == 0 && c.slots_in_use < u64::from(c.max_slots) {
                Some(0)
            } else {
                estimated_wait_seconds(c.queued + 1, c.admissions_per_second)
            }
        }
        (PublicSaleState::Open, None) => Some(0),
        _ => None,
    };
    PublicWaitroomStatus {
        state,
        sale_opens_at: input.sale_starts_at,
        queue_length,
        admitted_last_minute: counters.map_or(0, |c| c.admitted_last_minute),
        estimated_wait_seconds,
        shards: input.shards,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: i64 = 1_800_000_000_000;
    const END: i64 = START + 3_600_000;

    fn counters() -> WaitroomCounters {
        WaitroomCounters {
            queued: 0,
            prequeued: 0,
            slots_in_use: 0,
            max_slots: 10,
            admitted_last_minute: 0,
            admissions_per_second: None,
            closed: false,
        }
    }

    fn input(now_ms: i64, waitroom: Option<WaitroomCounters>) -> PublicStatusInputs {
        PublicStatusInputs {
            now_ms,
            sale_starts_at: START,
            sale_ends_at: END,
            cancelled: false,
            waitroom,
            available: 100,
            held: 0,
            shards: 1,
        }
    }

    #[test]
    fn before_the_sale_fans_wait_in_the_prequeue_with_no_estimate() {
        let mut c = counters();
        c.prequeued = 42;
        let status = public_status(&input(START - 1, Some(c)));
        assert_eq!(status.state, PublicSaleState::Prequeue);
        assert_eq!(status.queue_length, 42);
        assert_eq!(status.estimated_wait_seconds, None);
        assert_eq!(status.sale_opens_at, START);
    }

    #[test]
    fn an_object_that_has_not_set_the_waitroom_up_is_not_open_yet() {
        let status = public_status(&input(START - 1, None));
        assert_eq!(status.state, PublicSaleState::NotOpen);
        assert_eq!(status.queue_length, 0);
    }

    #[test]
    fn an_open_sale_estimates_the_wait_of_the_fan_behind_the_queue() {
        let mut c = counters();
        c.queued = 99;
        c.slots_in_use = 10;
        c.admissions_per_second = Some(10.0);
        c.admitted_last_minute = 600;
        let status = public_status(&input(START, Some(c)));
        assert_eq!(status.state, PublicSaleState::Open);
        assert_eq!(status.queue_length, 99);
        assert_eq!(status.admitted_last_minute, 600);
        // 100th in line at 10 a second.
        assert_eq!(status.estimated_wait_seconds, Some(10));
    }

    #[test]
    fn nobody_waiting_and_a_free_slot_means_no_wait() {
        let status = public_status(&input(START + 1, Some(counters())));
        assert_eq!(status.estimated_wait_seconds, Some(0));
        let mut full = counters();
        full.slots_in_use = 10;
        // Every slot taken and no admission measured yet: nobody can tell.
        assert_eq!(
            public_status(&input(START + 1, Some(full))).estimated_wait_seconds,
            None
        );
    }

    #[test]
    fn sold_out_only_when_nothing_is_held_that_could_come_back() {
        let mut i = input(START + 1, Some(counters()));
        i.available = 0;
        i.held = 3;
        assert_eq!(public_status(&i).state, PublicSaleState::Open);
        i.held = 0;
        let status = public_status(&i);
        assert_eq!(status.state, PublicSaleState::SoldOut);
        assert_eq!(status.estimated_wait_seconds, None);
    }

    #[test]
    fn the_end_of_the_sale_or_a_cancellation_closes_it_and_empties_the_line() {
        let mut c = counters();
        c.queued = 5;
        for i in [
            input(END, Some(c)),
            PublicStatusInputs {
                cancelled: true,
                ..input(START + 1, Some(c))
            },
            input(START + 1, Some(WaitroomCounters { closed: true, ..c })),
        ] {
            let status = public_status(&i);
            assert_eq!(status.state, PublicSaleState::Closed, "{i:?}");
            assert_eq!(status.queue_length, 0);
            assert_eq!(status.estimated_wait_seconds, None);
        }
    }

    #[test]
    fn states_have_the_contracts_names() {
        let names: Vec<String> = [
            PublicSaleState::NotOpen,
            PublicSaleState::Prequeue,
            PublicSaleState::Open,
            PublicSaleState::SoldOut,
            PublicSaleState::Closed,
        ]
        .iter()
        .map(|s| serde_json::to_value(s).unwrap_or_default().to_string())
        .collect();
        assert_eq!(
            names,
            [
                r#""NOT_OPEN""#,
                r#""PREQUEUE""#,
                r#""OPEN""#,
                r#""SOLD_OUT""#,
                r#""CLOSED""#
            ]
        );
    }
}
