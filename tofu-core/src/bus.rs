//! The event bus of a test or a station: it numbers the events, keeps a snapshot of every
//! slot's state, and hands each event to every subscriber's queue.
//!
//! Publishing never waits for a subscriber: each has a bounded queue, and when it is full the
//! oldest events are dropped and counted. The subscriber is then told how many it missed
//! ([`Received::Missed`]) and can start again from [`Subscription::snapshot`].
//!
//! A reader that must miss nothing however busy the machine (a station page's streams) reads
//! the bus's history instead ([`EventBus::keep_history`]): the last events, kept as they are
//! published, that it reads after the last one it saw.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::clock::now_millis;
use crate::event::{Event, EventKind, PromptKind};
use crate::history::{Events, History, HistoryRead};
use crate::outcome::{MeasurementOutcome, Outcome, PhaseOutcome};
use crate::value::Value;

/// How many events a subscriber's queue holds unless told otherwise.
pub const DEFAULT_QUEUE: usize = 4096;

/// The longest a waiting subscriber sleeps before it looks at its queue again. The events of
/// phases (their start and end, measurements, sweep points, logs, attachments) don't wake a
/// subscriber, since each waking costs a system call and a thread switch, two per phase of a
/// thousand short ones: the next event that does (a prompt, an abort, a plug, the run's end,
/// an output…), the run's regular look while a phase runs ([`EventBus::wake_subscribers`],
/// every 20 ms), a queue half full, or this delay does.
const LAZY_WAKE: Duration = Duration::from_millis(100);

/// How old the last wake must be before a phase's detail wakes waiting subscribers anyway: a
/// run of short phases never reaches the run's 20 ms look, and its events would otherwise wait
/// up to [`LAZY_WAKE`] (a station page showed values half a second late). At most one wake per
/// subscriber every 20 ms.
const DETAIL_WAKE_MILLIS: u64 = 20;

/// Numbers events and hands them to the subscribers. One per [`Test`](crate::Test) or
/// [`Station`](crate::Station).
#[derive(Debug, Default)]
pub struct EventBus {
    inner: Mutex<BusInner>,
    /// Someone subscribed: worth building the detailed events.
    observed: AtomicBool,
    /// An observing subscriber has a thread of its own taking the events (a history reader
    /// takes them from the history, in its own time).
    subscribed: AtomicBool,
    /// The last prompt id given (prompt ids are unique per test or station).
    prompts: AtomicU64,
}

#[derive(Default)]
struct BusInner {
    seq: u64,
    /// Each subscriber's queue, and whether it is an observer of the run's detail (the
    /// console is not: it needs no measurement events, and can't answer a prompt).
    subscribers: Vec<(Weak<Queue>, bool)>,
    snapshot: Snapshot,
    /// Each slot's last measurement set: taken into a snapshot only when one is asked for (a
    /// run sets thousands; copying its names each time costs more than the event).
    last_measurements: Vec<Option<LastSet>>,
    /// When an event last woke the subscribers (the event's time, epoch ms).
    last_wake_millis: i64,
    /// The last events, while someone reads them ([`EventBus::keep_history`]).
    history: Option<History>,
    /// The history's readers: an id each, and how to wake it.
    readers: Vec<(u64, Waker)>,
    /// The last reader id given.
    reader_ids: u64,
    /// The last `seq` the readers were woken for.
    readers_woken_seq: u64,
}

/// A slot's last measurement set, as its event had it (names shared).
#[derive(Debug)]
struct LastSet {
    phase: Arc<str>,
    name: Arc<str>,
    value: Option<Value>,
    outcome: Option<MeasurementOutcome>,
}

/// What publishing found to do once the bus is unlocked.
#[derive(Default)]
struct AfterPublish {
    /// An event wakes the subscribers and the history's readers.
    wake: bool,
    /// A subscriber is gone.
    gone: bool,
}

/// How a history reader is told of new events.
type Waker = Arc<dyn Fn() + Send + Sync>;

/// A reader of the bus's history ([`EventBus::keep_history`]). Dropping the last one lets the
/// bus forget its history.
pub struct HistoryReader {
    bus: Weak<EventBus>,
    id: u64,
}

impl std::fmt::Debug for HistoryReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryReader")
            .field("id", &self.id)
            .finish()
    }
}

/// What every slot is doing, as the events so far say.
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// The sequence number of the last event taken into account.
    pub seq: u64,
    /// One entry per slot (one for a lone test), in slot order.
    pub slots: Vec<SlotState>,
}

/// A slot's state (a lone test is slot 0).
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct SlotState {
    /// The slot's place.
    pub index: usize,
    /// Its name, for a station's slot.
    pub name: Option<String>,
    /// What it is doing.
    pub state: SlotStatus,
    /// The unit's serial number.
    pub serial_number: Option<String>,
    /// The phase running (or last run).
    pub phase: Option<String>,
    /// Its place in the plan, from 0.
    pub phase_index: Option<usize>,
    /// How many phases the plan has.
    pub phase_count: usize,
    /// When the run started (epoch ms).
    pub started_millis: Option<i64>,
    /// The last measurement set.
    pub last_measurement: Option<LastMeasurement>,
    /// Open prompts.
    pub prompts: Vec<OpenPrompt>,
    /// The shared plug it waits for.
    pub waiting_for: Option<String>,
    /// The last run's outcome, until the next run starts.
    pub outcome: Option<Outcome>,
    /// The failed measurements and phases of the last run (`phase.measurement`).
    pub failures: Vec<String>,
}

/// What a slot is doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum SlotStatus {
    /// No run.
    #[default]
    Idle,
    /// A run under way.
    Running,
    /// A run waits for an answer.
    Prompt,
    /// The last run passed.
    Pass,
    /// The last run failed.
    Fail,
    /// The last run ended in an error or a timeout.
    Error,
    /// The last run was aborted.
    Aborted,
}

/// The last measurement a slot set.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct LastMeasurement {
    /// The phase.
    pub phase: String,
    /// The measurement.
    pub name: String,
    /// Its value (none for a multi-dimensional measurement).
    pub value: Option<Value>,
    /// Its outcome once validated.
    pub outcome: Option<MeasurementOutcome>,
}

/// A prompt waiting for its answer.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct OpenPrompt {
    /// Its id.
    pub id: u64,
    /// The question.
    pub message: String,
    /// The answer it wants.
    pub kind: PromptKind,
    /// An image shown with it (a `data:` URL).
    pub image: Option<String>,
}

/// What a subscriber receives.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Received {
    /// The next event.
    Event(Arc<Event>),
    /// This many events were dropped because the queue was full; the next one follows. Start
    /// again from [`Subscription::snapshot`].
    Missed(u64),
}

#[derive(Debug)]
struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
    capacity: usize,
}

#[derive(Debug, Default)]
struct QueueState {
    events: VecDeque<Arc<Event>>,
    missed: u64,
    waiting: bool,
    closed: bool,
}

/// A subscriber's end: events in order, never blocking the run. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    queue: Arc<Queue>,
    bus: Weak<EventBus>,
}

impl EventBus {
    /// A bus with no subscriber.
    pub fn new() -> Self {
        EventBus::default()
    }

    /// A new subscriber, receiving every event published from now on.
    pub fn subscribe(self: &Arc<Self>) -> Subscription {
        self.subscribe_with_capacity(DEFAULT_QUEUE)
    }

    /// A new subscriber whose queue holds `capacity` events (at least 1).
    pub fn subscribe_with_capacity(self: &Arc<Self>, capacity: usize) -> Subscription {
        self.add_subscriber(capacity, true)
    }

    /// A subscriber that is not an observer of the detail (the console).
    pub(crate) fn subscribe_quietly(self: &Arc<Self>, capacity: usize) -> Subscription {
        self.add_subscriber(capacity, false)
    }

    fn add_subscriber(self: &Arc<Self>, capacity: usize, observer: bool) -> Subscription {
        let queue = Arc::new(Queue {
            state: Mutex::new(QueueState::default()),
            ready: Condvar::new(),
            capacity: capacity.max(1),
        });
        let mut inner = self.lock();
        inner.subscribers.retain(|(q, _)| q.strong_count() > 0);
        inner.subscribers.push((Arc::downgrade(&queue), observer));
        // Also forgets the subscribers gone before (a quiet one doesn't observe).
        self.refresh_observed(&inner);
        Subscription {
            queue,
            bus: Arc::downgrade(self),
        }
    }

    /// Keeps the events published from now on, the last `max_events` of them and `max_bytes`
    /// of memory at most (estimated: each event, its texts and values, and the phase record it
    /// refers to, as if it alone held them), for the returned reader to read after the last
    /// one it saw ([`HistoryReader::read_after`]).
    /// Unlike a subscriber's queue, the history can't fall behind: it is filled as each event
    /// is published, at the cost of the event moved in (and the oldest dropped) then.
    ///
    /// `wake` is called (without the bus locked) when new events are worth reading: by the
    /// events that always wake a subscriber, and at least every 20 ms while events come. A
    /// second reader shares the history, which keeps the larger bounds.
    pub fn keep_history(
        self: &Arc<Self>,
        max_events: usize,
        max_bytes: usize,
        wake: impl Fn() + Send + Sync + 'static,
    ) -> HistoryReader {
        let mut inner = self.lock();
        let seq = inner.seq;
        match &mut inner.history {
            Some(history) => history.widen(max_events, max_bytes),
            None => inner.history = Some(History::new(seq, max_events, max_bytes)),
        }
        inner.reader_ids += 1;
        let id = inner.reader_ids;
        inner.readers.push((id, Arc::new(wake)));
        self.observed.store(true, Ordering::Relaxed);
        HistoryReader {
            bus: Arc::downgrade(self),
            id,
        }
    }

    /// Whether anyone needs the detail: an observing subscriber or a history reader.
    fn refresh_observed(&self, inner: &BusInner) {
        let subscribed = inner
            .subscribers
            .iter()
            .any(|(q, observer)| *observer && q.strong_count() > 0);
        self.subscribed.store(subscribed, Ordering::Relaxed);
        self.observed
            .store(subscribed || !inner.readers.is_empty(), Ordering::Relaxed);
    }

    /// A new prompt id.
    pub(crate) fn next_prompt_id(&self) -> u64 {
        self.prompts.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Whether anyone subscribed (detailed events are built only then).
    pub(crate) fn is_observed(&self) -> bool {
        self.observed.load(Ordering::Relaxed)
    }

    /// Whether an observing subscriber takes the events as they come (on a thread that needs
    /// a CPU then); history readers don't.
    pub(crate) fn is_subscribed(&self) -> bool {
        self.subscribed.load(Ordering::Relaxed)
    }

    /// The state of every slot now.
    pub fn snapshot(&self) -> Snapshot {
        let inner = self.lock();
        let mut snapshot = inner.snapshot.clone();
        for (slot, last) in snapshot.slots.iter_mut().zip(&inner.last_measurements) {
            if let Some(last) = last {
                slot.last_measurement = Some(LastMeasurement {
                    phase: last.phase.to_string(),
                    name: last.name.to_string(),
                    value: last.value.clone(),
                    outcome: last.outcome,
                });
            }
        }
        snapshot
    }

    /// The sequence number of the last event published (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.lock().seq
    }

    /// Declares the slots (a station's), so the snapshot lists them before they run.
    pub(crate) fn declare_slots(&self, names: &[String]) {
        let mut inner = self.lock();
        inner.snapshot.slots = names
            .iter()
            .enumerate()
            .map(|(index, name)| SlotState {
                index,
                name: Some(name.clone()),
                ..SlotState::default()
            })
            .collect();
    }

    /// Numbers the event, takes it into the snapshot and the history, and hands it to the
    /// subscribers; returns its sequence number.
    pub(crate) fn publish(&self, slot: Option<usize>, kind: EventKind) -> u64 {
        self.publish_all(slot, [kind], None)
    }

    /// [`EventBus::publish`] for several events of a slot, one after the other, with the
    /// bus locked once (a phase's end: its measurements); a copy of each is appended to
    /// `copies` if given (for the run's journal, written once the bus is unlocked). Returns
    /// the last one's sequence number (the last published if none is given).
    pub(crate) fn publish_all(
        &self,
        slot: Option<usize>,
        kinds: impl IntoIterator<Item = EventKind>,
        mut copies: Option<&mut Vec<Event>>,
    ) -> u64 {
        let mut inner = self.lock();
        let mut after = AfterPublish::default();
        let time_millis = now_millis();
        for kind in kinds {
            inner.add(slot, kind, time_millis, &mut after, copies.as_deref_mut());
        }
        let seq = inner.seq;
        self.finish_publishing(inner, after);
        seq
    }

    /// After publishing: forgets the subscribers gone, unlocks the bus, wakes the history's
    /// readers if an event called for it.
    fn finish_publishing(&self, mut inner: MutexGuard<'_, BusInner>, after: AfterPublish) {
        let readers = if after.wake {
            inner.readers_to_wake()
        } else {
            Vec::new()
        };
        if after.gone {
            inner.subscribers.retain(|(q, _)| q.strong_count() > 0);
            self.refresh_observed(&inner);
        }
        drop(inner);
        for wake in readers {
            wake();
        }
    }

    /// Wakes the subscribers that wait while events are queued for them (the detail of a
    /// phase that is still running), and the history's readers if there are new events.
    pub(crate) fn wake_subscribers(&self) {
        let mut inner = self.lock();
        for queue in inner.subscribers.iter().filter_map(|(q, _)| q.upgrade()) {
            queue.wake_if_pending();
        }
        let readers = inner.readers_to_wake();
        drop(inner);
        for wake in readers {
            wake();
        }
    }

    fn lock(&self) -> MutexGuard<'_, BusInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Queues `event` for each subscriber (one event shared by all).
fn hand_out(
    subscribers: &[(Weak<Queue>, bool)],
    event: &Arc<Event>,
    wake: bool,
    after: &mut AfterPublish,
) {
    for (queue, _) in subscribers {
        match queue.upgrade() {
            Some(queue) => queue.push(event, wake),
            None => after.gone = true,
        }
    }
}

impl std::fmt::Debug for BusInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusInner")
            .field("seq", &self.seq)
            .field("subscribers", &self.subscribers.len())
            .field("history", &self.history)
            .field("readers", &self.readers.len())
            .finish_non_exhaustive()
    }
}

impl BusInner {
    /// Numbers an event and takes it everywhere it goes: the snapshot, the subscribers' queues
    /// (shared by them), the history (as it is: no allocation of its own), `copy`.
    fn add(
        &mut self,
        slot: Option<usize>,
        kind: EventKind,
        time_millis: i64,
        after: &mut AfterPublish,
        copy: Option<&mut Vec<Event>>,
    ) {
        self.seq += 1;
        let event = Event {
            seq: self.seq,
            slot,
            time_millis,
            kind,
        };
        self.take(&event);
        let wake = wakes_now(&event.kind, time_millis, self.last_wake_millis);
        if wake {
            self.last_wake_millis = time_millis;
        }
        after.wake |= wake;
        if let Some(copy) = copy {
            copy.push(event.clone());
        }
        let subscribed = !self.subscribers.is_empty();
        match &mut self.history {
            Some(history) => {
                if subscribed {
                    hand_out(&self.subscribers, &Arc::new(event.clone()), wake, after);
                }
                history.push(event);
            }
            None if subscribed => hand_out(&self.subscribers, &Arc::new(event), wake, after),
            None => {}
        }
    }

    /// Takes a new event into the snapshot and the slots' last measurements.
    fn take(&mut self, event: &Event) {
        self.snapshot.apply(event);
        let last = match &event.kind {
            EventKind::MeasurementSet {
                phase,
                name,
                value,
                outcome,
                ..
            } => Some(Some(LastSet {
                phase: Arc::clone(phase),
                name: Arc::clone(name),
                value: value.clone(),
                outcome: *outcome,
            })),
            EventKind::RunStarted { .. } => Some(None),
            _ => None,
        };
        if let Some(last) = last {
            let index = event.slot.unwrap_or(0);
            if self.last_measurements.len() <= index {
                self.last_measurements.resize_with(index + 1, || None);
            }
            self.last_measurements[index] = last;
        }
    }

    /// The history's readers, if there are events they weren't woken for (then they are).
    fn readers_to_wake(&mut self) -> Vec<Waker> {
        if self.readers.is_empty() || self.readers_woken_seq == self.seq {
            return Vec::new();
        }
        self.readers_woken_seq = self.seq;
        self.readers.iter().map(|(_, w)| Arc::clone(w)).collect()
    }
}

impl HistoryReader {
    /// Calls `read` with the events published after event `seen` (none if it is the last),
    /// oldest first, with the bus locked: it should take what it needs (clone the events it
    /// keeps) and return. [`HistoryRead::Gone`] if the history no longer holds every one of
    /// them (or `seen` is past the last event published): start again from [`HistoryReader::snapshot`],
    /// then read after its `seq`.
    pub fn read_after<R>(&self, seen: u64, read: impl FnOnce(Events<'_>) -> R) -> HistoryRead<R> {
        let Some(bus) = self.bus.upgrade() else {
            return HistoryRead::Gone;
        };
        let inner = bus.lock();
        match &inner.history {
            Some(history) => history.after(seen, inner.seq, read),
            None => HistoryRead::Gone,
        }
    }

    /// What every slot is doing now; its `seq` is the last event published, from which a
    /// reader reads on.
    pub fn snapshot(&self) -> Snapshot {
        self.bus
            .upgrade()
            .map(|bus| bus.snapshot())
            .unwrap_or_default()
    }

    /// The sequence number of the last event published (0 before the first, or once the
    /// bus is gone).
    pub fn last_seq(&self) -> u64 {
        self.bus.upgrade().map_or(0, |bus| bus.last_seq())
    }
}

impl Drop for HistoryReader {
    fn drop(&mut self) {
        if let Some(bus) = self.bus.upgrade() {
            let mut inner = bus.lock();
            inner.readers.retain(|(id, _)| *id != self.id);
            if inner.readers.is_empty() {
                inner.history = None;
            }
            bus.refresh_observed(&inner);
        }
    }
}

/// Whether an event published at `now` (epoch ms) wakes waiting subscribers, the last wake
/// being at `last_wake`: an event that always does ([`wakes`]), or any once the last wake is
/// [`DETAIL_WAKE_MILLIS`] old (or the clock went back that far).
fn wakes_now(kind: &EventKind, now: i64, last_wake: i64) -> bool {
    wakes(kind) || now.abs_diff(last_wake) >= DETAIL_WAKE_MILLIS
}

/// Whether an event wakes a waiting subscriber at once (see [`LAZY_WAKE`]).
fn wakes(kind: &EventKind) -> bool {
    !matches!(
        kind,
        EventKind::PhaseStarted { .. }
            | EventKind::PhaseEnded { .. }
            | EventKind::MeasurementSet { .. }
            | EventKind::SweepPoints { .. }
            | EventKind::Log { .. }
            | EventKind::Attachment { .. }
    )
}

impl Drop for EventBus {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(PoisonError::into_inner);
        for (queue, _) in &inner.subscribers {
            if let Some(queue) = queue.upgrade() {
                queue.close();
            }
        }
    }
}

impl Queue {
    /// Queues the event; wakes the subscriber if it sleeps and `wake` (or its queue is half
    /// full).
    fn push(&self, event: &Arc<Event>, wake: bool) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.events.len() >= self.capacity {
            state.events.pop_front();
            state.missed += 1;
        }
        state.events.push_back(Arc::clone(event));
        let half_full = state.events.len() * 2 >= self.capacity;
        self.wake(state, wake || half_full);
    }

    fn wake_if_pending(&self) {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let pending = !state.events.is_empty();
        self.wake(state, pending);
    }

    /// Wakes the subscriber if `wake` and it sleeps (waking costs a system call), after
    /// releasing the lock: the subscriber woken takes it at once.
    fn wake(&self, mut state: std::sync::MutexGuard<'_, QueueState>, wake: bool) {
        let wake = wake && std::mem::take(&mut state.waiting);
        drop(state);
        if wake {
            self.ready.notify_one();
        }
    }

    fn close(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.closed = true;
        self.ready.notify_all();
    }
}

impl Subscription {
    /// The next event (or how many were missed), waiting for it as long as needed; `None` once
    /// the test or station is gone and every event was received.
    pub fn recv(&self) -> Option<Received> {
        self.recv_until(None)
    }

    /// [`Subscription::recv`], waiting `timeout` at most (`None` then too).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Received> {
        self.recv_until(Instant::now().checked_add(timeout))
    }

    /// The next event if there is one now.
    pub fn try_recv(&self) -> Option<Received> {
        self.recv_until(Some(Instant::now()))
    }

    /// What every slot is doing now: where to start again after [`Received::Missed`], or when
    /// subscribing mid-run.
    pub fn snapshot(&self) -> Snapshot {
        self.bus
            .upgrade()
            .map(|bus| bus.snapshot())
            .unwrap_or_default()
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Option<Received> {
        let queue = &self.queue;
        let mut state = queue.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if state.missed > 0 {
                return Some(Received::Missed(std::mem::take(&mut state.missed)));
            }
            if let Some(event) = state.events.pop_front() {
                return Some(Received::Event(event));
            }
            if state.closed {
                return None;
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => LAZY_WAKE,
            };
            if left.is_zero() {
                return None;
            }
            state.waiting = true;
            state = queue
                .ready
                .wait_timeout(state, left.min(LAZY_WAKE))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            // Awake (woken, or looking on its own): no one needs to wake it now.
            state.waiting = false;
        }
    }

    /// Moves everything queued into `out` ([`Subscription::recv`]'s order), waiting for it as
    /// long as needed, in one look at the queue; `false` once the bus is gone and every event
    /// was received.
    fn recv_all(&self, out: &mut Vec<Received>) -> bool {
        self.recv_all_until(out, None)
    }

    /// Moves everything queued into `out` ([`Subscription::recv`]'s order) in one look at the
    /// queue, waiting `timeout` at most for the first; `false` once the bus is gone and every
    /// event was received. A subscriber that takes thousands of events a second takes them
    /// this way: one lock of the queue per batch, not one per event.
    pub fn recv_all_timeout(&self, out: &mut Vec<Received>, timeout: Duration) -> bool {
        self.recv_all_until(out, Instant::now().checked_add(timeout))
    }

    fn recv_all_until(&self, out: &mut Vec<Received>, deadline: Option<Instant>) -> bool {
        let queue = &self.queue;
        let mut state = queue.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if state.missed > 0 {
                out.push(Received::Missed(std::mem::take(&mut state.missed)));
            }
            if !state.events.is_empty() || !out.is_empty() {
                out.extend(state.events.drain(..).map(Received::Event));
                return true;
            }
            if state.closed {
                return false;
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => LAZY_WAKE,
            };
            if left.is_zero() {
                return true;
            }
            state.waiting = true;
            state = queue
                .ready
                .wait_timeout(state, left.min(LAZY_WAKE))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            state.waiting = false;
        }
    }
}

/// Calls `observer` with everything `subscription` receives, on a thread of its own, until the
/// bus is gone.
pub(crate) fn observe(
    subscription: Subscription,
    mut observer: impl FnMut(Received) + Send + 'static,
) {
    let spawned = std::thread::Builder::new()
        .name("tofu-observer".into())
        .spawn(move || {
            // Everything queued at once: one look at the queue, not one per event.
            let mut batch = Vec::new();
            while subscription.recv_all(&mut batch) {
                for received in batch.drain(..) {
                    observer(received);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("can't start an observer's thread: {e}; it sees nothing");
    }
}

impl Snapshot {
    fn slot_mut(&mut self, slot: Option<usize>) -> &mut SlotState {
        let index = slot.unwrap_or(0);
        while self.slots.len() <= index {
            let next = self.slots.len();
            self.slots.push(SlotState {
                index: next,
                ..SlotState::default()
            });
        }
        &mut self.slots[index]
    }

    fn apply(&mut self, event: &Event) {
        self.seq = event.seq;
        let slot = self.slot_mut(event.slot);
        match &event.kind {
            EventKind::RunStarted {
                serial_number,
                plan,
                ..
            } => {
                *slot = SlotState {
                    index: slot.index,
                    name: slot.name.take(),
                    state: SlotStatus::Running,
                    serial_number: Some(serial_number.clone()),
                    phase_count: plan.len(),
                    started_millis: Some(event.time_millis),
                    ..SlotState::default()
                };
            }
            EventKind::UnitIdentified { serial_number } => {
                slot.serial_number = Some(serial_number.clone());
            }
            EventKind::PhaseStarted { index, name, .. } => {
                slot.phase = Some(name.clone());
                slot.phase_index = Some(*index);
                slot.waiting_for = None;
            }
            // Kept by the bus as the event itself (`BusInner::last_measurements`).
            EventKind::MeasurementSet { .. } => {}
            EventKind::PhaseEnded { record, .. } => slot.phase_ended(record),
            EventKind::PromptOpened {
                id,
                message,
                kind,
                image,
            } => {
                slot.prompts.push(OpenPrompt {
                    id: *id,
                    message: message.clone(),
                    kind: kind.clone(),
                    image: image.clone(),
                });
                // A slot asking for its next unit keeps showing its last outcome.
                let next_unit = matches!(kind, PromptKind::SerialNumber { .. })
                    && !matches!(slot.state, SlotStatus::Running | SlotStatus::Prompt);
                if !next_unit {
                    slot.state = SlotStatus::Prompt;
                }
            }
            EventKind::PromptAnswered { id, .. } | EventKind::PromptClosed { id, .. } => {
                slot.prompts.retain(|p| p.id != *id);
                if slot.prompts.is_empty() && slot.state == SlotStatus::Prompt {
                    slot.state = SlotStatus::Running;
                }
            }
            EventKind::WaitingForPlug { plug, .. } => slot.waiting_for = Some(plug.clone()),
            EventKind::RunEnded { record } => slot.run_ended(record.outcome),
            _ => {}
        }
    }
}

impl SlotState {
    /// A failed phase's failed measurements (or the phase itself) join the failures.
    fn phase_ended(&mut self, record: &crate::record::PhaseRecord) {
        // Its wait for a shared plug, if any, is over.
        self.waiting_for = None;
        if matches!(record.outcome, PhaseOutcome::Fail | PhaseOutcome::Error) {
            let failed: Vec<String> = record
                .measurements
                .iter()
                .filter(|m| m.outcome == MeasurementOutcome::Fail)
                .map(|m| format!("{}.{}", record.name, m.name()))
                .collect();
            if failed.is_empty() {
                self.failures.push(record.name.clone());
            } else {
                self.failures.extend(failed);
            }
        }
    }

    fn run_ended(&mut self, outcome: Outcome) {
        self.state = match outcome {
            Outcome::Pass => SlotStatus::Pass,
            Outcome::Fail => SlotStatus::Fail,
            Outcome::Aborted => SlotStatus::Aborted,
            _ => SlotStatus::Error,
        };
        self.outcome = Some(outcome);
        self.prompts.clear();
        self.waiting_for = None;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn log(bus: &EventBus, n: usize) {
        for i in 0..n {
            bus.publish(
                None,
                EventKind::UnitIdentified {
                    serial_number: format!("SN{i}"),
                },
            );
        }
    }

    fn seq(r: Option<Received>) -> u64 {
        match r {
            Some(Received::Event(e)) => e.seq,
            other => panic!("{other:?}"),
        }
    }

    fn run_started(bus: &EventBus, slot: usize) {
        bus.publish(
            Some(slot),
            EventKind::RunStarted {
                serial_number: "SN".into(),
                procedure_id: "P".into(),
                test_name: "T".into(),
                slot_name: None,
                plan: Arc::new(Vec::new()),
            },
        );
    }

    fn measured(bus: &EventBus, slot: usize, name: &str, value: f64) {
        bus.publish(
            Some(slot),
            EventKind::MeasurementSet {
                phase: "p".into(),
                name: name.into(),
                value: Some(Value::Number(value)),
                points: None,
                outcome: None,
                marginal: false,
                validators: Arc::from([]),
                units: None,
            },
        );
    }

    /// Each slot's last measurement is in a snapshot, until its next run starts.
    #[test]
    fn a_snapshot_has_each_slots_last_measurement() {
        let bus = EventBus::new();
        run_started(&bus, 0);
        run_started(&bus, 2);
        measured(&bus, 0, "a", 1.0);
        measured(&bus, 2, "b", 2.0);
        measured(&bus, 0, "c", 3.0);
        let last = |s: &Snapshot, i: usize| {
            s.slots[i]
                .last_measurement
                .as_ref()
                .map(|m| (m.name.clone(), m.value.clone()))
        };
        let snapshot = bus.snapshot();
        assert_eq!(
            last(&snapshot, 0),
            Some(("c".into(), Some(Value::Number(3.0))))
        );
        assert_eq!(last(&snapshot, 1), None);
        assert_eq!(
            last(&snapshot, 2),
            Some(("b".into(), Some(Value::Number(2.0))))
        );
        run_started(&bus, 0);
        let snapshot = bus.snapshot();
        assert_eq!(last(&snapshot, 0), None);
        assert!(last(&snapshot, 2).is_some());
    }

    #[test]
    fn subscribers_get_every_event_in_order() {
        let bus = Arc::new(EventBus::new());
        let (a, b) = (bus.subscribe(), bus.subscribe());
        log(&bus, 3);
        for s in [&a, &b] {
            assert_eq!(
                (1..=3).map(|_| seq(s.try_recv())).collect::<Vec<_>>(),
                [1, 2, 3]
            );
            assert!(s.try_recv().is_none());
        }
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_says_how_many() {
        let bus = Arc::new(EventBus::new());
        let slow = bus.subscribe_with_capacity(2);
        log(&bus, 5);
        assert!(matches!(slow.try_recv(), Some(Received::Missed(3))));
        assert_eq!(seq(slow.try_recv()), 4);
        assert_eq!(seq(slow.try_recv()), 5);
        assert_eq!(slow.snapshot().seq, 5);
        assert_eq!(bus.last_seq(), 5);
        assert_eq!(
            slow.snapshot().slots[0].serial_number.as_deref(),
            Some("SN4")
        );
    }

    #[test]
    fn a_waiting_subscriber_is_woken_and_ends_with_the_bus() {
        let bus = Arc::new(EventBus::new());
        let sub = bus.subscribe();
        let reader = std::thread::spawn(move || {
            let first = seq(sub.recv());
            (first, sub)
        });
        std::thread::sleep(Duration::from_millis(20));
        log(&bus, 1);
        let (first, sub) = reader.join().unwrap();
        assert_eq!(first, 1);
        let ender = std::thread::spawn(move || sub.recv().is_none());
        drop(bus);
        assert!(ender.join().unwrap());
    }

    fn detail(bus: &EventBus) {
        bus.publish(
            None,
            EventKind::PhaseStarted {
                index: 0,
                name: "p".into(),
                attempt: 1,
            },
        );
    }

    #[test]
    fn which_events_wake_subscribers() {
        let started = EventKind::PhaseStarted {
            index: 0,
            name: "p".into(),
            attempt: 1,
        };
        let opened = EventKind::PromptOpened {
            id: 1,
            message: "m".into(),
            kind: PromptKind::Text,
            image: None,
        };
        // (event, now, last wake, wakes)
        let table = [
            (&started, 1_000, 1_000, false),
            (&started, 1_019, 1_000, false),
            (&started, 1_020, 1_000, true),
            (&started, 5_000, 1_000, true),
            // The clock went back: wake, and start counting again from there.
            (&started, 900, 1_000, true),
            (&started, 990, 1_000, false),
            (&opened, 1_000, 1_000, true),
            (&opened, 1_001, 1_000, true),
        ];
        for (kind, now, last, expected) in table {
            assert_eq!(
                wakes_now(kind, now, last),
                expected,
                "{kind:?} at {now}, last {last}"
            );
        }
    }

    #[test]
    fn a_phase_detail_reaches_a_waiting_subscriber_without_a_wake() {
        let bus = Arc::new(EventBus::new());
        let sub = bus.subscribe();
        let reader = std::thread::spawn(move || seq(sub.recv_timeout(Duration::from_secs(30))));
        std::thread::sleep(Duration::from_millis(20));
        // Received whether it wakes the subscriber (the first event does: no wake yet) or not.
        detail(&bus);
        assert_eq!(reader.join().unwrap(), 1);
    }

    #[test]
    fn the_runs_look_and_other_events_wake_subscribers_with_detail_queued() {
        let bus = Arc::new(EventBus::new());
        let (a, b) = (bus.subscribe(), bus.subscribe());
        let reader = |sub: Subscription| {
            std::thread::spawn(move || {
                let mut all = Vec::new();
                let mut batch = Vec::new();
                while all.len() < 2 && sub.recv_all(&mut batch) {
                    all.extend(batch.drain(..).map(|r| seq(Some(r))));
                }
                all
            })
        };
        let (ra, rb) = (reader(a), reader(b));
        std::thread::sleep(Duration::from_millis(20));
        detail(&bus);
        bus.wake_subscribers();
        detail(&bus);
        log(&bus, 1);
        // In order, each subscriber all of them, the detail included.
        for r in [ra, rb] {
            let got = r.join().unwrap();
            assert_eq!(got[..2], [1, 2]);
        }
    }

    #[test]
    fn recv_all_timeout_takes_everything_queued_at_once_or_nothing_after_its_wait() {
        let bus = Arc::new(EventBus::new());
        let sub = bus.subscribe_with_capacity(3);
        let mut got = Vec::new();
        assert!(sub.recv_all_timeout(&mut got, Duration::from_millis(5)));
        assert!(got.is_empty());
        log(&bus, 5);
        assert!(sub.recv_all_timeout(&mut got, Duration::from_millis(5)));
        assert!(matches!(got[0], Received::Missed(2)));
        let seqs: Vec<u64> = got[1..].iter().map(|r| seq(Some(r.clone()))).collect();
        assert_eq!(seqs, [3, 4, 5]);
        got.clear();
        drop(bus);
        assert!(!sub.recv_all_timeout(&mut got, Duration::from_millis(5)));
    }

    fn read(reader: &HistoryReader, seen: u64) -> Option<Vec<u64>> {
        match reader.read_after(seen, |events| events.map(|e| e.seq).collect()) {
            HistoryRead::Events(seqs) => Some(seqs),
            HistoryRead::Gone => None,
        }
    }

    /// The history misses nothing a queue of the same size would drop, and a snapshot plus
    /// what follows it is every event.
    #[test]
    fn a_history_reader_gets_every_event_after_the_one_it_saw() {
        let bus = Arc::new(EventBus::new());
        log(&bus, 2);
        let reader = bus.keep_history(100, usize::MAX, || {});
        let queue = bus.subscribe_with_capacity(10);
        assert_eq!(read(&reader, 2), Some(vec![]));
        assert_eq!(read(&reader, 1), None, "published before the history began");
        log(&bus, 50);
        assert!(matches!(queue.try_recv(), Some(Received::Missed(40))));
        assert_eq!(read(&reader, 2), Some((3..=52).collect()));
        assert_eq!(read(&reader, 50), Some(vec![51, 52]));
        let snapshot = reader.snapshot();
        assert_eq!(snapshot.seq, 52);
        assert_eq!(snapshot.slots[0].serial_number.as_deref(), Some("SN49"));
        assert_eq!(reader.last_seq(), 52);
        // Beyond its bound, the oldest go.
        log(&bus, 60);
        assert_eq!(read(&reader, 11), None);
        assert_eq!(read(&reader, 12).map(|s| s.len()), Some(100));
    }

    #[test]
    fn history_readers_are_woken_when_subscribers_would_be() {
        let bus = Arc::new(EventBus::new());
        let woken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&woken);
        let reader = bus.keep_history(100, usize::MAX, move || {
            count.fetch_add(1, Ordering::Relaxed);
        });
        let woken = || woken.load(Ordering::Relaxed);
        // The first event wakes (no wake yet); the run's look then has nothing new.
        detail(&bus);
        assert_eq!(woken(), 1);
        bus.wake_subscribers();
        assert_eq!(woken(), 1);
        // A phase's detail wakes the readers, or the run's look does (the 20 ms rule, tested
        // as a table above): once either way.
        detail(&bus);
        bus.wake_subscribers();
        assert_eq!(woken(), 2);
        bus.wake_subscribers();
        assert_eq!(woken(), 2);
        // An event that always wakes.
        log(&bus, 1);
        assert_eq!(woken(), 3);
        assert_eq!(read(&reader, 0), Some(vec![1, 2, 3]));
    }

    #[test]
    fn the_history_lasts_while_it_has_a_reader_and_the_larger_bounds_hold() {
        let bus = Arc::new(EventBus::new());
        assert!(!bus.is_observed());
        let a = bus.keep_history(2, usize::MAX, || {});
        assert!(bus.is_observed());
        assert!(!bus.is_subscribed());
        let b = bus.keep_history(5, usize::MAX, || {});
        log(&bus, 6);
        assert_eq!(read(&a, 1), Some(vec![2, 3, 4, 5, 6]));
        drop(b);
        assert!(bus.is_observed());
        assert_eq!(read(&a, 1).map(|s| s.len()), Some(5));
        drop(a);
        assert!(!bus.is_observed());
        // A new reader starts from now.
        let c = bus.keep_history(5, usize::MAX, || {});
        assert_eq!(read(&c, 5), None);
        log(&bus, 1);
        assert_eq!(read(&c, 6), Some(vec![7]));
        drop(bus);
        assert_eq!(read(&c, 6), None, "the bus is gone");
        assert_eq!(c.last_seq(), 0);
    }

    #[test]
    fn dropped_subscribers_stop_the_detail() {
        let bus = Arc::new(EventBus::new());
        assert!(!bus.is_observed());
        let sub = bus.subscribe();
        assert!(bus.is_observed() && bus.is_subscribed());
        drop(sub);
        log(&bus, 1);
        assert!(!bus.is_observed() && !bus.is_subscribed());
        // Gone without an event since: a new subscriber that doesn't observe finds it out.
        let sub = bus.subscribe();
        drop(sub);
        let _console = bus.subscribe_quietly(4);
        assert!(!bus.is_observed() && !bus.is_subscribed());
    }
}
