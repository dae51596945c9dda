//! The provisioning rules over the in-memory store: the native admin API,
//! ownership, migration by e-mail, same-name policy, settings, role
//! bindings, tokens and the audit log.

use std::sync::Arc;

use scim_core::{Config, Limits, MemStore, Request, Service, TestEnv};
use serde_json::{Value, json};

const ADMIN: &str = "admin-token-0123456789";

struct World {
    store: MemStore,
    env: Arc<TestEnv>,
    account: String,
    scim_base: String,
    token: String,
    token_id: String,
}

impl World {
    fn new() -> Self {
        let store = MemStore::with_caps(3, Limits::CONTRACT);
        let env = Arc::new(TestEnv::default());
        let service = Service::new(store.clone(), &*env);
        let account = service.create_account("acme").unwrap();
        let token = service.create_token(&account.id, "entra", None).unwrap();
        World {
            store,
            env,
            scim_base: account.scim_path,
            account: account.id,
            token: token.token,
            token_id: token.info.id,
        }
    }

    fn raw(&self, method: &str, path: &str, auth: Option<&str>, body: Option<Value>, ua: &str) -> (u16, Value) {
        let service =
            Service::with_config(self.store.clone(), &*self.env, Config::default().with_admin_token(Some(ADMIN)));
        let mut headers =
            vec![("user-agent".to_owned(), ua.to_owned()), ("x-request-id".to_owned(), format!("req-{method}"))];
        if let Some(a) = auth {
            headers.push(("authorization".into(), format!("Bearer {a}")));
        }
        let response = service.handle(&Request {
            method: method.into(),
            path_with_query: path.into(),
            authority: Some("scim.test".into()),
            headers,
            body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
            ..Default::default()
        });
        let value = if response.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&response.body).unwrap_or(Value::Null)
        };
        (response.status, value)
    }

    fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.raw(method, &format!("/api/accounts/{}{path}", self.account), Some(ADMIN), body, "curl/8")
    }

    fn scim(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.raw(
            method,
            &format!("{}{path}", self.scim_base),
            Some(&self.token),
            body,
            "Microsoft.Identity.Provisioning",
        )
    }

    fn native_user(&self, email: &str, name: &str) -> String {
        let (s, v) = self.admin("POST", "/users", Some(json!({"email": email, "name": name})));
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }

    fn native_group(&self, name: &str) -> String {
        let (s, v) = self.admin("POST", "/groups", Some(json!({"name": name})));
        assert_eq!(s, 201, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }

    fn audit(&self, query: &str) -> Vec<Value> {
        let (s, v) = self.admin("GET", &format!("/audit?{query}"), None);
        assert_eq!(s, 200, "{v}");
        v["items"].as_array().unwrap().clone()
    }
}

fn scim_user(user_name: &str, work: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name, "active": true,
           "emails": [{"value": work, "type": "work", "primary": true}], "name": {"givenName": "G", "familyName": "F"}})
}

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

#[test]
fn admin_api_needs_its_own_token() {
    let w = World::new();
    let path = format!("/api/accounts/{}/users", w.account);
    assert_eq!(w.raw("GET", &path, None, None, "x").0, 401);
    let (s, v) = w.raw("GET", &path, Some(&w.token), None, "x");
    assert_eq!((s, v["code"].as_str()), (401, Some("unauthorized")), "a SCIM token is not an admin token");
    // Without a configured admin token the API is off.
    let service = Service::new(w.store.clone(), &*w.env);
    let r = service.handle(&Request {
        method: "GET".into(),
        path_with_query: path,
        headers: vec![("authorization".into(), format!("Bearer {ADMIN}"))],
        ..Default::default()
    });
    assert_eq!(r.status, 403);
    assert!(String::from_utf8_lossy(&r.body).contains("admin_api_disabled"));
    // Too short a token never enables it.
    assert!(!Config::default().with_admin_token(Some("short")).admin_enabled());
}

#[test]
fn migration_takes_native_users_over_by_email() {
    let w = World::new();
    let jane = w.native_user("Jane.Doe@corp.com", "Jane Doe");
    let group = w.native_group("Platform Team");
    assert_eq!(w.admin("PUT", &format!("/groups/{group}/members/{jane}"), None).0, 200);
    let (s, binding) = w.admin("POST", "/role-bindings", Some(json!({"principal": {"type": "user", "id": jane}, "role": "project_admin", "scope": {"kind": "project", "org": "default", "project": "web"}})));
    assert_eq!(s, 201, "{binding}");

    // SCIM cannot see the native user before migration.
    let (_, list) = w.scim("GET", "/Users?filter=userName%20eq%20%22jane.doe%40corp.com%22", None);
    assert_eq!(list["totalResults"], 0);
    assert_eq!(w.scim("GET", &format!("/Users/{jane}"), None).0, 404);

    // Entra: userName is the UPN, the work e-mail matches the native login.
    let (s, created) = w.scim("POST", "/Users", Some(scim_user("jdoe@corp.onmicrosoft.com", "jane.doe@CORP.com")));
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["id"], jane, "taken over, not duplicated");
    assert!(created.get("groups").is_none(), "native groups are not SCIM's to see");

    let (_, view) = w.admin("GET", &format!("/users/{jane}"), None);
    assert_eq!(
        view["source"],
        json!({"kind": "scim", "tokenId": w.token_id, "takenOverAt": view["source"]["takenOverAt"]})
    );
    assert!(view["source"]["takenOverAt"].is_string());
    assert_eq!(view["email"], "jane.doe@corp.com", "the login stays the native e-mail");
    assert_eq!(view["groups"], json!([{"id": group, "name": "Platform Team", "source": "native"}]));
    assert_eq!(view["roleBindings"], json!([binding]));

    // A second create of the same person is now a plain userName conflict.
    let (s, err) = w.scim("POST", "/Users", Some(scim_user("jdoe@corp.onmicrosoft.com", "jane.doe@corp.com")));
    assert_eq!((s, err["scimType"].as_str()), (409, Some("uniqueness")));
    // A new person gets a new user.
    let (s, other) = w.scim("POST", "/Users", Some(scim_user("new.hire@corp.com", "new.hire@corp.com")));
    assert_eq!(s, 201);
    assert_ne!(other["id"], jane);

    let takeovers = w.audit("operation=user.takeover");
    assert_eq!(takeovers.len(), 1);
    assert_eq!(takeovers[0]["actor"], json!({"kind": "token", "tokenId": w.token_id}));
    assert_eq!(
        (takeovers[0]["client"].as_str(), takeovers[0]["resource"]["id"].as_str()),
        (Some("entra"), Some(jane.as_str()))
    );
    assert_eq!(takeovers[0]["requestId"], "req-POST");
}

#[test]
fn scim_managed_resources_refuse_native_edits() {
    let w = World::new();
    let (_, u) = w.scim("POST", "/Users", Some(scim_user("ann@corp.com", "ann@corp.com")));
    let ann = u["id"].as_str().unwrap().to_owned();
    let (s, g) = w.scim("POST", "/Groups", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Sales", "members": [{"value": ann}]})));
    assert_eq!(s, 201, "{g}");
    let sales = g["id"].as_str().unwrap().to_owned();
    let native = w.native_group("Helpdesk");

    let refusals = [
        ("PATCH", format!("/groups/{sales}"), Some(json!({"name": "Renamed"})), "scim_managed_group"),
        ("DELETE", format!("/groups/{sales}"), None, "scim_managed_group"),
        ("PUT", format!("/groups/{sales}/members/{ann}"), None, "scim_managed_group"),
        ("DELETE", format!("/groups/{sales}/members/{ann}"), None, "scim_managed_group"),
        ("PATCH", format!("/users/{ann}"), Some(json!({"email": "x@corp.com"})), "scim_managed_user"),
        ("PATCH", format!("/users/{ann}"), Some(json!({"name": "X"})), "scim_managed_user"),
        ("DELETE", format!("/users/{ann}"), None, "scim_managed_user"),
    ];
    let data = |w: &World| w.store.keys().into_iter().filter(|k| !k.contains("/log/")).collect::<Vec<_>>();
    let before = data(&w);
    for (method, path, body, code) in refusals {
        let (s, err) = w.admin(method, &path, body);
        assert_eq!((s, err["code"].as_str()), (409, Some(code)), "{method} {path}: {err}");
        assert_eq!(err["schemas"], json!(["urn:ietf:params:scim:api:messages:2.0:Error"]));
        assert_eq!(data(&w), before, "{method} {path} changed something");
    }
    assert_eq!(w.audit("outcome=failure").len(), 7);
    // A user provisioned through a SCIM group has its group assignments
    // managed in the identity provider...
    let (s, err) = w.admin("PUT", &format!("/groups/{native}/members/{ann}"), None);
    assert_eq!((s, err["code"].as_str()), (409, Some("scim_managed_user")), "{err}");
    assert!(err["detail"].as_str().unwrap().contains("Sales"));
    // ...one assigned directly may be put in a native group by hand, and
    // taken out again.
    let (_, u) = w.scim("POST", "/Users", Some(scim_user("bo@corp.com", "bo@corp.com")));
    let bo = u["id"].as_str().unwrap().to_owned();
    let (s, view) = w.admin("PUT", &format!("/groups/{native}/members/{bo}"), None);
    assert_eq!((s, view["members"].clone()), (200, json!([bo])));
    let (_, user) = w.admin("GET", &format!("/users/{bo}"), None);
    assert_eq!(user["groups"], json!([{"id": native, "name": "Helpdesk", "source": "native"}]));
    // SCIM does not see the native group.
    let (_, scim_view) = w.scim("GET", &format!("/Users/{bo}"), None);
    assert!(scim_view.get("groups").is_none(), "{scim_view}");
    assert_eq!(w.admin("DELETE", &format!("/groups/{native}/members/{bo}"), None).0, 200);
    // SCIM can neither see nor delete the native group.
    assert_eq!(w.scim("DELETE", &format!("/Groups/{native}"), None).0, 404);
}

#[test]
fn same_name_policy_links_or_separates() {
    // link (default): the push finds and takes over the native group.
    let w = World::new();
    let member = w.native_user("m@corp.com", "M");
    let eng = w.native_group("Eng Team");
    w.admin("PUT", &format!("/groups/{eng}/members/{member}"), None);
    let (_, found) =
        w.scim("GET", "/Groups?filter=displayName%20eq%20%22Eng%20Team%22&excludedAttributes=members", None);
    assert_eq!(found["totalResults"], 1);
    assert_eq!(found["Resources"][0]["id"], eng);
    let (_, all) = w.scim("GET", "/Groups", None);
    assert_eq!(all["totalResults"], 0, "unfiltered lists stay SCIM's own");
    let (s, pushed) = w.scim(
        "POST",
        "/Groups",
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Eng Team"})),
    );
    assert_eq!((s, pushed["id"].as_str()), (201, Some(eng.as_str())));
    let (_, view) = w.admin("GET", &format!("/groups/{eng}"), None);
    assert_eq!(view["source"]["kind"], "scim");
    assert_eq!(view["members"], json!([]), "members replaced by the pushed (empty) list");
    let (_, report) = w.admin("GET", "/migration-report", None);
    assert_eq!(report["groupsTakenOver"][0]["id"], eng);

    // separate: a same-name SCIM group is kept beside the native one.
    let w = World::new();
    assert_eq!(w.admin("PATCH", "/settings", Some(json!({"sameNamePolicy": "separate"}))).0, 200);
    let eng = w.native_group("Eng Team");
    let (_, found) = w.scim("GET", "/Groups?filter=displayName%20eq%20%22Eng%20Team%22", None);
    assert_eq!(found["totalResults"], 0);
    assert_eq!(w.scim("GET", &format!("/Groups/{eng}"), None).0, 404);
    let (s, pushed) = w.scim(
        "POST",
        "/Groups",
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Eng Team"})),
    );
    assert_eq!((s, pushed["id"].as_str()), (201, Some("Eng_Team_2")));
    let (_, native) = w.admin("GET", &format!("/groups/{eng}"), None);
    assert_eq!(native["source"]["kind"], "native");
    let (_, groups) = w.admin("GET", "/groups?source=scim", None);
    assert_eq!(groups["items"].as_array().unwrap().len(), 1);
}

#[test]
fn settings_govern_emails_and_deactivation() {
    let w = World::new();
    let (_, u) = w.scim("POST", "/Users", Some(scim_user("pat@corp.com", "pat@corp.com")));
    let pat = u["id"].as_str().unwrap().to_owned();
    // On (default): a SCIM e-mail change moves the login.
    w.scim(
        "PATCH",
        &format!("/Users/{pat}"),
        Some(patch(json!([{"op": "replace", "path": "userName", "value": "patricia@corp.com"}]))),
    );
    assert_eq!(w.admin("GET", &format!("/users/{pat}"), None).1["email"], "patricia@corp.com");
    // Off: SCIM's change is stored but the login stays.
    w.admin("PATCH", "/settings", Some(json!({"updateEmailsViaScim": false})));
    let (s, _) = w.scim(
        "PATCH",
        &format!("/Users/{pat}"),
        Some(patch(json!([{"op": "replace", "path": "userName", "value": "pat.x@corp.com"}]))),
    );
    assert_eq!(s, 200);
    let (_, view) = w.admin("GET", &format!("/users/{pat}"), None);
    assert_eq!(
        (view["email"].as_str(), view["userName"].as_str()),
        (Some("patricia@corp.com"), Some("pat.x@corp.com"))
    );

    // disable (default): stays, readable, memberships kept, access blocked.
    let (_, g) = w.scim("POST", "/Groups", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Ops", "members": [{"value": pat}]})));
    let (s, _) = w.scim(
        "PATCH",
        &format!("/Users/{pat}"),
        Some(patch(json!([{"op": "replace", "path": "active", "value": false}]))),
    );
    assert_eq!(s, 200);
    let (_, view) = w.admin("GET", &format!("/users/{pat}"), None);
    assert_eq!(
        (view["active"].as_bool(), view["access"].as_str(), view["groups"].as_array().unwrap().len()),
        (Some(false), Some("blocked"), 1)
    );
    assert_eq!(w.scim("GET", &format!("/Users/{pat}"), None).1["active"], false);
    // remove: deactivation takes the user out of the account.
    w.scim("PATCH", &format!("/Users/{pat}"), Some(patch(json!([{"op": "replace", "path": "active", "value": true}]))));
    w.admin("PATCH", "/settings", Some(json!({"deactivation": "remove"})));
    let (s, _) = w.scim(
        "PATCH",
        &format!("/Users/{pat}"),
        Some(patch(json!([{"op": "replace", "path": "active", "value": false}]))),
    );
    assert_eq!(s, 200);
    assert_eq!(w.admin("GET", &format!("/users/{pat}"), None).0, 404);
    assert_eq!(w.scim("GET", &format!("/Users/{pat}"), None).0, 404);
    let gid = g["id"].as_str().unwrap();
    assert!(w.scim("GET", &format!("/Groups/{gid}"), None).1.get("members").is_none());
    assert_eq!(w.audit("operation=user.remove").len(), 1);
    let (s, err) = w.admin("PATCH", "/settings", Some(json!({"deactivation": "purge"})));
    assert_eq!((s, err["scimType"].as_str()), (400, Some("invalidValue")));
}

#[test]
fn role_bindings_are_native_and_unique() {
    let w = World::new();
    let u = w.native_user("r@corp.com", "R");
    let body = json!({"principal": {"type": "user", "id": u}, "role": "viewer", "scope": {"kind": "account"}});
    let (s, b) = w.admin("POST", "/role-bindings", Some(body.clone()));
    assert_eq!(s, 201);
    let (s, err) = w.admin("POST", "/role-bindings", Some(body));
    assert_eq!((s, err["code"].as_str()), (409, Some("duplicate_role_binding")));
    let (s, _) = w.admin(
        "POST",
        "/role-bindings",
        Some(json!({"principal": {"type": "user", "id": "ghost"}, "role": "viewer", "scope": {"kind": "account"}})),
    );
    assert_eq!(s, 404);
    let (_, list) = w.admin("GET", &format!("/role-bindings?principalType=user&principalId={u}"), None);
    assert_eq!(list["items"], json!([b]));
    // Removing the user removes its bindings with it.
    assert_eq!(w.admin("DELETE", &format!("/users/{u}"), None).0, 204);
    let id = b["id"].as_str().unwrap();
    assert_eq!(w.admin("GET", &format!("/role-bindings/{id}"), None).0, 404);
    assert!(!w.store.keys().iter().any(|k| k.contains("/x/rb")), "no binding index left behind");
}

#[test]
fn tokens_rotate_warn_and_record_use() {
    let w = World::new();
    let (_, list) = w.admin("GET", "/tokens", None);
    assert_eq!(list["items"][0]["lastUsedAt"], Value::Null);
    w.scim("GET", "/Users", None);
    let (_, list) = w.admin("GET", "/tokens", None);
    assert!(list["items"][0]["lastUsedAt"].is_string());

    let (s, short) = w.admin("POST", "/tokens", Some(json!({"name": "okta", "expiresInDays": 10})));
    assert_eq!(s, 201);
    assert!(
        short["expiryWarning"]
            .as_str()
            .is_some_and(|m| m.contains("expires in 9 days") || m.contains("expires in 10 days")),
        "{short}"
    );
    let (s, rotated) = w.admin("POST", &format!("/tokens/{}/rotate", w.token_id), Some(json!({"graceHours": 1})));
    assert_eq!(s, 201, "{rotated}");
    let new_token = rotated["token"]["token"].as_str().unwrap().to_owned();
    // Both work during the grace period; the old one stops after it.
    assert_eq!(w.scim("GET", "/Users", None).0, 200);
    let with_new = |w: &World| w.raw("GET", &format!("{}/Users", w.scim_base), Some(&new_token), None, "x").0;
    assert_eq!(with_new(&w), 200);
    w.env.advance(2 * 3_600_000);
    assert_eq!(w.scim("GET", "/Users", None).0, 401);
    assert_eq!(with_new(&w), 200);
    assert_eq!(w.audit("operation=token.rotate").len(), 1);
}

#[test]
fn audit_log_pages_and_filters() {
    let w = World::new();
    for i in 0..5 {
        w.native_user(&format!("u{i}@corp.com"), "U");
    }
    w.scim("POST", "/Users", Some(scim_user("s@corp.com", "s@corp.com")));
    let all = w.audit("count=1000");
    // The operator's token.create of World::new comes first.
    assert_eq!(all.len(), 7);
    assert_eq!(
        (all[0]["operation"].as_str(), all[0]["actor"]["kind"].as_str(), all[0]["client"].as_str()),
        (Some("token.create"), Some("operator"), Some("cli"))
    );
    let first = w.audit("count=4");
    let (_, page) = w.admin("GET", "/audit?count=4", None);
    let cursor = page["nextCursor"].as_str().unwrap();
    let rest = w.audit(&format!("count=4&cursor={cursor}"));
    assert_eq!([first, rest].concat(), all);
    assert_eq!(w.audit("actor=admin").len(), 5);
    assert_eq!(w.audit(&format!("actor={}", w.token_id)).len(), 1);
    assert_eq!(w.audit("operation=user.").len(), 6);
    assert_eq!(w.audit("client=entra").len(), 1);
    assert_eq!(w.audit("actor=operator").len(), 1);
    let since = all[6]["time"].as_str().unwrap();
    assert_eq!(w.audit(&format!("since={since}")).len(), 1);
    assert_eq!(w.admin("GET", "/audit?bogus=1", None).0, 400);
    // Another account's log and people are out of reach.
    let other = Service::new(w.store.clone(), &*w.env).create_account("other").unwrap();
    let (_, users) = w.raw("GET", &format!("/api/accounts/{}/users", other.id), Some(ADMIN), None, "x");
    assert_eq!(users["items"], json!([]));
}

#[test]
fn export_and_report_reflect_migration_state() {
    let w = World::new();
    w.admin("PATCH", "/settings", Some(json!({"emailDomainAliases": {"corp.onmicrosoft.com": "corp.com"}})));
    let bob = w.native_user("bobsmith@corp.com", "Bob");
    w.native_user("carol@corp.com", "Carol");
    let (_, dup) = w.scim(
        "POST",
        "/Users",
        Some(scim_user("Bob.Smith+x@corp.onmicrosoft.com", "bob.smith+x@corp.onmicrosoft.com")),
    );
    let (_, report) = w.admin("GET", "/migration-report", None);
    assert_eq!(report["summary"]["nativeUsers"], 2);
    assert_eq!(report["summary"]["scimUsers"], 1);
    assert_eq!(report["nativeUsersNotTakenOver"].as_array().unwrap().len(), 2);
    let d = &report["possibleDuplicates"][0];
    assert_eq!(d["normalizedEmail"], "bobsmith@corp.com");
    let ids: Vec<&str> = d["users"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&bob.as_str()) && ids.contains(&dup["id"].as_str().unwrap()));

    let service = Service::with_config(w.store.clone(), &*w.env, Config::default().with_admin_token(Some(ADMIN)));
    let r = service.handle(&Request {
        method: "GET".into(),
        path_with_query: format!("/api/accounts/{}/export/users?format=csv", w.account),
        headers: vec![("authorization".into(), format!("Bearer {ADMIN}"))],
        ..Default::default()
    });
    let csv = String::from_utf8(r.body).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "id,email,name,userName,source,scimTokenId,takenOverAt,active,groups,roleBindings");
    assert_eq!(lines.len(), 4);
    assert!(
        lines.iter().any(|l| l.starts_with(&format!("{bob},bobsmith@corp.com,Bob,bobsmith@corp.com,native,,,true,,")))
    );
    let (_, json_export) = w.admin("GET", "/export/users?format=json&count=2", None);
    assert_eq!(json_export["items"].as_array().unwrap().len(), 2);
    assert!(json_export["nextCursor"].is_string());
}

#[test]
fn racing_native_and_scim_creates_never_duplicate_a_person() {
    for round in 0..20 {
        let w = World::new();
        let email = format!("racer{round}@corp.com");
        let (native, scim) = std::thread::scope(|s| {
            let a = s.spawn(|| w.admin("POST", "/users", Some(json!({"email": email, "name": "Racer"}))));
            let b = s.spawn(|| w.scim("POST", "/Users", Some(scim_user(&email, &email))));
            (a.join().unwrap(), b.join().unwrap())
        });
        assert_eq!(scim.0, 201, "SCIM always gets its user: {}", scim.1);
        let (_, users) = w.admin("GET", "/users", None);
        let items = users["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "one person, one user: {users}");
        assert_eq!(items[0]["source"]["kind"], "scim");
        match native.0 {
            // The admin was first and SCIM took the user over.
            201 => assert_eq!(
                (items[0]["id"].clone(), items[0]["source"]["takenOverAt"].is_string()),
                (native.1["id"].clone(), true)
            ),
            // SCIM was first: the admin hears whose e-mail it is.
            409 => assert_eq!(native.1["code"], "email_taken"),
            other => panic!("unexpected {other}: {}", native.1),
        }
    }
}

#[test]
fn linked_groups_never_show_native_users_to_scim() {
    let w = World::new();
    let native_member = w.native_user("stays@corp.com", "Native");
    let (_, s) = w.scim("POST", "/Users", Some(scim_user("moved@corp.com", "moved@corp.com")));
    let scim_member = s["id"].as_str().unwrap().to_owned();
    let support = w.native_group("Support");
    for uid in [&native_member, &scim_member] {
        assert_eq!(w.admin("PUT", &format!("/groups/{support}/members/{uid}"), None).0, 200);
    }
    // Found by Okta's lookup, with only the members SCIM knows.
    let (_, found) = w.scim("GET", "/Groups?filter=displayName%20eq%20%22Support%22", None);
    assert_eq!(
        found["Resources"][0]["members"].as_array().unwrap().iter().map(|m| m["value"].clone()).collect::<Vec<_>>(),
        vec![json!(scim_member)]
    );
    // A PATCH takes it over; the native member leaves, the SCIM one stays.
    let (s, _) = w.scim(
        "PATCH",
        &format!("/Groups/{support}"),
        Some(patch(json!([{"op": "add", "path": "externalId", "value": "okta-42"}]))),
    );
    assert_eq!(s, 204);
    let (_, view) = w.admin("GET", &format!("/groups/{support}"), None);
    assert_eq!((view["source"]["kind"].as_str(), view["members"].clone()), (Some("scim"), json!([scim_member])));
    assert_eq!(w.admin("GET", &format!("/users/{native_member}"), None).1["groups"], json!([]));
    assert_eq!(w.audit("operation=group.takeover").len(), 1);

    // Deactivation by removal answers with the last state and no ETag.
    w.admin("PATCH", "/settings", Some(json!({"deactivation": "remove"})));
    let service = Service::with_config(w.store.clone(), &*w.env, Config::default());
    let r = service.handle(&Request {
        method: "PATCH".into(),
        path_with_query: format!("{}/Users/{scim_member}", w.scim_base),
        headers: vec![("authorization".into(), format!("Bearer {}", w.token))],
        body: patch(json!([{"op": "replace", "path": "active", "value": false}])).to_string().into_bytes(),
        ..Default::default()
    });
    assert_eq!((r.status, r.header("etag")), (200, None));
    assert_eq!(serde_json::from_slice::<Value>(&r.body).unwrap()["active"], false);
}

/// Runs the whole check, 4 records a page (so every phase spans pages and
/// resumes from a cursor), and returns the problems' kinds and keys.
fn check(w: &World, repair: bool) -> Vec<(String, String)> {
    let mut cursor = String::new();
    let mut problems = Vec::new();
    loop {
        let (status, page) = w.admin("POST", &format!("/check?repair={repair}&count=4&cursor={cursor}"), None);
        assert_eq!(status, 200, "{page}");
        for p in page["problems"].as_array().unwrap() {
            problems.push((p["kind"].as_str().unwrap().to_owned(), p["key"].as_str().unwrap().to_owned()));
        }
        match page["nextCursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => return problems,
        }
    }
}

#[test]
fn check_finds_every_kind_of_damage_and_repair_puts_it_right() {
    use scim_core::{Store, Write};
    let w = World::new();
    let mut users = Vec::new();
    for name in ["ada", "grace", "alan"] {
        let (s, u) = w.scim("POST", "/Users", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("{name}@example.com"), "externalId": name, "emails": [{"value": format!("{name}@example.com"), "primary": true}]})));
        assert_eq!(s, 201, "{u}");
        users.push(u["id"].as_str().unwrap().to_owned());
    }
    let (s, g) = w.scim("POST", "/Groups", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Eng", "members": [{"value": users[0]}, {"value": users[1]}]})));
    assert_eq!(s, 201, "{g}");
    assert_eq!(check(&w, false), vec![], "a healthy account");

    // Damage, as a crash of a store without atomic commits or a foreign writer would.
    let keys = w.store.keys();
    let find = |part: &str| {
        keys.iter().find(|k| k.contains(part)).unwrap_or_else(|| panic!("no key with {part}: {keys:?}")).clone()
    };
    let root = format!("a/{}/", w.account);
    let user_name_index = find(&format!("{root}x/un/grace"));
    let reverse_edge = find(&format!("{root}mu/{}", users[0]));
    let stray = format!("{root}x/ue/nobody/{}", "0000");
    let stale_edge = format!("{root}m/Eng/{}", users[2]);
    w.store
        .commit(vec![
            Write::delete(user_name_index.clone()),
            Write::delete(reverse_edge.clone()),
            Write::put(stray.clone(), Vec::new()),
            Write::put(stale_edge.clone(), b"12345".to_vec()),
        ])
        .unwrap();
    let mut found = check(&w, false);
    found.sort();
    let counter = format!("{root}n/users/00");
    assert_eq!(
        found,
        vec![
            ("counter".to_owned(), counter),
            ("missingEdge".to_owned(), reverse_edge.clone()),
            ("missingIndex".to_owned(), user_name_index.clone()),
            ("staleEdge".to_owned(), stale_edge.clone()),
            ("strayIndex".to_owned(), stray.clone()),
        ]
    );
    // While damaged, the lookup that needs the index misses.
    let (_, list) = w.scim("GET", "/Users?filter=userName%20eq%20%22grace@example.com%22", None);
    assert_eq!(list["totalResults"], 0);

    // Repair, then nothing is left and SCIM sees the account whole again.
    // (Paged, the index is repaired before the counter phase counts it, so
    // the counter is then found right.)
    let repaired: Vec<String> = check(&w, true).into_iter().map(|(kind, _)| kind).filter(|k| k != "counter").collect();
    assert_eq!(repaired, ["missingIndex", "strayIndex", "missingEdge", "staleEdge"]);
    assert_eq!(check(&w, false), vec![]);
    let (_, list) = w.scim("GET", "/Users?filter=userName%20eq%20%22grace@example.com%22", None);
    assert_eq!(list["totalResults"], 1);
    let (_, ada) = w.scim("GET", &format!("/Users/{}", users[0]), None);
    assert_eq!(ada["groups"][0]["value"], "Eng");
    let (_, all) = w.scim("GET", "/Users", None);
    assert_eq!(all["totalResults"], 3);
    let (_, log) = w.admin("GET", "/audit?operation=store.repair", None);
    assert!(!log["items"].as_array().unwrap().is_empty(), "{log}");
}

#[test]
fn check_counts_members_across_pages_and_repairs_wrong_counts() {
    use scim_core::{Store, Write};
    let w = World::new();
    let mut users = Vec::new();
    for i in 0..7 {
        let (s, u) = w.scim("POST", "/Users", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("u{i}@example.com")})));
        assert_eq!(s, 201, "{u}");
        users.push(u["id"].as_str().unwrap().to_owned());
    }
    // Seven members: their edges span two pages of four.
    let members: Vec<Value> = users.iter().map(|u| json!({"value": u})).collect();
    let (s, big) = w.scim("POST", "/Groups", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Big", "members": members})));
    assert_eq!(s, 201, "{big}");
    let (s, small) = w.scim("POST", "/Groups", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Small", "members": [{"value": users[0]}]})));
    assert_eq!(s, 201, "{small}");
    let (s, empty) = w.scim(
        "POST",
        "/Groups",
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Empty"})),
    );
    assert_eq!(s, 201, "{empty}");
    assert_eq!(check(&w, false), vec![], "a healthy account");

    // Wrong kept counts: too many on a group with edges over pages, too few
    // on a one-member group, some on a group without any edge.
    let root = format!("a/{}/", w.account);
    let set_count = |id: &str, n: u64| {
        let key = format!("{root}g/{id}");
        let entry = w.store.get(&key).unwrap().unwrap_or_else(|| panic!("no {key}"));
        let mut record: Value = serde_json::from_slice(&entry.value).unwrap();
        record["members"] = json!(n);
        w.store.commit(vec![Write::replace(key, serde_json::to_vec(&record).unwrap(), entry.version)]).unwrap();
    };
    let ids: Vec<String> = [&big, &small, &empty].iter().map(|g| g["id"].as_str().unwrap().to_owned()).collect();
    set_count(&ids[0], 9);
    set_count(&ids[1], 0);
    set_count(&ids[2], 3);
    let mut found = check(&w, false);
    found.sort();
    let mut expected: Vec<(String, String)> =
        ids.iter().map(|id| ("memberCount".to_owned(), format!("{root}g/{id}"))).collect();
    expected.sort();
    assert_eq!(found, expected);

    let repaired = check(&w, true);
    assert_eq!(repaired.len(), 3, "{repaired:?}");
    assert_eq!(check(&w, false), vec![]);
    for (id, n) in ids.iter().zip([7u64, 1, 0]) {
        let record: Value =
            serde_json::from_slice(&w.store.get(&format!("{root}g/{id}")).unwrap().unwrap().value).unwrap();
        assert_eq!(record["members"], n, "group {id}");
    }
}

/// Every SCIM write records one operation name whether it lands or is
/// refused, and a refusal before the handler could read the body (bad
/// JSON) is on record too; the service's own failures (5xx) are not the
/// client's attempts and are not.
#[test]
fn scim_writes_record_the_same_operation_landed_or_refused() {
    let w = World::new();
    let (s, user) = w.scim("POST", "/Users", Some(scim_user("a@corp.com", "a@corp.com")));
    assert_eq!(s, 201, "{user}");
    let id = user["id"].as_str().unwrap().to_owned();
    assert_eq!(w.scim("POST", "/Users", Some(scim_user("A@corp.com", "a@corp.com"))).0, 409);
    assert_eq!(w.scim("PUT", &format!("/Users/{id}"), Some(scim_user("b@corp.com", "b@corp.com"))).0, 200);
    assert_eq!(w.scim("PUT", &format!("/Users/{id}"), Some(json!({"schemas": []}))).0, 400);
    let nick = patch(json!([{"op": "replace", "path": "nickName", "value": "x"}]));
    assert_eq!(w.scim("PATCH", &format!("/Users/{id}"), Some(nick)).0, 200);
    let service = Service::with_config(w.store.clone(), &*w.env, Config::default().with_admin_token(Some(ADMIN)));
    let not_json = service.handle(&Request {
        method: "PATCH".into(),
        path_with_query: format!("{}/Users/{id}", w.scim_base),
        authority: Some("scim.test".into()),
        headers: vec![("authorization".into(), format!("Bearer {}", w.token))],
        body: b"{not json".to_vec(),
        ..Default::default()
    });
    assert_eq!(not_json.status, 400);
    assert_eq!(w.scim("DELETE", "/Users/nobody", None).0, 404);
    let log: Vec<(String, String, String)> = w
        .audit(&format!("actor={}", w.token_id))
        .iter()
        .map(|r| {
            let s = |v: &Value| v.as_str().unwrap().to_owned();
            (s(&r["operation"]), s(&r["resource"]["id"]), s(&r["outcome"]))
        })
        .collect();
    let row = |op: &str, id: &str, outcome: &str| (op.to_owned(), id.to_owned(), outcome.to_owned());
    assert_eq!(
        log,
        vec![
            row("user.create", &id, "success"),
            row("user.create", "", "failure"),
            row("user.replace", &id, "success"),
            row("user.replace", &id, "failure"),
            row("user.update", &id, "success"),
            row("user.update", &id, "failure"),
            row("user.delete", "nobody", "failure"),
        ]
    );
}

/// A Bulk result entry is made from the operation's outcome: the created
/// resource's location and version, the ETag of a 204 PATCH, the target of
/// a DELETE, the SCIM error document of a refusal.
#[test]
fn bulk_results_carry_each_outcome() {
    let w = World::new();
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Ops"});
    let (s, body) = w.scim(
        "POST",
        "/Bulk",
        Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "u", "data": scim_user("bulk@corp.com", "bulk@corp.com")},
            {"method": "POST", "path": "/Groups", "bulkId": "g", "data": group},
            {"method": "PATCH", "path": "/Groups/bulkId:g", "data":
                patch(json!([{"op": "add", "path": "members", "value": [{"value": "bulkId:u"}]}]))},
            {"method": "DELETE", "path": "/Users/nobody"},
            {"method": "DELETE", "path": "/Users/bulkId:u"},
        ]})),
    );
    assert_eq!(s, 200, "{body}");
    let ops = body["Operations"].as_array().unwrap();
    let base = format!("http://scim.test{}", w.scim_base);
    let user = ops[0]["location"].as_str().unwrap().strip_prefix(&format!("{base}/Users/")).unwrap().to_owned();
    assert_eq!((ops[0]["status"].as_str(), ops[0]["bulkId"].as_str()), (Some("201"), Some("u")));
    assert!(ops[0]["version"].as_str().unwrap().starts_with("W/\""), "{}", ops[0]);
    assert_eq!(ops[1]["location"], json!(format!("{base}/Groups/Ops")));
    assert_eq!(ops[2]["status"], "204");
    assert_eq!(ops[2]["location"], json!(format!("{base}/Groups/Ops")));
    assert!(ops[2]["version"].as_str().unwrap() != ops[1]["version"].as_str().unwrap(), "a new version");
    assert_eq!(ops[2].get("response"), None);
    assert_eq!(ops[3]["status"], "404");
    assert_eq!(ops[3]["location"], json!(format!("{base}/Users/nobody")));
    assert_eq!(
        ops[3]["response"],
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "404",
               "detail": "no user with id \"nobody\" in this account"})
    );
    assert_eq!(
        (ops[4]["status"].as_str(), ops[4]["location"].as_str(), ops[4].get("version")),
        (Some("204"), Some(format!("{base}/Users/{user}").as_str()), None)
    );
}
