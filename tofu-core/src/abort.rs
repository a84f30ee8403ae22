//! Ctrl-C: the first press aborts the run (a running phase with a timeout is abandoned at once,
//! one without when it returns; teardowns run; the record is written and handed to the
//! outputs); a second press skips the teardowns too, and the record is still written; a third
//! quits at once, for a phase blocked forever without a timeout.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

static PRESSES: AtomicU32 = AtomicU32::new(0);

/// Gets Ctrl-C ready for a new run: the handler installed (once per process) and the presses
/// counted afresh. Nothing when the program has a handler of its own.
pub(crate) fn arm() {
    if install() {
        reset();
    }
}

/// Installs the Ctrl-C handler once per process. False when the program has a handler of its
/// own (then Ctrl-C is the program's business, and runs can't be aborted by it).
fn install() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let installed = ctrlc::set_handler(|| match PRESSES.fetch_add(1, Ordering::SeqCst) + 1 {
            1 => eprintln!("\nCtrl-C: aborting the run; teardowns run and the record is written (Ctrl-C again skips teardown)"),
            2 => eprintln!("\nCtrl-C again: teardown skipped; the record is still written (a third Ctrl-C quits at once)"),
            _ => {
                eprintln!("\nCtrl-C a third time: quitting now; this run's record is NOT written");
                std::process::exit(130);
            }
        });
        if let Err(e) = &installed {
            tracing::warn!("Ctrl-C can't abort runs: {e}");
        }
        installed.is_ok()
    })
}

/// Starts counting presses afresh, for a new run.
fn reset() {
    PRESSES.store(0, Ordering::SeqCst);
}

/// How many times Ctrl-C was pressed during this run.
pub(crate) fn presses() -> u32 {
    PRESSES.load(Ordering::SeqCst)
}
