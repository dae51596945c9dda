//! The command line: shapes only. Scripts and tests depend on these names and
//! defaults, so change them only deliberately.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::log::LogFormat;

/// Where the CLI assumes the server is reached when `--public-url` is not given.
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080";

#[derive(Debug, Parser)]
#[command(
    name = "scimlet",
    version,
    about = "Run the scimlet SCIM 2.0 service provider and manage its accounts and tokens"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve SCIM over HTTP. On a store without accounts, first creates
    /// account "default" and prints its tenant URL and a token (shown once).
    Serve(ServeArgs),
    /// Manage accounts (tenants).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage an account's SCIM bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The admin API from the command line: settings, token rotation,
    /// migration report, user export, audit log.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Check the consistency of every account's records (indexes, both
    /// directions of membership edges, member counts, counters, audit
    /// records); exits 1 when something is wrong. `--repair` rewrites what
    /// can be derived again.
    Check(CheckArgs),
    /// Write a consistent copy of the database to PATH while the server
    /// keeps serving (never overwrites PATH).
    Backup(BackupArgs),
    /// Replace the database with a backup made by `backup`. Refused while
    /// any scimlet process uses the database; the replaced database is kept
    /// as <db>.pre-restore.
    Restore(BackupArgs),
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The backup file.
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// SQLite database file.
    #[arg(long, value_name = "PATH", default_value = "./scimlet.db")]
    pub db: PathBuf,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Only this account [default: every account].
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// Fix what can be derived again (missing or stray index entries,
    /// missing reverse edges, leaked edges, counts).
    #[arg(long)]
    pub repair: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Show an account's provisioning settings, or change them.
    Settings {
        #[arg(long, value_name = "ID")]
        account: String,
        /// `link` or `separate`.
        #[arg(long, value_name = "POLICY")]
        same_name_policy: Option<String>,
        /// Whether SCIM e-mail changes change the login e-mail.
        #[arg(long, value_name = "BOOL")]
        update_emails_via_scim: Option<bool>,
        /// `disable` or `remove`.
        #[arg(long, value_name = "MODE")]
        deactivation: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Issue a successor of a token; the old one stays valid for the grace
    /// period (0 revokes it now). Prints the new secret once.
    RotateToken {
        #[arg(long, value_name = "ID")]
        account: String,
        /// The token's id (not the secret).
        token_id: String,
        #[arg(long, value_name = "H", default_value_t = 24)]
        grace_hours: u32,
        /// Lifetime of the new token in days [default: 365].
        #[arg(long, value_name = "D")]
        expires_in_days: Option<u32>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print the migration report as JSON.
    MigrationReport {
        #[arg(long, value_name = "ID")]
        account: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Export every user (source, state, groups, role bindings).
    ExportUsers {
        #[arg(long, value_name = "ID")]
        account: String,
        /// `csv` or `json` (one JSON array).
        #[arg(long, value_name = "FORMAT", default_value = "csv")]
        format: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Export the audit log as JSON lines, oldest first.
    ExportAudit {
        #[arg(long, value_name = "ID")]
        account: String,
        /// Only records at or after this RFC 3339 time.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only records at or before this RFC 3339 time.
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// Only this operation (`user.` for every user operation).
        #[arg(long, value_name = "OP")]
        operation: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

impl AdminCommand {
    pub fn store(&self) -> &StoreArgs {
        match self {
            AdminCommand::Settings { store, .. }
            | AdminCommand::RotateToken { store, .. }
            | AdminCommand::MigrationReport { store, .. }
            | AdminCommand::ExportUsers { store, .. }
            | AdminCommand::ExportAudit { store, .. } => store,
        }
    }
}

/// Options every command that opens the store shares.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Where the data lives: a SQLite database file (created if missing;
    /// also `sqlite:PATH`), or a PostgreSQL database as
    /// `postgres://user:password@host:port/database` (schema created on
    /// first use), which several servers may share.
    #[arg(long, env = "SCIMLET_DB", value_name = "PATH|URL", default_value = "./scimlet.db")]
    pub db: PathBuf,
    /// PEM file of CA certificates to verify a PostgreSQL server with, besides
    /// the system's (with `sslmode=require` in the URL).
    #[arg(long, env = "SCIMLET_DB_CA", value_name = "PATH")]
    pub db_ca: Option<PathBuf>,
    /// Connections to PostgreSQL this process keeps at most (1 to 1000).
    #[arg(long, env = "SCIMLET_DB_POOL", value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_pool: u32,
    /// Run this component file instead of the built-in one.
    #[arg(long, env = "SCIMLET_COMPONENT", value_name = "PATH")]
    pub component: Option<PathBuf>,
    /// Provisioning policy: `provisioning` (native users and groups beside
    /// SCIM's, migration, settings, the whole admin API) or `plain` (RFC
    /// 7643/7644 alone, random ids; the admin API keeps accounts and tokens).
    #[arg(long, env = "SCIMLET_POLICY", value_name = "NAME", default_value = "provisioning")]
    pub policy: String,
    /// Comma-separated base path templates SCIM is served under, each naming
    /// the account as `{account}`, e.g. `/scim/{account}/v2`; the first is
    /// the tenant URL accounts report [default: the three /gateway/... and
    /// /api/scim/account/{account} forms].
    #[arg(long, env = "SCIMLET_BASE_PATHS", value_name = "TEMPLATES")]
    pub base_paths: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML file of serve's options, keyed by flag name (see
    /// scimlet.example.toml); flags and SCIMLET_* variables outrank it.
    #[arg(long, env = "SCIMLET_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "SCIMLET_LISTEN", value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Origin clients use to reach this server, e.g. https://scim.example.com
    /// [default: http://<bound address>].
    #[arg(long, env = "SCIMLET_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// File holding the admin API's bearer token (at least 16 characters)
    /// [default: $SCIMLET_ADMIN_TOKEN; neither: admin API disabled].
    #[arg(long, env = "SCIMLET_ADMIN_TOKEN_FILE", value_name = "PATH")]
    pub admin_token_file: Option<PathBuf>,
    /// Requests handled at once (1 to 64); more wait.
    #[arg(long, env = "SCIMLET_MAX_CONCURRENT", value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub max_concurrent: u32,
    /// Requests that may wait for one of those; more are answered 503 with
    /// Retry-After.
    #[arg(long, env = "SCIMLET_MAX_QUEUED", value_name = "N", default_value_t = 256)]
    pub max_queued: usize,
    /// Idle component instances kept for the next request with the same
    /// Authorization value (0 to 64; 0: a fresh instance for every request).
    #[arg(long, env = "SCIMLET_WARM_INSTANCES", value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(0..=64))]
    pub warm_instances: u32,
    /// Longest one request may run, in milliseconds; past it the request is
    /// answered 503 (unless a write of it landed: then it is answered).
    #[arg(long, env = "SCIMLET_DEADLINE_MS", value_name = "MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub deadline_ms: u64,
    /// Requests a second per bearer token, in bursts of up to twice that;
    /// more are answered 429 with Retry-After (0: no limit).
    #[arg(long, env = "SCIMLET_RATE_LIMIT", value_name = "N", default_value_t = 1000)]
    pub rate_limit: u32,
    /// Failed authentications a client address may make a minute; past it,
    /// its requests are answered 429 until the minute is over (0: no limit).
    #[arg(long, env = "SCIMLET_AUTH_FAILURES", value_name = "N", default_value_t = 30)]
    pub auth_failures: u32,
    /// PEM file with the certificate chain to serve HTTPS with (HTTP/1.1
    /// and HTTP/2); read again on SIGHUP. Needs --tls-key.
    #[arg(long, env = "SCIMLET_TLS_CERT", value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM file with the certificate's private key; read again on SIGHUP.
    #[arg(long, env = "SCIMLET_TLS_KEY", value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// How log lines are written on stderr: `text`, or `json` (one object
    /// a line).
    #[arg(long, env = "SCIMLET_LOG_FORMAT", value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Bench-only build: answer with scim-core linked into the runner.
    #[cfg(feature = "native-core")]
    #[arg(long, hide = true)]
    pub native_core: bool,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account; prints its id and tenant URL.
    Create {
        /// Human-readable name.
        name: String,
        /// Origin the tenant URL is built on.
        #[arg(long, value_name = "URL", default_value = DEFAULT_PUBLIC_URL)]
        public_url: String,
        /// Print one JSON object {"id", "name", "tenantUrl"}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List accounts.
    List {
        /// Origin the tenant URLs are built on.
        #[arg(long, value_name = "URL", default_value = DEFAULT_PUBLIC_URL)]
        public_url: String,
        /// Print a JSON array of {"id", "name", "created", "tenantUrl"}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a bearer token; the secret is printed this once only.
    Create {
        /// Account the token authenticates for.
        #[arg(long, value_name = "ID")]
        account: String,
        /// Name to recognise the token by.
        #[arg(long, value_name = "N", default_value = "default")]
        name: String,
        /// Lifetime in days, 1..=3650 [default: 365].
        #[arg(long, value_name = "D")]
        expires_in_days: Option<u32>,
        /// Print one JSON object {"id", "token", "expiresAt"}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List an account's tokens, revoked and expired ones included.
    List {
        #[arg(long, value_name = "ID")]
        account: String,
        /// Print a JSON array of {"id", "name", "created", "expiresAt", "revokedAt"}.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a token at once.
    Revoke {
        #[arg(long, value_name = "ID")]
        account: String,
        /// The token's id (not the secret).
        token_id: String,
        /// Print the revoked token as one JSON object.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_defaults() {
        let cli = Cli::try_parse_from(["scimlet", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else { panic!("not serve") };
        assert_eq!(args.listen, "127.0.0.1:8080");
        assert_eq!(args.store.db, PathBuf::from("./scimlet.db"));
        assert_eq!(args.public_url, None);
    }

    #[test]
    fn token_revoke_shape() {
        let cli = Cli::try_parse_from(["scimlet", "token", "revoke", "--account", "a1", "t1", "--db", "x.db"]).unwrap();
        let Command::Token(TokenCommand::Revoke { account, token_id, store, .. }) = cli.command else {
            panic!("not token revoke")
        };
        assert_eq!((account.as_str(), token_id.as_str()), ("a1", "t1"));
        assert_eq!(store.db, PathBuf::from("x.db"));
    }

    #[test]
    fn token_create_requires_account() {
        let err = Cli::try_parse_from(["scimlet", "token", "create"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
