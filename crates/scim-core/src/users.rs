//! The User resource: create, read, list, replace, patch, delete.
//!
//! A user is one record plus index records (unique case-insensitive
//! userName, externalId, e-mails), all changed in one atomic commit; group
//! memberships are edge records owned by the group service.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::env::Env;
use crate::error::ScimError;
use crate::filter::IndexHint;
use crate::http::Response;
use crate::keys;
use crate::list::{self, Collection, ListQuery, Loaded, MAX_SCAN};
use crate::patch;
use crate::resource::{self, Projection};
use crate::schema::{USER_TYPE, GROUP_TYPE};
use crate::store::{Store, StoreError, Write};
use crate::tenant::{self, Stored, Tenant};

impl<S: Store, E: Env> Tenant<'_, S, E> {
    pub(crate) fn load_user(&self, id: &str) -> Result<Option<(Stored, u64)>, ScimError> {
        match self.store().get(&self.keys.user(id))? {
            Some(entry) => Ok(Some((Stored::decode(&entry)?, entry.version))),
            None => Ok(None),
        }
    }

    fn user_not_found(id: &str) -> ScimError {
        ScimError::not_found(format!("no user with id {id:?} in this account"))
    }

    /// Index records a user's attributes call for: (key, value, unique).
    fn user_index(&self, id: &str, attrs: &Map<String, Value>) -> Vec<(String, Vec<u8>, bool)> {
        let mut out = Vec::new();
        if let Some(name) = attrs.get("userName").and_then(Value::as_str) {
            out.push((self.keys.user_name(name), id.as_bytes().to_vec(), true));
        }
        if let Some(ext) = attrs.get("externalId").and_then(Value::as_str) {
            out.push((format!("{}{}", self.keys.user_external_ids(ext), keys::segment(id)), Vec::new(), false));
        }
        let mut emails = BTreeSet::new();
        for email in attrs.get("emails").and_then(Value::as_array).into_iter().flatten() {
            if let Some(v) = email.get("value").and_then(Value::as_str) {
                emails.insert(format!("{}{}", self.keys.user_emails(v), keys::segment(id)));
            }
        }
        out.extend(emails.into_iter().map(|k| (k, Vec::new(), false)));
        out
    }

    /// Writes that move the indexes from `old` to `new`; the unique
    /// userName reservation, if it changes, comes first so a conflict on it
    /// is recognisable by its index.
    fn user_index_writes(&self, id: &str, old: Option<&Map<String, Value>>, new: Option<&Map<String, Value>>) -> (Vec<Write>, Option<usize>) {
        let old = old.map(|a| self.user_index(id, a)).unwrap_or_default();
        let new = new.map(|a| self.user_index(id, a)).unwrap_or_default();
        tenant::index_writes(&old, &new)
    }

    /// The user's `groups` attribute.
    fn user_groups(&self, id: &str) -> Result<Vec<Value>, ScimError> {
        let edges = self.store().scan(&self.keys.memberships(id), None, 10_000)?;
        if edges.is_empty() {
            return Ok(Vec::new());
        }
        let group_ids: Vec<String> = edges.iter().map(|e| keys::last_segment(&e.key)).collect();
        let docs = self.store().get_many(&group_ids.iter().map(|g| self.keys.group(g)).collect::<Vec<_>>())?;
        let mut out = Vec::new();
        for (gid, doc) in group_ids.iter().zip(docs) {
            let Some(doc) = doc else { continue };
            let stored = Stored::decode(&doc)?;
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
        Ok(resource::render(&USER_TYPE, id, &stored.attrs, computed, &stored.meta(version), &self.location(USER_TYPE.endpoint, id)))
    }

    fn user_response(&self, status: u16, id: &str, stored: &Stored, version: u64, projection: &Projection) -> Result<Response, ScimError> {
        let body = projection.apply(&USER_TYPE, self.render_user(id, stored, version, projection.wants("groups"))?);
        let location = self.location(USER_TYPE.endpoint, id);
        Ok(tenant::resource_response(status, &body, version, (status == 201).then_some(location.as_str())))
    }

    /// Validates a full user body into stored attributes.
    fn user_attrs(body: &Value) -> Result<Map<String, Value>, ScimError> {
        let mut attrs = resource::normalize(&USER_TYPE, body)?;
        validate_user(&mut attrs)?;
        Ok(attrs)
    }

    /// `POST /Users`.
    pub(crate) fn create_user(&self, body: &Value, projection: &Projection) -> Result<Response, ScimError> {
        let mut attrs = Self::user_attrs(body)?;
        // RFC 7643 leaves `active` without a default; clients (Okta) read a
        // missing one as inactive, so a new user is active unless told.
        attrs.entry("active").or_insert(Value::Bool(true));
        let now = self.now();
        let stored = Stored { created: now, modified: now, attrs };
        let (id, version) = tenant::retry(|| {
            let id = crate::accounts::random_uuid(self.service.env());
            let (index, unique_at) = self.user_index_writes(&id, None, Some(&stored.attrs));
            let mut writes = vec![Write::create(self.keys.user(&id), stored.encode())];
            writes.extend(index);
            match self.store().commit(writes) {
                Ok(v) => Ok(Ok((id, v))),
                Err(StoreError::Conflict(i)) if unique_at.map(|u| u + 1) == Some(i as usize) => Err(taken(&stored.attrs)),
                Err(e) => Ok(Err(e)),
            }
        })?;
        self.user_response(201, &id, &stored, version, projection)
    }

    /// `GET /Users/{id}`.
    pub(crate) fn get_user(&self, id: &str, projection: &Projection, if_none_match: Option<&str>) -> Result<Response, ScimError> {
        let (stored, version) = self.load_user(id)?.ok_or_else(|| Self::user_not_found(id))?;
        if tenant::not_modified(if_none_match, version) {
            return Ok(Response::empty(304).with_header("etag", resource::Meta::etag(version)));
        }
        self.user_response(200, id, &stored, version, projection)
    }

    /// `PUT /Users/{id}`: the body replaces every writable attribute.
    pub(crate) fn replace_user(&self, id: &str, body: &Value, if_match: Option<&str>, projection: &Projection) -> Result<Response, ScimError> {
        let mut attrs = Self::user_attrs(body)?;
        self.update_user(id, if_match, projection, move |old| {
            // `active` omitted from a full replacement keeps its value, so an
            // update that does not mention it cannot disable a user.
            if !attrs.contains_key("active") {
                if let Some(active) = old.get("active") {
                    attrs.insert("active".into(), active.clone());
                }
            }
            Ok(attrs.clone())
        })
    }

    /// `PATCH /Users/{id}`.
    pub(crate) fn patch_user(&self, id: &str, body: &Value, if_match: Option<&str>, projection: &Projection) -> Result<Response, ScimError> {
        let ops = patch::parse(&USER_TYPE, body)?;
        self.update_user(id, if_match, projection, |old| {
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
    }

    fn update_user(
        &self,
        id: &str,
        if_match: Option<&str>,
        projection: &Projection,
        mut change: impl FnMut(&Map<String, Value>) -> Result<Map<String, Value>, ScimError>,
    ) -> Result<Response, ScimError> {
        let (stored, version) = tenant::retry(|| {
            let (old, version) = self.load_user(id)?.ok_or_else(|| Self::user_not_found(id))?;
            tenant::check_if_match(if_match, version)?;
            let attrs = change(&old.attrs)?;
            if attrs == old.attrs {
                return Ok(Ok((old, version)));
            }
            let new = Stored { created: old.created, modified: self.now(), attrs };
            let (index, unique_at) = self.user_index_writes(id, Some(&old.attrs), Some(&new.attrs));
            let mut writes = vec![Write::replace(self.keys.user(id), new.encode(), version)];
            writes.extend(index);
            match self.store().commit(writes) {
                Ok(v) => Ok(Ok((new, v))),
                Err(StoreError::Conflict(i)) if unique_at.map(|u| u + 1) == Some(i as usize) => Err(taken(&new.attrs)),
                Err(e) => Ok(Err(e)),
            }
        })?;
        self.user_response(200, id, &stored, version, projection)
    }

    /// `DELETE /Users/{id}`: the user, its indexes and its memberships go in
    /// one commit; the groups it left get a new version.
    pub(crate) fn delete_user(&self, id: &str, if_match: Option<&str>) -> Result<Response, ScimError> {
        tenant::retry(|| {
            let (old, version) = self.load_user(id)?.ok_or_else(|| Self::user_not_found(id))?;
            tenant::check_if_match(if_match, version)?;
            let mut writes = vec![Write::delete_at(self.keys.user(id), version)];
            writes.extend(self.user_index_writes(id, Some(&old.attrs), None).0);
            let edges = self.store().scan(&self.keys.memberships(id), None, 10_000)?;
            let group_ids: Vec<String> = edges.iter().map(|e| keys::last_segment(&e.key)).collect();
            let groups = self.store().get_many(&group_ids.iter().map(|g| self.keys.group(g)).collect::<Vec<_>>())?;
            let now = self.now();
            for (gid, group) in group_ids.iter().zip(groups) {
                writes.push(Write::delete(self.keys.membership(id, gid)));
                writes.push(Write::delete(self.keys.member(gid, id)));
                if let Some(entry) = group {
                    let mut g = Stored::decode(&entry)?;
                    g.modified = now;
                    writes.push(Write::replace(entry.key.clone(), g.encode(), entry.version));
                }
            }
            Ok(self.store().commit(writes).map(|_| ()))
        })?;
        Ok(Response::empty(204))
    }

    /// `GET /Users` (and `POST /Users/.search`).
    pub(crate) fn list_users(&self, query: &ListQuery) -> Result<Response, ScimError> {
        Ok(Response::scim_json(200, &list::list(&Users(self), query)?))
    }

    /// `POST /.search` across users and groups.
    pub(crate) fn search_all(&self, body: &Value) -> Result<Response, ScimError> {
        Ok(Response::scim_json(200, &list::search_all(&Users(self), &crate::groups::Groups(self), body)?))
    }

    /// Ids stored as the last segment of keys under `prefix`.
    pub(crate) fn ids_under(&self, prefix: &str) -> Result<Vec<String>, ScimError> {
        let entries = self.store().scan(prefix, None, MAX_SCAN as u32)?;
        Ok(entries.iter().map(|e| keys::last_segment(&e.key)).collect())
    }
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

fn taken(attrs: &Map<String, Value>) -> ScimError {
    let name = attrs.get("userName").and_then(Value::as_str).unwrap_or_default();
    ScimError::uniqueness(format!("userName {name:?} is already taken in this account (userName is case-insensitive)"))
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
            IndexHint::UserName(v) => t.store().get(&t.keys.user_name(v))?.map(|e| String::from_utf8_lossy(&e.value).into_owned()).into_iter().collect(),
            IndexHint::Id(v) => vec![v.clone()],
            IndexHint::ExternalId(v) => t.ids_under(&t.keys.user_external_ids(v))?,
            IndexHint::Email(v) => t.ids_under(&t.keys.user_emails(v))?,
            IndexHint::DisplayName(_) | IndexHint::Member(_) => return Ok(None),
        }))
    }

    fn load(&self, ids: &[String]) -> Result<Vec<Option<Loaded<Self::Record>>>, ScimError> {
        let t = self.0;
        let docs = t.store().get_many(&ids.iter().map(|id| t.keys.user(id)).collect::<Vec<_>>())?;
        ids.iter()
            .zip(docs)
            .map(|(id, doc)| doc.map(|d| Ok(Loaded { id: id.clone(), record: (Stored::decode(&d)?, d.version) })).transpose())
            .collect()
    }

    fn render(&self, item: &Loaded<Self::Record>, computed: bool) -> Result<Value, ScimError> {
        self.0.render_user(&item.id, &item.record.0, item.record.1, computed)
    }

    fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<Vec<(String, String)>, ScimError> {
        Ok(self.0.store().scan(prefix, after, limit)?.into_iter().map(|e| (e.key, String::from_utf8_lossy(&e.value).into_owned())).collect())
    }
}
