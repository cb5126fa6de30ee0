//! Bounded free text: names, locations and descriptions, trimmed, counted in characters and
//! free of control and bidirectional-override characters.

use std::fmt;

use serde::Serialize;

use super::FieldError;

/// Bidirectional overrides make a name render differently from what it stores (spoofed
/// organizer or event names), so they are refused along with control characters.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Trims, counts characters (not bytes: Vietnamese letters take 2–3 bytes) and refuses control
/// characters; `multiline` text may keep line breaks and tabs.
fn clean_text(
    raw: &str,
    field: &str,
    min_chars: usize,
    max_chars: usize,
    multiline: bool,
) -> Result<String, FieldError> {
    let text = raw.trim();
    let chars = text.chars().count();
    if chars < min_chars {
        let message = if min_chars == 1 {
            "must not be empty".to_string()
        } else {
            format!("must be at least {min_chars} characters")
        };
        return Err(FieldError::new(field, message));
    }
    if chars > max_chars {
        return Err(FieldError::new(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    let allowed_control = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    if text
        .chars()
        .any(|c| (c.is_control() && !allowed_control(c)) || is_bidi_control(c))
    {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(text.to_string())
}

macro_rules! bounded_text {
    ($(#[$doc:meta])* $name:ident, field = $field:literal, chars = $min:literal ..= $max:literal, multiline = $multiline:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const MIN_CHARS: usize = $min;
            pub const MAX_CHARS: usize = $max;

            pub fn parse(raw: &str) -> Result<Self, FieldError> {
                clean_text(raw, $field, $min, $max, $multiline).map(Self)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

bounded_text!(
    /// A user's first or last name: 1–100 characters after trimming, no control characters.
    PersonName, field = "name", chars = 1..=100, multiline = false
);
bounded_text!(
    /// An event's name as shown on listings and tickets.
    EventName, field = "name", chars = 1..=200, multiline = false
);
bounded_text!(
    /// An organizer's display name.
    OrganizerName, field = "name", chars = 1..=200, multiline = false
);
bounded_text!(
    /// A category's display name; its slug is derived with [`Slug::from_name`].
    CategoryName, field = "name", chars = 1..=60, multiline = false
);
bounded_text!(
    /// A ticket class's name ("VIP", "Early bird").
    TicketClassName, field = "name", chars = 1..=100, multiline = false
);
bounded_text!(
    /// Where an event takes place, free text (venue and address).
    Location, field = "location", chars = 1..=300, multiline = false
);
bounded_text!(
    /// Event or organizer description: may be empty, may span lines, at most 5000 characters.
    Description, field = "description", chars = 0..=5000, multiline = true
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded_in_characters() {
        assert_eq!(
            PersonName::parse("  Nguyễn Thị Lan  ").map(PersonName::into_inner),
            Ok("Nguyễn Thị Lan".to_string())
        );
        assert!(PersonName::parse(&"ễ".repeat(100)).is_ok());
        assert!(PersonName::parse(&"ễ".repeat(101)).is_err());
        assert!(PersonName::parse("").is_err());
        assert!(PersonName::parse("Lan\u{0007}").is_err());
        assert!(PersonName::parse("Lan\nAnh").is_err());
        assert!(PersonName::parse("evil\u{202E}gnp.exe").is_err());
        assert!(EventName::parse(&"a".repeat(200)).is_ok());
        assert!(EventName::parse(&"a".repeat(201)).is_err());
    }

    #[test]
    fn a_description_may_be_empty_or_multiline_up_to_5000_characters() {
        assert!(Description::parse("").is_ok());
        assert!(Description::parse("Line one\n\tLine two\r\n").is_ok());
        assert!(Description::parse(&"đ".repeat(5000)).is_ok());
        assert!(Description::parse(&"đ".repeat(5001)).is_err());
        assert!(Description::parse("bell\u{0007}").is_err());
    }
}
