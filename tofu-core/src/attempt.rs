//! Running one attempt of a phase. Every phase runs on the run's worker thread (with a generous
//! stack, for deep recursion in a parser) while the executor waits for it with an eye on the
//! deadline and on the run's abort, so a phase is given up on at once at its timeout or at an
//! abort, whatever it is blocked in.
//!
//! Rust can't kill a thread. A phase that times out or is aborted is abandoned, not stopped:
//! its worker runs on until the call it is blocked in returns, then ends. What the phase
//! measured and attached before it was given up on is kept (the values live in slots the
//! executor shares); what it does after that is not taken. The plugs it holds stay locked until
//! it returns; whoever needs them next waits a little for them, then gives up with an error
//! naming them. The run goes on at once with a new worker.

use std::any::TypeId;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::abort::Abort;
use crate::context::PhaseContext;
use crate::desk::Waiting;
use crate::logging;
use crate::measurement::Slot;
use crate::panic_capture::{Panic, catch};
use crate::phase::{Phase, PhaseReturn};
use crate::plug::{PLUG_WAIT, PlugEntry, PlugSet, SharedPlug};
use crate::prompt;

/// The worker's stack: deep recursion (a parser, a big nested structure) fits.
const WORKER_STACK: usize = 64 << 20;

/// How often the executor looks up from its wait (abort, deadline, live events).
pub(crate) const TICK: Duration = Duration::from_millis(20);

/// How an attempt ended.
pub(crate) enum Ended {
    /// The phase returned (or panicked).
    Returned(Result<PhaseReturn, Panic>),
    /// It ran out of time.
    TimedOut,
    /// The run was aborted.
    Aborted,
}

type Plugs = Vec<(TypeId, &'static str, SharedPlug)>;
/// A phase to run, and whether the worker then spins for the next one (see [`JOB_SPIN`]).
type Job = (Phase, PhaseContext, Vec<Slot>, Plugs, bool);
type Done = (Result<PhaseReturn, Panic>, PhaseContext);

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
            .stack_size(WORKER_STACK)
            .spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let _span = span.enter();
                    logging::capture_into(sink);
                    let mut spin = false;
                    while let Some((phase, mut ctx, mut slots, plugs, next)) =
                        next_job(&job_rx, spin)
                    {
                        spin = next;
                        let returned = run_job(&phase, &mut ctx, &mut slots, plugs);
                        if done_tx.send((returned, ctx)).is_err() {
                            break;
                        }
                    }
                });
            })?;
        Ok(Worker { jobs, done })
    }
}

/// How long the run spins for a phase to return before it sleeps. Waking a sleeping thread
/// costs a thread switch each way (several microseconds, more in a virtual machine); a phase
/// that returns within this time is handed back without one.
const SPIN: Duration = Duration::from_micros(50);

/// How long the worker spins for its next job, when the run has little to do between two
/// phases (a few microseconds: nobody observes it, no journal). When it has more, the worker
/// sleeps at once and leaves the CPU to the observers: spinning then would take it from them
/// (a yield hands it over for a whole time slice), and the hand-off would wait for that.
const JOB_SPIN: Duration = Duration::from_micros(20);

/// Waits for a message: spins [`SPIN`] at most (yielding the CPU between looks), then sleeps
/// until it comes or `timeout` passes (`Timeout`); `Disconnected`: the other side is gone.
fn receive<T>(rx: &mpsc::Receiver<T>, timeout: Duration) -> Result<T, mpsc::RecvTimeoutError> {
    let start = Instant::now();
    let spin = SPIN.min(timeout);
    loop {
        for _ in 0..64 {
            match rx.try_recv() {
                Ok(message) => return Ok(message),
                Err(mpsc::TryRecvError::Disconnected) => {
                    return Err(mpsc::RecvTimeoutError::Disconnected);
                }
                Err(mpsc::TryRecvError::Empty) => std::hint::spin_loop(),
            }
        }
        let spent = start.elapsed();
        if spent >= spin {
            return rx.recv_timeout(timeout.saturating_sub(spent));
        }
        // Spinning must not keep the other thread from the CPU it needs to answer.
        std::thread::yield_now();
    }
}

/// The worker's next job (`None`: the run is over); `spin`: spin for it first.
fn next_job(jobs: &mpsc::Receiver<Job>, spin: bool) -> Option<Job> {
    if !spin {
        return jobs.recv().ok();
    }
    match receive(jobs, JOB_SPIN) {
        Ok(job) => Some(job),
        Err(mpsc::RecvTimeoutError::Timeout) => jobs.recv().ok(),
        Err(mpsc::RecvTimeoutError::Disconnected) => None,
    }
}

/// Runs the phase with its plugs, on the worker.
fn run_job(
    phase: &Phase,
    ctx: &mut PhaseContext,
    slots: &mut [Slot],
    plugs: Plugs,
) -> Result<PhaseReturn, Panic> {
    let stop = std::sync::Arc::clone(&ctx.stop);
    let locked = lock_plugs(&plugs, || stop.load(Ordering::Relaxed));
    let mut guards = match locked {
        Ok(guards) => guards,
        Err(error) => return Ok(error),
    };
    // Given up on while it waited for its plugs: it must not run now.
    if stop.load(Ordering::Relaxed) {
        return Ok(PhaseReturn::Result(crate::PhaseResult::Skip));
    }
    let mut set = PlugSet::new(
        guards
            .iter_mut()
            .map(|(id, name, g)| (*id, *name, &mut ***g))
            .collect(),
    );
    // The phase's questions go to its run's desk and end with its abort or its timeout.
    let asking = prompt::AskContext {
        desk: Arc::clone(&ctx.desk),
        waiting: Waiting {
            abort: Arc::clone(&ctx.abort),
            level: ctx.abort_at,
            stop: Some(Arc::clone(&ctx.stop)),
        },
    };
    prompt::asking(asking, || catch(|| phase.run(ctx, slots, &mut set)))
}

type Guards<'p> = Vec<(
    TypeId,
    &'static str,
    MutexGuard<'p, Box<dyn std::any::Any + Send>>,
)>;

/// Locks the plugs. A plug still held by an abandoned phase is waited for [`PLUG_WAIT`] at
/// most; then the phase is an error naming the plug.
fn lock_plugs<'p>(plugs: &'p Plugs, stopped: impl Fn() -> bool) -> Result<Guards<'p>, PhaseReturn> {
    let deadline = Instant::now() + PLUG_WAIT;
    let mut guards = Vec::with_capacity(plugs.len());
    for (id, name, plug) in plugs {
        let guard = loop {
            match plug.try_lock() {
                Ok(guard) => break guard,
                Err(TryLockError::Poisoned(p)) => break p.into_inner(),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline && !stopped() => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(PhaseReturn::Error {
                        type_name: "PlugUnavailable".into(),
                        message: format!(
                            "the plug `{name}` is still held by a phase that was abandoned (timed out or aborted); waited {PLUG_WAIT:?}, this phase was not run"
                        ),
                    });
                }
            }
        };
        guards.push((*id, *name, guard));
    }
    Ok(guards)
}

/// What one attempt is given.
pub(crate) struct Attempt<'a> {
    pub(crate) phase: &'a Phase,
    pub(crate) ctx: PhaseContext,
    pub(crate) slots: Vec<Slot>,
    pub(crate) plugs: &'a [&'a PlugEntry],
    pub(crate) timeout: Option<Duration>,
    /// The run will have little to do before its next phase: the worker may spin for it.
    pub(crate) quick_turnaround: bool,
}

/// Runs one attempt on `worker` (started if needed) and waits for it, giving up at the
/// timeout or when the run's abort reaches the context's level; `tick` is called every
/// [`TICK`] while the phase runs (for live events). A worker given up on is abandoned.
pub(crate) fn run(
    worker: &mut Option<Worker>,
    attempt: Attempt<'_>,
    abort: &Abort,
    tick: &mut dyn FnMut(),
) -> Ended {
    let Attempt {
        phase,
        ctx,
        slots,
        plugs,
        timeout,
        quick_turnaround,
    } = attempt;
    let abort_at = ctx.abort_at;
    let stop = std::sync::Arc::clone(&ctx.stop);
    let give_up = |ended: Ended| {
        // Tell the phase, should it look (`PhaseContext::sleep`, `should_stop`).
        stop.store(true, Ordering::Relaxed);
        ended
    };
    let plugs: Plugs = plugs
        .iter()
        .map(|p| (p.type_id, p.name, std::sync::Arc::clone(&p.instance)))
        .collect();
    let active = match worker.take() {
        Some(w) => w,
        None => match Worker::start() {
            Ok(w) => w,
            Err(e) => {
                return Ended::Returned(Ok(PhaseReturn::Error {
                    type_name: "ThreadSpawnError".into(),
                    message: format!("can't start the thread phases run on: {e}"),
                }));
            }
        },
    };
    if active
        .jobs
        .send((phase.clone(), ctx, slots, plugs, quick_turnaround))
        .is_err()
    {
        return worker_stopped();
    }
    // A timeout too large for the clock is no deadline.
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        let wait = deadline.map_or(TICK, |d| {
            TICK.min(d.saturating_duration_since(Instant::now()))
        });
        match receive(&active.done, wait) {
            Ok((returned, _ctx)) => {
                *worker = Some(active);
                // Aborted while it ran (cut short in `PhaseContext::sleep` or a prompt, or just
                // as it returned): the run is aborted, whatever the phase made of it.
                if abort.reached(abort_at) {
                    return Ended::Aborted;
                }
                return Ended::Returned(returned);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return give_up(Ended::TimedOut);
                }
                if abort.reached(abort_at) {
                    return give_up(Ended::Aborted);
                }
                tick();
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return worker_stopped(),
        }
    }
}

/// The worker thread is gone.
fn worker_stopped() -> Ended {
    Ended::Returned(Ok(PhaseReturn::Error {
        type_name: "WorkerError".into(),
        message: "the phase thread has stopped".into(),
    }))
}
