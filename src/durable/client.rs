//! `EventHubClient`: how the Worker's handlers talk to an event's object, one typed method per
//! protocol operation. Refusals come back as [`HubCallError::Rule`] with the API's status and
//! code; anything else (the object unreachable or failing) is [`HubCallError::Transport`].
//!
//! Trust boundary: the object believes the user ids it is given. Every caller must pass the
//! id of the user the Worker authenticated (from a verified access token), never one taken from
//! a request body or path; `forward_websocket` in particular must only be called after the
//! Worker verified the `?token=` of the socket request.

use std::cell::OnceCell;

use serde::de::DeserializeOwned;
use wasm_bindgen::JsValue;
use worker::{Env, Headers, Method, Request, RequestInit, Response, Stub};

pub use super::protocol::EventSetup;
use super::protocol::{
    Ack, ClassReply, ClassesReply, HoldReply, HubErrorBody, HubRequest, HubStatus, SessionReply,
    SessionView, HUB_ORIGIN, REQUEST_ID_HEADER, RPC_PATH, USER_HEADER, WS_PATH,
};
use super::shard_protocol::{
    shard_object_name, LeaveOutcome, LeaveReply, ShardRequest, ShardSessionReply,
};
use crate::domain::admission::place::{location_hint, ArrivalStamp, ShardIndex};
use crate::domain::admission::protocol::ToShard;
use crate::domain::admission::shard::ShardSettings;
use crate::domain::admission::snapshot::ShardSnapshot;
use crate::domain::ledger::{
    ClassAvailability, ClassStatus, ConfirmOutcome, Hold, ReleaseOutcome, ReserveRequest,
    ReturnOutcome, TicketClassSpec,
};
use crate::domain::waitroom::CheckoutOutcome;
use crate::error::ApiError;

/// The binding in wrangler.toml.
const BINDING: &str = "EVENT_HUB";

/// Why a call to the object did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubCallError {
    /// The object refused by a rule: answer the client with this status and code.
    #[error("{code} ({status}): {detail}")]
    Rule {
        status: u16,
        code: String,
        detail: String,
    },
    /// The object could not be reached or failed; the detail is for the log only.
    #[error("event hub unavailable: {0}")]
    Transport(String),
}

impl From<HubCallError> for ApiError {
    fn from(error: HubCallError) -> Self {
        match error {
            // The code decides the status, through the crate's one table.
            HubCallError::Rule { code, detail, .. } => ApiError::rule_by_code(&code, detail),
            HubCallError::Transport(detail) => ApiError::Internal(detail),
        }
    }
}

fn transport(context: &str, error: impl std::fmt::Display) -> HubCallError {
    HubCallError::Transport(format!("{context}: {error}"))
}

/// A typed stub of one event's `EventHub`.
pub struct EventHubClient {
    stub: LazyStub,
    /// Sent as [`REQUEST_ID_HEADER`] so the object's log lines name the request.
    request_id: Option<String>,
}

/// An object's stub, made on first use: a waitroom poll answered from the edge's caches calls
/// no object, and making the stubs it might need (binding, id from name, stub, location hint)
/// was a sixth of such a poll's time.
struct LazyStub {
    env: Env,
    binding: &'static str,
    name: String,
    /// For a queue shard: its index, which picks its location hint.
    shard: Option<ShardIndex>,
    stub: OnceCell<Stub>,
}

impl LazyStub {
    fn new(env: &Env, binding: &'static str, name: String, shard: Option<ShardIndex>) -> Self {
        LazyStub {
            env: env.clone(),
            binding,
            name,
            shard,
            stub: OnceCell::new(),
        }
    }

    fn get(&self) -> worker::Result<&Stub> {
        if let Some(stub) = self.stub.get() {
            return Ok(stub);
        }
        let namespace = self.env.durable_object(self.binding)?;
        let id = namespace.id_from_name(&self.name)?;
        let hint = match self.shard {
            Some(shard) => {
                let hints = self
                    .env
                    .var(LOCATION_HINTS_VAR)
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                location_hint(&hints, shard).map(str::to_owned)
            }
            None => None,
        };
        let stub = match hint {
            Some(hint) => id.get_stub_with_location_hint(&hint)?,
            None => id.get_stub()?,
        };
        Ok(self.stub.get_or_init(|| stub))
    }

    fn for_call(&self, op: &str) -> Result<&Stub, HubCallError> {
        self.get().map_err(|e| transport(op, e))
    }
}

impl EventHubClient {
    /// The object of `event_id` (`EVENT_HUB.idFromName(eventId)`), its stub made on first use.
    pub fn new(env: &Env, event_id: &str) -> worker::Result<Self> {
        Ok(EventHubClient {
            stub: LazyStub::new(env, BINDING, event_id.to_owned(), None),
            request_id: None,
        })
    }

    /// Tags every call with the request id of `trace`, if it has one.
    pub fn traced(mut self, trace: &crate::log::Trace) -> Self {
        self.request_id = trace.request_id().map(str::to_owned);
        self
    }

    async fn call<T: DeserializeOwned>(&self, request: &HubRequest) -> Result<T, HubCallError> {
        let body = serde_json::to_string(request).map_err(|e| transport("encode", e))?;
        let stub = self.stub.for_call(request.op())?;
        post(stub, self.request_id.as_deref(), &body, request.op()).await
    }

    /// Idempotent: call on configure, approve, publish, cancel and every patch of the event.
    pub async fn sync_event(&self, setup: &EventSetup) -> Result<(), HubCallError> {
        let _: Ack = self.call(&HubRequest::SyncEvent(setup.clone())).await?;
        Ok(())
    }

    pub async fn upsert_class(
        &self,
        spec: &TicketClassSpec,
    ) -> Result<ClassAvailability, HubCallError> {
        let reply: ClassReply = self.call(&HubRequest::UpsertClass(spec.clone())).await?;
        Ok(reply.ticket_class)
    }

    /// A total below `reserved + sold` is 409 `TOTAL_BELOW_COMMITTED`.
    pub async fn update_class(
        &self,
        id: &str,
        total: Option<i64>,
        status: Option<ClassStatus>,
    ) -> Result<ClassAvailability, HubCallError> {
        let reply: ClassReply = self
            .call(&HubRequest::UpdateClass {
                ticket_class_id: id.to_owned(),
                total,
                status,
            })
            .await?;
        Ok(reply.ticket_class)
    }

    pub async fn availability(&self) -> Result<Vec<ClassAvailability>, HubCallError> {
        let reply: ClassesReply = self.call(&HubRequest::Availability).await?;
        Ok(reply.items)
    }

    /// 409 `INSUFFICIENT_INVENTORY` / `SALE_NOT_OPEN`, 422 `PURCHASE_LIMIT_EXCEEDED`; a repeat
    /// with the same order id returns the first hold.
    pub async fn reserve(&self, req: &ReserveRequest) -> Result<Hold, HubCallError> {
        let reply: HoldReply = self.call(&HubRequest::Reserve(req.clone())).await?;
        Ok(reply.hold)
    }

    pub async fn confirm(&self, order_id: &str) -> Result<ConfirmOutcome, HubCallError> {
        self.call(&HubRequest::Confirm {
            order_id: order_id.to_owned(),
        })
        .await
    }

    pub async fn release(&self, order_id: &str) -> Result<ReleaseOutcome, HubCallError> {
        self.call(&HubRequest::Release {
            order_id: order_id.to_owned(),
        })
        .await
    }

    /// Puts a refunded order's sold tickets back on sale; a repeat answers `AlreadyReturned`.
    pub async fn return_sold(&self, order_id: &str) -> Result<ReturnOutcome, HubCallError> {
        self.call(&HubRequest::ReturnSold {
            order_id: order_id.to_owned(),
        })
        .await
    }

    /// The caller's session (the API's `waitroomSession`, with `checkoutToken` when ADMITTED).
    /// Idempotent per user. `user_id` must be the authenticated user.
    pub async fn join(&self, user_id: &str) -> Result<SessionView, HubCallError> {
        let reply: SessionReply = self
            .call(&HubRequest::Join {
                user_id: user_id.to_owned(),
            })
            .await?;
        reply
            .waitroom_session
            .ok_or_else(|| HubCallError::Transport("join answered without a session".into()))
    }

    /// The caller's latest session, if any; also counts as "seen" for the idle skip.
    pub async fn session(&self, user_id: &str) -> Result<Option<SessionView>, HubCallError> {
        let reply: SessionReply = self
            .call(&HubRequest::Session {
                user_id: user_id.to_owned(),
            })
            .await?;
        Ok(reply.waitroom_session)
    }

    pub async fn leave(&self, user_id: &str) -> Result<(), HubCallError> {
        let _: Ack = self
            .call(&HubRequest::Leave {
                user_id: user_id.to_owned(),
            })
            .await?;
        Ok(())
    }

    /// [`Self::reserve`] for an order placed with a waitroom checkout token, after the Worker
    /// verified the token (`session_id` is its `sid`, `req.user_id` its `sub`): the object binds
    /// the order to the checkout and holds the tickets atomically. 403
    /// `CHECKOUT_TOKEN_INVALID`, with nothing held, when the checkout is not (or no longer) the
    /// user's to use; the stock and limit refusals of [`Self::reserve`] leave it unbound.
    pub async fn reserve_for_checkout(
        &self,
        session_id: &str,
        req: &ReserveRequest,
    ) -> Result<Hold, HubCallError> {
        let reply: HoldReply = self
            .call(&HubRequest::ReserveForCheckout {
                session_id: session_id.to_owned(),
                reserve: req.clone(),
            })
            .await?;
        Ok(reply.hold)
    }

    /// Gives an order's checkout back to its buyer, still ADMITTED with its deadline: for an
    /// order whose payment was never created. Idempotent, and a no-op for unbound orders.
    pub async fn unbind_order(&self, order_id: &str) -> Result<(), HubCallError> {
        let _: Ack = self
            .call(&HubRequest::UnbindOrder {
                order_id: order_id.to_owned(),
            })
            .await?;
        Ok(())
    }

    /// Frees the order's checkout slot. Idempotent, and a no-op for orders without one.
    pub async fn checkout_resolved(
        &self,
        order_id: &str,
        outcome: CheckoutOutcome,
    ) -> Result<(), HubCallError> {
        let _: Ack = self
            .call(&HubRequest::CheckoutResolved {
                order_id: order_id.to_owned(),
                outcome,
            })
            .await?;
        Ok(())
    }

    pub async fn status(&self) -> Result<HubStatus, HubCallError> {
        self.call(&HubRequest::Status).await
    }

    /// Hands a WebSocket upgrade to the object, which accepts it (hibernating) for `user_id`'s
    /// latest session and answers 101. The Worker must have authenticated `user_id` itself (the
    /// `?token=` access token): the object trusts the id, and a socket only ever receives that
    /// user's own position and checkout token. 404 when the user has not joined.
    pub async fn forward_websocket(&self, req: Request, user_id: &str) -> worker::Result<Response> {
        forward_socket(self.stub.get()?, req, user_id).await
    }

    /// A shard's first fan after a lull wakes an idle admission.
    pub async fn wake_admission(&self) -> Result<(), HubCallError> {
        let _: Ack = self.call(&HubRequest::WakeAdmission).await?;
        Ok(())
    }

    /// A sharded waitroom's fan gives an unused checkout back (their shard said the slot is
    /// the hub's). 409 `CHECKOUT_IN_PROGRESS` while an order holds it.
    pub async fn leave_checkout(&self, user_id: &str) -> Result<(), HubCallError> {
        let _: Ack = self
            .call(&HubRequest::LeaveCheckout {
                user_id: user_id.to_owned(),
            })
            .await?;
        Ok(())
    }
}

/// One `POST /rpc` to an object, answered by [`decode`].
async fn post<T: DeserializeOwned>(
    stub: &Stub,
    request_id: Option<&str>,
    body: &str,
    op: &str,
) -> Result<T, HubCallError> {
    let headers = Headers::new();
    headers
        .set("Content-Type", "application/json")
        .map_err(|e| transport("headers", e))?;
    if let Some(id) = request_id {
        headers
            .set(REQUEST_ID_HEADER, id)
            .map_err(|e| transport("headers", e))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(JsValue::from_str(body)));
    let req = Request::new_with_init(&format!("{HUB_ORIGIN}{RPC_PATH}"), &init)
        .map_err(|e| transport("request", e))?;
    let mut res = stub
        .fetch_with_request(req)
        .await
        .map_err(|e| transport(op, e))?;
    let status = res.status_code();
    let text = res.text().await.map_err(|e| transport(op, e))?;
    decode(status, &text)
}

/// Hands a WebSocket upgrade to an object for `user_id` (authenticated by the Worker).
async fn forward_socket(stub: &Stub, req: Request, user_id: &str) -> worker::Result<Response> {
    let upgrade = req.headers().get("Upgrade")?;
    if !upgrade.is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
        return Response::error("expected a WebSocket upgrade", 426);
    }
    let headers = Headers::new();
    headers.set("Upgrade", "websocket")?;
    headers.set(USER_HEADER, user_id)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(headers);
    let forwarded = Request::new_with_init(&format!("{HUB_ORIGIN}{WS_PATH}"), &init)?;
    stub.fetch_with_request(forwarded).await
}

/// The binding of the queue shards in wrangler.toml.
const SHARD_BINDING: &str = "QUEUE_SHARD";
/// Where new shards are placed (see `domain::admission::place::location_hint`).
const LOCATION_HINTS_VAR: &str = "QUEUE_SHARD_LOCATION_HINTS";

/// A typed stub of one queue shard of an event (`QUEUE_SHARD.idFromName("{eventId}:{shard}")`).
/// The same trust boundary as [`EventHubClient`]: user ids are the authenticated user's.
pub struct QueueShardClient {
    stub: LazyStub,
    request_id: Option<String>,
}

impl QueueShardClient {
    /// The stub of shard `shard`, created (by whichever call comes first: a fan's join or
    /// the hub's settings) with the location hint `QUEUE_SHARD_LOCATION_HINTS` gives it; made
    /// on first use.
    pub fn new(env: &Env, event_id: &str, shard: ShardIndex) -> worker::Result<Self> {
        Ok(QueueShardClient {
            stub: LazyStub::new(
                env,
                SHARD_BINDING,
                shard_object_name(event_id, shard),
                Some(shard),
            ),
            request_id: None,
        })
    }

    pub fn traced(mut self, trace: &crate::log::Trace) -> Self {
        self.request_id = trace.request_id().map(str::to_owned);
        self
    }

    async fn call<T: DeserializeOwned>(&self, request: &ShardRequest) -> Result<T, HubCallError> {
        let body = serde_json::to_string(request).map_err(|e| transport("encode", e))?;
        let stub = self.stub.for_call(request.op())?;
        post(stub, self.request_id.as_deref(), &body, request.op()).await
    }

    /// Joins the fan stamped at the edge (idempotent per user). `settings` serve a shard that
    /// has not heard from the hub yet.
    pub async fn join(
        &self,
        user_id: &str,
        session_id: &str,
        stamp: ArrivalStamp,
        settings: &ShardSettings,
    ) -> Result<ShardSessionReply, HubCallError> {
        let reply: ShardSessionReply = self
            .call(&ShardRequest::Join {
                user_id: user_id.to_owned(),
                session_id: session_id.to_owned(),
                stamp,
                settings: settings.clone(),
            })
            .await?;
        if reply.waitroom_session.is_none() {
            return Err(HubCallError::Transport(
                "join answered without a session".into(),
            ));
        }
        Ok(reply)
    }

    /// The fan's session (a sighting) and their record.
    pub async fn session(&self, user_id: &str) -> Result<ShardSessionReply, HubCallError> {
        self.call(&ShardRequest::Session {
            user_id: user_id.to_owned(),
        })
        .await
    }

    /// What queued fans' polls are answered from for a second.
    pub async fn snapshot(&self) -> Result<ShardSnapshot, HubCallError> {
        self.call(&ShardRequest::Snapshot).await
    }

    pub async fn leave(&self, user_id: &str) -> Result<LeaveOutcome, HubCallError> {
        let reply: LeaveReply = self
            .call(&ShardRequest::Leave {
                user_id: user_id.to_owned(),
            })
            .await?;
        Ok(reply.outcome)
    }

    /// One admission message from the hub; the reply's shape depends on the message.
    pub async fn admission<T: DeserializeOwned>(
        &self,
        message: &ToShard,
    ) -> Result<T, HubCallError> {
        self.call(&ShardRequest::Admission {
            message: message.clone(),
        })
        .await
    }

    pub async fn forward_websocket(&self, req: Request, user_id: &str) -> worker::Result<Response> {
        forward_socket(self.stub.get()?, req, user_id).await
    }
}

/// A reply body by status: 2xx is the operation's reply, anything else a [`HubErrorBody`].
fn decode<T: DeserializeOwned>(status: u16, text: &str) -> Result<T, HubCallError> {
    if (200..300).contains(&status) {
        return serde_json::from_str(text).map_err(|e| transport("decode reply", e));
    }
    match serde_json::from_str::<HubErrorBody>(text) {
        Ok(body) if body.status < 500 => Err(HubCallError::Rule {
            status: body.status,
            code: body.code,
            detail: body.detail,
        }),
        Ok(body) => Err(HubCallError::Transport(format!(
            "object answered {} {}",
            body.status, body.code
        ))),
        Err(_) => Err(HubCallError::Transport(format!("object answered {status}"))),
    }
}
