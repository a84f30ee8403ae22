//! Synchronized slots: every slot finishes phase k before any slot starts phase k+1
//! (TestStand's batch model), for a shared chamber or fixture.
//!
//! Each slot says where it is, as the index of the phase it is about to start in the test's
//! depth-first phase list; a slot then waits until no other slot is behind it. Indexes only
//! grow in a run (repeats keep theirs, skipped phases are jumped over), and the slot furthest
//! behind never waits, so the slots can't wait on one another in a circle. A slot that has
//! ended is out of the count. Ctrl-C ends all waiting: the slots then go to their teardowns
//! on their own.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use crate::abort::Abort;

/// The slots' positions, shared by the slots of one batch.
#[derive(Debug)]
pub(crate) struct PhaseSync {
    /// For each slot, the index of the phase it is at; `None` once it has ended.
    positions: Mutex<Vec<Option<usize>>>,
    moved: Condvar,
}

impl PhaseSync {
    pub(crate) fn new(slots: usize) -> Self {
        PhaseSync {
            positions: Mutex::new(vec![Some(0); slots]),
            moved: Condvar::new(),
        }
    }

    /// Slot `slot` is about to start phase `index`: waits until every other slot has
    /// finished the phases before it (or has ended), or until the slot's run is aborted.
    pub(crate) fn reach(&self, slot: usize, index: usize, abort: &Abort) {
        let mut positions = self
            .positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = positions.get_mut(slot) {
            *p = Some(index);
        }
        self.moved.notify_all();
        while positions.iter().flatten().any(|&p| p < index) && !abort.is_aborted() {
            positions = self
                .moved
                .wait_timeout(positions, Duration::from_millis(20))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Slot `slot` has ended: nobody waits for it any more.
    pub(crate) fn leave(&self, slot: usize) {
        let mut positions = self
            .positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = positions.get_mut(slot) {
            *p = None;
        }
        drop(positions);
        self.moved.notify_all();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::{Arc, Mutex};

    use super::*;

    /// Three slots, five phases, slot 1 slow: the log of starts is in phase order.
    #[test]
    fn no_slot_starts_a_phase_before_all_finished_the_one_before() {
        let sync = Arc::new(PhaseSync::new(3));
        let log = Arc::new(Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..3)
            .map(|slot| {
                let (sync, log) = (Arc::clone(&sync), Arc::clone(&log));
                std::thread::spawn(move || {
                    for phase in 0..5 {
                        sync.reach(slot, phase, &Abort::new());
                        log.lock().unwrap().push((phase, "start"));
                        if slot == 1 {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        log.lock().unwrap().push((phase, "end"));
                    }
                    sync.leave(slot);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let log = log.lock().unwrap();
        for (i, &(phase, what)) in log.iter().enumerate() {
            if what == "start" {
                let unfinished_before = log[i..].iter().any(|&(p, w)| w == "end" && p < phase);
                assert!(!unfinished_before, "phase {phase} started early: {log:?}");
            }
        }
    }

    /// A slot that ends early (a failure) and one that jumps to its teardown don't block
    /// the others (a blocked run fails at the deadline instead of hanging the tests).
    #[test]
    fn ended_and_jumping_slots_do_not_block() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            three_slots_one_ending_one_jumping();
            let _ = done.send(());
        });
        assert!(
            finished.recv_timeout(Duration::from_secs(10)).is_ok(),
            "the slots blocked one another"
        );
    }

    fn three_slots_one_ending_one_jumping() {
        let sync = Arc::new(PhaseSync::new(3));
        let ender = {
            let sync = Arc::clone(&sync);
            std::thread::spawn(move || {
                sync.reach(0, 0, &Abort::new());
                sync.leave(0);
            })
        };
        let jumper = {
            let sync = Arc::clone(&sync);
            std::thread::spawn(move || {
                sync.reach(1, 0, &Abort::new());
                sync.reach(1, 4, &Abort::new());
                sync.leave(1);
            })
        };
        for phase in 0..5 {
            sync.reach(2, phase, &Abort::new());
        }
        sync.leave(2);
        ender.join().unwrap();
        jumper.join().unwrap();
    }
}
