//! How SCIM meets what an account's admins made by hand: which native
//! users and groups SCIM sees, and what a SCIM write takes over.
//!
//! This is the provisioning policy's half of every SCIM read and write. The
//! protocol engine (`users.rs`, `groups.rs`) asks these questions and makes
//! no other decision about native records; under a policy without them
//! ([`crate::Policy::native_records`]) no record is native, every answer is
//! "none", and none costs a read.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::env::Env;
use crate::error::ScimError;
use crate::groups::MemberDelta;
use crate::settings::{Deactivation, SameNamePolicy};
use crate::store::{self, Store};
use crate::tenant::{Provenance, Stored, Tenant};

impl<S: Store, E: Env> Tenant<'_, S, E> {
    /// Whether SCIM sees this user: a native user does not exist for SCIM
    /// until a SCIM create takes it over.
    pub(crate) fn scim_sees_user(&self, user: &Stored) -> bool {
        !user.prov.native
    }

    /// Whether SCIM may see (and, by writing, take over) native groups:
    /// only under the `link` same-name policy.
    pub(crate) fn sees_native_groups(&self) -> Result<bool, ScimError> {
        if !self.service.config().policy().native_records() {
            return Ok(false);
        }
        Ok(self.settings()?.same_name_policy == SameNamePolicy::Link)
    }

    /// Whether SCIM sees this group: its own, and native ones under `link`.
    pub(crate) fn scim_sees_group(&self, group: &Stored) -> Result<bool, ScimError> {
        Ok(!group.prov.native || self.sees_native_groups()?)
    }

    /// Whether a SCIM `DELETE` may remove this group: never a native one,
    /// whatever the same-name policy (to SCIM it is not there).
    pub(crate) fn scim_may_delete_group(&self, group: &Stored) -> bool {
        !group.prov.native
    }

    /// Whether a user's `groups` lists this group: native groups are the
    /// admins', not the identity provider's.
    pub(crate) fn listed_in_user_groups(&self, group: &Stored) -> bool {
        !group.prov.native
    }

    /// Whether a SCIM write of this record takes it over from the admins.
    pub(crate) fn takes_over(&self, record: &Stored) -> bool {
        record.prov.native
    }

    /// The member ids SCIM sees: a native group (visible under `link`)
    /// hides its native members. SCIM groups hold SCIM users only, and
    /// cost no read here.
    pub(crate) fn visible_member_ids(&self, group: &Stored, mut ids: Vec<String>) -> Result<Vec<String>, ScimError> {
        if group.prov.native {
            let native = self.native_members(&ids)?;
            ids.retain(|id| !native.contains(id));
        }
        Ok(ids)
    }

    /// Which of `ids` are native users.
    fn native_members(&self, ids: &[String]) -> Result<BTreeSet<String>, ScimError> {
        let mut out = BTreeSet::new();
        let docs = store::get_all(self.store(), &ids.iter().map(|u| self.keys.user(u)).collect::<Vec<_>>())?;
        for (uid, doc) in ids.iter().zip(docs) {
            if let Some(doc) = doc
                && Stored::decode(&doc)?.prov.native
            {
                out.insert(uid.clone());
            }
        }
        Ok(out)
    }

    /// The native user a SCIM create of `attrs` takes over instead of
    /// creating a second person: one whose login is among the policy's
    /// [`crate::Policy::takeover_logins`] (migration from manual management).
    pub(crate) fn user_to_take_over(
        &self,
        attrs: &Map<String, Value>,
    ) -> Result<Option<(String, Stored, u64)>, ScimError> {
        let candidates = self.service.config().policy().takeover_logins(attrs);
        if candidates.is_empty() {
            return Ok(None);
        }
        let hits = self.store().get_many(&candidates.iter().map(|c| self.keys.login(c)).collect::<Vec<_>>())?;
        for hit in hits.into_iter().flatten() {
            let id = String::from_utf8_lossy(&hit.value).into_owned();
            if let Some((user, version)) = self.load_user(&id)?
                && user.prov.native
            {
                return Ok(Some((id, user, version)));
            }
        }
        Ok(None)
    }

    /// The user a SCIM create becomes when it takes `native` over: the same
    /// id, creation time, login, memberships and role bindings, with the
    /// identity provider's attributes and provenance.
    pub(crate) fn taken_over_user(&self, native: &Stored, attrs: Map<String, Value>, now: i64) -> Stored {
        let mut prov = self.provenance();
        prov.login = native.prov.login.clone();
        prov.taken_over = Some(now);
        Stored { created: native.created, modified: now, attrs, prov, ..native.clone() }
    }

    /// The native group a SCIM push named `name` takes over: under `link`,
    /// the one of that name (Okta's group push finds it by displayName).
    pub(crate) fn group_to_take_over(&self, name: &str) -> Result<Option<(String, Stored, u64)>, ScimError> {
        if !self.sees_native_groups()? {
            return Ok(None);
        }
        let Some(index) = self.store().get(&self.keys.native_group_name(name))? else {
            return Ok(None);
        };
        let id = String::from_utf8_lossy(&index.value).into_owned();
        Ok(self.load_group(&id)?.filter(|(g, _)| g.prov.native).map(|(g, v)| (id, g, v)))
    }

    /// What a SCIM write of native group `id` changes besides its own
    /// change: members that are still native users leave (a SCIM group only
    /// ever holds users SCIM manages) and the group becomes SCIM's.
    pub(crate) fn take_over_group(
        &self,
        id: &str,
        old: &Stored,
        delta: &mut MemberDelta,
        prov: &mut Provenance,
    ) -> Result<(), ScimError> {
        for uid in self.native_members(&self.member_ids(id, old.generation)?)? {
            delta.wish.entry(uid).or_insert(false);
        }
        *prov = self.provenance();
        prov.taken_over = Some(self.now());
        Ok(())
    }

    /// A user's login after a SCIM update from `old` to `attrs`: it follows
    /// the identity provider's e-mail when the account's settings say so
    /// (`update_emails_via_scim`), and is otherwise kept.
    pub(crate) fn login_after_update(
        &self,
        old: &Stored,
        attrs: &Map<String, Value>,
    ) -> Result<Option<String>, ScimError> {
        let policy = self.service.config().policy();
        let (was, now_is) = (policy.login(&old.attrs), policy.login(attrs));
        if was != now_is && now_is.is_some() && self.settings()?.update_emails_via_scim {
            return Ok(now_is);
        }
        Ok(old.prov.login.clone())
    }

    /// Whether `active: false` from SCIM removes the user (the account's
    /// `deactivation` setting) rather than disabling it.
    pub(crate) fn deactivation_removes(&self) -> Result<bool, ScimError> {
        Ok(self.settings()?.deactivation == Deactivation::Remove)
    }
}
