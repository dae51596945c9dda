//! `serve --config FILE`: the server's options from a TOML file.
//!
//! Every key of the file is the name of one of `serve`'s flags, and takes
//! the value that flag would (see `scimlet.example.toml`). Precedence, from
//! strongest: a flag on the command line, then its `SCIMLET_*` variable,
//! then the file, then the default. The file's settings are turned into
//! command-line arguments for the options nothing stronger set, so that
//! clap checks them with the very rules it applies to flags; a key it does
//! not know, or a value a flag would refuse, stops the start with the file
//! and the key named.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};

use crate::cli::Cli;

/// The keys a configuration file may hold: the flags of `serve` an
/// operator sets once (not `--config` itself).
pub const KEYS: &[&str] = &[
    "listen",
    "public-url",
    "db",
    "db-pool",
    "db-ca",
    "component",
    "policy",
    "base-paths",
    "admin-token-file",
    "max-concurrent",
    "max-queued",
    "warm-instances",
    "deadline-ms",
    "rate-limit",
    "auth-failures",
    "tls-cert",
    "tls-key",
    "log-format",
];

/// Why the command line could not be read.
pub enum Error {
    /// From clap: usage, `--help` and `--version` included.
    Usage(clap::Error),
    /// A configuration file that cannot be read or used.
    File(String),
}

/// Parses the command line `argv`, with the settings of `serve --config`'s
/// file for whatever the command line and the environment leave unset.
pub fn parse(argv: Vec<OsString>) -> Result<Cli, Error> {
    let matches = Cli::command().try_get_matches_from(&argv).map_err(Error::Usage)?;
    let Some(("serve", serve)) = matches.subcommand() else {
        return Cli::from_arg_matches(&matches).map_err(Error::Usage);
    };
    let Some(path) = serve.get_one::<PathBuf>("config") else {
        return Cli::from_arg_matches(&matches).map_err(Error::Usage);
    };
    let set_elsewhere = |key: &str| {
        let id = key.replace('-', "_");
        let given = matches!(serve.value_source(&id), Some(ValueSource::CommandLine | ValueSource::EnvVariable));
        // The admin token itself in the environment outranks a token file
        // named in the configuration file.
        given || (key == "admin-token-file" && std::env::var_os("SCIMLET_ADMIN_TOKEN").is_some())
    };
    let mut argv = argv;
    argv.extend(file_args(path, set_elsewhere)?);
    Cli::try_parse_from(argv).map_err(Error::Usage)
}

/// The file's settings as `--key=value` arguments, each checked on its own
/// so that a refusal names its key; keys that `skip` says are set by
/// something stronger are left out.
fn file_args(path: &Path, skip: impl Fn(&str) -> bool) -> Result<Vec<OsString>, Error> {
    let name = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| Error::File(format!("cannot read {name}: {e}")))?;
    let table: toml::Table = text.parse().map_err(|e| Error::File(format!("{name}: {e}")))?;
    let mut args = Vec::new();
    for (key, value) in &table {
        if !KEYS.contains(&key.as_str()) {
            return Err(Error::File(format!("{name}: unknown key `{key}` (known keys: {})", KEYS.join(", "))));
        }
        let value = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            other => {
                return Err(Error::File(format!(
                    "{name}: `{key}` must be a string or an integer, not a {}",
                    other.type_str()
                )));
            }
        };
        if skip(key) {
            continue;
        }
        let arg = OsString::from(format!("--{key}={value}"));
        if let Err(e) = Cli::command().try_get_matches_from([OsString::from("scimlet"), "serve".into(), arg.clone()]) {
            return Err(Error::File(format!("{name}: `{key}`: {}", first_line(&e))));
        }
        args.push(arg);
    }
    Ok(args)
}

/// The substance of a clap error, without its `error:` prefix and usage hints.
fn first_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Command;
    use crate::store::testutil::TempDir;

    fn serve(dir: &TempDir, file: &str, extra: &[&str]) -> Result<crate::cli::ServeArgs, String> {
        let path = dir.path().join("scimlet.toml");
        std::fs::write(&path, file).unwrap();
        let mut argv: Vec<OsString> = vec!["scimlet".into(), "serve".into(), "--config".into(), path.into()];
        argv.extend(extra.iter().map(OsString::from));
        match parse(argv) {
            Ok(Cli { command: Command::Serve(args) }) => Ok(args),
            Ok(other) => panic!("not serve: {other:?}"),
            Err(Error::File(msg)) => Err(msg),
            Err(Error::Usage(e)) => Err(first_line(&e)),
        }
    }

    #[test]
    fn every_key_of_the_example_file_is_known_and_valid() {
        let dir = TempDir::new();
        let example = include_str!("../../scimlet.example.toml");
        let args = serve(&dir, example, &[]).expect("the example file parses");
        assert_eq!(args.listen, "0.0.0.0:8080");
        assert_eq!(args.public_url.as_deref(), Some("https://scim.example.com"));
        assert_eq!(args.max_concurrent, 64);
        // Every key is documented in the example, commented out or not.
        for key in KEYS {
            assert!(example.contains(&format!("{key} = ")), "{key} missing from scimlet.example.toml");
        }
    }

    #[test]
    fn the_command_line_outranks_the_file() {
        let dir = TempDir::new();
        let file = "listen = \"127.0.0.1:9\"\nrate-limit = 5\nwarm-instances = 3\n";
        let args = serve(&dir, file, &["--rate-limit", "7"]).unwrap();
        assert_eq!((args.listen.as_str(), args.rate_limit, args.warm_instances), ("127.0.0.1:9", 7, 3));
        // Unset in the file: the default.
        assert_eq!(args.deadline_ms, 30_000);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let dir = TempDir::new();
        let err = serve(&dir, "listen = \"127.0.0.1:9\"\nmax-conncurrent = 4\n", &[]).unwrap_err();
        assert!(err.contains("unknown key `max-conncurrent`"), "{err}");
        let err = serve(&dir, "max-concurrent = 0\n", &[]).unwrap_err();
        assert!(err.contains("`max-concurrent`") && err.contains("1..=64"), "{err}");
        let err = serve(&dir, "deadline-ms = \"soon\"\n", &[]).unwrap_err();
        assert!(err.contains("`deadline-ms`") && err.contains("soon"), "{err}");
        let err = serve(&dir, "rate-limit = true\n", &[]).unwrap_err();
        assert!(err.contains("`rate-limit` must be a string or an integer, not a boolean"), "{err}");
        let err = serve(&dir, "listen = \n", &[]).unwrap_err();
        assert!(err.contains("scimlet.toml"), "{err}");
        // A value clap refuses on the command line itself is a usage error.
        assert!(serve(&dir, "", &["--max-queued", "x"]).unwrap_err().contains("--max-queued"));
    }
}
