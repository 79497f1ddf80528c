//! The host calls each instance makes (key-value, variables, outbound HTTP), counted by name
//! and split at the moment the instance sets its response, so that a benchmark can say what a
//! request path costs in calls before its client has an answer and after.
//!
//! The counts are the guest's own calls, so they hold for any runtime running the same
//! component; what each call costs does not (Spin's SQLite store commits every write on its
//! own, this host's stores do not).

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Host calls by name (`"kv get"`, `"kv set-many"`, `"variable get"`, ...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostCalls(BTreeMap<&'static str, u64>);

/// The key-value calls that write, each one commit on Spin's SQLite store.
const KV_WRITES: [&str; 6] = [
    "kv set",
    "kv delete",
    "kv increment",
    "kv cas swap",
    "kv set-many",
    "kv delete-many",
];

impl HostCalls {
    /// How many calls named `name` were made.
    pub fn get(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// Every name called, with its count, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.0.iter().map(|(&name, &n)| (name, n))
    }

    /// Key-value calls of every kind (opening the store included).
    pub fn kv(&self) -> u64 {
        self.sum(|name| name.starts_with("kv "))
    }

    /// Key-value calls that write.
    pub fn kv_writes(&self) -> u64 {
        self.sum(|name| KV_WRITES.contains(&name))
    }

    /// Variable reads, through `fermyon:spin/variables` or `wasi:config`.
    pub fn variable_reads(&self) -> u64 {
        self.sum(|name| name.starts_with("variable "))
    }

    /// Outgoing HTTP requests (service chaining included).
    pub fn outbound(&self) -> u64 {
        self.get("outbound request")
    }

    /// What was called since `earlier` (a snapshot of the same counter).
    pub fn since(&self, earlier: &HostCalls) -> HostCalls {
        HostCalls(
            self.0
                .iter()
                .map(|(&name, &n)| (name, n.saturating_sub(earlier.get(name))))
                .filter(|&(_, n)| n > 0)
                .collect(),
        )
    }

    fn add(&mut self, other: &HostCalls) {
        for (name, n) in other.iter() {
            *self.0.entry(name).or_default() += n;
        }
    }

    fn sum(&self, which: impl Fn(&str) -> bool) -> u64 {
        self.iter()
            .filter(|(name, _)| which(name))
            .map(|(_, n)| n)
            .sum()
    }
}

/// The calls of every instance of one component, as one host saw them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ComponentCalls {
    /// Instances that set a response (those whose calls are split).
    pub responded: u64,
    /// Calls made before the response was set, summed over those instances.
    pub before_response: HostCalls,
    /// Every call of every instance that ended, responded or not.
    pub total: HostCalls,
}

impl ComponentCalls {
    /// What happened since `earlier` (taken from the same host).
    pub fn since(&self, earlier: &ComponentCalls) -> ComponentCalls {
        ComponentCalls {
            responded: self.responded - earlier.responded,
            before_response: self.before_response.since(&earlier.before_response),
            total: self.total.since(&earlier.total),
        }
    }

    pub(crate) fn add_response(&mut self, before: &HostCalls) {
        self.responded += 1;
        self.before_response.add(before);
    }

    pub(crate) fn add_instance(&mut self, calls: &HostCalls) {
        self.total.add(calls);
    }
}

/// One instance's running count, shared by its store data (which counts) and the task that
/// reads it when the instance responds and when it ends.
#[derive(Debug, Default)]
pub(crate) struct CallCounter(Mutex<HostCalls>);

impl CallCounter {
    pub fn count(&self, name: &'static str) {
        *self.lock().0.entry(name).or_default() += 1;
    }

    pub fn snapshot(&self) -> HostCalls {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HostCalls> {
        // Counting cannot panic half-way: a poisoned lock still holds whole counts.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_reads_and_differences_are_told_apart() {
        let counter = CallCounter::default();
        for name in [
            "kv open",
            "kv get",
            "kv set-many",
            "variable get",
            "kv cas swap",
        ] {
            counter.count(name);
        }
        let earlier = counter.snapshot();
        counter.count("kv get");
        counter.count("outbound request");
        let now = counter.snapshot();
        assert_eq!((now.kv(), now.kv_writes(), now.variable_reads()), (5, 2, 1));
        let since = now.since(&earlier);
        assert_eq!(
            since.iter().collect::<Vec<_>>(),
            [("kv get", 1), ("outbound request", 1)]
        );
        assert_eq!(since.outbound(), 1);
    }
}
