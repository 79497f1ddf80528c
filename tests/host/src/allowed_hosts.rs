//! `allowed_outbound_hosts`: Spin 4.0.2's entry grammar, templated entries, and matching.
//!
//! An entry is `scheme://host[:port]`: scheme `http`, `https` or `*`; host `*`, `*.domain`, a
//! domain, an IP address (IPv6 in brackets) or an IP network in CIDR form (`127.0.0.0/8`); port
//! a number, `*` or a range `a..b` (end exclusive), the scheme's port when absent. An entry
//! with `{{ name }}` is a template over application variables: its defaults are checked at
//! load, as Spin's loader checks them, and it is resolved when a host starts.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;

use anyhow::{Context, Result, bail, ensure};
use http::Uri;
use url::Host;

use crate::headers::SPIN_INTERNAL;
use crate::variables::{AppVariable, Template};

/// A component's `allowed_outbound_hosts` as the manifest states it: literal entries, parsed
/// at load, and templates, resolved when a host starts.
#[derive(Debug, Clone, Default)]
pub(crate) struct OutboundHostsConfig {
    literal: AllowedHosts,
    templates: Vec<(String, Template)>,
}

impl OutboundHostsConfig {
    /// Parses the entries. A template may only name variables of `[variables]`; when every
    /// variable it names has a default, the entry it makes with the defaults must be valid
    /// (Spin 4.0.2's loader refuses the app otherwise).
    pub fn parse(entries: &[String], variables: &BTreeMap<String, AppVariable>) -> Result<Self> {
        let defaults: BTreeMap<String, String> = variables
            .iter()
            .filter_map(|(name, variable)| match variable {
                AppVariable::Default(value) => Some((name.clone(), value.clone())),
                AppVariable::Required => None,
            })
            .collect();
        let mut config = Self::default();
        for entry in entries {
            let context = || format!("allowed_outbound_hosts: invalid entry {entry:?}");
            let template = Template::parse(entry).with_context(context)?;
            if template.is_literal() {
                config
                    .literal
                    .entries
                    .push(AllowedHost::parse(entry).with_context(context)?);
                continue;
            }
            for name in template.references() {
                ensure!(
                    variables.contains_key(name),
                    "allowed_outbound_hosts: {entry:?} refers to `{name}`, which [variables] does not define"
                );
            }
            if let Ok(with_defaults) = template.render(&defaults) {
                parse_resolved(&with_defaults).with_context(|| {
                    format!(
                        "allowed_outbound_hosts: with the default values, {entry:?} resolves to \
                         {with_defaults:?}, which is not a valid entry"
                    )
                })?;
            }
            config.templates.push((entry.clone(), template));
        }
        Ok(config)
    }

    /// The entries with every template resolved from the application variables' `values`.
    pub fn resolve(&self, values: &BTreeMap<String, String>) -> Result<AllowedHosts> {
        let mut resolved = self.literal.clone();
        for (entry, template) in &self.templates {
            let text = template.render(values)?;
            let host = parse_resolved(&text).with_context(|| {
                format!(
                    "allowed_outbound_hosts: {entry:?} resolves to {text:?}, which is not a valid entry"
                )
            })?;
            resolved.entries.push(host);
        }
        Ok(resolved)
    }

    /// The hosts of literal entries that ask for service chaining: `spin.internal` subdomains
    /// and the subdomain wildcard (`processor.spin.internal`, `*.spin.internal`). As in SIP 017,
    /// `*://*:*` alone does not ask for it. Templated entries are only judged once resolved, at
    /// request time.
    pub fn chaining_hosts(&self) -> impl Iterator<Item = String> + '_ {
        self.literal.entries.iter().filter_map(|e| match &e.host {
            HostPattern::Literal(Host::Domain(domain)) if domain.ends_with(SPIN_INTERNAL) => {
                Some(domain.clone())
            }
            HostPattern::AnySubdomain(suffix) if suffix == SPIN_INTERNAL => {
                Some(format!("*{suffix}"))
            }
            _ => None,
        })
    }

    /// Components named by literal `<id>.spin.internal` entries.
    pub fn named_chaining_targets(&self) -> impl Iterator<Item = &str> {
        self.literal.entries.iter().filter_map(|e| match &e.host {
            HostPattern::Literal(Host::Domain(domain)) => domain.strip_suffix(SPIN_INTERNAL),
            _ => None,
        })
    }
}

/// Parses a resolved template. Spin 4.0.2 has no "optional endpoint": an entry that resolves to
/// `""`, `http://` or `https://` is as invalid as any other (skipping them came after 4.0.2).
fn parse_resolved(text: &str) -> Result<AllowedHost> {
    let parsed = AllowedHost::parse(text);
    if parsed.is_err() && matches!(text.trim(), "" | "http://" | "https://") {
        return parsed.context(
            "Spin 4.0.2 refuses an entry that resolves to nothing (later Spin versions skip it): \
             give the variable a value that is a valid entry",
        );
    }
    parsed
}

/// A component's `allowed_outbound_hosts`, every template resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AllowedHosts {
    entries: Vec<AllowedHost>,
}

impl AllowedHosts {
    /// Whether a request to `uri` is allowed.
    pub fn allows(&self, uri: &Uri) -> bool {
        let (Some(scheme), Some(host)) = (uri.scheme_str(), uri.host()) else {
            return false;
        };
        let Ok(host) = Host::parse(host) else {
            return false;
        };
        let Some(port) = uri.port_u16().or_else(|| default_port(scheme)) else {
            return false;
        };
        self.entries.iter().any(|e| e.allows(scheme, &host, port))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    /// `None` for `*`.
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com`, kept as `.example.com`.
    AnySubdomain(String),
    Literal(Host),
    Cidr(IpNetwork),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Port(u16),
    /// `a..b`, end exclusive.
    Range(Range<u16>),
}

/// An IP network, host bits cleared (`127.0.0.1/8` is `127.0.0.0/8`, as Spin reads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IpNetwork {
    address: IpAddr,
    prefix: u8,
}

impl AllowedHost {
    /// Parses one entry as Spin 4.0.2 does: the port is what follows the last `:`, so an IPv6
    /// host needs brackets and an explicit port (`http://[::1]:8080`), and an IPv6 network one
    /// too (`http://::1/128:80`).
    fn parse(entry: &str) -> Result<Self> {
        let entry = entry.trim();
        let Some((scheme, rest)) = entry.split_once("://") else {
            bail!("expected scheme://host[:port] (`*://*:*` allows everything)");
        };
        let (host, port) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match port.split_once('/') {
            Some((_, path)) if !path.is_empty() => bail!("paths are not allowed"),
            Some((port, _)) => port,
            None => port,
        };
        let scheme = match scheme {
            "*" => None,
            "http" | "https" => Some(scheme.to_owned()),
            list if list.starts_with('{') => bail!("scheme lists are not supported"),
            other => bail!(
                "scheme {other:?} is not supported by the test host (it only makes HTTP requests)"
            ),
        };
        let port = PortPattern::parse(port, scheme.as_deref())?;
        let host = HostPattern::parse(host).with_context(|| format!("invalid host {host:?}"))?;
        Ok(Self { scheme, host, port })
    }

    fn allows(&self, scheme: &str, host: &Host, port: u16) -> bool {
        self.scheme.as_deref().is_none_or(|s| s == scheme)
            && self.host.allows(host)
            && self.port.allows(port)
    }
}

impl HostPattern {
    fn parse(host: &str) -> Result<Self> {
        let host = host.trim();
        match host {
            "*" => return Ok(Self::Any),
            "self" | "self.alt" => {
                bail!("`{host}` (relative requests) is not supported by the test host")
            }
            _ if host.starts_with('{') => bail!("host lists are not supported"),
            _ => {}
        }
        if let Some(network) = IpNetwork::parse(host) {
            return Ok(Self::Cidr(network?));
        }
        let host = host.trim_end_matches('/');
        ensure!(!host.contains('/'), "paths are not allowed");
        if let Some(domain) = host.strip_prefix("*.") {
            ensure!(
                !domain.contains('*'),
                "wildcards are allowed only as prefixes"
            );
            return Ok(Self::AnySubdomain(format!(
                ".{}",
                domain.to_ascii_lowercase()
            )));
        }
        ensure!(
            !host.contains('*'),
            "wildcards are allowed only as subdomains (`*.example.com`)"
        );
        Ok(Self::Literal(Host::parse(host)?))
    }

    fn allows(&self, host: &Host) -> bool {
        match (self, host) {
            (Self::Any, _) => true,
            (Self::AnySubdomain(suffix), Host::Domain(domain)) => domain.ends_with(suffix.as_str()),
            (Self::Literal(literal), host) => literal == host,
            (Self::Cidr(network), Host::Ipv4(ip)) => network.contains(IpAddr::V4(*ip)),
            (Self::Cidr(network), Host::Ipv6(ip)) => network.contains(IpAddr::V6(*ip)),
            _ => false,
        }
    }
}

impl PortPattern {
    fn parse(port: &str, scheme: Option<&str>) -> Result<Self> {
        if port.is_empty() {
            let default = scheme.and_then(default_port).context(
                "an entry with scheme `*` needs a port (`*` for any, e.g. `*://example.com:*`)",
            )?;
            return Ok(Self::Port(default));
        }
        if port == "*" {
            return Ok(Self::Any);
        }
        ensure!(!port.starts_with('{'), "port lists are not supported");
        let number = |text: &str| {
            text.parse::<u16>()
                .with_context(|| format!("invalid port {port:?}"))
        };
        match port.split_once("..") {
            Some((start, end)) => Ok(Self::Range(number(start)?..number(end)?)),
            None => Ok(Self::Port(number(port)?)),
        }
    }

    fn allows(&self, port: u16) -> bool {
        match self {
            Self::Any => true,
            Self::Port(allowed) => *allowed == port,
            Self::Range(range) => range.contains(&port),
        }
    }
}

impl IpNetwork {
    /// `None` when `text` is not `address/prefix`; an error when it is, with a prefix too long.
    fn parse(text: &str) -> Option<Result<Self>> {
        let (address, prefix) = text.split_once('/')?;
        let address: IpAddr = address.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let bits = match address {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if prefix > bits {
            return Some(Err(anyhow::anyhow!(
                "network prefix /{prefix} is longer than {bits} bits"
            )));
        }
        let address = match address {
            IpAddr::V4(ip) => IpAddr::V4((u32::from(ip) & mask_u32(prefix)).into()),
            IpAddr::V6(ip) => IpAddr::V6((u128::from(ip) & mask_u128(prefix)).into()),
        };
        Some(Ok(Self { address, prefix }))
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                u32::from(ip) & mask_u32(self.prefix) == u32::from(network)
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                u128::from(ip) & mask_u128(self.prefix) == u128::from(network)
            }
            _ => false,
        }
    }
}

fn mask_u32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_u128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(entries: &[&str], variables: &[(&str, Option<&str>)]) -> Result<OutboundHostsConfig> {
        let entries: Vec<String> = entries.iter().map(|e| e.to_string()).collect();
        let variables = variables
            .iter()
            .map(|(name, default)| {
                let variable = match default {
                    Some(value) => AppVariable::Default(value.to_string()),
                    None => AppVariable::Required,
                };
                (name.to_string(), variable)
            })
            .collect();
        OutboundHostsConfig::parse(&entries, &variables)
    }

    fn allowed(entries: &[&str]) -> AllowedHosts {
        config(entries, &[])
            .expect("valid entries")
            .resolve(&BTreeMap::new())
            .expect("literal entries resolve")
    }

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn uri(text: &str) -> Uri {
        text.parse().expect("valid uri")
    }

    fn error_text(result: Result<impl std::fmt::Debug>) -> String {
        format!("{:#}", result.expect_err("refused"))
    }

    #[test]
    fn listed_chaining_origin_is_allowed() {
        let hosts = allowed(&["http://processor.spin.internal"]);
        assert!(hosts.allows(&uri("http://processor.spin.internal/jobs/1")));
        assert!(hosts.allows(&uri("http://processor.spin.internal:80/")));
    }

    #[test]
    fn other_origins_are_not_allowed() {
        let hosts = allowed(&["http://processor.spin.internal"]);
        assert!(!hosts.allows(&uri("https://processor.spin.internal/")));
        assert!(!hosts.allows(&uri("http://submit.spin.internal/")));
        assert!(!hosts.allows(&uri("http://processor.spin.internal:8080/")));
        assert!(!hosts.allows(&uri("http://example.com/")));
        assert!(!AllowedHosts::default().allows(&uri("http://processor.spin.internal/")));
    }

    #[test]
    fn wildcards_match_hosts_schemes_and_ports() {
        let hosts = allowed(&["*://*.spin.internal:*"]);
        assert!(hosts.allows(&uri("https://a.spin.internal:9/")));
        assert!(!hosts.allows(&uri("http://spin.internal/")));
        assert!(allowed(&["https://*"]).allows(&uri("https://example.com/")));
        assert!(allowed(&["*://*:*"]).allows(&uri("http://127.0.0.1:9/")));
    }

    /// Host names compare as Spin compares them: case-insensitively, IP addresses by value.
    #[test]
    fn hosts_compare_by_value() {
        assert!(allowed(&["http://Example.COM"]).allows(&uri("http://example.com/")));
        let ipv6 = allowed(&["http://[::1]:8080"]);
        assert!(ipv6.allows(&uri("http://[0:0::1]:8080/")));
        assert!(!ipv6.allows(&uri("http://[::2]:8080/")));
        assert!(allowed(&["http://127.0.0.1:8080"]).allows(&uri("http://127.0.0.1:8080/x")));
    }

    /// `a..b` allows ports from `a` up to, not including, `b`.
    #[test]
    fn port_ranges_exclude_their_end() {
        let hosts = allowed(&["http://127.0.0.1:8000..8002"]);
        assert!(hosts.allows(&uri("http://127.0.0.1:8000/")));
        assert!(hosts.allows(&uri("http://127.0.0.1:8001/")));
        assert!(!hosts.allows(&uri("http://127.0.0.1:8002/")));
        assert!(!hosts.allows(&uri("http://127.0.0.1:7999/")));
    }

    /// A CIDR host allows the addresses of that network, and no host names.
    #[test]
    fn cidr_hosts_allow_their_network() {
        let hosts = allowed(&["http://127.0.0.0/8:*", "http://::1/128:80"]);
        assert!(hosts.allows(&uri("http://127.0.0.1:9000/")));
        assert!(hosts.allows(&uri("http://127.255.0.3/")));
        assert!(!hosts.allows(&uri("http://128.0.0.1/")));
        assert!(!hosts.allows(&uri("http://localhost/")));
        assert!(hosts.allows(&uri("http://[::1]/")));
        assert!(!hosts.allows(&uri("http://[::2]/")));
        // Host bits are cleared, as Spin's `from_str_truncate` does.
        assert!(allowed(&["http://10.1.2.3/8"]).allows(&uri("http://10.9.9.9/")));
    }

    /// What Spin 4.0.2 refuses, and what the test host cannot honour, is refused at load.
    #[test]
    fn malformed_entries_are_refused() {
        for bad in [
            "processor.spin.internal",
            "ftp://x",
            "redis://x",
            "http://x:port",
            "http://x/path",
            "http://x:80/path",
            "*://x",
            "http://*x.com",
            "http://a.*.com",
            "http://{a,b}",
            "{http,https}://a",
            "http://a:{80,81}",
            "http://a:80..x",
            "http://self",
            "http://[::1]",
            "http://::1:80",
            "http://10.0.0.0/33",
            "http://",
            "",
        ] {
            assert!(config(&[bad], &[]).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn named_chaining_targets_lists_exact_component_hosts() {
        let hosts = config(
            &[
                "http://processor.spin.internal",
                "http://*.spin.internal",
                "https://example.com",
            ],
            &[],
        )
        .expect("valid");
        assert_eq!(
            hosts.named_chaining_targets().collect::<Vec<_>>(),
            ["processor"]
        );
    }

    /// SIP 017: `spin.internal` subdomains and the subdomain wildcard ask for chaining, the
    /// allow-all wildcard and other hosts do not.
    #[test]
    fn chaining_hosts_are_spin_internal_subdomains_and_wildcards() {
        let hosts = config(
            &[
                "http://processor.spin.internal",
                "http://*.spin.internal",
                "*://*:*",
                "https://example.com",
            ],
            &[],
        )
        .expect("valid");
        assert_eq!(
            hosts.chaining_hosts().collect::<Vec<_>>(),
            ["processor.spin.internal", "*.spin.internal"]
        );
    }

    /// A templated entry allows what its resolved text allows; literal entries beside it keep
    /// working, and only they count for chaining checks.
    #[test]
    fn templated_entry_resolves_from_variable_values() {
        let config = config(
            &["http://processor.spin.internal", "{{ webhook_hosts }}"],
            &[("webhook_hosts", Some("http://127.0.0.1:1"))],
        )
        .expect("valid");
        assert_eq!(
            config.named_chaining_targets().collect::<Vec<_>>(),
            ["processor"]
        );
        let hosts = config
            .resolve(&values(&[("webhook_hosts", "http://localhost:*")]))
            .expect("resolves");
        assert!(hosts.allows(&uri("http://localhost:4321/hook")));
        assert!(hosts.allows(&uri("http://processor.spin.internal/")));
        assert!(!hosts.allows(&uri("http://127.0.0.1:1/")));
    }

    /// Templates may make part of an entry.
    #[test]
    fn template_can_fill_part_of_an_entry() {
        let config = config(
            &["http://{{ host }}:{{ port }}"],
            &[("host", Some("127.0.0.1")), ("port", Some("8080"))],
        )
        .expect("valid");
        let hosts = config
            .resolve(&values(&[("host", "127.0.0.1"), ("port", "9090")]))
            .expect("resolves");
        assert!(hosts.allows(&uri("http://127.0.0.1:9090/")));
        assert!(!hosts.allows(&uri("http://127.0.0.1:8080/")));
    }

    #[test]
    fn template_naming_an_undeclared_variable_is_refused_at_load() {
        let text = error_text(config(&["http://{{ nope }}"], &[]));
        assert!(text.contains("`nope`"), "{text}");
    }

    /// Spin 4.0.2's loader checks a template with the default values: an invalid result,
    /// an empty one included, refuses the app.
    #[test]
    fn template_whose_defaults_make_an_invalid_entry_is_refused_at_load() {
        let text = error_text(config(&["{{ h }}"], &[("h", Some("not a host"))]));
        assert!(text.contains("\"not a host\""), "{text}");
        for empty in ["", "http://"] {
            let entry = if empty.is_empty() {
                "{{ h }}"
            } else {
                "http://{{ h }}"
            };
            let text = error_text(config(&[entry], &[("h", Some(""))]));
            assert!(text.contains("Spin 4.0.2 refuses"), "{text}");
        }
    }

    /// A required variable has no default to check at load; its value is checked at start.
    #[test]
    fn template_over_a_required_variable_is_checked_when_resolved() {
        let config = config(&["{{ h }}"], &[("h", None)]).expect("nothing to check at load");
        let text = error_text(config.resolve(&values(&[("h", "https://")])));
        assert!(text.contains("\"https://\""), "{text}");
        assert!(text.contains("Spin 4.0.2 refuses"), "{text}");
        let text = error_text(config.resolve(&values(&[("h", "ftp://x")])));
        assert!(text.contains("ftp"), "{text}");
        assert!(config.resolve(&values(&[("h", "http://x.test")])).is_ok());
    }
}
