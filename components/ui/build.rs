//! Converts the repository's `openapi.yaml` to JSON once, at build time, so
//! the component serves both without parsing YAML per request.

fn main() {
    let source = "../../openapi.yaml";
    println!("cargo::rerun-if-changed={source}");
    let yaml = std::fs::read_to_string(source).expect("openapi.yaml at the repository root");
    let document: serde_json::Value = serde_yaml_ng::from_str(&yaml).expect("openapi.yaml is YAML");
    let out =
        std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("openapi.json");
    std::fs::write(out, serde_json::to_vec(&document).expect("JSON"))
        .expect("writing openapi.json");
}
