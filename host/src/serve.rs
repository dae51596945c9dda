//! HTTP serving (HTTP/1.1, and HTTP/2 over TLS): every request is read in full (bounded) and handed, as
//! one record, to the component's typed `handler` export on a fresh
//! instance. The host answers on its own only when the component cannot:
//! body too large or too slow, guest trap, deadline. Those answers are SCIM
//! error documents so that clients see one error format.
//!
//! The typed export rather than `wasi:http/incoming-handler` (which Spin
//! calls): the runner has the whole request in hand anyway, and one call
//! with one record costs less than building request, header and body
//! resources, streaming the body through them and waiting on an outparam
//! (measured in the README's Benchmarks section).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{
    AUTHORIZATION, CONTENT_LENGTH, HOST, HeaderName, HeaderValue, RETRY_AFTER, TRANSFER_ENCODING, USER_AGENT,
};
use hyper::http::uri::Authority;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::admin;
use crate::bindings::{Request as GuestRequest, Response as GuestResponse};
use crate::console::{self, Sessions};
use crate::log;
use crate::metrics::route_template;
use crate::runtime::{COMMIT_GRACE, Runtime, is_deadline};
use crate::throttle::{self, Throttle};
use crate::tls::{self, Tls};

/// Largest request body handed to the component: the core's own bound, so
/// the runner refuses early what the component would refuse anyway.
use scim_core::MAX_BODY;

/// Time a client gets to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Extra wait, beyond the guest's own deadline, before the host gives up on a
/// guest blocked outside wasm code (where the epoch deadline cannot fire).
const DEADLINE_GRACE: Duration = Duration::from_secs(2);

/// How long shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(35);

/// How often the server looks for tokens about to expire.
const EXPIRY_CHECK: Duration = Duration::from_secs(3600);

/// What the server was asked to do.
pub struct ServeOptions {
    pub listen: String,
    /// Origin clients reach the server at; `None` means `http://<bound addr>`.
    pub public_url: Option<String>,
    /// Whether an admin token was configured (for the announcement).
    pub admin_api: bool,
    /// Request-rate bounds applied before the component is reached.
    pub throttle: throttle::Limits,
    /// Certificate chain and private key (PEM files) to serve HTTPS with.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// Bench-only: answer with scim-core linked natively, not the component.
    #[cfg(feature = "native-core")]
    pub native_core: bool,
}

/// Why a request got no answer from the component.
enum Failure {
    /// Guest trap, missing response, host error: logged, answered 500.
    Internal,
    /// The deadline passed: answered 503 with `Retry-After`.
    Timeout,
    /// Every instance is busy and the queue is full: 503 with `Retry-After`.
    Busy,
}

/// The scheme and authority requests are presented to the component with,
/// when the operator named a public URL: the component builds absolute URLs
/// (`meta.location`) from them, and behind a TLS proxy the connection's own
/// `http` and `Host` would be wrong.
struct Origin {
    scheme: Scheme,
    uri_scheme: hyper::http::uri::Scheme,
    authority: hyper::http::uri::Authority,
}

fn parse_origin(public_url: &str) -> wasmtime::Result<Origin> {
    let uri: Uri = public_url.parse().map_err(|e| wasmtime::format_err!("invalid --public-url {public_url:?}: {e}"))?;
    let (Some(uri_scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
        wasmtime::bail!("invalid --public-url {public_url:?}: expected http(s)://host[:port]");
    };
    let scheme = match uri_scheme.as_str() {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => {
            wasmtime::bail!("invalid --public-url {public_url:?}: scheme {other} is not http(s)")
        }
    };
    Ok(Origin { scheme, uri_scheme: uri_scheme.clone(), authority: authority.clone() })
}

struct Server {
    runtime: Arc<Runtime>,
    throttle: Throttle,
    origin: Option<Origin>,
    /// The listening address, as the `Host` of an HTTP/1.0 request that
    /// names none.
    listen: HeaderValue,
    /// Whether connections are TLS: the scheme requests are presented with
    /// when no public URL says otherwise.
    https: bool,
    /// Signed-in sessions of the admin console.
    sessions: Sessions,
    #[cfg(feature = "native-core")]
    native_core: bool,
}

/// Binds, bootstraps the store, announces, and serves until SIGINT/SIGTERM.
pub async fn serve(runtime: Arc<Runtime>, options: ServeOptions) -> wasmtime::Result<()> {
    let origin = options.public_url.as_deref().map(parse_origin).transpose()?;
    // Certificate files are read before anything listens: a bad one stops
    // the start.
    let tls = match &options.tls {
        Some((cert, key)) => Some(Arc::new(Tls::new(cert, key).map_err(|e| wasmtime::format_err!("{e}"))?)),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = TcpListener::bind(&options.listen)
        .await
        .map_err(|e| wasmtime::format_err!("cannot listen on {}: {e}", options.listen))?;
    let addr: SocketAddr = listener.local_addr()?;
    let public_url = options.public_url.unwrap_or_else(|| format!("{scheme}://{addr}"));

    // The socket already queues connections; bootstrap before announcing and
    // before accepting, so the first request finds the default account. The
    // listening line still comes first in the output.
    let created = admin::bootstrap(&runtime, "default", &public_url)
        .await
        .map_err(|e| wasmtime::format_err!("bootstrap failed: {e}"))?;
    admin::print_lines(&[format!("scimlet listening on {scheme}://{addr}")]);
    if let Some(lines) = created {
        admin::print_lines(&lines);
    }
    if options.admin_api {
        tracing::info!("admin API enabled at {}/api/accounts", public_url.trim_end_matches('/'));
    }
    // Tokens close to expiry: said at start and then every hour, since an
    // expired token silently stops provisioning.
    let watcher = Arc::clone(&runtime);
    tokio::spawn(async move {
        loop {
            match admin::expiry_warnings(&watcher).await {
                Ok(warnings) => warnings.iter().for_each(|w| tracing::warn!("{w}")),
                Err(e) => tracing::error!("cannot check token expiry: {e}"),
            }
            tokio::time::sleep(EXPIRY_CHECK).await;
        }
    });

    if let Some(tls) = &tls {
        reload_on_sighup(Arc::clone(tls));
    }
    let server = Arc::new(Server {
        runtime,
        throttle: Throttle::new(options.throttle),
        origin,
        listen: HeaderValue::from_str(&addr.to_string()).expect("a socket address is a valid header value"),
        https: tls.is_some(),
        sessions: Sessions::default(),
        #[cfg(feature = "native-core")]
        native_core: options.native_core,
    });
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Typically out of file descriptors: back off, don't spin.
                        tracing::error!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (stream, peer) = stream;
                let _ = stream.set_nodelay(true);
                let server = Arc::clone(&server);
                let service = service_fn(move |req| {
                    let server = Arc::clone(&server);
                    async move { Ok::<_, Infallible>(server.handle(req, peer.ip()).await) }
                });
                let watcher = graceful.watcher();
                let acceptor = tls.as_ref().map(|tls| tls.acceptor().clone());
                // Client resets, failed handshakes and timeouts end up
                // dropped here; not worth a log line.
                tokio::spawn(async move {
                    let Some(acceptor) = acceptor else {
                        let _ = watcher.watch(http1_connection(stream, service)).await;
                        return;
                    };
                    // The handshake has the time a client gets for its headers.
                    let Ok(Ok(stream)) = tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await else {
                        return;
                    };
                    if tls::negotiated_h2(stream.get_ref().1.alpn_protocol()) {
                        let conn = http2::Builder::new(TokioExecutor::new())
                            .timer(TokioTimer::new())
                            .serve_connection(TokioIo::new(stream), service);
                        let _ = watcher.watch(conn).await;
                    } else {
                        let _ = watcher.watch(http1_connection(stream, service)).await;
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down, finishing requests in flight");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("requests still in flight after {SHUTDOWN_GRACE:?}; exiting anyway");
        }
    }
    Ok(())
}

/// Whether a path is the admin console's.
fn is_console(path: &str) -> bool {
    path == console::PREFIX || path.starts_with(&format!("{}/", console::PREFIX))
}

impl console::Api for Server {
    fn call<'a>(&'a self, method: &'a str, path: String, body: Option<serde_json::Value>) -> console::ApiFuture<'a> {
        Box::pin(async move {
            let token = self.runtime.admin_token().unwrap_or_default();
            let authorization = format!("Bearer {token}");
            let request = GuestRequest {
                method: method.to_owned(),
                path_with_query: path.clone(),
                scheme: Some("http".into()),
                authority: Some("console".into()),
                headers: vec![
                    ("authorization".into(), authorization.clone()),
                    ("content-type".into(), "application/json".into()),
                    ("user-agent".into(), "scimlet-console".into()),
                ],
                body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
            };
            let credential = self.runtime.credential(Some(authorization.as_bytes()));
            let Ok(method) = hyper::Method::from_bytes(method.as_bytes()) else {
                return (500, serde_json::Value::Null);
            };
            match self.call_guest(credential, request, &method, &path).await {
                Ok(response) => (response.status, serde_json::from_slice(&response.body).unwrap_or_default()),
                Err(_) => (503, serde_json::json!({"detail": "the server could not answer; try again"})),
            }
        })
    }
}

/// An HTTP/1.1 connection over `io` (TCP, or TLS without `h2`).
fn http1_connection<I, S>(io: I, service: S) -> http1::Connection<TokioIo<I>, S>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    S: hyper::service::HttpService<Incoming, ResBody = HyperOutgoingBody>,
{
    http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service)
}

/// Reads the certificate files again at every SIGHUP.
fn reload_on_sighup(tls: Arc<Tls>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP: the certificate is read only at start");
            return;
        };
        while hangups.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded from {}", tls.describe()),
                Err(e) => tracing::error!("TLS certificate not reloaded, the current one stays: {e}"),
            }
        }
    });
    #[cfg(not(unix))]
    drop(tls);
}

async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

impl Server {
    /// Answers one request and logs it.
    async fn handle(&self, req: Request<Incoming>, peer: IpAddr) -> Response<HyperOutgoingBody> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let user_agent = req.headers().get(USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let probe_path = matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics");
        let response = match (method.as_str(), path.as_str()) {
            ("GET" | "HEAD", "/healthz") => probe(StatusCode::OK, "ok"),
            ("GET" | "HEAD", "/readyz") => self.ready().await,
            ("GET", "/metrics") => self.metrics(req.headers().get(AUTHORIZATION)),
            _ => match self.throttle.admit(peer, req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes)) {
                Ok(()) if is_console(&path) => self.console(req, &path).await,
                Ok(()) => self.respond(req, &method, &path).await,
                Err(refusal) => retry_later(StatusCode::TOO_MANY_REQUESTS, refusal.detail, refusal.retry_after),
            },
        };
        let status = response.status().as_u16();
        let took = started.elapsed();
        self.throttle.answered(peer, status);
        let (account, route) =
            if is_console(&path) { (None, console::PREFIX.to_owned()) } else { route_template(&path) };
        self.runtime.metrics().request(account.as_deref(), &route, status, took);
        // Probes come every few seconds from a supervisor: not logged.
        if !probe_path {
            log::request(log::RequestLine {
                method: method.as_str(),
                account: account.as_deref(),
                route: &route,
                user_agent: user_agent.as_deref(),
                status,
                took,
                request_id: response.headers().get("x-request-id").and_then(|v| v.to_str().ok()),
            });
        }
        response
    }

    /// A page of the admin console: the form body read in full (bounded),
    /// then [`console::handle`] over this server's admin API.
    async fn console(&self, req: Request<Incoming>, path: &str) -> Response<HyperOutgoingBody> {
        let (parts, body) = req.into_parts();
        let form = match tokio::time::timeout(HEADER_TIMEOUT, Limited::new(body, console::MAX_FORM).collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(_)) => return error_response(StatusCode::PAYLOAD_TOO_LARGE, "form too large"),
            Err(_) => return error_response(StatusCode::REQUEST_TIMEOUT, "form not received in time"),
        };
        let https = self.https || self.origin.as_ref().is_some_and(|o| matches!(o.scheme, Scheme::Https));
        let request = console::Request {
            method: parts.method.as_str(),
            path: &path[console::PREFIX.len()..],
            query: parts.uri.query().unwrap_or_default(),
            cookie: parts.headers.get(hyper::header::COOKIE).and_then(|v| v.to_str().ok()),
            form: &form,
            https,
        };
        let answer = console::handle(self, &self.sessions, self.runtime.admin_token(), request).await;
        scim_response(answer.status, answer.headers, answer.body.into_bytes())
    }

    /// `/metrics` for bearers of the admin token (it names accounts and
    /// tokens); without an admin token configured there is none.
    fn metrics(&self, authorization: Option<&HeaderValue>) -> Response<HyperOutgoingBody> {
        let Some(expected) = self.runtime.admin_token() else {
            return error_response(StatusCode::NOT_FOUND, "/metrics needs the admin API's token (--admin-token-file)");
        };
        // The scheme is case-insensitive (RFC 9110 §11.1), as the core reads it.
        let given = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map_or("", |(_, token)| token);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(given.trim().as_bytes(), expected.as_bytes())) {
            return error_response(StatusCode::UNAUTHORIZED, "/metrics needs the admin API's bearer token");
        }
        let content_type = vec![("content-type".to_owned(), "text/plain; version=0.0.4".to_owned())];
        scim_response(200, content_type, self.runtime.metrics().render().into_bytes())
    }

    /// Ready when the database answers a read (of a key no record uses)
    /// within a second.
    async fn ready(&self) -> Response<HyperOutgoingBody> {
        let backend = Arc::clone(self.runtime.backend());
        let read = tokio::task::spawn_blocking(move || backend.get("readyz").is_ok());
        match tokio::time::timeout(Duration::from_secs(1), read).await {
            Ok(Ok(true)) => probe(StatusCode::OK, "ready"),
            _ => probe(StatusCode::SERVICE_UNAVAILABLE, "the database does not answer"),
        }
    }

    async fn respond(&self, req: Request<Incoming>, method: &hyper::Method, path: &str) -> Response<HyperOutgoingBody> {
        let (mut parts, body) = req.into_parts();

        let declared =
            parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > MAX_BODY as u64) {
            return error_response(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        }
        // Read the whole (bounded) body first: the guest then never waits on a
        // slow client while holding an instance, and an oversized chunked body
        // is refused here rather than deep inside the guest.
        let body = match tokio::time::timeout(self.runtime.deadline(), Limited::new(body, MAX_BODY).collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(e)) if e.is::<LengthLimitError>() => {
                return error_response(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
            }
            Ok(Err(_)) => {
                return error_response(StatusCode::BAD_REQUEST, "could not read request body");
            }
            Err(_) => {
                return error_response(StatusCode::REQUEST_TIMEOUT, "request body not received in time");
            }
        };
        if parts.headers.remove(TRANSFER_ENCODING).is_some() {
            parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }

        // RFC 9112 §3.2: an HTTP/1.1 request without Host (or with one that
        // is not a host[:port]) is answered 400; HTTP/1.0 may omit it.
        if parts.uri.authority().is_none() {
            match parts.headers.get(HOST) {
                Some(host) if host.to_str().is_ok_and(|h| h.parse::<Authority>().is_ok()) => {}
                Some(_) => {
                    return error_response(StatusCode::BAD_REQUEST, "the Host header is not a valid host[:port]");
                }
                None if parts.version <= Version::HTTP_10 => {
                    parts.headers.insert(HOST, self.listen.clone());
                }
                None => {
                    return error_response(
                        StatusCode::BAD_REQUEST,
                        "an HTTP/1.1 request needs a Host header (RFC 9112, section 3.2)",
                    );
                }
            }
        }

        let mut scheme = if self.https { Scheme::Https } else { Scheme::Http };
        if let Some(origin) = &self.origin {
            let mut uri = Uri::builder().scheme(origin.uri_scheme.clone()).authority(origin.authority.clone());
            if let Some(pq) = parts.uri.path_and_query() {
                uri = uri.path_and_query(pq.clone());
            }
            match uri.build() {
                Ok(uri) => parts.uri = uri,
                Err(_) => return error_response(StatusCode::BAD_REQUEST, "invalid request target"),
            }
            scheme = origin.scheme.clone();
        }
        let credential = self.runtime.credential(parts.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes));
        let request = guest_request(&scheme, parts, body);
        #[cfg(feature = "native-core")]
        if self.native_core {
            return crate::native::respond(&self.runtime, request).await;
        }

        match self.call_guest(credential, request, method, path).await {
            Ok(response) => scim_response(response.status, response.headers, response.body),
            Err(Failure::Internal) => error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
            Err(Failure::Timeout) => {
                retry_later(StatusCode::SERVICE_UNAVAILABLE, "request timed out", Duration::from_secs(5))
            }
            Err(Failure::Busy) => retry_later(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is at its limit of concurrent requests; retry shortly",
                Duration::from_secs(1),
            ),
        }
    }

    /// Runs the component's typed `handler` export on an instance for this
    /// credential (see [`Runtime::instance`]). The call runs in its own
    /// task, so that a client that hangs up does not cancel a guest in the
    /// middle of its commit.
    async fn call_guest(
        &self,
        credential: u64,
        request: GuestRequest,
        method: &hyper::Method,
        path: &str,
    ) -> Result<GuestResponse, Failure> {
        // The route, not the path: a path holds the account's ids.
        let label = format!("{method} {}", route_template(path).1);
        let deadline = self.runtime.deadline();
        let mut instance = match tokio::time::timeout(deadline, self.runtime.instance(credential)).await {
            Ok(Ok(instance)) => instance,
            Ok(Err(e)) if e.is::<crate::runtime::Busy>() => return Err(Failure::Busy),
            Ok(Err(e)) => {
                tracing::error!("{label}: cannot instantiate the component: {e:#}");
                return Err(Failure::Internal);
            }
            Err(_) => {
                tracing::warn!("{label}: no instance slot free within {deadline:?}");
                return Err(Failure::Timeout);
            }
        };

        let commits = Arc::clone(&instance.store.data().commits);
        let mut task = tokio::spawn(async move {
            let handler = instance.core.scimlet_provider_handler();
            let response = handler.call_handle(&mut instance.store, &request).await?;
            Ok::<_, wasmtime::Error>((response, instance))
        });

        // Past the deadline the instance is abandoned, unless one of its
        // commits is in flight or has landed: then an error answer could be
        // false (the write may be there), so the server waits for the
        // commit's outcome and for the guest to answer it.
        let mut wait = deadline + DEADLINE_GRACE;
        let mut graced = false;
        let finished = loop {
            match tokio::time::timeout(wait, &mut task).await {
                Ok(finished) => break Some(finished),
                Err(_) if commits.in_flight() => {
                    tracing::warn!("{label}: deadline passed with a commit in flight; waiting for its outcome");
                    wait = COMMIT_GRACE;
                }
                Err(_) if commits.landed() && !graced => {
                    tracing::warn!("{label}: deadline passed after a commit landed; waiting for the answer");
                    graced = true;
                    wait = COMMIT_GRACE + DEADLINE_GRACE;
                }
                Err(_) => {
                    if commits.landed() {
                        tracing::error!(
                            "{label}: answering 503 although a write of this request landed (the component did not answer it in time)"
                        );
                    }
                    break None;
                }
            }
        };
        match finished {
            Some(Ok(Ok((response, instance)))) => {
                self.runtime.recycle(credential, response.status, instance);
                Ok(response)
            }
            // The one place a guest failure is logged.
            Some(Ok(Err(e))) if is_deadline(&e) => {
                tracing::warn!("{label}: deadline of {deadline:?} exceeded");
                Err(Failure::Timeout)
            }
            Some(Ok(Err(e))) => {
                tracing::error!("{label}: component trapped: {e:#}");
                Err(Failure::Internal)
            }
            Some(Err(join)) => {
                tracing::error!("{label}: component task failed: {join}");
                Err(Failure::Internal)
            }
            None => {
                tracing::error!("{label}: no response within {deadline:?}; abandoning the instance");
                task.abort();
                Err(Failure::Timeout)
            }
        }
    }
}

/// The request as the component's typed `handler` takes it: the path and
/// query as received, the authority the client reached (or the configured
/// public origin), header values that are not UTF-8 made lossy.
fn guest_request(scheme: &Scheme, parts: hyper::http::request::Parts, body: Bytes) -> GuestRequest {
    let authority = parts
        .uri
        .authority()
        .map(|a| a.to_string())
        .or_else(|| parts.headers.get(HOST).and_then(|h| h.to_str().ok()).map(str::to_owned));
    GuestRequest {
        method: parts.method.as_str().to_owned(),
        path_with_query: parts.uri.path_and_query().map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned()),
        scheme: Some(if matches!(scheme, Scheme::Https) { "https" } else { "http" }.to_owned()),
        authority,
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: body.to_vec(),
    }
}

/// An answer as an HTTP response: the component's, the native core's, or
/// one the host makes itself (errors, probes, metrics). A header that HTTP
/// cannot carry is dropped, not sent.
pub(crate) fn scim_response(status: u16, headers: Vec<(String, String)>, body: Vec<u8>) -> Response<HyperOutgoingBody> {
    let mut response = Response::new(Full::new(Bytes::from(body)).map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// The plain-text answer of a health probe: it says nothing of any account.
fn probe(status: StatusCode, text: &'static str) -> Response<HyperOutgoingBody> {
    scim_response(status.as_u16(), vec![("content-type".to_owned(), "text/plain".to_owned())], text.as_bytes().to_vec())
}

/// A host-made SCIM error that tells the client when to come back: whole
/// seconds, at least one.
fn retry_later(status: StatusCode, detail: &'static str, after: Duration) -> Response<HyperOutgoingBody> {
    let mut response = error_response(status, detail);
    let seconds = after.as_secs_f64().ceil().max(1.0) as u64;
    response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// A SCIM error document (RFC 7644 §3.12) for answers the host gives
/// itself: the core's, so clients see one error format.
pub(crate) fn error_response(status: StatusCode, detail: &'static str) -> Response<HyperOutgoingBody> {
    let answer = scim_core::ScimError::new(status.as_u16(), None, detail).to_response();
    scim_response(answer.status, answer.headers, answer.body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::CONTENT_TYPE;

    #[test]
    fn origin_from_public_url() {
        let o = parse_origin("https://scim.example.com:8443/").unwrap();
        assert_eq!(o.uri_scheme.as_str(), "https");
        assert_eq!(o.authority.as_str(), "scim.example.com:8443");
        assert!(parse_origin("scim.example.com").is_err());
        assert!(parse_origin("ftp://x").is_err());
    }

    #[tokio::test]
    async fn error_documents_are_scim_json() {
        let response = error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        assert_eq!(response.headers()[CONTENT_TYPE], "application/scim+json");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            &body[..],
            br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"500","detail":"internal error"}"#
        );
    }
}
