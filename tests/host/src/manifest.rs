//! Parsing and validation of `spin.toml` (manifest version 2), limited to what the host runs.
//!
//! Everything the host does not implement (other trigger types, `files`, SQLite, inline
//! components, ...) is refused here with an error naming the field, so a manifest that would
//! behave differently on Spin never loads silently.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use serde::Deserialize;

use crate::allowed_hosts::OutboundHostsConfig;
use crate::routes::RoutePattern;
use crate::variables::{AppVariable, Template, validate_name};

/// The subset of a Spin application the host needs, validated.
#[derive(Debug, Clone)]
pub(crate) struct AppManifest {
    /// HTTP triggers in manifest order.
    pub triggers: Vec<HttpTrigger>,
    /// Components by id.
    pub components: BTreeMap<String, ComponentManifest>,
    /// Application variables by name.
    pub variables: BTreeMap<String, AppVariable>,
}

/// One `[[trigger.http]]` entry.
#[derive(Debug, Clone)]
pub(crate) struct HttpTrigger {
    /// `None` for `route = { private = true }`.
    pub route: Option<RoutePattern>,
    pub component: String,
}

/// One `[component.<id>]` table.
#[derive(Debug, Clone)]
pub(crate) struct ComponentManifest {
    /// `source` as written (relative to the manifest directory).
    pub source: String,
    pub key_value_stores: Vec<String>,
    pub allowed_outbound_hosts: OutboundHostsConfig,
    pub variables: BTreeMap<String, Template>,
    pub environment: BTreeMap<String, String>,
}

/// The only key-value store label the host (like a default `spin up`) defines.
pub(crate) const DEFAULT_STORE: &str = "default";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    spin_manifest_version: i64,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    #[serde(default)]
    trigger: BTreeMap<String, toml::Value>,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // fields are only parsed to accept valid manifests
struct RawApplication {
    name: String,
    version: Option<String>,
    description: Option<String>,
    authors: Option<Vec<String>>,
    targets: Option<Vec<String>>,
    trigger: Option<toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariable {
    default: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    secret: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpTrigger {
    #[allow(dead_code)]
    id: Option<String>,
    route: RawRoute,
    component: toml::Value,
    executor: Option<toml::Value>,
    static_response: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Pattern(String),
    Private(RawPrivate),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrivate {
    private: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // build/description are accepted and ignored
struct RawComponent {
    source: toml::Value,
    description: Option<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    build: Option<toml::Value>,
    files: Option<toml::Value>,
    exclude_files: Option<toml::Value>,
    sqlite_databases: Option<toml::Value>,
    ai_models: Option<toml::Value>,
    allowed_http_hosts: Option<toml::Value>,
    dependencies: Option<toml::Value>,
    dependencies_inherit_configuration: Option<toml::Value>,
    targets: Option<toml::Value>,
    tool: Option<toml::Value>,
}

impl AppManifest {
    /// Reads and validates the manifest at `path`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid manifest {}", path.display()))
    }

    /// Parses and validates manifest text.
    pub fn parse(text: &str) -> Result<Self> {
        let raw: RawManifest = toml::from_str(text)?;
        ensure!(
            raw.spin_manifest_version == 2,
            "spin_manifest_version must be 2 (found {})",
            raw.spin_manifest_version
        );
        check_application(&raw.application)?;
        let variables = parse_variables(raw.variables)?;
        let mut components = BTreeMap::new();
        for (id, raw_component) in raw.component {
            let component = parse_component(&id, raw_component, &variables)
                .with_context(|| format!("component `{id}`"))?;
            components.insert(id, component);
        }
        let triggers = parse_triggers(raw.trigger, &components)?;
        let manifest = Self {
            triggers,
            components,
            variables,
        };
        manifest.check_chaining_targets()?;
        Ok(manifest)
    }

    /// Whether some HTTP trigger (public or private) runs this component, which is what makes it
    /// reachable through service chaining.
    pub fn has_http_trigger(&self, component: &str) -> bool {
        self.triggers.iter().any(|t| t.component == component)
    }

    fn check_chaining_targets(&self) -> Result<()> {
        for (id, component) in &self.components {
            for target in component.allowed_outbound_hosts.named_chaining_targets() {
                ensure!(
                    self.has_http_trigger(target),
                    "component `{id}`: allowed_outbound_hosts names `{target}.spin.internal`, \
                     but no HTTP trigger runs a component `{target}`"
                );
            }
        }
        Ok(())
    }
}

fn check_application(app: &RawApplication) -> Result<()> {
    if let Some(trigger) = &app.trigger {
        for (kind, settings) in trigger {
            ensure!(
                kind == "http",
                "[application.trigger.{kind}] is not supported"
            );
            let base = settings.get("base").and_then(toml::Value::as_str);
            ensure!(
                matches!(base, None | Some("/")),
                "[application.trigger.http] base other than \"/\" is not supported"
            );
        }
    }
    Ok(())
}

fn parse_variables(raw: BTreeMap<String, RawVariable>) -> Result<BTreeMap<String, AppVariable>> {
    let mut variables = BTreeMap::new();
    for (name, var) in raw {
        validate_name(&name).with_context(|| format!("[variables] `{name}`"))?;
        let _ = var.secret;
        let variable = match (var.default, var.required) {
            (Some(_), true) => {
                bail!("[variables] `{name}` cannot both be required and have a default")
            }
            (Some(default), false) => AppVariable::Default(default),
            (None, true) => AppVariable::Required,
            (None, false) => bail!("[variables] `{name}` needs a default or `required = true`"),
        };
        variables.insert(name, variable);
    }
    Ok(variables)
}

fn parse_component(
    id: &str,
    raw: RawComponent,
    app_variables: &BTreeMap<String, AppVariable>,
) -> Result<ComponentManifest> {
    validate_component_id(id)?;
    let unsupported = [
        ("files", raw.files.is_some()),
        ("exclude_files", raw.exclude_files.is_some()),
        ("sqlite_databases", raw.sqlite_databases.is_some()),
        ("ai_models", raw.ai_models.is_some()),
        ("allowed_http_hosts", raw.allowed_http_hosts.is_some()),
        ("dependencies", raw.dependencies.is_some()),
        (
            "dependencies_inherit_configuration",
            raw.dependencies_inherit_configuration.is_some(),
        ),
    ];
    for (field, present) in unsupported {
        ensure!(!present, "`{field}` is not supported by the test host");
    }
    let source = match raw.source {
        toml::Value::String(source) => source,
        _ => bail!("`source` must be a path to a .wasm file (remote sources are not supported)"),
    };
    for label in &raw.key_value_stores {
        ensure!(
            label == DEFAULT_STORE,
            "key_value_stores: store `{label}` is not defined (only \"{DEFAULT_STORE}\" exists)"
        );
    }
    let allowed_outbound_hosts =
        OutboundHostsConfig::parse(&raw.allowed_outbound_hosts, app_variables)?;
    let mut variables = BTreeMap::new();
    for (name, template) in raw.variables {
        validate_name(&name).with_context(|| format!("variables: `{name}`"))?;
        let template = Template::parse(&template)
            .with_context(|| format!("variables: `{name}` = {template:?}"))?;
        for reference in template.references() {
            ensure!(
                app_variables.contains_key(reference),
                "variables: `{name}` refers to `{reference}`, which [variables] does not define"
            );
        }
        variables.insert(name, template);
    }
    Ok(ComponentManifest {
        source,
        key_value_stores: raw.key_value_stores,
        allowed_outbound_hosts,
        variables,
        environment: raw.environment,
    })
}

fn validate_component_id(id: &str) -> Result<()> {
    let valid = !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && id.as_bytes()[0].is_ascii_lowercase();
    ensure!(
        valid,
        "component id `{id}` must be lowercase letters, digits, `-` or `_`, starting with a letter"
    );
    Ok(())
}

fn parse_triggers(
    raw: BTreeMap<String, toml::Value>,
    components: &BTreeMap<String, ComponentManifest>,
) -> Result<Vec<HttpTrigger>> {
    let mut triggers = Vec::new();
    for (kind, entries) in raw {
        ensure!(
            kind == "http",
            "[[trigger.{kind}]] is not supported (only HTTP triggers)"
        );
        let entries: Vec<RawHttpTrigger> = entries.try_into().context("[[trigger.http]]")?;
        for entry in entries {
            let component = match entry.component {
                toml::Value::String(id) => id,
                _ => bail!("[[trigger.http]]: `component` must name a [component.<id>] table"),
            };
            let context = || format!("[[trigger.http]] for component `{component}`");
            ensure!(
                entry.executor.is_none(),
                "{}: `executor` is not supported",
                context()
            );
            ensure!(
                entry.static_response.is_none(),
                "{}: `static_response` is not supported",
                context()
            );
            ensure!(
                components.contains_key(&component),
                "{}: no [component.{component}] table",
                context()
            );
            let route = match entry.route {
                RawRoute::Pattern(pattern) => {
                    Some(RoutePattern::parse(&pattern).with_context(context)?)
                }
                RawRoute::Private(RawPrivate { private: true }) => None,
                RawRoute::Private(RawPrivate { private: false }) => bail!(
                    "{}: route must be a string pattern or `{{ private = true }}`",
                    context()
                ),
            };
            triggers.push(HttpTrigger { route, component });
        }
    }
    Ok(triggers)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "spin_manifest_version = 2\n[application]\nname = \"t\"\n";

    fn parse(body: &str) -> Result<AppManifest> {
        AppManifest::parse(&format!("{HEADER}{body}"))
    }

    fn error_text(body: &str) -> String {
        match parse(body) {
            Ok(_) => panic!("manifest was accepted"),
            Err(err) => format!("{err:#}"),
        }
    }

    const PROCESSOR: &str = "
        [[trigger.http]]
        route = { private = true }
        component = \"processor\"
        [component.processor]
        source = \"p.wasm\"
    ";

    #[test]
    fn private_route_has_no_pattern() {
        let manifest = parse(PROCESSOR).expect("valid manifest");
        assert_eq!(manifest.triggers.len(), 1);
        assert!(manifest.triggers[0].route.is_none());
        assert!(manifest.has_http_trigger("processor"));
    }

    #[test]
    fn private_false_is_refused() {
        let text = error_text(
            "[[trigger.http]]\nroute = { private = false }\ncomponent = \"a\"\n\
             [component.a]\nsource = \"a.wasm\"\n",
        );
        assert!(text.contains("private = true"), "{text}");
    }

    #[test]
    fn trigger_for_missing_component_is_refused() {
        let text = error_text("[[trigger.http]]\nroute = \"/x\"\ncomponent = \"ghost\"\n");
        assert!(text.contains("no [component.ghost]"), "{text}");
    }

    #[test]
    fn unknown_component_field_is_refused() {
        let text =
            error_text("[component.a]\nsource = \"a.wasm\"\nkey_value_store = [\"default\"]\n");
        assert!(text.contains("key_value_store"), "{text}");
    }

    #[test]
    fn undefined_key_value_store_is_refused() {
        let text =
            error_text("[component.a]\nsource = \"a.wasm\"\nkey_value_stores = [\"other\"]\n");
        assert!(text.contains("store `other` is not defined"), "{text}");
    }

    #[test]
    fn component_variable_referring_to_undefined_app_variable_is_refused() {
        let text = error_text(
            "[component.a]\nsource = \"a.wasm\"\n[component.a.variables]\nx = \"{{ nope }}\"\n",
        );
        assert!(text.contains("`nope`"), "{text}");
    }

    #[test]
    fn variable_needs_default_or_required() {
        let text = error_text("[variables]\nx = { secret = true }\n");
        assert!(text.contains("needs a default"), "{text}");
        let text = error_text("[variables]\nx = { default = \"1\", required = true }\n");
        assert!(text.contains("cannot both"), "{text}");
    }

    #[test]
    fn chaining_to_component_without_trigger_is_refused() {
        let text = error_text(
            "[component.a]\nsource = \"a.wasm\"\nallowed_outbound_hosts = [\"http://b.spin.internal\"]\n\
             [component.b]\nsource = \"b.wasm\"\n",
        );
        assert!(text.contains("b.spin.internal"), "{text}");
    }

    /// A templated entry beside a chaining entry loads; the chaining entry is still checked.
    #[test]
    fn templated_outbound_host_loads_beside_a_chaining_entry() {
        let manifest = parse(&format!(
            "[variables]\nhooks = {{ default = \"http://127.0.0.1:1\" }}\n\
             [component.a]\nsource = \"a.wasm\"\n\
             allowed_outbound_hosts = [\"http://processor.spin.internal\", \"{{{{ hooks }}}}\"]\n{PROCESSOR}"
        ))
        .expect("valid manifest");
        assert!(manifest.components.contains_key("a"));
        let text = error_text(
            "[variables]\nhooks = { default = \"\" }\n\
             [component.a]\nsource = \"a.wasm\"\nallowed_outbound_hosts = [\"{{ hooks }}\"]\n",
        );
        assert!(text.contains("Spin 4.0.2 refuses"), "{text}");
    }

    #[test]
    fn non_http_trigger_is_refused() {
        let text = error_text("[[trigger.redis]]\nchannel = \"x\"\ncomponent = \"a\"\n");
        assert!(text.contains("trigger.redis"), "{text}");
    }

    #[test]
    fn unsupported_capability_is_refused() {
        let text = error_text("[component.a]\nsource = \"a.wasm\"\nfiles = [\"x\"]\n");
        assert!(text.contains("`files` is not supported"), "{text}");
    }

    #[test]
    fn project_manifest_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spin.toml");
        let manifest = AppManifest::from_file(&path).expect("the project's spin.toml is valid");
        assert!(manifest.components.contains_key("processor"));
        assert!(manifest.variables.contains_key("retention_seconds"));
    }
}
