//! Which page of a list to return, from `?page=&pageSize=`.

use serde::Serialize;

use super::FieldError;

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
}
