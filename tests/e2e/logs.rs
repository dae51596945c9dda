//! The request log: one JSON object a line with `--log-format json`, with
//! the fields an operator searches by, and nothing a client sent in
//! confidence.

use serde_json::{Value, json};

use crate::server::Server;
use scimlet_vectors::http;

fn send(server: &Server, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> http::Response {
    let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    http::send(&server.addr, method, path, &headers, &body).expect("the server answers")
}

/// The request lines of a JSON log, in order; every line must be JSON.
fn request_lines(log: &str) -> Vec<Value> {
    log.lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .filter(|line| line["message"] == "request")
        .collect()
}

#[test]
fn json_log_has_one_line_a_request_with_its_fields_and_no_secret() {
    let (mut server, boot) = Server::start_with_env(&[("SCIMLET_LOG_FORMAT", "json")]);
    let base = boot.base();
    let bearer = format!("Bearer {}", boot.token);
    let password = "Correct-Horse-Battery-Staple-42";
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "Log.Watcher@example.com",
        "password": password,
        "emails": [{"value": "log.watcher@example.com", "primary": true}],
    });
    let created = send(
        &server,
        "POST",
        &format!("{base}/Users"),
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/scim+json"),
            ("User-Agent", "Okta SCIM Client 1.0.0"),
            ("X-Request-Id", "idp-req-0001"),
        ],
        Some(&user),
    );
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let wrong = "scimlet_0000000000000000_not-a-real-token-at-all";
    let refused = send(
        &server,
        "GET",
        &format!("{base}/Users/{id}?attributes=userName"),
        &[("Authorization", &format!("Bearer {wrong}")), ("User-Agent", "Azure AD SCIM Provisioning")],
        None,
    );
    assert_eq!(refused.status, 401);
    let probe = send(&server, "GET", "/healthz", &[], None);
    assert_eq!(probe.status, 200);

    let log = server.stop_and_read_log();
    let lines = request_lines(&log);
    assert_eq!(lines.len(), 2, "one line for each SCIM request, none for the probe:\n{log}");
    let (first, second) = (&lines[0], &lines[1]);
    for (field, want) in [
        ("level", json!("INFO")),
        ("account", json!(boot.account)),
        ("client", json!("okta")),
        ("method", json!("POST")),
        ("route", json!("/Users")),
        ("status", json!(201)),
        ("request_id", json!("idp-req-0001")),
    ] {
        assert_eq!(first[field], want, "{field} in {first}");
    }
    assert!(first["duration_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{first}");
    assert!(first["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{first}");
    // The refusal names the account the client asked for, and the answer's
    // request id; the route hides the user's id.
    for (field, want) in [
        ("account", json!(boot.account)),
        ("client", json!("entra")),
        ("method", json!("GET")),
        ("route", json!("/Users/{id}")),
        ("status", json!(401)),
        ("request_id", json!(refused.header("x-request-id").unwrap())),
    ] {
        assert_eq!(second[field], want, "{field} in {second}");
    }
    for secret in [boot.token.as_str(), wrong, password, "Log.Watcher", "log.watcher", &id, "attributes=userName"] {
        assert!(!log.contains(secret), "the log holds {secret:?}:\n{log}");
    }
}

#[test]
fn text_log_is_the_default_and_a_bad_format_stops_the_start() {
    let (mut server, boot) = Server::start();
    let r = server.request("GET", &format!("{}/Users?count=1", boot.base()), &boot.token, None);
    assert_eq!(r.status, 200);
    let log = server.stop_and_read_log();
    let line = log.lines().find(|l| l.contains(" INFO request ")).unwrap_or_else(|| panic!("no request line:\n{log}"));
    for part in [
        format!("account=\"{}\"", boot.account),
        "method=\"GET\"".into(),
        "route=\"/Users\"".into(),
        "status=200".into(),
    ] {
        assert!(line.contains(&part), "{part} in {line}");
    }
    assert!(!log.contains(&boot.token), "{log}");

    let out = std::process::Command::new(crate::server::BIN)
        .args(["serve", "--log-format", "xml", "--db", "/nonexistent/never-opened.db"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--log-format") && stderr.contains("json"), "{stderr}");
}
