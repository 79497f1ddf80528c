//! Route patterns and Spin's "most specific route wins" matching.
//!
//! Patterns are `/exact/path`, `/prefix/...` (or `/prefix/*`) trailing wildcards, and `:name`
//! segments. An exact route beats any wildcard route; otherwise routes are compared segment by
//! segment (literal beats `:param` beats wildcard), so a longer literal prefix wins. A wildcard
//! `/images/...` also matches `/images` itself. Among duplicate patterns the last one wins, as
//! in Spin. Private routes never enter the router.

use anyhow::{Result, bail, ensure};

/// A parsed route pattern from `[[trigger.http]] route = "..."`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoutePattern {
    /// The pattern as written in the manifest.
    raw: String,
    segments: Vec<Segment>,
    wildcard: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
}

impl RoutePattern {
    /// Parses a route pattern; a missing leading `/` is added and one trailing `/` is dropped,
    /// as Spin does.
    pub fn parse(raw: &str) -> Result<Self> {
        let mut path = raw.trim_start_matches('/');
        let mut wildcard = false;
        if path == "..." || path == "*" {
            path = "";
            wildcard = true;
        } else if let Some(prefix) = path
            .strip_suffix("/...")
            .or_else(|| path.strip_suffix("/*"))
        {
            path = prefix;
            wildcard = true;
        }
        let path = path.strip_suffix('/').unwrap_or(path);
        let mut segments = Vec::new();
        if !path.is_empty() {
            for segment in path.split('/') {
                ensure!(!segment.is_empty(), "route {raw:?} has an empty segment");
                ensure!(
                    segment != "..." && segment != "*",
                    "route {raw:?}: a wildcard may only end the route"
                );
                segments.push(match segment.strip_prefix(':') {
                    Some("") => bail!("route {raw:?} has an unnamed `:` segment"),
                    Some(name) => Segment::Param(name.to_owned()),
                    None => Segment::Literal(segment.to_owned()),
                });
            }
        }
        Ok(Self {
            raw: raw.to_owned(),
            segments,
            wildcard,
        })
    }

    /// The pattern as written in the manifest (`spin-raw-component-route`).
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The pattern without its trailing wildcard (`spin-component-route`), e.g. `/images` for
    /// `/images/...` and the empty string for `/...`.
    pub fn prefix(&self) -> &str {
        self.raw
            .strip_suffix("/...")
            .or_else(|| self.raw.strip_suffix("/*"))
            .unwrap_or(&self.raw)
    }

    /// Matches `path` (no query), returning the captured `:param`s and the path info.
    fn matches(&self, path: &str) -> Option<Captures> {
        let mut rest = path.strip_prefix('/').unwrap_or(path);
        let mut params = Vec::new();
        for segment in &self.segments {
            if rest.is_empty() {
                return None;
            }
            let (head, tail) = rest.split_once('/').unwrap_or((rest, ""));
            match segment {
                Segment::Literal(literal) if literal == head => {}
                Segment::Literal(_) => return None,
                Segment::Param(name) => params.push((name.clone(), head.to_owned())),
            }
            rest = tail;
        }
        // `rest` is what follows the matched segments, without its leading slash.
        if !self.wildcard {
            return rest.is_empty().then_some(Captures {
                params,
                path_info: String::new(),
            });
        }
        // Spin's path info keeps a trailing slash: `/a/...` gives "" for `/a`, "/" for `/a/`.
        let path_info = match (rest.is_empty(), path.ends_with('/')) {
            (true, false) => String::new(),
            (true, true) => "/".to_owned(),
            (false, _) => format!("/{rest}"),
        };
        Some(Captures { params, path_info })
    }

    /// Specificity rank: exact routes first, then segment kinds compared in order
    /// (literal < param < wildcard), then longer routes first.
    fn rank(&self) -> (bool, Vec<u8>, std::cmp::Reverse<usize>) {
        let mut kinds: Vec<u8> = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 0,
                Segment::Param(_) => 1,
            })
            .collect();
        if self.wildcard {
            kinds.push(2);
        }
        (self.wildcard, kinds, std::cmp::Reverse(self.segments.len()))
    }
}

struct Captures {
    params: Vec<(String, String)>,
    path_info: String,
}

/// The result of routing a request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RouteMatch {
    /// The component that handles the request.
    pub component: String,
    /// The matched route as written in the manifest.
    pub raw_route: String,
    /// The matched route without its trailing wildcard.
    pub component_route: String,
    /// The part of the path matched by the trailing wildcard (`spin-path-info`).
    pub path_info: String,
    /// Named `:param` captures.
    pub params: Vec<(String, String)>,
}

/// Routes request paths to components.
#[derive(Debug, Clone, Default)]
pub(crate) struct Router {
    routes: Vec<(RoutePattern, String)>,
}

impl Router {
    /// Builds a router from `(pattern, component)` pairs in manifest order; for duplicate
    /// patterns the last one wins.
    pub fn new<'a>(routes: impl IntoIterator<Item = (&'a RoutePattern, &'a str)>) -> Self {
        let mut unique: Vec<(RoutePattern, String)> = Vec::new();
        for (pattern, component) in routes {
            let duplicate = unique.iter().position(|(p, _)| {
                p.segments == pattern.segments && p.wildcard == pattern.wildcard
            });
            if let Some(index) = duplicate {
                unique.remove(index);
            }
            unique.push((pattern.clone(), component.to_owned()));
        }
        Self { routes: unique }
    }

    /// Finds the most specific route for `path`, or `None` (answered with 404).
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        self.routes
            .iter()
            .filter_map(|(pattern, component)| {
                pattern
                    .matches(path)
                    .map(|captures| (pattern, component, captures))
            })
            .min_by(|(a, _, _), (b, _, _)| a.rank().cmp(&b.rank()))
            .map(|(pattern, component, captures)| RouteMatch {
                component: component.clone(),
                raw_route: pattern.raw().to_owned(),
                component_route: pattern.prefix().to_owned(),
                path_info: captures.path_info,
                params: captures.params,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        let patterns: Vec<(RoutePattern, &str)> = routes
            .iter()
            .map(|(route, component)| {
                (RoutePattern::parse(route).expect("valid route"), *component)
            })
            .collect();
        Router::new(patterns.iter().map(|(p, c)| (p, *c)))
    }

    fn component_for(router: &Router, path: &str) -> Option<String> {
        router.route(path).map(|m| m.component)
    }

    fn kiln() -> Router {
        router(&[
            ("/images", "submit"),
            ("/images/...", "operations"),
            ("/operations/...", "operations"),
        ])
    }

    #[test]
    fn exact_route_beats_wildcard() {
        assert_eq!(component_for(&kiln(), "/images").as_deref(), Some("submit"));
    }

    #[test]
    fn wildcard_matches_its_prefix_itself() {
        let router = router(&[("/images/...", "operations")]);
        let m = router.route("/images").expect("match");
        assert_eq!(m.component, "operations");
        assert_eq!(m.path_info, "");
    }

    #[test]
    fn wildcard_matches_paths_below_it() {
        let m = kiln().route("/images/abc/def").expect("match");
        assert_eq!(m.component, "operations");
        assert_eq!(m.path_info, "/abc/def");
        assert_eq!(m.raw_route, "/images/...");
        assert_eq!(m.component_route, "/images");
    }

    #[test]
    fn wildcard_keeps_trailing_slash_in_path_info() {
        let m = kiln().route("/operations/").expect("match");
        assert_eq!(m.path_info, "/");
        let m = kiln().route("/operations/x/").expect("match");
        assert_eq!(m.path_info, "/x/");
    }

    #[test]
    fn exact_route_tolerates_one_trailing_slash() {
        assert_eq!(
            component_for(&kiln(), "/images/").as_deref(),
            Some("submit")
        );
        let router = router(&[("/health", "h")]);
        assert_eq!(component_for(&router, "/health/").as_deref(), Some("h"));
    }

    #[test]
    fn longer_prefix_beats_shorter() {
        let router = router(&[("/...", "all"), ("/a/...", "a"), ("/a/b/...", "ab")]);
        assert_eq!(component_for(&router, "/a/b/c").as_deref(), Some("ab"));
        assert_eq!(component_for(&router, "/a/x").as_deref(), Some("a"));
        assert_eq!(component_for(&router, "/z").as_deref(), Some("all"));
        assert_eq!(router.route("/").map(|m| m.path_info).as_deref(), Some("/"));
    }

    #[test]
    fn prefix_must_match_whole_segments() {
        assert_eq!(component_for(&kiln(), "/imagesX"), None);
        assert_eq!(component_for(&kiln(), "/imagesX/1"), None);
    }

    #[test]
    fn unmatched_path_has_no_route() {
        assert_eq!(component_for(&kiln(), "/"), None);
        assert_eq!(component_for(&kiln(), "/other"), None);
    }

    #[test]
    fn param_segment_captures_its_value() {
        let router = router(&[("/users/:id/...", "u")]);
        let m = router.route("/users/42/posts").expect("match");
        assert_eq!(m.params, vec![("id".to_owned(), "42".to_owned())]);
        assert_eq!(m.path_info, "/posts");
        assert_eq!(m.component_route, "/users/:id");
    }

    #[test]
    fn literal_segment_beats_param() {
        let router = router(&[("/users/:id", "param"), ("/users/me", "literal")]);
        assert_eq!(
            component_for(&router, "/users/me").as_deref(),
            Some("literal")
        );
        assert_eq!(component_for(&router, "/users/7").as_deref(), Some("param"));
    }

    #[test]
    fn exact_route_does_not_match_longer_path() {
        let router = router(&[("/images", "submit")]);
        assert_eq!(component_for(&router, "/images/1"), None);
    }

    #[test]
    fn duplicate_routes_last_one_wins() {
        let router = router(&[("/x", "first"), ("/x", "second")]);
        assert_eq!(component_for(&router, "/x").as_deref(), Some("second"));
    }

    #[test]
    fn wildcard_in_the_middle_is_refused() {
        assert!(RoutePattern::parse("/a/.../b").is_err());
        assert!(RoutePattern::parse("/a//b").is_err());
    }
}
