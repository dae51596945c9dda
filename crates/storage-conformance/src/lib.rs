//! The storage contract of `wit/scimlet.wit` as one suite of cases that any
//! implementation runs: the core's in-memory store, the runner's SQLite and
//! PostgreSQL stores, the SQL store of the Spin build, and (through the
//! `storage-probe` test component) a host's own implementation of the WIT
//! import.
//!
//! What `wit/README.md` promises is checked here once: byte-wise key order,
//! prefix bounds and exclusive cursors, capped pages that say `more`, atomic
//! commits whose first failing precondition is the conflict, versions that
//! strictly increase and never return after a delete, the floors every store
//! accepts in one call, and, where the subject has threads, concurrent
//! read-modify-writes and concurrent commits that keep their own outcomes.
//!
//! A native store runs it with [`conformance_tests!`], one `#[test]` per case.
//! A case fails by panicking, with a message that names what broke.

use std::sync::Arc;

use scim_core::{Entry, Limits, Precondition, ScanPage, Store, StoreError, Write};

/// A store shared by the threads of a case.
pub type Handle = Arc<dyn Store + Send + Sync>;

/// An implementation under test.
pub trait Subject: Sync {
    /// A new handle on this subject's data: what a restart of the host, a
    /// second process or a second replica opens. Every handle of one
    /// subject sees the same records.
    fn open(&self) -> Handle;

    /// Whether handles may be used from several threads at once; inside a
    /// component (no threads) the concurrent cases are not run.
    fn threads(&self) -> bool {
        true
    }
}

/// One case of the suite.
pub struct Case {
    pub name: &'static str,
    pub run: fn(&dyn Subject),
    /// Needs threads ([`Subject::threads`]).
    pub concurrent: bool,
}

/// Defines [`CASES`] and [`conformance_tests!`] from one list, so that a
/// case cannot be in one and not the other. (`$d` is a literal `$` for the
/// inner macro's own variables.)
macro_rules! cases {
    ($d:tt; $($name:ident $(: $concurrent:ident)?),* $(,)?) => {
        /// Every case, in the order they are best read.
        pub const CASES: &[Case] = &[
            $(Case { name: stringify!($name), run: $name, concurrent: cases!(@c $($concurrent)?) }),*
        ];

        /// One `#[test]` per case on the subject `$subject` evaluates to,
        /// an `Option` (`None`: the store is not available on this machine,
        /// and each test says so instead of failing; make that a failure
        /// where it matters). Concurrent cases on a subject without threads
        /// pass without running.
        #[macro_export]
        macro_rules! conformance_tests {
            ($d subject:expr) => {
                $(
                    #[test]
                    fn $name() {
                        $crate::run_case(stringify!($name), $d subject)
                    }
                )*
            };
        }
    };
    (@c concurrent) => { true };
    (@c) => { false };
}

cases!($;
    get_returns_written_value_and_version,
    get_many_answers_in_request_order,
    scan_orders_bytewise_and_respects_prefix_bounds,
    scan_after_cursor_and_limit,
    capped_pages_say_more_and_page_through,
    failing_precondition_applies_nothing,
    preconditions_absent_and_version,
    the_first_failing_precondition_is_the_conflict,
    duplicate_key_in_one_commit_is_refused,
    versions_increase_across_delete_and_recreate,
    data_and_sequence_survive_reopen,
    two_handles_see_each_other,
    the_floors_are_accepted_and_beyond_them_nothing_applies,
    conflicts_are_named_exactly_in_large_commits,
    concurrent_read_modify_write_loses_no_increment: concurrent,
    concurrent_commits_keep_their_own_outcomes_and_versions: concurrent,
);

/// The case of that name.
pub fn case(name: &str) -> Option<&'static Case> {
    CASES.iter().find(|c| c.name == name)
}

/// Runs the case `name` on `subject` (see [`conformance_tests!`]).
#[doc(hidden)]
pub fn run_case<S: Subject>(name: &str, subject: Option<S>) {
    let Some(subject) = subject else {
        eprintln!("{name}: store not available here, not run");
        return;
    };
    let case = case(name).expect("a case of the suite");
    if case.concurrent && !subject.threads() {
        return;
    }
    (case.run)(&subject)
}

fn put(key: &str, value: &str) -> Write {
    Write::put(key, value.as_bytes().to_vec())
}

fn keys(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.key.as_str()).collect()
}

/// One page of a scan, checking the page's own promises: ascending keys
/// under the prefix after the cursor, at most `limit`, and a page that says
/// more follow holds at least one entry.
fn page(store: &Handle, prefix: &str, after: Option<&str>, limit: u32) -> ScanPage {
    let page = store.scan(prefix, after, limit).unwrap();
    assert!(page.entries.len() <= limit as usize, "a page of {} for a limit of {limit}", page.entries.len());
    assert!(page.entries.windows(2).all(|w| w[0].key.as_bytes() < w[1].key.as_bytes()), "ascending keys");
    assert!(page.entries.iter().all(|e| e.key.starts_with(prefix)), "keys under {prefix:?}");
    assert!(page.entries.iter().all(|e| after.is_none_or(|a| e.key.as_str() > a)), "keys after {after:?}");
    assert!(
        !page.more || !page.entries.is_empty() || limit == 0,
        "a page that says more follow holds at least one entry"
    );
    page
}

/// Every key under `prefix`, page after page of at most `limit`.
fn all_keys(store: &Handle, prefix: &str, limit: u32) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let p = page(store, prefix, after.as_deref(), limit);
        seen.extend(p.entries.iter().map(|e| e.key.clone()));
        if !p.more {
            return seen;
        }
        after = p.entries.last().map(|e| e.key.clone());
    }
}

pub fn get_returns_written_value_and_version(subject: &dyn Subject) {
    let store = subject.open();
    assert_eq!(store.get("a").unwrap(), None);
    let v = store.commit(vec![put("a", "1"), put("empty", "")]).unwrap();
    assert!(v >= 1, "versions are never 0");
    let e = store.get("a").unwrap().unwrap();
    assert_eq!((e.key.as_str(), e.value.as_slice(), e.version), ("a", &b"1"[..], v));
    assert_eq!(store.get("empty").unwrap().unwrap().value, b"", "an empty value stays empty");
}

pub fn get_many_answers_in_request_order(subject: &dyn Subject) {
    let store = subject.open();
    store.commit(vec![put("a", "1"), put("c", "3")]).unwrap();
    let got = store.get_many(&["c".into(), "b".into(), "a".into(), "c".into()]).unwrap();
    let got: Vec<Option<&str>> = got.iter().map(|e| e.as_ref().map(|e| e.key.as_str())).collect();
    assert_eq!(got, vec![Some("c"), None, Some("a"), Some("c")]);
    assert_eq!(store.get_many(&[]).unwrap(), vec![]);
}

pub fn scan_orders_bytewise_and_respects_prefix_bounds(subject: &dyn Subject) {
    let store = subject.open();
    // Byte order of UTF-8 is code-point order: '\u{7f}' is 7F, 'é' C3 A9,
    // '\u{D7FF}' ED 9F BF, '\u{E000}' EE 80 80, '\u{FFFD}' EF BF BD and
    // '\u{10000}' F0 90 80 80 (UTF-16 order would put it before E000).
    let all = [
        "p",
        "p/",
        "p/a",
        "p/b",
        "p/z",
        "p/\u{7f}",
        "p/é",
        "p/\u{D7FF}",
        "p/\u{E000}",
        "p/\u{FFFD}",
        "p/\u{10000}",
        "p/\u{10FFFF}",
        "p/\u{10FFFF}x",
        "p0",
        "q",
        "o",
        "\u{10FFFF}",
        "\u{10FFFF}a",
        "\u{10FFFF}\u{10FFFF}",
    ];
    store.commit(all.iter().map(|k| put(k, "v")).collect()).unwrap();
    let under = |prefix: &str| all_keys(&store, prefix, 100);
    assert_eq!(
        under("p/"),
        [
            "p/",
            "p/a",
            "p/b",
            "p/z",
            "p/\u{7f}",
            "p/é",
            "p/\u{D7FF}",
            "p/\u{E000}",
            "p/\u{FFFD}",
            "p/\u{10000}",
            "p/\u{10FFFF}",
            "p/\u{10FFFF}x"
        ]
    );
    assert_eq!(under("p/\u{7f}"), ["p/\u{7f}"]);
    assert_eq!(under("p/\u{D7FF}"), ["p/\u{D7FF}"]);
    // A prefix whose last byte is high: its upper bound is not a string.
    assert_eq!(under("p/\u{10FFFF}"), ["p/\u{10FFFF}", "p/\u{10FFFF}x"]);
    assert_eq!(under("\u{10FFFF}"), ["\u{10FFFF}", "\u{10FFFF}a", "\u{10FFFF}\u{10FFFF}"]);
    let mut sorted: Vec<&str> = all.to_vec();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(under(""), sorted);
    assert!(under("r").is_empty());
}

pub fn scan_after_cursor_and_limit(subject: &dyn Subject) {
    let store = subject.open();
    store.commit((0..25).map(|i| put(&format!("k/{i:02}"), "v")).collect()).unwrap();
    store.commit(vec![put("k", "outside"), put("k0", "outside")]).unwrap();
    let expected: Vec<String> = (0..25).map(|i| format!("k/{i:02}")).collect();
    assert_eq!(all_keys(&store, "k/", 10), expected);
    assert_eq!(all_keys(&store, "k/", 1), expected);
    // `after` is exclusive even when it is not itself a stored key.
    assert_eq!(keys(&page(&store, "k/", Some("k/05x"), 2).entries), ["k/06", "k/07"]);
    assert_eq!(keys(&page(&store, "k/", Some("k/05"), 1).entries), ["k/06"]);
    // `after` before the prefix range does not widen it; past it, nothing.
    assert_eq!(keys(&page(&store, "k/", Some("a"), 1).entries), ["k/00"]);
    assert!(page(&store, "k/", Some("k0"), 5).entries.is_empty());
    let empty = page(&store, "k/", Some("k/24"), 5);
    assert!(empty.entries.is_empty() && !empty.more, "the last page says nothing follows");
    assert!(page(&store, "k/", None, 0).entries.is_empty());
}

/// A store may cap a page at any size of at least one entry; a capped page
/// says that more follow, and the cursor visits every key once.
pub fn capped_pages_say_more_and_page_through(subject: &dyn Subject) {
    let store = subject.open();
    const N: usize = 2_500;
    for chunk in (0..N).collect::<Vec<_>>().chunks(1_000) {
        store.commit(chunk.iter().map(|i| put(&format!("x/{i:05}"), "v")).collect()).unwrap();
    }
    let first = page(&store, "x/", None, u32::MAX);
    assert!(!first.entries.is_empty(), "at least one entry when more exist");
    assert_eq!(first.more, first.entries.len() < N, "a short page says that more follow");
    let expected: Vec<String> = (0..N).map(|i| format!("x/{i:05}")).collect();
    assert_eq!(all_keys(&store, "x/", u32::MAX), expected);
}

pub fn failing_precondition_applies_nothing(subject: &dyn Subject) {
    let store = subject.open();
    let v1 = store.commit(vec![put("existing", "old")]).unwrap();
    let err = store
        .commit(vec![
            put("new-a", "a"),
            Write::delete_at("existing", v1),
            Write::replace("existing2", b"x".to_vec(), v1),
            put("new-b", "b"),
        ])
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict(2));
    assert_eq!(store.get("new-a").unwrap(), None);
    assert_eq!(store.get("new-b").unwrap(), None);
    assert_eq!(store.get("existing").unwrap().unwrap().version, v1);
    assert!(store.commit(vec![put("z", "z")]).unwrap() > v1, "the next commit is still later");
}

pub fn preconditions_absent_and_version(subject: &dyn Subject) {
    let store = subject.open();
    let v1 = store.commit(vec![Write::create("a", b"v".to_vec())]).unwrap();
    assert_eq!(store.commit(vec![Write::create("a", b"v".to_vec())]), Err(StoreError::Conflict(0)));
    assert_eq!(store.commit(vec![Write::replace("a", b"w".to_vec(), v1 + 1)]), Err(StoreError::Conflict(0)));
    assert_eq!(store.commit(vec![Write::replace("missing", b"w".to_vec(), v1)]), Err(StoreError::Conflict(0)));
    let v2 = store.commit(vec![Write::replace("a", b"w".to_vec(), v1)]).unwrap();
    assert!(v2 > v1);
    assert_eq!(store.get("a").unwrap().unwrap().value, b"w");
    // Deleting an absent key without a precondition is not an error.
    assert!(store.commit(vec![Write::delete("never")]).is_ok());
}

/// The conflict named is the first failing precondition, and nothing of
/// the commit stays.
pub fn the_first_failing_precondition_is_the_conflict(subject: &dyn Subject) {
    let store = subject.open();
    let v1 = store.commit(vec![put("taken", "t"), put("kept", "k")]).unwrap();
    let write = |key: &str, value: Option<&str>, precondition| Write {
        key: key.into(),
        value: value.map(|v| v.as_bytes().to_vec()),
        precondition,
    };
    let commit = vec![
        write("fresh", Some("f"), Precondition::Absent),
        write("kept", None, Precondition::Version(v1)),
        write("taken", Some("again"), Precondition::Absent),
        write("gone", Some("g"), Precondition::Version(v1)),
    ];
    assert_eq!(store.commit(commit), Err(StoreError::Conflict(2)));
    assert_eq!(store.get("fresh").unwrap(), None);
    assert_eq!(store.get("kept").unwrap().unwrap().version, v1);
    assert_eq!(store.get("taken").unwrap().unwrap().value, b"t");
    // A delete that requires absence only checks it.
    assert_eq!(store.commit(vec![write("taken", None, Precondition::Absent)]), Err(StoreError::Conflict(0)));
    assert!(store.commit(vec![write("never", None, Precondition::Absent)]).is_ok());
    // A version no stored record can carry matches nothing.
    let huge = Precondition::Version(u64::MAX);
    assert_eq!(store.commit(vec![write("kept", Some("x"), huge)]), Err(StoreError::Conflict(0)));
}

/// A key appears at most once in a commit; a store refuses a commit that
/// names one twice, and applies none of it.
pub fn duplicate_key_in_one_commit_is_refused(subject: &dyn Subject) {
    let store = subject.open();
    let err = store.commit(vec![put("a", "1"), put("b", "2"), put("a", "3")]).unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert_eq!(store.get("a").unwrap(), None);
    assert_eq!(store.get("b").unwrap(), None);
}

pub fn versions_increase_across_delete_and_recreate(subject: &dyn Subject) {
    let store = subject.open();
    let v1 = store.commit(vec![put("a", "1"), put("b", "1")]).unwrap();
    assert_eq!(store.get("b").unwrap().unwrap().version, v1, "one version for every write of a commit");
    let v2 = store.commit(vec![Write::delete_at("a", v1)]).unwrap();
    assert!(v2 > v1);
    assert_eq!(store.get("a").unwrap(), None);
    let v3 = store.commit(vec![put("a", "again")]).unwrap();
    assert!(v3 > v2, "a re-created key never sees an old version");
    assert_eq!(store.get("a").unwrap().unwrap().version, v3);
    assert_eq!(store.commit(vec![Write::replace("a", vec![], v1)]), Err(StoreError::Conflict(0)));
}

pub fn data_and_sequence_survive_reopen(subject: &dyn Subject) {
    let v1 = subject.open().commit(vec![put("a", "1")]).unwrap();
    let store = subject.open();
    let e = store.get("a").unwrap().unwrap();
    assert_eq!((e.value.as_slice(), e.version), (&b"1"[..], v1));
    store.commit(vec![Write::delete("a")]).unwrap();
    drop(store);
    assert!(subject.open().commit(vec![put("a", "2")]).unwrap() > v1 + 1);
}

/// Stands in for the server and the CLI, or two replicas, on one database.
pub fn two_handles_see_each_other(subject: &dyn Subject) {
    let a = subject.open();
    let b = subject.open();
    let v1 = a.commit(vec![put("k", "from-a")]).unwrap();
    assert_eq!(b.get("k").unwrap().unwrap().version, v1);
    let v2 = b.commit(vec![put("k", "from-b")]).unwrap();
    assert!(v2 > v1);
    assert_eq!(a.get("k").unwrap().unwrap().value, b"from-b");
}

/// Every store accepts the contract's floors in one call (the component
/// plans its work to fit them); past its own limit a store that refuses
/// the call says `unavailable` and applies nothing.
pub fn the_floors_are_accepted_and_beyond_them_nothing_applies(subject: &dyn Subject) {
    let store = subject.open();
    let limits = store.limits();
    assert!(limits.commit_writes >= Limits::CONTRACT.commit_writes, "{limits:?} below the floors");
    assert!(limits.get_many_keys >= Limits::CONTRACT.get_many_keys, "{limits:?} below the floors");
    let names: Vec<String> = (0..Limits::CONTRACT.commit_writes).map(|i| format!("f/{i:05}")).collect();
    let v = store.commit(names.iter().map(|k| Write::create(k.as_str(), vec![1])).collect()).unwrap();
    let got = store.get_many(&names[..Limits::CONTRACT.get_many_keys]).unwrap();
    assert!(got.iter().all(|e| e.as_ref().is_some_and(|e| e.version == v)));
    if limits.commit_writes < usize::MAX / 2 {
        // A store may take more than it declares (a host behind the WIT
        // import declares nothing); one that refuses applies none of it.
        let over: Vec<Write> = (0..=limits.commit_writes).map(|i| put(&format!("over/{i:06}"), "v")).collect();
        match store.commit(over) {
            Ok(_) => assert_eq!(all_keys(&store, "over/", 1000).len(), limits.commit_writes + 1),
            Err(StoreError::Unavailable(_)) => {
                assert!(page(&store, "over/", None, 1).entries.is_empty(), "nothing of a refused commit applied")
            }
            Err(other) => panic!("a commit past the limit: {other:?}"),
        }
    }
}

/// The conflict index is exact wherever the failing write sits, also
/// past the first thousand (a store that checks in chunks must add).
pub fn conflicts_are_named_exactly_in_large_commits(subject: &dyn Subject) {
    let store = subject.open();
    let names: Vec<String> = (0..1_200).map(|i| format!("big/{i:05}")).collect();
    let v = store.commit(names.iter().map(|k| put(k, "v")).collect()).unwrap();
    let mut writes: Vec<Write> = names.iter().map(|k| Write::delete_at(k.as_str(), v)).collect();
    writes[1_100] = Write::delete_at("big/01100", v + 1);
    assert_eq!(store.commit(writes), Err(StoreError::Conflict(1_100)));
    assert_eq!(store.get_many(&names).unwrap().iter().filter(|e| e.is_some()).count(), 1_200);
    let v2 = store.commit(names.iter().map(|k| Write::delete_at(k.as_str(), v)).collect()).unwrap();
    assert!(v2 > v);
    assert!(page(&store, "big/", None, 10).entries.is_empty());
}

pub fn concurrent_read_modify_write_loses_no_increment(subject: &dyn Subject) {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 50;
    let shared = subject.open();
    // Half the threads use a handle of their own, as a second process would.
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let store = if t % 2 == 0 { shared.clone() } else { subject.open() };
            scope.spawn(move || {
                for _ in 0..PER_THREAD {
                    loop {
                        let (n, precondition) = match store.get("counter").unwrap() {
                            Some(e) => (
                                std::str::from_utf8(&e.value).unwrap().parse::<u64>().unwrap(),
                                Precondition::Version(e.version),
                            ),
                            None => (0, Precondition::Absent),
                        };
                        let write = Write {
                            key: "counter".into(),
                            value: Some((n + 1).to_string().into_bytes()),
                            precondition,
                        };
                        match store.commit(vec![write]) {
                            Ok(_) => break,
                            Err(StoreError::Conflict(0)) => continue,
                            Err(e) => panic!("unexpected {e}"),
                        }
                    }
                }
            });
        }
    });
    let e = shared.get("counter").unwrap().unwrap();
    assert_eq!(std::str::from_utf8(&e.value).unwrap(), (THREADS * PER_THREAD).to_string());
}

/// Commits that run at once (which a store may group into one transaction)
/// each keep their own outcome and version: a failing one leaves nothing,
/// whatever it shared a transaction with.
pub fn concurrent_commits_keep_their_own_outcomes_and_versions(subject: &dyn Subject) {
    const THREADS: usize = 16;
    const PER_THREAD: usize = 40;
    let store = subject.open();
    store.commit(vec![put("taken", "x")]).unwrap();
    let mut all = Vec::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = store.clone();
                scope.spawn(move || {
                    let mut versions = Vec::new();
                    for i in 0..PER_THREAD {
                        let mine = put(&format!("t{t:02}/{i:03}"), "v");
                        if i % 2 == 1 {
                            let clash = Write::create("taken", b"y".to_vec());
                            assert_eq!(store.commit(vec![mine, clash]), Err(StoreError::Conflict(1)));
                        } else {
                            versions.push(store.commit(vec![mine]).unwrap());
                        }
                    }
                    versions
                })
            })
            .collect();
        for h in handles {
            let versions = h.join().unwrap();
            assert!(versions.windows(2).all(|w| w[0] < w[1]), "one writer's versions increase");
            all.extend(versions);
        }
    });
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), THREADS * PER_THREAD / 2, "every commit has a version of its own");
    for t in 0..THREADS {
        let expected: Vec<String> = (0..PER_THREAD).step_by(2).map(|i| format!("t{t:02}/{i:03}")).collect();
        assert_eq!(all_keys(&store, &format!("t{t:02}/"), 1000), expected);
    }
    assert_eq!(store.get("taken").unwrap().unwrap().value, b"x");
}
