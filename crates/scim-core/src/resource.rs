//! Resource representations: turning what a client sends into the stored
//! form, and the stored form into what a client reads.
//!
//! Stored form: a JSON object of the client-writable attributes only, keyed
//! by canonical attribute names, values coerced to their schema types, each
//! extension under its schema URN. Server-owned data (`id`, `meta`, group
//! memberships) is kept elsewhere and added at render time.

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::schema::{self, Attribute, Mutability, Resolved, ResourceType, Returned, Type};

/// Longest string value accepted in any attribute, in bytes.
pub(crate) const MAX_STRING: usize = 16 * 1024;
/// Most values accepted in one multi-valued attribute (members are not
/// stored in the resource and have their own bound).
pub(crate) const MAX_VALUES: usize = 100;

/// Validates and canonicalises a client-supplied resource body.
///
/// Read-only attributes (`id`, `meta`, `groups`), `schemas`, `password` and
/// attributes no schema defines are dropped: clients routinely echo them
/// (RFC 7644 §3.3 lets the server ignore them), and refusing would break
/// Entra and Okta. Values of defined attributes must have the right type.
pub(crate) fn normalize(rt: &ResourceType, body: &Value) -> Result<Map<String, Value>, ScimError> {
    let Value::Object(input) = body else {
        return Err(ScimError::invalid_syntax("the request body must be a JSON object"));
    };
    if let Some(schemas) = input.iter().find(|(k, _)| k.eq_ignore_ascii_case("schemas")).map(|(_, v)| v)
        && !schemas.as_array().is_some_and(|a| a.iter().all(Value::is_string))
    {
        return Err(ScimError::invalid_syntax("\"schemas\" must be an array of schema URNs"));
    }
    let mut out = Map::new();
    for (key, value) in input {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(ext) = rt.extension(key) {
            let Value::Object(fields) = value else {
                if value.is_null() {
                    continue;
                }
                return Err(ScimError::invalid_syntax(format!("{} must be a JSON object of its attributes", ext.id)));
            };
            for (name, v) in fields {
                let Some(attr) = ext.attribute(name) else { continue };
                set_attribute(&mut out, Some(ext.id), attr, v)?;
            }
            continue;
        }
        let Some(resolved) = schema::resolve(rt, key) else { continue };
        if resolved.sub.is_some() {
            // `name.givenName` as a body key is not SCIM; only PATCH value
            // objects use it, and they are expanded before reaching here.
            continue;
        }
        let ext = resolved.extension.then_some(resolved.schema.id);
        set_attribute(&mut out, ext, resolved.attribute, value)?;
    }
    Ok(out)
}

fn set_attribute(
    out: &mut Map<String, Value>,
    ext: Option<&'static str>,
    attr: &'static Attribute,
    value: &Value,
) -> Result<(), ScimError> {
    if attr.mutability == Mutability::ReadOnly || attr.name == "password" {
        return Ok(());
    }
    let Some(v) = coerce(attr, value)? else { return Ok(()) };
    match ext {
        None => {
            out.insert(attr.name.to_owned(), v);
        }
        Some(urn) => {
            let holder = out.entry(urn.to_owned()).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = holder {
                m.insert(attr.name.to_owned(), v);
            }
        }
    }
    Ok(())
}

/// RFC 7643 §3: a resource's `schemas` is REQUIRED. A create or a
/// replacement must name the resource type's core schema (any letter case);
/// extension URNs and other URNs clients add (Entra adds Microsoft's own to
/// groups) may come with it.
pub(crate) fn require_schemas(rt: &ResourceType, body: &Value) -> Result<(), ScimError> {
    let names_core = body
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("schemas")))
        .and_then(|(_, v)| v.as_array())
        .is_some_and(|urns| urns.iter().filter_map(Value::as_str).any(|urn| urn.eq_ignore_ascii_case(rt.schema.id)));
    if names_core {
        Ok(())
    } else {
        Err(ScimError::invalid_value(format!(
            "\"schemas\" is required and must include {:?} (RFC 7643, section 3)",
            rt.schema.id
        )))
    }
}

/// Coerces a value to the attribute's definition; `None` for "no value"
/// (null, empty array, empty object), which SCIM treats as unassigned.
pub(crate) fn coerce(attr: &Attribute, value: &Value) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    if attr.multi_valued {
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        if items.len() > MAX_VALUES && attr.name != "members" {
            return Err(ScimError::invalid_value(format!("{} holds more than {MAX_VALUES} values", attr.name)));
        }
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(v) = coerce_single(attr, item)?
                && !out.contains(&v)
            {
                out.push(v);
            }
        }
        let primaries = out.iter().filter(|v| v.get("primary") == Some(&Value::Bool(true))).count();
        if primaries > 1 {
            return Err(ScimError::invalid_value(format!(
                "{} has {primaries} values marked primary; at most one may be",
                attr.name
            )));
        }
        return Ok((!out.is_empty()).then_some(Value::Array(out)));
    }
    let value = match value {
        // Legacy Entra wraps single values in a one-element array.
        Value::Array(items) if items.len() == 1 => &items[0],
        Value::Array(items) if items.is_empty() => return Ok(None),
        other => other,
    };
    coerce_single(attr, value)
}

fn coerce_single(attr: &Attribute, value: &Value) -> Result<Option<Value>, ScimError> {
    let name = attr.name;
    let wrong = |expected: &str| ScimError::invalid_value(format!("{name} must be {expected}, got {}", kind(value)));
    Ok(Some(match attr.ty {
        Type::Complex => match value {
            Value::Object(fields) => {
                let mut out = Map::new();
                for sub in attr.sub_attributes {
                    if sub.mutability == Mutability::ReadOnly {
                        continue;
                    }
                    if let Some((_, v)) = fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(sub.name))
                        && let Some(v) = coerce(sub, v)?
                    {
                        out.insert(sub.name.to_owned(), v);
                    }
                }
                if out.is_empty() {
                    return Ok(None);
                }
                Value::Object(out)
            }
            // patch::Quirk::BareManager: Entra sends `manager` (and clients
            // send `emails`) as a bare value: it is the `value` sub-attribute.
            Value::String(_) | Value::Number(_) | Value::Bool(_) if attr.sub("value").is_some() => {
                let sub = attr.sub("value").ok_or_else(|| wrong("an object"))?;
                let Some(v) = coerce(sub, value)? else { return Ok(None) };
                let mut out = Map::new();
                out.insert("value".into(), v);
                Value::Object(out)
            }
            _ => return Err(wrong("an object")),
        },
        Type::String | Type::Reference | Type::Binary => match value {
            Value::String(s) => {
                if s.len() > MAX_STRING {
                    return Err(ScimError::invalid_value(format!("{name} is longer than {MAX_STRING} bytes")));
                }
                Value::String(s.clone())
            }
            _ => return Err(wrong("a string")),
        },
        Type::Boolean => match value {
            Value::Bool(b) => Value::Bool(*b),
            // patch::Quirk::StringBoolean: Entra's default mode sends
            // "True"/"False".
            Value::String(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
            _ => return Err(wrong("true or false")),
        },
        Type::Integer => match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => Value::Number(n.clone()),
            _ => return Err(wrong("an integer")),
        },
        Type::Decimal => match value {
            Value::Number(n) => Value::Number(n.clone()),
            _ => return Err(wrong("a number")),
        },
        Type::DateTime => match value {
            Value::String(s) if crate::env::parse_rfc3339(s).is_some() => Value::String(s.clone()),
            _ => return Err(wrong("an RFC 3339 dateTime string")),
        },
    }))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Server-kept metadata of a resource.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub(crate) created: String,
    pub(crate) last_modified: String,
    pub(crate) version: u64,
}

impl Meta {
    /// The weak ETag of a store version (RFC 7644 §3.14).
    pub(crate) fn etag(version: u64) -> String {
        format!("W/\"{version}\"")
    }
}

/// Builds the full representation: schemas, id, attributes in schema order,
/// extensions, server-computed attributes and meta.
pub(crate) fn render(
    rt: &ResourceType,
    id: &str,
    attrs: &Map<String, Value>,
    computed: Vec<(&str, Value)>,
    meta: &Meta,
    location: &str,
) -> Value {
    let mut out = Map::new();
    let mut schemas = vec![Value::String(rt.schema.id.to_owned())];
    for (ext, _) in rt.extensions {
        if attrs.contains_key(ext.id) {
            schemas.push(Value::String(ext.id.to_owned()));
        }
    }
    out.insert("schemas".into(), Value::Array(schemas));
    out.insert("id".into(), Value::String(id.to_owned()));
    if let Some(ext_id) = attrs.get("externalId") {
        out.insert("externalId".into(), ext_id.clone());
    }
    for attr in rt.schema.attributes {
        if let Some(v) = attrs.get(attr.name) {
            out.insert(attr.name.to_owned(), v.clone());
        }
        if let Some((_, v)) = computed.iter().find(|(n, _)| *n == attr.name) {
            out.insert(attr.name.to_owned(), v.clone());
        }
    }
    for (ext, _) in rt.extensions {
        if let Some(v) = attrs.get(ext.id) {
            out.insert(ext.id.to_owned(), v.clone());
        }
    }
    out.insert(
        "meta".into(),
        serde_json::json!({
            "resourceType": rt.name,
            "created": meta.created,
            "lastModified": meta.last_modified,
            "version": Meta::etag(meta.version),
            "location": location,
        }),
    );
    Value::Object(out)
}

/// The `attributes` / `excludedAttributes` query parameters (RFC 7644
/// §3.4.2.5), resolved against a resource type.
#[derive(Debug, Clone, Default)]
pub(crate) struct Projection {
    attributes: Option<Vec<Resolved>>,
    excluded: Vec<Resolved>,
}

impl Projection {
    /// Parses comma-separated attribute lists; names no schema defines are
    /// ignored, as RFC 7644 leaves them without effect.
    pub(crate) fn parse(rt: &ResourceType, attributes: Option<&str>, excluded: Option<&str>) -> Self {
        let list = |s: &str| -> Vec<Resolved> {
            s.split(',').map(str::trim).filter(|n| !n.is_empty()).flat_map(|n| resolve_for_projection(rt, n)).collect()
        };
        Projection {
            attributes: attributes.map(list).filter(|l| !l.is_empty()),
            excluded: excluded.map(list).unwrap_or_default(),
        }
    }

    /// Whether the top-level attribute `name` will be returned whole, with
    /// no sub-attribute selected or excluded.
    pub(crate) fn wants_whole(&self, name: &str) -> bool {
        let is = |r: &Resolved| !r.extension && r.attribute.name == name;
        match &self.attributes {
            Some(list) => list.iter().any(|r| is(r) && r.sub.is_none()),
            None => !self.excluded.iter().any(is),
        }
    }

    /// Whether the top-level attribute `name` (of the base schema) will be
    /// returned, so callers can skip computing it.
    pub(crate) fn wants(&self, name: &str) -> bool {
        let is = |r: &Resolved| !r.extension && r.attribute.name == name;
        match &self.attributes {
            Some(list) => list.iter().any(is),
            None => !self.excluded.iter().any(|r| is(r) && r.sub.is_none()),
        }
    }

    /// Applies the projection and the `returned` characteristic.
    pub(crate) fn apply(&self, rt: &ResourceType, resource: Value) -> Value {
        let Value::Object(mut map) = resource else { return resource };
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            if key == "schemas" {
                continue;
            }
            if let Some(ext) = rt.extension(&key) {
                if let Some(Value::Object(inner)) = map.get_mut(&key) {
                    let names: Vec<String> = inner.keys().cloned().collect();
                    for name in names {
                        let Some(attr) = ext.attribute(&name) else { continue };
                        match self.decide(ext.id, true, attr) {
                            Keep::All => {}
                            Keep::None => {
                                inner.remove(&name);
                            }
                            Keep::Subs(subs) => filter_subs(inner.get_mut(&name), &subs),
                        }
                    }
                    if inner.is_empty() {
                        map.remove(&key);
                    }
                }
                continue;
            }
            let Some(resolved) = schema::resolve(rt, &key) else { continue };
            match self.decide(rt.schema.id, false, resolved.attribute) {
                Keep::All => {}
                Keep::None => {
                    map.remove(&key);
                }
                Keep::Subs(subs) => filter_subs(map.get_mut(&key), &subs),
            }
        }
        // Keep `schemas` honest about which extensions remain.
        let present: Vec<Value> = map
            .get("schemas")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter(|s| s.as_str().is_some_and(|s| rt.extension(s).is_none() || map.contains_key(s)))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        map.insert("schemas".into(), Value::Array(present));
        Value::Object(map)
    }

    fn decide(&self, schema_id: &str, extension: bool, attr: &'static Attribute) -> Keep {
        if attr.returned == Returned::Always {
            return Keep::All;
        }
        if attr.returned == Returned::Never {
            return Keep::None;
        }
        let same =
            |r: &Resolved| r.extension == extension && r.schema.id == schema_id && std::ptr::eq(r.attribute, attr);
        match &self.attributes {
            Some(list) => {
                let hits: Vec<&Resolved> = list.iter().filter(|r| same(r)).collect();
                if hits.is_empty() {
                    Keep::None
                } else if hits.iter().any(|r| r.sub.is_none()) {
                    Keep::All
                } else {
                    Keep::Subs(hits.iter().filter_map(|r| r.sub.map(|s| s.name)).collect())
                }
            }
            None => {
                if attr.returned == Returned::Request {
                    return Keep::None;
                }
                let hits: Vec<&Resolved> = self.excluded.iter().filter(|r| same(r)).collect();
                if hits.iter().any(|r| r.sub.is_none()) {
                    Keep::None
                } else if hits.is_empty() {
                    Keep::All
                } else {
                    let excluded: Vec<&str> = hits.iter().filter_map(|r| r.sub.map(|s| s.name)).collect();
                    Keep::Subs(attr.sub_attributes.iter().map(|s| s.name).filter(|n| !excluded.contains(n)).collect())
                }
            }
        }
    }
}

enum Keep {
    All,
    None,
    Subs(Vec<&'static str>),
}

fn filter_subs(value: Option<&mut Value>, keep: &[&str]) {
    let strip = |v: &mut Value| {
        if let Value::Object(m) = v {
            m.retain(|k, _| keep.contains(&k.as_str()));
        }
    };
    match value {
        Some(Value::Array(items)) => items.iter_mut().for_each(strip),
        Some(v) => strip(v),
        None => {}
    }
}

/// Resolves one name of an `attributes` list; a bare extension URN stands
/// for every attribute of that extension.
fn resolve_for_projection(rt: &ResourceType, name: &str) -> Vec<Resolved> {
    if let Some(ext) = rt.extension(name) {
        return ext
            .attributes
            .iter()
            .map(|attribute| Resolved { schema: ext, extension: true, attribute, sub: None })
            .collect();
    }
    schema::resolve(rt, name).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{GROUP_TYPE, USER_TYPE};
    use serde_json::json;

    #[test]
    fn normalize_canonicalises_coerces_and_drops_server_attributes() {
        let body = json!({
            "schemas": [schema::USER, "urn:example:unknown"],
            "USERNAME": "Ada@Example.com",
            "id": "client-chosen", "meta": {"resourceType": "User"}, "groups": [{"value": "g"}],
            "roles": [], "password": "secret", "madeUp": 1,
            "Active": "False",
            "name": {"GivenName": "Ada", "familyName": null},
            "emails": [{"value": "ada@example.com", "type": "work", "primary": "True"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": "m-1", "Department": "R&D"}
        });
        let out = normalize(&USER_TYPE, &body).unwrap();
        assert_eq!(
            Value::Object(out),
            json!({
                "userName": "Ada@Example.com",
                "active": false,
                "name": {"givenName": "Ada"},
                "emails": [{"value": "ada@example.com", "type": "work", "primary": true}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m-1"}, "department": "R&D"}
            })
        );
    }

    #[test]
    fn normalize_rejects_wrong_types_with_the_attribute_name() {
        for (body, needle) in [
            (json!({"userName": 5}), "userName must be a string"),
            (json!({"userName": "a", "active": "yes"}), "active must be true or false"),
            (json!({"userName": "a", "name": "Ada"}), "name must be an object"),
            (
                json!({"userName": "a", "emails": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}),
                "at most one",
            ),
            (json!(["not an object"]), "JSON object"),
        ] {
            let err = normalize(&USER_TYPE, &body).unwrap_err();
            assert_eq!(err.status, 400);
            assert!(err.detail.contains(needle), "{body}: {}", err.detail);
        }
    }

    #[test]
    fn projection_honours_returned_and_lists() {
        let meta = Meta { created: "c".into(), last_modified: "m".into(), version: 3 };
        let attrs = normalize(&GROUP_TYPE, &json!({"displayName": "Ops", "externalId": "e"})).unwrap();
        let members = json!([{"value": "u1", "display": "U"}]);
        let full = render(&GROUP_TYPE, "Ops", &attrs, vec![("members", members)], &meta, "http://x/Groups/Ops");
        let p = Projection::parse(&GROUP_TYPE, None, Some("members"));
        assert!(!p.wants("members"));
        let out = p.apply(&GROUP_TYPE, full.clone());
        assert!(out.get("members").is_none() && out["displayName"] == "Ops" && out.get("meta").is_some());
        let p = Projection::parse(&GROUP_TYPE, Some("displayName,members.value"), None);
        let out = p.apply(&GROUP_TYPE, full);
        assert_eq!(
            out,
            json!({"schemas": [schema::GROUP], "id": "Ops", "displayName": "Ops", "members": [{"value": "u1"}]})
        );
    }

    #[test]
    fn lenient_shapes_are_one_documented_rule() {
        // A single object, or a bare string, where the schema says
        // multi-valued is a one-element list; a one-element list where it
        // says single-valued is its element (legacy Entra `manager`).
        let user = |body: Value| normalize(&USER_TYPE, &body).unwrap();
        assert_eq!(
            user(json!({"userName": "a", "emails": {"value": "a@example.com"}}))["emails"],
            json!([{"value": "a@example.com"}])
        );
        assert_eq!(
            user(json!({"userName": "a", "emails": "a@example.com"}))["emails"],
            json!([{"value": "a@example.com"}])
        );
        assert_eq!(user(json!({"userName": "a", "displayName": ["Ada"]}))["displayName"], json!("Ada"));
        // More than one element where one value is expected is refused.
        assert!(normalize(&USER_TYPE, &json!({"userName": "a", "displayName": ["Ada", "Grace"]})).is_err());
    }
}
