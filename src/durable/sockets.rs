//! The waitroom's hibernating WebSockets: accepting a fan's socket (tagged with the user so
//! pushes and presence checks find it without waking every socket, within the fan's cap), and
//! sending pushes.
//!
//! workers-rs's `State` socket helpers unwrap the runtime's answers; these call the raw
//! `DurableObjectState` instead so that a refusal is an error, not a panic.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use wasm_bindgen::JsValue;
use worker::worker_sys::DurableObjectState;
use worker::{Delay, SqlStorage, WebSocket, WebSocketIncomingMessage};

use super::commands::{queued_views, Push};
use super::hub_log::hub_log;
use super::protocol::{user_tag, SocketAttachment, SocketPush};
use super::sql_waitroom::SqlWaitroomStore;
use super::txn::js_error_text;
use crate::domain::socket_rules::{
    self, replaced_by_new_socket, SocketMessage, SocketVerdict, SOCKET_REPLACED_CLOSE_CODE,
    SOCKET_REPLACED_REASON,
};

/// Hands the socket to the runtime (hibernatable) and records whose it is, first closing the
/// fan's oldest sockets beyond the cap (`domain::socket_rules::replaced_by_new_socket`).
pub fn accept(
    state: &DurableObjectState,
    server: &WebSocket,
    attachment: &SocketAttachment,
) -> Result<(), String> {
    let open: Vec<(WebSocket, SocketAttachment)> = of_user(state, &attachment.user_id)
        .into_iter()
        .filter(is_open)
        .filter_map(|ws| self::attachment(&ws).map(|a| (ws, a)))
        .collect();
    let meters: Vec<_> = open.iter().map(|(_, a)| a.meter).collect();
    for index in replaced_by_new_socket(&meters) {
        if let Some((ws, _)) = open.get(index) {
            // A socket that closed meanwhile refuses; it is gone either way.
            let _ = ws.close(
                Some(SOCKET_REPLACED_CLOSE_CODE),
                Some(SOCKET_REPLACED_REASON),
            );
        }
    }
    state
        .accept_websocket_with_tags(
            server.as_ref(),
            vec![JsValue::from(user_tag(&attachment.user_id))],
        )
        .map_err(|e| js_error_text(&e))?;
    server
        .serialize_attachment(attachment)
        .map_err(|e| e.to_string())
}

pub fn attachment(ws: &WebSocket) -> Option<SocketAttachment> {
    ws.deserialize_attachment().ok().flatten()
}

pub fn all(state: &DurableObjectState) -> Vec<WebSocket> {
    state
        .get_websockets()
        .map(|sockets| sockets.into_iter().map(WebSocket::from).collect())
        .unwrap_or_default()
}

/// Not yet closing: a socket this object already closed still shows among the runtime's
/// sockets until its closing handshake ends, and must not count against the fan's cap.
fn is_open(ws: &WebSocket) -> bool {
    let raw: &worker::web_sys::WebSocket = ws.as_ref();
    raw.ready_state() == worker::web_sys::WebSocket::OPEN
}

fn of_user(state: &DurableObjectState, user_id: &str) -> Vec<WebSocket> {
    state
        .get_websockets_with_tag(&user_tag(user_id))
        .map(|sockets| sockets.into_iter().map(WebSocket::from).collect())
        .unwrap_or_default()
}

/// An open socket counts as presence: the admission tick does not skip a connected fan as idle.
pub fn is_connected(state: &DurableObjectState, user_id: &str) -> bool {
    !of_user(state, user_id).is_empty()
}

/// What a fan's socket message asks of its object, decided by `domain::socket_rules` before
/// anything is read or written (the spend is recorded on the socket first).
pub enum SocketAsk {
    /// Over the allowance, malformed or not a ping: nothing, not even an answer.
    Nothing,
    /// A ping: answer `pong`; `touch` also records the fan as seen (at most once per interval).
    Pong { user_id: String, touch: bool },
}

/// Applies the socket rules to one incoming message.
pub fn on_message(ws: &WebSocket, message: &WebSocketIncomingMessage, now: i64) -> SocketAsk {
    let Some(attachment) = attachment(ws) else {
        return SocketAsk::Nothing;
    };
    let message = match message {
        WebSocketIncomingMessage::String(text) => SocketMessage::Text(text),
        WebSocketIncomingMessage::Binary(_) => SocketMessage::Binary,
    };
    let (verdict, meter) = socket_rules::on_message(&attachment.meter, message, now);
    if let Some(meter) = meter {
        // Kept in memory by the runtime (and across hibernation), not in storage. The spend is
        // recorded before the message may cost anything: were the attachment refused (at this
        // size it is not), the allowance would never shrink, so the message is dropped instead.
        let changed = SocketAttachment {
            meter,
            ..attachment.clone()
        };
        if ws.serialize_attachment(&changed).is_err() {
            return SocketAsk::Nothing;
        }
    }
    match verdict {
        SocketVerdict::Pong { touch } => SocketAsk::Pong {
            user_id: attachment.user_id,
            touch,
        },
        _ => SocketAsk::Nothing,
    }
}

/// Completes a closing handshake the fan started; a socket the runtime already closed refuses,
/// which is fine. 1005/1006 are reserved and may not be sent back.
pub fn close(ws: &WebSocket, code: usize) {
    let code = u16::try_from(code)
        .ok()
        .filter(|c| !matches!(c, 1005 | 1006))
        .unwrap_or(1000);
    let _ = ws.close(Some(code), Some("closed"));
}

/// Sends one message; a socket that closed meanwhile is simply skipped.
pub fn send(ws: &WebSocket, push: &SocketPush) {
    if let Ok(text) = serde_json::to_string(push) {
        let _ = ws.send_with_str(text);
    }
}

/// The pushes a committed command owes specific fans.
pub fn deliver(state: &DurableObjectState, pushes: &[Push]) {
    for push in pushes {
        let (user_id, message) = match push {
            Push::Admitted {
                user_id,
                checkout_token,
                checkout_expires_at,
            } => (
                user_id,
                SocketPush::Admitted {
                    checkout_token: checkout_token.clone(),
                    checkout_expires_at: checkout_expires_at.clone(),
                },
            ),
            Push::Expired { user_id } => (user_id, SocketPush::Expired),
        };
        for ws in of_user(state, user_id) {
            send(&ws, &message);
        }
    }
}

/// After the head of the queue moved: every connected queued fan gets its own position. One
/// read of config and state, then one session read and one prefix sum per fan.
pub fn broadcast_positions(
    state: &DurableObjectState,
    sql: &SqlStorage,
    now: i64,
) -> Result<usize, String> {
    let sockets: Vec<(WebSocket, SocketAttachment)> = all(state)
        .into_iter()
        .filter_map(|ws| attachment(&ws).map(|a| (ws, a)))
        .collect();
    if sockets.is_empty() {
        return Ok(0);
    }
    let mut users: Vec<&str> = sockets.iter().map(|(_, a)| a.user_id.as_str()).collect();
    users.sort_unstable();
    users.dedup();
    let store = SqlWaitroomStore::new(sql.clone());
    let views = queued_views(store, users, now).map_err(|f| f.detail)?;
    let mut sent = 0;
    for (ws, attachment) in &sockets {
        let Ok(index) = views.binary_search_by(|(user, _)| user.cmp(&attachment.user_id.as_str()))
        else {
            continue;
        };
        let Some((_, view)) = views.get(index) else {
            continue;
        };
        send(ws, &SocketPush::for_session(view));
        sent += 1;
    }
    Ok(sent)
}

/// Position pushes to all sockets happen at most this often: a burst of leaves or idle skips
/// becomes one push per socket, not one per departure.
pub const POSITION_PUSH_INTERVAL_MS: i64 = 500;

/// Coalesces "the head moved" into at most one broadcast per [`POSITION_PUSH_INTERVAL_MS`].
/// The pending flag lives in memory only: a push lost to eviction is made good by the next
/// move, and fans also see their position on reconnect and in `GET .../session`.
pub struct PositionPushes {
    state: DurableObjectState,
    sql: SqlStorage,
    last_at: Cell<i64>,
    pending: Cell<bool>,
}

impl PositionPushes {
    pub fn new(state: DurableObjectState, sql: SqlStorage) -> Self {
        PositionPushes {
            state,
            sql,
            last_at: Cell::new(i64::MIN),
            pending: Cell::new(false),
        }
    }

    /// Pushes now, or schedules one push for when the interval has passed.
    pub fn head_moved(self: &Rc<Self>, now: i64, clock: fn() -> i64) {
        if self.pending.get() {
            // The scheduled push reads positions when it runs, so it covers this move too.
            return;
        }
        let since = now.saturating_sub(self.last_at.get());
        if since >= POSITION_PUSH_INTERVAL_MS {
            self.push(now);
            return;
        }
        self.pending.set(true);
        let wait = u64::try_from(POSITION_PUSH_INTERVAL_MS - since).unwrap_or(0);
        let pushes = Rc::clone(self);
        wasm_bindgen_futures::spawn_local(async move {
            Delay::from(Duration::from_millis(wait)).await;
            pushes.pending.set(false);
            pushes.push(clock());
        });
    }

    fn push(&self, now: i64) {
        self.last_at.set(now);
        if let Err(detail) = broadcast_positions(&self.state, &self.sql, now) {
            hub_log(
                crate::log::Level::Error,
                "position push failed",
                None,
                &self.sql,
                serde_json::json!({"code": "POSITION_PUSH_FAILED", "detail": detail}),
            );
        }
    }
}
