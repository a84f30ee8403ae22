//! The page's view of the event bus: one subscription, each event turned into JSON once and
//! framed as a server-sent event once, kept in a bounded replay buffer that every event
//! stream reads from.
//!
//! The hub takes what the bus queued for it in one go, writes the batch's events into one
//! buffer (a [`Chunk`]: `id: <seq>\ndata: <json>\n\n` per event, and where each starts), and
//! streams send slices of it. A stream resumes after the last event it saw (`Last-Event-ID`)
//! while that event is still in the buffer; otherwise (a new page, an id too old, a gap because
//! the hub itself fell behind) it starts again from a snapshot of every slot, and the events
//! after it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::body::Bytes;
use tofu_core::{Event, EventBus, EventKind, PhaseOutcome, Received};
use tokio::sync::watch;

use crate::json;

/// How many events the replay buffer of `GET /events` keeps at most, unless told otherwise
/// ([`StationPage::replay_buffer`](crate::StationPage::replay_buffer)).
pub const REPLAY_EVENTS: usize = 1_000_000;
/// How many bytes of events the replay buffer keeps at most (their JSON, framed as
/// server-sent events), unless told otherwise: about 2 s of four slots running phases of 10
/// measurements as fast as they go (60 MB a second, by our estimate), far more at a bench's
/// pace.
pub const REPLAY_BYTES: usize = 128 * 1024 * 1024;
/// The hub's own queue on the bus. It takes everything queued at once, at least every
/// 20 ms while phases run.
const HUB_QUEUE: usize = 65_536;
/// The most events in one chunk of the buffer (the buffer drops whole chunks, so a chunk is
/// also at most a sixteenth of the buffer).
const CHUNK_EVENTS: usize = 4096;

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

/// The replay buffer and the bus it follows.
#[derive(Debug)]
pub(crate) struct Hub {
    bus: Arc<EventBus>,
    ring: Mutex<Ring>,
    /// The last sequence number in the buffer; streams wait on it.
    latest: watch::Sender<u64>,
    stop: AtomicBool,
    /// A chunk is closed at this many events or bytes.
    chunk_events: usize,
    chunk_bytes: usize,
}

/// Events in order, framed once: `id: <seq>\ndata: <json>\n\n` each.
#[derive(Debug)]
struct Chunk {
    text: Bytes,
    index: Vec<Entry>,
}

/// An event of a chunk.
#[derive(Debug, Clone, Copy)]
struct Entry {
    seq: u64,
    /// Where its text starts.
    start: u32,
    /// Where its `data:` line starts.
    data: u32,
    role: Role,
}

#[derive(Debug)]
struct Ring {
    /// The most events and bytes kept.
    max_events: usize,
    max_bytes: usize,
    chunks: VecDeque<Chunk>,
    events: usize,
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
    /// These events, after the one it saw, in order, framed as asked; the last one's `seq`.
    Events(Bytes, u64),
    /// Nothing new yet.
    Nothing,
    /// What it saw is no longer in the buffer: start again from a snapshot.
    Snapshot,
}

/// Builds the chunks of a batch of events.
#[derive(Debug, Default)]
struct ChunkWriter {
    text: Vec<u8>,
    index: Vec<Entry>,
}

impl ChunkWriter {
    /// Frames `event`; `false` (and nothing written) if it can't be turned into JSON.
    fn add(&mut self, event: &Event) -> bool {
        self.add_with(event.seq, Role::of(event), |out| {
            json::write_event(out, event)
        })
    }

    /// Frames the event `seq` whose JSON `write` appends.
    fn add_with(
        &mut self,
        seq: u64,
        role: Role,
        write: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
    ) -> bool {
        let start = self.text.len();
        self.text.extend_from_slice(b"id: ");
        json::put_u64(&mut self.text, seq);
        self.text.push(b'\n');
        let data = self.text.len();
        self.text.extend_from_slice(b"data: ");
        if let Err(e) = write(&mut self.text) {
            tracing::warn!("event {seq} not sent to pages: {e}");
            self.text.truncate(start);
            return false;
        }
        self.text.extend_from_slice(b"\n\n");
        // A chunk holds CHUNK_EVENTS events of bounded size, or one large event: an offset
        // past u32 would be an event of 4 GiB.
        let (Ok(start32), Ok(data)) = (u32::try_from(start), u32::try_from(data)) else {
            tracing::warn!("event {seq} too large to send to pages");
            self.text.truncate(start);
            return false;
        };
        self.index.push(Entry {
            seq,
            start: start32,
            data,
            role,
        });
        true
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    /// The chunk written so far (none if empty); the writer starts a new one.
    fn take(&mut self) -> Option<Chunk> {
        if self.index.is_empty() {
            return None;
        }
        let text = fit(std::mem::take(&mut self.text));
        // The next batch is likely about as large.
        let capacity = text.len() + text.len() / 4;
        self.text = Vec::with_capacity(capacity.min(8 << 20));
        Some(Chunk {
            text: Bytes::from(text),
            index: std::mem::take(&mut self.index),
        })
    }
}

/// `text`, holding not much more memory than its length (the buffer counts the length).
fn fit(mut text: Vec<u8>) -> Vec<u8> {
    if text.capacity() > text.len() + text.len() / 4 + 4096 {
        text.shrink_to_fit();
    }
    text
}

impl Chunk {
    fn last_seq(&self) -> u64 {
        self.index.last().map_or(0, |e| e.seq)
    }

    /// Where event `i`'s text ends.
    fn end(&self, i: usize) -> usize {
        self.index
            .get(i + 1)
            .map_or(self.text.len(), |e| e.start as usize)
    }
}

impl Hub {
    /// Follows `bus` on a thread of its own until [`Hub::stop`].
    pub(crate) fn start(bus: Arc<EventBus>, replay: (usize, usize)) -> std::io::Result<Arc<Hub>> {
        let subscription = bus.subscribe_with_capacity(HUB_QUEUE);
        let first = bus.snapshot().seq;
        let hub = Arc::new(Hub::new(bus, first, replay));
        let pump = Arc::clone(&hub);
        std::thread::Builder::new()
            .name("tofu-station-hub".into())
            .spawn(move || {
                let mut batch = Vec::new();
                let mut writer = ChunkWriter::default();
                while !pump.stop.load(Ordering::Relaxed) {
                    if !subscription.recv_all_timeout(&mut batch, Duration::from_millis(200)) {
                        break;
                    }
                    pump.take(&mut batch, &mut writer);
                }
            })?;
        Ok(hub)
    }

    /// A hub whose buffer keeps `max_events` events and `max_bytes` bytes at most.
    fn new(bus: Arc<EventBus>, first: u64, (max_events, max_bytes): (usize, usize)) -> Hub {
        Hub {
            bus,
            ring: Mutex::new(Ring {
                max_events,
                max_bytes,
                chunks: VecDeque::new(),
                events: 0,
                bytes: 0,
                complete_after: first,
                gap: false,
            }),
            latest: watch::channel(first).0,
            stop: AtomicBool::new(false),
            chunk_events: (max_events / 16).clamp(1, CHUNK_EVENTS),
            chunk_bytes: (max_bytes / 16).max(1),
        }
    }

    /// Ends the hub's thread (within 200 ms).
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Turns what the bus gave (emptied) into chunks of the buffer, then tells the streams.
    fn take(&self, batch: &mut Vec<Received>, writer: &mut ChunkWriter) {
        let mut latest = None;
        for received in batch.drain(..) {
            match received {
                Received::Event(event) => {
                    if writer.add(&event) {
                        latest = Some(event.seq);
                    }
                    if writer.len() >= self.chunk_events || writer.text.len() >= self.chunk_bytes {
                        self.push(writer.take());
                    }
                }
                Received::Missed(_) => {
                    self.push(writer.take());
                    self.ring().gap();
                }
                _ => {}
            }
        }
        self.push(writer.take());
        if let Some(seq) = latest {
            self.latest.send_replace(seq);
        }
    }

    fn push(&self, chunk: Option<Chunk>) {
        if let Some(chunk) = chunk {
            self.ring().push(chunk);
        }
    }

    /// What a stream that saw every event up to `seen` gets next: `max` events at most,
    /// framed as asked.
    pub(crate) fn after(&self, seen: u64, max: usize, framing: Framing) -> Next {
        self.ring().after(seen, max, framing)
    }

    /// Every slot's state now (its `seq` is the last event taken into account), as JSON.
    pub(crate) fn snapshot(&self) -> (u64, String) {
        let snapshot = self.bus.snapshot();
        let json = serde_json::to_string(&snapshot).unwrap_or_else(|_| "{}".to_owned());
        (snapshot.seq, json)
    }

    /// The station's last event (the buffer may not have it yet).
    pub(crate) fn station_seq(&self) -> u64 {
        self.bus.last_seq()
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

/// Whether two references are to the same event of the same chunk.
fn same((a, i): (&Chunk, usize), (b, j): (&Chunk, usize)) -> bool {
    std::ptr::eq(a, b) && i == j
}

impl Ring {
    fn push(&mut self, chunk: Chunk) {
        if std::mem::take(&mut self.gap) {
            self.complete_after = chunk.index.first().map_or(0, |e| e.seq) - 1;
        }
        self.events += chunk.index.len();
        self.bytes += chunk.text.len();
        self.chunks.push_back(chunk);
        // The newest chunk stays, however large.
        while self.chunks.len() > 1
            && (self.events > self.max_events || self.bytes > self.max_bytes)
        {
            if let Some(old) = self.chunks.pop_front() {
                self.events -= old.index.len();
                self.bytes -= old.text.len();
                self.complete_after = old.last_seq();
            }
        }
    }

    /// The hub missed events: everything before the next one is unknown to it.
    fn gap(&mut self) {
        self.chunks.clear();
        self.events = 0;
        self.bytes = 0;
        self.gap = true;
    }

    fn after(&self, seen: u64, max: usize, framing: Framing) -> Next {
        if seen < self.complete_after {
            return Next::Snapshot;
        }
        let at = self.chunks.partition_point(|c| c.last_seq() <= seen);
        let Some(chunk) = self.chunks.get(at) else {
            return Next::Nothing;
        };
        // The events to send: (chunk, from, to) ranges, `max` events in all.
        let mut ranges = Vec::new();
        let mut first = chunk.index.partition_point(|e| e.seq <= seen);
        let mut left = max.max(1);
        for (n, chunk) in self.chunks.range(at..).enumerate() {
            if left == 0 {
                break;
            }
            let end = chunk.index.len().min(first.saturating_add(left));
            ranges.push((at + n, first, end));
            left -= end - first;
            first = 0;
        }
        let last = ranges
            .last()
            .map_or(seen, |&(c, _, end)| self.chunks[c].index[end - 1].seq);
        let text = match framing {
            Framing::Each => {
                let mut pieces: Vec<Bytes> = ranges
                    .iter()
                    .map(|&(c, from, end)| {
                        let chunk = &self.chunks[c];
                        chunk
                            .text
                            .slice(chunk.index[from].start as usize..chunk.end(end - 1))
                    })
                    .collect();
                match pieces.len() {
                    1 => pieces.swap_remove(0),
                    _ => Bytes::from(pieces.concat()),
                }
            }
            Framing::Batch | Framing::Coalesced => self.batch(&ranges, last, framing),
        };
        Next::Events(text, last)
    }

    /// One server-sent event: each event's `data:` line (without its `id:` line and its
    /// blank line), then `id: last`; if `Coalesced`, without the events a later one replaces
    /// but the first (a client checks that it follows the last batch's id).
    fn batch(&self, ranges: &[(usize, usize, usize)], last: u64, framing: Framing) -> Bytes {
        let events = ranges
            .iter()
            .flat_map(|&(c, from, end)| (from..end).map(move |i| (&self.chunks[c], i)));
        let mut keep: Vec<(&Chunk, usize)> = events.collect();
        if framing == Framing::Coalesced {
            // From the last: an event goes if a later one replaces it.
            let mut replaced: Vec<Role> = Vec::new();
            let mut kept = Vec::with_capacity(keep.len());
            let first = keep.first().copied();
            for (chunk, i) in keep.into_iter().rev() {
                if first.is_some_and(|f| same((chunk, i), f)) {
                    // The first stays: a client sees where the batch starts (no gap).
                    kept.push((chunk, i));
                    continue;
                }
                match chunk.index[i].role {
                    Role::Keep => kept.push((chunk, i)),
                    Role::Hidden => {}
                    role if replaced.contains(&role) => {}
                    role => {
                        replaced.push(role);
                        kept.push((chunk, i));
                    }
                }
            }
            kept.reverse();
            keep = kept;
        }
        let mut lines = Vec::new();
        for (chunk, i) in keep {
            lines.extend_from_slice(&chunk.text[chunk.index[i].data as usize..chunk.end(i) - 1]);
        }
        lines.extend_from_slice(b"id: ");
        json::put_u64(&mut lines, last);
        lines.extend_from_slice(b"\n\n");
        Bytes::from(lines)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn hub() -> Hub {
        Hub::new(Arc::new(EventBus::new()), 0, (REPLAY_EVENTS, REPLAY_BYTES))
    }

    /// Events `seqs` (each `{"seq":n}`) as one chunk.
    fn push(hub: &Hub, seqs: impl IntoIterator<Item = u64>) {
        let mut writer = ChunkWriter::default();
        for seq in seqs {
            assert!(writer.add_with(seq, Role::Keep, |out| {
                out.extend_from_slice(format!("{{\"seq\":{seq}}}").as_bytes());
                Ok(())
            }));
        }
        hub.push(writer.take());
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
            .filter_map(|l| l.strip_prefix("data: {\"seq\":"))
            .map(|l| l.trim_end_matches('}').parse().unwrap())
            .collect()
    }

    #[test]
    fn a_stream_resumes_after_what_it_saw_while_the_buffer_holds_it() {
        let hub = hub();
        let last = REPLAY_EVENTS as u64 + 5;
        let mut seq = 1;
        while seq <= last {
            let end = (seq + CHUNK_EVENTS as u64 - 1).min(last);
            push(&hub, seq..=end);
            seq = end + 1;
        }
        // The oldest chunk was dropped, whole: a stream that saw less than its last event
        // needs a snapshot.
        let dropped = CHUNK_EVENTS as u64;
        assert!(matches!(
            hub.after(0, usize::MAX, Framing::Each),
            Next::Snapshot
        ));
        assert!(matches!(
            hub.after(dropped - 1, 10, Framing::Each),
            Next::Snapshot
        ));
        assert_eq!(
            seqs(hub.after(dropped, 3, Framing::Each)),
            [dropped + 1, dropped + 2, dropped + 3]
        );
        assert_eq!(
            seqs(hub.after(last - 2, usize::MAX, Framing::Each)),
            [last - 1, last]
        );
        assert!(matches!(
            hub.after(last, usize::MAX, Framing::Each),
            Next::Nothing
        ));
    }

    #[test]
    fn each_event_is_a_server_sent_event_of_its_own_or_one_per_batch() {
        let hub = hub();
        push(&hub, 1..=3);
        push(&hub, 4..=6);
        assert_eq!(
            text(hub.after(1, 3, Framing::Each)),
            (
                "id: 2\ndata: {\"seq\":2}\n\nid: 3\ndata: {\"seq\":3}\n\nid: 4\ndata: {\"seq\":4}\n\n"
                    .to_owned(),
                4
            )
        );
        // A batch: the events' lines, then the last one's id, then the blank line that ends
        // the server-sent event; across the chunks' boundary too.
        assert_eq!(
            text(hub.after(1, 4, Framing::Batch)),
            (
                "data: {\"seq\":2}\ndata: {\"seq\":3}\ndata: {\"seq\":4}\ndata: {\"seq\":5}\nid: 5\n\n"
                    .to_owned(),
                5
            )
        );
        // Resuming after a batch's last event: the next one, nothing sent twice.
        assert_eq!(seqs(hub.after(5, 10, Framing::Batch)), [6]);
        assert_eq!(seqs(hub.after(3, 10, Framing::Batch)), [4, 5, 6]);
        assert!(matches!(hub.after(6, 10, Framing::Batch), Next::Nothing));
    }

    #[test]
    fn the_pages_view_leaves_out_what_a_later_event_of_the_batch_replaces() {
        let hub = hub();
        let (m0, m1) = (Role::Replaced(0, 0), Role::Replaced(0, 1));
        let roles = [
            (1, m0),
            (2, Role::Keep),
            (3, m0),
            (4, m1),
            (5, Role::Hidden),
            (6, m0),
            (7, Role::Replaced(1, 0)),
        ];
        let mut writer = ChunkWriter::default();
        for (seq, role) in roles {
            writer.add_with(seq, role, |out| {
                out.extend_from_slice(format!("{{\"seq\":{seq}}}").as_bytes());
                Ok(())
            });
        }
        hub.push(writer.take());
        // 1 and 3 are replaced by 6 (same kind, same slot), 5 is never shown; 4 is another
        // slot's, 7 another kind. The id is the batch's last event's.
        // The first event of a batch always stays.
        let (text, last) = text(hub.after(1, 100, Framing::Coalesced));
        assert_eq!(
            text,
            "data: {\"seq\":2}\ndata: {\"seq\":4}\ndata: {\"seq\":6}\ndata: {\"seq\":7}\nid: 7\n\n"
        );
        assert_eq!(last, 7);
        assert_eq!(seqs(hub.after(0, 100, Framing::Coalesced)), [1, 2, 4, 6, 7]);
        // Within what one batch covers only: 3 stays when the batch ends before 6.
        assert_eq!(seqs(hub.after(1, 3, Framing::Coalesced)), [2, 3, 4]);
        assert_eq!(seqs(hub.after(2, 4, Framing::Coalesced)), [3, 4, 6]);
        assert_eq!(seqs(hub.after(4, 1, Framing::Coalesced)), [5]);
        assert_eq!(
            seqs(hub.after(0, 100, Framing::Batch)),
            [1, 2, 3, 4, 5, 6, 7]
        );
    }

    #[test]
    fn the_buffer_is_bounded_in_bytes_too() {
        let hub = hub();
        let big = "x".repeat(REPLAY_BYTES / 4 + 1);
        for seq in 1..=5 {
            let mut writer = ChunkWriter::default();
            writer.add_with(seq, Role::Keep, |out| {
                out.extend_from_slice(big.as_bytes());
                Ok(())
            });
            hub.push(writer.take());
        }
        assert!(hub.ring().bytes <= REPLAY_BYTES);
        assert!(matches!(
            hub.after(1, usize::MAX, Framing::Each),
            Next::Snapshot
        ));
        assert_eq!(text(hub.after(2, usize::MAX, Framing::Each)).1, 5);
    }

    #[test]
    fn a_chunk_holds_little_more_memory_than_its_text() {
        let mut small = Vec::with_capacity(1 << 20);
        small.extend_from_slice(b"id: 1\ndata: {}\n\n");
        assert!(fit(small).capacity() < 4096);
        let mut full = Vec::with_capacity(100_000);
        full.resize(90_000, b'x');
        assert_eq!(
            fit(full).capacity(),
            100_000,
            "not copied when little is spare"
        );
    }

    #[test]
    fn an_event_that_is_no_json_is_left_out() {
        let mut writer = ChunkWriter::default();
        assert!(!writer.add_with(1, Role::Keep, |out| {
            out.extend_from_slice(b"{\"half");
            Err(serde::ser::Error::custom("no"))
        }));
        assert!(writer.take().is_none());
    }

    #[test]
    fn a_gap_in_the_hub_sends_streams_behind_it_to_a_snapshot() {
        let hub = hub();
        push(&hub, [1]);
        hub.ring().gap();
        assert!(matches!(
            hub.after(1, usize::MAX, Framing::Each),
            Next::Nothing
        ));
        push(&hub, [5]);
        assert!(matches!(
            hub.after(1, usize::MAX, Framing::Each),
            Next::Snapshot
        ));
        assert!(matches!(
            hub.after(3, usize::MAX, Framing::Batch),
            Next::Snapshot
        ));
        assert_eq!(seqs(hub.after(4, usize::MAX, Framing::Each)), [5]);
    }
}
