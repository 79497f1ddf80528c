//! The service's limits and timings, read from Spin variables (see
//! `spin.toml`) through a lookup function so tests never touch the real
//! environment.

use crate::access::ApiKeys;
use crate::http::AllowedOrigins;
use crate::rate_limit::RateLimit;
use crate::webhook::{AllowedHost, Secret};
use std::time::Duration;

/// Validated configuration for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Larger uploads get `413 Content Too Large`.
    pub max_upload_bytes: u64,
    /// Larger images (by their header) get `422`, before decoding.
    pub max_input_pixels: u64,
    /// Operations that would produce a larger image get `422`.
    pub max_output_pixels: u64,
    /// An animation kept as one with more frames gets `422`.
    pub max_frames: u32,
    /// How long jobs and images live after they are created.
    pub retention: Duration,
    /// How long a processor may hold a job without reporting progress.
    pub lease: Duration,
    /// Upper bound for `Prefer: wait=N`.
    pub max_wait: Duration,
    /// Claims of one job before it is failed as crashing repeatedly.
    pub max_attempts: u32,
    /// The largest value a blob chunk may be (the store's value limit).
    pub blob_chunk_bytes: usize,
    /// Who runs a job: the private processor, or the instance at hand.
    pub dispatch: Dispatch,
    /// How long the platform lets one request's instance run, if it limits
    /// it (Fermyon Cloud: 30 s); work is planned to end well before.
    pub request_timeout: Option<Duration>,
    /// Webhooks, when `webhook_secret` is set.
    pub webhooks: Option<Webhooks>,
    /// How many jobs may run at once across every instance sharing the
    /// store; the others wait in the queue (see [`crate::slots`]).
    pub max_running_jobs: u32,
    /// How many jobs may wait for a slot before submissions are refused
    /// with `503` (`None`: no bound).
    pub max_queued_jobs: Option<u64>,
    /// How many keys each index (pending, queue, retention bucket) is
    /// spread over, so that no single key is written by every submission.
    pub index_shards: u32,
    /// Which browser pages on other origins may call the API (`None`:
    /// none, the default).
    pub cors_allowed_origins: Option<AllowedOrigins>,
    /// The API keys that may submit, cancel and delete (`None`: keys off,
    /// the default; see [`crate::access`]).
    pub api_keys: Option<ApiKeys>,
    /// Whether jobs created from now on need their key to be read too.
    pub api_keys_for_reads: bool,
    /// Each client's token bucket for submissions (`None`: no rate limit,
    /// the default; see [`crate::rate_limit`]).
    pub rate_limit: Option<RateLimit>,
    /// How many unfinished jobs one client may have (`None`: no cap).
    pub max_unfinished_jobs: Option<u32>,
}

/// What webhooks need from the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhooks {
    /// Signs every event (`webhook_secret`).
    pub secret: Secret,
    /// Where events may go (`webhook_allowed_hosts`; `None`: nowhere).
    pub allowed: Option<AllowedHost>,
}

/// Who runs a job once it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// A fresh instance of the private `processor` component, called through
    /// Spin service chaining (`http://processor.spin.internal`).
    Chained,
    /// The instance that stored the job (or that found it stuck), after its
    /// response or inline for a synchronous request: for platforms without
    /// service chaining or outbound requests.
    Local,
}

/// A variable is missing or not a number in its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration variable `{name}`: {reason}")]
pub struct ConfigError {
    /// The variable's name as in `spin.toml`.
    pub name: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl Default for Config {
    /// The defaults of `spin.toml`.
    fn default() -> Self {
        Config {
            max_upload_bytes: 25 * 1024 * 1024,
            max_input_pixels: 50_000_000,
            max_output_pixels: 50_000_000,
            max_frames: 1000,
            retention: Duration::from_secs(24 * 60 * 60),
            lease: Duration::from_secs(15),
            max_wait: Duration::from_secs(30),
            max_attempts: 3,
            blob_chunk_bytes: 256 * 1024,
            dispatch: Dispatch::Chained,
            request_timeout: None,
            webhooks: None,
            max_running_jobs: 2,
            max_queued_jobs: None,
            index_shards: 64,
            cors_allowed_origins: None,
            api_keys: None,
            api_keys_for_reads: false,
            rate_limit: None,
            max_unfinished_jobs: None,
        }
    }
}

impl Config {
    /// Whether submissions are counted per client (a rate limit or a cap
    /// on unfinished jobs; see [`crate::rate_limit`]).
    pub fn limits_clients(&self) -> bool {
        self.rate_limit.is_some() || self.max_unfinished_jobs.is_some()
    }

    /// The limits the image pipeline enforces.
    pub fn image_limits(&self) -> kiln_image::Limits {
        kiln_image::Limits {
            max_input_pixels: self.max_input_pixels,
            max_output_pixels: self.max_output_pixels,
            max_frames: self.max_frames,
        }
    }

    /// Reads every variable through `lookup` (which returns `None` for an
    /// undefined one) and checks its range.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        // A variable only the submitting component declares reads as 0
        // (off) elsewhere.
        let optional = |name: &str| lookup(name).or_else(|| Some("0".into()));
        let number_in = |lookup: &dyn Fn(&str) -> Option<String>,
                         name: &'static str,
                         min: u64,
                         max: u64|
         -> Result<u64, ConfigError> {
            let text = lookup(name).ok_or_else(|| ConfigError {
                name,
                reason: "not defined".into(),
            })?;
            let value: u64 = text.trim().parse().map_err(|_| ConfigError {
                name,
                reason: format!("`{text}` is not a whole number"),
            })?;
            if !(min..=max).contains(&value) {
                return Err(ConfigError {
                    name,
                    reason: format!("{value} is outside {min}..={max}"),
                });
            }
            Ok(value)
        };
        let number = |name, min, max| number_in(&lookup, name, min, max);
        let optional_number = |name, max| number_in(&optional, name, 0, max);
        let seconds = |name, min, max| number(name, min, max).map(Duration::from_secs);
        Ok(Config {
            max_upload_bytes: number("max_upload_bytes", 1, 1 << 32)?,
            max_input_pixels: number("max_input_pixels", 1, 1 << 32)?,
            max_output_pixels: number("max_output_pixels", 1, 1 << 32)?,
            max_frames: u32::try_from(number("max_frames", 1, 1 << 20)?).unwrap_or(1 << 20),
            retention: seconds("retention_seconds", 1, 366 * 24 * 60 * 60)?,
            lease: seconds("lease_seconds", 1, 24 * 60 * 60)?,
            max_wait: seconds("max_wait_seconds", 0, 60 * 60)?,
            max_attempts: u32::try_from(number("max_attempts", 1, 100)?).unwrap_or(100),
            blob_chunk_bytes: usize::try_from(number("blob_chunk_bytes", 1024, 1_000_000)?)
                .unwrap_or(1_000_000),
            dispatch: match lookup("dispatch").as_deref().map(str::trim) {
                Some("chained") => Dispatch::Chained,
                Some("local") => Dispatch::Local,
                other => {
                    return Err(ConfigError {
                        name: "dispatch",
                        reason: match other {
                            None => "not defined".into(),
                            Some(text) => format!("`{text}` is not `chained` or `local`"),
                        },
                    });
                }
            },
            request_timeout: match number("request_timeout_seconds", 0, 60 * 60)? {
                0 => None,
                seconds => Some(Duration::from_secs(seconds)),
            },
            webhooks: webhooks(&lookup)?,
            max_running_jobs: u32::try_from(number("max_running_jobs", 1, 10_000)?)
                .unwrap_or(10_000),
            max_queued_jobs: match number("max_queued_jobs", 0, 1 << 32)? {
                0 => None,
                jobs => Some(jobs),
            },
            index_shards: u32::try_from(number("index_shards", 1, 256)?).unwrap_or(256),
            cors_allowed_origins: parsed(&lookup, "cors_allowed_origins", AllowedOrigins::parse)?,
            api_keys: parsed(&lookup, "api_keys", ApiKeys::parse)?,
            api_keys_for_reads: match lookup("api_keys_for_reads").as_deref().map(str::trim) {
                None | Some("" | "false") => false,
                Some("true") => true,
                Some(other) => {
                    return Err(ConfigError {
                        name: "api_keys_for_reads",
                        reason: format!("`{other}` is not `true` or `false`"),
                    });
                }
            },
            rate_limit: match optional_number("rate_limit_per_minute", 60_000)? {
                0 => None,
                per_minute => Some(RateLimit {
                    per_minute: u32::try_from(per_minute).unwrap_or(60_000),
                    burst: match optional_number("rate_limit_burst", 10_000)? {
                        0 => {
                            return Err(ConfigError {
                                name: "rate_limit_burst",
                                reason: "must be at least 1 when rate_limit_per_minute is set"
                                    .into(),
                            });
                        }
                        burst => u32::try_from(burst).unwrap_or(10_000),
                    },
                }),
            },
            max_unfinished_jobs: match optional_number("max_unfinished_jobs", 10_000)? {
                0 => None,
                max => Some(u32::try_from(max).unwrap_or(10_000)),
            },
        })
    }
}

/// The configuration as a request sees it: read already, or read the first
/// time the request needs it ([`LazyConfig`]). Fields read through it as
/// through a `&Config`.
#[derive(Clone, Copy)]
pub enum ConfigRef<'a> {
    /// Read before the request (tests, tools).
    Read(&'a Config),
    /// Read on first use.
    OnFirstUse(&'a LazyConfig<'a>),
}

impl std::ops::Deref for ConfigRef<'_> {
    type Target = Config;

    fn deref(&self) -> &Config {
        match self {
            ConfigRef::Read(config) => config,
            ConfigRef::OnFirstUse(lazy) => lazy.get(),
        }
    }
}

impl<'a> From<&'a Config> for ConfigRef<'a> {
    fn from(config: &'a Config) -> Self {
        ConfigRef::Read(config)
    }
}

/// The configuration, read from the platform's variables the first time a
/// request needs it. On Spin every variable read goes through its
/// providers, and the commonest request, a status read of a finished job,
/// needs none: reading all sixteen on every request cost a third of the
/// status path's throughput (`bench/run` section 5).
pub struct LazyConfig<'a> {
    config: std::cell::OnceCell<Config>,
    read: &'a dyn Fn() -> Result<Config, String>,
}

impl<'a> LazyConfig<'a> {
    /// `read` reads and checks every variable; it runs once at most.
    pub fn new(read: &'a dyn Fn() -> Result<Config, String>) -> Self {
        LazyConfig {
            config: std::cell::OnceCell::new(),
            read,
        }
    }

    /// The configuration, read now if it was not yet.
    ///
    /// # Panics
    ///
    /// If the variables are wrong: a misconfigured deployment cannot serve
    /// the request (the instance traps, the client gets a 500, and `read`
    /// is expected to have told the operator why).
    pub fn get(&self) -> &Config {
        self.config
            .get_or_init(|| (self.read)().unwrap_or_else(|err| panic!("misconfigured: {err}")))
    }
}

/// `webhook_secret` and `webhook_allowed_hosts`, both optional: without a
/// secret there are no webhooks (a `Webhook-Url` is refused as not
/// configured).
fn webhooks(lookup: &impl Fn(&str) -> Option<String>) -> Result<Option<Webhooks>, ConfigError> {
    let secret = lookup("webhook_secret").unwrap_or_default();
    if secret.trim().is_empty() {
        return Ok(None);
    }
    let secret = parsed(lookup, "webhook_secret", Secret::parse)?;
    let allowed = parsed(lookup, "webhook_allowed_hosts", |text| {
        AllowedHost::parse(text).map_err(|err| err.to_string())
    })?;
    Ok(Some(Webhooks { secret, allowed }))
}

/// The variable `name` (empty when not defined) as `parse` reads it, its
/// error named after it.
fn parsed<T>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    parse(&lookup(name).unwrap_or_default()).map_err(|reason| ConfigError { name, reason })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn spin_defaults() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("max_upload_bytes", "26214400"),
            ("max_input_pixels", "50000000"),
            ("max_output_pixels", "50000000"),
            ("max_frames", "1000"),
            ("retention_seconds", "86400"),
            ("lease_seconds", "15"),
            ("max_wait_seconds", "30"),
            ("max_attempts", "3"),
            ("blob_chunk_bytes", "262144"),
            ("dispatch", "chained"),
            ("request_timeout_seconds", "0"),
            ("max_running_jobs", "2"),
            ("max_queued_jobs", "0"),
            ("index_shards", "64"),
        ])
    }

    #[test]
    fn spin_toml_defaults_equal_the_built_in_defaults() {
        let manifest: toml::Table = include_str!("../../../spin.toml").parse().unwrap();
        let variables = manifest["variables"].as_table().unwrap();
        let default = |name: &str| Some(variables.get(name)?.get("default")?.as_str()?.to_owned());
        assert_eq!(Config::from_lookup(default).unwrap(), Config::default());
    }

    /// The Fermyon Cloud profile runs jobs in-process, within the quotas.
    #[test]
    fn spin_cloud_toml_is_a_valid_local_profile() {
        let manifest: toml::Table = include_str!("../../../spin.cloud.toml").parse().unwrap();
        let variables = manifest["variables"].as_table().unwrap();
        let default = |name: &str| Some(variables.get(name)?.get("default")?.as_str()?.to_owned());
        let config = Config::from_lookup(default).unwrap();
        assert_eq!(config.dispatch, Dispatch::Local);
        assert_eq!(config.request_timeout, Some(Duration::from_secs(30)));
        assert!(config.max_upload_bytes <= 10_000_000);
        assert!(config.blob_chunk_bytes <= 1_000_000);
        assert!(config.max_wait < Duration::from_secs(25));
    }

    fn with(extra: &[(&'static str, &'static str)]) -> Result<Config, ConfigError> {
        let mut vars = spin_defaults();
        vars.extend(extra.iter().copied());
        Config::from_lookup(|n| vars.get(n).map(|v| v.to_string()))
    }

    /// Without a secret there are no webhooks; with one, the allowed host
    /// is parsed, and either being malformed is a named configuration error.
    #[test]
    fn webhooks_need_a_secret_and_a_valid_allowed_host() {
        let secret = ("webhook_secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(with(&[]).unwrap().webhooks, None);
        let hosts = ("webhook_allowed_hosts", "http://127.0.0.1:*");
        assert_eq!(with(&[hosts]).unwrap().webhooks, None);
        let webhooks = with(&[secret, hosts]).unwrap().webhooks.unwrap();
        assert_eq!(webhooks.allowed.unwrap().to_string(), "http://127.0.0.1:*");
        assert_eq!(with(&[secret]).unwrap().webhooks.unwrap().allowed, None);
        let bad_secret = with(&[("webhook_secret", "hunter2")]).unwrap_err();
        assert_eq!(bad_secret.name, "webhook_secret");
        let bad_hosts = with(&[secret, ("webhook_allowed_hosts", "127.0.0.1")]).unwrap_err();
        assert_eq!(bad_hosts.name, "webhook_allowed_hosts");
    }

    /// The limits are off when their variables are absent (components that
    /// do not take submissions do not declare them) or 0; a rate needs a
    /// burst.
    #[test]
    fn rate_limits_are_off_by_default_and_a_rate_needs_a_burst() {
        let config = with(&[]).unwrap();
        assert_eq!(
            (config.rate_limit, config.max_unfinished_jobs),
            (None, None)
        );
        let on = with(&[
            ("rate_limit_per_minute", "30"),
            ("rate_limit_burst", "5"),
            ("max_unfinished_jobs", "2"),
        ])
        .unwrap();
        assert_eq!(
            on.rate_limit,
            Some(RateLimit {
                per_minute: 30,
                burst: 5
            })
        );
        assert_eq!(on.max_unfinished_jobs, Some(2));
        let no_burst = with(&[("rate_limit_per_minute", "30"), ("rate_limit_burst", "0")]);
        assert_eq!(no_burst.unwrap_err().name, "rate_limit_burst");
        let bad = with(&[("rate_limit_per_minute", "fast")]);
        assert_eq!(bad.unwrap_err().name, "rate_limit_per_minute");
    }

    #[test]
    fn an_unknown_dispatch_is_refused() {
        let mut vars = spin_defaults();
        vars.insert("dispatch", "broker");
        let err = Config::from_lookup(|n| vars.get(n).map(|v| v.to_string())).unwrap_err();
        assert_eq!(err.name, "dispatch");
    }

    #[test]
    fn a_missing_variable_is_named_in_the_error() {
        let mut vars = spin_defaults();
        vars.remove("lease_seconds");
        let err = Config::from_lookup(|n| vars.get(n).map(|v| v.to_string())).unwrap_err();
        assert_eq!(err.name, "lease_seconds");
    }

    #[test]
    fn a_non_numeric_or_zero_value_is_refused() {
        for bad in ["soon", "0", "-5"] {
            let mut vars = spin_defaults();
            vars.insert("retention_seconds", bad);
            let err = Config::from_lookup(|n| vars.get(n).map(|v| v.to_string())).unwrap_err();
            assert_eq!(err.name, "retention_seconds", "{bad}");
        }
    }
}
