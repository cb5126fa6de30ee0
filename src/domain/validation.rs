//! Raw request fields become validated domain values here (parse, don't validate), and a
//! `Validator` collects every bad field of one request so a client sees all its mistakes at once.
//!
//! Every parser returns `Result<T, FieldError>` whose `field` is a sensible default (`"email"`,
//! `"name"`, ...); a handler renames it to the JSON field it read (`thumbnailUrl`, `avatar`) through
//! [`Validator::field`]. Once parsed, a value is known good: code past the edge never re-checks.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

/// An email address as stored: trimmed and lowercased, so uniqueness and login ignore case.
///
/// The check is RFC 5322's dot-atom form, which is what real mailboxes use: no quoted local
/// parts, no IP-literal domains, ASCII only (an internationalised domain arrives as punycode).
/// Lowercasing the local part is, strictly, not RFC-safe; no mainstream provider distinguishes
/// case, and two accounts differing only in case would be a support problem.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// RFC 5321's limit on a forward path, which bounds any usable address.
    pub const MAX_LEN: usize = 254;
    const MAX_LOCAL_LEN: usize = 64;
    const MAX_LABEL_LEN: usize = 63;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(FieldError::new("email", "must not be empty"));
        }
        if text.len() > Self::MAX_LEN {
            return Err(FieldError::new(
                "email",
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        let lower = text.to_ascii_lowercase();
        let valid = lower
            .split_once('@')
            .is_some_and(|(local, domain)| Self::local_ok(local) && Self::domain_ok(domain));
        if valid {
            Ok(Self(lower))
        } else {
            Err(FieldError::new("email", "must be a valid email address"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after `@` (for per-domain rules such as the admin list or disposable domains).
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, domain)| domain)
    }

    fn local_ok(local: &str) -> bool {
        const ATEXT_SYMBOLS: &str = "!#$%&'*+/=?^_`{|}~-";
        !local.is_empty()
            && local.len() <= Self::MAX_LOCAL_LEN
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || ATEXT_SYMBOLS.contains(c))
    }

    fn domain_ok(domain: &str) -> bool {
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |label: &&str| {
            !label.is_empty()
                && label.len() <= Self::MAX_LABEL_LEN
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        // A top-level domain is never all digits; that shape is an IPv4 address typed as a domain.
        let tld_ok = labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && !tld.chars().all(|c| c.is_ascii_digit()));
        labels.len() >= 2 && labels.iter().all(label_ok) && tld_ok
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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

/// An http(s) URL for an avatar, thumbnail or logo: the browser will fetch it, so only web
/// schemes (no `javascript:`, `data:`), no embedded credentials, ASCII (percent-encoded) only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Url(String);

impl Url {
    /// The longest URL every browser and CDN handles.
    pub const MAX_LEN: usize = 2048;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(FieldError::new("url", "must not be empty"));
        }
        if text.len() > Self::MAX_LEN {
            return Err(FieldError::new(
                "url",
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        if !text.is_ascii()
            || text
                .chars()
                .any(|c| c.is_ascii_whitespace() || c.is_control())
        {
            return Err(FieldError::new(
                "url",
                "must not contain spaces or non-ASCII characters (percent-encode them)",
            ));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(FieldError::new("url", "must be an http or https URL"));
        };
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(FieldError::new("url", "must be an http or https URL"));
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(FieldError::new("url", "must not contain credentials"));
        }
        if !Self::authority_ok(authority) {
            return Err(FieldError::new("url", "must name a valid host"));
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }

    /// `host[:port]`, where host is DNS labels or a bracketed IPv6 literal (`[2001:db8::1]`).
    fn authority_ok(authority: &str) -> bool {
        let (host_ok, port) = match authority.strip_prefix('[') {
            Some(bracketed) => {
                let Some((address, after)) = bracketed.split_once(']') else {
                    return false;
                };
                let port = match after {
                    "" => None,
                    _ => match after.strip_prefix(':') {
                        Some(port) => Some(port),
                        None => return false,
                    },
                };
                let address_ok = !address.is_empty()
                    && address
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
                (address_ok, port)
            }
            None => {
                let (host, port) = match authority.rsplit_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (authority, None),
                };
                let label_ok = |label: &str| {
                    !label.is_empty()
                        && label.len() <= 63
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                };
                let host_ok =
                    !host.is_empty() && host.len() <= 253 && host.split('.').all(label_ok);
                (host_ok, port)
            }
        };
        let port_ok = port.is_none_or(|port| {
            (1..=5).contains(&port.len())
                && port.chars().all(|c| c.is_ascii_digit())
                && port.parse::<u32>().is_ok_and(|n| (1..=65_535).contains(&n))
        });
        host_ok && port_ok
    }
}

impl AsRef<str> for Url {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A URL-safe category key: lowercase ASCII letters, digits and single hyphens ("am-nhac").
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

/// Latin letters with diacritics folded to ASCII; Vietnamese first (every vowel with each of
/// the five tone marks, plus đ), then the common Western and Central European letters.
/// Matched after lowercasing, so only lowercase forms are listed.
const ASCII_FOLDS: &[(&str, &str)] = &[
    ("àáảãạăằắẳẵặâầấẩẫậäåāąǎ", "a"),
    ("èéẻẽẹêềếểễệëēęěė", "e"),
    ("ìíỉĩịîïīįǐı", "i"),
    ("òóỏõọôồốổỗộơờớởỡợöøōőǒ", "o"),
    ("ùúủũụưừứửữựûüūůűųǔ", "u"),
    ("ỳýỷỹỵÿ", "y"),
    ("đď", "d"),
    ("çćč", "c"),
    ("ñńň", "n"),
    ("śšş", "s"),
    ("źżž", "z"),
    ("ğ", "g"),
    ("ł", "l"),
    ("ř", "r"),
    ("ťţ", "t"),
    ("ß", "ss"),
    ("æ", "ae"),
    ("œ", "oe"),
];

/// Combining diacritical marks: text typed on some keyboards arrives decomposed (NFD), with
/// the tone mark as a separate character after its vowel.
fn is_combining_mark(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}')
}

impl Slug {
    pub const MAX_LEN: usize = 80;

    /// Derives the slug of a category name: "Âm nhạc" → "am-nhac", "Hội thảo & Triển lãm" →
    /// "hoi-thao-trien-lam". Letters without an ASCII form separate words like punctuation.
    pub fn from_name(name: &str) -> Result<Self, FieldError> {
        let mut slug = String::with_capacity(name.len());
        let mut pending_hyphen = false;
        for c in name.chars().flat_map(char::to_lowercase) {
            if is_combining_mark(c) {
                continue;
            }
            let folded = if c.is_ascii_alphanumeric() {
                None
            } else {
                ASCII_FOLDS
                    .iter()
                    .find(|(from, _)| from.contains(c))
                    .map(|(_, to)| *to)
            };
            if !c.is_ascii_alphanumeric() && folded.is_none() {
                pending_hyphen = true;
                continue;
            }
            if pending_hyphen && !slug.is_empty() {
                slug.push('-');
            }
            pending_hyphen = false;
            match folded {
                Some(ascii) => slug.push_str(ascii),
                None => slug.push(c),
            }
        }
        if slug.len() > Self::MAX_LEN {
            slug.truncate(Self::MAX_LEN);
            while slug.ends_with('-') {
                slug.pop();
            }
        }
        if slug.is_empty() {
            return Err(FieldError::new("name", "must contain a letter or a digit"));
        }
        Ok(Self(slug))
    }

    /// An existing slug, e.g. from `?category=am-nhac`; case is ignored.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let slug = raw.trim().to_ascii_lowercase();
        let valid = !slug.is_empty()
            && slug.len() <= Self::MAX_LEN
            && !slug.starts_with('-')
            && !slug.ends_with('-')
            && !slug.contains("--")
            && slug
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid {
            Ok(Self(slug))
        } else {
            Err(FieldError::new(
                "slug",
                "must be lowercase letters, digits and single hyphens",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ISO 4217 currency this platform sells in, with its minor-unit exponent (how many digits
/// `priceCents` carries after the decimal point: VND 0, so 150000 VND is `150000`; USD 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CurrencyCode {
    code: &'static str,
    exponent: u8,
}

impl CurrencyCode {
    pub const VND: Self = Self::new("VND", 0);
    pub const USD: Self = Self::new("USD", 2);
    pub const EUR: Self = Self::new("EUR", 2);
    pub const JPY: Self = Self::new("JPY", 0);
    pub const SGD: Self = Self::new("SGD", 2);
    pub const THB: Self = Self::new("THB", 2);

    /// Exponents are ISO 4217's, even where everyday use differs (IDR is listed with 2).
    pub const SUPPORTED: &'static [Self] = &[
        Self::VND,
        Self::USD,
        Self::EUR,
        Self::JPY,
        Self::SGD,
        Self::THB,
        Self::new("KRW", 0),
        Self::new("CNY", 2),
        Self::new("HKD", 2),
        Self::new("TWD", 2),
        Self::new("MYR", 2),
        Self::new("IDR", 2),
        Self::new("PHP", 2),
        Self::new("KHR", 2),
        Self::new("LAK", 2),
        Self::new("INR", 2),
        Self::new("GBP", 2),
        Self::new("CHF", 2),
        Self::new("AUD", 2),
        Self::new("NZD", 2),
        Self::new("CAD", 2),
    ];

    const fn new(code: &'static str, exponent: u8) -> Self {
        Self { code, exponent }
    }

    /// Accepts any case ("vnd") and answers with the canonical uppercase code.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let wanted = raw.trim();
        Self::SUPPORTED
            .iter()
            .copied()
            .find(|currency| currency.code.eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                FieldError::new("currency", "must be a supported ISO 4217 currency code")
            })
    }

    pub fn as_str(self) -> &'static str {
        self.code
    }

    pub fn minor_unit_exponent(self) -> u8 {
        self.exponent
    }
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl Serialize for CurrencyCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code)
    }
}

impl<'de> Deserialize<'de> for CurrencyCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A ticket price in minor units of its currency; 0 is a free ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PriceCents(i64);

impl PriceCents {
    /// 10^11 minor units (100 billion VND, 1 billion USD): far above any real ticket, and low
    /// enough that 10,000 tickets at this price (10^15) stay exact in a JavaScript number.
    pub const MAX: i64 = 100_000_000_000;

    pub fn parse(raw: i64) -> Result<Self, FieldError> {
        if raw < 0 {
            Err(FieldError::new("priceCents", "must not be negative"))
        } else if raw > Self::MAX {
            Err(FieldError::new(
                "priceCents",
                format!("must be at most {}", Self::MAX),
            ))
        } else {
            Ok(Self(raw))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// How many tickets a ticket class has in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TicketTotal(u32);

impl TicketTotal {
    /// A stadium holds about 100,000; ten times that is a typo, not an event.
    pub const MAX: u32 = 1_000_000;

    pub fn parse(raw: i64) -> Result<Self, FieldError> {
        if raw < 1 {
            return Err(FieldError::new("total", "must be at least 1"));
        }
        match u32::try_from(raw) {
            Ok(total) if total <= Self::MAX => Ok(Self(total)),
            _ => Err(FieldError::new(
                "total",
                format!("must be at most {}", Self::MAX),
            )),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// The per-buyer cap of an event's config (`maxTicketsPerUser`), across pending and completed orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct MaxTicketsPerUser(u32);

impl MaxTicketsPerUser {
    pub const MAX: u32 = 1_000;

    pub fn parse(raw: i64) -> Result<Self, FieldError> {
        match u32::try_from(raw) {
            Ok(cap) if (1..=Self::MAX).contains(&cap) => Ok(Self(cap)),
            _ => Err(FieldError::new(
                "maxTicketsPerUser",
                format!("must be between 1 and {}", Self::MAX),
            )),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// The waitroom knobs of an event's config; missing values take the API's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitroomSettings {
    pub max_concurrent_checkouts: u32,
    pub checkout_ttl_seconds: u32,
    pub admission_batch: u32,
}

impl Default for WaitroomSettings {
    fn default() -> Self {
        Self {
            max_concurrent_checkouts: 100,
            checkout_ttl_seconds: 900,
            admission_batch: 100,
        }
    }
}

impl WaitroomSettings {
    pub const MAX_CONCURRENT_CHECKOUTS: u32 = 10_000;
    /// A checkout needs at least a minute to type a card number; an hour-long slot starves the queue.
    pub const CHECKOUT_TTL_SECONDS: std::ops::RangeInclusive<u32> = 60..=3_600;
    pub const MAX_ADMISSION_BATCH: u32 = 10_000;

    /// Field names are reported as `waitroom.<name>`, the path inside `eventConfig`.
    pub fn parse(
        max_concurrent_checkouts: Option<i64>,
        checkout_ttl_seconds: Option<i64>,
        admission_batch: Option<i64>,
    ) -> Result<Self, Vec<FieldError>> {
        let defaults = Self::default();
        let mut errors = Vec::new();
        let mut within = |raw: Option<i64>, default: u32, min: u32, max: u32, field: &str| match raw
        {
            None => default,
            Some(raw) => match u32::try_from(raw) {
                Ok(value) if (min..=max).contains(&value) => value,
                _ => {
                    errors.push(FieldError::new(
                        format!("waitroom.{field}"),
                        format!("must be between {min} and {max}"),
                    ));
                    default
                }
            },
        };
        let settings = Self {
            max_concurrent_checkouts: within(
                max_concurrent_checkouts,
                defaults.max_concurrent_checkouts,
                1,
                Self::MAX_CONCURRENT_CHECKOUTS,
                "maxConcurrentCheckouts",
            ),
            checkout_ttl_seconds: within(
                checkout_ttl_seconds,
                defaults.checkout_ttl_seconds,
                *Self::CHECKOUT_TTL_SECONDS.start(),
                *Self::CHECKOUT_TTL_SECONDS.end(),
                "checkoutTtlSeconds",
            ),
            admission_batch: within(
                admission_batch,
                defaults.admission_batch,
                1,
                Self::MAX_ADMISSION_BATCH,
                "admissionBatch",
            ),
        };
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(errors)
        }
    }
}

/// An integer from a JSON value, for request bodies kept as `serde_json::Value` so that a wrong
/// type becomes a field error instead of a rejected body. `150000.0` counts; `1.5` and `"5"` do not.
pub fn json_integer(value: &serde_json::Value) -> Result<i64, FieldError> {
    let not_integer = || FieldError::new("value", "must be an integer");
    if let Some(n) = value.as_i64() {
        return Ok(n);
    }
    match value.as_f64() {
        // Beyond 2^53 a float no longer names one integer.
        Some(f) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 => Ok(f as i64),
        _ => Err(not_integer()),
    }
}

const MS_PER_SECOND: i64 = 1_000;
const MS_PER_MINUTE: i64 = 60 * MS_PER_SECOND;
const MS_PER_HOUR: i64 = 60 * MS_PER_MINUTE;
const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`):
/// eras of 400 years repeat exactly, so the arithmetic is exact for every year.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    // Counting months from March puts the leap day at the end of the year.
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month 1–12, day 1–31).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both values are bounded by the arithmetic above (1..=12, 1..=31).
    (year, month as u32, day as u32)
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// An instant in UTC with millisecond precision, within the years RFC 3339 can write
/// (0000–9999). Stored as unix milliseconds; written as `2025-06-01T12:30:00.000Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// 0000-01-01T00:00:00.000Z
    pub const MIN: Self = Self(-62_167_219_200_000);
    /// 9999-12-31T23:59:59.999Z
    pub const MAX: Self = Self(253_402_300_799_999);

    pub fn from_unix_ms(unix_ms: i64) -> Option<Self> {
        (Self::MIN.0..=Self::MAX.0)
            .contains(&unix_ms)
            .then_some(Self(unix_ms))
    }

    pub fn unix_ms(self) -> i64 {
        self.0
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, the RFC 3339 `date-time`.
    ///
    /// Accepts lowercase `t`/`z` (RFC 3339 allows them) and any offset, converted to UTC.
    /// Fractions beyond milliseconds are truncated. Refuses leap seconds (`:60`): unix time
    /// cannot represent them and no sale window needs one.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let invalid = || {
            FieldError::new(
                "timestamp",
                "must be an RFC 3339 date-time such as 2025-06-01T19:30:00Z",
            )
        };
        let bytes = raw.trim().as_bytes();
        let digits = |range: std::ops::Range<usize>| -> Option<u32> {
            let slice = bytes.get(range)?;
            if slice.is_empty() || !slice.iter().all(u8::is_ascii_digit) {
                return None;
            }
            Some(slice.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
        };
        let byte_is =
            |at: usize, options: &[u8]| bytes.get(at).is_some_and(|b| options.contains(b));

        let shape_ok = byte_is(4, b"-")
            && byte_is(7, b"-")
            && byte_is(10, b"Tt")
            && byte_is(13, b":")
            && byte_is(16, b":");
        if !shape_ok {
            return Err(invalid());
        }
        let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
            digits(0..4),
            digits(5..7),
            digits(8..10),
            digits(11..13),
            digits(14..16),
            digits(17..19),
        ) else {
            return Err(invalid());
        };
        let year = i64::from(year);
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(invalid());
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(invalid());
        }

        let mut at = 19;
        let mut millis = 0i64;
        if byte_is(at, b".") {
            let start = at + 1;
            let mut end = start;
            while bytes.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
            if end == start || end - start > 9 {
                return Err(invalid());
            }
            // Pad or truncate the fraction to exactly three digits.
            millis = (0..3).fold(0i64, |acc, i| {
                let digit = bytes
                    .get(start + i)
                    .filter(|_| start + i < end)
                    .map_or(0, |d| i64::from(d - b'0'));
                acc * 10 + digit
            });
            at = end;
        }

        let offset_ms = match bytes.get(at) {
            Some(b'Z' | b'z') if bytes.len() == at + 1 => 0,
            Some(sign @ (b'+' | b'-')) if bytes.len() == at + 6 && byte_is(at + 3, b":") => {
                let (Some(offset_hours), Some(offset_minutes)) =
                    (digits(at + 1..at + 3), digits(at + 4..at + 6))
                else {
                    return Err(invalid());
                };
                if offset_hours > 23 || offset_minutes > 59 {
                    return Err(invalid());
                }
                let magnitude = i64::from(offset_hours) * MS_PER_HOUR
                    + i64::from(offset_minutes) * MS_PER_MINUTE;
                if *sign == b'+' {
                    magnitude
                } else {
                    -magnitude
                }
            }
            _ => return Err(invalid()),
        };

        let local_ms = days_from_civil(year, month, day) * MS_PER_DAY
            + i64::from(hour) * MS_PER_HOUR
            + i64::from(minute) * MS_PER_MINUTE
            + i64::from(second) * MS_PER_SECOND
            + millis;
        Self::from_unix_ms(local_ms - offset_ms).ok_or_else(invalid)
    }

    /// Always UTC with exactly three fraction digits, the shape of JavaScript's
    /// `toISOString()`, so stored strings sort in time order.
    pub fn to_rfc3339(self) -> String {
        let days = self.0.div_euclid(MS_PER_DAY);
        let ms_of_day = self.0.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            ms_of_day / MS_PER_HOUR,
            ms_of_day % MS_PER_HOUR / MS_PER_MINUTE,
            ms_of_day % MS_PER_MINUTE / MS_PER_SECOND,
            ms_of_day % MS_PER_SECOND,
        )
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(|error| serde::de::Error::custom(error.message))
    }
}

/// Parses an RFC 3339 date-time to unix milliseconds (see [`Timestamp::parse`]).
pub fn parse_rfc3339(raw: &str) -> Result<i64, FieldError> {
    Timestamp::parse(raw).map(Timestamp::unix_ms)
}

/// Formats unix milliseconds as RFC 3339 UTC. Values outside years 0000–9999 cannot come from
/// a parse or a real clock; they are clamped to the nearest bound rather than failing.
pub fn format_rfc3339(unix_ms: i64) -> String {
    Timestamp(unix_ms.clamp(Timestamp::MIN.0, Timestamp::MAX.0)).to_rfc3339()
}

/// Which page of a list to return: `?page=1&pageSize=20` by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    pub page: u32,
    pub page_size: u32,
}

impl Default for Pagination {
    fn default() -> Self {
        Self {
            page: 1,
            page_size: Self::DEFAULT_PAGE_SIZE,
        }
    }
}

impl Pagination {
    pub const DEFAULT_PAGE_SIZE: u32 = 20;
    pub const MAX_PAGE_SIZE: u32 = 100;
    /// Keeps the row offset under 10^8, well inside the i32 a D1 integer bind carries.
    pub const MAX_PAGE: u32 = 1_000_000;

    /// From the raw query values; a missing or empty value takes its default.
    pub fn parse(page: Option<&str>, page_size: Option<&str>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut read = |raw: Option<&str>, default: u32, max: u32, field: &str| {
            let raw = raw.map(str::trim).filter(|raw| !raw.is_empty());
            match raw.map(str::parse::<u32>) {
                None => default,
                Some(Ok(value)) if (1..=max).contains(&value) => value,
                Some(_) => {
                    errors.push(FieldError::new(
                        field,
                        format!("must be a whole number between 1 and {max}"),
                    ));
                    default
                }
            }
        };
        let pagination = Self {
            page: read(page, 1, Self::MAX_PAGE, "page"),
            page_size: read(
                page_size,
                Self::DEFAULT_PAGE_SIZE,
                Self::MAX_PAGE_SIZE,
                "pageSize",
            ),
        };
        if errors.is_empty() {
            Ok(pagination)
        } else {
            Err(errors)
        }
    }

    /// Rows to skip: `(page - 1) * pageSize`.
    pub fn offset(&self) -> u64 {
        u64::from(self.page.saturating_sub(1)) * u64::from(self.page_size)
    }

    pub fn limit(&self) -> u32 {
        self.page_size
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
            built,
            Ok((Email("lan@example.vn".to_string()), None::<Url>))
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

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(
            Email::parse("  Nguyen.Van.A+tickets@Gmail.COM\n").map(|e| e.0),
            Ok("nguyen.van.a+tickets@gmail.com".to_string())
        );
    }

    #[test]
    fn ordinary_email_shapes_are_accepted() {
        for ok in [
            "a@b.co",
            "first.last@sub.example.com.vn",
            "o'brien@example.ie",
            "x_y-z@xn--80ak6aa92e.com",
            "user+tag@example.travel",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn malformed_emails_are_refused() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "user@",
            "user@localhost",
            "user@@example.com",
            "a@b@example.com",
            ".user@example.com",
            "user.@example.com",
            "us..er@example.com",
            "user@-example.com",
            "user@example-.com",
            "user@example..com",
            "user@example.c",
            "user@1.2.3.4",
            "user@[1.2.3.4]",
            "us er@example.com",
            "\"quoted\"@example.com",
            "ngườidùng@example.com",
            "user@exa_mple.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_email_over_254_characters_is_refused() {
        let label = "a".repeat(63);
        let long = format!("user@{label}.{label}.{label}.{label}.com");
        assert!(long.len() > 254);
        assert_eq!(
            Email::parse(&long).err().map(|e| e.message),
            Some("must be at most 254 characters".to_string())
        );
        let local = format!("{}@example.com", "a".repeat(65));
        assert!(Email::parse(&local).is_err());
    }

    #[test]
    fn an_email_knows_its_domain() {
        assert_eq!(
            Email::parse("admin@TicketBottle.vn").map(|e| e.domain().to_string()),
            Ok("ticketbottle.vn".to_string())
        );
    }

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

    #[test]
    fn web_urls_are_accepted() {
        for ok in [
            "https://cdn.example.com/avatars/lan.png",
            "http://example.com",
            "HTTPS://Example.com:8443/a?b=c#d",
            "https://[2001:db8::1]/logo.svg",
            "https://[2001:db8::1]:443/logo.svg",
            "https://img.example.vn/%E1%BA%A2nh.jpg",
        ] {
            assert!(Url::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn non_web_or_malformed_urls_are_refused() {
        for bad in [
            "",
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "ftp://example.com/a.png",
            "https://",
            "https:///path",
            "https://user:pass@example.com/",
            "https://exa mple.com/",
            "https://example.com/ảnh.jpg",
            "https://example.com:99999/",
            "https://example.com:/",
            "https://-bad-.com/",
            "https://[]/",
            "https://[::1]x/",
            "example.com/logo.png",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert!(Url::parse(&long).is_err());
    }

    #[test]
    fn vietnamese_category_names_fold_to_ascii_slugs() {
        for (name, slug) in [
            ("Âm nhạc", "am-nhac"),
            ("Thể thao", "the-thao"),
            ("Đời sống", "doi-song"),
            ("Hội thảo & Triển lãm", "hoi-thao-trien-lam"),
            ("  Sân khấu -- Nghệ thuật!  ", "san-khau-nghe-thuat"),
            ("ẨM THỰC", "am-thuc"),
            ("Café Concert 2025", "cafe-concert-2025"),
            ("Straße", "strasse"),
        ] {
            assert_eq!(
                Slug::from_name(name).map(|s| s.0),
                Ok(slug.to_string()),
                "{name}"
            );
        }
    }

    #[test]
    fn decomposed_vietnamese_folds_like_precomposed() {
        // "Âm nhạc" typed as base letters followed by combining marks (NFD).
        assert_eq!(
            Slug::from_name("A\u{0302}m nha\u{0323}c").map(|s| s.0),
            Ok("am-nhac".to_string())
        );
    }

    #[test]
    fn a_name_without_letters_or_digits_has_no_slug() {
        assert!(Slug::from_name("!!! ???").is_err());
        assert!(Slug::from_name("音楽").is_err());
    }

    #[test]
    fn a_long_name_gives_a_slug_of_at_most_80_characters_without_a_trailing_hyphen() {
        let name = format!("{} b", "a".repeat(79));
        let slug = Slug::from_name(&name).map(|s| s.0).unwrap_or_default();
        assert_eq!(slug, "a".repeat(79));
    }

    #[test]
    fn slug_queries_are_normalised_or_refused() {
        assert_eq!(
            Slug::parse("Am-Nhac").map(|s| s.0),
            Ok("am-nhac".to_string())
        );
        for bad in ["", "-am", "am-", "am--nhac", "âm-nhạc", "am nhac"] {
            assert!(Slug::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn currencies_carry_their_minor_unit_exponent() {
        assert_eq!(
            CurrencyCode::parse("VND").map(|c| c.minor_unit_exponent()),
            Ok(0)
        );
        assert_eq!(CurrencyCode::parse("usd").map(|c| c.as_str()), Ok("USD"));
        assert_eq!(CurrencyCode::parse("JPY"), Ok(CurrencyCode::JPY));
        assert_eq!(
            CurrencyCode::parse("THB").map(|c| c.minor_unit_exponent()),
            Ok(2)
        );
        for bad in ["", "XXX", "US", "USDD", "đồng"] {
            assert!(CurrencyCode::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn currency_codes_are_unique_iso_shapes() {
        let codes: Vec<&str> = CurrencyCode::SUPPORTED.iter().map(|c| c.as_str()).collect();
        for code in &codes {
            assert_eq!(code.len(), 3);
            assert!(code.chars().all(|c| c.is_ascii_uppercase()));
        }
        let mut unique = codes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), codes.len());
    }

    #[test]
    fn a_currency_round_trips_through_json() {
        let json = serde_json::to_string(&CurrencyCode::VND).unwrap_or_default();
        assert_eq!(json, "\"VND\"");
        let back: Result<CurrencyCode, _> = serde_json::from_str("\"sgd\"");
        assert_eq!(back.ok(), Some(CurrencyCode::SGD));
        assert!(serde_json::from_str::<CurrencyCode>("\"ABC\"").is_err());
    }

    #[test]
    fn prices_are_non_negative_and_bounded() {
        assert_eq!(PriceCents::parse(0).map(PriceCents::get), Ok(0));
        assert_eq!(PriceCents::parse(150_000).map(PriceCents::get), Ok(150_000));
        assert!(PriceCents::parse(-1).is_err());
        assert!(PriceCents::parse(PriceCents::MAX).is_ok());
        assert!(PriceCents::parse(PriceCents::MAX + 1).is_err());
    }

    #[test]
    fn a_ticket_class_has_at_least_one_ticket() {
        assert!(TicketTotal::parse(0).is_err());
        assert!(TicketTotal::parse(-5).is_err());
        assert_eq!(TicketTotal::parse(1).map(TicketTotal::get), Ok(1));
        assert!(TicketTotal::parse(i64::from(TicketTotal::MAX) + 1).is_err());
        assert!(TicketTotal::parse(i64::MAX).is_err());
    }

    #[test]
    fn the_per_user_cap_is_between_1_and_1000() {
        assert!(MaxTicketsPerUser::parse(0).is_err());
        assert!(MaxTicketsPerUser::parse(1).is_ok());
        assert!(MaxTicketsPerUser::parse(1_000).is_ok());
        assert!(MaxTicketsPerUser::parse(1_001).is_err());
    }

    #[test]
    fn missing_waitroom_settings_take_the_api_defaults() {
        assert_eq!(
            WaitroomSettings::parse(None, None, None),
            Ok(WaitroomSettings {
                max_concurrent_checkouts: 100,
                checkout_ttl_seconds: 900,
                admission_batch: 100
            })
        );
    }

    #[test]
    fn every_bad_waitroom_setting_is_reported_under_its_path() {
        let errors = WaitroomSettings::parse(Some(0), Some(30), Some(-1))
            .err()
            .unwrap_or_default();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "waitroom.maxConcurrentCheckouts",
                "waitroom.checkoutTtlSeconds",
                "waitroom.admissionBatch"
            ]
        );
    }

    #[test]
    fn json_integers_accept_whole_floats_only() {
        use serde_json::json;
        assert_eq!(json_integer(&json!(150000)), Ok(150_000));
        assert_eq!(json_integer(&json!(150000.0)), Ok(150_000));
        assert_eq!(json_integer(&json!(-3)), Ok(-3));
        assert!(json_integer(&json!(1.5)).is_err());
        assert!(json_integer(&json!("5")).is_err());
        assert!(json_integer(&json!(null)).is_err());
        assert!(json_integer(&json!(1e300)).is_err());
    }

    #[test]
    fn known_instants_parse_to_their_unix_milliseconds() {
        for (text, ms) in [
            ("1970-01-01T00:00:00Z", 0),
            ("1970-01-01T00:00:00.001Z", 1),
            ("1969-12-31T23:59:59.999Z", -1),
            ("2024-02-29T12:34:56.789Z", 1_709_210_096_789),
            ("2000-02-29T00:00:00Z", 951_782_400_000),
            ("1900-03-01T00:00:00Z", -2_203_891_200_000),
            ("1600-02-29T00:00:00Z", -11_670_998_400_000),
            ("0000-01-01T00:00:00Z", -62_167_219_200_000),
            ("9999-12-31T23:59:59.999Z", 253_402_300_799_999),
            ("2025-06-01T19:30:00+07:00", 1_748_781_000_000),
            ("2025-06-01T12:30:00-00:00", 1_748_781_000_000),
            ("2025-06-01t12:30:00z", 1_748_781_000_000),
            ("2025-06-01T07:00:00-05:30", 1_748_781_000_000),
            ("2025-06-01T12:30:00.5Z", 1_748_781_000_500),
            ("2025-06-01T12:30:00.123456789Z", 1_748_781_000_123),
            (" 2025-06-01T12:30:00Z ", 1_748_781_000_000),
        ] {
            assert_eq!(parse_rfc3339(text), Ok(ms), "{text}");
        }
    }

    #[test]
    fn garbage_and_impossible_dates_are_refused() {
        for bad in [
            "",
            "now",
            "2025-06-01",
            "2025-06-01T12:30Z",
            "2025-06-01T12:30:00",
            "2025-06-01 12:30:00Z",
            "2025-6-01T12:30:00Z",
            "2025-06-01T12:30:00.Z",
            "2025-06-01T12:30:00.1234567891Z",
            "2025-13-01T12:30:00Z",
            "2025-00-01T12:30:00Z",
            "2025-02-29T12:30:00Z",
            "1900-02-29T12:30:00Z",
            "2025-04-31T12:30:00Z",
            "2025-06-00T12:30:00Z",
            "2025-06-01T24:00:00Z",
            "2025-06-01T12:60:00Z",
            "2025-06-01T23:59:60Z",
            "2025-06-01T12:30:00+24:00",
            "2025-06-01T12:30:00+07:60",
            "2025-06-01T12:30:00+0700",
            "2025-06-01T12:30:00+07:00junk",
            "2025-06-01T12:30:00ZZ",
            "+2025-06-01T12:30:00Z",
            "２０２５-06-01T12:30:00Z",
            "0000-01-01T00:00:00+01:00",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timestamps_format_as_utc_with_milliseconds() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            format_rfc3339(1_709_210_096_789),
            "2024-02-29T12:34:56.789Z"
        );
        assert_eq!(format_rfc3339(i64::MIN), "0000-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(i64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn a_timestamp_round_trips_through_json() {
        let at = Timestamp::from_unix_ms(1_748_781_000_000);
        let json = at.map(|t| serde_json::to_string(&t).unwrap_or_default());
        assert_eq!(json.as_deref(), Some("\"2025-06-01T12:30:00.000Z\""));
        let back: Option<Timestamp> = serde_json::from_str("\"2025-06-01T19:30:00+07:00\"").ok();
        assert_eq!(back, at);
    }

    #[test]
    fn pagination_defaults_to_page_1_of_20() {
        assert_eq!(Pagination::parse(None, None), Ok(Pagination::default()));
        assert_eq!(
            Pagination::parse(Some(""), Some(" ")),
            Ok(Pagination {
                page: 1,
                page_size: 20
            })
        );
        assert_eq!(
            Pagination::parse(Some("3"), Some("100")).map(|p| (p.offset(), p.limit())),
            Ok((200, 100))
        );
    }

    #[test]
    fn bad_pagination_reports_each_field() {
        let errors = Pagination::parse(Some("0"), Some("101"))
            .err()
            .unwrap_or_default();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["page", "pageSize"]);
        assert!(Pagination::parse(Some("-1"), None).is_err());
        assert!(Pagination::parse(Some("1.5"), None).is_err());
        assert!(Pagination::parse(Some("abc"), None).is_err());
        assert!(Pagination::parse(Some("1000001"), None).is_err());
        assert!(Pagination::parse(None, Some("0")).is_err());
    }

    proptest! {
        #[test]
        fn every_representable_instant_round_trips(ms in Timestamp::MIN.0..=Timestamp::MAX.0) {
            let text = format_rfc3339(ms);
            prop_assert_eq!(parse_rfc3339(&text), Ok(ms));
        }

        #[test]
        fn civil_dates_round_trip(days in -800_000i64..3_000_000) {
            let (year, month, day) = civil_from_days(days);
            prop_assert!((1..=12).contains(&month));
            prop_assert!(day >= 1 && day <= days_in_month(year, month));
            prop_assert_eq!(days_from_civil(year, month, day), days);
        }

        #[test]
        fn formatted_timestamps_sort_like_their_instants(
            a in Timestamp::MIN.0..=Timestamp::MAX.0,
            b in Timestamp::MIN.0..=Timestamp::MAX.0,
        ) {
            prop_assert_eq!(a.cmp(&b), format_rfc3339(a).cmp(&format_rfc3339(b)));
        }

        #[test]
        fn an_offset_names_the_same_instant_as_utc(
            ms in 0i64..4_102_444_800_000,
            offset_minutes in -(23 * 60 + 59)..=(23 * 60 + 59i64),
        ) {
            // Write the UTC instant in local time at the offset, then parse it back.
            let local = format_rfc3339(ms + offset_minutes * MS_PER_MINUTE);
            let sign = if offset_minutes < 0 { '-' } else { '+' };
            let magnitude = offset_minutes.abs();
            let text = format!(
                "{}{sign}{:02}:{:02}",
                &local[..local.len() - 1],
                magnitude / 60,
                magnitude % 60
            );
            prop_assert_eq!(parse_rfc3339(&text), Ok(ms));
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in "\\PC{0,40}") {
            let _ = parse_rfc3339(&text);
            let _ = Email::parse(&text);
            let _ = Url::parse(&text);
            let _ = Slug::from_name(&text);
            let _ = PersonName::parse(&text);
        }

        #[test]
        fn derived_slugs_always_parse_as_slugs(name in "\\PC{0,120}") {
            if let Ok(slug) = Slug::from_name(&name) {
                prop_assert_eq!(Slug::parse(slug.as_str()), Ok(slug.clone()));
            }
        }

        #[test]
        fn accepted_emails_are_stored_lowercase_and_reparse_to_themselves(
            local in "[A-Za-z0-9][A-Za-z0-9._+-]{0,20}[A-Za-z0-9]",
            domain in "[A-Za-z][A-Za-z0-9-]{0,10}[A-Za-z0-9]\\.[A-Za-z]{2,6}",
        ) {
            let raw = format!("{local}@{domain}");
            if let Ok(email) = Email::parse(&raw) {
                prop_assert_eq!(email.as_str(), raw.to_ascii_lowercase());
                prop_assert_eq!(Email::parse(email.as_str()), Ok(email.clone()));
            } else {
                prop_assert!(local.contains(".."));
            }
        }
    }
}
