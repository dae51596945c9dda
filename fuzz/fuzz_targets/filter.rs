//! The filter parser (RFC 7644 §3.4.2.2) for both resource types, and what
//! the list code asks of a parsed filter: evaluation, index plans, the
//! values it compares.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_core::filter::Filter;
use scim_core::schema::{GROUP_TYPE, USER_TYPE};
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let user = json!({"userName": "ada@example.com", "name": {"givenName": "Ada"}, "emails": [{"value": "ada@example.com", "type": "work", "primary": true}], "active": true, "meta": {"lastModified": "2026-01-01T00:00:00Z"}});
    let group = json!({"displayName": "Engineering", "members": [{"value": "u1"}]});
    for (rt, resource) in [(&USER_TYPE, &user), (&GROUP_TYPE, &group)] {
        if let Ok(filter) = Filter::parse(rt, text) {
            filter.matches(resource);
            let _ = filter.index_plan();
            let _ = filter.required_equalities();
            let _ = filter.compared_values("members");
            let _ = filter.mentions("members");
        }
    }
});
