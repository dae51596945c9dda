//! One authenticated request's view of an account: its keys, its base URL
//! and the record helpers that users and groups share.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::env::{Env, format_rfc3339};
use crate::error::ScimError;
use crate::http::Response;
use crate::keys::AccountKeys;
use crate::resource::Meta;
use crate::store::{Entry, Store, StoreError, Write};
use crate::Service;

/// How many times a write re-reads and retries after losing an optimistic
/// concurrency race before answering 503.
pub(crate) const MAX_ATTEMPTS: usize = 32;

/// The stored form of a user or group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub(crate) created: i64,
    pub(crate) modified: i64,
    pub(crate) attrs: Map<String, Value>,
}

impl Stored {
    pub(crate) fn decode(entry: &Entry) -> Result<Self, ScimError> {
        serde_json::from_slice(&entry.value).map_err(|_| ScimError::unavailable(format!("record {} is corrupt", entry.key)))
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        // Maps of JSON values always serialise.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(crate) fn meta(&self, version: u64) -> Meta {
        Meta { created: format_rfc3339(self.created), last_modified: format_rfc3339(self.modified), version }
    }
}

/// An account as seen by one request.
pub(crate) struct Tenant<'a, S, E> {
    pub(crate) service: &'a Service<S, E>,
    pub(crate) keys: AccountKeys,
    /// `scheme://authority/<prefix>/<account>`, for `meta.location`.
    pub(crate) base_url: String,
}

impl<S: Store, E: Env> Tenant<'_, S, E> {
    pub(crate) fn store(&self) -> &S {
        self.service.store()
    }

    pub(crate) fn now(&self) -> i64 {
        self.service.env().now_millis()
    }

    pub(crate) fn location(&self, endpoint: &str, id: &str) -> String {
        // Ids are server-issued (UUIDs, group identifiers) and URL-safe.
        format!("{}{endpoint}/{id}", self.base_url)
    }
}

/// The `If-Match` precondition of a write (RFC 7644 §3.14).
pub(crate) fn check_if_match(if_match: Option<&str>, version: u64) -> Result<(), ScimError> {
    let Some(header) = if_match else { return Ok(()) };
    let current = Meta::etag(version);
    let strong = format!("\"{version}\"");
    let ok = header.split(',').map(str::trim).any(|tag| tag == "*" || tag == current || tag == strong);
    if ok {
        Ok(())
    } else {
        Err(ScimError::new(412, None, format!("the resource is at version {current}, not {header}")))
    }
}

/// The `If-None-Match` check of a read: `true` means answer 304.
pub(crate) fn not_modified(if_none_match: Option<&str>, version: u64) -> bool {
    let Some(header) = if_none_match else { return false };
    let current = Meta::etag(version);
    let strong = format!("\"{version}\"");
    header.split(',').map(str::trim).any(|tag| tag == "*" || tag == current || tag == strong)
}

/// A resource response with `ETag` (and `Location` for 201).
pub(crate) fn resource_response(status: u16, body: &Value, version: u64, location: Option<&str>) -> Response {
    let mut response = Response::scim_json(status, body).with_header("etag", Meta::etag(version));
    if let Some(location) = location {
        response = response.with_header("location", location);
    }
    response
}

/// Runs `attempt` until it does not lose a concurrency race, at most
/// [`MAX_ATTEMPTS`] times. `attempt` returns `Ok(Err(conflict))` for a lost
/// race it wants retried.
pub(crate) fn retry<T>(mut attempt: impl FnMut() -> Result<Result<T, StoreError>, ScimError>) -> Result<T, ScimError> {
    for _ in 0..MAX_ATTEMPTS {
        match attempt()? {
            Ok(v) => return Ok(v),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ScimError::unavailable("the resource is being changed concurrently; retry"))
}

/// Parses a JSON request body.
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, ScimError> {
    if body.is_empty() {
        return Err(ScimError::invalid_syntax("the request needs a JSON body"));
    }
    serde_json::from_slice(body).map_err(|e| ScimError::invalid_syntax(format!("the body is not valid JSON: {e}")))
}

/// An index record: key, value, and whether it reserves a unique value.
pub(crate) type IndexEntry = (String, Vec<u8>, bool);

/// Writes that move a resource's index records from `old` to `new`, and the
/// position of the unique reservation among them (if it changes), so a
/// conflict on it can be told apart from a lost race.
pub(crate) fn index_writes(old: &[IndexEntry], new: &[IndexEntry]) -> (Vec<Write>, Option<usize>) {
    let mut writes = Vec::new();
    let mut unique_at = None;
    for (key, value, unique) in new {
        if !old.iter().any(|(k, _, _)| k == key) {
            if *unique {
                unique_at = Some(writes.len());
                writes.push(Write::create(key.clone(), value.clone()));
            } else {
                writes.push(Write::put(key.clone(), value.clone()));
            }
        }
    }
    for (key, _, _) in old {
        if !new.iter().any(|(k, _, _)| k == key) {
            writes.push(Write::delete(key.clone()));
        }
    }
    (writes, unique_at)
}
