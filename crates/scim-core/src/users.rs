//! The User resource: create, read, list, replace, patch, delete.
//!
//! A user is one record plus index records (unique case-insensitive
//! userName, externalId, e-mails), all changed in one atomic commit; group
//! memberships are edge records owned by the group service.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::audit::{Action, Op};
use crate::env::Env;
use crate::error::ScimError;
use crate::filter::IndexHint;
use crate::groups::{self, RESERVED_WRITES, WRITES_PER_MEMBER};
use crate::keys;
use crate::list::{self, Collection, ListQuery, Loaded, MAX_SCAN, too_many_to_examine};
use crate::outcome::{Outcome, Rendered};
use crate::patch;
use crate::resource::{self, Projection};
use crate::router::Body;
use crate::schema::{GROUP_TYPE, USER_TYPE};
use crate::store::{self, Entry, Store, StoreError, Write};
use crate::tenant::{self, IndexEntry, Plan, Refused, Stored, Tenant};

impl<S: Store, E: Env> Tenant<'_, S, E> {
    pub(crate) fn load_user(&self, id: &str) -> Result<Option<(Stored, u64)>, ScimError> {
        match self.store().get(&self.keys.user(id))? {
            Some(entry) => Ok(Some((Stored::decode(&entry)?, entry.version))),
            None => Ok(None),
        }
    }

    /// A user as SCIM sees it (see [`Tenant::scim_sees_user`]).
    fn load_scim_user(&self, id: &str) -> Result<Option<(Stored, u64)>, ScimError> {
        Ok(self.load_user(id)?.filter(|(u, _)| self.scim_sees_user(u)))
    }

    fn user_not_found(id: &str) -> ScimError {
        ScimError::not_found(format!("no user with id {id:?} in this account"))
    }

    /// Index records a user calls for. A native user has only its login;
    /// the SCIM indexes (userName, externalId, e-mails) hold SCIM users
    /// alone, which is what keeps native users out of SCIM lists.
    pub(crate) fn user_index(&self, id: &str, user: &Stored) -> Vec<IndexEntry> {
        let mut out = Vec::new();
        // The login reservation goes last: when a userName is both taken and
        // the login of its holder, the client hears about the userName.
        let login = user.prov.login.as_ref().map(|l| (self.keys.login(l), id.as_bytes().to_vec(), Some("login")));
        if user.prov.native {
            return login.into_iter().collect();
        }
        let attrs = &user.attrs;
        if let Some(name) = attrs.get("userName").and_then(Value::as_str) {
            out.push((self.keys.user_name(name), id.as_bytes().to_vec(), Some("userName")));
        }
        if let Some(ext) = attrs.get("externalId").and_then(Value::as_str) {
            out.push((format!("{}{}", self.keys.user_external_ids(ext), keys::segment(id)), Vec::new(), None));
        }
        let mut emails = BTreeSet::new();
        for email in attrs.get("emails").and_then(Value::as_array).into_iter().flatten() {
            if let Some(v) = email.get("value").and_then(Value::as_str) {
                emails.insert(format!("{}{}", self.keys.user_emails(v), keys::segment(id)));
            }
        }
        out.extend(emails.into_iter().map(|k| (k, Vec::new(), None)));
        out.extend(login);
        out
    }

    /// Writes that move the indexes from `old` to `new`, with the positions
    /// of new unique reservations so a conflict on one is recognisable.
    pub(crate) fn user_index_writes(&self, id: &str, old: Option<&Stored>, new: Option<&Stored>) -> Plan {
        let old = old.map(|u| self.user_index(id, u)).unwrap_or_default();
        let new = new.map(|u| self.user_index(id, u)).unwrap_or_default();
        tenant::index_writes(&old, &new)
    }

    /// Everything that goes when a user leaves the account: the record, its
    /// indexes, its role bindings and its memberships (the groups it left
    /// get a new version). A user in more groups than one commit can
    /// update leaves a tombstone instead: group listings skip its edges
    /// from this commit on, and the sweeper takes it out of its groups in
    /// bounded steps.
    pub(crate) fn user_removal_writes(&self, id: &str, user: &Stored, version: u64) -> Result<Vec<Write>, ScimError> {
        let mut writes = vec![Write::delete_at(self.keys.user(id), version)];
        writes.extend(self.user_index_writes(id, Some(user), None).into_writes());
        writes.extend(self.binding_removal_writes("user", id)?);
        let room =
            self.store().limits().commit_writes.saturating_sub(writes.len() + RESERVED_WRITES) / WRITES_PER_MEMBER;
        let (edges, more) = store::scan_all(self.store(), &self.keys.memberships(id), room)?;
        if more {
            writes.push(Write::put(self.keys.user_tombstone(id), Vec::new()));
            return Ok(writes);
        }
        writes.extend(self.leave_groups(id, &edges)?);
        Ok(writes)
    }

    /// Writes that take user `id` out of the groups its reverse `edges`
    /// name: both edges go, and each group it was a live member of gets a
    /// new version and one member less.
    pub(crate) fn leave_groups(&self, id: &str, edges: &[Entry]) -> Result<Vec<Write>, ScimError> {
        let group_ids: Vec<String> = edges.iter().map(|e| keys::last_segment(&e.key)).collect();
        let groups = store::get_all(self.store(), &group_ids.iter().map(|g| self.keys.group(g)).collect::<Vec<_>>())?;
        let now = self.now();
        let mut writes = Vec::new();
        for ((gid, edge), group) in group_ids.iter().zip(edges).zip(groups) {
            writes.push(Write::delete_at(edge.key.clone(), edge.version));
            writes.push(Write::delete(self.keys.member(gid, id)));
            if let Some(entry) = group {
                let mut g = Stored::decode(&entry)?;
                if g.generation == groups::edge_gen(&edge.value) {
                    g.modified = now;
                    g.members = g.members.map(|n| n.saturating_sub(1));
                    writes.push(Write::replace(entry.key.clone(), g.encode(), entry.version));
                }
            }
        }
        Ok(writes)
    }

    /// The groups user `id` is a live member of, in id order, with their
    /// records: reverse edges whose generation is still their group's.
    pub(crate) fn groups_of(&self, id: &str) -> Result<Vec<(String, Stored)>, ScimError> {
        let edges = self.examinable(&self.keys.memberships(id))?;
        let group_ids: Vec<String> = edges.iter().map(|e| keys::last_segment(&e.key)).collect();
        let docs = store::get_all(self.store(), &group_ids.iter().map(|g| self.keys.group(g)).collect::<Vec<_>>())?;
        let mut out = Vec::new();
        for ((gid, edge), doc) in group_ids.into_iter().zip(&edges).zip(docs) {
            if let Some(doc) = doc {
                let group = Stored::decode(&doc)?;
                if group.generation == groups::edge_gen(&edge.value) {
                    out.push((gid, group));
                }
            }
        }
        Ok(out)
    }

    /// The user's `groups` attribute.
    fn user_groups(&self, id: &str) -> Result<Vec<Value>, ScimError> {
        let mut out = Vec::new();
        for (gid, stored) in self.groups_of(id)? {
            let gid = &gid;
            if !self.listed_in_user_groups(&stored) {
                continue;
            }
            out.push(json!({
                "value": gid,
                "$ref": self.location(GROUP_TYPE.endpoint, gid),
                "display": stored.attrs.get("displayName").cloned().unwrap_or(Value::Null),
                "type": "direct",
            }));
        }
        Ok(out)
    }

    fn render_user(&self, id: &str, stored: &Stored, version: u64, with_groups: bool) -> Result<Value, ScimError> {
        let mut computed = Vec::new();
        if with_groups {
            let groups = self.user_groups(id)?;
            if !groups.is_empty() {
                computed.push(("groups", Value::Array(groups)));
            }
        }
        Ok(resource::render(
            &USER_TYPE,
            id,
            &stored.attrs,
            computed,
            &stored.meta(version),
            &self.location(USER_TYPE.endpoint, id),
        ))
    }

    fn user_response(
        &self,
        status: u16,
        id: &str,
        stored: &Stored,
        version: u64,
        projection: &Projection,
        may_have_groups: bool,
    ) -> Result<Outcome, ScimError> {
        let with_groups = may_have_groups && projection.wants("groups");
        let body = projection.apply(&USER_TYPE, self.render_user(id, stored, version, with_groups)?);
        let location = self.location(USER_TYPE.endpoint, id);
        Ok(Outcome::Resource(Rendered::json(status, id, Some(version), location, &body)))
    }

    /// `POST /Users`.
    pub(crate) fn create_user(&self, body: &Body<'_>, projection: &Projection) -> Result<Outcome, ScimError> {
        self.audited(Action::UserCreate, "", || {
            let mut attrs = user_attrs(&body.json()?)?;
            // RFC 7643 leaves `active` without a default; clients (Okta) read a
            // missing one as inactive, so a new user is active unless told.
            attrs.entry("active").or_insert(Value::Bool(true));
            // `taken_over`: whether the user existed (a native one) and so may
            // be in groups; a new user is in none, and its answer reads no edge.
            let (id, stored, version, taken_over) = tenant::retry(self.service.env(), || {
                let now = self.now();
                // Migration: an existing native user with this identity is taken
                // over (same id, memberships and role bindings), not duplicated.
                if let Some((id, native, version)) = self.user_to_take_over(&attrs)? {
                    let new = self.taken_over_user(&native, attrs.clone(), now);
                    let mut plan = Plan::default();
                    plan.write(Write::replace(self.keys.user(&id), new.encode(), version));
                    plan.append(self.user_index_writes(&id, Some(&native), Some(&new)));
                    let op = Op::new(Action::UserTakeover, &id);
                    return match self.commit_plan(op, plan) {
                        Ok(v) => Ok(Ok((id, new, v, true))),
                        Err(Refused::Taken(what)) => Err(conflict(&new, what)),
                        Err(Refused::Store(e)) => Ok(Err(e)),
                    };
                }
                let id = crate::accounts::new_uuid(self.service.env());
                let mut prov = self.provenance();
                prov.login = self.service.config().policy().login(&attrs);
                let new = Stored { created: now, modified: now, attrs: attrs.clone(), prov, ..Stored::default() };
                let mut plan = Plan::default();
                // A random id that exists already is a lost race: drawn again.
                plan.write(Write::create(self.keys.user(&id), new.encode()));
                plan.append(self.user_index_writes(&id, None, Some(&new)));
                let op = Op::new(Action::UserCreate, &id);
                match self.commit_plan(op, plan) {
                    Ok(v) => Ok(Ok((id, new, v, false))),
                    // An admin created this login since we looked: go round
                    // again, and the next attempt takes that user over.
                    Err(Refused::Taken("login")) if self.user_to_take_over(&attrs)?.is_some() => {
                        Ok(Err(StoreError::Conflict(0)))
                    }
                    Err(Refused::Taken(what)) => Err(conflict(&new, what)),
                    Err(Refused::Store(e)) => Ok(Err(e)),
                }
            })?;
            self.user_response(201, &id, &stored, version, projection, taken_over)
        })
    }

    /// `GET /Users/{id}`.
    pub(crate) fn get_user(
        &self,
        id: &str,
        projection: &Projection,
        if_none_match: Option<&str>,
    ) -> Result<Outcome, ScimError> {
        let (stored, version) = self.load_scim_user(id)?.ok_or_else(|| Self::user_not_found(id))?;
        if tenant::not_modified(if_none_match, version) {
            return Ok(Outcome::NotModified { version });
        }
        self.user_response(200, id, &stored, version, projection, true)
    }

    /// `PUT /Users/{id}`: the body replaces every writable attribute.
    pub(crate) fn replace_user(
        &self,
        id: &str,
        body: &Body<'_>,
        if_match: Option<&str>,
        projection: &Projection,
    ) -> Result<Outcome, ScimError> {
        self.audited(Action::UserReplace, id, || {
            let mut attrs = user_attrs(&body.json()?)?;
            self.update_user(id, Action::UserReplace, if_match, projection, move |old| {
                // `active` omitted from a full replacement keeps its value, so an
                // update that does not mention it cannot disable a user.
                if !attrs.contains_key("active")
                    && let Some(active) = old.get("active")
                {
                    attrs.insert("active".into(), active.clone());
                }
                Ok(attrs.clone())
            })
        })
    }

    /// `PATCH /Users/{id}`.
    pub(crate) fn patch_user(
        &self,
        id: &str,
        body: &Body<'_>,
        if_match: Option<&str>,
        projection: &Projection,
    ) -> Result<Outcome, ScimError> {
        self.audited(Action::UserUpdate, id, || {
            let ops = patch::parse(&USER_TYPE, &body.json()?)?;
            self.update_user(id, Action::UserUpdate, if_match, projection, |old| {
                let mut attrs = old.clone();
                for op in &ops {
                    patch::apply(&mut attrs, op)?;
                }
                // Re-validate the whole result: PATCH must not produce what a PUT
                // would refuse.
                let mut attrs = resource::normalize(&USER_TYPE, &Value::Object(attrs))?;
                validate_user(&mut attrs)?;
                Ok(attrs)
            })
        })
    }

    /// One SCIM write of a user, audited as `name` (the router audits a
    /// refusal of the same request under the same name), or as
    /// `user.deactivate`/`user.remove` when it deactivates the user.
    fn update_user(
        &self,
        id: &str,
        action: Action,
        if_match: Option<&str>,
        projection: &Projection,
        mut change: impl FnMut(&Map<String, Value>) -> Result<Map<String, Value>, ScimError>,
    ) -> Result<Outcome, ScimError> {
        let removes = self.deactivation_removes()?;
        let (stored, version, removed) = tenant::retry(self.service.env(), || {
            let (old, version) = self.load_scim_user(id)?.ok_or_else(|| Self::user_not_found(id))?;
            tenant::check_if_match(if_match, version)?;
            let attrs = change(&old.attrs)?;
            let mut prov = old.prov.clone();
            prov.login = self.login_after_update(&old, &attrs)?;
            if attrs == old.attrs && prov == old.prov {
                return Ok(Ok((old, version, false)));
            }
            let new = Stored { created: old.created, modified: self.now(), attrs, prov, ..old.clone() };
            let deactivated = is_active(&old.attrs) && !is_active(&new.attrs);
            if deactivated && removes {
                // The account's policy: leaving the identity provider's
                // assignment removes the user, as a DELETE would.
                let writes = self.user_removal_writes(id, &old, version)?;
                let op = Op::new(Action::UserRemove, id);
                return Ok(self.commit(op, writes).map(|v| (new, v, true)));
            }
            let mut plan = Plan::default();
            plan.write(Write::replace(self.keys.user(id), new.encode(), version));
            plan.append(self.user_index_writes(id, Some(&old), Some(&new)));
            let op = Op::new(if deactivated { Action::UserDeactivate } else { action }, id);
            match self.commit_plan(op, plan) {
                Ok(v) => Ok(Ok((new, v, false))),
                Err(Refused::Taken(what)) => Err(conflict(&new, what)),
                Err(Refused::Store(e)) => Ok(Err(e)),
            }
        })?;
        if removed {
            // The user is gone: its last state, without an ETag for a
            // resource that no longer exists.
            let body = projection.apply(&USER_TYPE, self.render_user(id, &stored, version, false)?);
            let location = self.location(USER_TYPE.endpoint, id);
            return Ok(Outcome::Resource(Rendered::json(200, id, None, location, &body)));
        }
        self.user_response(200, id, &stored, version, projection, true)
    }

    /// `DELETE /Users/{id}`: the user, its indexes and its memberships go in
    /// one commit; the groups it left get a new version.
    pub(crate) fn delete_user(&self, id: &str, if_match: Option<&str>) -> Result<Outcome, ScimError> {
        self.audited(Action::UserDelete, id, || {
            tenant::retry(self.service.env(), || {
                let (old, version) = self.load_scim_user(id)?.ok_or_else(|| Self::user_not_found(id))?;
                tenant::check_if_match(if_match, version)?;
                let writes = self.user_removal_writes(id, &old, version)?;
                let op = Op::new(Action::UserDelete, id);
                Ok(self.commit(op, writes).map(|_| ()))
            })?;
            Ok(Outcome::Deleted)
        })
    }

    /// `GET /Users` (and `POST /Users/.search`).
    pub(crate) fn list_users(&self, query: &ListQuery) -> Result<Outcome, ScimError> {
        Ok(Outcome::Document(list::list(&Users(self), query)?))
    }

    /// `POST /.search` across users and groups.
    pub(crate) fn search_all(&self, body: &Value) -> Result<Outcome, ScimError> {
        Ok(Outcome::Document(list::search_all(&Users(self), &crate::groups::Groups(self), body)?))
    }

    /// Every entry under `prefix`, page by page; more than a listing may
    /// examine is refused.
    fn examinable(&self, prefix: &str) -> Result<Vec<Entry>, ScimError> {
        let (entries, more) = store::scan_all(self.store(), prefix, MAX_SCAN)?;
        if more {
            return Err(too_many_to_examine());
        }
        Ok(entries)
    }

    /// Ids held as the values of a unique index's keys under `prefix`
    /// (the names that start with a prefix).
    pub(crate) fn ids_in_range(&self, prefix: &str) -> Result<Vec<String>, ScimError> {
        Ok(self.examinable(prefix)?.into_iter().map(|e| String::from_utf8_lossy(&e.value).into_owned()).collect())
    }

    /// Ids stored as the last segment of keys under `prefix`.
    pub(crate) fn ids_under(&self, prefix: &str) -> Result<Vec<String>, ScimError> {
        Ok(self.examinable(prefix)?.iter().map(|e| keys::last_segment(&e.key)).collect())
    }

    /// One page of an order index (users' userName, groups' displayName):
    /// (key, id) pairs and whether more follow.
    pub(crate) fn scan_order_index(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<(String, String)>, bool), ScimError> {
        let page = self.store().scan(prefix, after, limit)?;
        Ok((
            page.entries.into_iter().map(|e| (e.key, String::from_utf8_lossy(&e.value).into_owned())).collect(),
            page.more,
        ))
    }
}

/// Validates a full user body (a create or a replacement) into stored
/// attributes.
pub(crate) fn user_attrs(body: &Value) -> Result<Map<String, Value>, ScimError> {
    resource::require_schemas(&USER_TYPE, body)?;
    let mut attrs = resource::normalize(&USER_TYPE, body)?;
    validate_user(&mut attrs)?;
    Ok(attrs)
}

fn validate_user(attrs: &mut Map<String, Value>) -> Result<(), ScimError> {
    match attrs.get("userName").and_then(Value::as_str) {
        Some(name) if !name.trim().is_empty() => {
            if name.len() > 1024 {
                return Err(ScimError::invalid_value("userName is longer than 1024 bytes"));
            }
            Ok(())
        }
        _ => Err(ScimError::invalid_value("userName is required and must be a non-empty string")),
    }
}

/// The 409 for a unique reservation that another user holds.
/// The answer to a taken reservation of a user (`login` or `userName`).
fn conflict(user: &Stored, what: &str) -> ScimError {
    if what == "login" {
        let login = user.prov.login.as_deref().unwrap_or_default();
        return ScimError::uniqueness(format!("the e-mail {login:?} is already another user's login in this account"))
            .with_code("email_taken");
    }
    let name = user.attrs.get("userName").and_then(Value::as_str).unwrap_or_default();
    ScimError::uniqueness(format!("userName {name:?} is already taken in this account (userName is case-insensitive)"))
}

fn is_active(attrs: &Map<String, Value>) -> bool {
    attrs.get("active") != Some(&Value::Bool(false))
}

/// The users of a tenant, as a listable collection.
pub(crate) struct Users<'t, 'a, S, E>(pub(crate) &'t Tenant<'a, S, E>);

impl<S: Store, E: Env> Collection for Users<'_, '_, S, E> {
    type Record = (Stored, u64);

    fn resource_type(&self) -> &'static crate::schema::ResourceType {
        &USER_TYPE
    }

    fn computed(&self) -> &'static str {
        "groups"
    }

    fn order_prefix(&self) -> String {
        self.0.keys.user_names()
    }

    fn lookup(&self, hint: &IndexHint) -> Result<Option<Vec<String>>, ScimError> {
        let t = self.0;
        Ok(Some(match hint {
            IndexHint::UserName(v) => t
                .store()
                .get(&t.keys.user_name(v))?
                .map(|e| String::from_utf8_lossy(&e.value).into_owned())
                .into_iter()
                .collect(),
            IndexHint::Id(v) => vec![v.clone()],
            IndexHint::ExternalId(v) => t.ids_under(&t.keys.user_external_ids(v))?,
            IndexHint::Email(v) => t.ids_under(&t.keys.user_emails(v))?,
            IndexHint::UserNamePrefix(v) => t.ids_in_range(&t.keys.user_name(v))?,
            IndexHint::DisplayName(_) | IndexHint::Member(_) | IndexHint::DisplayNamePrefix(_) => return Ok(None),
        }))
    }

    fn count(&self) -> Result<Option<usize>, ScimError> {
        self.0.count("users")
    }

    fn order_range(&self, hint: &IndexHint) -> Option<String> {
        match hint {
            IndexHint::UserNamePrefix(v) => Some(self.0.keys.user_name(v)),
            _ => None,
        }
    }

    fn load(&self, ids: &[String]) -> Result<Vec<Option<Loaded<Self::Record>>>, ScimError> {
        let t = self.0;
        let docs = t.store().get_many(&ids.iter().map(|id| t.keys.user(id)).collect::<Vec<_>>())?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, doc) in ids.iter().zip(docs) {
            let record = match doc {
                Some(d) => Some((Stored::decode(&d)?, d.version)).filter(|(u, _)| t.scim_sees_user(u)),
                None => None,
            };
            out.push(record.map(|record| Loaded { id: id.clone(), record }));
        }
        Ok(out)
    }

    fn render(&self, item: &Loaded<Self::Record>, computed: bool) -> Result<Value, ScimError> {
        self.0.render_user(&item.id, &item.record.0, item.record.1, computed)
    }

    fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<(Vec<(String, String)>, bool), ScimError> {
        self.0.scan_order_index(prefix, after, limit)
    }
}
