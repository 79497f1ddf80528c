//! Job identifiers: random UUIDs (122 random bits), validated before they are
//! ever used to build a key-value key.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The identifier shared by an operation and the image it produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(uuid::Uuid);

/// The text is not a job identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid identifier: expected a lowercase hyphenated UUID")]
pub struct InvalidId;

impl JobId {
    /// A fresh random (version 4) identifier.
    pub fn random() -> JobId {
        JobId(uuid::Uuid::new_v4())
    }

    /// Accepts only the canonical lowercase hyphenated form of a version 4
    /// UUID, so that one job has exactly one spelling (and one set of keys).
    pub fn parse(text: &str) -> Result<JobId, InvalidId> {
        let canonical = text.len() == 36
            && text.bytes().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
            });
        if !canonical {
            return Err(InvalidId);
        }
        let uuid = uuid::Uuid::try_parse(text).map_err(|_| InvalidId)?;
        if uuid.get_version() != Some(uuid::Version::Random) {
            return Err(InvalidId);
        }
        Ok(JobId(uuid))
    }
}

impl JobId {
    /// Which of `shards` keys of an index lists this job: the last four
    /// bytes of a version 4 UUID are random, so jobs spread evenly.
    pub fn shard(self, shards: u32) -> u32 {
        let bytes = self.0.as_bytes();
        u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) % shards.max(1)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_hyphenated().fmt(f)
    }
}

impl TryFrom<String> for JobId {
    type Error = InvalidId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        JobId::parse(&value)
    }
}

impl From<JobId> for String {
    fn from(id: JobId) -> String {
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_round_trip_through_their_text() {
        let id = JobId::random();
        assert_eq!(JobId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn jobs_spread_over_every_shard() {
        let mut counts = [0u32; 8];
        for _ in 0..8_000 {
            counts[JobId::random().shard(8) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&n| (800..1200).contains(&n)),
            "{counts:?}"
        );
        assert_eq!(JobId::random().shard(1), 0);
    }

    #[test]
    fn rejects_uppercase_braced_and_simple_forms() {
        let id = JobId::random().to_string();
        assert!(JobId::parse(&id.to_uppercase()).is_err());
        assert!(JobId::parse(&format!("{{{id}}}")).is_err());
        assert!(JobId::parse(&id.replace('-', "")).is_err());
    }

    #[test]
    fn rejects_uuids_of_other_versions() {
        assert!(JobId::parse("6f9619ff-8b86-d011-b42d-00c04fc964ff").is_err());
        assert!(JobId::parse("00000000-0000-0000-0000-000000000000").is_err());
    }

    #[test]
    fn rejects_path_tricks_and_oversized_input() {
        for bad in [
            "",
            "..",
            "a/b",
            "../../etc/passwd",
            "%00",
            &"a".repeat(10_000),
        ] {
            assert_eq!(JobId::parse(bad), Err(InvalidId), "{bad:?}");
        }
    }
}
