//! The test: the builder of a plan and its outputs, and the front that runs it on one unit at
//! a time (OpenHTF's `Test`).

use std::path::Path;
use std::sync::Arc;

use tracing::Level;

use crate::abort::Abort;
use crate::bus::{EventBus, Received, Subscription};
use crate::console::{Console, ConsoleOptions};
use crate::control::{Commands, Control};
use crate::desk::Desk;
use crate::emitter::Emitter;
use crate::event::EventKind;
use crate::execution::{self, Execution};
use crate::executor::{self, RunEnv, SerialNumber};
use crate::group::PhaseNode;
use crate::limits_file::{self, LimitsFileError};
use crate::output::{JsonOutput, OutputCallback};
use crate::panic_capture::catch;
use crate::phase::{Phase, Registered};
use crate::plan::{Plan, PlanCell};
use crate::plug::{DEFAULT_PLUG_TIMEOUT, Plug, PlugEntry};
use crate::slot::SlotRun;

/// A test: a procedure's phases, run against one unit at a time (OpenHTF's `Test`).
///
/// ```no_run
/// use tofu_core::prelude::*;
///
/// #[phase]
/// #[measures(input_voltage: f64 = in_range(3.1, 3.5).units(VOLT))]
/// fn voltage(m: &mut voltage::Measurements) {
///     m.input_voltage.set(3.3);
/// }
///
/// fn main() -> std::process::ExitCode {
///     Test::new("FVT1")
///         .part_number("PCB01")
///         .phases([voltage])
///         .execute(|| "SN-0001")
///         .exit_code()
/// }
/// ```
#[derive(Debug)]
pub struct Test {
    pub(crate) plan: PlanCell,
    outputs: Vec<Box<dyn OutputCallback>>,
    json_output: Option<JsonOutput>,
    console_summary: bool,
    /// The summary goes to stderr.
    summary_to_stderr: bool,
    plug_timeout: std::time::Duration,
    /// The test's events (a station's slots share the station's).
    pub(crate) bus: Arc<EventBus>,
    pub(crate) control: Arc<Control>,
    /// Where its runs' questions go.
    pub(crate) desk: Arc<Desk>,
    /// The journal folder given with [`Test::journal_dir`].
    journal_dir: Option<std::path::PathBuf>,
    /// [`Test::without_journal`].
    without_journal: bool,
    console: Option<Console>,
    /// The journals of dead processes were looked at.
    recovered: bool,
}

impl Test {
    /// A test of the procedure `procedure_id` (TofuPilot's procedure, e.g. `"FVT1"`).
    pub fn new(procedure_id: impl Into<String>) -> Self {
        let bus = Arc::new(EventBus::new());
        let control = Arc::new(Control::default());
        let desk = Arc::new(Desk::new(Arc::clone(&bus), None));
        control.add_desk(&desk);
        Test {
            plan: PlanCell::new(Plan::new(procedure_id.into())),
            outputs: Vec::new(),
            json_output: Some(JsonOutput::new()),
            console_summary: true,
            summary_to_stderr: false,
            plug_timeout: DEFAULT_PLUG_TIMEOUT,
            bus,
            control,
            desk,
            journal_dir: None,
            without_journal: false,
            console: None,
            recovered: false,
        }
    }

    /// The test's name in the record (`metadata.test_name`; the procedure id by default).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.plan.metadata.test_name = Some(name.into());
        self
    }

    /// The procedure's version.
    pub fn procedure_version(mut self, version: impl Into<String>) -> Self {
        self.plan.metadata.procedure_version = Some(version.into());
        self
    }

    /// The part number of the units this test runs on.
    pub fn part_number(mut self, part_number: impl Into<String>) -> Self {
        self.plan.metadata.part_number = Some(part_number.into());
        self
    }

    /// The units' revision.
    pub fn revision(mut self, revision: impl Into<String>) -> Self {
        self.plan.metadata.revision = Some(revision.into());
        self
    }

    /// The units' batch.
    pub fn batch_number(mut self, batch_number: impl Into<String>) -> Self {
        self.plan.metadata.batch_number = Some(batch_number.into());
        self
    }

    /// A sub-unit assembled into the unit under test.
    pub fn sub_unit(mut self, serial_number: impl Into<String>) -> Self {
        self.plan.metadata.sub_units.push(serial_number.into());
        self
    }

    /// Any other metadata, written into the record's `metadata` (as OpenHTF's `**metadata`).
    ///
    /// The keys the record already has (`config`, `procedure_id`…) can't be replaced this way;
    /// such an entry is ignored with a warning when the test runs. A key given twice keeps its
    /// last value.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.plan.metadata.extra.insert(key.into(), value.into());
        self
    }

    /// The station's name in the record (default: `$TOFU_STATION_ID`, else the host name).
    pub fn station_id(mut self, station_id: impl Into<String>) -> Self {
        self.plan.station_id = Some(station_id.into());
        self
    }

    /// Adds phases, run in this order.
    ///
    /// Phases, [`PhaseGroup`](crate::PhaseGroup)s and [`Subtest`](crate::Subtest)s may be mixed
    /// (`.phases([PhaseNode::from(a), group.into()])`), or added by successive calls.
    pub fn phases<N: Into<PhaseNode>>(mut self, nodes: impl IntoIterator<Item = N>) -> Self {
        self.plan.nodes.extend(nodes.into_iter().map(Into::into));
        self
    }

    /// Adds every phase made with `#[phase]` in the program, in source order (module path,
    /// file, line). Phases in a library crate are only there if the program names the crate.
    pub fn registered_phases(mut self) -> Self {
        let mut registered: Vec<Phase> = inventory::iter::<Registered>()
            .map(|r| r.0.clone())
            .collect();
        registered.sort_by(|a, b| a.location().cmp(&b.location()));
        self.plan
            .nodes
            .extend(registered.into_iter().map(PhaseNode::Phase));
        self
    }

    /// Every phase of the test, groups and subtests included, in the order they would run.
    pub fn phase_list(&self) -> Vec<Phase> {
        self.plan.phase_list()
    }

    /// Adds an output callback; callbacks run in the order added, after the JSON record.
    pub fn output(mut self, callback: impl OutputCallback + 'static) -> Self {
        self.outputs.push(Box::new(callback));
        self
    }

    /// Writes the JSON record with these settings instead of the default ones.
    pub fn json_output(mut self, json: JsonOutput) -> Self {
        self.json_output = Some(json);
        self
    }

    /// Writes no JSON record (only the output callbacks added receive the record).
    pub fn without_json_output(mut self) -> Self {
        self.json_output = None;
        self
    }

    /// The most detailed log level recorded (DEBUG by default).
    pub fn log_level(mut self, level: Level) -> Self {
        self.plan.log_level = level;
        self
    }

    /// Gives the test a plug: an instrument or fixture that phases ask for by type
    /// (`psu: &mut PowerSupply`). Set up before the first phase of each run, in the order given;
    /// torn down after the last, in reverse order, whatever happened. A second plug of the same
    /// type replaces the first (to swap in a simulation).
    pub fn plug<T: Plug>(self, plug: T) -> Self {
        self.plug_dyn(Box::new(plug))
    }

    /// Gives the test a plug behind a trait object, for phases that ask for `&mut dyn Trait`
    /// (with `trait Trait: Plug`): `.plug_dyn(Box::new(SimulatedSupply) as Box<dyn Supply>)`.
    pub fn plug_dyn<T: ?Sized + Plug>(mut self, plug: Box<T>) -> Self {
        let entry = PlugEntry::new(plug);
        self.plan.plugs.retain(|p| p.type_id != entry.type_id);
        self.plan.plugs.push(entry);
        self
    }

    /// Stops the test after the first phase that fails (OpenHTF's `stop_on_first_failure`):
    /// the test is FAIL with a STOP detail naming the phase.
    pub fn stop_on_first_failure(mut self) -> Self {
        self.plan.stop_on_first_failure = true;
        self
    }

    /// The timeout of the phases that set none in `#[phase(timeout_s = …)]` (none by default).
    ///
    /// A phase past its deadline is recorded as TIMEOUT within milliseconds, even when it is
    /// blocked in a call that never returns, with what it measured and attached before; the run
    /// goes on to its teardowns, record and outputs. Rust can't kill a thread: the phase's
    /// thread is abandoned, runs on until its blocking call returns, and what it does after the
    /// deadline is discarded; plugs it holds stay locked until then (whoever needs them next
    /// waits 2 s for them, then gives up with an error naming them).
    pub fn phase_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.plan.phase_timeout = Some(timeout);
        self
    }

    /// How long a plug's setup or teardown may take ([`DEFAULT_PLUG_TIMEOUT`] unless set):
    /// past it, the call is abandoned; a setup is then a `PlugSetupError`, a teardown an error
    /// in the log, and the run goes on to its record.
    pub fn plug_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.plug_timeout = timeout;
        self
    }

    /// A new observer of this test's events: every event from now on, in order, never
    /// slowing the run (see [`Subscription`]).
    pub fn subscribe(&self) -> Subscription {
        self.bus.subscribe()
    }

    /// The test's event bus (to subscribe with a queue of another size, or take snapshots).
    pub fn events(&self) -> Arc<EventBus> {
        Arc::clone(&self.bus)
    }

    /// Calls `observer` with every event, in order, on a thread of its own (so a slow observer
    /// never slows the run); it ends when the test is dropped.
    pub fn observe(self, observer: impl FnMut(Received) + Send + 'static) -> Self {
        crate::bus::observe(self.bus.subscribe(), observer);
        self
    }

    /// A handle to send this test commands while it runs (abort, answer a prompt), from any
    /// thread.
    pub fn commands(&self) -> Commands {
        Commands {
            control: Arc::clone(&self.control),
        }
    }

    /// Keeps each run's journal in `dir` (by default `.tofu-journal` in the record folder, or
    /// `$TOFU_JOURNAL_DIR`): the events of a running test, appended as they happen, from which
    /// a run whose process died is recovered at the next start (see the README).
    pub fn journal_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.journal_dir = Some(dir.into());
        self
    }

    /// Keeps no journal (nor recovers the runs of dead processes from one): a run whose
    /// process dies mid-run is lost. For a measurement of what the journal costs (`--example
    /// bench`), not for a station.
    pub fn without_journal(mut self) -> Self {
        self.without_journal = true;
        self
    }

    /// Prints the summary on stderr rather than stdout (when stdout carries data of the
    /// program's own, such as events as JSON lines).
    pub fn summary_to_stderr(mut self) -> Self {
        self.summary_to_stderr = true;
        self
    }

    /// Prints no summary on the console at the end of a run.
    pub fn quiet(mut self) -> Self {
        self.console_summary = false;
        self
    }

    /// The test without its outputs (JSON record, callbacks) and summary: the hook of
    /// [`testing::Harness`](crate::testing::Harness).
    pub(crate) fn without_outputs(mut self) -> Self {
        self.outputs.clear();
        self.json_output = None;
        self.console_summary = false;
        self
    }

    /// Sets one parameter, as a limits file's `[parameters]` would (for
    /// [`testing::Harness`](crate::testing::Harness)); a test without a file gets an empty one.
    pub(crate) fn set_parameter(&mut self, name: String, value: serde_json::Value) {
        self.plan
            .limits
            .get_or_insert_with(limits_file::LimitsFile::parameters_only)
            .set_parameter(name, value);
    }

    /// Loads limits and parameters from the TOML file at `path`: its limits replace those the
    /// code declares for the measurements it names (by phase and measurement), so that a limit
    /// can change without recompiling. See [`crate::limits_file`] for the format and the rules.
    ///
    /// Everything in the file is checked now, against the phases known now (the test's, and
    /// the program's `#[phase]` functions): each error names the file and the line. The run
    /// checks it again against the test's phases; the record has the limits used (they are the
    /// measurements' validators) and the file's path and SHA-1 (`metadata.limits_file`).
    ///
    /// ```no_run
    /// # use tofu_core::prelude::*;
    /// # fn main() -> Result<(), tofu_core::LimitsFileError> {
    /// # let power_rails = tofu_core::Phase::dynamic("power_rails").run(|_, _| ());
    /// let mut test = Test::new("FVT1")
    ///     .phases([power_rails])
    ///     // Fails here with e.g. "limits.toml:12: phase `power_rails` has no measurement `rail_5v`".
    ///     .limits_file("limits.toml")?;
    /// # Ok(()) }
    /// ```
    pub fn limits_file(self, path: impl AsRef<Path>) -> Result<Test, LimitsFileError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| LimitsFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.limits_toml(&text, &path.display().to_string())
    }

    /// Loads limits and parameters from TOML text, as [`Test::limits_file`] does from a file;
    /// `name` stands for the file in messages and in the record.
    pub fn limits_toml(mut self, text: &str, name: &str) -> Result<Test, LimitsFileError> {
        self.plan.limits = Some(limits_file::load(text, name, &self.phase_list())?);
        Ok(self)
    }

    /// Runs the test on the unit whose serial number `serial_number` returns (OpenHTF's
    /// `test.execute(test_start=lambda: "SN")`), hands the record to the output callbacks and
    /// prints a summary.
    ///
    /// `serial_number` returns a `String`, a `&str`, or a `Result` of one (as
    /// [`prompt::serial_number()`](crate::prompt::serial_number)'s `ask` does): an error ends
    /// the run before its first phase, as ERROR with the code `SerialNumberUnavailable`.
    ///
    /// Ctrl-C, SIGTERM and SIGHUP abort the run, whatever it waits on (a phase, a prompt, a
    /// plug); see [`Test::commands`] to abort it from a front end.
    ///
    /// This never fails: whatever goes wrong (an invalid declaration, an empty serial number,
    /// a phase that panics, an output that can't be written) is in the record and the result.
    pub fn execute<S: crate::prompt::IntoSerialNumber>(
        &mut self,
        serial_number: impl FnOnce() -> S,
    ) -> Execution {
        if self.console_summary && self.console.is_none() {
            self.console = Some(Console::start(
                &self.bus,
                ConsoleOptions {
                    progress: false,
                    summary: true,
                    batch: false,
                    stderr: self.summary_to_stderr,
                },
            ));
        }
        let abort = Arc::new(Abort::new());
        let _watch = crate::signals::watch(&abort);
        let (execution, closed) =
            self.execute_run(abort, || ask_serial_number(serial_number), None);
        if let Some(console) = &self.console {
            console.catch_up(closed);
        }
        execution
    }

    /// Runs the test once, alone or as one slot of a station, and hands the record to the
    /// outputs. Returns the execution and the sequence number of its last event.
    pub(crate) fn execute_run(
        &mut self,
        abort: Arc<Abort>,
        serial_number: impl FnOnce() -> SerialNumber,
        slot: Option<&SlotRun>,
    ) -> (Execution, u64) {
        let journal_dir = self.journal_folder();
        if !self.recovered {
            self.recovered = true;
            if let Some(dir) = &journal_dir {
                execution::deliver_recovered(dir, &mut self.outputs, self.json_output.as_mut());
            }
        }
        let index = slot.map_or(0, |s| s.record.index);
        self.control.run_started(index, &abort);
        let events = Arc::new(Emitter::new(
            Arc::clone(&self.bus),
            slot.map(|s| s.record.index),
        ));
        let env = RunEnv {
            plan: &self.plan,
            slot,
            abort,
            events: Arc::clone(&events),
            desk: Arc::clone(&self.desk),
            journal_dir,
            plug_timeout: self.plug_timeout,
        };
        let record = executor::execute(&env, serial_number);
        // The JSON record writes the phases as the journal did, not again (the same bytes).
        let written = events.take_phase_json();
        let record = Arc::new(record);
        events.run_ended(&record);
        let record = Arc::try_unwrap(record).unwrap_or_else(|shared| (*shared).clone());
        // TOFU_JUNIT_DIR: a JUnit XML file per run, for CI dashboards, without a code change
        // (the last output, for this run only).
        let junit = crate::junit::JunitOutput::from_env();
        let with_junit = junit.is_some();
        if let Some(junit) = junit {
            self.outputs.push(Box::new(junit));
        }
        if let Some(json) = self.json_output.as_mut() {
            json.use_written_phases(written);
        }
        let outputs = execution::deliver(
            &mut self.outputs,
            self.json_output.as_mut(),
            &record,
            &events,
        );
        if let Some(json) = self.json_output.as_mut() {
            json.use_written_phases(crate::record_json::PhasesJson::default());
        }
        if with_junit {
            self.outputs.pop();
        }
        events.close_journal();
        self.control.run_ended(index);
        let closed = events.emit(EventKind::RunClosed);
        (Execution { record, outputs }, closed)
    }

    /// Where this test's runs keep their journal: the folder given, else beside the records
    /// (none without a JSON record, unless `$TOFU_JOURNAL_DIR` names a folder).
    fn journal_folder(&self) -> Option<std::path::PathBuf> {
        if self.without_journal {
            return None;
        }
        if let Some(dir) = &self.journal_dir {
            return Some(dir.clone());
        }
        match &self.json_output {
            Some(json) => Some(crate::journal::journal_dir(json.dir())),
            None => std::env::var_os(crate::journal::JOURNAL_DIR_ENV)
                .filter(|d| !d.is_empty())
                .map(std::path::PathBuf::from),
        }
    }

    /// Makes the test one slot's of a station: gives it the station's shared plugs.
    pub(crate) fn add_shared_plug(&mut self, plug: &PlugEntry) {
        self.plan.plugs.push(plug.share());
    }

    /// Makes the test one slot's of a station: its events go to the station's bus, its
    /// commands come from the station.
    pub(crate) fn join_station(
        &mut self,
        bus: &Arc<EventBus>,
        control: &Arc<Control>,
        slot: usize,
    ) {
        self.bus = Arc::clone(bus);
        self.control = Arc::clone(control);
        self.desk = Arc::new(Desk::new(Arc::clone(bus), Some(slot)));
        control.add_desk(&self.desk);
    }
}

/// Calls a serial-number source, catching its panic.
pub(crate) fn ask_serial_number<S: crate::prompt::IntoSerialNumber>(
    source: impl FnOnce() -> S,
) -> SerialNumber {
    catch(|| source().into_serial_number())
}
