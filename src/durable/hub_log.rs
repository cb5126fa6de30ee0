//! One log line of the event's object, named by the event it serves: shared by the object's
//! shell and its socket pushes, so neither imports the other for it.

use serde_json::Value;
use worker::SqlStorage;

use super::hub_store::HubMetaStore;
use super::sql_hub::SqlHubStore;
use crate::log::{self, Level, Trace};

/// One log line of the object: `eventId` (from its stored setup, when it has one) and the
/// Worker's `requestId` when a request caused the work.
pub fn hub_log(
    level: Level,
    msg: &str,
    trace: Option<&Trace>,
    sql: &SqlStorage,
    mut fields: Value,
) {
    let event_id = SqlHubStore::new(sql.clone())
        .setup()
        .ok()
        .flatten()
        .map(|setup| setup.event_id);
    if let Value::Object(map) = &mut fields {
        map.entry("eventId").or_insert(event_id.into());
    }
    log::emit(level, msg, trace, fields);
}
