//! PATCH (RFC 7644 §3.5.2): parsing a PatchOp into operations and applying
//! them to a resource's stored attributes.
//!
//! Identity providers deviate from the RFC in a few well-known ways. Each
//! deviation is a [`Quirk`], listed with who sends it and the vector that
//! pins it in [`NORMALISERS`], and accepted by a named normaliser before
//! the spec engine sees the operation (in [`parse`], in value coercion, or
//! in [`apply`] before dispatch), so the engine itself (`apply_whole`,
//! `apply_sub`, `apply_filtered`) stays RFC 7644 §3.5.2:
//! - [`Quirk::OpCase`]: Entra sends `Add`/`Replace`/`Remove`.
//! - [`Quirk::PathlessObject`]: Okta and Entra (`aadOptscim062020`) send a
//!   path-less `replace` whose value keys are attribute paths
//!   (`name.givenName`, URN-qualified extension attributes).
//! - [`Quirk::StringBoolean`]: Entra's default mode sends `"False"`/`"True"`
//!   (accepted wherever a boolean is coerced, see `resource::coerce`).
//! - [`Quirk::BareManager`]: Entra sends the enterprise `manager` as a bare id.
//! - [`Quirk::FilterMissCreates`]: Entra's `Add`/`Replace` on
//!   `emails[type eq "work"].value` when no such e-mail exists creates it.
//! - [`Quirk::RemoveWithValue`]: Entra's default removal of members,
//!   `{"op":"Remove","path":"members","value":[{"value":"id"}]}`.

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::filter::Filter;
use crate::resource::coerce;
use crate::schema::{self, Attribute, Mutability, ResourceType, Type};

/// Most operations accepted in one PatchOp: bounds per-request work.
pub const MAX_OPERATIONS: usize = 1000;

/// The client deviations PATCH accepts; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quirk {
    /// Capitalised `op` values.
    OpCase,
    /// Path-less value objects keyed by attribute paths.
    PathlessObject,
    /// Booleans as strings.
    StringBoolean,
    /// `manager` as a bare string.
    BareManager,
    /// Filtered add/replace that matches nothing creates the element.
    FilterMissCreates,
    /// Removal of multi-valued entries named in `value`.
    RemoveWithValue,
}

/// One accepted deviation: who sends it and the vector step that pins it
/// (`<file under tests/vectors>`, `<step name>`).
#[derive(Debug, Clone, Copy)]
pub struct Normaliser {
    /// The deviation.
    pub quirk: Quirk,
    /// The clients known to send it.
    pub sent_by: &'static str,
    /// The vector step that replays it on every host.
    pub vector: (&'static str, &'static str),
}

/// Every deviation PATCH accepts. A unit test holds each vector step to
/// existing, so a normaliser cannot lose its proof unnoticed.
pub const NORMALISERS: &[Normaliser] = &[
    Normaliser {
        quirk: Quirk::OpCase,
        sent_by: "Entra ID (default mode)",
        vector: (
            "entra/user-lifecycle.json",
            "default-mode PATCH: capitalised ops, valuePath, sub-attribute, Add creating a phone, URN path",
        ),
    },
    Normaliser {
        quirk: Quirk::PathlessObject,
        sent_by: "Okta (OIN), Entra ID (aadOptscim062020)",
        vector: ("protocol/patch.json", "Entra aadOptscim062020: one path-less replace keyed by attribute paths"),
    },
    Normaliser {
        quirk: Quirk::StringBoolean,
        sent_by: "Entra ID (default mode)",
        vector: ("entra/user-lifecycle.json", "disable with the string \"False\""),
    },
    Normaliser {
        quirk: Quirk::BareManager,
        sent_by: "Entra ID",
        vector: ("entra/user-lifecycle.json", "manager arrives as a bare string id"),
    },
    Normaliser {
        quirk: Quirk::FilterMissCreates,
        sent_by: "Entra ID",
        vector: ("protocol/patch.json", "add through an equality filter that matches nothing creates the value"),
    },
    Normaliser {
        quirk: Quirk::RemoveWithValue,
        sent_by: "Entra ID (default mode)",
        vector: ("protocol/patch.json", "Entra default removal: Remove members with a value"),
    },
];

/// PATCH operation kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// add
    Add,
    /// replace
    Replace,
    /// remove
    Remove,
}

/// A parsed PATCH path: `attr`, `attr.sub`, `attr[filter]` or
/// `attr[filter].sub`, each optionally URN-qualified.
#[derive(Debug, Clone)]
pub struct Path {
    /// Extension URN the attribute lives under.
    pub extension: Option<&'static str>,
    /// The top-level attribute.
    pub attribute: &'static Attribute,
    /// `attr.sub` or `attr[filter].sub`.
    pub sub: Option<&'static Attribute>,
    /// The value filter of `attr[filter]`.
    pub filter: Option<Filter>,
}

/// One operation, normalised.
#[derive(Debug, Clone)]
pub struct Operation {
    /// What to do.
    pub kind: OpKind,
    /// Where; `None` only for `add`/`replace` of whole-resource objects that
    /// could not be split (never produced by [`parse`]).
    pub path: Path,
    /// The value, if any.
    pub value: Option<Value>,
}

/// Parses a PatchOp body into operations with paths resolved, applying the
/// normalisers.
pub fn parse(rt: &ResourceType, body: &Value) -> Result<Vec<Operation>, ScimError> {
    let Value::Object(map) = body else {
        return Err(ScimError::invalid_syntax("a PATCH body must be a PatchOp JSON object"));
    };
    if let Some(schemas) = field(map, "schemas") {
        let ok = schemas
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(schema::PATCH_OP))));
        if !ok {
            return Err(ScimError::invalid_syntax(format!("a PatchOp must list the schema {:?}", schema::PATCH_OP)));
        }
    }
    let Some(Value::Array(ops)) = field(map, "Operations") else {
        return Err(ScimError::invalid_syntax("a PatchOp needs an \"Operations\" array"));
    };
    if ops.is_empty() {
        return Err(ScimError::invalid_syntax("\"Operations\" is empty"));
    }
    if ops.len() > MAX_OPERATIONS {
        return Err(ScimError::invalid_syntax(format!("more than {MAX_OPERATIONS} operations in one PatchOp")));
    }
    let mut out = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let Value::Object(op) = op else {
            return Err(ScimError::invalid_syntax(format!("Operations[{i}] is not an object")));
        };
        let kind = match field(op, "op").and_then(Value::as_str) {
            // Quirk::OpCase
            Some(s) if s.eq_ignore_ascii_case("add") => OpKind::Add,
            Some(s) if s.eq_ignore_ascii_case("replace") => OpKind::Replace,
            Some(s) if s.eq_ignore_ascii_case("remove") => OpKind::Remove,
            Some(s) => {
                return Err(ScimError::invalid_syntax(format!(
                    "Operations[{i}].op is {s:?}; it must be add, replace or remove"
                )));
            }
            None => return Err(ScimError::invalid_syntax(format!("Operations[{i}] has no \"op\""))),
        };
        let value = field(op, "value").cloned();
        let path = match field(op, "path") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) if p.trim().is_empty() => None,
            Some(Value::String(p)) => Some(p.trim()),
            Some(_) => return Err(ScimError::invalid_path(format!("Operations[{i}].path must be a string"))),
        };
        match path {
            // A bare extension URN targets the whole extension object.
            Some(p) if rt.extension(p).is_some() => {
                let ext = rt.extension(p).map(|e| e.id).unwrap_or_default();
                match (kind, value) {
                    (OpKind::Remove, _) => {
                        for attribute in rt.extension(ext).map(|e| e.attributes).unwrap_or_default() {
                            out.push(Operation {
                                kind,
                                path: Path { extension: Some(ext), attribute, sub: None, filter: None },
                                value: None,
                            });
                        }
                    }
                    (_, Some(Value::Object(fields))) => {
                        let mut wrapped = Map::new();
                        wrapped.insert(ext.to_owned(), Value::Object(fields));
                        expand(rt, kind, &wrapped, &mut out)?;
                    }
                    _ => {
                        return Err(ScimError::invalid_value(format!(
                            "Operations[{i}] targets {ext}; its value must be an object of that extension's attributes"
                        )));
                    }
                }
            }
            Some(p) => {
                let path = parse_path(rt, p)?;
                if kind != OpKind::Remove && value.is_none() {
                    return Err(ScimError::invalid_value(format!("Operations[{i}] ({p}) needs a \"value\"")));
                }
                out.push(Operation { kind, path, value });
            }
            None if kind == OpKind::Remove => {
                return Err(ScimError::no_target(format!("Operations[{i}] is a remove without a \"path\"")));
            }
            None => {
                // Quirk::PathlessObject: split into one operation per key.
                let Some(Value::Object(fields)) = value else {
                    return Err(ScimError::invalid_value(format!(
                        "Operations[{i}] has no path, so its value must be an object of attributes"
                    )));
                };
                expand(rt, kind, &fields, &mut out)?;
            }
        }
    }
    Ok(out)
}

fn field<'v>(map: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    map.get(name).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

fn expand(
    rt: &ResourceType,
    kind: OpKind,
    fields: &Map<String, Value>,
    out: &mut Vec<Operation>,
) -> Result<(), ScimError> {
    for (key, value) in fields {
        if key.eq_ignore_ascii_case("schemas") {
            continue;
        }
        if let Some(ext) = rt.extension(key) {
            if let Value::Object(inner) = value {
                for (name, v) in inner {
                    let Some(attribute) = ext.attribute(name) else { continue };
                    if attribute.mutability == Mutability::ReadOnly {
                        continue;
                    }
                    out.push(Operation {
                        kind,
                        path: Path { extension: Some(ext.id), attribute, sub: None, filter: None },
                        value: Some(v.clone()),
                    });
                }
            }
            continue;
        }
        let Ok(path) = parse_path(rt, key) else { continue };
        // Okta repeats `id` (and clients echo `meta`) inside value objects.
        if path.attribute.mutability == Mutability::ReadOnly
            || path.sub.is_some_and(|s| s.mutability == Mutability::ReadOnly)
        {
            continue;
        }
        out.push(Operation { kind, path, value: Some(value.clone()) });
    }
    Ok(())
}

/// Parses a PATCH `path` (RFC 7644 §3.5.2, `PATH = attrPath / valuePath [subAttr]`).
pub fn parse_path(rt: &ResourceType, text: &str) -> Result<Path, ScimError> {
    let unknown = || ScimError::invalid_path(format!("{text:?} does not name an attribute of {}", rt.name));
    let (attr_part, filter, after) = match text.find('[') {
        Some(open) => {
            let close = text
                .rfind(']')
                .filter(|&c| c > open)
                .ok_or_else(|| ScimError::invalid_path(format!("{text:?} has '[' without a matching ']'")))?;
            let after = &text[close + 1..];
            let after =
                if after.is_empty() {
                    None
                } else {
                    Some(after.strip_prefix('.').ok_or_else(|| {
                        ScimError::invalid_path(format!("{text:?}: expected '.subAttribute' after ']'"))
                    })?)
                };
            (&text[..open], Some(&text[open + 1..close]), after)
        }
        None => (text, None, None),
    };
    let resolved = schema::resolve(rt, attr_part).ok_or_else(unknown)?;
    let extension = resolved.extension.then_some(resolved.schema.id);
    match filter {
        None => Ok(Path { extension, attribute: resolved.attribute, sub: resolved.sub, filter: None }),
        Some(filter_text) => {
            let attribute = resolved.attribute;
            if resolved.sub.is_some() || attribute.ty != Type::Complex || !attribute.multi_valued {
                return Err(ScimError::invalid_path(format!(
                    "{text:?}: only multi-valued complex attributes take a [filter]"
                )));
            }
            let filter = Filter::parse_within(rt, attribute, filter_text)
                .map_err(|e| ScimError::invalid_path(format!("{text:?}: {}", e.detail)))?;
            let sub = match after {
                Some(name) => Some(attribute.sub(name).ok_or_else(unknown)?),
                None => None,
            };
            Ok(Path { extension, attribute, sub, filter: Some(filter) })
        }
    }
}

/// Applies one operation to stored attributes (not to group members, which
/// are edges and handled by the group service).
pub fn apply(attrs: &mut Map<String, Value>, op: &Operation) -> Result<(), ScimError> {
    let path = &op.path;
    let attr = path.attribute;
    if attr.mutability == Mutability::ReadOnly || path.sub.is_some_and(|s| s.mutability == Mutability::ReadOnly) {
        return Err(ScimError::mutability(format!("{} is read-only", display_path(path))));
    }
    if attr.name == "password" {
        // Accepted (Okta password sync) and, like on create, never stored.
        return Ok(());
    }
    let dispatch = |holder: &mut Map<String, Value>| match (&path.filter, path.sub) {
        (None, None) if op.kind == OpKind::Remove && op.value.is_some() && attr.multi_valued => {
            remove_listed(holder, attr, op)
        }
        (None, None) => apply_whole(holder, attr, op),
        (None, Some(sub)) => apply_sub(holder, attr, sub, op),
        (Some(filter), sub) if op.kind != OpKind::Remove && !any_match(holder, attr, filter) => {
            filter_miss_creates(holder, attr, filter, sub, op)
        }
        (Some(filter), sub) => apply_filtered(holder, attr, filter, sub, op),
    };
    match path.extension {
        None => dispatch(attrs),
        Some(urn) => {
            let mut inner = match attrs.remove(urn) {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            let result = dispatch(&mut inner);
            if !inner.is_empty() {
                attrs.insert(urn.to_owned(), Value::Object(inner));
            }
            result
        }
    }
}

fn display_path(path: &Path) -> String {
    let mut s = String::new();
    if let Some(urn) = path.extension {
        s.push_str(urn);
        s.push(':');
    }
    s.push_str(path.attribute.name);
    if path.filter.is_some() {
        s.push_str("[…]");
    }
    if let Some(sub) = path.sub {
        s.push('.');
        s.push_str(sub.name);
    }
    s
}

fn apply_whole(holder: &mut Map<String, Value>, attr: &'static Attribute, op: &Operation) -> Result<(), ScimError> {
    let name = attr.name;
    match op.kind {
        OpKind::Remove => {
            holder.remove(name);
            Ok(())
        }
        OpKind::Add | OpKind::Replace => {
            let value = op.value.as_ref().unwrap_or(&Value::Null);
            let Some(new) = coerce(attr, value)? else {
                if op.kind == OpKind::Replace {
                    holder.remove(name);
                }
                return Ok(());
            };
            match (attr.multi_valued, attr.ty, op.kind) {
                (true, _, OpKind::Add) => {
                    let Value::Array(new_items) = new else { return Ok(()) };
                    let slot = holder.entry(name.to_owned()).or_insert_with(|| Value::Array(Vec::new()));
                    if !slot.is_array() {
                        *slot = Value::Array(Vec::new());
                    }
                    if let Value::Array(items) = slot {
                        for item in new_items {
                            if item.get("primary") == Some(&Value::Bool(true)) {
                                clear_primary(items);
                            }
                            if let Some(existing) = items.iter_mut().find(|i| same_entry(i, &item)) {
                                *existing = item;
                            } else {
                                items.push(item);
                            }
                        }
                    }
                }
                (false, Type::Complex, _) => {
                    // Sub-attributes not given are left unchanged (§3.5.2.3).
                    let slot = holder.entry(name.to_owned()).or_insert_with(|| Value::Object(Map::new()));
                    match (slot, new) {
                        (Value::Object(existing), Value::Object(fields)) => existing.extend(fields),
                        (slot, new) => *slot = new,
                    }
                }
                _ => {
                    holder.insert(name.to_owned(), new);
                }
            }
            Ok(())
        }
    }
}

/// [`Quirk::RemoveWithValue`]: `remove` of a multi-valued attribute with a
/// `value` removes the entries listed there, not the attribute.
fn remove_listed(holder: &mut Map<String, Value>, attr: &'static Attribute, op: &Operation) -> Result<(), ScimError> {
    let name = attr.name;
    let Some(Value::Array(remove)) = coerce(attr, op.value.as_ref().unwrap_or(&Value::Null))? else { return Ok(()) };
    match holder.get_mut(name) {
        Some(Value::Array(items)) => {
            items.retain(|item| !remove.iter().any(|r| same_entry(item, r)));
            if items.is_empty() {
                holder.remove(name);
            }
        }
        // Nothing there: nothing listed can be removed.
        None => {}
        Some(_) => {
            holder.remove(name);
        }
    }
    Ok(())
}

/// Whether any value of `attr` matches `filter`.
fn any_match(holder: &Map<String, Value>, attr: &'static Attribute, filter: &Filter) -> bool {
    match holder.get(attr.name) {
        Some(Value::Array(items)) => items.iter().any(|item| filter.matches(item)),
        Some(other) => filter.matches(other),
        None => false,
    }
}

/// [`Quirk::FilterMissCreates`]: an `add` or `replace` through a value
/// filter that matches nothing (RFC 7644 §3.5.2: `noTarget`) creates the
/// value the filter's equalities describe, with the operation's value.
fn filter_miss_creates(
    holder: &mut Map<String, Value>,
    attr: &'static Attribute,
    filter: &Filter,
    sub: Option<&'static Attribute>,
    op: &Operation,
) -> Result<(), ScimError> {
    let name = attr.name;
    let Some(equalities) = filter.required_equalities() else {
        return Err(ScimError::no_target(format!(
            "no value of {name} matches the filter, and the filter does not describe one to create"
        )));
    };
    let single = Attribute { multi_valued: false, ..*attr };
    let value = op.value.as_ref().unwrap_or(&Value::Null);
    let mut element = Map::new();
    for (k, v) in equalities {
        element.insert(k.to_owned(), v);
    }
    match sub {
        Some(sub) => {
            if let Some(v) = coerce(sub, value)? {
                element.insert(sub.name.to_owned(), v);
            }
        }
        None => {
            if let Some(Value::Object(fields)) = coerce(&single, value)? {
                element.extend(fields);
            }
        }
    }
    let Some(element) = coerce(&single, &Value::Object(element))? else { return Ok(()) };
    let mut items = match holder.remove(name) {
        Some(Value::Array(items)) => items,
        Some(other) => vec![other],
        None => Vec::new(),
    };
    // RFC 7644 §3.5.2: a value made primary takes primary from the others.
    if element.get("primary") == Some(&Value::Bool(true)) {
        clear_primary(&mut items);
    }
    items.push(element);
    holder.insert(name.to_owned(), Value::Array(items));
    Ok(())
}

fn apply_sub(
    holder: &mut Map<String, Value>,
    attr: &'static Attribute,
    sub: &'static Attribute,
    op: &Operation,
) -> Result<(), ScimError> {
    let new = match op.kind {
        OpKind::Remove => None,
        _ => coerce(sub, op.value.as_ref().unwrap_or(&Value::Null))?,
    };
    if attr.multi_valued {
        // No filter: the change applies to every value (§3.5.2.3).
        let slot = holder.entry(attr.name.to_owned()).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = slot {
            if items.is_empty() {
                if let Some(v) = new {
                    let mut element = Map::new();
                    element.insert(sub.name.to_owned(), v);
                    items.push(Value::Object(element));
                }
            } else {
                for item in items.iter_mut() {
                    set_in(item, sub, new.clone());
                }
                items.retain(|i| i.as_object().is_some_and(|m| !m.is_empty()));
            }
        }
        if holder.get(attr.name).and_then(Value::as_array).is_some_and(Vec::is_empty) {
            holder.remove(attr.name);
        }
        return Ok(());
    }
    let slot = holder.entry(attr.name.to_owned()).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    set_in(slot, sub, new);
    if holder.get(attr.name).and_then(Value::as_object).is_some_and(Map::is_empty) {
        holder.remove(attr.name);
    }
    Ok(())
}

fn set_in(element: &mut Value, sub: &'static Attribute, value: Option<Value>) {
    if let Value::Object(m) = element {
        match value {
            Some(v) => {
                m.insert(sub.name.to_owned(), v);
            }
            None => {
                m.remove(sub.name);
            }
        }
    }
}

fn apply_filtered(
    holder: &mut Map<String, Value>,
    attr: &'static Attribute,
    filter: &Filter,
    sub: Option<&'static Attribute>,
    op: &Operation,
) -> Result<(), ScimError> {
    let name = attr.name;
    // RFC 7644 §3.5.2.1/3: a value filter that matches nothing is `noTarget`
    // (for `remove`, nothing to do).
    if op.kind != OpKind::Remove && !any_match(holder, attr, filter) {
        return Err(ScimError::no_target(format!("no value of {name} matches the filter")));
    }
    let new = match (op.kind, sub) {
        (OpKind::Remove, _) => None,
        (_, Some(sub)) => coerce(sub, op.value.as_ref().unwrap_or(&Value::Null))?,
        (_, None) => {
            let single = Attribute { multi_valued: false, ..*attr };
            coerce(&single, op.value.as_ref().unwrap_or(&Value::Null))?
        }
    };
    let items: Vec<Value> = match holder.remove(name) {
        Some(Value::Array(items)) => items,
        Some(other) => vec![other],
        None => Vec::new(),
    };
    let mut out = Vec::with_capacity(items.len() + 1);
    // Which entries of `out` this operation wrote.
    let mut touched = Vec::with_capacity(items.len() + 1);
    for mut item in items {
        if !filter.matches(&item) {
            out.push(item);
            touched.push(false);
            continue;
        }
        match (op.kind, sub) {
            (OpKind::Remove, None) => continue,
            (OpKind::Remove, Some(sub)) => set_in(&mut item, sub, None),
            (_, Some(sub)) => set_in(&mut item, sub, new.clone()),
            (_, None) => {
                if let (Value::Object(m), Some(Value::Object(fields))) = (&mut item, new.clone()) {
                    m.extend(fields);
                }
            }
        }
        if item.as_object().is_some_and(|m| !m.is_empty()) {
            out.push(item);
            touched.push(true);
        }
    }
    // RFC 7644 §3.5.2: a value made primary takes primary from the others.
    let is_primary = |i: &Value| i.get("primary") == Some(&Value::Bool(true));
    if out.iter().zip(&touched).any(|(i, t)| *t && is_primary(i)) {
        for (item, t) in out.iter_mut().zip(&touched) {
            if !*t
                && is_primary(item)
                && let Value::Object(m) = item
            {
                m.remove("primary");
            }
        }
    }
    if out.iter().filter(|i| is_primary(i)).count() > 1 {
        return Err(ScimError::invalid_value(format!("{name} would have more than one primary value")));
    }
    if !out.is_empty() {
        holder.insert(name.to_owned(), Value::Array(out));
    }
    Ok(())
}

fn clear_primary(items: &mut [Value]) {
    for item in items {
        if let Value::Object(m) = item
            && m.get("primary") == Some(&Value::Bool(true))
        {
            m.remove("primary");
        }
    }
}

/// Two entries of a multi-valued attribute are the same value when their
/// `value` (and `type`, when both have one) agree, or when equal outright.
fn same_entry(a: &Value, b: &Value) -> bool {
    match (a.get("value"), b.get("value")) {
        (Some(x), Some(y)) => {
            x == y
                && match (a.get("type"), b.get("type")) {
                    (Some(s), Some(t)) => s == t,
                    _ => true,
                }
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{GROUP_TYPE, USER_TYPE};
    use serde_json::json;

    fn run(start: Value, patch: Value) -> Result<Value, ScimError> {
        let mut attrs = start.as_object().cloned().unwrap();
        for op in parse(&USER_TYPE, &patch)? {
            apply(&mut attrs, &op)?;
        }
        Ok(Value::Object(attrs))
    }

    fn ops(list: Value) -> Value {
        json!({"schemas": [schema::PATCH_OP], "Operations": list})
    }

    /// Each normaliser's vector step exists, so the table cannot point at
    /// a proof that is gone; and every quirk has its row.
    #[test]
    fn every_normaliser_has_its_vector() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors");
        for n in NORMALISERS {
            let (file, step) = n.vector;
            let text = std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
            let scenario: Value = serde_json::from_str(&text).unwrap();
            let found = scenario["steps"].as_array().unwrap().iter().any(|s| s["name"] == step);
            assert!(found, "{:?}: no step {step:?} in {file}", n.quirk);
        }
        for quirk in [
            Quirk::OpCase,
            Quirk::PathlessObject,
            Quirk::StringBoolean,
            Quirk::BareManager,
            Quirk::FilterMissCreates,
            Quirk::RemoveWithValue,
        ] {
            assert!(NORMALISERS.iter().any(|n| n.quirk == quirk), "{quirk:?} has no row");
        }
    }

    /// The engine alone is the RFC: a value filter that matches nothing is
    /// `noTarget`; the normaliser is what creates the value.
    #[test]
    fn the_engine_refuses_a_filter_miss_and_the_normaliser_creates() {
        let path = parse_path(&USER_TYPE, "phoneNumbers[type eq \"mobile\"].value").unwrap();
        let op = Operation { kind: OpKind::Add, path, value: Some(json!("+1 555")) };
        let attr = op.path.attribute;
        let mut attrs = Map::new();
        let filter = op.path.filter.as_ref().unwrap();
        let err = apply_filtered(&mut attrs, attr, filter, op.path.sub, &op).unwrap_err();
        assert_eq!(err.scim_type.map(crate::error::ScimType::as_str), Some("noTarget"));
        apply(&mut attrs, &op).unwrap();
        assert_eq!(Value::Object(attrs), json!({"phoneNumbers": [{"type": "mobile", "value": "+1 555"}]}));
    }

    #[test]
    fn entra_default_mode() {
        let start = json!({"userName": "m@x", "active": true, "emails": [{"value": "m@x", "type": "work", "primary": true}], "name": {"familyName": "H"}});
        let out = run(
            start,
            ops(json!([
                {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "mh@x"},
                {"op": "Replace", "path": "name.familyName", "value": "Hamilton"},
                {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555"},
                {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "A-11"},
                {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "boss"},
                {"op": "Replace", "path": "active", "value": "False"},
                {"op": "Add", "path": "nickName", "value": "Maggie"}
            ])),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({
                "userName": "m@x", "active": false,
                "emails": [{"value": "mh@x", "type": "work", "primary": true}],
                "name": {"familyName": "Hamilton"},
                "phoneNumbers": [{"type": "mobile", "value": "+1 555"}],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "A-11", "manager": {"value": "boss"}},
                "nickName": "Maggie"
            })
        );
    }

    #[test]
    fn pathless_objects_with_dotted_and_urn_keys() {
        let out = run(
            json!({"userName": "a", "name": {"givenName": "A", "familyName": "B"}}),
            ops(json!([{"op": "replace", "value": {
                "id": "ignored", "active": false, "name.givenName": "Ann", "displayName": "Ann B",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Ops",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"costCenter": "7"}
            }}])),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"userName": "a", "name": {"givenName": "Ann", "familyName": "B"}, "active": false, "displayName": "Ann B",
                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops", "costCenter": "7"}})
        );
    }

    #[test]
    fn multi_valued_add_dedups_and_keeps_one_primary() {
        let out = run(
            json!({"userName": "a", "emails": [{"value": "a@x", "type": "work", "primary": true}]}),
            ops(json!([
                {"op": "add", "path": "emails", "value": [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home", "primary": true}]}
            ])),
        )
        .unwrap();
        assert_eq!(
            out["emails"],
            json!([{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home", "primary": true}])
        );
    }

    #[test]
    fn removes() {
        let start = json!({"userName": "a", "title": "t", "emails": [{"value": "a@x", "type": "work"}, {"value": "b@x", "type": "home"}]});
        let out = run(
            start.clone(),
            ops(json!([{"op": "remove", "path": "emails[type eq \"home\"]"}, {"op": "remove", "path": "title"}])),
        )
        .unwrap();
        assert_eq!(out, json!({"userName": "a", "emails": [{"value": "a@x", "type": "work"}]}));
        // Removing what is not there is not an error.
        let out = run(start.clone(), ops(json!([{"op": "remove", "path": "emails[type eq \"other\"]"}]))).unwrap();
        assert_eq!(out, start);
        let out = run(start, ops(json!([{"op": "remove", "path": "emails", "value": [{"value": "b@x"}]}]))).unwrap();
        assert_eq!(out["emails"], json!([{"value": "a@x", "type": "work"}]));
    }

    #[test]
    fn invalid_operations_are_refused() {
        let start = json!({"userName": "a"});
        for (patch, status_type) in [
            (json!({"schemas": [schema::PATCH_OP]}), "invalidSyntax"),
            (ops(json!([])), "invalidSyntax"),
            (ops(json!([{"op": "move", "path": "title", "value": "x"}])), "invalidSyntax"),
            (ops(json!([{"op": "remove"}])), "noTarget"),
            (ops(json!([{"op": "add", "path": "nope", "value": "x"}])), "invalidPath"),
            (ops(json!([{"op": "add", "path": "emails[type eq]", "value": "x"}])), "invalidPath"),
            (ops(json!([{"op": "replace", "path": "id", "value": "x"}])), "mutability"),
            (ops(json!([{"op": "replace", "path": "meta.created", "value": "2026-01-01T00:00:00Z"}])), "mutability"),
            (ops(json!([{"op": "replace", "path": "active", "value": "maybe"}])), "invalidValue"),
            (ops(json!([{"op": "add", "path": "emails[type co \"w\"].value", "value": "x"}])), "noTarget"),
            (
                json!({"schemas": ["urn:wrong"], "Operations": [{"op": "add", "path": "title", "value": "x"}]}),
                "invalidSyntax",
            ),
        ] {
            let err = run(start.clone(), patch.clone()).unwrap_err();
            assert_eq!((err.status, err.scim_type.map(|t| t.as_str())), (400, Some(status_type)), "{patch}");
        }
    }

    #[test]
    fn group_paths_parse() {
        let p = parse_path(&GROUP_TYPE, "members[value eq \"u1\"]").unwrap();
        assert_eq!(p.attribute.name, "members");
        assert!(p.filter.is_some());
    }
}
