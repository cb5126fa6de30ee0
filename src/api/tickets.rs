//! Tickets and the door: a buyer's tickets with their signed `qr` and its QR image, the public
//! key door apps verify with, check-in at an event's door (its `EventDoor` object decides) and
//! the door's counts per class.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use worker::{Headers, Response};

use crate::domain::access::{Action, Actor, EventOp, EventRole};
use crate::domain::ids::UserId;
use crate::domain::tickets::door::Gate;
use crate::domain::tickets::qr::MAX_QR_LEN;
use crate::domain::tickets::svg::qr_svg;
use crate::domain::tickets::TicketCode;
use crate::domain::validation::format_rfc3339;
use crate::durable::door::EventDoorClient;
use crate::error::{ApiError, FieldProblem, Problem};
use crate::http::{json_response, ApiResult, RequestContext};
use crate::store::d1;
use crate::store::tickets::{self as store, TicketRow};

use super::events::{load_event, EventAccess};

pub use crate::domain::tickets::Ticket;

impl Ticket {
    pub fn from_row(row: &TicketRow) -> Self {
        Ticket {
            id: row.id.clone(),
            code: row.code.clone(),
            order_id: row.order_id.clone(),
            event_id: row.event_id.clone(),
            ticket_class_id: row.ticket_class_id.clone(),
            ticket_class_name: row.ticket_class_name.clone(),
            status: row.status.clone(),
            checked_in_at: row.checked_in_at.map(format_rfc3339),
            gate: row.gate.clone(),
            qr: row.qr.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TicketEnvelope {
    pub ticket: Ticket,
}

#[derive(Serialize, ToSchema)]
pub struct TicketList {
    pub items: Vec<Ticket>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketPublicKey {
    #[schema(example = "Ed25519")]
    pub alg: String,
    /// The key id every `qr` names in its second part.
    pub kid: String,
    /// The raw 32-byte Ed25519 public key, base64url without padding.
    pub public_key: String,
}

/// `POST /api/events/{id}/check-ins`: the scanned `qr`, or the `code` typed at the door.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckInRequest {
    pub qr: Option<String>,
    #[schema(example = "7KQ4-M2XD-9B0F")]
    pub code: Option<String>,
    /// Where the ticket was presented (at most 64 characters).
    #[schema(example = "North gate 2")]
    pub gate: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClassCheckInStats {
    pub ticket_class_id: String,
    pub name: String,
    /// Tickets issued and not void.
    pub sold: i64,
    pub checked_in: i64,
}

#[derive(Serialize, ToSchema)]
pub struct CheckInStats {
    pub items: Vec<ClassCheckInStats>,
}

fn ticket_invalid(detail: &str) -> ApiError {
    ApiError::rule(422, "TICKET_INVALID", detail)
}

/// The tickets of COMPLETED orders, by order id (for `order.tickets`).
pub(super) async fn of_orders(
    db: &worker::D1Database,
    completed_order_ids: &[String],
) -> Result<HashMap<String, Vec<Ticket>>, ApiError> {
    let mut by_order: HashMap<String, Vec<Ticket>> = HashMap::new();
    if completed_order_ids.is_empty() {
        return Ok(by_order);
    }
    for row in store::of_orders(db, completed_order_ids).await? {
        by_order
            .entry(row.order_id.clone())
            .or_default()
            .push(Ticket::from_row(&row));
    }
    Ok(by_order)
}

async fn role_on_event(
    db: &worker::D1Database,
    event_id: &str,
    user_id: &str,
) -> Result<Option<EventRole>, ApiError> {
    // A stored role that no longer parses grants nothing.
    Ok(crate::store::events::role_of(db, event_id, user_id)
        .await?
        .and_then(|role| EventRole::parse(&role).ok()))
}

/// A ticket the caller may see: its buyer, anyone with a role on its event, platform admins.
async fn visible_ticket(
    rc: &RequestContext,
    db: &worker::D1Database,
) -> Result<TicketRow, ApiError> {
    let actor = rc.actor()?;
    let Actor::User { id: me, .. } = &actor else {
        return Err(ApiError::Unauthenticated);
    };
    let ticket = store::find(db, rc.param("id")?)
        .await?
        .ok_or(ApiError::NotFound)?;
    let role = role_on_event(db, &ticket.event_id, me.as_str()).await?;
    rc.permit(
        &actor,
        role,
        &Action::ReadTicket {
            owner: UserId::new(ticket.user_id.clone()),
        },
    )?;
    Ok(ticket)
}

#[utoipa::path(get, operation_id = "list_my_tickets", path = "/api/tickets", tag = "tickets", security(("bearer" = [])),
    responses((status = 200, description = "The caller's tickets, newest first", body = TicketList),
              (status = 401, body = Problem)))]
pub async fn list_mine(rc: &mut RequestContext) -> ApiResult {
    let (me, _) = rc.require_user()?;
    let db = d1::db(&rc.env)?;
    let items = store::list_by_user(&db, me.as_str())
        .await?
        .iter()
        .map(Ticket::from_row)
        .collect();
    json_response(200, &TicketList { items })
}

#[utoipa::path(get, operation_id = "get_ticket", path = "/api/tickets/{id}", tag = "tickets", security(("bearer" = [])),
    params(("id" = String, Path, description = "Ticket id")),
    responses((status = 200, body = TicketEnvelope), (status = 401, body = Problem),
              (status = 404, description = "Unknown, or neither the caller's nor on an event where they hold a role", body = Problem)))]
pub async fn get(rc: &mut RequestContext) -> ApiResult {
    let db = d1::db(&rc.env)?;
    let ticket = visible_ticket(rc, &db).await?;
    json_response(
        200,
        &TicketEnvelope {
            ticket: Ticket::from_row(&ticket),
        },
    )
}

#[utoipa::path(get, operation_id = "get_ticket_qr_svg", path = "/api/tickets/{id}/qr.svg", tag = "tickets", security(("bearer" = [])),
    params(("id" = String, Path, description = "Ticket id")),
    responses((status = 200, description = "The QR code of the ticket's `qr`", content_type = "image/svg+xml", body = String),
              (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn qr_image(rc: &mut RequestContext) -> ApiResult {
    let db = d1::db(&rc.env)?;
    let ticket = visible_ticket(rc, &db).await?;
    let svg = qr_svg(&ticket.qr).map_err(|e| ApiError::internal(format!("qr code: {e}")))?;
    let headers = Headers::new();
    headers.set("Content-Type", "image/svg+xml")?;
    // A ticket is a credential: never kept by shared caches.
    headers.set("Cache-Control", "private, no-store")?;
    Ok(Response::ok(svg)?.with_headers(headers))
}

#[utoipa::path(get, operation_id = "get_ticket_public_key", path = "/api/tickets/public-key", tag = "tickets",
    responses((status = 200, description = "The key every ticket's `qr` is signed with", body = TicketPublicKey)))]
pub async fn public_key(rc: &mut RequestContext) -> ApiResult {
    let signer = rc
        .settings
        .ticket_signer()
        .ok_or_else(|| ApiError::Misconfigured("TICKET_SIGNING_KEY is not usable".into()))?;
    let verifier = signer.verifier();
    let mut response = json_response(
        200,
        &TicketPublicKey {
            alg: "Ed25519".into(),
            kid: verifier.kid().into(),
            public_key: verifier.public_key_base64url(),
        },
    )?;
    response
        .headers_mut()
        .set("Cache-Control", "public, max-age=300")?;
    Ok(response)
}

/// What was presented at the door, parsed.
enum Presented {
    Qr(String),
    Code(TicketCode),
}

fn parse_check_in(body: CheckInRequest) -> Result<(Presented, Option<Gate>), ApiError> {
    let mut problems = Vec::new();
    let gate = Gate::parse(body.gate.as_deref()).unwrap_or_else(|message| {
        problems.push(FieldProblem {
            field: "gate".into(),
            message: message.into(),
        });
        None
    });
    let presented = match (body.qr, body.code) {
        (Some(qr), None) => Some(Presented::Qr(qr)),
        (None, Some(code)) => match TicketCode::parse(&code) {
            Ok(code) => Some(Presented::Code(code)),
            // A well-formed request whose code names no ticket: the door's answer.
            Err(_) => return Err(ticket_invalid("That is not a ticket code.")),
        },
        (Some(_), Some(_)) => {
            problems.push(FieldProblem {
                field: "code".into(),
                message: "send qr or code, not both".into(),
            });
            None
        }
        (None, None) => {
            problems.push(FieldProblem {
                field: "qr".into(),
                message: "qr or code is required".into(),
            });
            None
        }
    };
    match presented {
        Some(presented) if problems.is_empty() => Ok((presented, gate)),
        _ => Err(ApiError::Validation(problems)),
    }
}

#[utoipa::path(post, operation_id = "check_in_ticket", path = "/api/events/{id}/check-ins", tag = "tickets", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    request_body = CheckInRequest,
    responses(
        (status = 200, description = "Let in: the ticket, now CHECKED_IN", body = TicketEnvelope),
        (status = 400, description = "VALIDATION_FAILED: neither qr nor code, both, or a bad gate", body = Problem),
        (status = 401, body = Problem),
        (status = 403, description = "Event admins, editors and staff only", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "ALREADY_CHECKED_IN (with `checkedInAt` and `gate` of the first check-in) or TICKET_VOID", body = Problem),
        (status = 422, description = "TICKET_INVALID: bad signature, malformed, unknown code or another event's ticket", body = Problem)))]
pub async fn check_in(rc: &mut RequestContext) -> ApiResult {
    let db = d1::db(&rc.env)?;
    let EventAccess { event, .. } = load_event(rc, &db, EventOp::CheckIn).await?;
    let body: CheckInRequest = rc.json().await?;
    let (presented, gate) = parse_check_in(body)?;
    let qr = match presented {
        Presented::Qr(qr) if qr.len() > MAX_QR_LEN => return Err(ticket_invalid("Not a ticket.")),
        Presented::Qr(qr) => qr,
        Presented::Code(code) => {
            let ticket = store::find_by_code(&db, code.as_str())
                .await?
                .filter(|t| t.event_id == event.id.as_str())
                .ok_or_else(|| ticket_invalid("No ticket of this event has that code."))?;
            ticket.qr
        }
    };
    let door = EventDoorClient::new(&rc.env, event.id.as_str())?;
    let admitted = door.check_in(&qr, gate.as_ref(), rc.now_ms).await?;
    rc.annotate("ticketId", admitted.ticket_id.clone());
    let row = store::find(&db, &admitted.ticket_id)
        .await?
        .ok_or_else(|| ApiError::internal("a signed ticket has no D1 row"))?;
    let mut ticket = Ticket::from_row(&row);
    // The door is the truth; the D1 row catches up through the domain-events queue.
    ticket.status = admitted.status;
    ticket.checked_in_at = admitted.checked_in_at.map(format_rfc3339);
    ticket.gate = admitted.gate;
    json_response(200, &TicketEnvelope { ticket })
}

#[utoipa::path(get, operation_id = "check_in_stats", path = "/api/events/{id}/check-ins/stats", tag = "tickets", security(("bearer" = [])),
    params(("id" = String, Path, description = "Event id")),
    responses((status = 200, description = "Per ticket class: tickets sold (issued, not void) and checked in", body = CheckInStats),
              (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn check_in_stats(rc: &mut RequestContext) -> ApiResult {
    let db = d1::db(&rc.env)?;
    let EventAccess { event, .. } = load_event(rc, &db, EventOp::ReadCheckInStats).await?;
    let sold = store::sold_by_class(&db, event.id.as_str()).await?;
    let door = EventDoorClient::new(&rc.env, event.id.as_str())?;
    let checked_in: HashMap<String, i64> = door
        .stats()
        .await?
        .into_iter()
        .map(|c| (c.ticket_class_id, c.checked_in))
        .collect();
    let items = sold
        .into_iter()
        .map(|c| ClassCheckInStats {
            checked_in: checked_in.get(&c.ticket_class_id).copied().unwrap_or(0),
            ticket_class_id: c.ticket_class_id,
            name: c.name,
            sold: c.sold,
        })
        .collect();
    json_response(200, &CheckInStats { items })
}
