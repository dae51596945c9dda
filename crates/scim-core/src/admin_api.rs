//! The native admin API: JSON over HTTP under `/api/accounts/…`, for the
//! account's admins and the operator's tooling. It authenticates with the
//! host-configured admin token, not with SCIM tokens, and it shares every
//! rule with SCIM: the handlers here only parse, call the tenant and shape
//! JSON.

use serde_json::{Value, json};

use crate::Service;
use crate::accounts::{Account, NewToken, TokenInfo};
use crate::audit::{self, Action, Actor, AuditQuery, RequestInfo};
use crate::env::Env;
use crate::error::ScimError;
use crate::http::{self, Request, Response};
use crate::migration;
use crate::native::Page;
use crate::store::Store;
use crate::tenant::{self, Tenant};

/// Where the admin API lives; hosts that route by path send everything
/// under it to the core when the admin API is enabled.
pub const PREFIX: &str = "/api/accounts";

fn json_response(status: u16, body: &Value) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(body).unwrap_or_default(),
    }
}

fn page_body(items: Vec<Value>, next: Option<String>) -> Value {
    json!({"items": items, "nextCursor": next})
}

fn account_json(a: &Account) -> Value {
    json!({"id": a.id, "name": a.name, "created": a.created, "scimPath": a.scim_path})
}

pub(crate) fn token_json(t: &TokenInfo) -> Value {
    json!({
        "id": t.id,
        "accountId": t.account_id,
        "name": t.name,
        "created": t.created,
        "expiresAt": t.expires_at,
        "revokedAt": t.revoked_at,
        "lastUsedAt": t.last_used_at,
        "expiryWarning": t.expiry_warning,
    })
}

fn new_token_json(t: &NewToken) -> Value {
    let mut v = token_json(&t.info);
    v["token"] = t.token.clone().into();
    v
}

fn not_allowed(allow: &str) -> ScimError {
    ScimError::new(405, None, format!("method not allowed here; allowed: {allow}")).with_header("allow", allow)
}

fn u32_field(body: &Value, key: &str) -> Result<Option<u32>, ScimError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| ScimError::invalid_value(format!("{key} must be a non-negative integer"))),
    }
}

fn name_field(body: &Value) -> Result<&str, ScimError> {
    body.get("name").and_then(Value::as_str).ok_or_else(|| ScimError::invalid_value("name is required"))
}

/// Answers a request under [`PREFIX`].
pub(crate) fn handle<S: Store, E: Env>(service: &Service<S, E>, request: &Request, path: &str) -> Response {
    let request_info = RequestInfo::from_headers(
        service.env(),
        request.header("x-request-id"),
        request.header("user-agent"),
        "admin-api",
    );
    let mut response = match route(service, request, path, &request_info) {
        Ok(r) => r,
        Err(e) => e.to_response(),
    };
    response.headers.push(("x-request-id".into(), request_info.id));
    response
}

fn route<S: Store, E: Env>(
    service: &Service<S, E>,
    request: &Request,
    path: &str,
    info: &RequestInfo,
) -> Result<Response, ScimError> {
    if !service.config().admin_enabled() {
        return Err(ScimError::rule(
            403,
            "admin_api_disabled",
            "the admin API is disabled: configure an admin token on the host to enable it",
        ));
    }
    if request.body.len() > crate::MAX_BODY {
        return Err(ScimError::new(413, None, format!("request bodies are limited to {} bytes", crate::MAX_BODY)));
    }
    if !service.authenticate_admin(request.header("authorization")) {
        return Err(ScimError::rule(401, "unauthorized", "missing or invalid admin token")
            .with_header("www-authenticate", "Bearer realm=\"scimlet-admin\""));
    }
    let (path, params) = http::split_query(path);
    let segments: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(http::percent_decode).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = request.method.as_str();
    let body = || tenant::parse_body(&request.body);
    match (segments.as_slice(), method) {
        ([], "GET") => Ok(json_response(
            200,
            &json!({"items": service.list_accounts()?.iter().map(account_json).collect::<Vec<_>>()}),
        )),
        ([], "POST") => {
            let account = service.create_account(name_field(&body()?)?)?;
            Ok(json_response(201, &account_json(&account)))
        }
        ([], _) => Err(not_allowed("GET, POST")),
        ([account, rest @ ..], _) => {
            let account = service.get_account(account)?;
            // Accounts, their tokens and the audit log are the operator's
            // door under every policy; the rest manages native records.
            let policy = service.config().policy();
            if !policy.native_records() && !matches!(rest, [] | ["tokens", ..] | ["audit", ..]) {
                return Err(ScimError::rule(
                    404,
                    "not_found",
                    format!(
                        "the {} policy keeps no native records: the admin API manages accounts, their tokens and the audit log only",
                        policy.name()
                    ),
                ));
            }
            let tenant = Tenant::new(service, &account.id, request.origin(), Actor::Admin, info.clone());
            account_route(&tenant, &account, rest, method, &params, &request.body)
        }
    }
}

fn account_route<S: Store, E: Env>(
    t: &Tenant<'_, S, E>,
    account: &Account,
    rest: &[&str],
    method: &str,
    params: &[(String, String)],
    raw: &[u8],
) -> Result<Response, ScimError> {
    let body = || tenant::parse_body(raw);
    let ok = |v: Value| Ok(json_response(200, &v));
    let service = t.service;
    let (actor, info) = (&t.actor, &t.request);
    match (rest, method) {
        ([], "GET") => ok(account_json(account)),
        ([], _) => Err(not_allowed("GET")),

        (["check"], "POST") => {
            let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
            let count = match param("count") {
                Some(c) => c.parse().map_err(|_| ScimError::invalid_value("count must be a number from 1 to 2000"))?,
                None => usize::MAX,
            };
            ok(t.check(param("cursor").unwrap_or_default(), count, param("repair") == Some("true"))?)
        }
        (["check"], _) => Err(not_allowed("POST")),

        (["settings"], "GET") => ok(t.settings()?.to_json()),
        (["settings"], "PATCH") => t.audited(Action::SettingsUpdate, &account.id, || {
            ok(service.update_settings(&account.id, &body()?, actor, info)?.to_json())
        }),
        (["settings"], _) => Err(not_allowed("GET, PATCH")),

        (["tokens"], "GET") => {
            ok(json!({"items": service.list_tokens(&account.id)?.iter().map(token_json).collect::<Vec<_>>()}))
        }
        (["tokens"], "POST") => t.audited(Action::TokenCreate, "", || {
            let b = body()?;
            let token =
                service.create_token_by(actor, info, &account.id, name_field(&b)?, u32_field(&b, "expiresInDays")?)?;
            Ok(json_response(201, &new_token_json(&token)))
        }),
        (["tokens"], _) => Err(not_allowed("GET, POST")),
        (["tokens", id], "DELETE") => t.audited(Action::TokenRevoke, id, || {
            ok(token_json(&service.revoke_token_by(actor, info, &account.id, id)?))
        }),
        (["tokens", _], _) => Err(not_allowed("DELETE")),
        (["tokens", id, "rotate"], "POST") => t.audited(Action::TokenRotate, id, || {
            let b = if raw.is_empty() { json!({}) } else { body()? };
            let grace = u32_field(&b, "graceHours")?.unwrap_or(24);
            let (new, old) =
                service.rotate_token_by(actor, info, &account.id, id, grace, u32_field(&b, "expiresInDays")?)?;
            Ok(json_response(201, &json!({"token": new_token_json(&new), "previous": token_json(&old)})))
        }),

        (["users"], "GET") => {
            let (items, next) = t.admin_list_users(&Page::parse(params, &[])?)?;
            ok(page_body(items, next))
        }
        (["users"], "POST") => {
            t.audited(Action::UserCreate, "", || Ok(json_response(201, &t.admin_create_user(&body()?)?)))
        }
        (["users"], _) => Err(not_allowed("GET, POST")),
        (["users", id], "GET") => ok(t.admin_get_user(id)?),
        (["users", id], "PATCH") => t.audited(Action::UserUpdate, id, || ok(t.admin_update_user(id, &body()?)?)),
        (["users", id], "DELETE") => {
            t.audited(Action::UserRemove, id, || t.admin_remove_user(id).map(|()| Response::empty(204)))
        }
        (["users", _], _) => Err(not_allowed("GET, PATCH, DELETE")),

        (["groups"], "GET") => {
            let (items, next) = t.admin_list_groups(&Page::parse(params, &[])?)?;
            ok(page_body(items, next))
        }
        (["groups"], "POST") => {
            t.audited(Action::GroupCreate, "", || Ok(json_response(201, &t.admin_create_group(&body()?)?)))
        }
        (["groups"], _) => Err(not_allowed("GET, POST")),
        (["groups", id], "GET") => ok(t.admin_get_group(id)?),
        (["groups", id], "PATCH") => t.audited(Action::GroupRename, id, || ok(t.admin_rename_group(id, &body()?)?)),
        (["groups", id], "DELETE") => {
            t.audited(Action::GroupDelete, id, || t.admin_delete_group(id).map(|()| Response::empty(204)))
        }
        (["groups", _], _) => Err(not_allowed("GET, PATCH, DELETE")),
        (["groups", id, "members", user], "PUT") => {
            t.audited(Action::GroupAddMember, id, || ok(t.admin_set_member(id, user, true)?))
        }
        (["groups", id, "members", user], "DELETE") => {
            t.audited(Action::GroupRemoveMember, id, || ok(t.admin_set_member(id, user, false)?))
        }
        (["groups", _, "members", _], _) => Err(not_allowed("PUT, DELETE")),

        (["role-bindings"], "GET") => {
            let page = Page::parse(params, &["principalType", "principalId"])?;
            let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            let principal = match (get("principalType"), get("principalId")) {
                (Some(kind), Some(id)) => Some((kind, id)),
                (None, None) => None,
                _ => return Err(ScimError::invalid_value("principalType and principalId go together")),
            };
            let (items, next) = t.list_bindings(principal, page.cursor.as_deref(), page.count)?;
            ok(page_body(items.iter().map(|b| b.to_json()).collect(), next))
        }
        (["role-bindings"], "POST") => {
            t.audited(Action::RoleBindingCreate, "", || Ok(json_response(201, &t.create_binding(&body()?)?.to_json())))
        }
        (["role-bindings"], _) => Err(not_allowed("GET, POST")),
        (["role-bindings", id], "GET") => {
            let (b, _) = t
                .load_binding(id)?
                .ok_or_else(|| ScimError::not_found(format!("no role binding {id:?} in this account")))?;
            ok(b.to_json())
        }
        (["role-bindings", id], "DELETE") => {
            t.audited(Action::RoleBindingDelete, id, || t.delete_binding(id).map(|()| Response::empty(204)))
        }
        (["role-bindings", _], _) => Err(not_allowed("GET, DELETE")),

        (["migration-report"], "GET") => ok(t.migration_report()?),
        (["migration-report"], _) => Err(not_allowed("GET")),

        (["export", "users"], "GET") => {
            let page = Page::parse(params, &["format"])?;
            let format = params.iter().find(|(k, _)| k == "format").map(|(_, v)| v.as_str()).unwrap_or("json");
            let (items, next) = t.export_users(&page)?;
            let response = match format {
                "json" => json_response(200, &page_body(items, next.clone())),
                "csv" => Response {
                    status: 200,
                    headers: vec![("content-type".into(), "text/csv; charset=utf-8".into())],
                    body: migration::to_csv(&items, page.cursor.is_none()).into_bytes(),
                },
                _ => return Err(ScimError::invalid_value("format is json or csv")),
            };
            // CSV has no room for a cursor in the body: it travels in a header.
            Ok(match next {
                Some(cursor) => response.with_header("x-next-cursor", cursor),
                None => response,
            })
        }
        (["export", "users"], _) => Err(not_allowed("GET")),

        (["audit"], "GET") => {
            let (items, next) = audit::list(t.store(), &t.keys, &AuditQuery::parse(params)?)?;
            ok(page_body(items, next))
        }
        (["audit"], _) => Err(not_allowed("GET")),

        _ => Err(ScimError::not_found(format!("no admin endpoint at /api/accounts/{}/{}", account.id, rest.join("/")))),
    }
}
