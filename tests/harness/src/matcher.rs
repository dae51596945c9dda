//! Placeholders and the comparison of expected with actual JSON.
//!
//! Rules (also in `tests/vectors/README.md`):
//! - objects must have exactly the same keys;
//! - arrays are multisets: same length, and a one-to-one pairing of expected
//!   with actual elements must exist;
//! - numbers compare by value (`1` equals `1.0`), but `1` and `"1"` differ;
//! - in expected strings `{{base}}`, `{{origin}}`, `{{account}}`, `{{token}}`
//!   and captured `{{NAME}}`s are substituted; a string that is entirely
//!   `{{*NAME}}`, `{{$datetime}}`, `{{$version}}` or `{{$any}}` matches a class
//!   of values instead.
//!
//! A capture may be used anywhere in the response that captures it (e.g. the
//! `id` captured as `{{*alice}}` inside `meta.location`): matching runs twice,
//! first with references to not-yet-bound names accepting any string, then
//! strictly with everything the first pass bound.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::Vars;

/// Values captured so far in a scenario, by name.
pub type Captures = BTreeMap<String, String>;

/// Where and how an actual value differs from the expected one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// JSON path of the first difference, e.g. `$.emails[0].value`
    /// (`headers.etag` for headers).
    pub path: String,
    /// What differs there.
    pub message: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A piece of a string with placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// Plain text.
    Literal(String),
    /// `{{NAME}}`.
    Ref(String),
    /// `{{*NAME}}`.
    Capture(String),
    /// `{{$NAME}}`.
    Matcher(String),
}

/// Splits a string into literals and placeholders.
pub(crate) fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            tokens.push(Token::Literal(rest[..start].to_owned()));
        }
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| format!("unterminated placeholder in {s:?}"))?;
        let inner = &after[..end];
        let (kind, name) = match inner.as_bytes().first() {
            Some(b'*') => ('*', &inner[1..]),
            Some(b'$') => ('$', &inner[1..]),
            _ => (' ', inner),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("bad placeholder {{{{{inner}}}}} in {s:?} (names are [A-Za-z0-9_]+)"));
        }
        tokens.push(match kind {
            '*' => Token::Capture(name.to_owned()),
            '$' => Token::Matcher(name.to_owned()),
            _ => Token::Ref(name.to_owned()),
        });
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        tokens.push(Token::Literal(rest.to_owned()));
    }
    Ok(tokens)
}

/// Fills in `{{NAME}}` references; an unknown name or a matcher is an error.
pub fn substitute(s: &str, vars: &Vars, caps: &Captures) -> Result<String, String> {
    let mut out = String::new();
    for token in tokenize(s)? {
        match token {
            Token::Literal(text) => out.push_str(&text),
            Token::Ref(name) => {
                out.push_str(lookup(&name, vars, caps).ok_or_else(|| format!("{{{{{name}}}}} is not bound"))?)
            }
            Token::Capture(name) => {
                return Err(format!("{{{{*{name}}}}} is only allowed in expected responses"));
            }
            Token::Matcher(name) => {
                return Err(format!("{{{{${name}}}}} is only allowed in expected responses"));
            }
        }
    }
    Ok(out)
}

/// Substitutes placeholders in every string of a JSON value (keys untouched).
pub fn substitute_json(value: &Value, vars: &Vars, caps: &Captures) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(substitute(s, vars, caps)?),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| substitute_json(v, vars, caps)).collect::<Result<_, _>>()?)
        }
        Value::Object(map) => Value::Object(
            map.iter().map(|(k, v)| Ok((k.clone(), substitute_json(v, vars, caps)?))).collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// The expected value with every bound reference filled in, for reports;
/// matchers and unbound names are left as written.
pub fn resolve_for_display(value: &Value, vars: &Vars, caps: &Captures) -> Value {
    match value {
        Value::String(s) => match tokenize(s) {
            Ok(tokens) => Value::String(
                tokens
                    .into_iter()
                    .map(|t| match t {
                        Token::Literal(text) => text,
                        Token::Ref(name) => {
                            lookup(&name, vars, caps).map(str::to_owned).unwrap_or(format!("{{{{{name}}}}}"))
                        }
                        Token::Capture(name) => match caps.get(&name) {
                            Some(v) => v.clone(),
                            None => format!("{{{{*{name}}}}}"),
                        },
                        Token::Matcher(name) => format!("{{{{${name}}}}}"),
                    })
                    .collect(),
            ),
            Err(_) => value.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve_for_display(v, vars, caps)).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), resolve_for_display(v, vars, caps))).collect())
        }
        other => other.clone(),
    }
}

fn lookup<'a>(name: &str, vars: &'a Vars, caps: &'a Captures) -> Option<&'a str> {
    vars.builtin(name).or_else(|| caps.get(name).map(String::as_str))
}

/// Matches `expected` against `actual` (root path `$`), binding captures
/// into `caps` on success. On failure `caps` is left unchanged.
pub fn match_json(expected: &Value, actual: &Value, vars: &Vars, caps: &mut Captures) -> Result<(), Mismatch> {
    match_all(&[("$".to_owned(), expected, actual)], vars, caps)
}

/// Matches several (path, expected, actual) triples as one unit: a capture
/// bound in any of them may be referenced in any other.
pub fn match_all(items: &[(String, &Value, &Value)], vars: &Vars, caps: &mut Captures) -> Result<(), Mismatch> {
    let mut lenient = caps.clone();
    for (path, expected, actual) in items {
        Matcher { vars, defer_unbound: true }.value(expected, actual, path, &mut lenient)?;
    }
    let mut strict = lenient;
    for (path, expected, actual) in items {
        Matcher { vars, defer_unbound: false }.value(expected, actual, path, &mut strict)?;
    }
    *caps = strict;
    Ok(())
}

#[derive(Clone, Copy)]
struct Matcher<'a> {
    vars: &'a Vars,
    defer_unbound: bool,
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 { format!("{}…", s.chars().take(120).collect::<String>()) } else { s }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Matcher<'_> {
    fn value(self, expected: &Value, actual: &Value, path: &str, caps: &mut Captures) -> Result<(), Mismatch> {
        let fail = |message: String| Err(Mismatch { path: path.to_owned(), message });
        match (expected, actual) {
            (Value::String(e), _) => self.string(e, actual, path, caps),
            (Value::Null, Value::Null) => Ok(()),
            (Value::Bool(e), Value::Bool(a)) if e == a => Ok(()),
            (Value::Number(e), Value::Number(a)) => {
                let equal = match (e.as_i64(), a.as_i64(), e.as_u64(), a.as_u64()) {
                    (Some(x), Some(y), _, _) => x == y,
                    (_, _, Some(x), Some(y)) => x == y,
                    _ => e.as_f64() == a.as_f64(),
                };
                if equal { Ok(()) } else { fail(format!("expected {e}, got {a}")) }
            }
            (Value::Object(e), Value::Object(a)) => {
                if let Some(k) = e.keys().find(|k| !a.contains_key(*k)) {
                    return fail(format!("missing key {k:?} (expected {})", short(&e[k])));
                }
                if let Some(k) = a.keys().find(|k| !e.contains_key(*k)) {
                    return fail(format!("unexpected key {k:?} = {}", short(&a[k])));
                }
                for (k, ev) in e {
                    self.value(ev, &a[k], &child(path, k), caps)?;
                }
                Ok(())
            }
            (Value::Array(e), Value::Array(a)) => self.multiset(e, a, path, caps),
            _ => {
                let mut message = format!("expected {}, got {}", short(expected), short(actual));
                if std::mem::discriminant(expected) != std::mem::discriminant(actual) {
                    message.push_str(&format!(" ({} instead of {})", kind(actual), kind(expected)));
                }
                fail(message)
            }
        }
    }

    fn string(self, expected: &str, actual: &Value, path: &str, caps: &mut Captures) -> Result<(), Mismatch> {
        let fail = |message: String| Err(Mismatch { path: path.to_owned(), message });
        let tokens = match tokenize(expected) {
            Ok(t) => t,
            Err(e) => return fail(e),
        };
        if let [single] = tokens.as_slice() {
            match single {
                Token::Matcher(m) if m == "any" => return Ok(()),
                Token::Matcher(m) if m == "datetime" => {
                    return match actual.as_str() {
                        Some(a) if is_rfc3339_utc(a) => Ok(()),
                        _ => fail(format!("expected an RFC 3339 UTC date-time, got {}", short(actual))),
                    };
                }
                Token::Matcher(m) if m == "version" => {
                    return match actual.as_str() {
                        Some(a) if is_weak_version(a) => Ok(()),
                        _ => fail(format!("expected a weak ETag W/\"<digits>\", got {}", short(actual))),
                    };
                }
                Token::Matcher(m) if m == "uuid" => {
                    return match actual.as_str() {
                        Some(a) if is_uuid(a) => Ok(()),
                        _ => fail(format!("expected a lower-case UUID, got {}", short(actual))),
                    };
                }
                Token::Matcher(m) => return fail(format!("unknown matcher {{{{${m}}}}}")),
                Token::Capture(name) => {
                    let Some(a) = actual.as_str().filter(|a| !a.is_empty()) else {
                        return fail(format!(
                            "expected a non-empty string (captured as {name}), got {}",
                            short(actual)
                        ));
                    };
                    return match caps.get(name) {
                        Some(bound) if bound != a => {
                            fail(format!("{{{{*{name}}}}} is already bound to {bound:?}, got {a:?}"))
                        }
                        _ => {
                            caps.insert(name.clone(), a.to_owned());
                            Ok(())
                        }
                    };
                }
                _ => {}
            }
        }
        let mut want = String::new();
        for token in &tokens {
            match token {
                Token::Literal(text) => want.push_str(text),
                Token::Ref(name) => match lookup(name, self.vars, caps) {
                    Some(v) => want.push_str(v),
                    None if self.defer_unbound => {
                        // Bound later in this response; checked in the strict pass.
                        return if actual.is_string() {
                            Ok(())
                        } else {
                            fail(format!("expected a string, got {}", short(actual)))
                        };
                    }
                    None => return fail(format!("{{{{{name}}}}} is not bound")),
                },
                Token::Capture(_) | Token::Matcher(_) => {
                    return fail(format!("matcher inside a longer string: {expected:?}"));
                }
            }
        }
        match actual.as_str() {
            Some(a) if a == want => Ok(()),
            Some(a) => fail(format!("expected {want:?}, got {a:?}")),
            None => fail(format!("expected {want:?}, got {} ({})", short(actual), kind(actual))),
        }
    }

    fn multiset(self, expected: &[Value], actual: &[Value], path: &str, caps: &mut Captures) -> Result<(), Mismatch> {
        if expected.len() != actual.len() {
            return Err(Mismatch {
                path: path.to_owned(),
                message: format!(
                    "expected {} elements, got {}: {}",
                    expected.len(),
                    actual.len(),
                    short(&Value::Array(actual.to_vec()))
                ),
            });
        }
        let mut used = vec![false; actual.len()];
        let mut budget = 100_000u32;
        if self.pair(expected, actual, 0, &mut used, caps, &mut budget) {
            return Ok(());
        }
        // Diagnose: the first expected element that matches no actual one,
        // reported against the most similar candidate (deepest mismatch).
        for (i, e) in expected.iter().enumerate() {
            let mut best: Option<((usize, usize), Mismatch)> = None;
            let mut any = false;
            for (j, a) in actual.iter().enumerate() {
                let mut trial = caps.clone();
                match self.value(e, a, &format!("{path}[{j}]"), &mut trial) {
                    Ok(()) => {
                        any = true;
                        break;
                    }
                    Err(m) => {
                        let score = (self.similarity(e, a, caps), depth(&m.path));
                        if best.as_ref().is_none_or(|(b, _)| score > *b) {
                            best = Some((score, m));
                        }
                    }
                }
            }
            if !any {
                let (_, m) = best.expect("non-empty array");
                return Err(Mismatch {
                    path: m.path,
                    message: format!("{} (no element matches expected element {i}: {})", m.message, short(e)),
                });
            }
        }
        Err(Mismatch {
            path: path.to_owned(),
            message: "every expected element matches some actual element, but not one-to-one (duplicates?)".into(),
        })
    }

    /// How many keys of two objects match (to find the element that was
    /// probably meant when reporting a mismatch inside an array).
    fn similarity(self, expected: &Value, actual: &Value, caps: &Captures) -> usize {
        match (expected, actual) {
            (Value::Object(e), Value::Object(a)) => e
                .iter()
                .filter(|(k, ev)| a.get(*k).is_some_and(|av| self.value(ev, av, "$", &mut caps.clone()).is_ok()))
                .count(),
            _ => 0,
        }
    }

    fn pair(
        self,
        expected: &[Value],
        actual: &[Value],
        i: usize,
        used: &mut [bool],
        caps: &mut Captures,
        budget: &mut u32,
    ) -> bool {
        if i == expected.len() {
            return true;
        }
        for j in 0..actual.len() {
            if used[j] || *budget == 0 {
                continue;
            }
            *budget -= 1;
            let mut trial = caps.clone();
            if self.value(&expected[i], &actual[j], "$", &mut trial).is_ok() {
                used[j] = true;
                if self.pair(expected, actual, i + 1, used, &mut trial, budget) {
                    *caps = trial;
                    return true;
                }
                used[j] = false;
            }
        }
        false
    }
}

fn child(path: &str, key: &str) -> String {
    if !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        format!("{path}.{key}")
    } else {
        format!("{path}[{key:?}]")
    }
}

fn depth(path: &str) -> usize {
    path.matches(['.', '[']).count()
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r.clone()).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(99);
    if b.len() < 20
        || !(digits(0..4) && digits(5..7) && digits(8..10) && digits(11..13) && digits(14..16) && digits(17..19))
    {
        return false;
    }
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return false;
    }
    if !(1..=12).contains(&num(5..7))
        || !(1..=31).contains(&num(8..10))
        || num(11..13) > 23
        || num(14..16) > 59
        || num(17..19) > 60
    {
        return false;
    }
    match &s[19..] {
        "Z" => true,
        rest => rest
            .strip_prefix('.')
            .and_then(|f| f.strip_suffix('Z'))
            .is_some_and(|f| !f.is_empty() && f.bytes().all(|c| c.is_ascii_digit())),
    }
}

/// `8-4-4-4-12` lower-case hex digits: the ids the plain-SCIM policy draws.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// `W/"<digits>"`.
fn is_weak_version(s: &str) -> bool {
    s.strip_prefix("W/\"")
        .and_then(|r| r.strip_suffix('"'))
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vars() -> Vars {
        Vars {
            base: "/gateway/ng/api/scim/account/acc1".into(),
            origin: "http://localhost".into(),
            account: "acc1".into(),
            token: "tok".into(),
            admin_token: "admin".into(),
        }
    }

    fn check(expected: Value, actual: Value) -> Result<Captures, Mismatch> {
        let mut caps = Captures::new();
        match_json(&expected, &actual, &vars(), &mut caps).map(|()| caps)
    }

    #[test]
    fn equal_values_match() {
        let v = json!({"a": [1, "x", {"b": null, "c": true}], "d": 2.5});
        assert!(check(v.clone(), v).is_ok());
    }

    #[test]
    fn a_wrong_value_fails_with_its_path() {
        let err = check(json!({"name": {"givenName": "Ada"}}), json!({"name": {"givenName": "Eva"}})).unwrap_err();
        assert_eq!(err.path, "$.name.givenName");
        assert!(err.message.contains("\"Ada\"") && err.message.contains("\"Eva\""), "{err}");
        assert!(check(json!({"a": true}), json!({"a": "true"})).is_err());
        assert!(check(json!({"a": 1}), json!({"a": "1"})).is_err());
        assert!(check(json!({"a": null}), json!({"a": false})).is_err());
    }

    #[test]
    fn an_extra_key_fails() {
        let err = check(json!({"a": 1}), json!({"a": 1, "password": "x"})).unwrap_err();
        assert_eq!(err.path, "$");
        assert!(err.message.contains("unexpected key \"password\""), "{err}");
    }

    #[test]
    fn a_missing_key_fails() {
        let err = check(json!({"a": 1, "meta": {"version": "{{$version}}"}}), json!({"a": 1})).unwrap_err();
        assert_eq!(err.path, "$");
        assert!(err.message.contains("missing key \"meta\""), "{err}");
        let err = check(json!({"m": {"a": 1, "b": 2}}), json!({"m": {"a": 1}})).unwrap_err();
        assert_eq!(err.path, "$.m");
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(check(json!(1), json!(1.0)).is_ok());
        assert!(check(json!(-3), json!(-3)).is_ok());
        assert!(check(json!(1), json!(2)).is_err());
    }

    #[test]
    fn arrays_are_multisets() {
        assert!(check(json!([1, 2, 2, 3]), json!([2, 3, 1, 2])).is_ok());
        assert!(check(json!([1, 2, 2]), json!([1, 1, 2])).is_err());
        assert!(check(json!([1, 2]), json!([1, 2, 3])).is_err());
        let err = check(
            json!([{"value": "a", "display": "A"}, {"value": "b", "display": "B"}]),
            json!([{"value": "b", "display": "B"}, {"value": "a", "display": "X"}]),
        )
        .unwrap_err();
        assert_eq!(err.path, "$[1].display");
    }

    #[test]
    fn matchers() {
        assert!(check(json!("{{$datetime}}"), json!("2026-01-01T00:00:00Z")).is_ok());
        assert!(check(json!("{{$datetime}}"), json!("2026-01-01T00:00:00.123Z")).is_ok());
        assert!(check(json!("{{$datetime}}"), json!("2026-01-01 00:00:00Z")).is_err());
        assert!(check(json!("{{$datetime}}"), json!("2026-13-01T00:00:00Z")).is_err());
        assert!(check(json!("{{$datetime}}"), json!("2026-01-01T00:00:00+01:00")).is_err());
        assert!(check(json!("{{$version}}"), json!("W/\"17\"")).is_ok());
        assert!(check(json!("{{$version}}"), json!("\"17\"")).is_err());
        assert!(check(json!("{{$version}}"), json!("W/\"\"")).is_err());
        assert!(check(json!("{{$uuid}}"), json!("563351b6-de8a-46df-b77d-36d473eb9820")).is_ok());
        assert!(check(json!("{{$uuid}}"), json!("563351B6-DE8A-46DF-B77D-36D473EB9820")).is_err());
        assert!(check(json!("{{$uuid}}"), json!("Analytical_Engines")).is_err());
        assert!(check(json!("{{$uuid}}"), json!("563351b6de8a46dfb77d36d473eb9820")).is_err());
        assert!(check(json!({"a": "{{$any}}"}), json!({"a": [1, {"x": null}]})).is_ok());
        assert!(check(json!({"a": "{{$any}}"}), json!({"a": null})).is_ok());
        assert!(check(json!({"a": "{{$any}}"}), json!({})).is_err(), "$any still requires the key");
    }

    #[test]
    fn captures_bind_and_are_usable_in_the_same_response() {
        let caps = check(
            json!({"id": "{{*alice}}", "meta": {"location": "{{origin}}{{base}}/Users/{{alice}}"}}),
            json!({"id": "u1", "meta": {"location": "http://localhost/gateway/ng/api/scim/account/acc1/Users/u1"}}),
        )
        .unwrap();
        assert_eq!(caps["alice"], "u1");
        // A reference sorting before its capture is still checked strictly.
        let err = check(
            json!({"$ref": "{{origin}}{{base}}/Users/{{u}}", "value": "{{*u}}"}),
            json!({"$ref": "http://localhost/gateway/ng/api/scim/account/acc1/Users/zz", "value": "u1"}),
        )
        .unwrap_err();
        assert_eq!(err.path, "$[\"$ref\"]");
    }

    #[test]
    fn a_capture_must_be_consistent_and_non_empty() {
        assert!(check(json!(["{{*a}}", "{{*a}}"]), json!(["x", "y"])).is_err());
        assert!(check(json!(["{{*a}}", "{{*a}}"]), json!(["x", "x"])).is_ok());
        assert!(check(json!("{{*a}}"), json!("")).is_err());
        assert!(check(json!("{{*a}}"), json!(5)).is_err());
        let mut caps = Captures::from([("a".to_owned(), "x".to_owned())]);
        assert!(match_json(&json!("{{*a}}"), &json!("y"), &vars(), &mut caps).is_err());
        assert_eq!(caps["a"], "x", "a failed match leaves captures unchanged");
    }

    #[test]
    fn captures_inside_multisets_follow_the_pairing() {
        let caps = check(
            json!([{"value": "{{*u1}}", "display": "Ada"}, {"value": "{{*u2}}", "display": "Bob"}]),
            json!([{"value": "id-b", "display": "Bob"}, {"value": "id-a", "display": "Ada"}]),
        )
        .unwrap();
        assert_eq!((caps["u1"].as_str(), caps["u2"].as_str()), ("id-a", "id-b"));
    }

    #[test]
    fn substitution() {
        let caps = Captures::from([("g".to_owned(), "Eng".to_owned())]);
        assert_eq!(
            substitute("{{base}}/Groups/{{g}}", &vars(), &caps).unwrap(),
            "/gateway/ng/api/scim/account/acc1/Groups/Eng"
        );
        assert!(substitute("{{nope}}", &vars(), &caps).is_err());
        assert!(substitute("{{*x}}", &vars(), &caps).is_err());
        assert!(substitute("{{base", &vars(), &caps).is_err());
        assert_eq!(substitute("no placeholders {x}", &vars(), &caps).unwrap(), "no placeholders {x}");
    }
}
