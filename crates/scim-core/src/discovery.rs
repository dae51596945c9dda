//! Discovery endpoints (RFC 7644 §4), generated from the schema tables and
//! the limits the code enforces, so what is advertised is what works.

use serde_json::{Value, json};

use crate::bulk::MAX_OPERATIONS;
use crate::list::{self, DEFAULT_COUNT, MAX_COUNT};
use crate::router::MAX_BODY;
use crate::schema::{Attribute, Mutability, RESOURCE_TYPES, ResourceType, Returned, Schema};

const SPC_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
const RESOURCE_TYPE_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
const SCHEMA_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";

/// `GET /ServiceProviderConfig`.
pub(crate) fn service_provider_config(base_url: &str) -> Value {
    json!({
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://github.com/scimlet/scimlet#readme",
        "patch": {"supported": true},
        "bulk": {"supported": true, "maxOperations": MAX_OPERATIONS, "maxPayloadSize": MAX_BODY},
        "filter": {"supported": true, "maxResults": MAX_COUNT},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "pagination": {
            "cursor": true,
            "index": true,
            "defaultPaginationMethod": "index",
            "defaultPageSize": DEFAULT_COUNT,
            "maxPageSize": MAX_COUNT
        },
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A scimlet API token for this account, sent as 'Authorization: Bearer <token>'.",
            "primary": true
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base_url}/ServiceProviderConfig")}
    })
}

fn resource_type(rt: &ResourceType, base_url: &str) -> Value {
    json!({
        "schemas": [RESOURCE_TYPE_SCHEMA],
        "id": rt.name,
        "name": rt.name,
        "endpoint": rt.endpoint,
        "description": rt.description,
        "schema": rt.schema.id,
        "schemaExtensions": rt.extensions.iter().map(|(s, required)| json!({"schema": s.id, "required": required})).collect::<Vec<_>>(),
        "meta": {"resourceType": "ResourceType", "location": format!("{base_url}/ResourceTypes/{}", rt.name)}
    })
}

fn attribute(a: &Attribute) -> Value {
    let mut out = json!({
        "name": a.name,
        "type": a.ty.as_str(),
        "multiValued": a.multi_valued,
        "description": a.description,
        "required": a.required,
        "caseExact": a.case_exact,
        "mutability": match a.mutability {
            Mutability::ReadOnly => "readOnly",
            Mutability::ReadWrite => "readWrite",
            Mutability::Immutable => "immutable",
            Mutability::WriteOnly => "writeOnly",
        },
        "returned": match a.returned {
            Returned::Always => "always",
            Returned::Never => "never",
            Returned::Default => "default",
            Returned::Request => "request",
        },
        "uniqueness": if a.unique { "server" } else { "none" },
    });
    if !a.sub_attributes.is_empty() {
        out["subAttributes"] = a.sub_attributes.iter().map(attribute).collect();
    }
    if !a.canonical_values.is_empty() {
        out["canonicalValues"] = json!(a.canonical_values);
    }
    if !a.reference_types.is_empty() {
        out["referenceTypes"] = json!(a.reference_types);
    }
    out
}

fn schema(s: &Schema, base_url: &str) -> Value {
    json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "attributes": s.attributes.iter().map(attribute).collect::<Vec<_>>(),
        "meta": {"resourceType": "Schema", "location": format!("{base_url}/Schemas/{}", s.id)}
    })
}

fn all_schemas() -> Vec<&'static Schema> {
    let mut out: Vec<&'static Schema> = Vec::new();
    for rt in RESOURCE_TYPES {
        for s in rt.schemas() {
            if !out.iter().any(|o| o.id == s.id) {
                out.push(s);
            }
        }
    }
    out
}

/// `GET /ResourceTypes` or `/ResourceTypes/{id}`; `None` for an unknown id.
pub(crate) fn resource_types(base_url: &str, id: Option<&str>) -> Option<Value> {
    match id {
        None => {
            let all: Vec<Value> = RESOURCE_TYPES.iter().map(|rt| resource_type(rt, base_url)).collect();
            Some(list::list_response(all.len(), 1, all))
        }
        Some(id) => RESOURCE_TYPES.iter().find(|rt| rt.name == id).map(|rt| resource_type(rt, base_url)),
    }
}

/// `GET /Schemas` or `/Schemas/{id}`; `None` for an unknown id.
pub(crate) fn schemas(base_url: &str, id: Option<&str>) -> Option<Value> {
    match id {
        None => {
            let all: Vec<Value> = all_schemas().into_iter().map(|s| schema(s, base_url)).collect();
            Some(list::list_response(all.len(), 1, all))
        }
        Some(id) => all_schemas().into_iter().find(|s| s.id == id).map(|s| schema(s, base_url)),
    }
}
