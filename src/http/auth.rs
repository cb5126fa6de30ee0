//! Who is calling: the bearer access token turned into an `Actor`, and the one way handlers
//! ask the access policy whether that actor may act.

use crate::domain::access::{authorize, Action, Actor, Decision, EventRole};
use crate::domain::ids::UserId;
use crate::domain::tokens::{AccessClaims, PlatformRole, TokenKey};

use super::RequestContext;
use crate::error::ApiError;

/// Access tokens live an hour: long enough for an on-sale, short enough that a soft-deleted
/// user's token dies soon.
pub const ACCESS_TOKEN_TTL_SECONDS: i64 = 3600;

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
        self.token_key()?
            .verify_access(&token, self.now_ms)
            .map(Some)
            .map_err(|_| ApiError::Unauthenticated)
    }

    pub fn actor(&self) -> Result<Actor, ApiError> {
        Ok(match self.access_claims()? {
            None => Actor::Anonymous,
            Some(claims) => Actor::User {
                platform_admin: claims.role == PlatformRole::Admin,
                id: UserId::new(claims.sub),
            },
        })
    }

    /// The signed-in user's id, or 401.
    pub fn require_user(&self) -> Result<(UserId, bool), ApiError> {
        match self.actor()? {
            Actor::User { id, platform_admin } => Ok((id, platform_admin)),
            Actor::Anonymous => Err(ApiError::Unauthenticated),
        }
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
}
