//! Host tests of the catalogue's request parsing and rules.

use super::*;
use serde_json::json;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// 2026-12-01T00:00:00Z
const T0: i64 = 1_796_083_200_000;

fn fields(result: Result<impl std::fmt::Debug, ValidationFailed>) -> Vec<String> {
    let mut fields: Vec<String> = result
        .err()
        .map(|f| f.errors.into_iter().map(|e| e.field).collect())
        .unwrap_or_default();
    fields.sort();
    fields
}

fn config_from(body: Value) -> Result<ConfigTerms, ValidationFailed> {
    let request: EventConfigRequest = serde_json::from_value(unwrap_event_config(body))
        .map_err(|e| ValidationFailed::from(FieldError::new("body", e.to_string())))?;
    let mut v = Validator::new();
    let parsed = parse_event_config(&mut v, &request);
    v.finish(|| parsed)
}

fn event_terms(config: Option<ConfigTerms>) -> EventTerms {
    EventTerms {
        name: "Show".into(),
        description: String::new(),
        location: "Hanoi".into(),
        thumbnail_url: None,
        organizer_id: None,
        category_ids: vec![],
        start_ms: T0 + 30 * DAY,
        end_ms: T0 + 30 * DAY + 4 * HOUR,
        config,
    }
}

fn sale_terms() -> ConfigTerms {
    ConfigTerms {
        ticket_sale_start_ms: T0,
        ticket_sale_end_ms: T0 + 10 * DAY,
        is_free: false,
        max_attendees: None,
        is_public: true,
        requires_approval: false,
        allow_wait_room: false,
        is_new_trending: false,
        max_tickets_per_user: None,
        waitroom: WaitroomConfig::default(),
        waitroom_shards: ShardCount::ONE,
        refundable_until_ms: None,
    }
}

fn class() -> TicketClassTerms {
    TicketClassTerms {
        name: "VIP".into(),
        price_cents: 1_500_000,
        currency: CurrencyCode::VND,
        total: 100,
        sale_start_ms: None,
        sale_end_ms: None,
        paused: false,
    }
}

#[test]
fn a_minimal_event_config_takes_the_documented_defaults() {
    let config = config_from(json!({
        "ticketSaleStartDate": "2026-12-01T00:00:00Z",
        "ticketSaleEndDate": "2026-12-11T00:00:00Z",
    }));
    assert_eq!(config, Ok(sale_terms()));
}

#[test]
fn the_config_may_arrive_wrapped_in_event_config() {
    let bare = json!({
        "ticketSaleStartDate": "2026-12-01T00:00:00Z",
        "ticketSaleEndDate": "2026-12-11T00:00:00Z",
        "isFree": true, "maxAttendees": 5000, "isPublic": false, "requiresApproval": true,
        "allowWaitRoom": true, "isNewTrending": true, "maxTicketsPerUser": 4,
        "waitroom": {"maxConcurrentCheckouts": 50, "checkoutTtlSeconds": 600, "admissionBatch": 25, "shards": 4},
    });
    let wrapped = json!({ "eventConfig": bare.clone() });
    let expected = ConfigTerms {
        is_free: true,
        max_attendees: Some(5000),
        is_public: false,
        requires_approval: true,
        allow_wait_room: true,
        is_new_trending: true,
        max_tickets_per_user: Some(4),
        waitroom: WaitroomConfig {
            max_concurrent_checkouts: 50,
            checkout_ttl_seconds: 600,
            admission_batch: 25,
            ..WaitroomConfig::default()
        },
        waitroom_shards: ShardCount::new(4).expect("in range"),
        ..sale_terms()
    };
    assert_eq!(config_from(bare), Ok(expected.clone()));
    assert_eq!(config_from(wrapped), Ok(expected));
}

#[test]
fn null_caps_mean_no_cap_and_partial_waitroom_keeps_defaults() {
    let config = config_from(json!({
        "ticketSaleStartDate": "2026-12-01T00:00:00Z",
        "ticketSaleEndDate": "2026-12-11T00:00:00Z",
        "maxAttendees": null, "maxTicketsPerUser": null,
        "waitroom": {"checkoutTtlSeconds": 300},
    }));
    let expected = ConfigTerms {
        waitroom: WaitroomConfig {
            checkout_ttl_seconds: 300,
            ..WaitroomConfig::default()
        },
        ..sale_terms()
    };
    assert_eq!(config, Ok(expected));
}

#[test]
fn every_bad_config_field_is_reported_at_once() {
    let result = config_from(json!({
        "ticketSaleStartDate": "tomorrow",
        "maxAttendees": 0,
        "maxTicketsPerUser": 1.5,
        "waitroom": {"maxConcurrentCheckouts": 0, "checkoutTtlSeconds": 5, "admissionBatch": "10"},
    }));
    assert_eq!(
        fields(result),
        vec![
            "maxAttendees",
            "maxTicketsPerUser",
            "ticketSaleEndDate",
            "ticketSaleStartDate",
            "waitroom.admissionBatch",
            "waitroom.checkoutTtlSeconds",
            "waitroom.maxConcurrentCheckouts",
        ]
    );
}

#[test]
fn a_shard_count_outside_1_to_64_or_not_an_integer_is_reported_under_its_path() {
    for bad in [
        json!(0),
        json!(65),
        json!(-1),
        json!(2.5),
        json!("x"),
        json!("4"),
    ] {
        let result = config_from(json!({
            "ticketSaleStartDate": "2026-12-01T00:00:00Z",
            "ticketSaleEndDate": "2026-12-11T00:00:00Z",
            "waitroom": {"shards": bad},
        }));
        assert_eq!(fields(result), vec!["waitroom.shards"], "shards: {bad}");
    }
}

#[test]
fn a_missing_or_null_shard_count_is_one_queue() {
    for waitroom in [
        json!({}),
        json!({"shards": null}),
        json!({"admissionBatch": 10}),
    ] {
        let config = config_from(json!({
            "ticketSaleStartDate": "2026-12-01T00:00:00Z",
            "ticketSaleEndDate": "2026-12-11T00:00:00Z",
            "waitroom": waitroom,
        }));
        assert_eq!(config.map(|c| c.waitroom_shards), Ok(ShardCount::ONE));
    }
}

#[test]
fn a_bad_shard_count_is_reported_beside_the_other_bad_waitroom_fields() {
    let result = config_from(json!({
        "ticketSaleStartDate": "2026-12-01T00:00:00Z",
        "ticketSaleEndDate": "2026-12-11T00:00:00Z",
        "waitroom": {"admissionBatch": "10", "shards": 100},
    }));
    assert_eq!(
        fields(result),
        vec!["waitroom.admissionBatch", "waitroom.shards"]
    );
}

#[test]
fn an_unknown_config_field_is_refused_rather_than_ignored() {
    let result = config_from(json!({
        "ticketSaleStartDate": "2026-12-01T00:00:00Z",
        "ticketSaleEndDate": "2026-12-11T00:00:00Z",
        "allowWaitroom": true,
    }));
    assert_eq!(fields(result), vec!["body"]);
}

fn new_event(body: Value) -> Result<NewEvent, ValidationFailed> {
    let request: CreateEventRequest = serde_json::from_value(body)
        .map_err(|e| ValidationFailed::from(FieldError::new("body", e.to_string())))?;
    let mut v = Validator::new();
    let parsed = parse_new_event(&mut v, &request);
    v.finish(|| parsed)
}

#[test]
fn a_new_event_reports_every_missing_and_bad_field() {
    assert_eq!(
        fields(new_event(json!({}))),
        vec!["description", "endDate", "location", "name", "startDate"]
    );
    let result = new_event(json!({
        "name": " ", "description": "ok", "location": "Hanoi",
        "startDate": "2026-12-31T12:00:00Z", "endDate": "2026-12-31T11:00:00Z",
        "thumbnailUrl": "javascript:alert(1)", "organizerId": "nope",
        "categoryIds": ["am-nhac", "Not A Slug!"],
    }));
    assert_eq!(
        fields(result),
        vec![
            "categoryIds[1]",
            "endDate",
            "name",
            "organizerId",
            "thumbnailUrl"
        ]
    );
}

#[test]
fn a_new_event_keeps_each_category_once() {
    let event = new_event(json!({
        "name": "Show", "description": "", "location": "Hanoi",
        "startDate": "2026-12-31T12:00:00Z", "endDate": "2026-12-31T23:00:00+07:00",
        "categoryIds": ["am-nhac", "AM-NHAC", "0190F3A2-7C1E-7B4D-9A3F-000000000001"],
    }));
    let refs: Vec<String> = event
        .map(|e| {
            e.categories
                .iter()
                .map(|c| c.as_str().to_string())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        refs,
        vec!["am-nhac", "0190f3a2-7c1e-7b4d-9a3f-000000000001"]
    );
}

#[test]
fn a_patch_changes_only_what_it_names_and_null_clears() {
    let mut old = event_terms(None);
    old.thumbnail_url = Some("https://img.example.com/a.png".into());
    let request: UpdateEventRequest =
        serde_json::from_value(json!({"name": "Renamed", "thumbnailUrl": null}))
            .unwrap_or_default();
    let mut v = Validator::new();
    let changes = parse_event_changes(&mut v, &request);
    assert!(v.is_valid());
    let new = changes.apply(&old, None);
    assert_eq!(new.name, "Renamed");
    assert_eq!(new.thumbnail_url, None);
    assert_eq!(new.start_ms, old.start_ms);
    assert_eq!(new.location, old.location);
    assert_eq!(new.category_ids, old.category_ids);
}

#[test]
fn a_patch_with_a_bad_field_still_carries_the_good_ones() {
    let request: UpdateEventRequest = serde_json::from_value(
        json!({"name": "", "endDate": "2026-12-31T00:00:00Z", "categoryIds": ["Bad Slug"]}),
    )
    .unwrap_or_default();
    let mut v = Validator::new();
    let changes = parse_event_changes(&mut v, &request);
    assert_eq!(changes.name, None);
    assert_eq!(changes.categories, None);
    assert_eq!(changes.end_ms, Some(T0 + 30 * DAY));
    assert_eq!(
        fields(v.finish(|| Some(()))),
        vec!["categoryIds[0]", "name"]
    );
}

#[test]
fn a_ticket_class_must_sell_inside_the_event_sale_window() {
    let event = event_terms(Some(sale_terms()));
    let inside = TicketClassTerms {
        sale_start_ms: Some(T0 + DAY),
        sale_end_ms: Some(T0 + 10 * DAY),
        ..class()
    };
    assert_eq!(check_ticket_class_terms(&inside, &event, None), Ok(()));
    let outside = TicketClassTerms {
        sale_start_ms: Some(T0 - HOUR),
        sale_end_ms: Some(T0 + 11 * DAY),
        ..class()
    };
    let errors = check_ticket_class_terms(&outside, &event, None)
        .err()
        .unwrap_or_default();
    let names: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(names, vec!["saleStartAt", "saleEndAt"]);
    let backwards = TicketClassTerms {
        sale_start_ms: Some(T0 + 2 * DAY),
        sale_end_ms: Some(T0 + DAY),
        ..class()
    };
    assert!(check_ticket_class_terms(&backwards, &event, None).is_err());
}

#[test]
fn before_sale_terms_exist_a_class_only_has_to_end_with_the_event() {
    let event = event_terms(None);
    let ok = TicketClassTerms {
        sale_end_ms: Some(event.end_ms),
        ..class()
    };
    assert_eq!(check_ticket_class_terms(&ok, &event, None), Ok(()));
    let late = TicketClassTerms {
        sale_end_ms: Some(event.end_ms + 1),
        ..class()
    };
    assert!(check_ticket_class_terms(&late, &event, None).is_err());
}

#[test]
fn a_free_event_has_free_classes_in_one_currency() {
    let event = event_terms(Some(ConfigTerms {
        is_free: true,
        ..sale_terms()
    }));
    let errors = check_ticket_class_terms(&class(), &event, Some(CurrencyCode::USD))
        .err()
        .unwrap_or_default();
    let names: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(names, vec!["priceCents", "currency"]);
    let free = TicketClassTerms {
        price_cents: 0,
        ..class()
    };
    assert_eq!(
        check_ticket_class_terms(&free, &event, Some(CurrencyCode::VND)),
        Ok(())
    );
}

#[test]
fn new_sale_terms_must_still_fit_the_existing_classes() {
    let class = TicketClassTerms {
        sale_start_ms: Some(T0 + DAY),
        ..class()
    };
    let narrower = event_terms(Some(ConfigTerms {
        ticket_sale_start_ms: T0 + 2 * DAY,
        ..sale_terms()
    }));
    let errors = check_config_fits(&narrower, &[("c1".into(), class)])
        .err()
        .unwrap_or_default();
    let names: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(names, vec!["ticketClasses.c1.saleStartAt"]);
    let too_late = event_terms(Some(ConfigTerms {
        ticket_sale_end_ms: T0 + 40 * DAY,
        ..sale_terms()
    }));
    let errors = check_config_fits(&too_late, &[]).err().unwrap_or_default();
    assert_eq!(
        errors.first().map(|e| e.field.as_str()),
        Some("ticketSaleEndDate")
    );
}

fn class_changes(body: Value) -> Result<TicketClassChanges, ValidationFailed> {
    let request: UpdateTicketClassRequest = serde_json::from_value(body)
        .map_err(|e| ValidationFailed::from(FieldError::new("body", e.to_string())))?;
    let mut v = Validator::new();
    let parsed = parse_ticket_class_changes(&mut v, &request);
    v.finish(|| Some(parsed))
}

#[test]
fn a_ticket_class_patch_parses_status_and_clears_bounds() {
    let old = TicketClassTerms {
        sale_end_ms: Some(T0),
        ..class()
    };
    let changes = class_changes(json!({"status": "paused", "total": 250, "saleEndAt": null}));
    let new = changes.map(|c| c.apply(&old));
    assert_eq!(
        new,
        Ok(TicketClassTerms {
            paused: true,
            total: 250,
            sale_end_ms: None,
            ..class()
        })
    );
    assert_eq!(
        fields(class_changes(
            json!({"status": "SOLD_OUT", "total": 0, "priceCents": -1})
        )),
        vec!["priceCents", "status", "total"]
    );
}

#[test]
fn a_new_ticket_class_needs_name_price_currency_and_total() {
    let parse = |body: Value| {
        let request: CreateTicketClassRequest = serde_json::from_value(body).unwrap_or_default();
        let mut v = Validator::new();
        let parsed = parse_new_ticket_class(&mut v, &request);
        v.finish(|| parsed)
    };
    assert_eq!(
        fields(parse(json!({}))),
        vec!["currency", "name", "priceCents", "total"]
    );
    assert_eq!(
        fields(parse(
            json!({"name": "GA", "priceCents": -5, "currency": "XXX", "total": 0})
        )),
        vec!["currency", "priceCents", "total"]
    );
    let ok = parse(json!({"name": "GA", "priceCents": 150000, "currency": "vnd", "total": 10}));
    assert_eq!(
        ok.map(|c| (c.currency, c.price_cents, c.total)),
        Ok((CurrencyCode::VND, 150_000, 10))
    );
}

#[test]
fn search_text_becomes_quoted_prefix_terms() {
    let text = SearchText::parse("  Mỹ Tâm: LIVE \"concert\" OR* NEAR(x) ")
        .ok()
        .flatten();
    assert_eq!(
        text.map(|t| t.fts_query()),
        Some("\"mỹ\"* \"tâm\"* \"live\"* \"concert\"* \"or\"* \"near\"* \"x\"*".to_string())
    );
}

#[test]
fn search_text_that_is_blank_is_no_search_and_punctuation_is_an_error() {
    assert_eq!(SearchText::parse("   "), Ok(None));
    assert!(SearchText::parse("!!! ---").is_err());
    assert!(SearchText::parse(&"a".repeat(201)).is_err());
    let many = SearchText::parse("a b c d e f g h i j a").ok().flatten();
    assert_eq!(many.map(|t| t.terms().len()), Some(SearchText::MAX_TERMS));
}

#[test]
fn an_event_search_parses_every_parameter() {
    let query = EventListQuery {
        q: Some("rock".into()),
        category: Some("Am-Nhac".into()),
        from: Some("2026-12-01T00:00:00Z".into()),
        to: Some("2026-12-31T00:00:00Z".into()),
        page: Some("2".into()),
        page_size: Some("5".into()),
        mine: Some("TRUE".into()),
    };
    let search = parse_event_search(&query);
    assert_eq!(
        search
            .as_ref()
            .map(|s| (s.from_ms, s.to_ms, s.pagination, s.scope)),
        Ok((
            Some(T0),
            Some(T0 + 30 * DAY),
            Pagination {
                page: 2,
                page_size: 5
            },
            ListScope::Mine
        ))
    );
    assert_eq!(
        search
            .ok()
            .and_then(|s| s.category)
            .map(|c| c.as_str().to_string()),
        Some("am-nhac".to_string())
    );
}

#[test]
fn an_empty_event_search_lists_public_events_from_page_one() {
    let search = parse_event_search(&EventListQuery::default());
    assert_eq!(
        search,
        Ok(EventSearch {
            text: None,
            category: None,
            from_ms: None,
            to_ms: None,
            pagination: Pagination::default(),
            scope: ListScope::Public,
        })
    );
}

#[test]
fn a_bad_event_search_reports_every_parameter() {
    let query = EventListQuery {
        q: Some("???".into()),
        category: Some("Not a slug".into()),
        from: Some("2026-12-31T00:00:00Z".into()),
        to: Some("2026-12-01T00:00:00Z".into()),
        page: Some("0".into()),
        page_size: Some("1000".into()),
        mine: Some("yes".into()),
    };
    assert_eq!(
        fields(parse_event_search(&query)),
        vec!["category", "mine", "page", "pageSize", "q", "to"]
    );
}

#[test]
fn only_the_owner_or_a_platform_admin_files_under_an_organizer() {
    let owner = UserId::new("0190f3a2-7c1e-7b4d-9a3f-000000000001");
    let other = UserId::new("0190f3a2-7c1e-7b4d-9a3f-000000000002");
    let user = |id: &UserId, platform_admin| Actor::User {
        id: id.clone(),
        platform_admin,
    };
    assert!(may_file_under_organizer(&user(&owner, false), &owner));
    assert!(!may_file_under_organizer(&user(&other, false), &owner));
    assert!(may_file_under_organizer(&user(&other, true), &owner));
    assert!(!may_file_under_organizer(&Actor::Anonymous, &owner));
}

#[test]
fn category_names_become_slugs_and_roles_parse() {
    let category = parse_new_category(&CreateCategoryRequest {
        name: Some("Âm nhạc".into()),
    });
    assert_eq!(
        category.map(|c| c.slug.as_str().to_string()),
        Ok("am-nhac".into())
    );
    assert_eq!(
        fields(parse_new_category(&CreateCategoryRequest {
            name: Some("!!!".into())
        })),
        vec!["name"]
    );
    assert_eq!(
        parse_role(&PutRoleRequest {
            role: Some("editor".into())
        }),
        Ok(EventRole::Editor)
    );
    assert_eq!(
        fields(parse_role(&PutRoleRequest {
            role: Some("owner".into())
        })),
        vec!["role"]
    );
    assert_eq!(fields(parse_role(&PutRoleRequest::default())), vec!["role"]);
}

#[test]
fn refundable_until_is_an_optional_time_and_a_bad_one_is_reported() {
    let terms = config_from(json!({
        "ticketSaleStartDate": "2026-12-01T00:00:00Z",
        "ticketSaleEndDate": "2026-12-11T00:00:00Z",
        "refundableUntil": "2026-12-20T00:00:00Z",
    }))
    .expect("valid");
    assert_eq!(
        terms.refundable_until_ms,
        Some(parse_rfc3339("2026-12-20T00:00:00Z").expect("time"))
    );
    let none = config_from(json!({
        "ticketSaleStartDate": "2026-12-01T00:00:00Z",
        "ticketSaleEndDate": "2026-12-11T00:00:00Z",
        "refundableUntil": null,
    }))
    .expect("valid");
    assert_eq!(none.refundable_until_ms, None);
    let bad = config_from(json!({
        "ticketSaleStartDate": "2026-12-01T00:00:00Z",
        "ticketSaleEndDate": "2026-12-11T00:00:00Z",
        "refundableUntil": "after the show",
    }))
    .unwrap_err();
    assert_eq!(bad.errors[0].field, "refundableUntil");
}
