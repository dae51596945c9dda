//! Operating the server. On SIGTERM it stops accepting connections,
//! finishes the requests in flight, closes the database (its WAL folded into
//! the file) and exits with success; `/healthz` and `/readyz` answer load
//! balancers and orchestrators without a token.

use std::time::Duration;

use serde_json::json;

use crate::server::Server;

#[test]
fn sigterm_finishes_requests_in_flight_then_closes_the_database() {
    // Every commit waits 1.5 s: a create is in flight when SIGTERM comes.
    let (mut server, boot) = Server::start_with_env(&[("SCIMLET_FAULT_COMMIT_DELAY_MS", "1500")]);
    let base = boot.base();
    let addr = server.addr.clone();
    let headers = vec![
        ("Authorization".to_owned(), format!("Bearer {}", boot.token)),
        ("Content-Type".to_owned(), "application/scim+json".to_owned()),
    ];
    let body = serde_json::to_vec(
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "leaving@example.com"}),
    )
    .unwrap();
    let in_flight = std::thread::spawn({
        let (addr, base, headers) = (addr.clone(), base.clone(), headers.clone());
        move || scimlet_vectors::http::send(&addr, "POST", &format!("{base}/Users"), &headers, &body)
    });
    std::thread::sleep(Duration::from_millis(400));
    let status = server.terminate(Duration::from_secs(30)).expect("scimlet exits after SIGTERM");
    let answer = in_flight.join().unwrap().expect("the request in flight is answered");
    assert_eq!(answer.status, 201, "{}", String::from_utf8_lossy(&answer.body));
    assert!(status.success(), "exit status {status}\n{}", server.stderr_text());
    assert!(server.stderr_text().contains("shutting down, finishing requests in flight"), "{}", server.stderr_text());
    assert!(
        scimlet_vectors::http::send(&addr, "GET", &format!("{base}/Users"), &headers, b"").is_err(),
        "no longer accepting"
    );
    // Closed: the last connection folded the WAL into the database file.
    if !crate::server::on_postgres() {
        let wal = format!("{}-wal", server.db.display());
        assert!(std::fs::metadata(&wal).map_or(true, |m| m.len() == 0), "{wal} is left behind");
    }

    server.restart().unwrap();
    let found = server.request(
        "GET",
        &format!("{base}/Users?filter=userName%20eq%20%22leaving%40example.com%22"),
        &boot.token,
        None,
    );
    assert_eq!(found.json()["totalResults"], 1);
}

#[test]
fn health_probes_answer_without_a_token_and_say_nothing_of_accounts() {
    let (server, boot) = Server::start();
    for (path, text) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let answer = scimlet_vectors::http::send(&server.addr, "GET", path, &[], b"").unwrap();
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(answer.body, text.as_bytes(), "{path}");
        assert!(!String::from_utf8_lossy(&answer.body).contains(&boot.account));
    }
    // Anything else at the root is still the component's (a SCIM 404).
    let other = scimlet_vectors::http::send(&server.addr, "GET", "/healthz/x", &[], b"").unwrap();
    assert_eq!(other.status, 404);
}

#[test]
fn metrics_count_requests_commits_instances_and_token_expiry_for_the_admin_token_only() {
    let admin = "metrics-admin-token-0123456789";
    let (server, boot) = Server::start_with_env(&[("SCIMLET_ADMIN_TOKEN", admin)]);
    let base = boot.base();
    let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "counted@example.com"});
    let created = server.request("POST", &format!("{base}/Users"), &boot.token, Some(&user));
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(server.request("GET", &format!("{base}/Users/{id}"), &boot.token, None).status, 200);
    assert_eq!(server.request("GET", &format!("{base}/Users"), "scimlet_wrong_token", None).status, 401);

    assert_eq!(scimlet_vectors::http::send(&server.addr, "GET", "/metrics", &[], b"").unwrap().status, 401);
    assert_eq!(server.request("GET", "/metrics", &boot.token, None).status, 401, "a SCIM token is not enough");
    let lower = vec![("Authorization".to_owned(), format!("bearer {admin}"))];
    assert_eq!(
        scimlet_vectors::http::send(&server.addr, "GET", "/metrics", &lower, b"").unwrap().status,
        200,
        "any case of the scheme"
    );
    let account = &boot.account;
    let token_id = boot.token.split('_').nth(1).unwrap();
    let expiry = format!("scimlet_token_expiry_days{{account=\"{account}\",token=\"{token_id}\"}}");
    // The expiry check starts with the server but runs on its own task:
    // wait (bounded) for its first result before reading the metrics.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let text = loop {
        let answer = server.request("GET", "/metrics", admin, None);
        assert_eq!(answer.status, 200);
        assert!(
            answer.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v.starts_with("text/plain"))
        );
        let text = String::from_utf8(answer.body).unwrap();
        if text.contains(&expiry) || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    for line in [
        format!("scimlet_requests_total{{route=\"/Users\",status=\"201\",account=\"{account}\"}} 1"),
        format!("scimlet_requests_total{{route=\"/Users/{{id}}\",status=\"200\",account=\"{account}\"}} 1"),
        "scimlet_requests_total{route=\"/Users\",status=\"401\",account=\"\"} 1".to_owned(),
        "scimlet_request_duration_seconds_count{route=\"/Users\"} 2".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
    }
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
    };
    assert!(value("scimlet_store_commits_total{outcome=\"ok\"}") >= 1.0);
    assert!(value("scimlet_instances_total{kind=\"fresh\"}") >= 1.0);
    let days = value(&expiry);
    assert!((364.0..=366.0).contains(&days), "{days}");
    assert!(!text.contains(&boot.token) && !text.contains(admin) && !text.contains("counted@example.com"));
}
