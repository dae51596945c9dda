//! The wasmtime side: one compiled component per process, one fresh store and
//! instance per HTTP request or CLI command.
//!
//! A fresh instance per request means no state leaks between requests or
//! tenants through guest memory, and a trapped guest costs one request only.
//! With the pooling allocator and an `InstancePre` that is a few microseconds.
//!
//! Each store is bounded: linear memory by [`StoreLimits`] (a guest that asks
//! for more traps) and wall-clock time by an epoch deadline. An epoch ticker
//! thread bumps the engine's epoch every [`EPOCH_TICK`]; at each tick the
//! store's callback lets the guest continue after yielding to tokio (so a busy
//! guest cannot hog a worker thread), or interrupts it with a trap once the
//! store's deadline has passed.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, InstancePre, Linker, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder, Trap, UpdateDeadline,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::bindings::{ScimletCore, ScimletCorePre};
use crate::store::Backend;

/// The component built from `crates/scim-component` by `build.rs`.
static EMBEDDED_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/scim_component.wasm"));

/// Most linear memory one instance may use.
pub const MEMORY_LIMIT: usize = 64 << 20;

/// Longest one request or command may run before it is interrupted.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Granularity of the deadline and of cooperative yields by busy guests.
const EPOCH_TICK: Duration = Duration::from_millis(100);

/// Instances that may exist at once; the server admits no more concurrent
/// requests than this (the rest wait), which also bounds pooled memory.
pub const MAX_INSTANCES: u32 = 64;

/// Linear memory per pooled slot that is reset in place after a request
/// rather than handed back to the kernel; see [`new_engine`].
const KEEP_RESIDENT: usize = 8 << 20;

/// Wasm stack per call; generous for a JSON-processing guest.
const MAX_WASM_STACK: usize = 1 << 20;

/// Per-store state: WASI contexts, limits, and the storage backend.
pub struct RequestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: NoOutgoingHttp,
    table: ResourceTable,
    limits: StoreLimits,
    deadline: Instant,
    /// Latest the deadline may be pushed to by landed commits: one grace
    /// past the deadline, however many commits land.
    hard_deadline: Instant,
    pub(crate) backend: Arc<dyn Backend>,
    /// What the store's commits did, for the server deciding what a timeout means.
    pub(crate) commits: Arc<CommitWatch>,
    /// Held for the store's whole life: one of [`MAX_INSTANCES`] slots.
    _slot: OwnedSemaphorePermit,
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// wasi-http hooks that refuse every outgoing request: the component has no
/// reason to call out, and a SCIM payload must not be able to make it.
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

/// The compiled component, linked and pre-instantiated, with its backend.
pub struct Runtime {
    engine: Engine,
    core: ScimletCorePre<RequestState>,
    backend: Arc<dyn Backend>,
    slots: Arc<Semaphore>,
    /// Requests waiting for a slot, and how many may.
    queued: Arc<AtomicUsize>,
    max_queued: usize,
    deadline: Duration,
    admin_token: Option<String>,
}

/// Whether a request's writes are in flight or have landed. A request whose
/// deadline passes must not be answered with an error for a write that
/// landed, nor abandoned while its commit is in flight: the server waits
/// for the commit, and a landed commit gives the guest [`COMMIT_GRACE`] to
/// answer.
#[derive(Debug, Default)]
pub struct CommitWatch {
    in_flight: AtomicBool,
    landed: AtomicBool,
}

impl CommitWatch {
    pub fn begin(&self) {
        self.in_flight.store(true, Ordering::SeqCst);
    }

    pub fn end(&self, landed: bool) {
        if landed {
            self.landed.store(true, Ordering::SeqCst);
        }
        self.in_flight.store(false, Ordering::SeqCst);
    }

    /// A commit is running: its outcome is not known yet.
    pub fn in_flight(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// A commit landed: an error answer would be false.
    pub fn landed(&self) -> bool {
        self.landed.load(Ordering::SeqCst)
    }
}

/// Time a guest gets to answer after a commit landed, past its deadline.
pub const COMMIT_GRACE: Duration = Duration::from_secs(10);

impl RequestState {
    /// After a commit landed: the guest may run on to answer it.
    pub(crate) fn extend_deadline_after_commit(&mut self) {
        // Never earlier than it was, never later than the hard deadline.
        let grace = (Instant::now() + COMMIT_GRACE).min(self.hard_deadline);
        self.deadline = self.deadline.max(grace);
    }
}

impl Runtime {
    /// Compiles the component (the embedded one unless `component` names a
    /// file), links WASI, wasi-http and `storage`, and checks that it exports
    /// both the admin door and `wasi:http/incoming-handler`.
    pub fn new(component: Option<&Path>, backend: Arc<dyn Backend>) -> wasmtime::Result<Self> {
        let engine = new_engine()?;
        let component = match component {
            Some(path) => Component::from_file(&engine, path)
                .map_err(|e| e.context(format!("cannot load component {}", path.display())))?,
            None => Component::new(&engine, EMBEDDED_COMPONENT)?,
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        ScimletCore::add_to_linker::<_, wasmtime::component::HasSelf<RequestState>>(
            &mut linker,
            |state| state,
        )?;
        let pre: InstancePre<RequestState> = linker.instantiate_pre(&component)?;
        let core = ScimletCorePre::new(pre)?;
        spawn_epoch_ticker(&engine);
        Ok(Runtime {
            engine,
            core,
            backend,
            slots: Arc::new(Semaphore::new(MAX_INSTANCES as usize)),
            queued: Arc::new(AtomicUsize::new(0)),
            max_queued: DEFAULT_MAX_QUEUED,
            deadline: DEADLINE,
            admin_token: None,
        })
    }

    /// Enables the component's admin API for bearers of `token`; the guest
    /// reads it from its environment (`SCIMLET_ADMIN_TOKEN`), the only
    /// variable it is given.
    pub fn with_admin_token(mut self, token: Option<String>) -> Self {
        self.admin_token = token;
        self
    }

    /// The storage backend every instance is linked to.
    #[cfg(feature = "native-core")]
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    /// Longest a request may run (default [`DEADLINE`]).
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Bounds concurrency: at most `concurrent` instances at once (capped
    /// at [`MAX_INSTANCES`], the pool's size) and at most `queued` requests
    /// waiting for one; past that a request is refused with [`Busy`] rather
    /// than queued without end.
    pub fn with_limits(mut self, concurrent: u32, queued: usize) -> Self {
        self.slots = Arc::new(Semaphore::new(concurrent.clamp(1, MAX_INSTANCES) as usize));
        self.max_queued = queued;
        self
    }

    /// A new store bounded in memory and time, for one request or command.
    /// Waits while every instance slot is taken, so a burst queues instead
    /// of failing on an exhausted instance pool, unless the queue is full
    /// ([`Busy`]). The deadline starts once the slot is granted.
    pub async fn new_store(&self) -> wasmtime::Result<Store<RequestState>> {
        let slot = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                let queued = Queued::join(&self.queued, self.max_queued).ok_or(Busy)?;
                let slot = Arc::clone(&self.slots)
                    .acquire_owned()
                    .await
                    .map_err(|_| wasmtime::format_err!("instance slots are closed"))?;
                drop(queued);
                slot
            }
        };
        let mut wasi = WasiCtx::builder();
        // Guest stdout goes to our stderr: our stdout carries the CLI's
        // output (JSON included) and the server's announcement lines.
        wasi.stdout(std::io::stderr())
            .inherit_stderr()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if let Some(token) = &self.admin_token {
            wasi.env("SCIMLET_ADMIN_TOKEN", token);
        }
        let wasi = wasi.build();
        let state = RequestState {
            wasi,
            http: WasiHttpCtx::new(),
            hooks: NoOutgoingHttp,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(MEMORY_LIMIT)
                .trap_on_grow_failure(true)
                .build(),
            deadline: Instant::now() + self.deadline,
            hard_deadline: Instant::now() + self.deadline + COMMIT_GRACE,
            backend: Arc::clone(&self.backend),
            commits: Arc::default(),
            _slot: slot,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|ctx| {
            if Instant::now() >= ctx.data().deadline {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        Ok(store)
    }

    /// The pre-instantiated component, for the typed `handler` door.
    pub fn core(&self) -> &ScimletCorePre<RequestState> {
        &self.core
    }

    /// Instantiates the component in a new store for typed calls (admin).
    pub async fn instantiate_core(&self) -> wasmtime::Result<(Store<RequestState>, ScimletCore)> {
        let mut store = self.new_store().await?;
        let core = self.core.instantiate_async(&mut store).await?;
        Ok((store, core))
    }
}

/// Requests that may wait for an instance slot by default.
pub const DEFAULT_MAX_QUEUED: usize = 256;

/// Every instance slot is taken and the queue for them is full: the caller
/// should answer 503 with `Retry-After`.
#[derive(Debug)]
pub struct Busy;

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("every instance slot is taken and the queue is full")
    }
}

impl std::error::Error for Busy {}

/// A place in the queue for instance slots, given back when dropped (also
/// when the waiting request is cancelled).
struct Queued(Arc<AtomicUsize>);

impl Queued {
    fn join(count: &Arc<AtomicUsize>, max: usize) -> Option<Queued> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| Queued(Arc::clone(count)))
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether a call failed because its deadline passed (rather than a guest bug).
pub fn is_deadline(err: &wasmtime::Error) -> bool {
    matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt))
}

fn new_engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.max_wasm_stack(MAX_WASM_STACK);
    if std::env::var_os("SCIMLET_PERFMAP").is_some() {
        // Writes /tmp/perf-<pid>.map so that `perf report` names the guest's
        // compiled functions (see the README's Benchmarks section).
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    // Reserve no more address space per memory than a store may use: keeps
    // the pool's footprint near MAX_INSTANCES x 64 MiB of virtual memory
    // instead of terabytes, at the price of explicit bounds checks.
    config.memory_reservation(MEMORY_LIMIT as u64);
    config.memory_reservation_for_growth(0);
    config.cache(compile_cache());

    let mut pooled = config.clone();
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(MAX_INSTANCES)
        .total_core_instances(MAX_INSTANCES * 16)
        .total_memories(MAX_INSTANCES * 2)
        .total_tables(MAX_INSTANCES * 8)
        .total_stacks(MAX_INSTANCES)
        .max_memory_size(MEMORY_LIMIT)
        .max_unused_warm_slots(8)
        // A finished instance's memory is reset by rewriting only the pages
        // it dirtied (found with Linux's PAGEMAP_SCAN), not by `madvise`:
        // every `madvise` unmaps pages and shoots down TLBs on every core,
        // and the next request faults them back in. Measured on the lookup
        // path: 391 -> 243 us of server CPU a request, +3 MiB resident.
        // Without PAGEMAP_SCAN (kernels before 6.7) wasmtime memsets the
        // first `KEEP_RESIDENT` bytes instead, still cheaper than madvise.
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(1 << 20);
    pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    match Engine::new(&pooled) {
        Ok(engine) => Ok(engine),
        Err(err) => {
            // Some environments cap virtual memory; run slower rather than not at all.
            eprintln!("scimlet: pooling allocator unavailable ({err}); allocating on demand");
            Engine::new(&config)
        }
    }
}

/// Where compiled code is kept between starts, so that a start after the
/// first skips compiling the component (seconds of CPU on a small machine).
/// wasmtime's own cache, keyed by the component's bytes, wasmtime's version
/// and the engine's settings: a new build or another configuration compiles
/// again. `SCIMLET_COMPILE_CACHE=off` disables it; another value names the
/// directory (default: the user's cache directory, `~/.cache/wasmtime`).
fn compile_cache() -> Option<wasmtime::Cache> {
    let mut config = wasmtime::CacheConfig::new();
    match std::env::var_os("SCIMLET_COMPILE_CACHE") {
        Some(v) if v == "off" => return None,
        Some(dir) => {
            config.with_directory(std::path::absolute(&dir).unwrap_or_else(|_| dir.into()));
        }
        None => {}
    }
    match wasmtime::Cache::new(config) {
        Ok(cache) => Some(cache),
        Err(err) => {
            eprintln!("scimlet: no compile cache ({err:#}); compiling the component at every start");
            None
        }
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] for as long as the engine
/// lives; the thread ends by itself once the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("scimlet-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .ok();
}
