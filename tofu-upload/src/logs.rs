//! A `tracing` layer that collects events as run log entries.
//!
//! The Rust counterpart of the guide's Python `logging.Handler` (captured in
//! `create_run_logs`): each event becomes a [`Log`] with the level name, the UTC time
//! with milliseconds and `Z`, the formatted message, the source file's basename and
//! the line number. The layer only collects; the user's own subscriber and its other
//! layers stay as they are.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::Utc;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use crate::types::{Log, LogLevel};

/// Where collected log entries go; clone it freely, all clones share the entries.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt as _;
/// use tofu_upload::{CreateRun, LogCollector, UnitUnderTest};
///
/// let collector = LogCollector::new();
/// let subscriber = tracing_subscriber::registry().with(collector.layer());
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!("Info message: Normal operation information");
///     tracing::warn!(rail = "VCC", "Warning: Something unexpected but not critical");
/// });
/// let logs = collector.take();
/// assert_eq!(logs.len(), 2);
/// assert_eq!(logs[1].message, "Warning: Something unexpected but not critical rail=\"VCC\"");
/// let run = CreateRun::new(UnitUnderTest::new("00007035").part_number("LOGS01"), true).logs(logs);
/// assert_eq!(run.logs.unwrap()[0].level, tofu_upload::LogLevel::Info);
/// ```
#[derive(Debug, Clone, Default)]
pub struct LogCollector {
    entries: Arc<Mutex<Vec<Log>>>,
}

impl LogCollector {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// A layer feeding this collector, with the default filter (DEBUG and above, this
    /// crate's and its HTTP stack's own events left out).
    pub fn layer(&self) -> TofuPilotLogLayer {
        TofuPilotLogLayer::new(self.clone())
    }

    /// Takes the entries collected so far, leaving the collector empty (call it per
    /// run).
    pub fn take(&self) -> Vec<Log> {
        std::mem::take(&mut *self.lock())
    }

    /// A copy of the entries collected so far.
    pub fn snapshot(&self) -> Vec<Log> {
        self.lock().clone()
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Adds an entry by hand.
    pub fn push(&self, log: Log) {
        self.lock().push(log);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Log>> {
        // A panic while holding the lock cannot leave a Vec half-pushed; keep going.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Targets whose events are not run logs: this crate's own upload messages and the
/// HTTP/TLS stack underneath it.
const DEFAULT_EXCLUDED: [&str; 7] = [
    "tofu_upload",
    "reqwest",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "tokio",
];

/// The `tracing_subscriber` layer that turns events into [`Log`] entries.
///
/// Levels map as ERROR → `ERROR`, WARN → `WARNING`, INFO → `INFO`, DEBUG and TRACE →
/// `DEBUG`. `tracing` has no level above ERROR: an ERROR event with the field
/// `critical = true` becomes `CRITICAL` (`tracing::error!(critical = true, "…")`). Fields
/// other than the message are appended as `name=value`, as `tracing`'s own formatter
/// does. Events without a file use their target as `source_file`, and line 0.
#[derive(Debug, Clone)]
pub struct TofuPilotLogLayer {
    collector: LogCollector,
    max_level: Level,
    excluded: Vec<Cow<'static, str>>,
}

impl TofuPilotLogLayer {
    /// A layer feeding `collector`, with the default filter.
    pub fn new(collector: LogCollector) -> Self {
        Self {
            collector,
            max_level: Level::DEBUG,
            excluded: DEFAULT_EXCLUDED.iter().map(|t| Cow::Borrowed(*t)).collect(),
        }
    }

    /// Collects events up to this verbosity (default DEBUG; TRACE collects all).
    pub fn max_level(mut self, level: Level) -> Self {
        self.max_level = level;
        self
    }

    /// Leaves out events whose target is `prefix` or below it (`prefix::…`).
    pub fn exclude_target(mut self, prefix: impl Into<Cow<'static, str>>) -> Self {
        self.excluded.push(prefix.into());
        self
    }

    /// Collects the default excluded targets too (this crate, reqwest, hyper, …).
    pub fn include_all_targets(mut self) -> Self {
        self.excluded.clear();
        self
    }

    fn wants(&self, level: &Level, target: &str) -> bool {
        *level <= self.max_level
            && !self.excluded.iter().any(|prefix| {
                target == prefix.as_ref()
                    || target
                        .strip_prefix(prefix.as_ref())
                        .is_some_and(|rest| rest.starts_with("::"))
            })
    }
}

impl<S: Subscriber> Layer<S> for TofuPilotLogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !self.wants(meta.level(), meta.target()) {
            return;
        }
        let mut visitor = MessageVisitor::default();
        event.record(&mut visitor);
        let source_file = meta
            .file()
            .map(|f| {
                Path::new(f)
                    .file_name()
                    .map_or_else(|| f.to_owned(), |n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| meta.target().to_owned());
        let level = match LogLevel::from(meta.level()) {
            LogLevel::Error if visitor.critical => LogLevel::Critical,
            level => level,
        };
        self.collector.push(Log {
            level,
            timestamp: Utc::now(),
            message: visitor.finish(),
            source_file,
            line_number: meta.line().unwrap_or(0),
        });
    }
}

#[derive(Default)]
struct MessageVisitor {
    message: String,
    fields: String,
    critical: bool,
}

impl MessageVisitor {
    fn finish(self) -> String {
        match (self.message.is_empty(), self.fields.is_empty()) {
            (_, true) => self.message,
            (true, false) => self.fields,
            (false, false) => format!("{} {}", self.message, self.fields),
        }
    }

    fn field(&mut self, name: &str, value: fmt::Arguments<'_>) {
        if !self.fields.is_empty() {
            self.fields.push(' ');
        }
        let _ = write!(self.fields, "{name}={value}");
    }
}

impl Visit for MessageVisitor {
    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "critical" {
            self.critical = value;
        } else {
            self.field(field.name(), format_args!("{value}"));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.field(field.name(), format_args!("{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else if !field.name().starts_with("log.") {
            self.field(field.name(), format_args!("{value:?}"));
        }
    }
}
