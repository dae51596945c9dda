//! The storage contract on PostgreSQL: several `scimlet` replicas on one
//! shared, durable database.
//!
//! Layout (schema version [`SCHEMA_VERSION`], recorded in `scimlet_schema`):
//! - `kv (key bytea primary key, value bytea, version bigint)`: `bytea`
//!   compares byte by byte whatever the database's collation, which is the
//!   order the contract promises for scans;
//! - the sequence `kv_version`, one counter for every commit of every
//!   replica.
//!
//! A commit is one `READ COMMITTED` transaction that first locks, in key
//! order, every existing row it writes (`SELECT … FOR UPDATE`), then checks
//! the preconditions against the locked rows, then takes its version from
//! the sequence, then writes. Why that is enough under concurrent writers in
//! other processes:
//! - a `version(v)` or `absent` precondition on a row that exists is checked
//!   under that row's lock, which is held until the transaction ends, so the
//!   row cannot change between the check and the write;
//! - an `absent` precondition on a row that does not exist takes no lock, but
//!   its write is an `INSERT … ON CONFLICT DO NOTHING`: if another
//!   transaction inserts the key first, the insert waits for it and, once it
//!   commits, writes nothing, which this commit reports as its conflict;
//! - the version is drawn after the locks, so a record's successive versions
//!   increase in the order its writers commit.
//!
//! `SERIALIZABLE` would also be correct, but it aborts transactions that
//! merely read overlapping ranges; the locks above conflict only on the keys
//! two commits both write. A deadlock or serialization failure that
//! PostgreSQL reports anyway is retried here, a few times, as a whole.
//!
//! The driver is async (tokio-postgres, pooled with deadpool); the
//! [`Backend`] contract is blocking, so calls run on tokio's blocking pool
//! and wait there ([`Backend::reads_block`] tells the runtime so).

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::time::Duration;

use std::path::Path;
use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::{IsolationLevel, NoTls};

use super::{Backend, Entry, MAX_BATCH, MAX_SCAN_LIMIT, Precondition, ScanPage, StoreError, Write};
use super::{check_commit, prefix_upper_bound, successor};

/// The layout this code writes and understands.
pub(crate) const SCHEMA_VERSION: i32 = 1;

/// How long a call waits for a pooled connection, or for a new one, before
/// it answers `unavailable` (a `503` the client retries).
const WAIT: Duration = Duration::from_secs(5);

/// Whole-transaction retries after a deadlock or serialization failure.
const RETRIES: usize = 5;

/// Any constant works: concurrent first starts of several replicas take
/// this advisory lock while one of them creates the schema.
const SCHEMA_LOCK: i64 = 0x5c1e_7001;

const SCHEMA: &str = "
    CREATE TABLE kv (
        key bytea PRIMARY KEY,
        value bytea NOT NULL,
        version bigint NOT NULL
    );
    CREATE SEQUENCE kv_version AS bigint MINVALUE 1;
";

/// A [`Backend`] over one PostgreSQL database.
pub struct PostgresStore {
    pool: Pool,
    /// Fault injection for the tests: a slow disk under every commit.
    delay: Option<Duration>,
    runtime: tokio::runtime::Handle,
    /// The URL without its password, for messages.
    shown: String,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("db", &self.shown).finish_non_exhaustive()
    }
}

/// Whether `--db` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// `url` with any password replaced, for logs and error messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_owned(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("postgres: {what}: {e}"))
}

impl PostgresStore {
    /// Connects a pool of at most `pool_size` connections to the database
    /// at `url`, creating the schema on first use. Must run inside a tokio
    /// runtime (its handle drives the connections); refuses a database whose
    /// schema is newer than this binary's.
    ///
    /// `sslmode=require` in the URL speaks TLS and verifies the server's
    /// certificate against the system's CAs and those in the PEM file `ca`
    /// (a managed service's own CA, say); any other mode connects in plain
    /// TCP (for loopback or a private network).
    pub async fn open(url: &str, pool_size: usize, ca: Option<&Path>) -> Result<Self, StoreError> {
        let shown = redact(url);
        let config = tokio_postgres::Config::from_str(url).map_err(|e| unavailable(&format!("bad URL {shown}"), e))?;
        let settings = ManagerConfig { recycling_method: RecyclingMethod::Fast };
        let manager = if config.get_ssl_mode() == SslMode::Require {
            Manager::from_config(config, tls(ca)?, settings)
        } else {
            Manager::from_config(config, NoTls, settings)
        };
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(WAIT))
            .create_timeout(Some(WAIT))
            .recycle_timeout(Some(WAIT))
            .build()
            .map_err(|e| unavailable("pool", e))?;
        let delay = std::env::var("SCIMLET_FAULT_COMMIT_DELAY_MS")
            .ok()
            .and_then(|ms| ms.parse().ok())
            .map(Duration::from_millis);
        let store = PostgresStore { pool, delay, runtime: tokio::runtime::Handle::current(), shown };
        store.migrate().await?;
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| unavailable(&format!("cannot connect to {}", self.shown), e))
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| unavailable("begin", e))?;
        let fail = |e| unavailable("creating the schema", e);
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK]).await.map_err(fail)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS scimlet_schema (version integer NOT NULL)").await.map_err(fail)?;
        let found: Option<i32> =
            tx.query_opt("SELECT max(version) FROM scimlet_schema", &[]).await.map_err(fail)?.and_then(|r| r.get(0));
        match found {
            None => {
                tx.batch_execute(SCHEMA).await.map_err(fail)?;
                tx.execute("INSERT INTO scimlet_schema (version) VALUES ($1)", &[&SCHEMA_VERSION])
                    .await
                    .map_err(fail)?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::Unavailable(format!(
                    "postgres: the database {} has schema version {v}, newer than this scimlet understands \
                     ({SCHEMA_VERSION}); run the scimlet that wrote it, or a newer one",
                    self.shown
                )));
            }
            Some(_) => {}
        }
        tx.commit().await.map_err(fail)
    }

    /// Runs `work` to completion from a blocking caller: a thread of
    /// tokio's blocking pool or any thread outside the runtime (on an async
    /// worker tokio refuses with a panic, which the runtime's storage calls
    /// catch and answer as `unavailable`).
    fn wait<R>(&self, work: impl std::future::Future<Output = Result<R, StoreError>>) -> Result<R, StoreError> {
        self.runtime.block_on(work)
    }

    async fn get_async(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT value, version FROM kv WHERE key = $1")
            .await
            .map_err(|e| unavailable("get", e))?;
        let row = client.query_opt(&statement, &[&key.as_bytes()]).await.map_err(|e| unavailable("get", e))?;
        Ok(row.map(|r| Entry { key: key.to_owned(), value: r.get(0), version: version_from_sql(r.get(1)) }))
    }

    async fn get_many_async(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if keys.len() > MAX_BATCH {
            return Err(StoreError::Unavailable(format!("get-many of {} keys exceeds {MAX_BATCH}", keys.len())));
        }
        let client = self.client().await?;
        let statement = client
            .prepare_cached("SELECT key, value, version FROM kv WHERE key = ANY($1)")
            .await
            .map_err(|e| unavailable("get-many", e))?;
        let wanted: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
        let rows = client.query(&statement, &[&wanted]).await.map_err(|e| unavailable("get-many", e))?;
        let mut found: HashMap<Vec<u8>, (Vec<u8>, u64)> = HashMap::with_capacity(rows.len());
        for row in rows {
            found.insert(row.get(0), (row.get(1), version_from_sql(row.get(2))));
        }
        Ok(keys
            .iter()
            .map(|k| {
                found.get(k.as_bytes()).map(|(value, version)| Entry {
                    key: k.clone(),
                    value: value.clone(),
                    version: *version,
                })
            })
            .collect())
    }

    async fn scan_async(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<ScanPage, StoreError> {
        let limit = limit.min(MAX_SCAN_LIMIT);
        if limit == 0 {
            return Ok(ScanPage::default());
        }
        let fetch = i64::from(limit) + 1;
        // "key > after" is "key >= after + 0x00": one inclusive lower bound.
        let mut lower = prefix.as_bytes().to_vec();
        if let Some(after) = after {
            lower = lower.max(successor(after.as_bytes()));
        }
        let client = self.client().await?;
        let fail = |e| unavailable("scan", e);
        let rows = match prefix_upper_bound(prefix.as_bytes()) {
            Some(upper) => {
                let statement = client
                    .prepare_cached(
                        "SELECT key, value, version FROM kv WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3",
                    )
                    .await
                    .map_err(fail)?;
                client.query(&statement, &[&lower, &upper, &fetch]).await.map_err(fail)?
            }
            None => {
                let statement = client
                    .prepare_cached("SELECT key, value, version FROM kv WHERE key >= $1 ORDER BY key LIMIT $2")
                    .await
                    .map_err(fail)?;
                client.query(&statement, &[&lower, &fetch]).await.map_err(fail)?
            }
        };
        let mut entries = rows
            .into_iter()
            .map(|row| {
                let key: Vec<u8> = row.get(0);
                let key = String::from_utf8(key).map_err(|_| unavailable("scan", "a stored key is not UTF-8"))?;
                Ok(Entry { key, value: row.get(1), version: version_from_sql(row.get(2)) })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let more = entries.len() > limit as usize;
        entries.truncate(limit as usize);
        Ok(ScanPage { entries, more })
    }

    async fn commit_async(&self, writes: &[Write]) -> Result<u64, StoreError> {
        check_commit(writes)?;
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        let mut client = self.client().await?;
        let mut attempt = 0;
        loop {
            match commit_once(&mut client, writes).await {
                Err(Failure::Retry(e)) if attempt + 1 < RETRIES => {
                    attempt += 1;
                    tracing::debug!("postgres: commit retried after {e}");
                }
                Err(Failure::Retry(e)) => return Err(unavailable("commit kept colliding", e)),
                Err(Failure::Store(e)) => return Err(e),
                Ok(version) => return Ok(version),
            }
        }
    }
}

/// The TLS connector for `sslmode=require`: rustls (ring), trusting the
/// system's CAs and those of the PEM file `ca`.
fn tls(ca: Option<&Path>) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped, as every TLS client does.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(ca) = ca {
        let certs = CertificateDer::pem_file_iter(ca)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| unavailable(&format!("--db-ca {}", ca.display()), e))?;
        if certs.is_empty() {
            return Err(unavailable(&format!("--db-ca {}", ca.display()), "no certificate in the file"));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| unavailable(&format!("--db-ca {}", ca.display()), e))?;
        }
    }
    if roots.is_empty() {
        return Err(StoreError::Unavailable(
            "postgres: sslmode=require, but there is no CA to verify the server with: pass --db-ca".into(),
        ));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| unavailable("TLS", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Why one attempt at a commit did not land.
enum Failure {
    /// A deadlock or serialization failure: the whole transaction may run again.
    Retry(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.code() {
            Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE => {
                Failure::Retry(e)
            }
            _ => Failure::Store(unavailable("commit", e)),
        }
    }
}

async fn commit_once(client: &mut deadpool_postgres::Object, writes: &[Write]) -> Result<u64, Failure> {
    let tx = client.build_transaction().isolation_level(IsolationLevel::ReadCommitted).start().await?;
    // Existing rows of every key written, locked in key order (so that two
    // commits lock shared rows in the same order).
    let keys: Vec<&[u8]> = writes.iter().map(|w| w.key.as_bytes()).collect();
    let lock = tx.prepare_cached("SELECT key, version FROM kv WHERE key = ANY($1) ORDER BY key FOR UPDATE").await?;
    let mut current: HashMap<Vec<u8>, i64> = HashMap::with_capacity(writes.len());
    for row in tx.query(&lock, &[&keys]).await? {
        current.insert(row.get(0), row.get(1));
    }
    for (index, write) in writes.iter().enumerate() {
        let found = current.get(write.key.as_bytes()).copied().map(version_from_sql);
        if !write.precondition.holds(found) {
            // Dropping the transaction rolls it back.
            return Err(Failure::Store(StoreError::Conflict(index as u32)));
        }
    }
    let version: i64 = tx.query_one("SELECT nextval('kv_version')", &[]).await?.get(0);

    let mut inserts: (Vec<&[u8]>, Vec<&[u8]>) = (Vec::new(), Vec::new());
    let mut upserts: (Vec<&[u8]>, Vec<&[u8]>) = (Vec::new(), Vec::new());
    let mut deletes: Vec<&[u8]> = Vec::new();
    for write in writes {
        let key = write.key.as_bytes();
        match (&write.value, write.precondition) {
            // An absent key deleted: the precondition was the whole point.
            (None, Precondition::Absent) => {}
            (None, _) => deletes.push(key),
            (Some(value), Precondition::Absent) => {
                inserts.0.push(key);
                inserts.1.push(value);
            }
            (Some(value), _) => {
                upserts.0.push(key);
                upserts.1.push(value);
            }
        }
    }
    if !inserts.0.is_empty() {
        let insert = tx
            .prepare_cached(
                "INSERT INTO kv (key, value, version) SELECT k, v, $3 FROM unnest($1::bytea[], $2::bytea[]) AS t(k, v)
                 ON CONFLICT (key) DO NOTHING RETURNING key",
            )
            .await?;
        let landed: HashSet<Vec<u8>> =
            tx.query(&insert, &[&inserts.0, &inserts.1, &version]).await?.into_iter().map(|r| r.get(0)).collect();
        if landed.len() < inserts.0.len() {
            // Another transaction inserted one of these keys after our check.
            let index = writes
                .iter()
                .position(|w| {
                    w.precondition == Precondition::Absent && w.value.is_some() && !landed.contains(w.key.as_bytes())
                })
                .unwrap_or(0);
            return Err(Failure::Store(StoreError::Conflict(index as u32)));
        }
    }
    if !upserts.0.is_empty() {
        let upsert = tx
            .prepare_cached(
                "INSERT INTO kv (key, value, version) SELECT k, v, $3 FROM unnest($1::bytea[], $2::bytea[]) AS t(k, v)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version",
            )
            .await?;
        tx.execute(&upsert, &[&upserts.0, &upserts.1, &version]).await?;
    }
    if !deletes.is_empty() {
        let delete = tx.prepare_cached("DELETE FROM kv WHERE key = ANY($1)").await?;
        tx.execute(&delete, &[&deletes]).await?;
    }
    tx.commit().await?;
    Ok(version_from_sql(version))
}

/// Versions are stored as `bigint`; the sequence starts at 1 and never
/// reaches the sign bit in practice.
fn version_from_sql(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Backend for PostgresStore {
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.wait(self.get_async(key))
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
        self.wait(self.get_many_async(keys))
    }

    fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<ScanPage, StoreError> {
        self.wait(self.scan_async(prefix, after, limit))
    }

    fn commit(&self, writes: &[Write]) -> Result<u64, StoreError> {
        self.wait(self.commit_async(writes))
    }

    fn reads_block(&self) -> bool {
        true
    }
}

/// A database of its own on the PostgreSQL server the tests were given
/// (`SCIMLET_TEST_POSTGRES`, the URL of a database to connect to for
/// `CREATE DATABASE`; `scripts/test` starts one), dropped when done.
#[cfg(test)]
pub(crate) mod testdb {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{NoTls, PostgresStore};
    use crate::store::contract::AsStore;

    pub(crate) struct TestDb {
        pub(crate) runtime: tokio::runtime::Runtime,
        admin: String,
        name: String,
        pub(crate) url: String,
    }

    impl TestDb {
        /// `None` when no server was given, unless `SCIMLET_REQUIRE_POSTGRES`
        /// is set (as `scripts/test` sets it): then that is a failure.
        pub(crate) fn new() -> Option<TestDb> {
            let Ok(admin) = std::env::var("SCIMLET_TEST_POSTGRES") else {
                assert!(
                    std::env::var_os("SCIMLET_REQUIRE_POSTGRES").is_none(),
                    "SCIMLET_REQUIRE_POSTGRES is set but SCIMLET_TEST_POSTGRES names no server"
                );
                return None;
            };
            static SEQ: AtomicUsize = AtomicUsize::new(0);
            let name = format!("scimlet_test_{}_{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async {
                let (client, conn) = tokio_postgres::connect(&admin, NoTls).await.expect("connect to the test server");
                tokio::spawn(conn);
                client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create a test database");
            });
            let url = match admin.rsplit_once('/') {
                Some((server, _)) => format!("{server}/{name}"),
                None => panic!("SCIMLET_TEST_POSTGRES {admin:?} names no database"),
            };
            Some(TestDb { runtime, admin, name, url })
        }

        pub(crate) fn store(&self) -> PostgresStore {
            self.runtime.block_on(PostgresStore::open(&self.url, 8, None)).expect("open the test database")
        }
    }

    impl scimlet_storage_conformance::Subject for TestDb {
        fn open(&self) -> scimlet_storage_conformance::Handle {
            AsStore::handle(self.store())
        }
    }

    impl Drop for TestDb {
        fn drop(&mut self) {
            let (admin, name) = (self.admin.clone(), self.name.clone());
            self.runtime.block_on(async move {
                if let Ok((client, conn)) = tokio_postgres::connect(&admin, NoTls).await {
                    tokio::spawn(conn);
                    let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testdb::TestDb;
    use super::*;

    scimlet_storage_conformance::conformance_tests!(TestDb::new());

    #[test]
    fn the_schema_is_created_once_and_a_newer_one_refused() {
        let Some(db) = TestDb::new() else { return };
        let first = db.store();
        first
            .commit(&[Write { key: "k".into(), value: Some(b"v".to_vec()), precondition: Precondition::Absent }])
            .unwrap();
        // A second replica starting on the same database keeps the data.
        let second = db.store();
        assert_eq!(second.get("k").unwrap().map(|e| e.value), Some(b"v".to_vec()));
        db.runtime.block_on(async {
            let client = first.client().await.unwrap();
            client.execute("INSERT INTO scimlet_schema (version) VALUES (99)", &[]).await.unwrap();
        });
        let err = db.runtime.block_on(PostgresStore::open(&db.url, 2, None)).unwrap_err();
        assert!(err.to_string().contains("has schema version 99, newer than this scimlet understands (1)"), "{err}");
    }

    /// `sslmode=require`: TLS, and a server certificate the client cannot
    /// verify is refused rather than trusted.
    #[test]
    fn tls_is_verified_against_the_given_ca() {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        use std::os::unix::fs::{MetadataExt, PermissionsExt};

        let Some(db) = TestDb::new() else { return };
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&key, &ca).unwrap();

        // The server's key must belong to the user the server runs as, and be
        // readable by it alone.
        let dir = crate::store::testutil::TempDir::new();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let (cert_file, key_file, ca_file) =
            (dir.path().join("server.crt"), dir.path().join("server.key"), dir.path().join("ca.pem"));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        std::fs::write(&ca_file, ca.pem()).unwrap();
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let plain = db.store();
        // One statement a call: ALTER SYSTEM refuses a transaction block.
        let admin = |sql: String| {
            db.runtime.block_on(async {
                let client = plain.client().await.unwrap();
                for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                    client.batch_execute(statement).await.unwrap();
                }
            })
        };
        let data_dir: String = db.runtime.block_on(async {
            let client = plain.client().await.unwrap();
            client.query_one("SHOW data_directory", &[]).await.unwrap().get(0)
        });
        let owner = std::fs::metadata(&data_dir).unwrap().uid();
        if owner != std::fs::metadata(&key_file).unwrap().uid() {
            std::os::unix::fs::chown(&key_file, Some(owner), None).unwrap();
        }
        admin(format!(
            "ALTER SYSTEM SET ssl_cert_file = '{}'; ALTER SYSTEM SET ssl_key_file = '{}'; ALTER SYSTEM SET ssl = on; SELECT pg_reload_conf();",
            cert_file.display(),
            key_file.display()
        ));
        // A reload takes effect shortly after it is asked for.
        std::thread::sleep(Duration::from_millis(500));

        let url = format!("{}?sslmode=require", db.url);
        let trusted = db.runtime.block_on(PostgresStore::open(&url, 2, Some(&ca_file)));
        let refused = db.runtime.block_on(PostgresStore::open(&url, 2, None));
        admin("ALTER SYSTEM RESET ssl; ALTER SYSTEM RESET ssl_cert_file; ALTER SYSTEM RESET ssl_key_file; SELECT pg_reload_conf();".into());

        let trusted = trusted.expect("TLS with the server's CA");
        let v = trusted
            .commit(&[Write { key: "k".into(), value: Some(b"v".to_vec()), precondition: Precondition::Absent }])
            .unwrap();
        assert_eq!(trusted.get("k").unwrap().map(|e| e.version), Some(v));
        let tls_in_use: bool = db.runtime.block_on(async {
            let client = trusted.client().await.unwrap();
            client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.unwrap().get(0)
        });
        assert!(tls_in_use, "the connection is encrypted");
        let err = refused.unwrap_err().to_string();
        assert!(err.contains("certificate") || err.contains("TLS"), "{err}");
        // A CA file without a certificate is an error of its own.
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = db.runtime.block_on(PostgresStore::open(&url, 2, Some(&empty))).unwrap_err().to_string();
        assert!(err.contains("no certificate in the file"), "{err}");
    }

    #[test]
    fn an_unreachable_server_is_unavailable_not_a_panic() {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        // Port 9 (discard) on loopback: nothing listens there.
        let err = runtime.block_on(PostgresStore::open("postgres://scim:pw@127.0.0.1:9/scim", 2, None)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("cannot connect to postgres://scim:***@127.0.0.1:9/scim"), "{text}");
        assert!(!text.contains("pw"), "{text}");
    }

    #[test]
    fn urls_are_recognised_and_passwords_never_shown() {
        assert!(is_postgres_url("postgres://u:p@h/db"));
        assert!(is_postgres_url("postgresql://h/db"));
        assert!(!is_postgres_url("./scimlet.db"));
        assert!(!is_postgres_url("sqlite:postgres.db"));
        assert_eq!(redact("postgres://scim:s3cret@db.example:5432/scim"), "postgres://scim:***@db.example:5432/scim");
        assert_eq!(redact("postgres://scim@db/scim"), "postgres://scim@db/scim");
        assert_eq!(
            redact("postgres://db/scim?sslmode=require&password=x"),
            "postgres://db/scim?sslmode=require&password=***"
        );
        assert_eq!(redact("postgres://u:p@db?password=x"), "postgres://u:***@db?password=***");
    }
}
