//! Starts the real `scimlet` binary on a temporary database and talks to it.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use scimlet_vectors::http;

pub const BIN: &str = env!("CARGO_BIN_EXE_scimlet");

/// The account `serve` creates on an empty database.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub account: String,
    /// e.g. `http://127.0.0.1:40123/gateway/ng/api/scim/account/<id>`.
    pub tenant_url: String,
    pub token: String,
}

impl Bootstrap {
    /// The SCIM base path, e.g. `/gateway/ng/api/scim/account/<id>`.
    pub fn base(&self) -> String {
        http::split_url(&self.tenant_url).1
    }
}

/// A temporary directory under cargo's target tmpdir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "e2e-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether this run of the suite keeps its servers' data in PostgreSQL:
/// `SCIMLET_E2E_POSTGRES` names a server (the URL of a database to connect
/// to for `CREATE DATABASE`); `scripts/test` runs the suite once on SQLite
/// and once so. Tests of what only a SQLite file has (its WAL, `backup`)
/// run in the SQLite run alone.
pub fn on_postgres() -> bool {
    std::env::var_os("SCIMLET_E2E_POSTGRES").is_some()
}

/// A PostgreSQL database of one test server, dropped with it.
struct PgDatabase {
    admin: String,
    name: String,
}

impl PgDatabase {
    fn create() -> (PgDatabase, PathBuf) {
        static N: AtomicU32 = AtomicU32::new(0);
        let admin = std::env::var("SCIMLET_E2E_POSTGRES").expect("SCIMLET_E2E_POSTGRES");
        let name = format!("scimlet_e2e_{}_{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        pg_execute(&admin, &format!("CREATE DATABASE {name}"));
        let url = match admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("SCIMLET_E2E_POSTGRES {admin:?} names no database"),
        };
        (PgDatabase { admin, name }, PathBuf::from(url))
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        pg_execute(&self.admin, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
    }
}

pub fn pg_execute(url: &str, sql: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    runtime.block_on(async {
        let (client, conn) =
            tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap_or_else(|e| panic!("connect {url}: {e}"));
        tokio::spawn(conn);
        client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    });
}

/// A running `scimlet serve`; killed on drop.
pub struct Server {
    child: Option<Child>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<Vec<String>>>,
    /// `127.0.0.1:PORT`, stable across restarts.
    pub addr: String,
    pub db: PathBuf,
    /// Extra environment variables `serve` runs with (kept across restarts).
    env: Vec<(String, String)>,
    // Dropped last: the database lives here.
    _pg: Option<PgDatabase>,
    _dir: TempDir,
}

impl Server {
    /// Starts a server on a fresh database and reads the bootstrap account.
    pub fn start() -> (Server, Bootstrap) {
        Server::start_with_env(&[])
    }

    /// Like [`Server::start`], with extra environment variables for `serve`
    /// (e.g. `SCIMLET_ADMIN_TOKEN`). Variables not given here are not
    /// inherited from the test's environment.
    pub fn start_with_env(env: &[(&str, &str)]) -> (Server, Bootstrap) {
        let dir = TempDir::new();
        let (pg, db) = if on_postgres() {
            let (pg, url) = PgDatabase::create();
            (Some(pg), url)
        } else {
            (None, dir.path().join("scimlet.db"))
        };
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let (child, lines, stderr, addr) =
            spawn(&db, "127.0.0.1:0", &env).unwrap_or_else(|e| panic!("scimlet serve did not start: {e}"));
        let mut server = Server { child: Some(child), lines, stderr, addr, db, env, _pg: pg, _dir: dir };
        let bootstrap = server.read_bootstrap();
        (server, bootstrap)
    }

    /// A second `scimlet serve` on this server's database and environment,
    /// on a port of its own: a replica. The database stays this server's.
    pub fn replica(&self) -> Server {
        let (child, lines, stderr, addr) =
            spawn(&self.db, "127.0.0.1:0", &self.env).unwrap_or_else(|e| panic!("the replica did not start: {e}"));
        Server {
            child: Some(child),
            lines,
            stderr,
            addr,
            db: self.db.clone(),
            env: self.env.clone(),
            _pg: None,
            _dir: TempDir::new(),
        }
    }

    fn read_bootstrap(&mut self) -> Bootstrap {
        let (mut account, mut tenant_url, mut token) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        while tenant_url.is_none() || token.is_none() || account.is_none() {
            let line = match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => line,
                Err(e) => panic!("no bootstrap account/token on stdout ({e:?}); stderr:\n{}", self.stderr_text()),
            };
            if let Some(rest) = line.strip_prefix("Created account ") {
                // Created account "default" (<id>)
                account = rest.rsplit_once('(').and_then(|(_, id)| id.strip_suffix(')')).map(str::to_owned);
            } else if let Some(url) = line.strip_prefix("Tenant URL:") {
                tenant_url = Some(url.trim().to_owned());
            } else if let Some(t) = line.strip_prefix("Token:") {
                token = Some(t.trim().to_owned());
            }
        }
        let b = Bootstrap { account: account.unwrap(), tenant_url: tenant_url.unwrap(), token: token.unwrap() };
        assert!(
            b.base().split('/').any(|segment| segment == b.account),
            "tenant URL {} does not name the account id {}",
            b.tenant_url,
            b.account
        );
        b
    }

    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Kills the process (no graceful shutdown: acknowledged writes must
    /// survive a crash) and starts it again on the same database and port.
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        let mut last = String::new();
        for _ in 0..40 {
            match spawn(&self.db, &self.addr, &self.env) {
                Ok((child, lines, stderr, addr)) => {
                    if addr != self.addr {
                        return Err(format!("restarted on {addr}, expected {}", self.addr));
                    }
                    self.child = Some(child);
                    self.lines = lines;
                    // The log goes on across restarts: earlier lines first.
                    let earlier = std::mem::take(&mut *self.stderr.lock().unwrap());
                    stderr.lock().unwrap().splice(0..0, earlier);
                    self.stderr = stderr;
                    return Ok(());
                }
                Err(e) => last = e, // the port may still be held for a moment
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Err(format!("could not restart on {}: {last}", self.addr))
    }

    /// Lines printed on stdout since the last read, waiting up to `wait`.
    pub fn stdout_lines(&self, wait: Duration) -> Vec<String> {
        let mut out = Vec::new();
        let deadline = Instant::now() + wait;
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            out.push(line);
        }
        out
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// The server's process id, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server runs").id()
    }

    /// Kills the server and returns its whole log, once the thread reading
    /// it has read the last line (it holds the only other handle).
    pub fn stop_and_read_log(&mut self) -> String {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&self.stderr) > 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.stderr_text()
    }

    /// Runs `scimlet <args> --db <this db>` (while the server runs) and
    /// returns its stdout; panics on failure.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .args(args)
            .arg("--db")
            .arg(&self.db)
            .output()
            .unwrap_or_else(|e| panic!("run scimlet {args:?}: {e}"));
        assert!(
            out.status.success(),
            "scimlet {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `scimlet <args> --db <db> --json`, parsed.
    pub fn cli_json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        let text = self.cli(&args);
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("scimlet {args:?}: not JSON ({e}): {text}"))
    }

    /// One request with a bearer token; `body` is sent as SCIM JSON.
    pub fn request(&self, method: &str, path: &str, token: &str, body: Option<&serde_json::Value>) -> http::Response {
        let mut headers = vec![("Authorization".to_owned(), format!("Bearer {token}"))];
        let bytes = match body {
            Some(b) => {
                headers.push(("Content-Type".to_owned(), "application/scim+json".to_owned()));
                serde_json::to_vec(b).unwrap()
            }
            None => Vec::new(),
        };
        http::send(&self.addr, method, path, &headers, &bytes)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\nserver stderr:\n{}", self.stderr_text()))
    }

    /// Runs `scimlet <args>` and returns what it did, whatever the outcome.
    pub fn cli_output(&self, args: &[&std::ffi::OsStr]) -> std::process::Output {
        Command::new(BIN).args(args).output().unwrap_or_else(|e| panic!("run scimlet {args:?}: {e}"))
    }

    /// Sends SIGTERM and waits up to `within` for the process to exit;
    /// `None` if it did not.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Stops the process (SIGKILL); [`Server::restart`] starts it again.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

type Spawned = (Child, Receiver<String>, Arc<Mutex<Vec<String>>>, String);

/// Starts `scimlet serve` and waits for its listening line. stdout and stderr
/// are drained by threads for the whole life of the process, so it never
/// blocks on a full pipe.
fn spawn(db: &Path, listen: &str, env: &[(String, String)]) -> Result<Spawned, String> {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", listen, "--db"])
        .arg(db)
        .env_remove("SCIMLET_ADMIN_TOKEN")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {BIN}: {e}"))?;
    let (tx, lines) = channel();
    let stdout = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line); // keep draining even when nobody listens
        }
    });
    let stderr_lines = Arc::new(Mutex::new(Vec::new()));
    let sink = stderr_lines.clone();
    let mut stderr = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            while let Some(i) = buf.iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&buf[..i]).into_owned();
                buf.drain(..=i);
                // Bounded, yet enough for a whole scenario's request lines.
                if let Ok(mut l) = sink.lock()
                    && l.len() < 100_000
                {
                    l.push(line);
                }
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => {
                if let Some(url) = line.strip_prefix("scimlet listening on ") {
                    let url = url.trim();
                    let addr = url.strip_prefix("https://").unwrap_or(url.trim_start_matches("http://"));
                    let addr = addr.trim_end_matches('/').to_owned();
                    return Ok((child, lines, stderr_lines, addr));
                }
            }
            Err(e) => {
                let _ = child.kill();
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                std::thread::sleep(Duration::from_millis(50));
                let err = stderr_lines.lock().map(|l| l.join("\n")).unwrap_or_default();
                let why =
                    if e == RecvTimeoutError::Timeout { "no listening line within 60 s" } else { "stdout closed" };
                return Err(format!("{why} (exit: {status}); stderr:\n{err}"));
            }
        }
    }
}
