//! The Group resource. A group is one record (displayName, externalId)
//! plus one edge record per member in each direction, so changing k members
//! costs O(k) whatever the group's size, and reading a group without its
//! members never touches them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

use crate::audit::Op;
use crate::env::Env;
use crate::error::ScimError;
use crate::filter::IndexHint;
use crate::http::Response;
use crate::keys;
use crate::list::{self, Collection, ListQuery, Loaded};
use crate::patch::{self, OpKind, Operation};
use crate::resource::{self, Projection};
use crate::schema::{GROUP_TYPE, USER_TYPE};
use crate::settings::SameNamePolicy;
use crate::store::{Store, StoreError, Write};
use crate::tenant::{self, IndexEntry, Stored, Tenant, Uniques};

/// Most members one group may have: bounds the work of reading, replacing
/// and deleting a group.
pub(crate) const MAX_MEMBERS: usize = 100_000;
const MAX_IDENTIFIER: usize = 128;

/// Derives a group identifier from its displayName, the way the platform
/// names user groups: `.` `-` and whitespace become `_`, accents are
/// stripped, leading digits and `$` go, and anything outside
/// `[0-9A-Za-z_$]` is dropped. A name that started with a digit gets a short
/// hash suffix so that "2024 Interns" and "2025 Interns" stay apart.
pub fn derive_identifier(display_name: &str) -> String {
    let trimmed = display_name.trim();
    let step1: String = trimmed.chars().map(|c| if c == '.' || c == '-' { '_' } else { c }).collect();
    let stripped: String = step1.nfd().filter(|c| !unicode_normalization::char::is_combining_mark(*c)).collect();
    let without_leading = stripped.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '$');
    let mut id: String = without_leading
        .chars()
        .filter_map(|c| match c {
            c if c.is_whitespace() => Some('_'),
            c if c.is_ascii_alphanumeric() || c == '_' || c == '$' => Some(c),
            _ => None,
        })
        .collect();
    let hash = || -> String { Sha256::digest(trimmed.as_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect() };
    if trimmed.starts_with(|c: char| c.is_ascii_digit()) && id != trimmed {
        id.truncate(MAX_IDENTIFIER - 9);
        id = format!("{id}_{}", hash());
    }
    if id.is_empty() {
        id = format!("group_{}", hash());
    }
    id.truncate(MAX_IDENTIFIER);
    id
}

/// Membership changes gathered from a PATCH, applied as edge writes.
#[derive(Debug, Default, Clone)]
pub(crate) struct MemberDelta {
    /// Start from an empty membership (replace, or remove of all members).
    pub(crate) clear: bool,
    /// Final wish per user id: member or not.
    pub(crate) wish: BTreeMap<String, bool>,
}

impl<S: Store, E: Env> Tenant<'_, S, E> {
    pub(crate) fn load_group(&self, id: &str) -> Result<Option<(Stored, u64)>, ScimError> {
        match self.store().get(&self.keys.group(id))? {
            Some(entry) => Ok(Some((Stored::decode(&entry)?, entry.version))),
            None => Ok(None),
        }
    }

    /// Whether SCIM may see (and, by writing, take over) native groups:
    /// only under the `link` same-name policy.
    fn sees_native_groups(&self) -> Result<bool, ScimError> {
        Ok(self.settings()?.same_name_policy == SameNamePolicy::Link)
    }

    /// A group as SCIM sees it.
    fn load_scim_group(&self, id: &str) -> Result<Option<(Stored, u64)>, ScimError> {
        match self.load_group(id)? {
            Some((g, _)) if g.prov.native && !self.sees_native_groups()? => Ok(None),
            other => Ok(other),
        }
    }

    fn group_not_found(id: &str) -> ScimError {
        ScimError::not_found(format!("no group with id {id:?} in this account"))
    }

    fn member_ids(&self, group: &str) -> Result<Vec<String>, ScimError> {
        let prefix = self.keys.members(group);
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store().scan(&prefix, after.as_deref(), 1000)?;
            out.extend(page.iter().map(|e| keys::last_segment(&e.key)));
            if page.len() < 1000 || out.len() > MAX_MEMBERS {
                return Ok(out);
            }
            after = page.last().map(|e| e.key.clone());
        }
    }

    /// The `members` attribute, from the edge records alone: reading a
    /// group costs one ordered scan of its edges and no read per member.
    /// (`display` is not returned: it would cost a read per member, and
    /// clients send members as `value` and read them back the same way.)
    ///
    /// SCIM groups hold SCIM users only (a takeover drops the native ones),
    /// so only a native group, visible to SCIM under the `link` policy,
    /// pays a read per member to keep native users out of sight.
    fn render_members(&self, group: &str, native_group: bool) -> Result<Vec<Value>, ScimError> {
        let mut ids = self.member_ids(group)?;
        if native_group {
            let native = self.native_members(&ids)?;
            ids.retain(|id| !native.contains(id));
        }
        Ok(ids.into_iter().map(|uid| json!({"value": uid, "$ref": self.location(USER_TYPE.endpoint, &uid), "type": "User"})).collect())
    }

    /// Which of `ids` are native users.
    fn native_members(&self, ids: &[String]) -> Result<BTreeSet<String>, ScimError> {
        let mut out = BTreeSet::new();
        for chunk in ids.chunks(500) {
            let docs = self.store().get_many(&chunk.iter().map(|u| self.keys.user(u)).collect::<Vec<_>>())?;
            for (uid, doc) in chunk.iter().zip(docs) {
                if let Some(doc) = doc {
                    if Stored::decode(&doc)?.prov.native {
                        out.insert(uid.clone());
                    }
                }
            }
        }
        Ok(out)
    }

    fn render_group(&self, id: &str, stored: &Stored, version: u64, with_members: bool) -> Result<Value, ScimError> {
        let mut computed = Vec::new();
        if with_members {
            let members = self.render_members(id, stored.prov.native)?;
            if !members.is_empty() {
                computed.push(("members", Value::Array(members)));
            }
        }
        Ok(resource::render(&GROUP_TYPE, id, &stored.attrs, computed, &stored.meta(version), &self.location(GROUP_TYPE.endpoint, id)))
    }

    fn group_response(&self, status: u16, id: &str, stored: &Stored, version: u64, projection: &Projection) -> Result<Response, ScimError> {
        let body = projection.apply(&GROUP_TYPE, self.render_group(id, stored, version, projection.wants("members"))?);
        let location = self.location(GROUP_TYPE.endpoint, id);
        Ok(tenant::resource_response(status, &body, version, (status == 201).then_some(location.as_str())))
    }

    /// Splits a full group body into stored attributes and member ids.
    fn group_attrs(body: &Value) -> Result<(Map<String, Value>, Vec<String>), ScimError> {
        let mut attrs = resource::normalize(&GROUP_TYPE, body)?;
        let members = member_values(attrs.remove("members").as_ref())?;
        match attrs.get("displayName").and_then(Value::as_str) {
            Some(name) if !name.trim().is_empty() && name.len() <= 1024 => Ok((attrs, members)),
            Some(name) if name.len() > 1024 => Err(ScimError::invalid_value("displayName is longer than 1024 bytes")),
            _ => Err(ScimError::invalid_value("displayName is required and must be a non-empty string")),
        }
    }

    /// Index writes for a group, the unique name first. Native groups have
    /// a name index of their own, out of SCIM's sight.
    pub(crate) fn group_index_writes(&self, id: &str, old: Option<&Stored>, new: Option<&Stored>) -> (Vec<Write>, Uniques) {
        let index = |group: &Stored| -> Vec<IndexEntry> {
            let mut out = Vec::new();
            let attrs = &group.attrs;
            if let Some(name) = attrs.get("displayName").and_then(Value::as_str) {
                let key = if group.prov.native { self.keys.native_group_name(name) } else { self.keys.group_name(name) };
                out.push((key, id.as_bytes().to_vec(), Some("displayName")));
            }
            if let Some(ext) = attrs.get("externalId").and_then(Value::as_str).filter(|_| !group.prov.native) {
                out.push((format!("{}{}", self.keys.group_external_ids(ext), keys::segment(id)), Vec::new(), None));
            }
            out
        };
        let old = old.map(index).unwrap_or_default();
        let new = new.map(index).unwrap_or_default();
        tenant::index_writes(&old, &new)
    }

    /// Edge writes that take membership from what the store holds to
    /// `delta`, and version bumps for the users whose `groups` change.
    /// Fails with 400 if an added member is not a user of this account.
    pub(crate) fn member_writes(&self, group: &str, delta: &MemberDelta, allow_native: bool) -> Result<(Vec<Write>, bool), ScimError> {
        let mut current: BTreeSet<String> = BTreeSet::new();
        if delta.clear {
            current.extend(self.member_ids(group)?);
        }
        let touched: Vec<&String> = delta.wish.keys().filter(|u| !current.contains(*u)).collect();
        if !touched.is_empty() {
            let edges = self.store().get_many(&touched.iter().map(|u| self.keys.member(group, u)).collect::<Vec<_>>())?;
            for (uid, edge) in touched.into_iter().zip(edges) {
                if edge.is_some() {
                    current.insert(uid.clone());
                }
            }
        }
        let desired = |uid: &String| -> bool { delta.wish.get(uid).copied().unwrap_or(!delta.clear) };
        let mut changed: Vec<(String, bool)> = Vec::new();
        for uid in &current {
            if !desired(uid) {
                changed.push((uid.clone(), false));
            }
        }
        for (uid, wish) in &delta.wish {
            if *wish && !current.contains(uid) {
                changed.push((uid.clone(), true));
            }
        }
        let mut writes = Vec::new();
        for chunk in changed.chunks(500) {
            let docs = self.store().get_many(&chunk.iter().map(|(u, _)| self.keys.user(u)).collect::<Vec<_>>())?;
            for ((uid, add), doc) in chunk.iter().zip(docs) {
                let visible = match &doc {
                    Some(d) => allow_native || !Stored::decode(d)?.prov.native,
                    None => false,
                };
                match (doc, add) {
                    (Some(_), true) if !visible => {
                        return Err(ScimError::invalid_value(format!("member {uid:?} is not a user of this account")));
                    }
                    (Some(doc), _) => {
                        // Rewriting the user gives it a new version (its `groups`
                        // changed) and, as a precondition, proves it still exists.
                        writes.push(Write::replace(doc.key.clone(), doc.value.clone(), doc.version));
                    }
                    (None, true) => {
                        return Err(ScimError::invalid_value(format!("member {uid:?} is not a user of this account")));
                    }
                    (None, false) => {}
                }
                if *add {
                    writes.push(Write::put(self.keys.member(group, uid), Vec::new()));
                    writes.push(Write::put(self.keys.membership(uid, group), Vec::new()));
                } else {
                    writes.push(Write::delete(self.keys.member(group, uid)));
                    writes.push(Write::delete(self.keys.membership(uid, group)));
                }
            }
        }
        if current.len() + changed.iter().filter(|(_, add)| *add).count() > MAX_MEMBERS {
            return Err(ScimError::invalid_value(format!("a group holds at most {MAX_MEMBERS} members")));
        }
        Ok((writes, !changed.is_empty()))
    }

    /// `POST /Groups`. The id is derived from displayName; when another
    /// group already has that identifier, a numbered suffix keeps both.
    pub(crate) fn create_group(&self, body: &Value, projection: &Projection) -> Result<Response, ScimError> {
        let (attrs, members) = Self::group_attrs(body)?;
        let name = attrs.get("displayName").and_then(Value::as_str).unwrap_or_default().to_owned();
        let base = derive_identifier(&name);
        let link = self.sees_native_groups()?;
        let mut suffix = 1usize;
        let (id, stored, version) = tenant::retry(|| {
            let now = self.now();
            if link {
                // Same-name policy `link`: a native group of this name is
                // taken over, its members replaced by the pushed ones.
                if let Some(native) = self.store().get(&self.keys.native_group_name(&name))? {
                    let id = String::from_utf8_lossy(&native.value).into_owned();
                    if let Some((old, version)) = self.load_group(&id)?.filter(|(g, _)| g.prov.native) {
                        let delta = MemberDelta { clear: true, wish: members.iter().map(|m| (m.clone(), true)).collect() };
                        return self.write_group(&id, &old, version, attrs.clone(), &delta, "group.takeover").map(|r| r.map(|(s, v)| (id.clone(), s, v)));
                    }
                }
            }
            let delta = MemberDelta { clear: false, wish: members.iter().map(|m| (m.clone(), true)).collect() };
            let id = if suffix == 1 { base.clone() } else { format!("{base}_{suffix}") };
            let stored = Stored { created: now, modified: now, attrs: attrs.clone(), prov: self.provenance() };
            let (index, uniques) = self.group_index_writes(&id, None, Some(&stored));
            let (edges, _) = self.member_writes(&id, &delta, false)?;
            let mut writes = vec![Write::create(self.keys.group(&id), stored.encode())];
            writes.extend(index);
            writes.extend(edges);
            let op = Op { name: "group.create", resource_type: "Group", resource_id: &id };
            match self.commit(op, writes) {
                Ok(v) => Ok(Ok((id, stored, v))),
                Err(StoreError::Conflict(0)) => {
                    suffix += 1;
                    Ok(Err(StoreError::Conflict(0)))
                }
                Err(StoreError::Conflict(i)) if uniques.hit(1, i).is_some() => Err(name_taken(&name)),
                Err(e) => Ok(Err(e)),
            }
        })?;
        self.group_response(201, &id, &stored, version, projection)
    }

    /// `GET /Groups/{id}`.
    pub(crate) fn get_group(&self, id: &str, projection: &Projection, if_none_match: Option<&str>) -> Result<Response, ScimError> {
        let (stored, version) = self.load_scim_group(id)?.ok_or_else(|| Self::group_not_found(id))?;
        if tenant::not_modified(if_none_match, version) {
            return Ok(Response::empty(304).with_header("etag", resource::Meta::etag(version)));
        }
        self.group_response(200, id, &stored, version, projection)
    }

    /// `PUT /Groups/{id}`: name, externalId and the full member list.
    pub(crate) fn replace_group(&self, id: &str, body: &Value, if_match: Option<&str>, projection: &Projection) -> Result<Response, ScimError> {
        let (attrs, members) = Self::group_attrs(body)?;
        let delta = MemberDelta { clear: true, wish: members.into_iter().map(|m| (m, true)).collect() };
        let (stored, version) = self.update_group(id, if_match, &delta, |_| Ok(attrs.clone()))?;
        self.group_response(200, id, &stored, version, projection)
    }

    /// `PATCH /Groups/{id}`; answers 204 as Entra prefers (RFC 7644 §3.5.2
    /// allows it), or 200 with the group when the client asks for
    /// attributes.
    pub(crate) fn patch_group(&self, id: &str, body: &Value, if_match: Option<&str>, projection: Option<&Projection>) -> Result<Response, ScimError> {
        let ops = patch::parse(&GROUP_TYPE, body)?;
        let (member_ops, attr_ops): (Vec<&Operation>, Vec<&Operation>) = ops.iter().partition(|op| op.path.attribute.name == "members" && op.path.extension.is_none());
        let delta = self.member_delta(id, &member_ops)?;
        let (stored, version) = self.update_group(id, if_match, &delta, |old| {
            let mut attrs = old.clone();
            for op in &attr_ops {
                patch::apply(&mut attrs, op)?;
            }
            let mut body = attrs;
            body.remove("members");
            let (attrs, _) = Self::group_attrs(&Value::Object(body))?;
            Ok(attrs)
        })?;
        match projection {
            Some(projection) => self.group_response(200, id, &stored, version, projection),
            None => Ok(Response::empty(204).with_header("etag", resource::Meta::etag(version))),
        }
    }

    /// Turns member operations into wishes, in order.
    fn member_delta(&self, group: &str, ops: &[&Operation]) -> Result<MemberDelta, ScimError> {
        let mut delta = MemberDelta::default();
        for op in ops {
            if op.path.sub.is_some() {
                return Err(ScimError::mutability("member sub-attributes cannot be changed; add or remove the member instead"));
            }
            match (op.kind, &op.path.filter) {
                (OpKind::Add, None) => {
                    for uid in member_values(op.value.as_ref())? {
                        delta.wish.insert(uid, true);
                    }
                }
                (OpKind::Replace, None) => {
                    delta.clear = true;
                    delta.wish.clear();
                    for uid in member_values(op.value.as_ref())? {
                        delta.wish.insert(uid, true);
                    }
                }
                (OpKind::Remove, None) => match &op.value {
                    // Quirk::RemoveWithValue (Entra's default removal).
                    Some(value) => {
                        for uid in member_values(Some(value))? {
                            delta.wish.insert(uid, false);
                        }
                    }
                    None => {
                        delta.clear = true;
                        delta.wish.clear();
                    }
                },
                (OpKind::Remove, Some(filter)) => match filter.required_equalities().as_deref() {
                    Some([("value", Value::String(uid))]) => {
                        delta.wish.insert(uid.clone(), false);
                    }
                    _ => {
                        // A general filter: evaluate it on the rendered members.
                        for member in self.render_members(group, false)? {
                            if filter.matches(&member)
                                && let Some(uid) = member.get("value").and_then(Value::as_str) {
                                    delta.wish.insert(uid.to_owned(), false);
                                }
                        }
                    }
                },
                (_, Some(_)) => {
                    return Err(ScimError::invalid_path("members[filter] can only be removed; add members by value"));
                }
            }
        }
        Ok(delta)
    }

    fn update_group(
        &self,
        id: &str,
        if_match: Option<&str>,
        delta: &MemberDelta,
        mut change: impl FnMut(&Map<String, Value>) -> Result<Map<String, Value>, ScimError>,
    ) -> Result<(Stored, u64), ScimError> {
        tenant::retry(|| {
            let (old, version) = self.load_scim_group(id)?.ok_or_else(|| Self::group_not_found(id))?;
            tenant::check_if_match(if_match, version)?;
            let attrs = change(&old.attrs)?;
            // A SCIM write to a native group (visible under `link`) takes
            // it over.
            let op = if old.prov.native { "group.takeover" } else { "group.update" };
            self.write_group(id, &old, version, attrs, delta, op)
        })
    }

    /// One SCIM write of a group: attributes, members, and provenance (a
    /// native group becomes SCIM-managed), in one commit.
    fn write_group(&self, id: &str, old: &Stored, version: u64, attrs: Map<String, Value>, delta: &MemberDelta, op: &str) -> Result<Result<(Stored, u64), StoreError>, ScimError> {
        let mut delta = std::borrow::Cow::Borrowed(delta);
        if old.prov.native {
            // Taken over: members that are still native users leave, so a
            // SCIM group only ever holds users SCIM manages.
            for uid in self.native_members(&self.member_ids(id)?)? {
                delta.to_mut().wish.entry(uid).or_insert(false);
            }
        }
        let (edges, members_changed) = self.member_writes(id, &delta, false)?;
        let mut prov = old.prov.clone();
        if prov.native {
            prov = self.provenance();
            prov.taken_over = Some(self.now());
        }
        if attrs == old.attrs && !members_changed && prov == old.prov {
            return Ok(Ok((old.clone(), version)));
        }
        let name = attrs.get("displayName").and_then(Value::as_str).unwrap_or_default().to_owned();
        let new = Stored { created: old.created, modified: self.now(), attrs, prov };
        let (index, uniques) = self.group_index_writes(id, Some(old), Some(&new));
        let mut writes = vec![Write::replace(self.keys.group(id), new.encode(), version)];
        writes.extend(index);
        writes.extend(edges);
        match self.commit(Op { name: op, resource_type: "Group", resource_id: id }, writes) {
            Ok(v) => Ok(Ok((new, v))),
            Err(StoreError::Conflict(i)) if uniques.hit(1, i).is_some() => Err(name_taken(&name)),
            Err(e) => Ok(Err(e)),
        }
    }

    /// Everything that goes with a group: record, indexes, every edge and
    /// its role bindings.
    pub(crate) fn group_removal_writes(&self, id: &str, group: &Stored, version: u64) -> Result<Vec<Write>, ScimError> {
        let mut writes = vec![Write::delete_at(self.keys.group(id), version)];
        writes.extend(self.group_index_writes(id, Some(group), None).0);
        for uid in self.member_ids(id)? {
            writes.push(Write::delete(self.keys.member(id, &uid)));
            writes.push(Write::delete(self.keys.membership(&uid, id)));
        }
        writes.extend(self.binding_removal_writes("group", id)?);
        Ok(writes)
    }

    /// `DELETE /Groups/{id}`: the group, its indexes and every edge in one
    /// commit. The users stay.
    pub(crate) fn delete_group(&self, id: &str, if_match: Option<&str>) -> Result<Response, ScimError> {
        tenant::retry(|| {
            // SCIM never deletes a native group, whatever the policy.
            let (old, version) = self.load_group(id)?.filter(|(g, _)| !g.prov.native).ok_or_else(|| Self::group_not_found(id))?;
            tenant::check_if_match(if_match, version)?;
            let writes = self.group_removal_writes(id, &old, version)?;
            Ok(self.commit(Op { name: "group.delete", resource_type: "Group", resource_id: id }, writes).map(|_| ()))
        })?;
        Ok(Response::empty(204))
    }

    /// `GET /Groups` (and `POST /Groups/.search`), in displayName order.
    pub(crate) fn list_groups(&self, query: &ListQuery) -> Result<Response, ScimError> {
        Ok(Response::scim_json(200, &list::list(&Groups(self), query)?))
    }
}

/// The groups of a tenant, as a listable collection.
pub(crate) struct Groups<'t, 'a, S, E>(pub(crate) &'t Tenant<'a, S, E>);

impl<S: Store, E: Env> Collection for Groups<'_, '_, S, E> {
    type Record = (Stored, u64);

    fn resource_type(&self) -> &'static crate::schema::ResourceType {
        &GROUP_TYPE
    }

    fn computed(&self) -> &'static str {
        "members"
    }

    fn order_prefix(&self) -> String {
        self.0.keys.group_names()
    }

    fn lookup(&self, hint: &IndexHint) -> Result<Option<Vec<String>>, ScimError> {
        let t = self.0;
        Ok(Some(match hint {
            IndexHint::DisplayName(v) => {
                let mut hit = t.store().get(&t.keys.group_name(v))?;
                if hit.is_none() && t.sees_native_groups()? {
                    // Under `link`, a push's lookup by name finds the native
                    // group it will take over.
                    hit = t.store().get(&t.keys.native_group_name(v))?;
                }
                hit.map(|e| String::from_utf8_lossy(&e.value).into_owned()).into_iter().collect()
            }
            IndexHint::Id(v) => vec![v.clone()],
            IndexHint::ExternalId(v) => t.ids_under(&t.keys.group_external_ids(v))?,
            IndexHint::Member(v) => t.ids_under(&t.keys.memberships(v))?,
            IndexHint::UserName(_) | IndexHint::Email(_) => return Ok(None),
        }))
    }

    fn load(&self, ids: &[String]) -> Result<Vec<Option<Loaded<Self::Record>>>, ScimError> {
        let t = self.0;
        let docs = t.store().get_many(&ids.iter().map(|id| t.keys.group(id)).collect::<Vec<_>>())?;
        let native_visible = t.sees_native_groups()?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, doc) in ids.iter().zip(docs) {
            let record = match doc {
                Some(d) => Some((Stored::decode(&d)?, d.version)).filter(|(g, _)| native_visible || !g.prov.native),
                None => None,
            };
            out.push(record.map(|record| Loaded { id: id.clone(), record }));
        }
        Ok(out)
    }

    fn render(&self, item: &Loaded<Self::Record>, computed: bool) -> Result<Value, ScimError> {
        self.0.render_group(&item.id, &item.record.0, item.record.1, computed)
    }

    fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<Vec<(String, String)>, ScimError> {
        Ok(self.0.store().scan(prefix, after, limit)?.into_iter().map(|e| (e.key, String::from_utf8_lossy(&e.value).into_owned())).collect())
    }
}

/// Member ids from a `members` value: a list of `{"value": id, …}` (or a
/// single one). `$ref`, `display` and `type` are informative and ignored.
fn member_values(value: Option<&Value>) -> Result<Vec<String>, ScimError> {
    let items: Vec<&Value> = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(single) => vec![single],
    };
    if items.len() > MAX_MEMBERS {
        return Err(ScimError::invalid_value(format!("a group holds at most {MAX_MEMBERS} members")));
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let id = match item {
            Value::Object(m) => m.iter().find(|(k, _)| k.eq_ignore_ascii_case("value")).and_then(|(_, v)| v.as_str()),
            Value::String(s) => Some(s.as_str()),
            _ => None,
        };
        match id {
            Some(id) if !id.is_empty() => out.push(id.to_owned()),
            _ => return Err(ScimError::invalid_value("each member needs a \"value\" holding the user's id")),
        }
    }
    Ok(out)
}

fn name_taken(name: &str) -> ScimError {
    ScimError::uniqueness(format!("a group named {name:?} already exists in this account (displayName is case-insensitive)"))
}

#[cfg(test)]
mod tests {
    use super::derive_identifier;

    #[test]
    fn identifiers_follow_the_platform_rules() {
        for (name, id) in [
            ("example-group", "example_group"),
            ("Eng Team.Alpha", "Eng_Team_Alpha"),
            ("Dev-Ops", "Dev_Ops"),
            ("Dev.Ops", "Dev_Ops"),
            ("Dev Ops", "Dev_Ops"),
            ("R&D (EU)", "RD_EU"),
            ("Ünïcode Grüppe", "Unicode_Gruppe"),
            ("$team", "team"),
            ("2024 Interns", "_Interns_455ca499"),
            ("2025 Interns", "_Interns_6aa44d9a"),
        ] {
            assert_eq!(derive_identifier(name), id, "{name}");
        }
        // Nothing survives but the hash.
        assert_eq!(derive_identifier("42").len(), 9);
        assert!(derive_identifier("!!!").starts_with("group_"));
        assert!(derive_identifier(&"x".repeat(500)).len() <= 128);
    }
}
