//! Serves the example application: `scimlet-axum-example [--listen ADDR]
//! [--db FILE]`, with `SCIMLET_ADMIN_TOKEN` to enable the admin API.
//!
//! On its first start on a new database it creates an account and prints
//! the tenant URL and bearer token to give an identity provider.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use scimlet_axum_example::{SqliteStorage, app, scimlet};

struct Args {
    listen: SocketAddr,
    db: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { listen: SocketAddr::from(([127, 0, 0, 1], 3000)), db: "scimlet-example.db".into() };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let value = given.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--listen" => args.listen = value.parse().map_err(|e| format!("--listen {value}: {e}"))?,
            "--db" => args.db = value.into(),
            _ => return Err(format!("unknown argument {flag}; usage: [--listen ADDR] [--db FILE]")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let engine = wasmtime::Engine::new(&scimlet_embed::engine_config())?;
    let storage = SqliteStorage::open(&args.db)?;
    let mut builder = scimlet(&engine);
    if let Some(token) = std::env::var("SCIMLET_ADMIN_TOKEN").ok().filter(|t| !t.is_empty()) {
        builder = builder.admin_token(token);
    }
    let scim = builder.build(storage)?;

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let origin = format!("http://{}", listener.local_addr()?);
    println!("Listening on {origin}");
    match scim.bootstrap("example").await? {
        Some((account, token)) => {
            println!("Tenant URL: {origin}{}", account.scim_path);
            println!("Token: {}", token.token);
        }
        None => {
            for account in scim.list_accounts().await? {
                println!("Tenant URL: {origin}{}", account.scim_path);
            }
        }
    }
    println!("Serving until Ctrl-C");
    axum::serve(listener, app(&scim))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
