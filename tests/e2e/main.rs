//! End-to-end tests: the real `scimlet` binary over real HTTP, on a real
//! SQLite file. Run with `cargo test -p scimlet --test e2e`.

mod backup;
mod config;
mod console;
mod crash;
mod hostile;
use scimlet_vectors::http;
mod logs;
mod migration;
mod replicas;
mod server;
mod shutdown;
mod tls;

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use scimlet_vectors::{Target, Vars, VectorRequest, VectorResponse, run_all, run_policy, vectors_dir};
use serde_json::{Value, json};
use server::{Bootstrap, Server};

const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The admin API token of every server these tests start with the admin
/// API on (`SCIMLET_ADMIN_TOKEN`).
const ADMIN_TOKEN: &str = "e2e-admin-token-0123456789abcdef";

/// Replays scenarios over HTTP against one server process, and when the
/// scenario is over, searches the server's log for every secret it sent.
struct HttpTarget {
    server: Server,
    /// The account's id, which log lines name.
    account: String,
    /// Tokens, passwords and body strings the scenario sent.
    secrets: std::collections::BTreeSet<String>,
}

impl HttpTarget {
    fn new(server: Server, boot: &Bootstrap) -> Self {
        HttpTarget { server, account: boot.account.clone(), secrets: Default::default() }
    }
}

impl Drop for HttpTarget {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let log = self.server.stop_and_read_log();
        assert!(log.contains(" INFO request "), "no request line in the log:\n{log}");
        assert!(!self.secrets.is_empty(), "every scenario sends its token");
        let leaked: Vec<&String> = self.secrets.iter().filter(|s| log.contains(s.as_str())).collect();
        assert!(leaked.is_empty(), "the server's log holds what a request sent: {leaked:?}\nlog:\n{log}");
    }
}

impl Target for HttpTarget {
    fn send(&mut self, req: &VectorRequest) -> Result<VectorResponse, String> {
        self.secrets.extend(http::secrets_of(req, &self.account));
        let resp = http::send(&self.server.addr, &req.method, &req.path, &req.headers, &req.body)
            .map_err(|e| format!("{e}\nserver stderr:\n{}", self.server.stderr_text()))?;
        Ok(VectorResponse { status: resp.status, headers: resp.headers, body: resp.body })
    }

    fn restart(&mut self) -> Result<(), String> {
        self.server.restart()
    }
}

/// A fresh server with the admin API on, as a target of the vectors, and
/// the values their placeholders stand for.
fn vector_target() -> (HttpTarget, Vars) {
    vector_target_with(&[])
}

/// Like [`vector_target`], with more of `serve`'s environment.
fn vector_target_with(env: &[(&str, &str)]) -> (HttpTarget, Vars) {
    let env: Vec<(&str, &str)> =
        [("SCIMLET_ADMIN_TOKEN", ADMIN_TOKEN)].into_iter().chain(env.iter().copied()).collect();
    let (server, boot) = Server::start_with_env(&env);
    let (origin, base) = http::split_url(&boot.tenant_url);
    assert_eq!(origin, server.origin(), "tenant URL origin vs listening address");
    let vars = Vars {
        base,
        origin,
        account: boot.account.clone(),
        token: boot.token.clone(),
        admin_token: ADMIN_TOKEN.to_owned(),
    };
    (HttpTarget::new(server, &boot), vars)
}

/// Every vector, over HTTP; the log of each scenario's server is then
/// searched for every token, password and body string it was sent.
#[test]
fn vectors_replay_over_http() {
    let result = run_all(&vectors_dir(), |_| {
        let (target, vars) = vector_target();
        Ok((Box::new(target) as Box<dyn Target>, vars))
    });
    if let Err(report) = result {
        panic!("\n{report}");
    }
}

/// The scenarios that hold under the plain-SCIM policy, against a runner
/// serving it under an embedder's own base path (the one the vectors of that
/// policy expect in their error details).
#[test]
fn plain_scim_vectors_replay_over_http() {
    let result = run_policy(&vectors_dir(), "plain", |_| {
        let (target, vars) =
            vector_target_with(&[("SCIMLET_POLICY", "plain"), ("SCIMLET_BASE_PATHS", "/tenants/{account}/scim/v2")]);
        assert!(vars.base.starts_with("/tenants/") && vars.base.ends_with("/scim/v2"), "tenant URL {}", vars.base);
        Ok((Box::new(target) as Box<dyn Target>, vars))
    });
    if let Err(report) = result {
        panic!("\n{report}");
    }
}

/// A base path the core would refuse stops `serve` before it listens.
#[test]
fn a_bad_base_path_stops_the_start() {
    let dir = server::TempDir::new();
    let out = std::process::Command::new(server::BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("scimlet.db"))
        .args(["--base-paths", "/scim/{account}/"])
        .env_clear()
        .output()
        .expect("scimlet runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("SCIMLET_BASE_PATHS: base path \"/scim/{account}/\": no empty segments and no trailing /"),
        "{stderr}"
    );
}

fn user_body(user_name: &str) -> Value {
    json!({"schemas": [CORE_USER], "userName": user_name, "name": {"givenName": "Test", "familyName": user_name},
           "emails": [{"primary": true, "type": "work", "value": user_name.to_lowercase()}], "active": true})
}

/// Creates a user and returns its id.
fn create_user(server: &Server, boot: &Bootstrap, user_name: &str) -> String {
    let r = server.request("POST", &format!("{}/Users", boot.base()), &boot.token, Some(&user_body(user_name)));
    assert_eq!(r.status, 201, "create {user_name}: {}", String::from_utf8_lossy(&r.body));
    r.json()["id"].as_str().expect("id").to_owned()
}

fn total(r: &http::Response) -> u64 {
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["totalResults"].as_u64().expect("totalResults is an integer")
}

#[test]
fn restart_keeps_state_and_does_not_bootstrap_again() {
    let (mut server, boot) = Server::start();
    let id = create_user(&server, &boot, "Restart.Me@example.com");
    server.restart().unwrap();
    let lines = server.stdout_lines(Duration::from_millis(500));
    assert!(
        !lines.iter().any(|l| l.starts_with("Token:") || l.starts_with("Created account")),
        "a restart on an existing db must not bootstrap again: {lines:?}"
    );
    let r = server.request("GET", &format!("{}/Users/{id}", boot.base()), &boot.token, None);
    assert_eq!(r.status, 200, "user lost across restart: {}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["userName"], "Restart.Me@example.com");
}

#[test]
fn another_accounts_token_is_refused_and_sees_nothing() {
    let (server, boot) = Server::start();
    let base1 = boot.base();
    let alice = create_user(&server, &boot, "Alice@one.example");
    let group = server.request(
        "POST",
        &format!("{base1}/Groups"),
        &boot.token,
        Some(&json!({"schemas": [CORE_GROUP], "displayName": "One"})),
    );
    assert_eq!(group.status, 201);

    // The CLI works on the same database while the server runs.
    let account2 = server.cli_json(&["account", "create", "second"]);
    let id2 = account2["id"].as_str().expect("account id").to_owned();
    assert_ne!(id2, boot.account);
    assert!(
        account2["tenantUrl"].as_str().expect("tenantUrl").ends_with(&format!("/gateway/ng/api/scim/account/{id2}"))
    );
    let token2 = server.cli_json(&["token", "create", "--account", &id2]);
    let token2 = token2["token"].as_str().expect("token").to_owned();
    let base2 = format!("/gateway/ng/api/scim/account/{id2}");

    // Account 2's token on account 1's URLs: 401, whatever the route.
    for (method, path, body) in [
        ("GET", format!("{base1}/Users"), None),
        ("GET", format!("{base1}/Users/{alice}"), None),
        ("GET", format!("{base1}/Users?filter=userName+eq+%22Alice%40one.example%22"), None),
        (
            "PATCH",
            format!("{base1}/Users/{alice}"),
            Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": false}]})),
        ),
        ("DELETE", format!("{base1}/Users/{alice}"), None),
        ("POST", format!("{base1}/Users"), Some(user_body("Mallory@two.example"))),
        ("GET", format!("{base1}/Groups"), None),
        ("GET", format!("{base1}/Groups/One"), None),
    ] {
        let r = server.request(method, &path, &token2, body.as_ref());
        assert_eq!(r.status, 401, "{method} {path} with another account's token: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["status"], "401");
    }
    // And account 1's token on account 2's URLs.
    assert_eq!(server.request("GET", &format!("{base2}/Users"), &boot.token, None).status, 401);

    // Account 2 sees none of account 1's data, and may reuse its userName.
    assert_eq!(total(&server.request("GET", &format!("{base2}/Users"), &token2, None)), 0);
    assert_eq!(
        total(&server.request(
            "GET",
            &format!("{base2}/Users?filter=userName+eq+%22Alice%40one.example%22"),
            &token2,
            None
        )),
        0
    );
    assert_eq!(total(&server.request("GET", &format!("{base2}/Groups"), &token2, None)), 0);
    assert_eq!(server.request("GET", &format!("{base2}/Users/{alice}"), &token2, None).status, 404);
    let r = server.request("POST", &format!("{base2}/Users"), &token2, Some(&user_body("Alice@one.example")));
    assert_eq!(r.status, 201, "userName uniqueness is per account: {}", String::from_utf8_lossy(&r.body));
    // Account 1 is untouched.
    let r = server.request("GET", &format!("{base1}/Users/{alice}"), &boot.token, None);
    assert_eq!((r.status, r.json()["active"].clone()), (200, json!(true)));
    assert_eq!(total(&server.request("GET", &format!("{base1}/Users"), &boot.token, None)), 1);
}

#[test]
fn revoked_token_is_refused() {
    let (server, boot) = Server::start();
    let created = server.cli_json(&["token", "create", "--account", &boot.account]);
    let (token_id, token) =
        (created["id"].as_str().expect("id").to_owned(), created["token"].as_str().expect("token").to_owned());
    assert!(created["expiresAt"].is_string(), "{created}");
    let users = format!("{}/Users", boot.base());
    assert_eq!(server.request("GET", &users, &token, None).status, 200);
    server.cli(&["token", "revoke", "--account", &boot.account, &token_id]);
    let r = server.request("GET", &users, &token, None);
    assert_eq!(r.status, 401, "revoked token: {}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["status"], "401");
    assert_eq!(server.request("GET", &users, &boot.token, None).status, 200, "other tokens stay valid");
}

#[test]
fn firstgen_path_serves_the_same_account() {
    let (server, boot) = Server::start();
    let id = create_user(&server, &boot, "Legacy.Path@example.com");
    let fg = format!("/gateway/api/scim/account/{}", boot.account);
    let r = server.request("GET", &format!("{fg}/Users/{id}"), &boot.token, None);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let (ng, fgu) = (server.request("GET", &format!("{}/Users/{id}", boot.base()), &boot.token, None).json(), r.json());
    assert_eq!((fgu["id"].clone(), fgu["userName"].clone()), (ng["id"].clone(), ng["userName"].clone()));
    let r = server.request(
        "GET",
        &format!("{fg}/Users?filter=userName+eq+%22legacy.path%40example.com%22"),
        &boot.token,
        None,
    );
    assert_eq!(total(&r), 1);
    // A user created through the FirstGen path is visible through NextGen.
    let r = server.request("POST", &format!("{fg}/Users"), &boot.token, Some(&user_body("Second.Path@example.com")));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(total(&server.request("GET", &format!("{}/Users", boot.base()), &boot.token, None)), 2);
}

#[test]
fn concurrent_member_adds_and_removes_lose_nothing() {
    const THREADS: usize = 16;
    const PER_THREAD: usize = 3;
    let (server, boot) = Server::start();
    let base = boot.base();
    let r = server.request(
        "POST",
        &format!("{base}/Groups"),
        &boot.token,
        Some(&json!({"schemas": [CORE_GROUP], "displayName": "Crowd"})),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let gid = r.json()["id"].as_str().unwrap().to_owned();
    let ids: Vec<Vec<String>> = (0..THREADS)
        .map(|t| {
            (0..PER_THREAD).map(|i| create_user(&server, &boot, &format!("worker{t}.member{i}@example.com"))).collect()
        })
        .collect();

    let barrier = Arc::new(Barrier::new(THREADS));
    let statuses: Vec<Vec<(u16, String)>> = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .iter()
            .map(|mine| {
                let (barrier, addr, token, path) =
                    (barrier.clone(), server.addr.clone(), boot.token.clone(), format!("{base}/Groups/{gid}"));
                s.spawn(move || {
                    barrier.wait();
                    // Each client adds its members one PATCH at a time, then
                    // removes its first one again.
                    let adds =
                        mine.iter().map(|uid| json!({"op": "add", "path": "members", "value": [{"value": uid}]}));
                    let remove = json!({"op": "remove", "path": format!("members[value eq \"{}\"]", mine[0])});
                    adds.chain(std::iter::once(remove))
                        .map(|op| {
                            let body = json!({"schemas": [PATCH_OP], "Operations": [op]});
                            let headers = vec![
                                ("Authorization".to_owned(), format!("Bearer {token}")),
                                ("Content-Type".to_owned(), "application/scim+json".to_owned()),
                            ];
                            let r = http::send(&addr, "PATCH", &path, &headers, &serde_json::to_vec(&body).unwrap())
                                .unwrap();
                            (r.status, String::from_utf8_lossy(&r.body).into_owned())
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (status, body) in statuses.iter().flatten() {
        assert_eq!(*status, 204, "concurrent PATCH failed: {body}");
    }
    let group = server.request("GET", &format!("{base}/Groups/{gid}"), &boot.token, None).json();
    let mut got: Vec<String> = group["members"]
        .as_array()
        .map(|m| m.iter().map(|m| m["value"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    got.sort();
    let mut want: Vec<String> = ids.iter().flat_map(|mine| mine[1..].to_vec()).collect();
    want.sort();
    assert_eq!(got, want, "lost or duplicated membership changes");
    // The reverse edges agree: a removed member is in no group.
    let removed = server.request("GET", &format!("{base}/Users/{}", ids[0][0]), &boot.token, None).json();
    assert_eq!(removed.get("groups"), None, "{removed}");
}

#[test]
fn paging_is_complete_and_stable() {
    let (server, boot) = Server::start();
    let base = boot.base();
    let mut want: Vec<String> = (0..7).map(|i| create_user(&server, &boot, &format!("pager{i}@example.com"))).collect();
    want.sort();
    let page = |start: usize| {
        let r = server.request("GET", &format!("{base}/Users?startIndex={start}&count=3"), &boot.token, None);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    };
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut pages = Vec::new();
    for start in [1, 4, 7] {
        let p = page(start);
        assert_eq!(p["totalResults"], json!(7), "page at {start}: {p}");
        assert_eq!(p["startIndex"], json!(start), "page at {start}: {p}");
        let resources = p["Resources"].as_array().expect("Resources").clone();
        assert_eq!(p["itemsPerPage"], json!(resources.len()), "page at {start}: {p}");
        let expected_len = if start < 7 { 3 } else { 1 };
        assert_eq!(resources.len(), expected_len, "page at {start} must hold {expected_len}: {p}");
        for r in &resources {
            *seen.entry(r["id"].as_str().unwrap().to_owned()).or_default() += 1;
        }
        pages.push(resources.iter().map(|r| r["id"].clone()).collect::<Vec<_>>());
    }
    let dupes: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "users on several pages: {dupes:?}");
    assert_eq!(seen.keys().cloned().collect::<Vec<_>>(), want, "pages do not cover every user exactly once");
    // The order is stable: the same page twice gives the same ids in the same order.
    let again: Vec<_> = page(4)["Resources"].as_array().unwrap().iter().map(|r| r["id"].clone()).collect();
    assert_eq!(again, pages[1]);
    // Past the end: an empty page, still with the total.
    let p = page(8);
    assert_eq!((p["totalResults"].clone(), p["Resources"].clone()), (json!(7), json!([])), "{p}");
}

/// An account above every cap of the real store (SQLite, or PostgreSQL in
/// that run of the suite), over HTTP.
#[test]
fn a_large_account_on_the_real_store() {
    let (mut target, vars) = vector_target();
    scimlet_vectors::large::large_tenant(&mut target, &vars);
}
