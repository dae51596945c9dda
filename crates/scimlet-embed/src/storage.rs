//! The storage the component runs on: the WIT `storage` import as a Rust
//! trait an application implements.
//!
//! The record types are the ones generated from `wit/scimlet.wit`, so what
//! a [`Storage`] returns reaches the component without a copy, and their
//! documentation is the contract's own.

use std::future::Future;
use std::pin::Pin;

pub use crate::bindings::scimlet::provider::storage::{Entry, Error as StorageError, Precondition, ScanPage, Write};

/// An ordered key-value store with versioned records and atomic conditional
/// commits: everything the component keeps (resources, indexes, tokens,
/// audit records) is a record here.
///
/// What an implementation must guarantee is written in `wit/scimlet.wit`
/// and `wit/README.md` ("Import: storage"): keys compared byte-wise, scans
/// in ascending order that say whether `more` follow, commits that check
/// every precondition before applying anything and report the first that
/// fails as [`StorageError::Conflict`], and one store-wide version that
/// strictly increases with every commit. [`MemStorage`](crate::MemStorage)
/// is a complete implementation to read beside it.
///
/// The methods are async because the request that calls them runs as a
/// task on the application's tokio runtime: a store over a network database
/// awaits its driver without holding a thread, and an in-memory store
/// answers at once. A store that blocks (a synchronous SQLite connection,
/// file I/O) must do so inside [`tokio::task::spawn_blocking`], as
/// blocking a runtime worker stalls every other request on it.
///
/// Failures other than a conflict are [`StorageError::Unavailable`]: the
/// component answers the client `503` with `Retry-After`, and the text
/// goes to the application's log only.
pub trait Storage: Send + Sync + 'static {
    /// Reads one record; `None` when the key does not exist.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Entry>, StorageError>> + Send;

    /// Reads several records, answering in the order of `keys`. The
    /// component asks for at most 10,000 keys at once.
    fn get_many(&self, keys: &[String]) -> impl Future<Output = Result<Vec<Option<Entry>>, StorageError>> + Send;

    /// Records whose key starts with `prefix`, ascending, strictly after
    /// `after` when given, at most `limit`; a store may return fewer (at
    /// least one while more exist) and says in [`ScanPage::more`] whether
    /// any follow.
    fn scan(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<ScanPage, StorageError>> + Send;

    /// Applies every write or none, durably, and returns the version given
    /// to every record written. The component sends at most 10,000 writes
    /// and names a key at most once.
    fn commit(&self, writes: Vec<Write>) -> impl Future<Output = Result<u64, StorageError>> + Send;
}

type Answer<'a, T> = Pin<Box<dyn Future<Output = Result<T, StorageError>> + Send + 'a>>;

/// [`Storage`] as a trait object, so that [`Scimlet`](crate::Scimlet) is
/// one type whatever store it runs on.
pub(crate) trait DynStorage: Send + Sync + 'static {
    fn get<'a>(&'a self, key: &'a str) -> Answer<'a, Option<Entry>>;
    fn get_many<'a>(&'a self, keys: &'a [String]) -> Answer<'a, Vec<Option<Entry>>>;
    fn scan<'a>(&'a self, prefix: &'a str, after: Option<&'a str>, limit: u32) -> Answer<'a, ScanPage>;
    fn commit(&self, writes: Vec<Write>) -> Answer<'_, u64>;
}

impl<S: Storage> DynStorage for S {
    fn get<'a>(&'a self, key: &'a str) -> Answer<'a, Option<Entry>> {
        Box::pin(Storage::get(self, key))
    }

    fn get_many<'a>(&'a self, keys: &'a [String]) -> Answer<'a, Vec<Option<Entry>>> {
        Box::pin(Storage::get_many(self, keys))
    }

    fn scan<'a>(&'a self, prefix: &'a str, after: Option<&'a str>, limit: u32) -> Answer<'a, ScanPage> {
        Box::pin(Storage::scan(self, prefix, after, limit))
    }

    fn commit(&self, writes: Vec<Write>) -> Answer<'_, u64> {
        Box::pin(Storage::commit(self, writes))
    }
}
