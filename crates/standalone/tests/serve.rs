//! The standalone component under plain `wasmtime serve`: every vector
//! over HTTP (both policies, restarts by SIGKILL on the same directory),
//! with a fresh instance for every request (wasmtime's default) and with
//! instances reused (`--max-instance-reuse-count`, where the store keeps
//! what it read between requests); writers in concurrent instances that
//! lose nothing; and a start without a directory that says what is missing.
//!
//! They need the `wasmtime` command (48.x), which a plain `cargo test`
//! cannot assume: they run when `SCIMLET_E2E_WASMTIME=1`, as `scripts/test`
//! sets after installing it, and then fail on anything missing instead of
//! passing quietly. `SCIMLET_WASMTIME` names the binary (default: `wasmtime`
//! on `PATH`).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use scimlet_vectors::process::{self, Process, TempDir};
use scimlet_vectors::{Target, Vars, VectorRequest, VectorResponse, http, run_all, run_policy, vectors_dir};
use serde_json::{Value, json};

const ADMIN_TOKEN: &str = "wasmtime-admin-token-0123456789abcdef";

/// In a server's environment: start it with instances reused.
const REUSE: (&str, &str) = ("SCIMLET_TEST_REUSE", "1");

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

/// `wasmtime serve` on the standalone component with `dir/data` as `/data`.
struct Serve {
    process: Process,
    addr: String,
    env: Vec<(String, String)>,
    dir: TempDir,
    with_data: bool,
}

/// Starts the server and waits for wasmtime's `Serving HTTP on` line.
fn spawn(dir: &TempDir, listen: &str, env: &[(String, String)], with_data: bool) -> Result<(Process, String), String> {
    let wasm = dir.0.join("scimlet-standalone.wasm");
    if !wasm.exists() {
        std::fs::write(&wasm, scimlet_standalone::COMPONENT).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(dir.0.join("data")).map_err(|e| e.to_string())?;
    }
    let wasmtime = std::env::var("SCIMLET_WASMTIME").unwrap_or_else(|_| "wasmtime".to_owned());
    let mut command = Command::new(&wasmtime);
    command.args(["serve", "-Scli", "--addr", listen]);
    if env.iter().any(|(k, _)| k == REUSE.0) {
        command.arg("--max-instance-reuse-count=1000");
    }
    if with_data {
        command.arg("--dir").arg(format!("{}::/data", dir.0.join("data").display()));
    }
    for (k, v) in env.iter().filter(|(k, _)| k != REUSE.0) {
        command.arg("--env").arg(format!("{k}={v}"));
    }
    command.arg(&wasm);
    Process::start(&mut command, Duration::from_secs(60), |line| {
        line.strip_prefix("Serving HTTP on http://").map(|addr| addr.trim_end_matches('/').to_owned())
    })
    .map_err(|e| format!("{e}\n(is wasmtime-cli 48 installed? SCIMLET_WASMTIME names the binary)"))
}

impl Serve {
    fn start(env: &[(&str, &str)]) -> Serve {
        Serve::start_in(env, true)
    }

    /// A server on a directory of its own, `with_data` given to it as
    /// `/data`. With [`REUSE`] in `env` (a switch of this test's, not
    /// passed on), instances serve up to 1,000 requests each.
    fn start_in(env: &[(&str, &str)], with_data: bool) -> Serve {
        let dir = TempDir::new(Path::new(env!("CARGO_TARGET_TMPDIR")), "serve");
        let env: Vec<(String, String)> = [("SCIMLET_ADMIN_TOKEN", ADMIN_TOKEN)]
            .iter()
            .chain(env)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let (process, addr) = spawn(&dir, "127.0.0.1:0", &env, with_data).unwrap_or_else(|e| panic!("{e}"));
        Serve { process, addr, env, dir, with_data }
    }

    fn log(&self) -> String {
        self.process.log()
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

    /// Kills the server and starts it again on the same directory and port.
    fn restart(&mut self) -> Result<(), String> {
        self.process.kill();
        let (mut process, _) = process::restart(|| spawn(&self.dir, &self.addr, &self.env, self.with_data))
            .map_err(|e| format!("could not restart on {}: {e}", self.addr))?;
        process.continues(&self.process);
        self.process = process;
        Ok(())
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
        let log = self.serve.process.stop_and_read_log();
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
fn wasmtime_serve_replays_every_vector_with_instances_reused() {
    if !enabled() {
        return;
    }
    let result = run_all(&vectors_dir(), |_| {
        let (target, vars) = target(&[REUSE]);
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

/// Instances run at once, sharing only the directory: creates of distinct
/// users and PATCHes adding members to one group, from eight clients, must
/// all land, with fresh instances and with reused ones (which each keep
/// their own copy of what they read).
#[test]
fn concurrent_instances_lose_no_write() {
    if !enabled() {
        return;
    }
    concurrent_writers(&[]);
    concurrent_writers(&[REUSE]);
}

fn concurrent_writers(env: &[(&str, &str)]) {
    const CLIENTS: usize = 8;
    const EACH: usize = 6;
    let mut serve = Serve::start(env);
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
    let serve = Serve::start_in(&[], false);
    let r = serve.send("POST", "/api/accounts", ADMIN_TOKEN, Some(json!({"name": "default"})));
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/scim+json"));
    assert_eq!(r.json()["status"], "503");
    std::thread::sleep(Duration::from_millis(100));
    let log = serve.log();
    assert!(log.contains("wasmtime serve --dir ./scimlet-data::/data"), "{log}");
}
