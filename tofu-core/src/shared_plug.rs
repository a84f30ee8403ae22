//! A station's shared plug: one instrument for every slot, held by one phase at a time.
//!
//! Each phase that uses a shared plug takes its [`Gate`] before the phase starts, so the wait
//! is not part of the phase's time or timeout, and gives it back when the phase ends. A phase
//! that timed out or was aborted may still be running on its abandoned thread with the
//! instrument in hand: the gate is given back, but the next phase waits for the instrument
//! itself to be let go, for [`ABANDONED_WAIT`](crate::gate::ABANDONED_WAIT) at most, then ends as an error that names the
//! phase that holds it.

use crate::abort::Abort;
use crate::gate::{Gate, GateError};
use crate::plug::PlugEntry;

/// The shared plugs a phase holds. Dropped, it gives them back (as abandoned if the executor
/// is unwinding, so nobody uses an instrument in an unknown state without being told).
#[derive(Debug)]
pub(crate) struct Held<'p> {
    gates: Vec<&'p Gate>,
    abandoned: bool,
}

impl Held<'_> {
    /// Gives the plugs back; `abandoned`: the phase was abandoned and may still use them.
    pub(crate) fn release(mut self, abandoned: bool) {
        self.abandoned = abandoned;
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let abandoned = self.abandoned || std::thread::panicking();
        for gate in &self.gates {
            gate.release(abandoned);
        }
    }
}

/// Holds every shared plug among `plugs` for `who` (named only when there is one), in one
/// order for all slots (so two phases that each need two shared plugs can't hold one each and
/// wait for the other).
pub(crate) fn hold_all<'p>(
    plugs: &[&'p PlugEntry],
    who: impl FnOnce() -> String,
    abort: &Abort,
    abort_at: u32,
    on_wait: &mut dyn FnMut(&str),
) -> Result<Held<'p>, GateError> {
    let mut shared: Vec<&'p PlugEntry> =
        plugs.iter().copied().filter(|p| p.gate.is_some()).collect();
    shared.sort_by_key(|p| {
        p.gate
            .as_deref()
            .map(|g| std::ptr::from_ref::<Gate>(g) as usize)
    });
    let mut held = Held {
        gates: Vec::with_capacity(shared.len()),
        abandoned: false,
    };
    if shared.is_empty() {
        return Ok(held);
    }
    let who = who();
    for plug in shared {
        let Some(gate) = plug.gate.as_deref() else {
            continue;
        };
        if gate.is_held() {
            on_wait(plug.name);
        }
        // On an error, dropping `held` gives back what was taken.
        gate.acquire(&who, plug.name, &plug.instance, abort, abort_at)?;
        held.gates.push(gate);
    }
    // Ctrl-C while the last gate came free: the phase must not start.
    if abort.reached(abort_at) {
        return Err(GateError::Aborted);
    }
    Ok(held)
}
