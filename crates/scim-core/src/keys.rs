//! The key layout: every record the core keeps, in one place.
//!
//! Everything of an account lives under `a/<account>/`, so no code path can
//! reach another tenant's records without naming that tenant. Client-supplied
//! values inside keys are escaped (`%` and `/`), so a userName such as
//! `a/b` can never alias another key or prefix.

/// Escapes a value for use as one key segment.
pub(crate) fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '%' => out.push_str("%25"),
            '/' => out.push_str("%2F"),
            c => out.push(c),
        }
    }
    out
}

/// The case-insensitive form of a value, for unique and lookup indexes.
pub(crate) fn fold(value: &str) -> String {
    value.to_lowercase()
}

/// An account's record.
pub(crate) fn account(account: &str) -> String {
    format!("acct/{}", segment(account))
}

/// Prefix of every account record.
pub(crate) const ACCOUNTS: &str = "acct/";

/// A token's record, looked up by its public id.
pub(crate) fn token(token_id: &str) -> String {
    format!("tok/{}", segment(token_id))
}

/// Keys of one account.
#[derive(Debug, Clone)]
pub(crate) struct AccountKeys {
    root: String,
}

impl AccountKeys {
    pub(crate) fn new(account: &str) -> Self {
        AccountKeys { root: format!("a/{}/", segment(account)) }
    }

    /// Index of the account's tokens: `…/tok/<token id>`.
    pub(crate) fn token_ref(&self, token_id: &str) -> String {
        format!("{}tok/{}", self.root, segment(token_id))
    }
    pub(crate) fn tokens(&self) -> String {
        format!("{}tok/", self.root)
    }

    pub(crate) fn user(&self, id: &str) -> String {
        format!("{}u/{}", self.root, segment(id))
    }
    pub(crate) fn group(&self, id: &str) -> String {
        format!("{}g/{}", self.root, segment(id))
    }

    /// Unique, case-insensitive userName → user id.
    pub(crate) fn user_name(&self, user_name: &str) -> String {
        format!("{}x/un/{}", self.root, segment(&fold(user_name)))
    }
    pub(crate) fn user_names(&self) -> String {
        format!("{}x/un/", self.root)
    }
    /// externalId (case-exact) → users, one key per user.
    pub(crate) fn user_external_ids(&self, external_id: &str) -> String {
        format!("{}x/ue/{}/", self.root, segment(external_id))
    }
    /// e-mail (case-insensitive) → users, one key per user.
    pub(crate) fn user_emails(&self, email: &str) -> String {
        format!("{}x/um/{}/", self.root, segment(&fold(email)))
    }

    /// Unique, case-insensitive group displayName → group id.
    pub(crate) fn group_name(&self, name: &str) -> String {
        format!("{}x/gn/{}", self.root, segment(&fold(name)))
    }
    pub(crate) fn group_names(&self) -> String {
        format!("{}x/gn/", self.root)
    }
    /// externalId (case-exact) → groups, one key per group.
    pub(crate) fn group_external_ids(&self, external_id: &str) -> String {
        format!("{}x/ge/{}/", self.root, segment(external_id))
    }

    /// Unique, case-insensitive login e-mail → user id, for every user
    /// (native or SCIM): the identity that migration matches on.
    pub(crate) fn login(&self, email: &str) -> String {
        format!("{}x/le/{}", self.root, segment(&fold(email)))
    }
    /// Unique, case-insensitive native group name → group id. Native groups
    /// stay out of the SCIM name index, so SCIM lists never see them.
    pub(crate) fn native_group_name(&self, name: &str) -> String {
        format!("{}x/ngn/{}", self.root, segment(&fold(name)))
    }
    /// Every user record (native and SCIM), in id order.
    pub(crate) fn users(&self) -> String {
        format!("{}u/", self.root)
    }
    /// Every group record, in identifier order.
    pub(crate) fn groups(&self) -> String {
        format!("{}g/", self.root)
    }

    /// A role binding.
    pub(crate) fn role_binding(&self, id: &str) -> String {
        format!("{}rb/{}", self.root, segment(id))
    }
    pub(crate) fn role_bindings(&self) -> String {
        format!("{}rb/", self.root)
    }
    /// Role bindings of one principal (`user` or `group`), one key each.
    pub(crate) fn principal_bindings(&self, kind: &str, principal: &str) -> String {
        format!("{}x/rbp/{}/{}/", self.root, segment(kind), segment(principal))
    }
    /// Reservation that makes (principal, role, scope) unique.
    pub(crate) fn binding_identity(&self, digest: &str) -> String {
        format!("{}x/rbu/{}", self.root, digest)
    }

    /// An audit record; the zero-padded time makes key order time order.
    pub(crate) fn audit(&self, millis: i64, nonce: &str) -> String {
        format!("{}log/{:013}-{}", self.root, millis.max(0), nonce)
    }
    pub(crate) fn audit_log(&self) -> String {
        format!("{}log/", self.root)
    }

    /// Work left for the sweeper: `t/g/<group>` (edges of a deleted or
    /// cleared generation; the value is where the sweep got to) and
    /// `t/u/<user>` (a deleted user still named by group edges).
    pub(crate) fn tombstones(&self) -> String {
        format!("{}t/", self.root)
    }
    pub(crate) fn group_tombstone(&self, group: &str) -> String {
        format!("{}t/g/{}", self.root, segment(group))
    }
    pub(crate) fn user_tombstone(&self, user: &str) -> String {
        format!("{}t/u/{}", self.root, segment(user))
    }
    pub(crate) fn user_tombstones(&self) -> String {
        format!("{}t/u/", self.root)
    }

    /// One shard of the count of `kind` (`users`, `groups`): the number
    /// of keys in that resource's order index, kept by every commit that
    /// adds or removes one. Sharded so that concurrent creates rarely
    /// touch the same record.
    pub(crate) fn counter(&self, kind: &str, shard: u16) -> String {
        format!("{}n/{kind}/{shard:02}", self.root)
    }
    /// Every shard of the count of `kind`, in one scan.
    pub(crate) fn counters(&self, kind: &str) -> String {
        format!("{}n/{kind}/", self.root)
    }
    /// Present when the counters hold since the account's creation
    /// (accounts made before counters existed count by walking).
    pub(crate) fn counted(&self) -> String {
        format!("{}n/since-creation", self.root)
    }

    /// Every index entry.
    pub(crate) fn index_root(&self) -> String {
        format!("{}x/", self.root)
    }
    /// Every group → user edge.
    pub(crate) fn edge_root(&self) -> String {
        format!("{}m/", self.root)
    }
    /// Every user → group edge.
    pub(crate) fn reverse_edge_root(&self) -> String {
        format!("{}mu/", self.root)
    }

    /// Membership edge group → user.
    pub(crate) fn member(&self, group: &str, user: &str) -> String {
        format!("{}m/{}/{}", self.root, segment(group), segment(user))
    }
    pub(crate) fn members(&self, group: &str) -> String {
        format!("{}m/{}/", self.root, segment(group))
    }
    /// Membership edge user → group.
    pub(crate) fn membership(&self, user: &str, group: &str) -> String {
        format!("{}mu/{}/{}", self.root, segment(user), segment(group))
    }
    pub(crate) fn memberships(&self, user: &str) -> String {
        format!("{}mu/{}/", self.root, segment(user))
    }
}

/// The last segment of a key, unescaped (ids in index keys).
pub(crate) fn last_segment(key: &str) -> String {
    let raw = key.rsplit('/').next().unwrap_or("");
    crate::http::percent_decode(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cannot_escape_their_segment() {
        let k = AccountKeys::new("acme");
        assert_eq!(k.user_name("A/B%"), "a/acme/x/un/a%2Fb%25");
        assert!(!k.user_emails("x/").starts_with(&k.user_emails("x")));
        assert_eq!(last_segment(&k.member("g", "u/1")), "u/1");
        assert_ne!(AccountKeys::new("a/b").user("c"), AccountKeys::new("a").user("b/c"));
    }
}
