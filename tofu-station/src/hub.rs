//! The page's view of the event bus: the bus's history (its last events, kept as each is
//! published: it can't fall behind the station), read by every event stream after the last
//! event it sent, and turned into server-sent events as it is sent.
//!
//! A stream resumes after the last event it saw (`Last-Event-ID`) while the history still
//! holds what follows it; otherwise (a new page, an id too old, or not this station's) it
//! starts again from a snapshot of every slot, and the events after it.

use std::sync::Arc;

use axum::body::Bytes;
use tofu_core::{Event, EventBus, EventKind, HistoryRead, HistoryReader, PhaseOutcome};
use tokio::sync::watch;

use crate::json;

/// How many events the replay buffer of `GET /events` (the bus's history) keeps at most,
/// unless told otherwise ([`StationPage::replay_buffer`](crate::StationPage::replay_buffer)):
/// seconds of four slots running phases of 10 measurements as fast as two CPUs go, hours at
/// a bench's pace.
pub const REPLAY_EVENTS: usize = 1_000_000;
/// How much memory the replay buffer's events hold at most, unless told otherwise: an
/// estimate of each event, its texts and values, and the phase record it refers to (about
/// 4 KB a phase of 10 measurements, 12 events).
pub const REPLAY_BYTES: usize = 256 * 1024 * 1024;

/// How a stream frames the events it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// One server-sent event per event: `id: <seq>\ndata: <json>\n\n` (docs/events.md).
    Each,
    /// One server-sent event per batch: a `data:` line per event, then `id:` the last one's
    /// `seq` (`GET /events?batch=1`).
    Batch,
    /// [`Framing::Batch`], without the events whose effect on a slot's card a later event
    /// of the same batch replaces ([`Role`]; `GET /events?coalesce=1`, the page's).
    Coalesced,
}

/// What an event is to the page's view of a slot ([`Framing::Coalesced`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// It counts whatever follows (a run started or ended, a prompt, a failing phase, a
    /// sweep's points…).
    Keep,
    /// A later event of this kind (a code) in the same slot replaces it: a measurement set
    /// (the card shows the last one), a phase started (the phase running), a phase ended
    /// without a failure, a log line shown (the last one).
    Replaced(u8, usize),
    /// The page shows nothing of it: a log line below INFO.
    Hidden,
}

impl Role {
    fn of(event: &Event) -> Role {
        let slot = event.slot.unwrap_or(0);
        match &event.kind {
            EventKind::MeasurementSet { .. } => Role::Replaced(0, slot),
            EventKind::PhaseStarted { .. } => Role::Replaced(1, slot),
            EventKind::PhaseEnded { record, .. }
                if !matches!(record.outcome, PhaseOutcome::Fail | PhaseOutcome::Error) =>
            {
                Role::Replaced(2, slot)
            }
            EventKind::Log { record } if record.level >= 20 => Role::Replaced(3, slot),
            EventKind::Log { .. } => Role::Hidden,
            _ => Role::Keep,
        }
    }
}

/// The streams' way to the bus's history.
#[derive(Debug)]
pub(crate) struct Hub {
    /// Kept: the page shows the last state of a test that is gone.
    _bus: Arc<EventBus>,
    history: HistoryReader,
    /// Changes when the bus has new events worth reading; streams wait on it.
    changed: watch::Receiver<u64>,
}

/// What a stream gets next.
#[derive(Debug)]
pub(crate) enum Next {
    /// These events, after the one it saw, in order, framed as asked; the last one's `seq`.
    Events(Bytes, u64),
    /// Nothing new yet.
    Nothing,
    /// What follows the event it saw is no longer kept: start again from a snapshot.
    Snapshot,
}

/// The events a stream sends next, taken from the history: `last` is the `seq` of the last
/// one it covers (sent or left out).
struct Picked {
    events: Vec<Event>,
    last: u64,
}

impl Hub {
    /// Reads `bus`'s history, which keeps `max_events` events and `max_bytes` bytes at most
    /// while the hub lives.
    pub(crate) fn start(bus: &Arc<EventBus>, (max_events, max_bytes): (usize, usize)) -> Hub {
        let (tell, changed) = watch::channel(0u64);
        let history = bus.keep_history(max_events, max_bytes, move || {
            tell.send_modify(|n| *n = n.wrapping_add(1));
        });
        Hub {
            _bus: Arc::clone(bus),
            history,
            changed,
        }
    }

    /// What a stream that saw every event up to `seen` gets next: the next `max` events at
    /// most, framed as asked.
    pub(crate) fn after(&self, seen: u64, max: usize, framing: Framing) -> Next {
        // With the bus locked: only pick (and copy, sharing their names and records) the
        // events to send.
        let picked = self.history.read_after(seen, |events| {
            let covered: Vec<&Event> = events.take(max.max(1)).collect();
            let last = covered.last().map_or(seen, |e| e.seq);
            let events = match framing {
                Framing::Coalesced => coalesce(&covered),
                Framing::Each | Framing::Batch => covered.into_iter().cloned().collect(),
            };
            Picked { events, last }
        });
        match picked {
            HistoryRead::Gone => Next::Snapshot,
            HistoryRead::Events(Picked { last, .. }) if last == seen => Next::Nothing,
            HistoryRead::Events(Picked { events, last }) => {
                Next::Events(Bytes::from(write(&events, last, framing)), last)
            }
        }
    }

    /// Every slot's state now (its `seq` is the last event published), as JSON.
    pub(crate) fn snapshot(&self) -> (u64, String) {
        let snapshot = self.history.snapshot();
        let json = serde_json::to_string(&snapshot).unwrap_or_else(|_| "{}".to_owned());
        (snapshot.seq, json)
    }

    /// The station's last event.
    pub(crate) fn station_seq(&self) -> u64 {
        self.history.last_seq()
    }

    /// How many slots the station has.
    pub(crate) fn slot_count(&self) -> usize {
        self.history.snapshot().slots.len()
    }

    /// A receiver told when there are new events.
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.changed.clone()
    }
}

/// The events of `covered` that a later one doesn't replace (by [`Role`]), and the first
/// one whatever it is: a client sees where the batch starts (no gap).
fn coalesce(covered: &[&Event]) -> Vec<Event> {
    kept(covered, |e| Role::of(e))
        .into_iter()
        .map(|i| covered[i].clone())
        .collect()
}

/// Which of `items` (their indexes, in order) the page's view keeps, `role` saying what each
/// is to it ([`coalesce`]).
fn kept<T>(items: &[T], role: impl Fn(&T) -> Role) -> Vec<usize> {
    let mut replaced: Vec<Role> = Vec::new();
    let mut kept = Vec::new();
    for (i, item) in items.iter().enumerate().rev() {
        let keep = match role(item) {
            _ if i == 0 => true,
            Role::Keep => true,
            Role::Hidden => false,
            role if replaced.contains(&role) => false,
            role => {
                replaced.push(role);
                true
            }
        };
        if keep {
            kept.push(i);
        }
    }
    kept.reverse();
    kept
}

/// The server-sent events' text of `events`: each on its own (`id:` and `data:`), or one
/// batch (a `data:` line each, then `id: last`). An event that can't be turned into JSON is
/// left out (and said).
fn write(events: &[Event], last: u64, framing: Framing) -> Vec<u8> {
    let mut text = Vec::with_capacity(events.len() * 200 + 32);
    for event in events {
        let start = text.len();
        if framing == Framing::Each {
            text.extend_from_slice(b"id: ");
            json::put_u64(&mut text, event.seq);
            text.push(b'\n');
        }
        text.extend_from_slice(b"data: ");
        let written = match framing {
            Framing::Coalesced => json::write_view_event(&mut text, event),
            Framing::Each | Framing::Batch => json::write_event(&mut text, event),
        };
        if let Err(e) = written {
            tracing::warn!("event {} not sent to pages: {e}", event.seq);
            text.truncate(start);
            continue;
        }
        text.push(b'\n');
        if framing == Framing::Each {
            text.push(b'\n');
        }
    }
    if framing != Framing::Each {
        text.extend_from_slice(b"id: ");
        json::put_u64(&mut text, last);
        text.extend_from_slice(b"\n\n");
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::json::tests::real_events_with;

    /// The events of a real two-slot run, and a hub that followed it keeping `max_events`.
    fn followed(max_events: usize) -> (Vec<Arc<Event>>, Hub) {
        real_events_with(3, |bus| Hub::start(bus, (max_events, REPLAY_BYTES)))
    }

    fn text(next: Next) -> (String, u64) {
        match next {
            Next::Events(text, last) => (String::from_utf8(text.to_vec()).unwrap(), last),
            other => panic!("{other:?}"),
        }
    }

    /// The `seq`s of the events of a stream's text, whatever its framing.
    fn seqs(next: Next) -> Vec<u64> {
        text(next)
            .0
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn a_stream_resumes_after_what_it_saw_while_the_history_holds_it() {
        let (events, hub) = followed(20);
        let last = events.len() as u64;
        assert!(last > 40, "{last}");
        let oldest = last - 20;
        // A stream that saw less than the last event dropped needs a snapshot.
        assert!(matches!(
            hub.after(0, usize::MAX, Framing::Each),
            Next::Snapshot
        ));
        assert!(matches!(
            hub.after(oldest - 1, 10, Framing::Each),
            Next::Snapshot
        ));
        assert_eq!(
            seqs(hub.after(oldest, 3, Framing::Each)),
            [oldest + 1, oldest + 2, oldest + 3]
        );
        assert_eq!(
            seqs(hub.after(last - 2, usize::MAX, Framing::Each)),
            [last - 1, last]
        );
        assert!(matches!(
            hub.after(last, usize::MAX, Framing::Each),
            Next::Nothing
        ));
        // An id the station never gave (its last process's page).
        assert!(matches!(
            hub.after(last + 1, 10, Framing::Batch),
            Next::Snapshot
        ));
        let (seq, json) = hub.snapshot();
        assert_eq!(seq, last);
        assert!(json.starts_with(&format!("{{\"seq\":{last},")), "{json}");
    }

    #[test]
    fn each_event_is_a_server_sent_event_of_its_own_or_one_per_batch() {
        let (events, hub) = followed(100_000);
        let (each, last) = text(hub.after(1, 3, Framing::Each));
        assert_eq!(last, 4);
        let mut expected = String::new();
        for event in &events[1..4] {
            let json = serde_json::to_string(&**event).unwrap();
            expected += &format!("id: {}\ndata: {json}\n\n", event.seq);
        }
        assert_eq!(each, expected);
        // A batch: the events' lines, then the last one's id, then the blank line that ends
        // the server-sent event.
        let (batch, last) = text(hub.after(1, 4, Framing::Batch));
        assert_eq!(last, 5);
        let mut expected = String::new();
        for event in &events[1..5] {
            expected += &format!("data: {}\n", serde_json::to_string(&**event).unwrap());
        }
        assert_eq!(batch, expected + "id: 5\n\n");
        // Resuming after a batch's last event: the next one, nothing sent twice.
        assert_eq!(seqs(hub.after(5, 1, Framing::Batch)), [6]);
        assert_eq!(seqs(hub.after(3, 3, Framing::Batch)), [4, 5, 6]);
        let all = events.len() as u64;
        assert!(matches!(hub.after(all, 10, Framing::Batch), Next::Nothing));
    }

    #[test]
    fn the_pages_view_leaves_out_what_a_later_event_of_the_batch_replaces() {
        let (m0, m1) = (Role::Replaced(0, 0), Role::Replaced(0, 1));
        let roles = [
            m0,
            Role::Keep,
            m0,
            m1,
            Role::Hidden,
            m0,
            Role::Replaced(1, 0),
        ];
        // The events' seqs (from 1) that stay of those in `from..to`.
        let seqs = |from: usize, to: usize| -> Vec<usize> {
            kept(&roles[from..to], |r| *r)
                .into_iter()
                .map(|i| from + i + 1)
                .collect()
        };
        // 1 and 3 are replaced by 6 (same kind, same slot), 5 is never shown; 4 is another
        // slot's, 7 another kind. The first event of a batch always stays.
        assert_eq!(seqs(1, 7), [2, 4, 6, 7]);
        assert_eq!(seqs(0, 7), [1, 2, 4, 6, 7]);
        // Within what one batch covers only: 3 stays when the batch ends before 6.
        assert_eq!(seqs(1, 4), [2, 3, 4]);
        assert_eq!(seqs(2, 6), [3, 4, 6]);
        assert_eq!(seqs(4, 5), [5]);
    }

    #[test]
    fn the_pages_view_of_a_real_run_has_every_event_that_counts() {
        let (events, hub) = followed(100_000);
        let last = events.len() as u64;
        let (batch, got_last) = text(hub.after(0, usize::MAX, Framing::Coalesced));
        assert_eq!(got_last, last);
        assert!(batch.ends_with(&format!("id: {last}\n\n")));
        let sent = seqs(Next::Events(Bytes::from(batch), last));
        let expected: Vec<u64> = events
            .iter()
            .enumerate()
            .filter(|&(i, event)| {
                let role = Role::of(event);
                i == 0
                    || match role {
                        Role::Keep => true,
                        Role::Hidden => false,
                        Role::Replaced(..) => !events[i + 1..].iter().any(|e| Role::of(e) == role),
                    }
            })
            .map(|(_, e)| e.seq)
            .collect();
        assert_eq!(sent, expected);
        // Both slots' last measurements, a failing phase's end, the runs' ends are there.
        let kinds = |kind: &str| {
            events
                .iter()
                .filter(|e| sent.contains(&e.seq))
                .filter(|e| serde_json::to_value(&***e).unwrap()["type"] == kind)
                .count()
        };
        assert_eq!(kinds("measurement_set"), 2);
        assert_eq!(kinds("run_ended"), 2);
        assert!(kinds("phase_ended") >= 2);
    }
}
