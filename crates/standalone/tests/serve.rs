//! The standalone component under plain `wasmtime serve`: every vector
//! over HTTP (both policies, restarts by SIGKILL on the same directory),
//! writers in concurrent instances that lose nothing, and a start without
//! a directory that says what is missing.
//!
//! They need the `wasmtime` command (48.x), which a plain `cargo test`
//! cannot assume: they run when `SCIMLET_E2E_WASMTIME=1`, as `scripts/test`
//! sets after installing it, and then fail on anything missing instead of
//! passing quietly. `SCIMLET_WASMTIME` names the binary (default: `wasmtime`
//! on `PATH`).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scimlet_vectors::{Target, Vars, VectorRequest, VectorResponse, http, run_all, run_policy, vectors_dir};
use serde_json::{Value, json};

const ADMIN_TOKEN: &str = "wasmtime-admin-token-0123456789abcdef";

fn enabled() -> bool {
    match std::env::var("SCIMLET_E2E_WASMTIME").as_deref() {
        Ok("1") => true,
        Ok("") | Err(_) => {
            eprintln!("SCIMLET_E2E_WASMTIME is not 1: `wasmtime serve` is not tested (scripts/test tests it)");
            false
        }
        Ok(other) => panic!("SCIMLET_E2E_WASMTIME={other:?}: expected 1 or nothing"),
    }
}

/// A directory under cargo's target tmpdir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "serve-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `wasmtime serve` on the standalone component with `dir/data` as `/data`.
struct Serve {
    child: Option<Child>,
    stderr: Arc<Mutex<Vec<String>>>,
    addr: String,
    env: Vec<(String, String)>,
    dir: TempDir,
    with_data: bool,
}

/// Starts the server and waits for wasmtime's `Serving HTTP on` line.
fn spawn(dir: &TempDir, listen: &str, env: &[(String, String)], with_data: bool) -> Result<Started, String> {
    let wasm = dir.0.join("scimlet-standalone.wasm");
    if !wasm.exists() {
        std::fs::write(&wasm, scimlet_standalone::COMPONENT).map_err(|e| e.to_string())?;
    }
    let wasmtime = std::env::var("SCIMLET_WASMTIME").unwrap_or_else(|_| "wasmtime".to_owned());
    let mut command = Command::new(&wasmtime);
    command.args(["serve", "-Scli", "--addr", listen]);
    if with_data {
        command.arg("--dir").arg(format!("{}::/data", dir.0.join("data").display()));
    }
    for (k, v) in env {
        command.arg("--env").arg(format!("{k}={v}"));
    }
    command.arg(&wasm).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| format!("cannot run {wasmtime}: {e} (is wasmtime-cli installed?)"))?;

    let (tx, lines): (_, Receiver<String>) = channel();
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let pipe = child.stderr.take().expect("piped stderr");
    let sink = Arc::clone(&stderr);
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line.clone());
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                if let Some(addr) = line.strip_prefix("Serving HTTP on http://") {
                    return Ok(Started { child, stderr, addr: addr.trim_end_matches('/').to_owned() });
                }
            }
            Err(_) => {
                let exited = child.try_wait().ok().flatten();
                if exited.is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    std::thread::sleep(Duration::from_millis(50));
                    let log = stderr.lock().unwrap().join("\n");
                    return Err(format!("wasmtime serve did not start ({exited:?}):\n{log}"));
                }
            }
        }
    }
}

struct Started {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
    addr: String,
}

impl Serve {
    fn start(env: &[(&str, &str)]) -> Serve {
        Serve::start_in(TempDir::new(), env, true)
    }

    fn start_in(dir: TempDir, env: &[(&str, &str)], with_data: bool) -> Serve {
        let env: Vec<(String, String)> = [("SCIMLET_ADMIN_TOKEN", ADMIN_TOKEN)]
            .iter()
            .chain(env)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let started = spawn(&dir, "127.0.0.1:0", &env, with_data).unwrap_or_else(|e| panic!("{e}"));
        Serve { child: Some(started.child), stderr: started.stderr, addr: started.addr, env, dir, with_data }
    }

    fn log(&self) -> String {
        self.stderr.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    fn send(&self, method: &str, path: &str, bearer: &str, body: Option<Value>) -> http::Response {
        let mut headers = vec![("Authorization".to_owned(), format!("Bearer {bearer}"))];
        if body.is_some() {
            headers.push(("Content-Type".to_owned(), "application/scim+json".to_owned()));
        }
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        http::send(&self.addr, method, path, &headers, &body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\nstderr:\n{}", self.log()))
    }

    /// An account and a SCIM token, made through the admin API (the only
    /// way in under `wasmtime serve`, as on Spin).
    fn bootstrap(&self) -> Vars {
        let r = self.send("POST", "/api/accounts", ADMIN_TOKEN, Some(json!({"name": "default"})));
        assert_eq!(r.status, 201, "create account: {}\nstderr:\n{}", String::from_utf8_lossy(&r.body), self.log());
        let account = r.json();
        let id = account["id"].as_str().unwrap().to_owned();
        let r = self.send("POST", &format!("/api/accounts/{id}/tokens"), ADMIN_TOKEN, Some(json!({"name": "idp"})));
        assert_eq!(r.status, 201, "create token: {}", String::from_utf8_lossy(&r.body));
        Vars {
            base: account["scimPath"].as_str().unwrap().to_owned(),
            origin: format!("http://{}", self.addr),
            account: id,
            token: r.json()["token"].as_str().unwrap().to_owned(),
            admin_token: ADMIN_TOKEN.to_owned(),
        }
    }

    /// SIGKILL, no goodbye: what was acknowledged must be on disk.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same directory and port.
    fn restart(&mut self) -> Result<(), String> {
        self.kill();
        let mut last = String::new();
        for _ in 0..40 {
            match spawn(&self.dir, &self.addr, &self.env, self.with_data) {
                Ok(started) => {
                    let earlier = std::mem::take(&mut *self.stderr.lock().unwrap());
                    started.stderr.lock().unwrap().splice(0..0, earlier);
                    self.child = Some(started.child);
                    self.stderr = started.stderr;
                    return Ok(());
                }
                Err(e) => last = e, // the port may still be held for a moment
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(format!("could not restart on {}: {last}", self.addr))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Replays a scenario against one server; its log must show nothing a
/// request sent.
struct ServeTarget {
    serve: Serve,
    account: String,
    secrets: BTreeSet<String>,
}

impl Target for ServeTarget {
    fn send(&mut self, req: &VectorRequest) -> Result<VectorResponse, String> {
        self.secrets.extend(http::secrets_of(req, &self.account));
        let resp = http::send(&self.serve.addr, &req.method, &req.path, &req.headers, &req.body)
            .map_err(|e| format!("{e}\nwasmtime stderr:\n{}", self.serve.log()))?;
        Ok(VectorResponse { status: resp.status, headers: resp.headers, body: resp.body })
    }

    fn restart(&mut self) -> Result<(), String> {
        self.serve.restart()
    }
}

impl Drop for ServeTarget {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        self.serve.kill();
        std::thread::sleep(Duration::from_millis(50));
        let log = self.serve.log();
        let leaked: Vec<&String> = self.secrets.iter().filter(|s| log.contains(s.as_str())).collect();
        assert!(leaked.is_empty(), "the log shows what a request sent: {leaked:?}\nlog:\n{log}");
    }
}

fn target(env: &[(&str, &str)]) -> (ServeTarget, Vars) {
    let serve = Serve::start(env);
    let vars = serve.bootstrap();
    (ServeTarget { serve, account: vars.account.clone(), secrets: BTreeSet::new() }, vars)
}

#[test]
fn wasmtime_serve_replays_every_vector() {
    if !enabled() {
        return;
    }
    let result = run_all(&vectors_dir(), |_| {
        let (target, vars) = target(&[]);
        Ok((Box::new(target) as Box<dyn Target>, vars))
    });
    if let Err(report) = result {
        panic!("\n{report}");
    }
}

#[test]
fn wasmtime_serve_replays_the_plain_scim_vectors() {
    if !enabled() {
        return;
    }
    let result = run_policy(&vectors_dir(), "plain", |_| {
        let (target, vars) =
            target(&[("SCIMLET_POLICY", "plain"), ("SCIMLET_BASE_PATHS", "/tenants/{account}/scim/v2")]);
        assert!(vars.base.starts_with("/tenants/") && vars.base.ends_with("/scim/v2"), "tenant URL {}", vars.base);
        Ok((Box::new(target) as Box<dyn Target>, vars))
    });
    if let Err(report) = result {
        panic!("\n{report}");
    }
}

/// Every request is an instance of its own, several at once, sharing only
/// the directory: creates of distinct users and PATCHes adding members to
/// one group, from eight clients, must all land.
#[test]
fn concurrent_instances_lose_no_write() {
    if !enabled() {
        return;
    }
    const CLIENTS: usize = 8;
    const EACH: usize = 6;
    let mut serve = Serve::start(&[]);
    let vars = serve.bootstrap();
    let group = serve.send(
        "POST",
        &format!("{}/Groups", vars.base),
        &vars.token,
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "all"})),
    );
    assert_eq!(group.status, 201, "{}", String::from_utf8_lossy(&group.body));
    let group_id = group.json()["id"].as_str().unwrap().to_owned();

    let serve_ref = &serve;
    let statuses: Vec<(u16, u16)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (vars, group_id) = (&vars, &group_id);
                scope.spawn(move || {
                    (0..EACH)
                        .map(|i| {
                            let name = format!("user-{c}-{i}@example.com");
                            let user = serve_ref.send(
                                "POST",
                                &format!("{}/Users", vars.base),
                                &vars.token,
                                Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "active": true})),
                            );
                            let id = user.json()["id"].as_str().unwrap_or_default().to_owned();
                            let patch = serve_ref.send(
                                "PATCH",
                                &format!("{}/Groups/{group_id}", vars.base),
                                &vars.token,
                                Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                    "Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]})),
                            );
                            (user.status, patch.status)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    assert!(statuses.iter().all(|&(u, p)| u == 201 && (p == 200 || p == 204)), "{statuses:?}\n{}", serve.log());

    // After a SIGKILL, from the disk: every user, every member.
    serve.restart().unwrap();
    let users = serve.send("GET", &format!("{}/Users?count=1", vars.base), &vars.token, None).json();
    assert_eq!(users["totalResults"], CLIENTS * EACH);
    let group = serve.send("GET", &format!("{}/Groups/{group_id}", vars.base), &vars.token, None).json();
    assert_eq!(group["members"].as_array().map(Vec::len), Some(CLIENTS * EACH), "{group}");
}

/// Without `--dir` every request that needs storage is a SCIM 503, and
/// wasmtime's log says what to add.
#[test]
fn without_a_directory_requests_are_503_and_the_log_says_why() {
    if !enabled() {
        return;
    }
    let serve = Serve::start_in(TempDir::new(), &[], false);
    let r = serve.send("POST", "/api/accounts", ADMIN_TOKEN, Some(json!({"name": "default"})));
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    assert_eq!(r.json()["status"], "503");
    std::thread::sleep(Duration::from_millis(100));
    let log = serve.log();
    assert!(log.contains("wasmtime serve --dir ./scimlet-data::/data"), "{log}");
}
