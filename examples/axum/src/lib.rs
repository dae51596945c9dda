//! An application with routes of its own that also serves SCIM: identity
//! providers provision its users under `/scim/{account}/v2`, into the
//! application's own SQLite file ([`SqliteStorage`]).
//!
//! `main.rs` runs it; the tests replay every request/response vector of
//! `tests/vectors` through it over HTTP.

mod sqlite;

use axum::Router;
use axum::routing::get;
use scimlet_embed::{Builder, Scimlet};

pub use sqlite::SqliteStorage;

/// Where the application serves SCIM: an identity provider is given
/// `<origin>/scim/<account id>/v2` as its tenant URL.
pub const BASE_PATH: &str = "/scim/{account}/v2";

/// scimlet's settings for this application; the caller adds its own (an
/// admin token, a precompiled component) before building.
pub fn scimlet(engine: &wasmtime::Engine) -> Builder {
    Scimlet::builder(engine).base_paths(BASE_PATH)
}

/// The application's routes, with SCIM merged in beside them.
pub fn app(scim: &Scimlet) -> Router {
    Router::new().route("/", get(home)).route("/health", get(health)).merge(scim.router())
}

async fn home() -> &'static str {
    "An application with SCIM provisioning under /scim/{account}/v2.\n"
}

async fn health() -> &'static str {
    "ok\n"
}
