#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| postward_fuzz::auth::auth_mech(data));
