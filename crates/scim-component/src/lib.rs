//! scimlet as a WASI component (`wasm32-wasip2`): glue between the WIT world
//! `scimlet:provider/scimlet` and `scim-core`. No SCIM rule lives here; this
//! crate only converts records and forwards calls.
//!
//! Exports: the typed `handler`, the operator's `admin` and
//! `wasi:http/incoming-handler`. Imports: `storage`, plus the WASI clock and
//! random source that become the core's [`Env`].

use scim_core::{Config, Service};
use scimlet_wasi_glue::storage::WitStore;
use scimlet_wasi_glue::{self as wasi_glue, WasiEnv};

#[doc(hidden)]
mod wit {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "scimlet:provider/scimlet-core",
        // The import's bindings and its adapter to the core's store are
        // the guests' shared glue.
        with: { "scimlet:provider/storage@0.2.0": scimlet_wasi_glue::storage },
    });
}

use wit::exports::scimlet::provider::{admin, handler};
use wit::scimlet::provider::types;

/// The host configures the core through the environment (see
/// `scim_core::Config::from_vars`: `SCIMLET_ADMIN_TOKEN`, `SCIMLET_POLICY`,
/// `SCIMLET_BASE_PATHS`). A configuration the core refuses is the host's
/// mistake: every request is answered 500 naming it, and nothing is served
/// under a policy or paths the operator did not ask for.
fn service() -> Result<Service<WitStore, WasiEnv>, String> {
    let vars = wasip2::cli::environment::get_environment();
    let config = Config::from_vars(|name| vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()))?;
    Ok(Service::with_config(WitStore, WasiEnv, config))
}

fn answer(request: &scim_core::Request) -> scim_core::Response {
    match service() {
        Ok(service) => service.handle(request),
        Err(e) => scim_core::ScimError::new(500, None, format!("host configuration refused: {e}")).to_response(),
    }
}

fn admin_call<T>(
    call: impl FnOnce(Service<WitStore, WasiEnv>) -> Result<T, scim_core::AdminError>,
) -> Result<T, admin::AdminError> {
    let service = service().map_err(|e| admin::AdminError::Invalid(format!("host configuration refused: {e}")))?;
    call(service).map_err(admin_error)
}

struct Component;

impl handler::Guest for Component {
    fn handle(req: types::Request) -> types::Response {
        let response = answer(&scim_core::Request {
            method: req.method,
            path_with_query: req.path_with_query,
            scheme: req.scheme,
            authority: req.authority,
            headers: req.headers,
            body: req.body,
        });
        types::Response { status: response.status, headers: response.headers, body: response.body }
    }
}

fn account(a: scim_core::Account) -> admin::Account {
    admin::Account { id: a.id, name: a.name, created: a.created, scim_path: a.scim_path }
}

fn token_info(t: scim_core::TokenInfo) -> admin::TokenInfo {
    admin::TokenInfo {
        id: t.id,
        account_id: t.account_id,
        name: t.name,
        created: t.created,
        expires_at: t.expires_at,
        revoked_at: t.revoked_at,
        last_used_at: t.last_used_at,
        expiry_warning: t.expiry_warning,
    }
}

fn new_token(t: scim_core::NewToken) -> admin::NewToken {
    admin::NewToken { info: token_info(t.info), token: t.token }
}

fn admin_error(e: scim_core::AdminError) -> admin::AdminError {
    match e {
        scim_core::AdminError::NotFound(s) => admin::AdminError::NotFound(s),
        scim_core::AdminError::Invalid(s) => admin::AdminError::Invalid(s),
        scim_core::AdminError::Unavailable(s) => admin::AdminError::Unavailable(s),
    }
}

impl admin::Guest for Component {
    fn create_account(name: String) -> Result<admin::Account, admin::AdminError> {
        admin_call(|s| s.create_account(&name)).map(account)
    }

    fn list_accounts() -> Result<Vec<admin::Account>, admin::AdminError> {
        admin_call(|s| s.list_accounts()).map(|v| v.into_iter().map(account).collect())
    }

    fn create_token(
        account_id: String,
        name: String,
        expires_in_days: Option<u32>,
    ) -> Result<admin::NewToken, admin::AdminError> {
        admin_call(|s| s.create_token(&account_id, &name, expires_in_days)).map(new_token)
    }

    fn list_tokens(account_id: String) -> Result<Vec<admin::TokenInfo>, admin::AdminError> {
        admin_call(|s| s.list_tokens(&account_id)).map(|v| v.into_iter().map(token_info).collect())
    }

    fn revoke_token(account_id: String, token_id: String) -> Result<admin::TokenInfo, admin::AdminError> {
        admin_call(|s| s.revoke_token(&account_id, &token_id)).map(token_info)
    }

    fn bootstrap(name: String) -> Result<Option<(admin::Account, admin::NewToken)>, admin::AdminError> {
        admin_call(|s| s.bootstrap(&name)).map(|o| o.map(|(a, t)| (account(a), new_token(t))))
    }
}

wit::export!(Component with_types_in wit);

// ---------------------------------------------------------------- wasi:http

impl wasip2::exports::http::incoming_handler::Guest for Component {
    fn handle(request: wasip2::http::types::IncomingRequest, response_out: wasip2::http::types::ResponseOutparam) {
        let response = answer(&wasi_glue::read_request(&request));
        wasi_glue::write_response(response_out, response);
    }
}

wasip2::http::proxy::export!(Component);
