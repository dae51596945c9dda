//! Hostile input through the whole request path: arbitrary UTF-8 (and
//! arbitrary bytes) in every place a client chooses text — attribute names,
//! filters, dateTime literals, cursors, PATCH paths, body keys and values,
//! ids in the path — must give a SCIM answer, never a panic (in the
//! component, a trap: a 500 for every such request). A 4xx never writes.
//!
//! The strategies mix fully arbitrary strings with strings built from the
//! characters that matter to the parsers (quotes, brackets, dots, colons,
//! digits, multi-byte characters at every offset), so that both the
//! byte-boundary cases and the grammar's corners are reached in a few
//! hundred cases.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use proptest::prelude::*;
use scim_core::{Limits, MemStore, Request, Service, TestEnv};
use serde_json::{Value, json};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// One account with a user and a group in it.
struct Account {
    store: MemStore,
    env: Arc<TestEnv>,
    base: String,
    token: String,
    user: String,
    group: String,
}

impl Account {
    fn new() -> Self {
        let store = MemStore::with_caps(3, Limits::CONTRACT);
        let env = Arc::new(TestEnv::default());
        let service = Service::new(store.clone(), &*env);
        let account = service.create_account("hostile").unwrap();
        let token = service.create_token(&account.id, "t", None).unwrap().token;
        let mut a = Account { store, env, base: account.scim_path, token, user: String::new(), group: String::new() };
        let (status, user) = a.send("POST", "/Users", &body(json!({"schemas": [USER], "userName": "ada@example.com", "emails": [{"value": "ada@example.com", "primary": true}]})));
        assert_eq!(status, 201, "{user}");
        a.user = user["id"].as_str().unwrap().to_owned();
        let (status, group) = a.send(
            "POST",
            "/Groups",
            &body(json!({"schemas": [GROUP], "displayName": "Engineering", "members": [{"value": a.user}]})),
        );
        assert_eq!(status, 201, "{group}");
        a.group = group["id"].as_str().unwrap().to_owned();
        a
    }

    /// Sends one request; fails the case on a panic, a 5xx, or an error
    /// that is not a SCIM error document.
    fn send(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        let service = Service::new(self.store.clone(), &*self.env);
        let request = Request {
            method: method.into(),
            path_with_query: format!("{}{path}", self.base),
            scheme: None,
            authority: Some("scim.test".into()),
            headers: vec![
                ("authorization".into(), format!("Bearer {}", self.token)),
                ("content-type".into(), "application/scim+json".into()),
            ],
            body: body.to_vec(),
        };
        let response = match catch_unwind(AssertUnwindSafe(|| service.handle(&request))) {
            Ok(response) => response,
            Err(_) => panic!("{method} {path} with body {:?} panicked", String::from_utf8_lossy(body)),
        };
        assert!(
            response.status < 500,
            "{method} {path} with body {:?}: {} {}",
            String::from_utf8_lossy(body),
            response.status,
            String::from_utf8_lossy(&response.body)
        );
        let value: Value = if response.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&response.body).expect("a JSON body")
        };
        if response.status >= 400 {
            let content_type = response.headers.iter().find(|(k, _)| k == "content-type").map(|(_, v)| v.as_str());
            assert_eq!(content_type, Some("application/scim+json"), "{method} {path}");
            assert_eq!(value["status"], response.status.to_string(), "{method} {path}: {value}");
            assert!(value["detail"].as_str().is_some_and(|d| !d.is_empty()), "{method} {path}: {value}");
        }
        (response.status, value)
    }

    /// Every record but the audit log, which records refusals too, and the
    /// token's record, whose last use any request may advance.
    fn state(&self) -> Vec<(String, Vec<u8>, u64)> {
        self.store.dump().into_iter().filter(|(key, _, _)| !key.contains("/log/") && !key.starts_with("tok/")).collect()
    }

    /// Sends a request and, when it is refused, checks that nothing changed.
    fn try_request(&self, method: &str, path: &str, body: &[u8]) -> u16 {
        let before = self.state();
        let (status, _) = self.send(method, path, body);
        if status >= 400 {
            let after = self.state();
            let changed: Vec<&String> = before
                .iter()
                .chain(&after)
                .filter(|r| !before.contains(r) || !after.contains(r))
                .map(|(k, _, _)| k)
                .collect();
            assert!(changed.is_empty(), "a refused {method} {path} changed {changed:?}");
        }
        status
    }
}

fn body(value: Value) -> Vec<u8> {
    serde_json::to_vec(&value).unwrap()
}

/// Percent-encodes every byte that is not unreserved, so the text reaches
/// the parsers exactly as generated.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Text that looks like what the parsers expect, with multi-byte characters
/// and grammar characters in every position; or anything at all.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9 .:\\[\\]\"()$_-]{0,12}[éß€😀\u{301}]{0,2}[a-zA-Z0-9 .:\\[\\]\"()_-]{0,12}",
        2 => "(name|emails|members|meta|urn:ietf:params:scim:schemas:core:2.0:User|urn:ietf:params:scim:schemas:extension:enterprise:2.0:User)[.:\\[]?[a-zé€]{0,6}[\\] .\"]?[a-zé€]{0,4}",
        1 => "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9é]{1,3}[.0-9é€+:Z-]{0,7}",
        2 => any::<String>(),
    ]
}

thread_local! {
    /// One account per test (each runs on a thread of its own), kept across
    /// its cases: state left by one case is input to the next.
    static ACCOUNT: Account = Account::new();
}

proptest! {
    // 256 cases unless PROPTEST_CASES says otherwise (a longer hunt: PROPTEST_CASES=5000).
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn query_parameters(s in text()) {
        ACCOUNT.with(|a| {
            let e = encode(&s);
            for path in [
                format!("/Users?attributes={e}"),
                format!("/Users?excludedAttributes={e}"),
                format!("/Groups?attributes={e}&excludedAttributes={e}"),
                format!("/Users?sortBy={e}&sortOrder={e}"),
                format!("/Users?filter={e}"),
                format!("/Groups?filter={e}"),
                format!("/Users?filter=meta.lastModified%20gt%20%22{e}%22"),
                format!("/Users?filter=userName%20eq%20%22{e}%22%20or%20emails%5Bvalue%20sw%20%22{e}%22%5D"),
                format!("/Groups?filter=members%5Bvalue%20eq%20%22{e}%22%5D&excludedAttributes=members"),
                format!("/Users?cursor={e}&count=2"),
                format!("/Users?startIndex={e}&count={e}"),
                format!("/Users/{e}"),
                format!("/Groups/{e}?attributes={e}"),
                format!("/{e}"),
            ] {
                a.try_request("GET", &path, b"");
            }
            a.try_request("POST", "/.search", &body(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": s, "attributes": [s], "sortBy": s})));
        });
    }

    #[test]
    fn patch_paths_and_values(s in text()) {
        ACCOUNT.with(|a| {
            let user = format!("/Users/{}", a.user);
            let group = format!("/Groups/{}", a.group);
            for op in ["add", "replace", "remove"] {
                a.try_request("PATCH", &user, &body(json!({"schemas": [PATCH_OP], "Operations": [{"op": op, "path": s, "value": "x"}]})));
                a.try_request("PATCH", &group, &body(json!({"schemas": [PATCH_OP], "Operations": [{"op": op, "path": s, "value": [{"value": s}]}]})));
                a.try_request("PATCH", &user, &body(json!({"schemas": [PATCH_OP], "Operations": [{"op": op, "value": {s.clone(): s}}]})));
            }
            a.try_request("PATCH", &user, &body(json!({"schemas": [PATCH_OP], "Operations": [{"op": s, "path": "displayName", "value": s}]})));
        });
    }

    #[test]
    fn resource_bodies(s in text()) {
        ACCOUNT.with(|a| {
            let user = format!("/Users/{}", a.user);
            a.try_request("POST", "/Users", &body(json!({"schemas": [USER], "userName": "grace@example.com", s.clone(): "v"})));
            a.try_request("PUT", &user, &body(json!({"schemas": [USER], "userName": "ada@example.com", s.clone(): {s.clone(): s}})));
            a.try_request("PUT", &user, &body(json!({"schemas": [USER], "userName": "ada@example.com", "name": {s.clone(): s}, "emails": [{"value": s, "type": s}]})));
            a.try_request("POST", "/Groups", &body(json!({"schemas": [GROUP], "displayName": "Ops", "members": [{"value": s}]})));
            a.try_request("POST", "/Users", &body(json!({"schemas": [s], "userName": "grace@example.com"})));
            a.try_request("POST", "/Bulk", &body(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [{"method": "POST", "path": s, "bulkId": s, "data": {"schemas": [USER], "userName": s}}]})));
            a.try_request("PATCH", &format!("/Users/{}", encode(&s)), &body(json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": false}]})));
            a.try_request("DELETE", &format!("/Groups/{}", encode(&s)), b"");
        });
    }

    #[test]
    fn arbitrary_bodies(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        ACCOUNT.with(|a| {
            a.try_request("POST", "/Users", &bytes);
            a.try_request("PATCH", &format!("/Users/{}", a.user), &bytes);
            a.try_request("POST", "/Bulk", &bytes);
        });
    }
}

/// Every documented limit answers a SCIM error (or, for `count`, is applied)
/// and writes nothing.
#[test]
fn limits_are_scim_errors_and_write_nothing() {
    let a = Account::new();
    let user = format!("/Users/{}", a.user);
    let status_and_type = |method: &str, path: &str, body: &[u8]| -> (u16, Value) {
        let before = a.state();
        let (status, value) = a.send(method, path, body);
        if status >= 400 {
            assert!(before == a.state(), "a refused {method} {path} changed the store");
        }
        (status, value["scimType"].clone())
    };

    // count above 1,000 is lowered to 1,000 (RFC 7644 §3.4.2.4), not refused.
    let (status, page) = a.send("GET", "/Users?count=5000", b"");
    assert_eq!((status, page["itemsPerPage"].as_u64()), (200, Some(1)));
    let (_, config) = a.send("GET", "/ServiceProviderConfig", b"");
    assert_eq!(config["pagination"]["maxPageSize"], 1000);
    assert_eq!(config["bulk"]["maxOperations"], 1000);
    assert_eq!(config["bulk"]["maxPayloadSize"], 1048576);

    // A filter longer than 4 KiB, and one nested deeper than 32.
    let long = format!("userName eq \"{}\"", "x".repeat(4096));
    assert_eq!(status_and_type("GET", &format!("/Users?filter={}", encode(&long)), b""), (400, json!("invalidFilter")));
    let deep = format!("{}userName pr{}", "(".repeat(40), ")".repeat(40));
    assert_eq!(status_and_type("GET", &format!("/Users?filter={}", encode(&deep)), b""), (400, json!("invalidFilter")));

    // More than 1,000 PATCH operations.
    let ops: Vec<Value> =
        (0..1001).map(|i| json!({"op": "replace", "path": "displayName", "value": format!("n{i}")})).collect();
    let (status, _) = status_and_type("PATCH", &user, &body(json!({"schemas": [PATCH_OP], "Operations": ops})));
    assert_eq!(status, 400);

    // A string over 16 KiB, and more than 100 e-mails.
    let (status, kind) = status_and_type(
        "PUT",
        &user,
        &body(json!({"schemas": [USER], "userName": "ada@example.com", "displayName": "x".repeat(16 * 1024 + 1)})),
    );
    assert_eq!((status, kind), (400, json!("invalidValue")));
    let emails: Vec<Value> = (0..101).map(|i| json!({"value": format!("ada{i}@example.com")})).collect();
    let (status, kind) = status_and_type(
        "PUT",
        &user,
        &body(json!({"schemas": [USER], "userName": "ada@example.com", "emails": emails})),
    );
    assert_eq!((status, kind), (400, json!("invalidValue")));

    // More than 1,000 bulk operations: 413 (RFC 7644 §3.7.4).
    let ops: Vec<Value> = (0..1001).map(|i| json!({"method": "DELETE", "path": format!("/Users/none{i}")})).collect();
    let (status, _) = status_and_type(
        "POST",
        "/Bulk",
        &body(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops})),
    );
    assert_eq!(status, 413);

    // A body over 1 MiB: 413.
    let (status, _) = status_and_type("POST", "/Users", &vec![b' '; scim_core::MAX_BODY + 1]);
    assert_eq!(status, 413);

    // JSON nested deeper than the parser's recursion limit: 400, no stack overflow.
    let nested = format!(
        "{{\"schemas\":[\"{USER}\"],\"userName\":\"deep@example.com\",\"name\":{}1{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let (status, kind) = status_and_type("POST", "/Users", nested.as_bytes());
    assert_eq!((status, kind), (400, json!("invalidSyntax")));
}
