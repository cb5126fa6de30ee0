//! Web URLs a browser will fetch (avatars, thumbnails, logos): http(s) only, no credentials.

use std::fmt;

use serde::Serialize;

use super::FieldError;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
