//! Logs: the server's own messages and one event for every request, on
//! stderr, as text for people or as one JSON object a line for a log
//! collector (`--log-format`).
//!
//! What a request's line may hold is decided here, once, from what the
//! runner already has: the account named in the path, the client's kind
//! (from its User-Agent), the method, the route template (`/Users/{id}`,
//! never the path, whose ids and filters are the account's data), the
//! status, the duration and the request id the component answered with.
//! Never a header's value, a query or a body: that is how no token or
//! password can reach a log line (a test replays every vector and searches
//! the log for each secret it sent).

use std::time::Duration;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-11-30T22:51:03.120Z  INFO request account="…" client="okta" …`
    #[default]
    Text,
    /// `{"timestamp":…,"level":"INFO","message":"request","account":…}`
    Json,
}

/// Installs the process's log subscriber; messages below INFO are dropped.
pub fn init(format: LogFormat) {
    let builder =
        tracing_subscriber::fmt().with_writer(std::io::stderr).with_target(false).with_max_level(tracing::Level::INFO);
    // Only fails when a subscriber is already installed (a second call).
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init(),
    };
}

/// Longest account id a line repeats: real ids are 22 characters, and an
/// unauthenticated client chooses the path.
const MAX_ACCOUNT: usize = 64;

/// One answered request, as [`request`] logs it.
pub struct RequestLine<'a> {
    pub method: &'a str,
    /// From [`crate::metrics::route_template`].
    pub account: Option<&'a str>,
    pub route: &'a str,
    pub user_agent: Option<&'a str>,
    pub status: u16,
    pub took: Duration,
    /// The `x-request-id` the answer carries (none on the runner's own
    /// refusals, which the component never saw).
    pub request_id: Option<&'a str>,
}

/// Logs one answered request at INFO.
pub fn request(line: RequestLine<'_>) {
    let default_client = if line.route.starts_with("/api/") { "admin-api" } else { "other" };
    let client = line.user_agent.and_then(scim_core::client_kind).unwrap_or(default_client);
    let account = line.account.map(|a| a.char_indices().nth(MAX_ACCOUNT).map_or(a, |(end, _)| &a[..end]));
    // Microseconds, shown as milliseconds with three decimals.
    let duration_ms = line.took.as_micros() as f64 / 1000.0;
    tracing::info!(
        account,
        client,
        method = line.method,
        route = line.route,
        status = line.status,
        duration_ms,
        request_id = line.request_id,
        "request"
    );
}
