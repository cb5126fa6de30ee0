//! A ticket as the API shows it (`ticket` in the contract), shared by the tickets endpoints and
//! `order.tickets`, so the order view (host-compiled, in `checkout::wire`) can carry it.

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    pub id: String,
    /// The short code printed under the QR and typed at the door: `7KQ4-M2XD-9B0F`.
    #[schema(example = "7KQ4-M2XD-9B0F")]
    pub code: String,
    pub order_id: String,
    pub event_id: String,
    pub ticket_class_id: String,
    pub ticket_class_name: String,
    /// `VALID`, `CHECKED_IN` or `VOID`.
    #[schema(example = "VALID")]
    pub status: String,
    pub checked_in_at: Option<String>,
    pub gate: Option<String>,
    /// Signed by the platform (Ed25519, see `GET /api/tickets/public-key`):
    /// `TB1.<kid>.<eventId>.<ticketId>.<ticketClassId>.<signature>`, base64url parts.
    pub qr: String,
}
