//! A run's way out for its events: the bus of its test or station (the observers), and its
//! journal.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::bus::EventBus;
use crate::event::EventKind;
use crate::journal::Journal;
use crate::record::{PhaseRecord, TestRecord};
use crate::record_json::PhasesJson;

/// Publishes a run's events, numbered by the bus, and appends them to the run's journal.
#[derive(Debug)]
pub(crate) struct Emitter {
    bus: Arc<EventBus>,
    slot: Option<usize>,
    journal: Mutex<Option<Journal>>,
    /// Each phase's JSON as the journal wrote it, in the order of the record's phases (none
    /// without a journal): the JSON record writes them again as they are.
    phase_json: Mutex<PhasesJson>,
}

impl Emitter {
    pub(crate) fn new(bus: Arc<EventBus>, slot: Option<usize>) -> Self {
        Emitter {
            bus,
            slot,
            journal: Mutex::new(None),
            phase_json: Mutex::new(PhasesJson::default()),
        }
    }

    /// Whether detailed events (each measurement, live points) are worth building: someone
    /// observes.
    pub(crate) fn is_observed(&self) -> bool {
        self.bus.is_observed()
    }

    /// Whether a phase's end keeps more than the run busy: an observer's thread taking the
    /// events, a journal line to write. (A history reader, such as the station page, reads
    /// the bus's history in its own time: the run only builds the events.)
    pub(crate) fn is_busy(&self) -> bool {
        self.bus.is_subscribed() || self.journal().is_some()
    }

    /// Wakes the subscribers that have events waiting (a running phase's detail).
    pub(crate) fn wake_subscribers(&self) {
        self.bus.wake_subscribers();
    }

    pub(crate) fn set_journal(&self, journal: Journal) {
        *self.journal() = Some(journal);
    }

    fn journal(&self) -> MutexGuard<'_, Option<Journal>> {
        self.journal.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes one event; returns its sequence number.
    pub(crate) fn emit(&self, kind: EventKind) -> u64 {
        self.emit_all([kind])
    }

    /// Publishes several events at once (one look at the bus); returns the last one's
    /// sequence number.
    pub(crate) fn emit_all(&self, kinds: impl IntoIterator<Item = EventKind>) -> u64 {
        let mut journal = self.journal();
        let Some(journal) = journal.as_mut() else {
            return self.bus.publish_all(self.slot, kinds, None);
        };
        let mut copies = Vec::new();
        let seq = self.bus.publish_all(self.slot, kinds, Some(&mut copies));
        for event in &copies {
            journal.event(event);
        }
        seq
    }

    /// A phase attempt ended: its event, and its full record in the journal.
    pub(crate) fn phase_ended(&self, index: usize, record: &Arc<PhaseRecord>) {
        if let Some(journal) = self.journal().as_mut() {
            let mut kept = self
                .phase_json
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let PhasesJson { bytes, phases } = &mut *kept;
            phases.push(journal.phase(record, bytes));
        }
        self.emit(EventKind::PhaseEnded {
            index,
            record: Arc::clone(record),
        });
    }

    /// Hands what the journal has buffered to the kernel (before the run waits, or runs the
    /// user's code other than a phase: a phase's start does it for the phase).
    pub(crate) fn flush_journal(&self) {
        if let Some(journal) = self.journal().as_mut() {
            journal.flush();
        }
    }

    /// The phases' JSON as the journal wrote them, one per phase of the record (empty without
    /// a journal).
    pub(crate) fn take_phase_json(&self) -> PhasesJson {
        std::mem::take(
            &mut *self
                .phase_json
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// A subtest ended: its record goes to the journal.
    pub(crate) fn subtest(&self, subtest: &serde_json::Value) {
        if let Some(journal) = self.journal().as_mut() {
            journal.subtest(subtest);
        }
    }

    /// The run ended: the journal gets its end (synced), then the event goes out.
    pub(crate) fn run_ended(&self, record: &Arc<TestRecord>) {
        if let Some(journal) = self.journal().as_mut() {
            journal.end(record);
        }
        self.emit(EventKind::RunEnded {
            record: Arc::clone(record),
        });
    }

    /// An output handled the record (`error`: or failed to).
    pub(crate) fn output_done(&self, name: &str, location: Option<String>, error: Option<String>) {
        if error.is_none()
            && let Some(journal) = self.journal().as_mut()
        {
            journal.output_done(name);
        }
        self.emit(EventKind::OutputDone {
            name: name.to_owned(),
            location,
            error,
        });
    }

    /// Every output has the record: the journal goes.
    pub(crate) fn close_journal(&self) {
        if let Some(journal) = self.journal().take() {
            journal.remove();
        }
    }
}
