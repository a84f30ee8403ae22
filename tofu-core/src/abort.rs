//! Abort: a value a run owns (and a station for each of its slots), pressed by Ctrl-C, SIGTERM,
//! SIGHUP (see `signals.rs`) or a front end's command. The first press aborts the run (the
//! running phase is abandoned at once; teardowns run; the record is written and handed to the
//! outputs); a second press skips the teardowns too, and the record is still written.
//!
//! Everything that waits in a run (a phase, a prompt, a shared plug, a plug's setup or
//! teardown, a synchronized slot) looks at its run's `Abort`; nothing reads a process-wide
//! counter, so two runs in one process abort independently.

use std::sync::atomic::{AtomicU32, Ordering};

/// How many times a run was told to abort, and a way to wait for it.
#[derive(Debug, Default)]
pub(crate) struct Abort {
    presses: AtomicU32,
}

/// In a teardown, only a second press interrupts.
pub(crate) const TEARDOWN_LEVEL: u32 = 2;

impl Abort {
    /// A run not yet aborted.
    pub(crate) fn new() -> Self {
        Abort::default()
    }

    /// One more press; returns how many there have been.
    pub(crate) fn press(&self) -> u32 {
        self.presses.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// How many presses so far.
    pub(crate) fn presses(&self) -> u32 {
        self.presses.load(Ordering::SeqCst)
    }

    /// Whether the run was aborted (one press or more).
    pub(crate) fn is_aborted(&self) -> bool {
        self.presses() >= 1
    }

    /// Whether something waiting at `level` (1 outside teardowns, 2 in them) must give up.
    pub(crate) fn reached(&self, level: u32) -> bool {
        self.presses() >= level
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use super::*;

    #[test]
    fn presses_count_and_reach_their_level() {
        let abort = Arc::new(Abort::new());
        assert!(!abort.is_aborted());
        assert_eq!(abort.press(), 1);
        assert!(abort.is_aborted() && !abort.reached(2));
        assert_eq!(abort.press(), 2);
        assert!(abort.reached(2));
    }

    #[test]
    fn two_runs_abort_independently() {
        let (a, b) = (Abort::new(), Abort::new());
        a.press();
        assert!(a.is_aborted());
        assert!(!b.is_aborted());
    }
}
