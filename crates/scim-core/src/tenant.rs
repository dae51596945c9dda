//! One authenticated request's view of an account: its keys, its base URL
//! and the record helpers that users and groups share.

use std::cell::{Cell, OnceCell};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Service;
use crate::audit::{self, Action, Actor, Op, RequestInfo};
use crate::env::{Env, format_rfc3339};
use crate::error::ScimError;
use crate::keys::AccountKeys;
use crate::resource::Meta;
use crate::settings::Settings;
use crate::store::{Entry, Precondition, Store, StoreError, Write};

/// How many times a write re-reads and retries after losing an optimistic
/// concurrency race before answering 503.
pub(crate) const MAX_ATTEMPTS: usize = 32;

/// The stored form of a user or group.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Stored {
    pub(crate) created: i64,
    pub(crate) modified: i64,
    pub(crate) attrs: Map<String, Value>,
    #[serde(default)]
    pub(crate) prov: Provenance,
    /// A group's membership generation, which every live edge of the group
    /// carries as its value. Clearing a group too large to clear in one
    /// commit, or deleting it, moves to a new generation (or none) in one
    /// commit: the old edges become invisible at once and are cleaned up
    /// later in bounded steps. 0 on records from before generations, whose
    /// edges are empty.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) generation: u64,
    /// A group's member count, kept with every membership change so the
    /// member limit holds without counting edges. Absent on records from
    /// before it was kept (counted on their next membership change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) members: Option<u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Where a user or group comes from and who manages it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Provenance {
    /// Made through the admin API and not taken over by SCIM. Records
    /// written before provenance existed were all SCIM's, hence the default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) native: bool,
    /// The SCIM token that created or took over the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) token: Option<String>,
    /// When SCIM took a native resource over (migration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) taken_over: Option<i64>,
    /// A user's login e-mail, lower case: the identity migration matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) login: Option<String>,
    /// A native user invited by e-mail who has not signed in yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) invited: bool,
}

impl Provenance {
    pub(crate) fn source(&self) -> &'static str {
        if self.native { "native" } else { "scim" }
    }
}

impl Stored {
    pub(crate) fn decode(entry: &Entry) -> Result<Self, ScimError> {
        serde_json::from_slice(&entry.value)
            .map_err(|_| ScimError::unavailable(format!("record {} is corrupt", entry.key)))
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        // Maps of JSON values always serialise.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(crate) fn meta(&self, version: u64) -> Meta {
        Meta { created: format_rfc3339(self.created), last_modified: format_rfc3339(self.modified), version }
    }
}

/// An account as seen by one request.
pub(crate) struct Tenant<'a, S, E> {
    pub(crate) service: &'a Service<S, E>,
    pub(crate) account: String,
    pub(crate) keys: AccountKeys,
    /// `scheme://authority/<prefix>/<account>`, for `meta.location`.
    pub(crate) base_url: String,
    pub(crate) actor: Actor,
    pub(crate) request: RequestInfo,
    settings: OnceCell<Settings>,
    /// A commit of this request left a tombstone for the sweeper.
    left_work: Cell<bool>,
}

impl<'a, S: Store, E: Env> Tenant<'a, S, E> {
    pub(crate) fn new(
        service: &'a Service<S, E>,
        account: &str,
        base_url: String,
        actor: Actor,
        request: RequestInfo,
    ) -> Self {
        Tenant {
            service,
            account: account.to_owned(),
            keys: AccountKeys::new(account),
            base_url,
            actor,
            request,
            settings: OnceCell::new(),
            left_work: Cell::new(false),
        }
    }
}

impl<S: Store, E: Env> Tenant<'_, S, E> {
    /// The account's settings, read once per request.
    pub(crate) fn settings(&self) -> Result<&Settings, ScimError> {
        if let Some(s) = self.settings.get() {
            return Ok(s);
        }
        // Settings are the admin API's to change: without native records
        // they stay at their defaults, and cost no read.
        let settings = if self.service.config().policy().native_records() {
            self.service.account_settings(&self.account)?
        } else {
            Settings::default()
        };
        Ok(self.settings.get_or_init(|| settings))
    }

    /// Commits `writes` with the audit record of `op` as the last write, so
    /// the change and its record land together or not at all, and with the
    /// counters of the order indexes the writes add to or remove from.
    pub(crate) fn commit(&self, op: Op<'_>, mut writes: Vec<Write>) -> Result<u64, StoreError> {
        writes.extend(self.counter_writes(&writes)?);
        writes.push(audit::record(&self.keys, self.service.env(), &self.actor, &self.request, op, None));
        let tombstones = self.keys.tombstones();
        let leaves_work = writes.iter().any(|w| w.value.is_some() && w.key.starts_with(&tombstones));
        let version = self.store().commit(writes)?;
        if leaves_work {
            self.left_work.set(true);
        }
        Ok(version)
    }

    /// Whether a commit of this request left clean-up for the sweeper.
    pub(crate) fn left_work(&self) -> bool {
        self.left_work.get()
    }

    /// [`Tenant::commit`] of a [`Plan`]: a conflict on one of its
    /// reservations is answered as the name that is taken.
    pub(crate) fn commit_plan(&self, op: Op<'_>, plan: Plan) -> Result<u64, Refused> {
        let Plan { writes, reservations } = plan;
        match self.commit(op, writes) {
            Err(StoreError::Conflict(i)) => match reservations.iter().find(|(at, _)| *at == i as usize) {
                Some((_, what)) => Err(Refused::Taken(what)),
                None => Err(Refused::Store(StoreError::Conflict(i))),
            },
            other => other.map_err(Refused::Store),
        }
    }

    /// Moves a random shard of each counter by what `writes` do to its
    /// order index: a reservation (`Absent`) adds a name, a delete removes
    /// one. The shard is written at the version read, so a concurrent
    /// commit on it is a lost race, retried like any other.
    fn counter_writes(&self, writes: &[Write]) -> Result<Vec<Write>, StoreError> {
        let mut out = Vec::new();
        for (kind, prefix) in [("users", self.keys.user_names()), ("groups", self.keys.group_names())] {
            let delta = name_index_delta(writes, &prefix);
            if delta == 0 {
                continue;
            }
            let mut shard = [0u8; 2];
            self.service.env().fill_random(&mut shard);
            let key = self.keys.counter(kind, u16::from_le_bytes(shard) % COUNTER_SHARDS);
            out.push(match self.store().get(&key)? {
                Some(entry) => {
                    Write::replace(key, (decode_count(&entry.value) + delta).to_string().into_bytes(), entry.version)
                }
                None => Write::create(key, delta.to_string().into_bytes()),
            });
        }
        Ok(out)
    }

    /// The number of keys in the order index of `kind`, from its counter
    /// shards (one scan: they sit side by side); `None` for accounts older
    /// than the counters.
    pub(crate) fn count(&self, kind: &str) -> Result<Option<usize>, ScimError> {
        if self.store().get(&self.keys.counted())?.is_none() {
            return Ok(None);
        }
        let total: i64 = self.counter_shards(kind)?.iter().map(|e| decode_count(&e.value)).sum();
        Ok(Some(total.max(0) as usize))
    }

    /// Every shard record of the count of `kind`, for its repair.
    pub(crate) fn counter_shards(&self, kind: &str) -> Result<Vec<Entry>, ScimError> {
        Ok(crate::store::scan_all(self.store(), &self.keys.counters(kind), MAX_COUNTER_KEYS)?.0)
    }

    /// The audit record of a successful `op`, for commits made outside
    /// [`Tenant::commit`].
    pub(crate) fn audit_record(&self, op: Op<'_>) -> Write {
        audit::record(&self.keys, self.service.env(), &self.actor, &self.request, op, None)
    }

    /// Runs one write of a SCIM client. A refusal for the client's reasons
    /// (4xx) is recorded under `action`, the name the write itself records
    /// when it lands, so a refused PUT and a successful one read alike in
    /// the log; a 5xx is the service's failure, not the client's attempt.
    pub(crate) fn audited<T>(
        &self,
        action: Action,
        resource_id: &str,
        write: impl FnOnce() -> Result<T, ScimError>,
    ) -> Result<T, ScimError> {
        let result = write();
        if let Err(err) = &result
            && err.status < 500
        {
            self.record_failure(Op::new(action, resource_id), err);
        }
        result
    }

    /// Records a refused write. Best effort: the refusal is the answer
    /// whether or not its record could be stored.
    pub(crate) fn record_failure(&self, op: Op<'_>, err: &ScimError) {
        let write = audit::record(&self.keys, self.service.env(), &self.actor, &self.request, op, Some(err));
        let _ = self.store().commit(vec![write]);
    }

    pub(crate) fn provenance(&self) -> Provenance {
        Provenance {
            native: false,
            token: self.actor.token_id().map(str::to_owned),
            taken_over: None,
            login: None,
            invited: false,
        }
    }

    /// A fresh, never-zero membership generation for a group.
    pub(crate) fn new_generation(&self) -> u64 {
        let mut bytes = [0u8; 8];
        self.service.env().fill_random(&mut bytes);
        u64::from_le_bytes(bytes).max(1)
    }

    pub(crate) fn store(&self) -> &S {
        self.service.store()
    }

    pub(crate) fn now(&self) -> i64 {
        self.service.env().now_millis()
    }

    pub(crate) fn location(&self, endpoint: &str, id: &str) -> String {
        // Ids are server-issued (UUIDs, group identifiers) and URL-safe.
        format!("{}{endpoint}/{id}", self.base_url)
    }
}

/// What `writes` do to the number of keys under the order index `prefix`:
/// a reservation (`Absent`) adds a name, a delete removes one.
pub(crate) fn name_index_delta(writes: &[Write], prefix: &str) -> i64 {
    writes
        .iter()
        .filter(|w| w.key.starts_with(prefix))
        .map(|w| match (&w.value, w.precondition) {
            (Some(_), Precondition::Absent) => 1,
            (None, _) => -1,
            _ => 0,
        })
        .sum()
}

/// Shards of each counter. Every create and delete rewrites one shard at
/// the version it read, so two concurrent writes that draw the same shard
/// are a lost race, retried as a whole (plan, reads and commit again):
/// with 16 shards and 8 clients creating, a quarter of all creates went
/// round twice. Reading the count is one scan of adjacent keys whatever
/// their number, so shards are cheap and many.
const COUNTER_SHARDS: u16 = 256;

/// Most shard records a count reads: every shard, with room for the
/// shards of an earlier, smaller layout.
const MAX_COUNTER_KEYS: usize = 1024;

fn decode_count(bytes: &[u8]) -> i64 {
    std::str::from_utf8(bytes).ok().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The `If-Match` precondition of a write (RFC 7644 §3.14).
pub(crate) fn check_if_match(if_match: Option<&str>, version: u64) -> Result<(), ScimError> {
    let Some(header) = if_match else { return Ok(()) };
    let current = Meta::etag(version);
    let strong = format!("\"{version}\"");
    let ok = header.split(',').map(str::trim).any(|tag| tag == "*" || tag == current || tag == strong);
    if ok {
        Ok(())
    } else {
        Err(ScimError::new(412, None, format!("the resource is at version {current}, not {header}")))
    }
}

/// The `If-None-Match` check of a read: `true` means answer 304.
pub(crate) fn not_modified(if_none_match: Option<&str>, version: u64) -> bool {
    let Some(header) = if_none_match else { return false };
    let current = Meta::etag(version);
    let strong = format!("\"{version}\"");
    header.split(',').map(str::trim).any(|tag| tag == "*" || tag == current || tag == strong)
}

/// Runs `attempt` until it does not lose a concurrency race, at most
/// [`MAX_ATTEMPTS`] times. `attempt` returns `Ok(Err(conflict))` for a lost
/// race it wants retried. After the second loss in a row it waits (through
/// [`Env::pause`]) an exponentially growing, jittered time, at most
/// [`MAX_BACKOFF_MS`]: writers contending for one record (a busy group)
/// spread out instead of spinning through their attempts together.
pub(crate) fn retry<T>(
    env: &dyn Env,
    attempt: impl FnMut() -> Result<Result<T, StoreError>, ScimError>,
) -> Result<T, ScimError> {
    retry_or(env, || ScimError::unavailable("the resource is being changed concurrently; retry"), attempt)
}

/// [`retry`] for any error type (the operator's API answers
/// [`crate::AdminError`]); `contended` makes the answer when every attempt
/// lost its race.
pub(crate) fn retry_or<T, X: From<StoreError>>(
    env: &dyn Env,
    contended: impl FnOnce() -> X,
    mut attempt: impl FnMut() -> Result<Result<T, StoreError>, X>,
) -> Result<T, X> {
    for lost in 0..MAX_ATTEMPTS {
        if lost >= 1 {
            env.pause(backoff_millis(env, lost));
        }
        match attempt()? {
            Ok(v) => return Ok(v),
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(contended())
}

/// Longest wait between two attempts of one write.
pub(crate) const MAX_BACKOFF_MS: u32 = 32;

/// The wait after `lost` lost races: 1, 2, 4 … [`MAX_BACKOFF_MS`] ms, each
/// drawn uniformly from its upper half so that writers that collided once
/// do not collide again on the same schedule.
fn backoff_millis(env: &dyn Env, lost: usize) -> u32 {
    let ceiling = (1u32 << (lost - 1).min(5)).min(MAX_BACKOFF_MS);
    let mut byte = [0u8; 1];
    env.fill_random(&mut byte);
    let half = ceiling.div_ceil(2);
    half + u32::from(byte[0]) % (ceiling - half + 1)
}

/// Parses a JSON request body.
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, ScimError> {
    if body.is_empty() {
        return Err(ScimError::invalid_syntax("the request needs a JSON body"));
    }
    serde_json::from_slice::<crate::json::Strict>(body)
        .map(|strict| strict.0)
        .map_err(|e| ScimError::invalid_syntax(format!("the body is not valid JSON: {e}")))
}

/// An index record: key, value, and for a unique reservation the name of
/// what it keeps unique (`userName`, `login`, `displayName`).
pub(crate) type IndexEntry = (String, Vec<u8>, Option<&'static str>);

/// The writes of one commit, with its unique reservations named: a
/// reservation that another resource holds comes back from
/// [`Tenant::commit_plan`] as [`Refused::Taken`] with its name, so no
/// caller decodes a conflict's position.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    writes: Vec<Write>,
    /// (position in `writes`, what the reservation keeps unique).
    reservations: Vec<(usize, &'static str)>,
}

impl Plan {
    /// A write whose precondition, if any, guards a record read earlier:
    /// its failure is a lost race, retried.
    pub(crate) fn write(&mut self, write: Write) {
        self.writes.push(write);
    }

    /// A write that reserves something unique (`userName`, `login`,
    /// `displayName`, a group's `identifier`): its failure means taken.
    pub(crate) fn reserve(&mut self, what: &'static str, write: Write) {
        self.reservations.push((self.writes.len(), what));
        self.writes.push(write);
    }

    /// Another plan's writes after these, its reservations kept.
    pub(crate) fn append(&mut self, other: Plan) {
        let base = self.writes.len();
        self.reservations.extend(other.reservations.into_iter().map(|(at, what)| (base + at, what)));
        self.writes.extend(other.writes);
    }

    pub(crate) fn extend(&mut self, writes: impl IntoIterator<Item = Write>) {
        self.writes.extend(writes);
    }

    pub(crate) fn into_writes(self) -> Vec<Write> {
        self.writes
    }
}

/// Why a planned commit did not land.
#[derive(Debug)]
pub(crate) enum Refused {
    /// Another resource holds the reservation of this name.
    Taken(&'static str),
    /// What the store said otherwise: a lost race (retried) or a failure.
    Store(StoreError),
}

/// Writes that move a resource's index records from `old` to `new`, each
/// new unique entry a named reservation.
pub(crate) fn index_writes(old: &[IndexEntry], new: &[IndexEntry]) -> Plan {
    let mut plan = Plan::default();
    for (key, value, unique) in new {
        if !old.iter().any(|(k, _, _)| k == key) {
            match unique {
                Some(what) => plan.reserve(what, Write::create(key.clone(), value.clone())),
                None => plan.write(Write::put(key.clone(), value.clone())),
            }
        }
    }
    for (key, _, _) in old {
        if !new.iter().any(|(k, _, _)| k == key) {
            plan.write(Write::delete(key.clone()));
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::{MAX_ATTEMPTS, MAX_BACKOFF_MS, Plan, index_writes, retry};
    use crate::env::TestEnv;
    use crate::store::{Precondition, StoreError, Write};

    #[test]
    fn a_plan_keeps_its_reservations_named_where_they_land() {
        let old =
            vec![("x/un/old".to_owned(), b"u1".to_vec(), Some("userName")), ("x/ue/e1/u1".to_owned(), vec![], None)];
        let new = vec![
            ("x/un/new".to_owned(), b"u1".to_vec(), Some("userName")),
            ("x/ue/e1/u1".to_owned(), vec![], None),
            ("x/le/new".to_owned(), b"u1".to_vec(), Some("login")),
        ];
        let mut plan = Plan::default();
        plan.write(Write::replace("u/u1", b"{}".to_vec(), 7));
        plan.append(index_writes(&old, &new));
        assert_eq!(plan.reservations, vec![(1, "userName"), (2, "login")]);
        let writes = plan.into_writes();
        let shape: Vec<(&str, bool, Precondition)> =
            writes.iter().map(|w| (w.key.as_str(), w.value.is_some(), w.precondition)).collect();
        assert_eq!(
            shape,
            vec![
                ("u/u1", true, Precondition::Version(7)),
                ("x/un/new", true, Precondition::Absent),
                ("x/le/new", true, Precondition::Absent),
                ("x/un/old", false, Precondition::None),
            ]
        );
    }

    #[test]
    fn retries_back_off_growing_and_bounded() {
        // Five lost races, then success: four pauses of 1, 2, 4, 8 ms at
        // most, each at least half of that.
        let env = TestEnv::default();
        let mut lost = 0;
        let won = retry(&env, || {
            lost += 1;
            Ok(if lost <= 5 { Err(StoreError::Conflict(0)) } else { Ok(lost) })
        });
        assert_eq!(won.unwrap(), 6);
        let paused = env.paused_millis();
        assert!((1 + 1 + 2 + 4 + 8..=1 + 2 + 4 + 8 + 16).contains(&paused), "paused {paused} ms");

        // Always losing: MAX_ATTEMPTS attempts, a 503, and a bounded total wait.
        let env = TestEnv::default();
        let mut attempts = 0;
        let err = retry::<()>(&env, || {
            attempts += 1;
            Ok(Err(StoreError::Conflict(0)))
        })
        .unwrap_err();
        assert_eq!((attempts, err.status), (MAX_ATTEMPTS, 503));
        assert!(env.paused_millis() <= (MAX_ATTEMPTS as u64) * u64::from(MAX_BACKOFF_MS));
    }
}
