#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| tb_fuzz::hub_commands(data));
