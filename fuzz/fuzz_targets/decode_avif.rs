#![no_main]
kiln_fuzz_targets::fuzz_target!(decode_avif);
