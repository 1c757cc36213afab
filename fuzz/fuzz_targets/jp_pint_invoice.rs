#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| (mamori_fuzzing::target("jp_pint_invoice").run)(data));
