//! Plugs' setup and teardown, run with deadlines: each call runs on a thread of its own while
//! the run waits for it until the plug timeout, or until the run's abort (the first abort for
//! a setup, the second for a teardown); then the call is abandoned (Rust can't stop a thread)
//! and the run goes on to its record.

use std::any::Any;
use std::sync::Arc;

use crate::abort::{Abort, TEARDOWN_LEVEL};
use crate::logging;
use crate::panic_capture::catch;
use crate::plug::{Lifecycle, PLUG_WAIT, PlugEntry, PlugResult, SharedPlug};

impl PlugEntry {
    /// Calls [`Plug::setup`] on a thread of its own, giving up at `timeout` or at the first
    /// abort; the error says why it failed (an error, a panic, the deadline, the plug still held
    /// by an abandoned phase).
    pub(crate) fn set_up(&self, abort: &Abort, timeout: std::time::Duration) -> Result<(), String> {
        self.call_bounded(Lifecycle::Setup, abort, 1, timeout)
            .map_err(|e| e.to_string())
    }

    /// Calls [`Plug::teardown`] likewise (only a second abort gives up on it), logging what
    /// goes wrong.
    pub(crate) fn tear_down(
        &self,
        abort: &Abort,
        timeout: std::time::Duration,
    ) -> Result<(), String> {
        let result = self.call_bounded(Lifecycle::Teardown, abort, TEARDOWN_LEVEL, timeout);
        let name = self.name;
        result.map_err(|e| {
            let message = match &e {
                CallError::Panicked { location, message } => {
                    format!("plug `{name}` panicked tearing down at {location}: {message}")
                }
                CallError::StillInUse => format!(
                    "plug `{name}` is still in use by a phase that timed out or was aborted (waited {PLUG_WAIT:?}); its teardown was skipped"
                ),
                other => format!("plug `{name}` failed to tear down: {other}"),
            };
            tracing::error!("{message}");
            e.to_string()
        })
    }

    /// Runs a life-cycle call on a thread of its own and waits for it until `timeout`, or
    /// until the abort reaches `level`; then the call is abandoned (Rust can't stop a thread).
    fn call_bounded(
        &self,
        step: Lifecycle,
        abort: &Abort,
        level: u32,
        timeout: std::time::Duration,
    ) -> Result<(), CallError> {
        let (done_tx, done) = std::sync::mpsc::channel();
        let instance = Arc::clone(&self.instance);
        let call = self.call;
        let sink = logging::current_sink();
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let span = tracing::Span::current();
        std::thread::Builder::new()
            .name(format!("tofu-plug-{}", self.name))
            .spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let _span = span.enter();
                    logging::capture_into(sink);
                    let result = catch(|| call_when_free(&instance, call, step));
                    let _ = done_tx.send(result);
                });
            })
            .map_err(|e| CallError::NoThread(e.to_string()))?;
        let deadline = std::time::Instant::now().checked_add(timeout);
        let result = loop {
            match done.recv_timeout(crate::attempt::TICK) {
                Ok(result) => break result,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(CallError::NoThread("it ended without an answer".to_owned()));
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            if abort.reached(level) {
                return Err(CallError::Aborted);
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Err(CallError::TimedOut(timeout));
            }
        };
        match result {
            Ok(Some(Some(Ok(())))) => Ok(()),
            Ok(Some(Some(Err(e)))) => Err(CallError::Failed(e.to_string())),
            Ok(Some(None)) => Err(CallError::NotAPlug),
            Ok(None) => Err(CallError::StillInUse),
            Err(panic) => Err(CallError::Panicked {
                location: panic.location,
                message: panic.message,
            }),
        }
    }
}

/// Why a plug's setup or teardown did not succeed.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("{0}")]
    Failed(String),
    #[error("panicked at {location}: {message}")]
    Panicked { location: String, message: String },
    #[error("it is still in use by a phase that timed out or was aborted (waited {PLUG_WAIT:?})")]
    StillInUse,
    #[error("it took longer than its timeout ({0:?}) and was abandoned")]
    TimedOut(std::time::Duration),
    #[error("abandoned: the run was aborted while it ran")]
    Aborted,
    #[error("it is not a plug")]
    NotAPlug,
    #[error("can't run it on a thread of its own: {0}")]
    NoThread(String),
}

/// Calls setup or teardown, waiting up to [`PLUG_WAIT`] for a phase that still holds the plug
/// (one that was abandoned). `None` when the plug could not be had in time.
fn call_when_free(
    instance: &SharedPlug,
    call: fn(&mut (dyn Any + Send), Lifecycle) -> Option<PlugResult>,
    step: Lifecycle,
) -> Option<Option<PlugResult>> {
    let deadline = std::time::Instant::now() + PLUG_WAIT;
    loop {
        match instance.try_lock() {
            Ok(mut guard) => return Some(call(&mut **guard, step)),
            Err(std::sync::TryLockError::Poisoned(p)) => {
                return Some(call(&mut **p.into_inner(), step));
            }
            Err(std::sync::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(std::sync::TryLockError::WouldBlock) => return None,
        }
    }
}

/// Sets up `plugs` in order; stops at the first failure. Returns how many were set up, and
/// the failure (`plug `X` failed to set up: why`). `on_done` hears of each plug.
pub(crate) fn set_up_all<'p>(
    plugs: impl IntoIterator<Item = &'p PlugEntry>,
    abort: &Abort,
    timeout: std::time::Duration,
    on_done: &mut dyn FnMut(&PlugEntry, Option<&str>),
) -> (usize, Option<String>) {
    let mut count = 0;
    for plug in plugs {
        if let Err(error) = plug.set_up(abort, timeout) {
            on_done(plug, Some(&error));
            return (
                count,
                Some(format!("plug `{}` failed to set up: {error}", plug.name)),
            );
        }
        on_done(plug, None);
        count += 1;
    }
    (count, None)
}

/// Tears down `plugs`, last first, each once whatever happens to the others; none left once
/// the run was aborted twice.
pub(crate) fn tear_down_all<'p>(
    plugs: impl DoubleEndedIterator<Item = &'p PlugEntry>,
    abort: &Abort,
    timeout: std::time::Duration,
    on_done: &mut dyn FnMut(&PlugEntry, Option<&str>),
) {
    for plug in plugs.rev() {
        if abort.reached(TEARDOWN_LEVEL) {
            tracing::error!("plug `{}`: teardown skipped (aborted twice)", plug.name);
            on_done(plug, Some("skipped: aborted twice"));
            continue;
        }
        let result = plug.tear_down(abort, timeout);
        on_done(plug, result.err().as_deref());
    }
}
