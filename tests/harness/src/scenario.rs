//! Scenario files: loading and validating them.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::Vars;
use crate::matcher::{Token, tokenize};

/// One scenario file.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Path relative to the vectors directory without `.json`, e.g. `entra/user-lifecycle`.
    pub name: String,
    /// The file it was loaded from.
    pub file: PathBuf,
    /// What the scenario shows.
    pub description: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// The provisioning policies whose hosts replay it (`"policies"`;
    /// default `["provisioning"]`): a scenario that shows the RFCs alone
    /// also runs under `plain`.
    pub policies: Vec<String>,
}

/// Policies a scenario may name (scim-core's `policy_named`).
pub(crate) const POLICIES: [&str; 2] = ["provisioning", "plain"];

/// One step of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The step's name (for restarts `restart` unless named).
    pub name: String,
    /// What the step does.
    pub kind: StepKind,
}

/// A request with its expected response, or a restart.
#[allow(clippy::large_enum_variant)] // a few dozen steps per scenario
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// Send a request and check the response.
    Exchange {
        /// The request, placeholders not yet filled in.
        request: RequestTemplate,
        /// What must come back.
        response: ExpectedResponse,
    },
    /// Restart the target on the same storage.
    Restart,
}

/// A request as written in a scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestTemplate {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Path and query, already percent-encoded.
    pub path: String,
    /// Headers to send (`None`: suppress a default header such as `Authorization`).
    pub headers: Vec<(String, Option<String>)>,
    /// `Value::Null`: no body; `Value::String`: sent verbatim; else sent as JSON.
    pub body: Value,
    /// Who the default `Authorization` speaks for: the account's SCIM
    /// token, or (`"as": "admin"`) the host's admin API token.
    pub caller: Caller,
}

/// Whose bearer token a request sends unless it gives its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Caller {
    /// The scenario account's SCIM token: what an identity provider sends.
    #[default]
    Scim,
    /// The host's admin token: an operator or the application's own admin
    /// UI calling the admin API.
    Admin,
}

/// The response a step expects.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedResponse {
    /// Exact status.
    pub status: u16,
    /// Headers that must be present with a matching value (`None`: must be absent).
    pub headers: Vec<(String, Option<String>)>,
    /// `None`: not checked; `Some(Value::Null)`: no body; else the body to match.
    pub body: Option<Value>,
}

/// The `tests/vectors` directory of this repository.
pub fn vectors_dir() -> PathBuf {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR"));
    harness.parent().unwrap_or(harness).join("vectors")
}

/// Loads every scenario under `dir` (recursively), sorted by name.
///
/// Every file must be a `*.json` scenario or a `*.md` note: anything else is
/// an error, so that a misnamed scenario cannot be silently skipped.
pub fn load_dir(dir: &Path) -> Result<Vec<Scenario>, String> {
    let mut files = Vec::new();
    collect(dir, &mut files)?;
    files.sort();
    let mut scenarios = Vec::new();
    let mut errors = String::new();
    for file in files {
        let rel = file.strip_prefix(dir).unwrap_or(&file);
        let name = rel.with_extension("").to_string_lossy().replace('\\', "/");
        match load_file(&file, &name) {
            Ok(s) => scenarios.push(s),
            Err(e) => {
                let _ = writeln!(errors, "{}: {e}", file.display());
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if scenarios.is_empty() {
        return Err(format!("no scenario found under {}", dir.display()));
    }
    Ok(scenarios)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else {
            match path.extension().and_then(|e| e.to_str()) {
                Some("json") => out.push(path),
                Some("md") => {}
                _ => {
                    return Err(format!(
                        "{}: not a scenario (scenario files end in .json, notes in .md)",
                        path.display()
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Loads and validates one scenario file; `name` is what reports call it.
pub fn load_file(file: &Path, name: &str) -> Result<Scenario, String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    parse_text(&text, name, file)
}

/// Parses and validates scenario text.
pub(crate) fn parse_text(text: &str, name: &str, file: &Path) -> Result<Scenario, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let scenario = parse_scenario(&value, name, file)?;
    check_placeholders(&scenario)?;
    Ok(scenario)
}

fn parse_scenario(value: &Value, name: &str, file: &Path) -> Result<Scenario, String> {
    let obj = value.as_object().ok_or("a scenario is a JSON object")?;
    only_keys(obj, &["description", "policies", "steps"], "scenario")?;
    let policies = match obj.get("policies") {
        None => vec![POLICIES[0].to_owned()],
        Some(list) => {
            let names: Vec<String> = list
                .as_array()
                .filter(|a| !a.is_empty())
                .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect())
                .ok_or("`policies` is a non-empty array of strings")?;
            if let Some(unknown) = names.iter().find(|n| !POLICIES.contains(&n.as_str())) {
                return Err(format!("`policies`: no policy {unknown:?} (known: {POLICIES:?})"));
            }
            names
        }
    };
    let description =
        obj.get("description").and_then(Value::as_str).ok_or("`description` (a string) is required")?.to_owned();
    let steps = obj.get("steps").and_then(Value::as_array).ok_or("`steps` (an array) is required")?;
    if steps.is_empty() {
        return Err("`steps` is empty".into());
    }
    let mut parsed = Vec::new();
    let mut names = BTreeSet::new();
    for (i, step) in steps.iter().enumerate() {
        let step = parse_step(step).map_err(|e| format!("step {}: {e}", i + 1))?;
        if !matches!(step.kind, StepKind::Restart) && !names.insert(step.name.clone()) {
            return Err(format!("step {}: duplicate step name {:?}", i + 1, step.name));
        }
        parsed.push(step);
    }
    Ok(Scenario { name: name.to_owned(), file: file.to_owned(), description, steps: parsed, policies })
}

fn parse_step(value: &Value) -> Result<Step, String> {
    let obj = value.as_object().ok_or("a step is a JSON object")?;
    if obj.contains_key("restart") {
        only_keys(obj, &["restart", "name"], "restart step")?;
        if obj.get("restart") != Some(&Value::Bool(true)) {
            return Err("`restart` must be true".into());
        }
        let name = obj.get("name").and_then(Value::as_str).unwrap_or("restart").to_owned();
        return Ok(Step { name, kind: StepKind::Restart });
    }
    only_keys(obj, &["name", "request", "response"], "step")?;
    let name = obj.get("name").and_then(Value::as_str).ok_or("`name` (a string) is required")?.to_owned();
    let request = parse_request(obj.get("request").ok_or("`request` is required")?)
        .map_err(|e| format!("{name:?}: request: {e}"))?;
    let response = parse_response(obj.get("response").ok_or("`response` is required")?)
        .map_err(|e| format!("{name:?}: response: {e}"))?;
    Ok(Step { name, kind: StepKind::Exchange { request, response } })
}

fn parse_request(value: &Value) -> Result<RequestTemplate, String> {
    let obj = value.as_object().ok_or("must be an object")?;
    only_keys(obj, &["method", "path", "headers", "body", "as"], "request")?;
    let caller = match obj.get("as") {
        None => Caller::Scim,
        Some(Value::String(who)) if who == "admin" => Caller::Admin,
        Some(other) => return Err(format!("`as` is \"admin\" or absent, not {other}")),
    };
    let method = obj.get("method").and_then(Value::as_str).ok_or("`method` (a string) is required")?;
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("`method` {method:?} must be an upper-case HTTP method"));
    }
    let path = obj.get("path").and_then(Value::as_str).ok_or("`path` (a string) is required")?;
    if !path.starts_with('/') && !path.starts_with("{{") {
        return Err(format!("`path` {path:?} must start with `/`"));
    }
    if path.contains(' ') {
        return Err(format!("`path` {path:?} must be percent-encoded (it contains a space)"));
    }
    Ok(RequestTemplate {
        method: method.to_owned(),
        path: path.to_owned(),
        headers: parse_headers(obj.get("headers"))?,
        body: obj.get("body").cloned().unwrap_or(Value::Null),
        caller,
    })
}

fn parse_response(value: &Value) -> Result<ExpectedResponse, String> {
    let obj = value.as_object().ok_or("must be an object")?;
    only_keys(obj, &["status", "headers", "body"], "response")?;
    let status = obj
        .get("status")
        .and_then(Value::as_u64)
        .filter(|s| (100..=599).contains(s))
        .ok_or("`status` (an HTTP status number) is required")?;
    Ok(ExpectedResponse {
        status: status as u16,
        headers: parse_headers(obj.get("headers"))?,
        body: obj.get("body").cloned(),
    })
}

fn parse_headers(value: Option<&Value>) -> Result<Vec<(String, Option<String>)>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let obj = value.as_object().ok_or("`headers` must be an object")?;
    obj.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), Some(s.clone()))),
            Value::Null => Ok((k.clone(), None)),
            _ => Err(format!("header {k:?}: value must be a string or null")),
        })
        .collect()
}

fn only_keys(obj: &Map<String, Value>, allowed: &[&str], what: &str) -> Result<(), String> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("unknown key {k:?} in {what} (allowed: {})", allowed.join(", "))),
        None => Ok(()),
    }
}

/// Every `{{NAME}}` must be a built-in or captured by `{{*NAME}}` in an
/// earlier step or in the same response; matchers must stand alone, and
/// requests cannot capture.
fn check_placeholders(scenario: &Scenario) -> Result<(), String> {
    let mut bound: BTreeSet<String> = BTreeSet::new();
    for (i, step) in scenario.steps.iter().enumerate() {
        let StepKind::Exchange { request, response } = &step.kind else {
            continue;
        };
        let ctx = |e: String| format!("step {} {:?}: {e}", i + 1, step.name);
        // Requests: only references, to names bound by earlier steps.
        let mut request_strings = vec![request.path.clone()];
        request_strings.extend(request.headers.iter().filter_map(|(_, v)| v.clone()));
        strings(&request.body, &mut request_strings);
        for s in &request_strings {
            for token in tokenize(s).map_err(ctx)? {
                match token {
                    Token::Ref(name) if !Vars::is_builtin(&name) && !bound.contains(&name) => {
                        return Err(ctx(format!("request uses {{{{{name}}}}} before it is captured")));
                    }
                    Token::Capture(_) | Token::Matcher(_) => {
                        return Err(ctx(format!("matchers are only allowed in expected responses: {s:?}")));
                    }
                    _ => {}
                }
            }
        }
        // Responses: captures first (they may be used anywhere in the same response).
        let mut response_strings: Vec<String> = response.headers.iter().filter_map(|(_, v)| v.clone()).collect();
        if let Some(body) = &response.body {
            strings(body, &mut response_strings);
        }
        let mut refs = Vec::new();
        for s in &response_strings {
            let tokens = tokenize(s).map_err(ctx)?;
            let standalone = tokens.len() == 1;
            for token in tokens {
                match token {
                    Token::Capture(name) | Token::Matcher(name) if !standalone => {
                        return Err(ctx(format!("{{{{*{name}}}}}/{{{{${name}}}}} must be the whole string: {s:?}")));
                    }
                    Token::Capture(name) => {
                        if Vars::is_builtin(&name) {
                            return Err(ctx(format!("cannot capture into built-in {name:?}")));
                        }
                        bound.insert(name);
                    }
                    Token::Matcher(name) if !["datetime", "version", "uuid", "any"].contains(&name.as_str()) => {
                        return Err(ctx(format!("unknown matcher {{{{${name}}}}}")));
                    }
                    Token::Ref(name) => refs.push(name),
                    _ => {}
                }
            }
        }
        for name in refs {
            if !Vars::is_builtin(&name) && !bound.contains(&name) {
                return Err(ctx(format!("response uses {{{{{name}}}}} but nothing captures it")));
            }
        }
    }
    Ok(())
}

fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vector_file_is_well_formed() {
        let scenarios = load_dir(&vectors_dir()).unwrap_or_else(|e| panic!("{e}"));
        assert!(scenarios.len() >= 5, "expected the vectors of tests/vectors, found {}", scenarios.len());
        for s in &scenarios {
            assert!(s.name.contains('/'), "{}: scenarios live in tests/vectors/<client>/<case>.json", s.name);
        }
    }

    fn parse(text: &str) -> Result<Scenario, String> {
        let value: Value = serde_json::from_str(text).unwrap();
        let s = parse_scenario(&value, "t/t", Path::new("t.json"))?;
        check_placeholders(&s)?;
        Ok(s)
    }

    #[test]
    fn typos_and_unbound_names_are_rejected() {
        let ok = r#"{"description":"d","steps":[
            {"name":"a","request":{"method":"GET","path":"{{base}}/Users"},"response":{"status":200,"body":{"id":"{{*u}}","x":"{{u}}"}}},
            {"restart":true},
            {"name":"b","request":{"method":"GET","path":"{{base}}/Users/{{u}}"},"response":{"status":200}}]}"#;
        assert!(parse(ok).is_ok(), "{:?}", parse(ok));
        let respone = r#"{"description":"d","steps":[{"name":"a","request":{"method":"GET","path":"/"},"respone":{"status":200}}]}"#;
        assert!(parse(respone).unwrap_err().contains("respone"));
        let unbound = r#"{"description":"d","steps":[{"name":"a","request":{"method":"GET","path":"/{{u}}"},"response":{"status":200}}]}"#;
        assert!(parse(unbound).unwrap_err().contains("before it is captured"));
        let unbound_resp = r#"{"description":"d","steps":[{"name":"a","request":{"method":"GET","path":"/"},"response":{"status":200,"body":{"a":"{{u}}"}}}]}"#;
        assert!(parse(unbound_resp).unwrap_err().contains("nothing captures"));
        let embedded = r#"{"description":"d","steps":[{"name":"a","request":{"method":"GET","path":"/"},"response":{"status":200,"body":{"a":"x{{$any}}"}}}]}"#;
        assert!(parse(embedded).unwrap_err().contains("whole string"));
        let unknown = r#"{"description":"d","steps":[{"name":"a","request":{"method":"GET","path":"/"},"response":{"status":200,"body":{"a":"{{$guid}}"}}}]}"#;
        assert!(parse(unknown).unwrap_err().contains("unknown matcher"));
        let policy = r#"{"policies":["rfc"],"description":"d","steps":[{"name":"a","request":{"method":"GET","path":"/"},"response":{"status":200}}]}"#;
        assert!(parse(policy).unwrap_err().contains("no policy \"rfc\""));
        let no_policy = r#"{"policies":[],"description":"d","steps":[{"name":"a","request":{"method":"GET","path":"/"},"response":{"status":200}}]}"#;
        assert!(parse(no_policy).unwrap_err().contains("non-empty"));
        let both = r#"{"policies":["plain","provisioning"],"description":"d","steps":[{"name":"a","request":{"method":"GET","path":"/"},"response":{"status":200}}]}"#;
        assert_eq!(parse(both).map(|s| s.policies), Ok(vec!["plain".to_owned(), "provisioning".to_owned()]));
        assert_eq!(parse(ok).map(|s| s.policies), Ok(vec!["provisioning".to_owned()]));
        let dup = r#"{"description":"d","steps":[
            {"name":"a","request":{"method":"GET","path":"/"},"response":{"status":200}},
            {"name":"a","request":{"method":"GET","path":"/"},"response":{"status":200}}]}"#;
        assert!(parse(dup).unwrap_err().contains("duplicate"));
        let space = r#"{"description":"d","steps":[{"name":"a","request":{"method":"GET","path":"/Users?filter=a eq b"},"response":{"status":200}}]}"#;
        assert!(parse(space).unwrap_err().contains("percent-encoded"));
        let caller = r#"{"description":"d","steps":[{"name":"a","request":{"method":"GET","path":"/","as":"root"},"response":{"status":200}}]}"#;
        assert!(parse(caller).unwrap_err().contains("`as`"));
    }

    #[test]
    fn stray_files_are_errors() {
        let dir = std::env::temp_dir().join(format!("scimlet-vectors-stray-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("c")).unwrap();
        std::fs::write(dir.join("c/case.jsn"), "{}").unwrap();
        let err = load_dir(&dir).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(err.contains("not a scenario"), "{err}");
    }
}
