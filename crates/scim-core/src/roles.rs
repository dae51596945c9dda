//! Role bindings: a principal (user or group) holds a role on a scope
//! (the account, an organization or a project). They are native: only the
//! admin API makes or removes them, SCIM never touches them, and they
//! survive a migration because they point at ids that migration keeps.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::audit::{Action, Op};
use crate::env::{Env, format_rfc3339};
use crate::error::ScimError;
use crate::keys;
use crate::store::{Store, StoreError, Write};
use crate::tenant::{self, Tenant};

const MAX_IDENT: usize = 128;
/// Most bindings one principal may hold: bounds what removing it costs.
const MAX_PER_PRINCIPAL: u32 = 1000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Scope {
    Account,
    Organization { org: String },
    Project { org: String, project: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RoleBinding {
    pub(crate) id: String,
    pub(crate) principal_type: String,
    pub(crate) principal_id: String,
    pub(crate) role: String,
    pub(crate) scope: Scope,
    pub(crate) created: i64,
}

impl RoleBinding {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "principal": {"type": self.principal_type, "id": self.principal_id},
            "role": self.role,
            "scope": self.scope,
            "created": format_rfc3339(self.created),
        })
    }

    /// What makes a binding unique: the same role on the same scope for
    /// the same principal is one binding, not two.
    fn identity(&self) -> String {
        let (org, project) = match &self.scope {
            Scope::Account => ("", ""),
            Scope::Organization { org } => (org.as_str(), ""),
            Scope::Project { org, project } => (org.as_str(), project.as_str()),
        };
        let text = [self.principal_type.as_str(), &self.principal_id, &self.role, org, project].join("\u{0}");
        crate::hex::encode(&Sha256::digest(text.as_bytes())[..16])
    }
}

fn ident(value: Option<&Value>, what: &str) -> Result<String, ScimError> {
    match value.and_then(Value::as_str) {
        Some(s)
            if !s.is_empty()
                && s.len() <= MAX_IDENT
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
        {
            Ok(s.to_owned())
        }
        _ => Err(ScimError::invalid_value(format!("{what} must be 1 to {MAX_IDENT} characters of [A-Za-z0-9_-]"))),
    }
}

fn parse_scope(value: Option<&Value>) -> Result<Scope, ScimError> {
    let scope = value.and_then(Value::as_object).ok_or_else(|| {
        ScimError::invalid_value("scope is {\"kind\": \"account\"}, {\"kind\": \"organization\", \"org\": …} or {\"kind\": \"project\", \"org\": …, \"project\": …}")
    })?;
    match scope.get("kind").and_then(Value::as_str) {
        Some("account") => Ok(Scope::Account),
        Some("organization") => Ok(Scope::Organization { org: ident(scope.get("org"), "scope.org")? }),
        Some("project") => Ok(Scope::Project {
            org: ident(scope.get("org"), "scope.org")?,
            project: ident(scope.get("project"), "scope.project")?,
        }),
        _ => Err(ScimError::invalid_value("scope.kind is account, organization or project")),
    }
}

impl<S: Store, E: Env> Tenant<'_, S, E> {
    fn principal_key(&self, kind: &str, id: &str) -> Result<String, ScimError> {
        match kind {
            "user" => Ok(self.keys.user(id)),
            "group" => Ok(self.keys.group(id)),
            _ => Err(ScimError::invalid_value("principal.type is \"user\" or \"group\"")),
        }
    }

    /// `POST /role-bindings`.
    pub(crate) fn create_binding(&self, body: &Value) -> Result<RoleBinding, ScimError> {
        let principal = body
            .get("principal")
            .and_then(Value::as_object)
            .ok_or_else(|| ScimError::invalid_value("principal {\"type\", \"id\"} is required"))?;
        let kind = principal.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
        let pid = principal
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .ok_or_else(|| ScimError::invalid_value("principal.id is required"))?;
        let pkey = self.principal_key(&kind, pid)?;
        let role = ident(body.get("role"), "role")?;
        let scope = parse_scope(body.get("scope"))?;
        tenant::retry(self.service.env(), || {
            // Rewriting the principal unchanged makes its existence a
            // precondition of the commit: a binding can never outlive it.
            let principal = self
                .store()
                .get(&pkey)?
                .ok_or_else(|| ScimError::not_found(format!("no {kind} with id {pid:?} in this account")))?;
            let (held, _) = crate::store::scan_all(
                self.store(),
                &self.keys.principal_bindings(&kind, pid),
                MAX_PER_PRINCIPAL as usize,
            )?;
            if held.len() as u32 >= MAX_PER_PRINCIPAL {
                return Err(ScimError::invalid_value(format!(
                    "a principal holds at most {MAX_PER_PRINCIPAL} role bindings"
                )));
            }
            let binding = RoleBinding {
                id: crate::accounts::new_uuid(self.service.env()),
                principal_type: kind.clone(),
                principal_id: pid.to_owned(),
                role: role.clone(),
                scope: scope.clone(),
                created: self.now(),
            };
            let writes = vec![
                Write::create(self.keys.binding_identity(&binding.identity()), binding.id.clone().into_bytes()),
                Write::create(self.keys.role_binding(&binding.id), encode(&binding)),
                Write::put(
                    format!("{}{}", self.keys.principal_bindings(&kind, pid), keys::segment(&binding.id)),
                    Vec::new(),
                ),
                Write::replace(pkey.clone(), principal.value.clone(), principal.version),
            ];
            match self.commit(Op::new(Action::RoleBindingCreate, &binding.id), writes) {
                Ok(_) => Ok(Ok(binding)),
                Err(StoreError::Conflict(0)) => Err(ScimError::rule(
                    409,
                    "duplicate_role_binding",
                    format!("{kind} {pid:?} already has role {role:?} on this scope"),
                )),
                Err(e) => Ok(Err(e)),
            }
        })
    }

    pub(crate) fn load_binding(&self, id: &str) -> Result<Option<(RoleBinding, u64)>, ScimError> {
        match self.store().get(&self.keys.role_binding(id))? {
            Some(e) => Ok(Some((decode(&e.value)?, e.version))),
            None => Ok(None),
        }
    }

    /// `DELETE /role-bindings/{id}`.
    pub(crate) fn delete_binding(&self, id: &str) -> Result<(), ScimError> {
        tenant::retry(self.service.env(), || {
            let (binding, version) = self
                .load_binding(id)?
                .ok_or_else(|| ScimError::not_found(format!("no role binding {id:?} in this account")))?;
            let mut writes = vec![Write::delete_at(self.keys.role_binding(id), version)];
            writes.extend(self.binding_index_deletes(&binding));
            Ok(self.commit(Op::new(Action::RoleBindingDelete, id), writes).map(|_| ()))
        })
    }

    fn binding_index_deletes(&self, b: &RoleBinding) -> [Write; 2] {
        [
            Write::delete(self.keys.binding_identity(&b.identity())),
            Write::delete(format!(
                "{}{}",
                self.keys.principal_bindings(&b.principal_type, &b.principal_id),
                keys::segment(&b.id)
            )),
        ]
    }

    /// The role bindings of one principal.
    pub(crate) fn bindings_of(&self, kind: &str, id: &str) -> Result<Vec<RoleBinding>, ScimError> {
        let (refs, _) =
            crate::store::scan_all(self.store(), &self.keys.principal_bindings(kind, id), MAX_PER_PRINCIPAL as usize)?;
        let keys: Vec<String> = refs.iter().map(|e| self.keys.role_binding(&keys::last_segment(&e.key))).collect();
        let mut out = Vec::new();
        for entry in self.store().get_many(&keys)?.into_iter().flatten() {
            out.push(decode(&entry.value)?);
        }
        Ok(out)
    }

    /// Writes that remove every binding of a principal that is going away.
    pub(crate) fn binding_removal_writes(&self, kind: &str, id: &str) -> Result<Vec<Write>, ScimError> {
        let mut writes = Vec::new();
        for b in self.bindings_of(kind, id)? {
            writes.push(Write::delete(self.keys.role_binding(&b.id)));
            writes.extend(self.binding_index_deletes(&b));
        }
        Ok(writes)
    }

    /// A page of bindings, in id order, optionally of one principal.
    pub(crate) fn list_bindings(
        &self,
        principal: Option<(&str, &str)>,
        after: Option<&str>,
        count: u32,
    ) -> Result<(Vec<RoleBinding>, Option<String>), ScimError> {
        if let Some((kind, id)) = principal {
            self.principal_key(kind, id)?;
            let all = self.bindings_of(kind, id)?;
            return Ok((all, None));
        }
        let prefix = self.keys.role_bindings();
        let after = after.map(|a| format!("{prefix}{}", keys::segment(a)));
        let page = self.store().scan(&prefix, after.as_deref(), count)?;
        let next = page.more.then(|| page.entries.last().map(|e| keys::last_segment(&e.key))).flatten();
        let items = page.entries.iter().map(|e| decode(&e.value)).collect::<Result<Vec<_>, _>>()?;
        Ok((items, next))
    }
}

fn encode(b: &RoleBinding) -> Vec<u8> {
    serde_json::to_vec(b).unwrap_or_default()
}

fn decode(bytes: &[u8]) -> Result<RoleBinding, ScimError> {
    serde_json::from_slice(bytes).map_err(|_| ScimError::unavailable("a role binding record is corrupt"))
}
