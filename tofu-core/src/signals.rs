//! Ctrl-C, SIGTERM and SIGHUP (systemd, `docker stop`, a station manager, a closed terminal):
//! each is a press on the [`Abort`] of every run under way in the process. The first press
//! aborts the runs, the second skips their teardowns (records are still written), the third
//! quits at once. With no run under way, the process quits at once, as it would without tofu.
//!
//! Signals are the process's, so the route to the runs is process-wide: a list of the runs
//! watching. What a press means belongs to each run's own `Abort`.

use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use crate::abort::Abort;

/// The aborts of the runs under way.
static WATCHED: Mutex<Vec<Weak<Abort>>> = Mutex::new(Vec::new());

/// While it lives, signals press `abort`.
#[derive(Debug)]
pub(crate) struct Watch {
    abort: Weak<Abort>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watched = WATCHED.lock().unwrap_or_else(PoisonError::into_inner);
        watched.retain(|w| w.strong_count() > 0 && !w.ptr_eq(&self.abort));
    }
}

/// Routes the process's Ctrl-C, SIGTERM and SIGHUP to `abort` until the `Watch` is dropped.
/// Nothing when the program has a handler of its own (the signals are then its business).
pub(crate) fn watch(abort: &Arc<Abort>) -> Watch {
    let weak = Arc::downgrade(abort);
    if install() {
        WATCHED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(weak.clone());
    }
    Watch { abort: weak }
}

/// Installs the handler once per process. False when the program has one of its own.
fn install() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let installed = ctrlc::set_handler(on_signal);
        if let Err(e) = &installed {
            tracing::warn!("Ctrl-C, SIGTERM and SIGHUP can't abort runs: {e}");
        }
        installed.is_ok()
    })
}

fn on_signal() {
    let runs: Vec<Arc<Abort>> = WATCHED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    let presses = runs.iter().map(|abort| abort.press()).max().unwrap_or(0);
    match presses {
        0 => {
            eprintln!("\nCtrl-C: no run under way; quitting");
            std::process::exit(130);
        }
        1 => eprintln!(
            "\nCtrl-C: aborting the run; teardowns run and the record is written (Ctrl-C again skips teardown)"
        ),
        2 => eprintln!(
            "\nCtrl-C again: teardown skipped; the record is still written (a third Ctrl-C quits at once)"
        ),
        _ => {
            eprintln!(
                "\nCtrl-C a third time: quitting now; the run's journal keeps what ran, and the next start records it"
            );
            std::process::exit(130);
        }
    }
}
