//! `scimlet`: the native runner of the scimlet SCIM component.
//!
//! A thin adapter: it runs the component (which holds every SCIM rule) under
//! wasmtime, gives it SQLite storage, serves it over HTTP and exposes its admin
//! door on the command line. Exit codes: 0 success, 1 failure (including
//! refusals by the component), 2 usage errors (from clap).

mod admin;
mod bindings;
mod cli;
mod config;
mod console;
mod log;
mod metrics;
#[cfg(feature = "native-core")]
mod native;
mod progress;
mod runtime;
mod serve;
mod store;
mod throttle;
mod tls;

use scim_core::MIN_ADMIN_TOKEN;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{AccountCommand, Cli, Command, StoreArgs, TokenCommand};
use crate::runtime::Runtime;
use crate::store::postgres::PostgresStore;
use crate::store::{Backend, SqliteStore};

fn main() -> ExitCode {
    // wasmtime builds an error value while it tears down every instance;
    // with RUST_BACKTRACE set, each one would capture a backtrace (an unwind
    // of the stack, a few percent of a request's CPU). Panics still print
    // theirs: this only turns off library-captured backtraces, unless the
    // operator asked for them by name.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    let cli = match config::parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(config::Error::Usage(e)) => e.exit(),
        Err(config::Error::File(message)) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    log::init(match &cli.command {
        Command::Serve(args) => args.log_format,
        _ => log::LogFormat::Text,
    });
    let tokio = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(tokio) => tokio,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = tokio.block_on(run(cli));
    // Storage calls in flight run on the blocking pool; give them a moment.
    tokio.shutdown_timeout(Duration::from_secs(5));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command; the error is the message for stderr.
async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(args) => {
            let admin_token = admin_token(args.admin_token_file.as_deref())?;
            let options = serve::ServeOptions {
                listen: args.listen,
                public_url: args.public_url,
                admin_api: admin_token.is_some(),
                throttle: throttle::Limits { per_token: args.rate_limit, auth_failures: args.auth_failures },
                tls: args.tls_cert.zip(args.tls_key),
                #[cfg(feature = "native-core")]
                native_core: args.native_core,
            };
            let runtime = open(&args.store)
                .await?
                .with_admin_token(admin_token)
                .with_limits(args.max_concurrent, args.max_queued)
                .with_warm_instances(args.warm_instances as usize)
                .with_deadline(Duration::from_millis(args.deadline_ms));
            serve::serve(Arc::new(runtime), options).await.map_err(|e| format!("{e:#}"))
        }
        Command::Account(command) => {
            let runtime = open(account_store(&command)).await?;
            admin::account(&runtime, command).await.map_err(|e| e.to_string())
        }
        Command::Token(command) => {
            let runtime = open(token_store(&command)).await?;
            admin::token(&runtime, command).await.map_err(|e| e.to_string())
        }
        Command::Check(args) => {
            let runtime = open(&args.store).await?.with_admin_token(Some(admin::ephemeral_token()));
            admin::check(&runtime, &args).await.map_err(|e| e.to_string())
        }
        Command::Backup(args) => {
            sqlite_only("backup", &args.db)?;
            let progress = progress::Progress::working(&format!("backing up {}", args.db.display()));
            let bytes = store::backup::backup(&args.db, &args.path)?;
            drop(progress);
            println!("backup of {} written to {} ({bytes} bytes)", args.db.display(), args.path.display());
            Ok(())
        }
        Command::Restore(args) => {
            sqlite_only("restore", &args.db)?;
            let progress =
                progress::Progress::working(&format!("restoring {} from {}", args.db.display(), args.path.display()));
            let restored = store::backup::restore(&args.path, &args.db)?;
            drop(progress);
            match restored.previous {
                Some(kept) => println!(
                    "restored {} from {}; the database it replaced is kept at {}",
                    args.db.display(),
                    args.path.display(),
                    kept.display()
                ),
                None => println!("restored {} from {}", args.db.display(), args.path.display()),
            }
            Ok(())
        }
        Command::Admin(command) => {
            // The CLI reaches the admin API in-process with a token that
            // exists only for this run.
            let runtime = open(command.store()).await?.with_admin_token(Some(admin::ephemeral_token()));
            admin::admin(&runtime, command).await.map_err(|e| e.to_string())
        }
    }
}

/// The admin token: from `--admin-token-file`, else `SCIMLET_ADMIN_TOKEN`;
/// none leaves the admin API disabled.
fn admin_token(file: Option<&Path>) -> Result<Option<String>, String> {
    let token = match file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read admin token file {}: {e}", path.display()))?
                .trim()
                .to_owned(),
        ),
        None => std::env::var("SCIMLET_ADMIN_TOKEN").ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()),
    };
    // The component would silently keep the admin API off for a shorter
    // token; the runner says why instead.
    match token {
        Some(t) if t.len() < MIN_ADMIN_TOKEN => {
            Err(format!("the admin token must be at least {} characters", MIN_ADMIN_TOKEN))
        }
        other => Ok(other),
    }
}

/// `backup` and `restore` copy a SQLite file; a PostgreSQL database is
/// backed up with its own tools.
fn sqlite_only(command: &str, db: &Path) -> Result<(), String> {
    if store::postgres::is_postgres_url(&db.to_string_lossy()) {
        return Err(format!(
            "{command} copies a SQLite database file; back up a PostgreSQL database with pg_dump (or the service's snapshots)"
        ));
    }
    Ok(())
}

/// The backend `--db` names: a PostgreSQL URL, or a SQLite file (bare or
/// as `sqlite:PATH`).
async fn open_backend(args: &StoreArgs) -> Result<Arc<dyn Backend>, String> {
    let db = args.db.to_string_lossy();
    if store::postgres::is_postgres_url(&db) {
        let store =
            PostgresStore::open(&db, args.db_pool as usize, args.db_ca.as_deref()).await.map_err(|e| e.to_string())?;
        return Ok(Arc::new(store));
    }
    let path = db.strip_prefix("sqlite:").map(Path::new).unwrap_or(&args.db);
    Ok(Arc::new(SqliteStore::open(path).map_err(|e| e.to_string())?))
}

async fn open(args: &StoreArgs) -> Result<Runtime, String> {
    let backend = open_backend(args).await?;
    Runtime::new(args.component.as_deref().map(Path::new), backend)
        .map_err(|e| format!("{e:#}"))?
        .with_scim_config(&args.policy, args.base_paths.as_deref())
}

fn account_store(command: &AccountCommand) -> &StoreArgs {
    match command {
        AccountCommand::Create { store, .. } | AccountCommand::List { store, .. } => store,
    }
}

fn token_store(command: &TokenCommand) -> &StoreArgs {
    match command {
        TokenCommand::Create { store, .. } | TokenCommand::List { store, .. } | TokenCommand::Revoke { store, .. } => {
            store
        }
    }
}
