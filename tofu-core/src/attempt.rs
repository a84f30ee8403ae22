//! Running one attempt of a phase. A phase without a timeout runs on the executor's thread
//! (nothing is faster); one with a timeout runs on the run's worker thread while the executor
//! waits for it with an eye on the deadline and on Ctrl-C. Ctrl-C interrupts a phase without a
//! timeout when it returns, or at once when it waits in `PhaseContext::sleep`: give long or
//! risky phases a timeout (or the test a default one, `Test::phase_timeout`), or have them wait
//! with `sleep`, so that Ctrl-C stops them at once.
//!
//! Rust can't kill a thread. A phase that times out or is aborted is abandoned, not stopped:
//! its worker runs on until the call it is blocked in returns, then ends; what the phase
//! measures or attaches after that is discarded, and the plugs it holds stay locked until then
//! (their teardown waits a little for them, then is skipped with an error in the log). The run
//! goes on at once with a new worker.

use std::any::TypeId;
use std::sync::PoisonError;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::abort;
use crate::context::PhaseContext;
use crate::logging;
use crate::measurement::Slot;
use crate::panic_capture::{Panic, catch};
use crate::phase::{Phase, PhaseReturn};
use crate::plug::{PlugEntry, PlugSet, SharedPlug};

/// How an attempt ended.
pub(crate) enum Ended {
    /// The phase returned (or panicked).
    Returned(Result<PhaseReturn, Panic>),
    /// It ran out of time.
    TimedOut,
    /// The operator pressed Ctrl-C.
    Aborted,
}

type Plugs = Vec<(TypeId, &'static str, SharedPlug)>;
type Job = (Phase, PhaseContext, Vec<Slot>, Plugs);
type Done = (Result<PhaseReturn, Panic>, PhaseContext, Vec<Slot>);

/// The thread that runs a run's phases, one after the other.
pub(crate) struct Worker {
    jobs: mpsc::Sender<Job>,
    done: mpsc::Receiver<Done>,
}

impl Worker {
    /// A worker whose phases log into this thread's subscriber and capture.
    fn start() -> std::io::Result<Worker> {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel::<Done>();
        let sink = logging::current_sink();
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        // A station slot's span, so the phase's console lines name the slot.
        let span = tracing::Span::current();
        std::thread::Builder::new()
            .name("tofu-phases".into())
            .spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let _span = span.enter();
                    logging::capture_into(sink);
                    while let Ok((phase, mut ctx, mut slots, plugs)) = job_rx.recv() {
                        let returned = with_plugs(plugs, |set| {
                            // Given up on while it waited for its plugs: it must not run now,
                            // outside its slot's hold on a shared plug.
                            if ctx.stop.load(std::sync::atomic::Ordering::Relaxed) {
                                return Ok(PhaseReturn::Result(crate::PhaseResult::Skip));
                            }
                            catch(|| phase.run(&mut ctx, &mut slots, set))
                        });
                        if done_tx.send((returned, ctx, slots)).is_err() {
                            break;
                        }
                    }
                });
            })?;
        Ok(Worker { jobs, done })
    }
}

/// Runs one attempt of `phase`, with its plugs locked and lent to it: inline without a
/// timeout, else on `worker` (started if needed), giving up at `timeout` or when Ctrl-C has
/// been pressed `ctx.abort_at` times; the worker is then abandoned, and the context and slots
/// returned are empty ones.
pub(crate) fn run(
    worker: &mut Option<Worker>,
    phase: &Phase,
    ctx: PhaseContext,
    slots: Vec<Slot>,
    plugs: &[&PlugEntry],
    timeout: Option<Duration>,
) -> (Ended, PhaseContext, Vec<Slot>) {
    let abort_at = ctx.abort_at;
    let plugs: Plugs = plugs
        .iter()
        .map(|p| (p.type_id, p.name, std::sync::Arc::clone(&p.instance)))
        .collect();
    let Some(timeout) = timeout else {
        let (mut ctx, mut slots) = (ctx, slots);
        let returned = with_plugs(plugs, |set| catch(|| phase.run(&mut ctx, &mut slots, set)));
        return returned_or_aborted(returned, ctx, slots);
    };
    let fresh_ctx = ctx.fresh();
    let stop = std::sync::Arc::clone(&ctx.stop);
    let give_up = |ended: Ended| {
        // Tell the phase, should it look (`PhaseContext::sleep`, `should_stop`).
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        ended
    };
    let fresh_slots: Vec<Slot> = slots.iter().map(Slot::emptied).collect();
    let active = match worker.take() {
        Some(w) => w,
        None => match Worker::start() {
            Ok(w) => w,
            Err(e) => {
                let error = PhaseReturn::Error {
                    type_name: "ThreadSpawnError".into(),
                    message: e.to_string(),
                };
                return (Ended::Returned(Ok(error)), fresh_ctx, fresh_slots);
            }
        },
    };
    if active
        .jobs
        .send((phase.clone(), ctx, slots, plugs))
        .is_err()
    {
        return (worker_stopped(), fresh_ctx, fresh_slots);
    }
    // A timeout too large for the clock is no deadline.
    let deadline = Instant::now().checked_add(timeout);
    loop {
        let wait = Duration::from_millis(20).min(deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(Instant::now())
        }));
        match active.done.recv_timeout(wait) {
            Ok((returned, ctx, slots)) => {
                *worker = Some(active);
                return returned_or_aborted(returned, ctx, slots);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return (give_up(Ended::TimedOut), fresh_ctx, fresh_slots);
                }
                if abort::presses() >= abort_at {
                    return (give_up(Ended::Aborted), fresh_ctx, fresh_slots);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return (worker_stopped(), fresh_ctx, fresh_slots);
            }
        }
    }
}

/// What the phase returned; aborted if Ctrl-C cut it short in `PhaseContext::sleep` (not an
/// error of the phase).
fn returned_or_aborted(
    returned: Result<PhaseReturn, Panic>,
    ctx: PhaseContext,
    slots: Vec<Slot>,
) -> (Ended, PhaseContext, Vec<Slot>) {
    if ctx.was_stopped() && abort::presses() >= ctx.abort_at {
        (Ended::Aborted, ctx, slots)
    } else {
        (Ended::Returned(returned), ctx, slots)
    }
}

/// The worker thread is gone.
fn worker_stopped() -> Ended {
    Ended::Returned(Ok(PhaseReturn::Error {
        type_name: "WorkerError".into(),
        message: "the phase thread has stopped".into(),
    }))
}

/// Locks the plugs, lends them to `body`, unlocks them.
fn with_plugs<R>(plugs: Plugs, body: impl FnOnce(&mut PlugSet<'_>) -> R) -> R {
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
