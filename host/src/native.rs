//! Bench-only (`--features native-core`, `serve --native-core`): the same
//! runner answering with scim-core linked in natively instead of through
//! the component, so that the cost of the WebAssembly boundary shows as the
//! ratio of two otherwise identical servers. Not part of the product: a
//! native build would lose the per-request isolation and bounds that the
//! component gives.

use std::io::Read;
use std::sync::{Arc, Mutex};

use hyper::{Response, StatusCode};
use scim_core::{Env, Service};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::bindings::Request as GuestRequest;
use crate::runtime::Runtime;
use crate::serve::{error_response, scim_response};
use crate::store::{Backend, Entry, Reads, ScanPage, StoreError, Write};

/// The runner's backend as a core store, reading through one snapshot
/// until it commits, as the component's storage import does.
struct BackendStore {
    backend: Arc<dyn Backend>,
    reads: Mutex<Reads>,
}

impl BackendStore {
    fn reads(&self) -> std::sync::MutexGuard<'_, Reads> {
        self.reads.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl scim_core::Store for BackendStore {
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        self.reads().get(key)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
        self.reads().get_many(keys)
    }
    fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<ScanPage, StoreError> {
        self.reads().scan(prefix, after, limit)
    }
    fn commit(&self, writes: Vec<Write>) -> Result<u64, StoreError> {
        self.reads().end();
        self.backend.commit(&writes)
    }
}

/// The system clock and the kernel's random source.
struct SystemEnv;

impl Env for SystemEnv {
    fn now_millis(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
    }
    fn fill_random(&self, buf: &mut [u8]) {
        static URANDOM: Mutex<Option<std::fs::File>> = Mutex::new(None);
        let mut file = URANDOM.lock().unwrap_or_else(|p| p.into_inner());
        if file.is_none() {
            *file = std::fs::File::open("/dev/urandom").ok();
        }
        if let Some(f) = file.as_mut() {
            let _ = f.read_exact(buf);
        }
    }
}

/// Answers one request with the natively linked core, on the blocking pool
/// (its storage calls block, as the component's do).
pub(crate) async fn respond(runtime: &Runtime, request: GuestRequest) -> Response<HyperOutgoingBody> {
    let request = scim_core::Request {
        method: request.method,
        path_with_query: request.path_with_query,
        scheme: request.scheme,
        authority: request.authority,
        headers: request.headers,
        body: request.body,
    };
    let backend = Arc::clone(runtime.backend());
    // Checked when the runtime was configured.
    let config = runtime.scim_config().unwrap_or_default();
    let answered = tokio::task::spawn_blocking(move || {
        let store = BackendStore { reads: Mutex::new(Reads::new(Arc::clone(&backend))), backend };
        Service::with_config(store, SystemEnv, config).handle(&request)
    })
    .await;
    match answered {
        Ok(answer) => scim_response(answer.status, answer.headers, answer.body),
        Err(_) => error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    }
}
