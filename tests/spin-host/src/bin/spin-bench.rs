//! Size and time to first response of the Spin component, side by side with
//! the generic scimlet component, on the test host.
//!
//! `cargo run --release -p scimlet-spin-host --bin spin-bench [-- ROUNDS]`
//!
//! For each component: bytes raw and gzipped (`gzip -9`), then, on a database
//! already holding an account (made through the Spin component's admin API and
//! copied, so both read the same records through the same SQL store code):
//! - cold: a new engine, compile, link and pre-instantiate, instantiate and
//!   answer a first authenticated `GET …/Users` (median of ROUNDS runs);
//! - warm: the same request again on the compiled component, each in a fresh
//!   instance as Spin does (median of 200).
//!
//! The generic component's `storage` import is answered host-side by the same
//! `SqlStore` the Spin component runs in-guest over Spin's SQLite import.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scimlet_spin_host::{GENERIC_COMPONENT, Kind, SPIN_COMPONENT, SpinHost, engine, request};
use wasmtime::component::Component;

const ORIGIN: &str = "http://spin.test";
const ADMIN_TOKEN: &str = "admin-secret-0123456789abcdef";
const WARM_REQUESTS: usize = 200;

fn gzipped_len(bytes: &[u8]) -> Option<usize> {
    let mut child = Command::new("gzip").arg("-9c").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().ok()?;
    let mut stdin = child.stdin.take()?;
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().ok()?;
    writer.join().ok()?.ok()?;
    out.status.success().then_some(out.stdout.len())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn variables() -> HashMap<String, String> {
    HashMap::from([("admin_token".to_owned(), ADMIN_TOKEN.to_owned())])
}

struct Seed {
    base: String,
    token: String,
}

/// Makes an account and a SCIM token in `db` through the Spin component's
/// admin API.
async fn seed(db: &Path) -> wasmtime::Result<Seed> {
    let engine = engine()?;
    let component = Component::new(&engine, SPIN_COMPONENT)?;
    let host = SpinHost::new(&engine, &component, Kind::Spin, db, variables())?;
    let headers = [("authorization".to_owned(), format!("Bearer {ADMIN_TOKEN}"))];
    let post =
        |path: String, body: serde_json::Value| request(ORIGIN, "POST", &path, &headers, body.to_string().into_bytes());
    let answer = host.handle(post("/api/accounts".into(), serde_json::json!({"name": "bench"}))?).await?;
    wasmtime::ensure!(answer.status == 201, "account creation answered {}", answer.status);
    let account: serde_json::Value = serde_json::from_slice(&answer.body)?;
    let id = account["id"].as_str().unwrap_or_default();
    let answer = host.handle(post(format!("/api/accounts/{id}/tokens"), serde_json::json!({"name": "bench"}))?).await?;
    wasmtime::ensure!(answer.status == 201, "token creation answered {}", answer.status);
    let token: serde_json::Value = serde_json::from_slice(&answer.body)?;
    Ok(Seed {
        base: account["scimPath"].as_str().unwrap_or_default().to_owned(),
        token: token["token"].as_str().unwrap_or_default().to_owned(),
    })
}

async fn get_users(host: &SpinHost, seed: &Seed) -> wasmtime::Result<()> {
    let headers = [("authorization".to_owned(), format!("Bearer {}", seed.token))];
    let answer = host.handle(request(ORIGIN, "GET", &format!("{}/Users", seed.base), &headers, Vec::new())?).await?;
    wasmtime::ensure!(answer.status == 200, "GET /Users answered {}", answer.status);
    Ok(())
}

struct Row {
    name: &'static str,
    raw: usize,
    gz: Option<usize>,
    compile: Duration,
    cold: Duration,
    warm: Duration,
}

async fn measure(
    name: &'static str,
    bytes: &[u8],
    kind: Kind,
    db: &Path,
    seed: &Seed,
    rounds: usize,
) -> wasmtime::Result<Row> {
    let mut compiles = Vec::new();
    let mut colds = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let engine = engine()?;
        let component = Component::new(&engine, bytes)?;
        compiles.push(started.elapsed());
        let host = SpinHost::new(&engine, &component, kind, db, variables())?;
        get_users(&host, seed).await?;
        colds.push(started.elapsed());
    }
    let engine = engine()?;
    let component = Component::new(&engine, bytes)?;
    let host = SpinHost::new(&engine, &component, kind, db, variables())?;
    get_users(&host, seed).await?;
    let mut warms = Vec::new();
    for _ in 0..WARM_REQUESTS {
        let started = Instant::now();
        get_users(&host, seed).await?;
        warms.push(started.elapsed());
    }
    Ok(Row {
        name,
        raw: bytes.len(),
        gz: gzipped_len(bytes),
        compile: median(compiles),
        cold: median(colds),
        warm: median(warms),
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> wasmtime::Result<()> {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5).max(1);
    let dir = std::env::temp_dir().join(format!("scimlet-spin-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let spin_db = dir.join("spin.db");
    let generic_db = dir.join("generic.db");
    let seed = seed(&spin_db).await?;
    std::fs::copy(&spin_db, &generic_db)?;

    let rows = [
        measure("scim-spin (Spin SQLite import)", SPIN_COMPONENT, Kind::Spin, &spin_db, &seed, rounds).await?,
        measure("scim-component (storage import)", GENERIC_COMPONENT, Kind::Generic, &generic_db, &seed, rounds)
            .await?,
    ];
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "| component | size (bytes) | gzip -9 (bytes) | compile (ms) | cold: compile + instantiate + first response (ms) | warm request (µs) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.1} | {:.1} | {} |",
            r.name,
            r.raw,
            r.gz.map_or("n/a".to_owned(), |n| n.to_string()),
            r.compile.as_secs_f64() * 1e3,
            r.cold.as_secs_f64() * 1e3,
            r.warm.as_micros()
        );
    }
    let engine = engine()?;
    let component = Component::new(&engine, SPIN_COMPONENT)?;
    let ty = component.component_type();
    let imports: Vec<&str> = ty.imports(&engine).map(|(name, _)| name).collect();
    let exports: Vec<&str> = ty.exports(&engine).map(|(name, _)| name).collect();
    println!();
    println!("scim-spin imports: {}", imports.join(", "));
    println!("scim-spin exports: {}", exports.join(", "));
    println!(
        "(medians: cold of {rounds} runs, warm of {WARM_REQUESTS}; GET …/Users on a seeded database, fresh instance per request)"
    );
    Ok(())
}
