//! The door: a ticket's state as check-in sees it, and the only moves it may make.
//!
//! VALID → CHECKED_IN (once: a second presentation is refused with when and where the first
//! one got in), VALID or CHECKED_IN → VOID (a refund or cancellation; voiding twice changes
//! nothing). A VOID ticket never gets in. The event's door object applies these to its stored
//! state one request at a time, which is what makes two gates at once let exactly one in.

use super::qr::TicketClaim;

/// Where a ticket was scanned, as the door app names it ("North gate 2"). Optional.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Gate(String);

impl Gate {
    pub const MAX_CHARS: usize = 64;

    /// Absent or blank is no gate; anything else must be printable and at most 64 characters.
    pub fn parse(raw: Option<&str>) -> Result<Option<Self>, &'static str> {
        let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        if text.chars().count() > Self::MAX_CHARS {
            return Err("must be at most 64 characters");
        }
        if text.chars().any(char::is_control) {
            return Err("must not contain control characters");
        }
        Ok(Some(Self(text.to_string())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketState {
    Valid,
    CheckedIn { at_ms: i64, gate: Option<Gate> },
    Void { at_ms: i64 },
}

impl TicketState {
    /// The API's `status`.
    pub fn status(&self) -> &'static str {
        match self {
            Self::Valid => "VALID",
            Self::CheckedIn { .. } => "CHECKED_IN",
            Self::Void { .. } => "VOID",
        }
    }
}

/// Why the door said no.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DoorRefusal {
    /// 409 `ALREADY_CHECKED_IN`, with the first check-in's time and gate.
    #[error("this ticket was already checked in")]
    AlreadyCheckedIn { at_ms: i64, gate: Option<Gate> },
    /// 409 `TICKET_VOID`: refunded or cancelled.
    #[error("this ticket is void")]
    Void,
    /// 422 `TICKET_INVALID`: not a ticket of this event (a forged, damaged or foreign qr).
    #[error("this is not a valid ticket for this event")]
    Invalid,
}

impl DoorRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            Self::AlreadyCheckedIn { .. } => "ALREADY_CHECKED_IN",
            Self::Void => "TICKET_VOID",
            Self::Invalid => "TICKET_INVALID",
        }
    }

    pub fn http_status(&self) -> u16 {
        match self {
            Self::AlreadyCheckedIn { .. } | Self::Void => 409,
            Self::Invalid => 422,
        }
    }
}

/// A verified claim is admitted only at its own event's door.
pub fn belongs_here(claim: &TicketClaim, door_event_id: &str) -> Result<(), DoorRefusal> {
    if claim.event_id.eq_ignore_ascii_case(door_event_id) {
        Ok(())
    } else {
        Err(DoorRefusal::Invalid)
    }
}

/// Lets the ticket in, or says why not.
pub fn check_in(
    state: &TicketState,
    at_ms: i64,
    gate: Option<Gate>,
) -> Result<TicketState, DoorRefusal> {
    match state {
        TicketState::Valid => Ok(TicketState::CheckedIn { at_ms, gate }),
        TicketState::CheckedIn { at_ms, gate } => Err(DoorRefusal::AlreadyCheckedIn {
            at_ms: *at_ms,
            gate: gate.clone(),
        }),
        TicketState::Void { .. } => Err(DoorRefusal::Void),
    }
}

/// Voids the ticket; `None` when it already was (nothing to record or announce).
pub fn void(state: &TicketState, at_ms: i64) -> Option<TicketState> {
    match state {
        TicketState::Void { .. } => None,
        TicketState::Valid | TicketState::CheckedIn { .. } => Some(TicketState::Void { at_ms }),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn gate(name: &str) -> Option<Gate> {
        Gate::parse(Some(name)).expect("a valid gate")
    }

    #[test]
    fn a_valid_ticket_gets_in_once() {
        let inside = check_in(&TicketState::Valid, 1_000, gate("North")).expect("admitted");
        assert_eq!(inside.status(), "CHECKED_IN");
        assert_eq!(
            check_in(&inside, 2_000, gate("South")),
            Err(DoorRefusal::AlreadyCheckedIn {
                at_ms: 1_000,
                gate: gate("North")
            })
        );
    }

    #[test]
    fn a_void_ticket_never_gets_in_and_voiding_twice_changes_nothing() {
        let void_ticket = void(&TicketState::Valid, 5).expect("voided");
        assert_eq!(void_ticket.status(), "VOID");
        assert_eq!(check_in(&void_ticket, 6, None), Err(DoorRefusal::Void));
        assert_eq!(void(&void_ticket, 7), None);
        let inside = TicketState::CheckedIn {
            at_ms: 1,
            gate: None,
        };
        assert_eq!(void(&inside, 8), Some(TicketState::Void { at_ms: 8 }));
    }

    #[test]
    fn refusals_map_to_the_api_codes() {
        let already = DoorRefusal::AlreadyCheckedIn {
            at_ms: 0,
            gate: None,
        };
        assert_eq!(
            (already.http_status(), already.code()),
            (409, "ALREADY_CHECKED_IN")
        );
        assert_eq!(
            (DoorRefusal::Void.http_status(), DoorRefusal::Void.code()),
            (409, "TICKET_VOID")
        );
        assert_eq!(
            (
                DoorRefusal::Invalid.http_status(),
                DoorRefusal::Invalid.code()
            ),
            (422, "TICKET_INVALID")
        );
    }

    #[test]
    fn a_claim_is_admitted_only_at_its_own_event() {
        let claim = TicketClaim {
            event_id: "0190f3a2-7c1e-7b4d-9a3f-000000000e01".into(),
            ticket_id: "t".into(),
            ticket_class_id: "c".into(),
            kid: "k".into(),
        };
        assert_eq!(
            belongs_here(&claim, "0190F3A2-7C1E-7B4D-9A3F-000000000E01"),
            Ok(())
        );
        assert_eq!(
            belongs_here(&claim, "0190f3a2-7c1e-7b4d-9a3f-000000000e02"),
            Err(DoorRefusal::Invalid)
        );
    }

    #[test]
    fn gates_are_optional_short_and_printable() {
        assert_eq!(Gate::parse(None), Ok(None));
        assert_eq!(Gate::parse(Some("  ")), Ok(None));
        assert_eq!(
            gate(" Gate A ").map(|g| g.as_str().to_string()),
            Some("Gate A".into())
        );
        assert!(Gate::parse(Some(&"x".repeat(65))).is_err());
        assert!(Gate::parse(Some("a\u{0}b")).is_err());
    }

    proptest! {
        /// However many gates present the same ticket, in whatever order, one gets in and
        /// every other is told when and where.
        #[test]
        fn of_many_presentations_exactly_one_gets_in(gates in prop::collection::vec(0..8u8, 1..30)) {
            let mut state = TicketState::Valid;
            let mut admitted = Vec::new();
            for (i, g) in gates.iter().enumerate() {
                match check_in(&state, i as i64, gate(&format!("gate {g}"))) {
                    Ok(next) => { admitted.push(i); state = next; }
                    Err(DoorRefusal::AlreadyCheckedIn { at_ms, .. }) => prop_assert_eq!(at_ms, 0),
                    Err(other) => prop_assert!(false, "unexpected {:?}", other),
                }
            }
            prop_assert_eq!(admitted, vec![0]);
        }
    }
}
