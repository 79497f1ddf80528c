//! The app against its own OpenAPI description (`openapi.yaml`): the
//! document is valid OpenAPI 3.1, and Schemathesis, generating requests
//! from it with real images as bodies and valid `ops`
//! (`tests/schema/kiln_hooks.py`), finds every response as described.

use kiln_e2e::{Env, schema};

#[test]
fn the_openapi_description_is_valid() {
    let Some(bin) = schema::tools("the OpenAPI validation") else {
        return;
    };
    let document = kiln_e2e::env::workspace_root().join("openapi.yaml");
    if let Err(report) = schema::validate(&bin, &document) {
        panic!("openapi.yaml is not valid OpenAPI:\n{report}");
    }
}

/// Every check Schemathesis has, on every operation, in every phase
/// (examples, coverage, fuzzing, stateful): no server errors; statuses,
/// content types, headers and bodies as described; schema-valid requests
/// accepted and invalid ones refused; links followed to what they name.
/// The exceptions, each with its reason, are in `tests/schema`.
#[test]
fn the_app_conforms_to_its_openapi_description() {
    let Some(bin) = schema::tools("the schemathesis test") else {
        return;
    };
    // With API keys on, as a public deployment runs, for reads too.
    let key = "schemathesis-key-31c9";
    let builder = Env::builder()
        .api_keys(&[("schemathesis", key)])
        .variable("api_keys_for_reads", "true");
    let env = kiln_e2e::webhooks::enabled(builder).start();
    let report = schema::run_schemathesis(&bin, env.base_url(), key);
    // From the line of the summary's heading: operations, phases, cases.
    let summary = report
        .find("SUMMARY")
        .and_then(|at| report[..at].rfind('\n'))
        .map_or(report.as_str(), |line| &report[line + 1..]);
    kiln_e2e::process::report(summary);
}
