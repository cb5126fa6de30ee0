//! Host tests of the event workflow: status transitions, edits after publishing, sale windows.

use super::super::ids::UserId;
use super::*;
use proptest::prelude::*;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 2025-06-01T00:00:00Z
const T0: i64 = 1_748_736_000_000;

fn columns() -> Vec<(Actor, Option<EventRole>)> {
    let roles = [
        None,
        Some(EventRole::Viewer),
        Some(EventRole::Editor),
        Some(EventRole::Admin),
    ];
    let id = UserId::new("0190f3a2-7c1e-7b4d-9a3f-000000000001");
    let actors = [
        Actor::Anonymous,
        Actor::User {
            id: id.clone(),
            platform_admin: false,
        },
        Actor::User {
            id,
            platform_admin: true,
        },
    ];
    actors
        .iter()
        .flat_map(|actor| roles.iter().map(move |role| (actor.clone(), *role)))
        .collect()
}

fn letter(result: Result<EventStatus, LifecycleDenied>) -> char {
    match result {
        Ok(_) => 'A',
        Err(LifecycleDenied::Access(DenyReason::Unauthenticated)) => 'U',
        Err(LifecycleDenied::Access(DenyReason::Forbidden)) => 'F',
        Err(LifecycleDenied::Access(DenyReason::NotFound)) => 'N',
        Err(LifecycleDenied::Transition(_)) => 'X',
    }
}

/// (status, ever published, action, status after, one letter per actor column).
/// Letters: A done, U 401, F 403, N 404, X 409. Columns: anonymous | signed-in user |
/// platform admin, each with no role, viewer, editor, admin.
fn table() -> Vec<(
    EventStatus,
    bool,
    LifecycleAction,
    Option<EventStatus>,
    &'static str,
)> {
    use EventStatus::*;
    use LifecycleAction::*;
    vec![
        (Draft, false, EditDetails, Some(Draft), "UUUU NFAA FFAA"),
        (Draft, false, Configure, Some(Configured), "UUUU NFAA FFAA"),
        (Draft, false, AddTicketClass, Some(Draft), "UUUU NFAA FFAA"),
        (Draft, false, EditTicketClass, Some(Draft), "UUUU NFAA FFAA"),
        (Draft, false, Approve, None, "UUUU NFFF XXXX"),
        (Draft, false, Publish, None, "UUUU NFFX FFFX"),
        (Draft, false, Cancel, Some(Cancelled), "UUUU NFFA AAAA"),
        (
            Configured,
            false,
            EditDetails,
            Some(Configured),
            "UUUU NFAA FFAA",
        ),
        (
            Configured,
            false,
            Configure,
            Some(Configured),
            "UUUU NFAA FFAA",
        ),
        (
            Configured,
            false,
            AddTicketClass,
            Some(Configured),
            "UUUU NFAA FFAA",
        ),
        (
            Configured,
            false,
            EditTicketClass,
            Some(Configured),
            "UUUU NFAA FFAA",
        ),
        (Configured, false, Approve, Some(Approved), "UUUU NFFF AAAA"),
        (Configured, false, Publish, None, "UUUU NFFX FFFX"),
        (Configured, false, Cancel, Some(Cancelled), "UUUU NFFA AAAA"),
        (
            Approved,
            false,
            EditDetails,
            Some(Approved),
            "UUUU NFAA FFAA",
        ),
        (
            Approved,
            false,
            Configure,
            Some(Configured),
            "UUUU NFAA FFAA",
        ),
        (
            Approved,
            false,
            AddTicketClass,
            Some(Approved),
            "UUUU NFAA FFAA",
        ),
        (
            Approved,
            false,
            EditTicketClass,
            Some(Approved),
            "UUUU NFAA FFAA",
        ),
        (Approved, false, Approve, None, "UUUU NFFF XXXX"),
        (Approved, false, Publish, Some(Published), "UUUU NFFA FFFA"),
        (Approved, false, Cancel, Some(Cancelled), "UUUU NFFA AAAA"),
        (
            Published,
            true,
            EditDetails,
            Some(Published),
            "UUUU FFAA FFAA",
        ),
        (
            Published,
            true,
            Configure,
            Some(Published),
            "UUUU FFAA FFAA",
        ),
        (
            Published,
            true,
            AddTicketClass,
            Some(Published),
            "UUUU FFAA FFAA",
        ),
        (
            Published,
            true,
            EditTicketClass,
            Some(Published),
            "UUUU FFAA FFAA",
        ),
        (Published, true, Approve, None, "UUUU FFFF XXXX"),
        (Published, true, Publish, None, "UUUU FFFX FFFX"),
        (Published, true, Cancel, Some(Cancelled), "UUUU FFFA AAAA"),
        // Cancelled before it was ever published: still hidden.
        (Cancelled, false, EditDetails, None, "UUUU NFXX FFXX"),
        (Cancelled, false, Configure, None, "UUUU NFXX FFXX"),
        (Cancelled, false, AddTicketClass, None, "UUUU NFXX FFXX"),
        (Cancelled, false, EditTicketClass, None, "UUUU NFXX FFXX"),
        (Cancelled, false, Approve, None, "UUUU NFFF XXXX"),
        (Cancelled, false, Publish, None, "UUUU NFFX FFFX"),
        (Cancelled, false, Cancel, None, "UUUU NFFX XXXX"),
        // Cancelled after publication: visible, so outsiders get 403 rather than 404.
        (Cancelled, true, EditDetails, None, "UUUU FFXX FFXX"),
        (Cancelled, true, Configure, None, "UUUU FFXX FFXX"),
        (Cancelled, true, AddTicketClass, None, "UUUU FFXX FFXX"),
        (Cancelled, true, EditTicketClass, None, "UUUU FFXX FFXX"),
        (Cancelled, true, Approve, None, "UUUU FFFF XXXX"),
        (Cancelled, true, Publish, None, "UUUU FFFX FFFX"),
        (Cancelled, true, Cancel, None, "UUUU FFFX XXXX"),
    ]
}

#[test]
fn every_status_action_and_actor_gets_the_outcome_in_the_table() {
    let columns = columns();
    let mut mismatches = Vec::new();
    for (status, ever_published, action, after, expected) in table() {
        assert_eq!(
            transition(status, action).ok(),
            after,
            "{status} {action:?}"
        );
        let expected: String = expected.chars().filter(|c| !c.is_whitespace()).collect();
        let outcomes: Vec<_> = columns
            .iter()
            .map(|(actor, role)| decide(actor, *role, status, ever_published, action))
            .collect();
        for next in outcomes.iter().flatten() {
            assert_eq!(Some(*next), after, "{status} {action:?}");
        }
        let actual: String = outcomes.into_iter().map(letter).collect();
        if actual != expected {
            mismatches.push(format!(
                "{status} (published before: {ever_published}) {action:?}: expected {expected} got {actual}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn the_table_covers_every_status_and_action() {
    let rows = table();
    for status in EventStatus::ALL {
        for action in LifecycleAction::ALL {
            assert!(
                rows.iter()
                    .any(|(s, _, a, _, _)| *s == status && *a == action),
                "{status} {action:?}"
            );
        }
    }
    assert_eq!(rows.len(), 6 * LifecycleAction::ALL.len());
}

#[test]
fn the_happy_path_runs_draft_to_published() {
    let mut status = EventStatus::Draft;
    for action in [
        LifecycleAction::Configure,
        LifecycleAction::Approve,
        LifecycleAction::Publish,
    ] {
        status = transition(status, action).unwrap_or(EventStatus::Cancelled);
    }
    assert_eq!(status, EventStatus::Published);
}

#[test]
fn reconfiguring_an_approved_event_needs_a_new_approval() {
    assert_eq!(
        transition(EventStatus::Approved, LifecycleAction::Configure),
        Ok(EventStatus::Configured)
    );
}

#[test]
fn cancelling_twice_is_an_invalid_transition_with_the_api_code() {
    let error = transition(EventStatus::Cancelled, LifecycleAction::Cancel).err();
    assert_eq!(error.map(|e| e.code()), Some("INVALID_STATUS_TRANSITION"));
    assert_eq!(
        error.map(|e| e.to_string()).as_deref(),
        Some("cannot cancel an event in status CANCELLED")
    );
    let denied = LifecycleDenied::from(InvalidStatusTransition {
        from: EventStatus::Draft,
        action: LifecycleAction::Publish,
    });
    assert_eq!(
        (denied.code(), denied.http_status()),
        ("INVALID_STATUS_TRANSITION", 409)
    );
    let hidden = LifecycleDenied::from(DenyReason::NotFound);
    assert_eq!((hidden.code(), hidden.http_status()), ("NOT_FOUND", 404));
}

#[test]
fn statuses_use_the_api_spelling() {
    assert_eq!(
        serde_json::to_string(&EventStatus::Configured)
            .ok()
            .as_deref(),
        Some("\"CONFIGURED\"")
    );
    for status in EventStatus::ALL {
        assert_eq!(EventStatus::parse(status.as_str()), Ok(status));
    }
    assert_eq!(EventStatus::parse("published"), Ok(EventStatus::Published));
    assert!(EventStatus::parse("LIVE").is_err());
}

#[test]
fn only_published_events_and_those_cancelled_after_publication_are_public() {
    for status in EventStatus::ALL {
        for ever_published in [false, true] {
            let expected = status == EventStatus::Published
                || (status == EventStatus::Cancelled && ever_published);
            assert_eq!(is_publicly_visible(status, ever_published), expected);
        }
    }
}

fn config() -> ConfigTerms {
    ConfigTerms {
        ticket_sale_start_ms: T0 + DAY,
        ticket_sale_end_ms: T0 + 10 * DAY,
        is_free: false,
        max_attendees: Some(5_000),
        is_public: true,
        requires_approval: false,
        allow_wait_room: true,
        is_new_trending: false,
        max_tickets_per_user: Some(4),
        waitroom: WaitroomConfig::default(),
        waitroom_shards: ShardCount::ONE,
        refundable_until_ms: None,
    }
}

fn event() -> EventTerms {
    EventTerms {
        name: "Hòa nhạc mùa hè".to_string(),
        description: "Đêm nhạc ngoài trời".to_string(),
        location: "Nhà hát Lớn Hà Nội".to_string(),
        thumbnail_url: None,
        organizer_id: Some(OrganizerId::new("0190f3a2-7c1e-7b4d-9a3f-0000000000aa")),
        category_ids: Vec::new(),
        start_ms: T0 + 20 * DAY,
        end_ms: T0 + 20 * DAY + 4 * HOUR,
        config: Some(config()),
    }
}

fn with_config(change: impl FnOnce(&mut ConfigTerms)) -> EventTerms {
    let mut terms = event();
    if let Some(config) = terms.config.as_mut() {
        change(config);
    }
    terms
}

fn refused_fields(result: Result<(), Vec<FieldError>>) -> Vec<String> {
    result
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.field)
        .collect()
}

const BEFORE_SALE: i64 = T0;
const DURING_SALE: i64 = T0 + 2 * DAY;
const AFTER_SALE: i64 = T0 + 11 * DAY;

#[test]
fn presentation_fields_are_free_once_published() {
    // Free as far as the published-field rules go; whether they need a new approval is
    // `review_edit`'s question (material_edits_after_approval_need_a_new_review_in_every_status).
    let mut new = event();
    new.name = "Hòa nhạc mùa hè 2025".to_string();
    new.description = "Đã thêm khách mời".to_string();
    new.location = "Cung Văn hóa Hữu nghị".to_string();
    new.thumbnail_url = Some("https://cdn.example.vn/poster.jpg".to_string());
    new.category_ids = vec![CategoryId::new("0190f3a2-7c1e-7b4d-9a3f-0000000000cc")];
    assert_eq!(check_published_update(&event(), &new, DURING_SALE), Ok(()));
}

#[test]
fn operational_settings_are_free_during_the_sale() {
    let new = with_config(|c| {
        c.is_public = false;
        c.is_new_trending = true;
        c.max_tickets_per_user = Some(2);
        c.waitroom.max_concurrent_checkouts = 500;
        c.waitroom.admission_batch = 50;
        c.max_attendees = Some(6_000);
        c.ticket_sale_end_ms += DAY;
    });
    assert_eq!(check_published_update(&event(), &new, DURING_SALE), Ok(()));
}

#[test]
fn an_event_may_be_postponed_but_not_brought_forward() {
    let mut later = event();
    later.start_ms += DAY;
    later.end_ms += DAY;
    assert_eq!(
        check_published_update(&event(), &later, DURING_SALE),
        Ok(())
    );

    let mut earlier = event();
    earlier.start_ms -= HOUR;
    earlier.end_ms -= HOUR;
    assert_eq!(
        refused_fields(check_published_update(&event(), &earlier, DURING_SALE)),
        ["startDate", "endDate"]
    );
}

#[test]
fn the_start_is_frozen_once_the_event_has_started() {
    let mut later = event();
    later.start_ms += HOUR;
    let during_show = event().start_ms + HOUR;
    assert_eq!(
        refused_fields(check_published_update(&event(), &later, during_show)),
        ["startDate"]
    );
}

#[test]
fn the_organizer_is_frozen_once_published() {
    let mut new = event();
    new.organizer_id = Some(OrganizerId::new("0190f3a2-7c1e-7b4d-9a3f-0000000000bb"));
    assert_eq!(
        refused_fields(check_published_update(&event(), &new, BEFORE_SALE)),
        ["organizerId"]
    );
}

#[test]
fn the_sale_start_may_move_until_the_sale_starts() {
    let moved = with_config(|c| c.ticket_sale_start_ms += HOUR);
    assert_eq!(
        check_published_update(&event(), &moved, BEFORE_SALE),
        Ok(())
    );
    let earlier = with_config(|c| c.ticket_sale_start_ms -= HOUR);
    assert_eq!(
        check_published_update(&event(), &earlier, BEFORE_SALE),
        Ok(())
    );
    assert_eq!(
        refused_fields(check_published_update(&event(), &moved, DURING_SALE)),
        ["ticketSaleStartDate"]
    );
    assert_eq!(
        refused_fields(check_published_update(&event(), &moved, AFTER_SALE)),
        ["ticketSaleStartDate"]
    );
}

#[test]
fn the_sale_end_only_moves_later() {
    let shortened = with_config(|c| c.ticket_sale_end_ms -= HOUR);
    for now in [BEFORE_SALE, DURING_SALE, AFTER_SALE] {
        assert_eq!(
            refused_fields(check_published_update(&event(), &shortened, now)),
            ["ticketSaleEndDate"]
        );
    }
}

#[test]
fn payment_and_admission_rules_are_frozen_once_published() {
    let new = with_config(|c| {
        c.is_free = true;
        c.requires_approval = true;
    });
    assert_eq!(
        refused_fields(check_published_update(&event(), &new, BEFORE_SALE)),
        ["isFree", "requiresApproval"]
    );
}

#[test]
fn capacity_may_only_grow() {
    let lower = with_config(|c| c.max_attendees = Some(4_999));
    assert_eq!(
        refused_fields(check_published_update(&event(), &lower, BEFORE_SALE)),
        ["maxAttendees"]
    );
    let unlimited = with_config(|c| c.max_attendees = None);
    assert_eq!(
        check_published_update(&event(), &unlimited, BEFORE_SALE),
        Ok(())
    );
    let capped = with_config(|c| c.max_attendees = Some(10_000));
    assert_eq!(
        refused_fields(check_published_update(&unlimited, &capped, BEFORE_SALE)),
        ["maxAttendees"]
    );
}

#[test]
fn the_waitroom_cannot_be_switched_while_the_sale_is_open() {
    let off = with_config(|c| c.allow_wait_room = false);
    assert_eq!(
        refused_fields(check_published_update(&event(), &off, DURING_SALE)),
        ["allowWaitRoom"]
    );
    assert_eq!(
        refused_fields(check_published_update(&off, &event(), DURING_SALE)),
        ["allowWaitRoom"]
    );
    assert_eq!(check_published_update(&event(), &off, BEFORE_SALE), Ok(()));
    assert_eq!(check_published_update(&event(), &off, AFTER_SALE), Ok(()));
}

#[test]
fn the_config_cannot_be_removed_once_published() {
    let mut new = event();
    new.config = None;
    assert_eq!(
        refused_fields(check_published_update(&event(), &new, BEFORE_SALE)),
        ["config"]
    );
}

#[test]
fn every_refused_field_is_reported() {
    let mut new = with_config(|c| {
        c.ticket_sale_start_ms += HOUR;
        c.ticket_sale_end_ms -= HOUR;
        c.is_free = true;
        c.max_attendees = Some(1);
        c.requires_approval = true;
        c.allow_wait_room = false;
    });
    new.organizer_id = None;
    new.start_ms -= HOUR;
    new.end_ms -= HOUR;
    assert_eq!(
        refused_fields(check_published_update(&event(), &new, DURING_SALE)),
        [
            "organizerId",
            "startDate",
            "endDate",
            "ticketSaleStartDate",
            "ticketSaleEndDate",
            "isFree",
            "maxAttendees",
            "requiresApproval",
            "allowWaitRoom"
        ]
    );
}

#[test]
fn dates_must_agree_with_each_other() {
    assert_eq!(check_schedule(&event()), Ok(()));
    let mut backwards = event();
    backwards.end_ms = backwards.start_ms;
    assert_eq!(refused_fields(check_schedule(&backwards)), ["endDate"]);

    let empty_window = with_config(|c| c.ticket_sale_end_ms = c.ticket_sale_start_ms);
    assert_eq!(
        refused_fields(check_schedule(&empty_window)),
        ["ticketSaleEndDate"]
    );

    let sells_after_show = with_config(|c| c.ticket_sale_end_ms = T0 + 30 * DAY);
    assert_eq!(
        refused_fields(check_schedule(&sells_after_show)),
        ["ticketSaleEndDate"]
    );

    let mut unconfigured = event();
    unconfigured.config = None;
    assert_eq!(check_schedule(&unconfigured), Ok(()));
}

fn ticket_class() -> TicketClassTerms {
    TicketClassTerms {
        name: "VIP".to_string(),
        price_cents: 1_500_000,
        currency: CurrencyCode::VND,
        total: 200,
        sale_start_ms: Some(T0 + DAY),
        sale_end_ms: Some(T0 + 5 * DAY),
        paused: false,
    }
}

#[test]
fn a_ticket_class_never_changes_currency() {
    let mut new = ticket_class();
    new.currency = CurrencyCode::USD;
    for published in [false, true] {
        assert_eq!(
            refused_fields(check_ticket_class_update(
                &ticket_class(),
                &new,
                published,
                BEFORE_SALE
            )),
            ["currency"]
        );
    }
}

#[test]
fn a_published_ticket_class_keeps_its_sale_promises() {
    let mut new = ticket_class();
    new.name = "VIP Gold".to_string();
    new.price_cents = 1_800_000;
    new.total = 300;
    new.paused = true;
    new.sale_end_ms = Some(T0 + 6 * DAY);
    assert_eq!(
        check_ticket_class_update(&ticket_class(), &new, true, DURING_SALE),
        Ok(())
    );

    let mut moved = ticket_class();
    moved.sale_start_ms = Some(T0 + 3 * DAY);
    moved.sale_end_ms = Some(T0 + 4 * DAY);
    assert_eq!(
        check_ticket_class_update(&ticket_class(), &moved, false, DURING_SALE),
        Ok(())
    );
    assert_eq!(
        refused_fields(check_ticket_class_update(
            &ticket_class(),
            &moved,
            true,
            DURING_SALE
        )),
        ["saleStartAt", "saleEndAt"]
    );

    let mut following_event = ticket_class();
    following_event.sale_start_ms = None;
    following_event.sale_end_ms = None;
    let mut narrowed = following_event.clone();
    narrowed.sale_start_ms = Some(T0 + 3 * DAY);
    narrowed.sale_end_ms = Some(T0 + 4 * DAY);
    assert_eq!(
        refused_fields(check_ticket_class_update(
            &following_event,
            &narrowed,
            true,
            BEFORE_SALE
        )),
        ["saleStartAt", "saleEndAt"]
    );
}

#[test]
fn buyers_may_queue_and_order_only_in_a_published_events_sale_window() {
    let terms = config();
    assert_eq!(
        check_sale_open(EventStatus::Published, Some(&terms), DURING_SALE),
        Ok(())
    );
    assert_eq!(
        check_sale_open(
            EventStatus::Published,
            Some(&terms),
            terms.ticket_sale_start_ms
        ),
        Ok(())
    );
    assert_eq!(
        check_sale_open(
            EventStatus::Published,
            Some(&terms),
            terms.ticket_sale_end_ms
        ),
        Err(SaleNotOpen)
    );
    assert_eq!(
        check_sale_open(EventStatus::Published, Some(&terms), BEFORE_SALE),
        Err(SaleNotOpen)
    );
    assert_eq!(
        check_sale_open(EventStatus::Approved, Some(&terms), DURING_SALE),
        Err(SaleNotOpen)
    );
    assert_eq!(
        check_sale_open(EventStatus::Cancelled, Some(&terms), DURING_SALE),
        Err(SaleNotOpen)
    );
    assert_eq!(
        check_sale_open(EventStatus::Published, None, DURING_SALE),
        Err(SaleNotOpen)
    );
    assert_eq!(SaleNotOpen.code(), "SALE_NOT_OPEN");
}

fn shards(count: u16) -> ShardCount {
    ShardCount::new(count).expect("1..=64")
}

fn with_shards(count: u16) -> EventTerms {
    with_config(|c| c.waitroom_shards = shards(count))
}

#[test]
fn the_shard_count_may_be_raised_until_the_sale_starts() {
    assert_eq!(
        check_config_update(&event(), &with_shards(4), BEFORE_SALE),
        Ok(())
    );
    assert_eq!(
        check_config_update(&with_shards(4), &with_shards(64), BEFORE_SALE),
        Ok(())
    );
    // The published-field rules leave the count to `check_config_update`.
    assert_eq!(
        check_published_update(&event(), &with_shards(4), BEFORE_SALE),
        Ok(())
    );
}

#[test]
fn the_shard_count_cannot_be_raised_once_the_sale_has_started() {
    let sale_start = config().ticket_sale_start_ms;
    for now in [sale_start, DURING_SALE, AFTER_SALE] {
        assert_eq!(
            refused_fields(check_config_update(&event(), &with_shards(2), now)),
            ["waitroom.shards"]
        );
    }
    assert_eq!(
        check_config_update(&event(), &with_shards(2), sale_start - 1),
        Ok(())
    );
}

#[test]
fn the_shard_count_is_never_lowered() {
    for now in [BEFORE_SALE, DURING_SALE, AFTER_SALE] {
        assert_eq!(
            refused_fields(check_config_update(&with_shards(8), &with_shards(4), now)),
            ["waitroom.shards"]
        );
    }
}

#[test]
fn the_shard_count_is_judged_only_against_stored_sale_terms() {
    // The window that decides is the stored one: moving the start later in the same request
    // does not reopen the raise.
    let later_start = with_config(|c| {
        c.waitroom_shards = shards(4);
        c.ticket_sale_start_ms = AFTER_SALE;
        c.ticket_sale_end_ms = AFTER_SALE + DAY;
    });
    assert_eq!(
        refused_fields(check_config_update(&event(), &later_start, DURING_SALE)),
        ["waitroom.shards"]
    );
    // A first configure has nothing to rise from.
    let mut unconfigured = event();
    unconfigured.config = None;
    assert_eq!(
        check_config_update(&unconfigured, &with_shards(64), AFTER_SALE),
        Ok(())
    );
}

proptest! {
    #[test]
    fn the_shard_count_only_rises_and_only_before_the_sale(
        before in 1u16..=64,
        after in 1u16..=64,
        now in T0 - 30 * DAY..T0 + 60 * DAY,
    ) {
        let allowed =
            after == before || (after > before && now < config().ticket_sale_start_ms);
        prop_assert_eq!(
            check_config_update(&with_shards(before), &with_shards(after), now).is_ok(),
            allowed
        );
    }

    #[test]
    fn an_unchanged_event_is_always_a_valid_update(now in T0 - 30 * DAY..T0 + 60 * DAY) {
        prop_assert_eq!(check_published_update(&event(), &event(), now), Ok(()));
        prop_assert_eq!(check_config_update(&event(), &event(), now), Ok(()));
        prop_assert_eq!(check_ticket_class_update(&ticket_class(), &ticket_class(), true, now), Ok(()));
    }

    #[test]
    fn moving_every_date_later_before_anything_started_is_accepted(
        shift in 0i64..(365 * DAY),
    ) {
        let mut new = with_config(|c| c.ticket_sale_end_ms += shift);
        new.start_ms += shift;
        new.end_ms += shift;
        prop_assert_eq!(check_published_update(&event(), &new, BEFORE_SALE), Ok(()));
    }

    #[test]
    fn every_command_sequence_stays_in_the_lifecycle(
        actions in proptest::collection::vec(0usize..7, 0..20),
    ) {
        // Whatever is tried, CANCELLED is final and PUBLISHED is only reached via APPROVED.
        let mut status = EventStatus::Draft;
        for index in actions {
            let action = LifecycleAction::ALL[index];
            if let Ok(next) = transition(status, action) {
                if next == EventStatus::Published && status != EventStatus::Published {
                    prop_assert_eq!(status, EventStatus::Approved);
                }
                prop_assert!(status != EventStatus::Cancelled);
                status = next;
            }
        }
    }
}

/// (status, material edit?, the status after or None = 409 `REAPPROVAL_REQUIRED`).
#[test]
fn material_edits_after_approval_need_a_new_review_in_every_status() {
    use EventStatus::*;
    let matrix: [(EventStatus, bool, Option<EventStatus>); 10] = [
        (Draft, false, Some(Draft)),
        (Draft, true, Some(Draft)),
        (Configured, false, Some(Configured)),
        (Configured, true, Some(Configured)),
        (Approved, false, Some(Approved)),
        (Approved, true, Some(Configured)),
        (Published, false, Some(Published)),
        (Published, true, None),
        (Cancelled, false, Some(Cancelled)),
        (Cancelled, true, Some(Cancelled)),
    ];
    for (status, material, expected) in matrix {
        for edit in [
            MaterialEdit::Name,
            MaterialEdit::Description,
            MaterialEdit::Location,
            MaterialEdit::Thumbnail,
            MaterialEdit::NewTicketClass,
            MaterialEdit::PriceRaised,
        ] {
            let edits: &[MaterialEdit] = if material { &[edit] } else { &[] };
            assert_eq!(
                review_edit(status, edits).ok(),
                expected,
                "{status} {edits:?}"
            );
        }
    }
}

#[test]
fn a_refused_material_edit_names_its_fields_and_the_api_code() {
    let refused = review_edit(
        EventStatus::Published,
        &[MaterialEdit::Name, MaterialEdit::PriceRaised],
    )
    .err();
    assert_eq!(
        refused.as_ref().map(ToString::to_string).as_deref(),
        Some("a published event's name, priceCents cannot change without a new approval")
    );
    assert_eq!(ReapprovalRequired::CODE, "REAPPROVAL_REQUIRED");
}

#[test]
fn what_buyers_read_is_material_and_categories_and_dates_are_not() {
    let old = event();
    assert_eq!(material_detail_edits(&old, &old), []);
    let mut new = event();
    new.name = "Another act".into();
    new.description = "Another show".into();
    new.location = "Another hall".into();
    new.thumbnail_url = Some("https://img.example.com/other.png".into());
    assert_eq!(
        material_detail_edits(&old, &new),
        [
            MaterialEdit::Name,
            MaterialEdit::Description,
            MaterialEdit::Location,
            MaterialEdit::Thumbnail
        ]
    );
    let mut operational = event();
    operational.category_ids = vec![CategoryId::new("0190f3a2-7c1e-7b4d-9a3f-0000000000cc")];
    operational.start_ms += DAY;
    operational.end_ms += DAY;
    assert_eq!(material_detail_edits(&old, &operational), []);
}

#[test]
fn only_a_raised_price_is_a_material_ticket_class_edit() {
    let old = ticket_class();
    let mut cheaper = ticket_class();
    cheaper.price_cents -= 1;
    cheaper.name = "VIP (last call)".into();
    cheaper.total += 50;
    cheaper.paused = true;
    assert_eq!(material_class_edits(&old, &cheaper), []);
    let mut dearer = ticket_class();
    dearer.price_cents += 1;
    assert_eq!(
        material_class_edits(&old, &dearer),
        [MaterialEdit::PriceRaised]
    );
}
