//! The audit log: one record per write, stored in the same atomic commit as
//! the change it describes, so the log can never disagree with the data.
//!
//! Records live under the account (`…/log/<millis>-<nonce>`), so their key
//! order is time order and an account's log is as isolated as its users.
//! Refused writes are recorded too, in a commit of their own: they changed
//! nothing, but "who tried what" is what an audit is read for.

use serde_json::{Map, Value, json};

use crate::env::{Env, format_rfc3339, parse_rfc3339};
use crate::error::ScimError;
use crate::keys::AccountKeys;
use crate::store::{Store, Write};

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Actor {
    /// A SCIM client, by the public id of its token.
    Token(String),
    /// The native admin API.
    Admin,
    /// The operator, through the runner's CLI.
    Operator,
}

impl Actor {
    pub(crate) fn token_id(&self) -> Option<&str> {
        match self {
            Actor::Token(id) => Some(id),
            _ => None,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Actor::Token(id) => json!({"kind": "token", "tokenId": id}),
            Actor::Admin => json!({"kind": "admin"}),
            Actor::Operator => json!({"kind": "operator"}),
        }
    }
}

/// What the log keeps about the request itself.
#[derive(Debug, Clone)]
pub(crate) struct RequestInfo {
    /// The client's `X-Request-Id` if it sent a usable one, else our own.
    pub(crate) id: String,
    /// `entra`, `okta`, `admin-api`, `cli` or `other`, from the User-Agent.
    pub(crate) client: &'static str,
    pub(crate) user_agent: Option<String>,
}

const MAX_REQUEST_ID: usize = 128;
const MAX_USER_AGENT: usize = 256;

impl RequestInfo {
    pub(crate) fn from_headers(
        env: &impl Env,
        request_id: Option<&str>,
        user_agent: Option<&str>,
        default_client: &'static str,
    ) -> Self {
        let id = request_id
            .map(str::trim)
            .filter(|id| !id.is_empty() && id.len() <= MAX_REQUEST_ID && id.chars().all(|c| c.is_ascii_graphic()))
            .map(str::to_owned)
            .unwrap_or_else(|| crate::accounts::random_hex(env, 12));
        let user_agent =
            user_agent.map(|ua| ua.chars().filter(|c| !c.is_control()).take(MAX_USER_AGENT).collect::<String>());
        let client = user_agent.as_deref().and_then(client_kind).unwrap_or(default_client);
        RequestInfo { id, client, user_agent }
    }

    pub(crate) fn operator(env: &impl Env) -> Self {
        RequestInfo { id: crate::accounts::random_hex(env, 12), client: "cli", user_agent: None }
    }
}

/// The client a User-Agent names, when it names one this service knows:
/// `entra`, `okta` or `cli`. Audit records and the runner's request log
/// both classify clients with it.
pub fn client_kind(user_agent: &str) -> Option<&'static str> {
    let ua = user_agent.to_ascii_lowercase();
    if ua.contains("microsoft") || ua.contains("azure") {
        Some("entra")
    } else if ua.contains("okta") {
        Some("okta")
    } else if ua.starts_with("scimlet-cli") {
        Some("cli")
    } else {
        None
    }
}

/// Every kind of write the log records: the one list of operation names,
/// which successful and refused writes share (a refused PUT and a
/// successful one are both `user.replace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    UserCreate,
    /// A create that took an existing native user over (migration).
    UserTakeover,
    /// A native user made through the admin API by invitation.
    UserInvite,
    UserReplace,
    UserUpdate,
    /// A PUT or PATCH that set `active` to false.
    UserDeactivate,
    /// A user taken out of the account by the admin API, or by a SCIM
    /// write when the settings say deactivation removes.
    UserRemove,
    UserDelete,
    GroupCreate,
    GroupTakeover,
    GroupReplace,
    GroupUpdate,
    GroupRename,
    GroupDelete,
    GroupAddMember,
    GroupRemoveMember,
    RoleBindingCreate,
    RoleBindingDelete,
    TokenCreate,
    TokenRotate,
    TokenRevoke,
    SettingsUpdate,
    StoreRepair,
}

impl Action {
    /// The name a record carries, and the audit API filters on.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Action::UserCreate => "user.create",
            Action::UserTakeover => "user.takeover",
            Action::UserInvite => "user.invite",
            Action::UserReplace => "user.replace",
            Action::UserUpdate => "user.update",
            Action::UserDeactivate => "user.deactivate",
            Action::UserRemove => "user.remove",
            Action::UserDelete => "user.delete",
            Action::GroupCreate => "group.create",
            Action::GroupTakeover => "group.takeover",
            Action::GroupReplace => "group.replace",
            Action::GroupUpdate => "group.update",
            Action::GroupRename => "group.rename",
            Action::GroupDelete => "group.delete",
            Action::GroupAddMember => "group.addMember",
            Action::GroupRemoveMember => "group.removeMember",
            Action::RoleBindingCreate => "roleBinding.create",
            Action::RoleBindingDelete => "roleBinding.delete",
            Action::TokenCreate => "token.create",
            Action::TokenRotate => "token.rotate",
            Action::TokenRevoke => "token.revoke",
            Action::SettingsUpdate => "settings.update",
            Action::StoreRepair => "store.repair",
        }
    }

    /// The type of the resource it acts on.
    pub(crate) fn resource_type(self) -> &'static str {
        match self {
            Action::UserCreate
            | Action::UserTakeover
            | Action::UserInvite
            | Action::UserReplace
            | Action::UserUpdate
            | Action::UserDeactivate
            | Action::UserRemove
            | Action::UserDelete => "User",
            Action::GroupCreate
            | Action::GroupTakeover
            | Action::GroupReplace
            | Action::GroupUpdate
            | Action::GroupRename
            | Action::GroupDelete
            | Action::GroupAddMember
            | Action::GroupRemoveMember => "Group",
            Action::RoleBindingCreate | Action::RoleBindingDelete => "RoleBinding",
            Action::TokenCreate | Action::TokenRotate | Action::TokenRevoke => "Token",
            Action::SettingsUpdate => "Settings",
            Action::StoreRepair => "Store",
        }
    }
}

/// The operation a record describes: what was done, to which resource.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Op<'a> {
    pub(crate) action: Action,
    /// Empty when the write was refused before the resource had an id.
    pub(crate) resource_id: &'a str,
}

impl<'a> Op<'a> {
    pub(crate) fn new(action: Action, resource_id: &'a str) -> Self {
        Op { action, resource_id }
    }
}

/// The write that records `op` (and, for a refusal, the error).
pub(crate) fn record(
    keys: &AccountKeys,
    env: &impl Env,
    actor: &Actor,
    request: &RequestInfo,
    op: Op<'_>,
    failure: Option<&ScimError>,
) -> Write {
    let now = env.now_millis();
    let nonce = crate::accounts::random_hex(env, 4);
    let mut rec = json!({
        "id": format!("{now:013}-{nonce}"),
        "time": format_rfc3339(now),
        "actor": actor.to_json(),
        "client": request.client,
        "operation": op.action.name(),
        "resource": {"type": op.action.resource_type(), "id": op.resource_id},
        "outcome": if failure.is_some() { "failure" } else { "success" },
        "requestId": request.id,
    });
    if let Some(ua) = &request.user_agent {
        rec["userAgent"] = ua.clone().into();
    }
    if let Some(err) = failure {
        rec["status"] = err.status.into();
        rec["detail"] = err.detail.clone().into();
        if let Some(code) = err.code {
            rec["code"] = code.into();
        }
    }
    // A JSON object always serialises.
    Write::create(keys.audit(now, &nonce), serde_json::to_vec(&rec).unwrap_or_default())
}

/// Which records a listing returns.
#[derive(Debug, Default)]
pub(crate) struct AuditQuery {
    pub(crate) after: Option<String>,
    pub(crate) count: usize,
    pub(crate) since: Option<i64>,
    pub(crate) until: Option<i64>,
    pub(crate) operation: Option<String>,
    pub(crate) actor: Option<String>,
    pub(crate) resource_id: Option<String>,
    pub(crate) outcome: Option<String>,
    pub(crate) client: Option<String>,
}

/// Most records one listing returns, and most it examines.
pub(crate) const MAX_AUDIT_PAGE: usize = 1000;
const MAX_AUDIT_SCAN: usize = 20_000;

impl AuditQuery {
    pub(crate) fn parse(params: &[(String, String)]) -> Result<Self, ScimError> {
        let mut q = AuditQuery { count: 100, ..Default::default() };
        for (key, value) in params {
            match key.as_str() {
                "cursor" => q.after = Some(value.clone()),
                "count" => {
                    q.count = value
                        .parse::<usize>()
                        .ok()
                        .filter(|c| (1..=MAX_AUDIT_PAGE).contains(c))
                        .ok_or_else(|| ScimError::invalid_value(format!("count is 1 to {MAX_AUDIT_PAGE}")))?
                }
                "since" | "until" => {
                    let t = parse_rfc3339(value)
                        .ok_or_else(|| ScimError::invalid_value(format!("{key} must be an RFC 3339 time")))?;
                    if key == "since" { q.since = Some(t) } else { q.until = Some(t) }
                }
                "operation" => q.operation = Some(value.clone()),
                "actor" => q.actor = Some(value.clone()),
                "resourceId" => q.resource_id = Some(value.clone()),
                "outcome" => q.outcome = Some(value.clone()),
                "client" => q.client = Some(value.clone()),
                other => {
                    return Err(ScimError::invalid_value(format!(
                        "unknown parameter {other:?}; the audit log takes cursor, count, since, until, operation, actor, resourceId, outcome, client"
                    )));
                }
            }
        }
        Ok(q)
    }

    fn matches(&self, rec: &Map<String, Value>) -> bool {
        let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
        if let Some(op) = &self.operation {
            // `user.` selects every user operation.
            let name = s(rec.get("operation"));
            if !(name == *op || (op.ends_with('.') && name.starts_with(op.as_str()))) {
                return false;
            }
        }
        if let Some(actor) = &self.actor {
            let a = rec.get("actor");
            let kind = s(a.and_then(|a| a.get("kind")));
            let token = s(a.and_then(|a| a.get("tokenId")));
            if *actor != kind && *actor != token {
                return false;
            }
        }
        let eq = |want: &Option<String>, got: String| want.as_ref().is_none_or(|w| *w == got);
        eq(&self.resource_id, s(rec.get("resource").and_then(|r| r.get("id"))))
            && eq(&self.outcome, s(rec.get("outcome")))
            && eq(&self.client, s(rec.get("client")))
    }
}

/// One page of an account's log, oldest first; `next` continues it.
pub(crate) fn list(
    store: &impl Store,
    keys: &AccountKeys,
    q: &AuditQuery,
) -> Result<(Vec<Value>, Option<String>), ScimError> {
    let prefix = keys.audit_log();
    let mut after = match (&q.after, q.since) {
        (Some(cursor), _) => {
            if cursor.is_empty() || cursor.len() > 64 || cursor.contains('/') {
                return Err(ScimError::new(
                    400,
                    Some(crate::error::ScimType::InvalidCursor),
                    "the cursor is not one this log issued",
                ));
            }
            Some(format!("{prefix}{cursor}"))
        }
        // Every key of a later millisecond sorts after `<since-1>~`.
        (None, Some(since)) => Some(format!("{prefix}{:013}~", since - 1)),
        (None, None) => None,
    };
    let until = q.until.map(|u| format!("{prefix}{u:013}~"));
    let mut items = Vec::new();
    let mut examined = 0;
    loop {
        let page = store.scan(&prefix, after.as_deref(), 500)?;
        for entry in &page.entries {
            if until.as_ref().is_some_and(|u| entry.key > *u) {
                return Ok((items, None));
            }
            examined += 1;
            if let Ok(Value::Object(rec)) = serde_json::from_slice::<Value>(&entry.value)
                && q.matches(&rec)
            {
                items.push(Value::Object(rec));
            }
            if items.len() == q.count || examined == MAX_AUDIT_SCAN {
                // More may follow: hand out where we stopped.
                return Ok((items, Some(entry.key[prefix.len()..].to_owned())));
            }
        }
        if !page.more {
            return Ok((items, None));
        }
        after = page.entries.last().map(|e| e.key.clone());
    }
}
