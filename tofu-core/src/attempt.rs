//! Running one attempt of a phase: on the executor's thread, or, when the phase has a timeout,
//! on a thread of its own that the executor stops waiting for at the deadline.
//!
//! Rust can't kill a thread. A phase that times out is abandoned, not stopped: its thread runs
//! on until the call it is blocked in returns, then ends; what it measures or attaches after the
//! deadline is discarded, and the plugs it holds stay locked until then (their teardown waits a
//! little for them, then is skipped with an error in the log). The run itself goes on at once:
//! the phase is recorded as TIMEOUT, teardowns run, the record is written.

use std::sync::mpsc;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use crate::context::PhaseContext;
use crate::logging;
use crate::measurement::Slot;
use crate::panic_capture::{Panic, catch};
use crate::phase::{Phase, PhaseReturn};
use crate::plug::{PlugEntry, PlugSet};

/// How an attempt ended: `None` when it ran out of time.
pub(crate) type Returned = Option<Result<PhaseReturn, Panic>>;

/// Runs one attempt of `phase` with its plugs locked and lent to it.
pub(crate) fn run(
    phase: &Phase,
    mut ctx: PhaseContext,
    mut slots: Vec<Slot>,
    plugs: &[&PlugEntry],
    timeout: Option<Duration>,
) -> (Returned, PhaseContext, Vec<Slot>) {
    let Some(timeout) = timeout else {
        let returned = with_plugs(
            plugs
                .iter()
                .map(|p| (p.type_id, p.name, Arc::clone(&p.instance)))
                .collect(),
            |set| catch(|| phase.run(&mut ctx, &mut slots, set)),
        );
        return (Some(returned), ctx, slots);
    };
    let fresh_ctx = PhaseContext::new(ctx.serial_number(), ctx.phase_name(), ctx.attempt());
    let fresh_slots: Vec<Slot> = slots.iter().map(Slot::emptied).collect();
    let (done, result) = mpsc::sync_channel(1);
    let sink = logging::current_sink();
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let phase = phase.clone();
    let plugs: Vec<_> = plugs
        .iter()
        .map(|p| (p.type_id, p.name, Arc::clone(&p.instance)))
        .collect();
    let spawned = std::thread::Builder::new()
        .name(format!("phase {}", phase.name()))
        .spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                logging::capture_into(sink);
                let returned =
                    with_plugs(plugs, |set| catch(|| phase.run(&mut ctx, &mut slots, set)));
                logging::capture_into(None);
                let _ = done.send((returned, ctx, slots));
            });
        });
    if let Err(e) = spawned {
        let error = PhaseReturn::Error {
            type_name: "ThreadSpawnError".into(),
            message: e.to_string(),
        };
        return (Some(Ok(error)), fresh_ctx, fresh_slots);
    }
    match result.recv_timeout(timeout) {
        Ok((returned, ctx, slots)) => (Some(returned), ctx, slots),
        Err(_) => (None, fresh_ctx, fresh_slots),
    }
}

/// Locks the plugs, lends them to `body`, unlocks them.
fn with_plugs<R>(
    plugs: Vec<(std::any::TypeId, &'static str, crate::plug::SharedPlug)>,
    body: impl FnOnce(&mut PlugSet<'_>) -> R,
) -> R {
    let mut guards: Vec<_> = plugs
        .iter()
        .map(|(id, name, m)| (*id, *name, m.lock().unwrap_or_else(PoisonError::into_inner)))
        .collect();
    let mut set = PlugSet::new(
        guards
            .iter_mut()
            .map(|(id, name, g)| (*id, *name, &mut ***g))
            .collect(),
    );
    body(&mut set)
}
