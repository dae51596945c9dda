//! The PATCH path parser (RFC 7644 §3.5.2): attribute paths, value filters
//! in brackets, sub-attributes and schema URN prefixes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_core::patch::parse_path;
use scim_core::schema::{GROUP_TYPE, USER_TYPE};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse_path(&USER_TYPE, text);
    let _ = parse_path(&GROUP_TYPE, text);
});
