//! The example application over real HTTP: every request/response vector
//! through its SCIM mount, its own routes beside it, and the binary's
//! first start.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use scimlet_axum_example::{SqliteStorage, app, scimlet};
use scimlet_embed::Scimlet;
use scimlet_vectors::{Target, Vars, VectorRequest, VectorResponse, http, run_policy, vectors_dir};
use serde_json::json;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wasmtime::Engine;
use wasmtime::component::Component;

const ADMIN_TOKEN: &str = "axum-example-admin-token-0123456789";

/// One runtime, engine and compiled component for every test: compiling
/// the component takes seconds, instantiating it microseconds.
fn shared() -> &'static (Runtime, Engine, Component) {
    static SHARED: OnceLock<(Runtime, Engine, Component)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let engine = Engine::new(&scimlet_embed::engine_config()).unwrap();
        let component = Component::new(&engine, scimlet_embed::COMPONENT).unwrap();
        (runtime, engine, component)
    })
}

/// A directory under cargo's temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!("axum-example-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The application serving in this process, on a SQLite file of its own.
struct App {
    dir: TempDir,
    policy: &'static str,
    addr: SocketAddr,
    scim: Scimlet,
    stop: Option<oneshot::Sender<()>>,
    served: Option<JoinHandle<()>>,
}

impl App {
    /// Starts on a free port.
    fn start(policy: &'static str) -> App {
        let dir = TempDir::new();
        let (scim, addr, stop, served) = Self::serve(&dir, policy, SocketAddr::from(([127, 0, 0, 1], 0)));
        App { dir, policy, addr, scim, stop: Some(stop), served: Some(served) }
    }

    /// The application as `main.rs` builds it, with the admin API on.
    fn serve(
        dir: &TempDir,
        policy: &str,
        addr: SocketAddr,
    ) -> (Scimlet, SocketAddr, oneshot::Sender<()>, JoinHandle<()>) {
        let (runtime, engine, component) = shared();
        let storage = SqliteStorage::open(&dir.0.join("app.db")).unwrap();
        let scim = scimlet(engine)
            .component(component.clone())
            .admin_token(ADMIN_TOKEN)
            .policy(policy)
            .build(storage)
            .unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind(addr)).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let router = app(&scim);
        let served = runtime.spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        (scim, addr, stop, served)
    }

    fn send(&self, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> http::Response {
        let mut headers = Vec::new();
        if let Some(token) = token {
            headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
        }
        if !body.is_empty() {
            headers.push(("Content-Type".to_owned(), "application/scim+json".to_owned()));
        }
        http::send(&self.addr.to_string(), method, path, &headers, body).unwrap()
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            shared().0.block_on(served).unwrap();
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        self.shut_down();
    }
}

impl Target for App {
    fn send(&mut self, req: &VectorRequest) -> Result<VectorResponse, String> {
        let resp = http::send(&self.addr.to_string(), &req.method, &req.path, &req.headers, &req.body)?;
        Ok(VectorResponse { status: resp.status, headers: resp.headers, body: resp.body })
    }

    /// A new application on the same database file and port: the SCIM
    /// state lives in SQLite only.
    fn restart(&mut self) -> Result<(), String> {
        self.shut_down();
        let (scim, addr, stop, served) = Self::serve(&self.dir, self.policy, self.addr);
        self.scim = scim;
        self.addr = addr;
        self.stop = Some(stop);
        self.served = Some(served);
        Ok(())
    }
}

/// A fresh application with one account, and the values the vectors'
/// placeholders stand for.
fn vector_app(policy: &'static str) -> (App, Vars) {
    let app = App::start(policy);
    let (account, token) = shared().0.block_on(app.scim.bootstrap("vectors")).unwrap().expect("a new store bootstraps");
    assert_eq!(account.scim_path, format!("/scim/{}/v2", account.id));
    let vars = Vars {
        base: account.scim_path,
        origin: format!("http://{}", app.addr),
        account: account.id,
        token: token.token,
        admin_token: ADMIN_TOKEN.to_owned(),
    };
    (app, vars)
}

fn replay(policy: &'static str) {
    let result = run_policy(&vectors_dir(), policy, |_| {
        let (app, vars) = vector_app(policy);
        Ok((Box::new(app) as Box<dyn Target>, vars))
    });
    if let Err(report) = result {
        panic!("\n{report}");
    }
}

/// Every vector of the product's policy, through the axum application.
#[test]
fn vectors_replay_through_the_axum_app() {
    replay("provisioning");
}

/// The plain-SCIM vectors, through the same application.
#[test]
fn plain_scim_vectors_replay_through_the_axum_app() {
    replay("plain");
}

#[test]
fn the_app_keeps_its_own_routes_and_its_own_404() {
    let (app, vars) = vector_app("provisioning");

    let home = app.send("GET", "/", None, b"");
    assert_eq!(home.status, 200);
    assert!(String::from_utf8_lossy(&home.body).contains("/scim/{account}/v2"));
    let health = app.send("GET", "/health", None, b"");
    assert_eq!((health.status, health.body.as_slice()), (200, &b"ok\n"[..]));

    let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada@example.com"});
    let created = app.send("POST", &format!("{}/Users", vars.base), Some(&vars.token), user.to_string().as_bytes());
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    assert_eq!(
        created.header("location"),
        Some(format!("{}{}/Users/{}", vars.origin, vars.base, created.json()["id"].as_str().unwrap()).as_str())
    );
    let listed = app.send("GET", &format!("{}/Users", vars.base), Some(&vars.token), b"");
    assert_eq!(listed.json()["totalResults"], 1);

    // The runner's tenant paths are not mounted here: the application's
    // router answers them, with its own (empty) 404, not the component.
    let account = &vars.account;
    for outside in [
        format!("/gateway/ng/api/scim/account/{account}/Users"),
        format!("/api/scim/account/{account}/Users"),
        "/scim".to_owned(),
        "/nowhere".to_owned(),
    ] {
        let answer = app.send("GET", &outside, Some(&vars.token), b"");
        assert_eq!((answer.status, answer.body.len()), (404, 0), "{outside}");
        assert_eq!(answer.header("content-type"), None, "{outside}");
    }
    // Under the mount, an unknown path is the component's SCIM 404.
    let unknown = app.send("GET", &format!("{}/Nope", vars.base), Some(&vars.token), b"");
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.header("content-type"), Some("application/scim+json"));
    assert_eq!(unknown.json()["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");

    // The body limit holds before the component runs.
    let huge = vec![b' '; scimlet_embed::MAX_BODY + 1];
    let refused = app.send("POST", &format!("{}/Users", vars.base), Some(&vars.token), &huge);
    assert_eq!(refused.status, 413);
    assert_eq!(refused.json()["detail"], "request body too large");
}

/// The binary as a user starts it: it bootstraps once, prints where SCIM
/// is and the token, serves it, and keeps its state across a restart.
#[test]
fn the_binary_prints_its_tenant_url_once_and_keeps_state() {
    let dir = TempDir::new();
    let db = dir.0.join("example.db");
    let start = || -> (Killed, Vec<String>) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_scimlet-axum-example"))
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(&db)
            .env_remove("SCIMLET_ADMIN_TOKEN")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let child = Killed(child);
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert_ne!(out.read_line(&mut line).unwrap(), 0, "the example exited early: {lines:?}");
            if line.starts_with("Serving") {
                return (child, lines);
            }
            lines.push(line.trim_end().to_owned());
        }
    };
    let value = |lines: &[String], label: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(label))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no {label} in {lines:?}"))
    };

    let (first, lines) = start();
    let origin = value(&lines, "Listening on ");
    let tenant_url = value(&lines, "Tenant URL: ");
    let token = value(&lines, "Token: ");
    let addr = origin.trim_start_matches("http://").to_owned();
    let base = tenant_url.strip_prefix(&origin).expect("the tenant URL is under the origin").to_owned();
    assert!(base.starts_with("/scim/") && base.ends_with("/v2"), "{base}");
    let auth = [("Authorization".to_owned(), format!("Bearer {token}"))];
    let health = http::send(&addr, "GET", "/health", &[], b"").unwrap();
    assert_eq!(health.status, 200);
    let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "kept@example.com"});
    let mut headers = auth.to_vec();
    headers.push(("Content-Type".to_owned(), "application/scim+json".to_owned()));
    let created = http::send(&addr, "POST", &format!("{base}/Users"), &headers, user.to_string().as_bytes()).unwrap();
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    // No admin token given: the admin API is not mounted.
    assert_eq!(http::send(&addr, "GET", "/api/accounts", &auth, b"").unwrap().status, 404);
    drop(first);

    let (_second, lines) = start();
    assert!(!lines.iter().any(|l| l.starts_with("Token:")), "a second start creates no account: {lines:?}");
    let origin = value(&lines, "Listening on ");
    assert_eq!(value(&lines, "Tenant URL: "), format!("{origin}{base}"));
    let addr = origin.trim_start_matches("http://");
    let found =
        http::send(addr, "GET", &format!("{base}/Users?filter=userName%20eq%20%22kept@example.com%22"), &auth, b"")
            .unwrap();
    assert_eq!(found.json()["totalResults"], 1, "the user outlived the process");
}

/// A child process killed when the test lets go of it.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The example's storage passes the project's storage conformance suite,
/// run through the component import it serves SCIM on.
#[test]
fn the_sqlite_storage_passes_the_conformance_suite() {
    let (runtime, engine, _) = shared();
    let dir = TempDir::new();
    let seq = AtomicU32::new(0);
    let report = runtime.block_on(scimlet_embed::conformance::check(engine, || {
        SqliteStorage::open(&dir.0.join(format!("case-{}.db", seq.fetch_add(1, Ordering::Relaxed)))).unwrap()
    }));
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(report.passed.len() >= 14, "{:?}", report.passed);
}

/// The example keeps the SQL layout of `crates/sql-store` (the Spin build's
/// store): what one writes, the other reads, ordering and versions included.
#[test]
fn the_spin_builds_store_reads_the_examples_file_and_back() {
    use scim_core::Store as _;
    use scimlet_embed::Storage as _;
    use scimlet_sql_store::SqlStore;
    use scimlet_sql_store::rusqlite_conn::Rusqlite;

    let (runtime, _, _) = shared();
    let dir = TempDir::new();
    let path = dir.0.join("shared.db");
    let example = SqliteStorage::open(&path).unwrap();
    let put = |key: &str| scimlet_embed::Write {
        key: key.into(),
        value: Some(key.as_bytes().to_vec()),
        precondition: scimlet_embed::Precondition::Absent,
    };
    let v1 = runtime.block_on(example.commit(vec![put("k/\u{10000}"), put("k/\u{E000}"), put("k/a")])).unwrap();

    let spin = SqlStore::new(Rusqlite(rusqlite::Connection::open(&path).unwrap()));
    let page = spin.scan("k/", None, 10).unwrap();
    let keys: Vec<&str> = page.entries.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["k/a", "k/\u{E000}", "k/\u{10000}"]);
    assert!(page.entries.iter().all(|e| e.version == v1 && e.value == e.key.as_bytes()));
    let v2 = spin.commit(vec![scim_core::Write::replace("k/a", b"from spin".to_vec(), v1)]).unwrap();
    assert!(v2 > v1, "one version counter for both");

    let back = runtime.block_on(example.get("k/a")).unwrap().unwrap();
    assert_eq!((back.value.as_slice(), back.version), (&b"from spin"[..], v2));
    let v3 = runtime.block_on(example.commit(vec![put("k/b")])).unwrap();
    assert!(v3 > v2);
}
