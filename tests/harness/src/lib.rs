//! scimlet-vectors: the request/response vectors of `tests/vectors` as a
//! library, so that every host replays the same scenarios.
//!
//! A scenario file (format in `tests/vectors/README.md`) is an ordered list of
//! requests and the responses scimlet must give. This crate loads the files
//! ([`load_dir`]), fills in placeholders, sends each request to a [`Target`]
//! (the core with an in-memory store, a `scimlet` process over HTTP, …) and
//! compares what comes back ([`matcher`]). It knows nothing about SCIM itself:
//! the scenarios do.
//!
//! The runners iterate the vectors directory ([`run_all`]), so a scenario file
//! cannot sit there without being replayed by every host.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod http;
pub mod large;
pub mod matcher;
pub mod process;
mod runner;
mod scenario;

pub use matcher::{Captures, Mismatch};
pub use runner::{Failure, run_all, run_policy, run_scenario};
pub use scenario::{
    Caller, ExpectedResponse, RequestTemplate, Scenario, Step, StepKind, load_dir, load_file, vectors_dir,
};

/// A concrete request, placeholders filled in, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorRequest {
    /// Upper-case method, e.g. `GET`.
    pub method: String,
    /// Path and query, already percent-encoded; send it byte for byte.
    pub path: String,
    /// Headers to send, in order (names as written in the scenario).
    pub headers: Vec<(String, String)>,
    /// The body; empty for none.
    pub body: Vec<u8>,
}

/// What a target answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VectorResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers, names in any case.
    pub headers: Vec<(String, String)>,
    /// The response body; empty for none.
    pub body: Vec<u8>,
}

/// Something scenarios can be replayed against.
pub trait Target {
    /// Sends one request and returns the response; `Err` for transport
    /// failures (connection refused, the process died, …), never for HTTP
    /// error statuses.
    fn send(&mut self, request: &VectorRequest) -> Result<VectorResponse, String>;

    /// Restarts the service on the same storage: the state must survive,
    /// the origin and the account's token stay valid.
    fn restart(&mut self) -> Result<(), String>;
}

impl<T: Target + ?Sized> Target for Box<T> {
    fn send(&mut self, request: &VectorRequest) -> Result<VectorResponse, String> {
        (**self).send(request)
    }
    fn restart(&mut self) -> Result<(), String> {
        (**self).restart()
    }
}

/// The per-scenario values the placeholders `{{base}}`, `{{origin}}`,
/// `{{account}}`, `{{token}}`, `{{tokenId}}` and `{{adminToken}}` stand for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vars {
    /// The account's SCIM base path, e.g. `/gateway/ng/api/scim/account/<id>`.
    pub base: String,
    /// Scheme and authority the target is reached at, e.g. `http://127.0.0.1:40123`.
    pub origin: String,
    /// The scenario's account id.
    pub account: String,
    /// A valid bearer token of that account.
    pub token: String,
    /// The host's admin API token, which steps marked `"as": "admin"` send
    /// (every host that replays the vectors serves the admin API).
    pub admin_token: String,
}

/// The public id of a scimlet token (`scimlet_<id>_<secret>`), as audit
/// records and `source.tokenId` name it.
pub fn token_id(token: &str) -> Option<&str> {
    token.strip_prefix("scimlet_")?.split_once('_').map(|(id, _)| id)
}

impl Vars {
    /// The value of a built-in placeholder, if `name` is one.
    pub fn builtin(&self, name: &str) -> Option<&str> {
        match name {
            "base" => Some(&self.base),
            "origin" => Some(&self.origin),
            "account" => Some(&self.account),
            "token" => Some(&self.token),
            "adminToken" => Some(&self.admin_token),
            "tokenId" => token_id(&self.token),
            _ => None,
        }
    }

    /// Is `name` reserved for a built-in placeholder?
    pub fn is_builtin(name: &str) -> bool {
        matches!(name, "base" | "origin" | "account" | "token" | "tokenId" | "adminToken")
    }
}
