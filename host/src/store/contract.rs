//! The storage contract as tests every backend runs: the same cases, the
//! same assertions, on SQLite and on PostgreSQL (`contract_tests!` in each
//! backend's tests). What `wit/README.md` promises a storage implementation
//! is checked here once.

use std::sync::Arc;

use super::{Backend, Entry, MAX_SCAN_LIMIT, Precondition, StoreError, Write};

/// A store to test: every [`Fixture::open`] is a new handle on the same
/// data (as the server and the CLI, or two replicas, have).
pub(crate) trait Fixture {
    fn open(&self) -> Arc<dyn Backend>;
}

/// One `#[test]` per contract case, on the fixture `$fixture` builds
/// (`None`: the backend is not available here, and the test says so).
macro_rules! contract_tests {
    ($fixture:expr) => {
        $crate::store::contract::contract_tests!(@each $fixture;
            get_returns_written_value_and_version,
            get_many_answers_in_request_order,
            scan_orders_bytewise_and_respects_prefix_bounds,
            scan_after_cursor_and_limit,
            scan_caps_limit,
            failing_precondition_applies_nothing,
            preconditions_absent_and_version,
            the_first_failing_precondition_is_the_conflict,
            duplicate_key_in_one_commit_is_refused,
            versions_increase_across_delete_and_recreate,
            data_and_sequence_survive_reopen,
            two_handles_see_each_other,
            concurrent_read_modify_write_loses_no_increment,
            concurrent_commits_keep_their_own_outcomes_and_versions,
        );
    };
    (@each $fixture:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let fixture: Option<_> = $fixture;
                match fixture {
                    Some(fixture) => crate::store::contract::$case(&fixture),
                    None => eprintln!("{}: backend not available, not run", stringify!($case)),
                }
            }
        )*
    };
}
pub(crate) use contract_tests;

fn put(key: &str, value: &str) -> Write {
    Write { key: key.into(), value: Some(value.as_bytes().to_vec()), precondition: Precondition::None }
}

fn keys(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.key.as_str()).collect()
}

/// One page of a scan, checking that a page that says more follow is full.
fn scan_entries(store: &dyn Backend, prefix: &str, after: Option<&str>, limit: u32) -> Vec<Entry> {
    let page = store.scan(prefix, after, limit).unwrap();
    assert!(!page.more || page.entries.len() == limit.min(MAX_SCAN_LIMIT) as usize);
    page.entries
}

pub(crate) fn get_returns_written_value_and_version(fixture: &dyn Fixture) {
    let store = fixture.open();
    assert_eq!(store.get("a").unwrap(), None);
    let v = store.commit(&[put("a", "1")]).unwrap();
    assert!(v >= 1);
    let e = store.get("a").unwrap().unwrap();
    assert_eq!((e.key.as_str(), e.value.as_slice(), e.version), ("a", &b"1"[..], v));
}

pub(crate) fn get_many_answers_in_request_order(fixture: &dyn Fixture) {
    let store = fixture.open();
    store.commit(&[put("a", "1"), put("c", "3")]).unwrap();
    let got = store.get_many(&["c".into(), "b".into(), "a".into(), "c".into()]).unwrap();
    let got: Vec<Option<&str>> = got.iter().map(|e| e.as_ref().map(|e| e.key.as_str())).collect();
    assert_eq!(got, vec![Some("c"), None, Some("a"), Some("c")]);
    assert_eq!(store.get_many(&[]).unwrap(), vec![]);
}

pub(crate) fn scan_orders_bytewise_and_respects_prefix_bounds(fixture: &dyn Fixture) {
    let store = fixture.open();
    // 'é' is C3 A9, '\u{7f}' is 7F, '\u{10FFFF}' is F4 8F BF BF.
    let all = [
        "p",
        "p/",
        "p/a",
        "p/b",
        "p/z",
        "p/\u{7f}",
        "p/é",
        "p/\u{10FFFF}",
        "p0",
        "q",
        "o",
        "\u{10FFFF}",
        "\u{10FFFF}a",
        "\u{10FFFF}\u{10FFFF}",
    ];
    let writes: Vec<Write> = all.iter().map(|k| put(k, "v")).collect();
    store.commit(&writes).unwrap();

    let got = scan_entries(&*store, "p/", None, 100);
    assert_eq!(keys(&got), vec!["p/", "p/a", "p/b", "p/z", "p/\u{7f}", "p/é", "p/\u{10FFFF}"]);

    let got = scan_entries(&*store, "p/\u{7f}", None, 100);
    assert_eq!(keys(&got), vec!["p/\u{7f}"]);

    // Prefix whose last byte is high (BF): upper bound is ...C0.
    let got = scan_entries(&*store, "\u{10FFFF}", None, 100);
    assert_eq!(keys(&got), vec!["\u{10FFFF}", "\u{10FFFF}a", "\u{10FFFF}\u{10FFFF}"]);

    let got = scan_entries(&*store, "", None, 100);
    assert_eq!(got.len(), all.len());
    let mut sorted: Vec<&str> = all.to_vec();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(keys(&got), sorted);

    assert!(scan_entries(&*store, "r", None, 100).is_empty());
}

pub(crate) fn scan_after_cursor_and_limit(fixture: &dyn Fixture) {
    let store = fixture.open();
    let writes: Vec<Write> = (0..25).map(|i| put(&format!("k/{i:02}"), "v")).collect();
    store.commit(&writes).unwrap();
    store.commit(&[put("k", "outside"), put("k0", "outside")]).unwrap();

    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.scan("k/", after.as_deref(), 10).unwrap();
        seen.extend(page.entries.iter().map(|e| e.key.clone()));
        assert_eq!(page.more, seen.len() < 25, "more after {} keys", seen.len());
        if !page.more {
            break;
        }
        after = page.entries.last().map(|e| e.key.clone());
    }
    let expected: Vec<String> = (0..25).map(|i| format!("k/{i:02}")).collect();
    assert_eq!(seen, expected);

    // `after` is exclusive even when it is not itself a stored key.
    let got = scan_entries(&*store, "k/", Some("k/05x"), 2);
    assert_eq!(keys(&got), vec!["k/06", "k/07"]);
    // `after` before the prefix range does not widen it.
    let got = scan_entries(&*store, "k/", Some("a"), 1);
    assert_eq!(keys(&got), vec!["k/00"]);
    // `after` past the range gives nothing.
    assert!(scan_entries(&*store, "k/", Some("k0"), 5).is_empty());
    assert!(scan_entries(&*store, "k/", None, 0).is_empty());
}

pub(crate) fn scan_caps_limit(fixture: &dyn Fixture) {
    let store = fixture.open();
    let writes: Vec<Write> = (0..(MAX_SCAN_LIMIT + 5)).map(|i| put(&format!("x/{i:05}"), "v")).collect();
    store.commit(&writes).unwrap();
    let got = store.scan("x/", None, u32::MAX).unwrap();
    assert_eq!(got.entries.len(), MAX_SCAN_LIMIT as usize);
    assert!(got.more, "a capped page says that more follow");
    let last = got.entries.last().map(|e| e.key.clone());
    let rest = store.scan("x/", last.as_deref(), u32::MAX).unwrap();
    assert_eq!((rest.entries.len(), rest.more), (5, false));
}

pub(crate) fn failing_precondition_applies_nothing(fixture: &dyn Fixture) {
    let store = fixture.open();
    let v1 = store.commit(&[put("existing", "old")]).unwrap();
    let err = store
        .commit(&[
            put("new-a", "a"),
            Write { key: "existing".into(), value: None, precondition: Precondition::Version(v1) },
            Write { key: "existing2".into(), value: Some(b"x".to_vec()), precondition: Precondition::Version(v1) },
            put("new-b", "b"),
        ])
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict(2));
    assert_eq!(store.get("new-a").unwrap(), None);
    assert_eq!(store.get("new-b").unwrap(), None);
    assert_eq!(store.get("existing").unwrap().unwrap().version, v1);
    // A failed commit does not consume a version either way observable:
    // the next successful commit is still strictly greater.
    assert!(store.commit(&[put("z", "z")]).unwrap() > v1);
}

pub(crate) fn preconditions_absent_and_version(fixture: &dyn Fixture) {
    let store = fixture.open();
    let absent = |k: &str| Write { key: k.into(), value: Some(b"v".to_vec()), precondition: Precondition::Absent };
    let v1 = store.commit(&[absent("a")]).unwrap();
    assert_eq!(store.commit(&[absent("a")]), Err(StoreError::Conflict(0)));
    let at =
        |k: &str, v: u64| Write { key: k.into(), value: Some(b"w".to_vec()), precondition: Precondition::Version(v) };
    assert_eq!(store.commit(&[at("a", v1 + 1)]), Err(StoreError::Conflict(0)));
    assert_eq!(store.commit(&[at("missing", v1)]), Err(StoreError::Conflict(0)));
    let v2 = store.commit(&[at("a", v1)]).unwrap();
    assert!(v2 > v1);
    // Deleting an absent key without precondition is not an error.
    let del = Write { key: "never".into(), value: None, precondition: Precondition::None };
    assert!(store.commit(&[del]).is_ok());
}

/// The conflict named is the first failing precondition, and nothing of
/// the commit stays.
pub(crate) fn the_first_failing_precondition_is_the_conflict(fixture: &dyn Fixture) {
    let store = fixture.open();
    let v1 = store.commit(&[put("taken", "t"), put("kept", "k")]).unwrap();
    let write = |key: &str, value: Option<&str>, precondition| Write {
        key: key.into(),
        value: value.map(|v| v.as_bytes().to_vec()),
        precondition,
    };
    let commit = [
        write("fresh", Some("f"), Precondition::Absent),
        write("kept", None, Precondition::Version(v1)),
        write("taken", Some("again"), Precondition::Absent),
        write("gone", Some("g"), Precondition::Version(v1)),
    ];
    assert_eq!(store.commit(&commit), Err(StoreError::Conflict(2)));
    assert_eq!(store.get("fresh").unwrap(), None);
    assert_eq!(store.get("kept").unwrap().unwrap().version, v1);
    assert_eq!(store.get("taken").unwrap().unwrap().value, b"t");
    // A delete that requires absence only checks it.
    assert_eq!(store.commit(&[write("taken", None, Precondition::Absent)]), Err(StoreError::Conflict(0)));
    assert!(store.commit(&[write("never", None, Precondition::Absent)]).is_ok());
    // A version no stored record can carry matches nothing.
    let huge = Precondition::Version(u64::MAX);
    assert_eq!(store.commit(&[write("kept", Some("x"), huge)]), Err(StoreError::Conflict(0)));
}

pub(crate) fn duplicate_key_in_one_commit_is_refused(fixture: &dyn Fixture) {
    let store = fixture.open();
    let err = store.commit(&[put("a", "1"), put("b", "2"), put("a", "3")]).unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)));
    assert_eq!(store.get("a").unwrap(), None);
    assert_eq!(store.get("b").unwrap(), None);
}

pub(crate) fn versions_increase_across_delete_and_recreate(fixture: &dyn Fixture) {
    let store = fixture.open();
    let v1 = store.commit(&[put("a", "1"), put("b", "1")]).unwrap();
    assert_eq!(store.get("b").unwrap().unwrap().version, v1);
    let del = Write { key: "a".into(), value: None, precondition: Precondition::Version(v1) };
    let v2 = store.commit(&[del]).unwrap();
    assert!(v2 > v1);
    assert_eq!(store.get("a").unwrap(), None);
    let v3 = store.commit(&[put("a", "again")]).unwrap();
    assert!(v3 > v2);
    assert_eq!(store.get("a").unwrap().unwrap().version, v3);
}

pub(crate) fn data_and_sequence_survive_reopen(fixture: &dyn Fixture) {
    let v1 = {
        let store = fixture.open();
        store.commit(&[put("a", "1")]).unwrap()
    };
    let store = fixture.open();
    let e = store.get("a").unwrap().unwrap();
    assert_eq!((e.value.as_slice(), e.version), (&b"1"[..], v1));
    let del = Write { key: "a".into(), value: None, precondition: Precondition::None };
    store.commit(&[del]).unwrap();
    drop(store);
    let store = fixture.open();
    assert!(store.commit(&[put("a", "2")]).unwrap() > v1 + 1);
}

pub(crate) fn two_handles_see_each_other(fixture: &dyn Fixture) {
    // Stands in for the server and the CLI opening the same database.
    let a = fixture.open();
    let b = fixture.open();
    let v1 = a.commit(&[put("k", "from-a")]).unwrap();
    assert_eq!(b.get("k").unwrap().unwrap().version, v1);
    let v2 = b.commit(&[put("k", "from-b")]).unwrap();
    assert!(v2 > v1);
    assert_eq!(a.get("k").unwrap().unwrap().value, b"from-b");
}

pub(crate) fn concurrent_read_modify_write_loses_no_increment(fixture: &dyn Fixture) {
    const THREADS: usize = 4;
    const PER_THREAD: usize = 50;
    let store = fixture.open();
    // Half the threads use a second handle, as a second process would.
    let other = fixture.open();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = if t % 2 == 0 { store.clone() } else { other.clone() };
            std::thread::spawn(move || {
                let mut conflicts = 0u32;
                for _ in 0..PER_THREAD {
                    loop {
                        let current = store.get("counter").unwrap();
                        let (n, precondition) = match &current {
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
                        match store.commit(&[write]) {
                            Ok(_) => break,
                            Err(StoreError::Conflict(0)) => conflicts += 1,
                            Err(e) => panic!("unexpected {e}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let e = store.get("counter").unwrap().unwrap();
    assert_eq!(std::str::from_utf8(&e.value).unwrap(), (THREADS * PER_THREAD).to_string());
}

pub(crate) fn concurrent_commits_keep_their_own_outcomes_and_versions(fixture: &dyn Fixture) {
    const THREADS: usize = 16;
    const PER_THREAD: usize = 40;
    let store = fixture.open();
    store.commit(&[put("taken", "x")]).unwrap();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut versions = Vec::new();
                for i in 0..PER_THREAD {
                    let mine = put(&format!("t{t:02}/{i:03}"), "v");
                    if i % 2 == 1 {
                        // Fails on its second write; must leave nothing,
                        // whatever else shares its transaction.
                        let clash = Write {
                            key: "taken".into(),
                            value: Some(b"y".to_vec()),
                            precondition: Precondition::Absent,
                        };
                        assert_eq!(store.commit(&[mine, clash]), Err(StoreError::Conflict(1)));
                    } else {
                        versions.push(store.commit(&[mine]).unwrap());
                    }
                }
                versions
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        let versions = h.join().unwrap();
        assert!(versions.windows(2).all(|w| w[0] < w[1]));
        all.extend(versions);
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), THREADS * PER_THREAD / 2, "every commit has a version of its own");
    for t in 0..THREADS {
        let keys = scan_entries(&*store, &format!("t{t:02}/"), None, 1000);
        let expected: Vec<String> = (0..PER_THREAD).step_by(2).map(|i| format!("t{t:02}/{i:03}")).collect();
        assert_eq!(keys.iter().map(|e| e.key.clone()).collect::<Vec<_>>(), expected);
    }
    assert_eq!(store.get("taken").unwrap().unwrap().value, b"x");
}
