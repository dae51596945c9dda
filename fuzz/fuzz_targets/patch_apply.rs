//! PATCH application as the handler does it: parse a PatchOp body, apply
//! every operation to a stored user, then validate the result as a
//! replacement would be.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_core::patch;
use scim_core::schema::USER_TYPE;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    let Ok(ops) = patch::parse(&USER_TYPE, &body) else { return };
    let stored = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada@example.com", "name": {"givenName": "Ada", "familyName": "Lovelace"}, "emails": [{"value": "ada@example.com", "type": "work", "primary": true}, {"value": "ada@home.example", "type": "home"}], "active": true, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D", "manager": {"value": "m1"}}});
    let Ok(mut attrs) = scim_core::validate_resource("User", &stored) else { panic!("the stored user is valid") };
    for op in &ops {
        if patch::apply(&mut attrs, op).is_err() {
            return;
        }
    }
    let _ = scim_core::validate_resource("User", &Value::Object(attrs));
});
