//! Replays every committed fuzzing input on stable Rust: the seeds of each
//! target (`fuzz/seeds/<name>/`), its minimised corpus
//! (`fuzz/corpus/<name>/`) and every crash, timeout or out-of-memory input
//! found and fixed (`fuzz/regressions/<name>/`), so that what was fixed
//! stays fixed. An input that panics, or makes one
//! allocation larger than its target's `max_alloc_mb` (libFuzzer's
//! `-malloc_limit_mb` in `scripts/fuzz`), fails its target's test.

use kiln_fuzz_targets::alloc::{self, Capped};
use kiln_fuzz_targets::{TARGETS, Target};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// Notes the largest allocation of each input (each target replays in its
/// own test thread).
#[global_allocator]
static ALLOCATOR: Capped = Capped::noting();

/// The committed inputs of `target`, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files: Vec<PathBuf> = ["seeds", "corpus", "regressions"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(fuzz.join(dir).join(target)).ok())
        .flatten()
        .map(|entry| entry.expect("a readable folder").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every input of `name`; fails naming each input that panicked or
/// allocated too much.
fn replay(name: &str) {
    let target: &Target = TARGETS
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no target {name}"));
    let files = inputs(name);
    assert!(!files.is_empty(), "{name} has no committed corpus");
    let max_alloc = target.kind.max_alloc_mb() << 20;
    let mut failures = Vec::new();
    for file in &files {
        let data = std::fs::read(file).expect("a readable input");
        alloc::largest();
        let run = catch_unwind(AssertUnwindSafe(|| (target.run)(&data)));
        let largest = alloc::largest();
        if run.is_err() {
            failures.push(format!("{}: panicked", file.display()));
        } else if largest > max_alloc {
            failures.push(format!(
                "{}: allocated {largest} bytes at once, more than {max_alloc}",
                file.display()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {} inputs failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// Every target has its test below, its cargo-fuzz binary and nothing
/// else: `fuzz/fuzz_targets/<name>.rs` are exactly [`TARGETS`].
#[test]
fn every_target_is_replayed_and_has_its_fuzz_binary() {
    let source = include_str!("replay.rs");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz_targets");
    let mut binaries: Vec<String> = std::fs::read_dir(dir)
        .expect("fuzz/fuzz_targets")
        .map(|entry| entry.expect("a readable folder").path())
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_owned()))
        .collect();
    binaries.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|t| t.name.to_owned()).collect();
    names.sort();
    assert_eq!(binaries, names);
    for name in names {
        assert!(
            source.contains(&format!("replay!({name});")),
            "no replay test for {name}"
        );
    }
}

macro_rules! replay {
    ($name:ident) => {
        #[test]
        fn $name() {
            replay(stringify!($name));
        }
    };
}

replay!(ops);
replay!(prefer);
replay!(idempotency_key);
replay!(accept);
replay!(webhook_url);
replay!(last_event_id);
replay!(job_id);
replay!(authorization);
replay!(api_keys);
replay!(allowed_origins);
replay!(config);
replay!(probe);
replay!(decode_jpeg);
replay!(decode_png);
replay!(decode_webp);
replay!(decode_gif);
replay!(decode_avif);
replay!(pipeline);
