//! `--max-output`: bytes promised to copies so far. A copy reserves its
//! size before it starts; the first one that does not fit stops all
//! further copies, so the run ends cleanly instead of on a full disk.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

#[derive(Default)]
pub(super) struct OutputBudget {
    cap: Option<u64>,
    used: AtomicU64,
    reached: AtomicBool,
}

impl OutputBudget {
    /// No cap: `None`.
    pub(super) fn new(cap: Option<u64>) -> Self {
        OutputBudget { cap, ..OutputBudget::default() }
    }

    pub(super) fn reserve(&self, n: u64) -> bool {
        let Some(cap) = self.cap else { return true };
        if self.reached.load(Relaxed) {
            return false;
        }
        let fits = self.used.fetch_update(Relaxed, Relaxed, |u| u.checked_add(n).filter(|&t| t <= cap)).is_ok();
        if !fits {
            self.reached.store(true, Relaxed);
        }
        fits
    }

    /// Gives back what a copy reserved but did not write.
    pub(super) fn release(&self, n: u64) {
        if self.cap.is_some() {
            self.used.fetch_sub(n, Relaxed);
        }
    }

    pub(super) fn reached(&self) -> bool {
        self.reached.load(Relaxed)
    }
}
