//! Bounded clean-up of work too large for one commit.
//!
//! Deleting a group of 100,000 members, clearing one, or deleting a user in
//! thousands of groups cannot be one commit on a store that caps commits.
//! The request's own commit makes the change final and visible at once (the
//! group record goes or moves to a new membership generation; a deleted
//! user's tombstone hides its edges) and leaves a tombstone under `t/`.
//! The sweeper then removes the dead edges in commits that every store
//! accepts: some right after the request that made them, more after each
//! later write to the account. Every sweep commit holds preconditions on
//! what it read, so it never removes an edge written since.

use std::collections::BTreeSet;

use crate::env::Env;
use crate::error::ScimError;
use crate::groups::{RESERVED_WRITES, WRITES_PER_MEMBER, edge_gen};
use crate::http::percent_decode;
use crate::store::{self, Entry, SCAN_PAGE, Store, StoreError, Write};
use crate::tenant::Tenant;

/// Sweep commits made after each SCIM write request.
pub(crate) const STEPS_PER_WRITE: usize = 4;

/// Most deleted users whose edges one request hides while they wait for
/// the sweeper (each such user was in thousands of groups: rare, and
/// swept within a few writes).
const MAX_PENDING_USERS: usize = 10_000;

impl<S: Store, E: Env> Tenant<'_, S, E> {
    /// Users deleted whose edges the sweeper has not removed yet: group
    /// listings must not show them. One scan, nearly always empty; read
    /// afresh each time, since a Bulk request may delete a user between two
    /// reads of a group.
    pub(crate) fn deleted_users(&self) -> Result<BTreeSet<String>, ScimError> {
        let prefix = self.keys.user_tombstones();
        let (entries, _) = store::scan_all(self.store(), &prefix, MAX_PENDING_USERS)?;
        Ok(entries.iter().map(|e| percent_decode(&e.key[prefix.len()..])).collect())
    }

    /// Whether clean-up is waiting: one read, made before a write request
    /// commits so that it shares the request's snapshot. A write whose
    /// account has nothing waiting and which leaves nothing itself
    /// ([`Tenant::left_work`]) then skips the sweep, and with it a second
    /// read transaction after its commit. A store that cannot say is taken
    /// to have work waiting.
    pub(crate) fn work_waiting(&self) -> bool {
        !matches!(self.store().scan(&self.keys.tombstones(), None, 1), Ok(page) if page.entries.is_empty())
    }

    /// Makes at most `steps` clean-up commits. Best effort: a lost race or
    /// an unavailable store leaves the rest for a later request.
    pub(crate) fn sweep(&self, steps: usize) {
        for _ in 0..steps {
            match self.sweep_step() {
                Ok(true) => continue,
                Ok(false) | Err(_) => return,
            }
        }
    }

    /// One bounded commit of clean-up; `Ok(false)` when nothing is pending.
    fn sweep_step(&self) -> Result<bool, ScimError> {
        let prefix = self.keys.tombstones();
        let page = self.store().scan(&prefix, None, 1)?;
        let Some(tomb) = page.entries.into_iter().next() else { return Ok(false) };
        let rest = tomb.key[prefix.len()..].to_owned();
        let result = if let Some(group) = rest.strip_prefix("g/") {
            self.sweep_group(&percent_decode(group), &tomb)
        } else if let Some(user) = rest.strip_prefix("u/") {
            self.sweep_user(&percent_decode(user), &tomb)
        } else {
            self.store().commit(vec![Write::delete_at(tomb.key.clone(), tomb.version)]).map(|_| ())
        };
        match result {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes one page of the edges of `group` that no live generation
    /// names, resuming where the last step stopped (the tombstone's value).
    fn sweep_group(&self, group: &str, tomb: &Entry) -> Result<(), StoreError> {
        let live = match self.store().get(&self.keys.group(group))? {
            Some(entry) => crate::tenant::Stored::decode(&entry).ok().map(|g| g.generation),
            None => None,
        };
        let after = (!tomb.value.is_empty()).then(|| String::from_utf8_lossy(&tomb.value).into_owned());
        let room =
            (self.store().limits().commit_writes.saturating_sub(RESERVED_WRITES) / 2).min(SCAN_PAGE as usize) as u32;
        let page = self.store().scan(&self.keys.members(group), after.as_deref(), room.max(1))?;
        let dead: Vec<&Entry> = page.entries.iter().filter(|e| Some(edge_gen(&e.value)) != live).collect();
        let reverse_keys: Vec<String> =
            dead.iter().map(|e| self.keys.membership(&crate::keys::last_segment(&e.key), group)).collect();
        let reverse = store::get_all(self.store(), &reverse_keys)?;
        let mut writes = Vec::with_capacity(dead.len() * 2 + 1);
        for (edge, back) in dead.iter().zip(reverse) {
            writes.push(Write::delete_at(edge.key.clone(), edge.version));
            // The reverse edge goes only if it is of the same dead
            // generation: one of the live group is the user's membership.
            if let Some(back) = back.filter(|b| b.value == edge.value) {
                writes.push(Write::delete_at(back.key, back.version));
            }
        }
        writes.push(match page.entries.last() {
            Some(last) if page.more => Write::replace(tomb.key.clone(), last.key.clone().into_bytes(), tomb.version),
            _ => Write::delete_at(tomb.key.clone(), tomb.version),
        });
        self.store().commit(writes).map(|_| ())
    }

    /// Takes one page of a deleted user's memberships away.
    fn sweep_user(&self, user: &str, tomb: &Entry) -> Result<(), StoreError> {
        let room = (self.store().limits().commit_writes.saturating_sub(RESERVED_WRITES) / WRITES_PER_MEMBER)
            .min(SCAN_PAGE as usize) as u32;
        let page = self.store().scan(&self.keys.memberships(user), None, room.max(1))?;
        let mut writes = self.leave_groups(user, &page.entries).map_err(|e| StoreError::Unavailable(e.detail))?;
        if !page.more {
            writes.push(Write::delete_at(tomb.key.clone(), tomb.version));
        }
        self.store().commit(writes).map(|_| ())
    }
}
