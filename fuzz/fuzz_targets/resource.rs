//! Resource validation: any JSON as the body of a User or Group create.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    let _ = scim_core::validate_resource("User", &body);
    let _ = scim_core::validate_resource("Group", &body);
});
