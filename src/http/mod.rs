//! The HTTP shell every request passes through: request id, CORS, rate limit, routing, body
//! parsing, problem+json errors, security headers and one structured log line.

pub mod auth;
mod bot_check;
mod problem;
pub mod router;

use std::cell::RefCell;
use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use worker::{Context, Date, Env, Headers, Method, Request, Response};

use crate::config::Settings;
use crate::domain::access::Actor;
use crate::error::ApiError;
use crate::log::{self, Level, Trace};

pub use router::{PathParams, Routed};

use router::Resolution;

pub type ApiResult = Result<Response, ApiError>;

/// What a handler gets: the request, bindings, settings and the captured path parameters.
pub struct RequestContext {
    pub req: Request,
    pub env: Env,
    pub ctx: Context,
    pub settings: Rc<Settings>,
    pub params: PathParams,
    pub now_ms: i64,
    /// The route pattern (`/api/orders/{id}`), the `route` of log lines.
    pub route: &'static str,
    /// This request's trace (`requestId`), for log lines written while handling it.
    pub trace: Trace,
    /// Fields the handler adds to the request's log line (`orderId`, `provider`, ...).
    annotations: Rc<RefCell<Map<String, Value>>>,
    /// The caller, resolved from the bearer token before dispatch (`auth.rs`).
    actor: Result<Actor, ApiError>,
    /// Whether the caller's email is verified, from the same account standing as `actor`.
    email_verified: bool,
}

impl RequestContext {
    /// Adds a field to this request's log line (the last value of a key wins).
    pub fn annotate(&self, key: &str, value: impl Into<Value>) {
        self.annotations
            .borrow_mut()
            .insert(key.into(), value.into());
    }

    pub fn param(&self, name: &str) -> Result<&str, ApiError> {
        self.params.get(name).ok_or(ApiError::NotFound)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.req.headers().get(name).ok().flatten()
    }

    /// The body as text, capped like JSON bodies; for signed payloads that must be verified
    /// byte for byte before anything parses them.
    pub async fn raw_body(&mut self) -> Result<String, ApiError> {
        let bytes = self.capped_body().await?;
        String::from_utf8(bytes).map_err(|_| ApiError::MalformedJson("body is not UTF-8".into()))
    }

    /// A body that says it is over the cap is refused before a byte of it is read.
    fn refuse_declared_oversize(&self) -> Result<(), ApiError> {
        let limit = self.settings.max_body_bytes;
        match self
            .header("Content-Length")
            .and_then(|v| v.parse::<usize>().ok())
        {
            Some(len) if len > limit => Err(ApiError::PayloadTooLarge { limit }),
            _ => Ok(()),
        }
    }

    /// The body, read chunk by chunk and abandoned as soon as it passes the cap: a chunked
    /// body without `Content-Length` (or with a lying one) never gets buffered whole.
    async fn capped_body(&mut self) -> Result<Vec<u8>, ApiError> {
        use futures::StreamExt;

        self.refuse_declared_oversize()?;
        let limit = self.settings.max_body_bytes;
        // No body at all (a GET, or a POST without one) reads as empty, as `bytes()` did.
        let Ok(mut stream) = self.req.stream() else {
            return Ok(Vec::new());
        };
        let mut body = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(ApiError::from)?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// `scheme://host[:port]` of this request, for links the app hands out.
    pub fn origin(&self) -> Result<String, ApiError> {
        let url = self.req.url()?;
        Ok(url.origin().ascii_serialization())
    }

    /// Reads the body once, enforcing the size cap before and while reading (Content-Length
    /// can be absent or lie), and turns it into `T`. Syntax errors are `MALFORMED_JSON`;
    /// well-formed JSON of the wrong shape is `VALIDATION_FAILED`.
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<T, ApiError> {
        self.refuse_declared_oversize()?;
        if let Some(ct) = self.header("Content-Type") {
            let ct = ct.to_ascii_lowercase();
            if !ct.starts_with("application/json") && !ct.contains("+json") {
                return Err(ApiError::UnsupportedMediaType);
            }
        }
        let bytes = self.capped_body().await?;
        parse_json(&bytes)
    }
}

pub use crate::error::parse_json;

/// JSON response with a status.
pub fn json_response<T: serde::Serialize>(status: u16, body: &T) -> ApiResult {
    Ok(Response::from_json(body)?.with_status(status))
}

fn valid_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

fn client_key(req: &Request) -> String {
    let reported = req.headers().get("CF-Connecting-IP").ok().flatten();
    crate::domain::throttle::client_subject(reported.as_deref())
}

/// Provider notifications are signature-checked and come from a few provider addresses, so
/// they must not share the per-client bucket of the API (a provider's burst after an outage
/// would be refused in a format it does not read); their own limit answers in each
/// provider's format (`api::payments`).
const WEBHOOK_PREFIX: &str = "/api/payments/webhooks/";

/// A successful poll is logged once in this many per isolate. At a million waiting fans polling
/// every few seconds, a line per poll is hundreds of thousands of lines a second that say "still
/// waiting" (and locally, formatting them was a fifth of a request's time); failures, and every
/// other route, are always logged.
pub const POLL_LOG_SAMPLE: u32 = 100;

thread_local! {
    static POLLS_SEEN: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Whether this successful poll is the one in [`POLL_LOG_SAMPLE`] that is logged.
fn poll_sampled() -> bool {
    POLLS_SEEN.with(|seen| {
        let n = seen.get();
        seen.set(n.wrapping_add(1));
        n % POLL_LOG_SAMPLE == 0
    })
}

/// Serves one request with the route table of `E`. Never fails: every error becomes a
/// problem+json response.
pub async fn serve<E: Routed>(req: Request, env: Env, ctx: Context) -> Response {
    let started = Date::now().as_millis();
    let settings = Settings::of_isolate(&env);
    let method = req.method();
    let path = req.path();
    let origin = req.headers().get("Origin").ok().flatten();
    let request_id = req
        .headers()
        .get("X-Request-Id")
        .ok()
        .flatten()
        .filter(|id| valid_request_id(id))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());

    let mut route_label = "unmatched";
    let mut is_poll = false;
    let annotations = Rc::new(RefCell::new(Map::new()));
    let outcome: ApiResult = async {
        if method == Method::Options {
            return Ok(preflight(&req, &settings, origin.as_deref()));
        }
        let resolution = router::resolve::<E>(&method, &path);
        if let Resolution::Found(endpoint, _) = &resolution {
            route_label = endpoint.label();
            is_poll = endpoint.is_poll();
        }
        // Refuse to serve rather than run with a forgeable token key or a development feature
        // switched on. `GET /api/health` still answers (500, naming what is wrong), so an
        // operator sees why without reading logs.
        let is_health =
            matches!(resolution, Resolution::Found(e, _) if e.answers_when_misconfigured());
        if !settings.misconfiguration.is_empty() && !is_health {
            return Err(ApiError::Misconfigured(
                settings.misconfiguration.join("; "),
            ));
        }
        if path.starts_with("/api/") && !path.starts_with(WEBHOOK_PREFIX) {
            rate_limit(&env, &req).await?;
        }
        match resolution {
            // Cloudflare serves static assets before the Worker runs; locally (and for any
            // asset the platform passed through) fall back to the assets binding.
            Resolution::NotFound
                if !path.starts_with("/api/") && matches!(method, Method::Get | Method::Head) =>
            {
                serve_asset(&env, &req).await
            }
            Resolution::NotFound => Err(ApiError::NotFound),
            Resolution::MethodNotAllowed(allow) => Err(ApiError::MethodNotAllowed { allow }),
            Resolution::Found(endpoint, params) => {
                let mut rc = RequestContext {
                    req,
                    env,
                    ctx,
                    settings: Rc::clone(&settings),
                    params,
                    now_ms: started as i64,
                    route: route_label,
                    trace: Trace::request(&request_id),
                    annotations: Rc::clone(&annotations),
                    actor: Ok(Actor::Anonymous),
                    email_verified: false,
                };
                let resolved = rc.resolve_actor(endpoint.trusts_access_token()).await;
                rc.email_verified = resolved.as_ref().is_ok_and(|(_, verified)| *verified);
                rc.actor = resolved.map(|(actor, _)| actor);
                endpoint.dispatch(&mut rc).await
            }
        }
    }
    .await;

    let (response, error) = match outcome {
        Ok(r) => (r, None),
        Err(e) => (e.render(), Some(e)),
    };
    let response = decorate(response, &request_id, &settings, origin.as_deref(), &path);
    let status = response.status_code();
    let sampled = is_poll && status < 400;
    if sampled && !poll_sampled() {
        return response;
    }
    let mut line = serde_json::json!({
        "method": format!("{method:?}").to_uppercase(),
        "path": path,
        "route": route_label,
        "status": status,
        "durationMs": Date::now().as_millis().saturating_sub(started),
    });
    if let Some(e) = error {
        line["code"] = e.code().into();
        if matches!(e, ApiError::Internal(_)) {
            // The internal cause goes to the log only; the client saw fixed text.
            line["error"] = e.to_string().into();
        }
    }
    if sampled {
        line["sampledOneIn"] = POLL_LOG_SAMPLE.into();
    }
    if !settings.misconfiguration.is_empty() {
        // Every request of a misconfigured deployment names what is wrong (names, no values).
        line["misconfiguration"] = settings.misconfiguration.clone().into();
    }
    if let Value::Object(fields) = &mut line {
        for (k, v) in annotations.borrow().iter() {
            fields.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let level = match status {
        500.. => Level::Error,
        _ => Level::Info,
    };
    log::emit(level, "request", Some(&Trace::request(&request_id)), line);
    response
}

async fn serve_asset(env: &Env, req: &Request) -> ApiResult {
    let response = env.assets("ASSETS")?.fetch_request(req.clone()?).await?;
    if response.status_code() == 404 {
        return Err(ApiError::NotFound);
    }
    Ok(response)
}

async fn rate_limit(env: &Env, req: &Request) -> Result<(), ApiError> {
    // The binding is Cloudflare's own rate limiter (emulated locally by workerd). Its period
    // is configured in wrangler.toml; 60 s is the longest it supports, so that is the honest
    // upper bound on when to retry.
    let Ok(limiter) = env.rate_limiter("API_RATE_LIMITER") else {
        return Ok(());
    };
    match limiter.limit(client_key(req)).await {
        Ok(outcome) if !outcome.success => Err(ApiError::RateLimited {
            retry_after_seconds: 60,
        }),
        // A limiter outage must not take the sale down with it.
        _ => Ok(()),
    }
}

fn preflight(req: &Request, settings: &Settings, origin: Option<&str>) -> Response {
    let headers = Headers::new();
    if let Some(origin) = origin.filter(|o| settings.origin_allowed(o)) {
        let requested = req
            .headers()
            .get("Access-Control-Request-Headers")
            .ok()
            .flatten()
            .unwrap_or_default();
        let _ = headers.set("Access-Control-Allow-Origin", origin);
        let _ = headers.set(
            "Access-Control-Allow-Methods",
            "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
        );
        let allowed_headers = if requested.is_empty() {
            "Authorization, Content-Type, Idempotency-Key, X-Request-Id, Waitroom-Pass".to_string()
        } else {
            requested
        };
        let _ = headers.set("Access-Control-Allow-Headers", &allowed_headers);
        let _ = headers.set("Access-Control-Max-Age", "600");
    }
    Response::builder()
        .with_status(204)
        .with_headers(headers)
        .empty()
}

/// Adds the headers every response carries. Responses from other fetches (static assets)
/// have immutable headers, so the response is rebuilt with a fresh header set.
fn decorate(
    response: Response,
    request_id: &str,
    settings: &Settings,
    origin: Option<&str>,
    path: &str,
) -> Response {
    let headers = Headers::new();
    for (k, v) in response.headers().entries() {
        let _ = headers.append(&k, &v);
    }
    let set = |k: &str, v: &str| {
        let _ = headers.set(k, v);
    };
    set("X-Request-Id", request_id);
    set(
        "Strict-Transport-Security",
        "max-age=63072000; includeSubDomains",
    );
    set("X-Content-Type-Options", "nosniff");
    set("X-Frame-Options", "DENY");
    set("Referrer-Policy", "no-referrer");
    set("Cross-Origin-Opener-Policy", "same-origin");
    let is_page = !path.starts_with("/api/") || path == "/api/docs";
    if is_page {
        set(
            "Content-Security-Policy",
            // Turnstile's widget is a script and a frame from Cloudflare's own origin (it is
            // never self-hosted); everything else stays same-origin, with no inline scripts.
            "default-src 'self'; script-src 'self' https://challenges.cloudflare.com; \
             frame-src https://challenges.cloudflare.com; img-src 'self' data:; \
             style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; \
             base-uri 'none'; form-action 'self'",
        );
    } else {
        set(
            "Content-Security-Policy",
            "default-src 'none'; frame-ancestors 'none'",
        );
        if headers.get("Cache-Control").ok().flatten().is_none() {
            set("Cache-Control", "no-store");
        }
    }
    if let Some(origin) = origin.filter(|o| settings.origin_allowed(o)) {
        set("Access-Control-Allow-Origin", origin);
        set(
            "Access-Control-Expose-Headers",
            "X-Request-Id, Retry-After, Location, Waitroom-Pass",
        );
    }
    let _ = headers.append("Vary", "Origin");
    // Keep status, websocket and encoding from the original; only the header set is new.
    let (builder, body) = response.into_parts();
    builder.with_headers(headers).body(body)
}
