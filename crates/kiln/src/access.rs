//! API keys: who may submit, cancel and delete (and, when the deployment
//! asks, read). Off unless `api_keys` is set. The deployment holds each
//! key's SHA-256 with a name (`name:hex`), never the key; a job records the
//! name of the key that created it, and only that key may cancel or delete
//! it. Neither keys nor their hashes appear in records, logs or problems.
//!
//! Reads stay capability URLs (the ids are random) unless
//! `api_keys_for_reads` is set: then each job created from then on records
//! that its reads need its key, so a status read learns it from the record
//! it reads anyway, and a deployment without that setting never reads its
//! configuration to serve one.

use crate::job::Job;
use crate::problem::Error;
use crate::runtime::Ctx;
use http::HeaderMap;
use http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The accepted keys, by name.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeys {
    keys: Vec<NamedKey>,
}

#[derive(Clone, PartialEq, Eq)]
struct NamedKey {
    name: String,
    sha256: [u8; 32],
}

/// The names only: the hashes stay out of every `Debug` print.
impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.keys.iter().map(|key| key.name.as_str()).collect();
        f.debug_struct("ApiKeys").field("names", &names).finish()
    }
}

impl ApiKeys {
    /// `api_keys`: empty for none (keys off), or `name:sha256-hex` pairs
    /// separated by commas or white space. A name is 1 to 64 letters,
    /// digits, `-`, `_` or `.`, each used once.
    pub fn parse(text: &str) -> Result<Option<ApiKeys>, String> {
        let mut keys: Vec<NamedKey> = Vec::new();
        let entries = text.split(|c: char| c == ',' || c.is_whitespace());
        for entry in entries.filter(|e| !e.is_empty()) {
            // Never echo the entry: it may be a key pasted by mistake.
            let Some((name, hex)) = entry.split_once(':') else {
                return Err(format!("entry {} is not name:sha256-hex", keys.len() + 1));
            };
            let name_ok = (1..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !name_ok {
                return Err(format!(
                    "entry {}: a name is 1 to 64 letters, digits, -, _ or .",
                    keys.len() + 1
                ));
            }
            // Not the name either: a pasted key may hold a `:`.
            let sha256 = decode_sha256(hex).ok_or_else(|| {
                format!(
                    "entry {}: the hash must be 64 hexadecimal digits (a SHA-256)",
                    keys.len() + 1
                )
            })?;
            if keys.iter().any(|key| key.name == name) {
                return Err(format!("key `{name}` is listed twice"));
            }
            keys.push(NamedKey {
                name: name.to_owned(),
                sha256,
            });
        }
        Ok((!keys.is_empty()).then_some(ApiKeys { keys }))
    }

    /// The name of the key `Authorization: Bearer <key>` presents: `401`
    /// when it is missing, malformed or not one of the keys. Every stored
    /// hash is compared, in constant time, whichever matches.
    pub fn identify(&self, headers: &HeaderMap) -> Result<&str, Error> {
        let presented = bearer_token(headers).ok_or(Error::Unauthorized { presented: false })?;
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let mut found = None;
        for key in &self.keys {
            if bool::from(key.sha256.ct_eq(&digest)) {
                found = Some(key.name.as_str());
            }
        }
        found.ok_or(Error::Unauthorized { presented: true })
    }
}

/// The token of `Authorization: Bearer <token>` (RFC 6750; the scheme is
/// case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let (scheme, token) = value.split_at_checked(7)?;
    let token = token.trim_ascii();
    (scheme.eq_ignore_ascii_case(b"bearer ") && !token.is_empty()).then_some(token)
}

fn decode_sha256(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    // `from_str_radix` alone would take a `+`.
    if bytes.len() != 64 || !bytes.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(bytes.chunks(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// Who is calling, for a request that submits or changes: the key's name
/// when keys are on (`401` without a valid one, before anything is read
/// from the store), `None` when they are off.
pub fn caller(headers: &HeaderMap, ctx: &Ctx<'_>) -> Result<Option<String>, Error> {
    match &ctx.config.api_keys {
        Some(keys) => keys.identify(headers).map(|name| Some(name.to_owned())),
        None => Ok(None),
    }
}

/// Whether `caller` (from [`caller`]) may cancel or delete `job`: the key
/// that created it, when one did (`403`). With keys off, anyone, except for
/// a job whose reads needed a key: nobody can show it now (`401`), so
/// nobody changes it either.
pub fn may_change(caller: Option<&str>, job: &Job) -> Result<(), Error> {
    match caller {
        Some(name) => owns(name, job),
        None if job.reads_need_key => Err(Error::Unauthorized { presented: false }),
        None => Ok(()),
    }
}

/// Whether the request may read `job`: always, unless the job was created
/// while reads needed a key; then as [`may_change`].
pub fn may_read(headers: &HeaderMap, ctx: &Ctx<'_>, job: &Job) -> Result<(), Error> {
    if !job.reads_need_key {
        return Ok(());
    }
    // Keys turned off since: nobody's key can be checked, so nobody reads.
    let keys = ctx
        .config
        .api_keys
        .as_ref()
        .ok_or(Error::Unauthorized { presented: false })?;
    owns(keys.identify(headers)?, job)
}

fn owns(name: &str, job: &Job) -> Result<(), Error> {
    match &job.owner {
        Some(owner) if owner != name => Err(Error::Forbidden),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idempotency::hex;

    const HASH_OF_SECRET: &str = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";

    fn headers(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, authorization.parse().unwrap());
        headers
    }

    #[test]
    fn a_key_is_known_by_its_hash_and_named() {
        assert_eq!(
            hex(&Sha256::digest(b"secret")),
            HASH_OF_SECRET,
            "the test's hash"
        );
        let keys = ApiKeys::parse(&format!("ci:{HASH_OF_SECRET}, other:{}", "ab".repeat(32)))
            .unwrap()
            .unwrap();
        assert_eq!(keys.identify(&headers("Bearer secret")), Ok("ci"));
        assert_eq!(keys.identify(&headers("bearer  secret ")), Ok("ci"));
        assert_eq!(
            keys.identify(&headers("Bearer wrong")),
            Err(Error::Unauthorized { presented: true })
        );
        for missing in ["", "Basic c2VjcmV0", "Bearer ", "Bearersecret"] {
            let mut map = headers("x");
            map.insert(AUTHORIZATION, missing.parse().unwrap());
            assert_eq!(
                keys.identify(&map),
                Err(Error::Unauthorized { presented: false }),
                "{missing:?}"
            );
        }
        assert_eq!(
            keys.identify(&HeaderMap::new()),
            Err(Error::Unauthorized { presented: false })
        );
        assert!(!format!("{keys:?}").contains(HASH_OF_SECRET));
    }

    #[test]
    fn malformed_key_lists_are_refused_without_echoing_them() {
        assert_eq!(ApiKeys::parse(""), Ok(None));
        assert_eq!(ApiKeys::parse(" \n"), Ok(None));
        for bad in [
            "secret",
            "ci:1234",
            &format!("c i:{HASH_OF_SECRET}"),
            &format!(":{HASH_OF_SECRET}"),
            &format!("ci:{HASH_OF_SECRET} ci:{HASH_OF_SECRET}"),
            &format!("ci:{}", "zz".repeat(32)),
        ] {
            let err = ApiKeys::parse(bad).unwrap_err();
            assert!(
                !err.contains("secret") && !err.contains("zz"),
                "{bad}: {err}"
            );
        }
    }
}
