//! How big the store may grow, how long it keeps data, and how its blocks are cut.

use std::time::Duration;

/// The store's limits and block policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Bytes of sealed blocks on disk the store is kept under; the oldest blocks go first.
    pub max_bytes: u64,
    /// Data older than this (by when its block was sealed) is evicted.
    pub max_age: Duration,
    /// A block is sealed once it holds this many rows…
    pub block_rows: usize,
    /// …or this many bytes before compression…
    pub block_bytes: usize,
    /// …or has been open this long.
    pub seal_after: Duration,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            max_bytes: 256 << 20,
            max_age: Duration::from_secs(24 * 3600),
            block_rows: 8192,
            block_bytes: 16 << 20,
            seal_after: Duration::from_secs(60),
        }
    }
}
