//! Calls to other services (payment providers, Turnstile's siteverify, the mail API) under a
//! time limit: a slow peer may cost a request or a queue step a bounded wait, never the
//! runtime's own limit with the fan's request still open.

use std::future::Future;
use std::time::Duration;

/// The result of `work`, or an error naming `peer` if it has not finished within `limit_ms`.
pub async fn within<T>(
    limit_ms: u64,
    peer: &str,
    work: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    let timeout = worker::Delay::from(Duration::from_millis(limit_ms));
    futures::pin_mut!(work);
    match futures::future::select(work, timeout).await {
        futures::future::Either::Left((result, _)) => result,
        futures::future::Either::Right(_) => {
            Err(format!("{peer} gave no answer within {limit_ms} ms"))
        }
    }
}
