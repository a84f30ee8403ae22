//! The plan: the data half of a [`Test`](crate::Test) — its metadata, its phases, plugs, limits
//! and options — and what is built from it before a run (declarations, the tree of steps).
//! Nothing here runs anything.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use tracing::Level;

use crate::declare::Declared;
use crate::error_code::ErrorCode;
use crate::event::{PlannedMeasurement, PlannedPhase};
use crate::group::PhaseNode;
use crate::limits_file::LimitsFile;
use crate::measurement::MeasurementDecl;
use crate::panic_capture::catch;
use crate::phase::{Phase, PhaseOptions};
use crate::plug::PlugEntry;
use crate::record::{Metadata, PhaseOptionsRecord};
use crate::validator::Validator;

/// The serial number recorded when none could be had (OpenHTF's default).
pub const UNKNOWN_DUT: &str = "UNKNOWN_DUT";

/// Who, what and which unit: the test's metadata as given to the builder.
#[derive(Debug, Clone, Default)]
pub(crate) struct TestMetadata {
    pub(crate) procedure_id: String,
    pub(crate) test_name: Option<String>,
    pub(crate) procedure_version: Option<String>,
    pub(crate) part_number: Option<String>,
    pub(crate) revision: Option<String>,
    pub(crate) batch_number: Option<String>,
    pub(crate) sub_units: Vec<String>,
    pub(crate) extra: BTreeMap<String, serde_json::Value>,
}

/// Everything a run needs to know about the test, as data.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) metadata: TestMetadata,
    pub(crate) nodes: Vec<PhaseNode>,
    pub(crate) plugs: Vec<PlugEntry>,
    pub(crate) phase_timeout: Option<std::time::Duration>,
    pub(crate) stop_on_first_failure: bool,
    pub(crate) limits: Option<LimitsFile>,
    pub(crate) log_level: Level,
    pub(crate) station_id: Option<String>,
}

/// The shape of the test, its phases replaced by their place in the prepared list.
#[derive(Debug)]
pub(crate) enum Step {
    Phase(usize),
    Group {
        name: String,
        setup: Vec<Step>,
        main: Vec<Step>,
        teardown: Vec<Step>,
    },
    Subtest {
        name: String,
        steps: Vec<Step>,
    },
}

/// A test's plan, and what it prepares for a run, kept for the next runs until the plan
/// changes: the phases' declarations (each phase's `declare` runs once, as OpenHTF's
/// decorators do), their events' texts, the `run_started` plan. A run of a thousand phases
/// spends more building these than running its phases; the station page's replay buffer keeps
/// them once for all the runs it holds, not once per run.
#[derive(Debug)]
pub(crate) struct PlanCell {
    plan: Plan,
    prepared: std::sync::OnceLock<PreparedPlan>,
}

/// What a plan prepares for its runs ([`PlanCell`]).
#[derive(Debug, Clone)]
pub(crate) struct PreparedPlan {
    /// The phases, their declarations built, in the order of the phase list.
    pub(crate) phases: Arc<[Prepared]>,
    /// The `run_started` event's plan.
    pub(crate) planned: Arc<Vec<PlannedPhase>>,
    /// What each run says in its log before it starts (a limits file's entry that drops a
    /// marginal band).
    pub(crate) warnings: Arc<[String]>,
}

impl PlanCell {
    pub(crate) fn new(plan: Plan) -> Self {
        PlanCell {
            plan,
            prepared: std::sync::OnceLock::new(),
        }
    }

    /// The phases prepared for a run: kept from an earlier run of the same plan, or built
    /// (and kept) now. A plan with errors is prepared again at each run.
    pub(crate) fn prepare(&self) -> Result<PreparedPlan, PlanErrors> {
        if let Some(prepared) = self.prepared.get() {
            return Ok(prepared.clone());
        }
        let (phases, warnings) = self.plan.prepare()?;
        let phases: Arc<[Prepared]> = phases.into();
        let prepared = PreparedPlan {
            planned: Arc::new(planned(&phases)),
            phases,
            warnings: warnings.into(),
        };
        Ok(self.prepared.get_or_init(|| prepared).clone())
    }
}

impl std::ops::Deref for PlanCell {
    type Target = Plan;

    fn deref(&self) -> &Plan {
        &self.plan
    }
}

/// Changing the plan forgets what was prepared from it.
impl std::ops::DerefMut for PlanCell {
    fn deref_mut(&mut self) -> &mut Plan {
        self.prepared = std::sync::OnceLock::new();
        &mut self.plan
    }
}

/// A phase with its declarations built.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) phase: Phase,
    pub(crate) decls: Vec<Arc<MeasurementDecl>>,
    /// Indexes into the plan's plugs, one per plug the phase asks for.
    pub(crate) plugs: Vec<usize>,
    /// The texts of the phase's `measurement_set` events, made once (for every run of the
    /// plan) and shared by every event (formatting limits costs more than the rest of a
    /// measurement's event).
    event_texts: std::sync::OnceLock<EventTexts>,
}

/// What every `measurement_set` event of a phase repeats.
#[derive(Debug)]
pub(crate) struct EventTexts {
    /// The phase's name.
    pub(crate) phase: Arc<str>,
    /// Per measurement: its name, its validators as OpenHTF writes them, its unit's name.
    pub(crate) measurements: Vec<MeasurementTexts>,
}

/// A measurement's name, its validators as OpenHTF writes them, its unit's name.
pub(crate) type MeasurementTexts = (Arc<str>, Arc<[String]>, Option<Arc<str>>);

impl EventTexts {
    /// Measurement `i`'s texts (`decl`'s, made now, should `i` be out of the plan's range).
    pub(crate) fn measurement(&self, i: usize, decl: &MeasurementDecl) -> MeasurementTexts {
        self.measurements.get(i).cloned().unwrap_or_else(|| {
            (
                Arc::from(decl.name.as_str()),
                decl.validators.iter().map(Validator::text).collect(),
                decl.units.as_ref().map(|u| Arc::from(u.name())),
            )
        })
    }
}

impl Prepared {
    /// The texts of the phase's measurement events.
    pub(crate) fn event_texts(&self) -> &EventTexts {
        self.event_texts.get_or_init(|| EventTexts {
            phase: Arc::from(self.phase.name()),
            measurements: self
                .decls
                .iter()
                .map(|d| {
                    (
                        Arc::from(d.name.as_str()),
                        d.validators.iter().map(Validator::text).collect(),
                        d.units.as_ref().map(|u| Arc::from(u.name())),
                    )
                })
                .collect(),
        })
    }
}

/// Why a plan can't run: every problem found, each naming its phase, measurement or plug,
/// and each plug no one gave with the phases that want it (one error per plug).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlanErrors(
    pub(crate) Vec<String>,
    pub(crate) Vec<(String, Vec<String>)>,
);

impl PlanErrors {
    /// `MissingPlug` when a plug is missing, else `InvalidDeclaration`.
    pub(crate) fn code(&self) -> ErrorCode {
        if self.1.is_empty() {
            ErrorCode::InvalidDeclaration
        } else {
            ErrorCode::MissingPlug
        }
    }

    pub(crate) fn description(&self) -> String {
        if self.1.is_empty() {
            return format!(
                "invalid measurement declarations; no phase was run: {}",
                self.0.join("; ")
            );
        }
        let plugs: Vec<String> = self
            .1
            .iter()
            .map(|(plug, phases)| missing_plug(plug, phases))
            .collect();
        let also = if self.0.is_empty() {
            String::new()
        } else {
            format!(
                "; also invalid measurement declarations: {}",
                self.0.join("; ")
            )
        };
        format!("{}; no phase was run{also}", plugs.join("; "))
    }
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

impl Plan {
    pub(crate) fn new(procedure_id: String) -> Self {
        Plan {
            metadata: TestMetadata {
                procedure_id,
                ..TestMetadata::default()
            },
            nodes: Vec::new(),
            plugs: Vec::new(),
            phase_timeout: None,
            stop_on_first_failure: false,
            limits: None,
            log_level: Level::DEBUG,
            station_id: None,
        }
    }

    /// Every phase, groups and subtests included, in the order they would run.
    pub(crate) fn phase_list(&self) -> Vec<Phase> {
        let mut phases = Vec::new();
        for node in &self.nodes {
            node.phases(&mut phases);
        }
        phases.into_iter().cloned().collect()
    }

    /// The tree of steps, phases numbered depth first (the order of [`Plan::phase_list`]).
    pub(crate) fn steps(&self) -> Vec<Step> {
        steps(&self.nodes, &mut 0)
    }

    /// The parameters of the limits file, for the phases' contexts.
    pub(crate) fn parameters(&self) -> Option<crate::parameters::Parameters> {
        self.limits.as_ref().map(LimitsFile::parameters)
    }

    /// Builds every phase's declarations, reporting every error found (not just the first),
    /// and what a run should say of them (warnings).
    pub(crate) fn prepare(&self) -> Result<(Vec<Prepared>, Vec<String>), PlanErrors> {
        let mut errors = Vec::new();
        let mut missing = Vec::new();
        let mut prepared = Vec::new();
        for phase in &self.phase_list() {
            match self.prepare_phase(phase, &mut errors, &mut missing) {
                Some(p) => prepared.push(p),
                None => continue,
            }
        }
        errors.extend(self.duplicate_plugs());
        let mut warnings = Vec::new();
        if let Some(limits) = &self.limits {
            errors.extend(limits.apply(
                prepared.iter_mut().map(|p| (&p.phase, &mut p.decls)),
                &mut warnings,
            ));
        }
        if errors.is_empty() && missing.is_empty() {
            Ok((prepared, warnings))
        } else {
            Err(PlanErrors(errors, missing))
        }
    }

    fn prepare_phase(
        &self,
        phase: &Phase,
        errors: &mut Vec<String>,
        missing: &mut Vec<(String, Vec<String>)>,
    ) -> Option<Prepared> {
        let declared = match catch(|| phase.declare()) {
            Ok(d) => d,
            Err(panic) => {
                errors.push(format!(
                    "phase `{}`: declaring its measurements panicked: {}",
                    phase.name(),
                    panic.message
                ));
                return None;
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
            match self.plugs.iter().position(|p| p.type_id == type_id) {
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
        Some(Prepared {
            phase: phase.clone(),
            decls,
            plugs,
            event_texts: std::sync::OnceLock::new(),
        })
    }

    /// A plug given twice (to the test, or shared by the station too).
    fn duplicate_plugs(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for (i, plug) in self.plugs.iter().enumerate() {
            if !self.plugs[..i].iter().any(|p| p.type_id == plug.type_id) {
                continue;
            }
            let earlier_shared = self.plugs[..i]
                .iter()
                .any(|p| p.type_id == plug.type_id && p.gate.is_some());
            let what = match (earlier_shared, plug.gate.is_some()) {
                (true, true) => "is shared by the station twice",
                (false, false) => "is given to the test twice",
                _ => "is given to the test and shared by the station",
            };
            errors.push(format!("the plug `{}` {what}: give it once", plug.name));
        }
        errors
    }

    /// The record's metadata.
    pub(crate) fn metadata_record(&self, station_id: &str) -> Metadata {
        metadata_record(
            &self.metadata,
            station_id,
            self.stop_on_first_failure,
            self.limits.as_ref().map(LimitsFile::metadata),
        )
    }

    /// The station's name in the record.
    pub(crate) fn station_id(&self) -> String {
        self.station_id.clone().unwrap_or_else(default_station_id)
    }
}

/// The phases and measurements a run will go through, for the `run_started` event.
pub(crate) fn planned(prepared: &[Prepared]) -> Vec<PlannedPhase> {
    prepared
        .iter()
        .enumerate()
        .map(|(index, p)| PlannedPhase {
            index,
            name: p.phase.name().to_owned(),
            measurements: p
                .decls
                .iter()
                .zip(&p.event_texts().measurements)
                .map(|(d, (name, validators, units))| PlannedMeasurement {
                    name: Arc::clone(name),
                    validators: Arc::clone(validators),
                    units: units.clone(),
                    dimensions: d
                        .dimensions
                        .iter()
                        .map(|d| {
                            if d.description.is_empty() {
                                d.unit.name().to_owned()
                            } else {
                                d.description.clone()
                            }
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect()
}

fn steps(nodes: &[PhaseNode], next: &mut usize) -> Vec<Step> {
    nodes
        .iter()
        .map(|node| match node {
            PhaseNode::Phase(_) => {
                *next += 1;
                Step::Phase(*next - 1)
            }
            PhaseNode::Group(g) => Step::Group {
                name: g.name.clone(),
                setup: steps(&g.setup, next),
                main: steps(&g.main, next),
                teardown: steps(&g.teardown, next),
            },
            PhaseNode::Subtest(s) => Step::Subtest {
                name: s.name.clone(),
                steps: steps(&s.nodes, next),
            },
        })
        .collect()
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

pub(crate) fn options_record(options: &PhaseOptions) -> PhaseOptionsRecord {
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

/// The keys the record's metadata has of its own: `Test::metadata` can't replace them.
pub(crate) const RESERVED_METADATA: [&str; 11] = [
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
    "limits_file",
];

fn metadata_record(
    m: &TestMetadata,
    station_id: &str,
    stop_on_first_failure: bool,
    limits_file: Option<serde_json::Value>,
) -> Metadata {
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
    if let Some(limits_file) = limits_file {
        extra.insert("limits_file".to_owned(), limits_file);
    }
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
            "stop_on_first_failure": stop_on_first_failure,
            "capture_source": false,
        }),
    }
}

/// FNV-1a of the phase's path: the same in every process, below 2^53 so that JSON readers in
/// any language read it exactly.
pub(crate) fn descriptor_id(module_path: &str, function: &str) -> u64 {
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

    fn measuring(name: &str) -> Phase {
        Phase::dynamic(name)
            .measure::<f64, _>("v", crate::declare::in_range(0.0, 1.0))
            .run(|_test, m| {
                m.get::<f64>("v")?.set(0.5);
                Ok::<(), crate::phase::MeasurementAccessError>(())
            })
    }

    /// The `run_started` plans of `runs` runs of `test`.
    fn plans(test: &mut crate::Test, runs: usize) -> Vec<Arc<Vec<PlannedPhase>>> {
        let events = test.events().subscribe();
        for _ in 0..runs {
            let _ = test.execute(|| "SN");
        }
        std::iter::from_fn(|| events.try_recv())
            .filter_map(|received| match received {
                crate::Received::Event(event) => match &event.kind {
                    crate::EventKind::RunStarted { plan, .. } => Some(Arc::clone(plan)),
                    _ => None,
                },
                crate::Received::Missed(_) => None,
            })
            .collect()
    }

    /// The runs of a test share what its plan prepared, until the plan changes.
    #[test]
    fn a_plan_is_prepared_once_for_its_runs_and_again_when_it_changes() {
        let mut test = crate::Test::new("p")
            .phases([measuring("a")])
            .without_json_output()
            .quiet();
        let first = plans(&mut test, 2);
        assert_eq!(first.len(), 2);
        assert!(Arc::ptr_eq(&first[0], &first[1]));
        assert_eq!(first[0].len(), 1);
        let mut test = test.phases([measuring("b")]);
        let second = plans(&mut test, 2);
        assert!(!Arc::ptr_eq(&first[0], &second[0]));
        let names: Vec<&str> = second[0].iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(Arc::ptr_eq(&second[0], &second[1]));
        let records = test.execute(|| "SN");
        assert_eq!(records.record.phases.len(), 2);
    }

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

    #[test]
    fn the_record_says_stop_on_first_failure_and_keeps_the_limits_file() {
        let mut m = TestMetadata {
            procedure_id: "FVT1".into(),
            ..TestMetadata::default()
        };
        m.extra.insert("limits_file".into(), "mine".into());
        let record = metadata_record(&m, "st", true, Some(serde_json::json!({"path": "l.toml"})));
        assert_eq!(record.config["stop_on_first_failure"], true);
        assert_eq!(record.extra["limits_file"]["path"], "l.toml");
        let record = metadata_record(&m, "st", false, None);
        assert_eq!(record.config["stop_on_first_failure"], false);
        assert!(!record.extra.contains_key("limits_file"));
    }
}
