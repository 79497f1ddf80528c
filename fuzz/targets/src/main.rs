//! Prints the fuzzing plan that `scripts/fuzz` follows, one target a line:
//! `name kind min_executions max_len max_alloc_mb rss_limit_mb sanitizer
//! assertions` (`all` crates, or `kiln`'s only), from [`TARGETS`].

use kiln_fuzz_targets::{Kind, TARGETS};

fn main() {
    for target in TARGETS {
        let kind = match target.kind {
            Kind::Parser => "parser",
            Kind::Image => "image",
        };
        println!(
            "{} {kind} {} {} {} {} {} {}",
            target.name,
            target.kind.min_executions(),
            target.kind.max_len(),
            target.kind.max_alloc_mb(),
            target.kind.rss_limit_mb(),
            target.kind.sanitizer(),
            if target.kind.debug_assertions_everywhere() {
                "all"
            } else {
                "kiln"
            }
        );
    }
}
