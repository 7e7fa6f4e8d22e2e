//! How the main thread and the helper hand a step back and forth: spin-waited
//! atomic counters, since waking a sleeping thread costs more than a
//! half-step of these small GEMMs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Busy-waits until `counter` reaches `target`; false if `stop` was raised
/// first. After a long burst (milliseconds) it yields between checks, so on a busy
/// machine (other processes on the cores) the waiting thread gives its core
/// to the one it waits for instead of starving it.
pub(super) fn spin_until(counter: &AtomicUsize, target: usize, stop: &AtomicBool) -> bool {
    const SPINS_BEFORE_YIELDING: u32 = 1_000_000;
    let mut spins = 0u32;
    loop {
        if counter.load(Ordering::Acquire) >= target {
            return true;
        }
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        if spins < SPINS_BEFORE_YIELDING {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// Raises the flag when dropped, so a helper never spins after the main
/// thread has left the epoch (normally or by unwinding).
pub(super) struct StopOnDrop<'a>(pub(super) &'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
