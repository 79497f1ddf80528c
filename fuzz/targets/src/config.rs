//! What an operator sets: Spin variables, read when a component starts
//! handling a request. A mistake there must be a clear configuration
//! error, never a panic, and must not echo a secret (an API key pasted
//! where its hash belongs, the webhook secret) into the error or the
//! configuration's `Debug` print.

use kiln::Config;
use kiln::access::ApiKeys;
use kiln::http::AllowedOrigins;
use std::collections::HashMap;
use std::sync::LazyLock;

/// `api_keys`. Keys that parse never print their hashes; an error never
/// echoes an entry's hash part (it may be a key pasted by mistake).
pub fn api_keys(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match ApiKeys::parse(&text) {
        Ok(Some(keys)) => {
            let printed = format!("{keys:?}");
            assert_no_secrets(&printed, &hashes(&text), "Debug");
            let mut headers = http::HeaderMap::new();
            headers.insert(
                http::header::AUTHORIZATION,
                http::HeaderValue::from_static("Bearer fuzz-key"),
            );
            let _ = keys.identify(&headers);
        }
        Ok(None) => assert!(
            text.chars().all(|c| c == ',' || c.is_whitespace()),
            "{text:?} names no key"
        ),
        Err(message) => assert_no_secrets(&message, &hashes(&text), "the error"),
    }
}

/// The hash parts of `api_keys` entries that are not also their entry's
/// name (a name is echoed in the duplicate-name error, by design).
fn hashes(text: &str) -> Vec<&str> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .map(|entry| match entry.split_once(':') {
            Some((name, hash)) if hash != name => hash,
            Some(_) => "",
            None => entry,
        })
        .collect()
}

/// Panics if `printed` holds any of `secrets` long enough to be one (no
/// shorter run of Kiln's own message text could be mistaken for it).
fn assert_no_secrets(printed: &str, secrets: &[&str], what: &str) {
    for secret in secrets.iter().filter(|secret| secret.len() >= 16) {
        assert!(
            !printed.contains(secret),
            "{what} {printed:?} echoes {secret:?}"
        );
    }
}

/// `cors_allowed_origins`. Every origin read is printed as browsers send
/// it, which reads back as itself.
pub fn allowed_origins(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match AllowedOrigins::parse(&text) {
        Ok(Some(AllowedOrigins::Listed(origins))) => {
            assert!(!origins.is_empty());
            for origin in origins {
                assert_eq!(
                    AllowedOrigins::parse(&origin),
                    Ok(Some(AllowedOrigins::Listed(vec![origin.clone()]))),
                    "{text:?}"
                );
            }
        }
        Ok(Some(AllowedOrigins::Any) | None) | Err(_) => {}
    }
}

/// Every variable at once (`Config::from_lookup`), from `spin.toml`'s
/// defaults changed by the input's lines: `name=value` sets a variable,
/// `!name` leaves it undefined. Whatever comes of it, the webhook secret's
/// key and the API keys' hashes are in neither the configuration's
/// `Debug` print nor an error.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut variables = starting_variables();
    for line in text.split('\n') {
        if let Some(name) = line.strip_prefix('!') {
            variables.remove(name);
        } else if let Some((name, value)) = line.split_once('=') {
            variables.insert(name.to_owned(), value.to_owned());
        }
    }
    let secret = variables.get("webhook_secret").map_or("", |s| s.trim());
    let mut secrets = vec![secret.strip_prefix("whsec_").unwrap_or(secret).to_owned()];
    let keys = variables.get("api_keys").map_or("", String::as_str);
    secrets.extend(hashes(keys).into_iter().map(str::to_owned));
    let shown = printed(&variables);
    for secret in secrets.iter().filter(|secret| secret.len() >= 16) {
        if !shown.contains(secret.as_str()) {
            continue;
        }
        // The text may come from elsewhere: another variable, a name, Kiln's
        // own words. It is echoed from a secret only if changing it in the
        // secret variables (to text as valid there: the same length and
        // alphabet) takes it out of what is printed.
        let mut changed = variables.clone();
        for name in SECRET_VARIABLES {
            if let Some(value) = changed.get_mut(name) {
                *value = value.replace(secret.as_str(), &altered(secret));
            }
        }
        assert!(
            printed(&changed).contains(secret.as_str()),
            "{shown:?} echoes the secret {secret:?}"
        );
    }
}

/// `text` with every letter and digit moved one place within its run of
/// the alphabet (`0-9`, `a-f`, `g-z`, `A-F`, `G-Z`), so that hex stays hex
/// and base64 stays base64, of the same length.
fn altered(text: &str) -> String {
    let rotate = |c: char, first: char, last: char| {
        if c == last {
            first
        } else {
            char::from(c as u8 + 1)
        }
    };
    text.chars()
        .map(|c| match c {
            '0'..='9' => rotate(c, '0', '9'),
            'a'..='f' => rotate(c, 'a', 'f'),
            'g'..='z' => rotate(c, 'g', 'z'),
            'A'..='F' => rotate(c, 'A', 'F'),
            'G'..='Z' => rotate(c, 'G', 'Z'),
            _ => c,
        })
        .collect()
}

/// The variables that hold secrets.
const SECRET_VARIABLES: [&str; 2] = ["webhook_secret", "api_keys"];

/// What Kiln prints of a configuration read from `variables`: its `Debug`
/// form, or the error. One that reads has sane image limits.
fn printed(variables: &HashMap<String, String>) -> String {
    match Config::from_lookup(|name| variables.get(name).cloned()) {
        Ok(config) => {
            let limits = config.image_limits();
            assert!(limits.max_input_pixels >= 1 && limits.max_frames >= 1);
            format!("{config:?}")
        }
        Err(err) => err.to_string(),
    }
}

/// What the `config` target starts from: `spin.toml`'s `[variables]`
/// defaults, with [`SET`] on top.
fn starting_variables() -> HashMap<String, String> {
    static STARTING: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
        let mut variables = spin_toml_defaults();
        for (name, value) in SET {
            variables.insert(name.to_owned(), value.to_owned());
        }
        variables
    });
    STARTING.clone()
}

/// Every variable `spin.toml` declares, with its default.
fn spin_toml_defaults() -> HashMap<String, String> {
    let manifest: toml::Table = include_str!("../../../spin.toml")
        .parse()
        .expect("spin.toml parses");
    manifest["variables"]
        .as_table()
        .expect("spin.toml has [variables]")
        .iter()
        .filter_map(|(name, declared)| {
            Some((name.clone(), declared.get("default")?.as_str()?.to_owned()))
        })
        .collect()
}

/// A webhook secret, allowed hosts, origins, keys and rate limits (the
/// cloud profile's), which `spin.toml` leaves off, so that every parser
/// runs from the start.
const SET: [(&str, &str); 7] = [
    ("webhook_secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ("webhook_allowed_hosts", "https://*.example.com:8000..9000"),
    (
        "cors_allowed_origins",
        "https://app.example.com http://localhost:8080",
    ),
    (
        "api_keys",
        "fuzz:231e9b2f757db8d48ecd0711b60135e1cc57a3a807be9dc12638856f17a7872c",
    ),
    ("rate_limit_per_minute", "60"),
    ("rate_limit_burst", "10"),
    ("max_unfinished_jobs", "4"),
];

#[cfg(test)]
mod tests {
    use super::{SET, spin_toml_defaults};

    /// What the `config` target sets on top of `spin.toml`'s defaults are
    /// variables `spin.toml` declares (a renamed one is not silently
    /// fuzzed under its old name).
    #[test]
    fn the_config_target_sets_only_variables_of_spin_toml() {
        let declared = spin_toml_defaults();
        assert!(declared.len() >= 20, "{declared:?}");
        for (name, _) in SET {
            assert!(declared.contains_key(name), "{name} is not in spin.toml");
        }
    }
}
