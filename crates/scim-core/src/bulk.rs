//! Bulk (RFC 7644 §3.7): many operations in one request, with `bulkId`
//! references between them.
//!
//! Each operation runs through the same dispatch as a single request and
//! is its own atomic commit (the RFC does not make a bulk request atomic);
//! `failOnErrors` stops processing after that many failures. Operations
//! whose data refers to a resource created by another operation
//! (`"bulkId:<id>"`) run after it, whatever their order in the request.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::env::Env;
use crate::error::ScimError;
use crate::outcome::Outcome;
use crate::resource::Meta;
use crate::router::{Body, Call, MAX_BODY, dispatch};
use crate::store::Store;
use crate::tenant::Tenant;

/// Most operations in one bulk request; advertised in the
/// ServiceProviderConfig, with [`MAX_BODY`] as `maxPayloadSize`.
pub(crate) const MAX_OPERATIONS: usize = 1000;
const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
const PREFIX: &str = "bulkId:";

struct Operation {
    method: String,
    path: String,
    bulk_id: Option<String>,
    version: Option<String>,
    data: Option<Value>,
}

/// Answers `POST /Bulk`.
pub(crate) fn run<S: Store, E: Env>(tenant: &Tenant<'_, S, E>, body: &Value) -> Result<Outcome, ScimError> {
    let Value::Object(map) = body else {
        return Err(ScimError::invalid_syntax("a Bulk body must be a BulkRequest JSON object"));
    };
    let get = |name: &str| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
    if let Some(schemas) = get("schemas")
        && !schemas.as_array().is_some_and(|a| a.iter().any(|s| s.as_str() == Some(BULK_REQUEST)))
    {
        return Err(ScimError::invalid_syntax(format!("a BulkRequest must list the schema {BULK_REQUEST:?}")));
    }
    let fail_on_errors = match get("failOnErrors") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n >= 1) => n.as_u64().map(|n| n as usize),
        Some(_) => return Err(ScimError::invalid_value("failOnErrors must be an integer of at least 1")),
    };
    let Some(Value::Array(raw)) = get("Operations") else {
        return Err(ScimError::invalid_syntax("a BulkRequest needs an \"Operations\" array"));
    };
    if raw.len() > MAX_OPERATIONS {
        return Err(ScimError::new(
            413,
            None,
            format!("a bulk request holds at most {MAX_OPERATIONS} operations; this one has {}", raw.len()),
        ));
    }
    let mut ops = Vec::with_capacity(raw.len());
    let mut bulk_ids = BTreeSet::new();
    for (i, op) in raw.iter().enumerate() {
        let op = parse_operation(i, op)?;
        if let Some(id) = &op.bulk_id
            && !bulk_ids.insert(id.clone())
        {
            return Err(ScimError::invalid_value(format!("bulkId {id:?} is used by more than one operation")));
        }
        ops.push(op);
    }

    let mut created: BTreeMap<String, String> = BTreeMap::new();
    let mut results: Vec<Option<Value>> = vec![None; ops.len()];
    let mut pending: Vec<usize> = (0..ops.len()).collect();
    let mut errors = 0usize;
    'run: while !pending.is_empty() {
        let mut progressed = false;
        let mut still = Vec::new();
        for index in pending {
            let op = &ops[index];
            let refs = references(op);
            if let Some(unknown) = refs.iter().find(|r| !bulk_ids.contains(*r)) {
                results[index] = Some(failure(
                    op,
                    &ScimError::invalid_value(format!("bulkId {unknown:?} is not defined by any operation")),
                ));
                errors += 1;
            } else if refs.iter().all(|r| created.contains_key(r)) {
                let outcome = execute(tenant, op, &created);
                if let (Some(bulk_id), Some(id)) = (&op.bulk_id, outcome.1.as_ref()) {
                    created.insert(bulk_id.clone(), id.clone());
                }
                if outcome.0.get("response").is_some() {
                    errors += 1;
                }
                results[index] = Some(outcome.0);
            } else {
                still.push(index);
                continue;
            }
            progressed = true;
            if fail_on_errors.is_some_and(|limit| errors >= limit) {
                break 'run;
            }
        }
        if !progressed {
            // What is left waits on operations that failed or on each other.
            for index in still {
                results[index] = Some(failure(
                    &ops[index],
                    &ScimError::new(
                        409,
                        None,
                        "the operation refers to a bulkId whose operation failed or refers back to it",
                    ),
                ));
                errors += 1;
                if fail_on_errors.is_some_and(|limit| errors >= limit) {
                    break 'run;
                }
            }
            break;
        }
        pending = still;
    }
    let operations: Vec<Value> = results.into_iter().flatten().collect();
    Ok(Outcome::Document(json!({"schemas": [BULK_RESPONSE], "Operations": operations})))
}

fn parse_operation(i: usize, op: &Value) -> Result<Operation, ScimError> {
    let Value::Object(op) = op else {
        return Err(ScimError::invalid_syntax(format!("Operations[{i}] is not an object")));
    };
    let get = |name: &str| op.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v);
    let string = |name: &str| -> Result<Option<String>, ScimError> {
        match get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ScimError::invalid_syntax(format!("Operations[{i}].{name} must be a string"))),
        }
    };
    let method = string("method")?.map(|m| m.to_ascii_uppercase()).unwrap_or_default();
    if !matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE") {
        return Err(ScimError::invalid_syntax(format!("Operations[{i}].method must be POST, PUT, PATCH or DELETE")));
    }
    let path = string("path")?
        .filter(|p| p.starts_with('/'))
        .ok_or_else(|| ScimError::invalid_syntax(format!("Operations[{i}].path must start with '/'")))?;
    let bulk_id = string("bulkId")?;
    if method == "POST" && bulk_id.is_none() {
        return Err(ScimError::invalid_syntax(format!("Operations[{i}] is a POST and needs a bulkId")));
    }
    Ok(Operation { method, path, bulk_id, version: string("version")?, data: get("data").cloned() })
}

/// The bulkIds an operation refers to, in its path or data.
fn references(op: &Operation) -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut BTreeSet<String>) {
        match v {
            Value::String(s) => {
                if let Some(id) = s.strip_prefix(PREFIX) {
                    out.insert(id.to_owned());
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(m) => m.values().for_each(|i| walk(i, out)),
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for segment in op.path.split('/') {
        if let Some(id) = segment.strip_prefix(PREFIX) {
            out.insert(id.to_owned());
        }
    }
    if let Some(data) = &op.data {
        walk(data, &mut out);
    }
    out
}

fn substitute(v: &Value, created: &BTreeMap<String, String>) -> Value {
    match v {
        Value::String(s) => match s.strip_prefix(PREFIX).and_then(|id| created.get(id)) {
            Some(id) => Value::String(id.clone()),
            None => v.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|i| substitute(i, created)).collect()),
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, i)| (k.clone(), substitute(i, created))).collect::<Map<_, _>>())
        }
        other => other.clone(),
    }
}

/// Runs one operation; returns its BulkResponse entry and, for a created
/// resource, its id.
fn execute<S: Store, E: Env>(
    tenant: &Tenant<'_, S, E>,
    op: &Operation,
    created: &BTreeMap<String, String>,
) -> (Value, Option<String>) {
    let path: String = op
        .path
        .split('/')
        .map(|seg| seg.strip_prefix(PREFIX).and_then(|id| created.get(id)).map(String::as_str).unwrap_or(seg))
        .collect::<Vec<_>>()
        .join("/");
    let data = op.data.as_ref().map(|d| substitute(d, created));
    if data.as_ref().is_some_and(|d| serde_json::to_vec(d).map(|b| b.len()).unwrap_or(0) > MAX_BODY) {
        return (failure(op, &ScimError::new(413, None, "operation data is too large")), None);
    }
    let call = Call {
        method: &op.method,
        path: path.trim_start_matches('/'),
        params: &[],
        body: Body::Json(data.as_ref()),
        if_match: op.version.as_deref(),
        if_none_match: None,
    };
    // RFC 7644 §3.7: every result but a failed POST names the resource.
    let target = (op.method != "POST").then(|| format!("{}{}", tenant.base_url, path));
    let outcome = match dispatch(tenant, call) {
        Ok(outcome) => outcome,
        Err(e) => {
            let mut entry = failure(op, &e);
            if let Some(target) = target {
                entry["location"] = Value::String(target);
            }
            return (entry, None);
        }
    };
    let mut entry = entry(op, outcome.status());
    let resource = outcome.resource();
    if let Some(location) = resource.map(|(_, location, _)| location.to_owned()).or(target) {
        entry["location"] = Value::String(location);
    }
    if let Some(version) = resource.and_then(|(_, _, version)| version) {
        entry["version"] = Value::String(Meta::etag(version));
    }
    (entry, resource.map(|(id, _, _)| id.to_owned()))
}

fn entry(op: &Operation, status: u16) -> Value {
    let mut e = json!({"method": op.method, "status": status.to_string()});
    if let Some(b) = &op.bulk_id {
        e["bulkId"] = Value::String(b.clone());
    }
    e
}

fn failure(op: &Operation, err: &ScimError) -> Value {
    let mut e = entry(op, err.status);
    e["response"] = err.to_json();
    e
}
