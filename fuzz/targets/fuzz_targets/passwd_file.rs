#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| postward_fuzz::auth::passwd_file(data));
