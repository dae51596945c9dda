//! The seam between the SCIM protocol engine and a provisioning policy.
//!
//! The engine (resources, schema, filters, PATCH, projection, paging, ETags,
//! Bulk, discovery, memberships) asks a [`Policy`] the few questions whose
//! answers are a product's choice rather than the RFCs': what id a new group
//! gets, whether a create may take an existing hand-made user over, which
//! e-mail a user signs in with, and whether anything besides SCIM (native
//! users and groups, account settings, the admin API) exists at all.
//!
//! Two policies ship:
//! - [`Provisioning`], this product's default: group ids derived from the
//!   name, migration by e-mail, the login e-mail unique per account, native
//!   users and groups beside SCIM's, settings and the admin API;
//! - [`PlainScim`], the RFCs alone: random UUIDs for every id, no takeover,
//!   no login index, nothing native, settings at their defaults; the admin
//!   API keeps only accounts, tokens and the audit log (a host needs a door
//!   to make accounts).
//!
//! A host picks one by name ([`policy_named`]; `SCIMLET_POLICY` in the
//! component's environment).

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

/// What a provisioning policy decides for the protocol engine.
///
/// Every hook is a pure decision: the engine does the reads and writes the
/// answer calls for, inside the request's one commit, so a policy cannot
/// break the storage contract's guarantees.
pub trait Policy: fmt::Debug + Send + Sync {
    /// The name hosts select it by.
    fn name(&self) -> &'static str;

    /// The id of a new group named `display_name`, or `None` for a random
    /// UUID. When the id is taken the engine tries `<id>_2`, `<id>_3`, …
    fn group_id(&self, display_name: &str) -> Option<String>;

    /// The e-mail a user with these attributes signs in with: reserved
    /// across the account (two people cannot share a login), and what a
    /// later create's [`Policy::takeover_logins`] finds. `None`: no login.
    fn login(&self, attrs: &Map<String, Value>) -> Option<String>;

    /// Logins whose hand-made (native) user a SCIM create takes over
    /// instead of creating a second person, most preferred first.
    fn takeover_logins(&self, attrs: &Map<String, Value>) -> Vec<String>;

    /// Whether records besides SCIM's exist: native users and groups made
    /// through the admin API, role bindings, and per-account settings
    /// (same-name groups, deactivation, e-mail updates). When `false` the
    /// engine reads none of them and acts on the defaults, and the admin API
    /// manages accounts, tokens and the audit log only.
    fn native_records(&self) -> bool;
}

/// This product's policy: the reference platform's provisioning rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct Provisioning;

impl Policy for Provisioning {
    fn name(&self) -> &'static str {
        "provisioning"
    }

    /// The reference platform's identifier rules (see
    /// [`crate::derive_identifier`]): Okta's group push finds a group again
    /// by a predictable id.
    fn group_id(&self, display_name: &str) -> Option<String> {
        Some(crate::groups::derive_identifier(display_name))
    }

    fn login(&self, attrs: &Map<String, Value>) -> Option<String> {
        scim_login(attrs)
    }

    fn takeover_logins(&self, attrs: &Map<String, Value>) -> Vec<String> {
        migration_candidates(attrs)
    }

    fn native_records(&self) -> bool {
        true
    }
}

// The provisioning policy's identity rules.

/// The e-mail a SCIM user logs in with: its userName when that is an
/// e-mail (the platform's identity rule), else its primary, work or first
/// e-mail. Lower case.
fn scim_login(attrs: &Map<String, Value>) -> Option<String> {
    let user_name = attrs.get("userName").and_then(Value::as_str).filter(|u| looks_like_email(u));
    user_name.map(str::to_owned).or_else(|| preferred_emails(attrs).into_iter().next()).map(|e| e.trim().to_lowercase())
}

/// E-mails in order of preference: primary, then work, then the rest.
fn preferred_emails(attrs: &Map<String, Value>) -> Vec<String> {
    let emails: Vec<&Value> =
        attrs.get("emails").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
    let value = |e: &&Value| e.get("value").and_then(Value::as_str).filter(|v| looks_like_email(v)).map(str::to_owned);
    let primary = emails.iter().filter(|e| e.get("primary") == Some(&Value::Bool(true))).filter_map(value);
    let work = emails.iter().filter(|e| e.get("type").and_then(Value::as_str) == Some("work")).filter_map(value);
    let rest = emails.iter().filter_map(value);
    let mut out: Vec<String> = Vec::new();
    for e in primary.chain(work).chain(rest) {
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&e)) {
            out.push(e);
        }
    }
    out
}

/// What a SCIM create may match a native user's login on: userName and the
/// primary and work e-mails.
fn migration_candidates(attrs: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let user_name = attrs.get("userName").and_then(Value::as_str).filter(|u| looks_like_email(u)).map(str::to_owned);
    let emails = preferred_emails(attrs);
    let picked = emails.iter().filter(|e| {
        attrs.get("emails").and_then(Value::as_array).into_iter().flatten().any(|m| {
            m.get("value").and_then(Value::as_str).is_some_and(|v| v.eq_ignore_ascii_case(e))
                && (m.get("primary") == Some(&Value::Bool(true))
                    || m.get("type").and_then(Value::as_str) == Some("work"))
        })
    });
    for e in user_name.into_iter().chain(picked.cloned()) {
        let e = e.trim().to_lowercase();
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

/// Whether a string is shaped like an e-mail address (no more: delivery is
/// not this service's to check).
pub(crate) fn looks_like_email(s: &str) -> bool {
    let s = s.trim();
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.contains('@')
                && s.len() <= 320
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// RFC 7643/7644 behaviour alone, for embedders who want a SCIM endpoint
/// and nothing else. `userName` stays unique (RFC 7643 §4.1.1: "unique
/// across the service provider's entire set of Users"), and so does a
/// group's `displayName`, which this engine indexes for `eq` lookups.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainScim;

impl Policy for PlainScim {
    fn name(&self) -> &'static str {
        "plain"
    }

    /// RFC 7643 §3.1: the id is the service provider's, "stable, non-
    /// reassignable"; a random UUID says nothing about the group's name.
    fn group_id(&self, _: &str) -> Option<String> {
        None
    }

    fn login(&self, _: &Map<String, Value>) -> Option<String> {
        None
    }

    fn takeover_logins(&self, _: &Map<String, Value>) -> Vec<String> {
        Vec::new()
    }

    fn native_records(&self) -> bool {
        false
    }
}

/// The policy a host names, or `None` for an unknown name.
pub fn policy_named(name: &str) -> Option<Arc<dyn Policy>> {
    match name.trim() {
        "" | "provisioning" => Some(Arc::new(Provisioning)),
        "plain" => Some(Arc::new(PlainScim)),
        _ => None,
    }
}

/// Names [`policy_named`] knows, for messages.
pub const POLICY_NAMES: &str = "provisioning (default), plain";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn hosts_select_policies_by_name() {
        assert_eq!(policy_named("").map(|p| p.name()), Some("provisioning"));
        assert_eq!(policy_named("provisioning").map(|p| p.name()), Some("provisioning"));
        assert_eq!(policy_named(" plain ").map(|p| p.name()), Some("plain"));
        assert!(policy_named("Plain").is_none());
        assert!(policy_named("rfc").is_none());
    }

    #[test]
    fn the_plain_policy_decides_nothing_beyond_the_rfcs() {
        let user =
            attrs(json!({"userName": "ada@example.com", "emails": [{"value": "ada@example.com", "primary": true}]}));
        assert_eq!(Provisioning.login(&user).as_deref(), Some("ada@example.com"));
        assert_eq!(Provisioning.takeover_logins(&user), vec!["ada@example.com".to_owned()]);
        assert_eq!(Provisioning.group_id("Release Team").as_deref(), Some("Release_Team"));
        assert!(Provisioning.native_records());
        assert_eq!(PlainScim.login(&user), None);
        assert!(PlainScim.takeover_logins(&user).is_empty());
        assert_eq!(PlainScim.group_id("Release Team"), None);
        assert!(!PlainScim.native_records());
    }
}
