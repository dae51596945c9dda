//! Accounts (tenants) and their SCIM bearer tokens.
//!
//! A token is `scimlet_<id>_<secret>`. Only its SHA-256 is stored, under its
//! public id; authentication looks the id up and compares hashes in constant
//! time, so neither the store nor a timing probe gives the secret away.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Service;
use crate::audit::{self, Action, Actor, Op, RequestInfo};
use crate::env::{Env, format_rfc3339};
use crate::error::ScimError;
use crate::keys::{self, AccountKeys};
use crate::settings::Settings;
use crate::store::{Store, StoreError, Write};
use crate::tenant;

const TOKEN_PREFIX: &str = "scimlet_";
/// Default and maximum token lifetimes, in days.
const DEFAULT_TOKEN_DAYS: u32 = 365;
const MAX_TOKEN_DAYS: u32 = 3650;
const DAY_MS: i64 = 86_400_000;
const MAX_NAME: usize = 200;
/// A token this close to expiry is flagged by the admin API and the runner.
pub const EXPIRY_WARNING_DAYS: i64 = 14;
/// Last-used times are kept to this precision, so that a busy client costs
/// one extra write a minute, not one per request.
const LAST_USED_PRECISION_MS: i64 = 60_000;
/// Longest overlap a rotation grants the old token.
const MAX_ROTATION_GRACE_HOURS: u32 = 30 * 24;
/// A marker written with the first account so that two hosts starting on
/// one empty store cannot both bootstrap.
const BOOTSTRAP_KEY: &str = "bootstrap";
/// Most tokens (live, expired or revoked) one account's listing shows.
const MAX_TOKENS: usize = 10_000;

/// An account as the admin interface shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Server-assigned id, URL-safe.
    pub id: String,
    /// Name given at creation.
    pub name: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// SCIM base path of the account.
    pub scim_path: String,
}

/// A token's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Public id, also part of the token.
    pub id: String,
    /// Account the token is for.
    pub account_id: String,
    /// Name given at creation.
    pub name: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// RFC 3339 expiry time.
    pub expires_at: String,
    /// RFC 3339 revocation time.
    pub revoked_at: Option<String>,
    /// RFC 3339 time of the last authenticated request (to the minute).
    pub last_used_at: Option<String>,
    /// Set while the token is valid but expires within
    /// [`EXPIRY_WARNING_DAYS`]: provisioning stops when it expires.
    pub expiry_warning: Option<String>,
}

/// A token just created; the only time the secret exists outside the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// Metadata.
    pub info: TokenInfo,
    /// The bearer token.
    pub token: String,
}

/// Why an admin call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// The named account or token does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// An argument was refused.
    #[error("invalid: {0}")]
    Invalid(String),
    /// Storage failed.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<StoreError> for AdminError {
    fn from(err: StoreError) -> Self {
        AdminError::Unavailable(err.to_string())
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AccountRecord {
    id: String,
    name: String,
    created: i64,
    #[serde(default)]
    pub(crate) settings: Settings,
}

#[derive(Debug, Serialize, Deserialize)]
struct TokenRecord {
    id: String,
    account: String,
    name: String,
    /// Hex SHA-256 of the whole token string.
    hash: String,
    created: i64,
    expires: i64,
    revoked: Option<i64>,
    #[serde(default)]
    last_used: Option<i64>,
}

impl AccountRecord {
    /// `base_paths`: the first one is the tenant URL given to identity providers.
    fn to_account(&self, base_paths: &crate::BasePaths) -> Account {
        Account {
            id: self.id.clone(),
            name: self.name.clone(),
            created: format_rfc3339(self.created),
            scim_path: base_paths.scim_path(&self.id),
        }
    }
}

impl TokenRecord {
    fn to_info(&self, now: i64) -> TokenInfo {
        let left = self.expires - now;
        let expiry_warning = (self.revoked.is_none() && left > 0 && left <= EXPIRY_WARNING_DAYS * DAY_MS).then(|| {
            let days = left / DAY_MS;
            let when = if days == 0 {
                "within a day".to_owned()
            } else {
                format!("in {days} day{}", if days == 1 { "" } else { "s" })
            };
            format!(
                "token {:?} ({}) expires {when}, at {}: rotate it and give the new token to the identity provider",
                self.name,
                self.id,
                format_rfc3339(self.expires)
            )
        });
        TokenInfo {
            id: self.id.clone(),
            account_id: self.account.clone(),
            name: self.name.clone(),
            created: format_rfc3339(self.created),
            expires_at: format_rfc3339(self.expires),
            revoked_at: self.revoked.map(format_rfc3339),
            last_used_at: self.last_used.map(format_rfc3339),
            expiry_warning,
        }
    }
}

pub(crate) fn sha256(data: &str) -> [u8; 32] {
    Sha256::digest(data.as_bytes()).into()
}

fn sha256_hex(data: &[u8]) -> String {
    crate::hex::encode(&Sha256::digest(data))
}

/// Random identifiers drawn from the injected environment.
pub(crate) fn random_alnum(env: &impl Env, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 1];
    while out.len() < len {
        env.fill_random(&mut buf);
        // Rejection sampling keeps the distribution uniform.
        if buf[0] < 248 {
            out.push(ALPHABET[(buf[0] % 62) as usize] as char);
        }
    }
    out
}

pub(crate) fn random_hex(env: &impl Env, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    env.fill_random(&mut buf);
    crate::hex::encode(&buf)
}

/// A new record's id: a UUID (the id format Entra and Okta expect) of
/// version 7 (RFC 9562 §5.7), whose first 48 bits are the creation time in
/// milliseconds and the other 74 random.
///
/// Time order is for the store: a record's key holds its id, so version-4
/// ids put every create on a random page of the records' B-tree (one more
/// page written and read per create, and the page splits spread over the
/// whole tree), while ordered ids land side by side on the tree's last
/// page. The creation time they reveal is already the record's
/// `meta.created`.
pub(crate) fn new_uuid(env: &impl Env) -> String {
    let mut b = [0u8; 16];
    env.fill_random(&mut b);
    let millis = env.now_millis().clamp(0, (1 << 48) - 1) as u64;
    b[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = crate::hex::encode(&b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The writes that make an account: its record, and the marker that its
/// resource counters hold from the start (see `Tenant::count`).
fn account_writes(record: &AccountRecord) -> Vec<Write> {
    vec![
        Write::create(keys::account(&record.id), to_vec(record)),
        Write::put(AccountKeys::new(&record.id).counted(), Vec::new()),
    ]
}

fn check_name(name: &str, what: &str) -> Result<String, AdminError> {
    let name = name.trim();
    if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(AdminError::Invalid(format!("{what} must be 1 to {MAX_NAME} printable characters")));
    }
    Ok(name.to_owned())
}

impl<S: Store, E: Env> Service<S, E> {
    /// Creates an account.
    pub fn create_account(&self, name: &str) -> Result<Account, AdminError> {
        let name = check_name(name, "account name")?;
        self.insert_account(name, Vec::new())
    }

    fn insert_account(&self, name: String, extra: Vec<Write>) -> Result<Account, AdminError> {
        let contended = || AdminError::Unavailable("could not draw a free account id".into());
        tenant::retry_or(self.env(), contended, || {
            let record = AccountRecord {
                id: random_alnum(self.env(), 22),
                name: name.clone(),
                created: self.env().now_millis(),
                settings: Settings::default(),
            };
            let mut writes = account_writes(&record);
            writes.extend(extra.iter().cloned());
            match self.store().commit(writes) {
                // An id collision (the first write) draws again.
                Err(StoreError::Conflict(i)) if i > 0 => {
                    Err(AdminError::Invalid("the store already has an account".into()))
                }
                done => Ok(done.map(|_| record.to_account(self.config().base_paths()))),
            }
        })
    }

    /// Lists every account, in id order.
    pub fn list_accounts(&self) -> Result<Vec<Account>, AdminError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store().scan(keys::ACCOUNTS, after.as_deref(), 500)?;
            for entry in &page.entries {
                if let Ok(record) = serde_json::from_slice::<AccountRecord>(&entry.value) {
                    out.push(record.to_account(self.config().base_paths()));
                }
            }
            if !page.more {
                return Ok(out);
            }
            after = page.entries.last().map(|e| e.key.clone());
        }
    }

    fn account_entry(&self, account_id: &str) -> Result<(AccountRecord, u64), AdminError> {
        let entry = self
            .store()
            .get(&keys::account(account_id))?
            .ok_or_else(|| AdminError::NotFound(format!("account {account_id:?}")))?;
        let record = serde_json::from_slice(&entry.value)
            .map_err(|e| AdminError::Unavailable(format!("corrupt account record: {e}")))?;
        Ok((record, entry.version))
    }

    fn account_record(&self, account_id: &str) -> Result<AccountRecord, AdminError> {
        self.account_entry(account_id).map(|(record, _)| record)
    }

    /// One account.
    pub fn get_account(&self, account_id: &str) -> Result<Account, AdminError> {
        Ok(self.account_record(account_id)?.to_account(self.config().base_paths()))
    }

    /// An account's provisioning settings.
    pub(crate) fn account_settings(&self, account_id: &str) -> Result<Settings, ScimError> {
        match self.account_record(account_id) {
            Ok(record) => Ok(record.settings),
            Err(AdminError::NotFound(what)) => Err(ScimError::not_found(format!("no {what}"))),
            Err(e) => Err(e.into()),
        }
    }

    /// Changes settings (a partial JSON update), audited like every write.
    pub(crate) fn update_settings(
        &self,
        account_id: &str,
        patch: &serde_json::Value,
        actor: &Actor,
        request: &RequestInfo,
    ) -> Result<Settings, ScimError> {
        let contended = || ScimError::unavailable("the settings are being changed concurrently; retry");
        tenant::retry_or(self.env(), contended, || {
            let (mut record, version) = self.account_entry(account_id)?;
            record.settings.apply(patch)?;
            let op = Op::new(Action::SettingsUpdate, account_id);
            let writes = vec![
                Write::replace(keys::account(account_id), to_vec(&record), version),
                audit::record(&AccountKeys::new(account_id), self.env(), actor, request, op, None),
            ];
            Ok(self.store().commit(writes).map(|_| record.settings))
        })
    }

    /// Creates a token for an account, valid for `expires_in_days` (default
    /// 365, at most 3650).
    pub fn create_token(
        &self,
        account_id: &str,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> Result<NewToken, AdminError> {
        self.create_token_by(&Actor::Operator, &RequestInfo::operator(self.env()), account_id, name, expires_in_days)
    }

    pub(crate) fn create_token_by(
        &self,
        actor: &Actor,
        request: &RequestInfo,
        account_id: &str,
        name: &str,
        expires_in_days: Option<u32>,
    ) -> Result<NewToken, AdminError> {
        let account = self.account_record(account_id)?;
        let name = check_name(name, "token name")?;
        let days = token_days(expires_in_days)?;
        let (token, mut writes) = self.token_writes(&account.id, name, days);
        let op = Op::new(Action::TokenCreate, &token.info.id);
        writes.push(audit::record(&AccountKeys::new(&account.id), self.env(), actor, request, op, None));
        self.store().commit(writes)?;
        Ok(token)
    }

    /// Issues a successor of a token: same name, a new secret, and the old
    /// token kept valid for `grace_hours` more (0 revokes it now) so the
    /// identity provider can be switched over without a gap.
    pub fn rotate_token(
        &self,
        account_id: &str,
        token_id: &str,
        grace_hours: u32,
        expires_in_days: Option<u32>,
    ) -> Result<(NewToken, TokenInfo), AdminError> {
        self.rotate_token_by(
            &Actor::Operator,
            &RequestInfo::operator(self.env()),
            account_id,
            token_id,
            grace_hours,
            expires_in_days,
        )
    }

    pub(crate) fn rotate_token_by(
        &self,
        actor: &Actor,
        request: &RequestInfo,
        account_id: &str,
        token_id: &str,
        grace_hours: u32,
        expires_in_days: Option<u32>,
    ) -> Result<(NewToken, TokenInfo), AdminError> {
        if grace_hours > MAX_ROTATION_GRACE_HOURS {
            return Err(AdminError::Invalid(format!(
                "the old token can stay valid for at most {MAX_ROTATION_GRACE_HOURS} hours"
            )));
        }
        let days = token_days(expires_in_days)?;
        let not_found = || AdminError::NotFound(format!("token {token_id:?} of account {account_id:?}"));
        tenant::retry_or(self.env(), token_contended, || {
            let entry = self.store().get(&keys::token(token_id))?.ok_or_else(not_found)?;
            let mut old: TokenRecord = serde_json::from_slice(&entry.value)
                .map_err(|e| AdminError::Unavailable(format!("corrupt token record: {e}")))?;
            let now = self.env().now_millis();
            if old.account != account_id {
                return Err(not_found());
            }
            if old.revoked.is_some() || old.expires <= now {
                return Err(AdminError::Invalid(format!(
                    "token {token_id:?} is revoked or expired; create a new token instead"
                )));
            }
            let until = now + i64::from(grace_hours) * 3_600_000;
            if grace_hours == 0 {
                old.revoked = Some(now);
            } else {
                old.expires = old.expires.min(until);
            }
            let (token, mut writes) = self.token_writes(account_id, old.name.clone(), days);
            writes.push(Write::replace(keys::token(token_id), to_vec(&old), entry.version));
            let op = Op::new(Action::TokenRotate, token_id);
            writes.push(audit::record(&AccountKeys::new(account_id), self.env(), actor, request, op, None));
            Ok(self.store().commit(writes).map(|_| (token, old.to_info(now))))
        })
    }

    fn token_writes(&self, account_id: &str, name: String, days: u32) -> (NewToken, Vec<Write>) {
        let id = random_hex(self.env(), 8);
        let secret = random_hex(self.env(), 32);
        let token = format!("{TOKEN_PREFIX}{id}_{secret}");
        let now = self.env().now_millis();
        let record = TokenRecord {
            id: id.clone(),
            account: account_id.to_owned(),
            name,
            hash: sha256_hex(token.as_bytes()),
            created: now,
            expires: now + i64::from(days) * DAY_MS,
            revoked: None,
            last_used: None,
        };
        let writes = vec![
            Write::create(keys::token(&id), to_vec(&record)),
            Write::create(AccountKeys::new(account_id).token_ref(&id), Vec::new()),
        ];
        (NewToken { info: record.to_info(now), token }, writes)
    }

    /// Lists an account's tokens.
    pub fn list_tokens(&self, account_id: &str) -> Result<Vec<TokenInfo>, AdminError> {
        let account = self.account_record(account_id)?;
        let (refs, _) = crate::store::scan_all(self.store(), &AccountKeys::new(&account.id).tokens(), MAX_TOKENS)?;
        let ids: Vec<String> = refs.iter().map(|e| keys::token(&keys::last_segment(&e.key))).collect();
        let records = crate::store::get_all(self.store(), &ids)?;
        Ok(records
            .into_iter()
            .flatten()
            .filter_map(|e| serde_json::from_slice::<TokenRecord>(&e.value).ok())
            .map(|r| r.to_info(self.env().now_millis()))
            .collect())
    }

    /// Revokes a token; revoking twice keeps the first time.
    pub fn revoke_token(&self, account_id: &str, token_id: &str) -> Result<TokenInfo, AdminError> {
        self.revoke_token_by(&Actor::Operator, &RequestInfo::operator(self.env()), account_id, token_id)
    }

    pub(crate) fn revoke_token_by(
        &self,
        actor: &Actor,
        request: &RequestInfo,
        account_id: &str,
        token_id: &str,
    ) -> Result<TokenInfo, AdminError> {
        let not_found = || AdminError::NotFound(format!("token {token_id:?} of account {account_id:?}"));
        tenant::retry_or(self.env(), token_contended, || {
            let entry = self.store().get(&keys::token(token_id))?.ok_or_else(not_found)?;
            let mut record: TokenRecord = serde_json::from_slice(&entry.value)
                .map_err(|e| AdminError::Unavailable(format!("corrupt token record: {e}")))?;
            if record.account != account_id {
                return Err(not_found());
            }
            let now = self.env().now_millis();
            if record.revoked.is_some() {
                return Ok(Ok(record.to_info(now)));
            }
            record.revoked = Some(now);
            let op = Op::new(Action::TokenRevoke, token_id);
            let writes = vec![
                Write::replace(keys::token(token_id), to_vec(&record), entry.version),
                audit::record(&AccountKeys::new(account_id), self.env(), actor, request, op, None),
            ];
            Ok(self.store().commit(writes).map(|_| record.to_info(now)))
        })
    }

    /// On an empty store creates a first account and token; otherwise `None`.
    pub fn bootstrap(&self, name: &str) -> Result<Option<(Account, NewToken)>, AdminError> {
        let name = check_name(name, "account name")?;
        if self.store().get(BOOTSTRAP_KEY)?.is_some() || !self.store().scan(keys::ACCOUNTS, None, 1)?.entries.is_empty()
        {
            return Ok(None);
        }
        // Account, first token and the marker land in one commit.
        tenant::retry_or(
            self.env(),
            || AdminError::Unavailable("could not draw free ids".into()),
            || {
                let record = AccountRecord {
                    id: random_alnum(self.env(), 22),
                    name: name.clone(),
                    created: self.env().now_millis(),
                    settings: Settings::default(),
                };
                let (token, mut writes) = self.token_writes(&record.id, "bootstrap".into(), DEFAULT_TOKEN_DAYS);
                writes.push(Write::create(BOOTSTRAP_KEY, record.id.clone().into_bytes()));
                writes.extend(account_writes(&record));
                Ok(match self.store().commit(writes) {
                    // The marker exists: another bootstrap won.
                    Err(StoreError::Conflict(2)) => Ok(None),
                    done => done.map(|_| Some((record.to_account(self.config().base_paths()), token))),
                })
            },
        )
    }

    /// Checks an `Authorization` header for `account_id` and returns the
    /// token's public id. Every failure is the same `None`, so a client
    /// learns nothing about which check failed.
    pub(crate) fn authenticate(
        &self,
        account_id: &str,
        authorization: Option<&str>,
    ) -> Result<Option<String>, StoreError> {
        let Some(token) = bearer(authorization) else { return Ok(None) };
        let Some(id) = token.strip_prefix(TOKEN_PREFIX).and_then(|rest| rest.split_once('_')).map(|(id, _)| id) else {
            return Ok(None);
        };
        if id.is_empty() || id.len() > 64 {
            return Ok(None);
        }
        let presented = sha256_hex(token.as_bytes());
        let Some(entry) = self.store().get(&keys::token(id))? else {
            // Spend the same comparison as a hit.
            let _ = presented.as_bytes().ct_eq(sha256_hex(b"").as_bytes());
            return Ok(None);
        };
        let Ok(mut record) = serde_json::from_slice::<TokenRecord>(&entry.value) else { return Ok(None) };
        let hash_ok: bool = presented.as_bytes().ct_eq(record.hash.as_bytes()).into();
        let now = self.env().now_millis();
        if !(hash_ok && record.account == account_id && record.revoked.is_none() && now < record.expires) {
            return Ok(None);
        }
        if record.last_used.is_none_or(|t| now - t >= LAST_USED_PRECISION_MS) {
            // Best effort: a concurrent request that also records the time
            // wins the race, and that is as good.
            record.last_used = Some(now);
            let _ = self.store().commit(vec![Write::replace(keys::token(id), to_vec(&record), entry.version)]);
        }
        Ok(Some(record.id))
    }

    /// Checks an `Authorization` header against the configured admin token,
    /// in constant time.
    pub(crate) fn authenticate_admin(&self, authorization: Option<&str>) -> bool {
        let (Some(expected), Some(token)) = (self.config().admin_token_hash(), bearer(authorization)) else {
            return false;
        };
        sha256(token).ct_eq(expected).into()
    }
}

fn token_contended() -> AdminError {
    AdminError::Unavailable("the token is being changed concurrently; retry".into())
}

fn bearer(authorization: Option<&str>) -> Option<&str> {
    let (scheme, token) = authorization?.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn token_days(expires_in_days: Option<u32>) -> Result<u32, AdminError> {
    let days = expires_in_days.unwrap_or(DEFAULT_TOKEN_DAYS);
    if !(1..=MAX_TOKEN_DAYS).contains(&days) {
        return Err(AdminError::Invalid(format!("expires-in-days must be between 1 and {MAX_TOKEN_DAYS}")));
    }
    Ok(days)
}

impl From<AdminError> for ScimError {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::NotFound(what) => ScimError::not_found(format!("no {what}")),
            AdminError::Invalid(detail) => ScimError::invalid_value(detail),
            AdminError::Unavailable(_) => ScimError::unavailable("storage is unavailable; retry later"),
        }
    }
}

fn to_vec<T: Serialize>(value: &T) -> Vec<u8> {
    // Plain structs of strings and integers always serialise.
    serde_json::to_vec(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Entry, MemStore, TestEnv};

    #[test]
    fn new_ids_are_version_7_uuids_in_creation_order() {
        let env = TestEnv::new(1_764_000_000_000);
        let first = new_uuid(&env);
        env.advance(1);
        let second = new_uuid(&env);
        for id in [&first, &second] {
            let parts: Vec<&str> = id.split('-').collect();
            assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12], "{id}");
            assert!(parts[2].starts_with('7'), "version 7: {id}");
            assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "RFC 9562 variant: {id}");
        }
        // The first 48 bits are the milliseconds, big-endian.
        assert_eq!(
            u64::from_str_radix(&first[..8], 16).unwrap() << 16 | u64::from_str_radix(&first[9..13], 16).unwrap(),
            1_764_000_000_000
        );
        assert!(first < second, "a later id sorts after: {first} {second}");
        assert_ne!(new_uuid(&env), new_uuid(&env), "the rest is random");
    }

    #[test]
    fn token_lifecycle() {
        let store = MemStore::new();
        let env = TestEnv::default();
        let service = Service::new(&store, &env);
        let account = service.create_account("Acme").unwrap();
        let other = service.create_account("Other").unwrap();
        let token = service.create_token(&account.id, "entra", Some(1)).unwrap();
        let bearer = format!("Bearer {}", token.token);
        assert!(service.authenticate(&account.id, Some(&bearer)).unwrap().is_some());
        assert!(service.authenticate(&other.id, Some(&bearer)).unwrap().is_none(), "another account's token");
        assert!(service.authenticate(&account.id, None).unwrap().is_none());
        assert!(service.authenticate(&account.id, Some("Basic abc")).unwrap().is_none());
        let mut forged = token.token.clone();
        forged.pop();
        forged.push(if token.token.ends_with('0') { '1' } else { '0' });
        assert!(service.authenticate(&account.id, Some(&format!("Bearer {forged}"))).unwrap().is_none());
        // Stored hashed only.
        let raw = store.get(&keys::token(&token.info.id)).unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&raw.value).contains(&token.token));
        // Expiry.
        env.advance(DAY_MS);
        assert!(service.authenticate(&account.id, Some(&bearer)).unwrap().is_none());
        // Revocation.
        let t2 = service.create_token(&account.id, "okta", None).unwrap();
        let b2 = format!("bearer {}", t2.token);
        assert!(service.authenticate(&account.id, Some(&b2)).unwrap().is_some());
        let revoked = service.revoke_token(&account.id, &t2.info.id).unwrap();
        assert!(revoked.revoked_at.is_some());
        assert!(service.authenticate(&account.id, Some(&b2)).unwrap().is_none());
        assert_eq!(service.revoke_token(&account.id, &t2.info.id).unwrap(), revoked);
        assert!(matches!(service.revoke_token(&other.id, &t2.info.id), Err(AdminError::NotFound(_))));
        assert_eq!(service.list_tokens(&account.id).unwrap().len(), 2);
        assert!(matches!(service.create_token(&account.id, "x", Some(0)), Err(AdminError::Invalid(_))));
        assert!(matches!(service.create_token("nope", "x", None), Err(AdminError::NotFound(_))));
    }

    /// A store that records every call, to compare what two requests did.
    struct Recording<'s> {
        inner: &'s MemStore,
        calls: std::cell::RefCell<Vec<String>>,
    }

    impl Store for Recording<'_> {
        fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
            self.calls.borrow_mut().push(format!("get {key}"));
            self.inner.get(key)
        }
        fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
            self.calls.borrow_mut().push(format!("get-many {keys:?}"));
            self.inner.get_many(keys)
        }
        fn scan(&self, prefix: &str, after: Option<&str>, limit: u32) -> Result<crate::ScanPage, StoreError> {
            self.calls.borrow_mut().push(format!("scan {prefix} {after:?} {limit}"));
            self.inner.scan(prefix, after, limit)
        }
        fn commit(&self, writes: Vec<Write>) -> Result<u64, StoreError> {
            self.calls.borrow_mut().push(format!("commit {}", writes.len()));
            self.inner.commit(writes)
        }
    }

    /// The timing half of this is `benches/token_timing.rs`; here, that a
    /// wrong token does the same work whatever part of its secret is right:
    /// the same store calls, no write, one constant-time comparison of
    /// hashes (so no byte of the secret is ever compared on its own).
    #[test]
    fn a_wrong_token_costs_the_same_however_much_of_it_is_right() {
        let store = MemStore::new();
        let env = TestEnv::default();
        let setup = Service::new(&store, &env);
        let account = setup.create_account("Acme").unwrap();
        let token = setup.create_token(&account.id, "entra", None).unwrap().token;
        let (head, secret) = token.rsplit_once('_').unwrap();
        let n = secret.len();
        let wrong = |right: usize| {
            let s: String = secret
                .char_indices()
                .map(|(i, c)| {
                    if i < right {
                        c
                    } else if c == 'A' {
                        'B'
                    } else {
                        'A'
                    }
                })
                .collect();
            format!("Bearer {head}_{s}")
        };
        let mut seen = Vec::new();
        for right in [0, n / 2, n - 1] {
            let recording = Recording { inner: &store, calls: Default::default() };
            let service = Service::new(&recording, &env);
            assert_eq!(service.authenticate(&account.id, Some(&wrong(right))).unwrap(), None);
            let calls = recording.calls.into_inner();
            assert!(calls.iter().all(|c| !c.starts_with("commit")), "{calls:?}");
            seen.push(calls);
        }
        assert_eq!(seen[0], seen[1]);
        assert_eq!(seen[0], seen[2]);
        assert_eq!(seen[0].len(), 1, "one read of the token's record by its id: {:?}", seen[0]);
    }

    #[test]
    fn bootstrap_happens_once() {
        let store = MemStore::new();
        let env = TestEnv::default();
        let service = Service::new(&store, &env);
        let (account, token) = service.bootstrap("default").unwrap().unwrap();
        assert_eq!(account.scim_path, format!("/gateway/ng/api/scim/account/{}", account.id));
        assert!(token.token.starts_with("scimlet_"));
        assert_eq!(service.bootstrap("default").unwrap(), None);
        assert_eq!(service.list_accounts().unwrap(), vec![account]);
    }
}
