//! Capture of `tracing` events into the run's record.
//!
//! The executor records the events emitted on the thread that runs the phases, through a
//! [`layer`] in the subscriber. When no global subscriber is set, the executor uses its own for
//! the duration of the run (console output on stderr through `tracing-subscriber`'s `fmt`, filtered by
//! `RUST_LOG`, `info` by default, plus capture), so nothing global is taken from the user. A
//! user with a subscriber of their own adds [`layer`] to it:
//!
//! ```
//! use tracing_subscriber::prelude::*;
//! tracing_subscriber::registry()
//!     .with(tracing_subscriber::fmt::layer())
//!     .with(tofu_core::logging::layer())
//!     .init();
//! ```

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::emitter::Emitter;
use crate::event::EventKind;
use crate::record::LogRecord;

thread_local! {
    static SINK: RefCell<Option<SharedSink>> = const { RefCell::new(None) };
}

/// Where a run's events go; shared with the threads that run its phases.
pub(crate) type SharedSink = Arc<Mutex<Sink>>;

pub(crate) struct Sink {
    records: Vec<LogRecord>,
    phase: Option<String>,
    max_level: Level,
    /// The run's events, which each log record becomes too.
    events: Option<Arc<Emitter>>,
}

/// The layer that records events into the running test's record. Add it to your own
/// subscriber if you set one; see the [module docs](self).
pub fn layer() -> CaptureLayer {
    CaptureLayer { _private: () }
}

/// See [`layer`].
#[derive(Debug, Clone)]
pub struct CaptureLayer {
    _private: (),
}

impl<S: Subscriber> Layer<S> for CaptureLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let Some(shared) = SINK.with(|sink| sink.try_borrow().ok().and_then(|s| s.clone())) else {
            return;
        };
        let published = {
            let mut sink = shared.lock().unwrap_or_else(PoisonError::into_inner);
            let meta = event.metadata();
            if *meta.level() > sink.max_level {
                return;
            }
            let mut visitor = MessageVisitor::default();
            event.record(&mut visitor);
            let file = meta.file().unwrap_or("");
            let source = file.rsplit(['/', '\\']).next().unwrap_or(file);
            let phase = sink.phase.clone();
            let record = LogRecord {
                level: python_level(*meta.level()),
                logger_name: meta.target().to_owned(),
                source: source.to_owned(),
                lineno: meta.line().unwrap_or(0),
                timestamp_millis: crate::clock::now_millis(),
                message: visitor.finish(),
                phase,
            };
            let published = sink.events.clone().map(|events| (events, record.clone()));
            sink.records.push(record);
            published
        };
        // Outside the sink's lock: publishing may log.
        if let Some((events, record)) = published {
            events.emit(EventKind::Log { record });
        }
    }
}

/// Python's logging level numbers, as OpenHTF records them.
fn python_level(level: Level) -> u8 {
    match level {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG => 10,
        Level::TRACE => 5,
    }
}

#[derive(Default)]
struct MessageVisitor {
    message: String,
    fields: String,
}

impl MessageVisitor {
    fn finish(mut self) -> String {
        if !self.fields.is_empty() {
            if !self.message.is_empty() {
                self.message.push(' ');
            }
            self.message.push_str(&self.fields);
        }
        self.message
    }
}

impl Visit for MessageVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.record_debug(field, &format_args!("{value}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            if !self.fields.is_empty() {
                self.fields.push(' ');
            }
            let _ = write!(self.fields, "{}={value:?}", field.name());
        }
    }
}

/// Starts capturing events on this thread, at `max_level` and below; each also becomes a
/// `log` event of `events`.
pub(crate) fn start_capture(max_level: Level, events: Option<Arc<Emitter>>) {
    let sink = Sink {
        records: Vec::new(),
        phase: None,
        max_level,
        events,
    };
    SINK.with(|s| *s.borrow_mut() = Some(Arc::new(Mutex::new(sink))));
}

/// The sink of the run on this thread, to capture the events of another thread into it.
pub(crate) fn current_sink() -> Option<SharedSink> {
    SINK.with(|s| s.borrow().clone())
}

/// Captures this thread's events into `sink` (for a thread that runs a phase).
pub(crate) fn capture_into(sink: Option<SharedSink>) {
    SINK.with(|s| *s.borrow_mut() = sink);
}

/// Names the phase that events now belong to.
pub(crate) fn set_phase(phase: Option<&str>) {
    if let Some(sink) = current_sink() {
        sink.lock().unwrap_or_else(PoisonError::into_inner).phase = phase.map(str::to_owned);
    }
}

/// Stops capturing and returns what was captured.
pub(crate) fn finish_capture() -> Vec<LogRecord> {
    let Some(sink) = SINK.with(|s| s.borrow_mut().take()) else {
        return Vec::new();
    };
    std::mem::take(&mut sink.lock().unwrap_or_else(PoisonError::into_inner).records)
}

/// Runs `f` with a subscriber that captures events: the current one if it has the capture
/// layer, else (when no global subscriber was set) a console + capture subscriber of our own.
/// Returns whether capture is active.
pub(crate) fn with_capturing_subscriber<R>(f: impl FnOnce(bool) -> R) -> R {
    let (has_layer, has_subscriber) = tracing::dispatcher::get_default(|d| {
        (
            d.downcast_ref::<CaptureLayer>().is_some(),
            !d.is::<tracing::subscriber::NoSubscriber>(),
        )
    });
    if has_layer {
        return f(true);
    }
    if has_subscriber {
        return f(false);
    }
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let subscriber = tracing_subscriber::registry().with(layer()).with(
        tracing_subscriber::fmt::layer()
            .with_target(false)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(filter),
    );
    tracing::subscriber::with_default(subscriber, || f(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::prelude::*;

    #[test]
    fn events_are_captured_with_level_source_and_fields() {
        let subscriber = tracing_subscriber::registry().with(layer());
        tracing::subscriber::with_default(subscriber, || {
            start_capture(Level::DEBUG, None);
            set_phase(Some("power_on"));
            tracing::info!(volts = 5.02, "rail up");
            tracing::trace!("not captured at DEBUG");
            set_phase(None);
            tracing::warn!("between phases");
            let records = finish_capture();
            assert_eq!(records.len(), 2);
            assert_eq!(records[0].level, 20);
            assert_eq!(records[0].message, "rail up volts=5.02");
            assert_eq!(records[0].source, "logging.rs");
            assert_eq!(records[0].phase.as_deref(), Some("power_on"));
            assert!(records[0].lineno > 0);
            assert_eq!((records[1].level, records[1].phase.as_deref()), (30, None));
        });
    }

    #[test]
    fn nothing_is_captured_outside_a_run() {
        let subscriber = tracing_subscriber::registry().with(layer());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("no run");
            start_capture(Level::INFO, None);
            assert!(finish_capture().is_empty());
        });
    }
}
