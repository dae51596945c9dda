//! A deliberately tiny HTTP/1.1 client: one connection per request, the
//! request target sent byte for byte (no URL re-encoding, so `+` and `%20`
//! reach the server exactly as a scenario writes them). Every suite that
//! speaks HTTP to a host (the runner's, the Node.js example's) uses it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use crate::VectorRequest;

/// A response read in full.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers in arrival order, names as the server sent them.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics with the body text if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("status {}: body is not JSON ({e}): {}", self.status, String::from_utf8_lossy(&self.body))
        })
    }
}

/// Sends one request to `addr` (`host:port`) and reads the whole response.
pub fn send(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Result<Response, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes).map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| format!("read: {e}"))?;
    parse(&raw, method == "HEAD")
}

fn parse(raw: &[u8], head_only: bool) -> Result<Response, String> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| {
        format!("no complete response head in {} bytes: {:?}", raw.len(), String::from_utf8_lossy(raw))
    })?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|e| format!("response head is not UTF-8: {e}"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let body = if head_only || status == 204 || status == 304 {
        Vec::new()
    } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunk(rest)?
    } else if let Some(len) = header("content-length") {
        let len: usize = len.parse().map_err(|_| format!("bad content-length {len:?}"))?;
        if rest.len() < len {
            return Err(format!("body truncated: {} of {len} bytes", rest.len()));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { status, headers, body })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").ok_or("truncated chunk size")?;
        let size_text = std::str::from_utf8(&data[..line_end]).map_err(|e| e.to_string())?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Splits `scheme://authority/path` into (`scheme://authority`, `/path`).
pub fn split_url(url: &str) -> (String, String) {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    match url[after_scheme..].find('/') {
        Some(i) => (url[..after_scheme + i].to_owned(), url[after_scheme + i..].to_owned()),
        None => (url.to_owned(), String::new()),
    }
}

/// What no log line of a host may hold, for the suites that read a host's
/// log after each scenario: every bearer credential, every `password`,
/// and every other string of eight or more characters in a request body (a
/// body is never logged, so none of its values may show).
pub fn secrets_of(req: &VectorRequest, account: &str) -> Vec<String> {
    fn strings(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
            Value::Object(map) => map.iter().for_each(|(k, v)| {
                if k.eq_ignore_ascii_case("password") {
                    out.push(v.to_string().trim_matches('"').to_owned());
                }
                strings(v, out);
            }),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (name, value) in &req.headers {
        if name.eq_ignore_ascii_case("authorization") {
            out.push(value.split_once(' ').map_or(value.as_str(), |(_, credential)| credential).trim().to_owned());
        }
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(body) => strings(&body, &mut out),
        Err(_) => out.push(String::from_utf8_lossy(&req.body).into_owned()),
    }
    // Lines name the account and a route template: SCIM's own words, which
    // bodies use too (`"ResourceType"`), are no secret.
    const ROUTE_WORDS: &str = "/Users/Groups/Bulk/Schemas/ResourceTypes/ServiceProviderConfig/Me/.search";
    out.retain(|s| s.len() >= 8 && s != account && !ROUTE_WORDS.contains(s.as_str()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_and_chunked_bodies() {
        let r =
            parse(b"HTTP/1.1 201 Created\r\nContent-Type: application/scim+json\r\ncontent-length: 2\r\n\r\n{}", false)
                .unwrap();
        assert_eq!(
            (r.status, r.body.as_slice(), r.header("Content-Type")),
            (201, &b"{}"[..], Some("application/scim+json"))
        );
        let r =
            parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n", false)
                .unwrap();
        assert_eq!(r.body, b"abcde");
        let r = parse(b"HTTP/1.1 204 No Content\r\n\r\n", false).unwrap();
        assert!(r.body.is_empty());
    }
}
