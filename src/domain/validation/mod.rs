//! Raw request fields become validated domain values here (parse, don't validate), and a
//! `Validator` collects every bad field of one request so a client sees all its mistakes at once.
//!
//! Every parser returns `Result<T, FieldError>` whose `field` is a sensible default (`"email"`,
//! `"name"`, ...); a handler renames it to the JSON field it read (`thumbnailUrl`, `avatar`) through
//! [`Validator::field`]. Once parsed, a value is known good: code past the edge never re-checks.
//!
//! One file per kind of value: `text` (names, descriptions), `email`, `password`, `url`, `slug`,
//! `money` (currencies, prices), `numbers` (JSON integers, ticket counts), `waitroom`,
//! `pagination`; instants come from [`crate::domain::time`]. Everything is re-exported here, so
//! callers name `validation::Email` whatever file it lives in.

use std::fmt;

use serde::{Deserialize, Serialize};

mod email;
mod money;
mod numbers;
mod pagination;
mod password;
mod slug;
mod text;
mod url;
mod waitroom;

pub use super::time::{format_rfc3339, parse_rfc3339, Timestamp};
pub use email::Email;
pub use money::{CurrencyCode, PriceCents};
pub use numbers::{json_integer, MaxTicketsPerUser, TicketTotal};
pub use pagination::Pagination;
pub use password::Password;
pub use slug::Slug;
pub use text::{
    CategoryName, Description, EventName, Location, OrganizerName, PersonName, TicketClassName,
};
pub use url::Url;
pub use waitroom::{parse_shard_count, parse_waitroom_settings};

/// One bad field of a request, as listed in the problem+json `errors` array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same complaint about another field: parsers name a default field, requests rename it.
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = field.into();
        self
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Every bad field of one request: answered as 400 `VALIDATION_FAILED` with an `errors` list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} field(s) failed validation", .errors.len())]
pub struct ValidationFailed {
    pub errors: Vec<FieldError>,
}

impl ValidationFailed {
    pub const CODE: &'static str = "VALIDATION_FAILED";

    pub fn code(&self) -> &'static str {
        Self::CODE
    }
}

impl From<FieldError> for ValidationFailed {
    fn from(error: FieldError) -> Self {
        Self {
            errors: vec![error],
        }
    }
}

impl From<Vec<FieldError>> for ValidationFailed {
    fn from(errors: Vec<FieldError>) -> Self {
        Self { errors }
    }
}

/// Collects the outcome of each field's parser so a request with three bad fields reports three
/// errors, then builds the validated command only when all of them passed.
///
/// ```ignore
/// let mut v = Validator::new();
/// let email = v.field("email", Email::parse(&body.email));
/// let avatar = v.optional("avatar", body.avatar.as_deref().map(Url::parse));
/// let profile = v.finish(|| Some(Profile { email: email?, avatar: avatar? }))?;
/// ```
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps a parsed value, or records its error under `field` (the JSON name the client sent).
    pub fn field<T>(&mut self, field: &str, parsed: Result<T, FieldError>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(error) => {
                self.errors.push(error.at(field));
                None
            }
        }
    }

    /// Like [`Validator::field`] for a field the client may leave out: `Some(None)` when absent.
    pub fn optional<T>(
        &mut self,
        field: &str,
        parsed: Option<Result<T, FieldError>>,
    ) -> Option<Option<T>> {
        match parsed {
            None => Some(None),
            Some(result) => self.field(field, result).map(Some),
        }
    }

    /// For parsers that check several fields at once and name them themselves (pagination,
    /// waitroom settings, schedules).
    pub fn fields<T>(&mut self, parsed: Result<T, Vec<FieldError>>) -> Option<T> {
        match parsed {
            Ok(value) => Some(value),
            Err(errors) => {
                self.errors.extend(errors);
                None
            }
        }
    }

    /// Records a cross-field complaint (an end date before its start date).
    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// All errors so far, or the validated value built by `build` (which reads the `Option`s the
    /// checks returned with `?`). A `None` from `build` with no recorded error means a field was
    /// never checked: reported as a bad `body` rather than trusted.
    pub fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, ValidationFailed> {
        if !self.errors.is_empty() {
            return Err(ValidationFailed {
                errors: self.errors,
            });
        }
        build().ok_or_else(|| FieldError::new("body", "is incomplete").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_request_with_three_bad_fields_reports_three_errors() {
        let mut v = Validator::new();
        let email = v.field("email", Email::parse("not-an-email"));
        let password = v.field("password", Password::parse("short"));
        let first = v.field("firstName", PersonName::parse("Lan"));
        let last = v.field("lastName", PersonName::parse("   "));

        let result = v.finish(|| Some((email?, password?, first?, last?)));

        let errors = result.err().map(|e| e.errors).unwrap_or_default();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "password", "lastName"]);
    }

    #[test]
    fn a_valid_request_builds_its_value() {
        let mut v = Validator::new();
        let email = v.field("email", Email::parse(" Lan@Example.VN "));
        let avatar = v.optional("avatar", None::<Result<Url, FieldError>>);
        let built = v.finish(|| Some((email?, avatar?)));
        assert_eq!(
            built.map(|(email, avatar)| (email.as_str().to_string(), avatar)),
            Ok(("lan@example.vn".to_string(), None::<Url>))
        );
    }

    #[test]
    fn an_optional_field_reports_its_error_under_its_own_name() {
        let mut v = Validator::new();
        let thumbnail = v.optional("thumbnailUrl", Some(Url::parse("javascript:alert(1)")));
        assert_eq!(thumbnail, None);
        let failed = v.finish(|| Some(())).err();
        assert_eq!(
            failed.map(|f| f.errors[0].field.clone()).as_deref(),
            Some("thumbnailUrl")
        );
    }

    #[test]
    fn a_builder_that_skips_a_field_is_not_trusted() {
        let failed = Validator::new().finish(|| None::<()>).err();
        assert_eq!(failed.map(|f| f.code()), Some("VALIDATION_FAILED"));
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(text in "\\PC{0,40}") {
            let _ = parse_rfc3339(&text);
            let _ = Email::parse(&text);
            let _ = Url::parse(&text);
            let _ = Slug::from_name(&text);
            let _ = PersonName::parse(&text);
        }
    }
}
