//! Events in D1: details, sale terms, categories, roles, status, and the search behind
//! `GET /api/events`.
//!
//! Every write to an event is conditional on the `revision` the handler read and sets a new
//! one; statements batched with it are guarded by the new revision, so a lost race changes
//! nothing and the handler can say so. Whether the event row was written is read from
//! `RETURNING`, not `meta.changes`, which also counts the search index rows its trigger wrote.

use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::D1Database;

use super::catalogue::CategoryRow;
use super::d1::{all, first, flag, int, opt_int, opt_text, returned_rows, run, stmt, text};
use crate::domain::access::EventRole;
use crate::domain::admission::place::ShardCount;
use crate::domain::catalogue::{EventSearch, ListScope};
use crate::domain::event_workflow::{ConfigTerms, EventStatus, EventTerms};
use crate::domain::ids::{CategoryId, EventId, OrganizerId};
use crate::domain::waitroom::WaitroomConfig;
use crate::error::ApiError;

const EVENT_COLUMNS: &str = "e.id, e.name, e.description, e.location, e.thumbnail_url, \
     e.start_date, e.end_date, e.status, e.ever_published, e.organizer_id, e.revision, \
     e.created_at, e.updated_at, c.ticket_sale_start, c.ticket_sale_end, c.is_free, \
     c.max_attendees, c.is_public, c.requires_approval, c.allow_wait_room, c.is_new_trending, \
     c.max_tickets_per_user, c.max_concurrent_checkouts, c.checkout_ttl_seconds, c.admission_batch, \
     c.waitroom_shards, c.refundable_until";

const EVENT_FROM: &str = "FROM events e LEFT JOIN event_config c ON c.event_id = e.id";

#[derive(Debug, Deserialize)]
struct EventRow {
    id: String,
    name: String,
    description: String,
    location: String,
    thumbnail_url: Option<String>,
    start_date: i64,
    end_date: i64,
    status: String,
    ever_published: i64,
    organizer_id: Option<String>,
    revision: String,
    created_at: i64,
    updated_at: i64,
    ticket_sale_start: Option<i64>,
    ticket_sale_end: Option<i64>,
    is_free: Option<i64>,
    max_attendees: Option<i64>,
    is_public: Option<i64>,
    requires_approval: Option<i64>,
    allow_wait_room: Option<i64>,
    is_new_trending: Option<i64>,
    max_tickets_per_user: Option<i64>,
    max_concurrent_checkouts: Option<i64>,
    checkout_ttl_seconds: Option<i64>,
    admission_batch: Option<i64>,
    #[serde(default)]
    waitroom_shards: Option<i64>,
    #[serde(default)]
    refundable_until: Option<i64>,
    #[serde(default)]
    my_role: Option<String>,
}

/// An event as stored, with its terms in the shape the workflow rules read.
#[derive(Debug, Clone)]
pub struct EventRecord {
    pub id: EventId,
    pub status: EventStatus,
    pub ever_published: bool,
    pub revision: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub terms: EventTerms,
    pub categories: Vec<CategoryRow>,
}

fn corrupt(what: &str, id: &str) -> ApiError {
    ApiError::internal(format!("event {id}: stored {what} is invalid"))
}

fn count(value: Option<i64>, what: &str, id: &str) -> Result<u32, ApiError> {
    value
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| corrupt(what, id))
}

fn opt_count(value: Option<i64>, what: &str, id: &str) -> Result<Option<u32>, ApiError> {
    value.map(|n| count(Some(n), what, id)).transpose()
}

impl EventRow {
    fn config(&self) -> Result<Option<ConfigTerms>, ApiError> {
        let (Some(start), Some(end)) = (self.ticket_sale_start, self.ticket_sale_end) else {
            return Ok(None);
        };
        let id = self.id.as_str();
        Ok(Some(ConfigTerms {
            ticket_sale_start_ms: start,
            ticket_sale_end_ms: end,
            is_free: self.is_free == Some(1),
            max_attendees: opt_count(self.max_attendees, "max_attendees", id)?,
            is_public: self.is_public == Some(1),
            requires_approval: self.requires_approval == Some(1),
            allow_wait_room: self.allow_wait_room == Some(1),
            is_new_trending: self.is_new_trending == Some(1),
            max_tickets_per_user: opt_count(self.max_tickets_per_user, "max_tickets_per_user", id)?,
            waitroom: WaitroomConfig {
                max_concurrent_checkouts: count(
                    self.max_concurrent_checkouts,
                    "max_concurrent_checkouts",
                    id,
                )?,
                checkout_ttl_seconds: count(self.checkout_ttl_seconds, "checkout_ttl_seconds", id)?,
                admission_batch: count(self.admission_batch, "admission_batch", id)?,
                ..WaitroomConfig::default()
            },
            waitroom_shards: self
                .waitroom_shards
                .and_then(|n| u16::try_from(n).ok())
                .and_then(ShardCount::new)
                .ok_or_else(|| corrupt("waitroom_shards", id))?,
            refundable_until_ms: self.refundable_until,
        }))
    }

    fn into_record(self, categories: Vec<CategoryRow>) -> Result<EventRecord, ApiError> {
        let status = EventStatus::parse(&self.status).map_err(|_| corrupt("status", &self.id))?;
        let config = self.config()?;
        Ok(EventRecord {
            id: EventId::new(self.id.clone()),
            status,
            ever_published: self.ever_published == 1,
            revision: self.revision,
            created_at: self.created_at,
            updated_at: self.updated_at,
            terms: EventTerms {
                name: self.name,
                description: self.description,
                location: self.location,
                thumbnail_url: self.thumbnail_url,
                organizer_id: self.organizer_id.map(OrganizerId::new),
                category_ids: categories
                    .iter()
                    .map(|c| CategoryId::new(c.id.clone()))
                    .collect(),
                start_ms: self.start_date,
                end_ms: self.end_date,
                config,
            },
            categories,
        })
    }
}

#[derive(Deserialize)]
struct EventCategoryRow {
    event_id: String,
    id: String,
    name: String,
    slug: String,
}

/// The categories of each of `event_ids`, in one query.
async fn categories_of(
    db: &D1Database,
    event_ids: &[&str],
) -> Result<Vec<EventCategoryRow>, ApiError> {
    if event_ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = serde_json::to_string(event_ids).map_err(ApiError::internal)?;
    all(
        db,
        "SELECT ec.event_id, c.id, c.name, c.slug FROM event_categories ec \
         JOIN categories c ON c.id = ec.category_id \
         WHERE ec.event_id IN (SELECT value FROM json_each(?1)) ORDER BY c.name, c.id",
        &[text(&list)],
    )
    .await
}

async fn into_records(db: &D1Database, rows: Vec<EventRow>) -> Result<Vec<EventRecord>, ApiError> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let links = categories_of(db, &ids).await?;
    rows.into_iter()
        .map(|row| {
            let categories = links
                .iter()
                .filter(|l| l.event_id == row.id)
                .map(|l| CategoryRow {
                    id: l.id.clone(),
                    name: l.name.clone(),
                    slug: l.slug.clone(),
                })
                .collect();
            row.into_record(categories)
        })
        .collect()
}

/// The event and the role `user_id` holds on it, in one read.
pub async fn find_with_role(
    db: &D1Database,
    id: &str,
    user_id: Option<&str>,
) -> Result<Option<(EventRecord, Option<EventRole>)>, ApiError> {
    let row: Option<EventRow> = first(
        db,
        &format!(
            "SELECT {EVENT_COLUMNS}, \
             (SELECT role FROM event_roles r WHERE r.event_id = e.id AND r.user_id = ?2) AS my_role \
             {EVENT_FROM} WHERE e.id = ?1"
        ),
        &[text(id), opt_text(user_id)],
    )
    .await?;
    let Some(mut row) = row else {
        return Ok(None);
    };
    let role = row
        .my_role
        .take()
        .map(|r| EventRole::parse(&r).map_err(|_| corrupt("role", id)))
        .transpose()?;
    let mut records = into_records(db, vec![row]).await?;
    Ok(records.pop().map(|record| (record, role)))
}

/// When the event starts (unix ms), if the event exists.
pub async fn starts_at(db: &D1Database, event_id: &str) -> Result<Option<i64>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        start_date: i64,
    }
    let row: Option<Row> = first(
        db,
        "SELECT start_date FROM events WHERE id = ?1",
        &[text(event_id)],
    )
    .await?;
    Ok(row.map(|r| r.start_date))
}

#[derive(Deserialize)]
struct CountRow {
    n: i64,
}

/// One page of the search and the total number of matches, read in one batch so both come
/// from the same snapshot.
pub async fn search(
    db: &D1Database,
    search: &EventSearch,
    status: Option<EventStatus>,
    user_id: Option<&str>,
) -> Result<(Vec<EventRecord>, u64), ApiError> {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<JsValue> = Vec::new();
    fn bind(args: &mut Vec<JsValue>, value: JsValue) -> String {
        args.push(value);
        format!("?{}", args.len())
    }
    match (status, search.scope) {
        // A platform admin's queue (the caller checked who asks): any visibility.
        (Some(status), _) => {
            let p = bind(&mut args, text(status.as_str()));
            clauses.push(format!("e.status = {p}"));
        }
        (None, ListScope::Public) => {
            clauses.push("e.status = 'PUBLISHED' AND e.is_public = 1".into())
        }
        (None, ListScope::Mine) => {
            let user = user_id.ok_or(ApiError::Unauthenticated)?;
            let p = bind(&mut args, text(user));
            clauses.push(format!(
                "e.id IN (SELECT event_id FROM event_roles WHERE user_id = {p})"
            ));
        }
    }
    if let Some(words) = &search.text {
        let p = bind(&mut args, text(&words.fts_query()));
        clauses.push(format!(
            "e.seq IN (SELECT rowid FROM events_search WHERE events_search MATCH {p})"
        ));
    }
    if let Some(category) = &search.category {
        let p = bind(&mut args, text(category.as_str()));
        clauses.push(format!(
            "e.id IN (SELECT ec.event_id FROM event_categories ec \
             JOIN categories cat ON cat.id = ec.category_id WHERE cat.id = {p} OR cat.slug = {p})"
        ));
    }
    if let Some(from) = search.from_ms {
        let p = bind(&mut args, int(from));
        clauses.push(format!("e.end_date >= {p}"));
    }
    if let Some(to) = search.to_ms {
        let p = bind(&mut args, int(to));
        clauses.push(format!("e.start_date <= {p}"));
    }
    let filter = clauses.join(" AND ");
    let count_sql = format!("SELECT COUNT(*) AS n FROM events e WHERE {filter}");
    let count_args = args.clone();
    let limit = bind(&mut args, int(i64::from(search.pagination.limit())));
    let offset_value = i64::try_from(search.pagination.offset()).map_err(ApiError::internal)?;
    let offset = bind(&mut args, int(offset_value));
    let page_sql = format!(
        "SELECT {EVENT_COLUMNS} {EVENT_FROM} WHERE {filter} \
         ORDER BY e.start_date, e.id LIMIT {limit} OFFSET {offset}"
    );
    let results = db
        .batch(vec![
            stmt(db, &page_sql, &args)?,
            stmt(db, &count_sql, &count_args)?,
        ])
        .await?;
    let (Some(page), Some(total)) = (results.first(), results.get(1)) else {
        return Err(ApiError::internal("search batch returned too few results"));
    };
    let rows: Vec<EventRow> = page.results()?;
    let total = total
        .results::<CountRow>()?
        .first()
        .map_or(0, |c| c.n.max(0) as u64);
    Ok((into_records(db, rows).await?, total))
}

pub struct NewEventRow<'a> {
    pub id: &'a str,
    pub terms: &'a EventTerms,
    pub created_by: &'a str,
    pub revision: &'a str,
    pub now_ms: i64,
}

fn link_categories(
    db: &D1Database,
    event_id: &str,
    category_ids: &[CategoryId],
    guard: Option<&str>,
) -> Result<Option<worker::D1PreparedStatement>, ApiError> {
    if category_ids.is_empty() {
        return Ok(None);
    }
    let ids: Vec<&str> = category_ids.iter().map(CategoryId::as_str).collect();
    let list = serde_json::to_string(&ids).map_err(ApiError::internal)?;
    // D1 refuses unused bindings, so the guard's parameter is only bound when it is used.
    let mut args = vec![text(event_id), text(&list)];
    let guard_sql = match guard {
        Some(revision) => {
            args.push(text(revision));
            " AND EXISTS (SELECT 1 FROM events WHERE id = ?1 AND revision = ?3)"
        }
        None => "",
    };
    stmt(
        db,
        &format!(
            "INSERT INTO event_categories (event_id, category_id) \
             SELECT ?1, value FROM json_each(?2) WHERE 1{guard_sql}"
        ),
        &args,
    )
    .map(Some)
}

/// The event in DRAFT, its creator as its admin, and its categories: all or nothing.
pub async fn insert(db: &D1Database, event: &NewEventRow<'_>) -> Result<(), ApiError> {
    let t = event.terms;
    let mut statements = vec![
        stmt(
            db,
            "INSERT INTO events (id, name, description, location, thumbnail_url, start_date, \
             end_date, status, organizer_id, created_by, revision, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'DRAFT', ?8, ?9, ?10, ?11, ?11)",
            &[
                text(event.id),
                text(&t.name),
                text(&t.description),
                text(&t.location),
                opt_text(t.thumbnail_url.as_deref()),
                int(t.start_ms),
                int(t.end_ms),
                opt_text(t.organizer_id.as_ref().map(OrganizerId::as_str)),
                text(event.created_by),
                text(event.revision),
                int(event.now_ms),
            ],
        )?,
        stmt(
            db,
            "INSERT INTO event_roles (event_id, user_id, role, created_at, updated_at) \
             VALUES (?1, ?2, 'admin', ?3, ?3)",
            &[text(event.id), text(event.created_by), int(event.now_ms)],
        )?,
    ];
    statements.extend(link_categories(db, event.id, &t.category_ids, None)?);
    db.batch(statements).await?;
    Ok(())
}

/// A conditional write: `Ok(false)` when the event changed since `old_revision` was read.
pub struct Revision<'a> {
    pub event_id: &'a str,
    pub old: &'a str,
    pub new: &'a str,
    pub now_ms: i64,
}

/// New details (and, when `replace_categories`, the new category set).
pub async fn update_details(
    db: &D1Database,
    rev: &Revision<'_>,
    terms: &EventTerms,
    replace_categories: bool,
) -> Result<bool, ApiError> {
    let mut statements = vec![stmt(
        db,
        "UPDATE events SET name = ?4, description = ?5, location = ?6, thumbnail_url = ?7, \
         start_date = ?8, end_date = ?9, organizer_id = ?10, revision = ?3, updated_at = ?11 \
         WHERE id = ?1 AND revision = ?2 RETURNING id",
        &[
            text(rev.event_id),
            text(rev.old),
            text(rev.new),
            text(&terms.name),
            text(&terms.description),
            text(&terms.location),
            opt_text(terms.thumbnail_url.as_deref()),
            int(terms.start_ms),
            int(terms.end_ms),
            opt_text(terms.organizer_id.as_ref().map(OrganizerId::as_str)),
            int(rev.now_ms),
        ],
    )?];
    if replace_categories {
        statements.push(stmt(
            db,
            "DELETE FROM event_categories WHERE event_id = ?1 \
             AND EXISTS (SELECT 1 FROM events WHERE id = ?1 AND revision = ?2)",
            &[text(rev.event_id), text(rev.new)],
        )?);
        statements.extend(link_categories(
            db,
            rev.event_id,
            &terms.category_ids,
            Some(rev.new),
        )?);
    }
    let results = db.batch(statements).await?;
    Ok(returned_rows(results.first())? == 1)
}

/// New sale terms and the status they lead to.
pub async fn configure(
    db: &D1Database,
    rev: &Revision<'_>,
    status: EventStatus,
    config: &ConfigTerms,
) -> Result<bool, ApiError> {
    let statements = vec![
        stmt(
            db,
            "UPDATE events SET status = ?4, is_public = ?5, revision = ?3, updated_at = ?6 \
             WHERE id = ?1 AND revision = ?2 RETURNING id",
            &[
                text(rev.event_id),
                text(rev.old),
                text(rev.new),
                text(status.as_str()),
                flag(config.is_public),
                int(rev.now_ms),
            ],
        )?,
        stmt(
            db,
            "INSERT INTO event_config (event_id, ticket_sale_start, ticket_sale_end, is_free, \
             max_attendees, is_public, requires_approval, allow_wait_room, is_new_trending, \
             max_tickets_per_user, max_concurrent_checkouts, checkout_ttl_seconds, \
             admission_batch, waitroom_shards, refundable_until, created_at, updated_at) \
             SELECT ?1, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?17, ?16, ?15, ?15 \
             WHERE EXISTS (SELECT 1 FROM events WHERE id = ?1 AND revision = ?2) \
             ON CONFLICT (event_id) DO UPDATE SET ticket_sale_start = excluded.ticket_sale_start, \
             ticket_sale_end = excluded.ticket_sale_end, is_free = excluded.is_free, \
             max_attendees = excluded.max_attendees, is_public = excluded.is_public, \
             requires_approval = excluded.requires_approval, \
             allow_wait_room = excluded.allow_wait_room, \
             is_new_trending = excluded.is_new_trending, \
             max_tickets_per_user = excluded.max_tickets_per_user, \
             max_concurrent_checkouts = excluded.max_concurrent_checkouts, \
             checkout_ttl_seconds = excluded.checkout_ttl_seconds, \
             admission_batch = excluded.admission_batch, \
             waitroom_shards = excluded.waitroom_shards, \
             refundable_until = excluded.refundable_until, updated_at = excluded.updated_at",
            &[
                text(rev.event_id),
                text(rev.new),
                int(config.ticket_sale_start_ms),
                int(config.ticket_sale_end_ms),
                flag(config.is_free),
                opt_int(config.max_attendees.map(i64::from)),
                flag(config.is_public),
                flag(config.requires_approval),
                flag(config.allow_wait_room),
                flag(config.is_new_trending),
                opt_int(config.max_tickets_per_user.map(i64::from)),
                int(i64::from(config.waitroom.max_concurrent_checkouts)),
                int(i64::from(config.waitroom.checkout_ttl_seconds)),
                int(i64::from(config.waitroom.admission_batch)),
                int(rev.now_ms),
                opt_int(config.refundable_until_ms),
                int(i64::from(config.waitroom_shards.get())),
            ],
        )?,
    ];
    let results = db.batch(statements).await?;
    Ok(returned_rows(results.first())? == 1)
}

/// A lifecycle move (approve, publish, cancel); publishing marks the event as ever published.
pub async fn set_status(
    db: &D1Database,
    rev: &Revision<'_>,
    status: EventStatus,
) -> Result<bool, ApiError> {
    let published = status == EventStatus::Published;
    let updated: Option<serde_json::Value> = first(
        db,
        "UPDATE events SET status = ?4, ever_published = MAX(ever_published, ?5), \
         revision = ?3, updated_at = ?6 WHERE id = ?1 AND revision = ?2 RETURNING id",
        &[
            text(rev.event_id),
            text(rev.old),
            text(rev.new),
            text(status.as_str()),
            flag(published),
            int(rev.now_ms),
        ],
    )
    .await?;
    Ok(updated.is_some())
}

// ---------------------------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Deserialize)]
pub struct RoleRow {
    pub user_id: String,
    pub role: String,
    pub email: String,
}

pub async fn list_roles(db: &D1Database, event_id: &str) -> Result<Vec<RoleRow>, ApiError> {
    all(
        db,
        "SELECT r.user_id, r.role, u.email FROM event_roles r JOIN users u ON u.id = r.user_id \
         WHERE r.event_id = ?1 \
         ORDER BY CASE r.role WHEN 'admin' THEN 0 WHEN 'editor' THEN 1 ELSE 2 END, u.email",
        &[text(event_id)],
    )
    .await
}

pub async fn find_role(
    db: &D1Database,
    event_id: &str,
    user_id: &str,
) -> Result<Option<RoleRow>, ApiError> {
    first(
        db,
        "SELECT r.user_id, r.role, u.email FROM event_roles r JOIN users u ON u.id = r.user_id \
         WHERE r.event_id = ?1 AND r.user_id = ?2",
        &[text(event_id), text(user_id)],
    )
    .await
}

/// The caller's role on the event as stored (`None` without one): the cheap read for
/// authorizing access to something that belongs to the event, such as a ticket.
pub async fn role_of(
    db: &D1Database,
    event_id: &str,
    user_id: &str,
) -> Result<Option<String>, ApiError> {
    #[derive(Deserialize)]
    struct Row {
        role: String,
    }
    let row: Option<Row> = first(
        db,
        "SELECT role FROM event_roles WHERE event_id = ?1 AND user_id = ?2",
        &[text(event_id), text(user_id)],
    )
    .await?;
    Ok(row.map(|r| r.role))
}

pub async fn count_admins(db: &D1Database, event_id: &str) -> Result<usize, ApiError> {
    let row: Option<CountRow> = first(
        db,
        "SELECT COUNT(*) AS n FROM event_roles WHERE event_id = ?1 AND role = 'admin'",
        &[text(event_id)],
    )
    .await?;
    Ok(row.map_or(0, |r| r.n.max(0) as usize))
}

/// The SQL twin of `access::check_role_change`: true when the row is the event's only admin.
/// Repeated in the statements so a concurrent demotion cannot leave the event without one.
const IS_LAST_ADMIN: &str = "event_roles.role = 'admin' AND \
     (SELECT COUNT(*) FROM event_roles a WHERE a.event_id = ?1 AND a.role = 'admin') <= 1";

/// Grants or changes a role; `Ok(false)` when it would have demoted the last admin.
pub async fn put_role(
    db: &D1Database,
    event_id: &str,
    user_id: &str,
    role: EventRole,
    now_ms: i64,
) -> Result<bool, ApiError> {
    let changed = run(
        db,
        &format!(
            "INSERT INTO event_roles (event_id, user_id, role, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?4) \
             ON CONFLICT (event_id, user_id) DO UPDATE SET role = excluded.role, \
             updated_at = excluded.updated_at \
             WHERE excluded.role = 'admin' OR NOT ({IS_LAST_ADMIN})"
        ),
        &[
            text(event_id),
            text(user_id),
            text(role.as_str()),
            int(now_ms),
        ],
    )
    .await?;
    Ok(changed == 1)
}

/// Removes a role; `Ok(false)` when there was none or it is the last admin's.
pub async fn delete_role(db: &D1Database, event_id: &str, user_id: &str) -> Result<bool, ApiError> {
    let changed = run(
        db,
        &format!(
            "DELETE FROM event_roles WHERE event_id = ?1 AND user_id = ?2 AND NOT ({IS_LAST_ADMIN})"
        ),
        &[text(event_id), text(user_id)],
    )
    .await?;
    Ok(changed == 1)
}
