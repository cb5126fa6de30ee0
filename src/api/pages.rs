//! The app's own pages (storefront, event, waitroom, checkout, order, organizer console, API
//! docs): static assets served under the paths people visit, so pages and API share one origin
//! and one set of security headers.

use crate::error::ApiError;
use crate::http::{ApiResult, RequestContext};

/// The path the assets binding answers for `asset_path`. With `html_handling =
/// "auto-trailing-slash"` (wrangler.toml) a fetch of `/x.html` is redirected to `/x` and one of
/// `/d/index.html` to `/d/`, so ask for the canonical path and get the page itself.
fn canonical(asset_path: &str) -> &str {
    if let Some(dir) = asset_path.strip_suffix("index.html") {
        dir
    } else {
        asset_path.strip_suffix(".html").unwrap_or(asset_path)
    }
}

/// Serves `asset_path` from the static assets; the page reads its ids from `location`.
pub async fn page(rc: &RequestContext, asset_path: &str) -> ApiResult {
    let assets = rc.env.assets("ASSETS")?;
    let response = assets
        .fetch(
            format!("https://assets.local{}", canonical(asset_path)),
            None,
        )
        .await?;
    if response.status_code() == 404 {
        return Err(ApiError::NotFound);
    }
    Ok(response)
}
