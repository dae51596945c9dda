//! The `account` and `token` commands, and the server's first-start bootstrap:
//! each is one call into the component's `admin` export, then printing. The
//! component decides everything (ids, validation, expiry); this module only
//! formats its answers.

use std::fmt;
use std::io::Write as _;

use serde_json::{Value, json};

use crate::bindings::{Account, AdminError, NewToken, TokenInfo};
use crate::cli::{AccountCommand, TokenCommand};
use crate::runtime::Runtime;

/// Why a command failed: the admin layer's one error type. Both kinds exit 1.
#[derive(Debug)]
pub enum CommandError {
    /// The component refused the request.
    Admin(AdminError),
    /// The component could not be run (trap, deadline, load failure).
    Runtime(wasmtime::Error),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Admin(AdminError::NotFound(what)) => write!(f, "not found: {what}"),
            CommandError::Admin(AdminError::Invalid(why)) => write!(f, "invalid: {why}"),
            CommandError::Admin(AdminError::Unavailable(why)) => {
                write!(f, "storage unavailable: {why}")
            }
            CommandError::Runtime(err) => write!(f, "component failed: {err:#}"),
        }
    }
}

impl From<wasmtime::Error> for CommandError {
    fn from(err: wasmtime::Error) -> Self {
        CommandError::Runtime(err)
    }
}

impl From<AdminError> for CommandError {
    fn from(err: AdminError) -> Self {
        CommandError::Admin(err)
    }
}

type Result<T, E = CommandError> = std::result::Result<T, E>;

/// The URL an identity provider is given: the public origin plus the
/// account's SCIM base path.
pub fn tenant_url(public_url: &str, account: &Account) -> String {
    format!("{}{}", public_url.trim_end_matches('/'), account.scim_path)
}

/// Writes lines to stdout and flushes, ignoring a closed stdout (nothing
/// useful can be done about it, and it must not abort a server).
pub fn print_lines(lines: &[String]) {
    let mut out = std::io::stdout().lock();
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

fn print_json(value: &Value) {
    print_lines(&[value.to_string()]);
}

fn token_json(info: &TokenInfo) -> Value {
    json!({
        "id": info.id,
        "name": info.name,
        "created": info.created,
        "expiresAt": info.expires_at,
        "revokedAt": info.revoked_at,
    })
}

const SHOWN_ONCE: &str = "This token is shown only once: store it now.";

/// On a store without accounts, has the component create account `name` and
/// a first token, and returns the lines to show the operator; `None` when the
/// store already had an account (nothing changed, nothing to show).
pub async fn bootstrap(
    runtime: &Runtime,
    name: &str,
    public_url: &str,
) -> Result<Option<Vec<String>>> {
    let (mut store, core) = runtime.instantiate_core().await?;
    let created = core
        .scimlet_provider_admin()
        .call_bootstrap(&mut store, name)
        .await??;
    Ok(created.map(|(account, token)| {
        vec![
            format!("Created account {:?} ({})", account.name, account.id),
            format!("Tenant URL: {}", tenant_url(public_url, &account)),
            format!("Token: {}", token.token),
            SHOWN_ONCE.to_string(),
        ]
    }))
}

pub async fn account(runtime: &Runtime, command: AccountCommand) -> Result<()> {
    let (mut store, core) = runtime.instantiate_core().await?;
    let admin = core.scimlet_provider_admin();
    match command {
        AccountCommand::Create {
            name,
            public_url,
            json,
            ..
        } => {
            let account = admin.call_create_account(&mut store, &name).await??;
            let url = tenant_url(&public_url, &account);
            if json {
                print_json(&json!({ "id": account.id, "name": account.name, "tenantUrl": url }));
            } else {
                print_lines(&[
                    format!("Created account {:?} ({})", account.name, account.id),
                    format!("Tenant URL: {url}"),
                ]);
            }
        }
        AccountCommand::List {
            public_url, json, ..
        } => {
            let accounts = admin.call_list_accounts(&mut store).await??;
            if json {
                let list: Vec<Value> = accounts
                    .iter()
                    .map(|a| {
                        json!({
                            "id": a.id,
                            "name": a.name,
                            "created": a.created,
                            "tenantUrl": tenant_url(&public_url, a),
                        })
                    })
                    .collect();
                print_json(&Value::Array(list));
            } else {
                let lines: Vec<String> = accounts
                    .iter()
                    .map(|a| {
                        format!(
                            "{}\t{:?}\tcreated {}\t{}",
                            a.id,
                            a.name,
                            a.created,
                            tenant_url(&public_url, a)
                        )
                    })
                    .collect();
                print_lines(&lines);
            }
        }
    }
    Ok(())
}

pub async fn token(runtime: &Runtime, command: TokenCommand) -> Result<()> {
    let (mut store, core) = runtime.instantiate_core().await?;
    let admin = core.scimlet_provider_admin();
    match command {
        TokenCommand::Create {
            account,
            name,
            expires_in_days,
            json,
            ..
        } => {
            let NewToken { info, token } = admin
                .call_create_token(&mut store, &account, &name, expires_in_days)
                .await??;
            if json {
                print_json(&json!({ "id": info.id, "token": token, "expiresAt": info.expires_at }));
            } else {
                print_lines(&[
                    format!("Token: {token}"),
                    format!("Id: {} (expires {})", info.id, info.expires_at),
                    SHOWN_ONCE.to_string(),
                ]);
            }
        }
        TokenCommand::List { account, json, .. } => {
            let tokens = admin.call_list_tokens(&mut store, &account).await??;
            if json {
                print_json(&Value::Array(tokens.iter().map(token_json).collect()));
            } else {
                let lines: Vec<String> = tokens
                    .iter()
                    .map(|t| {
                        let state = match &t.revoked_at {
                            Some(at) => format!("revoked {at}"),
                            None => format!("expires {}", t.expires_at),
                        };
                        format!("{}\t{:?}\tcreated {}\t{state}", t.id, t.name, t.created)
                    })
                    .collect();
                print_lines(&lines);
            }
        }
        TokenCommand::Revoke {
            account,
            token_id,
            json,
            ..
        } => {
            let info = admin
                .call_revoke_token(&mut store, &account, &token_id)
                .await??;
            if json {
                print_json(&token_json(&info));
            } else {
                let at = info.revoked_at.as_deref().unwrap_or("(unknown time)");
                print_lines(&[format!("Revoked token {} at {at}", info.id)]);
            }
        }
    }
    Ok(())
}
