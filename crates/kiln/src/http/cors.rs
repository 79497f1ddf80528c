//! Cross-origin requests from browser pages: the Fetch standard's CORS
//! protocol, off unless `cors_allowed_origins` names origins. A page on one
//! of them may then call the API, read the headers a client of the protocol
//! needs (`Location`, `Preference-Applied`, `ETag`…), and its preflight
//! `OPTIONS` is answered.
//!
//! Only a request that carries `Origin` (browsers send it; curl and
//! servers do not) reads the configuration here: a status read by any
//! other client still makes no variable read.

use super::Reply;
use super::render::{self, set};
use crate::problem::Error;
use crate::runtime::Ctx;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ALLOW,
    ORIGIN,
};
use http::{Method, StatusCode};

/// The request headers Kiln reads that are not CORS-safelisted, which a
/// page may therefore only send once a preflight allowed them; and
/// `Authorization`, for API keys.
const ALLOWED_HEADERS: &str = "Authorization, Content-Type, Idempotency-Key, If-None-Match, Last-Event-ID, Prefer, Webhook-Url";

/// The response headers a client of the protocol reads that a page could
/// not see otherwise (`Content-Type`, `Cache-Control`… always are).
const EXPOSED_HEADERS: &str = "Content-Location, ETag, Idempotent-Replayed, Link, Location, Preference-Applied, RateLimit, RateLimit-Policy, Retry-After, WWW-Authenticate";

/// How long a browser may reuse a preflight's answer (Chromium's cap).
const PREFLIGHT_MAX_AGE_SECONDS: &str = "7200";

/// Which pages may call the API from another origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// Any page (`*`): the API is public, and a key, not the page, is what
    /// a request is trusted for.
    Any,
    /// Pages of these origins only (ASCII serialisations, as browsers send
    /// them in `Origin`: `https://app.example.com`, `http://localhost:8080`).
    Listed(Vec<String>),
}

impl AllowedOrigins {
    /// `cors_allowed_origins`: empty for none, `*` for any, or origins
    /// separated by commas or spaces. An origin is a scheme, a host and an
    /// optional port; anything more (a path, a trailing `/`, a query) is
    /// refused, because a browser's `Origin` never carries it and the entry
    /// would silently match nothing.
    pub fn parse(text: &str) -> Result<Option<AllowedOrigins>, String> {
        let entries: Vec<&str> = text
            .split([',', ' '])
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .collect();
        if entries.is_empty() {
            return Ok(None);
        }
        if entries == ["*"] {
            return Ok(Some(AllowedOrigins::Any));
        }
        entries
            .iter()
            .map(|entry| origin(entry))
            .collect::<Result<Vec<_>, _>>()
            .map(|origins| Some(AllowedOrigins::Listed(origins)))
    }

    /// The `Access-Control-Allow-Origin` for a request from `origin`, if
    /// it is allowed.
    fn allow_origin<'a>(&self, origin: &'a str) -> Option<&'a str> {
        match self {
            AllowedOrigins::Any => Some("*"),
            AllowedOrigins::Listed(origins) => {
                origins.iter().any(|o| o == origin).then_some(origin)
            }
        }
    }
}

/// One configured origin, in the form browsers send.
fn origin(entry: &str) -> Result<String, String> {
    let refuse = |why: &str| Err(format!("`{entry}` is not an origin ({why})"));
    let Ok(url) = url::Url::parse(entry) else {
        return refuse("write scheme://host[:port], e.g. https://app.example.com");
    };
    if !matches!(url.scheme(), "http" | "https") {
        return refuse("only http and https pages make CORS requests");
    }
    if entry.ends_with('/') || url.path() != "/" {
        return refuse("no path, not even a trailing /");
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return refuse("no query, fragment or user");
    }
    // `url` takes `*` in a host; a browser never sends one.
    if url.host_str().is_some_and(|host| host.contains('*')) {
        return refuse("no wildcards: list each origin, or write `*` alone for any");
    }
    let origin = url.origin().ascii_serialization();
    // A host percent-decoding to a `,` (`%2c`) would be listed as an origin
    // that reads back as two, and that no browser sends.
    if origin.contains(',') {
        return refuse("no comma in a host, even percent-encoded");
    }
    Ok(origin)
}

/// Runs `handler` for a resource that answers `allow` (its `Allow`,
/// `OPTIONS` included), answering `OPTIONS` itself, and adds the CORS
/// headers to the reply when the request comes from an allowed origin.
pub fn around<B>(
    request: http::Request<B>,
    ctx: &Ctx<'_>,
    allow: &'static str,
    handler: impl FnOnce(http::Request<B>) -> Reply,
) -> Reply {
    let origin = request
        .headers()
        .get(ORIGIN)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let allow_origin = origin.as_deref().and_then(|origin| {
        ctx.config
            .cors_allowed_origins
            .as_ref()?
            .allow_origin(origin)
            .map(str::to_owned)
    });
    let preflight = request.method() == Method::OPTIONS;
    let mut reply = if preflight {
        options(&request, origin.as_deref(), allow_origin.is_some(), allow)
    } else {
        handler(request)
    };
    let response = &mut reply.response;
    // What the CORS headers say depends on `Origin`: a cache must not give
    // one page's answer to another.
    render::vary(response, &["Origin"]);
    if let Some(allow_origin) = allow_origin {
        set(response, ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
        if !preflight {
            set(response, ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSED_HEADERS);
        }
    }
    reply
}

/// `OPTIONS`: a CORS preflight (it names the method it asks for) from an
/// allowed origin, for a method the resource answers, gets `204` with what
/// may be sent; from any other origin, `403`. A plain `OPTIONS` gets `204`
/// and `Allow` (RFC 9110, 9.3.7).
fn options<B>(
    request: &http::Request<B>,
    origin: Option<&str>,
    allowed: bool,
    allow: &'static str,
) -> Reply {
    let asked = request.headers().get(ACCESS_CONTROL_REQUEST_METHOD);
    let (Some(origin), Some(asked)) = (origin, asked) else {
        let mut response = render::response(StatusCode::NO_CONTENT, Vec::new());
        set(&mut response, ALLOW, allow);
        return response.into();
    };
    if !allowed {
        return Error::OriginNotAllowed(origin.to_owned()).into();
    }
    let asked = asked.to_str().unwrap_or_default();
    if asked == "OPTIONS" || !allow.split(", ").any(|method| method == asked) {
        return Error::MethodNotAllowed { allow }.into();
    }
    let mut response = render::response(StatusCode::NO_CONTENT, Vec::new());
    set(&mut response, ALLOW, allow);
    set(&mut response, ACCESS_CONTROL_ALLOW_METHODS, allow);
    set(&mut response, ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS);
    set(
        &mut response,
        ACCESS_CONTROL_MAX_AGE,
        PREFLIGHT_MAX_AGE_SECONDS,
    );
    response.into()
}

#[cfg(test)]
mod tests {
    use super::AllowedOrigins;

    #[test]
    fn origins_are_read_as_browsers_send_them() {
        assert_eq!(AllowedOrigins::parse(""), Ok(None));
        assert_eq!(AllowedOrigins::parse(" , "), Ok(None));
        assert_eq!(AllowedOrigins::parse("*"), Ok(Some(AllowedOrigins::Any)));
        assert_eq!(
            AllowedOrigins::parse("https://App.Example.com:443, http://localhost:8080"),
            Ok(Some(AllowedOrigins::Listed(vec![
                "https://app.example.com".into(),
                "http://localhost:8080".into(),
            ])))
        );
    }

    #[test]
    fn what_no_browser_would_send_as_an_origin_is_refused() {
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/api",
            "https://app.example.com?x=1",
            "https://user@app.example.com",
            "ftp://app.example.com",
            "https://*.example.com",
            "*, https://app.example.com",
            "https://app%2cexample.com",
        ] {
            let err = AllowedOrigins::parse(bad).unwrap_err();
            assert!(err.contains("is not an origin"), "{bad}: {err}");
        }
    }
}
