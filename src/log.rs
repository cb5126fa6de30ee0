//! Log lines for Workers Logs: every line is one JSON object with `level` and `msg`, the
//! fields that tie it to what caused it ([`Trace`]: `requestId`, or `queue` and `messageId`,
//! or `cron`), and its own fields. Lines about an order carry `orderId` (and `provider` when a
//! payment is involved); lines about a failure carry a stable `code`.
//!
//! Lines are logged as JS objects (not strings), which Workers Logs indexes field by field.
//! Errors go through `console.error` and warnings through `console.warn`, so Workers Logs'
//! own level filter agrees with the `level` field.

use serde_json::{Map, Value};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = log)]
    fn console_log(line: &JsValue);
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    fn console_warn(line: &JsValue);
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(line: &JsValue);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// What caused the work a line is about.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace(Map<String, Value>);

impl Trace {
    /// An HTTP request (its `X-Request-Id`).
    pub fn request(request_id: &str) -> Self {
        Trace(Map::from_iter([("requestId".into(), request_id.into())]))
    }

    /// A queue message.
    pub fn message(queue: &str, message_id: &str) -> Self {
        Trace(Map::from_iter([
            ("queue".into(), queue.into()),
            ("messageId".into(), message_id.into()),
        ]))
    }

    /// A cron run.
    pub fn cron(cron: &str) -> Self {
        Trace(Map::from_iter([("cron".into(), cron.into())]))
    }

    pub fn request_id(&self) -> Option<&str> {
        self.0.get("requestId").and_then(Value::as_str)
    }
}

/// Writes one line: `level`, `msg`, the trace's fields, then `fields` (an object; `null`
/// values are left out).
pub fn emit(level: Level, msg: &str, trace: Option<&Trace>, fields: Value) {
    let mut line = Map::new();
    line.insert("level".into(), level.as_str().into());
    line.insert("msg".into(), msg.into());
    if let Some(trace) = trace {
        line.extend(trace.0.clone());
    }
    if let Value::Object(fields) = fields {
        line.extend(fields.into_iter().filter(|(_, v)| !v.is_null()));
    }
    let text = Value::Object(line).to_string();
    // Parsed by JS so the object is plain (serde would hand over Maps); the text itself if not.
    let object = js_sys::JSON::parse(&text).unwrap_or_else(|_| JsValue::from_str(&text));
    match level {
        Level::Info => console_log(&object),
        Level::Warn => console_warn(&object),
        Level::Error => console_error(&object),
    }
}

pub fn info(msg: &str, trace: Option<&Trace>, fields: Value) {
    emit(Level::Info, msg, trace, fields)
}

pub fn warn(msg: &str, trace: Option<&Trace>, fields: Value) {
    emit(Level::Warn, msg, trace, fields)
}

pub fn error(msg: &str, trace: Option<&Trace>, fields: Value) {
    emit(Level::Error, msg, trace, fields)
}
