//! `scimlet backup` while the server takes writes, and `scimlet restore`:
//! the copy holds every write acknowledged before the backup started and
//! checks clean; a restore is refused while the database is in use, and
//! afterwards the server serves the backup's state.

use std::ffi::OsStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::server::{Server, TempDir};

fn user(n: usize) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("backup{n}@example.com")})
}

fn found(server: &Server, base: &str, token: &str, n: usize) -> bool {
    let path = format!("{base}/Users?filter=userName%20eq%20%22backup{n}%40example.com%22");
    let answer = server.request("GET", &path, token, None);
    assert_eq!(answer.status, 200);
    answer.json()["totalResults"] == 1
}

#[test]
fn a_backup_under_write_load_holds_every_acknowledged_write_and_restores() {
    if crate::server::on_postgres() {
        // `backup` copies a SQLite file; PostgreSQL has pg_dump.
        return;
    }
    let (mut server, boot) = Server::start();
    let base = boot.base();
    let dir = TempDir::new();
    let copy = dir.path().join("copy.db");
    let arg = |p: &std::path::Path| p.as_os_str().to_owned();

    let acked: Mutex<Vec<usize>> = Mutex::default();
    let counter = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let addr = server.addr.clone();
    let headers = vec![
        ("Authorization".to_owned(), format!("Bearer {}", boot.token)),
        ("Content-Type".to_owned(), "application/scim+json".to_owned()),
    ];
    let (before, output) = std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                while !stop.load(Ordering::SeqCst) {
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    let body = serde_json::to_vec(&user(n)).unwrap();
                    if scimlet_vectors::http::send(&addr, "POST", &format!("{base}/Users"), &headers, &body)
                        .is_ok_and(|r| r.status == 201)
                    {
                        acked.lock().unwrap().push(n);
                    }
                }
            });
        }
        while acked.lock().unwrap().len() < 40 {
            std::thread::sleep(Duration::from_millis(10));
        }
        // Everything acknowledged by now must be in the copy.
        let before: Vec<usize> = acked.lock().unwrap().clone();
        let output = server.cli_output(&[OsStr::new("backup"), &arg(&copy), OsStr::new("--db"), &arg(&server.db)]);
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::SeqCst);
        (before, output)
    });
    assert!(output.status.success(), "backup: {}", String::from_utf8_lossy(&output.stderr));
    let acked = acked.into_inner().unwrap();
    assert!(acked.len() > before.len(), "writes went on during the backup");

    // The copy checks clean.
    let check = server.cli_output(&[OsStr::new("check"), OsStr::new("--db"), &arg(&copy)]);
    assert!(check.status.success(), "check of the copy: {}", String::from_utf8_lossy(&check.stdout));

    // A backup never overwrites.
    let again = server.cli_output(&[OsStr::new("backup"), &arg(&copy), OsStr::new("--db"), &arg(&server.db)]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));

    // Not under a running server.
    let restore = [OsStr::new("restore"), &arg(&copy), OsStr::new("--db"), &arg(&server.db)];
    let refused = server.cli_output(&restore);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Writes after the backup, then a restore: the server is back at the copy.
    let late = 1_000_000;
    assert_eq!(server.request("POST", &format!("{base}/Users"), &boot.token, Some(&user(late))).status, 201);
    server.kill();
    let restored = server.cli_output(&restore);
    assert!(restored.status.success(), "restore: {}", String::from_utf8_lossy(&restored.stderr));
    assert!(String::from_utf8_lossy(&restored.stdout).contains(".pre-restore"));
    server.restart().unwrap();
    for n in &before {
        assert!(found(&server, &base, &boot.token, *n), "user {n}, acknowledged before the backup, is in the copy");
    }
    assert!(!found(&server, &base, &boot.token, late), "a write after the backup is not");
    let all = server.request("GET", &format!("{base}/Users?count=1"), &boot.token, None).json();
    let total = all["totalResults"].as_u64().unwrap() as usize;
    assert!(
        total >= before.len() && total <= acked.len(),
        "{total} users: between {} and {}",
        before.len(),
        acked.len()
    );

    // A file that is not a backup is refused and changes nothing.
    server.kill();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database").unwrap();
    let bad = server.cli_output(&[OsStr::new("restore"), &arg(&junk), OsStr::new("--db"), &arg(&server.db)]);
    assert_eq!(bad.status.code(), Some(1));
    server.restart().unwrap();
    assert!(found(&server, &base, &boot.token, before[0]));
}
