//! A station: one test run on several units at once, one unit per slot of the fixture.
//!
//! Each slot has its own [`Test`], built by the closure given to [`Station::new`]: its own
//! plugs, its own output callbacks (its own JSON record and upload), its own record, which
//! says which slot ran it ([`TestRecord::slot`](crate::TestRecord::slot)). A plug given to
//! [`Station::shared_plug`] is one instance for the whole station; a phase that uses it holds
//! it alone while it runs, and the time it waited for it is in its record
//! (`plug_wait_millis`), not in its time nor its timeout.
//!
//! Slots run on threads of their own. In the [independent](SlotMode::Independent) mode each
//! goes through the phases at its own pace (TestStand's parallel model); in the
//! [synchronized](SlotMode::Synchronized) mode every slot finishes a phase before any slot
//! starts the next one (TestStand's batch model), for a shared chamber or fixture. Whatever
//! happens in one slot (a panic, an error, a timeout, a failure) changes nothing in the
//! others. Ctrl-C aborts every slot; each runs its teardowns and writes its record as ABORTED.
//!
//! ```no_run
//! use tofu_core::prelude::*;
//!
//! #[derive(Default)]
//! struct PowerSupply;
//! impl Plug for PowerSupply {}
//!
//! #[phase]
//! #[measures(current: f64 = at_most(0.5).units(AMPERE))]
//! fn current(psu: &mut PowerSupply, m: &mut current::Measurements) {
//!     m.current.set(0.21);
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let mut station = Station::new(4, |_slot| Test::new("FVT1").phases([current]))
//!         .shared_plug(PowerSupply);
//!     station
//!         .run(|slot| format!("SN-{}", slot.index() + 1))
//!         .exit_code()
//! }
//! ```

use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::abort::Abort;
use crate::bus::{EventBus, Received, Subscription};
use crate::clock::now_millis;
use crate::console::{Console, ConsoleOptions};
use crate::control::{Commands, Control};
use crate::event::EventKind;
use crate::execution::Execution;
use crate::executor::SerialNumber;
use crate::phase_sync::PhaseSync;
use crate::plug::{DEFAULT_PLUG_TIMEOUT, Plug, PlugEntry};
use crate::plug_calls;
use crate::prompt::IntoSerialNumber;
use crate::record::SlotRecord;
use crate::slot::SlotRun;
use crate::test::{Test, ask_serial_number};

/// How the slots of a station move through the phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SlotMode {
    /// Each slot goes through the phases on its own (TestStand's parallel model).
    #[default]
    Independent,
    /// Every slot finishes phase k before any slot starts phase k+1 (TestStand's batch
    /// model).
    Synchronized,
}

/// A slot of the station: its place and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInfo {
    index: usize,
    name: String,
}

impl SlotInfo {
    /// The slot's place on the station, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The slot's name (`"slot 1"`… unless named with [`Station::with_slot_names`]).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for SlotInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// A test station with several slots. See the [module docs](self).
pub struct Station {
    slots: Vec<(SlotInfo, Test)>,
    shared: Vec<PlugEntry>,
    mode: SlotMode,
    quiet: bool,
    /// The station's events: every slot's, numbered in one sequence.
    bus: Arc<EventBus>,
    control: Arc<Control>,
    console: Option<Console>,
}

impl fmt::Debug for Station {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Station")
            .field(
                "slots",
                &self.slots.iter().map(|(s, _)| &s.name).collect::<Vec<_>>(),
            )
            .field("shared", &self.shared)
            .field("mode", &self.mode)
            .finish()
    }
}

/// The slots' runs of one batch, in slot order.
#[derive(Debug)]
#[must_use = "the exit code says whether every unit passed"]
pub struct Batch {
    /// Each slot's execution, in slot order: its record and what its outputs did with it. A
    /// slot left empty (its serial number source gave `None`) has none.
    pub executions: Vec<Execution>,
}

impl Batch {
    /// Whether every slot's run passed.
    pub fn passed(&self) -> bool {
        self.executions.iter().all(Execution::passed)
    }

    /// The worst of the slots' exit codes ([`crate::exit`]): 2 if a slot was ERROR, TIMEOUT or
    /// ABORTED, else 1 if a unit failed, else 3 if an output failed, else 0.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(crate::exit::worst(
            self.executions.iter().map(Execution::exit_status),
        ))
    }
}

/// What a station's slot closure returns: a [`Test`] (the station is built), or a
/// `Result<Test, E>` (the station or the first error).
pub trait SlotTest {
    /// What [`Station::new`] returns: `Station`, or `Result<Station, E>`.
    type Station;
    /// The error, if any.
    type Error;
    /// The test, or the error.
    fn into_test(self) -> Result<Test, Self::Error>;
    /// The station, or the error, as [`Station::new`] returns it.
    fn station(station: Result<Station, Self::Error>) -> Self::Station;
}

impl SlotTest for Test {
    type Station = Station;
    type Error = std::convert::Infallible;
    fn into_test(self) -> Result<Test, Self::Error> {
        Ok(self)
    }
    fn station(station: Result<Station, Self::Error>) -> Station {
        match station {
            Ok(station) => station,
            Err(never) => match never {},
        }
    }
}

impl<E> SlotTest for Result<Test, E> {
    type Station = Result<Station, E>;
    type Error = E;
    fn into_test(self) -> Result<Test, E> {
        self
    }
    fn station(station: Result<Station, E>) -> Result<Station, E> {
        station
    }
}

impl Station {
    /// A station of `slots` slots, named `slot 1`, `slot 2`…; `test` builds each slot's test
    /// (called once per slot, in order).
    ///
    /// `test` returns a [`Test`], or a `Result<Test, E>` so that `?` works in it (a limits
    /// file, an instrument to open); then `new` returns `Result<Station, E>`, the first error.
    ///
    /// ```no_run
    /// # use tofu_core::prelude::*;
    /// # #[phase] fn rails() {}
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let station = Station::new(4, |_slot| {
    ///     Test::new("FVT1").phases([rails]).limits_file("limits.toml")
    /// })?;
    /// # let _ = station; Ok(()) }
    /// ```
    // A `Station`, or a `Result<Station, E>` when the closure returns a `Result`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new<T: SlotTest>(slots: usize, test: impl FnMut(&SlotInfo) -> T) -> T::Station {
        Station::with_slot_names((1..=slots).map(|i| format!("slot {i}")), test)
    }

    /// A station with one slot per name (the fixture's labels, e.g. `"A1"`, `"A2"`); `test` as
    /// in [`Station::new`].
    pub fn with_slot_names<T: SlotTest>(
        names: impl IntoIterator<Item = impl Into<String>>,
        mut test: impl FnMut(&SlotInfo) -> T,
    ) -> T::Station {
        let bus = Arc::new(EventBus::new());
        let control = Arc::new(Control::default());
        let slots: Result<Vec<(SlotInfo, Test)>, T::Error> = names
            .into_iter()
            .enumerate()
            .map(|(index, name)| {
                let info = SlotInfo {
                    index,
                    name: name.into(),
                };
                let mut test = test(&info).into_test()?;
                test.join_station(&bus, &control, index);
                Ok((info, test))
            })
            .collect();
        T::station(slots.map(|slots| {
            bus.declare_slots(
                &slots
                    .iter()
                    .map(|(s, _)| s.name.clone())
                    .collect::<Vec<_>>(),
            );
            Station {
                slots,
                shared: Vec::new(),
                mode: SlotMode::Independent,
                quiet: false,
                bus,
                control,
                console: None,
            }
        }))
    }

    /// Adds a plug shared by every slot: one instance, set up before the slots start and torn
    /// down after they all end, held by one phase at a time.
    pub fn shared_plug<T: Plug>(self, plug: T) -> Self {
        self.shared_plug_dyn(Box::new(plug))
    }

    /// [`Station::shared_plug`] for a plug that phases ask for as a trait object
    /// (`psu: &mut dyn Supply`).
    pub fn shared_plug_dyn<T: ?Sized + Plug>(mut self, plug: Box<T>) -> Self {
        let entry = PlugEntry::new(plug).into_shared();
        for (_, test) in &mut self.slots {
            test.add_shared_plug(&entry);
        }
        self.shared.push(entry);
        self
    }

    /// Every slot finishes a phase before any starts the next ([`SlotMode::Synchronized`]).
    pub fn synchronized(self) -> Self {
        self.mode(SlotMode::Synchronized)
    }

    /// Sets how the slots move through the phases.
    pub fn mode(mut self, mode: SlotMode) -> Self {
        self.mode = mode;
        self
    }

    /// Prints neither the phases' progress nor the summary lines.
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// The slots.
    pub fn slots(&self) -> impl ExactSizeIterator<Item = &SlotInfo> {
        self.slots.iter().map(|(info, _)| info)
    }

    /// A new observer of every slot's events, numbered in one sequence (see [`Subscription`]).
    pub fn subscribe(&self) -> Subscription {
        self.bus.subscribe()
    }

    /// The station's event bus (to subscribe with a queue of another size, or take
    /// snapshots of every slot).
    pub fn events(&self) -> Arc<EventBus> {
        Arc::clone(&self.bus)
    }

    /// Calls `observer` with every event of every slot, in order, on a thread of its own.
    pub fn observe(self, observer: impl FnMut(Received) + Send + 'static) -> Self {
        crate::bus::observe(self.bus.subscribe(), observer);
        self
    }

    /// A handle to send the station commands while it runs (abort a slot, abort all), from
    /// any thread.
    pub fn commands(&self) -> Commands {
        Commands {
            control: Arc::clone(&self.control),
        }
    }

    /// Runs the test on every slot at once and waits for all of them. `serial_number` gives
    /// each slot's serial number, slot after slot, before the shared plugs are set up and any
    /// slot starts (so an operator scans the boards in order). An error or a panic there, or
    /// a serial number another slot already has, makes that slot's run ERROR (with the codes
    /// of [`Test::execute`]), and the other slots run.
    ///
    /// Call it again for the next batch of units: the slots' tests and plugs are kept.
    pub fn run<S: IntoSerialNumber>(&mut self, serial_number: impl FnMut(&SlotInfo) -> S) -> Batch {
        // The station's own events (shared plugs) go to the console like the slots' do.
        crate::logging::with_capturing_subscriber(|_| self.run_batch(serial_number))
    }

    fn run_batch<S: IntoSerialNumber>(
        &mut self,
        mut serial_number: impl FnMut(&SlotInfo) -> S,
    ) -> Batch {
        self.start_console();
        // The station's own abort (its shared plugs), and one per slot: a command can abort
        // one slot; a signal aborts them all.
        let station_abort = Arc::new(Abort::new());
        let aborts: Vec<Arc<Abort>> = self.slots.iter().map(|_| Arc::new(Abort::new())).collect();
        let _watches: Vec<_> = std::iter::once(&station_abort)
            .chain(&aborts)
            .map(crate::signals::watch)
            .collect();
        let (serials, empty) = self.ask_serial_numbers(&mut serial_number, &aborts);
        let (set_up, setup_error) = self.set_up_shared(&station_abort);
        // Asked now, while no slot holds them: their instruments' identities are read.
        let shared_metadata: Arc<[crate::plug::PlugMetadata]> =
            crate::plug::record_metadata(&self.shared).into();
        let execution_id = new_execution_id();
        let sync = (self.mode == SlotMode::Synchronized)
            .then(|| Arc::new(PhaseSync::new(self.slots.len())));
        // An empty slot has left the synchronization before it starts: nobody waits for it.
        for (i, _) in empty.iter().enumerate().filter(|(_, empty)| **empty) {
            if let Some(sync) = &sync {
                sync.leave(i);
            }
        }
        let start = now_millis();
        let jobs: Vec<SlotJob<'_>> = self
            .slots
            .iter_mut()
            .zip(serials)
            .zip(aborts)
            .zip(&empty)
            .filter(|(_, empty)| !**empty)
            .map(|((((info, test), serial), abort), _)| {
                let slot = SlotRun {
                    record: SlotRecord {
                        index: info.index,
                        name: info.name.clone(),
                        execution_id: execution_id.clone(),
                    },
                    sync: sync.clone(),
                    shared_setup_error: setup_error.clone(),
                    shared_metadata: Arc::clone(&shared_metadata),
                };
                std::sync::Mutex::new(Some((test, serial, slot, abort)))
            })
            .collect();
        let executions = run_slots(&jobs);
        plug_calls::tear_down_all(
            self.shared[..set_up].iter(),
            &station_abort,
            DEFAULT_PLUG_TIMEOUT,
            &mut |_, _| {},
        );
        let ended = self.bus.publish(
            None,
            EventKind::BatchEnded {
                synchronized: self.mode == SlotMode::Synchronized,
                millis: now_millis() - start,
            },
        );
        if let Some(console) = &self.console {
            console.catch_up(ended);
        }
        Batch { executions }
    }

    /// Asks each slot's serial number (its questions go to its desk and end with its abort);
    /// also says which slots were given no unit (`None`: left empty, no run).
    fn ask_serial_numbers<S: IntoSerialNumber>(
        &self,
        serial_number: &mut impl FnMut(&SlotInfo) -> S,
        aborts: &[Arc<Abort>],
    ) -> (Vec<SerialNumber>, Vec<bool>) {
        let mut serials: Vec<SerialNumber> = Vec::with_capacity(self.slots.len());
        let mut empty = vec![false; self.slots.len()];
        for (i, ((info, test), abort)) in self.slots.iter().zip(aborts).enumerate() {
            // A question for this slot's unit goes to its desk and ends with an abort.
            let asking = crate::prompt::AskContext {
                desk: Arc::clone(&test.desk),
                waiting: crate::desk::Waiting {
                    abort: Arc::clone(abort),
                    level: 1,
                    stop: None,
                },
            };
            let mut serial = crate::prompt::asking(asking, || {
                ask_serial_number(|| {
                    let given = serial_number(info);
                    empty[i] = given.is_no_unit();
                    given
                })
            });
            // One unit can't be in two slots: a board scanned twice is an error.
            if let Ok(Ok(s)) = &serial
                && let Some(other) = serials
                    .iter()
                    .position(|o| matches!(o, Ok(Ok(other)) if other == s))
            {
                serial = Ok(Err(format!(
                    "{s} is the serial number of the unit in {} already",
                    self.slots[other].0
                )));
            }
            serials.push(serial);
        }
        (serials, empty)
    }

    /// Runs every slot on its own, unit after unit, until each slot's serial number source
    /// gives no unit (`None`) or Ctrl-C (SIGTERM, SIGHUP) stops the station: a slot asks for
    /// its next unit as soon as its run is closed, while the other slots go on (the operator
    /// scans a board into any free slot, and it starts). The shared plugs are set up once,
    /// before the first unit, and torn down at the end. Returns how many runs were made (each
    /// run's record went to its outputs; none is kept here, so a station can run for weeks).
    /// [`Commands::abort_slot`] and [`Commands::abort_all`] abort the runs under way; the slots
    /// then ask for their next unit.
    ///
    /// The slots move through the phases independently (a synchronized station needs batches:
    /// [`Station::run`]).
    pub fn run_continuously<S: IntoSerialNumber>(
        &mut self,
        serial_number: impl Fn(&SlotInfo) -> S + Sync,
    ) -> usize {
        crate::logging::with_capturing_subscriber(|_| self.run_slots_continuously(&serial_number))
    }

    fn run_slots_continuously<S: IntoSerialNumber>(
        &mut self,
        serial_number: &(impl Fn(&SlotInfo) -> S + Sync),
    ) -> usize {
        self.start_console();
        // Signals stop the station: the runs under way abort, no slot asks for another unit.
        let station_abort = Arc::new(Abort::new());
        let _watch = crate::signals::watch(&station_abort);
        let (set_up, setup_error) = self.set_up_shared(&station_abort);
        // Asked now, while no slot holds them: their instruments' identities are read.
        let shared_metadata: Arc<[crate::plug::PlugMetadata]> =
            crate::plug::record_metadata(&self.shared).into();
        let shared = Continuous {
            station_abort: &station_abort,
            setup_error: &setup_error,
            execution_id: &new_execution_id(),
            shared_metadata: &shared_metadata,
            done: &AtomicU64::new(0),
        };
        std::thread::scope(|scope| {
            for (info, test) in &mut self.slots {
                let shared = &shared;
                let job = move || shared.run_slot(info, test, serial_number);
                if let Err(e) = std::thread::Builder::new()
                    .name("tofu-slot".into())
                    .spawn_scoped(scope, job)
                {
                    tracing::error!("can't start a thread for a slot ({e}); it stays empty");
                }
            }
        });
        plug_calls::tear_down_all(
            self.shared[..set_up].iter(),
            &station_abort,
            DEFAULT_PLUG_TIMEOUT,
            &mut |_, _| {},
        );
        usize::try_from(shared.done.load(Ordering::Relaxed)).unwrap_or(usize::MAX)
    }

    /// The console's progress lines, unless quiet (once per station).
    fn start_console(&mut self) {
        if !self.quiet && self.console.is_none() {
            self.console = Some(Console::start(
                &self.bus,
                ConsoleOptions {
                    progress: true,
                    summary: false,
                    batch: true,
                    stderr: false,
                },
            ));
        }
    }

    /// Sets up the shared plugs in order; stops at the first failure. Returns how many were
    /// set up, and the failure.
    fn set_up_shared(&self, abort: &Abort) -> (usize, Option<String>) {
        let (count, error) =
            plug_calls::set_up_all(&self.shared, abort, DEFAULT_PLUG_TIMEOUT, &mut |_, _| {});
        let error = error.map(|e| format!("shared {e}"));
        if let Some(error) = &error {
            tracing::error!("{error}");
        }
        (count, error)
    }
}

/// What the slots of a station running continuously share.
struct Continuous<'a> {
    station_abort: &'a Arc<Abort>,
    setup_error: &'a Option<String>,
    execution_id: &'a String,
    shared_metadata: &'a Arc<[crate::plug::PlugMetadata]>,
    /// How many runs were made.
    done: &'a AtomicU64,
}

impl Continuous<'_> {
    /// One slot, unit after unit, until its source gives no unit or the station stops.
    fn run_slot<S: IntoSerialNumber>(
        &self,
        info: &SlotInfo,
        test: &mut Test,
        serial_number: &(impl Fn(&SlotInfo) -> S + Sync),
    ) {
        while !self.station_abort.is_aborted() {
            let abort = Arc::new(Abort::new());
            let _watch = crate::signals::watch(&abort);
            let asking = crate::prompt::AskContext {
                desk: Arc::clone(&test.desk),
                waiting: crate::desk::Waiting {
                    abort: Arc::clone(&abort),
                    level: 1,
                    stop: None,
                },
            };
            let mut empty = false;
            let serial = crate::prompt::asking(asking, || {
                ask_serial_number(|| {
                    let given = serial_number(info);
                    empty = given.is_no_unit();
                    given
                })
            });
            if empty || self.station_abort.is_aborted() {
                break;
            }
            let slot = SlotRun {
                record: SlotRecord {
                    index: info.index,
                    name: info.name.clone(),
                    execution_id: self.execution_id.clone(),
                },
                sync: None,
                shared_setup_error: self.setup_error.clone(),
                shared_metadata: Arc::clone(self.shared_metadata),
            };
            // A source that fails (no terminal, end of input) would fail again: its run is
            // recorded as ERROR, and the slot stops.
            let failed = !matches!(serial, Ok(Ok(_)));
            // The record went to the run's outputs: nothing is kept here.
            let _ = test.execute_run(abort, move || serial, Some(&slot));
            self.done.fetch_add(1, Ordering::Relaxed);
            if failed {
                break;
            }
        }
    }
}

/// One slot's run, waiting for the thread that takes it.
/// Runs each slot's job on a thread of its own and returns their executions.
fn run_slots(jobs: &[SlotJob<'_>]) -> Vec<Execution> {
    std::thread::scope(|scope| {
        let running: Vec<_> = jobs
            .iter()
            .map(|job| {
                std::thread::Builder::new()
                    .name("tofu-slot".into())
                    .spawn_scoped(scope, || take(job).map(run_slot))
            })
            .collect();
        // A slot whose thread could not start runs here, before any join: synchronized
        // slots wait for it.
        let mut alone: Vec<Option<Execution>> = running
            .iter()
            .zip(jobs)
            .map(|(spawned, job)| match spawned {
                Ok(_) => None,
                Err(e) => {
                    let slot = take(job)?;
                    tracing::warn!(
                        "can't start a thread for {} ({e}); it runs on the station's",
                        slot.2.record.name
                    );
                    Some(run_slot(slot))
                }
            })
            .collect();
        running
            .into_iter()
            .zip(alone.iter_mut())
            .filter_map(|(spawned, alone)| match spawned {
                Ok(handle) => match handle.join() {
                    Ok(execution) => execution,
                    // The executor catches the test's panics: this one is a bug of ours.
                    Err(panic) => std::panic::resume_unwind(panic),
                },
                Err(_) => alone.take(),
            })
            .collect::<Vec<_>>()
    })
}

type SlotJob<'s> = std::sync::Mutex<Option<(&'s mut Test, SerialNumber, SlotRun, Arc<Abort>)>>;

fn take<'s>(job: &SlotJob<'s>) -> Option<(&'s mut Test, SerialNumber, SlotRun, Arc<Abort>)> {
    job.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

/// Runs one slot's test; the slot leaves the synchronization whatever happens.
fn run_slot(
    (test, serial, slot, abort): (&mut Test, SerialNumber, SlotRun, Arc<Abort>),
) -> Execution {
    struct Leave<'s>(&'s SlotRun);
    impl Drop for Leave<'_> {
        fn drop(&mut self) {
            self.0.leave_sync();
        }
    }
    let _leave = Leave(&slot);
    test.execute_run(abort, move || serial, Some(&slot)).0
}

/// An id shared by the runs of one batch: the time and the process, in hex.
fn new_execution_id() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:x}-{:x}-{:x}",
        now_millis(),
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    )
}
