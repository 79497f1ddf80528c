//! `openapi.yaml` (the repository root) describes the API the manifests
//! serve: every public route and nothing else, every problem `type` the
//! domain can answer, and every status it maps errors to.

use kiln::{Error, JobId};
use serde_json::Value;
use std::collections::BTreeSet;

fn document() -> Value {
    serde_yaml_ng::from_str(include_str!("../../../openapi.yaml")).expect("openapi.yaml is YAML")
}

/// The public routes of a manifest, as OpenAPI paths (`/images/...`
/// serves `/images/{id}`).
fn routes(manifest: &str) -> BTreeSet<String> {
    let manifest: toml::Table = manifest.parse().expect("a TOML manifest");
    manifest["trigger"]["http"]
        .as_array()
        .expect("[[trigger.http]]")
        .iter()
        .filter_map(|trigger| trigger["route"].as_str())
        .map(|route| match route.strip_suffix("/...") {
            Some(prefix) => format!("{prefix}/{{id}}"),
            None => route.to_owned(),
        })
        .collect()
}

/// Every route either manifest serves publicly is described, and no path
/// is described that neither serves.
#[test]
fn every_served_route_is_described_and_nothing_else() {
    let described: BTreeSet<String> = document()["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .cloned()
        .collect();
    let served: BTreeSet<String> = routes(include_str!("../../../spin.toml"))
        .union(&routes(include_str!("../../../spin.cloud.toml")))
        .cloned()
        .collect();
    assert_eq!(described, served);
}

/// One error of every kind the domain has.
fn every_error() -> Vec<Error> {
    vec![
        Error::UnsupportedMediaType(String::new()),
        Error::ContentTooLarge { max: 1 },
        Error::BadRequest(String::new()),
        Error::WebhookRefused(String::new()),
        Error::Unprocessable(String::new()),
        Error::IdempotencyKeyReused(JobId::random()),
        Error::NotFound("operation"),
        Error::ImageNotReady(JobId::random()),
        Error::ProcessingTooLong { seconds: 30 },
        Error::Conflict(String::new()),
        Error::MethodNotAllowed { allow: "GET" },
        Error::OriginNotAllowed("https://example.com".into()),
        Error::Unauthorized { presented: true },
        Error::Forbidden,
        Error::Store(kiln::KvError(String::new())),
        Error::Internal(String::new()),
    ]
}

/// Every problem `type` the domain answers is in the Problem schema's
/// enumeration, and every status it answers with is a response somewhere.
#[test]
fn every_problem_type_and_status_is_described() {
    let document = document();
    let types: BTreeSet<&str> = document["components"]["schemas"]["Problem"]["properties"]["type"]
        ["enum"]
        .as_array()
        .expect("the Problem type enumeration")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let statuses: BTreeSet<String> = document["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|path| path.as_object().into_iter().flat_map(|p| p.values()))
        .filter_map(|operation| operation.get("responses")?.as_object())
        .flat_map(|responses| responses.keys().cloned())
        .collect();
    for error in every_error() {
        let problem = error.to_problem();
        assert!(
            types.contains(problem.type_.as_str()),
            "{} is not described",
            problem.type_
        );
        assert!(
            statuses.contains(&problem.status.to_string()),
            "no response is described with status {} ({})",
            problem.status,
            problem.type_
        );
    }
}

/// No value in the document is null: in a YAML flow mapping an unquoted
/// comma (`{description: The image, once done}`) silently splits a text
/// into a second key with no value.
#[test]
fn no_value_is_null() {
    fn nulls(value: &Value, path: &str, found: &mut Vec<String>) {
        match value {
            Value::Null => found.push(path.to_owned()),
            Value::Object(map) => {
                for (key, item) in map {
                    nulls(item, &format!("{path}/{key}"), found);
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    nulls(item, &format!("{path}/{index}"), found);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    nulls(&document(), "", &mut found);
    assert!(found.is_empty(), "null values at {found:?}");
}

/// The `ops` examples the document gives are valid operations.
#[test]
fn the_ops_examples_parse() {
    let document = document();
    let ops = document["paths"]["/images"]["post"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|parameter| parameter["name"] == "ops")
        .expect("the ops parameter");
    let examples = ops["examples"].as_object().expect("ops examples");
    assert!(!examples.is_empty());
    for (name, example) in examples {
        let spec = example["value"].as_str().expect("a text example");
        kiln_image::parse_ops(spec).unwrap_or_else(|e| panic!("example {name}: {e}"));
    }
}
