//! Work larger than one store call, on an in-memory store capped small
//! (5 entries a scan, 64 writes a commit, 64 keys a read) so that the paths
//! a real store reaches at a hundred thousand records run with a hundred.

use std::sync::Arc;

use scim_core::{Limits, MemStore, Request, Service, TestEnv};
use serde_json::{Value, json};

const CAPS: Limits = Limits { commit_writes: 64, get_many_keys: 64 };
/// Members one request may change under [`CAPS`]: (64 - 16) / 3.
const BUDGET: usize = 16;

struct Client {
    store: MemStore,
    env: Arc<TestEnv>,
    base: String,
    token: String,
}

impl Client {
    fn new() -> Self {
        let store = MemStore::with_caps(5, CAPS);
        let env = Arc::new(TestEnv::default());
        let service = Service::new(store.clone(), &*env);
        let account = service.create_account("scale").unwrap();
        let token = service.create_token(&account.id, "t", None).unwrap().token;
        Client { store, env, base: account.scim_path, token }
    }

    /// A request of this client's account and token.
    fn request(&self, method: &str, path: &str, body: Option<Value>) -> Request {
        Request {
            method: method.into(),
            path_with_query: format!("{}{path}", self.base),
            scheme: None,
            authority: Some("scim.test".into()),
            headers: vec![("Authorization".into(), format!("Bearer {}", self.token))],
            body: body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default(),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let service = Service::new(self.store.clone(), &*self.env);
        let response = service.handle(&self.request(method, path, body));
        let value =
            if response.body.is_empty() { Value::Null } else { serde_json::from_slice(&response.body).unwrap() };
        (response.status, value)
    }

    fn user(&self, name: &str, external_id: &str) -> String {
        let (status, body) = self.call("POST", "/Users", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("{name}@example.com"), "externalId": external_id, "emails": [{"value": "shared@example.com"}]})));
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    fn group(&self, name: &str) -> String {
        let (status, body) = self.call(
            "POST",
            "/Groups",
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name})),
        );
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    fn add(&self, group: &str, users: &[String]) {
        for chunk in users.chunks(BUDGET) {
            let value: Vec<Value> = chunk.iter().map(|u| json!({"value": u})).collect();
            let (status, body) = self.call(
                "PATCH",
                &format!("/Groups/{group}"),
                patch(json!([{"op": "add", "path": "members", "value": value}])),
            );
            assert_eq!(status, 204, "{body}");
        }
    }

    fn members(&self, group: &str) -> Vec<String> {
        let (status, body) = self.call("GET", &format!("/Groups/{group}"), None);
        assert_eq!(status, 200, "{body}");
        let mut ids: Vec<String> = body["members"]
            .as_array()
            .map(|a| a.iter().map(|m| m["value"].as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    fn user_groups(&self, user: &str) -> Vec<String> {
        let (status, body) = self.call("GET", &format!("/Users/{user}"), None);
        assert_eq!(status, 200, "{body}");
        let mut ids: Vec<String> = body["groups"]
            .as_array()
            .map(|a| a.iter().map(|g| g["value"].as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// Keys of membership edges and tombstones that name `id`.
    fn leftovers(&self, id: &str) -> Vec<String> {
        self.store
            .keys()
            .into_iter()
            .filter(|k| (k.contains("/m/") || k.contains("/mu/") || k.contains("/t/")) && k.contains(id))
            .collect()
    }

    fn tombstones(&self) -> usize {
        self.store.keys().iter().filter(|k| k.contains("/t/")).count()
    }
}

fn patch(ops: Value) -> Option<Value> {
    Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}))
}

fn filter(c: &Client, endpoint: &str, filter: &str) -> (u64, Vec<String>) {
    let (status, body) = c.call("GET", &format!("/{endpoint}?count=1000&filter={}", urlencode(filter)), None);
    assert_eq!(status, 200, "{body}");
    let mut ids: Vec<String> =
        body["Resources"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    (body["totalResults"].as_u64().unwrap(), ids)
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[test]
fn lookups_and_groups_read_every_page_past_the_scan_cap() {
    let c = Client::new();
    let users: Vec<String> = (0..23).map(|i| c.user(&format!("u{i:02}"), "ext-shared")).collect();
    let groups: Vec<String> = (0..12).map(|i| c.group(&format!("g{i:02}"))).collect();
    for g in &groups {
        c.add(g, &users[..1]);
    }
    let mut sorted_users = users.clone();
    sorted_users.sort();
    let mut sorted_groups = groups.clone();
    sorted_groups.sort();
    assert_eq!(filter(&c, "Users", r#"externalId eq "ext-shared""#), (23, sorted_users.clone()));
    assert_eq!(filter(&c, "Users", r#"emails.value eq "SHARED@example.com""#), (23, sorted_users.clone()));
    assert_eq!(filter(&c, "Groups", &format!(r#"members[value eq "{}"]"#, users[0])), (12, sorted_groups.clone()));
    assert_eq!(c.user_groups(&users[0]), sorted_groups);
    let (status, page) = c.call("GET", "/Users?startIndex=21&count=10", None);
    assert_eq!((status, page["totalResults"].as_u64(), page["itemsPerPage"].as_u64()), (200, Some(23), Some(3)));
}

#[test]
fn a_member_change_larger_than_one_commit_is_refused_and_changes_nothing() {
    let c = Client::new();
    let users: Vec<String> = (0..BUDGET + 1).map(|i| c.user(&format!("u{i:02}"), "e")).collect();
    let g = c.group("big");
    let before = c.store.keys();
    let value: Vec<Value> = users.iter().map(|u| json!({"value": u})).collect();
    let (status, body) =
        c.call("PATCH", &format!("/Groups/{g}"), patch(json!([{"op": "add", "path": "members", "value": value}])));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["scimType"], "invalidValue");
    assert_eq!(
        body["detail"],
        format!("one request may add or remove at most {BUDGET} members; send the change as several PATCH requests")
    );
    // Nothing but the audit record of the refusal was written.
    let after: Vec<String> = c.store.keys().into_iter().filter(|k| !k.contains("/log/")).collect();
    assert_eq!(after, before.into_iter().filter(|k| !k.contains("/log/")).collect::<Vec<_>>());
    // Exactly the budget goes through.
    c.add(&g, &users[..BUDGET]);
    assert_eq!(c.members(&g).len(), BUDGET);
}

#[test]
fn clearing_a_group_larger_than_one_commit_is_one_atomic_change() {
    let c = Client::new();
    let users: Vec<String> = (0..40).map(|i| c.user(&format!("u{i:02}"), "e")).collect();
    let g = c.group("big");
    c.add(&g, &users);
    assert_eq!(c.members(&g).len(), 40);
    // Okta's full re-push: replace with one member.
    let (status, body) = c.call(
        "PATCH",
        &format!("/Groups/{g}"),
        patch(json!([{"op": "replace", "path": "members", "value": [{"value": users[7]}]}])),
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(c.members(&g), vec![users[7].clone()]);
    assert_eq!(c.user_groups(&users[7]), vec![g.clone()]);
    assert!(c.user_groups(&users[8]).is_empty());
    assert_eq!(filter(&c, "Groups", &format!(r#"members[value eq "{}"]"#, users[8])).0, 0);
    // The member count is right: the group can be filled up again.
    c.add(&g, &users[..39]);
    assert_eq!(c.members(&g).len(), 39);
    // Dead edges are swept by later writes; none is left.
    for i in 0..10 {
        c.user(&format!("later{i}"), "e");
    }
    assert_eq!(c.tombstones(), 0);
    let edges = c.store.keys().into_iter().filter(|k| k.contains(&format!("/m/{g}/"))).count();
    assert_eq!(edges, 39);
}

#[test]
fn deleting_a_group_larger_than_one_commit_hides_it_at_once_and_sweeps_later() {
    let c = Client::new();
    let users: Vec<String> = (0..200).map(|i| c.user(&format!("u{i:03}"), "e")).collect();
    let g = c.group("Huge Team");
    c.add(&g, &users);
    assert_eq!(c.members(&g).len(), 200);
    let (status, _) = c.call("DELETE", &format!("/Groups/{g}"), None);
    assert_eq!(status, 204);
    // 200 members need 13 sweep steps of 16; the delete made 4.
    assert!(!c.leftovers(&g).is_empty(), "the test must catch the sweep half way");
    assert_eq!(c.call("GET", &format!("/Groups/{g}"), None).0, 404);
    assert!(c.user_groups(&users[0]).is_empty());
    assert!(c.user_groups(&users[199]).is_empty());
    assert_eq!(filter(&c, "Groups", &format!(r#"members[value eq "{}"]"#, users[3])).0, 0);
    // Re-created under the same name: same id, none of the old members.
    assert_eq!(c.group("Huge Team"), g);
    assert!(c.members(&g).is_empty());
    c.add(&g, &users[..2]);
    assert_eq!(c.members(&g), {
        let mut v = users[..2].to_vec();
        v.sort();
        v
    });
    for i in 0..10 {
        c.user(&format!("later{i}"), "e");
    }
    assert_eq!(c.tombstones(), 0);
    let edges: Vec<String> = c
        .store
        .keys()
        .into_iter()
        .filter(|k| k.contains(&format!("/{g}")))
        .filter(|k| k.contains("/m/") || k.contains("/mu/"))
        .collect();
    assert_eq!(edges.len(), 4, "the two new members' edges, both ways: {edges:?}");
}

#[test]
fn deleting_a_user_in_more_groups_than_one_commit_hides_it_at_once_and_sweeps_later() {
    let c = Client::new();
    let u = c.user("busy", "e");
    let other = c.user("other", "e");
    let groups: Vec<String> = (0..80).map(|i| c.group(&format!("g{i:02}"))).collect();
    for g in &groups {
        c.add(g, &[u.clone(), other.clone()]);
    }
    let (status, _) = c.call("DELETE", &format!("/Users/{u}"), None);
    assert_eq!(status, 204);
    assert!(!c.leftovers(&u).is_empty(), "the test must catch the sweep half way");
    assert_eq!(c.call("GET", &format!("/Users/{u}"), None).0, 404);
    for g in [&groups[0], &groups[79]] {
        assert_eq!(c.members(g), vec![other.clone()]);
    }
    assert_eq!(filter(&c, "Groups", &format!(r#"members[value eq "{u}"]"#)).0, 0);
    // Removing the deleted user again is a no-op; adding it is refused.
    let (status, body) = c.call(
        "PATCH",
        &format!("/Groups/{}", groups[5]),
        patch(json!([{"op": "add", "path": "members", "value": [{"value": u}]}])),
    );
    assert_eq!(status, 400, "{body}");
    for i in 0..10 {
        c.user(&format!("later{i}"), "e");
    }
    assert!(c.leftovers(&u).is_empty(), "{:?}", c.leftovers(&u));
    assert_eq!(c.tombstones(), 0);
    // Each group counts one member now: it can take BUDGET more in one go.
    let fresh: Vec<String> = (0..BUDGET).map(|i| c.user(&format!("f{i}"), "e")).collect();
    c.add(&groups[0], &fresh);
    assert_eq!(c.members(&groups[0]).len(), BUDGET + 1);
}

/// A store that records the prefixes scanned, and `COMMIT` for each
/// commit, to prove what a request does not read and when it reads.
#[derive(Clone)]
struct Counting {
    inner: MemStore,
    scans: Arc<std::sync::Mutex<Vec<String>>>,
}

impl scim_core::Store for Counting {
    fn get(&self, key: &str) -> Result<Option<scim_core::Entry>, scim_core::StoreError> {
        self.inner.get(key)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<scim_core::Entry>>, scim_core::StoreError> {
        self.inner.get_many(keys)
    }
    fn scan(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<scim_core::ScanPage, scim_core::StoreError> {
        self.scans.lock().unwrap().push(prefix.to_owned());
        self.inner.scan(prefix, after, limit)
    }
    fn commit(&self, writes: Vec<scim_core::Write>) -> Result<u64, scim_core::StoreError> {
        self.scans.lock().unwrap().push("COMMIT".into());
        self.inner.commit(writes)
    }
    fn limits(&self) -> Limits {
        self.inner.limits()
    }
}

/// Clean-up is looked for before a write commits, in the same snapshot as
/// the write's other reads; a write that finds none and leaves none reads
/// nothing after its commit (on SQLite, a second read transaction).
#[test]
fn clean_up_is_looked_for_before_a_write_commits() {
    let c = Client::new();
    let users: Vec<String> = (0..40).map(|i| c.user(&format!("u{i:02}"), "e")).collect();
    let g = c.group("big");
    c.add(&g, &users);
    let counting = Counting { inner: c.store.clone(), scans: Arc::default() };
    let service = Service::new(counting.clone(), &*c.env);
    let send = |method: &str, path: &str, body: Option<Value>| {
        counting.scans.lock().unwrap().clear();
        let response = service.handle(&c.request(method, path, body));
        assert!(response.status < 300, "{}", String::from_utf8_lossy(&response.body));
        let log = counting.scans.lock().unwrap().clone();
        let commit = log.iter().position(|p| p == "COMMIT").expect("the write commits");
        let sweeps = |part: &[String]| part.iter().filter(|p| p.ends_with("/t/")).count();
        (sweeps(&log[..commit]), sweeps(&log[commit..]))
    };
    let user = |name: &str| json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name});
    // Nothing waiting, nothing left: one look, before the commit.
    assert_eq!(send("POST", "/Users", Some(user("quiet@example.com"))), (1, 0));
    // A delete too large for one commit sweeps right after its own commit.
    let (before, after) = send("DELETE", &format!("/Groups/{g}"), None);
    assert_eq!(before, 1);
    assert!(after >= 1, "the delete sweeps what it left");
    assert!(c.tombstones() > 0, "the test must leave work for the next write");
    // The next write finds it waiting and sweeps after its commit.
    let (before, after) = send("POST", "/Users", Some(user("next@example.com")));
    assert_eq!(before, 1);
    assert!(after >= 1, "a later write sweeps what is waiting");
}

#[test]
fn membership_filters_and_or_lookups_read_only_what_they_name() {
    let c = Client::new();
    let users: Vec<String> = (0..40).map(|i| c.user(&format!("u{i:02}"), "e")).collect();
    let g = c.group("big");
    c.add(&g, &users);
    let counting = Counting { inner: c.store.clone(), scans: Arc::default() };
    let service = Service::new(counting.clone(), &*c.env);
    let get = |path: &str| -> Value {
        let response = service.handle(&c.request("GET", path, None));
        assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
        serde_json::from_slice(&response.body).unwrap()
    };
    let member_scans = || {
        counting
            .scans
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.contains("/m/") || p.contains("/x/un/") || p.contains("/x/gn/"))
            .cloned()
            .collect::<Vec<_>>()
    };

    // Entra's membership check, members excluded: one edge read, no scan.
    let found = get(&format!(
        "/Groups?excludedAttributes=members&filter={}",
        urlencode(&format!(r#"members[value eq "{}"] and displayName eq "big""#, users[3]))
    ));
    assert_eq!(found["totalResults"], 1);
    assert!(found["Resources"][0].get("members").is_none());
    let found = get(&format!("/Groups/{g}?excludedAttributes=members"));
    assert!(found.get("members").is_none());
    assert_eq!(member_scans(), Vec::<String>::new());

    // The same filter with members wanted answers every member.
    let found = get(&format!("/Groups?filter={}", urlencode(&format!(r#"members[value eq "{}"]"#, users[3]))));
    assert_eq!(found["Resources"][0]["members"].as_array().unwrap().len(), 40);
    counting.scans.lock().unwrap().clear();

    // `or` of equalities: the unique index by key, never a walk of it.
    let found = get(&format!(
        "/Users?filter={}",
        urlencode(r#"userName eq "u01@example.com" or userName eq "U02@EXAMPLE.COM" or externalId eq "none""#)
    ));
    assert_eq!(found["totalResults"], 2);
    assert_eq!(member_scans(), Vec::<String>::new());

    // `sw`: only the range of the index that starts so, in userName order.
    let found = get(&format!("/Users?filter={}", urlencode(r#"userName sw "U1""#)));
    let names: Vec<&str> =
        found["Resources"].as_array().unwrap().iter().map(|r| r["userName"].as_str().unwrap()).collect();
    assert_eq!(names, (10..20).map(|i| format!("u{i}@example.com")).collect::<Vec<_>>());
    assert!(member_scans().iter().all(|p| p.ends_with("/x/un/u1")), "{:?}", member_scans());
}

#[test]
fn total_results_come_from_kept_counts_and_match_the_listing() {
    let c = Client::new();
    let users: Vec<String> = (0..30).map(|i| c.user(&format!("u{i:02}"), "e")).collect();
    for u in &users[..4] {
        assert_eq!(c.call("DELETE", &format!("/Users/{u}"), None).0, 204);
    }
    for (i, u) in users[4..7].iter().enumerate() {
        let (status, body) = c.call(
            "PATCH",
            &format!("/Users/{u}"),
            patch(json!([{"op": "replace", "path": "userName", "value": format!("renamed{i}@example.com")}])),
        );
        assert_eq!(status, 200, "{body}");
    }
    // A create that loses on uniqueness counts nothing.
    assert_eq!(
        c.call(
            "POST",
            "/Users",
            Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "U10@example.com"}))
        )
        .0,
        409
    );
    let groups: Vec<String> = (0..9).map(|i| c.group(&format!("g{i}"))).collect();
    assert_eq!(c.call("DELETE", &format!("/Groups/{}", groups[0]), None).0, 204);

    for (endpoint, expected) in [("Users", 26), ("Groups", 8)] {
        let (_, body) = c.call("GET", &format!("/{endpoint}?startIndex=3&count=2"), None);
        assert_eq!(body["totalResults"], expected, "{endpoint}");
        assert_eq!(body["itemsPerPage"], 2);
        // The same count as a walk of every page.
        let mut walked = 0;
        let mut cursor = String::new();
        loop {
            let (_, page) = c.call("GET", &format!("/{endpoint}?cursor={cursor}&count=7"), None);
            walked += page["Resources"].as_array().unwrap().len();
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(next) => cursor = next.to_owned(),
                None => break,
            }
        }
        assert_eq!(walked, expected, "{endpoint}");
    }
    let (_, body) = c.call("GET", "/Users?startIndex=25&count=10", None);
    assert_eq!((body["totalResults"].as_u64(), body["itemsPerPage"].as_u64()), (Some(26), Some(2)));
}

#[test]
fn accounts_made_either_way_count_instead_of_walking() {
    let store = MemStore::with_caps(5, CAPS);
    let env = Arc::new(TestEnv::default());
    let service = Service::new(store.clone(), &*env);
    let (account, token) = service.bootstrap("default").unwrap().unwrap();
    let c = Client { store, env, base: account.scim_path, token: token.token };
    for i in 0..12 {
        c.user(&format!("u{i:02}"), "e");
    }
    let counting = Counting { inner: c.store.clone(), scans: Arc::default() };
    let service = Service::new(counting.clone(), &*c.env);
    let response = service.handle(&c.request("GET", "/Users?startIndex=2&count=2", None));
    let page: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!((page["totalResults"].as_u64(), page["itemsPerPage"].as_u64()), (Some(12), Some(2)));
    let walked = counting.scans.lock().unwrap().iter().filter(|p| p.ends_with("/x/un/")).count();
    assert_eq!(walked, 1, "one capped page of the name index, not all of it");
}

#[test]
fn a_new_user_is_answered_without_reading_memberships() {
    let c = Client::new();
    let counting = Counting { inner: c.store.clone(), scans: Arc::default() };
    let service = Service::new(counting.clone(), &*c.env);
    let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "new@example.com"});
    let response = service.handle(&c.request("POST", "/Users", Some(body)));
    assert_eq!(response.status, 201, "{}", String::from_utf8_lossy(&response.body));
    let created: Value = serde_json::from_slice(&response.body).unwrap();
    assert!(created.get("groups").is_none(), "{created}");
    // A user made by this commit is in no group: its edges are not read.
    let scans = counting.scans.lock().unwrap().clone();
    assert!(scans.iter().all(|p| !p.contains("/mu/")), "{scans:?}");
    // Read back, the same user's groups are looked up as always.
    let id = created["id"].as_str().unwrap();
    let response = service.handle(&c.request("GET", &format!("/Users/{id}"), None));
    assert_eq!(response.status, 200);
    assert!(counting.scans.lock().unwrap().iter().any(|p| p.ends_with(&format!("/mu/{id}/"))));
}
