//! Per-account provisioning settings: how SCIM meets what admins made by
//! hand. Kept in the account record, so reading them costs one get that the
//! request would make anyway on a write.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::ScimError;

/// What a SCIM group push does when a native group has the same name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SameNamePolicy {
    /// The SCIM group takes the native group over (the migration path:
    /// Okta's lookup by displayName finds the native group and links it).
    #[default]
    Link,
    /// SCIM sees only its own groups; a same-name SCIM group is kept beside
    /// the native one.
    Separate,
}

/// What `active: false` from SCIM does to a user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deactivation {
    /// The user stays, readable, with its memberships; access is blocked.
    #[default]
    Disable,
    /// The user is removed from the account (as a DELETE would).
    Remove,
}

/// The settings of one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// See [`SameNamePolicy`].
    #[serde(default)]
    pub same_name_policy: SameNamePolicy,
    /// Whether a SCIM change of a user's e-mail changes the login e-mail.
    /// On by default: the identity provider is the source of truth for the
    /// people it manages.
    #[serde(default = "yes")]
    pub update_emails_via_scim: bool,
    /// See [`Deactivation`].
    #[serde(default)]
    pub deactivation: Deactivation,
    /// E-mail domains that are aliases of another (`alias → canonical`),
    /// which the migration report uses to spot duplicates.
    #[serde(default)]
    pub email_domain_aliases: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            same_name_policy: SameNamePolicy::Link,
            update_emails_via_scim: true,
            deactivation: Deactivation::Disable,
            email_domain_aliases: BTreeMap::new(),
        }
    }
}

const MAX_ALIASES: usize = 100;

impl Settings {
    /// The admin API's representation.
    pub fn to_json(&self) -> Value {
        json!({
            "sameNamePolicy": self.same_name_policy,
            "updateEmailsViaScim": self.update_emails_via_scim,
            "deactivation": self.deactivation,
            "emailDomainAliases": self.email_domain_aliases,
        })
    }

    /// Applies a partial update from the admin API; unknown keys and bad
    /// values are refused as a whole.
    pub fn apply(&mut self, patch: &Value) -> Result<(), ScimError> {
        let Some(fields) = patch.as_object() else {
            return Err(ScimError::invalid_syntax("settings must be a JSON object"));
        };
        let mut next = self.clone();
        for (key, value) in fields {
            match key.as_str() {
                "sameNamePolicy" => {
                    next.same_name_policy = match value.as_str() {
                        Some("link") => SameNamePolicy::Link,
                        Some("separate") => SameNamePolicy::Separate,
                        _ => return Err(ScimError::invalid_value("sameNamePolicy is \"link\" or \"separate\"")),
                    }
                }
                "updateEmailsViaScim" => {
                    next.update_emails_via_scim = value
                        .as_bool()
                        .ok_or_else(|| ScimError::invalid_value("updateEmailsViaScim is true or false"))?
                }
                "deactivation" => {
                    next.deactivation = match value.as_str() {
                        Some("disable") => Deactivation::Disable,
                        Some("remove") => Deactivation::Remove,
                        _ => return Err(ScimError::invalid_value("deactivation is \"disable\" or \"remove\"")),
                    }
                }
                "emailDomainAliases" => {
                    let map = value.as_object().ok_or_else(|| {
                        ScimError::invalid_value("emailDomainAliases maps an alias domain to its canonical domain")
                    })?;
                    if map.len() > MAX_ALIASES {
                        return Err(ScimError::invalid_value(format!("at most {MAX_ALIASES} domain aliases")));
                    }
                    let mut aliases = BTreeMap::new();
                    for (alias, canonical) in map {
                        let canonical = canonical.as_str().filter(|c| is_domain(c)).ok_or_else(|| {
                            ScimError::invalid_value(format!("emailDomainAliases[{alias:?}] must be a domain name"))
                        })?;
                        if !is_domain(alias) {
                            return Err(ScimError::invalid_value(format!("{alias:?} is not a domain name")));
                        }
                        aliases.insert(alias.to_lowercase(), canonical.to_lowercase());
                    }
                    next.email_domain_aliases = aliases;
                }
                other => {
                    return Err(ScimError::invalid_value(format!(
                        "unknown setting {other:?}; settings are sameNamePolicy, updateEmailsViaScim, deactivation, emailDomainAliases"
                    )));
                }
            }
        }
        *self = next;
        Ok(())
    }
}

fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.contains('.')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_are_all_or_nothing() {
        let mut s = Settings::default();
        s.apply(&json!({"sameNamePolicy": "separate", "deactivation": "remove"})).unwrap();
        assert_eq!((s.same_name_policy, s.deactivation), (SameNamePolicy::Separate, Deactivation::Remove));
        let before = s.clone();
        assert!(s.apply(&json!({"updateEmailsViaScim": false, "bogus": 1})).is_err());
        assert!(s.apply(&json!({"emailDomainAliases": {"corp.onmicrosoft.com": "not a domain"}})).is_err());
        assert_eq!(s, before);
        s.apply(&json!({"emailDomainAliases": {"Corp.OnMicrosoft.com": "corp.com"}})).unwrap();
        assert_eq!(s.email_domain_aliases["corp.onmicrosoft.com"], "corp.com");
        // Records written before settings existed read as the defaults.
        let old: Settings = serde_json::from_str("{}").unwrap();
        assert_eq!(old, Settings::default());
    }
}
