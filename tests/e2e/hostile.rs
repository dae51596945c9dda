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
        if out.windows(4).any(|w| w == b"\r\n\r\n") && !String::from_utf8_lossy(&out).contains("transfer-encoding: chunked") {
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
    let answer = raw(&server, format!("\x00\x01garbage\r\n\r\nGET {base}/Users HTTP/1.1\r\nHost: x\r\n{auth}\r\n").as_bytes());
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(!answer.contains("ListResponse"), "{answer}");

    // None of this disturbed the server.
    let answer = raw(&server, format!("GET {base}/Users HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").as_bytes());
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(!server.stderr_text().contains(" 500 "), "{}", server.stderr_text());
}
