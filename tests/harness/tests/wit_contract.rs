//! The WIT world is a public contract: every version that was ever
//! published is kept under `wit/published/<version>.wit`, and the world the
//! component builds with must be, comments and layout aside, exactly the
//! published text of the version it declares. A change to the contract
//! without a new version (and its published copy) fails here.

use std::path::{Path, PathBuf};

fn wit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../wit")
}

/// The contract without its documentation: comments dropped, whitespace
/// collapsed. WIT has no string literals, so `//` always starts a comment.
fn contract(text: &str) -> String {
    let code: Vec<&str> = text.lines().map(|line| line.split_once("//").map_or(line, |(code, _)| code)).collect();
    code.join(" ").split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The version in `package scimlet:provider@<version>;`.
fn version(text: &str) -> Option<&str> {
    text.lines().find_map(|line| line.trim().strip_prefix("package scimlet:provider@")?.strip_suffix(';'))
}

#[test]
fn the_world_is_the_published_contract_of_its_version() {
    let current = std::fs::read_to_string(wit_dir().join("scimlet.wit")).expect("wit/scimlet.wit");
    let version = version(&current).expect("wit/scimlet.wit declares `package scimlet:provider@<version>;`");
    let path = wit_dir().join(format!("published/{version}.wit"));
    let published = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "wit/scimlet.wit declares version {version}, which has no published copy: \
             copy it to wit/published/{version}.wit once the version is final (see wit/README.md)"
        )
    });
    assert!(
        contract(&current) == contract(&published),
        "wit/scimlet.wit is not the published contract of {version} (comments and layout aside): \
         a change to the contract needs a new version (wit/README.md, Versioning) and its copy under wit/published/"
    );
}

#[test]
fn every_published_contract_declares_its_own_version() {
    let mut seen = 0;
    for entry in std::fs::read_dir(wit_dir().join("published")).expect("wit/published") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).expect("a UTF-8 file name").to_owned();
        let text = std::fs::read_to_string(&path).expect("a published contract");
        let declared = version(&text).unwrap_or_else(|| panic!("{name} declares no scimlet:provider version"));
        assert_eq!(name, format!("{declared}.wit"), "a published contract is named after its version");
        seen += 1;
    }
    assert!(seen >= 1, "no published contract under wit/published");
}

#[test]
fn the_contract_ignores_documentation_only() {
    let a = "/// Reads one record.\ninterface storage {\n    get: func(key: string) -> u64; // trailing\n}\n";
    let b = "interface storage { get: func(key: string) -> u64; }";
    assert_eq!(contract(a), contract(b));
    assert_ne!(contract(a), contract("interface storage { get: func(key: string) -> u32; }"));
}
