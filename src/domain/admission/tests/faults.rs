//! Faults: redelivered picks, hub restarts mid-round, forged answers, a silent shard.

use super::*;

#[test]
fn a_redelivered_pick_is_answered_as_the_first_time_and_settled_once() {
    let mut cluster = Cluster::new(1, config(10, 10), 3);
    let place = cluster.join("a", SALE_START, 1);
    let picks = vec![Pick::Admit {
        place: place.clone(),
        checkout_expires_at: 9,
    }];
    let shard = &mut cluster.shards[0];
    let first = shard.apply_picks(4, &picks, open(0), &|_| false);
    let again = shard.apply_picks(4, &picks, open(5), &|_| false);
    assert_eq!(first, again);
    let handed: Vec<&Place> = first.confirmed.iter().map(|h| &h.place).collect();
    assert_eq!(handed, vec![&place]);
    assert_eq!(first.confirmed[0].session_id, "s-a");
    // The same place under another tick id was not handed over by it: withdrawn.
    assert_eq!(
        shard.apply_picks(5, &picks, open(6), &|_| false).withdrawn,
        vec![place]
    );
}

#[test]
fn a_hub_restart_after_the_picks_were_recorded_completes_the_tick() {
    let mut cluster = Cluster::new(4, config(10, 10), 3);
    for i in 0..6 {
        cluster.join(&format!("u{i}"), SALE_START + i, 0);
    }
    let now = open(0);
    let (mut round, out) = cluster.hub.start_round(0, now);
    for Outgoing { to, message } in out {
        if let ToShard::Heads { tick_id, want, .. } = message {
            let report =
                cluster.shards[usize::from(to.0)].report_head(tick_id, want, now, &|_| false);
            cluster.hub.accept_report(&mut round, report).expect("ours");
        }
    }
    let lost = cluster.hub.decide(round, now);
    assert!(!lost.is_empty());
    // The admit requests are lost with the crash; the stored intent survives.
    let stored = serde_json::to_string(&cluster.hub).expect("serializes");
    cluster.hub = serde_json::from_str(&stored).expect("deserializes");
    assert_eq!(cluster.hub.pending_admits(), 6);
    assert_eq!(cluster.hub.slots_in_use(), 6);
    // The next round sends them again and excludes them from its own picks.
    let again = cluster.tick(now + 1_000);
    assert!(again.is_empty(), "nobody is picked twice: {again:?}");
    assert_eq!(cluster.hub.checkouts().len(), 6);
    assert_eq!(cluster.hub.slots_in_use(), 6);
}

#[test]
fn a_hub_restart_before_the_picks_were_recorded_undoes_the_round() {
    let mut cluster = Cluster::new(4, config(10, 10), 3);
    for i in 0..6 {
        cluster.join(&format!("u{i}"), SALE_START + i, 0);
    }
    let now = open(0);
    let (mut round, out) = cluster.hub.start_round(0, now);
    for Outgoing { to, message } in out {
        if let ToShard::Heads { tick_id, want, .. } = message {
            let report =
                cluster.shards[usize::from(to.0)].report_head(tick_id, want, now, &|_| false);
            cluster.hub.accept_report(&mut round, report).expect("ours");
        }
    }
    drop(round);
    assert_eq!(cluster.hub.slots_in_use(), 0);
    assert_eq!(cluster.queued().len(), 6);
    assert_eq!(cluster.tick(now + 1_000).len(), 6);
}

#[test]
fn an_answer_that_skips_a_pick_or_comes_from_a_foreign_shard_is_refused() {
    let mut cluster = Cluster::new(2, config(10, 10), 3);
    cluster.join("a", SALE_START, 0);
    cluster.join("b", SALE_START, 1);
    let now = open(0);
    let (mut round, out) = cluster.hub.start_round(0, now);
    for Outgoing { to, message } in out {
        if let ToShard::Heads { tick_id, want, .. } = message {
            let report =
                cluster.shards[usize::from(to.0)].report_head(tick_id, want, now, &|_| false);
            cluster.hub.accept_report(&mut round, report).expect("ours");
        }
    }
    let out = cluster.hub.decide(round, now);
    let Some(Outgoing {
        to,
        message: ToShard::Admit { tick_id, picks, .. },
    }) = out.first().cloned()
    else {
        panic!("an admit request")
    };
    let mut answer =
        cluster.shards[usize::from(to.0)].apply_picks(tick_id, &picks, now, &|_| false);
    let full = answer.clone();
    answer.confirmed.clear();
    assert_eq!(
        cluster.hub.accept_answer(&answer),
        Err(HubRejection::Mismatch)
    );
    let mut forged = full.clone();
    forged.shard = ShardIndex(9);
    assert_eq!(
        cluster.hub.accept_answer(&forged),
        Err(HubRejection::Mismatch)
    );
    let mut other_event = full.clone();
    other_event.event_id = "other".into();
    assert_eq!(
        cluster.hub.accept_answer(&other_event),
        Err(HubRejection::Mismatch)
    );
    assert!(cluster.hub.pending_admits() > 0);
    assert_eq!(cluster.hub.accept_answer(&full), Ok(()));
}

#[test]
fn a_silent_shard_delays_only_its_own_fans_and_loses_none() {
    let mut cluster = Cluster::new(4, config(100, 100), 3);
    let mut by_shard: BTreeMap<ShardIndex, Vec<String>> = BTreeMap::new();
    for i in 0..40 {
        let user = format!("u{i}");
        cluster.join(&user, SALE_START + i, 0);
        by_shard
            .entry(shard_of(&user, count(4)))
            .or_default()
            .push(user);
    }
    let silent = ShardIndex(2);
    let now = open(0);
    let (mut round, out) = cluster.hub.start_round(0, now);
    for Outgoing { to, message } in out {
        if let (ToShard::Heads { tick_id, want, .. }, true) = (message, to != silent) {
            let report =
                cluster.shards[usize::from(to.0)].report_head(tick_id, want, now, &|_| false);
            cluster.hub.accept_report(&mut round, report).expect("ours");
        }
    }
    assert!(!cluster.hub.round_ready(&round, now + 1_000));
    assert!(cluster.hub.round_ready(&round, now + STRAGGLER_TIMEOUT_MS));
    let out = cluster.hub.decide(round, now + STRAGGLER_TIMEOUT_MS);
    cluster.deliver(out, now + STRAGGLER_TIMEOUT_MS);
    let admitted: BTreeSet<&String> = cluster.hub.checkouts().keys().collect();
    let silent_fans = by_shard.get(&silent).map_or(0, Vec::len);
    assert!(silent_fans > 0);
    assert_eq!(admitted.len(), 40 - silent_fans);
    assert!(by_shard[&silent].iter().all(|u| !admitted.contains(u)));
    assert_eq!(cluster.hub.rounds_with_stragglers, 1);
    // Still silent in the next round: not waited for again, while a hub restart (a new
    // instance) gives it one more timeout.
    let later = now + STRAGGLER_TIMEOUT_MS + 500;
    for awake_since in [0, later] {
        let (mut round, out) = cluster.hub.start_round(awake_since, later);
        for Outgoing { to, message } in out {
            if let (ToShard::Heads { tick_id, want, .. }, true) = (message, to != silent) {
                let report =
                    cluster.shards[usize::from(to.0)].report_head(tick_id, want, later, &|_| false);
                cluster.hub.accept_report(&mut round, report).expect("ours");
            }
        }
        assert_eq!(cluster.hub.round_ready(&round, later), awake_since == 0);
    }
    // Back: its fans are admitted by the next round, none lost.
    cluster.tick(now + STRAGGLER_TIMEOUT_MS + 1_000);
    assert_eq!(cluster.hub.checkouts().len(), 40);
}
