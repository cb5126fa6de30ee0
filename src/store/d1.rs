//! Small helpers over the D1 binding: values to bind and error classification.

use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env};

use crate::error::ApiError;

pub fn db(env: &Env) -> Result<D1Database, ApiError> {
    env.d1("DB").map_err(ApiError::from)
}

/// Whether D1 answers a trivial query (the health check).
pub async fn answers(db: &D1Database) -> bool {
    db.prepare("SELECT 1 AS ok")
        .first::<serde_json::Value>(Some("ok"))
        .await
        .is_ok_and(|v| v.is_some())
}

/// D1 binds Rust integers as i32 in workers-rs; times in milliseconds need all 53 bits of a
/// JS number, so every integer is bound as f64.
pub fn int(n: i64) -> JsValue {
    JsValue::from_f64(n as f64)
}

pub fn text(s: &str) -> JsValue {
    JsValue::from_str(s)
}

pub fn opt_text(s: Option<&str>) -> JsValue {
    s.map(JsValue::from_str).unwrap_or(JsValue::NULL)
}

pub fn stmt(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<D1PreparedStatement, ApiError> {
    db.prepare(sql).bind(args).map_err(ApiError::from)
}

/// Whether a failed write hit a UNIQUE constraint (a lost race, not a server fault).
pub fn is_unique_violation(e: &worker::Error) -> bool {
    e.to_string().contains("UNIQUE constraint failed")
}

pub async fn first<T: serde::de::DeserializeOwned>(
    db: &D1Database,
    sql: &str,
    args: &[JsValue],
) -> Result<Option<T>, ApiError> {
    stmt(db, sql, args)?
        .first::<T>(None)
        .await
        .map_err(ApiError::from)
}

pub async fn all<T: serde::de::DeserializeOwned>(
    db: &D1Database,
    sql: &str,
    args: &[JsValue],
) -> Result<Vec<T>, ApiError> {
    stmt(db, sql, args)?
        .all()
        .await
        .and_then(|r| r.results::<T>())
        .map_err(ApiError::from)
}

/// Runs a write and returns how many rows it changed.
pub async fn run(db: &D1Database, sql: &str, args: &[JsValue]) -> Result<usize, ApiError> {
    let result = stmt(db, sql, args)?.run().await.map_err(ApiError::from)?;
    Ok(result
        .meta()
        .ok()
        .flatten()
        .and_then(|m| m.changes)
        .unwrap_or(0))
}

/// How many rows a statement with `RETURNING` reported. Preferred over `meta.changes` for
/// tables with triggers: D1 counts the rows the triggers wrote there too.
pub fn returned_rows(result: Option<&worker::D1Result>) -> Result<usize, ApiError> {
    match result {
        Some(result) => Ok(result.results::<serde_json::Value>()?.len()),
        None => Ok(0),
    }
}

/// A nullable integer (unset sale bounds, "no cap" limits).
pub fn opt_int(n: Option<i64>) -> JsValue {
    n.map(int).unwrap_or(JsValue::NULL)
}

/// SQLite has no booleans: flags are stored as 0/1.
pub fn flag(b: bool) -> JsValue {
    int(i64::from(b))
}
