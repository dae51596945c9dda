//! What `/metrics` reports, in the Prometheus text format (version 0.0.4):
//! requests by route template, status and account, their latency, store
//! commits by outcome, component instances by kind and the time to make a
//! fresh one, and the days until each token expires.
//!
//! Labels are bounded: a route is a template (`/Users/{id}`), never a path;
//! an account label is set only on answers other than 401, 403 and 404, so
//! a client without a valid token cannot grow the table with made-up
//! account ids.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histograms, in seconds.
const BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in BUCKETS.iter().zip(self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", self.count);
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

#[derive(Default)]
struct State {
    requests: BTreeMap<(String, u16, String), u64>,
    latency: BTreeMap<String, Histogram>,
    commits: BTreeMap<&'static str, u64>,
    instances: BTreeMap<&'static str, u64>,
    instantiation: Histogram,
    token_days: BTreeMap<(String, String), f64>,
}

#[derive(Default)]
pub struct Metrics(Mutex<State>);

impl Metrics {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One answered request.
    /// `account` and `route` as [`route_template`] gives them.
    pub fn request(&self, account: Option<&str>, route: &str, status: u16, took: Duration) {
        // Only answers that got past authentication name their account.
        let account = if matches!(status, 401 | 403 | 404) { "" } else { account.unwrap_or_default() };
        let mut state = self.state();
        *state.requests.entry((route.to_owned(), status, account.to_owned())).or_default() += 1;
        state.latency.entry(route.to_owned()).or_default().observe(took.as_secs_f64());
    }

    /// One store commit: `ok`, `conflict` (a precondition did not hold:
    /// a lost race the component retries, or a name already taken) or
    /// `unavailable`.
    pub fn commit(&self, outcome: &'static str) {
        *self.state().commits.entry(outcome).or_default() += 1;
    }

    /// An instance taken for a request: `warm`, or `fresh` with the time
    /// making it took.
    pub fn instance(&self, fresh: Option<Duration>) {
        let mut state = self.state();
        *state.instances.entry(if fresh.is_some() { "fresh" } else { "warm" }).or_default() += 1;
        if let Some(took) = fresh {
            state.instantiation.observe(took.as_secs_f64());
        }
    }

    /// Replaces the days left of every token (account id, token id, days).
    pub fn token_expiry(&self, tokens: Vec<(String, String, f64)>) {
        self.state().token_days = tokens.into_iter().map(|(a, t, d)| ((a, t), d)).collect();
    }

    pub fn render(&self) -> String {
        let state = self.state();
        let mut out = String::new();
        out.push_str(
            "# HELP scimlet_requests_total Requests answered, by route template, status and account (none for 401).\n",
        );
        out.push_str("# TYPE scimlet_requests_total counter\n");
        for ((route, status, account), n) in &state.requests {
            let _ = writeln!(
                out,
                "scimlet_requests_total{{route=\"{}\",status=\"{status}\",account=\"{}\"}} {n}",
                escape(route),
                escape(account)
            );
        }
        out.push_str("# HELP scimlet_request_duration_seconds Time from a request's head to its answer.\n");
        out.push_str("# TYPE scimlet_request_duration_seconds histogram\n");
        for (route, histogram) in &state.latency {
            histogram.render(&mut out, "scimlet_request_duration_seconds", &format!("route=\"{}\"", escape(route)));
        }
        out.push_str(
            "# HELP scimlet_store_commits_total Store commits by outcome (conflict: a lost race or a taken name).\n",
        );
        out.push_str("# TYPE scimlet_store_commits_total counter\n");
        for (outcome, n) in &state.commits {
            let _ = writeln!(out, "scimlet_store_commits_total{{outcome=\"{outcome}\"}} {n}");
        }
        out.push_str("# HELP scimlet_instances_total Component instances taken for requests: fresh or warm.\n");
        out.push_str("# TYPE scimlet_instances_total counter\n");
        for (kind, n) in &state.instances {
            let _ = writeln!(out, "scimlet_instances_total{{kind=\"{kind}\"}} {n}");
        }
        out.push_str("# HELP scimlet_instantiation_seconds Time to make a fresh component instance.\n");
        out.push_str("# TYPE scimlet_instantiation_seconds histogram\n");
        state.instantiation.render(&mut out, "scimlet_instantiation_seconds", "");
        out.push_str("# HELP scimlet_token_expiry_days Days until each SCIM token expires (checked hourly).\n");
        out.push_str("# TYPE scimlet_token_expiry_days gauge\n");
        for ((account, token), days) in &state.token_days {
            let _ = writeln!(
                out,
                "scimlet_token_expiry_days{{account=\"{}\",token=\"{}\"}} {days:.2}",
                escape(account),
                escape(token)
            );
        }
        out
    }
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The words a route template keeps: SCIM's endpoints and the admin API's.
/// Every other segment is an id, shown as `{id}`, so that no client can add
/// a label value of its own making.
const ROUTE_WORDS: &[&str] = &[
    "Users",
    "Groups",
    "Bulk",
    "Schemas",
    "ResourceTypes",
    "ServiceProviderConfig",
    "Me",
    ".search",
    "settings",
    "tokens",
    "rotate",
    "users",
    "groups",
    "members",
    "role-bindings",
    "check",
    "audit",
    "export",
    "migration-report",
];

/// (account, route template) of a request path: the account named after
/// `/account/` (SCIM) or `/accounts/` (admin API), and the rest of the path
/// with every segment outside [`ROUTE_WORDS`] replaced by `{id}`. Paths
/// elsewhere are `other`.
pub fn route_template(path: &str) -> (Option<String>, String) {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let Some(at) = segments.iter().position(|s| *s == "account" || *s == "accounts") else {
        return (None, "other".into());
    };
    let account = segments.get(at + 1).map(|s| (*s).to_owned());
    let mut route = String::from(if segments[at] == "accounts" { "/api/accounts/{id}" } else { "" });
    for segment in segments.iter().skip(at + 2) {
        route.push('/');
        route.push_str(if ROUTE_WORDS.contains(segment) { segment } else { "{id}" });
    }
    if route.is_empty() {
        route.push('/');
    }
    (account, route)
}

/// Days from now until an RFC 3339 UTC time (`2026-11-30T17:14:27.934Z`);
/// `None` for any other shape.
pub fn days_until(rfc3339: &str, now: std::time::SystemTime) -> Option<f64> {
    let (date, time) = rfc3339.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.splitn(3, ':');
    let (h, min) = (t.next()?.parse::<i64>().ok()?, t.next()?.parse::<i64>().ok()?);
    let s: f64 = t.next()?.parse().ok()?;
    // Days from 1970-01-01 to y-m-d (proleptic Gregorian).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let at = days as f64 * 86_400.0 + (h * 3600 + min * 60) as f64 + s;
    let now = now.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64();
    Some((at - now) / 86_400.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_templates_and_accounts_come_from_the_path() {
        let scim = "/gateway/ng/api/scim/account/acc1/Users/2a92-uuid";
        assert_eq!(route_template(scim), (Some("acc1".into()), "/Users/{id}".into()));
        assert_eq!(route_template("/scim/account/acc1/Groups"), (Some("acc1".into()), "/Groups".into()));
        assert_eq!(route_template("/scim/account/acc1/Users/.search"), (Some("acc1".into()), "/Users/.search".into()));
        assert_eq!(route_template("/scim/account/acc1"), (Some("acc1".into()), "/".into()));
        assert_eq!(
            route_template("/api/accounts/acc1/groups/g1/members/u1"),
            (Some("acc1".into()), "/api/accounts/{id}/groups/{id}/members/{id}".into())
        );
        assert_eq!(route_template("/favicon.ico"), (None, "other".into()));
        // A made-up word is an id like any other.
        assert_eq!(route_template("/scim/account/a/Users/x/y/z"), (Some("a".into()), "/Users/{id}/{id}/{id}".into()));
        assert_eq!(route_template("/scim/account/a/Users/Groups"), (Some("a".into()), "/Users/Groups".into()));
    }

    #[test]
    fn a_401_carries_no_account_and_the_text_format_is_well_formed() {
        let m = Metrics::default();
        m.request(Some("made-up"), "/Users", 401, Duration::from_millis(2));
        m.request(Some("acc1"), "/Users", 200, Duration::from_millis(3));
        m.commit("ok");
        m.instance(Some(Duration::from_micros(40)));
        m.instance(None);
        let text = m.render();
        assert!(text.contains("scimlet_requests_total{route=\"/Users\",status=\"401\",account=\"\"} 1"), "{text}");
        assert!(text.contains("scimlet_requests_total{route=\"/Users\",status=\"200\",account=\"acc1\"} 1"), "{text}");
        assert!(text.contains("scimlet_request_duration_seconds_bucket{route=\"/Users\",le=\"0.005\"} 2"), "{text}");
        assert!(text.contains("scimlet_request_duration_seconds_count{route=\"/Users\"} 2"), "{text}");
        assert!(text.contains("scimlet_store_commits_total{outcome=\"ok\"} 1"));
        assert!(text.contains("scimlet_instances_total{kind=\"fresh\"} 1") && text.contains("kind=\"warm\"} 1"));
        assert!(!text.contains("made-up"));
    }

    #[test]
    fn days_until_reads_rfc3339() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01T00:00:00Z
        let days = days_until("2026-01-31T12:00:00.000Z", now).unwrap();
        assert!((days - 30.5).abs() < 1e-9, "{days}");
        assert_eq!(days_until("tomorrow", now), None);
    }
}
