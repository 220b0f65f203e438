#![no_main]
// nfp_gateway::fuzz::check: see gateway/src/fuzz.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| nfp_gateway::fuzz::check(data));
