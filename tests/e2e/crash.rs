//! Crash safety: `scimlet` killed with SIGKILL in the middle of a mixed
//! write load, several times; every acknowledged write must be there after
//! the restarts, and `scimlet check` must find the store consistent.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::server::Server;

const ROUNDS: usize = 3;
const WRITERS: usize = 4;

#[derive(Default)]
struct Acknowledged {
    created: Mutex<Vec<String>>,
    members: Mutex<BTreeSet<String>>,
    deleted: Mutex<BTreeSet<String>>,
    /// Deletes sent whose answer was lost: either outcome is right.
    maybe_deleted: Mutex<BTreeSet<String>>,
}

#[test]
fn acknowledged_writes_survive_sigkill_and_the_store_checks_clean() {
    let (mut server, boot) = Server::start();
    let base = boot.base();
    let group = server.request(
        "POST",
        &format!("{base}/Groups"),
        &boot.token,
        Some(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Crash"})),
    );
    assert_eq!(group.status, 201);
    let gid = group.json()["id"].as_str().unwrap().to_owned();
    let acked = Acknowledged::default();
    let counter = AtomicUsize::new(0);

    // The address survives restarts (same port); the writers use it, not the server.
    let addr = server.addr.clone();
    for round in 0..ROUNDS {
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for _ in 0..WRITERS {
                scope.spawn(|| {
                    let headers = vec![("Authorization".to_owned(), format!("Bearer {}", boot.token)), ("Content-Type".to_owned(), "application/scim+json".to_owned())];
                    let send = |method: &str, path: &str, body: &Value| scimlet_vectors::http::send(&addr, method, path, &headers, &serde_json::to_vec(body).unwrap());
                    while !stop.load(Ordering::SeqCst) {
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("crash{n}@example.com"), "emails": [{"value": format!("crash{n}@example.com"), "primary": true}]});
                        // Connection errors while the server is down are
                        // outcomes nobody acknowledged: skip and go on.
                        let Ok(created) = send("POST", &format!("{base}/Users"), &user) else {
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        };
                        if created.status != 201 {
                            continue;
                        }
                        let id = serde_json::from_slice::<Value>(&created.body).unwrap()["id"].as_str().unwrap().to_owned();
                        acked.created.lock().unwrap().push(id.clone());
                        let add = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]});
                        if send("PATCH", &format!("{base}/Groups/{gid}"), &add).is_ok_and(|r| r.status == 204) {
                            acked.members.lock().unwrap().insert(id.clone());
                        }
                        if n.is_multiple_of(3) {
                            let deleted = scimlet_vectors::http::send(&addr, "DELETE", &format!("{base}/Users/{id}"), &headers, b"");
                            if deleted.is_ok_and(|r| r.status == 204) {
                                acked.deleted.lock().unwrap().insert(id);
                            } else {
                                acked.maybe_deleted.lock().unwrap().insert(id);
                            }
                        }
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(1200));
            // SIGKILL in the middle of the load, and start again on the same file.
            let restarted = server.restart();
            std::thread::sleep(Duration::from_millis(400));
            stop.store(true, Ordering::SeqCst);
            restarted.unwrap_or_else(|e| panic!("round {round}: {e}"));
        });
    }

    let created = acked.created.lock().unwrap().clone();
    let members = acked.members.lock().unwrap().clone();
    let deleted = acked.deleted.lock().unwrap().clone();
    let maybe_deleted = acked.maybe_deleted.lock().unwrap().clone();
    assert!(created.len() > 20, "too little load to prove anything: {} creates", created.len());
    for id in created.iter().filter(|id| !maybe_deleted.contains(*id)) {
        let got = server.request("GET", &format!("{base}/Users/{id}"), &boot.token, None);
        let want = if deleted.contains(id) { 404 } else { 200 };
        assert_eq!(got.status, want, "user {id} after {ROUNDS} crashes");
    }
    let group = server.request("GET", &format!("{base}/Groups/{gid}"), &boot.token, None).json();
    let in_group: BTreeSet<String> =
        group["members"].as_array().into_iter().flatten().map(|m| m["value"].as_str().unwrap().to_owned()).collect();
    for id in members.difference(&deleted).filter(|id| !maybe_deleted.contains(*id)) {
        assert!(in_group.contains(id), "acknowledged member {id} lost");
    }
    for id in &deleted {
        assert!(!in_group.contains(id), "deleted user {id} still a member");
    }
    // Indexes, both directions of every edge, counts and counters agree.
    let report = server.cli(&["check"]);
    assert!(report.contains(": 0 problem(s)"), "{report}");
}
