//! The model check: random command sequences against a naive model of the waitroom.

use super::*;

// --- the model check ----------------------------------------------------------------------

const MODEL_USERS: u8 = 8;

#[derive(Debug, Clone)]
enum Op {
    Join(u8),
    Leave(u8),
    Touch(u8),
    Tick,
    Advance(i64),
    Bind(u8, u8),
    Resolve(u8, CheckoutOutcome),
    Unbind(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let outcome = prop_oneof![
        Just(CheckoutOutcome::Completed),
        Just(CheckoutOutcome::Failed),
        Just(CheckoutOutcome::Cancelled),
        Just(CheckoutOutcome::Expired),
    ];
    prop_oneof![
        5 => (0..MODEL_USERS).prop_map(Op::Join),
        1 => (0..MODEL_USERS).prop_map(Op::Leave),
        2 => (0..MODEL_USERS).prop_map(Op::Touch),
        4 => Just(Op::Tick),
        3 => (0i64..120_000).prop_map(Op::Advance),
        2 => (0..MODEL_USERS, 0u8..6).prop_map(|(u, o)| Op::Bind(u, o)),
        2 => (0u8..6, outcome).prop_map(|(o, out)| Op::Resolve(o, out)),
        1 => (0u8..6).prop_map(Op::Unbind),
    ]
}

#[derive(Debug, Clone)]
struct ModelSession {
    id: String,
    user: String,
    join_no: u64,
    seq: Option<u64>,
    status: SessionStatus,
    last_seen: i64,
    expires_at: Option<i64>,
    order: Option<String>,
}

/// The waitroom the slow, obvious way: a list scanned on every question.
struct Model {
    config: WaitroomConfig,
    seed: u64,
    sessions: Vec<ModelSession>,
    opened: bool,
    closed: bool,
    next_seq: u64,
}

type ModelView = (String, SessionStatus, Option<u64>, u64, Option<i64>);

impl Model {
    fn upkeep(&mut self, now: i64) {
        if self.config.cancelled || now >= self.config.sale_ends_at {
            self.closed = true;
        }
        if self.closed {
            for s in &mut self.sessions {
                if s.status == SessionStatus::Queued {
                    s.status = SessionStatus::Expired;
                }
            }
        } else if !self.opened && now >= self.config.sale_starts_at {
            let mut pre: Vec<u64> = self
                .sessions
                .iter()
                .filter(|s| s.status == SessionStatus::Queued && s.seq.is_none())
                .map(|s| s.join_no)
                .collect();
            pre.sort_unstable();
            shuffle_prequeue(&mut pre, self.seed);
            for join_no in pre {
                let seq = self.next_seq;
                self.next_seq += 1;
                if let Some(s) = self.sessions.iter_mut().find(|s| s.join_no == join_no) {
                    s.seq = Some(seq);
                }
            }
            self.opened = true;
        }
        for s in &mut self.sessions {
            if s.status == SessionStatus::Admitted
                && s.order.is_none()
                && s.expires_at.is_some_and(|at| at <= now)
            {
                s.status = SessionStatus::Expired;
            }
        }
    }

    fn latest(&mut self, user: &str) -> Option<&mut ModelSession> {
        self.sessions
            .iter_mut()
            .filter(|s| s.user == user)
            .max_by_key(|s| s.join_no)
    }

    fn slots(&self) -> u64 {
        self.sessions
            .iter()
            .filter(|s| s.status == SessionStatus::Admitted)
            .count() as u64
    }

    fn seen(s: &mut ModelSession, now: i64) {
        if s.status == SessionStatus::Queued && now - s.last_seen >= TOUCH_WRITE_INTERVAL_MS {
            s.last_seen = now;
        }
    }

    fn join(&mut self, user: &str, id: &str, now: i64) -> Result<(), &'static str> {
        self.upkeep(now);
        if self.closed {
            return Err("SALE_NOT_OPEN");
        }
        if let Some(s) = self.latest(user) {
            if s.status.is_live() {
                Self::seen(s, now);
                return Ok(());
            }
        }
        let seq = self.opened.then(|| {
            self.next_seq += 1;
            self.next_seq - 1
        });
        self.sessions.push(ModelSession {
            id: id.into(),
            user: user.into(),
            join_no: self.sessions.len() as u64 + 1,
            seq,
            status: SessionStatus::Queued,
            last_seen: now,
            expires_at: None,
            order: None,
        });
        Ok(())
    }

    fn leave(&mut self, user: &str, now: i64) -> Result<(), &'static str> {
        self.upkeep(now);
        if let Some(s) = self.latest(user) {
            match s.status {
                SessionStatus::Queued => s.status = SessionStatus::Left,
                SessionStatus::Admitted if s.order.is_some() => return Err("CHECKOUT_IN_PROGRESS"),
                SessionStatus::Admitted => s.status = SessionStatus::Left,
                _ => {}
            }
        }
        Ok(())
    }

    fn touch(&mut self, user: &str, now: i64) {
        self.upkeep(now);
        if let Some(s) = self.latest(user) {
            Self::seen(s, now);
        }
    }

    fn tick(&mut self, now: i64) {
        self.upkeep(now);
        if self.closed || !self.opened {
            return;
        }
        let free = u64::from(self.config.max_concurrent_checkouts).saturating_sub(self.slots());
        let wanted = free.min(u64::from(self.config.admission_batch));
        let mut order: Vec<usize> = (0..self.sessions.len())
            .filter(|i| {
                self.sessions[*i].status == SessionStatus::Queued && self.sessions[*i].seq.is_some()
            })
            .collect();
        order.sort_by_key(|i| self.sessions[*i].seq);
        let mut admitted = 0;
        for i in order {
            if admitted >= wanted {
                break;
            }
            let s = &mut self.sessions[i];
            if now - s.last_seen >= self.config.idle_timeout_ms() {
                s.status = SessionStatus::Expired;
            } else {
                s.status = SessionStatus::Admitted;
                s.expires_at = Some(now + self.config.checkout_ttl_ms());
                admitted += 1;
            }
        }
    }

    fn bind(&mut self, user: &str, order: &str, now: i64) -> Result<(), &'static str> {
        self.upkeep(now);
        let taken = self
            .sessions
            .iter()
            .any(|s| s.order.as_deref() == Some(order));
        let Some(s) = self.latest(user) else {
            return Err("NOT_FOUND");
        };
        if s.order.as_deref() == Some(order) {
            return Ok(());
        }
        if s.status != SessionStatus::Admitted || s.order.is_some() {
            return Err("CHECKOUT_TOKEN_INVALID");
        }
        if s.expires_at.is_none_or(|at| now >= at) || taken {
            return Err("CHECKOUT_TOKEN_INVALID");
        }
        s.order = Some(order.into());
        Ok(())
    }

    fn resolve(&mut self, order: &str, outcome: CheckoutOutcome, now: i64) {
        self.upkeep(now);
        if let Some(s) = self
            .sessions
            .iter_mut()
            .find(|s| s.order.as_deref() == Some(order))
        {
            if s.status == SessionStatus::Admitted {
                s.status = match outcome {
                    CheckoutOutcome::Completed => SessionStatus::Completed,
                    _ => SessionStatus::Expired,
                };
            }
        }
    }

    fn unbind(&mut self, order: &str, now: i64) {
        self.upkeep(now);
        if let Some(s) = self
            .sessions
            .iter_mut()
            .find(|s| s.order.as_deref() == Some(order))
        {
            if s.status == SessionStatus::Admitted {
                s.order = None;
                if s.expires_at.is_none_or(|at| at <= now) {
                    s.status = SessionStatus::Expired;
                }
            }
        }
    }

    fn view(&self, user: &str, now: i64) -> Option<ModelView> {
        let s = self
            .sessions
            .iter()
            .filter(|s| s.user == user)
            .max_by_key(|s| s.join_no)?;
        let closed = self.closed || self.config.closure_at(now).is_some();
        let status = if s.status == SessionStatus::Queued && closed {
            SessionStatus::Expired
        } else {
            s.status
        };
        let waiting = |s: &&ModelSession| s.status == SessionStatus::Queued;
        let queue_length = if closed {
            0
        } else {
            self.sessions
                .iter()
                .filter(waiting)
                .filter(|q| q.seq.is_some() == self.opened)
                .count() as u64
        };
        let position = match (status, s.seq) {
            (SessionStatus::Queued, Some(seq)) => Some(
                1 + self
                    .sessions
                    .iter()
                    .filter(waiting)
                    .filter(|q| q.seq.is_some_and(|q| q < seq))
                    .count() as u64,
            ),
            _ => None,
        };
        let expires = (status == SessionStatus::Admitted)
            .then_some(s.expires_at)
            .flatten();
        Some((s.id.clone(), status, position, queue_length, expires))
    }
}

fn refusal(outcome: WaitroomOutcome) -> Result<(), &'static str> {
    outcome.rejection.map_or(Ok(()), |r| Err(r.code()))
}

fn real_view(room: &mut Room, user: &str) -> Option<ModelView> {
    room.view(user).map(|v| {
        (
            v.session_id,
            v.status,
            v.position,
            v.queue_length,
            v.checkout_expires_at,
        )
    })
}

proptest! {
    // No regression files: the suite runs from a checkout that must stay clean.
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_waitroom_matches_a_naive_model(
        seed in any::<u64>(),
        ops in proptest::collection::vec(op(), 1..80),
        cancel_at in proptest::option::of(0usize..160),
    ) {
        let config = WaitroomConfig {
            max_concurrent_checkouts: 3,
            checkout_ttl_seconds: 60,
            admission_batch: 2,
            idle_timeout_seconds: 90,
            sale_starts_at: SALE_START,
            sale_ends_at: SALE_START + 900_000,
            cancelled: false,
        };
        let start = SALE_START - 20_000;
        let mut room = Room {
            room: Waitroom::new(MemoryWaitroomStore::new()),
            now: start,
            config: config.clone(),
            joins: 0,
        };
        room.room.apply(WaitroomCommand::Configure {
            event_id: EVENT.into(), config: config.clone(), shuffle_seed: seed,
        }, start).expect("configure");
        let mut model = Model {
            config, seed, sessions: Vec::new(), opened: false, closed: false, next_seq: 1,
        };

        for (step, op) in ops.into_iter().enumerate() {
            let now = room.now;
            let user = |u: u8| format!("user{u}");
            let real: Result<(), &'static str>;
            let expected: Result<(), &'static str>;
            if cancel_at == Some(step) {
                room.reconfigure(|c| c.cancelled = true);
                model.config.cancelled = true;
                model.upkeep(now);
            }
            match op {
                Op::Join(u) => {
                    let id = format!("s{step}");
                    real = refusal(room.apply(WaitroomCommand::Join {
                        user_id: user(u), session_id: id.clone(),
                    }));
                    expected = model.join(&user(u), &id, now);
                }
                Op::Leave(u) => {
                    real = refusal(room.leave(&user(u)));
                    expected = model.leave(&user(u), now);
                }
                Op::Touch(u) => {
                    room.touch(&user(u));
                    model.touch(&user(u), now);
                    real = Ok(());
                    expected = Ok(());
                }
                Op::Tick => {
                    let outcome = room.tick();
                    model.tick(now);
                    prop_assert!(matches!(
                        outcome.effects.last(), Some(WaitroomEffect::NextWakeUp(_))
                    ));
                    real = Ok(());
                    expected = Ok(());
                }
                Op::Advance(ms) => {
                    room.now += ms;
                    real = Ok(());
                    expected = Ok(());
                }
                Op::Bind(u, o) => {
                    let order = format!("order{o}");
                    real = refusal(room.bind(&user(u), &order));
                    expected = model.bind(&user(u), &order, now);
                }
                Op::Resolve(o, outcome) => {
                    room.resolve(&format!("order{o}"), outcome);
                    model.resolve(&format!("order{o}"), outcome, now);
                    real = Ok(());
                    expected = Ok(());
                }
                Op::Unbind(o) => {
                    real = refusal(room.unbind(&format!("order{o}")));
                    model.unbind(&format!("order{o}"), now);
                    expected = Ok(());
                }
            }
            prop_assert_eq!(real, expected, "step {}", step);

            let state = room.state();
            prop_assert_eq!(state.slots_in_use, model.slots());
            prop_assert!(state.slots_in_use <= u64::from(room.config.max_concurrent_checkouts));
            for u in 0..MODEL_USERS {
                prop_assert_eq!(
                    real_view(&mut room, &user(u)),
                    model.view(&user(u), room.now),
                    "user{} after step {}", u, step
                );
            }
        }
    }
}
