//! Runs the built `scimlet` binary's account and token commands against a
//! fresh database and checks the JSON shapes scripts rely on. SCIM behaviour
//! itself is tested end to end in the workspace's `tests/`.
//!
//! The embedded component is used unless `SCIMLET_TEST_COMPONENT` names
//! another component file (handy while the real one is being written).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "scimlet-cli-test-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    fn db(&self) -> PathBuf {
        self.0.join("scimlet.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scimlet(db: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scimlet"));
    command.args(args).arg("--db").arg(db);
    if let Some(component) = std::env::var_os("SCIMLET_TEST_COMPONENT") {
        command.arg("--component").arg(component);
    }
    command.output().expect("run scimlet")
}

/// Runs a command that must succeed and print exactly one JSON document.
fn json(db: &Path, args: &[&str]) -> Value {
    let out = scimlet(db, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "scimlet {args:?} failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    assert_eq!(
        stdout.lines().count(),
        1,
        "one line of JSON expected, got {stdout:?}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout:?}"))
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

fn string<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| panic!("{key} should be a non-empty string in {value}"))
}

#[test]
fn account_and_token_lifecycle() {
    let dir = TempDir::new();
    let db = dir.db();

    let account = json(&db, &["account", "create", "Acme Corp", "--json"]);
    assert_eq!(keys(&account), ["id", "name", "tenantUrl"]);
    assert_eq!(account["name"], "Acme Corp");
    let account_id = string(&account, "id");
    let tenant_url = string(&account, "tenantUrl");
    assert!(
        tenant_url.starts_with("http://127.0.0.1:8080/") && tenant_url.contains(account_id),
        "tenant URL {tenant_url} should be the default origin plus a path naming {account_id}"
    );

    let listed = json(&db, &["account", "list", "--json"]);
    let listed = listed.as_array().expect("account list is an array");
    assert!(listed.iter().any(|a| a["id"] == account_id));

    let token = json(
        &db,
        &[
            "token",
            "create",
            "--account",
            account_id,
            "--name",
            "okta",
            "--json",
        ],
    );
    assert_eq!(keys(&token), ["expiresAt", "id", "token"]);
    let token_id = string(&token, "id");
    string(&token, "token");
    string(&token, "expiresAt");

    let tokens = json(&db, &["token", "list", "--account", account_id, "--json"]);
    let tokens = tokens.as_array().expect("token list is an array");
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        keys(&tokens[0]),
        ["created", "expiresAt", "id", "name", "revokedAt"]
    );
    assert_eq!(tokens[0]["id"], token_id);
    assert_eq!(tokens[0]["name"], "okta");
    assert!(tokens[0]["revokedAt"].is_null());
    // The secret is shown once, never listed.
    assert!(!tokens[0].to_string().contains(string(&token, "token")));

    let revoked = scimlet(&db, &["token", "revoke", "--account", account_id, token_id]);
    assert!(
        revoked.status.success(),
        "revoke failed: {}",
        String::from_utf8_lossy(&revoked.stderr)
    );

    let tokens = json(&db, &["token", "list", "--account", account_id, "--json"]);
    assert_eq!(tokens[0]["id"], token_id);
    string(&tokens[0], "revokedAt");
}

#[test]
fn refusals_exit_1_and_usage_errors_exit_2() {
    let dir = TempDir::new();
    let db = dir.db();

    let out = scimlet(
        &db,
        &["token", "list", "--account", "no-such-account", "--json"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(!out.stderr.is_empty());

    let account = json(&db, &["account", "create", "Acme", "--json"]);
    let account_id = string(&account, "id");
    let out = scimlet(
        &db,
        &[
            "token",
            "create",
            "--account",
            account_id,
            "--expires-in-days",
            "0",
        ],
    );
    assert_eq!(out.status.code(), Some(1));

    let out = scimlet(&db, &["token", "create", "--json"]);
    assert_eq!(out.status.code(), Some(2));
}
