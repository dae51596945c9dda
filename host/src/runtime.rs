//! The wasmtime side: one compiled component per process, a store and
//! instance per HTTP request or CLI command.
//!
//! An instance serves more than one request only under [`Warm`]'s rules:
//! after an answer that was not a trap, a timeout or an authentication
//! failure, while it is small and young, and only for the next request that
//! carries the very same `Authorization` value. The core keeps no state
//! between calls (it has no mutable statics), so what a warm instance
//! carries over is freed heap memory, and that only ever held what the same
//! credential could read anyway. A trapped guest costs one request only:
//! its instance is dropped. With the pooling allocator and an `InstancePre`
//! a fresh instance costs a few microseconds; a warm one saves creating and
//! resetting the instance, which was about 45 us of a 110 us request floor.
//!
//! Each store is bounded: linear memory by [`StoreLimits`] (a guest that asks
//! for more traps) and wall-clock time by an epoch deadline. An epoch ticker
//! thread bumps the engine's epoch every [`EPOCH_TICK`]; at each tick the
//! store's callback lets the guest continue after yielding to tokio (so a busy
//! guest cannot hog a worker thread), or interrupts it with a trap once the
//! store's deadline has passed.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Component, InstancePre, Linker, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store, StoreLimits,
    StoreLimitsBuilder, Trap, UpdateDeadline,
};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::bindings::{ScimletCore, ScimletCorePre};
use crate::metrics::Metrics;
use crate::store::{Backend, Reads};

/// The component built from `crates/scim-component` by `build.rs`.
static EMBEDDED_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/scim_component.wasm"));

/// Most linear memory one instance may use.
pub const MEMORY_LIMIT: usize = 64 << 20;

/// Longest one request or command may run before it is interrupted.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Granularity of the deadline and of cooperative yields by busy guests.
const EPOCH_TICK: Duration = Duration::from_millis(100);

/// Instances that may serve requests at once; the server admits no more
/// concurrent requests than this (the rest wait), which also bounds pooled
/// memory.
pub const MAX_INSTANCES: u32 = 64;

/// Most idle instances kept warm (see [`Warm`]); the pool holds this many
/// beside [`MAX_INSTANCES`].
pub const MAX_WARM: u32 = 64;

/// Idle instances kept warm by default.
pub const DEFAULT_WARM: usize = 8;

/// Requests one instance may serve before it is dropped: bounds what a slow
/// leak or heap fragmentation in the guest can grow to.
const MAX_CALLS_PER_INSTANCE: u32 = 1_000;

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
    limits: Limits,
    deadline: Instant,
    /// Latest the deadline may be pushed to by landed commits: one grace
    /// past the deadline, however many commits land.
    hard_deadline: Instant,
    pub(crate) backend: Arc<dyn Backend>,
    /// The current call's reads, from one snapshot until it commits; let
    /// go of when the call ends, so a warm instance holds none.
    pub(crate) reads: Reads,
    /// What the store's commits did, for the server deciding what a timeout means.
    pub(crate) commits: Arc<CommitWatch>,
    pub(crate) metrics: Arc<Metrics>,
    /// One of the [`MAX_INSTANCES`] slots, held while the store serves a
    /// request or command; an idle warm store holds none.
    slot: Option<OwnedSemaphorePermit>,
    /// Requests this store's instance has served.
    calls: u32,
}

/// The store's resource limiter: [`StoreLimits`]' bounds, plus the largest
/// linear memory the instance has asked for (memories never shrink), which
/// decides whether it may be kept warm.
struct Limits {
    bounds: StoreLimits,
    memory: usize,
}

impl ResourceLimiter for Limits {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.bounds.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory = self.memory.max(desired);
        }
        Ok(allowed)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.bounds.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.bounds.instances()
    }

    fn tables(&self) -> usize {
        self.bounds.tables()
    }

    fn memories(&self) -> usize {
        self.bounds.memories()
    }
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
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
    /// `SCIMLET_POLICY` and `SCIMLET_BASE_PATHS` for the guest, as given.
    scim_vars: Vec<(&'static str, String)>,
    warm: Warm,
    metrics: Arc<Metrics>,
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
    /// Makes a store ready for its next call: a fresh deadline and no
    /// commits seen.
    fn arm(&mut self, deadline: Duration, slot: OwnedSemaphorePermit) {
        let now = Instant::now();
        self.deadline = now + deadline;
        self.hard_deadline = now + deadline + COMMIT_GRACE;
        self.commits = Arc::default();
        self.slot = Some(slot);
        self.calls += 1;
    }

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
        ScimletCore::add_to_linker::<_, wasmtime::component::HasSelf<RequestState>>(&mut linker, |state| state)?;
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
            scim_vars: Vec::new(),
            warm: Warm::new(DEFAULT_WARM),
            metrics: Arc::default(),
        })
    }

    /// For tests that run other components (the storage probe) on the
    /// runner's engine and storage import.
    #[cfg(test)]
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Enables the component's admin API for bearers of `token`; the guest
    /// reads it from its environment (`SCIMLET_ADMIN_TOKEN`).
    pub fn with_admin_token(mut self, token: Option<String>) -> Self {
        self.admin_token = token;
        self
    }

    /// The provisioning policy and base paths (see `scim_core::Config::
    /// from_vars`), refused here, before any request, when the core would
    /// refuse them. The guest reads them from its environment.
    pub fn with_scim_config(mut self, policy: &str, base_paths: Option<&str>) -> Result<Self, String> {
        self.scim_vars = vec![("SCIMLET_POLICY", policy.to_owned())];
        if let Some(paths) = base_paths {
            self.scim_vars.push(("SCIMLET_BASE_PATHS", paths.to_owned()));
        }
        self.scim_config().map(|_| self)
    }

    /// The core's configuration, as the guest builds it from its environment.
    pub fn scim_config(&self) -> Result<scim_core::Config, String> {
        scim_core::Config::from_vars(|name| match name {
            "SCIMLET_ADMIN_TOKEN" => self.admin_token.clone(),
            _ => self.scim_vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()),
        })
    }

    /// What `/metrics` reports.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The storage backend every instance is linked to.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    /// Idle instances kept warm for the next request with the same
    /// credential (default [`DEFAULT_WARM`], at most [`MAX_WARM`]); 0 gives
    /// every request a fresh instance.
    pub fn with_warm_instances(mut self, idle: usize) -> Self {
        self.warm = Warm::new(idle.min(MAX_WARM as usize));
        self
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

    /// Waits for one of the instance slots, so a burst queues instead of
    /// failing on an exhausted instance pool, unless the queue is full
    /// ([`Busy`]).
    async fn admit(&self) -> wasmtime::Result<OwnedSemaphorePermit> {
        match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(slot) => Ok(slot),
            Err(_) => {
                let queued = Queued::join(&self.queued, self.max_queued).ok_or(Busy)?;
                let slot = Arc::clone(&self.slots)
                    .acquire_owned()
                    .await
                    .map_err(|_| wasmtime::format_err!("instance slots are closed"))?;
                drop(queued);
                Ok(slot)
            }
        }
    }

    /// A new store bounded in memory and time, for one request or command,
    /// once a slot is free (see [`Runtime::admit`]). The deadline starts
    /// once the slot is granted.
    pub async fn new_store(&self) -> wasmtime::Result<Store<RequestState>> {
        let slot = self.admit().await?;
        Ok(self.fresh_store(slot))
    }

    fn fresh_store(&self, slot: OwnedSemaphorePermit) -> Store<RequestState> {
        let mut wasi = WasiCtx::builder();
        // Guest stdout goes to our stderr: our stdout carries the CLI's
        // output (JSON included) and the server's announcement lines.
        wasi.stdout(std::io::stderr()).inherit_stderr().allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
        if let Some(token) = &self.admin_token {
            wasi.env("SCIMLET_ADMIN_TOKEN", token);
        }
        for (name, value) in &self.scim_vars {
            wasi.env(name, value);
        }
        let wasi = wasi.build();
        let now = Instant::now();
        let state = RequestState {
            wasi,
            http: WasiHttpCtx::new(),
            hooks: NoOutgoingHttp,
            table: ResourceTable::new(),
            limits: Limits {
                bounds: StoreLimitsBuilder::new().memory_size(MEMORY_LIMIT).trap_on_grow_failure(true).build(),
                memory: 0,
            },
            deadline: now + self.deadline,
            hard_deadline: now + self.deadline + COMMIT_GRACE,
            backend: Arc::clone(&self.backend),
            reads: Reads::new(Arc::clone(&self.backend)),
            commits: Arc::default(),
            metrics: Arc::clone(&self.metrics),
            slot: Some(slot),
            calls: 1,
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
        store
    }

    /// An instance for one request carrying `credential` (see
    /// [`Runtime::credential`]): a warm one that last served the same
    /// credential, else a fresh one. Waits for a slot as [`Runtime::new_store`].
    pub async fn instance(&self, credential: u64) -> wasmtime::Result<Instance> {
        let slot = self.admit().await?;
        if let Some(mut instance) = self.warm.take(credential) {
            instance.store.data_mut().arm(self.deadline, slot);
            instance.store.set_epoch_deadline(1);
            self.metrics.instance(None);
            return Ok(instance);
        }
        let started = Instant::now();
        let mut store = self.fresh_store(slot);
        let core = self.core.instantiate_async(&mut store).await?;
        self.metrics.instance(Some(started.elapsed()));
        Ok(Instance { store, core })
    }

    /// Gives back an instance whose call answered (no trap, no timeout):
    /// its slot is freed, and it is kept warm for `credential` if [`Warm`]'s
    /// rules allow. `status` is the answer's HTTP status.
    pub fn recycle(&self, credential: u64, status: u16, mut instance: Instance) {
        let state = instance.store.data_mut();
        state.slot = None;
        state.reads.end();
        if keep_warm(status, state.calls, state.limits.memory) {
            self.warm.put(credential, instance);
        }
    }

    /// The key that warm instances are kept under: a keyed hash of the
    /// request's `Authorization` value (none is a value of its own).
    pub fn credential(&self, authorization: Option<&[u8]>) -> u64 {
        self.warm.hasher.hash_one(authorization)
    }

    /// Instantiates the component in a new store for typed calls (admin).
    pub async fn instantiate_core(&self) -> wasmtime::Result<(Store<RequestState>, ScimletCore)> {
        let mut store = self.new_store().await?;
        let core = self.core.instantiate_async(&mut store).await?;
        Ok((store, core))
    }
}

/// A store with its instantiated component, serving one request at a time.
pub struct Instance {
    pub store: Store<RequestState>,
    pub core: ScimletCore,
}

/// Idle instances, each kept for the credential of the request it last
/// answered. A request takes the most recently kept instance of its own
/// credential; when the table is full, the longest-idle instance goes.
struct Warm<T = Instance> {
    hasher: RandomState,
    capacity: usize,
    idle: Mutex<Vec<(u64, T)>>,
}

impl<T> Warm<T> {
    fn new(capacity: usize) -> Self {
        Warm { hasher: RandomState::new(), capacity, idle: Mutex::new(Vec::with_capacity(capacity)) }
    }

    fn take(&self, credential: u64) -> Option<T> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let at = idle.iter().rposition(|(key, _)| *key == credential)?;
        Some(idle.remove(at).1)
    }

    fn put(&self, credential: u64, instance: T) {
        if self.capacity == 0 {
            return;
        }
        let evicted = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let evicted = (idle.len() >= self.capacity).then(|| idle.remove(0));
            idle.push((credential, instance));
            evicted
        };
        // Dropped outside the lock: tearing an instance down takes a while.
        drop(evicted);
    }
}

/// Whether an instance that answered may serve another request. Not after
/// an authentication failure (it may have read another credential's
/// record), not once it has served [`MAX_CALLS_PER_INSTANCE`] requests, not
/// once its memory grew past what the pool resets in place
/// ([`KEEP_RESIDENT`]): a big instance is not worth keeping.
fn keep_warm(status: u16, calls: u32, memory: usize) -> bool {
    status != 401 && calls < MAX_CALLS_PER_INSTANCE && memory <= KEEP_RESIDENT
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
    // Room for every slot serving a request and every warm idle instance.
    let instances = MAX_INSTANCES + MAX_WARM;
    pool.total_component_instances(instances)
        .total_core_instances(instances * 16)
        .total_memories(instances * 2)
        .total_tables(instances * 8)
        .total_stacks(instances)
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
            tracing::warn!("pooling allocator unavailable ({err}); allocating on demand");
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
            tracing::warn!("no compile cache ({err:#}); compiling the component at every start");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warm_instance_serves_only_its_own_credential_most_recent_first() {
        let warm: Warm<&str> = Warm::new(3);
        warm.put(1, "a1");
        warm.put(2, "b1");
        warm.put(1, "a2");
        assert_eq!(warm.take(3), None);
        assert_eq!(warm.take(1), Some("a2"));
        assert_eq!(warm.take(1), Some("a1"));
        assert_eq!(warm.take(1), None);
        assert_eq!(warm.take(2), Some("b1"));
    }

    #[test]
    fn a_full_table_drops_the_longest_idle() {
        let warm: Warm<&str> = Warm::new(2);
        warm.put(1, "a");
        warm.put(2, "b");
        warm.put(3, "c");
        assert_eq!(warm.take(1), None);
        assert_eq!(warm.take(2), Some("b"));
        assert_eq!(warm.take(3), Some("c"));

        let none: Warm<&str> = Warm::new(0);
        none.put(1, "a");
        assert_eq!(none.take(1), None);
    }

    #[test]
    fn only_small_young_instances_that_did_not_fail_authentication_stay_warm() {
        assert!(keep_warm(200, 1, 2 << 20));
        assert!(keep_warm(404, MAX_CALLS_PER_INSTANCE - 1, KEEP_RESIDENT));
        assert!(!keep_warm(401, 1, 2 << 20));
        assert!(!keep_warm(200, MAX_CALLS_PER_INSTANCE, 2 << 20));
        assert!(!keep_warm(200, 1, KEEP_RESIDENT + 65_536));
    }

    #[test]
    fn credentials_key_by_the_whole_authorization_value() {
        let warm: Warm<()> = Warm::new(1);
        let key = |v: Option<&[u8]>| warm.hasher.hash_one(v);
        assert_eq!(key(Some(b"Bearer abc")), key(Some(b"Bearer abc")));
        assert_ne!(key(Some(b"Bearer abc")), key(Some(b"Bearer abd")));
        assert_ne!(key(Some(b"")), key(None));
    }
}
