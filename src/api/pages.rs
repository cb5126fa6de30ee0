//! The app's own pages (waitroom, checkout, order, API docs): static assets served under the
//! paths people visit, so pages and API share one origin and one set of security headers.

use crate::error::ApiError;
use crate::http::{ApiResult, RequestContext};

/// Serves `asset_path` from the static assets; the page reads its ids from `location`.
pub async fn page(rc: &RequestContext, asset_path: &str) -> ApiResult {
    let assets = rc.env.assets("ASSETS")?;
    let response = assets
        .fetch(format!("https://assets.local{asset_path}"), None)
        .await?;
    if response.status_code() == 404 {
        return Err(ApiError::NotFound);
    }
    Ok(response)
}
