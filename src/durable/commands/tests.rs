//! The object's core on the host: every protocol operation run against the memory stores,
//! each inside a simulated transaction that, like `transactionSync`, keeps nothing an `Err`
//! wrote.

use serde_json::Value;

use super::*;
use crate::domain::event_workflow::EventStatus;
use crate::domain::ledger::{
    ClassAvailability, ConfirmOutcome, MemoryLedgerStore, ReleaseOutcome, RequestedItem,
    ReturnOutcome, DEFAULT_HOLD_MS,
};
use crate::domain::waitroom::MemoryWaitroomStore;
use crate::domain::waitroom::WaitroomConfig;
use crate::durable::hub_store::MemoryHubStore;
use crate::durable::outbox::Destination;

const EVENT: &str = "evt-1";
const SECRET: &[u8] = b"a-test-secret-that-is-long-enough-for-hs256";
const SALE_START: i64 = 1_700_000_000_000;
const MINUTE: i64 = 60_000;

type MemoryCore<'a> =
    Core<&'a mut MemoryLedgerStore, &'a mut MemoryWaitroomStore, &'a mut MemoryHubStore>;

/// One event's object with memory stores and a clock the test moves.
#[derive(Default)]
struct Object {
    ledger: MemoryLedgerStore,
    waitroom: MemoryWaitroomStore,
    hub: MemoryHubStore,
    now: i64,
    secret: Option<Vec<u8>>,
}

impl Object {
    fn new() -> Self {
        Object {
            now: SALE_START + MINUTE,
            secret: Some(SECRET.to_vec()),
            ..Object::default()
        }
    }

    /// Runs one operation as the object does: all of it, or (on `Err`) none of it.
    fn run(
        &mut self,
        operation: impl FnOnce(MemoryCore<'_>) -> Result<Done, HubFailure>,
    ) -> Result<Done, HubFailure> {
        let before = (self.ledger.clone(), self.waitroom.clone(), self.hub.clone());
        let core = Core::new(
            &mut self.ledger,
            &mut self.waitroom,
            &mut self.hub,
            self.now,
            self.secret.clone(),
        );
        let result = operation(core);
        if result.is_err() {
            // An injected failure is spent, not stored: the rollback does not re-arm it.
            let still_armed = self.hub.fail_next_write;
            (self.ledger, self.waitroom, self.hub) = before;
            self.hub.fail_next_write = still_armed;
        }
        result
    }

    /// The reply of an operation that must commit and succeed.
    fn ok(&mut self, operation: impl FnOnce(MemoryCore<'_>) -> Result<Done, HubFailure>) -> Value {
        let done = self.run(operation).expect("the operation commits");
        done.reply.expect("the operation succeeds")
    }

    /// The failure of an operation that rolls back.
    fn refused(
        &mut self,
        operation: impl FnOnce(MemoryCore<'_>) -> Result<Done, HubFailure>,
    ) -> HubFailure {
        match self.run(operation) {
            Ok(done) => panic!("expected a rollback, got {:?}", done.reply),
            Err(failure) => failure,
        }
    }

    fn sync(&mut self, setup: EventSetup) {
        self.ok(|core| core.sync_event(setup));
    }

    fn class(&mut self, id: &str, total: i64) {
        let spec = TicketClassSpec {
            id: id.into(),
            total,
            status: ClassStatus::Active,
            sale_start_at: None,
            sale_end_at: None,
        };
        self.ok(|core| core.upsert_class(spec));
    }

    fn availability(&mut self) -> Vec<ClassAvailability> {
        let reply: ClassesReply = from(self.ok(|core| core.availability()));
        reply.items
    }

    fn join(&mut self, user: &str) -> SessionView {
        let user = user.to_owned();
        let reply: SessionReply = from(self.ok(|core| core.join(user)));
        reply.waitroom_session.expect("join answers with a session")
    }

    fn alarm(&mut self) -> AfterCommit {
        self.run(|core| core.alarm(&NobodyConnected))
            .expect("the alarm commits")
            .after
    }

    /// The types of the outbox's messages, oldest first.
    fn outbox_types(&self) -> Vec<String> {
        self.hub
            .outbox
            .iter()
            .map(|m| m.message.body["type"].as_str().unwrap_or("?").to_owned())
            .collect()
    }
}

fn from<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("the reply has its documented shape")
}

fn setup(status: EventStatus, waitroom: Option<WaitroomConfig>) -> EventSetup {
    EventSetup {
        event_id: EVENT.into(),
        status,
        sale_starts_at_ms: Some(SALE_START),
        sale_ends_at_ms: Some(SALE_START + 24 * 60 * MINUTE),
        max_tickets_per_user: Some(4),
        allow_wait_room: waitroom.is_some(),
        waitroom: waitroom.unwrap_or_default(),
        shards: 1,
    }
}

fn slots(max_concurrent_checkouts: u32) -> Option<WaitroomConfig> {
    Some(WaitroomConfig {
        max_concurrent_checkouts,
        checkout_ttl_seconds: 600,
        admission_batch: 10,
        ..WaitroomConfig::default()
    })
}

fn order(order_id: &str, user_id: &str, quantity: i64) -> ReserveRequest {
    ReserveRequest {
        order_id: order_id.into(),
        user_id: user_id.into(),
        items: vec![RequestedItem::new("ga", quantity)],
        hold_for_ms: None,
    }
}

/// A published event selling ten GA tickets, without a waitroom.
fn on_sale() -> Object {
    let mut object = Object::new();
    object.sync(setup(EventStatus::Published, None));
    object.class("ga", 10);
    object
}

/// A published event with a waitroom of `max` checkout slots and ten GA tickets.
fn with_waitroom(max: u32) -> Object {
    let mut object = Object::new();
    object.sync(setup(EventStatus::Published, slots(max)));
    object.class("ga", 10);
    object
}

// ----- inventory -----

#[test]
fn a_reserve_holds_the_tickets_and_tells_the_alarm_when_the_hold_lapses() {
    let mut object = on_sale();
    let done = object
        .run(|core| core.reserve(order("o1", "fan-1", 2)))
        .expect("commits");
    let hold = from::<HoldReply>(done.reply.expect("held")).hold;
    assert_eq!(hold.state, HoldState::Active);
    assert_eq!(hold.expires_at, object.now + DEFAULT_HOLD_MS);
    assert_eq!(done.after.earliest_deadline, Some(hold.expires_at));
    assert!(!done.after.outbox_written);
    assert_eq!(object.availability()[0].reserved, 2);
}

#[test]
fn confirming_sells_and_releasing_frees_without_writing_a_deadline() {
    let mut object = on_sale();
    object.ok(|core| core.reserve(order("o1", "fan-1", 2)));
    object.ok(|core| core.reserve(order("o2", "fan-2", 3)));

    let confirmed = object
        .run(|core| core.confirm("o1".into()))
        .expect("commits");
    assert!(matches!(
        from::<ConfirmOutcome>(confirmed.reply.expect("confirmed")),
        ConfirmOutcome::Confirmed(_)
    ));
    assert_eq!(confirmed.after.earliest_deadline, None);

    let released = object
        .run(|core| core.release("o2".into()))
        .expect("commits");
    assert!(matches!(
        from::<ReleaseOutcome>(released.reply.expect("released")),
        ReleaseOutcome::Released(_)
    ));
    assert_eq!(released.after.earliest_deadline, None);

    let ga = &object.availability()[0];
    assert_eq!((ga.reserved, ga.sold, ga.available), (0, 2, 8));
}

#[test]
fn a_refund_returns_the_sold_tickets_once_and_a_late_confirm_sells_nothing_again() {
    let mut object = on_sale();
    object.ok(|core| core.reserve(order("o1", "fan-1", 4)));
    object.ok(|core| core.confirm("o1".into()));
    // The limit is 4: fan-1 cannot buy more while holding the four.
    let over = object.refused(|core| core.reserve(order("o2", "fan-1", 1)));
    assert_eq!(over.code, "PURCHASE_LIMIT_EXCEEDED");

    let returned = object
        .run(|core| core.return_sold("o1".into()))
        .expect("commits");
    let again: ReturnOutcome = from(object.ok(|core| core.return_sold("o1".into())));
    let confirmed: ConfirmOutcome = from(object.ok(|core| core.confirm("o1".into())));

    assert!(matches!(
        from::<ReturnOutcome>(returned.reply.expect("returned")),
        ReturnOutcome::Returned(_)
    ));
    assert!(!returned.after.outbox_written);
    assert_eq!(returned.after.earliest_deadline, None);
    assert!(matches!(again, ReturnOutcome::AlreadyReturned(_)));
    assert!(matches!(confirmed, ConfirmOutcome::Confirmed(_)));
    let ga = &object.availability()[0];
    assert_eq!((ga.reserved, ga.sold, ga.available), (0, 0, 10));
    // The returned tickets are no longer fan-1's: the limit lets them buy again.
    object.ok(|core| core.reserve(order("o3", "fan-1", 4)));
    let unknown: ReturnOutcome = from(object.ok(|core| core.return_sold("nobody".into())));
    assert_eq!(unknown, ReturnOutcome::UnknownOrder);
    let not_sold: ReturnOutcome = from(object.ok(|core| core.return_sold("o3".into())));
    assert!(matches!(not_sold, ReturnOutcome::NotSold(_)));
}

#[test]
fn a_refused_reserve_answers_with_the_api_status_and_holds_nothing() {
    let mut object = on_sale();
    let over_limit = object.refused(|core| core.reserve(order("o1", "fan-1", 5)));
    assert_eq!(
        (over_limit.status(), over_limit.code),
        (422, "PURCHASE_LIMIT_EXCEEDED")
    );
    object.ok(|core| core.reserve(order("o2", "fan-2", 4)));
    object.ok(|core| core.reserve(order("o3", "fan-3", 4)));
    let failure = object.refused(|core| core.reserve(order("o4", "fan-1", 3)));
    assert_eq!(
        (failure.status(), failure.code),
        (409, "INSUFFICIENT_INVENTORY")
    );
    assert_eq!(object.availability()[0].reserved, 8);
    assert_eq!(object.ledger.all_holds().count(), 2);
}

#[test]
fn nothing_is_sold_before_the_event_is_published() {
    let mut object = Object::new();
    object.sync(setup(EventStatus::Approved, None));
    object.class("ga", 10);
    let failure = object.refused(|core| core.reserve(order("o1", "fan-1", 1)));
    assert_eq!((failure.status(), failure.code), (409, "SALE_NOT_OPEN"));
}

#[test]
fn a_class_change_applies_whole_or_not_at_all() {
    let mut object = on_sale();
    object.ok(|core| core.reserve(order("o1", "fan-1", 4)));
    let failure =
        object.refused(|core| core.update_class("ga".into(), Some(3), Some(ClassStatus::Paused)));
    assert_eq!(
        (failure.status(), failure.code),
        (409, "TOTAL_BELOW_COMMITTED")
    );
    // The pause written before the refused total was rolled back with it.
    assert_eq!(object.availability()[0].status, ClassStatus::Active);

    let reply: ClassReply =
        from(object.ok(|core| core.update_class("ga".into(), Some(6), Some(ClassStatus::Paused))));
    assert_eq!(
        (reply.ticket_class.total, reply.ticket_class.status),
        (6, ClassStatus::Paused)
    );
    let unknown = object.refused(|core| core.update_class("vip".into(), None, None));
    assert_eq!(
        (unknown.status(), unknown.code),
        (404, "UNKNOWN_TICKET_CLASS")
    );
}

#[test]
fn an_object_belongs_to_one_event() {
    let mut object = on_sale();
    let other = EventSetup {
        event_id: "evt-2".into(),
        ..setup(EventStatus::Published, None)
    };
    let failure = object.refused(|core| core.sync_event(other));
    assert_eq!((failure.status(), failure.code), (409, "CONFLICT"));
    assert_eq!(
        object.hub.setup.as_ref().map(|s| s.event_id.as_str()),
        Some(EVENT)
    );
}

// ----- the alarm and the outbox -----

#[test]
fn the_alarm_expires_due_holds_and_tells_the_saga_through_the_outbox() {
    let mut object = on_sale();
    object.ok(|core| core.reserve(order("o1", "fan-1", 2)));
    object.now += DEFAULT_HOLD_MS;

    let after = object.alarm();
    assert!(after.outbox_written);
    assert_eq!(after.earliest_deadline, Some(object.now + FRESH_RETRY_MS));
    assert_eq!(object.availability()[0].reserved, 0);

    let [stored] = object.hub.outbox.as_slice() else {
        panic!("expected one message, got {:?}", object.hub.outbox);
    };
    assert_eq!(stored.message.destination, Destination::PaymentEvents);
    assert_eq!(stored.next_attempt_at, object.now + FRESH_RETRY_MS);
    let body = &stored.message.body;
    assert_eq!(body["type"], "HOLD_EXPIRED");
    assert_eq!(body["eventId"], EVENT);
    assert_eq!(body["orderId"], "o1");
    assert_eq!(body["userId"], "fan-1");
    assert_eq!(body["id"], stored.message.id.as_str());
}

#[test]
fn an_alarm_with_nothing_due_writes_nothing() {
    let mut object = on_sale();
    object.ok(|core| core.reserve(order("o1", "fan-1", 2)));
    let after = object.alarm();
    assert!(!after.outbox_written);
    assert_eq!(after.earliest_deadline, None);
    assert!(object.hub.outbox.is_empty());
    assert_eq!(object.availability()[0].reserved, 2);
}

#[test]
fn an_outbox_write_that_fails_undoes_the_expiry_it_would_report() {
    let mut object = on_sale();
    object.ok(|core| core.reserve(order("o1", "fan-1", 2)));
    object.now += DEFAULT_HOLD_MS;
    object.hub.fail_next_write = true;

    let failure = object.refused(|core| core.alarm(&NobodyConnected));
    assert_eq!((failure.status(), failure.code), (500, "INTERNAL_ERROR"));
    // The saga must never miss an expiry: the hold stays ACTIVE for the next alarm.
    assert_eq!(object.availability()[0].reserved, 2);
    assert!(object.hub.outbox.is_empty());

    object.alarm();
    assert_eq!(object.outbox_types(), ["HOLD_EXPIRED"]);
    assert_eq!(object.availability()[0].reserved, 0);
}

#[test]
fn the_next_alarm_is_the_earliest_of_hold_expiry_waitroom_wake_up_and_outbox_retry() {
    let mut object = on_sale();
    assert_eq!(next_alarm_at(&mut object.ledger, &object.hub), Ok(None));

    object.ok(|core| core.reserve(order("o1", "fan-1", 1)));
    let expiry = object.now + DEFAULT_HOLD_MS;
    assert_eq!(
        next_alarm_at(&mut object.ledger, &object.hub),
        Ok(Some(expiry))
    );

    object.hub.waitroom_wake_at = Some(expiry - 1);
    assert_eq!(
        next_alarm_at(&mut object.ledger, &object.hub),
        Ok(Some(expiry - 1))
    );
    object.now += DEFAULT_HOLD_MS;
    object.alarm();
    object.hub.waitroom_wake_at = None;
    assert_eq!(
        next_alarm_at(&mut object.ledger, &object.hub),
        Ok(Some(object.now + FRESH_RETRY_MS))
    );
}

#[test]
fn the_status_counts_holds_the_outbox_and_the_waitroom() {
    let mut object = with_waitroom(2);
    object.ok(|core| core.reserve(order("o1", "fan-1", 1)));
    object.ok(|core| core.reserve(order("o2", "fan-2", 1)));
    object.join("fan-3");
    let status: HubStatus = from(object.ok(|core| core.status(7)));
    assert_eq!(status.event_id.as_deref(), Some(EVENT));
    assert_eq!(status.event_status, Some(EventStatus::Published));
    assert_eq!(status.active_holds, 2);
    assert_eq!(status.outbox_backlog, object.hub.outbox.len() as u64);
    assert!(
        status.outbox_backlog >= 1,
        "the join published QUEUE_JOINED"
    );
    assert_eq!(status.connected_sockets, 7);
    let waitroom = status.waitroom.expect("the event has a waitroom");
    assert_eq!((waitroom.queue_length, waitroom.max_slots), (1, 2));
}

#[test]
fn the_status_counts_the_admissions_of_the_last_minute_only() {
    let mut object = with_waitroom(5);
    object.join("fan-1");
    object.join("fan-2");
    object.alarm();
    let admitted = |object: &mut Object| {
        let status: HubStatus = from(object.ok(|core| core.status(0)));
        status.waitroom.expect("a waitroom").admitted_last_minute
    };
    assert_eq!(admitted(&mut object), 2);
    object.now += 30_000;
    object.join("fan-3");
    object.alarm();
    assert_eq!(admitted(&mut object), 3);
    // A minute after the first two, only the third still counts.
    object.now += 30_001;
    assert_eq!(admitted(&mut object), 1);
}

// ----- the waitroom -----

#[test]
fn joining_queues_the_fan_publishes_it_and_stores_the_next_wake_up() {
    let mut object = with_waitroom(1);
    let done = object
        .run(|core| core.join("fan-1".into()))
        .expect("commits");
    let session = from::<SessionReply>(done.reply.expect("joined"))
        .waitroom_session
        .expect("a session");
    assert_eq!(session.status, SessionStatus::Queued);
    assert_eq!((session.position, session.queue_length), (Some(1), 1));
    assert_eq!(session.event_id, EVENT);
    assert!(done.after.outbox_written);
    assert!(object.outbox_types().contains(&"QUEUE_JOINED".to_owned()));
    let wake = object.hub.waitroom_wake_at.expect("a tick is due");
    assert_eq!(
        done.after.earliest_deadline.map(|at| at <= wake),
        Some(true)
    );

    // Joining again is the same place, not a second one.
    assert_eq!(object.join("fan-1").session_id, session.session_id);
}

#[test]
fn a_fan_cannot_join_an_event_without_a_waitroom_or_before_it_is_published() {
    let mut object = on_sale();
    let failure = object.refused(|core| core.join("fan-1".into()));
    assert_eq!((failure.status(), failure.code), (404, "NOT_FOUND"));

    let mut object = Object::new();
    object.sync(setup(EventStatus::Approved, slots(1)));
    let failure = object.refused(|core| core.join("fan-1".into()));
    assert_eq!((failure.status(), failure.code), (409, "SALE_NOT_OPEN"));
}

#[test]
fn the_alarm_admits_the_head_with_a_checkout_token_for_its_session() {
    let mut object = with_waitroom(1);
    let first = object.join("fan-1");
    object.join("fan-2");

    let after = object.alarm();
    let [Push::Admitted {
        user_id,
        checkout_token,
        checkout_expires_at,
    }] = after.pushes.as_slice()
    else {
        panic!("expected one admission, got {:?}", after.pushes);
    };
    assert_eq!(user_id, "fan-1");
    let claims = TokenKey::new(SECRET)
        .verify_checkout(checkout_token, object.now)
        .expect("a valid checkout token");
    assert_eq!(
        (
            claims.sub.as_str(),
            claims.evt.as_str(),
            claims.sid.as_str()
        ),
        ("fan-1", EVENT, first.session_id.as_str())
    );
    assert_eq!(
        checkout_expires_at,
        &format_rfc3339_millis(object.now + 600_000)
    );
    assert!(after.head_moved);
    assert!(object.outbox_types().contains(&"QUEUE_READY".to_owned()));

    // The fan reads the same token back from their session.
    let session: SessionReply = from(object.ok(|core| core.touch("fan-1".into())));
    let session = session.waitroom_session.expect("a session");
    assert_eq!(session.status, SessionStatus::Admitted);
    assert_eq!(session.checkout_token.as_ref(), Some(checkout_token));
    // One slot: the second fan waits.
    assert_eq!(object.join("fan-2").position, Some(1));
}

#[test]
fn no_one_is_admitted_without_a_secret_to_sign_their_checkout_token() {
    let mut object = with_waitroom(1);
    object.join("fan-1");
    object.secret = None;
    let failure = object.refused(|core| core.alarm(&NobodyConnected));
    assert_eq!((failure.status(), failure.code), (500, "INTERNAL_ERROR"));
    assert_eq!(object.join("fan-1").status, SessionStatus::Queued);
}

#[test]
fn a_checkout_holds_tickets_once_per_order_and_a_dead_token_touches_no_stock() {
    let mut object = with_waitroom(1);
    let session = object.join("fan-1").session_id;
    object.alarm();

    let stranger = object
        .run(|core| core.reserve_for_checkout("no-such-session".into(), order("o0", "fan-1", 1)))
        .expect("the refusal commits its upkeep");
    let failure = stranger.reply.expect_err("refused");
    assert_eq!(
        (failure.status(), failure.code),
        (403, "CHECKOUT_TOKEN_INVALID")
    );
    assert_eq!(object.availability()[0].reserved, 0);

    let someone_else = session.clone();
    let reply = object
        .run(|core| core.reserve_for_checkout(someone_else, order("o1", "fan-2", 1)))
        .expect("commits")
        .reply;
    assert_eq!(reply.map_err(|f| f.code), Err("CHECKOUT_TOKEN_INVALID"));

    let checkout = session.clone();
    let hold: HoldReply =
        from(object.ok(|core| core.reserve_for_checkout(checkout, order("o1", "fan-1", 2))));
    assert_eq!(
        (hold.hold.order_id.as_str(), hold.hold.state),
        ("o1", HoldState::Active)
    );
    // The same order again is the same hold; another order on the same checkout is refused.
    let again = session.clone();
    object.ok(|core| core.reserve_for_checkout(again, order("o1", "fan-1", 2)));
    let second = session.clone();
    let reply = object
        .run(|core| core.reserve_for_checkout(second, order("o2", "fan-1", 1)))
        .expect("commits")
        .reply;
    assert_eq!(reply.map_err(|f| f.code), Err("CHECKOUT_TOKEN_INVALID"));
    assert_eq!(object.availability()[0].reserved, 2);
}

#[test]
fn a_hold_the_ledger_refuses_leaves_the_checkout_free_for_another_order() {
    let mut object = with_waitroom(1);
    let session = object.join("fan-1").session_id;
    object.alarm();

    object.ok(|core| core.reserve(order("o-a", "fan-a", 4)));
    object.ok(|core| core.reserve(order("o-b", "fan-b", 4)));
    let too_many = session.clone();
    let failure =
        object.refused(|core| core.reserve_for_checkout(too_many, order("o1", "fan-1", 3)));
    assert_eq!(
        (failure.status(), failure.code),
        (409, "INSUFFICIENT_INVENTORY")
    );

    let retry = session.clone();
    let hold: HoldReply =
        from(object.ok(|core| core.reserve_for_checkout(retry, order("o2", "fan-1", 2))));
    assert_eq!(hold.hold.order_id, "o2");
}

#[test]
fn a_resolved_checkout_frees_its_slot_for_the_next_fan() {
    let mut object = with_waitroom(1);
    let session = object.join("fan-1").session_id;
    object.join("fan-2");
    object.alarm();
    object.ok(|core| core.reserve_for_checkout(session, order("o1", "fan-1", 1)));
    object.ok(|core| core.confirm("o1".into()));

    object.ok(|core| core.checkout_resolved("o1".into(), CheckoutOutcome::Completed));
    assert!(object
        .outbox_types()
        .contains(&"CHECKOUT_COMPLETED".to_owned()));
    let after = object.alarm();
    let admitted: Vec<&str> = after
        .pushes
        .iter()
        .filter_map(|push| match push {
            Push::Admitted { user_id, .. } => Some(user_id.as_str()),
            Push::Expired { .. } => None,
        })
        .collect();
    assert_eq!(admitted, ["fan-2"]);
    // Resolving it again changes nothing.
    let again = object
        .run(|core| core.checkout_resolved("o1".into(), CheckoutOutcome::Completed))
        .expect("commits");
    assert!(again.after.pushes.is_empty());
}

#[test]
fn an_expired_hold_ends_its_checkout_in_the_same_alarm_once_the_token_ran_out_too() {
    let mut object = with_waitroom(1);
    let session = object.join("fan-1").session_id;
    object.alarm();
    object.ok(|core| core.reserve_for_checkout(session, order("o1", "fan-1", 1)));
    // The default hold is as long as the default checkout: both have run out.
    object.now += DEFAULT_HOLD_MS;

    let after = object.alarm();
    assert_eq!(
        after.pushes,
        [Push::Expired {
            user_id: "fan-1".into()
        }]
    );
    let types = object.outbox_types();
    assert!(types.contains(&"HOLD_EXPIRED".to_owned()), "{types:?}");
    assert!(types.contains(&"SESSION_EXPIRED".to_owned()), "{types:?}");
    // The saga's word after it changes nothing.
    let again = object
        .run(|core| core.checkout_resolved("o1".into(), CheckoutOutcome::Expired))
        .expect("commits");
    assert!(again.after.pushes.is_empty());
}

#[test]
fn an_expired_hold_with_time_left_on_the_token_waits_for_the_saga_to_end_or_reopen_it() {
    let short = |order_id: &str| ReserveRequest {
        hold_for_ms: Some(60_000),
        ..order(order_id, "fan-1", 1)
    };
    let mut object = with_waitroom(1);
    let session = object.join("fan-1").session_id;
    object.alarm();
    let first = session.clone();
    object.ok(|core| core.reserve_for_checkout(first, short("o1")));
    object.now += 60_000;

    // The alarm tells the saga and nothing else: only the saga knows whether the buyer saw a
    // payment page, which decides between ending the checkout and reopening it.
    let after = object.alarm();
    assert!(after.pushes.is_empty(), "{:?}", after.pushes);
    assert!(!object
        .outbox_types()
        .contains(&"SESSION_EXPIRED".to_owned()));

    // No payment link was made: the saga reopens it, and the same session orders again.
    object.ok(|core| core.unbind_order("o1".into()));
    assert!(!object
        .outbox_types()
        .contains(&"SESSION_EXPIRED".to_owned()));
    let again = session.clone();
    object.ok(|core| core.reserve_for_checkout(again, short("o2")));

    // This one's buyer had the payment page: the saga ends the checkout.
    object.now += 60_000;
    object.alarm();
    let done = object
        .run(|core| core.checkout_resolved("o2".into(), CheckoutOutcome::Expired))
        .expect("commits");
    assert_eq!(
        done.after.pushes,
        [Push::Expired {
            user_id: "fan-1".into()
        }]
    );
}

#[test]
fn an_unbound_order_gives_the_checkout_back_until_its_deadline() {
    let mut object = with_waitroom(1);
    let session = object.join("fan-1").session_id;
    object.alarm();
    let first = session.clone();
    object.ok(|core| core.reserve_for_checkout(first, order("o1", "fan-1", 1)));
    object.ok(|core| core.release("o1".into()));
    object.ok(|core| core.unbind_order("o1".into()));
    // Unbinding twice, or an order that was never bound, is a no-op.
    object.ok(|core| core.unbind_order("o1".into()));
    object.ok(|core| core.unbind_order("never-bound".into()));

    let hold: HoldReply =
        from(object.ok(|core| core.reserve_for_checkout(session, order("o2", "fan-1", 1))));
    assert_eq!(hold.hold.order_id, "o2");
}

#[test]
fn leaving_gives_the_place_up_and_is_refused_while_an_order_is_in_progress() {
    let mut object = with_waitroom(1);
    let session = object.join("fan-1").session_id;
    object.join("fan-2");
    object.ok(|core| core.leave("fan-2".into()));
    assert!(object.outbox_types().contains(&"QUEUE_LEFT".to_owned()));

    object.alarm();
    object.ok(|core| core.reserve_for_checkout(session, order("o1", "fan-1", 1)));
    let reply = object
        .run(|core| core.leave("fan-1".into()))
        .expect("commits")
        .reply;
    let failure = reply.expect_err("refused");
    assert_eq!(
        (failure.status(), failure.code),
        (409, "CHECKOUT_IN_PROGRESS")
    );
    // Leaving without a session is fine.
    object.ok(|core| core.leave("nobody".into()));
}

#[test]
fn a_cancellation_closes_a_waitroom_that_was_switched_off_since() {
    let mut object = with_waitroom(1);
    object.join("fan-1");
    object.sync(setup(EventStatus::Cancelled, None));
    let session: SessionReply = from(object.ok(|core| core.touch("fan-1".into())));
    assert_eq!(
        session.waitroom_session.map(|s| s.status),
        Some(SessionStatus::Expired)
    );
    assert!(object.outbox_types().contains(&"QUEUE_CLOSED".to_owned()));
}

#[test]
fn a_touch_without_a_waitroom_or_a_session_answers_no_session() {
    let mut object = on_sale();
    let reply: SessionReply = from(object.ok(|core| core.touch("fan-1".into())));
    assert_eq!(reply.waitroom_session, None);
    let mut object = with_waitroom(1);
    let reply: SessionReply = from(object.ok(|core| core.touch("fan-1".into())));
    assert_eq!(reply.waitroom_session, None);
}

#[test]
fn position_pushes_go_to_queued_fans_only() {
    let mut object = with_waitroom(1);
    object.join("fan-1");
    object.join("fan-2");
    object.join("fan-3");
    object.alarm();
    let views = queued_views(
        &mut object.waitroom,
        ["fan-1", "fan-2", "fan-3", "stranger"],
        object.now,
    )
    .expect("read");
    let positions: Vec<(&str, Option<u64>)> = views
        .iter()
        .map(|(user, view)| (*user, view.position))
        .collect();
    assert_eq!(positions, [("fan-2", Some(1)), ("fan-3", Some(2))]);
    assert!(views.iter().all(|(_, view)| view.checkout_token.is_none()));
}

// ----- the wire protocol -----

/// Runs one JSON request as the object's `/rpc` does.
fn rpc(object: &mut Object, request: Value) -> Result<Value, HubFailure> {
    let request: HubRequest = serde_json::from_value(request).expect("a hub request");
    object.run(|core| core.handle(request, 3))?.reply
}

#[test]
fn every_operation_is_reachable_through_its_wire_request() {
    let mut object = Object::new();
    let setup = serde_json::to_value(setup(EventStatus::Published, slots(1))).expect("json");
    let mut sync = serde_json::json!({"op": "syncEvent"});
    if let (Value::Object(sync), Value::Object(setup)) = (&mut sync, setup) {
        sync.extend(setup);
    }
    let line = serde_json::json!([{"ticketClassId": "ga", "quantity": 1}]);
    let requests = [
        sync,
        serde_json::json!({"op": "upsertClass", "id": "ga", "total": 5}),
        serde_json::json!({"op": "updateClass", "ticketClassId": "ga", "total": 6}),
        serde_json::json!({"op": "availability"}),
        serde_json::json!({"op": "reserve", "orderId": "o1", "userId": "u1", "items": line}),
        serde_json::json!({"op": "confirm", "orderId": "o1"}),
        serde_json::json!({"op": "reserve", "orderId": "o2", "userId": "u2", "items": line}),
        serde_json::json!({"op": "release", "orderId": "o2"}),
        serde_json::json!({"op": "reserve", "orderId": "o4", "userId": "u4", "items": line}),
        serde_json::json!({"op": "confirm", "orderId": "o4"}),
        serde_json::json!({"op": "returnSold", "orderId": "o4"}),
        serde_json::json!({"op": "join", "userId": "fan-1"}),
        serde_json::json!({"op": "session", "userId": "fan-1"}),
        serde_json::json!({"op": "join", "userId": "fan-2"}),
        serde_json::json!({"op": "leave", "userId": "fan-2"}),
        serde_json::json!({"op": "reserveForCheckout", "sessionId": "gone",
            "reserve": {"orderId": "o3", "userId": "fan-1", "items": line}}),
        serde_json::json!({"op": "unbindOrder", "orderId": "o3"}),
        serde_json::json!({"op": "checkoutResolved", "orderId": "o3", "outcome": "FAILED"}),
        serde_json::json!({"op": "status"}),
    ];
    let mut replies = Vec::new();
    for request in requests {
        let op = request["op"].clone();
        replies.push((op, rpc(&mut object, request)));
    }
    let answer = |op: &str| -> &Result<Value, HubFailure> {
        let found = replies.iter().rev().find(|(o, _)| o == op);
        &found.expect("the op ran").1
    };
    assert_eq!(answer("syncEvent"), &Ok(serde_json::json!({"ok": true})));
    assert_eq!(
        answer("updateClass")
            .as_ref()
            .map(|r| r["ticketClass"]["total"].clone()),
        Ok(6.into())
    );
    assert_eq!(
        answer("confirm").as_ref().map(|r| r["outcome"].clone()),
        Ok("CONFIRMED".into())
    );
    assert_eq!(
        answer("release").as_ref().map(|r| r["outcome"].clone()),
        Ok("RELEASED".into())
    );
    assert_eq!(
        answer("returnSold").as_ref().map(|r| r["outcome"].clone()),
        Ok("RETURNED".into())
    );
    assert_eq!(
        answer("session")
            .as_ref()
            .map(|r| r["waitroomSession"]["status"].clone()),
        Ok("QUEUED".into())
    );
    assert_eq!(
        answer("reserveForCheckout")
            .as_ref()
            .map(|_| ())
            .map_err(|f| f.code),
        Err("CHECKOUT_TOKEN_INVALID")
    );
    let status = answer("status").as_ref().expect("status");
    assert_eq!(status["connectedSockets"], 3);
    assert_eq!(status["classes"][0]["sold"], 1);
    assert_eq!(status["waitroom"]["queueLength"], 1);
}

#[test]
fn the_pre_queue_seed_comes_from_the_secret_and_the_event() {
    let mut object = with_waitroom(1);
    let state = object
        .waitroom
        .load_state()
        .expect("read")
        .expect("configured");
    assert_eq!(state.shuffle_seed, shuffle_seed(SECRET, EVENT));

    let mut unsigned = Object::new();
    unsigned.secret = None;
    let failure = unsigned.refused(|core| core.sync_event(setup(EventStatus::Published, slots(1))));
    assert_eq!((failure.status(), failure.code), (500, "INTERNAL_ERROR"));
    // Without a waitroom nothing needs the seed.
    unsigned.sync(setup(EventStatus::Published, None));
}

// ----- a sharded waitroom -----

mod sharded {
    use super::*;
    use crate::domain::admission::hub::Outgoing;
    use crate::domain::admission::place::{shard_of, ArrivalStamp, ShardCount, ShardIndex};
    use crate::domain::admission::protocol::ToShard;
    use crate::domain::admission::shard::{FanStatus, ShardQueue};

    /// A committed operation's reply: `Ok` or the code it was refused with.
    fn outcome(
        object: &mut Object,
        operation: impl FnOnce(MemoryCore<'_>) -> Result<Done, HubFailure>,
    ) -> Result<(), String> {
        let done = object.run(operation).expect("commits");
        done.reply.map(|_| ()).map_err(|f| f.code.to_owned())
    }

    /// A published event whose queue is spread over `shards` shards, with the shards beside
    /// it in memory and ten GA tickets.
    fn sharded(max: u32, shards: u16) -> (Object, Vec<ShardQueue>) {
        let mut object = Object::new();
        let mut event = setup(EventStatus::Published, slots(max));
        event.shards = shards;
        object.sync(event);
        object.class("ga", 10);
        let hub = object.hub.admission.clone().expect("sharded admission");
        let queues = hub
            .configure_shards()
            .into_iter()
            .map(|o| match o.message {
                ToShard::Configure { settings } => ShardQueue::new(settings),
                _ => unreachable!("configure messages only"),
            })
            .collect();
        (object, queues)
    }

    /// Joins `users` to their shards and runs one round to completion, as the shell does.
    fn admit(object: &mut Object, queues: &mut [ShardQueue], users: &[&str]) {
        let hub = object.hub.admission.as_mut().expect("sharded");
        for user in users {
            let index = shard_of(user, hub.shards());
            let stamp = ArrivalStamp {
                at_ms: object.now - 5_000,
                tie_break: 1,
            };
            queues[usize::from(index.0)]
                .join(user, &format!("s-{user}"), stamp, object.now - 5_000)
                .expect("joins");
        }
        let (mut round, out) = hub.start_round(0, object.now);
        for Outgoing { to, message } in out {
            if let ToShard::Heads { tick_id, want, .. } = message {
                let report =
                    queues[usize::from(to.0)].report_head(tick_id, want, object.now, &|_| false);
                hub.accept_report(&mut round, report).expect("ours");
            }
        }
        for Outgoing { to, message } in hub.decide(round, object.now) {
            if let ToShard::Admit { tick_id, picks, .. } = message {
                let answer =
                    queues[usize::from(to.0)].apply_picks(tick_id, &picks, object.now, &|_| false);
                hub.accept_answer(&answer).expect("complete");
            }
        }
    }

    #[test]
    fn a_sharded_event_keeps_its_admission_here_and_no_one_object_queue() {
        let (object, _) = sharded(2, 4);
        let hub = object.hub.admission.as_ref().expect("admission");
        assert_eq!(hub.shards(), ShardCount::new(4).expect("4"));
        assert!(
            object
                .waitroom
                .clone()
                .load_state()
                .expect("reads")
                .is_none(),
            "no one-object queue"
        );
        assert!(
            object.hub.waitroom_wake_at.is_some(),
            "the alarm sends the settings"
        );
    }

    #[test]
    fn an_order_binds_the_checkout_its_token_names_and_the_saga_frees_the_slot() {
        let (mut object, mut queues) = sharded(2, 4);
        admit(&mut object, &mut queues, &["fan-1", "fan-2"]);
        assert_eq!(
            object.hub.admission.as_ref().map(|h| h.slots_in_use()),
            Some(2)
        );

        let failure = outcome(&mut object, |core| {
            core.reserve_for_checkout("s-fan-2".into(), order("o1", "fan-1", 2))
        });
        assert_eq!(failure, Err("CHECKOUT_TOKEN_INVALID".to_owned()));
        assert_eq!(object.availability()[0].reserved, 0, "no stock touched");

        let held =
            object.ok(|core| core.reserve_for_checkout("s-fan-1".into(), order("o1", "fan-1", 2)));
        assert_eq!(from::<HoldReply>(held).hold.state, HoldState::Active);
        // A hold the ledger refuses rolls the bind back with it.
        let refused = object
            .refused(|core| core.reserve_for_checkout("s-fan-2".into(), order("o2", "fan-2", 0)));
        assert_eq!(refused.code, "VALIDATION_FAILED");
        let hub = object.hub.admission.as_ref().expect("sharded");
        assert_eq!(
            hub.checkout_of("fan-2").and_then(|c| c.order_id.clone()),
            None
        );

        let done = object
            .run(|core| core.checkout_resolved("o1".into(), CheckoutOutcome::Completed))
            .expect("commits");
        let ended: Vec<ShardIndex> = done.after.shard_messages.iter().map(|o| o.to).collect();
        assert_eq!(
            ended,
            vec![shard_of("fan-1", ShardCount::new(4).expect("4"))]
        );
        let hub = object.hub.admission.as_ref().expect("sharded");
        assert_eq!(hub.slots_in_use(), 1);
        // Delivered: the fan's shard shows the order completed and lets them join again.
        let index = usize::from(ended[0].0);
        if let ToShard::CheckoutEnded { place, reason, .. } = &done.after.shard_messages[0].message
        {
            queues[index].checkout_ended(place, *reason);
        }
        assert!(matches!(
            queues[index].fan("fan-1").map(|f| f.status),
            Some(FanStatus::CheckoutEnded { .. })
        ));
    }

    #[test]
    fn an_expired_hold_waits_for_the_saga_while_the_token_has_time_and_a_leave_in_checkout_comes_here(
    ) {
        let (mut object, mut queues) = sharded(3, 2);
        admit(&mut object, &mut queues, &["fan-1", "fan-2", "fan-3"]);
        object.ok(|core| core.reserve_for_checkout("s-fan-1".into(), order("o1", "fan-1", 1)));
        let short = ReserveRequest {
            hold_for_ms: Some(60_000),
            ..order("o3", "fan-3", 1)
        };
        object.ok(|core| core.reserve_for_checkout("s-fan-3".into(), short));
        let refused = outcome(&mut object, |core| core.leave_checkout("fan-1".into()));
        assert_eq!(refused, Err("CHECKOUT_IN_PROGRESS".to_owned()));
        object.ok(|core| core.leave_checkout("fan-2".into()));
        let slots = |object: &Object| object.hub.admission.as_ref().map(|h| h.slots_in_use());
        assert_eq!(slots(&object), Some(2));

        // fan-3's short hold expires with time left on its checkout: the alarm only tells the
        // saga, which found no payment link and reopens it. The slot stays fan-3's.
        object.now += 60_001;
        object.alarm();
        assert_eq!(slots(&object), Some(2));
        object.ok(|core| core.unbind_order("o3".into()));
        assert_eq!(slots(&object), Some(2));

        // fan-1's hold expires once its token has run out too: it ends in the alarm.
        object.now += DEFAULT_HOLD_MS;
        object.alarm();
        let hub = object.hub.admission.as_ref().expect("sharded");
        assert_eq!(hub.slots_in_use(), 1);
        assert_eq!(hub.unacknowledged_end_count(), 2, "sent until acknowledged");
        assert_eq!(
            object.outbox_types(),
            vec!["HOLD_EXPIRED".to_owned(), "HOLD_EXPIRED".to_owned()]
        );
        // The saga's word after it changes nothing.
        object.ok(|core| core.checkout_resolved("o1".into(), CheckoutOutcome::Expired));
        assert_eq!(slots(&object), Some(1));
    }

    #[test]
    fn the_operator_view_counts_the_sharded_admission() {
        let (mut object, mut queues) = sharded(5, 4);
        admit(&mut object, &mut queues, &["a", "b", "c"]);
        let status: HubStatus = from(object.ok(|core| core.status(0)));
        let waitroom = status.waitroom.expect("a waitroom");
        assert_eq!(
            (waitroom.admitted, waitroom.slots_in_use, waitroom.max_slots),
            (3, 3, 5)
        );
        assert_eq!(waitroom.admitted_last_minute, 3);
    }
}
