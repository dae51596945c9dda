//! Hostile HTTP against the runner: requests a strict server refuses
//! (RFC 9112) get a 400 or a closed connection, never a 500, and the server
//! keeps serving.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::server::Server;

/// Sends raw bytes on a new connection and returns what came back until the
/// server closed it or went quiet.
fn raw(server: &Server, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    stream.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        // One answer is enough unless the test pipelines more.
        if out.windows(4).any(|w| w == b"\r\n\r\n")
            && !String::from_utf8_lossy(&out).contains("transfer-encoding: chunked")
        {
            std::thread::sleep(Duration::from_millis(200));
            if let Ok(n) = stream.read(&mut buf) {
                out.extend_from_slice(&buf[..n]);
            }
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn a_request_without_host_or_behind_garbage_is_refused_not_failed() {
    let (server, boot) = Server::start();
    let base = boot.base();
    let auth = format!("Authorization: Bearer {}\r\n", boot.token);

    // HTTP/1.1 without Host: 400 with a SCIM error, not a 500.
    let answer = raw(&server, format!("GET {base}/Users HTTP/1.1\r\n{auth}\r\n").as_bytes());
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("application/scim+json") && answer.contains("Host header"), "{answer}");

    // A Host that is not host[:port]: 400.
    let answer = raw(&server, format!("GET {base}/Users HTTP/1.1\r\nHost: a b@@\r\n{auth}\r\n").as_bytes());
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    // HTTP/1.0 may omit Host: answered as the listening address.
    let answer = raw(&server, format!("GET {base}/Users?count=1 HTTP/1.0\r\n{auth}\r\n").as_bytes());
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(answer.contains("\"totalResults\":0"), "{answer}");

    // A valid request pipelined behind garbage: the garbage is refused and
    // the connection closed; the valid request is never run.
    let answer =
        raw(&server, format!("\x00\x01garbage\r\n\r\nGET {base}/Users HTTP/1.1\r\nHost: x\r\n{auth}\r\n").as_bytes());
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(!answer.contains("ListResponse"), "{answer}");

    // None of this disturbed the server.
    let answer =
        raw(&server, format!("GET {base}/Users HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").as_bytes());
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let log = server.stderr_text();
    assert!(log.contains("status=200") && !log.contains("status=500"), "{log}");
}

#[test]
fn past_the_concurrency_bound_requests_get_503_with_retry_after() {
    let (server, boot) = Server::start_with_env(&[("SCIMLET_MAX_CONCURRENT", "1"), ("SCIMLET_MAX_QUEUED", "0")]);
    let base = boot.base();
    let auth = vec![("Authorization".to_owned(), format!("Bearer {}", boot.token))];
    // One slow request holds the only instance: a Bulk of 1,000 creates.
    let ops: Vec<serde_json::Value> = (0..1000)
        .map(|i| serde_json::json!({"method": "POST", "path": "/Users", "bulkId": format!("b{i}"), "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("bulk{i}@example.com")}}))
        .collect();
    let bulk = serde_json::to_vec(
        &serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}),
    )
    .unwrap();
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| {
            scimlet_vectors::http::send(&server.addr, "POST", &format!("{base}/Bulk"), &auth, &bulk).unwrap()
        });
        // While it runs, another request finds no slot and no queue.
        let mut refused = None;
        for _ in 0..200 {
            std::thread::sleep(Duration::from_millis(10));
            let r =
                scimlet_vectors::http::send(&server.addr, "GET", &format!("{base}/Users?count=1"), &auth, b"").unwrap();
            if r.status == 503 {
                refused = Some(r);
                break;
            }
        }
        let refused = refused.expect("a request while the only instance was busy got 503");
        let header =
            |name: &str| refused.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        assert_eq!(header("retry-after").as_deref(), Some("1"));
        assert_eq!(header("content-type").as_deref(), Some("application/scim+json"));
        let body: serde_json::Value = serde_json::from_slice(&refused.body).unwrap();
        assert_eq!(body["status"], "503");
        assert_eq!(slow.join().unwrap().status, 200);
    });
    // Once the slot is free, requests are served again.
    let r = scimlet_vectors::http::send(&server.addr, "GET", &format!("{base}/Users?count=1"), &auth, b"").unwrap();
    assert_eq!(r.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["totalResults"], 1000);
}

#[test]
fn a_write_that_lands_after_the_deadline_is_answered_as_done() {
    // The request's deadline (1 s) passes while its commit waits on a slow
    // disk (1.5 s): the write lands, so the answer must say so.
    let (server, boot) =
        Server::start_with_env(&[("SCIMLET_DEADLINE_MS", "1000"), ("SCIMLET_FAULT_COMMIT_DELAY_MS", "1500")]);
    let base = boot.base();
    let auth = vec![
        ("Authorization".to_owned(), format!("Bearer {}", boot.token)),
        ("Content-Type".to_owned(), "application/scim+json".to_owned()),
    ];
    let body = serde_json::to_vec(
        &serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "slow@example.com"}),
    )
    .unwrap();
    let created = scimlet_vectors::http::send(&server.addr, "POST", &format!("{base}/Users"), &auth, &body).unwrap();
    assert_eq!(created.status, 201, "{}\n{}", String::from_utf8_lossy(&created.body), server.stderr_text());
    let id = serde_json::from_slice::<serde_json::Value>(&created.body).unwrap()["id"].as_str().unwrap().to_owned();
    let found = scimlet_vectors::http::send(&server.addr, "GET", &format!("{base}/Users/{id}"), &auth, b"").unwrap();
    assert_eq!(found.status, 200);
    assert!(
        server.stderr_text().contains("deadline passed with a commit in flight; waiting for its outcome"),
        "{}",
        server.stderr_text()
    );
}

#[test]
fn a_token_past_its_rate_and_an_address_past_its_failures_get_429() {
    let (server, boot) = Server::start_with_env(&[("SCIMLET_RATE_LIMIT", "5"), ("SCIMLET_AUTH_FAILURES", "3")]);
    let path = format!("{}/Users?count=1", boot.base());
    let with = |token: &str| vec![("Authorization".to_owned(), format!("Bearer {token}"))];
    // A burst of 10 is allowed, then the token waits.
    let statuses: Vec<u16> = (0..14)
        .map(|_| scimlet_vectors::http::send(&server.addr, "GET", &path, &with(&boot.token), b"").unwrap().status)
        .collect();
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 10, "{statuses:?}");
    let limited = scimlet_vectors::http::send(&server.addr, "GET", &path, &with(&boot.token), b"").unwrap();
    assert_eq!(limited.status, 429);
    assert!(
        limited.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("retry-after") && v == "1"),
        "{:?}",
        limited.headers
    );
    let body: serde_json::Value = serde_json::from_slice(&limited.body).unwrap();
    assert_eq!(body["status"], "429");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(scimlet_vectors::http::send(&server.addr, "GET", &path, &with(&boot.token), b"").unwrap().status, 200);

    // Three wrong tokens from this address, then even the right one waits.
    for guess in ["scimlet_a_b", "scimlet_c_d", "scimlet_e_f"] {
        assert_eq!(scimlet_vectors::http::send(&server.addr, "GET", &path, &with(guess), b"").unwrap().status, 401);
    }
    let refused = scimlet_vectors::http::send(&server.addr, "GET", &path, &with(&boot.token), b"").unwrap();
    assert_eq!(refused.status, 429);
    let wait: u64 = refused
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap();
    assert!((50..=60).contains(&wait), "Retry-After {wait}");
}

#[test]
fn a_post_retried_after_a_lost_answer_finds_the_user_instead_of_making_another() {
    let (server, boot) = Server::start();
    let base = boot.base();
    let user =
        serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "Retry@Example.com"});
    let first = server.request("POST", &format!("{base}/Users"), &boot.token, Some(&user));
    assert_eq!(first.status, 201);
    // The client never saw that answer and sends the create again, as
    // Entra and Okta do: a 409, and their lookup finds the one user.
    let again = server.request("POST", &format!("{base}/Users"), &boot.token, Some(&user));
    assert_eq!(again.status, 409);
    assert_eq!(again.json()["scimType"], "uniqueness");
    let found = server
        .request("GET", &format!("{base}/Users?filter=userName%20eq%20%22retry%40example.com%22"), &boot.token, None)
        .json();
    assert_eq!(found["totalResults"], 1);
    assert_eq!(found["Resources"][0]["id"], first.json()["id"]);
}

#[test]
fn lying_lengths_and_slow_clients_get_an_answer_and_write_nothing() {
    let (server, boot) = Server::start_with_env(&[("SCIMLET_DEADLINE_MS", "1000")]);
    let base = boot.base();
    let head = |length: usize| {
        format!(
            "POST {base}/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/scim+json\r\nContent-Length: {length}\r\n\r\n",
            boot.token
        )
    };
    let body = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"liar@example.com"}"#;

    // Shorter than announced, then the client stops sending: 408 once the
    // deadline passes.
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(format!("{}{}", head(body.len() + 50), body).as_bytes()).unwrap();
    let mut answer = vec![0u8; 4096];
    let n = stream.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // Longer than announced: the announced bytes are a truncated body (400);
    // the rest is not HTTP (400, connection closed).
    let answer = raw(&server, format!("{}{}", head(20), body).as_bytes());
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("invalidSyntax"), "{answer}");

    // More than the body limit announced: 413 before any byte is read.
    let answer = raw(&server, head(2 << 20).as_bytes());
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // A slow client, one byte a quarter second: 408 at the deadline.
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(head(body.len()).as_bytes()).unwrap();
    let mut answered = String::new();
    for byte in body.bytes() {
        if stream.write_all(&[byte]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
        stream.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 4096];
        if let Ok(n) = stream.read(&mut buf)
            && n > 0
        {
            answered = String::from_utf8_lossy(&buf[..n]).into_owned();
            break;
        }
        stream.set_nonblocking(false).unwrap();
    }
    assert!(answered.starts_with("HTTP/1.1 408"), "{answered}");

    // None of it wrote anything.
    let list = server.request("GET", &format!("{base}/Users"), &boot.token, None).json();
    assert_eq!(list["totalResults"], 0, "{list}");
}
