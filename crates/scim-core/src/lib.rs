//! scim-core: the SCIM 2.0 protocol (RFC 7643, RFC 7644) and scimlet's
//! provisioning rules, as a deterministic library without I/O.
//!
//! The core does not serve HTTP, read clocks, draw random numbers or touch a
//! database. A host hands it a [`Request`] and gets a [`Response`]; durable
//! state goes through the small [`Store`] contract and time and randomness
//! through [`Env`]. That is what lets one implementation run natively in tests
//! against [`MemStore`], inside the WebAssembly component on the `scimlet`
//! runner, and on Spin, with identical responses.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod accounts;
mod admin_api;
mod audit;
mod bulk;
mod check;
mod discovery;
pub mod env;
pub mod error;
pub mod filter;
mod groups;
mod hex;
pub mod http;
mod json;
mod keys;
mod list;
mod migration;
mod native;
mod outcome;
pub mod patch;
pub mod paths;
pub mod policy;
mod provenance;
mod resource;
mod roles;
mod router;
pub mod schema;
pub mod settings;
pub mod store;
mod sweep;
mod tenant;
mod users;

pub use accounts::{Account, AdminError, NewToken, TokenInfo};
pub use admin_api::PREFIX as ADMIN_API_PREFIX;
pub use audit::client_kind;
pub use env::{Env, TestEnv};
pub use error::ScimError;
pub use groups::derive_identifier;
pub use http::{Request, Response};
pub use paths::BasePaths;
pub use policy::{PlainScim, Policy, Provisioning};
pub use router::MAX_BODY;
pub use store::{Entry, Limits, MemStore, Precondition, ScanPage, Store, StoreError, Write};

/// Checks a `User` or `Group` body as a create or a replace does, and
/// returns the attributes that would be stored (a group's members apart) or
/// the SCIM error the request would get. For hosts that check before they
/// send, and for the fuzz targets.
pub fn validate_resource(
    resource_type: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Map<String, serde_json::Value>, ScimError> {
    match resource_type {
        "User" => users::user_attrs(body),
        "Group" => groups::group_attrs(body).map(|(attrs, _)| attrs),
        other => Err(ScimError::invalid_value(format!("no resource type {other:?}: User or Group"))),
    }
}

/// Media type of every SCIM response (RFC 7644 §3.1).
pub const SCIM_MEDIA_TYPE: &str = "application/scim+json";

/// The SCIM service of every account held in one store.
///
/// Cheap to build: hosts may create one per request.
#[derive(Debug)]
pub struct Service<S, E> {
    store: S,
    env: E,
    config: Config,
}

/// What a host configures: the provisioning policy, the SCIM base paths and
/// the native admin API's credential.
#[derive(Debug, Clone)]
pub struct Config {
    /// SHA-256 of the admin token; `None` disables the admin API.
    admin_token_hash: Option<[u8; 32]>,
    policy: std::sync::Arc<dyn Policy>,
    base_paths: BasePaths,
}

impl Default for Config {
    fn default() -> Self {
        Config { admin_token_hash: None, policy: std::sync::Arc::new(Provisioning), base_paths: BasePaths::default() }
    }
}

impl Config {
    /// Enables the native admin API (`/api/accounts/…`) for bearers of
    /// `token`. Tokens shorter than 16 bytes are refused (the API stays
    /// disabled) so a placeholder cannot become a credential.
    pub fn with_admin_token(mut self, token: Option<&str>) -> Self {
        self.admin_token_hash = token.map(str::trim).filter(|t| t.len() >= MIN_ADMIN_TOKEN).map(accounts::sha256);
        self
    }

    /// Selects the provisioning policy (the default is [`Provisioning`]).
    pub fn with_policy(mut self, policy: std::sync::Arc<dyn Policy>) -> Self {
        self.policy = policy;
        self
    }

    /// Serves SCIM under these base paths instead of the default three.
    /// Refused when one lies under the admin API's `/api/accounts`.
    pub fn with_base_paths(mut self, base_paths: BasePaths) -> Result<Self, String> {
        if base_paths.overlaps(admin_api::PREFIX) {
            return Err(format!("a base path may not lie under the admin API's {}", admin_api::PREFIX));
        }
        self.base_paths = base_paths;
        Ok(self)
    }

    /// The configuration every host passes the same way, by name:
    /// `SCIMLET_ADMIN_TOKEN`, `SCIMLET_POLICY` (`provisioning` or `plain`)
    /// and `SCIMLET_BASE_PATHS` (comma-separated templates naming
    /// `{account}`). Unset or blank values keep the defaults; a value that
    /// does not parse is an error naming it, for the host to refuse to start.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let policy_name = var("SCIMLET_POLICY").unwrap_or_default();
        let policy = policy::policy_named(&policy_name).ok_or_else(|| {
            format!("SCIMLET_POLICY {policy_name:?} names no policy; known: {}", policy::POLICY_NAMES)
        })?;
        let paths = BasePaths::parse_list(&var("SCIMLET_BASE_PATHS").unwrap_or_default())
            .map_err(|e| format!("SCIMLET_BASE_PATHS: {e}"))?;
        Config::default()
            .with_admin_token(var("SCIMLET_ADMIN_TOKEN").as_deref())
            .with_policy(policy)
            .with_base_paths(paths)
            .map_err(|e| format!("SCIMLET_BASE_PATHS: {e}"))
    }

    pub(crate) fn admin_token_hash(&self) -> Option<&[u8; 32]> {
        self.admin_token_hash.as_ref()
    }

    /// Whether the admin API is enabled.
    pub fn admin_enabled(&self) -> bool {
        self.admin_token_hash().is_some()
    }

    /// The provisioning policy.
    pub fn policy(&self) -> &dyn Policy {
        &*self.policy
    }

    /// The SCIM base paths.
    pub fn base_paths(&self) -> &BasePaths {
        &self.base_paths
    }
}

/// Shortest admin token accepted.
pub const MIN_ADMIN_TOKEN: usize = 16;

impl<S: Store, E: Env> Service<S, E> {
    /// A service over `store`, taking time and randomness from `env`, with
    /// the admin API disabled.
    pub fn new(store: S, env: E) -> Self {
        Service { store, env, config: Config::default() }
    }

    /// A service with a host's configuration.
    pub fn with_config(store: S, env: E, config: Config) -> Self {
        Service { store, env, config }
    }

    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Answers one HTTP request. Never panics on any input: bad input becomes
    /// a SCIM error response, a storage failure a 503.
    pub fn handle(&self, request: &Request) -> Response {
        router::handle(self, request)
    }

    pub(crate) fn store(&self) -> &S {
        &self.store
    }

    pub(crate) fn env(&self) -> &E {
        &self.env
    }
}
