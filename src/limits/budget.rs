//! One memory budget shared by every receiver and the lanes' queues: a count of bytes held,
//! taken by [`MemoryPermit`]s that give their bytes back when dropped.
//!
//! A receiver takes a permit for a request body before reading it (its declared length, or
//! frame by frame when it declared none), grows it while decompressing, and hands it to the
//! [`Batch`](crate::model::Batch) it makes: the bytes stay counted while a lane queues the
//! batch and are given back when the last lane lets it go. A permit that cannot be taken or
//! grown is a refusal (429 / `RESOURCE_EXHAUSTED` with `Retry-After`), never an allocation.
//! The X-Ray UDP receiver grows one permit datagram by datagram for the batch it is filling
//! (an [`MemoryBudget::empty_permit`] to start with); a datagram that does not fit is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes that could not be taken from the budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the memory budget of {limit} bytes is in use ({in_use} bytes held); {wanted} more bytes do not fit")]
pub struct BudgetExhausted {
    pub wanted: usize,
    pub in_use: usize,
    pub limit: usize,
}

/// The shared count of bytes held, with its limit. Cloning shares the count.
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    limit: usize,
    in_use: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> MemoryBudget {
        MemoryBudget { shared: Arc::new(Shared { limit, in_use: AtomicUsize::new(0) }) }
    }

    /// A budget nothing exceeds, for in-process tests and tools.
    pub fn unlimited() -> MemoryBudget {
        MemoryBudget::new(usize::MAX)
    }

    pub fn limit(&self) -> usize {
        self.shared.limit
    }

    /// Bytes held by permits now.
    pub fn in_use(&self) -> usize {
        self.shared.in_use.load(Ordering::Relaxed)
    }

    /// A permit of this budget that holds nothing yet, to be grown ([`MemoryPermit::try_grow`]).
    pub fn empty_permit(&self) -> MemoryPermit {
        MemoryPermit { shared: Some(Arc::clone(&self.shared)), bytes: 0 }
    }

    /// Takes `bytes` from the budget, or fails without taking anything.
    pub fn try_reserve(&self, bytes: usize) -> Result<MemoryPermit, BudgetExhausted> {
        self.shared.take(bytes)?;
        Ok(MemoryPermit { shared: Some(Arc::clone(&self.shared)), bytes })
    }
}

impl Shared {
    fn take(&self, bytes: usize) -> Result<(), BudgetExhausted> {
        self.in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |in_use| {
                in_use.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .map(drop)
            .map_err(|in_use| BudgetExhausted { wanted: bytes, in_use, limit: self.limit })
    }

    fn give_back(&self, bytes: usize) {
        self.in_use.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// Bytes taken from a [`MemoryBudget`], given back on drop.
#[derive(Debug, Default)]
pub struct MemoryPermit {
    /// `None` for a permit that holds nothing of any budget ([`MemoryPermit::none`]).
    shared: Option<Arc<Shared>>,
    bytes: usize,
}

impl MemoryPermit {
    /// A permit of no budget, for batches made where nothing is counted (tests, replay).
    pub fn none() -> MemoryPermit {
        MemoryPermit::default()
    }

    /// Bytes this permit holds.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Takes `extra` more bytes, or fails leaving the permit as it was.
    pub fn try_grow(&mut self, extra: usize) -> Result<(), BudgetExhausted> {
        if let Some(shared) = &self.shared {
            shared.take(extra)?;
        }
        self.bytes += extra;
        Ok(())
    }

    /// Gives back what the permit holds beyond `bytes`.
    pub fn shrink_to(&mut self, bytes: usize) {
        if bytes >= self.bytes {
            return;
        }
        if let Some(shared) = &self.shared {
            shared.give_back(self.bytes - bytes);
        }
        self.bytes = bytes;
    }
}

impl Drop for MemoryPermit {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.give_back(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservation_that_does_not_fit_takes_nothing() {
        let budget = MemoryBudget::new(100);
        let held = budget.try_reserve(60).expect("60 of 100 fit");
        let refused = budget.try_reserve(41).expect_err("60 + 41 is over 100");
        assert_eq!(refused, BudgetExhausted { wanted: 41, in_use: 60, limit: 100 });
        assert_eq!(budget.in_use(), 60);
        assert_eq!(held.bytes(), 60);
        let rest = budget.try_reserve(40).expect("60 + 40 fit exactly");
        assert_eq!(budget.in_use(), 100);
        drop(rest);
    }

    #[test]
    fn dropping_a_permit_gives_its_bytes_back() {
        let budget = MemoryBudget::new(100);
        let permit = budget.try_reserve(70).expect("fits");
        drop(permit);
        assert_eq!(budget.in_use(), 0);
        budget.try_reserve(100).expect("the whole budget is free again");
    }

    #[test]
    fn a_permit_grows_only_within_the_budget_and_shrinks_back() {
        let budget = MemoryBudget::new(100);
        let mut permit = budget.try_reserve(10).expect("fits");
        permit.try_grow(80).expect("90 fit");
        assert!(permit.try_grow(11).is_err());
        assert_eq!(permit.bytes(), 90);
        assert_eq!(budget.in_use(), 90);
        permit.shrink_to(25);
        assert_eq!((permit.bytes(), budget.in_use()), (25, 25));
        permit.shrink_to(50);
        assert_eq!(permit.bytes(), 25, "shrinking never grows");
        drop(permit);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn an_empty_permit_grows_within_its_budget() {
        let budget = MemoryBudget::new(100);
        let held = budget.try_reserve(100).expect("fits");
        let mut permit = budget.empty_permit();
        assert_eq!((permit.bytes(), budget.in_use()), (0, 100), "taking an empty permit takes nothing");
        assert!(permit.try_grow(1).is_err(), "the budget is full");
        drop(held);
        permit.try_grow(60).expect("room again");
        assert_eq!(budget.in_use(), 60);
        drop(permit);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn a_permit_of_no_budget_counts_nothing() {
        let budget = MemoryBudget::new(10);
        let mut permit = MemoryPermit::none();
        permit.try_grow(1_000).expect("no budget to exceed");
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn concurrent_permits_never_exceed_the_limit() {
        let budget = MemoryBudget::new(1_000);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..10_000 {
                        if let Ok(permit) = budget.try_reserve(300) {
                            assert!(budget.in_use() <= 1_000);
                            drop(permit);
                        }
                    }
                });
            }
        });
        assert_eq!(budget.in_use(), 0);
    }
}
