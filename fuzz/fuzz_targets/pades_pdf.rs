#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| (mamori_fuzzing::target("pades_pdf").run)(data));
