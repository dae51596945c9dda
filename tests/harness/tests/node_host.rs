//! The Node.js host (`examples/node`): the same component, transpiled by
//! jco, with its storage in JavaScript on a SQLite file, must give every
//! vector the answers the runner gives.
//!
//! It needs Node.js and the example built (`npm ci` and `npm run build` in
//! `examples/node`), which a plain `cargo test` cannot assume: the tests run
//! when `SCIMLET_E2E_NODE=1`, as `scripts/test` sets after building the
//! example, and then fail on anything missing instead of passing quietly.
//! They live here rather than in `tests/e2e` because they need no part of
//! the runner (nor wasmtime) built.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use scimlet_vectors::process::{self, Process};
use scimlet_vectors::{Target, Vars, VectorRequest, VectorResponse, http, run_all, run_policy, vectors_dir};

/// The admin API token every server here is started with.
const ADMIN_TOKEN: &str = "node-admin-token-0123456789abcdef";

fn temp_dir() -> process::TempDir {
    process::TempDir::new(Path::new(env!("CARGO_TARGET_TMPDIR")), "node")
}

fn enabled() -> bool {
    match std::env::var("SCIMLET_E2E_NODE").as_deref() {
        Ok("1") => true,
        Ok("") | Err(_) => {
            eprintln!("SCIMLET_E2E_NODE is not 1: the Node.js host is not tested (scripts/test tests it)");
            false
        }
        Ok(other) => panic!("SCIMLET_E2E_NODE={other:?}: expected 1 or nothing"),
    }
}

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/node")
}

/// `node examples/node/server.js` on a SQLite file that outlives restarts.
struct NodeServer {
    process: Process,
    addr: String,
    env: Vec<(String, String)>,
    db: PathBuf,
    _dir: process::TempDir,
}

/// Starts the server and waits for its `scimlet listening on` line.
fn spawn(db: &Path, listen: &str, env: &[(String, String)]) -> Result<(Process, String), String> {
    let example = example_dir();
    let node = std::env::var("SCIMLET_NODE").unwrap_or_else(|_| "node".to_owned());
    let mut command = Command::new(&node);
    command
        .arg(example.join("server.js"))
        .args(["--listen", listen, "--db"])
        .arg(db)
        .current_dir(&example)
        .env_clear()
        .envs(std::env::var_os("PATH").map(|p| ("PATH", p)))
        .envs(env.iter().map(|(k, v)| (k, v)));
    Process::start(&mut command, Duration::from_secs(30), |line| {
        line.strip_prefix("scimlet listening on http://").map(|origin| origin.trim().to_owned())
    })
    .map_err(|e| format!("{e}\n(is Node.js installed?)"))
}

impl NodeServer {
    /// A server on a fresh database, and the account it bootstrapped.
    fn start(env: &[(&str, &str)]) -> (NodeServer, Vars) {
        let dir = temp_dir();
        let db = dir.0.join("scimlet.db");
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let (process, addr) = spawn(&db, "127.0.0.1:0", &env).unwrap_or_else(|e| panic!("{e}"));
        let server = NodeServer { process, addr, env, db, _dir: dir };
        let vars = server.read_bootstrap();
        (server, vars)
    }

    fn read_bootstrap(&self) -> Vars {
        let (mut account, mut tenant_url, mut token) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        while account.is_none() || tenant_url.is_none() || token.is_none() {
            let line = self
                .process
                .next_line(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|e| panic!("no bootstrap account/token on stdout ({e:?}); stderr:\n{}", self.log()));
            if let Some(rest) = line.strip_prefix("Created account ") {
                account = rest.rsplit_once('(').and_then(|(_, id)| id.strip_suffix(')')).map(str::to_owned);
            } else if let Some(url) = line.strip_prefix("Tenant URL:") {
                tenant_url = Some(url.trim().to_owned());
            } else if let Some(t) = line.strip_prefix("Token:") {
                token = Some(t.trim().to_owned());
            }
        }
        let (origin, base) = http::split_url(&tenant_url.unwrap());
        assert_eq!(origin, format!("http://{}", self.addr), "tenant URL origin vs listening address");
        let account = account.unwrap();
        assert!(base.split('/').any(|s| s == account), "tenant path {base} does not name the account {account}");
        Vars { base, origin, account, token: token.unwrap(), admin_token: ADMIN_TOKEN.to_owned() }
    }

    fn log(&self) -> String {
        self.process.log()
    }

    /// Kills the process and starts it again on the same file and port; it
    /// must not bootstrap a second account.
    fn restart(&mut self) -> Result<(), String> {
        self.process.kill();
        let (mut process, _) = process::restart(|| spawn(&self.db, &self.addr, &self.env))
            .map_err(|e| format!("could not restart on {}: {e}", self.addr))?;
        process.continues(&self.process);
        self.process = process;
        // The bootstrap lines would follow the listening line at once.
        let again: Vec<String> =
            std::iter::from_fn(|| self.process.next_line(Duration::from_millis(100)).ok()).collect();
        if again.iter().any(|l| l.starts_with("Token:") || l.starts_with("Created account")) {
            return Err(format!("a restart on an existing database bootstrapped again: {again:?}"));
        }
        Ok(())
    }
}

/// Replays a scenario against one `server.js`; afterwards its log must
/// hold a line per request and nothing a request sent.
struct NodeTarget {
    server: NodeServer,
    account: String,
    secrets: std::collections::BTreeSet<String>,
}

impl Target for NodeTarget {
    fn send(&mut self, req: &VectorRequest) -> Result<VectorResponse, String> {
        self.secrets.extend(http::secrets_of(req, &self.account));
        let resp = http::send(&self.server.addr, &req.method, &req.path, &req.headers, &req.body)
            .map_err(|e| format!("{e}\nserver.js stderr:\n{}", self.server.log()))?;
        Ok(VectorResponse { status: resp.status, headers: resp.headers, body: resp.body })
    }

    fn restart(&mut self) -> Result<(), String> {
        self.server.restart()
    }
}

impl Drop for NodeTarget {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let log = self.server.process.stop_and_read_log();
        assert!(log.contains(" INFO request "), "no request line in the log:\n{log}");
        let leaked: Vec<&String> = self.secrets.iter().filter(|s| log.contains(s.as_str())).collect();
        assert!(leaked.is_empty(), "server.js logged what a request sent: {leaked:?}\nlog:\n{log}");
    }
}

fn node_target(env: &[(&str, &str)]) -> (NodeTarget, Vars) {
    let env: Vec<(&str, &str)> =
        [("SCIMLET_ADMIN_TOKEN", ADMIN_TOKEN)].into_iter().chain(env.iter().copied()).collect();
    let (server, vars) = NodeServer::start(&env);
    (NodeTarget { server, account: vars.account.clone(), secrets: Default::default() }, vars)
}

#[test]
fn node_host_replays_every_vector() {
    if !enabled() {
        return;
    }
    let result = run_all(&vectors_dir(), |_| {
        let (target, vars) = node_target(&[]);
        Ok((Box::new(target) as Box<dyn Target>, vars))
    });
    if let Err(report) = result {
        panic!("\n{report}");
    }
}

#[test]
fn node_host_replays_the_plain_scim_vectors() {
    if !enabled() {
        return;
    }
    let result = run_policy(&vectors_dir(), "plain", |_| {
        let (target, vars) =
            node_target(&[("SCIMLET_POLICY", "plain"), ("SCIMLET_BASE_PATHS", "/tenants/{account}/scim/v2")]);
        assert!(vars.base.starts_with("/tenants/") && vars.base.ends_with("/scim/v2"), "tenant URL {}", vars.base);
        Ok((Box::new(target) as Box<dyn Target>, vars))
    });
    if let Err(report) = result {
        panic!("\n{report}");
    }
}

/// What the host itself answers: a body over the core's limit is refused
/// before the component sees it, and a configuration the core refuses stops
/// the start.
#[test]
fn node_host_bounds_bodies_and_refuses_a_bad_configuration() {
    if !enabled() {
        return;
    }
    let (target, vars) = node_target(&[]);
    // The core's bound, which `server.js` enforces before the component
    // sees a body.
    let big = vec![b' '; scim_core::MAX_BODY + 1];
    let headers = vec![
        ("Authorization".to_owned(), format!("Bearer {}", vars.token)),
        ("Content-Type".to_owned(), "application/scim+json".to_owned()),
    ];
    let r = http::send(&target.server.addr, "POST", &format!("{}/Users", vars.base), &headers, &big).unwrap();
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["status"], "413");
    drop(target);

    let dir = temp_dir();
    let env = [("SCIMLET_BASE_PATHS".to_owned(), "/scim/{account}/".to_owned())];
    let err = match spawn(&dir.0.join("scimlet.db"), "127.0.0.1:0", &env) {
        Ok(_) => panic!("server.js started with a base path the core refuses"),
        Err(e) => e,
    };
    assert!(err.contains("base path \"/scim/{account}/\": no empty segments and no trailing /"), "{err}");
}
