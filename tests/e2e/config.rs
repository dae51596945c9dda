//! `serve --config FILE`: the file's settings take effect, the environment
//! outranks the file and a flag outranks both; a bad file stops the start
//! with its key named, before anything is created.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::server::{BIN, TempDir};

/// Starts `scimlet serve` with `args` and `env` on an empty database and
/// returns the tenant URL it prints, then stops it.
fn tenant_url(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(args)
        .env_remove("SCIMLET_ADMIN_TOKEN")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn scimlet");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut url = None;
    for line in stdout.lines() {
        let line = line.expect("stdout line");
        if let Some(u) = line.strip_prefix("Tenant URL:") {
            url = Some(u.trim().to_owned());
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    url.expect("a tenant URL on stdout")
}

fn write_config(dir: &Path, db: &str, extra: &str) -> String {
    let path = dir.join("scimlet.toml");
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndb = \"{}\"\npublic-url = \"https://file.example\"\nrate-limit = 0\n{extra}",
        dir.join(db).display()
    );
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn settings_come_from_flags_then_environment_then_file() {
    let dir = TempDir::new();
    let config = write_config(dir.path(), "a.db", "");
    let url = tenant_url(&["--config", &config], &[]);
    assert!(url.starts_with("https://file.example/"), "{url}");
    assert!(dir.path().join("a.db").exists(), "the database named in the file");

    let config = write_config(dir.path(), "b.db", "");
    let url = tenant_url(&["--config", &config], &[("SCIMLET_PUBLIC_URL", "https://env.example")]);
    assert!(url.starts_with("https://env.example/"), "{url}");

    let config = write_config(dir.path(), "c.db", "");
    let url = tenant_url(
        &["--config", &config, "--public-url", "https://flag.example"],
        &[("SCIMLET_PUBLIC_URL", "https://env.example")],
    );
    assert!(url.starts_with("https://flag.example/"), "{url}");

    // The file named by the environment instead of a flag.
    let config = write_config(dir.path(), "d.db", "");
    let url = tenant_url(&[], &[("SCIMLET_CONFIG", &config)]);
    assert!(url.starts_with("https://file.example/"), "{url}");
}

#[test]
fn a_bad_file_stops_the_start_and_names_the_key() {
    let dir = TempDir::new();
    for (extra, expected) in [
        ("max-concurent = 4\n", "unknown key `max-concurent`"),
        ("warm-instances = 65\n", "`warm-instances`"),
        ("deadline-ms = [1]\n", "`deadline-ms` must be a string or an integer"),
    ] {
        let config = write_config(dir.path(), "never.db", extra);
        let out = Command::new(BIN)
            .args(["serve", "--config", &config])
            .env_remove("SCIMLET_ADMIN_TOKEN")
            .stdin(Stdio::null())
            .output()
            .expect("run scimlet");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected) && stderr.contains("scimlet.toml"), "{stderr}");
        assert!(!dir.path().join("never.db").exists(), "nothing is created before the file is good");
    }
}
