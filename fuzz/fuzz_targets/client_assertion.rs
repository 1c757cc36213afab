#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| (mamori_fuzzing::target("client_assertion").run)(data));
