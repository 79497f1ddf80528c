#![no_main]
kiln_fuzz_targets::fuzz_target!(allowed_origins);
