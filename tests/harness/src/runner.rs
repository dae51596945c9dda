//! Replaying scenarios against a [`Target`].

use std::fmt::{self, Write as _};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::matcher::{Captures, Mismatch, match_all, resolve_for_display, substitute, substitute_json};
use crate::scenario::{Caller, ExpectedResponse, RequestTemplate, Scenario, StepKind, load_dir};
use crate::{Target, Vars, VectorRequest, VectorResponse};

/// Why a scenario failed, with everything needed to see what happened.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Scenario name, e.g. `entra/user-lifecycle`.
    pub scenario: String,
    /// The scenario file.
    pub file: PathBuf,
    /// 1-based index of the failing step (0: before the first step).
    pub step_index: usize,
    /// Name of the failing step.
    pub step: String,
    /// What went wrong; for a response mismatch the JSON path of the first difference.
    pub reason: String,
    /// The request sent, if one was.
    pub request: Option<VectorRequest>,
    /// The expected response, bound placeholders in the body filled in.
    pub expected: Option<ExpectedResponse>,
    /// What came back, if anything did.
    pub actual: Option<VectorResponse>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "scenario {} ({})", self.scenario, self.file.display())?;
        writeln!(f, "  step {} {:?}", self.step_index, self.step)?;
        writeln!(f, "  FAILED: {}", self.reason)?;
        if let Some(req) = &self.request {
            writeln!(f, "  request: {} {}", req.method, req.path)?;
            for (k, v) in &req.headers {
                writeln!(f, "    {k}: {v}")?;
            }
            if !req.body.is_empty() {
                writeln!(f, "{}", indent(&body_text(&req.body), 4))?;
            }
        }
        if let Some(ExpectedResponse { status, headers, body }) = &self.expected {
            writeln!(f, "  expected: {status}")?;
            for (k, v) in headers {
                writeln!(f, "    {k}: {}", v.as_deref().unwrap_or("<absent>"))?;
            }
            match body {
                None => writeln!(f, "    (body not checked)")?,
                Some(Value::Null) => writeln!(f, "    (no body)")?,
                Some(b) => writeln!(f, "{}", indent(&serde_json::to_string_pretty(b).unwrap_or_default(), 4))?,
            }
        }
        if let Some(resp) = &self.actual {
            writeln!(f, "  actual: {}", resp.status)?;
            for (k, v) in &resp.headers {
                writeln!(f, "    {k}: {v}")?;
            }
            if resp.body.is_empty() {
                writeln!(f, "    (no body)")?;
            } else {
                writeln!(f, "{}", indent(&body_text(&resp.body), 4))?;
            }
        }
        Ok(())
    }
}

fn body_text(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines().map(|l| format!("{pad}{l}")).collect::<Vec<_>>().join("\n")
}

/// Replays one scenario. Stops at the first failing step.
pub fn run_scenario(scenario: &Scenario, target: &mut dyn Target, vars: &Vars) -> Result<(), Box<Failure>> {
    let mut caps = Captures::new();
    for (i, step) in scenario.steps.iter().enumerate() {
        let failure = |reason: String| Failure {
            scenario: scenario.name.clone(),
            file: scenario.file.clone(),
            step_index: i + 1,
            step: step.name.clone(),
            reason,
            request: None,
            expected: None,
            actual: None,
        };
        match &step.kind {
            StepKind::Restart => target.restart().map_err(|e| failure(format!("restart failed: {e}")))?,
            StepKind::Exchange { request, response } => {
                let req = build_request(request, vars, &caps).map_err(|e| failure(format!("request: {e}")))?;
                // For the report: the expectation with what is bound so far.
                let resolved = |caps: &Captures| ExpectedResponse {
                    body: response.body.as_ref().map(|b| resolve_for_display(b, vars, caps)),
                    ..response.clone()
                };
                let actual = match target.send(&req) {
                    Ok(a) => a,
                    Err(e) => {
                        return Err(Box::new(Failure {
                            request: Some(req),
                            expected: Some(resolved(&caps)),
                            ..failure(format!("transport error: {e}"))
                        }));
                    }
                };
                if req.method == "POST" {
                    // `meta.created` has millisecond precision, and scenarios
                    // that sort by it expect the order the requests were sent
                    // in: on a fast host two creates could share a
                    // millisecond and tie.
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                if let Err(reason) = check_response(response, &actual, vars, &mut caps) {
                    return Err(Box::new(Failure {
                        request: Some(req),
                        expected: Some(resolved(&caps)),
                        actual: Some(actual),
                        ..failure(reason)
                    }));
                }
            }
        }
    }
    Ok(())
}

/// Fills in a request template: placeholders, the default `Authorization`
/// and `Content-Type` headers, and the body bytes.
fn build_request(t: &RequestTemplate, vars: &Vars, caps: &Captures) -> Result<VectorRequest, String> {
    let given = |name: &str| t.headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    let mut headers = Vec::new();
    if !given("authorization") {
        let token = match t.caller {
            Caller::Scim => &vars.token,
            Caller::Admin => &vars.admin_token,
        };
        headers.push(("Authorization".to_owned(), format!("Bearer {token}")));
    }
    let body = match &t.body {
        Value::Null => Vec::new(),
        Value::String(s) => substitute(s, vars, caps)?.into_bytes(),
        other => serde_json::to_vec(&substitute_json(other, vars, caps)?).map_err(|e| e.to_string())?,
    };
    if !t.body.is_null() && !given("content-type") {
        headers.push(("Content-Type".to_owned(), "application/scim+json".to_owned()));
    }
    for (k, v) in &t.headers {
        if let Some(v) = v {
            headers.push((k.clone(), substitute(v, vars, caps)?));
        }
    }
    Ok(VectorRequest { method: t.method.clone(), path: substitute(&t.path, vars, caps)?, headers, body })
}

fn check_response(
    expected: &ExpectedResponse,
    actual: &VectorResponse,
    vars: &Vars,
    caps: &mut Captures,
) -> Result<(), String> {
    if actual.status != expected.status {
        return Err(format!("status: expected {}, got {}", expected.status, actual.status));
    }
    let header = |name: &str| actual.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let mut items: Vec<(String, Value, Value)> = Vec::new();
    let actual_body;
    match &expected.body {
        None => {}
        Some(Value::Null) if !actual.body.is_empty() => {
            return Err(format!("body: expected no body, got {} bytes", actual.body.len()));
        }
        Some(Value::Null) => {}
        Some(want) => {
            if actual.body.is_empty() {
                return Err("body: expected a JSON body, got none".to_owned());
            }
            actual_body = serde_json::from_slice::<Value>(&actual.body).map_err(|e| format!("body: not JSON: {e}"))?;
            items.push(("$".to_owned(), want.clone(), actual_body));
        }
    }
    for (name, want) in &expected.headers {
        let lower = name.to_ascii_lowercase();
        match (want, header(name)) {
            (None, None) => {}
            (None, Some(v)) => return Err(format!("headers.{lower}: expected absent, got {v:?}")),
            (Some(_), None) => return Err(format!("headers.{lower}: missing")),
            (Some(w), Some(v)) => items.push((format!("headers.{lower}"), Value::String(w.clone()), Value::String(v))),
        }
    }
    let refs: Vec<(String, &Value, &Value)> = items.iter().map(|(p, e, a)| (p.clone(), e, a)).collect();
    match_all(&refs, vars, caps).map_err(|m: Mismatch| m.to_string())
}

/// Replays every scenario under `dir` (see [`crate::vectors_dir`]), each on
/// a fresh target made by `setup`, and reports every failing scenario.
///
/// Set `SCIMLET_VECTORS=<substring>` to run only the scenarios whose name
/// contains it. Returns the number of scenarios run, or the full report.
pub fn run_all<F>(dir: &Path, setup: F) -> Result<usize, String>
where
    F: FnMut(&Scenario) -> Result<(Box<dyn Target>, Vars), String>,
{
    run_policy(dir, "provisioning", setup)
}

/// Like [`run_all`], for a host serving `policy`: the scenarios that name it.
pub fn run_policy<F>(dir: &Path, policy: &str, mut setup: F) -> Result<usize, String>
where
    F: FnMut(&Scenario) -> Result<(Box<dyn Target>, Vars), String>,
{
    let scenarios = load_dir(dir)?;
    let filter = std::env::var("SCIMLET_VECTORS").unwrap_or_default();
    let scenarios: Vec<&Scenario> = scenarios.iter().filter(|s| s.policies.iter().any(|p| p == policy)).collect();
    let mut report = String::new();
    let mut run = 0;
    let mut failed = 0;
    for scenario in scenarios.into_iter().filter(|s| s.name.contains(&filter)) {
        run += 1;
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let (mut target, vars) =
                setup(scenario).map_err(|e| format!("scenario {}: setup failed: {e}\n", scenario.name))?;
            run_scenario(scenario, &mut target, &vars).map_err(|f| f.to_string())
        }))
        .unwrap_or_else(|panic| {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            Err(format!("scenario {}: panicked: {msg}\n", scenario.name))
        });
        match outcome {
            Ok(()) => eprintln!("vector {} ... ok", scenario.name),
            Err(text) => {
                eprintln!("vector {} ... FAILED", scenario.name);
                failed += 1;
                let _ = writeln!(report, "{text}");
            }
        }
    }
    if run == 0 {
        return Err(format!("no scenario matches SCIMLET_VECTORS={filter:?}"));
    }
    if failed > 0 {
        return Err(format!("{failed} of {run} scenarios failed\n\n{report}"));
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse_text;

    /// A target that answers from a script, to test the runner itself.
    struct Scripted(Vec<VectorResponse>, Vec<VectorRequest>, usize);

    impl Target for Scripted {
        fn send(&mut self, request: &VectorRequest) -> Result<VectorResponse, String> {
            self.1.push(request.clone());
            if self.0.is_empty() { Err("no more responses".into()) } else { Ok(self.0.remove(0)) }
        }
        fn restart(&mut self) -> Result<(), String> {
            self.2 += 1;
            Ok(())
        }
    }

    fn json_response(status: u16, headers: &[(&str, &str)], body: &str) -> VectorResponse {
        VectorResponse {
            status,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn vars() -> Vars {
        Vars {
            base: "/b".into(),
            origin: "http://h".into(),
            account: "a".into(),
            token: "T".into(),
            admin_token: "ADMIN".into(),
        }
    }

    fn scenario(text: &str) -> Scenario {
        parse_text(text, "test/case", Path::new("test/case.json")).unwrap()
    }

    const SCENARIO: &str = r#"{"description": "d", "steps": [
        {"name": "create", "request": {"method": "POST", "path": "{{base}}/Users", "body": {"userName": "x"}},
         "response": {"status": 201, "headers": {"Location": "{{origin}}{{base}}/Users/{{u}}", "etag": "{{$version}}"},
                      "body": {"id": "{{*u}}", "userName": "x"}}},
        {"restart": true},
        {"name": "delete", "request": {"method": "DELETE", "path": "{{base}}/Users/{{u}}", "headers": {"Authorization": null}},
         "response": {"status": 204, "headers": {"content-type": null}, "body": null}},
        {"name": "bad json", "request": {"method": "POST", "path": "{{base}}/Users", "headers": {"Authorization": "Bearer {{u}}"}, "body": "{oops"},
         "response": {"status": 400}},
        {"name": "settings", "request": {"method": "GET", "path": "/api/accounts/{{account}}/settings", "as": "admin"},
         "response": {"status": 200}}
    ]}"#;

    #[test]
    fn a_passing_scenario_sends_what_it_says() {
        let s = scenario(SCENARIO);
        let mut target = Scripted(
            vec![
                json_response(
                    201,
                    &[("location", "http://h/b/Users/42"), ("ETag", "W/\"1\"")],
                    r#"{"id":"42","userName":"x"}"#,
                ),
                json_response(204, &[], ""),
                json_response(400, &[], "{}"),
                json_response(200, &[], "{}"),
            ],
            Vec::new(),
            0,
        );
        run_scenario(&s, &mut target, &vars()).unwrap_or_else(|f| panic!("{f}"));
        let sent = &target.1;
        assert_eq!(target.2, 1, "one restart");
        assert_eq!(sent[0].path, "/b/Users");
        assert_eq!(sent[0].body, br#"{"userName":"x"}"#);
        assert!(sent[0].headers.contains(&("Authorization".into(), "Bearer T".into())));
        assert!(sent[0].headers.contains(&("Content-Type".into(), "application/scim+json".into())));
        assert_eq!(sent[1].path, "/b/Users/42");
        assert!(sent[1].headers.is_empty(), "no Authorization, no Content-Type: {:?}", sent[1].headers);
        assert_eq!(sent[2].body, b"{oops");
        assert_eq!(sent[2].headers[1], ("Authorization".into(), "Bearer 42".into()));
        assert_eq!(sent[3].path, "/api/accounts/a/settings");
        assert_eq!(sent[3].headers, vec![("Authorization".into(), "Bearer ADMIN".into())]);
    }

    #[test]
    fn a_failure_names_step_and_path_and_shows_both_bodies() {
        let s = scenario(SCENARIO);
        let mut target = Scripted(
            vec![json_response(
                201,
                &[("location", "http://h/b/Users/42"), ("ETag", "W/\"1\"")],
                r#"{"id":"42","userName":"y"}"#,
            )],
            Vec::new(),
            0,
        );
        let failure = run_scenario(&s, &mut target, &vars()).unwrap_err();
        let text = failure.to_string();
        assert_eq!(failure.step, "create");
        assert!(failure.reason.starts_with("$.userName:"), "{}", failure.reason);
        for needle in [
            "test/case",
            "step 1 \"create\"",
            "POST /b/Users",
            "\"userName\": \"x\"",
            "\"userName\": \"y\"",
            "actual: 201",
        ] {
            assert!(text.contains(needle), "report lacks {needle:?}:\n{text}");
        }
    }

    #[test]
    fn status_header_and_body_presence_are_checked() {
        let s = scenario(SCENARIO);
        let ok_create = json_response(
            201,
            &[("location", "http://h/b/Users/42"), ("ETag", "W/\"1\"")],
            r#"{"id":"42","userName":"x"}"#,
        );
        let cases = [
            (json_response(200, &[], ""), "status: expected 204, got 200"),
            (
                json_response(204, &[("Content-Type", "application/scim+json")], ""),
                "headers.content-type: expected absent",
            ),
            (json_response(204, &[], "{}"), "body: expected no body"),
        ];
        for (second, want) in cases {
            let mut target = Scripted(vec![ok_create.clone(), second], Vec::new(), 0);
            let failure = run_scenario(&s, &mut target, &vars()).unwrap_err();
            assert!(failure.reason.starts_with(want), "{} vs {want}", failure.reason);
        }
        let mut target =
            Scripted(vec![json_response(201, &[("ETag", "W/\"1\"")], r#"{"id":"42","userName":"x"}"#)], Vec::new(), 0);
        assert_eq!(run_scenario(&s, &mut target, &vars()).unwrap_err().reason, "headers.location: missing");
        let mut target = Scripted(
            vec![json_response(
                201,
                &[("location", "http://h/b/Users/43"), ("ETag", "W/\"1\"")],
                r#"{"id":"42","userName":"x"}"#,
            )],
            Vec::new(),
            0,
        );
        assert!(
            run_scenario(&s, &mut target, &vars())
                .unwrap_err()
                .reason
                .starts_with("headers.location: expected \"http://h/b/Users/42\"")
        );
    }
}
