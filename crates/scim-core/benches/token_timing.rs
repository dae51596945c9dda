//! Does rejecting a wrong bearer token take longer the more of it is right?
//!
//! A token is `scimlet_<id>_<secret>`. The core looks the record up by the
//! public id and compares the SHA-256 of the whole presented token with the
//! stored hash in constant time (`subtle`), so how many leading characters
//! of the secret are right must not show in the time a rejection takes.
//! This measures it: wrong tokens whose secret is entirely wrong, right for
//! its first half, and right but for its last character, plus an unknown
//! id, each sent through `Service::handle` to a SCIM route, in interleaved
//! batches so that drift of a shared machine falls on every kind alike.
//! Prints each kind's median time per request and its ratio to the entirely
//! wrong secret.
//!
//!   cargo bench -p scim-core --bench token_timing [-- --rounds N]

use std::hint::black_box;
use std::time::Instant;

use scim_core::{MemStore, Request, Service, TestEnv};

const BATCH: usize = 200;

fn main() {
    let mut rounds = 300;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--rounds" {
            rounds = args.next().and_then(|n| n.parse().ok()).expect("--rounds N");
        }
    }

    let store = MemStore::new();
    let env = TestEnv::default();
    let service = Service::new(&store, &env);
    let account = service.create_account("timing").expect("account");
    let token = service.create_token(&account.id, "idp", None).expect("token").token;
    // Other tokens of other accounts, so the lookup is not in an empty store.
    for i in 0..100 {
        let other = service.create_account(&format!("other {i}")).expect("account");
        service.create_token(&other.id, "idp", None).expect("token");
    }

    let (head, secret) = token.rsplit_once('_').expect("scimlet_<id>_<secret>");
    let flip = |c: char| if c == 'A' { 'B' } else { 'A' };
    let wrong_from = |right: usize| -> String {
        let s: String = secret.chars().enumerate().map(|(i, c)| if i < right { c } else { flip(c) }).collect();
        format!("{head}_{s}")
    };
    let n = secret.chars().count();
    let unknown_id = {
        let id = head.trim_start_matches("scimlet_");
        let other: String = id.chars().map(flip).collect();
        format!("scimlet_{other}_{secret}")
    };
    let kinds: Vec<(&str, String)> = vec![
        ("secret entirely wrong", wrong_from(0)),
        ("first half of the secret right", wrong_from(n / 2)),
        ("all but the last character right", wrong_from(n - 1)),
        ("unknown token id", unknown_id),
    ];
    let requests: Vec<Request> = kinds
        .iter()
        .map(|(_, t)| Request {
            method: "GET".into(),
            path_with_query: format!("{}/Users?count=1", account.scim_path),
            scheme: None,
            authority: Some("scim.test".into()),
            headers: vec![("Authorization".into(), format!("Bearer {t}"))],
            body: Vec::new(),
        })
        .collect();
    for request in &requests {
        assert_eq!(service.handle(request).status, 401, "every kind is a wrong token");
    }

    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); kinds.len()];
    for round in 0..rounds {
        // Rotate the order each round.
        for k in 0..kinds.len() {
            let kind = (k + round) % kinds.len();
            let started = Instant::now();
            for _ in 0..BATCH {
                black_box(service.handle(black_box(&requests[kind])));
            }
            samples[kind].push(started.elapsed().as_nanos() as f64 / BATCH as f64);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let medians: Vec<f64> = samples.iter_mut().map(median).collect();
    println!("token_timing: {rounds} rounds of {BATCH} requests per kind, interleaved\n");
    println!("| wrong token | median ns/request | ratio |");
    println!("|---|---:|---:|");
    for ((label, _), m) in kinds.iter().zip(&medians) {
        println!("| {label} | {m:.0} | {:.3} |", m / medians[0]);
    }
}
