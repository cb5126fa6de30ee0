//! Who counts as one client for the rate limits: the subject a throttle key is built from.
//!
//! An IPv6 customer is routinely given a whole /64, so keying a limit on the full address hands
//! one person 2^64 buckets. Limits therefore key IPv6 on its /64 prefix and IPv4 on the
//! address (an IPv4-mapped IPv6 address is its IPv4 address).

use std::net::{IpAddr, Ipv6Addr};

/// The subject for a client address as the edge reports it (`CF-Connecting-IP`). Anything that
/// is not an IP address shares one bucket, so garbage cannot mint fresh buckets either.
pub fn client_subject(reported: Option<&str>) -> String {
    match reported
        .map(str::trim)
        .and_then(|s| s.parse::<IpAddr>().ok())
    {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{}/64", Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
        None => "unknown-client".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_addresses_in_one_ipv6_slash_64_are_one_client() {
        let a = client_subject(Some("2001:db8:85a3:8d3:1319:8a2e:370:7348"));
        let b = client_subject(Some("2001:0db8:85a3:08d3:ffff:ffff:ffff:0001"));
        assert_eq!(a, b);
        assert_eq!(a, "2001:db8:85a3:8d3::/64");
    }

    #[test]
    fn neighbouring_ipv6_slash_64s_are_different_clients() {
        assert_ne!(
            client_subject(Some("2001:db8:85a3:8d3::1")),
            client_subject(Some("2001:db8:85a3:8d4::1"))
        );
    }

    #[test]
    fn ipv4_keys_on_the_whole_address_and_mapped_ipv6_is_ipv4() {
        assert_eq!(client_subject(Some("203.0.113.7")), "203.0.113.7");
        assert_ne!(
            client_subject(Some("203.0.113.7")),
            client_subject(Some("203.0.113.8"))
        );
        assert_eq!(client_subject(Some("::ffff:203.0.113.7")), "203.0.113.7");
    }

    #[test]
    fn anything_else_shares_one_bucket() {
        assert_eq!(client_subject(None), "unknown-client");
        assert_eq!(client_subject(Some("not an ip")), "unknown-client");
        assert_eq!(client_subject(Some("")), "unknown-client");
        assert_eq!(client_subject(Some("2001:db8::1%eth0")), "unknown-client");
    }
}
