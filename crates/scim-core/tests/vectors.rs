//! Replays every scenario of `tests/vectors` natively: the core over the
//! in-memory store with a deterministic clock and RNG. A restart builds a new
//! `Service` on a clone of the same store (clones share data).

use std::rc::Rc;
use std::sync::Arc;

use scim_core::{BasePaths, Config, Env, Limits, MemStore, PlainScim, Request, Service, TestEnv};
use scimlet_vectors::{Target, Vars, VectorRequest, VectorResponse, run_all, run_policy, vectors_dir};

const AUTHORITY: &str = "localhost";
const ADMIN_TOKEN: &str = "vectors-admin-token-0123456789abcdef";

/// One deterministic environment shared across restarts: a restart does not
/// rewind the clock or replay the random stream (ids would repeat).
#[derive(Clone)]
struct SharedEnv(Rc<TestEnv>);

impl Env for SharedEnv {
    fn now_millis(&self) -> i64 {
        self.0.now_millis()
    }
    fn fill_random(&self, buf: &mut [u8]) {
        self.0.fill_random(buf)
    }
}

struct Native {
    store: MemStore,
    env: SharedEnv,
    config: Config,
    service: Service<MemStore, SharedEnv>,
}

impl Target for Native {
    fn send(&mut self, req: &VectorRequest) -> Result<VectorResponse, String> {
        let request = Request {
            method: req.method.clone(),
            path_with_query: req.path.clone(),
            scheme: Some("http".into()),
            authority: Some(AUTHORITY.into()),
            headers: req.headers.clone(),
            body: req.body.clone(),
        };
        let response = self.service.handle(&request);
        Ok(VectorResponse { status: response.status, headers: response.headers, body: response.body })
    }

    fn restart(&mut self) -> Result<(), String> {
        self.service = Service::with_config(self.store.clone(), self.env.clone(), self.config.clone());
        Ok(())
    }
}

/// The core as every host runs it for the vectors: with the admin API on.
fn provisioning() -> Config {
    Config::default().with_admin_token(Some(ADMIN_TOKEN))
}

/// RFC behaviour alone, under an embedder's own base path; the admin token
/// is set, and must not switch on an admin API the policy has none of.
fn plain() -> Config {
    let paths = BasePaths::parse_list("/tenants/{account}/scim/v2").expect("a valid template");
    provisioning().with_policy(Arc::new(PlainScim)).with_base_paths(paths).expect("not under the admin API")
}

fn setup(config: Config) -> Result<(Box<dyn Target>, Vars), String> {
    let store = MemStore::with_caps(3, Limits::CONTRACT);
    let env = SharedEnv(Rc::new(TestEnv::default()));
    let service = Service::with_config(store.clone(), env.clone(), config.clone());
    let account = service.create_account("vectors").map_err(|e| format!("create_account: {e:?}"))?;
    let token = service.create_token(&account.id, "vectors", None).map_err(|e| format!("create_token: {e:?}"))?;
    let vars = Vars {
        base: account.scim_path.clone(),
        origin: format!("http://{AUTHORITY}"),
        account: account.id.clone(),
        token: token.token,
        admin_token: ADMIN_TOKEN.to_owned(),
    };
    Ok((Box::new(Native { store, env, config, service }), vars))
}

#[test]
fn all_vectors_replay_natively() {
    match run_all(&vectors_dir(), |_| setup(provisioning())) {
        Ok(n) => eprintln!("{n} scenarios passed"),
        Err(report) => panic!("\n{report}"),
    }
}

/// The scenarios that show the RFCs alone replay unchanged under the
/// plain-SCIM policy: a protocol rule holds whatever the policy.
#[test]
fn plain_scim_vectors_replay_natively() {
    match run_policy(&vectors_dir(), "plain", |_| setup(plain())) {
        Ok(n) => eprintln!("{n} scenarios passed"),
        Err(report) => panic!("\n{report}"),
    }
}

/// An account above every cap, on the in-memory store capped as the real
/// stores are (1,000 entries a scan, the contract's commit floor).
#[test]
fn a_large_account_in_memory() {
    let store = MemStore::with_caps(1000, Limits::CONTRACT);
    let env = SharedEnv(Rc::new(TestEnv::default()));
    let config = provisioning();
    let service = Service::with_config(store.clone(), env.clone(), config.clone());
    let account = service.create_account("large").unwrap();
    let token = service.create_token(&account.id, "large", None).unwrap();
    let vars = Vars {
        base: account.scim_path.clone(),
        origin: format!("http://{AUTHORITY}"),
        account: account.id.clone(),
        token: token.token,
        admin_token: ADMIN_TOKEN.to_owned(),
    };
    scimlet_vectors::large::large_tenant(&mut Native { store, env, config, service }, &vars);
}
