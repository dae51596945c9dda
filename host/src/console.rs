//! The admin console: server-rendered pages at `/admin` for the people who
//! run an account, over the native admin API. Every page is one or a few
//! calls of that API, made with the admin token through the component like
//! any other request, so the console can show and do only what the API
//! allows, and its refusals are the API's own.
//!
//! Security, by construction rather than by care on each page:
//! - Sign-in takes the admin token, compared in constant time; the browser
//!   never holds it. It gets a random session id in an `HttpOnly`,
//!   `SameSite=Strict` cookie scoped to `/admin` (`Secure` over HTTPS).
//!   Sessions live in memory for at most eight hours (a restart signs
//!   everyone out); failed sign-ins count as failed authentications for
//!   the runner's per-address bound.
//! - Every form that changes something carries the session's CSRF token,
//!   checked in constant time, besides the cookie's `SameSite=Strict`.
//! - No script at all, and a Content-Security-Policy that allows none and
//!   only this console's own stylesheet; no page may be framed.
//! - Every value shown is HTML-escaped; every id put into an API path or a
//!   link is percent-encoded.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Where the console is served.
pub const PREFIX: &str = "/admin";
const COOKIE: &str = "scimlet_console";
const SESSION_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at once; signing in past it ends the oldest.
const MAX_SESSIONS: usize = 1024;
/// Rows a page shows.
const PAGE: u32 = 50;
/// Largest form body read.
pub const MAX_FORM: usize = 16 * 1024;
const STYLE: &str = include_str!("console.css");
const SECURITY_HEADERS: [(&str, &str); 5] = [
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
    ("x-frame-options", "DENY"),
];

/// One admin API call: status and JSON answer (`null` for none).
pub type ApiFuture<'a> = Pin<Box<dyn Future<Output = (u16, Value)> + Send + 'a>>;

/// What the console needs of the server: admin API calls.
pub trait Api: Sync {
    /// `method path` of the admin API (`/api/accounts/…`) with a JSON body.
    fn call<'a>(&'a self, method: &'a str, path: String, body: Option<Value>) -> ApiFuture<'a>;
}

/// Signed-in sessions.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

struct Session {
    csrf: String,
    expires: Instant,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session: its id and CSRF token.
    fn open(&self) -> Option<(String, String)> {
        let (id, csrf) = (random_hex()?, random_hex()?);
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(id.clone(), Session { csrf: csrf.clone(), expires: now + SESSION_LIFETIME });
        Some((id, csrf))
    }

    /// The CSRF token of a live session.
    fn csrf(&self, id: &str) -> Option<String> {
        let sessions = self.lock();
        sessions.get(id).filter(|s| s.expires > Instant::now()).map(|s| s.csrf.clone())
    }

    fn close(&self, id: &str) {
        self.lock().remove(id);
    }
}

fn random_hex() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

fn same(a: &str, b: &str) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(a.as_bytes(), b.as_bytes()))
}

/// A console request, its body already read (bounded) by the server.
pub struct Request<'a> {
    pub method: &'a str,
    /// Below [`PREFIX`], e.g. `/accounts/abc/users`.
    pub path: &'a str,
    pub query: &'a str,
    pub cookie: Option<&'a str>,
    /// `application/x-www-form-urlencoded` body, for POST.
    pub form: &'a [u8],
    pub https: bool,
}

/// A console answer: status, headers and HTML (or CSS).
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    fn html(status: u16, body: String) -> Answer {
        Answer::typed(status, "text/html; charset=utf-8", body)
    }

    fn typed(status: u16, content_type: &str, body: String) -> Answer {
        let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
        headers.extend(SECURITY_HEADERS.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        Answer { status, headers, body }
    }

    fn redirect(to: &str) -> Answer {
        let mut answer = Answer::html(303, String::new());
        answer.headers.push(("location".into(), to.to_owned()));
        answer
    }

    fn with_cookie(mut self, value: String) -> Answer {
        self.headers.push(("set-cookie".into(), value));
        self
    }
}

/// Answers one request under `/admin`. `admin_token` is `None` when the
/// admin API is off, and the console with it.
pub async fn handle(api: &dyn Api, sessions: &Sessions, admin_token: Option<&str>, req: Request<'_>) -> Answer {
    let Some(admin_token) = admin_token else {
        return Answer::html(
            404,
            layout(
                "Console off",
                None,
                "",
                "<p>The console needs the admin API: start <code>scimlet serve</code> with <code>--admin-token-file</code> (or <code>SCIMLET_ADMIN_TOKEN</code>).</p>",
            ),
        );
    };
    let form: Vec<(String, String)> = form_urlencoded::parse(req.form).into_owned().collect();
    let field = |name: &str| param(&form, name);
    match (req.method, req.path) {
        ("GET", "/style.css") => return Answer::typed(200, "text/css; charset=utf-8", STYLE.to_owned()),
        ("GET", "/login") => return login_page(200, None),
        ("POST", "/login") => {
            if !same(&field("token"), admin_token) {
                return login_page(401, Some("That is not the admin token."));
            }
            let Some((id, _)) = sessions.open() else {
                return login_page(503, Some("The server could not start a session; try again."));
            };
            let secure = if req.https { "; Secure" } else { "" };
            let max_age = SESSION_LIFETIME.as_secs();
            return Answer::redirect(PREFIX).with_cookie(format!(
                "{COOKIE}={id}; Path={PREFIX}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
            ));
        }
        _ => {}
    }
    let session = req.cookie.and_then(|c| cookie_value(c, COOKIE));
    let Some((session, csrf)) = session.and_then(|id| sessions.csrf(id).map(|csrf| (id, csrf))) else {
        return Answer::redirect(&format!("{PREFIX}/login"));
    };
    if req.method == "POST" && !same(&field("csrf"), &csrf) {
        return Answer::html(
            403,
            layout(
                "Refused",
                None,
                &csrf,
                "<p role=\"alert\">This form has expired or did not come from this console. Go back, reload the page and try again.</p>",
            ),
        );
    }
    if (req.method, req.path) == ("POST", "/logout") {
        sessions.close(session);
        return Answer::redirect(&format!("{PREFIX}/login"))
            .with_cookie(format!("{COOKIE}=; Path={PREFIX}; HttpOnly; SameSite=Strict; Max-Age=0"));
    }
    let query: Vec<(String, String)> = form_urlencoded::parse(req.query.as_bytes()).into_owned().collect();
    let q = |name: &str| param(&query, name);
    let ctx = Ctx { api, csrf: &csrf };
    let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    match (req.method, segments.as_slice()) {
        ("GET", []) => ctx.accounts().await,
        ("GET", ["accounts", a]) => Answer::redirect(&format!("{PREFIX}/accounts/{}/users", enc(&decode(a)))),
        ("GET", ["accounts", a, "users"]) => ctx.users(&decode(a), &q).await,
        ("GET", ["accounts", a, "users", u]) => ctx.user(&decode(a), &decode(u)).await,
        ("GET", ["accounts", a, "groups"]) => ctx.groups(&decode(a), &q).await,
        ("GET", ["accounts", a, "groups", g]) => ctx.group(&decode(a), &decode(g), &q("page"), q("done"), None).await,
        ("POST", ["accounts", a, "groups", g, action]) => {
            ctx.edit_group(&decode(a), &decode(g), action, &field("name"), &field("user")).await
        }
        ("GET", ["accounts", a, "tokens"]) => ctx.tokens(&decode(a), Notice::from_done(&q("done")), None).await,
        ("POST", ["accounts", a, "tokens"]) => ctx.create_token(&decode(a), &field("name"), &field("days")).await,
        ("POST", ["accounts", a, "tokens", t, action]) => {
            ctx.edit_token(&decode(a), &decode(t), action, &field("grace_hours")).await
        }
        ("GET", ["accounts", a, "audit"]) => ctx.audit(&decode(a), &q).await,
        ("GET", ["accounts", a, "migration"]) => ctx.migration(&decode(a)).await,
        _ => Answer::html(404, layout("Not found", None, &csrf, "<p>There is no such page in the console.</p>")),
    }
}

/// A form field or query parameter, trimmed; empty when absent.
fn param(pairs: &[(String, String)], name: &str) -> String {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_owned()).unwrap_or_default()
}

fn cookie_value<'c>(header: &'c str, name: &str) -> Option<&'c str> {
    header.split(';').filter_map(|part| part.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

fn decode(segment: &str) -> String {
    scim_core::http::percent_decode(segment)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn enc(s: &str) -> String {
    s.bytes().fold(String::with_capacity(s.len()), |mut out, b| {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
        out
    })
}

/// Escapes text for HTML content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON value as text: strings bare, `null` as a dash.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => esc(s),
        Value::Null => "–".into(),
        other => esc(&other.to_string()),
    }
}

/// A message at the top of a page.
enum Notice {
    Done(&'static str),
    Refused(String),
}

impl Notice {
    /// After a redirect: only these fixed messages, never text from the URL.
    fn from_done(done: &str) -> Option<Notice> {
        Some(Notice::Done(match done {
            "renamed" => "The group was renamed.",
            "added" => "The member was added.",
            "removed" => "The member was removed.",
            "revoked" => "The token was revoked.",
            _ => return None,
        }))
    }

    fn html(&self) -> String {
        match self {
            Notice::Done(message) => format!("<p class=\"notice done\" role=\"status\">{message}</p>"),
            Notice::Refused(detail) => {
                format!("<p class=\"notice refused\" role=\"alert\"><strong>Refused:</strong> {}</p>", esc(detail))
            }
        }
    }
}

/// The page around `main`: header, the account's navigation, sign-out.
fn layout(title: &str, account: Option<(&str, &str)>, csrf: &str, main: &str) -> String {
    let mut nav = String::new();
    if let Some((id, current)) = account {
        nav.push_str("<nav aria-label=\"Account\"><ul>");
        for (slug, label) in [
            ("users", "Users"),
            ("groups", "Groups"),
            ("tokens", "Tokens"),
            ("audit", "Audit log"),
            ("migration", "Migration"),
        ] {
            let here = if slug == current { " aria-current=\"page\"" } else { "" };
            let _ = write!(nav, "<li><a href=\"{PREFIX}/accounts/{}/{slug}\"{here}>{label}</a></li>", enc(id));
        }
        nav.push_str("</ul></nav>");
    }
    let sign_out = if csrf.is_empty() {
        String::new()
    } else {
        format!(
            "<form method=\"post\" action=\"{PREFIX}/logout\" class=\"signout\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button type=\"submit\">Sign out</button></form>"
        )
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · scimlet</title><link rel=\"stylesheet\" href=\"{PREFIX}/style.css\"></head>\
         <body><a class=\"skip\" href=\"#main\">Skip to content</a><header><a class=\"brand\" href=\"{PREFIX}\">scimlet console</a>{sign_out}</header>\
         {nav}<main id=\"main\"><h1>{title}</h1>{main}</main></body></html>\n",
        title = esc(title),
    )
}

fn login_page(status: u16, error: Option<&str>) -> Answer {
    let error = error.map(|e| format!("<p class=\"notice refused\" role=\"alert\">{}</p>", esc(e))).unwrap_or_default();
    Answer::html(
        status,
        layout(
            "Sign in",
            None,
            "",
            &format!(
                "{error}<form method=\"post\" action=\"{PREFIX}/login\" class=\"stack\">\
                 <label for=\"token\">Admin token</label>\
                 <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required autofocus>\
                 <button type=\"submit\">Sign in</button></form>\
                 <p class=\"hint\">The token <code>scimlet serve</code> was started with (<code>--admin-token-file</code>).</p>"
            ),
        ),
    )
}

/// A table with a caption; cells are HTML already.
fn table(caption: &str, head: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\">{}: none.</p>", esc(caption));
    }
    let mut out = format!("<div class=\"scroll\"><table><caption>{}</caption><thead><tr>", esc(caption));
    for h in head {
        let _ = write!(out, "<th scope=\"col\">{h}</th>");
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// Links to the first and the next page of a list, keeping its filters.
fn pager(base: &str, filters: &[(&str, String)], next: &Value) -> String {
    let Some(cursor) = next.as_str() else { return String::new() };
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in filters.iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(k, v);
    }
    let first = query.finish();
    let next = form_urlencoded::Serializer::new(first.clone()).append_pair("cursor", cursor).finish();
    format!(
        "<nav class=\"pager\" aria-label=\"Pages\"><a href=\"{base}?{}\">First page</a> <a href=\"{base}?{}\" rel=\"next\">Next page</a></nav>",
        esc(&first),
        esc(&next)
    )
}

fn source_badge(source: &Value) -> String {
    let kind = source["kind"].as_str().or(source.as_str()).unwrap_or("native");
    match kind {
        "scim" => "<span class=\"badge scim\">SCIM</span>".into(),
        _ => "<span class=\"badge\">native</span>".into(),
    }
}

/// One page's requests on behalf of one session.
struct Ctx<'a> {
    api: &'a dyn Api,
    csrf: &'a str,
}

impl Ctx<'_> {
    async fn get(&self, path: String) -> Result<Value, Answer> {
        match self.api.call("GET", path, None).await {
            (200, body) => Ok(body),
            (status, body) => Err(self.failed(status, &body)),
        }
    }

    fn failed(&self, status: u16, body: &Value) -> Answer {
        let detail = body["detail"].as_str().unwrap_or("the admin API did not answer");
        Answer::html(status, layout("Cannot show this", None, self.csrf, &Notice::Refused(detail.to_owned()).html()))
    }

    fn page(&self, title: &str, account: &str, tab: &str, main: String) -> Answer {
        Answer::html(200, layout(title, Some((account, tab)), self.csrf, &main))
    }

    fn hidden_csrf(&self) -> String {
        format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", self.csrf)
    }

    async fn accounts(&self) -> Answer {
        let list = match self.get("/api/accounts".into()).await {
            Ok(list) => list,
            Err(answer) => return answer,
        };
        let rows: Vec<Vec<String>> = items(&list)
            .iter()
            .map(|a| {
                let id = a["id"].as_str().unwrap_or_default();
                vec![
                    format!("<a href=\"{PREFIX}/accounts/{}/users\">{}</a>", enc(id), text(&a["name"])),
                    format!("<code>{}</code>", esc(id)),
                    text(&a["created"]),
                ]
            })
            .collect();
        Answer::html(200, layout("Accounts", None, self.csrf, &table("Accounts", &["Name", "Id", "Created"], &rows)))
    }

    async fn users(&self, account: &str, q: &(dyn Fn(&str) -> String + Sync)) -> Answer {
        let head = ["Name", "E-mail", "Source", "Status", "Last modified"];
        self.list(account, q, ("users", "Users", "Search by name or e-mail"), &head, |u| {
            let status = if u["invited"] == true {
                "Invited"
            } else if u["active"] == true {
                "Active"
            } else {
                "Deactivated"
            };
            vec![
                link(account, "users", u["id"].as_str().unwrap_or_default(), &text(&u["name"])),
                text(&u["email"]),
                source_badge(&u["source"]),
                status.into(),
                text(&u["lastModified"]),
            ]
        })
        .await
    }

    /// A searchable, paged list of users or groups (`what`), with `title`
    /// and the search field's `label`; `row` renders one item.
    async fn list(
        &self,
        account: &str,
        q: &(dyn Fn(&str) -> String + Sync),
        (what, title, label): (&str, &str, &str),
        head: &[&str],
        row: impl Fn(&Value) -> Vec<String>,
    ) -> Answer {
        let (search, source, cursor) = (q("search"), q("source"), q("cursor"));
        let path = list_path(account, what, &[("search", &search), ("source", &source), ("cursor", &cursor)]);
        let list = match self.get(path).await {
            Ok(list) => list,
            Err(answer) => return answer,
        };
        let rows: Vec<Vec<String>> = items(&list).iter().map(row).collect();
        let base = format!("{PREFIX}/accounts/{}/{what}", enc(account));
        let main = format!(
            "{}{}{}",
            search_form(&base, &search, &source, label),
            table(title, head, &rows),
            pager(&base, &[("search", search.clone()), ("source", source.clone())], &list["nextCursor"])
        );
        self.page(title, account, what, main)
    }

    async fn user(&self, account: &str, id: &str) -> Answer {
        let user = match self.get(format!("/api/accounts/{}/users/{}", enc(account), enc(id))).await {
            Ok(user) => user,
            Err(answer) => return answer,
        };
        let scim = user["source"]["kind"] == "scim";
        let rule = if scim {
            "<p class=\"rule\">Managed by SCIM: this user's attributes, status and deletion come from the identity provider, and the admin API refuses to change them. Role bindings are managed here.</p>"
        } else {
            "<p class=\"rule\">A native user: managed here. If the identity provider later creates a user with this e-mail, SCIM takes it over.</p>"
        };
        let groups: Vec<Vec<String>> = user["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|g| {
                let gid = g["id"].as_str().unwrap_or_default();
                vec![link(account, "groups", gid, &text(&g["name"])), source_badge(&g["source"])]
            })
            .collect();
        let bindings: Vec<Vec<String>> = user["roleBindings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| vec![text(&b["role"]), esc(&b["scope"].to_string())])
            .collect();
        let main = format!(
            "{rule}<dl class=\"facts\"><dt>E-mail</dt><dd>{}</dd><dt>userName</dt><dd>{}</dd><dt>Source</dt><dd>{} {}</dd>\
             <dt>Status</dt><dd>{}</dd><dt>Access</dt><dd>{}</dd><dt>Created</dt><dd>{}</dd><dt>Last modified</dt><dd>{}</dd><dt>Id</dt><dd><code>{}</code></dd></dl>{}{}",
            text(&user["email"]),
            text(&user["userName"]),
            source_badge(&user["source"]),
            source_detail(&user["source"]),
            if user["active"] == true { "Active" } else { "Deactivated" },
            text(&user["access"]),
            text(&user["created"]),
            text(&user["lastModified"]),
            esc(id),
            table("Groups", &["Group", "Source"], &groups),
            table("Role bindings", &["Role", "Scope"], &bindings),
        );
        self.page(user["name"].as_str().unwrap_or(id), account, "users", main)
    }

    async fn groups(&self, account: &str, q: &(dyn Fn(&str) -> String + Sync)) -> Answer {
        let head = ["Name", "Identifier", "Source", "Last modified"];
        self.list(account, q, ("groups", "Groups", "Search by name or identifier"), &head, |g| {
            let id = g["id"].as_str().unwrap_or_default();
            vec![
                link(account, "groups", id, &text(&g["name"])),
                format!("<code>{}</code>", esc(id)),
                source_badge(&g["source"]),
                text(&g["lastModified"]),
            ]
        })
        .await
    }

    async fn group(&self, account: &str, id: &str, page: &str, done: String, refused: Option<(u16, String)>) -> Answer {
        let group = match self.get(format!("/api/accounts/{}/groups/{}", enc(account), enc(id))).await {
            Ok(group) => group,
            Err(answer) => return answer,
        };
        let members: Vec<&str> = group["members"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let pages = members.len().div_ceil(PAGE as usize).max(1);
        let page: usize = page.parse().unwrap_or(1).clamp(1, pages);
        let base = format!("{PREFIX}/accounts/{}/groups/{}", enc(account), enc(id));
        let mut rows = Vec::new();
        for member in members.iter().skip((page - 1) * PAGE as usize).take(PAGE as usize) {
            let (_, user) =
                self.api.call("GET", format!("/api/accounts/{}/users/{}", enc(account), enc(member)), None).await;
            let name = user["name"].as_str().unwrap_or(member);
            rows.push(vec![
                link(account, "users", member, &esc(name)),
                text(&user["email"]),
                format!(
                    "<form method=\"post\" action=\"{base}/remove-member\">{}<input type=\"hidden\" name=\"user\" value=\"{}\"><button type=\"submit\" class=\"small\">Remove<span class=\"visually-hidden\"> {}</span></button></form>",
                    self.hidden_csrf(),
                    esc(member),
                    esc(name)
                ),
            ]);
        }
        let scim = group["source"]["kind"] == "scim";
        let rule = if scim {
            "<p class=\"rule\" id=\"rules\">Managed by SCIM: the identity provider owns this group's name and members, so the admin API refuses to rename it, change its members or delete it (<code>scim_managed_group</code>). Change it in the identity provider; role bindings on it are managed here.</p>"
        } else {
            "<p class=\"rule\" id=\"rules\">A native group: its name and members are managed here. A SCIM group pushed with the same name is linked or kept apart as the account's same-name policy says.</p>"
        };
        let refused_status = refused.as_ref().map(|(status, _)| *status);
        let notice = match refused {
            Some((_, detail)) => Notice::Refused(detail).html(),
            None => Notice::from_done(&done).map(|n| n.html()).unwrap_or_default(),
        };
        let truncated = if group["membersTruncated"] == true {
            "<p class=\"hint\">Only the first 1,000 members are listed.</p>"
        } else {
            ""
        };
        let page_nav = if pages > 1 {
            let mut nav = format!("<nav class=\"pager\" aria-label=\"Member pages\">Page {page} of {pages}");
            if page > 1 {
                let _ = write!(nav, " <a href=\"{base}?page={}\" rel=\"prev\">Previous page</a>", page - 1);
            }
            if page < pages {
                let _ = write!(nav, " <a href=\"{base}?page={}\" rel=\"next\">Next page</a>", page + 1);
            }
            nav.push_str("</nav>");
            nav
        } else {
            String::new()
        };
        let csrf = self.hidden_csrf();
        let main = format!(
            "{notice}{rule}<dl class=\"facts\"><dt>Identifier</dt><dd><code>{}</code></dd><dt>Source</dt><dd>{} {}</dd><dt>Members</dt><dd>{}</dd><dt>Last modified</dt><dd>{}</dd></dl>\
             {}{page_nav}{truncated}\
             <section aria-labelledby=\"edit\"><h2 id=\"edit\">Edit</h2>\
             <form method=\"post\" action=\"{base}/rename\" class=\"inline\" aria-describedby=\"rules\">{csrf}<label for=\"name\">New name</label><input id=\"name\" name=\"name\" required value=\"{}\"><button type=\"submit\">Rename</button></form>\
             <form method=\"post\" action=\"{base}/add-member\" class=\"inline\" aria-describedby=\"rules\">{csrf}<label for=\"user\">User id to add</label><input id=\"user\" name=\"user\" required><button type=\"submit\">Add member</button></form></section>",
            esc(id),
            source_badge(&group["source"]),
            source_detail(&group["source"]),
            members.len(),
            text(&group["lastModified"]),
            table("Members", &["Name", "E-mail", "Action"], &rows),
            text(&group["name"]),
        );
        let mut answer = self.page(group["name"].as_str().unwrap_or(id), account, "groups", main);
        if let Some(status) = refused_status {
            answer.status = status;
        }
        answer
    }

    async fn edit_group(&self, account: &str, id: &str, action: &str, name: &str, user: &str) -> Answer {
        let group = format!("/api/accounts/{}/groups/{}", enc(account), enc(id));
        let (method, path, body, done) = match action {
            "rename" => ("PATCH", group, Some(json!({"name": name})), "renamed"),
            "add-member" => ("PUT", format!("{group}/members/{}", enc(user)), None, "added"),
            "remove-member" => ("DELETE", format!("{group}/members/{}", enc(user)), None, "removed"),
            _ => return Answer::html(404, layout("Not found", None, self.csrf, "<p>No such action.</p>")),
        };
        match self.api.call(method, path, body).await {
            (200..=299, _) => {
                Answer::redirect(&format!("{PREFIX}/accounts/{}/groups/{}?done={done}", enc(account), enc(id)))
            }
            (status, body) => {
                let detail = body["detail"].as_str().unwrap_or("the admin API refused the change").to_owned();
                self.group(account, id, "1", String::new(), Some((status, detail))).await
            }
        }
    }

    async fn tokens(&self, account: &str, notice: Option<Notice>, created: Option<&Value>) -> Answer {
        let list = match self.get(format!("/api/accounts/{}/tokens", enc(account))).await {
            Ok(list) => list,
            Err(answer) => return answer,
        };
        let base = format!("{PREFIX}/accounts/{}/tokens", enc(account));
        let csrf = self.hidden_csrf();
        let rows: Vec<Vec<String>> = items(&list)
            .iter()
            .map(|t| {
                let id = t["id"].as_str().unwrap_or_default();
                let revoked = !t["revokedAt"].is_null();
                let state = if revoked {
                    format!("Revoked {}", text(&t["revokedAt"]))
                } else if let Some(warning) = t["expiryWarning"].as_str() {
                    format!("<span class=\"badge warn\">{}</span>", esc(warning))
                } else {
                    "Valid".into()
                };
                let actions = if revoked {
                    String::new()
                } else {
                    format!(
                        "<form method=\"post\" action=\"{base}/{id}/rotate\" class=\"inline\">{csrf}<label for=\"grace-{id}\">Old one valid for (hours)</label><input id=\"grace-{id}\" name=\"grace_hours\" type=\"number\" min=\"0\" max=\"168\" value=\"24\"><button type=\"submit\">Rotate</button></form>\
                         <form method=\"post\" action=\"{base}/{id}/revoke\" class=\"inline\">{csrf}<button type=\"submit\" class=\"danger\">Revoke<span class=\"visually-hidden\"> {name}</span></button></form>",
                        id = enc(id),
                        name = text(&t["name"]),
                    )
                };
                vec![
                    text(&t["name"]),
                    format!("<code>{}</code>", esc(id)),
                    text(&t["created"]),
                    text(&t["expiresAt"]),
                    text(&t["lastUsedAt"]),
                    state,
                    actions,
                ]
            })
            .collect();
        let secret = created
            .map(|t| {
                format!(
                    "<section class=\"secret\" aria-labelledby=\"new-token\"><h2 id=\"new-token\">New token {}</h2>\
                     <p>Copy it into the identity provider now: it is shown only once and cannot be read again.</p>\
                     <label for=\"secret\">Token</label><input id=\"secret\" readonly value=\"{}\"><p>Expires {}.</p></section>",
                    text(&t["name"]),
                    text(&t["token"]),
                    text(&t["expiresAt"]),
                )
            })
            .unwrap_or_default();
        let main = format!(
            "{}{secret}{}<section aria-labelledby=\"create\"><h2 id=\"create\">Create a token</h2>\
             <form method=\"post\" action=\"{base}\" class=\"inline\">{csrf}<label for=\"token-name\">Name</label><input id=\"token-name\" name=\"name\" required maxlength=\"100\">\
             <label for=\"days\">Expires in (days)</label><input id=\"days\" name=\"days\" type=\"number\" min=\"1\" max=\"3650\" value=\"365\"><button type=\"submit\">Create token</button></form></section>",
            notice.map(|n| n.html()).unwrap_or_default(),
            table("Tokens", &["Name", "Id", "Created", "Expires", "Last used", "State", "Actions"], &rows),
        );
        self.page("Tokens", account, "tokens", main)
    }

    async fn create_token(&self, account: &str, name: &str, days: &str) -> Answer {
        let mut body = json!({"name": name});
        if let Ok(days) = days.parse::<u64>() {
            body["expiresInDays"] = days.into();
        }
        match self.api.call("POST", format!("/api/accounts/{}/tokens", enc(account)), Some(body)).await {
            (200..=299, created) => self.tokens(account, None, Some(&created)).await,
            (status, body) => self.token_refused(account, status, &body).await,
        }
    }

    async fn edit_token(&self, account: &str, id: &str, action: &str, grace_hours: &str) -> Answer {
        let token = format!("/api/accounts/{}/tokens/{}", enc(account), enc(id));
        match action {
            "revoke" => match self.api.call("DELETE", token, None).await {
                (200..=299, _) => Answer::redirect(&format!("{PREFIX}/accounts/{}/tokens?done=revoked", enc(account))),
                (status, body) => self.token_refused(account, status, &body).await,
            },
            "rotate" => {
                let grace: u64 = grace_hours.parse().unwrap_or(24);
                match self.api.call("POST", format!("{token}/rotate"), Some(json!({"graceHours": grace}))).await {
                    // `{"token": <the new one>, "previous": <the old one>}`
                    (200..=299, rotated) => self.tokens(account, None, Some(&rotated["token"])).await,
                    (status, body) => self.token_refused(account, status, &body).await,
                }
            }
            _ => Answer::html(404, layout("Not found", None, self.csrf, "<p>No such action.</p>")),
        }
    }

    async fn token_refused(&self, account: &str, status: u16, body: &Value) -> Answer {
        let detail = body["detail"].as_str().unwrap_or("the admin API refused the change").to_owned();
        let mut answer = self.tokens(account, Some(Notice::Refused(detail)), None).await;
        answer.status = status;
        answer
    }

    async fn audit(&self, account: &str, q: &(dyn Fn(&str) -> String + Sync)) -> Answer {
        const FILTERS: [(&str, &str, &str); 5] = [
            ("operation", "Operation", "e.g. user.create"),
            ("outcome", "Outcome", "success or failure"),
            ("client", "Client", "entra, okta, admin-api, cli, other"),
            ("since", "Since", "2026-11-01T00:00:00Z"),
            ("until", "Until", "2026-12-01T00:00:00Z"),
        ];
        let values: Vec<(&str, String)> = FILTERS.iter().map(|(k, _, _)| (*k, q(k))).collect();
        let cursor = q("cursor");
        let mut params: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
        params.push(("cursor", &cursor));
        let list = match self.get(list_path(account, "audit", &params)).await {
            Ok(list) => list,
            Err(answer) => return answer,
        };
        let rows: Vec<Vec<String>> = items(&list)
            .iter()
            .map(|r| {
                let actor = match r["actor"]["kind"].as_str() {
                    Some("token") => format!("token <code>{}</code>", text(&r["actor"]["tokenId"])),
                    Some(kind) => esc(kind),
                    None => "–".into(),
                };
                let outcome = if r["outcome"] == "success" {
                    "success".to_owned()
                } else {
                    format!("<span class=\"badge warn\">{}</span>", text(&r["outcome"]))
                };
                vec![
                    text(&r["time"]),
                    text(&r["operation"]),
                    outcome,
                    actor,
                    text(&r["client"]),
                    format!("{} <code>{}</code>", text(&r["resource"]["type"]), text(&r["resource"]["id"])),
                    format!("<code>{}</code>", text(&r["requestId"])),
                ]
            })
            .collect();
        let base = format!("{PREFIX}/accounts/{}/audit", enc(account));
        let mut form = format!("<form method=\"get\" action=\"{base}\" class=\"filters\" role=\"search\">");
        for ((key, label, hint), (_, value)) in FILTERS.iter().zip(&values) {
            let _ = write!(
                form,
                "<label for=\"f-{key}\">{label}</label><input id=\"f-{key}\" name=\"{key}\" value=\"{}\" placeholder=\"{hint}\">",
                esc(value)
            );
        }
        form.push_str("<button type=\"submit\">Filter</button></form>");
        let main = format!(
            "{form}{}{}",
            table(
                "Audit records, oldest first",
                &["Time", "Operation", "Outcome", "Actor", "Client", "Resource", "Request id"],
                &rows
            ),
            pager(&base, &values, &list["nextCursor"])
        );
        self.page("Audit log", account, "audit", main)
    }

    async fn migration(&self, account: &str) -> Answer {
        let report = match self.get(format!("/api/accounts/{}/migration-report", enc(account))).await {
            Ok(report) => report,
            Err(answer) => return answer,
        };
        let s = &report["summary"];
        let mut main = format!(
            "<p>How far SCIM has taken over the users and groups that were managed here before the identity provider was connected.</p>\
             <dl class=\"facts\"><dt>Users</dt><dd>{} ({} native, {} SCIM)</dd><dt>Groups</dt><dd>{} ({} native, {} SCIM)</dd></dl>",
            text(&s["users"]),
            text(&s["nativeUsers"]),
            text(&s["scimUsers"]),
            text(&s["groups"]),
            text(&s["nativeGroups"]),
            text(&s["scimGroups"]),
        );
        if s["partial"] == true {
            main.push_str("<p class=\"hint\">The account is large: these lists are partial.</p>");
        }
        for (key, caption) in [
            ("nativeUsersNotTakenOver", "Native users not yet taken over by SCIM"),
            ("usersTakenOver", "Users taken over by SCIM"),
            ("possibleDuplicates", "Possible duplicates"),
            ("groupsTakenOver", "Groups taken over by SCIM"),
        ] {
            let rows: Vec<Vec<String>> = report[key]
                .as_array()
                .into_iter()
                .flatten()
                .map(|item| match item {
                    Value::Object(map) => {
                        vec![map.iter().map(|(k, v)| format!("{}: {}", esc(k), text(v))).collect::<Vec<_>>().join(", ")]
                    }
                    other => vec![text(other)],
                })
                .collect();
            main.push_str(&table(caption, &["Entry"], &rows));
        }
        self.page("Migration report", account, "migration", main)
    }
}

/// A link to a user's or group's page; `label` is HTML already.
fn link(account: &str, what: &str, id: &str, label: &str) -> String {
    format!("<a href=\"{PREFIX}/accounts/{}/{what}/{}\">{label}</a>", enc(account), enc(id))
}

fn items(list: &Value) -> Vec<Value> {
    list["items"].as_array().cloned().unwrap_or_default()
}

fn source_detail(source: &Value) -> String {
    let mut out = String::new();
    if let Some(token) = source["tokenId"].as_str() {
        let _ = write!(out, "by token <code>{}</code>", esc(token));
    }
    if let Some(at) = source["takenOverAt"].as_str() {
        let _ = write!(out, ", taken over {}", esc(at));
    }
    out
}

/// An admin API list path with a page size and the filters that are set.
fn list_path(account: &str, what: &str, params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("count", &PAGE.to_string());
    for (k, v) in params.iter().filter(|(_, v)| !v.is_empty()) {
        query.append_pair(k, v);
    }
    format!("/api/accounts/{}/{what}?{}", enc(account), query.finish())
}

fn search_form(base: &str, search: &str, source: &str, label: &str) -> String {
    let option = |value: &str, text: &str| {
        let selected = if value == source { " selected" } else { "" };
        format!("<option value=\"{value}\"{selected}>{text}</option>")
    };
    format!(
        "<form method=\"get\" action=\"{base}\" class=\"filters\" role=\"search\"><label for=\"search\">{label}</label>\
         <input id=\"search\" name=\"search\" type=\"search\" value=\"{}\"><label for=\"source\">Source</label>\
         <select id=\"source\" name=\"source\">{}{}{}</select><button type=\"submit\">Search</button></form>",
        esc(search),
        option("", "Any"),
        option("scim", "SCIM"),
        option("native", "Native"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_encoding_leave_nothing_active() {
        assert_eq!(esc("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(enc("a b/c?d=é"), "a%20b%2Fc%3Fd%3D%C3%A9");
        assert_eq!(cookie_value("a=1; scimlet_console=abc; b=2", COOKIE), Some("abc"));
        assert_eq!(cookie_value("scimlet_consolex=abc", COOKIE), None);
    }

    #[test]
    fn sessions_expire_and_are_bounded() {
        let sessions = Sessions::default();
        let (id, csrf) = sessions.open().unwrap();
        assert_eq!(sessions.csrf(&id), Some(csrf));
        sessions.lock().get_mut(&id).unwrap().expires = Instant::now() - Duration::from_secs(1);
        assert_eq!(sessions.csrf(&id), None);
        for _ in 0..MAX_SESSIONS + 5 {
            sessions.open().unwrap();
        }
        assert_eq!(sessions.lock().len(), MAX_SESSIONS);
    }

    #[test]
    fn a_notice_after_a_redirect_is_one_of_the_fixed_messages() {
        assert!(Notice::from_done("<script>").is_none());
        assert!(Notice::from_done("renamed").is_some());
    }
}
