//! The executor: one run of a plan on one unit, from the serial number to the record.
//!
//! It walks the plan's steps (phases, groups, subtests), runs each phase attempt on the run's
//! worker (`attempt.rs`), applies the rules (`attempt_rules.rs`, `outcome.rs`), publishes every
//! step as an event and keeps the journal, and always reaches the record: whatever a phase,
//! a plug or an operator does, `execute` returns a [`TestRecord`].

use std::sync::Arc;
use std::time::Duration;

use crate::abort::{Abort, TEARDOWN_LEVEL};
use crate::attempt::{self, Attempt, Ended};
use crate::attempt_rules::{self, AttemptFacts, StopReason};
use crate::clock::now_millis;
use crate::context::PhaseContext;
use crate::desk::{Desk, Waiting};
use crate::emitter::Emitter;
use crate::error_code::ErrorCode;
use crate::event::EventKind;
use crate::gate::GateError;
use crate::journal::{self, Journal};
use crate::logging;
use crate::measurement::{MeasurementDecl, Slot, ValueKind};
use crate::outcome::{
    self, MeasurementOutcome, MeasurementSummary, PhaseExecution, PhaseOutcome, PhaseResult,
    PhaseSummary, Terminal,
};
use crate::panic_capture::{Panic, catch};
use crate::phase::{PhaseOptions, PhaseReturn};
use crate::plan::{self, PlanCell, Prepared, PreparedPlan, Step, UNKNOWN_DUT};
use crate::plug::PlugEntry;
use crate::plug_calls;
use crate::prompt;
use crate::record::{Attachment, CodeInfo, MeasurementRecord, PhaseRecord, TestRecord};
use crate::shared_plug;
use crate::slot::SlotRun;
use crate::value::Value;

/// What a serial-number source gave: the serial number, why there is none, or its panic.
pub(crate) type SerialNumber = Result<Result<String, String>, Panic>;

/// Everything a run is given besides its serial number.
pub(crate) struct RunEnv<'a> {
    pub(crate) plan: &'a PlanCell,
    pub(crate) slot: Option<&'a SlotRun>,
    pub(crate) abort: Arc<Abort>,
    pub(crate) events: Arc<Emitter>,
    /// Where the run's questions go.
    pub(crate) desk: Arc<Desk>,
    /// Where the journal goes (none: no journal).
    pub(crate) journal_dir: Option<std::path::PathBuf>,
    pub(crate) plug_timeout: Duration,
}

/// Runs the plan once and returns its record (never an error: whatever goes wrong is in it).
pub(crate) fn execute(
    env: &RunEnv<'_>,
    serial_number: impl FnOnce() -> SerialNumber,
) -> TestRecord {
    logging::with_capturing_subscriber(|capturing| {
        if !capturing {
            warn_not_capturing();
        }
        // A slot's console lines begin with its name.
        let _span = env
            .slot
            .map(|s| tracing::info_span!("slot", name = %s.record.name).entered());
        logging::start_capture(env.plan.log_level, Some(Arc::clone(&env.events)));
        let mut run = Run::new(env);
        run.execute(serial_number);
        // A slot's run is over: the synchronized slots don't wait for its outputs.
        if let Some(slot) = env.slot {
            slot.leave_sync();
        }
        let logs = logging::finish_capture();
        run.finish(logs)
    })
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
struct Run<'e> {
    env: &'e RunEnv<'e>,
    dut_id: String,
    start_time_millis: i64,
    station_id: String,
    /// The phases' records, shared with the `phase_ended` events an observer may still hold.
    phases: Vec<Arc<PhaseRecord>>,
    terminal: Option<Terminal>,
    /// The run was aborted.
    aborted: bool,
    /// The thread the phases run on.
    worker: Option<attempt::Worker>,
    /// The subtest running, and whether a phase failed it.
    subtest: Option<(String, bool)>,
    subtests: Vec<serde_json::Value>,
    /// The groups and subtests running, by name, outermost first.
    sequence: Vec<String>,
}

impl<'e> Run<'e> {
    fn new(env: &'e RunEnv<'e>) -> Self {
        Run {
            env,
            dut_id: UNKNOWN_DUT.to_owned(),
            start_time_millis: now_millis(),
            station_id: env.plan.station_id(),
            phases: Vec::new(),
            terminal: None,
            aborted: false,
            worker: None,
            subtest: None,
            subtests: Vec::new(),
            sequence: Vec::new(),
        }
    }

    fn abort(&self) -> &Abort {
        &self.env.abort
    }

    fn emit(&self, kind: EventKind) {
        self.env.events.emit(kind);
    }

    fn fail(&mut self, code: ErrorCode, description: String) {
        tracing::error!("{description}");
        self.terminal
            .get_or_insert(Terminal::Error { code, description });
    }

    fn execute(&mut self, serial_number: impl FnOnce() -> SerialNumber) {
        let prepared = match self.env.plan.prepare() {
            Ok(prepared) => {
                for warning in prepared.warnings.iter() {
                    tracing::warn!("{warning}");
                }
                self.start(Some(&prepared));
                prepared
            }
            Err(errors) => {
                // Nothing can run: don't make the operator scan a board for it, but keep a
                // serial number given without asking (`--serial`, a fixed one) in the record.
                if let Ok(Ok(serial)) = prompt::without_asking(serial_number)
                    && !serial.trim().is_empty()
                {
                    self.dut_id = serial;
                }
                self.start(None);
                self.fail(errors.code(), errors.description());
                return;
            }
        };
        // A question for the serial number goes to the run's desk and ends with an abort.
        let asking = prompt::AskContext {
            desk: Arc::clone(&self.env.desk),
            waiting: Waiting {
                abort: Arc::clone(&self.env.abort),
                level: 1,
                stop: None,
            },
        };
        self.identify(prompt::asking(asking, serial_number));
        self.start_time_millis = now_millis();
        if let Some(error) = self.env.slot.and_then(|s| s.shared_setup_error.as_ref()) {
            self.fail(
                ErrorCode::PlugSetupError,
                format!("{error}; no phase was run"),
            );
        }
        self.notice_abort();
        if self.terminal.is_some() {
            return;
        }
        let set_up = self.set_up_plugs();
        if self.terminal.is_none() {
            let steps = self.env.plan.steps();
            self.run_steps(&steps, &prepared.phases, false);
        }
        self.tear_down_plugs(set_up);
        // An abort during the last phase or the teardowns is an abort too.
        self.notice_abort();
    }

    /// The run starts: its event, and its journal.
    fn start(&mut self, prepared: Option<&PreparedPlan>) {
        self.emit(EventKind::RunStarted {
            serial_number: self.dut_id.clone(),
            procedure_id: self.env.plan.metadata.procedure_id.clone(),
            test_name: self
                .env
                .plan
                .metadata
                .test_name
                .clone()
                .unwrap_or_else(|| self.env.plan.metadata.procedure_id.clone()),
            slot_name: self.env.slot.map(|s| s.record.name.clone()),
            plan: prepared.map_or_else(|| Arc::new(Vec::new()), |p| Arc::clone(&p.planned)),
        });
        let Some(dir) = &self.env.journal_dir else {
            return;
        };
        let metadata = self.env.plan.metadata_record(&self.station_id);
        let start = journal::Start {
            dut_id: &self.dut_id,
            start_time_millis: self.start_time_millis,
            station_id: &self.station_id,
            metadata: &metadata,
            slot: self.env.slot.map(|s| &s.record),
        };
        match Journal::create(dir, &start) {
            Ok(journal) => self.env.events.set_journal(journal),
            Err(e) => tracing::warn!(
                "can't start the run journal in {}: {e}; the run goes on without it (a crash would lose it)",
                dir.display()
            ),
        }
    }

    /// Takes the serial number the source gave.
    fn identify(&mut self, serial: SerialNumber) {
        match serial {
            Ok(Err(why)) => {
                if self.abort().is_aborted() {
                    self.aborted = true;
                }
                self.fail(
                    ErrorCode::SerialNumberUnavailable,
                    format!("no serial number: {why}; no phase was run"),
                );
            }
            Ok(Ok(serial)) if serial.trim().is_empty() => {
                self.fail(
                    ErrorCode::InvalidSerialNumber,
                    format!("the serial number is empty ({serial:?}); no phase was run"),
                );
            }
            Ok(Ok(serial)) => {
                self.dut_id = serial;
                self.emit(EventKind::UnitIdentified {
                    serial_number: self.dut_id.clone(),
                });
            }
            Err(panic) => {
                self.fail(
                    ErrorCode::Panic,
                    format!(
                        "getting the serial number panicked at {}: {}",
                        panic.location, panic.message
                    ),
                );
            }
        }
    }

    /// Runs steps in order (OpenHTF's sequences). Outside a teardown, a step that ends the run
    /// (stop, error, timeout, abort) ends the sequence; in a teardown every step runs (unless
    /// aborted twice), and the sequence ends the run if one of its steps did.
    fn run_steps(&mut self, steps: &[Step], prepared: &[Prepared], teardown: bool) -> Flow {
        let mut flow = Flow::Continue;
        for step in steps {
            self.notice_abort();
            if teardown && self.abort().reached(TEARDOWN_LEVEL) {
                return Flow::Terminal; // aborted twice: teardown skipped
            }
            if !teardown && self.aborted {
                return Flow::Terminal;
            }
            let step_flow = match step {
                Step::Phase(i) => self.run_step(*i, prepared, teardown),
                Step::Group {
                    name,
                    setup,
                    main,
                    teardown: down,
                } => {
                    self.sequence.push(name.clone());
                    let flow = self.run_group(setup, main, down, prepared, teardown);
                    self.sequence.pop();
                    flow
                }
                Step::Subtest { name, steps } => {
                    self.sequence.push(name.clone());
                    let flow = self.run_subtest(name, steps, prepared, teardown);
                    self.sequence.pop();
                    flow
                }
            };
            if step_flow == Flow::Terminal && !teardown {
                return Flow::Terminal;
            }
            flow = flow.max(step_flow);
        }
        flow
    }

    /// Whether the subtest running (if any) has failed.
    fn subtest_failed(&self) -> bool {
        self.subtest.as_ref().is_some_and(|(_, failed)| *failed)
    }

    fn run_step(&mut self, i: usize, prepared: &[Prepared], teardown: bool) -> Flow {
        let Some(p) = prepared.get(i) else {
            return Flow::Continue;
        };
        if let Some(slot) = self.env.slot {
            if slot.sync.is_some() {
                // Waiting for the other slots may be long: the journal has the phases before.
                self.env.events.flush_journal();
            }
            slot.reach_phase(i, self.abort());
            // An abort ends the wait: it must not start the phase.
            self.notice_abort();
            if self.aborted && !teardown {
                return Flow::Terminal;
            }
        }
        // In a failed subtest, phases are recorded SKIP, except in a teardown.
        if !teardown && self.subtest_failed() {
            self.record_skipped(i, p);
            return Flow::Continue;
        }
        match self.should_run(p) {
            Some(true) => self.run_phase(i, p, teardown),
            Some(false) => Flow::Continue,
            None => Flow::Terminal,
        }
    }

    /// A group (OpenHTF 1.6.3's `PhaseGroup`): the teardown runs whenever the setup didn't end
    /// the run, after anything in main (a FailSubtest there included). A group reached in a
    /// failed subtest is not entered: its teardown's phases are recorded SKIP like the others.
    fn run_group(
        &mut self,
        setup: &[Step],
        main: &[Step],
        down: &[Step],
        prepared: &[Prepared],
        teardown: bool,
    ) -> Flow {
        let mut skip_teardown = self.subtest_failed();
        if self.run_steps(setup, prepared, teardown) == Flow::Terminal {
            return Flow::Terminal; // neither main nor teardown
        }
        skip_teardown |= self.subtest_failed();
        let main_flow = self.run_steps(main, prepared, teardown);
        let down_flow = self.run_steps(down, prepared, !skip_teardown);
        main_flow.max(down_flow)
    }

    /// A subtest: STOP when its steps ended the run, FAIL when a phase failed it; one inside a
    /// failed subtest starts failed (its phases are SKIP).
    fn run_subtest(
        &mut self,
        name: &str,
        steps: &[Step],
        prepared: &[Prepared],
        teardown: bool,
    ) -> Flow {
        let inherited = self.subtest_failed();
        let outer = self.subtest.replace((name.to_owned(), inherited));
        let start = now_millis();
        let flow = self.run_steps(steps, prepared, teardown);
        let outcome = if flow == Flow::Terminal {
            "STOP"
        } else if self.subtest_failed() {
            "FAIL"
        } else {
            "PASS"
        };
        let subtest = serde_json::json!({
            "name": name,
            "start_time_millis": start,
            "end_time_millis": now_millis(),
            "outcome": outcome,
            "marginal": null,
        });
        self.env.events.subtest(&subtest);
        self.subtests.push(subtest);
        self.subtest = outer;
        flow
    }

    /// An abort (signal or command): the run is aborted, the sequences stop, teardowns still
    /// run.
    fn notice_abort(&mut self) {
        if !self.aborted && self.abort().is_aborted() {
            self.aborted = true;
            self.emit(EventKind::AbortRequested {
                presses: self.abort().presses(),
            });
        }
        if self.aborted {
            self.terminal.get_or_insert(Terminal::Stop {
                phase: "abort".to_owned(),
            });
        }
    }

    /// Evaluates the phase's `run_if`; a panicking condition ends the run as an error (`None`).
    fn should_run(&mut self, p: &Prepared) -> Option<bool> {
        let Some(run_if) = p.phase.options().run_if else {
            return Some(true);
        };
        // The condition is the user's code: the journal has the phases before it.
        self.env.events.flush_journal();
        match catch(run_if) {
            Ok(true) => Some(true),
            Ok(false) => {
                tracing::debug!(
                    "phase {} is not run: its run_if condition is false",
                    p.phase.name()
                );
                Some(false)
            }
            Err(panic) => {
                self.fail(
                    ErrorCode::Panic,
                    format!(
                        "the run_if condition of phase {} panicked at {}: {}",
                        p.phase.name(),
                        panic.location,
                        panic.message
                    ),
                );
                None
            }
        }
    }

    /// Records a phase of a failed subtest as SKIP, without running it.
    fn record_skipped(&mut self, index: usize, p: &Prepared) {
        let slots: Vec<Slot> = p.decls.iter().map(Slot::new).collect();
        let now = now_millis();
        let ended = AttemptEnd {
            attempt: 1,
            start: now,
            end: now,
            measurements: measure(&p.decls, &slots, true).0,
            attachments: Vec::new(),
            execution: PhaseExecution::Returned(PhaseResult::Skip),
            outcome: PhaseOutcome::Skip,
            marginal: None,
            plug_wait_millis: None,
        };
        self.push_phase(index, p, ended);
    }

    /// The run's own plugs (a station's shared plugs are the station's business).
    fn own_plugs(&self) -> impl DoubleEndedIterator<Item = &'e PlugEntry> + use<'e> {
        self.env.plan.plugs.iter().filter(|p| p.gate.is_none())
    }

    /// Sets up the run's own plugs in order; stops at the first failure. Returns how many were
    /// set up.
    fn set_up_plugs(&mut self) -> usize {
        let events = &self.env.events;
        let (count, error) = plug_calls::set_up_all(
            self.own_plugs(),
            self.abort(),
            self.env.plug_timeout,
            &mut |plug, error| {
                events.emit(EventKind::PlugSetUp {
                    plug: plug.name.to_owned(),
                    error: error.map(str::to_owned),
                });
            },
        );
        if let Some(error) = error {
            self.notice_abort();
            self.fail(
                ErrorCode::PlugSetupError,
                format!("{error}; no phase was run"),
            );
        }
        count
    }

    /// Tears down the first `count` own plugs, last first, each once, whatever happens to the
    /// others.
    fn tear_down_plugs(&mut self, count: usize) {
        // A teardown is the user's code: the journal has every phase before it.
        self.env.events.flush_journal();
        let plugs: Vec<&PlugEntry> = self.own_plugs().take(count).collect();
        let events = &self.env.events;
        plug_calls::tear_down_all(
            plugs.into_iter(),
            self.abort(),
            self.env.plug_timeout,
            &mut |plug, error| {
                events.emit(EventKind::PlugTornDown {
                    plug: plug.name.to_owned(),
                    error: error.map(str::to_owned),
                });
            },
        );
    }

    /// Runs every attempt of one phase.
    fn run_phase(&mut self, index: usize, p: &Prepared, teardown: bool) -> Flow {
        let options = p.phase.options();
        let limit = options
            .repeat_limit
            .unwrap_or(PhaseOptions::DEFAULT_REPEAT_LIMIT)
            .max(1);
        let name = p.phase.name();
        logging::set_phase(Some(name));
        let plan = self.env.plan;
        let plugs: Vec<&PlugEntry> = p.plugs.iter().map(|&i| &plan.plugs[i]).collect();
        // In a teardown, only a second abort interrupts.
        let abort_at = if teardown { TEARDOWN_LEVEL } else { 1 };
        let mut flow = Flow::Continue;
        for attempt in 1..=limit {
            self.emit(EventKind::PhaseStarted {
                index,
                name: name.to_owned(),
                attempt,
            });
            let ended = self.run_attempt(p, &plugs, attempt, abort_at);
            let summaries: Vec<MeasurementSummary> = ended
                .measurements
                .iter()
                .map(|m| MeasurementSummary {
                    outcome: m.outcome,
                    marginal: m.marginal,
                    allow_fail: m.decl.allow_fail,
                })
                .collect();
            let verdict = attempt_rules::decide(
                ended.execution.clone(),
                &summaries,
                AttemptFacts {
                    attempt,
                    limit,
                    repeat_on_measurement_fail: options.repeat_on_measurement_fail,
                    stop_on_measurement_fail: options.stop_on_measurement_fail,
                    stop_on_first_failure: plan.stop_on_first_failure,
                },
            );
            self.log_verdict(name, attempt, limit, &ended.execution, &verdict);
            self.end_attempt(name, &verdict);
            let again = verdict.again;
            if !again {
                // The last attempt decides: it ends the run, or fails the subtest.
                if verdict.stop.is_some() || verdict.execution.is_terminal() {
                    flow = Flow::Terminal;
                } else if verdict.execution == PhaseExecution::Returned(PhaseResult::FailSubtest)
                    && let Some((_, failed)) = self.subtest.as_mut()
                {
                    *failed = true;
                }
            }
            let ended = AttemptEnd {
                execution: verdict.execution,
                outcome: verdict.outcome,
                marginal: verdict.marginal,
                ..ended
            };
            self.push_phase(index, p, ended);
            if !again {
                break;
            }
        }
        logging::set_phase(None);
        flow
    }

    fn log_verdict(
        &self,
        name: &str,
        attempt: u32,
        limit: u32,
        returned: &PhaseExecution,
        verdict: &attempt_rules::Verdict,
    ) {
        if verdict.again && *returned == PhaseExecution::Returned(PhaseResult::Continue) {
            tracing::warn!(
                "phase {name} failed its measurements; attempt {} of {limit} follows",
                attempt + 1
            );
        } else if verdict.stop == Some(StopReason::FirstFailure) {
            tracing::error!("phase {name} failed; the test stops at its first failure");
        } else if *returned == PhaseExecution::Returned(PhaseResult::Repeat) && !verdict.again {
            tracing::error!(
                "phase {name} asked to repeat after its last allowed attempt ({limit})"
            );
        } else if *returned == PhaseExecution::Returned(PhaseResult::Continue)
            && verdict.stop == Some(StopReason::Stopped)
        {
            tracing::error!("phase {name} failed its measurements and stops the test");
        }
    }

    /// What the attempt's end means for the run: a stop, an error, a timeout.
    fn end_attempt(&mut self, name: &str, verdict: &attempt_rules::Verdict) {
        if verdict.stop.is_some() {
            self.terminal.get_or_insert(Terminal::Stop {
                phase: name.to_owned(),
            });
        }
        match &verdict.execution {
            PhaseExecution::Error {
                exc_type, exc_val, ..
            } => {
                self.terminal.get_or_insert(Terminal::Error {
                    code: ErrorCode::Phase(exc_type.clone()),
                    description: exc_val.clone(),
                });
            }
            PhaseExecution::Timeout => {
                self.terminal.get_or_insert(Terminal::Timeout {
                    phase: name.to_owned(),
                });
            }
            PhaseExecution::Aborted => self.aborted = true,
            _ => {}
        }
    }

    /// Runs one attempt: holds the shared plugs, runs the phase on the worker, validates what
    /// it measured (also when it timed out or was aborted: what was set before is kept).
    fn run_attempt(
        &mut self,
        p: &Prepared,
        plugs: &[&PlugEntry],
        attempt: u32,
        abort_at: u32,
    ) -> AttemptEnd {
        let name = p.phase.name();
        let ctx = self.context(name, attempt, abort_at);
        let attachments = Arc::clone(&ctx.attachments);
        let slots: Vec<Slot> = p.decls.iter().map(Slot::new).collect();
        let shares: Vec<Slot> = slots.iter().map(Slot::share).collect();
        // A station's shared plugs are held before the phase starts: the wait is not the
        // phase's time, nor part of its timeout.
        let waiting_since = now_millis();
        let events = Arc::clone(&self.env.events);
        let held = shared_plug::hold_all(
            plugs,
            || self.holder_name(name),
            self.abort(),
            abort_at,
            &mut |plug| {
                events.emit(EventKind::WaitingForPlug {
                    phase: name.to_owned(),
                    plug: plug.to_owned(),
                });
            },
        );
        let start = now_millis();
        let timeout = p.phase.options().timeout.or(self.env.plan.phase_timeout);
        let mut live = LivePoints::new(&shares, p, &events);
        let env = self.env;
        let returned = match &held {
            Ok(_) => attempt::run(
                &mut self.worker,
                Attempt {
                    phase: &p.phase,
                    ctx,
                    slots,
                    plugs,
                    timeout,
                    quick_turnaround: !env.events.is_busy(),
                },
                &env.abort,
                &mut || live.tick(),
            ),
            Err(error) => not_started(name, error),
        };
        let end = now_millis();
        let started = held.is_ok();
        let abandoned = matches!(returned, Ended::TimedOut | Ended::Aborted);
        if let Ok(held) = held {
            held.release(abandoned);
        }
        let execution = self.execution(name, returned, started, timeout);
        live.flush();
        let (measurements, execution) = validate(name, &p.decls, &shares, execution);
        let attachments = std::mem::take(
            &mut *attachments
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        AttemptEnd {
            attempt,
            start,
            end,
            measurements,
            attachments,
            execution,
            outcome: PhaseOutcome::Skip,
            marginal: None,
            plug_wait_millis: plugs
                .iter()
                .any(|p| p.gate.is_some())
                .then_some(start - waiting_since),
        }
    }

    /// The context an attempt of phase `name` runs with.
    fn context(&self, name: &str, attempt: u32, abort_at: u32) -> PhaseContext {
        let mut ctx = PhaseContext::new(&self.dut_id, name, attempt);
        ctx.parameters = self.env.plan.parameters();
        ctx.abort = Arc::clone(&self.env.abort);
        ctx.desk = Arc::clone(&self.env.desk);
        ctx.abort_at = abort_at;
        ctx
    }

    /// How the attempt ended, as the record says it.
    fn execution(
        &mut self,
        name: &str,
        returned: Ended,
        started: bool,
        timeout: Option<Duration>,
    ) -> PhaseExecution {
        let mut execution = match returned {
            Ended::TimedOut => {
                tracing::error!(
                    "phase {name} timed out after {:?}; it is abandoned (what it measured before is kept)",
                    timeout.unwrap_or_default()
                );
                PhaseExecution::Timeout
            }
            Ended::Aborted => {
                if started {
                    tracing::error!(
                        "phase {name} aborted; it is abandoned (what it measured before is kept)"
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
        if execution == PhaseExecution::Returned(PhaseResult::FailSubtest) && self.subtest.is_none()
        {
            // OpenHTF's InvalidPhaseResultError, with its message. (Inside a subtest, the last
            // attempt fails it: see `run_phase`.)
            tracing::error!("phase {name} returned FailSubtest outside a subtest");
            execution = PhaseExecution::Error {
                exc_type: "InvalidPhaseResultError".into(),
                exc_val: "Phase returned FAIL_SUBTEST but a subtest is not running.".into(),
                exc_tb: String::new(),
            };
        }
        execution
    }

    /// Records an attempt: its events (measurements, attachments, its end) and its record.
    fn push_phase(&mut self, index: usize, p: &Prepared, ended: AttemptEnd) {
        let phase = &p.phase;
        let events = &self.env.events;
        if events.is_observed() {
            let measured =
                (ended.measurements.iter().enumerate()).map(|(i, m)| measurement_event(p, i, m));
            let attached = ended.attachments.iter().map(|a| EventKind::Attachment {
                phase: phase.name().to_owned(),
                name: a.name.clone(),
                size: a.size(),
                mimetype: a.mimetype.clone(),
            });
            events.emit_all(measured.chain(attached));
        }
        let record = PhaseRecord {
            measurements: ended.measurements,
            options: plan::options_record(&phase.options()),
            diagnosers: Vec::new(),
            subtest_name: self.subtest.as_ref().map(|(name, _)| name.clone()),
            sequence: self.sequence.clone(),
            start_time_millis: ended.start,
            end_time_millis: ended.end,
            attachments: ended.attachments,
            diagnosis_results: Vec::new(),
            failure_diagnosis_results: Vec::new(),
            result: ended.execution,
            outcome: ended.outcome,
            marginal: ended.marginal,
            descriptor_id: plan::descriptor_id(phase.location().0, phase.function()),
            name: phase.name().to_owned(),
            codeinfo: CodeInfo {
                name: phase.function().to_owned(),
                docstring: phase.doc().map(str::to_owned),
                sourcecode: String::new(),
                file: Some(phase.location().1.to_owned()),
                line: Some(phase.location().2),
            },
            attempt: ended.attempt,
            plug_wait_millis: ended.plug_wait_millis,
        };
        let record = Arc::new(record);
        events.phase_ended(index, &record);
        self.phases.push(record);
    }

    /// Who holds a shared plug while this run's phase `phase` uses it, for messages.
    fn holder_name(&self, phase: &str) -> String {
        match self.env.slot {
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
        // As OpenHTF: every multi-dimensional measurement that did not pass (failed or never
        // set) in a FAIL phase.
        let multidim_failures: Vec<String> = self
            .phases
            .iter()
            .filter(|p| p.outcome == PhaseOutcome::Fail)
            .flat_map(|p| {
                p.measurements
                    .iter()
                    .filter(|m| {
                        m.decl.kind == ValueKind::MultiDim && m.outcome != MeasurementOutcome::Pass
                    })
                    .map(|m| {
                        outcome::multidim_failure_description(
                            &m.decl,
                            m.outcome,
                            m.measured_value.as_ref(),
                        )
                    })
            })
            .collect();
        let (outcome, outcome_details, marginal) = outcome::test_outcome(
            self.aborted,
            self.terminal.as_ref(),
            &summaries,
            &multidim_failures,
        );
        // What the run's own plugs (instruments) add to the record, then the station's shared
        // plugs (asked when the batch set them up).
        let mut metadata = self.env.plan.metadata_record(&self.station_id);
        let own = crate::plug::record_metadata(self.own_plugs());
        let shared = self.env.slot.map(|s| &s.shared_metadata[..]).unwrap_or(&[]);
        crate::plug::add_record_metadata(
            &mut metadata.extra,
            &plan::RESERVED_METADATA,
            own.iter().chain(shared),
        );
        TestRecord {
            dut_id: self.dut_id,
            start_time_millis: self.start_time_millis,
            end_time_millis,
            outcome,
            outcome_details,
            marginal,
            metadata,
            // Copied only if an observer still holds the phase's event.
            phases: self
                .phases
                .into_iter()
                .map(|p| Arc::try_unwrap(p).unwrap_or_else(|shared| (*shared).clone()))
                .collect(),
            subtests: self.subtests,
            branches: Vec::new(),
            diagnosers: Vec::new(),
            diagnoses: Vec::new(),
            log_records,
            station_id: self.station_id,
            code_info: CodeInfo::default(),
            slot: self.env.slot.map(|s| s.record.clone()),
        }
    }
}

/// Whether a sequence goes on after a step (OpenHTF's `_ExecutorReturn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Flow {
    Continue,
    /// The step ended the run: a stop, an error, a timeout, an abort.
    Terminal,
}

/// An attempt as it ended, before the rules.
struct AttemptEnd {
    attempt: u32,
    start: i64,
    end: i64,
    measurements: Vec<MeasurementRecord>,
    attachments: Vec<Attachment>,
    execution: PhaseExecution,
    outcome: PhaseOutcome,
    marginal: Option<bool>,
    plug_wait_millis: Option<i64>,
}

/// The `measurement_set` event of a validated measurement.
fn measurement_event(p: &Prepared, i: usize, m: &MeasurementRecord) -> EventKind {
    let points = m
        .measured_value
        .as_ref()
        .and_then(Value::as_columns)
        .map(crate::value::Columns::len);
    let texts = p.event_texts();
    let (name, validators, units) = texts.measurement(i, &m.decl);
    EventKind::MeasurementSet {
        phase: Arc::clone(&texts.phase),
        name,
        // Not `clone().filter(..)`: that copies a million-point sweep only to drop it.
        value: if points.is_none() {
            m.measured_value.clone()
        } else {
            None
        },
        points,
        outcome: Some(m.outcome),
        marginal: m.marginal,
        validators,
        units,
    }
}

/// Live values of a running phase, for observers: every [`attempt::TICK`], the scalar values
/// set since the last look, and new points of multi-dimensional measurements in batches.
struct LivePoints<'a> {
    slots: &'a [Slot],
    phase: &'a str,
    prepared: &'a Prepared,
    events: &'a Emitter,
    /// Per slot: points already published (multi-dim) or the last value published.
    seen: Vec<Seen>,
}

enum Seen {
    Points(usize),
    Value(Option<Value>),
}

/// At most this many points in one live event; a faster sweep is thinned for the live view
/// (the record keeps every point).
const LIVE_POINTS_PER_EVENT: usize = 2_000;

impl<'a> LivePoints<'a> {
    fn new(slots: &'a [Slot], prepared: &'a Prepared, events: &'a Emitter) -> Self {
        let seen = slots
            .iter()
            .map(|s| {
                if s.kind().0 == ValueKind::MultiDim {
                    Seen::Points(0)
                } else {
                    Seen::Value(None)
                }
            })
            .collect();
        LivePoints {
            slots,
            phase: prepared.phase.name(),
            prepared,
            events,
            seen,
        }
    }

    fn tick(&mut self) {
        self.look(false);
        // The phase's detail doesn't wake subscribers: they see it now.
        self.events.wake_subscribers();
    }

    /// The phase ended: the points not yet published go out (its values follow, validated).
    fn flush(&mut self) {
        self.look(true);
    }

    fn look(&mut self, points_only: bool) {
        if !self.events.is_observed() {
            return;
        }
        for (i, (slot, seen)) in self.slots.iter().zip(&mut self.seen).enumerate() {
            match seen {
                Seen::Points(published) => {
                    let batch = slot.with(|v| {
                        let columns = v.as_ref().and_then(Value::as_columns)?;
                        let total = columns.len();
                        (total > *published).then(|| {
                            let step = (total - *published).div_ceil(LIVE_POINTS_PER_EVENT);
                            let rows = (*published..total)
                                .step_by(step)
                                .map(|i| columns.row(i))
                                .collect::<Vec<_>>();
                            (total, rows)
                        })
                    });
                    if let Some((total, points)) = batch {
                        self.events.emit(EventKind::SweepPoints {
                            phase: self.phase.to_owned(),
                            name: slot.name().to_owned(),
                            first: *published,
                            points,
                        });
                        *published = total;
                    }
                }
                Seen::Value(_) if points_only => {}
                Seen::Value(last) => {
                    let now = slot.with(|v| v.clone());
                    if now.is_some() && now != *last {
                        let texts = self.prepared.event_texts();
                        let (name, validators, units) = texts.measurement(i, slot.decl());
                        self.events.emit(EventKind::MeasurementSet {
                            phase: Arc::clone(&texts.phase),
                            name,
                            value: now.clone(),
                            points: None,
                            outcome: None,
                            marginal: false,
                            validators,
                            units,
                        });
                        *last = now;
                    }
                }
            }
        }
    }
}

/// How an attempt that could not hold its shared plugs ends: it was not started.
fn not_started(name: &str, error: &GateError) -> Ended {
    match error {
        GateError::Aborted => {
            tracing::error!("phase {name} not started: aborted while it waited for a shared plug");
            Ended::Aborted
        }
        GateError::HeldByAbandoned { plug, by } => Ended::Returned(Ok(PhaseReturn::Error {
            type_name: ErrorCode::SharedPlugUnavailable.to_string(),
            message: format!(
                "the shared plug `{plug}` is still held by {by}, which was abandoned; this phase was not run"
            ),
        })),
    }
}

/// Validates what an attempt measured ([`measure`]); a validator that panics is a bug of the
/// test, not a failed unit: the attempt is then an ERROR (unless it asked to be repeated).
fn validate(
    name: &str,
    decls: &[Arc<MeasurementDecl>],
    slots: &[Slot],
    execution: PhaseExecution,
) -> (Vec<MeasurementRecord>, PhaseExecution) {
    // Only SKIP makes unset measurements SKIPPED; a REPEAT attempt's stay UNSET.
    let skipped = execution == PhaseExecution::Returned(PhaseResult::Skip);
    let (measurements, validator_panic) = measure(decls, slots, skipped);
    match validator_panic {
        Some((message, location)) if matches!(&execution, PhaseExecution::Returned(r) if *r != PhaseResult::Repeat) =>
        {
            tracing::error!("phase {name}: {message} (at {location})");
            let error = PhaseExecution::Error {
                exc_type: "Panic".into(),
                exc_val: message,
                exc_tb: location,
            };
            (measurements, error)
        }
        _ => (measurements, execution),
    }
}

/// Validates the phase's measurements and moves their values into records. A measurement whose
/// validator panics is FAIL; the first such panic is returned, with the measurement's name.
fn measure(
    decls: &[Arc<MeasurementDecl>],
    slots: &[Slot],
    phase_skipped: bool,
) -> (Vec<MeasurementRecord>, Option<(String, String)>) {
    let mut panicked = None;
    let records = decls
        .iter()
        .zip(slots)
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
