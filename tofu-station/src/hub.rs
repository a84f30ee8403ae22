//! The page's view of the event bus: one subscription, each event turned into JSON once, kept
//! in a bounded replay buffer that every event stream reads from.
//!
//! A stream resumes after the last event it saw (`Last-Event-ID`) while that event is still in
//! the buffer; otherwise (a new page, an id too old, a gap because the hub itself fell behind)
//! it starts again from a snapshot of every slot, and the events after it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tofu_core::{EventBus, Received};
use tokio::sync::watch;

/// How many events the replay buffer of `GET /events` keeps at most.
pub const REPLAY_EVENTS: usize = 10_000;
/// How many bytes of JSON the replay buffer keeps at most (sweep batches are large).
pub const REPLAY_BYTES: usize = 16 * 1024 * 1024;
/// The hub's own queue on the bus: it only turns events into JSON, so it rarely falls behind.
const HUB_QUEUE: usize = 65_536;

/// The replay buffer and the bus it follows.
#[derive(Debug)]
pub(crate) struct Hub {
    bus: Arc<EventBus>,
    ring: Mutex<Ring>,
    /// The last sequence number in the buffer; streams wait on it.
    latest: watch::Sender<u64>,
    stop: AtomicBool,
}

#[derive(Debug, Default)]
struct Ring {
    events: VecDeque<(u64, Arc<str>)>,
    bytes: usize,
    /// Events before this one may be missing (the hub fell behind): a stream that saw less
    /// needs a snapshot.
    complete_after: u64,
    /// Events were missed before the next one.
    gap: bool,
}

/// What a stream gets next.
#[derive(Debug)]
pub(crate) enum Next {
    /// These events, after the one it saw, in order.
    Events(Vec<(u64, Arc<str>)>),
    /// Nothing new yet.
    Nothing,
    /// What it saw is no longer in the buffer: start again from a snapshot.
    Snapshot,
}

impl Hub {
    /// Follows `bus` on a thread of its own until [`Hub::stop`].
    pub(crate) fn start(bus: Arc<EventBus>) -> std::io::Result<Arc<Hub>> {
        let subscription = bus.subscribe_with_capacity(HUB_QUEUE);
        let first = bus.snapshot().seq;
        let hub = Arc::new(Hub {
            bus,
            ring: Mutex::new(Ring {
                complete_after: first,
                ..Ring::default()
            }),
            latest: watch::channel(first).0,
            stop: AtomicBool::new(false),
        });
        let pump = Arc::clone(&hub);
        std::thread::Builder::new()
            .name("tofu-station-hub".into())
            .spawn(move || {
                while !pump.stop.load(Ordering::Relaxed) {
                    match subscription.recv_timeout(Duration::from_millis(200)) {
                        Some(Received::Event(event)) => match serde_json::to_string(&*event) {
                            Ok(json) => pump.push(event.seq, json.into()),
                            Err(e) => tracing::warn!("event {} not sent to pages: {e}", event.seq),
                        },
                        Some(Received::Missed(_)) => pump.gap(),
                        Some(_) | None => {}
                    }
                }
            })?;
        Ok(hub)
    }

    /// Ends the hub's thread (within 200 ms).
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, seq: u64, json: Arc<str>) {
        let mut ring = self.ring();
        if std::mem::take(&mut ring.gap) {
            ring.complete_after = seq - 1;
        }
        ring.bytes += json.len();
        ring.events.push_back((seq, json));
        while ring.events.len() > REPLAY_EVENTS || ring.bytes > REPLAY_BYTES {
            match ring.events.pop_front() {
                Some((old, json)) => {
                    ring.bytes -= json.len();
                    ring.complete_after = old;
                }
                None => break,
            }
        }
        drop(ring);
        self.latest.send_replace(seq);
    }

    /// The hub missed events: everything before the next one is unknown to it.
    fn gap(&self) {
        let mut ring = self.ring();
        ring.events.clear();
        ring.bytes = 0;
        ring.gap = true;
    }

    /// What a stream that saw every event up to `seen` gets next: `max` events at most.
    pub(crate) fn after(&self, seen: u64, max: usize) -> Next {
        let ring = self.ring();
        if seen < ring.complete_after {
            return Next::Snapshot;
        }
        let start = ring.events.partition_point(|(seq, _)| *seq <= seen);
        if start == ring.events.len() {
            return Next::Nothing;
        }
        let end = ring.events.len().min(start.saturating_add(max));
        Next::Events(ring.events.range(start..end).cloned().collect())
    }

    /// Every slot's state now (its `seq` is the last event taken into account), as JSON.
    pub(crate) fn snapshot(&self) -> (u64, String) {
        let snapshot = self.bus.snapshot();
        let json = serde_json::to_string(&snapshot).unwrap_or_else(|_| "{}".to_owned());
        (snapshot.seq, json)
    }

    /// How many slots the station has.
    pub(crate) fn slot_count(&self) -> usize {
        self.bus.snapshot().slots.len()
    }

    /// A receiver told of each new event.
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.latest.subscribe()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn hub() -> Hub {
        Hub {
            bus: Arc::new(EventBus::new()),
            ring: Mutex::new(Ring::default()),
            latest: watch::channel(0).0,
            stop: AtomicBool::new(false),
        }
    }

    fn seqs(next: Next) -> Vec<u64> {
        match next {
            Next::Events(events) => events.iter().map(|(s, _)| *s).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stream_resumes_after_what_it_saw_while_the_buffer_holds_it() {
        let hub = hub();
        for seq in 1..=REPLAY_EVENTS as u64 + 5 {
            hub.push(seq, "{}".into());
        }
        // The five oldest were dropped: a stream that saw 4 or less needs a snapshot.
        assert!(matches!(hub.after(0, usize::MAX), Next::Snapshot));
        assert!(matches!(hub.after(4, usize::MAX), Next::Snapshot));
        assert_eq!(seqs(hub.after(5, usize::MAX)).first(), Some(&6));
        let last = REPLAY_EVENTS as u64 + 5;
        assert_eq!(seqs(hub.after(last - 2, usize::MAX)), [last - 1, last]);
        assert!(matches!(hub.after(last, usize::MAX), Next::Nothing));
        assert_eq!(seqs(hub.after(5, 2)), [6, 7]);
    }

    #[test]
    fn the_buffer_is_bounded_in_bytes_too() {
        let hub = hub();
        let big: Arc<str> = "x".repeat(REPLAY_BYTES / 4 + 1).into();
        for seq in 1..=5 {
            hub.push(seq, Arc::clone(&big));
        }
        assert!(hub.ring().bytes <= REPLAY_BYTES);
        assert!(matches!(hub.after(1, usize::MAX), Next::Snapshot));
        assert_eq!(seqs(hub.after(2, usize::MAX)), [3, 4, 5]);
    }

    #[test]
    fn a_gap_in_the_hub_sends_streams_behind_it_to_a_snapshot() {
        let hub = hub();
        hub.push(1, "{}".into());
        hub.gap();
        assert!(matches!(hub.after(1, usize::MAX), Next::Nothing));
        hub.push(5, "{}".into());
        assert!(matches!(hub.after(1, usize::MAX), Next::Snapshot));
        assert!(matches!(hub.after(3, usize::MAX), Next::Snapshot));
        assert_eq!(seqs(hub.after(4, usize::MAX)), [5]);
    }
}
