//! Consistency check of one account's records, and repair of what can be
//! derived again.
//!
//! Every write is one atomic commit, so a crash cannot leave half of one
//! behind; the check is how an operator proves that on a real database (after
//! a crash, a restore, a foreign writer or a bug) instead of trusting it. It
//! walks the account in phases, each a resumable scan, and answers one
//! bounded page of work per call with a cursor to the next:
//!
//! - `u`, `g`: every user and group has every index entry its attributes
//!   call for (repair: write the missing entry);
//! - `x`: every index entry belongs to a resource that calls for it, with the
//!   same value (repair: delete the stray entry); role-binding indexes are
//!   left to their own rules;
//! - `m`, `mu`: every live membership edge has its reverse edge (repair: write
//!   it), and an edge of a dead generation or of a deleted user is awaiting
//!   the sweeper (a tombstone names it) rather than leaked (repair: delete
//!   it); a group's member count equals its live edges (repair: set it);
//! - `n`, `ng`: the counters of the user and group name indexes equal the
//!   number of their keys (repair: rewrite the shards);
//! - `log`: every audit record is a JSON object (not repairable).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::audit::{Action, Op};
use crate::env::Env;
use crate::error::ScimError;
use crate::groups::edge_gen;
use crate::keys;
use crate::list;
use crate::store::{Entry, Store, Write};
use crate::tenant::{self, Stored, Tenant};

/// Most records examined per call, whatever the phase.
const BUDGET: usize = 2_000;

/// Tally key of the group whose live edges phase `m` is counting.
const MEMBERS_OF: &str = "members/";

/// The phases, in order.
const PHASES: [&str; 8] = ["u", "g", "x", "m", "mu", "n", "ng", "log"];

/// One thing found wrong.
struct Problem {
    kind: &'static str,
    key: String,
    detail: String,
    /// The writes that put it right, when they can be derived.
    fix: Vec<Write>,
}

impl<S: Store, E: Env> Tenant<'_, S, E> {
    /// One page of the check: from `cursor` (empty: the start), about
    /// `budget` records (at most [`BUDGET`]); with `repair`, the fixes found
    /// are committed.
    pub(crate) fn check(&self, cursor: &str, budget: usize, repair: bool) -> Result<Value, ScimError> {
        let budget = budget.clamp(1, BUDGET);
        let (mut phase, mut after, mut tally) = parse_cursor(cursor)?;
        let mut problems = Vec::new();
        let mut examined = 0;
        while examined < budget {
            let prefix = self.phase_prefix(PHASES[phase]);
            let page = self.store().scan(&prefix, after.as_deref(), (budget - examined).min(1000) as u32)?;
            examined += page.entries.len();
            self.check_entries(PHASES[phase], &page.entries, &mut problems, &mut tally)?;
            if let Some(last) = page.entries.last() {
                after = Some(last.key.clone());
            }
            if page.more {
                continue;
            }
            match PHASES[phase] {
                "m" => self.finish_member_count(&mut tally, &mut problems)?,
                "n" => self.check_counter("users", &tally, &mut problems)?,
                "ng" => self.check_counter("groups", &tally, &mut problems)?,
                _ => {}
            }
            phase += 1;
            after = None;
            tally = BTreeMap::new();
            if phase == PHASES.len() {
                break;
            }
        }
        let mut repaired = 0;
        if repair {
            let mut fixes: Vec<Write> = problems.iter().flat_map(|p| p.fix.clone()).collect();
            self.count_repaired_names(&mut fixes);
            // Without the counter writes of an ordinary commit: phase `n`
            // recounts the name indexes after every index repair anyway.
            for chunk in fixes.chunks(self.store().limits().commit_writes.saturating_sub(64).max(1)) {
                let mut writes = dedup(chunk);
                repaired += writes.len();
                writes.push(self.audit_record(Op::new(Action::StoreRepair, "")));
                self.store().commit(writes)?;
            }
        }
        let next = (phase < PHASES.len()).then(|| encode_cursor(phase, after.as_deref(), &tally));
        Ok(json!({
            "problems": problems.iter().map(|p| json!({"kind": p.kind, "key": p.key, "detail": p.detail, "repairable": !p.fix.is_empty()})).collect::<Vec<_>>(),
            "examined": examined,
            "repaired": repaired,
            "nextCursor": next,
        }))
    }

    fn phase_prefix(&self, phase: &str) -> String {
        match phase {
            "u" => self.keys.users(),
            "g" => self.keys.groups(),
            "x" => self.keys.index_root(),
            "m" => self.keys.edge_root(),
            "mu" => self.keys.reverse_edge_root(),
            "n" => self.keys.user_names(),
            "ng" => self.keys.group_names(),
            _ => self.keys.audit_log(),
        }
    }

    fn check_entries(
        &self,
        phase: &str,
        entries: &[Entry],
        problems: &mut Vec<Problem>,
        tally: &mut BTreeMap<String, i64>,
    ) -> Result<(), ScimError> {
        for entry in entries {
            match phase {
                "u" | "g" => {
                    let id = keys::last_segment(&entry.key);
                    let stored = Stored::decode(entry)?;
                    for write in self.index_of(phase == "u", &id, &stored) {
                        let Some(value) = &write.value else { continue };
                        let found = self.store().get(&write.key)?;
                        if found.as_ref().map(|e| &e.value) != Some(value) {
                            problems.push(Problem {
                                kind: "missingIndex",
                                key: write.key.clone(),
                                detail: format!(
                                    "{} {id} calls for this index entry",
                                    if phase == "u" { "user" } else { "group" }
                                ),
                                fix: vec![match found {
                                    Some(e) => Write::replace(write.key.clone(), value.clone(), e.version),
                                    None => Write::create(write.key.clone(), value.clone()),
                                }],
                            });
                        }
                    }
                    if phase == "g" {
                        self.check_memberless_count(&id, entry, &stored, problems)?;
                    }
                }
                "x" => self.check_index_entry(entry, problems)?,
                "m" => {
                    let live = self.check_edge(true, entry, problems)?;
                    self.count_member(entry, live, tally, problems)?;
                }
                "mu" => {
                    self.check_edge(false, entry, problems)?;
                }
                "n" => *tally.entry("users".into()).or_default() += 1,
                "ng" => *tally.entry("groups".into()).or_default() += 1,
                _ => {
                    if !matches!(serde_json::from_slice::<Value>(&entry.value), Ok(Value::Object(_))) {
                        problems.push(Problem {
                            kind: "corruptAudit",
                            key: entry.key.clone(),
                            detail: "an audit record that is not a JSON object".into(),
                            fix: Vec::new(),
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// The index writes a resource calls for.
    fn index_of(&self, user: bool, id: &str, stored: &Stored) -> Vec<Write> {
        if user {
            self.user_index_writes(id, None, Some(stored)).into_writes()
        } else {
            self.group_index_writes(id, None, Some(stored)).into_writes()
        }
    }

    /// An index entry must be one its resource calls for, with that value.
    fn check_index_entry(&self, entry: &Entry, problems: &mut Vec<Problem>) -> Result<(), ScimError> {
        let rest = &entry.key[self.keys.index_root().len()..];
        let kind = rest.split('/').next().unwrap_or_default();
        let user = match kind {
            "un" | "ue" | "um" | "le" => true,
            "gn" | "ge" | "ngn" => false,
            // Role-binding indexes are checked by their own rules.
            _ => return Ok(()),
        };
        // Unique indexes hold the id as their value; the others end in it.
        let id = if matches!(kind, "un" | "le" | "gn" | "ngn") {
            String::from_utf8_lossy(&entry.value).into_owned()
        } else {
            keys::last_segment(&entry.key)
        };
        let key = if user { self.keys.user(&id) } else { self.keys.group(&id) };
        let called_for = match self.store().get(&key)? {
            Some(resource) => {
                let stored = Stored::decode(&resource)?;
                self.index_of(user, &id, &stored)
                    .iter()
                    .any(|w| w.key == entry.key && w.value.as_deref() == Some(&entry.value[..]))
            }
            None => false,
        };
        if !called_for {
            problems.push(Problem {
                kind: "strayIndex",
                key: entry.key.clone(),
                detail: format!("no {} {id} calls for this index entry", if user { "user" } else { "group" }),
                fix: vec![Write::delete_at(entry.key.clone(), entry.version)],
            });
        }
        Ok(())
    }

    /// The (group, user) an edge joins.
    fn edge_ends(&self, forward: bool, key: &str) -> (String, String) {
        let root = if forward { self.keys.edge_root() } else { self.keys.reverse_edge_root() };
        let mut parts = key[root.len()..].splitn(2, '/');
        let (first, second) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        let (first, second) = (keys::last_segment(first), keys::last_segment(second));
        if forward { (first, second) } else { (second, first) }
    }

    /// A live edge needs its reverse; a dead one needs a tombstone that
    /// schedules its sweeping. Answers whether the edge is live.
    fn check_edge(&self, forward: bool, entry: &Entry, problems: &mut Vec<Problem>) -> Result<bool, ScimError> {
        let (group, user) = self.edge_ends(forward, &entry.key);
        let found = self.store().get_many(&[
            self.keys.group(&group),
            self.keys.user(&user),
            self.keys.group_tombstone(&group),
            self.keys.user_tombstone(&user),
        ])?;
        let group_record = found[0].as_ref().map(Stored::decode).transpose()?;
        let live_generation = group_record.as_ref().map(|g| g.generation);
        let live = live_generation == Some(edge_gen(&entry.value)) && found[1].is_some() && found[3].is_none();
        if live {
            let other = if forward { self.keys.membership(&user, &group) } else { self.keys.member(&group, &user) };
            let reverse = self.store().get(&other)?;
            if reverse.as_ref().map(|e| &e.value) != Some(&entry.value) {
                problems.push(Problem {
                    kind: "missingEdge",
                    key: other.clone(),
                    detail: format!("user {user} is a member of group {group} but this edge is missing"),
                    fix: vec![Write::put(other, entry.value.clone())],
                });
            }
        } else if found[2].is_none() && found[3].is_none() {
            problems.push(Problem {
                kind: "staleEdge",
                key: entry.key.clone(),
                detail: format!("an edge of user {user} and group {group} that is not live and that no tombstone schedules for sweeping"),
                fix: vec![Write::delete_at(entry.key.clone(), entry.version)],
            });
        }
        Ok(live)
    }

    /// Counts a group's live edges as phase `m` walks them (edges are
    /// ordered by group), so that a group of any size costs the check no
    /// more than its edges' share of the page budget: the group in progress
    /// and its count so far travel in the cursor's tally, and a group is
    /// judged when the walk reaches the next group or the phase ends.
    fn count_member(
        &self,
        entry: &Entry,
        live: bool,
        tally: &mut BTreeMap<String, i64>,
        problems: &mut Vec<Problem>,
    ) -> Result<(), ScimError> {
        let (group, _) = self.edge_ends(true, &entry.key);
        let key = format!("{MEMBERS_OF}{group}");
        if !tally.contains_key(&key) {
            self.finish_member_count(tally, problems)?;
            tally.insert(key.clone(), 0);
        }
        if live {
            *tally.entry(key).or_default() += 1;
        }
        Ok(())
    }

    /// Judges the group whose edges phase `m` counted last.
    fn finish_member_count(
        &self,
        tally: &mut BTreeMap<String, i64>,
        problems: &mut Vec<Problem>,
    ) -> Result<(), ScimError> {
        let Some(key) = tally.keys().find(|k| k.starts_with(MEMBERS_OF)).cloned() else { return Ok(()) };
        let live = tally.remove(&key).unwrap_or(0).max(0) as u64;
        let group = &key[MEMBERS_OF.len()..];
        let Some(entry) = self.store().get(&self.keys.group(group))? else { return Ok(()) };
        let stored = Stored::decode(&entry)?;
        self.compare_member_count(group, &entry, &stored, live, problems);
        Ok(())
    }

    /// Phase `g`'s share of the member counts: a group that keeps a count
    /// above zero but has no edge at all, which phase `m` never meets.
    fn check_memberless_count(
        &self,
        id: &str,
        entry: &Entry,
        stored: &Stored,
        problems: &mut Vec<Problem>,
    ) -> Result<(), ScimError> {
        if stored.members.is_some_and(|kept| kept > 0)
            && self.store().scan(&self.keys.members(id), None, 1)?.entries.is_empty()
        {
            self.compare_member_count(id, entry, stored, 0, problems);
        }
        Ok(())
    }

    /// A group's kept member count must equal its live edges.
    fn compare_member_count(&self, id: &str, entry: &Entry, stored: &Stored, live: u64, problems: &mut Vec<Problem>) {
        let Some(kept) = stored.members else { return };
        if kept != live {
            let mut fixed = stored.clone();
            fixed.members = Some(live);
            problems.push(Problem {
                kind: "memberCount",
                key: entry.key.clone(),
                detail: format!("group {id} counts {kept} members but has {live}"),
                fix: vec![Write::replace(entry.key.clone(), fixed.encode(), entry.version)],
            });
        }
    }

    /// A name-index counter must equal the keys counted in its phase.
    fn check_counter(
        &self,
        kind: &str,
        tally: &BTreeMap<String, i64>,
        problems: &mut Vec<Problem>,
    ) -> Result<(), ScimError> {
        let Some(kept) = self.count(kind)? else { return Ok(()) };
        let actual = tally.get(kind).copied().unwrap_or(0);
        if kept as i64 != actual {
            // The first shard holds the counted total; every other goes.
            let first = self.keys.counter(kind, 0);
            let mut fix = vec![Write::put(first.clone(), actual.to_string().into_bytes())];
            fix.extend(self.counter_shards(kind)?.into_iter().filter(|e| e.key != first).map(|e| Write::delete(e.key)));
            problems.push(Problem {
                kind: "counter",
                key: self.keys.counter(kind, 0),
                detail: format!("the {kind} counter says {kept}, its index holds {actual}"),
                fix,
            });
        }
        Ok(())
    }
}

impl<S: Store, E: Env> Tenant<'_, S, E> {
    /// A counter fix counted the name index before this page's index fixes
    /// land: move it by what they add to or remove from that index.
    fn count_repaired_names(&self, fixes: &mut [Write]) {
        for kind in ["users", "groups"] {
            let prefix = if kind == "users" { self.keys.user_names() } else { self.keys.group_names() };
            let delta = tenant::name_index_delta(fixes, &prefix);
            let first = self.keys.counter(kind, 0);
            if let Some(fix) = fixes.iter_mut().find(|w| w.key == first)
                && let Some(n) =
                    fix.value.as_ref().and_then(|v| std::str::from_utf8(v).ok()).and_then(|v| v.parse::<i64>().ok())
            {
                fix.value = Some((n + delta).to_string().into_bytes());
            }
        }
    }
}

/// One write per key (two problems can name the same fix).
fn dedup(writes: &[Write]) -> Vec<Write> {
    let mut seen = std::collections::HashSet::new();
    writes.iter().filter(|w| seen.insert(w.key.clone())).cloned().collect()
}

/// The check's cursor: its state as JSON, opaque as list cursors are.
fn encode_cursor(phase: usize, after: Option<&str>, tally: &BTreeMap<String, i64>) -> String {
    list::encode_cursor(&json!({"p": phase, "a": after, "t": tally}).to_string())
}

/// Where a check resumes: phase, last key examined, the phase's tally.
type Position = (usize, Option<String>, BTreeMap<String, i64>);

fn parse_cursor(cursor: &str) -> Result<Position, ScimError> {
    if cursor.is_empty() {
        return Ok((0, None, BTreeMap::new()));
    }
    let invalid = || ScimError::invalid_value("the cursor was not issued by the check");
    let state: Value = serde_json::from_str(&list::decode_cursor(cursor)?).map_err(|_| invalid())?;
    let phase = state["p"].as_u64().filter(|p| (*p as usize) < PHASES.len()).ok_or_else(invalid)? as usize;
    let after = state["a"].as_str().map(str::to_owned);
    let tally = serde_json::from_value(state["t"].clone()).map_err(|_| invalid())?;
    Ok((phase, after, tally))
}
