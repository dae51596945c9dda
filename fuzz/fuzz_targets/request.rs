//! The whole request path: `Service::handle` with any method, path, query,
//! headers and body, over an account seeded with a user and a group. Each
//! run starts from a copy of the seeded store, so runs are independent.
//!
//! Input, as text (the corpus is readable and seeded from the vectors):
//!
//! ```text
//! METHOD
//! /path?query        (relative to the account's base; "!/…" is sent as is)
//! header: value      (any number; Authorization is added unless given)
//!
//! body…
//! ```
//!
//! `{user}` and `{group}` anywhere stand for the seeded ids. A panic or an
//! answer of 500 is a finding.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use scim_core::{Limits, MemStore, Request, Service, TestEnv};

struct Seeded {
    store: MemStore,
    base: String,
    token: String,
    user: String,
    group: String,
}

fn seeded() -> &'static Seeded {
    static SEEDED: OnceLock<Seeded> = OnceLock::new();
    SEEDED.get_or_init(|| {
        let store = MemStore::with_caps(3, Limits::CONTRACT);
        let env = TestEnv::default();
        let service = Service::new(store.clone(), &env);
        let account = service.create_account("fuzz").expect("account");
        let token = service.create_token(&account.id, "fuzz", None).expect("token").token;
        let send = |method: &str, path: &str, body: &str| {
            let response = service.handle(&Request {
                method: method.into(),
                path_with_query: format!("{}{path}", account.scim_path),
                scheme: None,
                authority: Some("scim.test".into()),
                headers: vec![("authorization".into(), format!("Bearer {token}"))],
                body: body.as_bytes().to_vec(),
            });
            let value: serde_json::Value = serde_json::from_slice(&response.body).expect("json");
            value["id"].as_str().expect("an id").to_owned()
        };
        let user = send("POST", "/Users", r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@example.com","externalId":"ada","emails":[{"value":"ada@example.com","type":"work","primary":true}],"name":{"givenName":"Ada"}}"#);
        send("POST", "/Users", r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"grace@example.com","active":false}"#);
        let group = send("POST", "/Groups", &format!(r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Engineering","members":[{{"value":"{user}"}}]}}"#));
        Seeded { store, base: account.scim_path, token, user, group }
    })
}

fuzz_target!(|data: &[u8]| {
    let seeded = seeded();
    let text = String::from_utf8_lossy(data);
    let text = text.replace("{user}", &seeded.user).replace("{group}", &seeded.group);
    let (head, body) = match text.split_once("\n\n") {
        Some((head, body)) => (head, body),
        None => (text.as_str(), ""),
    };
    let mut lines = head.lines();
    let method = lines.next().filter(|m| !m.is_empty()).unwrap_or("GET").to_owned();
    let path = lines.next().unwrap_or("/");
    let path_with_query = match path.strip_prefix('!') {
        Some(absolute) => absolute.to_owned(),
        None => format!("{}{path}", seeded.base),
    };
    let mut headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    if !headers.iter().any(|(name, _)| name == "authorization") {
        headers.push(("authorization".into(), format!("Bearer {}", seeded.token)));
    }
    let env = TestEnv::default();
    let service = Service::new(seeded.store.fork(), &env);
    let response = service.handle(&Request {
        method,
        path_with_query,
        scheme: None,
        authority: Some("scim.test".into()),
        headers,
        body: body.as_bytes().to_vec(),
    });
    assert_ne!(response.status, 500, "{}", String::from_utf8_lossy(&response.body));
});
