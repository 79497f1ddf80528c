//! A small set of strings kept as one JSON value and updated with
//! compare-and-swap, for the indexes that let Kiln find pending and expired
//! jobs without scanning every key.

use crate::clock::Timestamp;
use crate::id::JobId;
use crate::kv::{KvError, KvStore, MAX_CAS_ATTEMPTS, contention, create_once};

/// A job's entry in the pending and queue indexes: its id and creation
/// time, so that the queue sorts by age and an entry whose record is
/// missing is kept for a lease before it is taken for gone.
pub fn job_member(id: JobId, created_at: Timestamp) -> String {
    format!("{id}@{}", created_at.0)
}

/// The job and creation time of a [`job_member`].
pub fn parse_job_member(member: &str) -> Option<(JobId, Timestamp)> {
    let (id, created) = member.split_once('@')?;
    Some((JobId::parse(id).ok()?, Timestamp(created.parse().ok()?)))
}

/// Reads the set stored under `key` (empty if absent or unreadable).
pub fn members(kv: &dyn KvStore, key: &str) -> Result<Vec<String>, KvError> {
    Ok(kv
        .get(key)?
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .unwrap_or_default())
}

/// Adds `member` to the set under `key`.
pub fn insert(kv: &dyn KvStore, key: &str, member: &str) -> Result<(), KvError> {
    update(kv, key, |set| {
        if set.iter().any(|m| m == member) {
            return false;
        }
        set.push(member.to_owned());
        true
    })
}

/// Removes `members` from the set under `key`.
pub fn remove(kv: &dyn KvStore, key: &str, members: &[String]) -> Result<(), KvError> {
    update(kv, key, |set| {
        let before = set.len();
        set.retain(|m| !members.contains(m));
        set.len() != before
    })
}

/// Applies `change` (which says whether it changed anything) until the
/// compare-and-swap succeeds.
fn update(
    kv: &dyn KvStore,
    key: &str,
    mut change: impl FnMut(&mut Vec<String>) -> bool,
) -> Result<(), KvError> {
    for _ in 0..MAX_CAS_ATTEMPTS {
        let Some(raw) = kv.get(key)? else {
            let mut set = Vec::new();
            if !change(&mut set) {
                return Ok(());
            }
            // The set's first value is written with the key, not swapped in
            // after it: a new shard or retention bucket costs two writes,
            // not three. Whoever else created it first, we try again on it.
            let encoded = serde_json::to_vec(&set).map_err(|e| KvError(e.to_string()))?;
            if create_once(kv, key, &encoded)? {
                return Ok(());
            }
            continue;
        };
        let mut set: Vec<String> = serde_json::from_slice(&raw).unwrap_or_default();
        if !change(&mut set) {
            return Ok(());
        }
        let encoded = serde_json::to_vec(&set).map_err(|e| KvError(e.to_string()))?;
        if kv.compare_and_swap(key, &raw, &encoded)? {
            return Ok(());
        }
    }
    Err(contention(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;

    #[test]
    fn inserting_twice_keeps_one_member() {
        let kv = MemoryKv::new();
        insert(&kv, "s", "a").unwrap();
        insert(&kv, "s", "a").unwrap();
        assert_eq!(members(&kv, "s").unwrap(), ["a"]);
    }

    #[test]
    fn removed_members_are_gone_and_others_stay() {
        let kv = MemoryKv::new();
        for m in ["a", "b", "c"] {
            insert(&kv, "s", m).unwrap();
        }
        remove(&kv, "s", &["a".into(), "c".into()]).unwrap();
        assert_eq!(members(&kv, "s").unwrap(), ["b"]);
    }

    #[test]
    fn concurrent_inserts_are_all_kept() {
        let kv = std::sync::Arc::new(MemoryKv::new());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let kv = kv.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        insert(kv.as_ref(), "s", &format!("{t}-{i}")).unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(members(kv.as_ref(), "s").unwrap().len(), 200);
    }
}
