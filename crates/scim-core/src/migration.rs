//! Moving an account from manual management to SCIM: the migration report
//! (who is not taken over yet, who looks duplicated) and the user export
//! that an admin compares before and after ("the user count check").

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::env::{Env, format_rfc3339};
use crate::error::ScimError;
use crate::native::{self, Page, PageOf};
use crate::settings::Settings;
use crate::store::Store;
use crate::tenant::{Stored, Tenant};

/// Most users and groups a report reads; beyond it the report says it is
/// partial rather than doing unbounded work in one request.
const MAX_REPORT: usize = 20_000;

/// The key under which e-mails that are "the same person" meet: lower
/// case, no dots and no `+tag` in the local part, alias domains mapped to
/// their canonical domain.
pub(crate) fn normalize_email(email: &str, settings: &Settings) -> Option<String> {
    let email = email.trim().to_lowercase();
    let (local, domain) = email.rsplit_once('@')?;
    let local = local.split('+').next().unwrap_or(local).replace('.', "");
    let domain = settings.email_domain_aliases.get(domain).map(String::as_str).unwrap_or(domain);
    Some(format!("{local}@{domain}"))
}

/// Why two addresses with the same normal form differ.
fn difference(a: &str, b: &str, settings: &Settings) -> &'static str {
    let (a, b) = (a.trim(), b.trim());
    if a == b {
        return "same e-mail";
    }
    if a.eq_ignore_ascii_case(b) {
        return "e-mails differ only by case";
    }
    let split =
        |e: &str| e.to_lowercase().rsplit_once('@').map(|(l, d)| (l.to_owned(), d.to_owned())).unwrap_or_default();
    let ((la, da), (lb, db)) = (split(a), split(b));
    if da != db {
        let canon = |d: &str| settings.email_domain_aliases.get(d).cloned().unwrap_or_else(|| d.to_owned());
        if canon(&da) == canon(&db) {
            return "e-mail domains are aliases";
        }
    }
    if la.contains('+') || lb.contains('+') {
        return "e-mails differ by a +tag";
    }
    if la.replace('.', "") == lb.replace('.', "") && la != lb {
        return "e-mails differ by dots";
    }
    "e-mails normalise alike"
}

fn user_emails(user: &Stored) -> Vec<String> {
    let mut out: Vec<String> = user.prov.login.iter().cloned().collect();
    if !user.prov.native {
        let scim = user
            .attrs
            .get("emails")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("value").and_then(Value::as_str));
        let name = user.attrs.get("userName").and_then(Value::as_str).filter(|u| crate::policy::looks_like_email(u));
        for e in scim.chain(name) {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(e)) {
                out.push(e.to_owned());
            }
        }
    }
    out
}

impl<S: Store, E: Env> Tenant<'_, S, E> {
    fn all_records(&self, prefix: &str) -> Result<(Vec<(String, Stored)>, bool), ScimError> {
        let page = Page { cursor: None, count: MAX_REPORT as u32, source: None, search: None };
        let (items, next) = self.page_of_records(prefix, &page)?;
        Ok((items, next.is_some()))
    }

    fn page_of_records(&self, prefix: &str, page: &Page) -> Result<PageOf<(String, Stored)>, ScimError> {
        self.page_of(prefix, page, |id, record, _| Ok(Some((id.to_owned(), record))))
    }

    /// `GET /migration-report`.
    pub(crate) fn migration_report(&self) -> Result<Value, ScimError> {
        let settings = self.settings()?.clone();
        let (users, users_partial) = self.all_records(&self.keys.users())?;
        let (groups, groups_partial) = self.all_records(&self.keys.groups())?;
        let brief = |id: &str, u: &Stored| json!({"id": id, "email": u.prov.login, "name": native::user_name(u), "source": u.prov.source()});

        let not_taken: Vec<Value> = users.iter().filter(|(_, u)| u.prov.native).map(|(id, u)| brief(id, u)).collect();
        let taken: Vec<Value> = users
            .iter()
            .filter_map(|(id, u)| u.prov.taken_over.map(|t| json!({"id": id, "email": u.prov.login, "name": native::user_name(u), "takenOverAt": format_rfc3339(t)})))
            .collect();

        // Users that share a normalised e-mail but are different users, at
        // least one of them SCIM's: likely one person twice.
        let mut by_key: BTreeMap<String, Vec<(usize, String)>> = BTreeMap::new();
        for (i, (_, u)) in users.iter().enumerate() {
            for e in user_emails(u) {
                if let Some(k) = normalize_email(&e, &settings) {
                    let slot = by_key.entry(k).or_default();
                    if !slot.iter().any(|(j, _)| *j == i) {
                        slot.push((i, e));
                    }
                }
            }
        }
        let mut duplicates = Vec::new();
        for (key, hits) in by_key {
            if hits.len() < 2 || hits.iter().all(|(i, _)| users[*i].1.prov.native) {
                continue;
            }
            let reason = difference(&hits[0].1, &hits[1].1, &settings);
            let members: Vec<Value> = hits
                .iter()
                .map(|(i, e)| {
                    let (id, u) = &users[*i];
                    let mut b = brief(id, u);
                    b["matchedEmail"] = e.clone().into();
                    b
                })
                .collect();
            duplicates.push(json!({"normalizedEmail": key, "reason": reason, "users": members}));
        }

        let groups_taken: Vec<Value> = groups
            .iter()
            .filter_map(|(id, g)| {
                g.prov
                    .taken_over
                    .map(|t| json!({"id": id, "name": g.attrs.get("displayName"), "takenOverAt": format_rfc3339(t)}))
            })
            .collect();
        let count =
            |items: &[(String, Stored)], native: bool| items.iter().filter(|(_, r)| r.prov.native == native).count();
        Ok(json!({
            "summary": {
                "users": users.len(),
                "nativeUsers": count(&users, true),
                "scimUsers": count(&users, false),
                "groups": groups.len(),
                "nativeGroups": count(&groups, true),
                "scimGroups": count(&groups, false),
                "partial": users_partial || groups_partial,
            },
            "nativeUsersNotTakenOver": not_taken,
            "usersTakenOver": taken,
            "possibleDuplicates": duplicates,
            "groupsTakenOver": groups_taken,
        }))
    }

    /// One page of the user export: every user with source, state, groups
    /// and role bindings.
    pub(crate) fn export_users(&self, page: &Page) -> Result<PageOf<Value>, ScimError> {
        let (records, next) = self.page_of_records(&self.keys.users(), page)?;
        let mut out = Vec::with_capacity(records.len());
        for (id, user) in &records {
            out.push(self.user_view(id, user)?);
        }
        Ok((out, next))
    }
}

pub(crate) const CSV_HEADER: &str =
    "id,email,name,userName,source,scimTokenId,takenOverAt,active,groups,roleBindings\r\n";

/// Renders export rows as CSV (RFC 4180), one user per line; multi-valued
/// cells are `;`-separated.
pub(crate) fn to_csv(users: &[Value], header: bool) -> String {
    let mut out = String::new();
    if header {
        out.push_str(CSV_HEADER);
    }
    for u in users {
        let s = |v: Option<&Value>| match v {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => String::new(),
        };
        let groups: Vec<String> =
            u["groups"].as_array().into_iter().flatten().filter_map(|g| g["id"].as_str().map(str::to_owned)).collect();
        let bindings: Vec<String> = u["roleBindings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| {
                let scope = &b["scope"];
                let at = match scope["kind"].as_str() {
                    Some("organization") => format!("org:{}", s(scope.get("org"))),
                    Some("project") => format!("project:{}/{}", s(scope.get("org")), s(scope.get("project"))),
                    _ => "account".to_owned(),
                };
                format!("{}@{at}", s(b.get("role")))
            })
            .collect();
        let cells = [
            s(u.get("id")),
            s(u.get("email")),
            s(u.get("name")),
            s(u.get("userName")),
            s(u["source"].get("kind")),
            s(u["source"].get("tokenId")),
            s(u["source"].get("takenOverAt")),
            s(u.get("active")),
            groups.join(";"),
            bindings.join(";"),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

fn csv_cell(value: &str) -> String {
    // A leading =, +, - or @ would run as a formula in a spreadsheet.
    let value = if value.starts_with(['=', '+', '-', '@']) { format!("'{value}") } else { value.to_owned() };
    if value.contains([',', '"', '\r', '\n']) { format!("\"{}\"", value.replace('"', "\"\"")) } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_normalise_for_duplicate_detection() {
        let mut s = Settings::default();
        s.email_domain_aliases.insert("corp.onmicrosoft.com".into(), "corp.com".into());
        assert_eq!(normalize_email("Jane.Doe+okta@Corp.com", &s).unwrap(), "janedoe@corp.com");
        assert_eq!(normalize_email("janedoe@corp.onmicrosoft.com", &s).unwrap(), "janedoe@corp.com");
        assert_eq!(difference("Jane@corp.com", "jane@corp.com", &s), "e-mails differ only by case");
        assert_eq!(difference("jane.doe@corp.com", "janedoe@corp.com", &s), "e-mails differ by dots");
        assert_eq!(difference("jane+x@corp.com", "jane@corp.com", &s), "e-mails differ by a +tag");
        assert_eq!(difference("jane@corp.onmicrosoft.com", "jane@corp.com", &s), "e-mail domains are aliases");
        assert_eq!(normalize_email("not-an-email", &s), None);
    }

    #[test]
    fn csv_cells_are_escaped_and_defused() {
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=SUM(A1)"), "'=SUM(A1)");
        let row = to_csv(
            &[
                json!({"id": "1", "email": "a@b.c", "name": "A", "source": {"kind": "native"}, "active": true, "groups": [{"id": "g1"}, {"id": "g2"}], "roleBindings": [{"role": "viewer", "scope": {"kind": "account"}}]}),
            ],
            true,
        );
        assert_eq!(row, format!("{CSV_HEADER}1,a@b.c,A,,native,,,true,g1;g2,viewer@account\r\n"));
    }
}
