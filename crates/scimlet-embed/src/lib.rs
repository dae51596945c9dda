//! scimlet inside your own Rust application: the SCIM component runs in your
//! wasmtime [`Engine`], on a [`Storage`] you implement, behind the HTTP
//! server you already have.
//!
//! The crate carries the component (built from this workspace and embedded),
//! so nothing else needs to be installed or shipped. Every SCIM and
//! provisioning rule lives in the component; this crate only hands it
//! requests and storage, and bounds each request in memory and time.
//!
//! ```no_run
//! use scimlet_embed::{MemStorage, Scimlet};
//!
//! # async fn run() -> Result<(), scimlet_embed::Error> {
//! let engine = wasmtime::Engine::new(&scimlet_embed::engine_config())?;
//! let scim = Scimlet::builder(&engine)
//!     .base_paths("/scim/{account}/v2")
//!     .build(MemStorage::new())?;
//! if let Some((account, token)) = scim.bootstrap("default").await? {
//!     println!("tenant URL http://localhost:3000{}, token {}", account.scim_path, token.token);
//! }
//! // Any server: hand it the request, send back what comes out.
//! let response = scim.handle(http::Request::get("/scim/nope/v2/Users").body(bytes::Bytes::new()).unwrap()).await;
//! assert_eq!(response.status(), 401);
//! # Ok(()) }
//! ```
//!
//! With the `axum` feature, [`Scimlet::router`] gives the routes to merge
//! into an application next to its own.
//!
//! Each request gets a fresh instance of the component from an
//! [`InstancePre`](wasmtime::component::InstancePre), linked once, so
//! nothing one request leaves in guest memory is seen by the next, a
//! trapped guest costs only its own request, and memory is bounded per
//! request rather than per process.

pub mod conformance;
mod memory;
mod storage;

#[cfg(feature = "axum")]
mod router;

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HOST, RETRY_AFTER};
use http::{HeaderName, HeaderValue, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, Trap, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

pub use memory::MemStorage;
pub use storage::{Entry, Precondition, ScanPage, Storage, StorageError, Write};

pub use bindings::exports::scimlet::provider::admin::{Account, AdminError, NewToken, TokenInfo};

use bindings::scimlet::provider::types::Request as GuestRequest;
use bindings::{ScimletCore, ScimletCorePre};
use storage::DynStorage;

/// The scimlet component, as built from this workspace: what
/// [`Builder::build`] compiles unless [`Builder::component`] gives another.
pub static COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/scim_component.wasm"));

/// The largest request body accepted; larger ones are answered 413 before
/// the component runs. The core's own limit, which it also advertises as
/// `maxPayloadSize`.
pub const MAX_BODY: usize = scim_core::MAX_BODY;

/// Linear memory one request may use by default, as in the runner.
pub const DEFAULT_MEMORY_LIMIT: usize = 64 << 20;

/// How long one request may run by default, as in the runner.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// Requests served at once by default; each holds an instance of up to its
/// memory limit, so this bounds the memory requests can take together
/// (64 x 64 MiB at the defaults).
pub const DEFAULT_MAX_CONCURRENT: usize = 64;

/// How long a request waits for one of the concurrent slots before it is
/// answered 503 with `Retry-After`: a burst waits, an overload is refused
/// while it is still cheap to refuse.
const QUEUE_WAIT: Duration = Duration::from_secs(1);

/// How often the epoch ticker started by [`Builder::build`] advances the
/// engine's epoch: the granularity of deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(100);

/// Time a request gets to answer after one of its commits landed, even past
/// its deadline: an error answer would tell the client a write failed that
/// did not.
const COMMIT_GRACE: Duration = Duration::from_secs(10);

#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "scimlet-core",
        imports: { default: async },
        exports: { default: async },
        additional_derives: [PartialEq, Eq],
    });
}

/// A wasmtime configuration an engine for scimlet needs: epoch interruption
/// (how a request's deadline is enforced). Start from it and add your own
/// settings, or enable `epoch_interruption` on the configuration you have.
pub fn engine_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    config
}

/// Why building a [`Scimlet`] or an admin call failed.
#[derive(Debug)]
pub enum Error {
    /// A setting was refused (the text names it); nothing was started.
    Config(String),
    /// The component refused the admin call.
    Admin(AdminError),
    /// The component could not be compiled, instantiated, or run to an
    /// answer: a trap, the deadline, the memory limit.
    Runtime(wasmtime::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(why) => write!(f, "configuration refused: {why}"),
            Error::Admin(AdminError::NotFound(what)) => write!(f, "not found: {what}"),
            Error::Admin(AdminError::Invalid(why)) => write!(f, "invalid: {why}"),
            Error::Admin(AdminError::Unavailable(why)) => write!(f, "storage unavailable: {why}"),
            Error::Runtime(err) => write!(f, "component failed: {err:#}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<wasmtime::Error> for Error {
    fn from(err: wasmtime::Error) -> Self {
        Error::Runtime(err)
    }
}

impl From<AdminError> for Error {
    fn from(err: AdminError) -> Self {
        Error::Admin(err)
    }
}

/// Settings for a [`Scimlet`]; every one has a default.
#[must_use]
pub struct Builder {
    engine: Engine,
    component: Option<Component>,
    admin_token: Option<String>,
    policy: String,
    base_paths: Option<String>,
    public_origin: Option<String>,
    memory_limit: usize,
    deadline: Duration,
    max_concurrent: usize,
    epoch_ticker: bool,
}

impl Builder {
    /// A compiled component to run instead of compiling [`COMPONENT`]:
    /// another build of scimlet, or one compiled once and shared by several
    /// [`Scimlet`]s (compiling takes seconds; it must come from the same
    /// engine).
    pub fn component(mut self, component: Component) -> Self {
        self.component = Some(component);
        self
    }

    /// Enables the component's admin API under `/api/accounts` for bearers
    /// of `token` (at least 16 bytes). Off by default: the methods of
    /// [`Scimlet`] reach the same functions without it.
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(token.into());
        self
    }

    /// The provisioning policy: `provisioning` (the default) or `plain`
    /// (RFC 7643/7644 alone); see the README's "Policies and base paths".
    pub fn policy(mut self, policy: impl Into<String>) -> Self {
        self.policy = policy.into();
        self
    }

    /// Where SCIM is served: comma-separated templates naming `{account}`
    /// as a whole segment, such as `/scim/{account}/v2`. The first is the
    /// tenant path accounts report. Default: the runner's three.
    pub fn base_paths(mut self, templates: impl Into<String>) -> Self {
        self.base_paths = Some(templates.into());
        self
    }

    /// The scheme and authority clients reach the application at, such as
    /// `https://scim.example.com`, for absolute `meta.location` URLs. By
    /// default they come from each request (its URI, else its `Host`
    /// header, with `http`), which is wrong behind a TLS-terminating proxy.
    pub fn public_origin(mut self, origin: impl Into<String>) -> Self {
        self.public_origin = Some(origin.into());
        self
    }

    /// Most linear memory one request's instance may grow to; a request
    /// that needs more is answered 500. Default [`DEFAULT_MEMORY_LIMIT`].
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Longest the component may compute for one request before it is
    /// interrupted and the request answered 503; default
    /// [`DEFAULT_DEADLINE`]. Time spent inside [`Storage`] calls counts,
    /// but a storage call itself is not interrupted: bound it in the store
    /// (a driver timeout answered as [`StorageError::Unavailable`]).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Most requests served at once (default [`DEFAULT_MAX_CONCURRENT`]);
    /// one more waits up to a second for a slot, then is answered 503
    /// with `Retry-After`. Admin calls are not counted.
    pub fn max_concurrent(mut self, requests: usize) -> Self {
        self.max_concurrent = requests.max(1);
        self
    }

    /// Whether [`Builder::build`] starts a thread that advances the
    /// engine's epoch every [`EPOCH_TICK`] for as long as the [`Scimlet`]
    /// lives (the default). Turn it off when the application already
    /// increments the epoch of this engine regularly: deadlines are checked
    /// against the clock at each tick, so only the tick's rate matters.
    pub fn epoch_ticker(mut self, start: bool) -> Self {
        self.epoch_ticker = start;
        self
    }

    /// Checks the settings, compiles and links the component, and returns
    /// the handle that serves requests on `storage`.
    pub fn build(self, storage: impl Storage) -> Result<Scimlet, Error> {
        if !self.engine.get_epoch_interruption() {
            return Err(Error::Config(
                "the engine needs epoch interruption (wasmtime::Config::epoch_interruption), \
                 which enforces each request's deadline; start from scimlet_embed::engine_config()"
                    .into(),
            ));
        }
        if let Some(token) = &self.admin_token
            && token.trim().len() < scim_core::MIN_ADMIN_TOKEN
        {
            return Err(Error::Config(format!(
                "the admin token must be at least {} bytes",
                scim_core::MIN_ADMIN_TOKEN
            )));
        }
        let mut env = vec![("SCIMLET_POLICY".to_owned(), self.policy.clone())];
        if let Some(paths) = &self.base_paths {
            env.push(("SCIMLET_BASE_PATHS".to_owned(), paths.clone()));
        }
        if let Some(token) = &self.admin_token {
            env.push(("SCIMLET_ADMIN_TOKEN".to_owned(), token.clone()));
        }
        // The component reads these from its environment at every call;
        // refusing them here turns a typo into an error at start rather
        // than a 500 on every request.
        let config = scim_core::Config::from_vars(|name| env.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()))
            .map_err(Error::Config)?;
        let origin = self.public_origin.as_deref().map(parse_origin).transpose()?;

        let component = match self.component {
            Some(component) => component,
            None => Component::new(&self.engine, COMPONENT)?,
        };
        let mut linker = Linker::new(&self.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        // The component imports wasi:http's types for its wasi-http export,
        // which this crate does not call; its outgoing requests are refused.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        ScimletCore::add_to_linker::<_, HasSelf<State>>(&mut linker, |state| state)?;
        let pre = ScimletCorePre::new(linker.instantiate_pre(&component)?)?;

        let prefixes = mount_prefixes(&self.base_paths);
        let alive = Arc::new(());
        if self.epoch_ticker {
            spawn_epoch_ticker(&self.engine, Arc::downgrade(&alive));
        }
        Ok(Scimlet {
            inner: Arc::new(Inner {
                engine: self.engine,
                pre,
                storage: Arc::new(storage),
                env,
                memory_limit: self.memory_limit,
                deadline: self.deadline,
                slots: Arc::new(tokio::sync::Semaphore::new(self.max_concurrent)),
                origin,
                config,
                prefixes,
                _alive: alive,
            }),
        })
    }
}

/// scimlet, ready to serve: cheap to clone (clones share everything), safe
/// to use from many tasks at once. Requests and admin calls must run on a
/// tokio runtime.
#[derive(Clone)]
pub struct Scimlet {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    pre: ScimletCorePre<State>,
    storage: Arc<dyn DynStorage>,
    env: Vec<(String, String)>,
    memory_limit: usize,
    deadline: Duration,
    /// One permit per request being served.
    slots: Arc<tokio::sync::Semaphore>,
    origin: Option<(String, String)>,
    config: scim_core::Config,
    prefixes: Vec<String>,
    /// Keeps the epoch ticker running; it stops once this is dropped.
    _alive: Arc<()>,
}

impl fmt::Debug for Scimlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scimlet")
            .field("base_paths", self.inner.config.base_paths())
            .field("admin_api", &self.inner.config.admin_enabled())
            .field("memory_limit", &self.inner.memory_limit)
            .field("deadline", &self.inner.deadline)
            .finish_non_exhaustive()
    }
}

impl Scimlet {
    /// Settings for a scimlet on `engine`, which must have epoch
    /// interruption enabled (see [`engine_config`]).
    pub fn builder(engine: &Engine) -> Builder {
        Builder {
            engine: engine.clone(),
            component: None,
            admin_token: None,
            policy: "provisioning".to_owned(),
            base_paths: None,
            public_origin: None,
            memory_limit: DEFAULT_MEMORY_LIMIT,
            deadline: DEFAULT_DEADLINE,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            epoch_ticker: true,
        }
    }

    /// A scimlet with every default setting on `storage`.
    pub fn new(engine: &Engine, storage: impl Storage) -> Result<Scimlet, Error> {
        Scimlet::builder(engine).build(storage)
    }

    /// The path prefixes to route to [`Scimlet::handle`]: the literal start
    /// of every base path, such as `/scim/` for `/scim/{account}/v2`. The
    /// component answers every path under them, unknown ones included.
    pub fn prefixes(&self) -> &[String] {
        &self.inner.prefixes
    }

    /// Where the admin API is served when an admin token enables it: this
    /// path and everything below it (`/api/accounts`).
    pub fn admin_api_path(&self) -> Option<&'static str> {
        self.inner.config.admin_enabled().then_some(scim_core::ADMIN_API_PREFIX)
    }

    /// The SCIM base path of an account (under the first base path).
    pub fn scim_path(&self, account_id: &str) -> String {
        self.inner.config.base_paths().scim_path(account_id)
    }

    /// Answers one request whose body has been read. Its path must be the
    /// one the client sent: the base paths are matched against it whole,
    /// so a router must not strip its mount prefix. A body over [`MAX_BODY`] is answered 413 without
    /// running the component; a trap 500 and a deadline 503, both as SCIM
    /// error documents and logged through `tracing`.
    ///
    /// The component runs in a task of its own, so that a client that goes
    /// away cannot cancel it between a commit and its answer.
    pub async fn handle(&self, request: http::Request<Bytes>) -> http::Response<Bytes> {
        let (parts, body) = request.into_parts();
        if body.len() > MAX_BODY {
            return error_response(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        }
        let slot = match tokio::time::timeout(QUEUE_WAIT, Arc::clone(&self.inner.slots).acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            _ => {
                let mut response = error_response(StatusCode::SERVICE_UNAVAILABLE, "too many requests at once");
                response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(1));
                return response;
            }
        };
        let request = self.guest_request(parts, body);
        let inner = Arc::clone(&self.inner);
        let task = tokio::spawn(async move {
            // Held until the instance is done, even if the caller is gone.
            let _slot = slot;
            let (mut store, core) = inner.instantiate().await?;
            core.scimlet_provider_handler().call_handle(&mut store, &request).await
        });
        match task.await {
            Ok(Ok(response)) => http_response(response.status, response.headers, response.body),
            Ok(Err(err)) if is_deadline(&err) => {
                tracing::warn!("scimlet: request interrupted at its deadline of {:?}", self.inner.deadline);
                let mut response = error_response(StatusCode::SERVICE_UNAVAILABLE, "request timed out");
                response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(5));
                response
            }
            Ok(Err(err)) => {
                tracing::error!("scimlet: component failed: {err:#}");
                error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
            Err(join) => {
                tracing::error!("scimlet: request task failed: {join}");
                error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }

    /// Reads the body of a request as a server delivers it (bounded by
    /// [`MAX_BODY`], and by the deadline for a slow client), then answers it
    /// as [`Scimlet::handle`] does.
    pub async fn handle_body<B>(&self, request: http::Request<B>) -> http::Response<Bytes>
    where
        B: http_body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (parts, body) = request.into_parts();
        let declared = parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|length| length > MAX_BODY as u64) {
            return error_response(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        }
        let body = match tokio::time::timeout(self.inner.deadline, Limited::new(body, MAX_BODY).collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(err)) if err.is::<LengthLimitError>() => {
                return error_response(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
            }
            Ok(Err(_)) => return error_response(StatusCode::BAD_REQUEST, "could not read request body"),
            Err(_) => return error_response(StatusCode::REQUEST_TIMEOUT, "request body not received in time"),
        };
        self.handle(http::Request::from_parts(parts, body)).await
    }

    /// Creates an account.
    pub async fn create_account(&self, name: &str) -> Result<Account, Error> {
        let (mut store, core) = self.inner.instantiate().await?;
        Ok(core.scimlet_provider_admin().call_create_account(&mut store, name).await??)
    }

    /// Every account, in the order of their ids.
    pub async fn list_accounts(&self) -> Result<Vec<Account>, Error> {
        let (mut store, core) = self.inner.instantiate().await?;
        Ok(core.scimlet_provider_admin().call_list_accounts(&mut store).await??)
    }

    /// Creates a SCIM bearer token for an account, valid for
    /// `expires_in_days` (default 365, at most 3650). The secret is in the
    /// answer only: the store keeps its hash.
    pub async fn create_token(
        &self,
        account_id: &str,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> Result<NewToken, Error> {
        let (mut store, core) = self.inner.instantiate().await?;
        Ok(core.scimlet_provider_admin().call_create_token(&mut store, account_id, name, expires_in_days).await??)
    }

    /// An account's tokens, revoked and expired ones included.
    pub async fn list_tokens(&self, account_id: &str) -> Result<Vec<TokenInfo>, Error> {
        let (mut store, core) = self.inner.instantiate().await?;
        Ok(core.scimlet_provider_admin().call_list_tokens(&mut store, account_id).await??)
    }

    /// Revokes a token at once.
    pub async fn revoke_token(&self, account_id: &str, token_id: &str) -> Result<TokenInfo, Error> {
        let (mut store, core) = self.inner.instantiate().await?;
        Ok(core.scimlet_provider_admin().call_revoke_token(&mut store, account_id, token_id).await??)
    }

    /// On a store without accounts, creates one named `name` and a first
    /// token for it; on any other store does nothing and returns `None`.
    /// Meant for every start of the application: only the first one acts.
    pub async fn bootstrap(&self, name: &str) -> Result<Option<(Account, NewToken)>, Error> {
        let (mut store, core) = self.inner.instantiate().await?;
        Ok(core.scimlet_provider_admin().call_bootstrap(&mut store, name).await??)
    }

    /// The request as the component's typed door takes it.
    fn guest_request(&self, parts: http::request::Parts, body: Bytes) -> GuestRequest {
        let (scheme, authority) = match &self.inner.origin {
            Some((scheme, authority)) => (scheme.clone(), Some(authority.clone())),
            None => (
                parts.uri.scheme_str().unwrap_or("http").to_owned(),
                parts
                    .uri
                    .authority()
                    .map(|a| a.to_string())
                    .or_else(|| parts.headers.get(HOST).and_then(|h| h.to_str().ok()).map(str::to_owned)),
            ),
        };
        GuestRequest {
            method: parts.method.as_str().to_owned(),
            path_with_query: parts.uri.path_and_query().map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned()),
            scheme: Some(scheme),
            authority,
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
                .collect(),
            body: body.into(),
        }
    }
}

impl Inner {
    /// A fresh instance in a store of its own, bounded in memory and time.
    async fn instantiate(&self) -> wasmtime::Result<(Store<State>, ScimletCore)> {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stderr().allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        for (name, value) in &self.env {
            wasi.env(name, value);
        }
        let now = Instant::now();
        let state = State {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: NoOutgoingHttp,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new().memory_size(self.memory_limit).trap_on_grow_failure(true).build(),
            deadline: now + self.deadline,
            hard_deadline: now + self.deadline + COMMIT_GRACE,
            storage: Arc::clone(&self.storage),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(1);
        // At every tick: yield to tokio so that a busy guest does not hold
        // a worker, or stop the guest once its deadline has passed.
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        let core = self.pre.instantiate_async(&mut store).await?;
        Ok((store, core))
    }
}

/// Per-request state: the WASI contexts, the limits and the storage.
struct State {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: NoOutgoingHttp,
    table: ResourceTable,
    limits: StoreLimits,
    deadline: Instant,
    /// The latest a landed commit may push the deadline to.
    hard_deadline: Instant,
    storage: Arc<dyn DynStorage>,
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

/// Refuses every outgoing request: the component has no reason to make
/// one, and a SCIM payload must not be able to make it.
struct NoOutgoingHttp;

impl WasiHttpHooks for NoOutgoingHttp {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                )>,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

impl bindings::scimlet::provider::storage::Host for State {
    async fn get(&mut self, key: String) -> Result<Option<Entry>, StorageError> {
        self.storage.get(&key).await
    }

    async fn get_many(&mut self, keys: Vec<String>) -> Result<Vec<Option<Entry>>, StorageError> {
        self.storage.get_many(&keys).await
    }

    async fn scan(&mut self, prefix: String, after: Option<String>, limit: u32) -> Result<ScanPage, StorageError> {
        self.storage.scan(&prefix, after.as_deref(), limit).await
    }

    async fn commit(&mut self, writes: Vec<Write>) -> Result<u64, StorageError> {
        let result = self.storage.commit(writes).await;
        if result.is_ok() {
            let grace = (Instant::now() + COMMIT_GRACE).min(self.hard_deadline);
            self.deadline = self.deadline.max(grace);
        }
        result
    }
}

/// `types` holds only records; its host trait has nothing to implement.
impl bindings::scimlet::provider::types::Host for State {}

/// Whether a call failed because its deadline passed.
fn is_deadline(err: &wasmtime::Error) -> bool {
    matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt))
}

/// `https://host:port` as a scheme and an authority; nothing else.
fn parse_origin(origin: &str) -> Result<(String, String), Error> {
    let bad = |why: &str| Error::Config(format!("public origin {origin:?}: {why}"));
    let uri: http::Uri = origin.trim_end_matches('/').parse().map_err(|_| bad("not a URL"))?;
    let scheme = uri.scheme_str().filter(|s| matches!(*s, "http" | "https")).ok_or_else(|| bad("http or https"))?;
    let authority = uri.authority().ok_or_else(|| bad("no host"))?;
    if uri.path_and_query().is_some_and(|pq| pq.as_str() != "/") {
        return Err(bad("scheme and host only, no path"));
    }
    Ok((scheme.to_owned(), authority.as_str().to_owned()))
}

/// The literal start of each base path template.
fn mount_prefixes(base_paths: &Option<String>) -> Vec<String> {
    let templates: Vec<String> = match base_paths.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(list) => list.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect(),
        None => scim_core::paths::DEFAULT_BASE_PATHS.iter().map(|t| (*t).to_owned()).collect(),
    };
    let mut prefixes: Vec<String> = Vec::new();
    for template in &templates {
        let prefix = template.split_once(scim_core::paths::ACCOUNT).map_or(template.as_str(), |(before, _)| before);
        if !prefixes.iter().any(|p| p == prefix) {
            prefixes.push(prefix.to_owned());
        }
    }
    prefixes
}

/// A response from the component's parts; a header HTTP cannot carry is
/// dropped rather than sent.
fn http_response(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> http::Response<Bytes> {
    let mut response = http::Response::new(Bytes::from(body));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// A SCIM error document for an answer this crate gives itself: the core's
/// format, so that clients see one.
fn error_response(status: StatusCode, detail: &'static str) -> http::Response<Bytes> {
    let answer = scim_core::ScimError::new(status.as_u16(), None, detail).to_response();
    http_response(answer.status, answer.headers, answer.body)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the engine or
/// the [`Scimlet`] that started it is gone.
fn spawn_epoch_ticker(engine: &Engine, alive: Weak<()>) {
    let engine = engine.weak();
    let started = std::thread::Builder::new().name("scimlet-epoch".into()).spawn(move || {
        loop {
            std::thread::sleep(EPOCH_TICK);
            match (alive.upgrade(), engine.upgrade()) {
                (Some(_), Some(engine)) => engine.increment_epoch(),
                _ => break,
            }
        }
    });
    if let Err(err) = started {
        tracing::error!("scimlet: cannot start the epoch ticker ({err}); deadlines are not enforced");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_a_scheme_and_an_authority() {
        assert_eq!(parse_origin("https://scim.example.com").unwrap(), ("https".into(), "scim.example.com".into()));
        assert_eq!(parse_origin("http://127.0.0.1:8080/").unwrap(), ("http".into(), "127.0.0.1:8080".into()));
        for bad in ["scim.example.com", "ftp://x", "https://x/scim", "https://x?q=1", ""] {
            assert!(matches!(parse_origin(bad), Err(Error::Config(_))), "{bad}");
        }
    }

    #[test]
    fn prefixes_are_the_literal_start_of_each_template() {
        assert_eq!(
            mount_prefixes(&Some("/scim/{account}/v2, /tenants/{account}/scim, /scim/{account}".into())),
            ["/scim/", "/tenants/"]
        );
        assert_eq!(
            mount_prefixes(&None),
            ["/gateway/ng/api/scim/account/", "/gateway/api/scim/account/", "/api/scim/account/"]
        );
    }
}
