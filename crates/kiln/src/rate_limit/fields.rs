//! The `RateLimit-Policy` and `RateLimit` fields of the IETF httpapi
//! rate-limit draft (lists of named policies with parameters): the bucket
//! as `"submissions"`, the cap as `"unfinished-jobs"`.

use super::{RateLimit, Standing};

/// `RateLimit-Policy`: the bucket as a quota of `burst` per the time an
/// empty bucket takes to refill, the cap as concurrent units. `None` when
/// the deployment has no limits.
pub fn policy_field(rate: Option<RateLimit>, cap: Option<u32>) -> Option<String> {
    let mut items = Vec::new();
    if let Some(limit) = rate {
        let window = seconds(limit.capacity_us()).max(1);
        items.push(format!("\"submissions\";q={};w={window}", limit.burst));
    }
    if let Some(max) = cap {
        items.push(format!(
            "\"unfinished-jobs\";q={max};qu=\"concurrent-requests\""
        ));
    }
    (!items.is_empty()).then(|| items.join(", "))
}

/// `RateLimit`: what is left of each policy now, and when the bucket's
/// next submission comes back (`t`, the same moment a `429`'s
/// `Retry-After` names).
pub fn standing_field(standing: &Standing) -> Option<String> {
    let mut items = Vec::new();
    if let Some(bucket) = standing.bucket {
        items.push(format!(
            "\"submissions\";r={};t={}",
            bucket.remaining,
            seconds(bucket.next_in_us)
        ));
    }
    if let Some(unfinished) = standing.unfinished {
        items.push(format!("\"unfinished-jobs\";r={}", unfinished.left));
    }
    (!items.is_empty()).then(|| items.join(", "))
}

/// Whole seconds, rounded up, of `us` microseconds.
pub(super) fn seconds(us: u64) -> u64 {
    us.div_ceil(1_000_000)
}
