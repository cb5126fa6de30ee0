//! Property tests of a cluster driven by random joins, leaves and ticks.

use super::*;

/// One step of a generated run.
#[derive(Debug, Clone)]
enum Step {
    Join { user: u16, after_ms: u16, tie: u64 },
    Leave { user: u16 },
    Tick { after_ms: u16, resolve: bool },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u16..120, 0u16..400, any::<u64>()).prop_map(|(user, after_ms, tie)| Step::Join { user, after_ms, tie }),
        1 => (0u16..120).prop_map(|user| Step::Leave { user }),
        2 => (0u16..1_500, any::<bool>()).prop_map(|(after_ms, resolve)| Step::Tick { after_ms, resolve }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever joins, leaves and ticks come, across any shard count: admissions follow place
    /// order exactly (nobody admitted while an earlier place still waits), nobody twice, and
    /// the slots in use never pass the cap.
    #[test]
    fn admission_follows_place_order_across_shards(
        shards in 1u16..=16,
        cap in 1u32..20,
        batch in 1u32..20,
        prequeue in 0usize..30,
        steps in proptest::collection::vec(step(), 1..120),
    ) {
        let mut cluster = Cluster::new(shards, config(cap, batch), 11);
        let mut now = SALE_START - 10_000;
        for user in 0..prequeue {
            cluster.join(&format!("p{user}"), now + user as i64, 0);
        }
        now = SALE_START;
        let mut admitted_ever: BTreeSet<Place> = BTreeSet::new();
        let mut live: BTreeMap<String, Place> = BTreeMap::new();
        for step in steps {
            match step {
                Step::Join { user, after_ms, tie } => {
                    now += i64::from(after_ms);
                    let user = format!("u{user}");
                    let stamp = ArrivalStamp { at_ms: now - i64::from(after_ms % 700), tie_break: tie };
                    let shard = cluster.shard_mut(&user);
                    let _ = shard.join(&user, "s", stamp, now);
                }
                Step::Leave { user } => {
                    let user = format!("u{user}");
                    if let Leave::HeldByHub(_) = cluster.shard_mut(&user).leave(&user, now) {
                        let out: Vec<Outgoing> = cluster.hub.leave_checkout(&user).ok().flatten().into_iter().collect();
                        if !out.is_empty() {
                            // The checkout was given back: the fan may join again.
                            live.remove(&user);
                        }
                        cluster.deliver(out, now);
                    }
                }
                Step::Tick { after_ms, resolve } => {
                    now += i64::from(after_ms);
                    let waiting_before = cluster.queued();
                    let admitted = cluster.tick(now);
                    prop_assert!(cluster.hub.slots_in_use() <= u64::from(cap));
                    for place in &admitted {
                        prop_assert!(admitted_ever.insert(place.clone()), "admitted twice: {:?}", place);
                        prop_assert!(!live.contains_key(place.user_id()), "two checkouts for one fan");
                        live.insert(place.user_id().to_owned(), place.clone());
                    }
                    // Every place still waiting after the tick that was waiting before it
                    // sorts after everything the tick admitted.
                    if let Some(last) = admitted.last() {
                        for place in cluster.queued().intersection(&waiting_before) {
                            prop_assert!(place > last, "{:?} skipped for {:?}", place, last);
                        }
                    }
                    if resolve {
                        cluster.resolve_all_checkouts(now);
                        live.clear();
                    }
                }
            }
        }
        prop_assert_eq!(cluster.hub.slots_in_use(), cluster.hub.checkouts().len() as u64);
        // Then the queue drains: everybody still waiting is admitted, in place order.
        let mut waiting: Vec<Place> = cluster.queued().into_iter().collect();
        let mut drained = Vec::new();
        for _ in 0..200 {
            if cluster.queued().is_empty() {
                break;
            }
            now += 1_000;
            cluster.resolve_all_checkouts(now);
            drained.extend(cluster.tick(now));
        }
        prop_assert!(cluster.queued().is_empty(), "fans left waiting");
        waiting.sort();
        prop_assert_eq!(drained, waiting);
    }
}
