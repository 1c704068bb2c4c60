//! From accepted batches to destinations: the router, the per-destination lanes and retries.

pub mod lane;
pub mod retry;
pub mod router;
