//! Behaviour of the whole service over the in-memory store: paging,
//! concurrency, tenant isolation, atomicity and preconditions.

use std::sync::Arc;

use scim_core::{Limits, MemStore, Request, Service, TestEnv};
use serde_json::{Value, json};

struct Client {
    store: MemStore,
    env: Arc<TestEnv>,
    base: String,
    token: String,
}

impl Client {
    fn new() -> Self {
        Self::on(MemStore::with_caps(3, Limits::CONTRACT), Arc::new(TestEnv::default()))
    }

    fn on(store: MemStore, env: Arc<TestEnv>) -> Self {
        let service = Service::new(store.clone(), &*env);
        let account = service.create_account("test").unwrap();
        let token = service.create_token(&account.id, "t", None).unwrap().token;
        Client { store, env, base: account.scim_path, token }
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value, Vec<(String, String)>) {
        let service = Service::new(self.store.clone(), &*self.env);
        let mut all = vec![("Authorization".to_owned(), format!("Bearer {}", self.token))];
        all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let response = service.handle(&Request {
            method: method.into(),
            path_with_query: format!("{}{path}", self.base),
            scheme: None,
            authority: Some("scim.test".into()),
            headers: all,
            body: body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default(),
        });
        let value =
            if response.body.is_empty() { Value::Null } else { serde_json::from_slice(&response.body).unwrap() };
        (response.status, value, response.headers)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (s, v, _) = self.send(method, path, body, &[]);
        (s, v)
    }

    fn user(&self, name: &str) -> String {
        let (status, body) = self.call("POST", "/Users", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "emails": [{"value": name, "type": "work", "primary": true}]})));
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }
}

/// A group's member ids, sorted.
fn member_ids(c: &Client, gid: &str) -> Vec<String> {
    let (_, group) = c.call("GET", &format!("/Groups/{gid}"), None);
    let mut members: Vec<String> =
        group["members"].as_array().unwrap().iter().map(|m| m["value"].as_str().unwrap().to_owned()).collect();
    members.sort();
    members
}

fn patch(ops: Value) -> Option<Value> {
    Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}))
}

#[test]
fn paging_is_stable_complete_and_counted() {
    let c = Client::new();
    let mut ids: Vec<String> = (0..25).map(|i| c.user(&format!("user{i:02}@example.com"))).collect();
    let mut seen = Vec::new();
    let mut start = 1;
    loop {
        let (status, page) = c.call("GET", &format!("/Users?startIndex={start}&count=7"), None);
        assert_eq!(status, 200);
        assert_eq!(page["totalResults"], 25);
        assert_eq!(page["startIndex"], start);
        let n = page["Resources"].as_array().unwrap().len();
        assert_eq!(page["itemsPerPage"], n);
        assert_eq!(n, (25 - (start - 1)).min(7));
        seen.extend(page["Resources"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        start += 7;
        if start > 25 {
            break;
        }
    }
    let names: Vec<String> = (0..25).map(|i| format!("user{i:02}@example.com")).collect();
    let (_, all) = c.call("GET", "/Users?count=1000", None);
    let listed: Vec<&str> =
        all["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap()).collect();
    assert_eq!(listed, names, "listing order is userName order");
    ids.sort();
    seen.sort();
    assert_eq!(seen, ids);
    let (_, past) = c.call("GET", "/Users?startIndex=100&count=5", None);
    assert_eq!((past["totalResults"].clone(), past["itemsPerPage"].clone()), (json!(25), json!(0)));
    let (_, zero) = c.call("GET", "/Users?count=0", None);
    assert_eq!((zero["totalResults"].clone(), zero["Resources"].clone()), (json!(25), json!([])));
    let (_, filtered) = c.call("GET", "/Users?filter=userName%20sw%20%22user1%22&startIndex=3&count=5", None);
    assert_eq!(filtered["totalResults"], 10);
    assert_eq!(filtered["Resources"].as_array().unwrap().len(), 5);
    assert_eq!(filtered["Resources"][0]["userName"], "user12@example.com");
}

#[test]
fn concurrent_member_patches_lose_nothing() {
    let c = Arc::new(Client::new());
    let users: Vec<String> = (0..40).map(|i| c.user(&format!("m{i}@example.com"))).collect();
    let (status, group) = c.call(
        "POST",
        "/Groups",
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Everyone"})),
    );
    assert_eq!(status, 201);
    let gid = group["id"].as_str().unwrap().to_owned();
    let threads: Vec<_> = users
        .chunks(5)
        .map(|chunk| {
            let c = c.clone();
            let gid = gid.clone();
            let values: Vec<Value> = chunk.iter().map(|u| json!({"value": u})).collect();
            std::thread::spawn(move || {
                let (status, body) = c.call(
                    "PATCH",
                    &format!("/Groups/{gid}"),
                    patch(json!([{"op": "add", "path": "members", "value": values}])),
                );
                assert_eq!(status, 204, "{body}");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let members = member_ids(&c, &gid);
    let mut expected = users.clone();
    expected.sort();
    assert_eq!(members, expected);
    let (_, user) = c.call("GET", &format!("/Users/{}", users[0]), None);
    assert_eq!(
        user["groups"],
        json!([{"value": "Everyone", "$ref": format!("http://scim.test{}/Groups/Everyone", c.base), "display": "Everyone", "type": "direct"}])
    );
}

#[test]
fn sixteen_clients_adding_and_removing_members_of_one_group_lose_nothing() {
    let c = Arc::new(Client::new());
    let users: Vec<String> = (0..48).map(|i| c.user(&format!("crowd{i}@example.com"))).collect();
    let (status, group) = c.call(
        "POST",
        "/Groups",
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Crowd"})),
    );
    assert_eq!(status, 201);
    let gid = group["id"].as_str().unwrap().to_owned();
    // Each of 16 clients adds its three members one PATCH at a time, then
    // removes the first of them again.
    let barrier = Arc::new(std::sync::Barrier::new(16));
    let threads: Vec<_> = users
        .chunks(3)
        .map(|mine| {
            let (c, gid, mine, barrier) = (c.clone(), gid.clone(), mine.to_vec(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for uid in &mine {
                    let (status, body) = c.call(
                        "PATCH",
                        &format!("/Groups/{gid}"),
                        patch(json!([{"op": "add", "path": "members", "value": [{"value": uid}]}])),
                    );
                    assert_eq!(status, 204, "{body}");
                }
                let (status, body) = c.call(
                    "PATCH",
                    &format!("/Groups/{gid}"),
                    patch(json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", mine[0])}])),
                );
                assert_eq!(status, 204, "{body}");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let members = member_ids(&c, &gid);
    let mut expected: Vec<String> = users.chunks(3).flat_map(|mine| mine[1..].to_vec()).collect();
    expected.sort();
    assert_eq!(members, expected);
    // Both directions agree: a removed member's groups are empty, a kept one's name the group.
    let (_, removed) = c.call("GET", &format!("/Users/{}", users[0]), None);
    assert_eq!(removed.get("groups"), None, "{removed}");
    let (_, kept) = c.call("GET", &format!("/Users/{}", users[1]), None);
    assert_eq!(kept["groups"][0]["value"], "Crowd");
}

#[test]
fn concurrent_creates_of_one_user_name_give_one_201_and_409s() {
    let c = Arc::new(Client::new());
    let barrier = Arc::new(std::sync::Barrier::new(12));
    let threads: Vec<_> = (0..12)
        .map(|i| {
            let (c, barrier) = (c.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                // The same person in different letter case: one userName.
                let name = if i % 2 == 0 { "Race@Example.com" } else { "race@example.com" };
                c.call(
                    "POST",
                    "/Users",
                    Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name})),
                )
            })
        })
        .collect();
    let answers: Vec<(u16, Value)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(answers.iter().filter(|(s, _)| *s == 201).count(), 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(s, _)| *s != 201) {
        assert_eq!((*status, &body["scimType"]), (409, &json!("uniqueness")), "{body}");
    }
    let (_, list) = c.call("GET", "/Users?filter=userName%20eq%20%22RACE@example.com%22", None);
    assert_eq!(list["totalResults"], 1);
}

#[test]
fn accounts_cannot_see_each_other() {
    let store = MemStore::with_caps(3, Limits::CONTRACT);
    let env = Arc::new(TestEnv::default());
    let a = Client::on(store.clone(), env.clone());
    let b = Client::on(store, env);
    let uid = a.user("alice@a.example");
    let intruder = Client { store: a.store.clone(), env: a.env.clone(), base: a.base.clone(), token: b.token.clone() };
    for (method, path) in [
        ("GET", format!("/Users/{uid}")),
        ("GET", "/Users".into()),
        ("DELETE", format!("/Users/{uid}")),
        ("GET", "/Schemas".into()),
    ] {
        let (status, body) = intruder.call(method, &path, None);
        assert_eq!(status, 401, "{method} {path}");
        assert_eq!(body["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]));
    }
    let (_, list) = b.call("GET", "/Users?filter=userName%20eq%20%22alice%40a.example%22", None);
    assert_eq!(list["totalResults"], 0);
    assert_eq!(b.call("GET", &format!("/Users/{uid}"), None).0, 404);
    // The same userName may exist in both accounts.
    b.user("alice@a.example");
}

/// Every route of account A, with tokens that are not A's (B's, revoked,
/// expired, malformed): 401. With B's own token, A's ids, names and values
/// under B's URL: not found, nothing of A in any body, and nothing of A
/// changed.
#[test]
fn no_token_but_the_accounts_own_reaches_it_and_no_id_crosses() {
    let store = MemStore::with_caps(3, Limits::CONTRACT);
    let env = Arc::new(TestEnv::default());
    let a = Client::on(store.clone(), env.clone());
    let b = Client::on(store.clone(), env.clone());
    let alice = a.user("alice@a.example");
    let (status, _) = a.call("POST", "/Groups", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Secret", "members": [{"value": alice}]})));
    assert_eq!(status, 201);
    let service = Service::new(store.clone(), &*env);
    let account_a = a.base.rsplit('/').next().unwrap().to_owned();
    let revoked = service.create_token(&account_a, "old", None).unwrap();
    service.revoke_token(&account_a, &revoked.info.id).unwrap();
    let expiring = service.create_token(&account_a, "short", Some(1)).unwrap();
    env.advance(2 * 86_400_000);
    let before = store.dump().into_iter().filter(|(k, _, _)| !k.contains("/log/")).collect::<Vec<_>>();
    let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "mallory@b.example"});
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/Users".into(), None),
        ("GET", format!("/Users/{alice}"), None),
        ("GET", "/Users?filter=userName%20eq%20%22alice%40a.example%22".into(), None),
        ("POST", "/Users".into(), Some(user.clone())),
        ("PUT", format!("/Users/{alice}"), Some(user.clone())),
        ("PATCH", format!("/Users/{alice}"), patch(json!([{"op": "replace", "path": "active", "value": false}]))),
        ("DELETE", format!("/Users/{alice}"), None),
        ("GET", "/Groups".into(), None),
        ("GET", "/Groups/Secret".into(), None),
        ("PATCH", "/Groups/Secret".into(), patch(json!([{"op": "remove", "path": "members"}]))),
        ("DELETE", "/Groups/Secret".into(), None),
        (
            "POST",
            "/.search".into(),
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "filter": "userName pr"})),
        ),
        (
            "POST",
            "/Bulk".into(),
            Some(
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [{"method": "DELETE", "path": format!("/Users/{alice}")}]}),
            ),
        ),
        ("GET", "/ServiceProviderConfig".into(), None),
        ("GET", "/Schemas".into(), None),
        ("GET", "/Me".into(), None),
    ];
    let (scheme_only, garbage) = ("".to_owned(), format!("{}x", a.token));
    for token in [&b.token, &revoked.token, &expiring.token, &scheme_only, &garbage, &"scimlet_x_y".to_owned()] {
        let intruder =
            Client { store: a.store.clone(), env: a.env.clone(), base: a.base.clone(), token: token.clone() };
        for (method, path, body) in &routes {
            let (status, answer) = intruder.call(method, path, body.clone());
            assert_eq!(status, 401, "{method} {path} with token {token:?}: {answer}");
            assert!(!answer.to_string().contains("alice"), "{answer}");
        }
    }

    // B's own token with A's ids and values under B's URL.
    for (method, path, body) in &routes {
        let (status, answer) = b.call(method, path, body.clone());
        // An error may name the id the request named; never A's data.
        assert!(!answer.to_string().contains("alice@a.example"), "{method} {path}: {answer}");
        if path.contains(&alice) || path.contains("Secret") {
            assert_eq!(status, 404, "{method} {path}: {answer}");
        }
    }
    let (status, answer) = b.call("POST", "/Groups", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Mine", "members": [{"value": alice}]})));
    assert_eq!(status, 400, "A's user as a member in B: {answer}");
    let after = store
        .dump()
        .into_iter()
        .filter(|(k, _, _)| k.contains(&format!("a/{account_a}/")) && !k.contains("/log/"))
        .collect::<Vec<_>>();
    let before_a = before.into_iter().filter(|(k, _, _)| k.contains(&format!("a/{account_a}/"))).collect::<Vec<_>>();
    assert!(before_a == after, "account A changed");
}

#[test]
fn refused_writes_leave_nothing_behind() {
    let c = Client::new();
    let uid = c.user("taken@example.com");
    // Refusals are audited (one record each, under …/log/); nothing else
    // may change.
    let data = |c: &Client| c.store.keys().into_iter().filter(|k| !k.contains("/log/")).collect::<Vec<_>>();
    let log_len = |c: &Client| c.store.keys().iter().filter(|k| k.contains("/log/")).count();
    let before = data(&c);
    let attempts = [
        (
            "POST",
            "/Users".to_owned(),
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "TAKEN@example.com"})),
            409,
        ),
        (
            "POST",
            "/Users".to_owned(),
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "displayName": "no userName"})),
            400,
        ),
        (
            "POST",
            "/Groups".to_owned(),
            Some(
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G", "members": [{"value": uid}, {"value": "ghost"}]}),
            ),
            400,
        ),
        (
            "PATCH",
            format!("/Users/{uid}"),
            patch(json!([{"op": "replace", "path": "title", "value": "ok"}, {"op": "jump"}])),
            400,
        ),
        (
            "PATCH",
            format!("/Users/{uid}"),
            patch(
                json!([{"op": "replace", "path": "title", "value": "ok"}, {"op": "replace", "path": "active", "value": "perhaps"}]),
            ),
            400,
        ),
        (
            "PUT",
            format!("/Users/{uid}"),
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": ""})),
            400,
        ),
        ("POST", "/Users".to_owned(), None, 400),
    ];
    let (tries, logged_before) = (attempts.len(), log_len(&c));
    for (method, path, body, status) in attempts {
        let (got, err) = c.call(method, &path, body.clone());
        assert_eq!(got, status, "{method} {path} {body:?}: {err}");
        assert_eq!(err["status"], status.to_string());
        assert!(err["detail"].as_str().is_some_and(|d| !d.is_empty()));
        assert_eq!(data(&c), before, "{method} {path} changed the store");
    }
    assert_eq!(log_len(&c), logged_before + tries, "one audit record per refusal");
    let raw = Request {
        method: "POST".into(),
        path_with_query: format!("{}/Users", c.base),
        headers: vec![("authorization".into(), format!("Bearer {}", c.token))],
        body: b"{not json".to_vec(),
        ..Default::default()
    };
    let response = Service::new(c.store.clone(), &*c.env).handle(&raw);
    assert_eq!((response.status, response.header("content-type")), (400, Some("application/scim+json")));
    assert_eq!(data(&c), before);
}

#[test]
fn etags_and_preconditions() {
    let c = Client::new();
    let uid = c.user("e@example.com");
    let (_, user, headers) = c.send("GET", &format!("/Users/{uid}"), None, &[]);
    let etag = headers.iter().find(|(k, _)| k == "etag").unwrap().1.clone();
    assert_eq!(user["meta"]["version"], etag);
    assert_eq!(c.send("GET", &format!("/Users/{uid}"), None, &[("If-None-Match", &etag)]).0, 304);
    let (status, _, _) = c.send(
        "PATCH",
        &format!("/Users/{uid}"),
        patch(json!([{"op": "add", "path": "title", "value": "x"}])),
        &[("If-Match", &etag)],
    );
    assert_eq!(status, 200);
    let (status, err, _) = c.send("DELETE", &format!("/Users/{uid}"), None, &[("If-Match", &etag)]);
    assert_eq!(status, 412, "{err}");
    assert_eq!(c.call("GET", &format!("/Users/{uid}"), None).0, 200);
}

#[test]
fn deleting_a_user_removes_its_memberships() {
    let c = Client::new();
    let u1 = c.user("one@example.com");
    let u2 = c.user("two@example.com");
    let (_, g) = c.call("POST", "/Groups", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Pair", "members": [{"value": u1}, {"value": u2}]})));
    assert_eq!(c.call("DELETE", &format!("/Users/{u1}"), None).0, 204);
    let (_, g) = c.call("GET", &format!("/Groups/{}", g["id"].as_str().unwrap()), None);
    assert_eq!(g["members"].as_array().unwrap().len(), 1);
    assert_eq!(g["members"][0]["value"], u2);
    assert!(!c.store.keys().iter().any(|k| k.contains(&u1)), "no record mentions the deleted user");
}

#[test]
fn groups_keep_their_identifier_and_stay_unique() {
    let c = Client::new();
    let (s1, a) = c.call(
        "POST",
        "/Groups",
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Dev-Ops"})),
    );
    let (s2, b) = c.call(
        "POST",
        "/Groups",
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Dev Ops"})),
    );
    assert_eq!((s1, s2), (201, 201));
    assert_eq!((a["id"].as_str(), b["id"].as_str()), (Some("Dev_Ops"), Some("Dev_Ops_2")));
    assert_eq!(
        c.call(
            "POST",
            "/Groups",
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "dev-ops"}))
        )
        .0,
        409
    );
    assert_eq!(
        c.call(
            "PATCH",
            "/Groups/Dev_Ops_2",
            patch(json!([{"op": "replace", "path": "displayName", "value": "DEV-OPS"}]))
        )
        .0,
        409
    );
    assert_eq!(
        c.call(
            "PATCH",
            "/Groups/Dev_Ops",
            patch(json!([{"op": "Replace", "path": "displayName", "value": "Platform"}]))
        )
        .0,
        204
    );
    let (_, renamed) = c.call("GET", "/Groups/Dev_Ops", None);
    assert_eq!(renamed["displayName"], "Platform");
    let (_, found) = c.call("GET", "/Groups?filter=displayName+eq+%22platform%22", None);
    assert_eq!(found["Resources"][0]["id"], "Dev_Ops");
    // The old name is free again.
    assert_eq!(
        c.call(
            "POST",
            "/Groups",
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Dev-Ops"}))
        )
        .1["id"],
        "Dev_Ops_3"
    );
}

#[test]
fn lookups_by_the_attributes_clients_match_on() {
    let c = Client::new();
    let (_, u) = c.call(
        "POST",
        "/Users",
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "Grace@Navy.example", "externalId": "ghopper",
            "emails": [{"value": "grace.hopper@navy.example", "type": "work"}]
        })),
    );
    let uid = u["id"].as_str().unwrap();
    let (_, g) = c.call("POST", "/Groups", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Compilers", "members": [{"value": uid}]})));
    for (path, expected) in [
        ("/Users?filter=userName+eq+%22grace%40navy.example%22", 1),
        ("/Users?filter=externalId%20eq%20%22ghopper%22", 1),
        ("/Users?filter=externalId%20eq%20%22GHOPPER%22", 0),
        ("/Users?filter=emails%5Btype+eq+%22work%22%5D.value+eq+%22Grace.Hopper%40navy.example%22", 1),
        ("/Users?filter=emails.value%20eq%20%22grace.hopper%40navy.example%22%20and%20active%20eq%20true", 1),
        ("/Users?filter=id%20eq%20%22nope%22", 0),
    ] {
        let (status, list) = c.call("GET", path, None);
        assert_eq!((status, list["totalResults"].clone()), (200, json!(expected)), "{path}");
    }
    let (_, by_member) = c.call(
        "GET",
        &format!("/Groups?filter=members%5Bvalue%20eq%20%22{uid}%22%5D&excludedAttributes=members"),
        None,
    );
    assert_eq!(by_member["totalResults"], 1);
    assert_eq!(by_member["Resources"][0]["id"], g["id"]);
    assert!(by_member["Resources"][0].get("members").is_none());
    let (status, err) = c.call("GET", "/Users?filter=userName%20eq", None);
    assert_eq!((status, err["scimType"].clone()), (400, json!("invalidFilter")));
}

#[test]
fn sorting_by_typed_attributes() {
    let c = Client::new();
    for (name, title) in [("b@x", "beta"), ("a@x", "Alpha"), ("c@x", "gamma"), ("d@x", "")] {
        let body = if title.is_empty() {
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name})
        } else {
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "title": title})
        };
        assert_eq!(c.call("POST", "/Users", Some(body)).0, 201);
    }
    let order = |query: &str| -> Vec<String> {
        let (status, list) = c.call("GET", &format!("/Users?{query}"), None);
        assert_eq!(status, 200, "{list}");
        list["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap().to_owned()).collect()
    };
    // caseExact false: "Alpha" sorts before "beta"; a missing title sorts last.
    assert_eq!(order("sortBy=title"), ["a@x", "b@x", "c@x", "d@x"]);
    assert_eq!(order("sortBy=title&sortOrder=descending"), ["d@x", "c@x", "b@x", "a@x"]);
    assert_eq!(order("sortBy=meta.created&sortOrder=descending&count=2"), ["d@x", "c@x"]);
    assert_eq!(order("sortBy=userName&startIndex=2&count=2"), ["b@x", "c@x"]);
    let (status, err) = c.call("GET", "/Users?sortBy=nope", None);
    assert_eq!((status, err["scimType"].clone()), (400, json!("invalidValue")));
}

#[test]
fn cursor_paging_walks_everything_once() {
    let c = Client::new();
    let mut names: Vec<String> = (0..23).map(|i| format!("c{i:02}@x")).collect();
    for n in &names {
        c.user(n);
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let (status, page) =
            c.call("GET", &format!("/Users?cursor={cursor}&count=5&filter=userName%20sw%20%22c%22"), None);
        assert_eq!(status, 200, "{page}");
        pages += 1;
        let items = page["Resources"].as_array().unwrap();
        assert_eq!(page["itemsPerPage"], items.len());
        seen.extend(items.iter().map(|r| r["userName"].as_str().unwrap().to_owned()));
        match page.get("nextCursor").and_then(Value::as_str) {
            Some(next) => {
                assert_eq!(items.len(), 5);
                cursor = next.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(pages, 5);
    names.sort();
    assert_eq!(seen, names);
    let (status, err) = c.call("GET", "/Users?cursor=zz", None);
    assert_eq!((status, err["scimType"].clone()), (400, json!("invalidCursor")));
    assert_eq!(c.call("GET", "/Users?cursor=&startIndex=2", None).0, 400);
}

#[test]
fn search_by_post() {
    let c = Client::new();
    let uid = c.user("s1@x");
    c.user("s2@x");
    c.call("POST", "/Groups", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "s-team", "members": [{"value": uid}]})));
    let search = |path: &str, body: Value| c.call("POST", path, Some(body));
    let (status, found) = search(
        "/Users/.search",
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": "userName eq \"s1@x\"", "attributes": ["userName"]
        }),
    );
    assert_eq!(status, 200);
    assert_eq!(
        found["Resources"],
        json!([{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": uid, "userName": "s1@x"}])
    );
    let (_, all) = search(
        "/.search",
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"], "startIndex": 2, "count": 2, "attributes": ["id"]}),
    );
    assert_eq!(all["totalResults"], 3);
    assert_eq!(all["Resources"].as_array().unwrap().len(), 2);
    assert_eq!(all["Resources"][1]["id"], "s_team");
    let (_, by_name) = search("/.search", json!({"filter": "displayName eq \"s-team\""}));
    assert_eq!(by_name["totalResults"], 1);
    assert_eq!(search("/Groups/.search", json!({"filter": "userName eq \"x\""})).0, 400);
    assert_eq!(c.call("GET", "/.search", None).0, 405);
}

#[test]
fn bulk_resolves_bulk_ids_and_stops_on_errors() {
    let c = Client::new();
    let bulk = |ops: Value, fail_on_errors: Option<u64>| {
        let mut body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops});
        if let Some(n) = fail_on_errors {
            body["failOnErrors"] = json!(n);
        }
        c.call("POST", "/Bulk", Some(body))
    };
    // The group comes first but refers to users created later in the request.
    let (status, out) = bulk(
        json!([
            {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Bulk Team", "members": [{"value": "bulkId:u1"}, {"value": "bulkId:u2"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "b1@x"}},
            {"method": "POST", "path": "/Users", "bulkId": "u2", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "b2@x"}},
            {"method": "PATCH", "path": "/Users/bulkId:u1", "data": {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "title", "value": "Lead"}]}}
        ]),
        None,
    );
    assert_eq!(status, 200, "{out}");
    let ops = out["Operations"].as_array().unwrap();
    let statuses: Vec<&str> = ops.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["201", "201", "201", "200"]);
    assert_eq!(ops[0]["location"], format!("http://scim.test{}/Groups/Bulk_Team", c.base));
    let (_, group) = c.call("GET", "/Groups/Bulk_Team", None);
    assert_eq!(group["members"].as_array().unwrap().len(), 2);
    let (_, lead) = c.call("GET", "/Users?filter=title%20eq%20%22Lead%22", None);
    assert_eq!(lead["Resources"][0]["userName"], "b1@x");

    // failOnErrors: 1 stops after the first failure.
    let (_, out) = bulk(
        json!([
            {"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "b1@x"}},
            {"method": "POST", "path": "/Users", "bulkId": "new", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "b3@x"}}
        ]),
        Some(1),
    );
    let ops = out["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!((ops[0]["status"].as_str(), ops[0]["response"]["scimType"].as_str()), (Some("409"), Some("uniqueness")));
    assert_eq!(c.call("GET", "/Users?filter=userName%20eq%20%22b3%40x%22", None).1["totalResults"], 0);

    // Circular and dangling references fail without touching anything else.
    let (_, out) = bulk(
        json!([
            {"method": "POST", "path": "/Groups", "bulkId": "a", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "A", "members": [{"value": "bulkId:b"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "b", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "B", "members": [{"value": "bulkId:a"}]}},
            {"method": "DELETE", "path": "/Users/bulkId:nowhere"}
        ]),
        None,
    );
    let statuses: Vec<&str> =
        out["Operations"].as_array().unwrap().iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["409", "409", "400"]);

    let too_many: Vec<Value> = (0..1001).map(|i| json!({"method": "DELETE", "path": format!("/Users/{i}")})).collect();
    assert_eq!(bulk(Value::Array(too_many), None).0, 413);
    assert_eq!(c.call("POST", "/Bulk", Some(json!({"Operations": "no"}))).0, 400);
}

#[test]
fn protocol_edges() {
    let c = Client::new();
    let uid = c.user("edge@x");
    let ext = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    // A bare extension URN as a PATCH path addresses the whole extension.
    let (status, user) = c.call(
        "PATCH",
        &format!("/Users/{uid}"),
        patch(json!([{"op": "add", "path": ext, "value": {"department": "Ops", "costCenter": "7"}}])),
    );
    assert_eq!(status, 200, "{user}");
    assert_eq!(user[ext], json!({"costCenter": "7", "department": "Ops"}));
    let (_, user) = c.call("PATCH", &format!("/Users/{uid}"), patch(json!([{"op": "remove", "path": ext}])));
    assert!(user.get(ext).is_none() && !user["schemas"].as_array().unwrap().iter().any(|s| s == ext));
    // Cursor pages need a positive count.
    let (status, err) = c.call("GET", "/Users?cursor=&count=0", None);
    assert_eq!((status, err["scimType"].clone()), (400, json!("invalidCount")));
    // Only POST reaches .search and Bulk; unknown discovery paths are 404.
    let (status, _, headers) = c.send("GET", "/Users/.search", None, &[]);
    assert_eq!(status, 405);
    assert!(headers.contains(&("allow".into(), "POST".into())));
    assert_eq!(c.call("GET", "/ServiceProviderConfig/x", None).0, 404);
    assert_eq!(c.call("PUT", "/Schemas", Some(json!({}))).0, 405);
}
