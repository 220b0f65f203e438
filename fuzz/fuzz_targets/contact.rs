#![no_main]
// nfp_gateway::fuzz::contact: see gateway/src/fuzz.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| nfp_gateway::fuzz::contact(data));
