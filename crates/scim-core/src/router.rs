//! Routing: from a request to the operation that answers it.
//!
//! Order of checks: route shape, request size, authentication, then the
//! operation. Authentication comes before anything that reads account data,
//! and an unknown account is indistinguishable from a bad token.

use serde_json::Value;

use crate::admin_api;
use crate::audit::{Actor, RequestInfo};
use crate::env::Env;
use crate::error::ScimError;
use crate::http::{self, Request, Response};
use crate::list::{self, ListQuery};
use crate::outcome::Outcome;
use crate::schema::{GROUP_TYPE, USER_TYPE};
use crate::store::Store;
use crate::tenant::{self, Tenant};
use crate::{Service, bulk, discovery};

/// Largest request body accepted, in bytes.
pub const MAX_BODY: usize = 1024 * 1024;

pub(crate) fn handle<S: Store, E: Env>(service: &Service<S, E>, request: &Request) -> Response {
    if let Some(rest) = request.path_with_query.strip_prefix(admin_api::PREFIX)
        && (rest.is_empty() || rest.starts_with(['/', '?']))
    {
        return admin_api::handle(service, request, rest);
    }
    let info =
        RequestInfo::from_headers(service.env(), request.header("x-request-id"), request.header("user-agent"), "other");
    let request_id = info.id.clone();
    let mut response = match route(service, request, info) {
        Ok(response) => response,
        Err(err) => err.to_response(),
    };
    response.headers.push(("x-request-id".into(), request_id));
    response
}

fn route<S: Store, E: Env>(
    service: &Service<S, E>,
    request: &Request,
    info: RequestInfo,
) -> Result<Response, ScimError> {
    let (path, params) = http::split_query(&request.path_with_query);
    let Some(matched) = service.config().base_paths().matching(path) else {
        return Err(ScimError::not_found(format!(
            "no SCIM endpoint at {path:?}; SCIM lives under {}/",
            service.config().base_paths().scim_path("<accountId>")
        )));
    };
    let resource_path = matched.resource.trim_end_matches('/');
    let account = http::percent_decode(matched.account);
    if account.is_empty() {
        return Err(ScimError::not_found("the path names no account"));
    }
    if request.body.len() > MAX_BODY {
        return Err(ScimError::new(413, None, format!("request bodies are limited to {MAX_BODY} bytes")));
    }
    let Some(token_id) = service.authenticate(&account, request.header("authorization"))? else {
        return Err(ScimError::unauthorized());
    };
    let base_url = format!("{}{}", request.origin(), matched.base);
    let tenant = Tenant::new(service, &account, base_url, Actor::Token(token_id), info);
    let call = Call {
        method: &request.method,
        path: resource_path,
        params: &params,
        body: Body::Raw(&request.body),
        if_match: request.header("if-match"),
        if_none_match: request.header("if-none-match"),
    };
    // Clean-up that large deletes left is paid for by writes, in bounded
    // steps, after the answer is decided: by the write that left it and by
    // every later write that finds it waiting.
    let waiting = request.method != "GET" && tenant.work_waiting();
    let outcome = dispatch(&tenant, call);
    if waiting || tenant.left_work() {
        tenant.sweep(crate::sweep::STEPS_PER_WRITE);
    }
    outcome.map(Outcome::into_response)
}

/// A request body: raw bytes from HTTP, or a JSON value already parsed
/// (a Bulk operation's `data`).
pub(crate) enum Body<'r> {
    Raw(&'r [u8]),
    Json(Option<&'r Value>),
}

impl Body<'_> {
    /// The body as JSON; a write handler reads it inside its audited
    /// closure, so a body it cannot use is a refusal on record too.
    pub(crate) fn json(&self) -> Result<Value, ScimError> {
        match self {
            Body::Raw(bytes) => tenant::parse_body(bytes),
            Body::Json(Some(value)) => Ok((*value).clone()),
            Body::Json(None) => Err(ScimError::invalid_syntax("the operation needs \"data\"")),
        }
    }
}

/// One operation on an authenticated tenant: what HTTP and Bulk share.
pub(crate) struct Call<'r> {
    pub(crate) method: &'r str,
    /// Path below the account, e.g. `Users/123`.
    pub(crate) path: &'r str,
    pub(crate) params: &'r [(String, String)],
    pub(crate) body: Body<'r>,
    pub(crate) if_match: Option<&'r str>,
    pub(crate) if_none_match: Option<&'r str>,
}

/// Runs one operation. Each write handler records its own refusals (under
/// the name its success records), so there is no second table of names.
pub(crate) fn dispatch<S: Store, E: Env>(tenant: &Tenant<'_, S, E>, call: Call<'_>) -> Result<Outcome, ScimError> {
    let segments: Vec<String> = call.path.split('/').filter(|s| !s.is_empty()).map(http::percent_decode).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (method, params, if_match, if_none_match) = (call.method, call.params, call.if_match, call.if_none_match);
    let body = &call.body;
    let document = |v: Value| Ok(Outcome::Document(v));
    match (segments.as_slice(), method) {
        (["Users"], "GET") => tenant.list_users(&ListQuery::parse(&USER_TYPE, params)?),
        (["Users", ".search"], "POST") => tenant.list_users(&ListQuery::from_search(&USER_TYPE, &body.json()?)?),
        (["Groups", ".search"], "POST") => tenant.list_groups(&ListQuery::from_search(&GROUP_TYPE, &body.json()?)?),
        ([".search"], "POST") => tenant.search_all(&body.json()?),
        ([".search"] | ["Users" | "Groups", ".search"] | ["Bulk"], m) if m != "POST" => Err(not_allowed("POST")),
        (["Users"], "POST") => tenant.create_user(body, &list::projection(&USER_TYPE, params)),
        (["Users", id], "GET") => tenant.get_user(id, &list::projection(&USER_TYPE, params), if_none_match),
        (["Users", id], "PUT") => tenant.replace_user(id, body, if_match, &list::projection(&USER_TYPE, params)),
        (["Users", id], "PATCH") => tenant.patch_user(id, body, if_match, &list::projection(&USER_TYPE, params)),
        (["Users", id], "DELETE") => tenant.delete_user(id, if_match),
        (["Groups"], "GET") => tenant.list_groups(&ListQuery::parse(&GROUP_TYPE, params)?),
        (["Groups"], "POST") => tenant.create_group(body, &list::projection(&GROUP_TYPE, params)),
        (["Groups", id], "GET") => tenant.get_group(id, &list::projection(&GROUP_TYPE, params), if_none_match),
        (["Groups", id], "PUT") => tenant.replace_group(id, body, if_match, &list::projection(&GROUP_TYPE, params)),
        (["Groups", id], "PATCH") => {
            let asks = params
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("attributes") || k.eq_ignore_ascii_case("excludedAttributes"));
            let projection = asks.then(|| list::projection(&GROUP_TYPE, params));
            tenant.patch_group(id, body, if_match, projection.as_ref())
        }
        (["Groups", id], "DELETE") => tenant.delete_group(id, if_match),
        (["Bulk"], "POST") => match body {
            Body::Raw(_) => bulk::run(tenant, &body.json()?),
            Body::Json(_) => Err(ScimError::invalid_value("Bulk operations cannot nest")),
        },
        (["ServiceProviderConfig"], "GET") => document(discovery::service_provider_config(&tenant.base_url)),
        (["ResourceTypes"], "GET") => {
            document(discovery::resource_types(&tenant.base_url, None).unwrap_or(Value::Null))
        }
        (["ResourceTypes", id], "GET") => discovery::resource_types(&tenant.base_url, Some(id))
            .map(Outcome::Document)
            .ok_or_else(|| ScimError::not_found(format!("no resource type {id:?}"))),
        (["Schemas"], "GET") => document(discovery::schemas(&tenant.base_url, None).unwrap_or(Value::Null)),
        (["Schemas", id], "GET") => discovery::schemas(&tenant.base_url, Some(id))
            .map(Outcome::Document)
            .ok_or_else(|| ScimError::not_found(format!("no schema {id:?}"))),
        (["Me", ..], _) => Err(ScimError::new(
            501,
            None,
            "/Me is not supported: scimlet authenticates provisioning clients, not end users",
        )),
        (["Users" | "Groups"], _) => Err(not_allowed("GET, POST")),
        (["Users" | "Groups", _], _) => Err(not_allowed("GET, PUT, PATCH, DELETE")),
        (["ServiceProviderConfig"] | ["ResourceTypes" | "Schemas", ..], _) if segments.len() <= 2 => {
            Err(not_allowed("GET"))
        }
        _ => Err(ScimError::not_found(format!("no SCIM endpoint at {:?}", call.path))),
    }
}

fn not_allowed(allow: &str) -> ScimError {
    ScimError::new(405, None, format!("method not allowed here; allowed: {allow}")).with_header("allow", allow)
}
