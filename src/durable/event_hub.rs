//! The per-event Durable Object (`id_from_name(eventId)`): the one strictly consistent home of
//! an event's ticket counters, holds and waitroom, kept in the object's SQLite storage.

use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State};

#[durable_object]
pub struct EventHub {
    sql: SqlStorage,
}

impl DurableObject for EventHub {
    fn new(state: State, _env: Env) -> Self {
        Self {
            sql: state.storage().sql(),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        match req.path().as_str() {
            // A trivial SQLite round trip: the baseline the benchmarks compare against.
            "/ping" => {
                self.sql.exec(
                    "CREATE TABLE IF NOT EXISTS hub_meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
                    None,
                )?;
                self.sql.exec(
                    "INSERT INTO hub_meta(key, value) VALUES ('pings', 1)
                     ON CONFLICT(key) DO UPDATE SET value = value + 1",
                    None,
                )?;
                Response::from_json(&serde_json::json!({ "ok": true }))
            }
            _ => Response::error("unknown object route", 404),
        }
    }
}
