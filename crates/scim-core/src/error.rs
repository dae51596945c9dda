//! The one error type of the protocol layer, mapped once to a SCIM error
//! response (RFC 7644 §3.12).

use serde_json::{Value, json};

use crate::http::Response;
use crate::store::StoreError;

/// URN of the SCIM error message schema.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The `scimType` values of RFC 7644 §3.12 (Table 9) that scimlet produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScimType {
    /// The filter syntax was invalid or names an unsupported attribute.
    InvalidFilter,
    /// The filter yields too many results.
    TooMany,
    /// One or more unique attribute values are already taken.
    Uniqueness,
    /// The attempted modification is not compatible with the attribute's mutability.
    Mutability,
    /// The request body structure was invalid or did not conform to the schema.
    InvalidSyntax,
    /// The `path` attribute was invalid or malformed.
    InvalidPath,
    /// The specified `path` did not yield an attribute that could be operated on.
    NoTarget,
    /// A required value was missing or a value was not compatible.
    InvalidValue,
    /// The specified SCIM protocol version is not supported.
    InvalidVers,
    /// The request cannot be completed because of sensitive data in the URI.
    Sensitive,
    /// A pagination cursor was malformed or not issued here (RFC 9865).
    InvalidCursor,
    /// A `count` that cursor pagination cannot use (RFC 9865).
    InvalidCount,
}

impl ScimType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
            ScimType::InvalidCursor => "invalidCursor",
            ScimType::InvalidCount => "invalidCount",
        }
    }
}

/// A failed SCIM request: an HTTP status, an optional `scimType` and a detail
/// that tells a human what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {}: {detail}", scim_type.map(ScimType::as_str).unwrap_or("-"))]
pub struct ScimError {
    /// HTTP status code.
    pub status: u16,
    /// RFC 7644 error keyword, for 400/409 errors that have one.
    pub scim_type: Option<ScimType>,
    /// Human-readable explanation.
    pub detail: String,
    /// Extra response headers (e.g. `Retry-After`, `Allow`).
    pub headers: Vec<(String, String)>,
    /// The provisioning rule that refused the request (`scim_managed_group`,
    /// `email_taken`, …), so that a client can act on the refusal without
    /// parsing `detail`.
    pub code: Option<&'static str>,
}

impl ScimError {
    /// An error with a status and a detail.
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        ScimError { status, scim_type, detail: detail.into(), headers: Vec::new(), code: None }
    }
    /// 400 with a `scimType`.
    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(400, Some(scim_type), detail)
    }
    /// 400 `invalidValue`.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidValue, detail)
    }
    /// 400 `invalidSyntax`.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidSyntax, detail)
    }
    /// 400 `invalidFilter`.
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidFilter, detail)
    }
    /// 400 `invalidPath`.
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidPath, detail)
    }
    /// 400 `noTarget`.
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::NoTarget, detail)
    }
    /// 400 `mutability`.
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::Mutability, detail)
    }
    /// 409 `uniqueness`.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some(ScimType::Uniqueness), detail)
    }
    /// 404 for a resource or route that does not exist.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }
    /// 401: the request is not authenticated for this account. The detail
    /// never says which check failed, so a probe learns nothing.
    pub fn unauthorized() -> Self {
        Self::new(401, None, "missing, invalid, expired or revoked bearer token for this account")
            .with_header("www-authenticate", "Bearer realm=\"scimlet\"")
    }
    /// 503: storage is unavailable or contention did not settle; retry later.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(503, None, detail).with_header("retry-after", "1")
    }
    /// A refusal by a provisioning rule, named by `code`.
    pub fn rule(status: u16, code: &'static str, detail: impl Into<String>) -> Self {
        let mut err = Self::new(status, None, detail);
        err.code = Some(code);
        err
    }
    /// Attaches the name of the rule that refused the request.
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }
    /// Adds a response header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The SCIM error document (RFC 7644 §3.12): the body of the error
    /// response, and the `response` of a failed Bulk operation.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = t.as_str().into();
        }
        if let Some(code) = self.code {
            body["code"] = code.into();
        }
        body
    }

    /// The SCIM error response.
    pub fn to_response(&self) -> Response {
        let mut response = Response::scim_json(self.status, &self.to_json());
        response.headers.extend(self.headers.iter().cloned());
        response
    }
}

impl From<StoreError> for ScimError {
    fn from(err: StoreError) -> Self {
        // A conflict that escapes the retry loops is contention, not the
        // client's fault: ask it to come back.
        match err {
            StoreError::Conflict(_) => ScimError::unavailable("the resource is being changed concurrently; retry"),
            StoreError::Unavailable(_) => ScimError::unavailable("storage is unavailable; retry later"),
        }
    }
}

/// Result alias of the protocol layer.
pub type Result<T, E = ScimError> = std::result::Result<T, E>;
