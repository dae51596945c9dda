//! End-to-end tests of the admin API beside SCIM, for what a vector cannot
//! pin: the admin API switched off, authentication, token rotation with a
//! grace period, audit filters and cursor paging, admin lists paged in
//! whatever order ids fall, and the CSV export against the JSON one. The
//! provisioning rules themselves (the Entra and Okta migrations, role
//! bindings, native uniqueness, accounts kept apart) are vectors under
//! `tests/vectors/rules/`, which every host replays.
//!
//! Every test starts its own `scimlet serve` with an admin token in
//! `SCIMLET_ADMIN_TOKEN`. Nothing here waits on time: every assertion is
//! about state that a response already acknowledged.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::ADMIN_TOKEN;
use crate::server::{Bootstrap, Server};
use scimlet_vectors::http::{self, Response};

const ENTRA: &str = "Microsoft.Identity.Provisioning";
const OKTA: &str = "Okta SCIM Client 1.0.0";
const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const CSV_HEADER: &str = "id,email,name,userName,source,scimTokenId,takenOverAt,active,groups,roleBindings";

/// A server with the admin API enabled, and the account `serve` bootstrapped.
struct Fixture {
    server: Server,
    boot: Bootstrap,
    /// Public id of the bootstrap SCIM token (`scimlet_<id>_<secret>`).
    token_id: String,
}

fn token_id_of(token: &str) -> String {
    scimlet_vectors::token_id(token)
        .unwrap_or_else(|| panic!("token {token:?} is not scimlet_<id>_<secret>"))
        .to_owned()
}

fn text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// Asserts the status and returns the JSON body (`Null` when empty).
#[track_caller]
fn expect(r: &Response, status: u16, what: &str) -> Value {
    assert_eq!(r.status, status, "{what}: {}", text(r));
    if r.body.is_empty() { Value::Null } else { r.json() }
}

/// Asserts a SCIM error JSON naming the rule `code`.
#[track_caller]
fn expect_rule(r: &Response, status: u16, code: &str, what: &str) -> Value {
    let body = expect(r, status, what);
    assert_eq!(body["code"], json!(code), "{what}: {body}");
    assert_eq!(body["status"], json!(status.to_string()), "{what}: {body}");
    assert_eq!(body["schemas"], json!([ERROR_SCHEMA]), "{what}: {body}");
    assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()), "{what}: {body}");
    body
}

/// Percent-encodes a query value.
fn q(value: &str) -> String {
    let mut out = String::new();
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn ids(items: &Value) -> BTreeSet<String> {
    items
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {items}"))
        .iter()
        .map(|i| i["id"].as_str().unwrap_or_else(|| panic!("no id in {i}")).to_owned())
        .collect()
}

fn set<S: AsRef<str>, const N: usize>(items: [S; N]) -> BTreeSet<String> {
    items.iter().map(|s| s.as_ref().to_owned()).collect()
}

fn by_id(items: &Value) -> BTreeMap<String, Value> {
    items
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {items}"))
        .iter()
        .map(|i| (i["id"].as_str().unwrap().to_owned(), i.clone()))
        .collect()
}

impl Fixture {
    fn start() -> Fixture {
        let (server, boot) = Server::start_with_env(&[("SCIMLET_ADMIN_TOKEN", ADMIN_TOKEN)]);
        let token_id = token_id_of(&boot.token);
        Fixture { server, boot, token_id }
    }

    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Response {
        let mut hs: Vec<(String, String)> = headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let bytes = match body {
            Some(b) => {
                if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
                    hs.push(("Content-Type".into(), "application/json".into()));
                }
                serde_json::to_vec(b).unwrap()
            }
            None => Vec::new(),
        };
        http::send(&self.server.addr, method, path, &hs, &bytes)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\nserver stderr:\n{}", self.server.stderr_text()))
    }

    /// An admin API request on `account` (`rel` starts with `/` or is empty).
    fn admin_at(&self, account: &str, method: &str, rel: &str, body: Option<&Value>) -> Response {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        self.send(method, &format!("/api/accounts/{account}{rel}"), &[("Authorization", auth.as_str())], body)
    }

    fn admin(&self, method: &str, rel: &str, body: Option<&Value>) -> Response {
        self.admin_at(&self.boot.account, method, rel, body)
    }

    /// An admin request that must answer `status`; its JSON body.
    #[track_caller]
    fn admin_ok(&self, method: &str, rel: &str, body: Option<&Value>, status: u16) -> Value {
        let r = self.admin(method, rel, body);
        expect(&r, status, &format!("admin {method} {rel}"))
    }

    /// A SCIM request with the bootstrap token as `ua` sends it.
    fn scim(&self, ua: &str, method: &str, rel: &str, body: Option<&Value>) -> Response {
        self.scim_with(&self.boot.token, ua, None, method, rel, body)
    }

    fn scim_with(
        &self,
        token: &str,
        ua: &str,
        request_id: Option<&str>,
        method: &str,
        rel: &str,
        body: Option<&Value>,
    ) -> Response {
        let auth = format!("Bearer {token}");
        let mut headers =
            vec![("Authorization", auth.as_str()), ("User-Agent", ua), ("Content-Type", "application/scim+json")];
        if let Some(id) = request_id {
            headers.push(("X-Request-Id", id));
        }
        self.send(method, &format!("{}{rel}", self.boot.base()), &headers, body)
    }

    /// Creates a native user through the admin API; returns its view.
    #[track_caller]
    fn native_user(&self, email: &str, name: &str) -> Value {
        let u = self.admin_ok("POST", "/users", Some(&json!({"email": email, "name": name})), 201);
        assert_eq!(
            (u["email"].clone(), u["name"].clone(), u["userName"].clone(), u["source"].clone()),
            (json!(email.to_lowercase()), json!(name), json!(email.to_lowercase()), json!({"kind": "native"})),
            "{u}"
        );
        assert_eq!(
            (u["active"].clone(), u["access"].clone(), u["invited"].clone()),
            (json!(true), json!("granted"), json!(false)),
            "{u}"
        );
        assert_eq!((u["groups"].clone(), u["roleBindings"].clone()), (json!([]), json!([])), "{u}");
        u
    }

    #[track_caller]
    fn native_group<S: AsRef<str>>(&self, name: &str, members: &[S]) -> String {
        let g = self.admin_ok("POST", "/groups", Some(&json!({"name": name})), 201);
        assert_eq!(
            (g["name"].clone(), g["source"].clone(), g["members"].clone()),
            (json!(name), json!({"kind": "native"}), json!([])),
            "{g}"
        );
        let gid = g["id"].as_str().unwrap().to_owned();
        for m in members {
            let m = m.as_ref();
            let g = self.admin_ok("PUT", &format!("/groups/{gid}/members/{m}"), None, 200);
            assert!(g["members"].as_array().unwrap().contains(&json!(m)), "{g}");
        }
        gid
    }

    #[track_caller]
    fn bind(&self, kind: &str, id: &str, role: &str, scope: Value) -> String {
        let body = json!({"principal": {"type": kind, "id": id}, "role": role, "scope": scope});
        let b = self.admin_ok("POST", "/role-bindings", Some(&body), 201);
        assert_eq!(
            (b["principal"].clone(), b["role"].clone(), b["scope"].clone()),
            (body["principal"].clone(), body["role"].clone(), body["scope"].clone()),
            "{b}"
        );
        assert!(b["created"].is_string(), "{b}");
        b["id"].as_str().unwrap().to_owned()
    }

    /// The JSON export (one page) and the CSV export, checked against each
    /// other; returns the JSON items keyed by id.
    fn export(&self) -> BTreeMap<String, Value> {
        let j = self.admin_ok("GET", "/export/users?format=json", None, 200);
        assert_eq!(j["nextCursor"], Value::Null, "{j}");
        let plain = self.admin_ok("GET", "/export/users", None, 200);
        assert_eq!(plain, j, "json is the default format");
        let r = self.admin("GET", "/export/users?format=csv", None);
        assert_eq!(r.status, 200, "{}", text(&r));
        assert!(r.header("content-type").is_some_and(|c| c.starts_with("text/csv")), "{:?}", r.headers);
        assert_eq!(r.header("x-next-cursor"), None);
        let csv = text(&r);
        let mut lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines.pop(), Some(""), "CSV lines end in CRLF: {csv:?}");
        assert_eq!(lines.first().copied(), Some(CSV_HEADER), "{csv}");
        let want: Vec<String> = j["items"].as_array().unwrap().iter().map(csv_row).collect();
        assert_eq!(lines[1..].to_vec(), want, "CSV export disagrees with the JSON export");
        by_id(&j["items"])
    }

    /// Every audit record matching `query` (one page of up to 1000).
    fn audit(&self, query: &str) -> Vec<Value> {
        let sep = if query.is_empty() { "" } else { "&" };
        let page = self.admin_ok("GET", &format!("/audit?count=1000{sep}{query}"), None, 200);
        assert_eq!(page["nextCursor"], Value::Null, "{page}");
        page["items"].as_array().unwrap().clone()
    }
}

/// The CSV line the export should hold for one JSON export item: RFC 4180
/// quoting, and a `'` before a leading `=`, `+`, `-` or `@` so that a
/// spreadsheet shows a cell instead of running it as a formula.
fn csv_row(u: &Value) -> String {
    let cell = |v: String| {
        let v = match v.chars().next() {
            Some('=' | '+' | '-' | '@') => format!("'{v}"),
            _ => v,
        };
        if v.chars().any(|c| matches!(c, ',' | '"' | '\r' | '\n')) {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v
        }
    };
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    };
    let groups: Vec<String> = u["groups"].as_array().unwrap().iter().map(|g| s(&g["id"])).collect();
    let bindings: Vec<String> = u["roleBindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let sc = &b["scope"];
            let at = match sc["kind"].as_str().unwrap() {
                "organization" => format!("org:{}", s(&sc["org"])),
                "project" => format!("project:{}/{}", s(&sc["org"]), s(&sc["project"])),
                _ => "account".to_owned(),
            };
            format!("{}@{at}", s(&b["role"]))
        })
        .collect();
    [
        s(&u["id"]),
        s(&u["email"]),
        s(&u["name"]),
        s(&u["userName"]),
        s(&u["source"]["kind"]),
        s(&u["source"]["tokenId"]),
        s(&u["source"]["takenOverAt"]),
        s(&u["active"]),
        groups.join(";"),
        bindings.join(";"),
    ]
    .map(cell)
    .join(",")
}

fn okta_user(user_name: &str, email: &str, given: &str, family: &str) -> Value {
    json!({
        "schemas": [CORE_USER],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": true, "value": email, "type": "work"}],
        "displayName": format!("{given} {family}"),
        "locale": "en-US",
        "externalId": format!("00u{}", given.to_lowercase()),
        "groups": [],
        "active": true
    })
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_else(|| panic!("no id: {v}")).to_owned()
}

/// The CSV export holds the JSON export's records, one line each, through a
/// migration: native users, a takeover with groups and role bindings, a user
/// SCIM created. (The migration rules themselves are the vectors of
/// `tests/vectors/rules/`.)
#[test]
fn csv_export_matches_json_export() {
    let f = Fixture::start();
    let jane = id_of(&f.native_user("jane@corp.com", "Jane Doe"));
    let dave = id_of(&f.native_user("dave@corp.com", "=Dave, \"Native\""));
    f.native_group("Engineering", &[&jane, &dave]);
    f.native_group("On-Call", &[&jane]);
    f.bind("user", &jane, "admin", json!({"kind": "account"}));
    f.bind("user", &jane, "viewer", json!({"kind": "organization", "org": "corp"}));
    assert_eq!(f.export().len(), 2);
    expect(
        &f.scim(OKTA, "POST", "/Users", Some(&okta_user("jane@corp.com", "jane@corp.com", "Jane", "Doe"))),
        201,
        "takeover",
    );
    let erin = id_of(&expect(
        &f.scim(OKTA, "POST", "/Users", Some(&okta_user("erin@corp.com", "erin@corp.com", "Erin", "New"))),
        201,
        "create",
    ));
    let after = f.export();
    assert_eq!(after.keys().cloned().collect::<BTreeSet<_>>(), set([&jane, &dave, &erin]));
    assert_eq!(after[&jane]["source"]["kind"], json!("scim"));
    assert_eq!(after[&jane]["roleBindings"].as_array().unwrap().len(), 2);
}

// ====================================================================
// Focused tests.
// ====================================================================

#[test]
fn admin_api_is_disabled_without_an_admin_token() {
    {
        let env: Vec<(&str, &str)> = vec![];
        let (server, boot) = Server::start_with_env(&env);
        for auth in [format!("Bearer {ADMIN_TOKEN}"), String::new()] {
            let mut headers = vec![];
            if !auth.is_empty() {
                headers.push(("Authorization".to_owned(), auth.clone()));
            }
            let r = http::send(&server.addr, "GET", &format!("/api/accounts/{}/users", boot.account), &headers, &[])
                .unwrap();
            expect_rule(&r, 403, "admin_api_disabled", &format!("env {env:?}, {auth:?}"));
        }
        // SCIM is unaffected.
        assert_eq!(server.request("GET", &format!("{}/Users", boot.base()), &boot.token, None).status, 200);
    }
}

/// What the token vector (`tests/vectors/rules/token-lifecycle.json`) cannot
/// pin: the bootstrap token is listed, listings never show a secret, and a
/// rotation pulls the old token's expiry in to the end of its grace period.
#[test]
fn token_listing_and_grace_periods() {
    let f = Fixture::start();
    let tokens = f.admin_ok("GET", "/tokens", None, 200);
    assert_eq!(
        (
            tokens["items"].as_array().unwrap().len(),
            tokens["items"][0]["id"].clone(),
            tokens["items"][0]["name"].clone()
        ),
        (1, json!(f.token_id), json!("bootstrap")),
        "{tokens}"
    );
    let created = f.admin_ok("POST", "/tokens", Some(&json!({"name": "okta", "expiresInDays": 30})), 201);
    let t1 = id_of(&created);
    assert_eq!(token_id_of(created["token"].as_str().unwrap()), t1, "the secret names its token");
    let listed = f.admin_ok("GET", "/tokens", None, 200);
    assert_eq!(ids(&listed["items"]), set([&f.token_id, &t1]));
    assert!(listed["items"].as_array().unwrap().iter().all(|t| t.get("token").is_none()), "{listed}");
    let rot = f.admin_ok("POST", &format!("/tokens/{t1}/rotate"), Some(&json!({"graceHours": 2})), 201);
    let (old, new) = (rot["previous"]["expiresAt"].as_str().unwrap(), created["expiresAt"].as_str().unwrap());
    assert!(old < new, "the old token's expiry is pulled in to the grace period: {rot} vs {created}");
    assert!(rot["token"]["expiresAt"].as_str().unwrap() >= new, "the new token gets the full term: {rot}");
}

#[test]
fn audit_filters_and_cursor_paging() {
    let f = Fixture::start();
    // Admin writes, SCIM writes from two clients, and refusals.
    let mut admin_users = BTreeSet::new();
    for i in 0..5 {
        admin_users.insert(id_of(&f.native_user(&format!("n{i}@audit.io"), &format!("N {i}"))));
    }
    let mut okta_users = BTreeSet::new();
    for i in 0..3 {
        let r = f.scim_with(
            &f.boot.token,
            OKTA,
            Some(format!("okta-{i}").as_str()),
            "POST",
            "/Users",
            Some(&okta_user(&format!("o{i}@audit.io"), &format!("o{i}@audit.io"), "O", &i.to_string())),
        );
        assert_eq!(r.header("x-request-id"), Some(format!("okta-{i}").as_str()));
        okta_users.insert(id_of(&expect(&r, 201, "okta create")));
    }
    let e = f.scim_with(
        &f.boot.token,
        ENTRA,
        Some("entra-dup"),
        "POST",
        "/Users",
        Some(&okta_user("o0@audit.io", "o0@audit.io", "O", "0")),
    );
    expect(&e, 409, "duplicate");
    let refused = f.admin("POST", "/users", Some(&json!({"email": "n0@audit.io"})));
    expect_rule(&refused, 409, "email_taken", "taken e-mail");
    // Admin requests echo X-Request-Id too.
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let r = f.send(
        "POST",
        &format!("/api/accounts/{}/groups", f.boot.account),
        &[("Authorization", auth.as_str()), ("X-Request-Id", "admin-req-7")],
        Some(&json!({"name": "Audited"})),
    );
    expect(&r, 201, "group with request id");
    assert_eq!(r.header("x-request-id"), Some("admin-req-7"));
    // Reads are not audited.
    f.scim(OKTA, "GET", "/Users", None);
    f.admin_ok("GET", "/users", None, 200);

    let all = f.audit("");
    assert_eq!(all.len(), 5 + 3 + 1 + 1 + 1, "{all:?}");
    let ids_all: Vec<String> = all.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    let mut sorted = ids_all.clone();
    sorted.sort();
    assert_eq!(ids_all, sorted, "oldest first, in id order");
    let times: Vec<&str> = all.iter().map(|r| r["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    // Paging by cursor: count=3 walks the same records, each once.
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let path = match &cursor {
            Some(c) => format!("/audit?count=3&cursor={}", q(c)),
            None => "/audit?count=3".to_owned(),
        };
        let page = f.admin_ok("GET", &path, None, 200);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        paged.extend(items.iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, all, "pages concatenate to the whole log");
    // Paging a filtered view.
    let mut filtered = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/audit?count=2&actor=admin&cursor={}", q(c)),
            None => "/audit?count=2&actor=admin".to_owned(),
        };
        let page = f.admin_ok("GET", &path, None, 200);
        filtered.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(filtered, all.iter().filter(|r| r["actor"] == json!({"kind": "admin"})).cloned().collect::<Vec<_>>());
    assert_eq!(filtered.len(), 7, "5 creates, 1 refusal, 1 group");

    // Filters.
    let rid = |items: &[Value]| {
        items.iter().map(|r| r["resource"]["id"].as_str().unwrap().to_owned()).collect::<BTreeSet<_>>()
    };
    let created = f.audit("operation=user.create&outcome=success");
    assert_eq!(rid(&created), admin_users.union(&okta_users).cloned().collect::<BTreeSet<String>>());
    let okta = f.audit("client=okta");
    assert_eq!(rid(&okta), okta_users);
    assert!(okta.iter().all(|r| r["actor"] == json!({"kind": "token", "tokenId": f.token_id})), "{okta:?}");
    assert_eq!(
        okta.iter().map(|r| r["requestId"].as_str().unwrap().to_owned()).collect::<BTreeSet<_>>(),
        set(["okta-0", "okta-1", "okta-2"])
    );
    assert_eq!(f.audit(&format!("actor={}", f.token_id)).len(), 4, "three creates and the refused duplicate");
    let fails = f.audit("outcome=failure");
    assert_eq!(fails.len(), 2, "{fails:?}");
    let entra_fail = fails.iter().find(|r| r["client"] == "entra").expect("entra refusal recorded");
    assert_eq!(
        (entra_fail["status"].clone(), entra_fail["requestId"].clone(), entra_fail["operation"].clone()),
        (json!(409), json!("entra-dup"), json!("user.create")),
        "{entra_fail}"
    );
    let admin_fail = fails.iter().find(|r| r["client"] == "admin-api").expect("admin refusal recorded");
    assert_eq!(
        (admin_fail["status"].clone(), admin_fail["code"].clone()),
        (json!(409), json!("email_taken")),
        "{admin_fail}"
    );
    let one = admin_users.iter().next().unwrap();
    let for_one = f.audit(&format!("resourceId={one}"));
    assert_eq!(for_one.len(), 1);
    assert_eq!(
        (for_one[0]["operation"].clone(), for_one[0]["actor"].clone()),
        (json!("user.create"), json!({"kind": "admin"}))
    );
    let g = f.audit("operation=group.create");
    assert_eq!(
        (g.len(), g[0]["requestId"].clone(), g[0]["client"].clone()),
        (1, json!("admin-req-7"), json!("admin-api"))
    );
    assert_eq!(f.audit("operation=user.").len(), 5 + 3 + 2, "prefix match, both refusals included");
    assert_eq!(f.audit("client=okta&outcome=failure").len(), 0);

    // Time windows, from the records' own times.
    let first = all[0]["time"].as_str().unwrap();
    let last = all.last().unwrap()["time"].as_str().unwrap();
    assert_eq!(f.audit(&format!("since={}", q(first))), all);
    assert_eq!(f.audit(&format!("until={}", q(last))), all);
    assert_eq!(f.audit("until=2000-01-01T00:00:00Z"), Vec::<Value>::new());
    assert_eq!(f.audit("since=2999-01-01T00:00:00Z"), Vec::<Value>::new());
    let mid = all[all.len() / 2]["time"].as_str().unwrap();
    let from_mid = f.audit(&format!("since={}", q(mid)));
    let until_mid = f.audit(&format!("until={}", q(mid)));
    assert!(from_mid.iter().all(|r| r["time"].as_str().unwrap() >= mid));
    assert!(until_mid.iter().all(|r| r["time"].as_str().unwrap() <= mid));
    let mut union: Vec<Value> = until_mid.clone();
    union.extend(from_mid.iter().filter(|r| !until_mid.contains(r)).cloned());
    assert_eq!(union, all, "since and until split the log without a gap");

    // Bad parameters.
    expect(&f.admin("GET", "/audit?bogus=1", None), 400, "unknown parameter");
    expect(&f.admin("GET", "/audit?count=0", None), 400, "count 0");
    expect(&f.admin("GET", "/audit?since=yesterday", None), 400, "bad time");
    expect(&f.admin("GET", "/audit?cursor=a%2Fb", None), 400, "bad cursor");
}

/// Admin lists page with an opaque cursor: every record once, whatever the
/// order (ids are random, so the vectors under `tests/vectors/rules` cannot
/// pin which page holds which record).
#[test]
fn admin_lists_page_with_a_cursor() {
    let f = Fixture::start();
    let users: BTreeSet<String> =
        (0..5).map(|i| id_of(&f.native_user(&format!("p{i}@x.io"), &format!("P{i}")))).collect();
    let u = users.iter().next().unwrap().clone();
    let bindings: BTreeSet<String> =
        (0..5).map(|i| f.bind("user", &u, &format!("role{i}"), json!({"kind": "account"}))).collect();
    for (list, want) in [("/users", &users), ("/role-bindings", &bindings)] {
        let p1 = f.admin_ok("GET", &format!("{list}?count=3"), None, 200);
        let c = p1["nextCursor"].as_str().unwrap_or_else(|| panic!("{list}: more follow: {p1}")).to_owned();
        let p2 = f.admin_ok("GET", &format!("{list}?count=3&cursor={}", q(&c)), None, 200);
        assert_eq!(p2["nextCursor"], Value::Null, "{list}: {p2}");
        let (n1, n2) = (p1["items"].as_array().unwrap().len(), p2["items"].as_array().unwrap().len());
        assert_eq!((n1, n2), (3, 2), "{list}");
        let mut seen = ids(&p1["items"]);
        seen.extend(ids(&p2["items"]));
        assert_eq!(&seen, want, "{list}");
    }
}
