//! The admin console over HTTP, without a browser: sign-in, the session
//! cookie and its flags, CSRF refusals, escaping, the rules and refusals
//! on SCIM-managed groups, a token shown once. The browser run
//! (`tests/console/`) clicks through the same pages in headless Chromium.

use serde_json::json;

use crate::server::Server;
use scimlet_vectors::http::{self, Response};

const ADMIN: &str = "console-admin-token-0123456789";

struct Browser<'s> {
    server: &'s Server,
    cookie: Option<String>,
}

impl Browser<'_> {
    fn send(&self, method: &str, path: &str, form: &[(&str, &str)]) -> Response {
        let mut headers = Vec::new();
        if let Some(cookie) = &self.cookie {
            headers.push(("Cookie".to_owned(), cookie.clone()));
        }
        let body = if method == "POST" {
            headers.push(("Content-Type".to_owned(), "application/x-www-form-urlencoded".to_owned()));
            form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish().into_bytes()
        } else {
            Vec::new()
        };
        http::send(&self.server.addr, method, path, &headers, &body).expect("the server answers")
    }

    fn page(&self, path: &str) -> String {
        let r = self.send("GET", path, &[]);
        assert_eq!(r.status, 200, "{path}: {}", String::from_utf8_lossy(&r.body));
        String::from_utf8(r.body).unwrap()
    }
}

fn text(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// The CSRF token a page's forms carry.
fn csrf(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let at = page.find(marker).expect("a form with a CSRF token") + marker.len();
    page[at..at + 64].to_owned()
}

#[test]
fn console_signs_in_shows_rules_refuses_forgeries_and_shows_a_token_once() {
    let (server, boot) = Server::start_with_env(&[("SCIMLET_ADMIN_TOKEN", ADMIN)]);
    let scim = |method: &str, path: &str, body: serde_json::Value| {
        let r = server.request(method, &format!("{}{path}", boot.base()), &boot.token, Some(&body));
        assert!(r.status < 300, "{}", text(&r));
        r.json()
    };
    let user = scim(
        "POST",
        "/Users",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada@example.com",
               "displayName": "<script>alert(1)</script> Ada", "emails": [{"value": "ada@example.com", "primary": true}]}),
    );
    let uid = user["id"].as_str().unwrap().to_owned();
    scim(
        "POST",
        "/Groups",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Engineering",
               "members": [{"value": uid}]}),
    );
    let account = &boot.account;
    let mut browser = Browser { server: &server, cookie: None };

    // Signed out: every page sends to the sign-in page, which is locked down.
    let r = browser.send("GET", &format!("/admin/accounts/{account}/users"), &[]);
    assert_eq!((r.status, r.header("location")), (303, Some("/admin/login")));
    let r = browser.send("GET", "/admin/login", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-security-policy"),
        Some(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(!text(&r).contains("<script"), "no script on any page");

    let r = browser.send("POST", "/admin/login", &[("token", "not-the-token")]);
    assert_eq!(r.status, 401);
    assert!(r.header("set-cookie").is_none() && text(&r).contains("not the admin token"), "{}", text(&r));
    let r = browser.send("POST", "/admin/login", &[("token", ADMIN)]);
    assert_eq!((r.status, r.header("location")), (303, Some("/admin")));
    let cookie = r.header("set-cookie").unwrap().to_owned();
    for flag in ["; Path=/admin", "; HttpOnly", "; SameSite=Strict", "; Max-Age=28800"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    assert!(!cookie.contains(ADMIN), "the browser never holds the admin token");
    browser.cookie = Some(cookie.split(';').next().unwrap().to_owned());

    // Users: found by search, their source shown, their text escaped.
    let users = browser.page(&format!("/admin/accounts/{account}/users?search=ada&source=scim"));
    assert!(users.contains("ada@example.com") && users.contains("badge scim"), "{users}");
    assert!(users.contains("&lt;script&gt;alert(1)&lt;/script&gt; Ada") && !users.contains("<script>alert"));
    let user_page = browser.page(&format!("/admin/accounts/{account}/users/{uid}"));
    assert!(user_page.contains("Managed by SCIM") && user_page.contains("Engineering"), "{user_page}");

    // A SCIM-managed group: its rule on the page, an edit refused with the
    // API's reason, and nothing changed.
    let group = browser.page(&format!("/admin/accounts/{account}/groups/Engineering"));
    assert!(group.contains("Managed by SCIM") && group.contains("ada@example.com"), "{group}");
    let token = csrf(&group);
    let rename = format!("/admin/accounts/{account}/groups/Engineering/rename");
    let r = browser.send("POST", &rename, &[("name", "Renamed")]);
    assert_eq!(r.status, 403, "no CSRF token, no change");
    let r = browser.send("POST", &rename, &[("name", "Renamed"), ("csrf", &"0".repeat(64))]);
    assert_eq!(r.status, 403, "a wrong CSRF token, no change");
    let r = browser.send("POST", &rename, &[("name", "Renamed"), ("csrf", &token)]);
    assert_eq!(r.status, 409, "{}", text(&r));
    assert!(
        text(&r).contains("role=\"alert\"><strong>Refused:</strong> group &quot;Engineering&quot; is managed by SCIM")
    );
    let still = server.request("GET", &format!("{}/Groups/Engineering", boot.base()), &boot.token, None);
    assert_eq!(still.json()["displayName"], "Engineering");

    // Tokens: a new one is shown once, then only listed; revoking works.
    let tokens = format!("/admin/accounts/{account}/tokens");
    let r = browser.send("POST", &tokens, &[("name", "okta-prod"), ("days", "30"), ("csrf", &token)]);
    assert_eq!(r.status, 200);
    let page = text(&r);
    let marker = "id=\"secret\" readonly value=\"";
    let at = page.find(marker).expect("the secret is shown") + marker.len();
    let secret = page[at..].split('"').next().unwrap().to_owned();
    assert!(secret.starts_with("scimlet_"), "{secret}");
    let listed = browser.page(&tokens);
    assert!(listed.contains("okta-prod") && !listed.contains(&secret), "shown only once");
    let works = server.request("GET", &format!("{}/Users", boot.base()), &secret, None);
    assert_eq!(works.status, 200);

    // Rotating gives a new secret, shown once; the old one lasts the grace.
    let token_id = secret.split('_').nth(1).unwrap();
    let r = browser.send("POST", &format!("{tokens}/{token_id}/rotate"), &[("grace_hours", "0"), ("csrf", &token)]);
    assert_eq!(r.status, 200, "{}", text(&r));
    let page = text(&r);
    let at = page.find(marker).expect("the new secret is shown") + marker.len();
    let rotated = page[at..].split('"').next().unwrap().to_owned();
    assert!(rotated.starts_with("scimlet_") && rotated != secret, "{rotated}");
    assert_eq!(server.request("GET", &format!("{}/Users", boot.base()), &secret, None).status, 401, "no grace");
    let secret = rotated;
    let token_id = secret.split('_').nth(1).unwrap();
    let r = browser.send("POST", &format!("{tokens}/{token_id}/revoke"), &[("csrf", &token)]);
    assert_eq!((r.status, r.header("location")), (303, Some(format!("{tokens}?done=revoked").as_str())));
    assert!(browser.page(&format!("{tokens}?done=revoked")).contains("The token was revoked."));
    assert_eq!(server.request("GET", &format!("{}/Users", boot.base()), &secret, None).status, 401);

    // The audit log shows what the console did, through the admin API.
    let audit = browser.page(&format!("/admin/accounts/{account}/audit?operation=token.revoke"));
    assert!(audit.contains("token.revoke") && audit.contains("admin-api"), "{audit}");
    assert!(browser.page(&format!("/admin/accounts/{account}/migration")).contains("1 (0 native, 1 SCIM)"));

    // Signing out ends the session: the old cookie no longer opens a page.
    let r = browser.send("POST", "/admin/logout", &[("csrf", &token)]);
    assert_eq!(r.status, 303);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    let r = browser.send("GET", &format!("/admin/accounts/{account}/users"), &[]);
    assert_eq!((r.status, r.header("location")), (303, Some("/admin/login")));
}

#[test]
fn console_is_off_without_an_admin_token() {
    let (server, _) = Server::start();
    let r = http::send(&server.addr, "GET", "/admin/login", &[], &[]).unwrap();
    assert_eq!(r.status, 404);
    assert!(text(&r).contains("--admin-token-file"));
}
