//! The embedding API against the real component: configuration checks,
//! admin calls, request bounds (body, memory, deadline) and where answers'
//! URLs point.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use scimlet_embed::{AdminError, Entry, Error, MAX_BODY, MemStorage, ScanPage, Scimlet, Storage, StorageError, Write};
use serde_json::{Value, json};
use wasmtime::Engine;
use wasmtime::component::Component;

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

fn engine_and_component() -> &'static (Engine, Component) {
    static SHARED: OnceLock<(Engine, Component)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let engine = Engine::new(&scimlet_embed::engine_config()).unwrap();
        let component = Component::new(&engine, scimlet_embed::COMPONENT).unwrap();
        (engine, component)
    })
}

fn builder() -> scimlet_embed::Builder {
    let (engine, component) = engine_and_component();
    Scimlet::builder(engine).component(component.clone())
}

fn request(method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> http::Request<Bytes> {
    let mut req = http::Request::builder().method(method).uri(path).header("host", "app.test");
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    if !body.is_empty() {
        req = req.header("content-type", "application/scim+json");
    }
    req.body(body).unwrap()
}

fn json_of(response: &http::Response<Bytes>) -> Value {
    serde_json::from_slice(response.body())
        .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {:?}", response.status(), response.body()))
}

fn user(name: &str) -> Value {
    json!({"schemas": [USER], "userName": name})
}

#[tokio::test]
async fn settings_the_core_would_refuse_stop_the_build() {
    let refused = |result: Result<Scimlet, Error>| match result {
        Err(Error::Config(why)) => why,
        other => panic!("expected a configuration error, got {other:?}"),
    };
    assert!(refused(builder().base_paths("/scim/{account}/").build(MemStorage::new())).contains("SCIMLET_BASE_PATHS"));
    assert!(refused(builder().policy("lenient").build(MemStorage::new())).contains("SCIMLET_POLICY"));
    assert!(refused(builder().admin_token("short").build(MemStorage::new())).contains("at least 16 bytes"));
    assert!(refused(builder().public_origin("https://x/path").build(MemStorage::new())).contains("no path"));

    let no_epochs = Engine::new(&wasmtime::Config::new()).unwrap();
    assert!(refused(Scimlet::builder(&no_epochs).build(MemStorage::new())).contains("epoch interruption"));
}

#[tokio::test]
async fn admin_calls_make_accounts_and_tokens_that_scim_accepts() {
    let scim = builder().base_paths("/tenants/{account}/scim").build(MemStorage::new()).unwrap();
    let (account, first) = scim.bootstrap("first").await.unwrap().expect("an empty store bootstraps");
    assert!(scim.bootstrap("again").await.unwrap().is_none(), "only the first start bootstraps");
    assert_eq!(account.scim_path, format!("/tenants/{}/scim", account.id));
    assert_eq!(scim.scim_path(&account.id), account.scim_path);

    let other = scim.create_account("second").await.unwrap();
    let names: Vec<String> = scim.list_accounts().await.unwrap().into_iter().map(|a| a.name).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"first".to_owned()) && names.contains(&"second".to_owned()));

    let token = scim.create_token(&other.id, "idp", Some(30)).await.unwrap();
    let users = format!("{}/Users", other.scim_path);
    let created = scim.handle(request("POST", &users, Some(&token.token), Some(user("ada@example.com")))).await;
    assert_eq!(created.status(), 201, "{:?}", created.body());
    // Accounts are apart: the first account's token does not open the second.
    assert_eq!(scim.handle(request("GET", &users, Some(&first.token), None)).await.status(), 401);

    assert_eq!(scim.list_tokens(&other.id).await.unwrap().len(), 1);
    let revoked = scim.revoke_token(&other.id, &token.info.id).await.unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(scim.handle(request("GET", &users, Some(&token.token), None)).await.status(), 401);

    match scim.create_token("no-such-account", "x", None).await {
        Err(Error::Admin(AdminError::NotFound(_))) => {}
        other => panic!("expected not found, got {other:?}"),
    }
    match scim.create_token(&other.id, "x", Some(0)).await {
        Err(Error::Admin(AdminError::Invalid(_))) => {}
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn locations_use_the_request_host_or_the_public_origin() {
    for (scim, origin) in [
        (builder().build(MemStorage::new()).unwrap(), "http://app.test"),
        (
            builder().public_origin("https://scim.example.com").build(MemStorage::new()).unwrap(),
            "https://scim.example.com",
        ),
    ] {
        let (account, token) = scim.bootstrap("a").await.unwrap().unwrap();
        let created = scim
            .handle(request(
                "POST",
                &format!("{}/Users", account.scim_path),
                Some(&token.token),
                Some(user("b@x.test")),
            ))
            .await;
        let id = json_of(&created)["id"].as_str().unwrap().to_owned();
        let location = format!("{origin}{}/Users/{id}", account.scim_path);
        assert_eq!(created.headers()["location"], location.as_str());
    }
}

#[tokio::test]
async fn bodies_over_the_core_limit_are_refused_before_the_component_runs() {
    let storage = MemStorage::new();
    let scim = builder().build(storage.clone()).unwrap();
    let (account, token) = scim.bootstrap("a").await.unwrap().unwrap();
    let records = storage.len();
    let path = format!("{}/Users", account.scim_path);

    let big = request("POST", &path, Some(&token.token), None).map(|_| Bytes::from(vec![b' '; MAX_BODY + 1]));
    let answer = scim.handle(big).await;
    assert_eq!(answer.status(), 413);
    assert_eq!(json_of(&answer)["detail"], "request body too large");

    // Declared too large, and streamed too large without a length.
    let declared = http::Request::post(&path)
        .header("content-length", (MAX_BODY + 1).to_string())
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();
    assert_eq!(scim.handle_body(declared).await.status(), 413);
    let streamed =
        http::Request::post(&path).body(http_body_util::Full::new(Bytes::from(vec![b' '; MAX_BODY + 1]))).unwrap();
    assert_eq!(scim.handle_body(streamed).await.status(), 413);
    assert_eq!(storage.len(), records, "nothing was written");

    // At the limit the component reads it (and refuses what is not JSON).
    let at_limit = request("POST", &path, Some(&token.token), None).map(|_| Bytes::from(vec![b' '; MAX_BODY]));
    assert_eq!(scim.handle(at_limit).await.status(), 400);
}

#[tokio::test]
async fn a_request_that_outgrows_its_memory_is_a_scim_500_and_the_next_one_is_served() {
    let storage = MemStorage::new();
    let roomy = builder().build(storage.clone()).unwrap();
    let (account, token) = roomy.bootstrap("a").await.unwrap().unwrap();
    let path = format!("{}/Users", account.scim_path);
    // A valid user of 900 kB: parsing and storing it takes several copies.
    let addresses: Vec<Value> =
        (0..60).map(|i| json!({"type": "other", "formatted": format!("{i} {}", "x".repeat(15_000))})).collect();
    let big = json!({"schemas": [USER], "userName": "big@example.com", "addresses": addresses});
    let tight = builder().memory_limit(3 << 20).build(storage.clone()).unwrap();

    let failed = tight.handle(request("POST", &path, Some(&token.token), Some(big.clone()))).await;
    assert_eq!(failed.status(), 500, "{:?}", String::from_utf8_lossy(&failed.body()[..failed.body().len().min(300)]));
    assert_eq!(
        json_of(&failed),
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "500", "detail": "internal error"})
    );
    let small = tight.handle(request("GET", &path, Some(&token.token), None)).await;
    assert_eq!(small.status(), 200, "a fresh instance serves the next request");
    assert_eq!(json_of(&small)["totalResults"], 0, "the trapped request wrote nothing");
    assert_eq!(roomy.handle(request("POST", &path, Some(&token.token), Some(big))).await.status(), 201);
}

/// A store whose reads take a while when asked to.
#[derive(Clone, Default)]
struct Slow {
    inner: MemStorage,
    slow: std::sync::Arc<AtomicBool>,
}

impl Storage for Slow {
    async fn get(&self, key: &str) -> Result<Option<Entry>, StorageError> {
        if self.slow.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        self.inner.get(key).await
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StorageError> {
        self.inner.get_many(keys).await
    }
    async fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<ScanPage, StorageError> {
        self.inner.scan(prefix, after, limit).await
    }
    async fn commit(&self, writes: Vec<Write>) -> Result<u64, StorageError> {
        self.inner.commit(writes).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_deadline_is_a_503_to_retry() {
    let storage = Slow::default();
    let scim = builder().deadline(Duration::from_millis(150)).build(storage.clone()).unwrap();
    let (account, token) = scim.bootstrap("a").await.unwrap().unwrap();
    let path = format!("{}/Users", account.scim_path);
    assert_eq!(scim.handle(request("GET", &path, Some(&token.token), None)).await.status(), 200);

    storage.slow.store(true, Ordering::SeqCst);
    let late = scim.handle(request("GET", &path, Some(&token.token), None)).await;
    assert_eq!(late.status(), 503);
    assert_eq!(late.headers()["retry-after"], "5");
    assert_eq!(json_of(&late)["detail"], "request timed out");
}

/// A store that is down answers every call `unavailable`.
struct Down;

impl Storage for Down {
    async fn get(&self, _: &str) -> Result<Option<Entry>, StorageError> {
        Err(StorageError::Unavailable("database is down".into()))
    }
    async fn get_many(&self, _: &[String]) -> Result<Vec<Option<Entry>>, StorageError> {
        Err(StorageError::Unavailable("database is down".into()))
    }
    async fn scan(&self, _: &str, _: Option<&str>, _: u32) -> Result<ScanPage, StorageError> {
        Err(StorageError::Unavailable("database is down".into()))
    }
    async fn commit(&self, _: Vec<Write>) -> Result<u64, StorageError> {
        Err(StorageError::Unavailable("database is down".into()))
    }
}

#[tokio::test]
async fn a_storage_failure_is_the_components_503_and_stays_out_of_the_answer() {
    let scim = builder().build(Down).unwrap();
    let answer = scim.handle(request("GET", "/api/scim/account/a1/Users", Some("scimlet_x_y"), None)).await;
    assert_eq!(answer.status(), 503);
    assert!(answer.headers().contains_key("retry-after"));
    assert!(!String::from_utf8_lossy(answer.body()).contains("database is down"));
    match scim.bootstrap("a").await {
        Err(Error::Admin(AdminError::Unavailable(why))) => assert!(why.contains("database is down"), "{why}"),
        other => panic!("expected unavailable, got {other:?}"),
    }
}

/// The in-memory storage passes the project's storage conformance suite,
/// through the component import the scimlet component uses.
#[tokio::test]
async fn mem_storage_passes_the_conformance_suite() {
    let (engine, _) = engine_and_component();
    let report = scimlet_embed::conformance::check(engine, MemStorage::new).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(report.passed.len() >= 14, "{:?}", report.passed);
}

/// A store whose reads wait while its gate is closed.
#[derive(Clone)]
struct Gated {
    inner: MemStorage,
    open: tokio::sync::watch::Sender<bool>,
}

impl Gated {
    async fn wait(&self) {
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|open| *open).await;
    }
}

impl Storage for Gated {
    async fn get(&self, key: &str) -> Result<Option<Entry>, StorageError> {
        self.wait().await;
        self.inner.get(key).await
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StorageError> {
        self.wait().await;
        self.inner.get_many(keys).await
    }
    async fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<ScanPage, StorageError> {
        self.wait().await;
        self.inner.scan(prefix, after, limit).await
    }
    async fn commit(&self, writes: Vec<Write>) -> Result<u64, StorageError> {
        self.inner.commit(writes).await
    }
}

/// Past its concurrency bound a request waits (a second at most) for a
/// slot, then is answered 503 to retry; the request being served is not
/// disturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_concurrency_bound_wait_then_are_503_to_retry() {
    let storage = Gated { inner: MemStorage::new(), open: tokio::sync::watch::Sender::new(true) };
    let scim = builder().max_concurrent(1).build(storage.clone()).unwrap();
    let (account, token) = scim.bootstrap("a").await.unwrap().unwrap();
    let path = format!("{}/Users/nobody", account.scim_path);
    let send = || {
        let (scim, path, token) = (scim.clone(), path.clone(), token.token.clone());
        tokio::spawn(async move { scim.handle(request("GET", &path, Some(&token), None)).await.status() })
    };

    // One request holds the only slot; the next waits for it and is served.
    storage.open.send_replace(false);
    let holding = send();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let waiting = send();
    tokio::time::sleep(Duration::from_millis(50)).await;
    storage.open.send_replace(true);
    assert_eq!(holding.await.unwrap(), 404);
    assert_eq!(waiting.await.unwrap(), 404);

    // While the slot stays taken, a request is refused after its wait.
    storage.open.send_replace(false);
    let holding = send();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = scim.handle(request("GET", &path, Some(&token.token), None)).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(json_of(&refused)["detail"], "too many requests at once");
    storage.open.send_replace(true);
    assert_eq!(holding.await.unwrap(), 404);
}
