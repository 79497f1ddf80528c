//! Application variables, component variable templates and their resolution.
//!
//! `[variables]` declare names with a `default` or `required = true`; `[component.<id>.variables]`
//! are templates such as `"{{ retention_seconds }}"` or `"prefix-{{ name }}"`. Values are resolved
//! once when a host starts, from the defaults plus the test's overrides, and a required variable
//! without a value or an override of an undeclared variable is refused. `allowed_outbound_hosts`
//! entries are templates too (`allowed_hosts`).

use std::collections::BTreeMap;

use anyhow::{Result, bail, ensure};

/// An entry of `[variables]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AppVariable {
    Default(String),
    Required,
}

/// A component variable's value template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Variable(String),
}

impl Template {
    /// Parses `text` with `{{ name }}` placeholders.
    pub fn parse(text: &str) -> Result<Self> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Literal(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                bail!("unterminated `{{{{` in template");
            };
            let name = after[..end].trim();
            validate_name(name)?;
            parts.push(Part::Variable(name.to_owned()));
            rest = &after[end + 2..];
        }
        ensure!(!rest.contains("}}"), "unmatched `}}}}` in template");
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// The application variables the template refers to.
    pub fn references(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Variable(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Whether the template has no placeholder.
    pub fn is_literal(&self) -> bool {
        self.references().next().is_none()
    }

    /// The text with every placeholder replaced by its variable's value from `values`.
    pub fn render(&self, values: &BTreeMap<String, String>) -> Result<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Variable(name) => match values.get(name) {
                    Some(value) => out.push_str(value),
                    None => bail!("variable `{name}` has no value"),
                },
            }
        }
        Ok(out)
    }
}

/// Checks a variable name the way Spin does: lowercase ASCII letters, digits and single
/// underscores, starting with a letter and not ending with an underscore.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    ensure!(!name.is_empty(), "variable name must not be empty");
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        bail!(
            "variable name `{name}`: invalid character {c:?} (lowercase letters, digits and `_` only)"
        );
    }
    ensure!(
        name.as_bytes()[0].is_ascii_lowercase(),
        "variable name `{name}` must start with a lowercase letter"
    );
    ensure!(
        !name.ends_with('_'),
        "variable name `{name}` must not end with `_`"
    );
    ensure!(
        !name.contains("__"),
        "variable name `{name}` must not contain `__`"
    );
    Ok(())
}

/// The application variables' values: defaults overlaid with `overrides`. An override of an
/// undeclared variable, or a required variable without a value, is refused.
pub(crate) fn app_values(
    app: &BTreeMap<String, AppVariable>,
    overrides: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    for name in overrides.keys() {
        ensure!(
            app.contains_key(name),
            "variable override `{name}`: [variables] in spin.toml does not declare it"
        );
    }
    let mut values = BTreeMap::new();
    for (name, variable) in app {
        let value = match (overrides.get(name), variable) {
            (Some(value), _) => value.clone(),
            (None, AppVariable::Default(default)) => default.clone(),
            (None, AppVariable::Required) => {
                bail!("required variable `{name}` has no value (pass one with .variable())")
            }
        };
        values.insert(name.clone(), value);
    }
    Ok(values)
}

/// Renders every component's variable templates from the application variables' `values`.
/// Returns `component -> name -> value`.
pub(crate) fn render_components<'a>(
    values: &BTreeMap<String, String>,
    components: impl IntoIterator<Item = (&'a String, &'a BTreeMap<String, Template>)>,
) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let mut resolved = BTreeMap::new();
    for (component, templates) in components {
        let mut rendered = BTreeMap::new();
        for (name, template) in templates {
            rendered.insert(name.clone(), template.render(values)?);
        }
        resolved.insert(component.clone(), rendered);
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(vars: &[(&str, AppVariable)]) -> BTreeMap<String, AppVariable> {
        vars.iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect()
    }

    fn templates(vars: &[(&str, &str)]) -> BTreeMap<String, Template> {
        vars.iter()
            .map(|(n, t)| (n.to_string(), Template::parse(t).expect("valid template")))
            .collect()
    }

    fn resolve<'a>(
        app: &BTreeMap<String, AppVariable>,
        overrides: &BTreeMap<String, String>,
        components: impl IntoIterator<Item = (&'a String, &'a BTreeMap<String, Template>)>,
    ) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
        render_components(&app_values(app, overrides)?, components)
    }

    fn overrides(vars: &[(&str, &str)]) -> BTreeMap<String, String> {
        vars.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn component_variable_template_resolves_app_default() {
        let app = app(&[("retention_seconds", AppVariable::Default("86400".into()))]);
        let submit = templates(&[("retention_seconds", "{{ retention_seconds }}")]);
        let components = [("submit".to_string(), submit)];
        let resolved = resolve(
            &app,
            &BTreeMap::new(),
            components.iter().map(|(c, t)| (c, t)),
        )
        .expect("resolves");
        assert_eq!(resolved["submit"]["retention_seconds"], "86400");
    }

    #[test]
    fn override_flows_into_every_component_that_templates_it() {
        let app = app(&[("retention_seconds", AppVariable::Default("86400".into()))]);
        let t = templates(&[("retention_seconds", "{{retention_seconds}}")]);
        let components = [("a".to_string(), t.clone()), ("b".to_string(), t)];
        let resolved = resolve(
            &app,
            &overrides(&[("retention_seconds", "2")]),
            components.iter().map(|(c, t)| (c, t)),
        )
        .expect("resolves");
        assert_eq!(resolved["a"]["retention_seconds"], "2");
        assert_eq!(resolved["b"]["retention_seconds"], "2");
    }

    #[test]
    fn template_mixes_literals_and_variables() {
        let app = app(&[("host", AppVariable::Default("example".into()))]);
        let t = templates(&[("url", "https://{{ host }}/x")]);
        let components = [("a".to_string(), t)];
        let resolved = resolve(
            &app,
            &BTreeMap::new(),
            components.iter().map(|(c, t)| (c, t)),
        )
        .expect("resolves");
        assert_eq!(resolved["a"]["url"], "https://example/x");
    }

    #[test]
    fn required_variable_without_value_is_refused() {
        let app = app(&[("token", AppVariable::Required)]);
        let err = resolve(&app, &BTreeMap::new(), std::iter::empty()).expect_err("refused");
        assert!(err.to_string().contains("required variable `token`"));
        let ok = resolve(&app, &overrides(&[("token", "t")]), std::iter::empty());
        assert!(ok.is_ok());
    }

    #[test]
    fn override_of_undeclared_variable_is_refused() {
        let err = resolve(
            &BTreeMap::new(),
            &overrides(&[("typo", "1")]),
            std::iter::empty(),
        )
        .expect_err("refused");
        assert!(err.to_string().contains("`typo`"));
    }

    #[test]
    fn variable_names_follow_spin_rules() {
        assert!(validate_name("max_wait_seconds").is_ok());
        assert!(validate_name("a1").is_ok());
        for bad in ["", "Upper", "1a", "a-b", "a__b", "a_", "_a"] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn malformed_template_is_refused() {
        assert!(Template::parse("{{ unterminated").is_err());
        assert!(Template::parse("x }}").is_err());
        assert!(Template::parse("{{ Bad }}").is_err());
    }
}
