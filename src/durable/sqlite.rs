//! Small helpers over the object's `SqlStorage`: exact integer binding across the JS boundary,
//! typed row reads, and running a schema script one statement at a time.

use serde::de::DeserializeOwned;
use worker::{SqlStorage, SqlStorageValue};

use crate::domain::ledger::StoreError;
use crate::durable::protocol::MAX_SAFE_MS;

pub type SqlResult<T> = Result<T, StoreError>;

fn unavailable(context: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{context}: {error}"))
}

/// An integer binding. Values cross into JavaScript as f64, so anything beyond ±2^53 would be
/// stored changed: refuse it instead.
pub fn int(value: i64) -> SqlResult<SqlStorageValue> {
    if (-MAX_SAFE_MS..=MAX_SAFE_MS).contains(&value) {
        Ok(SqlStorageValue::Integer(value))
    } else {
        Err(StoreError::Malformed(format!(
            "integer {value} is beyond what SQLite values survive in JavaScript"
        )))
    }
}

pub fn uint(value: u64) -> SqlResult<SqlStorageValue> {
    int(i64::try_from(value).map_err(|_| {
        StoreError::Malformed(format!("integer {value} does not fit a SQLite integer"))
    })?)
}

pub fn opt_int(value: Option<i64>) -> SqlResult<SqlStorageValue> {
    value.map_or(Ok(SqlStorageValue::Null), int)
}

pub fn text(value: impl Into<String>) -> SqlStorageValue {
    SqlStorageValue::String(value.into())
}

pub fn opt_text(value: Option<impl Into<String>>) -> SqlStorageValue {
    value.map_or(SqlStorageValue::Null, |v| SqlStorageValue::String(v.into()))
}

/// Runs a statement to completion (a cursor that is never read might not finish a write).
pub fn exec(sql: &SqlStorage, query: &str, bindings: Vec<SqlStorageValue>) -> SqlResult<usize> {
    let cursor = sql
        .exec(query, bindings)
        .map_err(|e| unavailable(first_words(query), e))?;
    for row in cursor.raw() {
        row.map_err(|e| unavailable(first_words(query), e))?;
    }
    Ok(cursor.rows_written())
}

/// All rows of a query, each deserialized from its column names.
pub fn rows<T: DeserializeOwned>(
    sql: &SqlStorage,
    query: &str,
    bindings: Vec<SqlStorageValue>,
) -> SqlResult<Vec<T>> {
    let cursor = sql
        .exec(query, bindings)
        .map_err(|e| unavailable(first_words(query), e))?;
    cursor
        .to_array::<T>()
        .map_err(|e| StoreError::Malformed(format!("{}: {e}", first_words(query))))
}

/// The first row of a query, if any.
pub fn first<T: DeserializeOwned>(
    sql: &SqlStorage,
    query: &str,
    bindings: Vec<SqlStorageValue>,
) -> SqlResult<Option<T>> {
    Ok(rows(sql, query, bindings)?.into_iter().next())
}

/// The one JSON document a query builds inside SQLite (`SELECT json_object(..)`, a single row
/// and column). It crosses into Rust as one string and is parsed here, where [`rows`] would
/// cross the JavaScript boundary once per field of every row.
pub fn document<T: DeserializeOwned>(
    sql: &SqlStorage,
    query: &str,
    bindings: Vec<SqlStorageValue>,
) -> SqlResult<T> {
    let cursor = sql
        .exec(query, bindings)
        .map_err(|e| unavailable(first_words(query), e))?;
    let row = match cursor.raw().next() {
        Some(row) => row.map_err(|e| unavailable(first_words(query), e))?,
        None => {
            return Err(StoreError::Malformed(format!(
                "{}: no row",
                first_words(query)
            )))
        }
    };
    match row.into_iter().next() {
        Some(SqlStorageValue::String(text)) => serde_json::from_str(&text)
            .map_err(|e| StoreError::Malformed(format!("{}: {e}", first_words(query)))),
        _ => Err(StoreError::Malformed(format!(
            "{}: expected one JSON text column",
            first_words(query)
        ))),
    }
}

/// Runs a `;`-separated DDL script (`IF NOT EXISTS` throughout, so it is idempotent).
pub fn run_script(sql: &SqlStorage, script: &str) -> SqlResult<()> {
    for statement in script.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        exec(sql, statement, Vec::new())?;
    }
    Ok(())
}

/// Adds each `(table, column, statement)` whose column the table lacks: tables created before
/// the column existed are not touched by `CREATE TABLE IF NOT EXISTS`.
pub fn add_missing_columns(sql: &SqlStorage, added: &[(&str, &str, &str)]) -> SqlResult<()> {
    #[derive(serde::Deserialize)]
    struct Column {
        name: String,
    }
    for (table, column, statement) in added {
        // The table name is one of our constants; PRAGMA takes no bound parameters.
        let present: Vec<Column> = rows(sql, &format!("PRAGMA table_info({table})"), Vec::new())?;
        if !present.iter().any(|c| c.name == *column) {
            exec(sql, statement, Vec::new())?;
        }
    }
    Ok(())
}

/// Enough of a query to say which one failed, without its bound values.
fn first_words(query: &str) -> &str {
    let end = query
        .char_indices()
        .nth(60)
        .map_or(query.len(), |(index, _)| index);
    query.get(..end).unwrap_or(query).trim()
}
