//! A new password as the policy accepts it, kept out of logs and responses.

use std::fmt;

use super::FieldError;

/// A new password that meets the policy: 8–128 characters, not only whitespace.
///
/// Not trimmed (every character is part of the secret), never printed by `Debug`, and without
/// `Display`/`Serialize` so it cannot end up in a log line or a response body. Only registration
/// and password change parse one; login hashes whatever was typed, so a stricter future policy
/// never locks out an existing account.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    /// Bounds the work a request can ask of the key derivation and rules out pasted documents.
    pub const MAX_CHARS: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(FieldError::new(
                "password",
                format!("must be at least {} characters", Self::MIN_CHARS),
            ));
        }
        if chars > Self::MAX_CHARS {
            return Err(FieldError::new(
                "password",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if raw.chars().all(char::is_whitespace) {
            return Err(FieldError::new("password", "must not be only whitespace"));
        }
        Ok(Self(raw.to_string()))
    }

    /// The secret's bytes, for the key derivation and nothing else.
    pub fn expose_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_under_eight_characters_is_refused() {
        assert_eq!(
            Password::parse("1234567").err().map(|e| e.message),
            Some("must be at least 8 characters".to_string())
        );
        assert!(Password::parse("12345678").is_ok());
    }

    #[test]
    fn password_length_counts_characters_not_bytes() {
        // 8 Vietnamese characters, 17 bytes.
        assert!(Password::parse("mậtkhẩuđ").is_ok());
        assert!(Password::parse("ậậậậậậậ").is_err());
        assert!(Password::parse(&"x".repeat(128)).is_ok());
        assert!(Password::parse(&"x".repeat(129)).is_err());
    }

    #[test]
    fn a_password_of_only_whitespace_is_refused_but_inner_spaces_are_kept() {
        assert!(Password::parse("          ").is_err());
        let kept = Password::parse(" correct horse ").ok();
        assert_eq!(
            kept.map(|p| p.expose_bytes().to_vec()),
            Some(b" correct horse ".to_vec())
        );
    }

    #[test]
    fn a_password_never_debug_prints_its_content() {
        let password = Password::parse("hunter2-hunter2").ok();
        let printed = format!("{password:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("redacted"));
    }
}
