//! Matches a method and path against the route table: a handler, a 405 with `Allow`, or a 404.

use worker::Method;

use super::{ApiResult, RequestContext};

/// What the shell needs from the application's endpoints: the route table, a log label, which
/// endpoint still answers on a misconfigured deployment, and the dispatch. Implemented by
/// `api::Endpoint`, so `http` never names the handlers.
#[allow(async_fn_in_trait)] // used with static dispatch only; no `Send` bound is wanted on wasm32
pub trait Routed: Copy + Sized + 'static {
    /// Method, path pattern (`{name}` captures one segment) and endpoint, first match wins.
    fn routes() -> &'static [(&'static str, &'static str, Self)];
    fn label(self) -> &'static str;
    /// `GET /api/health` answers (with the problem) even when the deployment is unsafe.
    fn answers_when_misconfigured(self) -> bool;
    /// A crowd's hot path (waitroom joins, polls, leaves): the caller is taken from the access
    /// token alone when it says the email was verified, without reading the account's standing
    /// (`RequestContext::resolve_actor`).
    fn trusts_access_token(self) -> bool;
    /// A poll many fans repeat every few seconds during a sale: its successful answers are
    /// logged one in [`super::POLL_LOG_SAMPLE`] (failures always).
    fn is_poll(self) -> bool {
        false
    }
    async fn dispatch(self, rc: &mut RequestContext) -> ApiResult;
}

/// Path parameters captured from `{name}` segments, in order of appearance.
#[derive(Debug, Default, Clone)]
pub struct PathParams(Vec<(&'static str, String)>);

impl PathParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub enum Resolution<E> {
    Found(E, PathParams),
    MethodNotAllowed(Vec<&'static str>),
    NotFound,
}

fn method_name(m: &Method) -> &'static str {
    match m {
        Method::Head => "HEAD",
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
        Method::Options => "OPTIONS",
        Method::Connect => "CONNECT",
        Method::Trace => "TRACE",
        Method::Report => "REPORT",
    }
}

fn match_pattern(pattern: &'static str, path: &str) -> Option<PathParams> {
    let mut params = Vec::new();
    let mut pat = pattern.trim_end_matches('/').split('/');
    let mut segs = path.trim_end_matches('/').split('/');
    loop {
        match (pat.next(), segs.next()) {
            (None, None) => return Some(PathParams(params)),
            (Some(p), Some(s)) => {
                if let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    if s.is_empty() {
                        return None;
                    }
                    params.push((name, percent_decode(s)?));
                } else if p != s {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// Path segments arrive percent-encoded; ids never legitimately contain invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub fn resolve<E: Routed>(method: &Method, path: &str) -> Resolution<E> {
    let wanted = method_name(method);
    let mut allow: Vec<&'static str> = Vec::new();
    for (m, pattern, endpoint) in E::routes() {
        if let Some(params) = match_pattern(pattern, path) {
            // HEAD is answered by the GET handler (the runtime drops the body).
            if *m == wanted || (wanted == "HEAD" && *m == "GET") {
                return Resolution::Found(*endpoint, params);
            }
            if !allow.contains(m) {
                allow.push(m);
            }
        }
    }
    if allow.is_empty() {
        Resolution::NotFound
    } else {
        if allow.contains(&"GET") {
            allow.push("HEAD");
        }
        allow.push("OPTIONS");
        Resolution::MethodNotAllowed(allow)
    }
}
