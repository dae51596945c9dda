//! scimlet-bench: starts the real `scimlet` on loopback with a fresh SQLite
//! database and prints one table of what a large first sync costs, at each
//! account size: lookup-then-create while seeding, indexed lookups (rate,
//! p50, p99), index and cursor list pages, one-member PATCHes on groups of
//! growing size, reading the biggest group, server CPU per request and
//! resident memory.
//!
//! With a runner built with `--features native-core`, every step runs a
//! second time against the same binary serving with scim-core linked in
//! natively (`serve --native-core`): the ratio of the two columns is the
//! cost of the WebAssembly boundary, measured side by side in one run.
//!
//! With `--scim2-server PATH` (the python `scim2-server` from PyPI), the
//! steps both servers speak (seeding, lookups, index pages, creates) run once
//! more against it, up to 10,000 users: a peer measured on the same machine
//! in the same run.
//!
//! With `--postgres URL` (a PostgreSQL server, as the URL of a database to
//! connect to for `CREATE DATABASE`), every step runs once more against the
//! component runner on a PostgreSQL database of its own: the SQLite and
//! PostgreSQL backends side by side. That column's server CPU is the
//! runner's plus that of the database's backend processes (the server runs
//! on the same machine).
//!
//! With `--wasmtime PATH` (wasmtime-cli 48), the steps run twice more against
//! the standalone component (`crates/standalone`) under plain `wasmtime
//! serve`, on the file store, up to 10,000 users: as `wasmtime serve` runs
//! it by default, every request an instance of its own that replays the
//! store's log, and with `--max-instance-reuse-count 1000`, where an
//! instance serves requests one after another and reads only what was
//! appended since its last request.
//!
//! Usage (see the README's Benchmarks section):
//!   scimlet-bench [--scimlet PATH] [--sizes 1000,10000,100000]
//!                 [--groups 100,10000,100000] [--clients 8] [--seconds 5]
//!                 [--component-only] [--scim2-server PATH] [--postgres URL]
//!                 [--wasmtime PATH]
//!                 [--perf floor|seed|lookups|email|index|cursor|creates|patch]
//!
//! `--perf STEP` runs `perf record` on the server during every run of that
//! step (start the server's runner with `SCIMLET_PERFMAP=1` in the
//! environment to see the guest's functions by name).

mod http;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Members added per PATCH while building a group: within the server's
/// per-request member budget.
const FILL_CHUNK: usize = 3_000;

struct Args {
    scimlet: PathBuf,
    sizes: Vec<usize>,
    groups: Vec<usize>,
    clients: usize,
    seconds: f64,
    native: bool,
    scim2_server: Option<PathBuf>,
    postgres: Option<String>,
    wasmtime: Option<PathBuf>,
}

/// Largest account the python peer is seeded to: it creates a few hundred
/// users a second.
const PEER_MAX_USERS: usize = 10_000;

/// What answers the requests.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// `scimlet serve`: scim-core through the WebAssembly component.
    Component,
    /// `scimlet serve --native-core`: the same server, scim-core linked in.
    Native,
    /// The python `scim2-server`, in memory: only the steps it speaks.
    Peer,
    /// `scimlet serve` on a PostgreSQL database.
    Postgres,
    /// `wasmtime serve` on the standalone component (seeded no further than
    /// the peer: each request replays the whole log).
    Standalone,
    /// The same with instances reused for up to 1,000 requests.
    StandaloneReuse,
}

fn parse_args() -> Args {
    let mut args = Args {
        scimlet: PathBuf::from("target/release/scimlet"),
        sizes: vec![1_000, 10_000, 100_000],
        groups: vec![100, 10_000, 100_000],
        clients: 8,
        seconds: 5.0,
        native: true,
        scim2_server: None,
        postgres: None,
        wasmtime: None,
    };
    let list = |s: String| -> Vec<usize> {
        s.split(',').map(|n| n.trim().replace('_', "").parse().expect("a number")).collect()
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--scimlet" => args.scimlet = PathBuf::from(value()),
            "--sizes" => args.sizes = list(value()),
            "--groups" => args.groups = list(value()),
            "--clients" => args.clients = value().parse().expect("--clients N"),
            "--seconds" => args.seconds = value().parse().expect("--seconds S"),
            "--component-only" => args.native = false,
            "--scim2-server" => args.scim2_server = Some(PathBuf::from(value())),
            "--postgres" => args.postgres = Some(value()),
            "--wasmtime" => args.wasmtime = Some(PathBuf::from(value())),
            "--perf" => PERF_STEP.set(value()).expect("one --perf"),
            other => panic!("unknown argument {other:?} (see the doc comment of crates/scimlet-bench/src/main.rs)"),
        }
    }
    args
}

/// A `scimlet serve` process on a temporary database.
struct Server {
    child: Child,
    addr: String,
    base: String,
    token: String,
    dir: PathBuf,
    /// `component`, `native`, `postgres` or `scim2-server`: names profiles.
    name: &'static str,
    /// The database of a `postgres` server, dropped with it.
    pg: Option<BenchDb>,
    /// The admin API's token, for `/metrics` (`None` for the peer).
    admin: Option<String>,
}

/// A PostgreSQL database of one bench run, and a connection to its server
/// for what the runner's own CPU time does not show.
struct BenchDb {
    runtime: tokio::runtime::Runtime,
    admin: tokio_postgres::Client,
    name: String,
    url: String,
}

impl BenchDb {
    fn create(admin_url: &str) -> BenchDb {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
        let name = format!("scimlet_bench_{}", std::process::id());
        let admin = runtime.block_on(async {
            let (client, conn) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("--postgres: cannot connect: {e}"));
            tokio::spawn(conn);
            client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await.expect("drop an old bench database");
            client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create the bench database");
            client
        });
        let server = admin_url.rsplit_once('/').map_or(admin_url, |(server, _)| server);
        let url = format!("{server}/{name}");
        BenchDb { runtime, admin, name, url }
    }

    /// CPU time of the database's backend processes so far (they run on
    /// this machine: the bench is run against a local server).
    fn backends_cpu(&self) -> Duration {
        let pids: Vec<i32> = self.runtime.block_on(async {
            let rows = self
                .admin
                .query("SELECT pid FROM pg_stat_activity WHERE datname = $1", &[&self.name])
                .await
                .expect("pg_stat_activity");
            rows.iter().map(|r| r.get(0)).collect()
        });
        pids.iter().map(|pid| process_cpu(&pid.to_string())).sum()
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = self.runtime.block_on(self.admin.batch_execute(&sql));
    }
}

impl Server {
    fn start(bin: &PathBuf, kind: Kind, postgres: Option<&str>) -> Option<Server> {
        let name = match kind {
            Kind::Component => "component",
            Kind::Native => "native",
            Kind::Postgres => "postgres",
            Kind::Peer => return Server::start_peer(bin),
            Kind::Standalone => return Server::start_standalone(bin, None),
            Kind::StandaloneReuse => return Server::start_standalone(bin, Some(1000)),
        };
        let dir = std::env::temp_dir().join(format!("scimlet-bench-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut command = Command::new(bin);
        // The load generator is one client with one token: no rate limit.
        let pg = (kind == Kind::Postgres).then(|| BenchDb::create(postgres.expect("--postgres URL")));
        // `/metrics` (commits by outcome) answers bearers of the admin token.
        let admin = format!("scimlet-bench-admin-{}", std::process::id());
        std::fs::write(dir.join("admin-token"), &admin).expect("admin token file");
        command.arg("serve").arg("--admin-token-file").arg(dir.join("admin-token"));
        command.args(["--listen", "127.0.0.1:0", "--rate-limit", "0", "--db"]);
        match &pg {
            Some(db) => command.arg(&db.url),
            None => command.arg(dir.join("scimlet.db")),
        };
        if kind == Kind::Native {
            command.arg("--native-core");
        }
        // One log line per request: to a file, off the measured pipe.
        let log = std::fs::File::create(dir.join("stderr.log")).expect("log file");
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let (mut addr, mut url, mut token) = (None, None, None);
        while token.is_none() {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.wait();
                return None;
            };
            if let Some(a) = line.strip_prefix("scimlet listening on http://") {
                addr = Some(a.trim().to_owned());
            } else if let Some(u) = line.strip_prefix("Tenant URL: ") {
                url = Some(u.trim().to_owned());
            } else if let Some(t) = line.strip_prefix("Token: ") {
                token = Some(t.trim().to_owned());
            }
        }
        let addr = addr.expect("listening line");
        let url = url.expect("tenant URL");
        let base = url[url.find(&addr).expect("tenant URL on the listening address") + addr.len()..].to_owned();
        Some(Server { child, addr, base, token: token.unwrap(), dir, name, pg, admin: Some(admin) })
    }

    /// `scim2-server` on a free loopback port, once it answers.
    fn start_peer(bin: &PathBuf) -> Option<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let token = "scimlet-bench-peer-token".to_owned();
        let child = Command::new(bin)
            .args(["--hostname", "127.0.0.1", "--port", &port.to_string(), "--bearer-token", &token])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| eprintln!("(no scim2-server column: cannot start {}: {e})", bin.display()))
            .ok()?;
        let server = Server {
            child,
            addr: format!("127.0.0.1:{port}"),
            base: String::new(),
            token,
            dir: PathBuf::new(),
            name: "scim2-server",
            pg: None,
            admin: None,
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(mut conn) = http::Conn::open(&server.addr)
                && conn.send("GET", "/ServiceProviderConfig", &server.token, None).is_ok_and(|a| a.status == 200)
            {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!("(no scim2-server column: it did not answer within a minute)");
        None
    }

    /// `wasmtime serve` on the standalone component, with an account and a
    /// token made through the admin API.
    fn start_standalone(wasmtime: &PathBuf, reuse: Option<usize>) -> Option<Server> {
        let name = if reuse.is_some() { "standalone-reuse" } else { "standalone" };
        let dir = std::env::temp_dir().join(format!("scimlet-bench-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).expect("temp dir");
        let wasm = dir.join("scimlet-standalone.wasm");
        std::fs::write(&wasm, scimlet_standalone::COMPONENT).expect("write the component");
        let admin = format!("scimlet-bench-admin-{}", std::process::id());
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let mut command = Command::new(wasmtime);
        command.args(["serve", "-Scli", "--addr", &format!("127.0.0.1:{port}")]);
        if let Some(n) = reuse {
            command.arg(format!("--max-instance-reuse-count={n}"));
        }
        let child = command
            .arg("--dir")
            .arg(format!("{}::/data", dir.join("data").display()))
            .arg("--env")
            .arg(format!("SCIMLET_ADMIN_TOKEN={admin}"))
            .arg(&wasm)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| eprintln!("(no standalone column: cannot start {}: {e})", wasmtime.display()))
            .ok()?;
        let mut server = Server {
            child,
            addr: format!("127.0.0.1:{port}"),
            base: String::new(),
            token: admin.clone(),
            dir,
            name,
            pg: None,
            admin: None,
        };
        let started = Instant::now();
        let created = loop {
            if let Ok(mut conn) = http::Conn::open(&server.addr)
                && let Ok(answer) = conn.send("POST", "/api/accounts", &admin, Some(br#"{"name": "bench"}"#))
            {
                break answer;
            }
            if started.elapsed() > Duration::from_secs(60) {
                eprintln!("(no standalone column: wasmtime serve did not answer within a minute)");
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let account: Value = serde_json::from_slice(&check(Ok(created), 201, "create account").body).unwrap();
        let id = account["id"].as_str().expect("account id");
        let token = check(
            server.conn().send("POST", &format!("/api/accounts/{id}/tokens"), &admin, Some(br#"{"name": "bench"}"#)),
            201,
            "create token",
        );
        let token: Value = serde_json::from_slice(&token.body).unwrap();
        server.base = account["scimPath"].as_str().expect("scimPath").to_owned();
        server.token = token["token"].as_str().expect("token").to_owned();
        Some(server)
    }

    fn conn(&self) -> http::Conn {
        http::Conn::open(&self.addr).expect("connect")
    }

    /// User plus system CPU time of the server process so far, and of its
    /// database's backends when it has a database server.
    fn cpu(&self) -> Duration {
        process_cpu(&self.child.id().to_string()) + self.pg.as_ref().map_or(Duration::ZERO, BenchDb::backends_cpu)
    }

    /// (resident, peak resident) memory in MiB.
    fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kib = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
    }
}

impl Server {
    /// Commits the store refused on a precondition so far (lost races,
    /// which the component retries, and names already taken), from the
    /// server's `/metrics`; `None` where there is none to ask.
    fn commit_conflicts(&self) -> Option<u64> {
        let admin = self.admin.as_deref()?;
        let answer = self.conn().send("GET", "/metrics", admin, None).ok()?;
        let text = String::from_utf8_lossy(&answer.body);
        let line = text.lines().find(|l| l.starts_with("scimlet_store_commits_total{outcome=\"conflict\"}"));
        Some(line.and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// User plus system CPU time of a process (`self` for this one) so far.
fn process_cpu(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / clock_ticks())
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// What one load step measured.
struct Step {
    requests: usize,
    elapsed: Duration,
    cpu: Duration,
    /// CPU time of this load generator, which shares the machine's cores.
    client_cpu: Duration,
    latencies: Vec<Duration>,
}

impl Step {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn cpu_us(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }
    fn client_cpu_us(&self) -> f64 {
        self.client_cpu.as_secs_f64() * 1e6 / self.requests.max(1) as f64
    }
    fn percentile_ms(&mut self, p: f64) -> f64 {
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    }
}

/// `perf record` of the server while one step runs, when `--perf STEP`
/// names it: the profile of one kind of request, without the others.
struct Profile(Child);

impl Profile {
    fn start(server: &Server, step: &str) -> Option<Profile> {
        if PERF_STEP.get().is_none_or(|wanted| wanted != step) {
            return None;
        }
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let out = std::env::temp_dir().join(format!(
            "scimlet-bench-{}-{step}-{}.perf",
            server.name,
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let child = Command::new("perf")
            .args(["record", "-q", "-F", "2000", "-g", "-p", &server.child.id().to_string(), "-o"])
            .arg(&out)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| eprintln!("(no profile: cannot start perf: {e})"))
            .ok()?;
        eprintln!("profiling {} {step} into {}", server.name, out.display());
        std::thread::sleep(Duration::from_millis(300));
        Some(Profile(child))
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        // perf writes its file on SIGINT.
        let _ = Command::new("kill").args(["-INT", &self.0.id().to_string()]).status();
        let _ = self.0.wait();
    }
}

static PERF_STEP: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Runs `work` on `clients` threads, each with its own connection, until
/// `work` answers `false` or `duration` has passed.
fn load(
    server: &Server,
    step: &str,
    clients: usize,
    duration: Option<Duration>,
    work: impl Fn(&mut http::Conn, usize) -> bool + Sync,
) -> Step {
    let _profile = Profile::start(server, step);
    let cpu = server.cpu();
    let client_cpu = process_cpu("self");
    let started = Instant::now();
    let latencies = Mutex::new(Vec::new());
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                let mut conn = server.conn();
                let mut mine = Vec::new();
                loop {
                    if duration.is_some_and(|d| started.elapsed() >= d) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    if !work(&mut conn, i) {
                        break;
                    }
                    mine.push(t.elapsed());
                }
                latencies.lock().unwrap().extend(mine);
            });
        }
    });
    let latencies = latencies.into_inner().unwrap();
    Step {
        requests: latencies.len(),
        elapsed: started.elapsed(),
        cpu: server.cpu() - cpu,
        client_cpu: process_cpu("self") - client_cpu,
        latencies,
    }
}

fn user_name(i: usize) -> String {
    format!("bench{i:07}@example.com")
}

fn filter_path(name: &str) -> String {
    format!("/Users?filter=userName%20eq%20%22{}%22", name.replace('@', "%40"))
}

fn check(answer: std::io::Result<http::Answer>, status: u16, what: &str) -> http::Answer {
    let answer = answer.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(
        answer.status,
        status,
        "{what}: {}",
        String::from_utf8_lossy(&answer.body[..answer.body.len().min(400)])
    );
    answer
}

/// A small deterministic generator for picking users.
fn pick(i: usize, n: usize) -> usize {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x % n as u64) as usize
}

type Table = BTreeMap<(usize, String), f64>;

/// Every step, on one server; results keyed by (row order, label).
fn measure(server: &Server, args: &Args, kind: Kind) -> Table {
    let mut rows = Table::new();
    let mut row = |label: String, value: f64| {
        let order = rows.len();
        rows.insert((order, label), value);
    };
    let ids: Arc<Mutex<Vec<String>>> = Arc::default();
    let window = Duration::from_secs_f64(args.seconds);
    let peer = kind == Kind::Peer;
    let small = peer || matches!(kind, Kind::Standalone | Kind::StandaloneReuse);

    // What every request costs before any SCIM work: a static resource.
    let floor = load(server, "floor", args.clients, Some(window), |conn, _| {
        check(
            conn.send("GET", &format!("{}/ServiceProviderConfig", server.base), &server.token, None),
            200,
            "ServiceProviderConfig",
        );
        true
    });
    row("GET /ServiceProviderConfig (the per-request floor), req/s".into(), floor.rate());
    row("  server CPU per request, µs".into(), floor.cpu_us());

    let mut have = 0usize;
    for &size in args.sizes.iter().filter(|&&size| !small || size <= PEER_MAX_USERS) {
        // Seeding as an identity provider does: a lookup before each create.
        let from = have;
        let created: Mutex<Vec<(usize, String)>> = Mutex::default();
        let mut seed = load(server, "seed", args.clients, None, |conn, i| {
            let n = from + i;
            if n >= size {
                return false;
            }
            let found = check(
                conn.send("GET", &format!("{}{}", server.base, filter_path(&user_name(n))), &server.token, None),
                200,
                "lookup before create",
            );
            let found: Value = serde_json::from_slice(&found.body).expect("a JSON list");
            assert_eq!(found["totalResults"], 0, "user {n} exists before its create");
            let body = serde_json::to_vec(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": user_name(n), "externalId": format!("ext-{n}"), "emails": [{"value": user_name(n), "type": "work", "primary": true}]})).unwrap();
            let answer =
                check(conn.send("POST", &format!("{}/Users", server.base), &server.token, Some(&body)), 201, "create");
            let id = serde_json::from_slice::<Value>(&answer.body).unwrap()["id"].as_str().unwrap().to_owned();
            created.lock().unwrap().push((n, id));
            true
        });
        let mut created = created.into_inner().unwrap();
        created.sort();
        ids.lock().unwrap().extend(created.into_iter().map(|(_, id)| id));
        have = size;
        row(format!("lookup+create while seeding to {size}, pairs/s"), seed.rate());
        row(format!("  server CPU per lookup+create at {size}, µs"), seed.cpu_us());
        row(format!("  lookup+create p99 at {size}, ms"), seed.percentile_ms(0.99));

        let mut lookups = load(server, "lookups", args.clients, Some(window), |conn, i| {
            let n = pick(i, size);
            check(
                conn.send("GET", &format!("{}{}", server.base, filter_path(&user_name(n))), &server.token, None),
                200,
                "lookup",
            );
            true
        });
        row(format!("userName lookups at {size}, req/s"), lookups.rate());
        row(format!("  lookup p50 at {size}, ms"), lookups.percentile_ms(0.5));
        row(format!("  lookup p99 at {size}, ms"), lookups.percentile_ms(0.99));
        row(format!("  server CPU per lookup at {size}, µs"), lookups.cpu_us());

        let mut email = load(server, "email", args.clients, Some(window), |conn, i| {
            let n = pick(i, size);
            let path =
                format!("{}/Users?filter=emails.value%20eq%20%22{}%22", server.base, user_name(n).replace('@', "%40"));
            check(conn.send("GET", &path, &server.token, None), 200, "e-mail lookup");
            true
        });
        row(format!("e-mail lookups at {size}, req/s"), email.rate());
        row(format!("  server CPU per e-mail lookup at {size}, µs"), email.cpu_us());
        let _ = email.percentile_ms(0.5);

        let mut index = load(server, "index", args.clients, Some(window), |conn, _| {
            check(
                conn.send("GET", &format!("{}/Users?startIndex=1&count=100", server.base), &server.token, None),
                200,
                "index page",
            );
            true
        });
        row(format!("index page (100, totalResults) at {size}, req/s"), index.rate());
        row(format!("  index page p50 at {size}, ms"), index.percentile_ms(0.5));
        row(format!("  server CPU per index page at {size}, µs"), index.cpu_us());

        if peer {
            // scim2-server pages by index only; memory is measured below.
            row(format!("resident memory at {size} users, MiB"), server.memory().0);
            continue;
        }
        // A cursor in the middle of the account: the hex of a position.
        let middle: String = user_name(size / 2).bytes().map(|b| format!("{b:02x}")).collect();
        let mut cursor = load(server, "cursor", args.clients, Some(window), |conn, _| {
            check(
                conn.send("GET", &format!("{}/Users?cursor={middle}&count=100", server.base), &server.token, None),
                200,
                "cursor page",
            );
            true
        });
        row(format!("cursor page (100) at {size}, req/s"), cursor.rate());
        row(format!("  cursor page p50 at {size}, ms"), cursor.percentile_ms(0.5));
        row(format!("  server CPU per cursor page at {size}, µs"), cursor.cpu_us());
        row(format!("resident memory at {size} users, MiB"), server.memory().0);
    }

    // Creates alone, as a sync's second phase sends them once lookups
    // are cached: each answered only once durable.
    let conflicts = server.commit_conflicts();
    let mut creates = load(server, "creates", args.clients, Some(window), |conn, i| {
        let name = format!("extra{i:07}@example.com");
        let body = serde_json::to_vec(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "emails": [{"value": name, "type": "work", "primary": true}]})).unwrap();
        check(conn.send("POST", &format!("{}/Users", server.base), &server.token, Some(&body)), 201, "create");
        true
    });
    row(format!("creates ({} clients), req/s", args.clients), creates.rate());
    row("  create p99, ms".into(), creates.percentile_ms(0.99));
    row("  server CPU per create, µs".into(), creates.cpu_us());
    row("  load generator CPU per create, µs".into(), creates.client_cpu_us());
    if let (Some(before), Some(after)) = (conflicts, server.commit_conflicts()) {
        // Each is a create's attempt that lost a race (a counter shard, an
        // index page) and went round again: a whole extra plan and commit.
        row("  lost races per create".into(), (after - before) as f64 / creates.requests.max(1) as f64);
    }

    // Groups of growing size, then one-member PATCHes on each.
    let ids = if peer { Vec::new() } else { ids.lock().unwrap().clone() };
    let mut biggest: Option<String> = None;
    for &members in args.groups.iter().filter(|&&m| m <= ids.len()) {
        let mut conn = server.conn();
        let body = serde_json::to_vec(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": format!("bench {members}")})).unwrap();
        let created = check(
            conn.send("POST", &format!("{}/Groups", server.base), &server.token, Some(&body)),
            201,
            "create group",
        );
        let gid = serde_json::from_slice::<Value>(&created.body).unwrap()["id"].as_str().unwrap().to_owned();
        let path = format!("{}/Groups/{gid}", server.base);
        let patch = |op: &str, users: &[String]| -> Vec<u8> {
            let value: Vec<Value> = users.iter().map(|u| json!({"value": u})).collect();
            serde_json::to_vec(
                &json!({"schemas": [PATCH_OP], "Operations": [{"op": op, "path": "members", "value": value}]}),
            )
            .unwrap()
        };
        let fill = Instant::now();
        for chunk in ids[..members].chunks(FILL_CHUNK) {
            check(conn.send("PATCH", &path, &server.token, Some(&patch("add", chunk))), 204, "fill group");
        }
        row(
            format!("filling a {members}-member group ({FILL_CHUNK} a PATCH), members/s"),
            members as f64 / fill.elapsed().as_secs_f64(),
        );
        // Remove and re-add one member, alternately, on one connection.
        let member = ids[0].clone();
        let mut step = load(server, "patch", 1, None, |conn, i| {
            if i >= 400 {
                return false;
            }
            let op = if i % 2 == 0 { "remove" } else { "add" };
            check(
                conn.send("PATCH", &path, &server.token, Some(&patch(op, std::slice::from_ref(&member)))),
                204,
                "one-member PATCH",
            );
            true
        });
        row(format!("one-member PATCH on a {members}-member group, p50 ms"), step.percentile_ms(0.5));
        row(format!("  server CPU per one-member PATCH ({members} members), µs"), step.cpu_us());
        biggest = Some(gid);
    }
    if let Some(gid) = biggest {
        let mut conn = server.conn();
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..3 {
            let t = Instant::now();
            let answer = check(
                conn.send("GET", &format!("{}/Groups/{gid}", server.base), &server.token, None),
                200,
                "GET biggest group",
            );
            times.push(t.elapsed().as_secs_f64() * 1e3);
            bytes = answer.body.len();
        }
        times.sort_by(f64::total_cmp);
        row("GET the biggest group, ms (median of 3)".into(), times[1]);
        row("  its body, MB".into(), bytes as f64 / 1e6);
        let excluded = Instant::now();
        check(
            conn.send("GET", &format!("{}/Groups/{gid}?excludedAttributes=members", server.base), &server.token, None),
            200,
            "GET excluded",
        );
        row("GET the biggest group, excludedAttributes=members, ms".into(), excluded.elapsed().as_secs_f64() * 1e3);
    }
    row("peak resident memory, MiB".into(), server.memory().1);
    rows
}

fn main() {
    let args = parse_args();
    if !args.scimlet.exists() {
        eprintln!(
            "no runner at {}: build it first (cargo build --release -p scimlet --features native-core)",
            args.scimlet.display()
        );
        std::process::exit(2);
    }
    println!(
        "scimlet-bench: {} clients, {} s a step, sizes {:?}, groups {:?}",
        args.clients, args.seconds, args.sizes, args.groups
    );
    let run = |bin: &PathBuf, kind: Kind| {
        Server::start(bin, kind, args.postgres.as_deref()).map(|server| measure(&server, &args, kind))
    };
    let component = run(&args.scimlet, Kind::Component).expect("scimlet serve did not start");
    let mut columns = vec![("component", component)];
    if args.native {
        match run(&args.scimlet, Kind::Native) {
            Some(native) => columns.push(("native", native)),
            None => eprintln!("(no native column: this runner was built without --features native-core)"),
        }
    }
    if args.postgres.is_some() {
        let table = run(&args.scimlet, Kind::Postgres).expect("scimlet serve on PostgreSQL did not start");
        columns.push(("postgres", table));
    }
    if let Some(peer) = &args.scim2_server
        && let Some(table) = run(peer, Kind::Peer)
    {
        columns.push(("scim2-server", table));
    }
    if let Some(wasmtime) = &args.wasmtime {
        for (kind, name) in [(Kind::Standalone, "standalone"), (Kind::StandaloneReuse, "standalone-reuse")] {
            if let Some(table) = run(wasmtime, kind) {
                columns.push((name, table));
            }
        }
    }
    println!();
    let others = &columns[1..];
    let mut head = String::from("| step | component |");
    let mut rule = String::from("|---|---:|");
    for (name, _) in others {
        head.push_str(&format!(" {name} | component / {name} |"));
        rule.push_str("---:|---:|");
    }
    println!("{head}\n{rule}");
    for (key, value) in &columns[0].1 {
        let mut line = format!("| {} | {} |", key.1, fmt(*value));
        for (_, table) in others {
            match table.iter().find(|(k, _)| k.1 == key.1) {
                Some((_, other)) => line.push_str(&format!(" {} | {:.2} |", fmt(*other), value / other)),
                None => line.push_str(" – | – |"),
            }
        }
        println!("{line}");
    }
}

fn fmt(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}
