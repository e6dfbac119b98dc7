#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| postward_fuzz::whitelist::greyd_whitelist(data));
