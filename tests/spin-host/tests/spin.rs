//! The Spin build of scimlet on the test host: every vector of `tests/vectors`
//! (restarts included), the storage contract's suite on the SQL store over
//! real SQLite, and concurrent membership changes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use scim_core::{Store, StoreError, Write};
use scimlet_spin_host::sql::{self, Rusqlite};
use scimlet_spin_host::sql_store::{SqlStore, prefix_upper_bound};
use scimlet_spin_host::{Answer, Kind, SPIN_COMPONENT, SpinHost, engine, request};
use scimlet_vectors::{Target, Vars, VectorRequest, VectorResponse, run_policy, vectors_dir};
use serde_json::{Value, json};
use wasmtime::Engine;
use wasmtime::component::Component;

const ORIGIN: &str = "http://spin.test";
const ADMIN_TOKEN: &str = "admin-secret-0123456789abcdef";

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "scimlet-spin-host-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The engine and the component, compiled once per test process.
fn compiled() -> &'static (Engine, Component) {
    static COMPILED: OnceLock<(Engine, Component)> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let engine = engine().expect("engine");
        let component = Component::new(&engine, SPIN_COMPONENT).expect("compile the Spin component");
        (engine, component)
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().expect("tokio runtime")
    })
}

fn variables() -> HashMap<String, String> {
    HashMap::from([("admin_token".to_owned(), ADMIN_TOKEN.to_owned())])
}

/// A Spin application on a fresh SQLite file.
struct App {
    host: Arc<SpinHost>,
    db: PathBuf,
    variables: HashMap<String, String>,
    _dir: TempDir,
}

impl App {
    fn start() -> App {
        Self::start_with(variables())
    }

    fn start_with(variables: HashMap<String, String>) -> App {
        let dir = TempDir::new();
        let db = dir.path().join("sqlite_db.db");
        App { host: Arc::new(Self::link(&db, &variables)), db, variables, _dir: dir }
    }

    fn link(db: &Path, variables: &HashMap<String, String>) -> SpinHost {
        let (engine, component) = compiled();
        SpinHost::new(engine, component, Kind::Spin, db, variables.clone()).expect("link the Spin component")
    }

    /// As `spin up` stopped and started again on the same database.
    fn restart(&mut self) {
        self.host = Arc::new(Self::link(&self.db, &self.variables));
    }

    fn send(&self, method: &str, path: &str, headers: &[(String, String)], body: Vec<u8>) -> Answer {
        let req = request(ORIGIN, method, path, headers, body).expect("request");
        runtime().block_on(self.host.handle(req)).expect("component answered")
    }

    fn json(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let mut headers = vec![("authorization".to_owned(), format!("Bearer {token}"))];
        let body = match body {
            Some(b) => {
                headers.push(("content-type".to_owned(), "application/scim+json".to_owned()));
                serde_json::to_vec(&b).unwrap()
            }
            None => Vec::new(),
        };
        let answer = self.send(method, path, &headers, body);
        let value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        (answer.status, value)
    }

    /// The first account and its SCIM token, made through the admin API
    /// as an operator of a Spin deployment does: (account id, SCIM base
    /// path, token).
    fn bootstrap(&self) -> (String, String, String) {
        let (status, account) = self.json("POST", "/api/accounts", ADMIN_TOKEN, Some(json!({"name": "default"})));
        assert_eq!(status, 201, "create account: {account}");
        let id = account["id"].as_str().expect("account id").to_owned();
        let (status, token) =
            self.json("POST", &format!("/api/accounts/{id}/tokens"), ADMIN_TOKEN, Some(json!({"name": "idp"})));
        assert_eq!(status, 201, "create token: {token}");
        let base = account["scimPath"].as_str().expect("scimPath").to_owned();
        (id, base, token["token"].as_str().unwrap().to_owned())
    }
}

struct SpinTarget(App);

impl Target for SpinTarget {
    fn send(&mut self, req: &VectorRequest) -> Result<VectorResponse, String> {
        let req = request(ORIGIN, &req.method, &req.path, &req.headers, req.body.clone()).map_err(|e| e.to_string())?;
        let answer = runtime().block_on(self.0.host.handle(req)).map_err(|e| format!("{e:#}"))?;
        Ok(VectorResponse { status: answer.status, headers: answer.headers, body: answer.body })
    }

    fn restart(&mut self) -> Result<(), String> {
        self.0.restart();
        Ok(())
    }
}

/// Replays the scenarios of `policy` on a fresh application each, made with
/// these variables, and checks the tenant path its account reports.
fn replay(policy: &str, variables: HashMap<String, String>, base_of: fn(&str) -> String) {
    let result = run_policy(&vectors_dir(), policy, |_| {
        let app = App::start_with(variables.clone());
        let (account, base, token) = app.bootstrap();
        assert_eq!(base, base_of(&account));
        let vars = Vars { base, origin: ORIGIN.to_owned(), account, token, admin_token: ADMIN_TOKEN.to_owned() };
        Ok((Box::new(SpinTarget(app)) as Box<dyn Target>, vars))
    });
    match result {
        Ok(n) => assert!(n > 0, "no scenario found"),
        Err(report) => panic!("\n{report}"),
    }
}

#[test]
fn vectors_replay_on_the_spin_component() {
    replay("provisioning", variables(), |account| format!("/gateway/ng/api/scim/account/{account}"));
}

/// The plain-SCIM policy's scenarios, with the `policy` and `base_paths`
/// variables set as an operator sets them in `spin.toml`.
#[test]
fn plain_scim_vectors_replay_on_the_spin_component() {
    let mut variables = variables();
    variables.insert("policy".into(), "plain".into());
    variables.insert("base_paths".into(), "/tenants/{account}/scim/v2".into());
    replay("plain", variables, |account| format!("/tenants/{account}/scim/v2"));
}

/// A policy the core does not know is the operator's mistake, named in
/// every answer, and nothing is served.
#[test]
fn an_unknown_policy_variable_is_named_in_every_answer() {
    let mut variables = variables();
    variables.insert("policy".into(), "rfc".into());
    let app = App::start_with(variables);
    let (status, body) = app.json("GET", "/api/scim/account/a/Users", "t", None);
    assert_eq!(status, 500);
    assert_eq!(
        body["detail"],
        "host configuration refused: SCIMLET_POLICY \"rfc\" names no policy; known: provisioning (default), plain"
    );
}

#[test]
fn admin_api_follows_the_admin_token_variable() {
    let mut app = App::start();
    let (status, body) = app.json("POST", "/api/accounts", "wrong-token-0123456789", Some(json!({"name": "x"})));
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let (account, base, token) = app.bootstrap();
    // The data and the admin API's view of it survive a restart.
    app.restart();
    let (status, body) = app.json("GET", &format!("{base}/Users"), &token, None);
    assert_eq!(status, 200, "{body}");
    let (status, list) = app.json("GET", "/api/accounts", ADMIN_TOKEN, None);
    assert_eq!((status, list["items"][0]["id"].as_str()), (200, Some(account.as_str())));
    let (_, audit) = app.json("GET", &format!("/api/accounts/{account}/audit"), ADMIN_TOKEN, None);
    assert_eq!(audit["items"][0]["operation"], "token.create");

    // Without the variable the admin API is off; SCIM is unaffected.
    let (engine, component) = compiled();
    let host = SpinHost::new(engine, component, Kind::Spin, &app.db, HashMap::new()).unwrap();
    let req = request(
        ORIGIN,
        "GET",
        "/api/accounts",
        &[("authorization".to_owned(), format!("Bearer {ADMIN_TOKEN}"))],
        Vec::new(),
    )
    .unwrap();
    assert_eq!(runtime().block_on(host.handle(req)).unwrap().status, 403);
}

#[test]
fn concurrent_member_adds_and_removes_lose_nothing() {
    const TASKS: usize = 16;
    const PER_TASK: usize = 3;
    let app = App::start();
    let (_, base, token) = app.bootstrap();
    let (status, group) = app.json(
        "POST",
        &format!("{base}/Groups"),
        &token,
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Crowd"})),
    );
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().unwrap().to_owned();
    let ids: Vec<Vec<String>> = (0..TASKS)
        .map(|t| {
            (0..PER_TASK)
                .map(|i| {
                    let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                      "userName": format!("worker{t}.member{i}@example.com")});
                    let (status, body) = app.json("POST", &format!("{base}/Users"), &token, Some(user));
                    assert_eq!(status, 201, "{body}");
                    body["id"].as_str().unwrap().to_owned()
                })
                .collect()
        })
        .collect();

    // All tasks start together on a multi-threaded runtime: instances run at
    // once, each with its own SQLite connection, as under `spin up`.
    let path = format!("{base}/Groups/{gid}");
    let statuses: Vec<(u16, String)> = runtime().block_on(async {
        let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
        let tasks: Vec<_> = ids
            .iter()
            .cloned()
            .map(|mine| {
                let (host, barrier, path, token) =
                    (Arc::clone(&app.host), Arc::clone(&barrier), path.clone(), token.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let mut out = Vec::new();
                    // Add each member one PATCH at a time, then remove the first again.
                    let mut ops: Vec<serde_json::Value> = mine
                        .iter()
                        .map(|uid| json!({"op": "add", "path": "members", "value": [{"value": uid}]}))
                        .collect();
                    ops.push(json!({"op": "remove", "path": format!("members[value eq \"{}\"]", mine[0])}));
                    for op in ops {
                        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                          "Operations": [op]});
                        let headers = vec![
                            ("authorization".to_owned(), format!("Bearer {token}")),
                            ("content-type".to_owned(), "application/scim+json".to_owned()),
                        ];
                        let req =
                            request(ORIGIN, "PATCH", &path, &headers, serde_json::to_vec(&body).unwrap()).unwrap();
                        let answer = host.handle(req).await.expect("component answered");
                        out.push((answer.status, String::from_utf8_lossy(&answer.body).into_owned()));
                    }
                    out
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    });
    for (status, body) in &statuses {
        assert_eq!(*status, 204, "concurrent PATCH failed: {body}");
    }
    let (status, group) = app.json("GET", &path, &token, None);
    assert_eq!(status, 200);
    let mut got: Vec<String> = group["members"]
        .as_array()
        .map(|m| m.iter().map(|m| m["value"].as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    got.sort();
    let mut want: Vec<String> = ids.iter().flat_map(|mine| mine[1..].to_vec()).collect();
    want.sort();
    assert_eq!(got, want, "lost or duplicated membership changes");
}

// ------------------------------------------------- storage contract (SqlStore)

fn store(dir: &TempDir) -> SqlStore<Rusqlite> {
    let conn = sql::open(&dir.path().join("contract.db")).unwrap();
    // Two instances on one database wait for each other's write lock, as
    // Spin's SQLite does.
    conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    SqlStore::new(Rusqlite(conn))
}

/// One database file; each handle is a connection of its own, as each
/// Spin instance has. A connection is used by one thread at a time.
struct SqlFile(TempDir);

struct Connection(std::sync::Mutex<SqlStore<Rusqlite>>);

impl Connection {
    fn store(&self) -> std::sync::MutexGuard<'_, SqlStore<Rusqlite>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for Connection {
    fn get(&self, key: &str) -> Result<Option<scim_core::Entry>, StoreError> {
        self.store().get(key)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<scim_core::Entry>>, StoreError> {
        self.store().get_many(keys)
    }
    fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<scim_core::ScanPage, StoreError> {
        self.store().scan(prefix, after, limit)
    }
    fn commit(&self, writes: Vec<Write>) -> Result<u64, StoreError> {
        self.store().commit(writes)
    }
    fn limits(&self) -> scim_core::Limits {
        self.store().limits()
    }
}

impl scimlet_storage_conformance::Subject for SqlFile {
    fn open(&self) -> scimlet_storage_conformance::Handle {
        Arc::new(Connection(std::sync::Mutex::new(store(&self.0))))
    }
}

mod contract {
    scimlet_storage_conformance::conformance_tests!(Some(super::SqlFile(super::TempDir::new())));
}

#[test]
fn fresh_database_reads_empty() {
    let dir = TempDir::new();
    let s = store(&dir);
    assert_eq!(s.get("a").unwrap(), None);
    assert_eq!(s.get_many(&["a".into(), "b".into()]).unwrap(), vec![None, None]);
    assert_eq!(s.scan("", None, 10).unwrap(), scim_core::ScanPage::default());
}

#[test]
fn prefix_upper_bounds_are_tight() {
    assert_eq!(prefix_upper_bound("abc").as_deref(), Some("abd"));
    assert_eq!(prefix_upper_bound("a\u{7f}").as_deref(), Some("a\u{80}"));
    assert_eq!(prefix_upper_bound("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
    assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
    assert_eq!(prefix_upper_bound("\u{10FFFF}\u{10FFFF}"), None);
    assert_eq!(prefix_upper_bound(""), None);
}

/// An account above every cap of the Spin SQL store (1,000 rows a scan,
/// 10,000 writes a commit), on the Spin component.
#[test]
fn a_large_account_on_the_spin_component() {
    let app = App::start();
    let (account, base, token) = app.bootstrap();
    let vars = Vars { base, origin: ORIGIN.to_owned(), account, token, admin_token: ADMIN_TOKEN.to_owned() };
    scimlet_vectors::large::large_tenant(&mut SpinTarget(app), &vars);
}
