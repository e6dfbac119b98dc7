#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| postward_fuzz::dnsbl::dnsbl_site(data));
