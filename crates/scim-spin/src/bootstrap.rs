//! `POST /_scimlet/bootstrap`: the first account and its first SCIM token on
//! a fresh database, for platforms where scimlet has no command line (Spin).
//!
//! Guarded by the secret Spin variable `bootstrap_token` (at least 16
//! characters; unset or shorter disables the route, which then answers 404).
//! The caller sends it as `Authorization: Bearer <bootstrap_token>` and may
//! name the account with a JSON body `{"name": "..."}` (default `default`).
//! The first call answers 201 with the account, its tenant URL and the token,
//! the only time the token is shown; every later call answers 409 and changes
//! nothing (`Service::bootstrap` decides, in one commit).

use scim_core::{AdminError, Env, MIN_ADMIN_TOKEN, Request, Response, Service, Store};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

/// The route's path.
pub const PATH: &str = "/_scimlet/bootstrap";

pub fn is_route(request: &Request) -> bool {
    let path = request
        .path_with_query
        .split('?')
        .next()
        .unwrap_or_default();
    path == PATH
}

fn answer(status: u16, body: Value) -> Response {
    Response {
        status,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("cache-control".into(), "no-store".into()),
        ],
        body: serde_json::to_vec(&body).unwrap_or_default(),
    }
}

fn error(status: u16, detail: &str) -> Response {
    answer(status, json!({"status": status, "detail": detail}))
}

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Whether the request carries `Authorization: Bearer <expected>`.
fn authorized(request: &Request, expected: &str) -> bool {
    let Some(given) = header(request, "authorization").and_then(|v| {
        let (scheme, token) = v.trim().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim())
    }) else {
        return false;
    };
    given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

pub fn handle<S: Store, E: Env>(
    service: &Service<S, E>,
    request: &Request,
    bootstrap_token: Option<&str>,
) -> Response {
    let Some(expected) = bootstrap_token
        .map(str::trim)
        .filter(|t| t.len() >= MIN_ADMIN_TOKEN)
    else {
        return error(
            404,
            "bootstrap is disabled: set the Spin variable bootstrap_token (16 characters or more)",
        );
    };
    if request.method != "POST" {
        let mut response = error(405, "use POST");
        response.headers.push(("allow".into(), "POST".into()));
        return response;
    }
    if !authorized(request, expected) {
        let mut response = error(401, "Authorization: Bearer <bootstrap_token> required");
        response
            .headers
            .push(("www-authenticate".into(), "Bearer".into()));
        return response;
    }
    let name = if request.body.iter().all(u8::is_ascii_whitespace) {
        "default".to_owned()
    } else {
        match serde_json::from_slice::<Value>(&request.body) {
            Ok(Value::Object(o)) => match o.get("name") {
                None => "default".to_owned(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return error(400, "\"name\" must be a string"),
            },
            _ => {
                return error(
                    400,
                    "body must be a JSON object such as {\"name\": \"default\"}",
                );
            }
        }
    };
    match service.bootstrap(&name) {
        Ok(Some((account, token))) => {
            let scheme = request.scheme.as_deref().unwrap_or("http");
            let authority = request
                .authority
                .as_deref()
                .or_else(|| header(request, "host"))
                .unwrap_or("localhost");
            answer(
                201,
                json!({
                    "account": {"id": account.id, "name": account.name, "created": account.created, "scimPath": account.scim_path},
                    "tenantUrl": format!("{scheme}://{authority}{}", account.scim_path),
                    "token": {"id": token.info.id, "token": token.token, "expiresAt": token.info.expires_at},
                }),
            )
        }
        Ok(None) => error(
            409,
            "already bootstrapped: this database already holds an account",
        ),
        Err(AdminError::Invalid(why)) => error(400, &why),
        Err(AdminError::NotFound(why)) => error(404, &why),
        Err(AdminError::Unavailable(why)) => {
            eprintln!("scimlet: bootstrap: {why}");
            error(503, "storage unavailable")
        }
    }
}
