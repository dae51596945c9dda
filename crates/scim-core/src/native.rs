//! People and groups as the account's admins manage them (the native admin
//! API), and the ownership rules that keep admins and the identity provider
//! from fighting: what SCIM manages can only be changed through SCIM.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::audit::{Action, Op};
use crate::env::{Env, format_rfc3339};
use crate::error::ScimError;
use crate::groups::{MemberDelta, derive_identifier};
use crate::keys;
use crate::policy::looks_like_email;
use crate::store::{Store, StoreError, Write};
use crate::tenant::{self, Plan, Provenance, Refused, Stored, Tenant};

/// Largest admin list page.
pub(crate) const MAX_PAGE: u32 = 1000;
/// Most members a group view lists inline.
const VIEW_MEMBERS: usize = 1000;
const MAX_NAME: usize = 256;

fn scim_managed_user(id: &str, what: &str) -> ScimError {
    ScimError::rule(
        409,
        "scim_managed_user",
        format!("user {id:?} is managed by SCIM: its {what} can only be changed in the identity provider"),
    )
}

fn scim_managed_group(id: &str, what: &str) -> ScimError {
    ScimError::rule(
        409,
        "scim_managed_group",
        format!("group {id:?} is managed by SCIM: {what} only in the identity provider"),
    )
}

/// The admin API's name for a user: displayName, else the formatted or
/// composed name, else the login.
pub(crate) fn user_name(user: &Stored) -> String {
    let a = &user.attrs;
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    s(a.get("displayName"))
        .or_else(|| s(a.get("name").and_then(|n| n.get("formatted"))))
        .or_else(|| {
            let parts: Vec<String> =
                ["givenName", "familyName"].iter().filter_map(|k| s(a.get("name").and_then(|n| n.get(*k)))).collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        })
        .or_else(|| user.prov.login.clone())
        .unwrap_or_default()
}

pub(crate) fn is_active(user: &Stored) -> bool {
    user.attrs.get("active") != Some(&Value::Bool(false))
}

fn source_json(prov: &Provenance) -> Value {
    let mut v = json!({"kind": prov.source()});
    if let Some(t) = &prov.token {
        v["tokenId"] = t.clone().into();
    }
    if let Some(t) = prov.taken_over {
        v["takenOverAt"] = format_rfc3339(t).into();
    }
    v
}

fn text(body: &Map<String, Value>, key: &str) -> Result<Option<String>, ScimError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= MAX_NAME && !s.chars().any(char::is_control) => {
            Ok(Some(s.trim().to_owned()))
        }
        Some(_) => {
            Err(ScimError::invalid_value(format!("{key} must be a non-empty string of at most {MAX_NAME} bytes")))
        }
    }
}

fn object<'b>(body: &'b Value, allowed: &[&str]) -> Result<&'b Map<String, Value>, ScimError> {
    let map = body.as_object().ok_or_else(|| ScimError::invalid_syntax("the body must be a JSON object"))?;
    if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ScimError::invalid_value(format!("unknown field {k:?}; expected {}", allowed.join(", "))));
    }
    Ok(map)
}

fn email(body: &Map<String, Value>) -> Result<Option<String>, ScimError> {
    match text(body, "email")? {
        Some(e) if looks_like_email(&e) => Ok(Some(e.to_lowercase())),
        Some(e) => Err(ScimError::invalid_value(format!("{e:?} is not an e-mail address"))),
        None => Ok(None),
    }
}

/// One page of a listing and the cursor of the next.
pub(crate) type PageOf<T> = (Vec<T>, Option<String>);

/// What a page request asks for.
pub(crate) struct Page {
    pub(crate) cursor: Option<String>,
    pub(crate) count: u32,
    pub(crate) source: Option<String>,
    pub(crate) search: Option<String>,
}

impl Page {
    pub(crate) fn parse(params: &[(String, String)], extra: &[&str]) -> Result<Self, ScimError> {
        let mut page = Page { cursor: None, count: 100, source: None, search: None };
        for (k, v) in params {
            match k.as_str() {
                "cursor" => page.cursor = Some(v.clone()),
                "count" => {
                    page.count = v
                        .parse()
                        .ok()
                        .filter(|c| (1..=MAX_PAGE).contains(c))
                        .ok_or_else(|| ScimError::invalid_value(format!("count is 1 to {MAX_PAGE}")))?
                }
                "source" => match v.as_str() {
                    "native" | "scim" => page.source = Some(v.clone()),
                    _ => return Err(ScimError::invalid_value("source is \"native\" or \"scim\"")),
                },
                "search" => page.search = Some(v.to_lowercase()),
                k if extra.contains(&k) => {}
                other => return Err(ScimError::invalid_value(format!("unknown parameter {other:?}"))),
            }
        }
        Ok(page)
    }
}

/// Bound on records one listing examines when filters skip most of them.
const MAX_EXAMINED: usize = 20_000;

impl<S: Store, E: Env> Tenant<'_, S, E> {
    /// Walks records under `prefix` from the page's cursor, keeping those
    /// `keep` accepts; returns them and the cursor of the next page.
    pub(crate) fn page_of<T>(
        &self,
        prefix: &str,
        page: &Page,
        mut keep: impl FnMut(&str, Stored, u64) -> Result<Option<T>, ScimError>,
    ) -> Result<PageOf<T>, ScimError> {
        let mut after = page.cursor.as_ref().map(|c| format!("{prefix}{}", keys::segment(c)));
        let mut out = Vec::new();
        let mut examined = 0;
        loop {
            let batch = self.store().scan(prefix, after.as_deref(), 200)?;
            for entry in &batch.entries {
                let id = keys::last_segment(&entry.key);
                examined += 1;
                if let Some(item) = keep(&id, Stored::decode(entry)?, entry.version)? {
                    out.push(item);
                }
                if out.len() as u32 == page.count || examined == MAX_EXAMINED.max(page.count as usize) {
                    return Ok((out, Some(id)));
                }
            }
            if !batch.more {
                return Ok((out, None));
            }
            after = batch.entries.last().map(|e| e.key.clone());
        }
    }

    fn wants(page: &Page, stored: &Stored, haystack: &[String]) -> bool {
        page.source.as_deref().is_none_or(|s| s == stored.prov.source())
            && page.search.as_ref().is_none_or(|q| haystack.iter().any(|h| h.to_lowercase().contains(q.as_str())))
    }

    // ------------------------------------------------------------ users

    fn user_or_404(&self, id: &str) -> Result<(Stored, u64), ScimError> {
        self.load_user(id)?.ok_or_else(|| ScimError::not_found(format!("no user with id {id:?} in this account")))
    }

    /// A user as the admin API shows it, with groups and role bindings.
    pub(crate) fn user_view(&self, id: &str, user: &Stored) -> Result<Value, ScimError> {
        let groups = self.user_group_list(id)?;
        let bindings: Vec<Value> = self.bindings_of("user", id)?.iter().map(|b| b.to_json()).collect();
        let mut v = self.user_summary(id, user);
        v["groups"] =
            groups.into_iter().map(|(gid, name, source)| json!({"id": gid, "name": name, "source": source})).collect();
        v["roleBindings"] = bindings.into();
        Ok(v)
    }

    fn user_summary(&self, id: &str, user: &Stored) -> Value {
        let active = is_active(user);
        json!({
            "id": id,
            "email": user.prov.login,
            "name": user_name(user),
            "userName": user.attrs.get("userName"),
            "source": source_json(&user.prov),
            "invited": user.prov.invited,
            "active": active,
            "access": if active { "granted" } else { "blocked" },
            "created": format_rfc3339(user.created),
            "lastModified": format_rfc3339(user.modified),
        })
    }

    /// (group id, name, source) of every group the user is in.
    pub(crate) fn user_group_list(&self, id: &str) -> Result<Vec<(String, String, &'static str)>, ScimError> {
        let mut out = Vec::new();
        for (gid, g) in self.groups_of(id)? {
            let name = g.attrs.get("displayName").and_then(Value::as_str).unwrap_or_default().to_owned();
            out.push((gid, name, g.prov.source()));
        }
        Ok(out)
    }

    pub(crate) fn admin_get_user(&self, id: &str) -> Result<Value, ScimError> {
        let (user, _) = self.user_or_404(id)?;
        self.user_view(id, &user)
    }

    pub(crate) fn admin_list_users(&self, page: &Page) -> Result<PageOf<Value>, ScimError> {
        self.page_of(&self.keys.users(), page, |id, user, _| {
            let hay = [
                user.prov.login.clone().unwrap_or_default(),
                user_name(&user),
                user.attrs.get("userName").and_then(Value::as_str).unwrap_or_default().to_owned(),
            ];
            Ok(Self::wants(page, &user, &hay).then(|| self.user_summary(id, &user)))
        })
    }

    /// `POST /users`: a native user, created or invited by e-mail.
    pub(crate) fn admin_create_user(&self, body: &Value) -> Result<Value, ScimError> {
        let body = object(body, &["email", "name", "invite"])?;
        let login = email(body)?.ok_or_else(|| ScimError::invalid_value("email is required"))?;
        let name = text(body, "name")?;
        let invited = match body.get("invite") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(ScimError::invalid_value("invite is true or false")),
        };
        let mut attrs = Map::new();
        attrs.insert("userName".into(), login.clone().into());
        if let Some(name) = &name {
            attrs.insert("displayName".into(), name.clone().into());
        }
        attrs.insert("emails".into(), json!([{"value": login, "type": "work", "primary": true}]));
        attrs.insert("active".into(), true.into());
        let (id, user) = tenant::retry(self.service.env(), || {
            let id = crate::accounts::new_uuid(self.service.env());
            let now = self.now();
            let prov = Provenance { native: true, login: Some(login.clone()), invited, ..Provenance::default() };
            let user = Stored { created: now, modified: now, attrs: attrs.clone(), prov, ..Stored::default() };
            let mut plan = Plan::default();
            plan.write(Write::create(self.keys.user(&id), user.encode()));
            plan.append(self.user_index_writes(&id, None, Some(&user)));
            let op = Op::new(if invited { Action::UserInvite } else { Action::UserCreate }, &id);
            match self.commit_plan(op, plan) {
                Ok(_) => Ok(Ok((id, user))),
                Err(Refused::Taken(_)) => Err(self.email_taken(&login)?),
                Err(Refused::Store(e)) => Ok(Err(e)),
            }
        })?;
        self.user_view(&id, &user)
    }

    fn email_taken(&self, login: &str) -> Result<ScimError, ScimError> {
        let holder = self
            .store()
            .get(&self.keys.login(login))?
            .map(|e| String::from_utf8_lossy(&e.value).into_owned())
            .unwrap_or_default();
        Ok(ScimError::rule(
            409,
            "email_taken",
            format!("the e-mail {login:?} already belongs to user {holder:?} of this account"),
        ))
    }

    /// `PATCH /users/{id}`: e-mail and name of a native user.
    pub(crate) fn admin_update_user(&self, id: &str, body: &Value) -> Result<Value, ScimError> {
        let body = object(body, &["email", "name"])?;
        let new_login = email(body)?;
        let new_name = text(body, "name")?;
        let user = tenant::retry(self.service.env(), || {
            let (old, version) = self.user_or_404(id)?;
            if !old.prov.native {
                let what = if new_login.is_some() { "e-mail" } else { "name" };
                return Err(scim_managed_user(id, what));
            }
            let mut new = old.clone();
            if let Some(login) = &new_login {
                new.prov.login = Some(login.clone());
                new.attrs.insert("userName".into(), login.clone().into());
                new.attrs.insert("emails".into(), json!([{"value": login, "type": "work", "primary": true}]));
            }
            if let Some(name) = &new_name {
                new.attrs.insert("displayName".into(), name.clone().into());
            }
            if new.attrs == old.attrs && new.prov == old.prov {
                return Ok(Ok(old));
            }
            new.modified = self.now();
            let mut plan = Plan::default();
            plan.write(Write::replace(self.keys.user(id), new.encode(), version));
            plan.append(self.user_index_writes(id, Some(&old), Some(&new)));
            match self.commit_plan(Op::new(Action::UserUpdate, id), plan) {
                Ok(_) => Ok(Ok(new)),
                Err(Refused::Taken(_)) => Err(self.email_taken(new.prov.login.as_deref().unwrap_or_default())?),
                Err(Refused::Store(e)) => Ok(Err(e)),
            }
        })?;
        self.user_view(id, &user)
    }

    /// `DELETE /users/{id}`: native users only.
    pub(crate) fn admin_remove_user(&self, id: &str) -> Result<(), ScimError> {
        tenant::retry(self.service.env(), || {
            let (user, version) = self.user_or_404(id)?;
            if !user.prov.native {
                return Err(ScimError::rule(
                    409,
                    "scim_managed_user",
                    format!(
                        "user {id:?} is managed by SCIM: remove it from the application's assignments in the identity provider"
                    ),
                ));
            }
            let writes = self.user_removal_writes(id, &user, version)?;
            Ok(self.commit(Op::new(Action::UserRemove, id), writes).map(|_| ()))
        })
    }

    // ----------------------------------------------------------- groups

    fn group_or_404(&self, id: &str) -> Result<(Stored, u64), ScimError> {
        self.load_group(id)?.ok_or_else(|| ScimError::not_found(format!("no group with id {id:?} in this account")))
    }

    fn group_summary(&self, id: &str, group: &Stored) -> Value {
        json!({
            "id": id,
            "name": group.attrs.get("displayName"),
            "source": source_json(&group.prov),
            "created": format_rfc3339(group.created),
            "lastModified": format_rfc3339(group.modified),
        })
    }

    pub(crate) fn group_view(&self, id: &str, group: &Stored) -> Result<Value, ScimError> {
        let mut members = self.member_ids(id, group.generation)?;
        let truncated = members.len() > VIEW_MEMBERS;
        members.truncate(VIEW_MEMBERS);
        let mut v = self.group_summary(id, group);
        v["members"] = members.into();
        v["membersTruncated"] = truncated.into();
        v["roleBindings"] = self.bindings_of("group", id)?.iter().map(|b| b.to_json()).collect();
        Ok(v)
    }

    pub(crate) fn admin_get_group(&self, id: &str) -> Result<Value, ScimError> {
        let (group, _) = self.group_or_404(id)?;
        self.group_view(id, &group)
    }

    pub(crate) fn admin_list_groups(&self, page: &Page) -> Result<PageOf<Value>, ScimError> {
        self.page_of(&self.keys.groups(), page, |id, group, _| {
            let hay =
                [id.to_owned(), group.attrs.get("displayName").and_then(Value::as_str).unwrap_or_default().to_owned()];
            Ok(Self::wants(page, &group, &hay).then(|| self.group_summary(id, &group)))
        })
    }

    /// `POST /groups`: a native group. Its identifier is given or derived
    /// from the name like SCIM's; names are unique among native groups.
    pub(crate) fn admin_create_group(&self, body: &Value) -> Result<Value, ScimError> {
        let body = object(body, &["name", "identifier"])?;
        let name = text(body, "name")?.ok_or_else(|| ScimError::invalid_value("name is required"))?;
        let given = match body.get("identifier") {
            None | Some(Value::Null) => None,
            Some(Value::String(s))
                if !s.is_empty()
                    && s.len() <= 128
                    && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') =>
            {
                Some(s.clone())
            }
            Some(_) => return Err(ScimError::invalid_value("identifier is 1 to 128 characters of [A-Za-z0-9_$]")),
        };
        let base = given.clone().unwrap_or_else(|| derive_identifier(&name));
        let mut suffix = 1usize;
        let (id, group) = tenant::retry(self.service.env(), || {
            let id = if suffix == 1 { base.clone() } else { format!("{base}_{suffix}") };
            let now = self.now();
            let mut attrs = Map::new();
            attrs.insert("displayName".into(), name.clone().into());
            let group = Stored {
                created: now,
                modified: now,
                attrs,
                prov: Provenance { native: true, ..Provenance::default() },
                generation: self.new_generation(),
                members: Some(0),
            };
            let mut plan = Plan::default();
            plan.reserve("identifier", Write::create(self.keys.group(&id), group.encode()));
            plan.append(self.group_index_writes(&id, None, Some(&group)));
            match self.commit_plan(Op::new(Action::GroupCreate, &id), plan) {
                Ok(_) => Ok(Ok((id, group))),
                Err(Refused::Taken("identifier")) if given.is_some() => Err(ScimError::rule(
                    409,
                    "identifier_taken",
                    format!("a group with identifier {id:?} already exists in this account"),
                )),
                Err(Refused::Taken("identifier")) => {
                    suffix += 1;
                    Ok(Err(StoreError::Conflict(0)))
                }
                Err(Refused::Taken(_)) => Err(group_name_taken(&name)),
                Err(Refused::Store(e)) => Ok(Err(e)),
            }
        })?;
        self.group_view(&id, &group)
    }

    /// `PATCH /groups/{id}`: rename a native group.
    pub(crate) fn admin_rename_group(&self, id: &str, body: &Value) -> Result<Value, ScimError> {
        let body = object(body, &["name"])?;
        let name = text(body, "name")?.ok_or_else(|| ScimError::invalid_value("name is required"))?;
        let group = tenant::retry(self.service.env(), || {
            let (old, version) = self.group_or_404(id)?;
            if !old.prov.native {
                return Err(scim_managed_group(id, "rename it"));
            }
            let mut new = old.clone();
            new.attrs.insert("displayName".into(), name.clone().into());
            if new.attrs == old.attrs {
                return Ok(Ok(old));
            }
            new.modified = self.now();
            let mut plan = Plan::default();
            plan.write(Write::replace(self.keys.group(id), new.encode(), version));
            plan.append(self.group_index_writes(id, Some(&old), Some(&new)));
            match self.commit_plan(Op::new(Action::GroupRename, id), plan) {
                Ok(_) => Ok(Ok(new)),
                Err(Refused::Taken(_)) => Err(group_name_taken(&name)),
                Err(Refused::Store(e)) => Ok(Err(e)),
            }
        })?;
        self.group_view(id, &group)
    }

    /// `DELETE /groups/{id}`: native groups only; members stay users.
    pub(crate) fn admin_delete_group(&self, id: &str) -> Result<(), ScimError> {
        tenant::retry(self.service.env(), || {
            let (group, version) = self.group_or_404(id)?;
            if !group.prov.native {
                return Err(scim_managed_group(id, "delete it"));
            }
            let writes = self.group_removal_writes(id, &group, version)?;
            Ok(self.commit(Op::new(Action::GroupDelete, id), writes).map(|_| ()))
        })
    }

    /// `PUT` / `DELETE /groups/{id}/members/{userId}`. Allowed on native
    /// groups only. Adding a SCIM-managed user is allowed when SCIM assigned
    /// it directly, not through a SCIM group; taking anyone out of a native
    /// group is always allowed (that membership never came from SCIM).
    pub(crate) fn admin_set_member(&self, id: &str, user: &str, member: bool) -> Result<Value, ScimError> {
        let delta = MemberDelta { clear: false, wish: BTreeMap::from([(user.to_owned(), member)]) };
        let group = tenant::retry(self.service.env(), || {
            let (old, version) = self.group_or_404(id)?;
            if !old.prov.native {
                return Err(scim_managed_group(id, if member { "add members" } else { "remove members" }));
            }
            if member {
                let (u, _) = self
                    .load_user(user)?
                    .ok_or_else(|| ScimError::not_found(format!("no user with id {user:?} in this account")))?;
                // A user the identity provider assigns through a group has
                // its group assignments managed there; one it assigned
                // directly may be put in native groups by hand.
                if !u.prov.native
                    && let Some((_, via, _)) =
                        self.user_group_list(user)?.into_iter().find(|(_, _, source)| *source == "scim")
                {
                    return Err(ScimError::rule(
                        409,
                        "scim_managed_user",
                        format!(
                            "user {user:?} is provisioned through the SCIM group {via:?}: its group assignments are managed in the identity provider"
                        ),
                    ));
                }
            }
            let plan = self.member_writes(id, Some(&old), old.generation, &delta, true)?;
            if !plan.changed {
                return Ok(Ok(old));
            }
            let mut new = old.clone();
            new.modified = self.now();
            new.members = Some(plan.members);
            let mut writes = vec![Write::replace(self.keys.group(id), new.encode(), version)];
            writes.extend(plan.writes);
            let op = Op::new(if member { Action::GroupAddMember } else { Action::GroupRemoveMember }, id);
            Ok(self.commit(op, writes).map(|_| new))
        })?;
        self.group_view(id, &group)
    }
}

fn group_name_taken(name: &str) -> ScimError {
    ScimError::rule(
        409,
        "group_name_taken",
        format!("a native group named {name:?} already exists in this account (names are case-insensitive)"),
    )
}
