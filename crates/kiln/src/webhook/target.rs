//! Where a webhook may go: the client's `Webhook-Url`, checked against the
//! operator's `webhook_allowed_hosts` before anything is stored (a server
//! that POSTs wherever a client says is an SSRF hole).
//!
//! `webhook_allowed_hosts` is one entry of Spin's `allowed_outbound_hosts`
//! grammar, because `spin.toml` templates it into the components'
//! `allowed_outbound_hosts`: Spin enforces it on the wire, and Kiln checks
//! it the same way at submission, so a refused URL is a clear `400` rather
//! than a delivery that can never succeed. Spin splits nothing: one
//! variable is one pattern.
//!
//! Spin 4.0.2 refuses to load an app whose templated entry resolves to
//! nothing, so "no webhooks anywhere" is spelled as a host in the reserved
//! `.invalid` domain (RFC 6761: it never resolves), `https://none.invalid`
//! by default, which Kiln reads as allowing nothing.

use std::fmt;
use std::ops::Range;
use url::{Host, Url};

/// The longest `Webhook-Url` accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2000;

/// One `scheme://host[:port]` pattern, as Spin reads it: scheme `http`,
/// `https` or `*`; host `*`, `*.domain` or a literal (name, IPv4,
/// `[IPv6]`); port a number, `a..b` (end excluded), `*`, or absent for the
/// scheme's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `.example.com` for `*.example.com`.
    Subdomain(String),
    Exact(Host),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Default,
    Range(Range<u16>),
}

/// Why a `webhook_allowed_hosts` value is not a pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadPattern(String);

impl AllowedHost {
    /// Parses the variable's value; `None` (no host is allowed) for an empty
    /// one or a host in `.invalid`.
    pub fn parse(pattern: &str) -> Result<Option<AllowedHost>, BadPattern> {
        let pattern = pattern.trim();
        if pattern.is_empty() || pattern == "http://" || pattern == "https://" {
            return Ok(None);
        }
        let bad = |why: &str| BadPattern(format!("{pattern:?}: {why}"));
        let (scheme, rest) = pattern
            .split_once("://")
            .ok_or_else(|| bad("expected scheme://host[:port]"))?;
        let scheme = match scheme {
            "*" => None,
            "http" | "https" => Some(scheme.to_owned()),
            _ => return Err(bad("the scheme must be http, https or *")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err(bad("a host pattern has no path"));
        }
        let (host, port) = split_port(rest);
        let port = match port {
            None => PortPattern::Default,
            Some("*") => PortPattern::Any,
            Some(port) => PortPattern::Range(parse_ports(port).ok_or_else(|| bad("bad port"))?),
        };
        let host = match host {
            "*" => HostPattern::Any,
            _ if host.contains('/') => return Err(bad("CIDR ranges are not supported")),
            _ => match host.strip_prefix("*.") {
                Some(domain) => match Host::parse(domain) {
                    Ok(Host::Domain(domain)) if !domain.contains('*') => {
                        HostPattern::Subdomain(format!(".{domain}"))
                    }
                    _ => return Err(bad("a wildcard must be a domain's first label")),
                },
                None if host.contains('*') => {
                    return Err(bad("a wildcard must be a domain's first label"));
                }
                None => match Host::parse(host).map_err(|e| bad(&e.to_string()))? {
                    // Percent-decoding can make a `*` (`%2a`), which Spin
                    // would not read as this literal host (found by
                    // fuzzing).
                    Host::Domain(domain) if domain.contains('*') => {
                        return Err(bad("a wildcard must be a domain's first label"));
                    }
                    host => HostPattern::Exact(host),
                },
            },
        };
        if let HostPattern::Exact(Host::Domain(domain)) = &host
            && (domain == "invalid" || domain.ends_with(".invalid"))
        {
            return Ok(None);
        }
        Ok(Some(AllowedHost { scheme, host, port }))
    }

    fn allows(&self, url: &Url) -> bool {
        let scheme_ok = self.scheme.as_deref().is_none_or(|s| s == url.scheme());
        let host_ok = match (&self.host, url.host()) {
            (HostPattern::Any, Some(_)) => true,
            (HostPattern::Subdomain(suffix), Some(Host::Domain(domain))) => {
                domain.ends_with(suffix.as_str())
            }
            (HostPattern::Exact(allowed), Some(host)) => host.to_owned() == *allowed,
            _ => false,
        };
        let port_ok = match (&self.port, url.port_or_known_default()) {
            (PortPattern::Any, _) => true,
            (PortPattern::Default, port) => port.is_some() && port == default_port(url.scheme()),
            (PortPattern::Range(range), Some(port)) => range.contains(&port),
            (PortPattern::Range(_), None) => false,
        };
        scheme_ok && host_ok && port_ok
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match &self.host {
            HostPattern::Any => "*".to_owned(),
            HostPattern::Subdomain(suffix) => format!("*{suffix}"),
            HostPattern::Exact(host) => host.to_string(),
        };
        let port = match &self.port {
            PortPattern::Any => ":*".to_owned(),
            PortPattern::Default => String::new(),
            // `len`, not `start + 1`: `65535..0` is a pattern too.
            PortPattern::Range(r) if r.len() == 1 => format!(":{}", r.start),
            PortPattern::Range(r) => format!(":{}..{}", r.start, r.end),
        };
        let scheme = self.scheme.as_deref().unwrap_or("*");
        write!(f, "{scheme}://{host}{port}")
    }
}

/// `host:port` split at the port's colon (an IPv6 literal's colons are
/// inside brackets).
fn split_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') && !host.ends_with(':') => (host, Some(port)),
        _ => (authority, None),
    }
}

fn parse_ports(port: &str) -> Option<Range<u16>> {
    match port.split_once("..") {
        Some((start, end)) => Some(start.parse().ok()?..end.parse().ok()?),
        None => {
            let port: u16 = port.parse().ok()?;
            Some(port..port.checked_add(1)?)
        }
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// A client's `Webhook-Url` that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(Url);

impl WebhookUrl {
    /// Checks `value` for a webhook: an absolute `http` or `https` URL of at
    /// most [`MAX_URL_BYTES`], with a host, no user name or password, no
    /// fragment, and allowed by `allowed` (`None`: nothing is). The error
    /// says why, for the client.
    pub fn parse(value: &str, allowed: Option<&AllowedHost>) -> Result<WebhookUrl, String> {
        if value.is_empty() {
            return Err("Webhook-Url is empty".into());
        }
        if value.len() > MAX_URL_BYTES {
            return Err(format!("Webhook-Url is longer than {MAX_URL_BYTES} bytes"));
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("Webhook-Url contains whitespace or control characters".into());
        }
        let url =
            Url::parse(value).map_err(|e| format!("Webhook-Url is not an absolute URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "Webhook-Url must be an http or https URL, not {}:",
                url.scheme()
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("Webhook-Url must not carry a user name or password".into());
        }
        if url.fragment().is_some() {
            return Err("Webhook-Url must not have a fragment".into());
        }
        match url.host() {
            None => return Err("Webhook-Url has no host".into()),
            // Spin's service chaining: even under an allow-all pattern, a
            // client must not make Kiln POST to its own private components.
            Some(Host::Domain(domain))
                if domain == "spin.internal" || domain.ends_with(".spin.internal") =>
            {
                return Err("Webhook-Url must not name a component of this app".into());
            }
            Some(_) => {}
        }
        match allowed {
            Some(pattern) if pattern.allows(&url) => Ok(WebhookUrl(url)),
            Some(pattern) => Err(format!(
                "Webhook-Url's origin is not allowed here (webhook_allowed_hosts is {pattern})"
            )),
            None => {
                Err("no webhook host is allowed here (webhook_allowed_hosts names none)".into())
            }
        }
    }

    /// The URL, normalized.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> AllowedHost {
        AllowedHost::parse(text).unwrap().unwrap()
    }

    fn check(url: &str, allowed: &str) -> Result<WebhookUrl, String> {
        WebhookUrl::parse(url, Some(&pattern(allowed)))
    }

    /// Every kind of bad value is refused with a reason naming the problem.
    #[test]
    fn bad_webhook_urls_are_refused_with_a_reason() {
        let allowed = "http://127.0.0.1:*";
        let long = format!("http://127.0.0.1:9/{}", "a".repeat(MAX_URL_BYTES));
        let cases: [(&str, &str); 17] = [
            ("", "empty"),
            ("/hooks/kiln", "not an absolute URL"),
            ("127.0.0.1:9/hook", "not an absolute URL"),
            ("ftp://127.0.0.1:9/hook", "http or https"),
            ("javascript:alert(1)", "http or https"),
            ("data:text/plain,hi", "http or https"),
            ("file:///etc/passwd", "http or https"),
            (
                "http://user:secret@127.0.0.1:9/hook",
                "user name or password",
            ),
            ("http://[::1/hook", "not an absolute URL"),
            ("http://127.0.0.1:9/hook#frag", "fragment"),
            ("http://127.0.0.1:9/a b", "whitespace"),
            ("http://127.0.0.1:9/\nX-Injected: 1", "whitespace"),
            (&long, "longer than"),
            ("http://10.0.0.1:9/hook", "not allowed"),
            ("http://127.0.0.1.evil.example:9/hook", "not allowed"),
            ("https://127.0.0.1:9/hook", "not allowed"),
            (
                "http://processor.spin.internal/jobs/1",
                "component of this app",
            ),
        ];
        for (url, reason) in cases {
            let why = check(
                url,
                if url.contains("spin.internal") {
                    "*://*:*"
                } else {
                    allowed
                },
            )
            .expect_err(url);
            assert!(why.contains(reason), "{url:?}: {why}");
        }
    }

    #[test]
    fn ports_follow_the_pattern_and_the_scheme_default() {
        assert!(check("http://hooks.example/x", "http://hooks.example").is_ok());
        assert!(check("http://hooks.example:80/x", "http://hooks.example").is_ok());
        assert!(check("http://hooks.example:8080/x", "http://hooks.example").is_err());
        assert!(check("http://hooks.example:8080/x", "http://hooks.example:8080").is_ok());
        assert!(
            check(
                "http://hooks.example:8080/x",
                "http://hooks.example:8000..9000"
            )
            .is_ok()
        );
        assert!(
            check(
                "http://hooks.example:9000/x",
                "http://hooks.example:8000..9000"
            )
            .is_err()
        );
        assert!(check("https://hooks.example:1/x", "*://hooks.example:*").is_ok());
    }

    #[test]
    fn hosts_match_exactly_by_subdomain_or_any() {
        assert!(check("https://a.hooks.example/x", "https://*.hooks.example").is_ok());
        assert!(check("https://hooks.example/x", "https://*.hooks.example").is_err());
        assert!(check("https://evilhooks.example/x", "https://*.hooks.example").is_err());
        assert!(check("https://HOOKS.example/x", "https://hooks.example").is_ok());
        assert!(check("http://[::1]:8080/x", "http://[::1]:8080").is_ok());
        assert!(check("http://anything.example/x", "http://*").is_ok());
        // Numeric forms of an address are the address (as Spin compares).
        assert!(check("http://2130706433:9/x", "http://127.0.0.1:9").is_ok());
    }

    #[test]
    fn without_an_allowed_host_nothing_is_accepted() {
        assert_eq!(AllowedHost::parse("").unwrap(), None);
        assert_eq!(AllowedHost::parse("https://").unwrap(), None);
        assert_eq!(AllowedHost::parse("https://none.invalid").unwrap(), None);
        let refused = WebhookUrl::parse("http://127.0.0.1:9/", None).unwrap_err();
        assert!(
            refused.contains("webhook_allowed_hosts names none"),
            "{refused}"
        );
    }

    /// Every pattern prints as one that reads back as itself, even a port
    /// range ending below its start (it overflowed before).
    #[test]
    fn patterns_print_as_themselves() {
        for text in [
            "http://a.example:65535..0",
            "http://a.example:65534",
            "https://*.example.com:8000..9000",
            "*://*:*",
        ] {
            let printed = pattern(text).to_string();
            assert_eq!(
                pattern(&printed),
                pattern(text),
                "{text} prints as {printed}"
            );
        }
    }

    #[test]
    fn malformed_patterns_are_configuration_errors() {
        for bad in [
            "127.0.0.1",
            "ftp://x",
            "http://x:port",
            "http://x/path",
            "http://a.*.example",
            "http://10.0.0.0/8",
            // A `*` made by percent-decoding (fuzz/regressions/webhook_url).
            "https://%2E%2alobs.example",
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(
            pattern("http://127.0.0.1:*").to_string(),
            "http://127.0.0.1:*"
        );
    }
}
