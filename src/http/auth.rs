//! Who is calling: the bearer access token turned into an `Actor`, and the one way handlers
//! ask the access policy whether that actor may act.

use std::cell::RefCell;

use crate::domain::access::{authorize, Action, Actor, Decision, EventRole};
use crate::domain::ids::UserId;
use crate::domain::sessions::{
    check_may_buy, judge, standing_cache, EmailNotVerified, Session, StandingCache,
};
use crate::domain::throttle::client_subject;
use crate::domain::tokens::{AccessClaims, TokenKey, VerifiedAccess};
use crate::store::{d1, users};

use super::RequestContext;
use crate::error::ApiError;

/// Access tokens live an hour: long enough for an on-sale, short enough that a soft-deleted
/// user's token dies soon.
pub const ACCESS_TOKEN_TTL_SECONDS: i64 = 3600;

thread_local! {
    /// Accounts' standings this isolate read recently (Workers run one request at a time per
    /// isolate thread, so a `RefCell` is never borrowed across an await here).
    static STANDINGS: RefCell<StandingCache> = RefCell::new(standing_cache());
}

/// Forgets what this isolate knew of the account, after changing its token version, so the
/// next request through this isolate sees the change at once.
pub fn forget_standing(user_id: &str) {
    STANDINGS.with(|c| c.borrow_mut().forget(user_id));
}

thread_local! {
    /// Access tokens this isolate verified (one key per isolate: the settings are the
    /// isolate's, `Settings::of_isolate`).
    static VERIFIED: std::cell::RefCell<VerifiedAccess> =
        std::cell::RefCell::new(VerifiedAccess::default());
}

impl RequestContext {
    pub fn token_key(&self) -> Result<TokenKey, ApiError> {
        let secret = self
            .settings
            .jwt_secret
            .as_deref()
            .ok_or_else(|| ApiError::Internal("JWT_SECRET is not set".into()))?;
        Ok(TokenKey::new(secret.as_bytes()))
    }

    fn bearer(&self) -> Option<String> {
        let header = self.header("Authorization")?;
        let (scheme, token) = header.trim().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string())
    }

    /// The verified claims of the request's access token; a present but invalid token is
    /// an error (401), never silently anonymous.
    pub fn access_claims(&self) -> Result<Option<AccessClaims>, ApiError> {
        let Some(token) = self.bearer() else {
            return Ok(None);
        };
        let key = self.token_key()?;
        VERIFIED
            .with(|v| v.borrow_mut().verify(&key, &token, self.now_ms))
            .map(Some)
            .map_err(|_| ApiError::Unauthenticated)
    }

    /// Who is calling, as resolved once for this request by [`RequestContext::resolve_actor`].
    pub fn actor(&self) -> Result<Actor, ApiError> {
        self.actor.clone()
    }

    /// Turns the bearer token into the actor: signature and lifetime, then the account's
    /// standing (token version, deleted, platform role re-derived from `ADMIN_EMAILS`), read
    /// from this isolate's cache or D1 (`domain::sessions`); with it, whether the account's
    /// email is verified.
    ///
    /// `trust_token` (a crowd's waitroom calls): a token that says the email was verified is
    /// taken as it is, with no standing read: at 17,000 joins a second one D1 read per fan
    /// would be the limit. What that gives up is in README "Security": until such a token
    /// expires (an hour), a logout-all or a deleted account does not stop it from holding or
    /// reading a place in a queue; ordering, which reads the standing, still refuses it.
    pub(super) async fn resolve_actor(&self, trust_token: bool) -> Result<(Actor, bool), ApiError> {
        let Some(claims) = self.access_claims()? else {
            return Ok((Actor::Anonymous, false));
        };
        if trust_token && claims.ev {
            return Ok((
                Actor::User {
                    // Nothing on these routes needs the platform role: no admin powers here.
                    platform_admin: false,
                    id: UserId::new(claims.sub),
                },
                true,
            ));
        }
        let cached = STANDINGS.with(|c| c.borrow().get(&claims.sub, self.now_ms));
        let standing = match cached {
            Some(standing) => standing,
            None => {
                let db = d1::db(&self.env)?;
                let standing = users::standing(&db, &claims.sub).await?;
                STANDINGS.with(|c| {
                    c.borrow_mut()
                        .put(&claims.sub, standing.clone(), self.now_ms)
                });
                standing
            }
        };
        match judge(claims.ver, standing.as_ref(), |email, verified| {
            self.settings.is_platform_admin(email, verified)
        }) {
            Session::Live { platform_admin } => Ok((
                Actor::User {
                    platform_admin,
                    id: UserId::new(claims.sub),
                },
                standing.is_some_and(|s| s.email_verified),
            )),
            Session::Ended => Err(ApiError::Unauthenticated),
        }
    }

    /// The signed-in user's id, or 401.
    pub fn require_user(&self) -> Result<(UserId, bool), ApiError> {
        match self.actor()? {
            Actor::User { id, platform_admin } => Ok((id, platform_admin)),
            Actor::Anonymous => Err(ApiError::Unauthenticated),
        }
    }

    /// Refuses a caller whose email is not verified where this deployment requires it to join a
    /// waitroom or order (403 `EMAIL_NOT_VERIFIED`, `domain::sessions::check_may_buy`).
    pub fn require_verified_buyer(&self) -> Result<(), ApiError> {
        check_may_buy(self.settings.require_verified_email, self.email_verified)
            .map_err(|e| ApiError::rule(403, EmailNotVerified::CODE, e.to_string()))
    }

    /// Asks the access policy; a denial becomes the matching 401/403/404 problem.
    pub fn permit(
        &self,
        actor: &Actor,
        role: Option<EventRole>,
        action: &Action,
    ) -> Result<(), ApiError> {
        match authorize(actor, role, action) {
            Decision::Allow => Ok(()),
            Decision::Deny(reason) => Err(reason.into()),
        }
    }

    pub fn client_ip(&self) -> String {
        self.header("CF-Connecting-IP")
            .unwrap_or_else(|| "unknown-client".to_string())
    }

    /// The client as the rate limits count it (an IPv6 /64 is one client).
    pub fn client_subject(&self) -> String {
        client_subject(self.header("CF-Connecting-IP").as_deref())
    }
}
