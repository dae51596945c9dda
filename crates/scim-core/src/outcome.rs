//! What a SCIM operation produced, before it is HTTP.
//!
//! Handlers answer an [`Outcome`]; the router encodes it into a response
//! once, and Bulk reads the same value for its result entries (status, id,
//! location, version) instead of parsing a response it had just encoded.

use serde_json::Value;

use crate::http::Response;
use crate::resource::Meta;

pub(crate) enum Outcome {
    /// A resource's representation: 200 for a read or an update, 201 for a
    /// create.
    Resource(Rendered),
    /// A write answered without a body (204, with the new `ETag`): a group
    /// PATCH that asked for no attributes (RFC 7644 §3.5.2).
    Written { id: String, version: u64, location: String },
    /// `If-None-Match` named the current version (304, with the `ETag`).
    NotModified { version: u64 },
    /// The resource is gone (204).
    Deleted,
    /// Any other SCIM document (200): a ListResponse, discovery, a
    /// BulkResponse.
    Document(Value),
}

/// A resource, serialised (a large group's members are written straight
/// into the bytes, never held as JSON values).
pub(crate) struct Rendered {
    pub(crate) status: u16,
    pub(crate) id: String,
    /// `None` when the resource no longer exists (a deactivation that, by
    /// the account's settings, removed the user): no `ETag` then.
    pub(crate) version: Option<u64>,
    pub(crate) location: String,
    pub(crate) body: Vec<u8>,
}

impl Rendered {
    pub(crate) fn json(status: u16, id: &str, version: Option<u64>, location: String, body: &Value) -> Self {
        // Serialising a `Value` cannot fail.
        Rendered { status, id: id.to_owned(), version, location, body: serde_json::to_vec(body).unwrap_or_default() }
    }
}

impl Outcome {
    pub(crate) fn status(&self) -> u16 {
        match self {
            Outcome::Resource(r) => r.status,
            Outcome::Written { .. } | Outcome::Deleted => 204,
            Outcome::NotModified { .. } => 304,
            Outcome::Document(_) => 200,
        }
    }

    /// The resource it names: id, location and version, where it has them.
    pub(crate) fn resource(&self) -> Option<(&str, &str, Option<u64>)> {
        match self {
            Outcome::Resource(r) => Some((&r.id, &r.location, r.version)),
            Outcome::Written { id, version, location } => Some((id, location, Some(*version))),
            _ => None,
        }
    }

    /// The HTTP response: `ETag` wherever there is a version, `Location`
    /// on a create (RFC 7644 §3.3).
    pub(crate) fn into_response(self) -> Response {
        match self {
            Outcome::Resource(r) => {
                let mut response = Response {
                    status: r.status,
                    headers: vec![("content-type".into(), crate::SCIM_MEDIA_TYPE.into())],
                    body: r.body,
                };
                if let Some(version) = r.version {
                    response = response.with_header("etag", Meta::etag(version));
                }
                if r.status == 201 {
                    response = response.with_header("location", r.location);
                }
                response
            }
            Outcome::Written { version, .. } => Response::empty(204).with_header("etag", Meta::etag(version)),
            Outcome::NotModified { version } => Response::empty(304).with_header("etag", Meta::etag(version)),
            Outcome::Deleted => Response::empty(204),
            Outcome::Document(body) => Response::scim_json(200, &body),
        }
    }
}
