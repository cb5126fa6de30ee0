//! [`Ledger`]: the inventory rules over a [`LedgerStore`]: reserve, confirm, release, expire,
//! and the organiser's class changes.

use std::collections::BTreeMap;

use super::*;

/// Class rows touched by one operation: each loaded once, changed in memory, written together.
#[derive(Default)]
struct ClassEdits {
    /// Rows read ahead (with the hold, in one query) and not touched yet.
    read_ahead: BTreeMap<String, TicketClass>,
    /// Rows handed out for changing: exactly these are written.
    rows: BTreeMap<String, TicketClass>,
}

impl ClassEdits {
    /// Edits that take rows from `classes` before asking the store.
    fn read_ahead(classes: Vec<TicketClass>) -> Self {
        ClassEdits {
            read_ahead: classes
                .into_iter()
                .map(|class| (class.id.clone(), class))
                .collect(),
            rows: BTreeMap::new(),
        }
    }

    /// Edits of rows the caller has already changed.
    fn changed(classes: Vec<TicketClass>) -> Self {
        ClassEdits {
            read_ahead: BTreeMap::new(),
            rows: classes
                .into_iter()
                .map(|class| (class.id.clone(), class))
                .collect(),
        }
    }

    /// The row of a class a stored hold refers to; a missing one means the state is corrupt,
    /// since classes are never deleted.
    fn of_hold<S: LedgerStore + ?Sized>(
        &mut self,
        store: &S,
        ticket_class_id: &str,
    ) -> Result<&mut TicketClass, LedgerError> {
        match self.rows.entry(ticket_class_id.to_owned()) {
            std::collections::btree_map::Entry::Occupied(entry) => Ok(entry.into_mut()),
            std::collections::btree_map::Entry::Vacant(entry) => {
                let class = match self.read_ahead.remove(ticket_class_id) {
                    Some(class) => class,
                    None => store.class(ticket_class_id)?.ok_or_else(|| {
                        corrupt(format!("a hold names missing class {ticket_class_id}"))
                    })?,
                };
                Ok(entry.insert(class))
            }
        }
    }

    /// The changed rows, refusing to hand over any that would break `reserved + sold <= total`.
    fn into_rows(self) -> Result<Vec<TicketClass>, LedgerError> {
        let rows: Vec<TicketClass> = self.rows.into_values().collect();
        if let Some(class) = rows
            .iter()
            .find(|class| class.committed() > u64::from(class.total))
        {
            return Err(corrupt(format!(
                "class {} would have {} held or sold of {}",
                class.id,
                class.committed(),
                class.total
            )));
        }
        Ok(rows)
    }
}

/// The inventory rules of one event over a [`LedgerStore`]. Cheap to build per request.
#[derive(Debug, Clone, Default)]
pub struct Ledger<S> {
    store: S,
}

impl<S: LedgerStore> Ledger<S> {
    pub fn new(store: S) -> Self {
        Ledger { store }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn store_mut(&mut self) -> &mut S {
        &mut self.store
    }

    pub fn into_store(self) -> S {
        self.store
    }

    // ----- event-level settings -----

    /// The event's sale settings; a fresh object is CLOSED with no limit.
    pub fn settings(&self) -> Result<SaleSettings, LedgerError> {
        Ok(self.store.settings()?.unwrap_or_default())
    }

    /// Opens, closes or cancels the event's sale. Cancelled is final. Existing holds are left
    /// to expire or be released: cancelling must not touch tens of thousands of rows at once.
    pub fn set_sale_state(&mut self, state: SaleState) -> Result<SaleSettings, LedgerError> {
        let mut settings = self.settings()?;
        if settings.state == SaleState::Cancelled && state != SaleState::Cancelled {
            return Err(LedgerError::SaleCancelled);
        }
        settings.state = state;
        self.commit_settings(settings)
    }

    /// Sets the event's per-user ticket limit (`None`: no limit). Applies to new holds only:
    /// lowering it never takes back tickets already held or sold.
    pub fn set_max_tickets_per_user(
        &mut self,
        limit: Option<u32>,
    ) -> Result<SaleSettings, LedgerError> {
        let mut settings = self.settings()?;
        settings.max_tickets_per_user = limit;
        self.commit_settings(settings)
    }

    /// Sets the whole sale configuration at once (what the event workflow syncs to the object):
    /// state, per-user limit and sale window in one write. Cancelled stays final; a repeat with
    /// the same settings writes the same row again, so syncing is idempotent.
    pub fn configure_sale(&mut self, wanted: SaleSettings) -> Result<SaleSettings, LedgerError> {
        if matches!(
            (wanted.sale_starts_at, wanted.sale_ends_at),
            (Some(start), Some(end)) if end <= start
        ) {
            return Err(invalid("saleEndsAt", "must be after saleStartsAt"));
        }
        let current = self.settings()?;
        if current.state == SaleState::Cancelled && wanted.state != SaleState::Cancelled {
            return Err(LedgerError::SaleCancelled);
        }
        self.commit_settings(wanted)
    }

    fn commit_settings(&mut self, settings: SaleSettings) -> Result<SaleSettings, LedgerError> {
        self.store.commit(&LedgerChanges {
            settings: Some(settings.clone()),
            ..LedgerChanges::default()
        })?;
        Ok(settings)
    }

    // ----- ticket classes -----

    /// Creates a class, or updates its total, status and sale window keeping its counters.
    pub fn upsert_class(&mut self, spec: TicketClassSpec) -> Result<TicketClass, LedgerError> {
        if spec.id.is_empty() {
            return Err(invalid("id", "must not be empty"));
        }
        // Both edges given means an empty or inverted window, which would never sell.
        if matches!(
            (spec.sale_start_at, spec.sale_end_at),
            (Some(start), Some(end)) if end <= start
        ) {
            return Err(invalid("saleEndAt", "must be after saleStartAt"));
        }
        let class = match self.store.class(&spec.id)? {
            Some(existing) => TicketClass {
                total: checked_total(&existing, spec.total)?,
                status: spec.status,
                sale_start_at: spec.sale_start_at,
                sale_end_at: spec.sale_end_at,
                ..existing
            },
            None => TicketClass {
                total: parse_total(spec.total)?,
                reserved: 0,
                sold: 0,
                status: spec.status,
                sale_start_at: spec.sale_start_at,
                sale_end_at: spec.sale_end_at,
                id: spec.id,
            },
        };
        self.commit_class(class)
    }

    /// Changes a class's total; refuses one below what is already held or sold.
    pub fn set_total(
        &mut self,
        ticket_class_id: &str,
        total: i64,
    ) -> Result<TicketClass, LedgerError> {
        let mut class = self.known_class(ticket_class_id)?;
        class.total = checked_total(&class, total)?;
        self.commit_class(class)
    }

    /// Pauses or resumes a class. Pausing stops new holds only; existing ones may still be paid.
    pub fn set_class_status(
        &mut self,
        ticket_class_id: &str,
        status: ClassStatus,
    ) -> Result<TicketClass, LedgerError> {
        let mut class = self.known_class(ticket_class_id)?;
        class.status = status;
        self.commit_class(class)
    }

    fn known_class(&self, ticket_class_id: &str) -> Result<TicketClass, LedgerError> {
        self.store
            .class(ticket_class_id)?
            .ok_or_else(|| LedgerError::UnknownTicketClass {
                ticket_class_id: ticket_class_id.to_owned(),
            })
    }

    fn commit_class(&mut self, class: TicketClass) -> Result<TicketClass, LedgerError> {
        self.store.commit(&LedgerChanges {
            classes: vec![class.clone()],
            ..LedgerChanges::default()
        })?;
        Ok(class)
    }

    /// Live counters of every class.
    pub fn availability(&self) -> Result<Vec<ClassAvailability>, LedgerError> {
        Ok(self
            .store
            .classes()?
            .iter()
            .map(ClassAvailability::from)
            .collect())
    }

    /// The hold of an order, if it ever had one.
    pub fn hold(&self, order_id: &str) -> Result<Option<Hold>, LedgerError> {
        Ok(self.store.hold(order_id)?)
    }

    // ----- holds -----

    /// Holds every line of the order or none. Repeating it with the same order id returns the
    /// stored hold (whatever its state) and reserves nothing more.
    pub fn reserve(&mut self, request: &ReserveRequest, now: Millis) -> Result<Hold, LedgerError> {
        let items = validate_items(&request.items)?;
        if request.order_id.is_empty() {
            return Err(invalid("orderId", "must not be empty"));
        }
        if request.user_id.is_empty() {
            return Err(invalid("userId", "must not be empty"));
        }
        let hold_for = request.hold_for_ms.unwrap_or(DEFAULT_HOLD_MS);
        if hold_for <= 0 {
            return Err(invalid("holdForMs", "must be positive"));
        }
        let expires_at = now
            .checked_add(hold_for)
            .ok_or_else(|| invalid("holdForMs", "is too large"))?;

        let class_ids: Vec<&str> = items
            .iter()
            .map(|item| item.ticket_class_id.as_str())
            .collect();
        let reads = self
            .store
            .reserve_reads(&request.order_id, &request.user_id, &class_ids)?;

        // Idempotency comes before any sale rule: a retry after the sale closed or the stock ran
        // out must still get the hold the first attempt made.
        if let Some(existing) = reads.hold {
            if existing.user_id == request.user_id && existing.items == items {
                return Ok(existing);
            }
            return Err(LedgerError::OrderIdConflict {
                order_id: request.order_id.clone(),
            });
        }

        let settings = reads.settings.unwrap_or_default();
        if settings.state != SaleState::Open {
            return Err(LedgerError::SaleNotOpen {
                state: settings.state,
            });
        }
        if !settings.window_contains(now) {
            return Err(LedgerError::OutsideSaleWindow);
        }

        let mut found: BTreeMap<String, TicketClass> = reads
            .classes
            .into_iter()
            .map(|class| (class.id.clone(), class))
            .collect();
        let mut classes = Vec::with_capacity(items.len());
        for item in &items {
            let class = found.remove(&item.ticket_class_id).ok_or_else(|| {
                LedgerError::UnknownTicketClass {
                    ticket_class_id: item.ticket_class_id.clone(),
                }
            })?;
            if class.status != ClassStatus::Active {
                return Err(LedgerError::ClassNotOnSale {
                    ticket_class_id: class.id,
                });
            }
            if !class.window_contains(now) {
                return Err(LedgerError::ClassSaleWindowClosed {
                    ticket_class_id: class.id,
                });
            }
            classes.push(class);
        }

        let requested: u64 = items.iter().map(|item| u64::from(item.quantity)).sum();
        if let Some(limit) = settings.max_tickets_per_user {
            let already_committed = reads.user_committed_quantity;
            if already_committed.saturating_add(requested) > u64::from(limit) {
                return Err(LedgerError::PurchaseLimitExceeded {
                    limit,
                    already_committed,
                    requested,
                });
            }
        }

        for (class, item) in classes.iter_mut().zip(&items) {
            if class.available() < item.quantity {
                return Err(LedgerError::InsufficientInventory {
                    ticket_class_id: class.id.clone(),
                    requested: item.quantity,
                    available: class.available(),
                });
            }
            class.hold_back(item.quantity)?;
        }

        let hold = Hold {
            order_id: request.order_id.clone(),
            user_id: request.user_id.clone(),
            items,
            state: HoldState::Active,
            created_at: now,
            expires_at,
            updated_at: now,
            refused_payment: None,
            returned_at: None,
        };
        self.store.commit(&LedgerChanges {
            settings: None,
            classes: ClassEdits::changed(classes).into_rows()?,
            holds: vec![hold.clone()],
        })?;
        Ok(hold)
    }

    /// Turns a paid order's hold into sold tickets, or says definitely why not. Repeating it
    /// gives the same answer.
    pub fn confirm(&mut self, order_id: &str, now: Millis) -> Result<ConfirmOutcome, LedgerError> {
        let HoldWithClasses { mut hold, classes } = self
            .store
            .hold_with_classes(order_id)?
            .ok_or_else(|| LedgerError::HoldNotFound {
                order_id: order_id.to_owned(),
            })?;
        if let Some(refusal) = hold.refused_payment {
            return Ok(refused(refusal.reason, hold));
        }
        if hold.state == HoldState::Confirmed {
            return Ok(ConfirmOutcome::Confirmed(hold));
        }

        let mut edits = ClassEdits::read_ahead(classes);
        let outcome_reason = if self.settings()?.state == SaleState::Cancelled {
            if hold.state == HoldState::Active {
                for item in &hold.items {
                    edits
                        .of_hold(&self.store, &item.ticket_class_id)?
                        .give_back(item.quantity)?;
                }
                hold.state = HoldState::Released;
                hold.updated_at = now;
            }
            Some(RefusalReason::EventCancelled)
        } else if hold.state == HoldState::Active {
            for item in &hold.items {
                let class = edits.of_hold(&self.store, &item.ticket_class_id)?;
                class.give_back(item.quantity)?;
                class.sell(item.quantity)?;
            }
            None
        } else {
            // Lapsed hold: sell again only if every line still fits, else refuse the payment.
            let mut fits = true;
            for item in &hold.items {
                let class = edits.of_hold(&self.store, &item.ticket_class_id)?;
                if class.available() < item.quantity {
                    fits = false;
                    break;
                }
                class.sell(item.quantity)?;
            }
            if fits {
                None
            } else {
                edits = ClassEdits::default();
                Some(RefusalReason::NoStock)
            }
        };

        match outcome_reason {
            Some(reason) => hold.refused_payment = Some(RefusedPayment { reason, at: now }),
            None => {
                hold.state = HoldState::Confirmed;
                hold.updated_at = now;
            }
        }
        self.store.commit(&LedgerChanges {
            settings: None,
            classes: edits.into_rows()?,
            holds: vec![hold.clone()],
        })?;
        Ok(match outcome_reason {
            Some(reason) => refused(reason, hold),
            None => ConfirmOutcome::Confirmed(hold),
        })
    }

    /// Gives an order's held tickets back. Anything but an ACTIVE hold is a no-op answer.
    pub fn release(&mut self, order_id: &str, now: Millis) -> Result<ReleaseOutcome, LedgerError> {
        let Some(HoldWithClasses { mut hold, classes }) = self.store.hold_with_classes(order_id)?
        else {
            return Ok(ReleaseOutcome::UnknownOrder);
        };
        match hold.state {
            HoldState::Released => return Ok(ReleaseOutcome::AlreadyReleased(hold)),
            HoldState::Expired => return Ok(ReleaseOutcome::AlreadyExpired(hold)),
            HoldState::Confirmed => return Ok(ReleaseOutcome::AlreadyConfirmed(hold)),
            HoldState::Active => {}
        }
        let mut edits = ClassEdits::read_ahead(classes);
        for item in &hold.items {
            edits
                .of_hold(&self.store, &item.ticket_class_id)?
                .give_back(item.quantity)?;
        }
        hold.state = HoldState::Released;
        hold.updated_at = now;
        self.store.commit(&LedgerChanges {
            settings: None,
            classes: edits.into_rows()?,
            holds: vec![hold.clone()],
        })?;
        Ok(ReleaseOutcome::Released(hold))
    }

    /// Puts a refunded order's sold tickets back on sale: its units leave `sold` once. A repeat
    /// is `AlreadyReturned` and changes nothing; a hold that never sold is `NotSold`. The hold
    /// stays CONFIRMED with `returned_at` set, so a redelivered payment's `confirm` answers
    /// `Confirmed` from the stored hold and never sells those units to the order again.
    pub fn return_sold(
        &mut self,
        order_id: &str,
        now: Millis,
    ) -> Result<ReturnOutcome, LedgerError> {
        let Some(HoldWithClasses { mut hold, classes }) = self.store.hold_with_classes(order_id)?
        else {
            return Ok(ReturnOutcome::UnknownOrder);
        };
        if hold.returned_at.is_some() {
            return Ok(ReturnOutcome::AlreadyReturned(hold));
        }
        if hold.state != HoldState::Confirmed {
            return Ok(ReturnOutcome::NotSold(hold));
        }
        let mut edits = ClassEdits::read_ahead(classes);
        for item in &hold.items {
            edits
                .of_hold(&self.store, &item.ticket_class_id)?
                .take_back_sold(item.quantity)?;
        }
        hold.returned_at = Some(now);
        hold.updated_at = now;
        self.store.commit(&LedgerChanges {
            settings: None,
            classes: edits.into_rows()?,
            holds: vec![hold.clone()],
        })?;
        Ok(ReturnOutcome::Returned(hold))
    }

    /// Expires up to [`EXPIRY_BATCH`] ACTIVE holds with `expiresAt <= now`, earliest first, and
    /// returns them for the saga. If more were due, [`Ledger::next_expiry`] is then `<= now`.
    pub fn expire_due(&mut self, now: Millis) -> Result<Vec<ExpiredHold>, LedgerError> {
        self.expire_due_at_most(now, EXPIRY_BATCH)
    }

    /// [`Ledger::expire_due`] with an explicit batch size.
    pub fn expire_due_at_most(
        &mut self,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<ExpiredHold>, LedgerError> {
        let due = self.store.due_holds(now, limit)?;
        let mut edits = ClassEdits::default();
        let mut holds = Vec::with_capacity(due.len());
        let mut expired = Vec::with_capacity(due.len());
        for mut hold in due {
            // The store promised only due ACTIVE holds; a stray row must not be expired twice.
            if hold.state != HoldState::Active || hold.expires_at > now {
                continue;
            }
            for item in &hold.items {
                edits
                    .of_hold(&self.store, &item.ticket_class_id)?
                    .give_back(item.quantity)?;
            }
            hold.state = HoldState::Expired;
            hold.updated_at = now;
            expired.push(ExpiredHold {
                order_id: hold.order_id.clone(),
                user_id: hold.user_id.clone(),
                expires_at: hold.expires_at,
            });
            holds.push(hold);
        }
        let changes = LedgerChanges {
            settings: None,
            classes: edits.into_rows()?,
            holds,
        };
        if !changes.is_empty() {
            self.store.commit(&changes)?;
        }
        Ok(expired)
    }

    /// The earliest `expiresAt` of an ACTIVE hold: when the object's alarm should fire next.
    pub fn next_expiry(&self) -> Result<Option<Millis>, LedgerError> {
        Ok(self.store.next_expiry()?)
    }
}

fn refused(reason: RefusalReason, hold: Hold) -> ConfirmOutcome {
    match reason {
        RefusalReason::NoStock => ConfirmOutcome::PaidButNoStock(hold),
        RefusalReason::EventCancelled => ConfirmOutcome::PaidButEventCancelled(hold),
    }
}

fn parse_total(total: i64) -> Result<u32, LedgerError> {
    u32::try_from(total).map_err(|_| invalid("total", "must be between 0 and 4294967295"))
}

fn checked_total(class: &TicketClass, total: i64) -> Result<u32, LedgerError> {
    let parsed = parse_total(total)?;
    if u64::from(parsed) < class.committed() {
        return Err(LedgerError::TotalBelowCommitted {
            ticket_class_id: class.id.clone(),
            total,
            committed: class.committed(),
        });
    }
    Ok(parsed)
}

/// Turns requested lines into hold lines: at least one, positive quantities, each class once,
/// sorted by class id so that the same order compares equal however its lines were listed.
fn validate_items(requested: &[RequestedItem]) -> Result<Vec<HoldItem>, LedgerError> {
    if requested.is_empty() {
        return Err(invalid("items", "must list at least one ticket class"));
    }
    let mut items = Vec::with_capacity(requested.len());
    for (index, item) in requested.iter().enumerate() {
        if item.ticket_class_id.is_empty() {
            return Err(invalid(
                format!("items[{index}].ticketClassId"),
                "must not be empty",
            ));
        }
        if item.quantity <= 0 {
            return Err(invalid(
                format!("items[{index}].quantity"),
                "must be at least 1",
            ));
        }
        let quantity = u32::try_from(item.quantity)
            .map_err(|_| invalid(format!("items[{index}].quantity"), "is too large"))?;
        items.push(HoldItem {
            ticket_class_id: item.ticket_class_id.clone(),
            quantity,
        });
    }
    items.sort_by(|a, b| a.ticket_class_id.cmp(&b.ticket_class_id));
    if let Some(pair) = items
        .windows(2)
        .find(|pair| pair[0].ticket_class_id == pair[1].ticket_class_id)
    {
        return Err(invalid(
            "items",
            format!(
                "ticket class {} is listed more than once",
                pair[0].ticket_class_id
            ),
        ));
    }
    Ok(items)
}
