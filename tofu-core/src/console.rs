//! The console: an observer of a test's or a station's events that prints a line per phase a
//! station's slot finishes, the run's summary, and a station's batch summary (`summary.rs`
//! renders them). It runs on a thread of its own, so a console that blocks (a full pipe, a
//! paused terminal) never holds up a run; the front waits a bounded time for it to catch up
//! before it returns.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::bus::{EventBus, Received};
use crate::event::{Event, EventKind};
use crate::execution::OutputStatus;
use crate::record::TestRecord;
use crate::summary::{self, Ran};

/// How many events the console may fall behind before it says it missed some.
const CONSOLE_QUEUE: usize = 1 << 16;

/// How long the front waits for the console to print a run's last lines.
const CATCH_UP: Duration = Duration::from_secs(5);

/// What the console prints.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConsoleOptions {
    /// A line per phase of a station's slot.
    pub(crate) progress: bool,
    /// The summary of a lone test's run.
    pub(crate) summary: bool,
    /// The summary of a station's batch.
    pub(crate) batch: bool,
    /// On stderr rather than stdout (when stdout carries data, such as events).
    pub(crate) stderr: bool,
}

/// The console observer of one bus.
#[derive(Debug)]
pub(crate) struct Console {
    printed: Arc<(Mutex<u64>, Condvar)>,
}

/// A slot's run as the console saw it.
#[derive(Default)]
struct SlotSeen {
    name: String,
    serial: String,
    record: Option<Arc<TestRecord>>,
    outputs: Vec<OutputStatus>,
}

impl Console {
    /// Starts the console's thread, subscribed to `bus`.
    pub(crate) fn start(bus: &Arc<EventBus>, options: ConsoleOptions) -> Console {
        let printed = Arc::new((Mutex::new(0), Condvar::new()));
        let subscription = bus.subscribe_quietly(CONSOLE_QUEUE);
        let shared = Arc::clone(&printed);
        let spawned = std::thread::Builder::new()
            .name("tofu-console".into())
            .spawn(move || {
                let mut slots: HashMap<Option<usize>, SlotSeen> = HashMap::new();
                while let Some(received) = subscription.recv() {
                    let seq = match received {
                        Received::Missed(n) => {
                            write(
                                options,
                                &format!("(the console fell behind: {n} events not shown)\n"),
                            );
                            continue;
                        }
                        Received::Event(event) => {
                            show(&event, options, &mut slots);
                            event.seq
                        }
                    };
                    let (lock, cv) = &*shared;
                    *lock.lock().unwrap_or_else(PoisonError::into_inner) = seq;
                    cv.notify_all();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("no console summary: can't start its thread: {e}");
        }
        Console { printed }
    }

    /// Waits until the console has printed up to event `seq` (a few seconds at most).
    pub(crate) fn catch_up(&self, seq: u64) {
        let deadline = Instant::now() + CATCH_UP;
        let (lock, cv) = &*self.printed;
        let mut printed = lock.lock().unwrap_or_else(PoisonError::into_inner);
        while *printed < seq {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            printed = cv
                .wait_timeout(printed, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

fn show(event: &Event, options: ConsoleOptions, slots: &mut HashMap<Option<usize>, SlotSeen>) {
    let seen = slots.entry(event.slot).or_default();
    match &event.kind {
        EventKind::RunStarted {
            serial_number,
            slot_name,
            ..
        } => {
            *seen = SlotSeen {
                name: slot_name.clone().unwrap_or_default(),
                serial: serial_number.clone(),
                ..SlotSeen::default()
            };
        }
        EventKind::UnitIdentified { serial_number } => seen.serial = serial_number.clone(),
        EventKind::PhaseEnded { record, .. } if options.progress && event.slot.is_some() => {
            println!(
                "{}",
                summary::progress_line(&seen.name, &seen.serial, record)
            );
        }
        EventKind::RunEnded { record } => seen.record = Some(Arc::clone(record)),
        EventKind::OutputDone {
            name,
            location,
            error,
        } => seen.outputs.push(OutputStatus {
            name: name.clone(),
            result: error.clone().map_or_else(|| Ok(location.clone()), Err),
            elapsed: None,
        }),
        EventKind::RunClosed if options.summary && event.slot.is_none() => {
            if let Some(record) = &seen.record {
                let color = !options.stderr && summary::stdout_has_color();
                write(options, &summary::render(record, &seen.outputs, color));
            }
        }
        EventKind::BatchEnded {
            synchronized,
            millis,
        } if options.batch => {
            let mut ran: Vec<(usize, &SlotSeen)> = slots
                .iter()
                .filter_map(|(slot, seen)| Some(((*slot)?, seen)))
                .filter(|(_, seen)| seen.record.is_some())
                .collect();
            ran.sort_by_key(|(slot, _)| *slot);
            let lines: Vec<Ran<'_>> = ran
                .iter()
                .filter_map(|(_, seen)| {
                    Some(Ran {
                        record: seen.record.as_deref()?,
                        outputs: &seen.outputs,
                    })
                })
                .collect();
            write(
                options,
                &summary::render_batch(&lines, *synchronized, *millis),
            );
        }
        _ => {}
    }
}

fn write(options: ConsoleOptions, text: &str) {
    if options.stderr {
        let _ = std::io::stderr().write_all(text.as_bytes());
    } else {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}
