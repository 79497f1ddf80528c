//! What one request costs in host calls: key-value calls (and how many of
//! them write, each one commit on Spin's SQLite store), variable reads and
//! outgoing requests, before the client has its response and in all.
//!
//! The test host counts them (`kiln_test_host::HostCalls`): they are the
//! components' own calls, so they are the same on `spin up`, which cannot
//! count them. Every optimisation of a request path shows here what it
//! removed.

use kiln_e2e::Env;
use kiln_test_host::{ComponentCalls, HostCalls};

use crate::table::Table;

/// Kiln's components that serve or follow up a request.
const COMPONENTS: [&str; 3] = ["submit", "operations", "processor"];

/// One request's calls, per component that ran.
pub struct Tally {
    request: String,
    components: Vec<(&'static str, ComponentCalls)>,
}

/// Runs `request` on `kiln` (the test host), waits until everything it
/// started has ended, and counts the calls of every instance it ran.
pub fn of(kiln: &Env, request: &str, run: impl FnOnce()) -> Tally {
    kiln.settle();
    let before: Vec<ComponentCalls> = COMPONENTS.map(|c| kiln.host().calls(c)).to_vec();
    run();
    kiln.settle();
    let components = COMPONENTS
        .into_iter()
        .zip(before)
        .map(|(component, before)| (component, kiln.host().calls(component).since(&before)))
        .filter(|(_, calls)| calls.total != HostCalls::default())
        .collect();
    Tally {
        request: request.to_owned(),
        components,
    }
}

/// Prints the tallies as one table, then each row's calls by name.
pub fn print(tallies: &[Tally]) {
    let mut table = Table::new(&[
        "request",
        "component",
        "instances",
        "before the response: kv calls (writes)",
        "variable reads",
        "outbound",
        "in all: kv calls (writes)",
        "variable reads",
        "outbound",
    ]);
    let mut details = Vec::new();
    for tally in tallies {
        for (component, calls) in &tally.components {
            let mut row = vec![
                tally.request.clone(),
                format!("`{component}`"),
                calls.responded.to_string(),
            ];
            for counted in [&calls.before_response, &calls.total] {
                row.extend([
                    format!("{} ({})", counted.kv(), counted.kv_writes()),
                    counted.variable_reads().to_string(),
                    counted.outbound().to_string(),
                ]);
            }
            table.row(row);
            details.push(format!(
                "- {}, `{component}`: before the response {}; after it {}",
                tally.request,
                by_name(&calls.before_response),
                by_name(&calls.total.since(&calls.before_response)),
            ));
        }
    }
    println!(
        "Host calls of one request, counted by the test host (the components' own calls, so the same on `spin up`):\n"
    );
    table.print();
    for line in details {
        println!("{line}");
    }
    println!();
}

fn by_name(calls: &HostCalls) -> String {
    let named: Vec<String> = calls
        .iter()
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    if named.is_empty() {
        "none".to_owned()
    } else {
        named.join(", ")
    }
}
