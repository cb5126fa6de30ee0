//! Checkouts bound by orders, endings as the one-object waitroom spells them, wake-ups and restoring the hub.

use super::*;

#[test]
fn an_order_binds_only_the_live_checkout_its_token_names_and_resolving_it_frees_the_slot() {
    let mut cluster = Cluster::new(2, config(5, 5), 3);
    let a = cluster.join("a", SALE_START, 1);
    cluster.join("b", SALE_START, 2);
    assert_eq!(cluster.tick(open(0)).len(), 2);
    let hub = &mut cluster.hub;
    use crate::domain::admission::hub::BindRefusal;
    assert_eq!(
        hub.bind_checkout("a", "s-b", "o1", open(1)),
        Err(BindRefusal::CheckoutNotActive),
        "another fan's session"
    );
    assert_eq!(hub.bind_checkout("a", "s-a", "o1", open(1)), Ok(()));
    assert_eq!(
        hub.bind_checkout("a", "s-a", "o1", open(2)),
        Ok(()),
        "a retried order"
    );
    assert_eq!(
        hub.bind_checkout("a", "s-a", "o2", open(2)),
        Err(BindRefusal::CheckoutAlreadyBound)
    );
    assert_eq!(
        hub.bind_checkout("b", "s-b", "o1", open(2)),
        Err(BindRefusal::OrderAlreadyBound)
    );
    let ttl = i64::from(WaitroomConfig::default().checkout_ttl_seconds) * 1_000;
    assert_eq!(
        hub.bind_checkout("b", "s-b", "o3", open(ttl)),
        Err(BindRefusal::CheckoutNotActive),
        "the token ran out, even before the sweep"
    );
    // The bound order holds its slot past the token's deadline; the unbound one goes.
    let out = hub.expire_checkouts(open(ttl + 1));
    assert_eq!(out.len(), 1);
    assert_eq!(hub.slots_in_use(), 1);
    let ended = hub
        .resolve_order("o1", crate::domain::waitroom::SessionEndReason::Completed)
        .expect("a's checkout");
    assert_eq!(ended.to, shard_of("a", count(2)));
    assert_eq!(hub.slots_in_use(), 0);
    assert!(
        hub.resolve_order("o1", crate::domain::waitroom::SessionEndReason::Completed)
            .is_none(),
        "at-least-once delivery"
    );
    // Both ends are sent until the shards acknowledge them.
    assert_eq!(hub.unacknowledged_end_count(), 2);
    hub.end_acknowledged(ended.to, &a);
    assert_eq!(hub.unacknowledged_end_count(), 1);
}

#[test]
fn an_unbound_order_leaves_the_checkout_to_the_fan_until_the_token_runs_out() {
    let mut cluster = Cluster::new(1, config(5, 5), 3);
    cluster.join("a", SALE_START, 1);
    cluster.join("b", SALE_START, 2);
    cluster.tick(open(0));
    let hub = &mut cluster.hub;
    hub.bind_checkout("a", "s-a", "o1", open(1)).expect("live");
    assert!(hub.unbind_order("o1", open(2)).is_none());
    assert_eq!(hub.bind_checkout("a", "s-a", "o4", open(3)), Ok(()));
    let ttl = i64::from(WaitroomConfig::default().checkout_ttl_seconds) * 1_000;
    hub.bind_checkout("b", "s-b", "o5", open(3)).expect("live");
    assert!(
        hub.unbind_order("o5", open(ttl + 5)).is_some(),
        "overdue: goes at once"
    );
    assert_eq!(hub.slots_in_use(), 1);
}

#[test]
fn an_expired_hold_ends_the_checkout_in_the_hub_only_once_its_token_ran_out_too() {
    use crate::domain::waitroom::SessionEndReason;
    let mut cluster = Cluster::new(1, config(5, 5), 3);
    cluster.join("a", SALE_START, 1);
    cluster.tick(open(0));
    let hub = &mut cluster.hub;
    hub.bind_checkout("a", "s-a", "o1", open(1)).expect("live");
    let ttl = i64::from(WaitroomConfig::default().checkout_ttl_seconds) * 1_000;
    assert!(
        hub.hold_expired("o1", open(ttl - 1)).is_none(),
        "time left on the token: the saga decides"
    );
    assert_eq!(hub.slots_in_use(), 1);
    let ended = hub.hold_expired("o1", open(ttl)).expect("ran out too");
    assert!(matches!(
        ended.message,
        ToShard::CheckoutEnded {
            reason: Some(SessionEndReason::OrderExpired),
            ..
        }
    ));
    assert_eq!(hub.slots_in_use(), 0);
    // A redelivery, and the saga's word after it, change nothing.
    assert!(hub.hold_expired("o1", open(ttl)).is_none());
    assert!(hub
        .resolve_order("o1", SessionEndReason::OrderExpired)
        .is_none());
    assert!(hub.unbind_order("o1", open(ttl)).is_none());
}

proptest! {
    /// The shell writes only what `take_changes` reports; a shard restored from those rows
    /// is the shard that wrote them: same queue, same records, same positions and head.
    #[test]
    fn a_shard_restored_from_its_written_rows_is_the_same_shard(
        ops in proptest::collection::vec((0u8..6, 0usize..12, 0i64..4_000), 1..120)
    ) {
        let hub = AdmissionHub::new("ev", 9, config(4, 4), count(1)).expect("valid");
        let mut shard = ShardQueue::new(hub.shard_settings(ShardIndex(0)));
        let mut meta = None;
        let mut rows: BTreeMap<String, crate::domain::admission::shard::FanRecord> = BTreeMap::new();
        let mut tick = 0;
        for (op, user, at) in ops {
            let user = format!("u{user}");
            let now = SALE_START - 1_000 + at;
            match op {
                0 | 1 => {
                    let stamp = ArrivalStamp { at_ms: now, tie_break: at as u64 };
                    let _ = shard.join(&user, &format!("s-{user}-{at}"), stamp, now);
                }
                2 => { shard.leave(&user, now); }
                3 => { shard.touch(&user, now + 20_000); }
                4 => {
                    tick += 1;
                    let report = shard.report_head(tick, 2, now, &|_| false);
                    let picks: Vec<Pick> = report.head.iter().map(|e| Pick::Admit {
                        place: e.place.clone(), checkout_expires_at: now + 60_000,
                    }).collect();
                    shard.apply_picks(tick, &picks, now, &|_| false);
                }
                _ => {
                    if let Some(place) = shard.fan(&user).map(|f| f.place.clone()) {
                        shard.checkout_ended(&place, None);
                    }
                }
            }
            let changes = shard.take_changes();
            if let Some(m) = changes.meta { meta = Some(m); }
            for (user, record) in changes.fans {
                match record {
                    Some(r) => { rows.insert(user, r); }
                    None => { rows.remove(&user); }
                }
            }
        }
        let restored = ShardQueue::restore(meta.expect("written at creation"), rows.into_values());
        prop_assert_eq!(restored.meta(), shard.meta());
        prop_assert_eq!(restored.queued_places().collect::<Vec<_>>(), shard.queued_places().collect::<Vec<_>>());
        prop_assert_eq!(restored.own_summary(), shard.own_summary());
        for u in 0..12 {
            let user = format!("u{u}");
            prop_assert_eq!(restored.fan(&user), shard.fan(&user));
            prop_assert_eq!(restored.view(&user, SALE_START + 5_000), shard.view(&user, SALE_START + 5_000));
        }
    }
}

#[test]
fn a_shard_spells_each_ending_as_the_one_object_waitroom_does() {
    use crate::domain::waitroom::{SessionEndReason as R, SessionStatus as S};
    let mut cluster = Cluster::new(1, config(5, 5), 3);
    let place = cluster.join("a", SALE_START, 1);
    let now = open(0);
    let shown = |c: &mut Cluster| {
        c.shard_mut("a")
            .view("a", now)
            .map(|v| v.session_status())
            .expect("joined")
    };
    assert_eq!(shown(&mut cluster), (S::Queued, None));
    cluster.tick(now);
    assert_eq!(shown(&mut cluster), (S::Admitted, None));
    for (reason, expected) in [
        (None, (S::Completed, Some(R::Completed))),
        (Some(R::Left), (S::Left, Some(R::Left))),
        (Some(R::OrderFailed), (S::Expired, Some(R::OrderFailed))),
        (
            Some(R::CheckoutTokenExpired),
            (S::Expired, Some(R::CheckoutTokenExpired)),
        ),
    ] {
        let mut c = Cluster::new(1, config(5, 5), 3);
        let p = c.join("a", SALE_START, 1);
        c.tick(now);
        c.shard_mut("a").checkout_ended(&p, reason);
        assert_eq!(shown(&mut c), expected);
    }
    assert_eq!(place.user_id(), "a");
}

#[test]
fn the_hub_wakes_for_its_next_round_for_unacknowledged_messages_and_for_expiries() {
    let mut cluster = Cluster::new(2, config(5, 5), 3);
    let first_round = SALE_START + STAMP_GRACE_MS;
    assert_eq!(
        cluster.hub.wake_at(0, 500),
        Some(500),
        "settings not yet acknowledged"
    );
    let (version, out) = cluster.hub.unsent_settings().expect("unsent");
    assert_eq!(out.len(), 2);
    cluster.hub.settings_acknowledged(version + 1);
    assert!(cluster.hub.unsent_settings().is_some(), "another version");
    cluster.hub.settings_acknowledged(version);
    assert!(cluster.hub.unsent_settings().is_none());
    assert_eq!(cluster.hub.wake_at(0, 500), Some(first_round));
    // A change makes every shard's acknowledgement due again.
    let mut raised = config(5, 5);
    raised.admission_batch = 3;
    cluster
        .hub
        .reconfigure(raised, count(2), 0)
        .expect("same count");
    assert!(cluster.hub.unsent_settings().is_some());
    assert_ne!(cluster.hub.unsent_settings().map(|(v, _)| v), Some(version));
    // Closed: no more rounds, but an unused checkout still runs out on time.
    let mut cluster = Cluster::new(1, config(5, 5), 3);
    cluster.hub.settings_acknowledged(1);
    cluster.join("a", SALE_START, 1);
    cluster.tick(open(0));
    let expires = cluster.hub.checkout_of("a").map(|c| c.expires_at);
    let mut closed = config(5, 5);
    closed.cancelled = true;
    cluster
        .hub
        .reconfigure(closed, count(1), open(1))
        .expect("ok");
    cluster.hub.settings_acknowledged(2);
    assert_eq!(cluster.hub.wake_at(open(2), 500), expires);
}

#[test]
fn a_hub_restored_from_its_document_and_its_checkout_rows_is_the_same_hub() {
    let mut cluster = Cluster::new(3, config(4, 4), 3);
    let mut rows: BTreeMap<String, crate::domain::admission::hub::Checkout> = BTreeMap::new();
    let mut write = |hub: &mut AdmissionHub| {
        for (user, checkout) in hub.take_changed_checkouts() {
            match checkout {
                Some(c) => {
                    rows.insert(user, c);
                }
                None => {
                    rows.remove(&user);
                }
            }
        }
        (
            serde_json::to_string(&*hub).expect("serializes"),
            rows.clone(),
        )
    };
    for (i, user) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        cluster.join(user, SALE_START + i as i64, 0);
    }
    cluster.tick(open(0));
    cluster
        .hub
        .bind_checkout("a", "s-a", "o1", open(1))
        .expect("live");
    let out: Vec<Outgoing> = cluster
        .hub
        .leave_checkout("b")
        .expect("unbound")
        .into_iter()
        .collect();
    cluster.deliver(out, open(2));
    let (document, stored) = write(&mut cluster.hub);
    let mut restored: AdmissionHub = serde_json::from_str(&document).expect("deserializes");
    assert!(
        !document.contains("\"checkouts\""),
        "checkouts live in their rows"
    );
    restored.restore_checkouts(stored);
    assert_eq!(restored.checkouts(), cluster.hub.checkouts());
    assert_eq!(restored.slots_in_use(), cluster.hub.slots_in_use());
    assert_eq!(restored.checkouts().len(), 3);
    assert_eq!(
        restored.checkout_of("a").and_then(|c| c.order_id.clone()),
        Some("o1".to_owned())
    );
}
