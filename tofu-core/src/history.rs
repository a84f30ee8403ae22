//! The bus's memory of its last events, for readers that come back: a station page's event
//! streams resume after the last event a page saw, with nothing missed while the history
//! still holds it.
//!
//! The history is filled as each event is published, under the bus's lock: it can't fall
//! behind the station, however busy the machine (a subscriber's queue can, and then drops
//! events). It holds the events themselves, in place (no allocation of their own), not their
//! JSON: a reader copies out (sharing their names and records) and turns into text only what
//! it sends. It is bounded by a count of events and an estimate of the memory they hold
//! (`held_bytes`); the oldest go first.

use std::collections::VecDeque;

use crate::event::{Event, EventKind};
use crate::record::PhaseRecord;
use crate::value::Value;

/// The last events published, in order, without gaps.
#[derive(Debug)]
pub(crate) struct History {
    events: VecDeque<(Event, usize)>,
    /// The `seq` of the last event not kept (0 before the first): readers that saw less
    /// can't resume.
    dropped_through: u64,
    bytes: usize,
    max_events: usize,
    max_bytes: usize,
}

/// What a reader of the history gets.
#[derive(Debug)]
pub enum HistoryRead<R> {
    /// What the reader's function returned, given the events after the one it saw.
    Events(R),
    /// The history doesn't hold every event after the one the reader saw (it went too far
    /// back, or the reader's id is past the bus's last event: a page of the station's last
    /// process, while this one hasn't reached that id): start again from a snapshot.
    Gone,
}

impl History {
    /// A history of the events after `seq`, keeping `max_events` and `max_bytes` at most (at
    /// least the newest event, however large).
    pub(crate) fn new(seq: u64, max_events: usize, max_bytes: usize) -> History {
        History {
            events: VecDeque::new(),
            dropped_through: seq,
            bytes: 0,
            max_events: max_events.max(1),
            max_bytes,
        }
    }

    /// Keeps the next event (its `seq` follows the last one's).
    pub(crate) fn push(&mut self, event: Event) {
        let bytes = held_bytes(&event);
        self.events.push_back((event, bytes));
        self.bytes += bytes;
        while self.events.len() > 1
            && (self.events.len() > self.max_events || self.bytes > self.max_bytes)
        {
            if let Some((old, bytes)) = self.events.pop_front() {
                self.bytes -= bytes;
                self.dropped_through = old.seq;
            }
        }
    }

    /// Widens the bounds to at least these.
    pub(crate) fn widen(&mut self, max_events: usize, max_bytes: usize) {
        self.max_events = self.max_events.max(max_events);
        self.max_bytes = self.max_bytes.max(max_bytes);
    }

    /// The events after `seen` (none if it is the last one), or [`HistoryRead::Gone`]:
    /// `last` is the bus's last `seq`.
    pub(crate) fn after<R>(
        &self,
        seen: u64,
        last: u64,
        read: impl FnOnce(Events<'_>) -> R,
    ) -> HistoryRead<R> {
        if seen < self.dropped_through || seen > last {
            return HistoryRead::Gone;
        }
        // Every event after `dropped_through` is kept, in order: `seen`'s successor is at
        // this index.
        let Ok(from) = usize::try_from(seen - self.dropped_through) else {
            return HistoryRead::Gone;
        };
        HistoryRead::Events(read(Events {
            inner: self.events.range(from.min(self.events.len())..),
        }))
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.bytes
    }
}

/// The events after the one a reader saw, oldest first (from either end).
#[derive(Debug)]
pub struct Events<'a> {
    inner: std::collections::vec_deque::Iter<'a, (Event, usize)>,
}

impl<'a> Iterator for Events<'a> {
    type Item = &'a Event;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(event, _)| event)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl DoubleEndedIterator for Events<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back().map(|(event, _)| event)
    }
}

impl ExactSizeIterator for Events<'_> {}

/// What an allocation costs beyond what it holds: the allocator's header and rounding, an
/// `Arc`'s counts.
const ALLOCATION: usize = 32;

/// An estimate of the memory an event holds: itself, its texts, its values, and what it
/// shares with the run's record (a phase's record), counted as if it alone held them (after
/// the run it may); not a run's plan, which all the runs of a test share. It counts
/// allocations as the allocator makes them: about 4 KB a phase of 10 measurements, where a
/// counting allocator saw 5.5 KB (the ring of events grows by doubling); a process's resident
/// memory is more (what the allocator keeps after it was freed).
pub(crate) fn held_bytes(event: &Event) -> usize {
    // Kept in place, with its estimate.
    const EVENT: usize = std::mem::size_of::<Event>() + std::mem::size_of::<usize>();
    let texts = |texts: &[&str]| {
        texts
            .iter()
            .map(|t| {
                if t.is_empty() {
                    0
                } else {
                    t.len() + ALLOCATION
                }
            })
            .sum::<usize>()
    };
    EVENT
        + match &event.kind {
            // Its plan is the test's, shared by all its runs.
            EventKind::RunStarted {
                serial_number,
                procedure_id,
                test_name,
                ..
            } => texts(&[serial_number, procedure_id, test_name]),
            EventKind::UnitIdentified { serial_number } => texts(&[serial_number]),
            EventKind::PhaseStarted { name, .. } => texts(&[name]),
            EventKind::MeasurementSet { value, .. } => value.as_ref().map_or(0, value_bytes),
            EventKind::SweepPoints { points, .. } => {
                ALLOCATION
                    + points
                        .iter()
                        .map(|p| 24 + ALLOCATION + p.len() * 8)
                        .sum::<usize>()
            }
            EventKind::PhaseEnded { record, .. } => phase_bytes(record),
            EventKind::Log { record } => {
                texts(&[&record.logger_name, &record.source, &record.message])
            }
            EventKind::RunEnded { record } => 1024 + record.phases.len() * 8,
            EventKind::PromptOpened { message, image, .. } => {
                texts(&[message, image.as_deref().unwrap_or_default()])
            }
            _ => 64,
        }
}

fn phase_bytes(record: &PhaseRecord) -> usize {
    let measurements: usize = record
        .measurements
        .iter()
        .map(|m| std::mem::size_of_val(m) + m.measured_value.as_ref().map_or(0, value_bytes))
        .sum();
    let attachments: usize = record
        .attachments
        .iter()
        .map(|a| 128 + a.name.len() + a.data.len())
        .sum();
    // The record, its measurements' list, its name, its code's names.
    std::mem::size_of::<PhaseRecord>()
        + 4 * ALLOCATION
        + record.name.len()
        + 64
        + measurements
        + attachments
}

/// What a JSON value holds, without writing it out.
fn json_bytes(json: &serde_json::Value) -> usize {
    match json {
        serde_json::Value::String(text) => ALLOCATION + text.len(),
        serde_json::Value::Array(items) => {
            ALLOCATION + items.iter().map(|v| 32 + json_bytes(v)).sum::<usize>()
        }
        serde_json::Value::Object(map) => {
            ALLOCATION
                + map
                    .iter()
                    .map(|(k, v)| 64 + k.len() + json_bytes(v))
                    .sum::<usize>()
        }
        _ => 0,
    }
}

fn value_bytes(value: &Value) -> usize {
    match value {
        Value::Text(text) => ALLOCATION + text.len(),
        Value::Json(json) => json_bytes(json),
        Value::Columns(columns) => ALLOCATION + columns.len() * (columns.dimension_count() + 1) * 8,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use super::*;

    fn event(seq: u64, message: &str) -> Event {
        Event {
            seq,
            slot: None,
            time_millis: 0,
            kind: EventKind::UnitIdentified {
                serial_number: message.into(),
            },
        }
    }

    fn seqs(history: &History, seen: u64, last: u64) -> Option<Vec<u64>> {
        match history.after(seen, last, |events| events.map(|e| e.seq).collect()) {
            HistoryRead::Events(seqs) => Some(seqs),
            HistoryRead::Gone => None,
        }
    }

    #[test]
    fn a_reader_gets_what_followed_what_it_saw_or_is_told_to_start_again() {
        // Started after event 10; keeps 3.
        let mut history = History::new(10, 3, usize::MAX);
        // (seen, last, events after it; None: start again from a snapshot)
        assert_eq!(seqs(&history, 10, 10), Some(vec![]));
        assert_eq!(seqs(&history, 9, 10), None);
        for seq in 11..=15 {
            history.push(event(seq, ""));
        }
        let table: [(u64, Option<Vec<u64>>); 7] = [
            (11, None),
            (12, Some(vec![13, 14, 15])),
            (13, Some(vec![14, 15])),
            (15, Some(vec![])),
            // An id this bus never gave (a page of the station's last process).
            (16, None),
            (u64::MAX, None),
            (0, None),
        ];
        for (seen, expected) in table {
            assert_eq!(seqs(&history, seen, 15), expected, "after {seen}");
        }
        // From the newest too: a reader looks back for what replaces what.
        let newest = history.after(12, 15, |mut events| events.next_back().map(|e| e.seq));
        assert!(matches!(newest, HistoryRead::Events(Some(15))));
    }

    #[test]
    fn the_history_is_bounded_in_bytes_and_keeps_the_newest_whatever_its_size() {
        let small = held_bytes(&event(1, ""));
        let big = "x".repeat(10 * small);
        let mut history = History::new(0, usize::MAX, 4 * small);
        for seq in 1..=4 {
            history.push(event(seq, ""));
        }
        assert_eq!(seqs(&history, 0, 4), Some(vec![1, 2, 3, 4]));
        assert_eq!(history.bytes(), 4 * small);
        history.push(event(5, ""));
        assert_eq!(seqs(&history, 0, 5), None);
        assert_eq!(seqs(&history, 1, 5), Some(vec![2, 3, 4, 5]));
        // Larger than the bound: it alone stays.
        history.push(event(6, &big));
        assert_eq!(seqs(&history, 5, 6), Some(vec![6]));
        assert_eq!(seqs(&history, 4, 6), None);
        history.push(event(7, ""));
        assert_eq!(seqs(&history, 6, 7), Some(vec![7]));
        assert_eq!(history.bytes(), small);
        // Widened: it keeps more from now on.
        history.widen(usize::MAX, 8 * small);
        for seq in 8..=10 {
            history.push(event(seq, ""));
        }
        assert_eq!(seqs(&history, 6, 10), Some(vec![7, 8, 9, 10]));
    }

    #[test]
    fn what_an_event_holds_counts_its_texts_values_and_attachments() {
        let bare = held_bytes(&event(1, ""));
        assert_eq!(
            held_bytes(&event(1, &"x".repeat(1000))),
            bare + 1000 + ALLOCATION
        );
        let measured = |value: Value| {
            held_bytes(&Event {
                seq: 1,
                slot: None,
                time_millis: 0,
                kind: EventKind::MeasurementSet {
                    phase: "p".into(),
                    name: "m".into(),
                    value: Some(value),
                    points: None,
                    outcome: None,
                    marginal: false,
                    validators: Arc::from([]),
                    units: None,
                },
            })
        };
        assert_eq!(measured(Value::Number(1.0)), bare);
        assert_eq!(
            measured(Value::Text("x".repeat(500))),
            bare + 500 + ALLOCATION
        );
    }
}
