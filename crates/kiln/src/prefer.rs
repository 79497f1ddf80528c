//! RFC 7240 `Prefer` header parsing.
//!
//! Malformed preferences are ignored, never an error (RFC 7240 §2); a
//! preference given more than once counts only the first time.

/// The `return` preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    /// `return=minimal`: no body on success.
    Minimal,
    /// `return=representation`: the full representation.
    Representation,
}

/// What a client asked for in its `Prefer` headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    /// `respond-async`.
    pub respond_async: bool,
    /// `wait=N`, in seconds.
    pub wait: Option<u64>,
    /// `return=minimal|representation`.
    pub return_: Option<Return>,
}

impl Preferences {
    /// Parses every `Prefer` header value of a request, in order.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Preferences {
        // Only the preferences Kiln reads are remembered (at most three),
        // so that a header of thousands of others costs linear time.
        let mut seen: Vec<String> = Vec::new();
        let mut prefs = Preferences::default();
        for value in values {
            let Ok(text) = std::str::from_utf8(value) else {
                continue;
            };
            for item in split_outside_quotes(text, ',') {
                let Some((name, value)) = parse_preference(item) else {
                    continue;
                };
                if !KNOWN.contains(&name.as_str()) || seen.contains(&name) {
                    continue;
                }
                seen.push(name.clone());
                match (name.as_str(), value.as_deref()) {
                    ("respond-async", None) => prefs.respond_async = true,
                    ("wait", Some(seconds)) if is_delta_seconds(seconds) => {
                        // Anything beyond u64 is "forever": saturate.
                        prefs.wait = Some(seconds.parse().unwrap_or(u64::MAX));
                    }
                    ("return", Some(v)) if v.eq_ignore_ascii_case("minimal") => {
                        prefs.return_ = Some(Return::Minimal)
                    }
                    ("return", Some(v)) if v.eq_ignore_ascii_case("representation") => {
                        prefs.return_ = Some(Return::Representation)
                    }
                    _ => {}
                }
            }
        }
        prefs
    }
}

/// The preferences Kiln acts on.
const KNOWN: [&str; 3] = ["respond-async", "wait", "return"];

fn is_delta_seconds(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// `token [ BWS "=" BWS word ] *( OWS ";" [ OWS parameter ] )`: the lowercased
/// name and the unquoted value; parameters are checked for syntax only.
fn parse_preference(item: &str) -> Option<(String, Option<String>)> {
    let mut parts = split_outside_quotes(item, ';').into_iter();
    let (name, value) = parse_name_value(parts.next()?)?;
    for parameter in parts {
        if !parameter.trim().is_empty() {
            parse_name_value(parameter)?;
        }
    }
    Some((name, value))
}

fn parse_name_value(text: &str) -> Option<(String, Option<String>)> {
    let (name, value) = match text.split_once('=') {
        Some((name, value)) => (name.trim(), Some(parse_word(value.trim())?)),
        None => (text.trim(), None),
    };
    is_token(name).then(|| (name.to_ascii_lowercase(), value))
}

/// `word = token / quoted-string`.
fn parse_word(text: &str) -> Option<String> {
    if let Some(inner) = text.strip_prefix('"') {
        let inner = inner.strip_suffix('"')?;
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.push(chars.next()?),
                '"' => return None,
                c => out.push(c),
            }
        }
        Some(out)
    } else {
        is_token(text).then(|| text.to_owned())
    }
}

/// RFC 9110 `token`.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Splits at `separator` except inside quoted strings.
fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str]) -> Preferences {
        Preferences::parse(values.iter().map(|v| v.as_bytes()))
    }

    #[test]
    fn no_header_means_no_preferences() {
        assert_eq!(parse(&[]), Preferences::default());
    }

    #[test]
    fn respond_async_alone() {
        assert!(parse(&["respond-async"]).respond_async);
    }

    #[test]
    fn names_are_case_insensitive() {
        let prefs = parse(&["Respond-Async, WAIT=5, Return=Minimal"]);
        assert!(prefs.respond_async);
        assert_eq!(prefs.wait, Some(5));
        assert_eq!(prefs.return_, Some(Return::Minimal));
    }

    #[test]
    fn preferences_combine_across_several_headers() {
        let prefs = parse(&["respond-async", "wait=10"]);
        assert!(prefs.respond_async);
        assert_eq!(prefs.wait, Some(10));
    }

    #[test]
    fn quoted_values_are_unquoted() {
        assert_eq!(parse(&[r#"wait="7""#]).wait, Some(7));
        assert_eq!(
            parse(&[r#"return="minimal""#]).return_,
            Some(Return::Minimal)
        );
    }

    #[test]
    fn commas_inside_quoted_parameters_do_not_split_preferences() {
        let prefs = parse(&[r#"foo; bar="a, b", respond-async"#]);
        assert!(prefs.respond_async);
    }

    #[test]
    fn parameters_after_a_preference_are_tolerated() {
        let prefs = parse(&["respond-async; foo=bar, wait=3;x"]);
        assert!(prefs.respond_async);
        assert_eq!(prefs.wait, Some(3));
    }

    #[test]
    fn the_first_occurrence_of_a_preference_wins() {
        assert_eq!(parse(&["wait=3, wait=9"]).wait, Some(3));
    }

    #[test]
    fn malformed_preferences_are_ignored_not_errors() {
        let prefs = parse(&["wait=soon, wait=-1, return=everything, =x, respond-async=yes"]);
        assert_eq!(prefs, Preferences::default());
    }

    #[test]
    fn a_malformed_preference_does_not_hide_the_valid_ones() {
        let prefs = parse(&[r#"wait="unterminated, respond-async"#, "respond-async"]);
        assert!(prefs.respond_async);
    }

    #[test]
    fn whitespace_around_equals_is_allowed() {
        assert_eq!(parse(&["wait = 4"]).wait, Some(4));
    }

    #[test]
    fn absurdly_long_wait_saturates() {
        assert_eq!(
            parse(&["wait=99999999999999999999999"]).wait,
            Some(u64::MAX)
        );
    }

    /// Thousands of preferences Kiln does not read cost linear time, and
    /// hide none that it does (found by fuzzing: the first occurrences
    /// were kept in a list searched for every preference, quadratic).
    #[test]
    fn many_unknown_preferences_are_read_in_linear_time() {
        let mut header: String = (0..20_000).map(|i| format!("p{i}=1, ")).collect();
        header.push_str("respond-async, wait=3");
        let started = std::time::Instant::now();
        let prefs = parse(&[&header]);
        assert!(prefs.respond_async);
        assert_eq!(prefs.wait, Some(3));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn non_utf8_values_are_ignored() {
        let prefs = Preferences::parse([&b"\xff\xfe"[..], b"respond-async"]);
        assert!(prefs.respond_async);
    }
}
