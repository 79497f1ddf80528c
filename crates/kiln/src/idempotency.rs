//! `Idempotency-Key` (draft-ietf-httpapi-idempotency-key-header): a retried
//! submission with the same key and the same request gets the same job; the
//! same key with a different request is refused.

use crate::id::JobId;
use crate::keys;
use crate::kv::{KvError, KvStore};
use crate::problem::Error;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// `Idempotent-Replayed: true` (as Stripe's API writes it) marks an answer
/// about the job of an earlier request with the same key: the server sets
/// it, and a client tells by it "my retry found the job" from "a new job",
/// and an earlier run's failed or canceled job from its own.
pub const REPLAYED: http::HeaderName = http::HeaderName::from_static("idempotent-replayed");

/// A validated `Idempotency-Key` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

/// What a key is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// The job created for the first request with this key.
    pub job: JobId,
    /// Digest of that request, to recognise a different one.
    pub fingerprint: String,
}

impl IdempotencyKey {
    /// Accepts the draft's sf-string form (`"abc"`) and, as most APIs do,
    /// a bare token of visible ASCII; 1 to [`MAX_KEY_LEN`] characters.
    pub fn parse(value: &[u8]) -> Result<IdempotencyKey, Error> {
        let invalid = || {
            Error::BadRequest(format!(
                "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters, optionally in double quotes"
            ))
        };
        let text = std::str::from_utf8(value).map_err(|_| invalid())?.trim();
        let inner = match text.strip_prefix('"') {
            Some(rest) => rest.strip_suffix('"').ok_or_else(invalid)?,
            None => text,
        };
        let valid = (1..=MAX_KEY_LEN).contains(&inner.len())
            && inner
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        valid
            .then(|| IdempotencyKey(inner.to_owned()))
            .ok_or_else(invalid)
    }

    /// The same key as sent with the API key named `owner`: keys of
    /// different API keys never meet, so reusing one is another request,
    /// never a way to another key's job. (Names cannot hold a NUL.)
    pub fn scoped_to(self, owner: &str) -> IdempotencyKey {
        IdempotencyKey(format!("{owner}\0{}", self.0))
    }

    /// The store key of this key's binding.
    pub fn entry_key(&self) -> String {
        keys::idempotency(&hex(&Sha256::digest(self.0.as_bytes())))
    }
}

/// A digest of everything that makes two submissions the same request.
pub fn fingerprint(body: &[u8], media_type: &str, canonical_ops: &str) -> String {
    let mut hasher = Sha256::new();
    for part in [media_type.as_bytes(), canonical_ops.as_bytes(), body] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hex(&hasher.finalize())
}

/// The binding of `key`, if it has one, with its stored bytes (for
/// replacing it once its job is gone).
pub fn lookup(
    kv: &dyn KvStore,
    key: &IdempotencyKey,
) -> Result<Option<(Vec<u8>, Binding)>, KvError> {
    read(kv, &key.entry_key())
}

/// The job bound under `entry` (a key from [`IdempotencyKey::entry_key`]),
/// if any.
pub fn bound_job(kv: &dyn KvStore, entry: &str) -> Result<Option<JobId>, KvError> {
    Ok(read(kv, entry)?.map(|(_, binding)| binding.job))
}

/// The binding stored under `entry`, with its bytes; an unreadable one is
/// none.
fn read(kv: &dyn KvStore, entry: &str) -> Result<Option<(Vec<u8>, Binding)>, KvError> {
    Ok(kv.get(entry)?.and_then(|raw| {
        let binding = serde_json::from_slice(&raw).ok()?;
        Some((raw, binding))
    }))
}

/// Binds `key` to `binding` unless it is already bound; returns the binding
/// that holds afterwards (the caller's or an earlier one).
///
/// `stale` is the stored binding the caller found whose job no longer
/// exists: it is replaced with compare-and-swap (the entry exists, so that
/// is safe). Otherwise the first caller to increment the key's claim counter
/// wins; the others wait for its binding to appear, and get
/// [`Error::IdempotencyKeyInProgress`] if it does not (a request with this key is still in
/// progress, or died).
pub fn bind(
    kv: &dyn KvStore,
    key: &IdempotencyKey,
    binding: Binding,
    stale: Option<&[u8]>,
    wait: impl Fn(),
) -> Result<Binding, Error> {
    let entry = key.entry_key();
    let encoded = serde_json::to_vec(&binding).map_err(|e| KvError(e.to_string()))?;
    if let Some(stale) = stale {
        if kv.compare_and_swap(&entry, stale, &encoded)? {
            return Ok(binding);
        }
    } else if kv.increment(&claim_key(&entry), 1)? == 1 {
        if let Err(err) = kv.set(&entry, &encoded) {
            // The store refused the binding (full, over a quota): release
            // the claim, or a retry would wait for a binding never written.
            kv.delete(&claim_key(&entry)).ok();
            return Err(err.into());
        }
        return Ok(binding);
    }
    for _ in 0..50 {
        if let Some((_, winner)) = lookup(kv, key)? {
            return Ok(winner);
        }
        wait();
    }
    // The winner never wrote its binding (it may have died): release the
    // claim, so that a retry can win it, and ask the client to retry.
    kv.delete(&claim_key(&entry))?;
    Err(Error::IdempotencyKeyInProgress)
}

/// Forgets the binding stored under `entry` (a key from
/// [`IdempotencyKey::entry_key`]) if it still names `job` (a deleted job's
/// key may name the job of a later request already), so the key can be
/// used afresh.
pub fn unbind(kv: &dyn KvStore, entry: &str, job: JobId) -> Result<(), KvError> {
    match bound_job(kv, entry)? {
        Some(bound) if bound != job => Ok(()),
        _ => {
            kv.delete(entry)?;
            kv.delete(&claim_key(entry))
        }
    }
}

fn claim_key(entry: &str) -> String {
    format!("{entry}:claims")
}

/// Lower-case hexadecimal, as SHA-256 digests are written.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;

    #[test]
    fn quoted_and_bare_keys_are_the_same_key() {
        let quoted = IdempotencyKey::parse(br#""abc-123""#).unwrap();
        let bare = IdempotencyKey::parse(b"abc-123").unwrap();
        assert_eq!(quoted, bare);
    }

    #[test]
    fn malformed_keys_are_refused() {
        let long = "k".repeat(MAX_KEY_LEN + 1);
        for bad in [
            &b""[..],
            b"\"\"",
            b"\"open",
            b"has space",
            b"\xff",
            long.as_bytes(),
        ] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_store_key_never_contains_client_text() {
        let key = IdempotencyKey::parse(b"../../etc").unwrap();
        assert!(!key.entry_key().contains(".."));
    }

    #[test]
    fn the_first_binding_wins() {
        let kv = MemoryKv::new();
        let key = IdempotencyKey::parse(b"k").unwrap();
        let first = Binding {
            job: JobId::random(),
            fingerprint: "a".into(),
        };
        let second = Binding {
            job: JobId::random(),
            fingerprint: "b".into(),
        };
        assert_eq!(bind(&kv, &key, first.clone(), None, || ()).unwrap(), first);
        assert_eq!(bind(&kv, &key, second, None, || ()).unwrap(), first);
    }

    #[test]
    fn a_binding_the_store_refuses_releases_its_claim() {
        // Room for the claim counter, not for the binding.
        let kv = MemoryKv::with_max_keys(1);
        let key = IdempotencyKey::parse(b"k").unwrap();
        let binding = Binding {
            job: JobId::random(),
            fingerprint: "f".into(),
        };
        assert!(bind(&kv, &key, binding, None, || ()).is_err());
        assert!(kv.keys().is_empty(), "{:?}", kv.keys());
    }

    #[test]
    fn of_concurrent_binds_exactly_one_wins_and_all_agree() {
        let kv = std::sync::Arc::new(MemoryKv::new());
        let key = IdempotencyKey::parse(b"k").unwrap();
        let winners: std::collections::HashSet<JobId> = (0..8)
            .map(|_| {
                let (kv, key) = (kv.clone(), key.clone());
                std::thread::spawn(move || {
                    let mine = Binding {
                        job: JobId::random(),
                        fingerprint: "f".into(),
                    };
                    let wait = || std::thread::sleep(std::time::Duration::from_millis(1));
                    bind(kv.as_ref(), &key, mine, None, wait).unwrap().job
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        assert_eq!(winners.len(), 1);
    }

    #[test]
    fn a_binder_that_never_writes_makes_others_conflict_then_frees_the_key() {
        let kv = MemoryKv::new();
        let key = IdempotencyKey::parse(b"k").unwrap();
        kv.increment(&claim_key(&key.entry_key()), 1).unwrap();
        let mine = Binding {
            job: JobId::random(),
            fingerprint: "f".into(),
        };
        assert!(matches!(
            bind(&kv, &key, mine.clone(), None, || ()),
            Err(Error::IdempotencyKeyInProgress)
        ));
        assert_eq!(bind(&kv, &key, mine.clone(), None, || ()).unwrap(), mine);
    }

    #[test]
    fn a_stale_binding_is_replaced_once() {
        let kv = MemoryKv::new();
        let key = IdempotencyKey::parse(b"k").unwrap();
        let old = Binding {
            job: JobId::random(),
            fingerprint: "a".into(),
        };
        bind(&kv, &key, old, None, || ()).unwrap();
        let (stale, _) = lookup(&kv, &key).unwrap().unwrap();
        let first = Binding {
            job: JobId::random(),
            fingerprint: "b".into(),
        };
        let second = Binding {
            job: JobId::random(),
            fingerprint: "c".into(),
        };
        assert_eq!(
            bind(&kv, &key, first.clone(), Some(&stale), || ()).unwrap(),
            first
        );
        assert_eq!(bind(&kv, &key, second, Some(&stale), || ()).unwrap(), first);
    }

    #[test]
    fn after_unbinding_the_key_can_be_bound_afresh() {
        let kv = MemoryKv::new();
        let key = IdempotencyKey::parse(b"k").unwrap();
        let first = Binding {
            job: JobId::random(),
            fingerprint: "a".into(),
        };
        bind(&kv, &key, first.clone(), None, || ()).unwrap();
        unbind(&kv, &key.entry_key(), first.job).unwrap();
        let second = Binding {
            job: JobId::random(),
            fingerprint: "b".into(),
        };
        assert_eq!(
            bind(&kv, &key, second.clone(), None, || ()).unwrap(),
            second
        );
    }

    /// A job deleted after its key was bound afresh (it had expired, and a
    /// later request with the key made another) leaves the new binding.
    #[test]
    fn unbinding_leaves_a_key_that_names_another_job() {
        let kv = MemoryKv::new();
        let key = IdempotencyKey::parse(b"k").unwrap();
        let later = Binding {
            job: JobId::random(),
            fingerprint: "b".into(),
        };
        bind(&kv, &key, later.clone(), None, || ()).unwrap();
        unbind(&kv, &key.entry_key(), JobId::random()).unwrap();
        assert_eq!(lookup(&kv, &key).unwrap().map(|(_, b)| b), Some(later));
    }

    #[test]
    fn fingerprints_differ_when_any_part_differs() {
        let base = fingerprint(b"img", "image/png", "grayscale");
        assert_ne!(base, fingerprint(b"img2", "image/png", "grayscale"));
        assert_ne!(base, fingerprint(b"img", "image/jpeg", "grayscale"));
        assert_ne!(base, fingerprint(b"img", "image/png", "blur(sigma=1)"));
        assert_eq!(base, fingerprint(b"img", "image/png", "grayscale"));
    }
}
