//! Two `scimlet serve` processes on one PostgreSQL database, with requests
//! spread over both (no balancer: each client alternates): what one replica
//! writes the other serves at once, and writers through both lose nothing.

use std::sync::{Arc, Barrier};

use serde_json::{Value, json};

use crate::server::{Server, on_postgres};

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ADMIN: &str = "e2e-replica-admin-token-0123456789";

/// A write to the replica at `addr`, sent again while the answer is `503`
/// (the core answers so after its own bounded retries lose to other
/// writers, with `Retry-After`, and identity providers retry).
fn write(addr: &str, method: &str, path: &str, token: &str, body: &Value) -> scimlet_vectors::http::Response {
    let headers = vec![
        ("Authorization".to_owned(), format!("Bearer {token}")),
        ("Content-Type".to_owned(), "application/scim+json".to_owned()),
    ];
    let bytes = serde_json::to_vec(body).unwrap();
    for _ in 0..50 {
        let answer = scimlet_vectors::http::send(addr, method, path, &headers, &bytes)
            .unwrap_or_else(|e| panic!("{method} {path} to {addr}: {e}"));
        if answer.status != 503 {
            return answer;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("{method} {path}: still 503 after 50 tries");
}

fn member_ids(group: &Value) -> Vec<String> {
    let mut ids: Vec<String> =
        group["members"].as_array().into_iter().flatten().map(|m| m["value"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    ids
}

#[test]
fn two_replicas_on_one_database() {
    if !on_postgres() {
        eprintln!("replicas share a PostgreSQL database: this test runs in the suite's PostgreSQL run");
        return;
    }
    let (a, boot) = Server::start_with_env(&[("SCIMLET_ADMIN_TOKEN", ADMIN)]);
    let b = a.replica();
    let replicas = [a, b];
    let addrs = Arc::new([replicas[0].addr.clone(), replicas[1].addr.clone()]);
    let base = boot.base();
    let token = boot.token.clone();

    // Users made through both replicas, a group through the first.
    let users: Vec<String> = (0..32)
        .map(|i| {
            let r = &addrs[i % 2];
            let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("r{i}@example.com")});
            let created = write(r, "POST", &format!("{base}/Users"), &token, &body);
            assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
            created.json()["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Replicated"});
    let created = write(&addrs[0], "POST", &format!("{base}/Groups"), &token, &group);
    assert_eq!(created.status, 201);
    let gid = created.json()["id"].as_str().unwrap().to_owned();
    let group_path = format!("{base}/Groups/{gid}");

    // 16 clients, each with two users of its own, PATCHing one group through
    // alternating replicas: add both, remove the first, three times over.
    let barrier = Arc::new(Barrier::new(16));
    let clients: Vec<_> = (0..16)
        .map(|c| {
            let (addrs, barrier) = (Arc::clone(&addrs), Arc::clone(&barrier));
            let (path, token) = (group_path.clone(), token.clone());
            let (first, second) = (users[2 * c].clone(), users[2 * c + 1].clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut n = c;
                for _ in 0..3 {
                    for (op, user) in [("add", &first), ("add", &second), ("remove", &first)] {
                        let body = match op {
                            "add" => json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": [{"value": user}]}]}),
                            _ => json!({"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": format!("members[value eq \"{user}\"]")}]}),
                        };
                        let answer = write(&addrs[n % 2], "PATCH", &path, &token, &body);
                        assert!(matches!(answer.status, 200 | 204), "{op} {user}: {} {}", answer.status, String::from_utf8_lossy(&answer.body));
                        n += 1;
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    let mut expected: Vec<String> = (0..16).map(|c| users[2 * c + 1].clone()).collect();
    expected.sort();
    for r in replicas.iter() {
        let group = r.request("GET", &group_path, &token, None).json();
        assert_eq!(member_ids(&group), expected, "no membership change is lost, seen through {}", r.addr);
    }

    // Eight creates of one userName at once, over both: one wins.
    let barrier = Arc::new(Barrier::new(8));
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let (addrs, barrier) = (Arc::clone(&addrs), Arc::clone(&barrier));
            let (base, token) = (base.clone(), token.clone());
            std::thread::spawn(move || {
                let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "only.once@example.com"});
                barrier.wait();
                write(&addrs[i % 2], "POST", &format!("{base}/Users"), &token, &body).status
            })
        })
        .collect();
    let mut statuses: Vec<u16> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, vec![201, 409, 409, 409, 409, 409, 409, 409]);

    // A token made and revoked through the first replica: the second
    // honours it, then refuses it on its very next request.
    let admin = |r: &Server, method: &str, path: &str, body: Option<&Value>| r.request(method, path, ADMIN, body);
    let made =
        admin(&replicas[0], "POST", &format!("/api/accounts/{}/tokens", boot.account), Some(&json!({"name": "r"})));
    assert_eq!(made.status, 201);
    let (second_token, second_id) = {
        let made = made.json();
        (made["token"].as_str().unwrap().to_owned(), made["id"].as_str().unwrap().to_owned())
    };
    let list = format!("{base}/Users?count=1");
    assert_eq!(replicas[1].request("GET", &list, &second_token, None).status, 200);
    let revoked = admin(&replicas[0], "DELETE", &format!("/api/accounts/{}/tokens/{second_id}", boot.account), None);
    assert_eq!(revoked.status, 200, "{}", String::from_utf8_lossy(&revoked.body));
    assert_eq!(replicas[1].request("GET", &list, &second_token, None).status, 401);

    // A rename through the second replica is what the first serves.
    let rename =
        json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "Renamed"}]});
    // A group PATCH that asks for no attributes answers 204 (RFC 7644 §3.5.2).
    assert_eq!(write(&addrs[1], "PATCH", &group_path, &token, &rename).status, 204);
    let seen = replicas[0].request("GET", &format!("{group_path}?attributes=displayName"), &token, None).json();
    assert_eq!(seen["displayName"], "Renamed");
    let found = replicas[0]
        .request(
            "GET",
            &format!("{base}/Groups?filter=displayName+eq+%22Renamed%22&attributes=displayName"),
            &token,
            None,
        )
        .json();
    assert_eq!((found["totalResults"].clone(), found["Resources"][0]["id"].clone()), (json!(1), json!(gid)));
}

/// While the database refuses connections every request is a `503` with
/// `Retry-After` and writes nothing; once it is back the same server
/// serves again, without a restart.
#[test]
fn an_unreachable_database_is_a_503_and_nothing_is_half_written() {
    if !on_postgres() {
        eprintln!("this test takes a PostgreSQL database away: it runs in the suite's PostgreSQL run");
        return;
    }
    let admin_url = std::env::var("SCIMLET_E2E_POSTGRES").unwrap();
    let (server, boot) = Server::start();
    let db = server.db.to_string_lossy().rsplit('/').next().unwrap().to_owned();
    let (base, token) = (boot.base(), boot.token.clone());
    let user = |name: &str| json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name});
    assert_eq!(server.request("POST", &format!("{base}/Users"), &token, Some(&user("before@example.com"))).status, 201);

    // The database goes away: new connections are refused and the pooled
    // ones are cut.
    crate::server::pg_execute(&admin_url, &format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false"));
    crate::server::pg_execute(
        &admin_url,
        &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"),
    );
    for (method, path, body) in [
        ("POST", format!("{base}/Users"), Some(user("during@example.com"))),
        ("GET", format!("{base}/Users?count=1"), None),
    ] {
        let answer = server.request(method, &path, &token, body.as_ref());
        assert_eq!(answer.status, 503, "{method} {path}: {}", String::from_utf8_lossy(&answer.body));
        let retry = answer.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("retry-after")).map(|(_, v)| v.as_str());
        assert_eq!(retry, Some("1"));
        assert_eq!(answer.json()["status"], "503");
    }

    crate::server::pg_execute(&admin_url, &format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true"));
    let listed = server.request("GET", &format!("{base}/Users?attributes=userName"), &token, None);
    assert_eq!(listed.status, 200, "served again once the database is back");
    let names: Vec<Value> =
        listed.json()["Resources"].as_array().unwrap().iter().map(|u| u["userName"].clone()).collect();
    assert_eq!(names, vec![json!("before@example.com")], "the refused create left nothing");
    assert_eq!(server.request("POST", &format!("{base}/Users"), &token, Some(&user("after@example.com"))).status, 201);
}
