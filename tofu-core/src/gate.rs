//! The gate of a station's shared plug: who holds it, and who let go of it without finishing.
//!
//! A phase takes the gate before it starts and gives it back when it ends. A phase that timed
//! out or was aborted may still be running on its abandoned thread with the instrument in hand:
//! the gate is given back, but the next holder waits for the instrument itself to be let go,
//! for [`ABANDONED_WAIT`] at most, then gets an error naming the phase that holds it.

use std::sync::{Condvar, Mutex, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use crate::abort::Abort;

/// A plug instance, shared between the test and the phase that borrows it.
pub(crate) type SharedPlug = std::sync::Arc<Mutex<Box<dyn std::any::Any + Send>>>;

/// How long a phase waits for an instrument still held by an abandoned phase.
pub(crate) const ABANDONED_WAIT: Duration = Duration::from_secs(2);

/// How often a waiting phase looks at Ctrl-C.
const POLL: Duration = Duration::from_millis(20);

/// Who holds a shared plug, and who last let go of it without finishing.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    state: Mutex<GateState>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    /// The phase holding the plug, e.g. `slot 2 (SN-0002), phase measure_current`.
    holder: Option<String>,
    /// The last holder whose phase was abandoned (timed out or aborted).
    abandoned_by: Option<String>,
}

/// Why a phase could not have a shared plug.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum GateError {
    /// Ctrl-C was pressed while the phase waited.
    Aborted,
    /// An abandoned phase (`by`) still holds the instrument `plug`.
    HeldByAbandoned {
        /// The plug's name.
        plug: &'static str,
        /// The phase that holds it.
        by: String,
    },
}

impl Gate {
    /// Waits for the plug to be free (and its instrument let go), then holds it for `who`.
    /// Gives up when Ctrl-C has been pressed `abort_at` times.
    pub(crate) fn acquire(
        &self,
        who: &str,
        plug: &'static str,
        instance: &SharedPlug,
        abort: &Abort,
        abort_at: u32,
    ) -> Result<(), GateError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while state.holder.is_some() {
            if abort.reached(abort_at) {
                return Err(GateError::Aborted);
            }
            state = self
                .freed
                .wait_timeout(state, POLL)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.holder = Some(who.to_owned());
        let abandoned_by = state.abandoned_by.clone();
        drop(state);
        // Nobody else holds the gate now; the instrument is free unless an abandoned phase
        // still has it.
        let deadline = Instant::now() + ABANDONED_WAIT;
        loop {
            match instance.try_lock() {
                Ok(_) | Err(TryLockError::Poisoned(_)) => return Ok(()),
                Err(TryLockError::WouldBlock) => {}
            }
            let why = if abort.reached(abort_at) {
                Some(GateError::Aborted)
            } else if Instant::now() >= deadline {
                Some(GateError::HeldByAbandoned {
                    plug,
                    by: abandoned_by
                        .clone()
                        .unwrap_or_else(|| "a phase that was abandoned".to_owned()),
                })
            } else {
                None
            };
            if let Some(why) = why {
                self.release(false);
                return Err(why);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether a phase holds the plug now.
    pub(crate) fn is_held(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .holder
            .is_some()
    }

    /// Gives the plug back. `abandoned`: the phase that held it was abandoned and may still
    /// be using the instrument.
    pub(crate) fn release(&self, abandoned: bool) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let holder = state.holder.take();
        if abandoned {
            state.abandoned_by = holder;
        }
        drop(state);
        self.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::any::Any;
    use std::sync::{Arc, Barrier};

    use super::*;

    fn instrument() -> SharedPlug {
        Arc::new(Mutex::new(Box::new(()) as Box<dyn Any + Send>))
    }

    #[test]
    fn a_second_holder_waits_for_the_first_to_let_go() {
        let gate = Arc::new(Gate::default());
        let plug = instrument();
        gate.acquire("first", "Plug", &plug, &Abort::new(), u32::MAX)
            .unwrap();
        let started = Arc::new(Barrier::new(2));
        let second = {
            let (gate, plug, started) = (Arc::clone(&gate), Arc::clone(&plug), started.clone());
            std::thread::spawn(move || {
                started.wait();
                let t = Instant::now();
                gate.acquire("second", "Plug", &plug, &Abort::new(), u32::MAX)
                    .unwrap();
                gate.release(false);
                t.elapsed()
            })
        };
        started.wait();
        std::thread::sleep(Duration::from_millis(150));
        gate.release(false);
        let waited = second.join().unwrap();
        assert!(waited >= Duration::from_millis(100), "{waited:?}");
    }

    #[test]
    fn an_instrument_kept_by_an_abandoned_phase_is_an_error_naming_it() {
        let gate = Gate::default();
        let plug = instrument();
        gate.acquire("slot 1, phase hang", "Plug", &plug, &Abort::new(), u32::MAX)
            .unwrap();
        // The abandoned phase's thread still holds the instrument.
        let _held = plug.lock().unwrap();
        gate.release(true);
        let err = gate.acquire("slot 2, phase next", "Plug", &plug, &Abort::new(), u32::MAX);
        assert_eq!(
            err,
            Err(GateError::HeldByAbandoned {
                plug: "Plug",
                by: "slot 1, phase hang".into()
            })
        );
        // The failed wait gave the gate back.
        assert!(gate.state.lock().unwrap().holder.is_none());
    }
}
