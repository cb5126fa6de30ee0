//! Failed and refused writes leave nothing behind; the wire and row shapes.

use super::*;

// ----- failed writes -----

type Attempt = Box<dyn Fn(&mut Ledger<MemoryLedgerStore>) -> Result<(), LedgerError>>;

#[test]
fn a_failed_write_leaves_no_partial_state_behind() {
    let mut ledger = open_ledger();
    ledger
        .reserve(&request("active", "u1", &[("ga", 1)]), T0)
        .unwrap();
    ledger
        .reserve(&request("to-confirm", "u1", &[("ga", 2), ("vip", 1)]), T0)
        .unwrap();
    ledger
        .reserve(&request("sold", "u2", &[("ga", 1)]), T0)
        .unwrap();
    ledger.confirm("sold", T0).unwrap();
    let attempts: Vec<(&str, Attempt)> = vec![
        (
            "multi-class reserve",
            Box::new(|l| {
                l.reserve(&request("new", "u2", &[("ga", 3), ("vip", 1)]), T0)
                    .map(drop)
            }),
        ),
        (
            "confirm",
            Box::new(|l| l.confirm("to-confirm", T0).map(drop)),
        ),
        ("release", Box::new(|l| l.release("active", T0).map(drop))),
        (
            "return_sold",
            Box::new(|l| l.return_sold("sold", T0).map(drop)),
        ),
        (
            "expire",
            Box::new(|l| l.expire_due(T0 + 15 * MINUTE).map(drop)),
        ),
        ("set_total", Box::new(|l| l.set_total("ga", 50).map(drop))),
        (
            "upsert_class",
            Box::new(|l| l.upsert_class(spec("new", 5)).map(drop)),
        ),
        (
            "set_sale_state",
            Box::new(|l| l.set_sale_state(SaleState::Closed).map(drop)),
        ),
        (
            "set_limit",
            Box::new(|l| l.set_max_tickets_per_user(Some(1)).map(drop)),
        ),
    ];

    for (name, attempt) in attempts {
        let before = contents(ledger.store());
        ledger.store_mut().fail_next_write();

        let result = attempt(&mut ledger);

        assert!(
            matches!(result, Err(LedgerError::Store(StoreError::Unavailable(_)))),
            "{name}: {result:?}"
        );
        assert_eq!(result.unwrap_err().code(), "INTERNAL_ERROR");
        assert_eq!(
            contents(ledger.store()),
            before,
            "{name} left partial state"
        );
    }
    let retried = ledger.confirm("to-confirm", T0).unwrap();
    assert!(
        matches!(retried, ConfirmOutcome::Confirmed(_)),
        "a retry after the failure goes through"
    );
    check_invariants(ledger.store()).unwrap();
}

#[test]
fn a_rejected_reserve_is_decided_before_any_write_is_attempted() {
    let mut ledger = open_ledger();
    ledger.store_mut().fail_next_write();

    let error = ledger
        .reserve(&request("o1", "u1", &[("vip", 3)]), T0)
        .unwrap_err();

    assert_eq!(error.code(), "INSUFFICIENT_INVENTORY");
    assert!(
        ledger.store().fail_next_write,
        "the armed failure was never reached"
    );
}

#[test]
fn the_memory_store_refuses_rows_that_oversell_like_the_sql_check_does() {
    let mut store = MemoryLedgerStore::new();
    let oversold = TicketClass {
        id: "ga".into(),
        total: 1,
        reserved: 1,
        sold: 1,
        status: ClassStatus::Active,
        sale_start_at: None,
        sale_end_at: None,
    };

    let result = store.commit(&LedgerChanges {
        classes: vec![oversold],
        ..LedgerChanges::default()
    });

    assert!(result.is_err());
    assert_eq!(store.classes().unwrap(), vec![]);
}

#[test]
fn corrupt_counters_are_reported_instead_of_written() {
    let mut ledger = open_ledger();
    ledger
        .reserve(&request("o1", "u1", &[("ga", 3)]), T0)
        .unwrap();
    // Simulate a row that lost its reservations behind the ledger's back.
    ledger.store_mut().classes.get_mut("ga").unwrap().reserved = 1;
    let before = contents(ledger.store());

    let error = ledger.release("o1", T0).unwrap_err();

    assert_eq!(error.code(), "INTERNAL_ERROR");
    assert!(matches!(error, LedgerError::Corrupt { .. }));
    assert_eq!(contents(ledger.store()), before);
}

// ----- wire shapes -----

#[test]
fn holds_and_outcomes_travel_as_camel_case_json() {
    let mut ledger = open_ledger();
    let hold = ledger
        .reserve(&request("o1", "u1", &[("ga", 2)]), T0)
        .unwrap();

    let json = serde_json::to_value(ConfirmOutcome::Confirmed(hold.clone())).unwrap();
    let request_json: ReserveRequest = serde_json::from_value(serde_json::json!({
        "orderId": "o1", "userId": "u1", "items": [{"ticketClassId": "ga", "quantity": 2}]
    }))
    .unwrap();

    assert_eq!(json["outcome"], "CONFIRMED");
    assert_eq!(json["hold"]["orderId"], "o1");
    assert_eq!(json["hold"]["state"], "ACTIVE");
    assert_eq!(json["hold"]["expiresAt"], T0 + 15 * MINUTE);
    assert_eq!(json["hold"]["items"][0]["ticketClassId"], "ga");
    assert_eq!(request_json, request("o1", "u1", &[("ga", 2)]));
    assert_eq!(
        serde_json::to_value(ReleaseOutcome::UnknownOrder).unwrap(),
        serde_json::json!({"outcome": "UNKNOWN_ORDER"})
    );
    for outcome in [
        ConfirmOutcome::PaidButNoStock(hold.clone()),
        ConfirmOutcome::PaidButEventCancelled(hold.clone()),
    ] {
        let back: ConfirmOutcome =
            serde_json::from_str(&serde_json::to_string(&outcome).unwrap()).unwrap();
        assert_eq!(back, outcome);
    }
    for outcome in [ReleaseOutcome::Released(hold), ReleaseOutcome::UnknownOrder] {
        let back: ReleaseOutcome =
            serde_json::from_str(&serde_json::to_string(&outcome).unwrap()).unwrap();
        assert_eq!(back, outcome);
    }
    let availability = serde_json::to_value(ledger.availability().unwrap()).unwrap();
    assert_eq!(availability[0]["saleStartAt"], serde_json::Value::Null);
    assert_eq!(availability[0]["available"], 8);
}

#[test]
fn errors_round_trip_through_json_and_keep_their_codes() {
    let errors = [
        LedgerError::InsufficientInventory {
            ticket_class_id: "ga".into(),
            requested: 3,
            available: 1,
        },
        LedgerError::SaleNotOpen {
            state: SaleState::Closed,
        },
        LedgerError::PurchaseLimitExceeded {
            limit: 4,
            already_committed: 3,
            requested: 2,
        },
        LedgerError::TotalBelowCommitted {
            ticket_class_id: "ga".into(),
            total: 1,
            committed: 2,
        },
        LedgerError::Store(StoreError::Unavailable("down".into())),
        LedgerError::SaleCancelled,
    ];
    for error in errors {
        let json = serde_json::to_string(&error).unwrap();
        let back: LedgerError = serde_json::from_str(&json).unwrap();
        assert_eq!(back, error, "{json}");
        assert_eq!(back.code(), error.code());
    }
    let json = serde_json::to_value(LedgerError::InsufficientInventory {
        ticket_class_id: "ga".into(),
        requested: 3,
        available: 1,
    })
    .unwrap();
    assert_eq!(json["error"], "insufficientInventory");
    assert_eq!(json["ticketClassId"], "ga");
}

#[test]
fn a_hold_survives_the_round_trip_through_its_sql_row() {
    let hold = Hold {
        order_id: "o1".into(),
        user_id: "u1".into(),
        items: vec![
            HoldItem {
                ticket_class_id: "ga".into(),
                quantity: 2,
            },
            HoldItem {
                ticket_class_id: "vip".into(),
                quantity: 1,
            },
        ],
        state: HoldState::Expired,
        created_at: T0,
        expires_at: T0 + 15 * MINUTE,
        updated_at: T0 + 16 * MINUTE,
        refused_payment: Some(RefusedPayment {
            reason: RefusalReason::NoStock,
            at: T0 + 17 * MINUTE,
        }),
        returned_at: None,
    };

    let row = HoldRow::try_from(&hold).unwrap();
    let row_json = serde_json::to_value(&row).unwrap();

    assert_eq!(row.quantity, 3);
    assert_eq!(row_json["refusalReason"], "NO_STOCK");
    assert_eq!(Hold::try_from(row.clone()).unwrap(), hold);
    let half = HoldRow {
        refused_at: None,
        ..row.clone()
    };
    assert!(Hold::try_from(half).is_err());
    let garbled = HoldRow {
        items_json: "[{".into(),
        ..row
    };
    assert!(matches!(
        Hold::try_from(garbled),
        Err(StoreError::Malformed(_))
    ));
}

#[test]
fn the_schema_declares_every_table_and_index_the_store_queries_use() {
    for needle in [
        "CREATE TABLE IF NOT EXISTS ledger_settings",
        "CREATE TABLE IF NOT EXISTS ticket_classes",
        "CREATE TABLE IF NOT EXISTS holds",
        "CHECK (reserved + sold <= total)",
        "holds_by_user ON holds (user_id)",
        "DROP INDEX IF EXISTS holds_by_user_state",
        "holds_active_by_expiry ON holds (expires_at, order_id) WHERE state = 'ACTIVE'",
        "returned_at INTEGER CHECK (returned_at IS NULL OR state = 'CONFIRMED')",
    ] {
        assert!(LEDGER_SCHEMA.contains(needle), "{needle}");
    }
}

#[test]
fn every_added_column_is_also_in_the_schema_a_fresh_object_creates() {
    // A fresh object and an upgraded one must end with the same columns and CHECKs.
    for (table, column, statement) in LEDGER_ADDED_COLUMNS {
        let prefix = format!("ALTER TABLE {table} ADD COLUMN ");
        let definition = statement
            .strip_prefix(prefix.as_str())
            .unwrap_or_else(|| panic!("{statement} adds a column to {table}"));
        assert!(definition.starts_with(column), "{statement} adds {column}");
        let create = format!("CREATE TABLE IF NOT EXISTS {table} (");
        let table_sql = LEDGER_SCHEMA
            .split(';')
            .find(|s| s.trim_start().starts_with(&create))
            .unwrap_or_else(|| panic!("{table} is created by the schema"));
        let normalised = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            normalised(table_sql).contains(&normalised(definition)),
            "{table} is created with `{definition}`"
        );
    }
}

#[test]
fn a_returned_sale_survives_the_row_round_trip_and_older_rows_read_as_not_returned() {
    let mut ledger = open_ledger();
    ledger
        .reserve(&request("o1", "u1", &[("ga", 2)]), T0)
        .unwrap();
    ledger.confirm("o1", T0).unwrap();
    ledger.return_sold("o1", T0 + MINUTE).unwrap();
    let hold = ledger.hold("o1").unwrap().unwrap();

    let row = HoldRow::try_from(&hold).unwrap();
    assert_eq!(row.returned_at, Some(T0 + MINUTE));
    assert_eq!(Hold::try_from(row.clone()).unwrap(), hold);
    let mut older = serde_json::to_value(&row).unwrap();
    older.as_object_mut().unwrap().remove("returnedAt");
    let older: HoldRow = serde_json::from_value(older).unwrap();
    assert_eq!(Hold::try_from(older).unwrap().returned_at, None);
}
