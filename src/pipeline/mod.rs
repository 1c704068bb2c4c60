//! From accepted batches to destinations: the router, the per-destination lanes, their disk
//! spools and retries.

pub mod lane;
pub mod retry;
pub mod router;
pub mod spool;
