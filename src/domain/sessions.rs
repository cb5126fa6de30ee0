//! Whether an access token still speaks for its user: the account's token version, its live
//! standing and its platform role, decided now rather than when the token was signed.
//!
//! A JWT alone cannot be revoked. Each account carries a `token_version`; tokens are signed
//! with it, and changing the password, deleting the account or `logout-all` raise it, ending
//! every earlier token. The platform role is re-derived from the account (its email against
//! `ADMIN_EMAILS`) at each check, so a removed admin loses the role at once, not an hour later.
//! The edge keeps what it read per isolate for up to 30 s ([`StandingCache`]), so the hot
//! paths (joins, polls, orders) do not read D1 on every request.

use super::ttl_cache::TtlCache;

/// What the store says about an account, as far as its tokens are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountStanding {
    pub token_version: u32,
    pub email: String,
    pub email_verified: bool,
    pub deleted: bool,
}

/// The verdict on a token whose signature and lifetime already checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    Live { platform_admin: bool },
    Ended,
}

/// Judges a verified token's version against the account. `is_platform_admin(email,
/// verified)` is the deployment's rule (`Settings::is_platform_admin`).
pub fn judge(
    token_version: u32,
    account: Option<&AccountStanding>,
    is_platform_admin: impl Fn(&str, bool) -> bool,
) -> Session {
    match account {
        Some(a) if !a.deleted && a.token_version == token_version => Session::Live {
            platform_admin: is_platform_admin(&a.email, a.email_verified),
        },
        _ => Session::Ended,
    }
}

/// How long an isolate trusts what it read. A revocation made through another isolate takes
/// effect within this bound; one made through this isolate at once (it forgets the entry).
pub const STANDING_TTL_MS: i64 = 30_000;
/// Entries kept per isolate; past it the stale ones go, then the whole map (a burst of
/// distinct users at an on-sale must not grow an isolate's memory without bound).
pub const STANDING_CAPACITY: usize = 10_000;

/// Accounts' standings read recently by this isolate, `None` for an account that is gone.
pub type StandingCache = TtlCache<Option<AccountStanding>>;

/// An empty [`StandingCache`] with the standing's TTL and capacity.
pub fn standing_cache() -> StandingCache {
    TtlCache::new(STANDING_TTL_MS, STANDING_CAPACITY)
}

/// The caller's email is not verified where the deployment requires it to queue or order:
/// 403 `EMAIL_NOT_VERIFIED`. One verified address per place keeps one person from holding many
/// places in the queue with throwaway accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("verify your email address before joining a waitroom or ordering")]
pub struct EmailNotVerified;

impl EmailNotVerified {
    pub const CODE: &'static str = "EMAIL_NOT_VERIFIED";
}

/// Whether a caller whose address is (or is not) `email_verified` may join a waitroom or
/// order, where the deployment does (or does not) `require_verified_email`.
pub fn check_may_buy(
    require_verified_email: bool,
    email_verified: bool,
) -> Result<(), EmailNotVerified> {
    if require_verified_email && !email_verified {
        Err(EmailNotVerified)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(version: u32) -> AccountStanding {
        AccountStanding {
            token_version: version,
            email: "ops@example.com".into(),
            email_verified: true,
            deleted: false,
        }
    }

    fn admins(email: &str, verified: bool) -> bool {
        email == "ops@example.com" && verified
    }

    #[test]
    fn a_token_of_the_current_version_is_live_and_the_role_comes_from_the_account() {
        assert_eq!(
            judge(3, Some(&account(3)), admins),
            Session::Live {
                platform_admin: true
            }
        );
        // Removed from ADMIN_EMAILS: the same token is a plain user's now.
        assert_eq!(
            judge(3, Some(&account(3)), |_, _| false),
            Session::Live {
                platform_admin: false
            }
        );
        let unverified = AccountStanding {
            email_verified: false,
            ..account(3)
        };
        assert_eq!(
            judge(3, Some(&unverified), admins),
            Session::Live {
                platform_admin: false
            }
        );
    }

    #[test]
    fn an_older_or_newer_version_a_deleted_or_missing_account_ends_the_session() {
        assert_eq!(judge(2, Some(&account(3)), admins), Session::Ended);
        assert_eq!(judge(4, Some(&account(3)), admins), Session::Ended);
        let deleted = AccountStanding {
            deleted: true,
            ..account(3)
        };
        assert_eq!(judge(3, Some(&deleted), admins), Session::Ended);
        assert_eq!(judge(0, None, admins), Session::Ended);
    }

    #[test]
    fn the_cache_answers_within_its_ttl_and_forgets_on_request() {
        let mut cache = standing_cache();
        assert_eq!(cache.get("u1", 1_000), None);
        cache.put("u1", Some(account(1)), 1_000);
        cache.put("gone", None, 1_000);
        assert_eq!(
            cache.get("u1", 1_000 + STANDING_TTL_MS - 1),
            Some(Some(account(1)))
        );
        assert_eq!(cache.get("gone", 1_001), Some(None));
        assert_eq!(cache.get("u1", 1_000 + STANDING_TTL_MS), None);
        // A clock that went backwards does not extend trust.
        assert_eq!(cache.get("u1", 999), None);
        cache.forget("u1");
        assert_eq!(cache.get("u1", 1_001), None);
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let mut cache = standing_cache();
        for i in 0..(STANDING_CAPACITY * 2 + 7) {
            cache.put(&format!("u{i}"), None, 1_000);
            assert!(cache.len() <= STANDING_CAPACITY);
        }
        // Stale entries are dropped first, fresh ones kept.
        let mut cache = standing_cache();
        for i in 0..STANDING_CAPACITY {
            cache.put(&format!("old{i}"), None, 0);
        }
        cache.put("fresh", Some(account(1)), STANDING_TTL_MS + 1);
        assert_eq!(cache.len(), 1);
        assert!(cache.get("fresh", STANDING_TTL_MS + 2).is_some());
    }

    #[test]
    fn an_unverified_address_may_buy_only_where_verification_is_not_required() {
        assert_eq!(check_may_buy(true, false), Err(EmailNotVerified));
        assert_eq!(check_may_buy(true, true), Ok(()));
        assert_eq!(check_may_buy(false, false), Ok(()));
        assert_eq!(check_may_buy(false, true), Ok(()));
    }
}
