//! A test host for the `scim-spin` component: what Spin 4.0.x gives that
//! component, on wasmtime 48, so that the Spin build is tested here without
//! the Spin CLI.
//!
//! - `fermyon:spin/sqlite@2.0.0` over a real SQLite file (rusqlite, the engine
//!   Spin's local databases use). Each `open` is a new connection, as in Spin,
//!   and only the database labelled `default` may be opened.
//! - `fermyon:spin/variables@2.0.0` from a map.
//! - WASI and `wasi:http` from `wasmtime-wasi`/`wasmtime-wasi-http` (outgoing
//!   requests refused), one fresh instance per request, as Spin does.
//!
//! Blocking SQLite work runs on tokio's blocking pool, so instances really
//! run at the same time and contend for the database's lock as they would
//! under `spin up`: requests are not serialised.
//!
//! The WIT of the Spin interfaces is vendored under `wit/deps/spin@2.0.0`.
//! For the benchmark the host can also run the generic `scim-component`, its
//! `storage` import answered by the same SQL store code over rusqlite.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use wasmtime::component::{Component, Linker, Resource, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

pub mod sql;
pub use scimlet_sql_store as sql_store;

/// The Spin component built from `crates/scim-spin` by `build.rs`.
pub static SPIN_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/scim_spin.wasm"));
/// The generic component built from `crates/scim-component` by `build.rs`.
pub static GENERIC_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/scim_component.wasm"));

/// The Spin database label the component may open.
pub const DATABASE: &str = "default";

mod spin_bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "scimlet:spin-host/spin-imports",
        imports: { default: async },
        with: { "fermyon:spin/sqlite.connection": super::SpinConnection },
    });
}

#[allow(dead_code)]
mod generic_bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "scimlet-core",
        exports: { default: async },
    });
}

use generic_bindings::scimlet::provider::storage;
use spin_bindings::fermyon::spin::{sqlite, variables};

/// An open Spin SQLite connection (the `connection` resource).
pub struct SpinConnection(Arc<Mutex<rusqlite::Connection>>);

/// Per-instance state.
pub struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: NoOutgoingHttp,
    table: ResourceTable,
    db: Arc<PathBuf>,
    variables: Arc<HashMap<String, String>>,
    /// The generic component's storage, opened on first use.
    generic: Option<sql_store::SqlStore<sql::Rusqlite>>,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// wasi-http hooks that refuse every outgoing request.
struct NoOutgoingHttp;

impl WasiHttpHooks for NoOutgoingHttp {
    fn send_request(
        &mut self,
        _request: hyper::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    hyper::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                )>,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

fn to_sql(v: sqlite::Value) -> sql_store::SqlValue {
    use sql_store::SqlValue;
    match v {
        sqlite::Value::Integer(i) => SqlValue::Integer(i),
        sqlite::Value::Real(r) => SqlValue::Real(r),
        sqlite::Value::Text(t) => SqlValue::Text(t),
        sqlite::Value::Blob(b) => SqlValue::Blob(b),
        sqlite::Value::Null => SqlValue::Null,
    }
}

fn from_sql(v: sql_store::SqlValue) -> sqlite::Value {
    use sql_store::SqlValue;
    match v {
        SqlValue::Integer(i) => sqlite::Value::Integer(i),
        SqlValue::Real(r) => sqlite::Value::Real(r),
        SqlValue::Text(t) => sqlite::Value::Text(t),
        SqlValue::Blob(b) => sqlite::Value::Blob(b),
        SqlValue::Null => sqlite::Value::Null,
    }
}

impl sqlite::Host for State {}

impl sqlite::HostConnection for State {
    async fn open(&mut self, database: String) -> Result<Resource<SpinConnection>, sqlite::Error> {
        if database != DATABASE {
            // Spin answers so for a label the component is not granted.
            return Err(sqlite::Error::AccessDenied);
        }
        let path = Arc::clone(&self.db);
        let conn = tokio::task::spawn_blocking(move || sql::open(&path))
            .await
            .map_err(|e| sqlite::Error::Io(e.to_string()))?
            .map_err(|e| sqlite::Error::Io(e.to_string()))?;
        self.table.push(SpinConnection(Arc::new(Mutex::new(conn)))).map_err(|e| sqlite::Error::Io(e.to_string()))
    }

    async fn execute(
        &mut self,
        conn: Resource<SpinConnection>,
        statement: String,
        parameters: Vec<sqlite::Value>,
    ) -> Result<sqlite::QueryResult, sqlite::Error> {
        let conn = Arc::clone(&self.table.get(&conn).map_err(|_| sqlite::Error::InvalidConnection)?.0);
        let params: Vec<_> = parameters.into_iter().map(to_sql).collect();
        let (columns, rows) = tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            sql::query(&conn, &statement, &params)
        })
        .await
        .map_err(|e| sqlite::Error::Io(e.to_string()))?
        .map_err(sqlite::Error::Io)?;
        Ok(sqlite::QueryResult {
            columns,
            rows: rows
                .into_iter()
                .map(|row| sqlite::RowResult { values: row.into_iter().map(from_sql).collect() })
                .collect(),
        })
    }

    async fn drop(&mut self, conn: Resource<SpinConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

impl variables::Host for State {
    async fn get(&mut self, name: String) -> Result<String, variables::Error> {
        self.variables.get(&name).cloned().ok_or(variables::Error::Undefined(name))
    }
}

// The generic component's `storage`, for the benchmark: the same SQL store,
// run host-side (synchronously; the benchmark sends one request at a time).
impl State {
    fn generic(&mut self) -> Result<&sql_store::SqlStore<sql::Rusqlite>, storage::Error> {
        if self.generic.is_none() {
            let conn = sql::open(&self.db).map_err(|e| storage::Error::Unavailable(e.to_string()))?;
            self.generic = Some(sql_store::SqlStore::new(sql::Rusqlite(conn)));
        }
        Ok(self.generic.as_ref().expect("just opened"))
    }
}

fn store_error(e: scim_core::StoreError) -> storage::Error {
    match e {
        scim_core::StoreError::Conflict(i) => storage::Error::Conflict(i),
        scim_core::StoreError::Unavailable(s) => storage::Error::Unavailable(s),
    }
}

fn entry(e: scim_core::Entry) -> storage::Entry {
    storage::Entry { key: e.key, value: e.value, version: e.version }
}

impl storage::Host for State {
    fn get(&mut self, key: String) -> Result<Option<storage::Entry>, storage::Error> {
        use scim_core::Store as _;
        self.generic()?.get(&key).map(|e| e.map(entry)).map_err(store_error)
    }

    fn get_many(&mut self, keys: Vec<String>) -> Result<Vec<Option<storage::Entry>>, storage::Error> {
        use scim_core::Store as _;
        self.generic()?.get_many(&keys).map(|v| v.into_iter().map(|e| e.map(entry)).collect()).map_err(store_error)
    }

    fn scan(&mut self, prefix: String, after: Option<String>, limit: u32) -> Result<storage::ScanPage, storage::Error> {
        use scim_core::Store as _;
        self.generic()?
            .scan(&prefix, after.as_deref(), limit)
            .map(|page| storage::ScanPage { entries: page.entries.into_iter().map(entry).collect(), more: page.more })
            .map_err(store_error)
    }

    fn commit(&mut self, writes: Vec<storage::Write>) -> Result<u64, storage::Error> {
        use scim_core::Store as _;
        let writes = writes
            .into_iter()
            .map(|w| scim_core::Write {
                key: w.key,
                value: w.value,
                precondition: match w.precondition {
                    storage::Precondition::None => scim_core::Precondition::None,
                    storage::Precondition::Absent => scim_core::Precondition::Absent,
                    storage::Precondition::Version(v) => scim_core::Precondition::Version(v),
                },
            })
            .collect();
        self.generic()?.commit(writes).map_err(store_error)
    }
}

impl generic_bindings::scimlet::provider::types::Host for State {}

/// The engine configuration the test host uses (on-demand allocation).
pub fn engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.max_wasm_stack(1 << 20);
    Engine::new(&config)
}

/// Which component a [`SpinHost`] runs, and so which imports it links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `scim-spin`: Spin's SQLite and variables.
    Spin,
    /// `scim-component`: scimlet's own `storage` interface.
    Generic,
}

/// A response, body read in full.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// One "Spin application": a compiled component linked against the host's
/// interfaces, a SQLite file and the variables. Every request runs in a fresh
/// instance. Dropping it and building another on the same file is a restart.
pub struct SpinHost {
    engine: Engine,
    proxy: ProxyPre<State>,
    db: Arc<PathBuf>,
    variables: Arc<HashMap<String, String>>,
}

impl SpinHost {
    /// Links `component` (already compiled with `engine`).
    pub fn new(
        engine: &Engine,
        component: &Component,
        kind: Kind,
        db: &Path,
        variables: HashMap<String, String>,
    ) -> wasmtime::Result<Self> {
        let mut linker: Linker<State> = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        match kind {
            Kind::Spin => spin_bindings::SpinImports::add_to_linker::<_, wasmtime::component::HasSelf<State>>(
                &mut linker,
                |state| state,
            )?,
            Kind::Generic => generic_bindings::ScimletCore::add_to_linker::<_, wasmtime::component::HasSelf<State>>(
                &mut linker,
                |state| state,
            )?,
        }
        let proxy = ProxyPre::new(linker.instantiate_pre(component)?)?;
        Ok(SpinHost { engine: engine.clone(), proxy, db: Arc::new(db.to_path_buf()), variables: Arc::new(variables) })
    }

    /// Runs one request through the component's `wasi:http` handler in a new
    /// instance and reads the whole response.
    pub async fn handle(&self, request: hyper::Request<Full<Bytes>>) -> wasmtime::Result<Answer> {
        let state = State {
            wasi: WasiCtx::builder().inherit_stderr().build(),
            http: WasiHttpCtx::new(),
            hooks: NoOutgoingHttp,
            table: ResourceTable::new(),
            db: Arc::clone(&self.db),
            variables: Arc::clone(&self.variables),
            generic: None,
        };
        let mut store = Store::new(&self.engine, state);
        let scheme = match request.uri().scheme_str() {
            Some("https") => Scheme::Https,
            _ => Scheme::Http,
        };
        let request = request.map(|body| {
            body.map_err(|never: std::convert::Infallible| -> wasmtime_wasi_http::Error { match never {} })
        });
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let req = store.data_mut().http().new_incoming_request(scheme, request)?;
        let out = store.data_mut().http().new_response_outparam(sender)?;
        let proxy = self.proxy.clone();
        let task = tokio::spawn(async move {
            let instance = proxy.instantiate_async(&mut store).await?;
            instance.wasi_http_incoming_handler().call_handle(&mut store, req, out).await
        });
        let response = match receiver.await {
            Ok(Ok(response)) => response,
            Ok(Err(code)) => wasmtime::bail!("component answered with error {code:?}"),
            Err(_) => {
                task.await??;
                wasmtime::bail!("component returned without a response");
            }
        };
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| wasmtime::format_err!("reading the body: {e:?}"))?.to_bytes();
        task.await??;
        Ok(Answer {
            status: parts.status.as_u16(),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect(),
            body: body.to_vec(),
        })
    }
}

/// Builds a request for [`SpinHost::handle`]: `origin` is `http://host[:port]`,
/// `path` the path and query.
pub fn request(
    origin: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> wasmtime::Result<hyper::Request<Full<Bytes>>> {
    let mut builder = hyper::Request::builder().method(method).uri(format!("{origin}{path}"));
    for (name, value) in headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(Full::new(Bytes::from(body))).map_err(|e| wasmtime::format_err!("bad request: {e}"))
}
