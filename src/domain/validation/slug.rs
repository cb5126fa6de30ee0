//! Category slugs: derived from a name by folding Vietnamese and European letters to ASCII, or
//! read back from a query.

use std::fmt;

use serde::Serialize;

use super::FieldError;

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    proptest! {
        #[test]
        fn derived_slugs_always_parse_as_slugs(name in "\\PC{0,120}") {
            if let Ok(slug) = Slug::from_name(&name) {
                prop_assert_eq!(Slug::parse(slug.as_str()), Ok(slug.clone()));
            }
        }
    }
}
