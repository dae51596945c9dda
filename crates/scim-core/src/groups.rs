//! The Group resource. A group is one record (displayName, externalId)
//! plus one edge record per member in each direction, so changing k members
//! costs O(k) whatever the group's size, and reading a group without its
//! members never touches them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

use crate::audit::{Action, Op};
use crate::env::Env;
use crate::error::ScimError;
use crate::filter::{Filter, IndexHint};
use crate::keys;
use crate::list::{self, Collection, ListQuery, Loaded};
use crate::outcome::{Outcome, Rendered};
use crate::patch::{self, OpKind, Operation};
use crate::resource::{self, Projection};
use crate::router::Body;
use crate::schema::{GROUP_TYPE, USER_TYPE};
use crate::store::{self, SCAN_PAGE, Store, StoreError, Write};
use crate::tenant::{self, IndexEntry, Plan, Refused, Stored, Tenant};

/// Most members one group may have: bounds the work of reading and
/// rendering a group.
pub(crate) const MAX_MEMBERS: usize = 100_000;
/// Writes one member change costs: both edges and the member's user record.
pub(crate) const WRITES_PER_MEMBER: usize = 3;
/// Room a commit keeps beside member changes: the group record, its
/// indexes, a tombstone and the audit record.
pub(crate) const RESERVED_WRITES: usize = 16;

/// The value of a membership edge: its group's generation (empty for 0,
/// the generation of records from before generations existed).
pub(crate) fn edge_value(generation: u64) -> Vec<u8> {
    if generation == 0 { Vec::new() } else { generation.to_string().into_bytes() }
}

/// The generation a membership edge belongs to.
pub(crate) fn edge_gen(value: &[u8]) -> u64 {
    std::str::from_utf8(value).ok().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// A planned membership change: its writes and the group's new count and
/// generation.
pub(crate) struct MemberPlan {
    pub(crate) writes: Vec<Write>,
    pub(crate) changed: bool,
    pub(crate) members: u64,
    pub(crate) generation: u64,
}

fn too_many_changes(budget: usize) -> ScimError {
    ScimError::invalid_value(format!(
        "one request may add or remove at most {budget} members; send the change as several PATCH requests"
    ))
}

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
    let hash = || -> String { crate::hex::encode(&Sha256::digest(trimmed.as_bytes())[..4]) };
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

    /// A group as SCIM sees it (see [`Tenant::scim_sees_group`]).
    fn load_scim_group(&self, id: &str) -> Result<Option<(Stored, u64)>, ScimError> {
        match self.load_group(id)? {
            Some((g, v)) if self.scim_sees_group(&g)? => Ok(Some((g, v))),
            _ => Ok(None),
        }
    }

    fn group_not_found(id: &str) -> ScimError {
        ScimError::not_found(format!("no group with id {id:?} in this account"))
    }

    /// Live member ids of a group at generation `generation`, in id order: edges
    /// of another generation are left over from a cleared or deleted
    /// incarnation, and users deleted but not yet swept out are gone.
    pub(crate) fn member_ids(&self, group: &str, generation: u64) -> Result<Vec<String>, ScimError> {
        let gone = self.deleted_users()?;
        let prefix = self.keys.members(group);
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store().scan(&prefix, after.as_deref(), SCAN_PAGE)?;
            for entry in &page.entries {
                if edge_gen(&entry.value) == generation {
                    let uid = keys::last_segment(&entry.key);
                    if !gone.contains(&uid) {
                        out.push(uid);
                    }
                }
            }
            if !page.more {
                return Ok(out);
            }
            after = page.entries.last().map(|e| e.key.clone());
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
    fn render_members(&self, group: &str, stored: &Stored) -> Result<Vec<Value>, ScimError> {
        let ids = self.visible_member_ids(stored, self.member_ids(group, stored.generation)?)?;
        Ok(self.member_values_json(ids))
    }

    /// Those of `candidates` that are live members of `group`, rendered:
    /// a read of one edge each, whatever the group's size.
    fn render_members_among(
        &self,
        group: &str,
        stored: &Stored,
        candidates: &[String],
    ) -> Result<Vec<Value>, ScimError> {
        let candidates: BTreeSet<&String> = candidates.iter().collect();
        let edges =
            store::get_all(self.store(), &candidates.iter().map(|u| self.keys.member(group, u)).collect::<Vec<_>>())?;
        let gone = self.deleted_users()?;
        let ids: Vec<String> = candidates
            .into_iter()
            .zip(edges)
            .filter(|(uid, edge)| {
                edge.as_ref().is_some_and(|e| edge_gen(&e.value) == stored.generation) && !gone.contains(*uid)
            })
            .map(|(uid, _)| uid.clone())
            .collect();
        Ok(self.member_values_json(self.visible_member_ids(stored, ids)?))
    }

    fn member_values_json(&self, ids: Vec<String>) -> Vec<Value> {
        ids.into_iter()
            .map(|uid| json!({"value": uid, "$ref": self.location(USER_TYPE.endpoint, &uid), "type": "User"}))
            .collect()
    }

    fn render_group(&self, id: &str, stored: &Stored, version: u64, with_members: bool) -> Result<Value, ScimError> {
        let members = if with_members { self.render_members(id, stored)? } else { Vec::new() };
        Ok(self.render_group_with(id, stored, version, members))
    }

    fn render_group_with(&self, id: &str, stored: &Stored, version: u64, members: Vec<Value>) -> Value {
        let mut computed = Vec::new();
        if !members.is_empty() {
            computed.push(("members", Value::Array(members)));
        }
        resource::render(
            &GROUP_TYPE,
            id,
            &stored.attrs,
            computed,
            &stored.meta(version),
            &self.location(GROUP_TYPE.endpoint, id),
        )
    }

    fn group_response(
        &self,
        status: u16,
        id: &str,
        stored: &Stored,
        version: u64,
        projection: &Projection,
    ) -> Result<Outcome, ScimError> {
        let streamed = projection.wants_whole("members");
        let body = projection
            .apply(&GROUP_TYPE, self.render_group(id, stored, version, projection.wants("members") && !streamed)?);
        let location = self.location(GROUP_TYPE.endpoint, id);
        let mut rendered = Rendered::json(status, id, Some(version), location, &body);
        if streamed {
            self.append_members(&mut rendered.body, id, stored)?;
        }
        Ok(Outcome::Resource(rendered))
    }

    /// Writes `"members": [...]` into a serialised group, straight from
    /// the member ids: a group of 100,000 members is about 15 MB of JSON,
    /// and as 100,000 JSON values it would not fit a component's memory.
    fn append_members(&self, body: &mut Vec<u8>, group: &str, stored: &Stored) -> Result<(), ScimError> {
        let ids = self.visible_member_ids(stored, self.member_ids(group, stored.generation)?)?;
        if ids.is_empty() || body.last() != Some(&b'}') {
            return Ok(());
        }
        let users = self.location(USER_TYPE.endpoint, "");
        body.pop();
        body.reserve(ids.len() * (users.len() + 2 * 40 + 40));
        body.extend_from_slice(br#","members":["#);
        for (i, uid) in ids.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(br#"{"value":"#);
            // Writing JSON strings into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *body, uid);
            body.extend_from_slice(br#","$ref":"#);
            let _ = serde_json::to_writer(&mut *body, &format!("{users}{uid}"));
            body.extend_from_slice(br#","type":"User"}"#);
        }
        body.extend_from_slice(b"]}");
        Ok(())
    }

    /// Index writes for a group, the unique name first. Native groups have
    /// a name index of their own, out of SCIM's sight.
    pub(crate) fn group_index_writes(&self, id: &str, old: Option<&Stored>, new: Option<&Stored>) -> Plan {
        let index = |group: &Stored| -> Vec<IndexEntry> {
            let mut out = Vec::new();
            let attrs = &group.attrs;
            if let Some(name) = attrs.get("displayName").and_then(Value::as_str) {
                let key =
                    if group.prov.native { self.keys.native_group_name(name) } else { self.keys.group_name(name) };
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

    /// Most members one request may add or remove: every change costs
    /// [`WRITES_PER_MEMBER`] writes, and the whole request is one commit
    /// that every store must accept.
    pub(crate) fn member_change_budget(&self) -> usize {
        self.store().limits().commit_writes.saturating_sub(RESERVED_WRITES) / WRITES_PER_MEMBER
    }

    /// Edge writes that take the membership of `group` (stored as `old`,
    /// or about to be created at generation `generation`) to `delta`, and version
    /// bumps for the users whose `groups` change. Fails with 400 if an
    /// added member is not a user of this account, if the group would
    /// exceed [`MAX_MEMBERS`], or if the change is larger than one request
    /// may make.
    ///
    /// Clearing a large group (a `replace` or a remove of all members) is
    /// not a removal per member: the group moves to a new generation that
    /// holds just the wished members, in one commit whatever the group's
    /// size, and a tombstone schedules the old edges for bounded clean-up.
    pub(crate) fn member_writes(
        &self,
        group: &str,
        old: Option<&Stored>,
        generation: u64,
        delta: &MemberDelta,
        allow_native: bool,
    ) -> Result<MemberPlan, ScimError> {
        let budget = self.member_change_budget();
        let mut generation = generation;
        let mut count = match old {
            None => 0,
            Some(Stored { members: Some(n), .. }) => *n,
            Some(g) => self.member_ids(group, g.generation)?.len() as u64,
        };
        let mut current: BTreeSet<String> = BTreeSet::new();
        let mut new_generation = false;
        if delta.clear {
            current.extend(self.member_ids(group, generation)?);
            let adds = delta.wish.iter().filter(|(u, wish)| **wish && !current.contains(*u)).count();
            let removes = current.iter().filter(|u| delta.wish.get(*u) != Some(&true)).count();
            if adds + removes > budget && !current.is_empty() {
                generation = self.new_generation();
                new_generation = true;
                current.clear();
                count = 0;
            }
        }
        let touched: Vec<&String> = delta.wish.keys().filter(|u| !current.contains(*u)).collect();
        if !touched.is_empty() && !new_generation {
            if touched.len() > budget {
                return Err(too_many_changes(budget));
            }
            let edges =
                self.store().get_many(&touched.iter().map(|u| self.keys.member(group, u)).collect::<Vec<_>>())?;
            let gone = self.deleted_users()?;
            for (uid, edge) in touched.into_iter().zip(edges) {
                if edge.is_some_and(|e| edge_gen(&e.value) == generation) && !gone.contains(uid) {
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
        if changed.len() > budget {
            return Err(too_many_changes(budget));
        }
        let added = changed.iter().filter(|(_, add)| *add).count() as u64;
        count = (count + added).saturating_sub(changed.len() as u64 - added);
        if count > MAX_MEMBERS as u64 {
            return Err(ScimError::invalid_value(format!("a group holds at most {MAX_MEMBERS} members")));
        }
        let mut writes = Vec::new();
        let docs = store::get_all(self.store(), &changed.iter().map(|(u, _)| self.keys.user(u)).collect::<Vec<_>>())?;
        for ((uid, add), doc) in changed.iter().zip(docs) {
            let visible = match &doc {
                Some(d) => allow_native || self.scim_sees_user(&Stored::decode(d)?),
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
                writes.push(Write::put(self.keys.member(group, uid), edge_value(generation)));
                writes.push(Write::put(self.keys.membership(uid, group), edge_value(generation)));
            } else {
                writes.push(Write::delete(self.keys.member(group, uid)));
                writes.push(Write::delete(self.keys.membership(uid, group)));
            }
        }
        if new_generation {
            writes.push(Write::put(self.keys.group_tombstone(group), Vec::new()));
        }
        Ok(MemberPlan { writes, changed: new_generation || !changed.is_empty(), members: count, generation })
    }

    /// `POST /Groups`. The policy names the id (the default derives it from
    /// displayName; when another group already has that identifier, a
    /// numbered suffix keeps both), or it is a random UUID.
    pub(crate) fn create_group(&self, body: &Body<'_>, projection: &Projection) -> Result<Outcome, ScimError> {
        self.audited(Action::GroupCreate, "", || {
            let (attrs, members) = group_attrs(&body.json()?)?;
            let name = attrs.get("displayName").and_then(Value::as_str).unwrap_or_default().to_owned();
            let base = self.service.config().policy().group_id(&name);
            let mut suffix = 1usize;
            let (id, stored, version) = tenant::retry(self.service.env(), || {
                let now = self.now();
                // A native group this push takes over: its members become the
                // pushed ones.
                if let Some((id, old, version)) = self.group_to_take_over(&name)? {
                    let delta = MemberDelta { clear: true, wish: members.iter().map(|m| (m.clone(), true)).collect() };
                    return self
                        .write_group(&id, &old, version, attrs.clone(), &delta, Action::GroupTakeover)
                        .map(|r| r.map(|(s, v)| (id.clone(), s, v)));
                }
                let delta = MemberDelta { clear: false, wish: members.iter().map(|m| (m.clone(), true)).collect() };
                let id = match &base {
                    Some(base) if suffix == 1 => base.clone(),
                    Some(base) => format!("{base}_{suffix}"),
                    None => crate::accounts::new_uuid(self.service.env()),
                };
                // A fresh generation: edges a deleted group of this id left
                // behind (not swept yet) never show in the new one.
                let plan = self.member_writes(&id, None, self.new_generation(), &delta, false)?;
                let stored = Stored {
                    created: now,
                    modified: now,
                    attrs: attrs.clone(),
                    prov: self.provenance(),
                    generation: plan.generation,
                    members: Some(plan.members),
                };
                let mut commit = Plan::default();
                commit.reserve("identifier", Write::create(self.keys.group(&id), stored.encode()));
                commit.append(self.group_index_writes(&id, None, Some(&stored)));
                commit.extend(plan.writes);
                let op = Op::new(Action::GroupCreate, &id);
                match self.commit_plan(op, commit) {
                    Ok(v) => Ok(Ok((id, stored, v))),
                    // The identifier derived from the name is another group's:
                    // the next attempt derives the next one (`_2`, `_3` …).
                    Err(Refused::Taken("identifier")) => {
                        suffix += 1;
                        Ok(Err(StoreError::Conflict(0)))
                    }
                    Err(Refused::Taken(_)) => Err(name_taken(&name)),
                    Err(Refused::Store(e)) => Ok(Err(e)),
                }
            })?;
            self.group_response(201, &id, &stored, version, projection)
        })
    }

    /// `GET /Groups/{id}`.
    pub(crate) fn get_group(
        &self,
        id: &str,
        projection: &Projection,
        if_none_match: Option<&str>,
    ) -> Result<Outcome, ScimError> {
        let (stored, version) = self.load_scim_group(id)?.ok_or_else(|| Self::group_not_found(id))?;
        if tenant::not_modified(if_none_match, version) {
            return Ok(Outcome::NotModified { version });
        }
        self.group_response(200, id, &stored, version, projection)
    }

    /// `PUT /Groups/{id}`: name, externalId and the full member list.
    pub(crate) fn replace_group(
        &self,
        id: &str,
        body: &Body<'_>,
        if_match: Option<&str>,
        projection: &Projection,
    ) -> Result<Outcome, ScimError> {
        self.audited(Action::GroupReplace, id, || {
            let (attrs, members) = group_attrs(&body.json()?)?;
            let delta = MemberDelta { clear: true, wish: members.into_iter().map(|m| (m, true)).collect() };
            let (stored, version) =
                self.update_group(id, Action::GroupReplace, if_match, &delta, |_| Ok(attrs.clone()))?;
            self.group_response(200, id, &stored, version, projection)
        })
    }

    /// `PATCH /Groups/{id}`; answers 204 as Entra prefers (RFC 7644 §3.5.2
    /// allows it), or 200 with the group when the client asks for
    /// attributes.
    pub(crate) fn patch_group(
        &self,
        id: &str,
        body: &Body<'_>,
        if_match: Option<&str>,
        projection: Option<&Projection>,
    ) -> Result<Outcome, ScimError> {
        self.audited(Action::GroupUpdate, id, || {
            let ops = patch::parse(&GROUP_TYPE, &body.json()?)?;
            let (member_ops, attr_ops): (Vec<&Operation>, Vec<&Operation>) =
                ops.iter().partition(|op| op.path.attribute.name == "members" && op.path.extension.is_none());
            let delta = self.member_delta(id, &member_ops)?;
            let (stored, version) = self.update_group(id, Action::GroupUpdate, if_match, &delta, |old| {
                let mut attrs = old.clone();
                for op in &attr_ops {
                    patch::apply(&mut attrs, op)?;
                }
                let mut body = attrs;
                body.remove("members");
                let (attrs, _) = group_fields(&Value::Object(body))?;
                Ok(attrs)
            })?;
            match projection {
                Some(projection) => self.group_response(200, id, &stored, version, projection),
                None => Ok(Outcome::Written {
                    id: id.to_owned(),
                    version,
                    location: self.location(GROUP_TYPE.endpoint, id),
                }),
            }
        })
    }

    /// Turns member operations into wishes, in order.
    fn member_delta(&self, group: &str, ops: &[&Operation]) -> Result<MemberDelta, ScimError> {
        let mut delta = MemberDelta::default();
        for op in ops {
            if op.path.sub.is_some() {
                return Err(ScimError::mutability(
                    "member sub-attributes cannot be changed; add or remove the member instead",
                ));
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
                    // Quirk::RemoveWithValue (Entra's default removal), as
                    // patch::remove_listed does for stored attributes: members
                    // are edges, not an attribute.
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
                        let (stored, _) = self.load_scim_group(group)?.ok_or_else(|| Self::group_not_found(group))?;
                        for member in self.render_members(group, &stored)? {
                            if filter.matches(&member)
                                && let Some(uid) = member.get("value").and_then(Value::as_str)
                            {
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

    /// A SCIM write of a group, audited as `name` (as the router audits a
    /// refusal of the same request), or `group.takeover` of a native group.
    fn update_group(
        &self,
        id: &str,
        action: Action,
        if_match: Option<&str>,
        delta: &MemberDelta,
        mut change: impl FnMut(&Map<String, Value>) -> Result<Map<String, Value>, ScimError>,
    ) -> Result<(Stored, u64), ScimError> {
        tenant::retry(self.service.env(), || {
            let (old, version) = self.load_scim_group(id)?.ok_or_else(|| Self::group_not_found(id))?;
            tenant::check_if_match(if_match, version)?;
            let attrs = change(&old.attrs)?;
            let op = if self.takes_over(&old) { Action::GroupTakeover } else { action };
            self.write_group(id, &old, version, attrs, delta, op)
        })
    }

    /// One SCIM write of a group: attributes, members, and provenance (a
    /// native group becomes SCIM-managed), in one commit.
    fn write_group(
        &self,
        id: &str,
        old: &Stored,
        version: u64,
        attrs: Map<String, Value>,
        delta: &MemberDelta,
        action: Action,
    ) -> Result<Result<(Stored, u64), StoreError>, ScimError> {
        let mut delta = std::borrow::Cow::Borrowed(delta);
        let mut prov = old.prov.clone();
        if self.takes_over(old) {
            self.take_over_group(id, old, delta.to_mut(), &mut prov)?;
        }
        let plan = self.member_writes(id, Some(old), old.generation, &delta, false)?;
        let members_changed = plan.changed;
        if attrs == old.attrs && !members_changed && prov == old.prov {
            return Ok(Ok((old.clone(), version)));
        }
        let name = attrs.get("displayName").and_then(Value::as_str).unwrap_or_default().to_owned();
        let new = Stored {
            created: old.created,
            modified: self.now(),
            attrs,
            prov,
            generation: plan.generation,
            members: Some(plan.members),
        };
        let mut commit = Plan::default();
        commit.write(Write::replace(self.keys.group(id), new.encode(), version));
        commit.append(self.group_index_writes(id, Some(old), Some(&new)));
        commit.extend(plan.writes);
        match self.commit_plan(Op::new(action, id), commit) {
            Ok(v) => Ok(Ok((new, v))),
            Err(Refused::Taken(_)) => Err(name_taken(&name)),
            Err(Refused::Store(e)) => Ok(Err(e)),
        }
    }

    /// Everything that goes with a group: record, indexes, role bindings
    /// and every edge. Edges that do not fit the commit stay behind a
    /// tombstone for the sweeper: no group record names their generation
    /// any more, so from this commit on nothing shows them.
    pub(crate) fn group_removal_writes(&self, id: &str, group: &Stored, version: u64) -> Result<Vec<Write>, ScimError> {
        let mut writes = vec![Write::delete_at(self.keys.group(id), version)];
        writes.extend(self.group_index_writes(id, Some(group), None).into_writes());
        writes.extend(self.binding_removal_writes("group", id)?);
        let room = self.store().limits().commit_writes.saturating_sub(writes.len() + RESERVED_WRITES) / 2;
        let (edges, more) = store::scan_all(self.store(), &self.keys.members(id), room)?;
        if more {
            writes.push(Write::put(self.keys.group_tombstone(id), Vec::new()));
        } else {
            for edge in edges {
                let uid = keys::last_segment(&edge.key);
                writes.push(Write::delete(self.keys.membership(&uid, id)));
                writes.push(Write::delete(edge.key));
            }
        }
        Ok(writes)
    }

    /// `DELETE /Groups/{id}`: the group, its indexes and its edges in one
    /// commit (a huge group's edges vanish at once and are swept later).
    /// The users stay.
    pub(crate) fn delete_group(&self, id: &str, if_match: Option<&str>) -> Result<Outcome, ScimError> {
        self.audited(Action::GroupDelete, id, || {
            tenant::retry(self.service.env(), || {
                let (old, version) = self
                    .load_group(id)?
                    .filter(|(g, _)| self.scim_may_delete_group(g))
                    .ok_or_else(|| Self::group_not_found(id))?;
                tenant::check_if_match(if_match, version)?;
                let writes = self.group_removal_writes(id, &old, version)?;
                Ok(self.commit(Op::new(Action::GroupDelete, id), writes).map(|_| ()))
            })?;
            Ok(Outcome::Deleted)
        })
    }

    /// `GET /Groups` (and `POST /Groups/.search`), in displayName order.
    pub(crate) fn list_groups(&self, query: &ListQuery) -> Result<Outcome, ScimError> {
        Ok(Outcome::Document(list::list(&Groups(self), query)?))
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
            IndexHint::Member(v) => t.groups_of(v)?.into_iter().map(|(gid, _)| gid).collect(),
            IndexHint::DisplayNamePrefix(v) => t.ids_in_range(&t.keys.group_name(v))?,
            IndexHint::UserName(_) | IndexHint::Email(_) | IndexHint::UserNamePrefix(_) => return Ok(None),
        }))
    }

    fn count(&self) -> Result<Option<usize>, ScimError> {
        self.0.count("groups")
    }

    fn order_range(&self, hint: &IndexHint) -> Option<String> {
        match hint {
            IndexHint::DisplayNamePrefix(v) => Some(self.0.keys.group_name(v)),
            _ => None,
        }
    }

    fn load(&self, ids: &[String]) -> Result<Vec<Option<Loaded<Self::Record>>>, ScimError> {
        let t = self.0;
        let docs = t.store().get_many(&ids.iter().map(|id| t.keys.group(id)).collect::<Vec<_>>())?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, doc) in ids.iter().zip(docs) {
            let record = match doc {
                Some(d) => {
                    let group = Stored::decode(&d)?;
                    t.scim_sees_group(&group)?.then_some((group, d.version))
                }
                None => None,
            };
            out.push(record.map(|record| Loaded { id: id.clone(), record }));
        }
        Ok(out)
    }

    fn render(&self, item: &Loaded<Self::Record>, computed: bool) -> Result<Value, ScimError> {
        self.0.render_group(&item.id, &item.record.0, item.record.1, computed)
    }

    /// `members[value eq "u"]` (Entra's and Okta's membership checks)
    /// reads the edges of the users named, never the whole member list.
    fn render_for_filter(&self, item: &Loaded<Self::Record>, filter: &Filter) -> Result<(Value, bool), ScimError> {
        let (stored, version) = &item.record;
        match filter.compared_values("members") {
            Some(values) => {
                let members = self.0.render_members_among(&item.id, stored, &values)?;
                Ok((self.0.render_group_with(&item.id, stored, *version, members), false))
            }
            None => Ok((self.render(item, true)?, true)),
        }
    }

    fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<(Vec<(String, String)>, bool), ScimError> {
        self.0.scan_order_index(prefix, after, limit)
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
    ScimError::uniqueness(format!(
        "a group named {name:?} already exists in this account (displayName is case-insensitive)"
    ))
}

/// Splits a full group body (a create or a replacement) into stored
/// attributes and member ids.
pub(crate) fn group_attrs(body: &Value) -> Result<(Map<String, Value>, Vec<String>), ScimError> {
    resource::require_schemas(&GROUP_TYPE, body)?;
    group_fields(body)
}

/// The rules of a group's attributes, also for the result of a PATCH
/// (which carries no `schemas`).
fn group_fields(body: &Value) -> Result<(Map<String, Value>, Vec<String>), ScimError> {
    let mut attrs = resource::normalize(&GROUP_TYPE, body)?;
    let members = member_values(attrs.remove("members").as_ref())?;
    match attrs.get("displayName").and_then(Value::as_str) {
        Some(name) if !name.trim().is_empty() && name.len() <= 1024 => Ok((attrs, members)),
        Some(name) if name.len() > 1024 => Err(ScimError::invalid_value("displayName is longer than 1024 bytes")),
        _ => Err(ScimError::invalid_value("displayName is required and must be a non-empty string")),
    }
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
