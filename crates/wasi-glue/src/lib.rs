//! WASI glue shared by the components (`scim-component`, `scim-spin` and
//! the storage probe): the WASI clock and random source as the core's
//! [`Env`], `wasi:http/incoming-handler` requests turned into a core
//! [`scim_core::Request`] and a core [`scim_core::Response`] written back,
//! and the WIT storage import as the core's store ([`storage::WitStore`]).
//! No rule lives here.

pub mod storage;

use std::io::{Read as _, Write as _};

use scim_core::Env;

use wasip2::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam, Scheme};

/// WASI's wall clock and secure random source.
pub struct WasiEnv;

impl Env for WasiEnv {
    fn now_millis(&self) -> i64 {
        let now = wasip2::clocks::wall_clock::now();
        (now.seconds as i64).saturating_mul(1000) + i64::from(now.nanoseconds / 1_000_000)
    }

    fn fill_random(&self, buf: &mut [u8]) {
        let bytes = wasip2::random::random::get_random_bytes(buf.len() as u64);
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
    }

    fn pause(&self, millis: u32) {
        // Blocks this guest only: the host runs other requests meanwhile.
        wasip2::clocks::monotonic_clock::subscribe_duration(u64::from(millis) * 1_000_000).block();
    }
}

fn method_name(method: Method) -> String {
    match method {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(s) => s,
    }
}

/// Reads at most `MAX_BODY + 1` bytes: enough for the core to see that a
/// body is too large, never more.
fn read_body(request: &IncomingRequest) -> Vec<u8> {
    let mut body = Vec::new();
    let Ok(incoming) = request.consume() else {
        return body;
    };
    if let Ok(stream) = incoming.stream() {
        let _ = stream.take(scim_core::MAX_BODY as u64 + 1).read_to_end(&mut body);
    }
    body
}

/// The incoming request as the core's request record, body read (bounded).
pub fn read_request(request: &IncomingRequest) -> scim_core::Request {
    let headers = request
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    scim_core::Request {
        method: method_name(request.method()),
        path_with_query: request.path_with_query().unwrap_or_else(|| "/".into()),
        scheme: request.scheme().map(|s| match s {
            Scheme::Http => "http".into(),
            Scheme::Https => "https".into(),
            Scheme::Other(s) => s,
        }),
        authority: request.authority(),
        headers,
        body: read_body(request),
    }
}

/// Sends `response` through `response_out`.
pub fn write_response(response_out: ResponseOutparam, response: scim_core::Response) {
    let entries: Vec<(String, Vec<u8>)> = response.headers.into_iter().map(|(n, v)| (n, v.into_bytes())).collect();
    let fields = Fields::from_list(&entries).unwrap_or_else(|_| Fields::new());
    let outgoing = OutgoingResponse::new(fields);
    let _ = outgoing.set_status_code(response.status);
    let Ok(body) = outgoing.body() else { return };
    ResponseOutparam::set(response_out, Ok(outgoing));
    if let Ok(mut stream) = body.write() {
        // The stream accepts at most 4096 bytes per blocking write; the
        // std::io::Write impl chunks for us.
        let _ = stream.write_all(&response.body);
        let _ = stream.flush();
    }
    let _ = OutgoingBody::finish(body, None);
}
