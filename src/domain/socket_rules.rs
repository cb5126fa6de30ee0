//! What a fan's waitroom socket may cost the event's object: its message allowance, how often a
//! ping may refresh the session's last-seen time, which messages are dropped unread, and how
//! many sockets one fan may hold open.
//!
//! Every message a socket sends wakes the one object that runs the sale, so a socket must not
//! be able to buy storage work or log lines by sending more. The decisions are plain functions
//! of the socket's [`SocketMeter`] and the time passed in; the Durable Object's shell keeps the
//! meter in the socket's attachment and applies the verdicts.
//!
//! * The allowance is a token bucket ([`MessageAllowance`]): a burst of [`MESSAGE_BURST`]
//!   messages, then one per [`MESSAGE_REFILL_MS`]. It rides in the socket's serialized
//!   attachment, which the runtime keeps in memory (also across hibernation), so it costs no
//!   storage. Were it ever lost, the socket would merely start again from a full burst: the
//!   limit bounds a rate, nothing depends on its exact count. A message over the allowance is
//!   dropped before it is read, without touching the attachment.
//! * A ping within the allowance is answered with `pong`, but refreshes the session's
//!   last-seen time (one storage transaction) only when the socket last did so at least
//!   [`TOUCH_WRITE_INTERVAL_MS`] ago: the waitroom would not write a fresher sighting anyway,
//!   and an open socket already counts as presence for the admission tick.
//! * Anything that is not a ping of at most [`MAX_MESSAGE_BYTES`] (binary, other JSON,
//!   padding) is dropped silently: no reply, no write, no log line, the socket stays open.
//! * A fan holds at most [`MAX_SOCKETS_PER_FAN`] sockets (all of them follow the fan's latest
//!   session); a new one closes the oldest with [`SOCKET_REPLACED_CLOSE_CODE`], so a reload
//!   or a dropped connection the server has not noticed never locks the fan out.

use serde::{Deserialize, Serialize};

pub use super::waitroom::TOUCH_WRITE_INTERVAL_MS;

/// Messages a socket may send at once. The waitroom page pings every 30 s, so a real fan
/// never comes near it.
pub const MESSAGE_BURST: u32 = 5;
/// One more message is allowed per this many milliseconds.
pub const MESSAGE_REFILL_MS: i64 = 1_000;
/// `{"type":"ping"}` needs 15 bytes; anything much longer is not a message of ours.
pub const MAX_MESSAGE_BYTES: usize = 256;
/// Open sockets per fan: a few tabs or devices, not a botnet's worth of wake-ups.
pub const MAX_SOCKETS_PER_FAN: usize = 4;
/// Close code (private range 4000–4999, "409 conflict") for a socket replaced by a newer one
/// of the same fan.
pub const SOCKET_REPLACED_CLOSE_CODE: u16 = 4409;
pub const SOCKET_REPLACED_REASON: &str = "replaced by a newer socket of this fan";

/// What a fan's socket may send (the wire's `SocketRequest`; defined here because which
/// messages count is one of these rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum SocketRequest {
    /// Counts as "seen" (the fan is not skipped as idle); answered with `pong`.
    Ping,
}

/// What one socket has spent, kept with the socket (its attachment), never in storage.
/// `Default` (all zero, as a socket accepted before the meter existed reads) is a socket due
/// for a touch with a full allowance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SocketMeter {
    /// When the socket was accepted (unix ms): the oldest goes first when a fan has too many.
    pub opened_at: i64,
    /// When this socket last refreshed the session's last-seen time (unix ms).
    pub touched_at: i64,
    pub allowance: MessageAllowance,
}

impl SocketMeter {
    /// A socket accepted at `now`; accepting it counted as the fan being seen.
    pub fn opened(now: i64) -> Self {
        SocketMeter {
            opened_at: now,
            touched_at: now,
            allowance: MessageAllowance::full(now),
        }
    }
}

/// A socket's token bucket: `tokens` messages left as of `refilled_at` (unix ms).
/// `Default` (no tokens as of 1970) reads as a full bucket at any real time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageAllowance {
    pub tokens: u32,
    pub refilled_at: i64,
}

impl MessageAllowance {
    /// A new socket's allowance: a full burst.
    pub fn full(now: i64) -> Self {
        MessageAllowance {
            tokens: MESSAGE_BURST,
            refilled_at: now,
        }
    }

    /// The allowance after one message at `now`, or `None` when there is none left. Refills
    /// are counted in whole tokens from `refilled_at`, so the remainder is kept; a clock that
    /// steps back earns nothing.
    pub fn take(self, now: i64) -> Option<MessageAllowance> {
        let elapsed = now.saturating_sub(self.refilled_at).max(0);
        let earned = elapsed / MESSAGE_REFILL_MS;
        let available = i64::from(self.tokens).saturating_add(earned);
        let (tokens, refilled_at) = if available >= i64::from(MESSAGE_BURST) {
            // Full: time spent full earns nothing later.
            (MESSAGE_BURST, now)
        } else {
            // `available` is below the burst here, so it fits.
            let tokens = u32::try_from(available).unwrap_or(MESSAGE_BURST);
            (tokens, self.refilled_at + earned * MESSAGE_REFILL_MS)
        };
        let left = tokens.checked_sub(1)?;
        Some(MessageAllowance {
            tokens: left,
            refilled_at,
        })
    }
}

/// What arrived on a socket, as far as the rules care.
#[derive(Debug, Clone, Copy)]
pub enum SocketMessage<'a> {
    Text(&'a str),
    Binary,
}

/// What the shell does with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketVerdict {
    /// Nothing at all: no reply, no write, no log line.
    Drop,
    /// Answer `pong`; with `touch`, first refresh the session's last-seen time.
    Pong { touch: bool },
}

/// What a message asks for, or `None` for anything that is not a message of ours. Longer
/// text is not parsed at all, so padding cannot buy parse time.
pub fn read(message: SocketMessage<'_>) -> Option<SocketRequest> {
    match message {
        SocketMessage::Text(text) if text.len() <= MAX_MESSAGE_BYTES => {
            serde_json::from_str(text).ok()
        }
        _ => None,
    }
}

/// The verdict on one message, and the meter to store when the message changed it (`None`:
/// leave the socket's attachment as it is, so a flood over the allowance costs no write of
/// any kind).
pub fn on_message(
    socket: &SocketMeter,
    message: SocketMessage<'_>,
    now: i64,
) -> (SocketVerdict, Option<SocketMeter>) {
    let Some(allowance) = socket.allowance.take(now) else {
        return (SocketVerdict::Drop, None);
    };
    let mut spent = *socket;
    spent.allowance = allowance;
    if read(message) != Some(SocketRequest::Ping) {
        return (SocketVerdict::Drop, Some(spent));
    }
    let touch = now.saturating_sub(socket.touched_at) >= TOUCH_WRITE_INTERVAL_MS;
    if touch {
        spent.touched_at = now;
    }
    (SocketVerdict::Pong { touch }, Some(spent))
}

/// Which of a fan's open sockets to close before one more is accepted: the oldest beyond
/// [`MAX_SOCKETS_PER_FAN`] − 1, as indices into `open` (the order of `open` does not matter).
/// Closing the oldest rather than refusing the newest means a reload, or a connection that
/// died without the server noticing, never locks the fan out of their own queue place.
pub fn replaced_by_new_socket(open: &[SocketMeter]) -> Vec<usize> {
    let keep = MAX_SOCKETS_PER_FAN.saturating_sub(1);
    let excess = open.len().saturating_sub(keep);
    let mut by_age: Vec<usize> = (0..open.len()).collect();
    // Stable: sockets opened in the same millisecond keep the runtime's (acceptance) order.
    by_age.sort_by_key(|&i| open[i].opened_at);
    by_age.truncate(excess);
    by_age
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;

    fn socket(opened_at: i64) -> SocketMeter {
        SocketMeter::opened(opened_at)
    }

    fn ping() -> SocketMessage<'static> {
        SocketMessage::Text(r#"{"type":"ping"}"#)
    }

    /// Sends `count` messages at `now`, storing each changed attachment as the shell does;
    /// returns the verdicts.
    fn send(
        socket: &mut SocketMeter,
        message: SocketMessage<'_>,
        count: usize,
        now: i64,
    ) -> Vec<SocketVerdict> {
        (0..count)
            .map(|_| {
                let (verdict, changed) = on_message(socket, message, now);
                if let Some(changed) = changed {
                    *socket = changed;
                }
                verdict
            })
            .collect()
    }

    fn pongs(verdicts: &[SocketVerdict]) -> usize {
        verdicts
            .iter()
            .filter(|v| matches!(v, SocketVerdict::Pong { .. }))
            .count()
    }

    fn touches(verdicts: &[SocketVerdict]) -> usize {
        verdicts
            .iter()
            .filter(|v| matches!(v, SocketVerdict::Pong { touch: true }))
            .count()
    }

    #[test]
    fn a_thousand_pings_at_once_get_the_burst_and_touch_nothing_right_after_connect() {
        let mut s = socket(T0);
        let verdicts = send(&mut s, ping(), 1_000, T0 + 5);
        assert_eq!(pongs(&verdicts), MESSAGE_BURST as usize);
        assert_eq!(touches(&verdicts), 0);
        assert!(verdicts[MESSAGE_BURST as usize..]
            .iter()
            .all(|v| *v == SocketVerdict::Drop));
    }

    #[test]
    fn a_ping_flood_over_a_minute_earns_one_pong_a_second_and_a_touch_every_ten_seconds() {
        let mut s = socket(T0);
        let mut verdicts = Vec::new();
        let mut touched_at = Vec::new();
        // 100 pings every 100 ms for 60 s: 60,000 pings.
        for step in 1..=600 {
            let now = T0 + step * 100;
            let batch = send(&mut s, ping(), 100, now);
            if touches(&batch) > 0 {
                touched_at.push(now);
            }
            verdicts.extend(batch);
        }
        let pong_count = pongs(&verdicts);
        assert!(
            (60..=60 + MESSAGE_BURST as usize).contains(&pong_count),
            "{pong_count} pongs"
        );
        // The connect counted as the first sighting; after that one write per interval at
        // most (the first pong falls 100 ms after the connect, so the sixth misses the minute).
        assert_eq!(touches(&verdicts), touched_at.len());
        assert_eq!(touched_at.len(), 5, "{touched_at:?}");
        assert!(touched_at[0] - T0 >= TOUCH_WRITE_INTERVAL_MS);
        assert!(touched_at
            .windows(2)
            .all(|w| w[1] - w[0] >= TOUCH_WRITE_INTERVAL_MS));
    }

    #[test]
    fn a_dropped_message_over_the_allowance_leaves_the_attachment_alone() {
        let mut s = socket(T0);
        send(&mut s, ping(), MESSAGE_BURST as usize, T0);
        assert_eq!(
            on_message(&s, ping(), T0 + 999),
            (SocketVerdict::Drop, None)
        );
    }

    #[test]
    fn the_allowance_refills_one_message_a_second_up_to_the_burst() {
        let mut s = socket(T0);
        send(&mut s, ping(), MESSAGE_BURST as usize, T0);
        assert_eq!(pongs(&send(&mut s, ping(), 3, T0 + 1_500)), 1);
        // The half second left over still counts towards the next message.
        assert_eq!(pongs(&send(&mut s, ping(), 3, T0 + 2_000)), 1);
        // A long quiet spell refills only the burst.
        assert_eq!(
            pongs(&send(&mut s, ping(), 100, T0 + 3_600_000)),
            MESSAGE_BURST as usize
        );
    }

    #[test]
    fn a_clock_that_steps_back_earns_no_messages() {
        let allowance = MessageAllowance {
            tokens: 0,
            refilled_at: T0,
        };
        assert_eq!(allowance.take(T0 - 60_000), None);
    }

    #[test]
    fn a_ping_touches_the_session_once_the_interval_has_passed() {
        let mut s = socket(T0);
        assert_eq!(
            send(&mut s, ping(), 1, T0 + TOUCH_WRITE_INTERVAL_MS - 1),
            [SocketVerdict::Pong { touch: false }]
        );
        assert_eq!(
            send(&mut s, ping(), 1, T0 + TOUCH_WRITE_INTERVAL_MS),
            [SocketVerdict::Pong { touch: true }]
        );
        assert_eq!(s.touched_at, T0 + TOUCH_WRITE_INTERVAL_MS);
        assert_eq!(
            send(&mut s, ping(), 1, T0 + TOUCH_WRITE_INTERVAL_MS + 1_000),
            [SocketVerdict::Pong { touch: false }]
        );
    }

    #[test]
    fn garbage_binary_and_oversized_messages_are_dropped_but_spend_the_allowance() {
        let padded = format!(
            r#"{{"type":"ping","padding":"{}"}}"#,
            "x".repeat(MAX_MESSAGE_BYTES)
        );
        let garbage = [
            SocketMessage::Text("not json"),
            SocketMessage::Text(r#"{"type":"shout"}"#),
            SocketMessage::Text(&padded),
            SocketMessage::Binary,
        ];
        let mut s = socket(T0);
        for message in garbage {
            assert_eq!(send(&mut s, message, 1, T0), [SocketVerdict::Drop]);
        }
        assert_eq!(s.allowance.tokens, MESSAGE_BURST - 4);
        // A real ping still fits in what is left.
        assert_eq!(
            send(&mut s, ping(), 1, T0),
            [SocketVerdict::Pong { touch: false }]
        );
    }

    #[test]
    fn a_short_ping_with_an_extra_field_is_still_a_ping() {
        let mut s = socket(T0);
        let verdicts = send(
            &mut s,
            SocketMessage::Text(r#"{"type":"ping","n":1}"#),
            1,
            T0,
        );
        assert_eq!(verdicts, [SocketVerdict::Pong { touch: false }]);
    }

    #[test]
    fn a_new_socket_within_the_cap_closes_nothing() {
        let open: Vec<_> = (0..MAX_SOCKETS_PER_FAN as i64 - 1)
            .map(|i| socket(T0 + i))
            .collect();
        assert!(replaced_by_new_socket(&open).is_empty());
        assert!(replaced_by_new_socket(&[]).is_empty());
    }

    #[test]
    fn a_socket_over_the_cap_closes_the_oldest_whatever_the_order() {
        let open = vec![
            socket(T0 + 30),
            socket(T0 + 10),
            socket(T0 + 40),
            socket(T0 + 20),
        ];
        assert_eq!(replaced_by_new_socket(&open), vec![1]);
        // Left over from before a restart: every socket beyond the cap goes, oldest first.
        let mut crowded: Vec<_> = (0..7).map(|i| socket(T0 + i)).collect();
        crowded.reverse();
        assert_eq!(replaced_by_new_socket(&crowded), vec![6, 5, 4, 3]);
    }

    #[test]
    fn a_meter_from_before_the_allowance_starts_with_a_full_one() {
        let old = SocketMeter::default();
        // Its zero times mean a full bucket and a due touch on its first ping.
        assert_eq!(
            on_message(&old, ping(), T0).0,
            SocketVerdict::Pong { touch: true }
        );
        let mut s = old;
        assert_eq!(
            pongs(&send(&mut s, ping(), 100, T0)),
            MESSAGE_BURST as usize
        );
    }

    #[test]
    fn only_a_short_ping_reads_as_a_request() {
        assert_eq!(read(ping()), Some(SocketRequest::Ping));
        assert_eq!(read(SocketMessage::Text("")), None);
        assert_eq!(read(SocketMessage::Text("[]")), None);
        assert_eq!(read(SocketMessage::Binary), None);
        let padded = format!(
            r#"{{"type":"ping","p":"{}"}}"#,
            " ".repeat(MAX_MESSAGE_BYTES)
        );
        assert_eq!(read(SocketMessage::Text(&padded)), None);
    }
}
