//! Who is reading the head's memory, so that truncation does not pull data from under them.
//!
//! A head select hands out series lazily: a series' chunks are looked up when the caller
//! reaches it, possibly seconds later. If the head were truncated in between (its oldest range
//! written to a block and dropped from memory), a reader whose list of blocks was taken before
//! that block existed would miss those samples. So every select registers the lowest timestamp
//! it reads, and truncation below that waits until the reader is done. The wait is bounded:
//! a reader that never finishes (a bug, or a client the server has not yet cut off) delays
//! compaction by at most [`MAX_WAIT`], after which truncation goes ahead with a warning and
//! that reader may see fewer samples, never wrong ones.

use model::sample::Timestamp;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The longest truncation waits for readers of the range it drops.
pub const MAX_WAIT: Duration = Duration::from_secs(120);

/// The registry of active readers.
#[derive(Default)]
pub struct Readers {
    state: Mutex<State>,
    gone: Condvar,
}

#[derive(Default)]
struct State {
    next: u64,
    /// Reader id → lowest timestamp it reads.
    active: HashMap<u64, Timestamp>,
}

/// Held (shared) by a select and every sample iterator it produced; dropping the last copy
/// ends the read.
pub struct ReadGuard {
    readers: Arc<Readers>,
    id: u64,
}

impl Readers {
    /// Registers a reader of timestamps at and after `mint`.
    pub fn register(self: &Arc<Self>, mint: Timestamp) -> Arc<ReadGuard> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.next += 1;
        let id = st.next;
        st.active.insert(id, mint);
        Arc::new(ReadGuard {
            readers: self.clone(),
            id,
        })
    }

    /// Waits until no reader reads below `cut`, or [`MAX_WAIT`] has passed; false on timeout.
    pub fn wait_below(&self, cut: Timestamp) -> bool {
        self.wait_below_for(cut, MAX_WAIT)
    }

    fn wait_below_for(&self, cut: Timestamp, max: Duration) -> bool {
        let deadline = Instant::now() + max;
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while st.active.values().any(|&mint| mint < cut) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self
                .gone
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// Number of active readers.
    pub fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .active
            .len()
    }
}

impl Drop for ReadGuard {
    fn drop(&mut self) {
        let mut st = self.readers.state.lock().unwrap_or_else(|e| e.into_inner());
        st.active.remove(&self.id);
        drop(st);
        self.readers.gone.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_waits_only_for_readers_below_the_cut() {
        let r = Arc::new(Readers::default());
        let low = r.register(100);
        let _high = r.register(1_000);
        assert!(r.wait_below(100), "nobody reads below 100");
        assert!(!r.wait_below_for(500, Duration::from_millis(20)));
        let r2 = r.clone();
        let waiter = std::thread::spawn(move || r2.wait_below(500));
        std::thread::sleep(Duration::from_millis(20));
        drop(low);
        assert!(waiter.join().unwrap_or(false));
        assert_eq!(r.len(), 1);
    }
}
