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
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
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
    assert_eq!(stdout.lines().count(), 1, "one line of JSON expected, got {stdout:?}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout:?}"))
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value.as_object().expect("a JSON object").keys().map(String::as_str).collect();
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

    let token = json(&db, &["token", "create", "--account", account_id, "--name", "okta", "--json"]);
    assert_eq!(keys(&token), ["expiresAt", "id", "token"]);
    let token_id = string(&token, "id");
    string(&token, "token");
    string(&token, "expiresAt");

    let tokens = json(&db, &["token", "list", "--account", account_id, "--json"]);
    let tokens = tokens.as_array().expect("token list is an array");
    assert_eq!(tokens.len(), 1);
    assert_eq!(keys(&tokens[0]), ["created", "expiresAt", "expiryWarning", "id", "lastUsedAt", "name", "revokedAt"]);
    assert!(tokens[0]["expiryWarning"].is_null() && tokens[0]["lastUsedAt"].is_null());
    assert_eq!(tokens[0]["id"], token_id);
    assert_eq!(tokens[0]["name"], "okta");
    assert!(tokens[0]["revokedAt"].is_null());
    // The secret is shown once, never listed.
    assert!(!tokens[0].to_string().contains(string(&token, "token")));

    let revoked = scimlet(&db, &["token", "revoke", "--account", account_id, token_id]);
    assert!(revoked.status.success(), "revoke failed: {}", String::from_utf8_lossy(&revoked.stderr));

    let tokens = json(&db, &["token", "list", "--account", account_id, "--json"]);
    assert_eq!(tokens[0]["id"], token_id);
    string(&tokens[0], "revokedAt");
}

#[test]
fn refusals_exit_1_and_usage_errors_exit_2() {
    let dir = TempDir::new();
    let db = dir.db();

    let out = scimlet(&db, &["token", "list", "--account", "no-such-account", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(!out.stderr.is_empty());

    let account = json(&db, &["account", "create", "Acme", "--json"]);
    let account_id = string(&account, "id");
    let out = scimlet(&db, &["token", "create", "--account", account_id, "--expires-in-days", "0"]);
    assert_eq!(out.status.code(), Some(1));

    let out = scimlet(&db, &["token", "create", "--json"]);
    assert_eq!(out.status.code(), Some(2));
}

fn stdout(db: &Path, args: &[&str]) -> String {
    let out = scimlet(db, args);
    assert!(out.status.success(), "scimlet {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

#[test]
fn admin_commands_use_the_admin_api_in_process() {
    let dir = TempDir::new();
    let db = dir.db();
    let account = json(&db, &["account", "create", "Acme", "--json"]);
    let id = string(&account, "id");

    // A token close to expiry is flagged.
    let token = json(&db, &["token", "create", "--account", id, "--expires-in-days", "5", "--json"]);
    let tokens = json(&db, &["token", "list", "--account", id, "--json"]);
    let warning = string(&tokens[0], "expiryWarning");
    assert!(warning.contains("expires in 4 days") || warning.contains("expires in 5 days"), "{warning}");

    let settings = json(&db, &["admin", "settings", "--account", id]);
    assert_eq!(settings["sameNamePolicy"], "link");
    assert_eq!(settings["deactivation"], "disable");
    let settings = json(
        &db,
        &["admin", "settings", "--account", id, "--same-name-policy", "separate", "--deactivation", "remove"],
    );
    assert_eq!(
        (settings["sameNamePolicy"].as_str(), settings["deactivation"].as_str()),
        (Some("separate"), Some("remove"))
    );
    let out = scimlet(&db, &["admin", "settings", "--account", id, "--deactivation", "purge"]);
    assert_eq!(out.status.code(), Some(1), "a bad value is refused");

    let rotated = stdout(&db, &["admin", "rotate-token", "--account", id, string(&token, "id"), "--grace-hours", "0"]);
    assert!(rotated.lines().next().is_some_and(|l| l.starts_with("Token: scimlet_")), "{rotated}");
    let tokens = json(&db, &["token", "list", "--account", id, "--json"]);
    let tokens = tokens.as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    assert!(
        tokens.iter().any(|t| t["id"] == token["id"] && t["revokedAt"].is_string()),
        "grace 0 revokes the old token"
    );

    let report = json(&db, &["admin", "migration-report", "--account", id]);
    assert_eq!(report["summary"]["users"], 0);
    assert_eq!(report["nativeUsersNotTakenOver"], serde_json::json!([]));

    let csv = stdout(&db, &["admin", "export-users", "--account", id]);
    assert_eq!(csv, "id,email,name,userName,source,scimTokenId,takenOverAt,active,groups,roleBindings\r\n");
    assert_eq!(stdout(&db, &["admin", "export-users", "--account", id, "--format", "json"]).trim(), "[]");

    let audit = stdout(&db, &["admin", "export-audit", "--account", id]);
    let records: Vec<Value> =
        audit.lines().map(|l| serde_json::from_str(l).expect("one JSON record per line")).collect();
    let ops: Vec<(&str, &str)> =
        records.iter().map(|r| (r["operation"].as_str().unwrap(), r["outcome"].as_str().unwrap())).collect();
    assert_eq!(
        ops,
        [
            ("token.create", "success"),
            ("settings.update", "success"),
            ("settings.update", "failure"),
            ("token.rotate", "success")
        ],
        "the refused settings change is recorded too"
    );
    assert_eq!(records[2]["status"], 400);
    assert_eq!(records[1]["actor"]["kind"], "admin");
    assert_eq!(records[1]["client"], "cli");
    let only = stdout(&db, &["admin", "export-audit", "--account", id, "--operation", "token.rotate"]);
    assert_eq!(only.lines().count(), 1);
}

#[test]
fn serve_warns_about_tokens_close_to_expiry() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = TempDir::new();
    let db = dir.db();
    let account = json(&db, &["account", "create", "Acme", "--json"]);
    let id = string(&account, "id");
    json(&db, &["token", "create", "--account", id, "--name", "okta", "--expires-in-days", "3", "--json"]);

    let mut command = Command::new(env!("CARGO_BIN_EXE_scimlet"));
    command.args(["serve", "--listen", "127.0.0.1:0", "--db"]).arg(&db).env_remove("SCIMLET_ADMIN_TOKEN");
    if let Some(component) = std::env::var_os("SCIMLET_TEST_COMPONENT") {
        command.arg("--component").arg(component);
    }
    let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start scimlet serve");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    // Read on a thread so that a server that never warns fails the test
    // instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains(" WARN ") {
                let _ = tx.send(line);
                return;
            }
        }
    });
    let warning = rx.recv_timeout(std::time::Duration::from_secs(120));
    let _ = child.kill();
    let _ = child.wait();
    let warning = warning.expect("serve logs a warning within two minutes");
    assert!(warning.contains("\"Acme\"") && warning.contains("\"okta\"") && warning.contains("rotate it"), "{warning}");
}

/// Long commands draw a progress spinner on a terminal and nothing when
/// their output goes to a pipe. The terminal is a pseudo-terminal made by
/// util-linux's `script`.
#[test]
fn long_commands_show_progress_on_a_terminal_and_stay_quiet_when_piped() {
    let dir = TempDir::new();
    let db = dir.db();
    let account = json(&db, &["account", "create", "acme", "--json"]);
    let id = string(&account, "id").to_owned();
    let backup = dir.0.join("copy.db");
    let piped: [Vec<String>; 3] = [
        vec!["check".into()],
        vec!["admin".into(), "export-users".into(), "--account".into(), id.clone()],
        vec!["backup".into(), backup.display().to_string()],
    ];
    for args in &piped {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = scimlet(&db, &args);
        assert!(out.status.success(), "scimlet {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(
            out.stderr.is_empty(),
            "scimlet {args:?} wrote to a piped stderr: {:?}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let on_terminal = |line: &str| -> String {
        let out = Command::new("script")
            .args(["-qec", line, "/dev/null"])
            .output()
            .expect("util-linux `script` runs the command on a pseudo-terminal");
        assert!(out.status.success(), "{line}: {}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let bin = env!("CARGO_BIN_EXE_scimlet");
    let shown = on_terminal(&format!("{bin} check --db '{}'", db.display()));
    assert!(shown.contains("checking account") && shown.contains("records"), "{shown:?}");
    let again = dir.0.join("copy2.db");
    let shown = on_terminal(&format!("{bin} backup '{}' --db '{}'", again.display(), db.display()));
    assert!(shown.contains("backing up") && shown.contains("written to"), "{shown:?}");
}
