//! The test: its metadata, its phases, its outputs, and the executor that runs it.

use std::collections::{BTreeMap, HashSet};
use std::process::ExitCode;
use std::sync::Arc;

use tracing::Level;

use crate::abort;
use crate::attempt::{self, Ended};
use crate::clock::now_millis;
use crate::context::PhaseContext;
use crate::declare::Declared;
use crate::group::PhaseNode;
use crate::logging;
use crate::measurement::{MeasurementDecl, Slot, ValueKind};
use crate::outcome::{
    self, MeasurementOutcome, MeasurementSummary, Outcome, PhaseExecution, PhaseOutcome,
    PhaseResult, PhaseSummary, Terminal,
};
use crate::output::{JsonOutput, OutputCallback};
use crate::panic_capture::{Panic, catch};
use crate::phase::{Phase, PhaseOptions, PhaseReturn, Registered};
use crate::plug::{self, Plug, PlugEntry};
use crate::shared_plug::{self, GateError};
use crate::station::SlotRun;

use crate::record::{
    CodeInfo, MeasurementRecord, Metadata, PhaseOptionsRecord, PhaseRecord, TestRecord,
};
use crate::summary;

/// The serial number recorded when none could be had (OpenHTF's default).
pub const UNKNOWN_DUT: &str = "UNKNOWN_DUT";

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
    metadata: TestMetadata,
    nodes: Vec<PhaseNode>,
    outputs: Vec<Box<dyn OutputCallback>>,
    json_output: Option<JsonOutput>,
    log_level: Level,
    station_id: Option<String>,
    console_summary: bool,
    plugs: Vec<PlugEntry>,
    phase_timeout: Option<std::time::Duration>,
    stop_on_first_failure: bool,
    /// Limits and parameters from a file (`Test::limits_file`, in `limits_file.rs`).
    pub(crate) limits: Option<crate::limits_file::LimitsFile>,
}

#[derive(Debug, Clone, Default)]
struct TestMetadata {
    procedure_id: String,
    test_name: Option<String>,
    procedure_version: Option<String>,
    part_number: Option<String>,
    revision: Option<String>,
    batch_number: Option<String>,
    sub_units: Vec<String>,
    extra: BTreeMap<String, serde_json::Value>,
}

/// A finished run: its record and what each output callback did with it.
#[derive(Debug)]
#[must_use = "the exit code says whether the unit passed"]
pub struct Execution {
    /// The record.
    pub record: TestRecord,
    /// Each output callback's result, in order: where the record went, or why it didn't.
    pub outputs: Vec<OutputStatus>,
}

/// What one output callback did with the record.
#[derive(Debug, Clone)]
pub struct OutputStatus {
    /// The callback's name.
    pub name: String,
    /// Where the record went, or the error.
    pub result: Result<Option<String>, String>,
}

impl Execution {
    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        self.record.outcome == Outcome::Pass
    }

    /// Whether every output callback succeeded.
    pub fn outputs_ok(&self) -> bool {
        self.outputs.iter().all(|o| o.result.is_ok())
    }

    /// Whether the run passed and every output callback succeeded.
    pub fn ok(&self) -> bool {
        self.passed() && self.outputs_ok()
    }

    /// The program's exit code ([`crate::exit`]): 0 passed with every output, 1 the unit
    /// failed, 2 ERROR, TIMEOUT or ABORTED (the station, not the board), 3 the unit passed but
    /// an output failed.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.exit_status())
    }

    /// [`Execution::exit_code`] as a number.
    pub fn exit_status(&self) -> u8 {
        crate::exit::code(self.record.outcome, self.outputs_ok())
    }
}

impl Test {
    /// A test of the procedure `procedure_id` (TofuPilot's procedure, e.g. `"FVT1"`).
    pub fn new(procedure_id: impl Into<String>) -> Self {
        Test {
            metadata: TestMetadata {
                procedure_id: procedure_id.into(),
                ..TestMetadata::default()
            },
            nodes: Vec::new(),
            outputs: Vec::new(),
            json_output: Some(JsonOutput::new()),
            log_level: Level::DEBUG,
            station_id: None,
            console_summary: true,
            plugs: Vec::new(),
            phase_timeout: None,
            stop_on_first_failure: false,
            limits: None,
        }
    }

    /// The test's name in the record (`metadata.test_name`; the procedure id by default).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.metadata.test_name = Some(name.into());
        self
    }

    /// The procedure's version.
    pub fn procedure_version(mut self, version: impl Into<String>) -> Self {
        self.metadata.procedure_version = Some(version.into());
        self
    }

    /// The part number of the units this test runs on.
    pub fn part_number(mut self, part_number: impl Into<String>) -> Self {
        self.metadata.part_number = Some(part_number.into());
        self
    }

    /// The units' revision.
    pub fn revision(mut self, revision: impl Into<String>) -> Self {
        self.metadata.revision = Some(revision.into());
        self
    }

    /// The units' batch.
    pub fn batch_number(mut self, batch_number: impl Into<String>) -> Self {
        self.metadata.batch_number = Some(batch_number.into());
        self
    }

    /// A sub-unit assembled into the unit under test.
    pub fn sub_unit(mut self, serial_number: impl Into<String>) -> Self {
        self.metadata.sub_units.push(serial_number.into());
        self
    }

    /// Any other metadata, written into the record's `metadata` (as OpenHTF's `**metadata`).
    ///
    /// The keys the record already has (`config`, `procedure_id`…) can't be replaced this way;
    /// such an entry is ignored with a warning when the test runs. A key given twice keeps its
    /// last value.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.metadata.extra.insert(key.into(), value.into());
        self
    }

    /// The station's name in the record (default: `$TOFU_STATION_ID`, else the host name).
    pub fn station_id(mut self, station_id: impl Into<String>) -> Self {
        self.station_id = Some(station_id.into());
        self
    }

    /// Adds phases, run in this order.
    ///
    /// Phases, [`PhaseGroup`](crate::PhaseGroup)s and [`Subtest`](crate::Subtest)s may be mixed
    /// (`.phases([PhaseNode::from(a), group.into()])`), or added by successive calls.
    pub fn phases<N: Into<PhaseNode>>(mut self, nodes: impl IntoIterator<Item = N>) -> Self {
        self.nodes.extend(nodes.into_iter().map(Into::into));
        self
    }

    /// Adds every phase made with `#[phase]` in the program, in source order (module path,
    /// file, line). Phases in a library crate are only there if the program names the crate.
    pub fn registered_phases(mut self) -> Self {
        let mut registered: Vec<Phase> = inventory::iter::<Registered>()
            .map(|r| r.0.clone())
            .collect();
        registered.sort_by(|a, b| a.location().cmp(&b.location()));
        self.nodes
            .extend(registered.into_iter().map(PhaseNode::Phase));
        self
    }

    /// Every phase of the test, groups and subtests included, in the order they would run.
    pub fn phase_list(&self) -> Vec<Phase> {
        let mut phases = Vec::new();
        for node in &self.nodes {
            node.phases(&mut phases);
        }
        phases.into_iter().cloned().collect()
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
        self.log_level = level;
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
        self.plugs.retain(|p| p.type_id != entry.type_id);
        self.plugs.push(entry);
        self
    }

    /// Stops the test after the first phase that fails (OpenHTF's `stop_on_first_failure`):
    /// the test is FAIL with a STOP detail naming the phase.
    pub fn stop_on_first_failure(mut self) -> Self {
        self.stop_on_first_failure = true;
        self
    }

    /// The timeout of the phases that set none in `#[phase(timeout_s = …)]` (none by default).
    ///
    /// A phase past its deadline is recorded as TIMEOUT within milliseconds, even when it is
    /// blocked in a call that never returns, and the run goes on to its teardowns, record and
    /// outputs. Rust can't kill a thread: the phase's thread is abandoned, runs on until its
    /// blocking call returns, and what it does after the deadline is discarded; plugs it holds
    /// stay locked until then (their teardown waits 2 s for them, then is skipped and logged).
    /// A phase with a timeout runs on a thread of its own; one without runs on the test's.
    pub fn phase_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.phase_timeout = Some(timeout);
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

    /// Runs the test on the unit whose serial number `serial_number` returns (OpenHTF's
    /// `test.execute(test_start=lambda: "SN")`), hands the record to the output callbacks and
    /// prints a summary.
    ///
    /// `serial_number` returns a `String`, a `&str`, or a `Result` of one (as
    /// [`prompt::serial_number()`](crate::prompt::serial_number)'s `ask` does): an error ends
    /// the run before its first phase, as ERROR with the code `SerialNumberUnavailable`.
    ///
    /// This never fails: whatever goes wrong (an invalid declaration, an empty serial number,
    /// a phase that panics, an output that can't be written) is in the record and the result.
    pub fn execute<S: crate::prompt::IntoSerialNumber>(
        &mut self,
        serial_number: impl FnOnce() -> S,
    ) -> Execution {
        abort::arm();
        let execution = self.execute_run(|| ask_serial_number(serial_number), None);
        if self.console_summary {
            let color = summary::stdout_has_color();
            print!(
                "{}",
                summary::render(&execution.record, &execution.outputs, color)
            );
        }
        execution
    }

    /// Runs the test once, alone or as one slot of a station, and hands the record to the
    /// outputs.
    pub(crate) fn execute_run(
        &mut self,
        serial_number: impl FnOnce() -> SerialNumber,
        slot: Option<&SlotRun>,
    ) -> Execution {
        let record = logging::with_capturing_subscriber(|capturing| {
            if !capturing {
                warn_not_capturing();
            }
            // A slot's console lines begin with its name.
            let _span = slot.map(|s| tracing::info_span!("slot", name = %s.record.name).entered());
            logging::start_capture(self.log_level);
            let mut run = Run::new(self, slot);
            run.execute(serial_number);
            // A slot's run is over: the synchronized slots don't wait for its outputs.
            if let Some(slot) = slot {
                slot.leave_sync();
            }
            let logs = logging::finish_capture();
            run.finish(logs)
        });
        let outputs = self.deliver(&record);
        Execution { record, outputs }
    }

    /// Makes the test one slot's of a station: gives it the station's shared plugs.
    pub(crate) fn add_shared_plug(&mut self, plug: &PlugEntry) {
        self.plugs.push(plug.share());
    }

    /// Hands the record to the outputs: the durable queues first (the uploader's outbox), then
    /// the JSON record, then the others (see [`OutputCallback::is_durable_queue`]).
    fn deliver(&mut self, record: &TestRecord) -> Vec<OutputStatus> {
        let (queues, others): (Vec<_>, Vec<_>) = self
            .outputs
            .iter_mut()
            .map(|o| &mut **o as &mut dyn OutputCallback)
            // User code: a panic there counts as "not a queue".
            .partition(|o| catch(|| o.is_durable_queue()).unwrap_or(false));
        let json = self
            .json_output
            .as_mut()
            .map(|j| j as &mut dyn OutputCallback);
        // TOFU_JUNIT_DIR: a JUnit XML file per run, for CI dashboards, without a code change.
        let mut junit = crate::junit::JunitOutput::from_env();
        let junit = junit.as_mut().map(|j| j as &mut dyn OutputCallback);
        queues
            .into_iter()
            .chain(json)
            .chain(others)
            .chain(junit)
            .map(|callback| {
                let name = callback.name().to_owned();
                let result = match catch(|| callback.on_record(record)) {
                    Ok(Ok(location)) => Ok(location),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(panic) => Err(format!("panicked at {}: {}", panic.location, panic.message)),
                };
                if let Err(e) = &result {
                    tracing::error!("output {name} failed: {e}");
                }
                OutputStatus { name, result }
            })
            .collect()
    }
}

/// What a serial-number source gave: the serial number, why there is none, or its panic.
pub(crate) type SerialNumber = Result<Result<String, String>, Panic>;

/// Calls a serial-number source, catching its panic.
pub(crate) fn ask_serial_number<S: crate::prompt::IntoSerialNumber>(
    source: impl FnOnce() -> S,
) -> SerialNumber {
    catch(|| source().into_serial_number())
}

/// One missing plug in words: `the plug `PowerSupply` is missing: phase `rails` needs it (give
/// it with Test::plug, or Test::plug_dyn for a `dyn Trait`)`.
fn missing_plug(plug: &str, phases: &[String]) -> String {
    let who = match phases {
        [one] => format!("phase `{one}` needs it"),
        many => format!(
            "phases {} need it",
            many.iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!(
        "the plug `{plug}` is missing: {who} (give it with Test::plug, or Test::plug_dyn for a `dyn Trait`)"
    )
}

fn warn_not_capturing() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tracing::warn!(
            "a global tracing subscriber without tofu's capture layer is set: logs are not recorded; \
             add tofu_core::logging::layer() to it"
        );
    });
}

/// The state of one execution.
struct Run<'t> {
    test: &'t Test,
    /// The station slot this run is, if a station runs it.
    slot: Option<&'t SlotRun>,
    dut_id: String,
    start_time_millis: i64,
    phases: Vec<PhaseRecord>,
    terminal: Option<Terminal>,
    /// The operator pressed Ctrl-C.
    aborted: bool,
    /// The thread the phases run on.
    worker: Option<attempt::Worker>,
    /// The subtest running, and whether a phase failed it.
    subtest: Option<(String, bool)>,
    subtests: Vec<serde_json::Value>,
}

/// The shape of the test, its phases replaced by their place in the prepared list.
enum Step {
    Phase(usize),
    Group {
        setup: Vec<Step>,
        main: Vec<Step>,
        teardown: Vec<Step>,
    },
    Subtest {
        name: String,
        steps: Vec<Step>,
    },
}

/// Numbers the phases of `nodes` depth first (the order of [`Test::phase_list`]).
fn plan(nodes: &[PhaseNode], next: &mut usize) -> Vec<Step> {
    nodes
        .iter()
        .map(|node| match node {
            PhaseNode::Phase(_) => {
                *next += 1;
                Step::Phase(*next - 1)
            }
            PhaseNode::Group(g) => Step::Group {
                setup: plan(&g.setup, next),
                main: plan(&g.main, next),
                teardown: plan(&g.teardown, next),
            },
            PhaseNode::Subtest(s) => Step::Subtest {
                name: s.name.clone(),
                steps: plan(&s.nodes, next),
            },
        })
        .collect()
}

/// A phase with its declarations built.
struct Prepared {
    phase: Phase,
    decls: Vec<Arc<MeasurementDecl>>,
    /// Indexes into the test's plugs, one per plug the phase asks for.
    plugs: Vec<usize>,
}

impl<'t> Run<'t> {
    fn new(test: &'t Test, slot: Option<&'t SlotRun>) -> Self {
        Run {
            test,
            slot,
            dut_id: UNKNOWN_DUT.to_owned(),
            start_time_millis: now_millis(),
            phases: Vec::new(),
            terminal: None,
            aborted: false,
            worker: None,
            subtest: None,
            subtests: Vec::new(),
        }
    }

    fn fail(&mut self, code: &str, description: String) {
        tracing::error!("{description}");
        self.terminal.get_or_insert(Terminal::Error {
            code: code.to_owned(),
            description,
        });
    }

    fn execute(&mut self, serial_number: impl FnOnce() -> SerialNumber) {
        let prepared = self.prepare();
        if prepared.is_none() {
            // Nothing can run: don't make the operator scan a board for it.
            return;
        }
        match serial_number() {
            Ok(Err(why)) => {
                self.fail(
                    "SerialNumberUnavailable",
                    format!("no serial number: {why}; no phase was run"),
                );
            }
            Ok(Ok(serial)) if serial.trim().is_empty() => {
                self.fail(
                    "InvalidSerialNumber",
                    format!("the serial number is empty ({serial:?}); no phase was run"),
                );
            }
            Ok(Ok(serial)) => self.dut_id = serial,
            Err(panic) => {
                self.fail(
                    "Panic",
                    format!(
                        "getting the serial number panicked at {}: {}",
                        panic.location, panic.message
                    ),
                );
            }
        }
        self.start_time_millis = now_millis();
        if let Some(error) = self.slot.and_then(|s| s.shared_setup_error.as_ref()) {
            self.fail("PlugSetupError", format!("{error}; no phase was run"));
        }
        let Some(prepared) = prepared.filter(|_| self.terminal.is_none()) else {
            return;
        };
        let set_up = self.set_up_plugs();
        if self.terminal.is_none() {
            let steps = plan(&self.test.nodes, &mut 0);
            self.run_steps(&steps, &prepared, false);
        }
        self.tear_down_plugs(set_up);
    }

    /// Runs steps in order. Outside a teardown, the first terminal result (stop, error, timeout)
    /// ends the sequence; in a teardown every step runs.
    fn run_steps(&mut self, steps: &[Step], prepared: &[Prepared], teardown: bool) {
        for step in steps {
            self.notice_abort();
            if self.terminal.is_some() && !teardown {
                return;
            }
            if teardown && abort::presses() >= 2 {
                return; // Ctrl-C twice: teardown skipped
            }
            match step {
                Step::Phase(i) => {
                    let Some(p) = prepared.get(*i) else { continue };
                    if let Some(slot) = self.slot {
                        slot.reach_phase(*i);
                        // Ctrl-C ends the wait: it must not start the phase.
                        self.notice_abort();
                        if self.terminal.is_some() && !teardown {
                            return;
                        }
                    }
                    if self.subtest.as_ref().is_some_and(|(_, failed)| *failed) {
                        self.record_skipped(p);
                    } else if self.should_run(p) {
                        self.run_phase(p, teardown);
                    }
                }
                Step::Group {
                    setup,
                    main,
                    teardown: down,
                } => {
                    let stopped_before = self.terminal.is_some();
                    self.run_steps(setup, prepared, teardown);
                    if self.terminal.is_some() && !stopped_before {
                        continue; // setup failed: neither main nor teardown
                    }
                    self.run_steps(main, prepared, teardown);
                    self.run_steps(down, prepared, true);
                }
                Step::Subtest { name, steps } => {
                    let outer = self.subtest.replace((name.clone(), false));
                    let start = now_millis();
                    let terminal_before = self.terminal.is_some();
                    self.run_steps(steps, prepared, teardown);
                    let failed = self.subtest.as_ref().is_some_and(|(_, failed)| *failed);
                    let outcome = if self.terminal.is_some() && !terminal_before {
                        "STOP"
                    } else if failed {
                        "FAIL"
                    } else {
                        "PASS"
                    };
                    self.subtests.push(serde_json::json!({
                        "name": name,
                        "start_time_millis": start,
                        "end_time_millis": now_millis(),
                        "outcome": outcome,
                        "marginal": null,
                    }));
                    self.subtest = outer;
                }
            }
        }
    }

    /// Ctrl-C between phases: the run is aborted, the sequences stop, teardowns still run.
    fn notice_abort(&mut self) {
        if !self.aborted && abort::presses() >= 1 {
            self.aborted = true;
        }
        if self.aborted {
            self.terminal.get_or_insert(Terminal::Stop {
                phase: "Ctrl-C".to_owned(),
            });
        }
    }

    /// Evaluates the phase's `run_if`; a panicking condition ends the run as an error.
    fn should_run(&mut self, p: &Prepared) -> bool {
        let Some(run_if) = p.phase.options().run_if else {
            return true;
        };
        match catch(run_if) {
            Ok(true) => true,
            Ok(false) => {
                tracing::debug!(
                    "phase {} is not run: its run_if condition is false",
                    p.phase.name()
                );
                false
            }
            Err(panic) => {
                self.fail(
                    "Panic",
                    format!(
                        "the run_if condition of phase {} panicked at {}: {}",
                        p.phase.name(),
                        panic.location,
                        panic.message
                    ),
                );
                false
            }
        }
    }

    /// Records a phase of a failed subtest as SKIP, without running it.
    fn record_skipped(&mut self, p: &Prepared) {
        let mut slots: Vec<Slot> = p.decls.iter().map(Slot::new).collect();
        let now = now_millis();
        let record = self.phase_record(
            p,
            1,
            now,
            now,
            measure(&p.decls, &mut slots, true).0,
            Vec::new(),
            PhaseExecution::Returned(PhaseResult::Skip),
            PhaseOutcome::Skip,
            None,
        );
        self.phases.push(record);
    }

    /// The run's own plugs (a station's shared plugs are the station's business).
    fn own_plugs(&self) -> impl DoubleEndedIterator<Item = &'t PlugEntry> + use<'t> {
        self.test.plugs.iter().filter(|p| p.gate.is_none())
    }

    /// Sets up the run's own plugs in order; stops at the first failure. Returns how many were
    /// set up.
    fn set_up_plugs(&mut self) -> usize {
        let (count, error) = plug::set_up_all(self.own_plugs());
        if let Some(error) = error {
            self.fail("PlugSetupError", format!("{error}; no phase was run"));
        }
        count
    }

    /// Tears down the first `count` own plugs, last first, each once, whatever happens to the
    /// others.
    fn tear_down_plugs(&mut self, count: usize) {
        let plugs: Vec<&PlugEntry> = self.own_plugs().take(count).collect();
        plug::tear_down_all(plugs.into_iter());
    }

    /// Builds every phase's declarations, reporting every error found (not just the first).
    fn prepare(&mut self) -> Option<Vec<Prepared>> {
        let mut errors = Vec::new();
        // Each plug no one gave, with the phases that want it: one error per plug.
        let mut missing: Vec<(String, Vec<String>)> = Vec::new();
        let mut prepared = Vec::new();
        for phase in &self.test.phase_list() {
            let declared = match catch(|| phase.declare()) {
                Ok(d) => d,
                Err(panic) => {
                    errors.push(format!(
                        "phase `{}`: declaring its measurements panicked: {}",
                        phase.name(),
                        panic.message
                    ));
                    continue;
                }
            };
            let mut decls = Vec::with_capacity(declared.len());
            let repeated = repeated_names(&declared);
            for (i, Declared { decl, errors: errs }) in declared.into_iter().enumerate() {
                for e in errs {
                    errors.push(format!(
                        "phase `{}`, measurement `{}`: {e}",
                        phase.name(),
                        decl.name
                    ));
                }
                if repeated.binary_search(&i).is_ok() {
                    errors.push(format!(
                        "phase `{}`: measurement `{}` is declared twice",
                        phase.name(),
                        decl.name
                    ));
                }
                decls.push(Arc::new(decl));
            }
            let mut plugs = Vec::new();
            for (type_id, plug_name) in phase.plug_needs() {
                match self.test.plugs.iter().position(|p| p.type_id == type_id) {
                    Some(i) => plugs.push(i),
                    None => {
                        let wanted_by = phase.name().to_owned();
                        match missing.iter_mut().find(|(name, _)| *name == plug_name) {
                            Some((_, phases)) if phases.contains(&wanted_by) => {}
                            Some((_, phases)) => phases.push(wanted_by),
                            None => missing.push((plug_name.to_owned(), vec![wanted_by])),
                        }
                    }
                }
            }
            prepared.push(Prepared {
                phase: phase.clone(),
                decls,
                plugs,
            });
        }
        for (i, plug) in self.test.plugs.iter().enumerate() {
            if self.test.plugs[..i]
                .iter()
                .any(|p| p.type_id == plug.type_id)
            {
                let earlier_shared = self.test.plugs[..i]
                    .iter()
                    .any(|p| p.type_id == plug.type_id && p.gate.is_some());
                let what = match (earlier_shared, plug.gate.is_some()) {
                    (true, true) => "is shared by the station twice",
                    (false, false) => "is given to the test twice",
                    _ => "is given to the test and shared by the station",
                };
                errors.push(format!("the plug `{}` {what}: give it once", plug.name));
            }
        }
        if let Some(limits) = &self.test.limits {
            errors.extend(limits.apply(prepared.iter_mut().map(|p| (&p.phase, &mut p.decls))));
        }
        if errors.is_empty() && missing.is_empty() {
            return Some(prepared);
        }
        if missing.is_empty() {
            self.fail(
                "InvalidDeclaration",
                format!(
                    "invalid measurement declarations; no phase was run: {}",
                    errors.join("; ")
                ),
            );
        } else {
            let declarations = (!errors.is_empty())
                .then(|| format!("invalid measurement declarations: {}", errors.join("; ")));
            let plugs: Vec<String> = missing
                .iter()
                .map(|(plug, phases)| missing_plug(plug, phases))
                .collect();
            let also = declarations
                .map(|d| format!("; also {d}"))
                .unwrap_or_default();
            self.fail(
                "MissingPlug",
                format!("{}; no phase was run{also}", plugs.join("; ")),
            );
        }
        None
    }

    fn run_phase(&mut self, p: &Prepared, teardown: bool) {
        let phase = &p.phase;
        let options = phase.options();
        let name = p.phase.name();
        let limit = options
            .repeat_limit
            .unwrap_or(PhaseOptions::DEFAULT_REPEAT_LIMIT)
            .max(1);
        logging::set_phase(Some(name));
        let test = self.test;
        let plugs: Vec<&PlugEntry> = p.plugs.iter().map(|&i| &test.plugs[i]).collect();
        let uses_shared_plug = plugs.iter().any(|p| p.gate.is_some());
        let timeout = options.timeout.or(test.phase_timeout);
        // In a teardown, only a second Ctrl-C interrupts.
        let abort_at = if teardown { 2 } else { 1 };
        for attempt in 1..=limit {
            let mut ctx = PhaseContext::new(&self.dut_id, name, attempt);
            ctx.parameters = test.parameters();
            ctx.abort_at = abort_at;
            let slots: Vec<Slot> = p.decls.iter().map(Slot::new).collect();
            // A station's shared plugs are held before the phase starts: the wait is not the
            // phase's time, nor part of its timeout.
            let waiting_since = now_millis();
            let held = shared_plug::hold_all(&plugs, || self.holder_name(name), abort_at);
            let start = now_millis();
            let (returned, ctx, mut slots) = match &held {
                Ok(_) => attempt::run(&mut self.worker, phase, ctx, slots, &plugs, timeout),
                Err(GateError::Aborted) => {
                    tracing::error!(
                        "phase {name} not started: Ctrl-C while it waited for a shared plug"
                    );
                    self.aborted = true;
                    (Ended::Aborted, ctx, slots)
                }
                Err(GateError::HeldByAbandoned { plug, by }) => {
                    let error = PhaseReturn::Error {
                        type_name: "SharedPlugUnavailable".into(),
                        message: format!(
                            "the shared plug `{plug}` is still held by {by}, which was abandoned; this phase was not run"
                        ),
                    };
                    (Ended::Returned(Ok(error)), ctx, slots)
                }
            };
            let end = now_millis();
            let started = held.is_ok();
            if let Ok(held) = held {
                held.release(matches!(returned, Ended::TimedOut | Ended::Aborted));
            }
            let plug_wait_millis = uses_shared_plug.then_some(start - waiting_since);
            let mut execution = match returned {
                Ended::TimedOut => {
                    tracing::error!(
                        "phase {name} timed out after {:?}; it is abandoned and its results discarded",
                        timeout.unwrap_or_default()
                    );
                    PhaseExecution::Timeout
                }
                Ended::Aborted => {
                    if started {
                        tracing::error!(
                            "phase {name} aborted by Ctrl-C; it is abandoned and its results discarded"
                        );
                    }
                    self.aborted = true;
                    PhaseExecution::Aborted
                }
                Ended::Returned(Ok(PhaseReturn::Result(r))) => PhaseExecution::Returned(r),
                Ended::Returned(Ok(PhaseReturn::Error { type_name, message })) => {
                    tracing::error!("phase {name} returned an error: {message}");
                    PhaseExecution::Error {
                        exc_type: type_name,
                        exc_val: message,
                        exc_tb: String::new(),
                    }
                }
                Ended::Returned(Err(panic)) => {
                    tracing::error!(
                        "phase {name} panicked at {}: {}",
                        panic.location,
                        panic.message
                    );
                    PhaseExecution::Error {
                        exc_type: "Panic".into(),
                        exc_val: panic.message,
                        exc_tb: panic.location,
                    }
                }
            };
            if execution == PhaseExecution::Returned(PhaseResult::FailSubtest) {
                match self.subtest.as_mut() {
                    Some((_, failed)) => *failed = true,
                    None => {
                        let message =
                            format!("phase {name} returned FailSubtest outside a subtest");
                        tracing::error!("{message}");
                        execution = PhaseExecution::Error {
                            exc_type: "InvalidPhaseResultError".into(),
                            exc_val: message,
                            exc_tb: String::new(),
                        };
                    }
                }
            }
            let repeat = execution == PhaseExecution::Returned(PhaseResult::Repeat);
            let hit_repeat_limit = repeat && attempt == limit;
            let skipped = matches!(
                execution,
                PhaseExecution::Returned(PhaseResult::Skip | PhaseResult::Repeat)
            );
            let (measurements, validator_panic) = measure(&p.decls, &mut slots, skipped);
            // A validator that panics is a bug of the test, not a failed unit: ERROR.
            if let Some((message, location)) = validator_panic
                && matches!(&execution, PhaseExecution::Returned(r) if *r != PhaseResult::Repeat)
            {
                tracing::error!("phase {name}: {message} (at {location})");
                execution = PhaseExecution::Error {
                    exc_type: "Panic".into(),
                    exc_val: message,
                    exc_tb: location,
                };
            }
            let summaries: Vec<MeasurementSummary> = measurements
                .iter()
                .map(|m| MeasurementSummary {
                    outcome: m.outcome,
                    marginal: m.marginal,
                    allow_fail: m.decl.allow_fail,
                })
                .collect();
            let (mut phase_outcome, marginal) =
                outcome::phase_outcome(&execution, &summaries, hit_repeat_limit);
            let measurements_failed = phase_outcome == PhaseOutcome::Fail
                && execution == PhaseExecution::Returned(PhaseResult::Continue);
            // Retried because its measurements failed: this attempt is SKIP, not a stale FAIL.
            let retry =
                options.repeat_on_measurement_fail && measurements_failed && attempt < limit;
            if retry {
                tracing::warn!(
                    "phase {name} failed its measurements; attempt {} of {limit} follows",
                    attempt + 1
                );
                phase_outcome = PhaseOutcome::Skip;
            } else if measurements_failed && options.stop_on_measurement_fail {
                tracing::error!("phase {name} failed its measurements and stops the test");
                execution = PhaseExecution::Returned(PhaseResult::Stop);
            } else if phase_outcome == PhaseOutcome::Fail && self.test.stop_on_first_failure {
                tracing::error!("phase {name} failed; the test stops at its first failure");
                self.terminal.get_or_insert(Terminal::Stop {
                    phase: name.to_owned(),
                });
            }
            if hit_repeat_limit {
                tracing::error!(
                    "phase {name} asked to repeat after its last allowed attempt ({limit})"
                );
                execution = PhaseExecution::Returned(PhaseResult::Stop);
            }
            match &execution {
                PhaseExecution::Returned(PhaseResult::Stop) => {
                    self.terminal.get_or_insert(Terminal::Stop {
                        phase: name.to_owned(),
                    });
                }
                PhaseExecution::Error {
                    exc_type, exc_val, ..
                } => {
                    self.terminal.get_or_insert(Terminal::Error {
                        code: exc_type.clone(),
                        description: exc_val.clone(),
                    });
                }
                PhaseExecution::Timeout => {
                    self.terminal.get_or_insert(Terminal::Timeout {
                        phase: name.to_owned(),
                    });
                }
                _ => {}
            }
            let mut record = self.phase_record(
                p,
                attempt,
                start,
                end,
                measurements,
                ctx.attachments,
                execution,
                phase_outcome,
                marginal,
            );
            record.plug_wait_millis = plug_wait_millis;
            if let Some(slot) = self.slot {
                slot.show_progress(&self.dut_id, &record);
            }
            self.phases.push(record);
            if !(repeat || retry) || hit_repeat_limit {
                break;
            }
        }
        logging::set_phase(None);
    }

    /// The record of one attempt.
    #[allow(clippy::too_many_arguments)]
    fn phase_record(
        &self,
        p: &Prepared,
        attempt: u32,
        start: i64,
        end: i64,
        measurements: Vec<MeasurementRecord>,
        attachments: Vec<crate::record::Attachment>,
        result: PhaseExecution,
        outcome: PhaseOutcome,
        marginal: Option<bool>,
    ) -> PhaseRecord {
        let phase = &p.phase;
        PhaseRecord {
            measurements,
            options: options_record(&phase.options()),
            diagnosers: Vec::new(),
            subtest_name: self.subtest.as_ref().map(|(name, _)| name.clone()),
            start_time_millis: start,
            end_time_millis: end,
            attachments,
            diagnosis_results: Vec::new(),
            failure_diagnosis_results: Vec::new(),
            result,
            outcome,
            marginal,
            descriptor_id: descriptor_id(phase.location().0, phase.function()),
            name: phase.name().to_owned(),
            codeinfo: CodeInfo {
                name: phase.function().to_owned(),
                docstring: phase.doc().map(str::to_owned),
                sourcecode: String::new(),
                file: Some(phase.location().1.to_owned()),
                line: Some(phase.location().2),
            },
            attempt,
            plug_wait_millis: None,
        }
    }

    /// Who holds a shared plug while this run's phase `phase` uses it, for messages.
    fn holder_name(&self, phase: &str) -> String {
        match self.slot {
            Some(slot) => format!("{} ({}), phase {phase}", slot.record.name, self.dut_id),
            None => format!("phase {phase}"),
        }
    }

    fn finish(self, log_records: Vec<crate::record::LogRecord>) -> TestRecord {
        let end_time_millis = now_millis();
        let summaries: Vec<PhaseSummary> = self
            .phases
            .iter()
            .map(|p| PhaseSummary {
                outcome: p.outcome,
                marginal: p.marginal,
            })
            .collect();
        let multidim_failures: Vec<String> = self
            .phases
            .iter()
            .flat_map(|p| {
                p.measurements
                    .iter()
                    .filter(|m| {
                        m.decl.kind == ValueKind::MultiDim && m.outcome == MeasurementOutcome::Fail
                    })
                    .map(move |m| format!("{}.{}", p.name, m.name()))
            })
            .collect();
        let (outcome, outcome_details, marginal) = outcome::test_outcome(
            self.aborted,
            self.terminal.as_ref(),
            &summaries,
            &multidim_failures,
        );
        let station_id = self
            .test
            .station_id
            .clone()
            .unwrap_or_else(default_station_id);
        TestRecord {
            dut_id: self.dut_id,
            start_time_millis: self.start_time_millis,
            end_time_millis,
            outcome,
            outcome_details,
            marginal,
            metadata: metadata_record(&self.test.metadata, &station_id),
            phases: self.phases,
            subtests: self.subtests,
            branches: Vec::new(),
            diagnosers: Vec::new(),
            diagnoses: Vec::new(),
            log_records,
            station_id,
            code_info: CodeInfo::default(),
            slot: self.slot.map(|s| s.record.clone()),
        }
    }
}

/// Above this many measurements, repeated names are found by hashing, not pairwise.
const PAIRWISE_UP_TO: usize = 16;

/// The positions, in increasing order, of the measurements whose name an earlier one has.
fn repeated_names(declared: &[Declared]) -> Vec<usize> {
    let name = |i: usize| declared[i].decl.name.as_str();
    if declared.len() <= PAIRWISE_UP_TO {
        (0..declared.len())
            .filter(|&i| (0..i).any(|j| name(j) == name(i)))
            .collect()
    } else {
        let mut seen = HashSet::with_capacity(declared.len());
        (0..declared.len())
            .filter(|&i| !seen.insert(name(i)))
            .collect()
    }
}

/// Validates the phase's measurements and moves their values into records. A measurement whose
/// validator panics is FAIL; the first such panic is returned, with the measurement's name.
fn measure(
    decls: &[Arc<MeasurementDecl>],
    slots: &mut [Slot],
    phase_skipped: bool,
) -> (Vec<MeasurementRecord>, Option<(String, String)>) {
    let mut panicked = None;
    let records = decls
        .iter()
        .zip(slots.iter_mut())
        .map(|(decl, slot)| {
            let value = slot.take();
            let (outcome, marginal) =
                catch(|| outcome::measurement_outcome(decl, value.as_ref(), phase_skipped))
                    .unwrap_or_else(|panic| {
                        panicked.get_or_insert((
                            format!(
                                "a validator of measurement `{}` panicked: {}",
                                decl.name, panic.message
                            ),
                            panic.location,
                        ));
                        (MeasurementOutcome::Fail, false)
                    });
            MeasurementRecord {
                decl: Arc::clone(decl),
                outcome,
                marginal,
                measured_value: value,
            }
        })
        .collect();
    (records, panicked)
}

fn options_record(options: &PhaseOptions) -> PhaseOptionsRecord {
    PhaseOptionsRecord {
        name: options.name.map(str::to_owned),
        timeout_s: options.timeout.map(|t| t.as_secs_f64()),
        run_if: options.run_if_name.map(str::to_owned),
        requires_state: false,
        force_repeat: false,
        repeat_on_measurement_fail: options.repeat_on_measurement_fail,
        repeat_on_timeout: false,
        repeat_limit: options.repeat_limit,
        run_under_pdb: false,
        phase_name_case: "KEEP",
        stop_on_measurement_fail: options.stop_on_measurement_fail,
    }
}

const RESERVED_METADATA: [&str; 10] = [
    "test_name",
    "procedure_id",
    "procedure_version",
    "part_number",
    "revision",
    "batch_number",
    "sub_units",
    "tofu_version",
    "config",
    "station_id",
];

fn metadata_record(m: &TestMetadata, station_id: &str) -> Metadata {
    let mut extra = m.extra.clone();
    extra.retain(|key, _| {
        let reserved = RESERVED_METADATA.contains(&key.as_str());
        if reserved {
            tracing::warn!(
                "metadata key `{key}` is reserved; the value given with Test::metadata is ignored"
            );
        }
        !reserved
    });
    Metadata {
        test_name: m
            .test_name
            .clone()
            .unwrap_or_else(|| m.procedure_id.clone()),
        procedure_id: m.procedure_id.clone(),
        procedure_version: m.procedure_version.clone(),
        part_number: m.part_number.clone(),
        revision: m.revision.clone(),
        batch_number: m.batch_number.clone(),
        sub_units: m.sub_units.clone(),
        extra,
        tofu_version: env!("CARGO_PKG_VERSION").to_owned(),
        config: serde_json::json!({
            "station_id": station_id,
            "allow_unset_measurements": false,
            "stop_on_first_failure": false,
            "capture_source": false,
        }),
    }
}

/// FNV-1a of the phase's path: the same in every process, below 2^53 so that JSON readers in
/// any language read it exactly.
fn descriptor_id(module_path: &str, function: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in module_path.bytes().chain(*b"::").chain(function.bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash & ((1 << 53) - 1)
}

fn default_station_id() -> String {
    std::env::var("TOFU_STATION_ID")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-station".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_names_are_found_pairwise_or_hashed() {
        use crate::declare::{__declare, __unspecified};
        let declare = |names: &[String]| -> Vec<Declared> {
            names
                .iter()
                .map(|n| __declare::<f64, _>(n, __unspecified()))
                .collect()
        };
        for n in [
            0,
            1,
            PAIRWISE_UP_TO - 2,
            PAIRWISE_UP_TO,
            PAIRWISE_UP_TO + 1,
            200,
        ] {
            let mut names: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
            assert!(repeated_names(&declare(&names)).is_empty(), "{n}");
            names.push("m0".into());
            names.push("x".into());
            names.push("x".into());
            names.push("x".into());
            let want = if n == 0 {
                vec![n + 2, n + 3]
            } else {
                vec![n, n + 2, n + 3]
            };
            assert_eq!(repeated_names(&declare(&names)), want, "{n}");
        }
    }

    #[test]
    fn descriptor_ids_are_stable_and_distinct() {
        assert_eq!(descriptor_id("a::b", "f"), descriptor_id("a::b", "f"));
        assert_ne!(descriptor_id("a::b", "f"), descriptor_id("a::b", "g"));
        assert!(descriptor_id("x", "y") < 1 << 53);
    }
}
