//! Platform quotas: the [`Quotas`] a host can enforce, and the pure rules behind them.
//!
//! The rules live here, in one place; the rest of the host only asks them. Key-value writes by
//! guests pass through [`KvQuotaGate::admit`], the request body through `body_limit`, the
//! handler time limit is a deadline on each instance (`runtime`), and [`Quotas::check_app`]
//! refuses an app that needs service chaining at start.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::MutexGuard;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::kv::KeyValueStore;
use crate::manifest::AppManifest;

/// One megabyte as Fermyon Cloud's quota table counts it, read conservatively: 10^6 bytes, not
/// 2^20. Whatever fits under the smaller reading fits under either.
const MB: u64 = 1_000_000;
/// One gigabyte, read conservatively: 10^9 bytes, not 2^30.
const GB: u64 = 1_000_000_000;

/// A platform's quotas, enforced by a host started with
/// [`HostBuilder::quotas`](crate::HostBuilder::quotas). Without them the host enforces none.
///
/// Every field is public so a test can scale a limit down (a 4 s handler limit keeps a test
/// fast) or relax one (`service_chaining: true` to run an app that chains):
///
/// ```
/// use std::time::Duration;
/// use kiln_test_host::Quotas;
///
/// let quotas = Quotas {
///     handler_timeout: Duration::from_secs(4),
///     service_chaining: true,
///     ..Quotas::fermyon_cloud()
/// };
/// assert_eq!(quotas.max_keys, 1024);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quotas {
    /// The longest key a key-value write may use, in bytes.
    pub max_key_bytes: usize,
    /// The largest value a key-value write may store, in bytes.
    pub max_value_bytes: usize,
    /// The most keys the store may hold: a write that would create a key beyond it is refused.
    pub max_keys: usize,
    /// The largest the store may grow to, counted as the bytes of every key plus every value.
    pub max_store_bytes: u64,
    /// The largest HTTP request body the host passes to a component; above it the host itself
    /// answers `413 Content Too Large`.
    pub max_request_body_bytes: u64,
    /// How long an instance may run, work after its response included; then it is killed (a
    /// client still waiting gets `504 Gateway Timeout`). Instances it starts through service
    /// chaining end at the same deadline.
    pub handler_timeout: Duration,
    /// Whether the platform offers service chaining (`*.spin.internal`). When it does not, an
    /// app that needs it is refused at start, as SIP 017 asks of such hosts.
    pub service_chaining: bool,
}

impl Quotas {
    /// Fermyon Cloud's published quotas (<https://developer.fermyon.com/cloud/faq>, Starter
    /// plan): keys up to 255 bytes, values up to 1 MB, at most 1,024 keys, a 1 GB store, request
    /// bodies up to 10 MB, handlers up to 30 s.
    ///
    /// "MB" and "GB" are read as 10^6 and 10^9 bytes, the smaller (conservative) reading.
    /// Service chaining is off: the quota page does not say Fermyon Cloud supports it, so Kiln
    /// treats it as unavailable. The quota of 500 outbound requests per hour is not modelled.
    pub fn fermyon_cloud() -> Self {
        Self {
            max_key_bytes: 255,
            max_value_bytes: MB as usize,
            max_keys: 1024,
            max_store_bytes: GB,
            max_request_body_bytes: 10 * MB,
            handler_timeout: Duration::from_secs(30),
            service_chaining: false,
        }
    }

    /// Refuses an app that needs service chaining when these quotas do not offer it. An app
    /// needs it when a trigger has a private route (reachable only by chaining) or a component's
    /// `allowed_outbound_hosts` names a `spin.internal` subdomain or subdomain wildcard (SIP 017's
    /// rule; `*://*:*` alone does not count).
    pub(crate) fn check_app(&self, manifest: &AppManifest) -> Result<()> {
        if self.service_chaining {
            return Ok(());
        }
        let private_routes = manifest
            .triggers
            .iter()
            .filter(|t| t.route.is_none())
            .map(|t| format!("component `{}` has a private route", t.component));
        let chaining_hosts = manifest.components.iter().flat_map(|(id, component)| {
            component
                .allowed_outbound_hosts
                .chaining_hosts()
                .map(move |host| format!("component `{id}` may call `{host}`"))
        });
        let reasons: Vec<String> = private_routes.chain(chaining_hosts).collect();
        if !reasons.is_empty() {
            bail!(
                "the app needs service chaining, which these quotas do not offer (a host that \
                 cannot chain must refuse such an app, SIP 017): {}",
                reasons.join("; ")
            );
        }
        Ok(())
    }

    /// Checks a key-value write against the key-value quotas, given how full the store is.
    ///
    /// Every key must fit the key and value limits. The key count and the store size only
    /// refuse a write that adds to them: overwriting a key is not a new key, and a write that
    /// shrinks an over-full store (seeded directly by a test) is allowed.
    pub(crate) fn check_kv_write(
        &self,
        usage: StoreUsage,
        writes: &[KeyWrite<'_>],
    ) -> Result<(), QuotaExceeded> {
        // A `set-many` may name a key twice; as in the store, the last value wins.
        let writes: BTreeMap<&str, &KeyWrite<'_>> = writes.iter().map(|w| (w.key, w)).collect();
        let mut new_keys = 0;
        let (mut added, mut removed) = (0u64, 0u64);
        for write in writes.values() {
            if write.key.len() > self.max_key_bytes {
                return Err(QuotaExceeded::KeySize {
                    key_bytes: write.key.len(),
                    limit: self.max_key_bytes,
                });
            }
            if write.value_len > self.max_value_bytes {
                return Err(QuotaExceeded::ValueSize {
                    key: write.key.to_owned(),
                    value_bytes: write.value_len,
                    limit: self.max_value_bytes,
                });
            }
            added += write.value_len as u64;
            match write.replaced_len {
                Some(old) => removed += old as u64,
                None => {
                    new_keys += 1;
                    added += write.key.len() as u64;
                }
            }
        }
        let keys_after = usage.keys + new_keys;
        if new_keys > 0 && keys_after > self.max_keys {
            return Err(QuotaExceeded::KeyCount {
                keys_after,
                limit: self.max_keys,
            });
        }
        let bytes_after = (usage.bytes + added).saturating_sub(removed);
        if added > removed && bytes_after > self.max_store_bytes {
            return Err(QuotaExceeded::StoreSize {
                bytes_after,
                limit: self.max_store_bytes,
            });
        }
        Ok(())
    }
}

/// How full the key-value store is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StoreUsage {
    /// How many keys it holds.
    pub keys: usize,
    /// The bytes of every key plus every value.
    pub bytes: u64,
}

/// One key a write would set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyWrite<'a> {
    pub key: &'a str,
    /// The length of the value to store.
    pub value_len: usize,
    /// The length of the value it replaces; `None` when the key is new.
    pub replaced_len: Option<usize>,
}

/// A key-value write refused by a quota. Its text, which the guest gets as the store error
/// `other(..)`, says "quota" and names the quota.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum QuotaExceeded {
    KeySize {
        key_bytes: usize,
        limit: usize,
    },
    ValueSize {
        key: String,
        value_bytes: usize,
        limit: usize,
    },
    KeyCount {
        keys_after: usize,
        limit: usize,
    },
    StoreSize {
        bytes_after: u64,
        limit: u64,
    },
}

impl fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::KeySize { key_bytes, limit } => write!(
                f,
                "key size quota exceeded: a {key_bytes}-byte key (at most {limit} bytes)"
            ),
            Self::ValueSize {
                key,
                value_bytes,
                limit,
            } => write!(
                f,
                "value size quota exceeded: {value_bytes} bytes for key `{key}` \
                 (at most {limit} bytes)"
            ),
            Self::KeyCount { keys_after, limit } => write!(
                f,
                "key count quota exceeded: the write would make {keys_after} keys \
                 (at most {limit})"
            ),
            Self::StoreSize { bytes_after, limit } => write!(
                f,
                "store size quota exceeded: the write would make the store {bytes_after} bytes \
                 (at most {limit})"
            ),
        }
    }
}

/// Holds the key-value gate until the admitted write is done.
pub(crate) type KvWritePermit<'a> = MutexGuard<'a, ()>;

/// Why a guest write was not admitted.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// It would exceed a quota.
    Quota(QuotaExceeded),
    /// The store failed while the gate measured it (a Redis gone away): the
    /// guest gets that store error, as it would from the write itself.
    Store(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Quota(exceeded) => exceeded.fmt(f),
            Refusal::Store(message) => f.write_str(message),
        }
    }
}

/// Enforces the key-value quotas on guest writes.
///
/// Guest writes are checked and written one at a time through the store's write gate (shared
/// by every host on that `KeyValueStore` and its clones), so concurrent writers cannot together
/// overshoot a limit that each passed alone. Deletes do not pass through it: they only free
/// room, so a delete racing a check can only make the check stricter than needed. Writes a test
/// makes directly on the [`KeyValueStore`] are not checked, nor are writes through another
/// `KeyValueStore` value on the same Redis (another process, in effect).
#[derive(Debug)]
pub(crate) struct KvQuotaGate {
    quotas: Quotas,
}

impl KvQuotaGate {
    pub fn new(quotas: Quotas) -> Self {
        Self { quotas }
    }

    /// Admits a write of `(key, value length)` pairs to `kv`, or says why not. Hold the permit
    /// until the write is done.
    pub fn admit<'a>(
        &self,
        kv: &'a KeyValueStore,
        writes: &[(&str, usize)],
    ) -> Result<KvWritePermit<'a>, Refusal> {
        let permit = kv.write_gate();
        let mut planned = Vec::with_capacity(writes.len());
        for &(key, value_len) in writes {
            let replaced = measured(kv.backend().get(key))?;
            planned.push(KeyWrite {
                key,
                value_len,
                replaced_len: replaced.map(|v| v.len()),
            });
        }
        let usage = measured(kv.backend().usage())?;
        self.quotas
            .check_kv_write(usage, &planned)
            .map_err(Refusal::Quota)?;
        Ok(permit)
    }
}

/// A store reading made for the gate; a failure is the guest's store error, never a host panic.
fn measured<T>(result: crate::kv::GuestResult<T>) -> Result<T, Refusal> {
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(message)) => Err(Refusal::Store(message)),
        Err(trap) => Err(Refusal::Store(format!("{trap:#}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Quotas {
        Quotas {
            max_key_bytes: 8,
            max_value_bytes: 10,
            max_keys: 3,
            max_store_bytes: 40,
            ..Quotas::fermyon_cloud()
        }
    }

    fn new_key(key: &str, value_len: usize) -> KeyWrite<'_> {
        KeyWrite {
            key,
            value_len,
            replaced_len: None,
        }
    }

    fn overwrite(key: &str, value_len: usize, replaced_len: usize) -> KeyWrite<'_> {
        KeyWrite {
            key,
            value_len,
            replaced_len: Some(replaced_len),
        }
    }

    fn usage(keys: usize, bytes: u64) -> StoreUsage {
        StoreUsage { keys, bytes }
    }

    /// Fermyon Cloud's numbers, with MB and GB read as powers of ten.
    #[test]
    fn fermyon_cloud_quotas_are_the_published_numbers() {
        let quotas = Quotas::fermyon_cloud();
        assert_eq!(quotas.max_key_bytes, 255);
        assert_eq!(quotas.max_value_bytes, 1_000_000);
        assert_eq!(quotas.max_keys, 1024);
        assert_eq!(quotas.max_store_bytes, 1_000_000_000);
        assert_eq!(quotas.max_request_body_bytes, 10_000_000);
        assert_eq!(quotas.handler_timeout, Duration::from_secs(30));
        assert!(!quotas.service_chaining);
    }

    /// Writes within every limit pass, up to the limits exactly.
    #[test]
    fn writes_at_the_limits_are_allowed() {
        let write = [new_key("12345678", 10)];
        assert_eq!(small().check_kv_write(usage(2, 22), &write), Ok(()));
    }

    /// A key one byte over the limit is refused, and the error names the quota.
    #[test]
    fn a_key_over_the_limit_is_refused() {
        let refused = small().check_kv_write(usage(0, 0), &[new_key("123456789", 1)]);
        assert_eq!(
            refused,
            Err(QuotaExceeded::KeySize {
                key_bytes: 9,
                limit: 8
            })
        );
        let text = refused.unwrap_err().to_string();
        assert!(text.contains("key size quota"), "{text}");
    }

    /// A value one byte over the limit is refused, even as an overwrite.
    #[test]
    fn a_value_over_the_limit_is_refused() {
        let refused = small().check_kv_write(usage(1, 5), &[overwrite("k", 11, 4)]);
        assert!(
            matches!(
                refused,
                Err(QuotaExceeded::ValueSize {
                    value_bytes: 11,
                    limit: 10,
                    ..
                })
            ),
            "{refused:?}"
        );
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("value size quota")
        );
    }

    /// A write creating a key beyond the key count is refused.
    #[test]
    fn a_new_key_beyond_the_key_count_is_refused() {
        let refused = small().check_kv_write(usage(3, 3), &[new_key("d", 1)]);
        assert_eq!(
            refused,
            Err(QuotaExceeded::KeyCount {
                keys_after: 4,
                limit: 3
            })
        );
        assert!(refused.unwrap_err().to_string().contains("key count quota"));
    }

    /// Overwriting an existing key in a full store is not a new key.
    #[test]
    fn overwriting_a_key_in_a_full_store_is_allowed() {
        assert_eq!(
            small().check_kv_write(usage(3, 6), &[overwrite("a", 2, 1)]),
            Ok(())
        );
    }

    /// A write that would grow the store beyond its size is refused; keys count as well as
    /// values.
    #[test]
    fn a_write_beyond_the_store_size_is_refused() {
        // 35 + 5 (key) + 1 (value) = 41 > 40.
        let refused = small().check_kv_write(usage(1, 35), &[new_key("abcde", 1)]);
        assert_eq!(
            refused,
            Err(QuotaExceeded::StoreSize {
                bytes_after: 41,
                limit: 40
            })
        );
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("store size quota")
        );
        // The same bytes as an overwrite of a larger value shrink the store.
        assert_eq!(
            small().check_kv_write(usage(1, 45), &[overwrite("abcde", 1, 9)]),
            Ok(())
        );
    }

    /// A batch is judged as a whole: its new keys together exceed the count.
    #[test]
    fn a_batch_counts_all_its_new_keys() {
        let batch = [new_key("a", 1), overwrite("b", 1, 1), new_key("c", 1)];
        assert!(matches!(
            small().check_kv_write(usage(2, 4), &batch),
            Err(QuotaExceeded::KeyCount { keys_after: 4, .. })
        ));
    }

    /// A batch naming a key twice creates it once, with the last value.
    #[test]
    fn a_batch_naming_a_key_twice_creates_it_once() {
        let batch = [new_key("a", 10), new_key("a", 1)];
        assert_eq!(small().check_kv_write(usage(2, 4), &batch), Ok(()));
    }

    fn manifest(body: &str) -> AppManifest {
        let text = format!("spin_manifest_version = 2\n[application]\nname = \"t\"\n{body}");
        AppManifest::parse(&text).expect("valid manifest")
    }

    const PUBLIC_API: &str = "
        [[trigger.http]]
        route = \"/api/...\"
        component = \"api\"
        [component.api]
        source = \"api.wasm\"
    ";

    fn refusal(body: &str) -> String {
        match Quotas::fermyon_cloud().check_app(&manifest(body)) {
            Ok(()) => panic!("the app was accepted"),
            Err(err) => format!("{err:#}"),
        }
    }

    /// An app with a private route needs chaining: refused, naming the route's component.
    #[test]
    fn an_app_with_a_private_route_is_refused_without_chaining() {
        let text = refusal(
            "[[trigger.http]]\nroute = { private = true }\ncomponent = \"worker\"\n\
             [component.worker]\nsource = \"w.wasm\"\n",
        );
        assert!(text.contains("service chaining"), "{text}");
        assert!(
            text.contains("component `worker` has a private route"),
            "{text}"
        );
    }

    /// An app allowed to call a `spin.internal` host needs chaining, wildcard or not.
    #[test]
    fn an_app_allowed_to_call_spin_internal_is_refused_without_chaining() {
        for host in ["http://api.spin.internal", "http://*.spin.internal"] {
            let text = refusal(&format!(
                "{PUBLIC_API}allowed_outbound_hosts = [\"{host}\"]\n"
            ));
            assert!(text.contains("service chaining"), "{text}");
            assert!(text.contains("component `api` may call"), "{text}");
        }
    }

    /// Apps that do not chain start; so does one allowed every host (SIP 017: `*://*:*` alone
    /// does not ask for chaining).
    #[test]
    fn apps_that_do_not_chain_are_accepted() {
        let quotas = Quotas::fermyon_cloud();
        assert!(quotas.check_app(&manifest(PUBLIC_API)).is_ok());
        let allow_all = format!("{PUBLIC_API}allowed_outbound_hosts = [\"*://*:*\"]\n");
        assert!(quotas.check_app(&manifest(&allow_all)).is_ok());
    }

    /// Quotas that offer chaining accept an app that chains.
    #[test]
    fn chaining_apps_are_accepted_when_chaining_is_offered() {
        let quotas = Quotas {
            service_chaining: true,
            ..Quotas::fermyon_cloud()
        };
        let chaining = format!(
            "{PUBLIC_API}allowed_outbound_hosts = [\"http://worker.spin.internal\"]\n\
             [[trigger.http]]\nroute = {{ private = true }}\ncomponent = \"worker\"\n\
             [component.worker]\nsource = \"w.wasm\"\n"
        );
        assert!(quotas.check_app(&manifest(&chaining)).is_ok());
    }

    /// The gate measures the real store: existing keys are overwrites, the count and sizes are
    /// what is stored.
    #[test]
    fn the_gate_checks_against_the_stores_contents() {
        let kv = KeyValueStore::new();
        kv.set("a", "1");
        kv.set("b", "1");
        kv.set("c", "1");
        let gate = KvQuotaGate::new(small());
        assert!(gate.admit(&kv, &[("a", 10)]).is_ok());
        let refused = gate.admit(&kv, &[("d", 1)]).map(drop);
        assert!(matches!(
            refused,
            Err(Refusal::Quota(QuotaExceeded::KeyCount { .. }))
        ));
    }
}
