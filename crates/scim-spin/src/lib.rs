//! scimlet as a Spin component (`wasm32-wasip2`, Spin 4.0.x): the same
//! `scim-core` as the generic component, with its [`Store`] over Spin's SQLite
//! database and its configuration from Spin variables. No SCIM rule lives
//! here.
//!
//! - HTTP: `wasi:http/incoming-handler`, with the glue shared with
//!   `scim-component` (`crates/wasi-glue`).
//! - Storage: `fermyon:spin/sqlite@2.0.0`, the database labelled `default`
//!   (local SQLite under `spin up`, or libSQL/Turso by runtime configuration).
//! - Variables (`fermyon:spin/variables@2.0.0`): `admin_token` enables the
//!   core's admin API (`/api/accounts/…`), which is also how the first
//!   account and SCIM token are made: Spin has no CLI of ours.
//! - Time and randomness: WASI's wall clock and secure random source.

use std::cell::OnceCell;

use scim_core::{Config, Service};
use spin_sdk::sqlite;
use wasip2::http::types::{IncomingRequest, ResponseOutparam};

use scimlet_sql_store::{Sql, SqlStore, SqlValue};
use scimlet_wasi_glue::{self as wasi_glue, WasiEnv};

/// The label of the Spin SQLite database the component uses.
const DATABASE: &str = "default";

/// Spin's SQLite connection, opened on first use (a request that touches no
/// storage opens none).
#[derive(Default)]
struct SpinSql {
    conn: OnceCell<Result<sqlite::Connection, String>>,
}

impl SpinSql {
    fn connection(&self) -> Result<&sqlite::Connection, String> {
        self.conn
            .get_or_init(|| {
                let conn = sqlite::Connection::open(DATABASE)
                    .map_err(|e| format!("cannot open database {DATABASE:?}: {e}"))?;
                // Other instances write the same local file at the same time:
                // wait for their lock rather than fail. libSQL ignores or
                // refuses the pragma; either way is fine.
                let _ = conn.execute("PRAGMA busy_timeout = 5000", &[]);
                Ok(conn)
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl Sql for SpinSql {
    fn execute(&self, statement: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, String> {
        let params: Vec<sqlite::Value> = params
            .iter()
            .map(|v| match v {
                SqlValue::Integer(i) => sqlite::Value::Integer(*i),
                SqlValue::Real(r) => sqlite::Value::Real(*r),
                SqlValue::Text(t) => sqlite::Value::Text(t.clone()),
                SqlValue::Blob(b) => sqlite::Value::Blob(b.clone()),
                SqlValue::Null => sqlite::Value::Null,
            })
            .collect();
        let result = self.connection()?.execute(statement, &params).map_err(|e| e.to_string())?;
        Ok(result
            .rows
            .into_iter()
            .map(|row| {
                row.values
                    .into_iter()
                    .map(|v| match v {
                        sqlite::Value::Integer(i) => SqlValue::Integer(i),
                        sqlite::Value::Real(r) => SqlValue::Real(r),
                        sqlite::Value::Text(t) => SqlValue::Text(t),
                        sqlite::Value::Blob(b) => SqlValue::Blob(b),
                        sqlite::Value::Null => SqlValue::Null,
                    })
                    .collect()
            })
            .collect())
    }
}

/// A Spin variable; undefined or blank reads as unset.
fn variable(name: &str) -> Option<String> {
    spin_sdk::variables::get(name).ok().filter(|v| !v.trim().is_empty())
}

type SpinService = Service<SqlStore<SpinSql>, WasiEnv>;

/// The core's configuration from Spin variables: `admin_token`, `policy`
/// and `base_paths` stand for `SCIMLET_ADMIN_TOKEN`, `SCIMLET_POLICY` and
/// `SCIMLET_BASE_PATHS` (see `scim_core::Config::from_vars`).
fn service() -> Result<SpinService, String> {
    let config = Config::from_vars(|name| variable(&name.trim_start_matches("SCIMLET_").to_ascii_lowercase()))?;
    Ok(Service::with_config(SqlStore::new(SpinSql::default()), WasiEnv, config))
}

struct Component;

impl wasip2::exports::http::incoming_handler::Guest for Component {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let request = wasi_glue::read_request(&request);
        // A configuration the core refuses is the operator's mistake: every
        // request says so rather than serving under settings nobody chose.
        let response = match service() {
            Ok(service) => service.handle(&request),
            Err(e) => scim_core::ScimError::new(500, None, format!("host configuration refused: {e}")).to_response(),
        };
        wasi_glue::write_response(response_out, response);
    }
}

wasip2::http::proxy::export!(Component);
