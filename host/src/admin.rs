//! The `account` and `token` commands, and the server's first-start bootstrap:
//! each is one call into the component's `admin` export, then printing. The
//! component decides everything (ids, validation, expiry); this module only
//! formats its answers.

use crate::progress::Progress;
use std::fmt;
use std::io::Write as _;

use serde_json::{Value, json};

use crate::bindings::{Account, AdminError, NewToken, Request, TokenInfo};
use crate::cli::{AccountCommand, AdminCommand, TokenCommand};
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
        "lastUsedAt": info.last_used_at,
        "expiryWarning": info.expiry_warning,
    })
}

const SHOWN_ONCE: &str = "This token is shown only once: store it now.";

/// On a store without accounts, has the component create account `name` and
/// a first token, and returns the lines to show the operator; `None` when the
/// store already had an account (nothing changed, nothing to show).
pub async fn bootstrap(runtime: &Runtime, name: &str, public_url: &str) -> Result<Option<Vec<String>>> {
    let (mut store, core) = runtime.instantiate_core().await?;
    let created = core.scimlet_provider_admin().call_bootstrap(&mut store, name).await??;
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
        AccountCommand::Create { name, public_url, json, .. } => {
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
        AccountCommand::List { public_url, json, .. } => {
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
                    .map(|a| format!("{}\t{:?}\tcreated {}\t{}", a.id, a.name, a.created, tenant_url(&public_url, a)))
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
        TokenCommand::Create { account, name, expires_in_days, json, .. } => {
            let NewToken { info, token } =
                admin.call_create_token(&mut store, &account, &name, expires_in_days).await??;
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
                        let used = t.last_used_at.as_deref().map(|u| format!("\tlast used {u}")).unwrap_or_default();
                        let warning =
                            t.expiry_warning.as_deref().map(|w| format!("\twarning: {w}")).unwrap_or_default();
                        format!("{}\t{:?}\tcreated {}\t{state}{used}{warning}", t.id, t.name, t.created)
                    })
                    .collect();
                print_lines(&lines);
            }
        }
        TokenCommand::Revoke { account, token_id, json, .. } => {
            let info = admin.call_revoke_token(&mut store, &account, &token_id).await??;
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

/// Warnings for every token of every account that expires within 14 days
/// (the component decides which, and words them); also refreshes the days
/// left of every token that `/metrics` reports.
pub async fn expiry_warnings(runtime: &Runtime) -> Result<Vec<String>> {
    let (mut store, core) = runtime.instantiate_core().await?;
    let admin = core.scimlet_provider_admin();
    let mut out = Vec::new();
    let mut days = Vec::new();
    let now = std::time::SystemTime::now();
    for account in admin.call_list_accounts(&mut store).await?? {
        for token in admin.call_list_tokens(&mut store, &account.id).await?? {
            if token.revoked_at.is_none()
                && let Some(left) = crate::metrics::days_until(&token.expires_at, now)
            {
                days.push((account.id.clone(), token.id.clone(), left));
            }
            if let Some(warning) = token.expiry_warning {
                out.push(format!("account {:?}: {warning}", account.name));
            }
        }
    }
    runtime.metrics().token_expiry(days);
    Ok(out)
}

/// A token for one CLI run's in-process admin calls: random, never stored
/// and never sent over a network.
pub fn ephemeral_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::io::Read as _;
    let mut bytes = [0u8; 24];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_err() {
        // No /dev/urandom: the process-random hasher keys are the next best.
        for chunk in bytes.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0),
            );
            chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One admin API call through the component's typed `handler` export.
struct AdminCall<'r> {
    runtime: &'r Runtime,
    token: String,
}

impl AdminCall<'_> {
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Vec<(String, String)>, Vec<u8>)> {
        let (mut store, core) = self.runtime.instantiate_core().await?;
        let request = Request {
            method: method.to_owned(),
            path_with_query: path.to_owned(),
            scheme: None,
            authority: Some("localhost".into()),
            headers: vec![
                ("authorization".into(), format!("Bearer {}", self.token)),
                ("content-type".into(), "application/json".into()),
                ("user-agent".into(), "scimlet-cli".into()),
            ],
            body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
        };
        let response = core.scimlet_provider_handler().call_handle(&mut store, &request).await?;
        Ok((response.status, response.headers, response.body))
    }

    /// Sends and parses JSON; an error status becomes the command's error.
    async fn json(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
        let (status, _, bytes) = self.send(method, path, body).await?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status >= 400 {
            let detail = value["detail"].as_str().unwrap_or("no detail").to_owned();
            return Err(CommandError::Admin(if status == 404 {
                AdminError::NotFound(detail)
            } else {
                AdminError::Invalid(detail)
            }));
        }
        Ok(value)
    }
}

fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `scimlet check`: pages through the component's check of each account,
/// printing one line per problem; fails when a problem is left.
pub async fn check(runtime: &Runtime, args: &crate::cli::CheckArgs) -> Result<()> {
    let api = AdminCall { runtime, token: runtime.admin_token().unwrap_or_default().to_owned() };
    let accounts: Vec<String> = match &args.account {
        Some(id) => vec![id.clone()],
        None => api.json("GET", "/api/accounts", None).await?["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["id"].as_str().map(str::to_owned))
            .collect(),
    };
    let (mut examined, mut found, mut left) = (0u64, 0u64, 0u64);
    let mut out = std::io::stdout().lock();
    let progress = Progress::counting("checking", "records");
    for account in &accounts {
        progress.set_message(format!("checking account {account}"));
        let mut cursor = String::new();
        loop {
            let path = format!(
                "/api/accounts/{}/check?repair={}&cursor={}",
                query_value(account),
                args.repair,
                query_value(&cursor)
            );
            let page = api.json("POST", &path, None).await?;
            let page_examined = page["examined"].as_u64().unwrap_or(0);
            examined += page_examined;
            progress.add(page_examined);
            for problem in page["problems"].as_array().into_iter().flatten() {
                found += 1;
                let fixed = args.repair && problem["repairable"] == true;
                if !fixed {
                    left += 1;
                }
                let line = format!(
                    "{account} {} {}: {}{}",
                    problem["kind"].as_str().unwrap_or_default(),
                    problem["key"].as_str().unwrap_or_default(),
                    problem["detail"].as_str().unwrap_or_default(),
                    if fixed {
                        " [repaired]"
                    } else if problem["repairable"] == true {
                        " [repairable]"
                    } else {
                        ""
                    }
                );
                progress.suspend(|| writeln!(out, "{line}")).ok();
            }
            match page["nextCursor"].as_str() {
                Some(next) => cursor = next.to_owned(),
                None => break,
            }
        }
    }
    let _ = writeln!(
        out,
        "checked {examined} records in {} account(s): {found} problem(s), {} repaired",
        accounts.len(),
        found - left
    );
    let _ = out.flush();
    if left > 0 {
        return Err(CommandError::Admin(AdminError::Invalid(format!("{left} problem(s) left"))));
    }
    Ok(())
}

pub async fn admin(runtime: &Runtime, command: AdminCommand) -> Result<()> {
    let api = AdminCall { runtime, token: runtime.admin_token().unwrap_or_default().to_owned() };
    let base = |account: &str| format!("/api/accounts/{}", query_value(account));
    match command {
        AdminCommand::Settings { account, same_name_policy, update_emails_via_scim, deactivation, .. } => {
            let mut patch = serde_json::Map::new();
            if let Some(p) = same_name_policy {
                patch.insert("sameNamePolicy".into(), p.into());
            }
            if let Some(u) = update_emails_via_scim {
                patch.insert("updateEmailsViaScim".into(), u.into());
            }
            if let Some(d) = deactivation {
                patch.insert("deactivation".into(), d.into());
            }
            let path = format!("{}/settings", base(&account));
            let settings = if patch.is_empty() {
                api.json("GET", &path, None).await?
            } else {
                api.json("PATCH", &path, Some(&Value::Object(patch))).await?
            };
            print_json(&settings);
        }
        AdminCommand::RotateToken { account, token_id, grace_hours, expires_in_days, .. } => {
            let body = json!({"graceHours": grace_hours, "expiresInDays": expires_in_days});
            let path = format!("{}/tokens/{}/rotate", base(&account), query_value(&token_id));
            let rotated = api.json("POST", &path, Some(&body)).await?;
            print_lines(&[
                format!("Token: {}", rotated["token"]["token"].as_str().unwrap_or_default()),
                format!(
                    "Id: {} (expires {})",
                    rotated["token"]["id"].as_str().unwrap_or_default(),
                    rotated["token"]["expiresAt"].as_str().unwrap_or_default()
                ),
                format!(
                    "Previous token {} valid until {}",
                    rotated["previous"]["id"].as_str().unwrap_or_default(),
                    rotated["previous"]["revokedAt"]
                        .as_str()
                        .or(rotated["previous"]["expiresAt"].as_str())
                        .unwrap_or_default()
                ),
                SHOWN_ONCE.to_string(),
            ]);
        }
        AdminCommand::MigrationReport { account, .. } => {
            print_json(&api.json("GET", &format!("{}/migration-report", base(&account)), None).await?);
        }
        AdminCommand::ExportUsers { account, format, .. } => {
            if format != "csv" && format != "json" {
                return Err(CommandError::Admin(AdminError::Invalid("--format is csv or json".into())));
            }
            let mut cursor: Option<String> = None;
            let mut all = Vec::new();
            let mut out = std::io::stdout().lock();
            let progress = Progress::counting(&format!("exporting the users of account {account}"), "users");
            let mut first = true;
            loop {
                let mut path = format!("{}/export/users?format={format}&count=1000", base(&account));
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={}", query_value(c)));
                }
                let (status, headers, body) = api.send("GET", &path, None).await?;
                if status != 200 {
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    return Err(CommandError::Admin(AdminError::Invalid(
                        v["detail"].as_str().unwrap_or("export failed").to_owned(),
                    )));
                }
                if format == "csv" {
                    // One line a user, after the header of the first page.
                    let lines = body.iter().filter(|&&b| b == b'\n').count() as u64;
                    progress.add(lines.saturating_sub(u64::from(first)));
                    let _ = progress.suspend(|| out.write_all(&body));
                } else {
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let items = v["items"].as_array().cloned().unwrap_or_default();
                    progress.add(items.len() as u64);
                    all.extend(items);
                }
                first = false;
                cursor = headers.into_iter().find(|(n, _)| n == "x-next-cursor").map(|(_, v)| v);
                if cursor.is_none() {
                    break;
                }
            }
            if format == "json" {
                let _ = writeln!(out, "{}", Value::Array(all));
            }
            let _ = out.flush();
        }
        AdminCommand::ExportAudit { account, since, until, operation, .. } => {
            let mut filters = String::new();
            for (k, v) in [("since", since), ("until", until), ("operation", operation)] {
                if let Some(v) = v {
                    filters.push_str(&format!("&{k}={}", query_value(&v)));
                }
            }
            let mut cursor: Option<String> = None;
            let mut out = std::io::stdout().lock();
            let progress = Progress::counting(&format!("exporting the audit log of account {account}"), "records");
            loop {
                let mut path = format!("{}/audit?count=1000{filters}", base(&account));
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={}", query_value(c)));
                }
                let page = api.json("GET", &path, None).await?;
                let items = page["items"].as_array().cloned().unwrap_or_default();
                progress.add(items.len() as u64);
                progress.suspend(|| {
                    for item in &items {
                        let _ = writeln!(out, "{item}");
                    }
                });
                cursor = page["nextCursor"].as_str().map(str::to_owned);
                if cursor.is_none() {
                    break;
                }
            }
            let _ = out.flush();
        }
    }
    Ok(())
}
