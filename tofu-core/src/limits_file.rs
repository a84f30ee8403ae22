//! Limits from a file: a TOML file whose limits replace those declared in the code, so that a
//! production engineer can change a limit without recompiling, and free parameters phases read.
//!
//! ```toml
//! # limits.toml
//! [power_rails.input_voltage]    # [phase.measurement]; a phase by function or display name
//! in_range = [4.75, 5.25]        # or at_least = 4.7, at_most = 5.3 (one or both)
//! marginal = [4.8, 5.2]          # optional, with in_range / at_least / at_most
//! units = "V"                    # optional: a UNECE name, suffix or code ("volt", "V", "VLT")
//!
//! [power_rails.input_current]
//! within_percent = { expected = 0.25, percent = 10, marginal_percent = 5 }
//!
//! [power_rails.firmware]
//! equals = "1.2.7"               # a number, a string, a boolean; any value on a `Json`
//!
//! [power_rails.board_serial]
//! matches_regex = '^PCB\d+$'     # a literal string: no escaping
//!
//! ["IV sweep".iv]                # a display name with a space, quoted
//! in_range = [95, 105]           # on a `Sweep<N>`: every value, as `.each(in_range(95, 105))`
//!
//! [parameters]                   # free values: test.parameter::<u64>("settle_ms")
//! settle_ms = 50
//! ```
//!
//! Load it with [`Test::limits_file`](crate::Test::limits_file) (or [`Test::limits_toml`](crate::Test::limits_toml) for text):
//!
//! ```no_run
//! use tofu_core::prelude::*;
//! use tofu_core::ParameterError;
//!
//! #[phase]
//! #[measures(input_voltage: f64 = in_range(4.5, 5.5).units(VOLT))]
//! fn power_rails(test: &mut PhaseContext, m: &mut power_rails::Measurements) -> Result<(), ParameterError> {
//!     let settle_ms: u64 = test.parameter("settle_ms")?;
//!     std::thread::sleep(std::time::Duration::from_millis(settle_ms));
//!     m.input_voltage.set(5.01);
//!     Ok(())
//! }
//!
//! fn main() -> Result<std::process::ExitCode, tofu_core::LimitsFileError> {
//!     Ok(Test::new("FVT1")
//!         .phases([power_rails])
//!         .limits_file("limits.toml")?    // fails here, naming the file and the line
//!         .execute(|| "SN-0001")
//!         .exit_code())
//! }
//! ```
//!
//! The rules:
//!
//! - A measurement's limits in the file **replace all the validators the code declares for it**
//!   (custom ones too); the others keep theirs. A section with `units` only keeps the code's.
//!   Validators of a section are, in order: the range (`in_range`, `at_least`, `at_most`,
//!   `marginal`), `within_percent`, `equals`, `matches_regex`; all must pass.
//! - Numbers keep their form in the record: `in_range = [0, 5]` is written `0 <= x <= 5`,
//!   `in_range = [0.0, 5.0]` is written `0.0 <= x <= 5.0`.
//! - `units` can set the unit of a number the code declares without one. Where the code
//!   declares a unit (a `.units(…)`, an `Si<volt>`), the file's must be the same: the code sets
//!   values in that unit, so limits in another one would be wrong. It checks, it can't change.
//! - Everything is checked when the file is loaded, and each error names the file and the line
//!   (limits.toml:12: phase \`power_rails\` has no measurement \`rail_5v\`): TOML syntax,
//!   unknown keys, types, limits out of order (`minimum <= marginal minimum <= marginal maximum
//!   <= maximum`), regexes, and, against the phases, their names, their measurements' names, and
//!   the kind of each measurement (no `in_range` on a `String`). A phase not in the test yet is
//!   looked up among the program's `#[phase]` functions, so that phases may be added after the
//!   file; add phases made with [`Phase::dynamic`](crate::Phase::dynamic) before it.
//! - When the test runs, the file is checked again against the phases the test has: a section
//!   for a phase it doesn't have is an `InvalidDeclaration` error of the run (no phase runs),
//!   naming the file and the line.
//! - The limits used are the measurements' validators, so the record and the uploader have
//!   them; the record's metadata says which file: `"limits_file": {"path", "sha1",
//!   "parameters"}`.
//! - `[parameters]` is a table of free values (any TOML value), read in a phase with
//!   [`PhaseContext::parameter`](crate::PhaseContext::parameter) (so the file can't name a
//!   phase `parameters`). Loading a file again replaces the previous one, parameters included.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::limit::Limit;
use crate::measurement::{MeasurementDecl, ValueKind};
use crate::panic_capture::catch;
use crate::parameters::Parameters;
use crate::phase::{Phase, Registered};
use crate::unit::Unit;
use crate::validator::{Regex, Validator};
use crate::value::Value;

/// Whether a validator has a marginal band (`.marginal(…)`, `.marginal_percent(…)`).
fn has_marginal_band(validator: &Validator) -> bool {
    match validator {
        Validator::InRange {
            marginal_minimum,
            marginal_maximum,
            ..
        } => marginal_minimum.is_some() || marginal_maximum.is_some(),
        Validator::WithinPercent {
            marginal_percent, ..
        } => marginal_percent.is_some(),
        Validator::AllValues(inner) => has_marginal_band(inner),
        _ => false,
    }
}

/// A problem in a limits file: where (file and line) and what.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub struct LimitsProblem {
    /// The file, as given (or the name given with [`Test::limits_toml`](crate::Test::limits_toml)).
    pub file: String,
    /// The line, from 1.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LimitsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// A limits file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LimitsFileError {
    /// The file could not be read.
    #[error("can't read limits file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file has errors; each starts a line (`file:line: message`).
    #[error("{}", lines(problems))]
    Invalid {
        /// Every problem found, in line order.
        problems: Vec<LimitsProblem>,
    },
}

fn lines(problems: &[LimitsProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl LimitsFileError {
    /// The problems found in the file (none when it could not be read).
    pub fn problems(&self) -> &[LimitsProblem] {
        match self {
            LimitsFileError::Read { .. } => &[],
            LimitsFileError::Invalid { problems } => problems,
        }
    }
}

/// A loaded and checked limits file.
#[derive(Debug, Clone)]
pub(crate) struct LimitsFile {
    /// The file as given, for messages and the record.
    name: String,
    sha1: String,
    sections: Vec<Section>,
    parameters: Parameters,
}

/// The limits of one measurement: `[phase.measurement]`.
#[derive(Debug, Clone)]
struct Section {
    phase: String,
    measurement: String,
    /// The line of the measurement's name.
    line: usize,
    checks: Vec<Check>,
    /// The unit as written, its line, and the unit of the table it names.
    units: Option<(String, usize, Option<Unit>)>,
}

/// One validator of a section, before it meets the measurement's kind.
#[derive(Debug, Clone)]
struct Check {
    key: &'static str,
    line: usize,
    limit: FileLimit,
}

#[derive(Debug, Clone)]
enum FileLimit {
    /// `in_range`, `at_least`, `at_most`, `within_percent`: numbers (each value of a sweep).
    Numeric(Validator),
    /// `equals`: the value as JSON, and as a number when it is one.
    Equals(serde_json::Value, Option<Limit>),
    /// `matches_regex`.
    Regex(Regex),
}

const SECTION_KEYS: [&str; 8] = [
    "in_range",
    "at_least",
    "at_most",
    "marginal",
    "within_percent",
    "equals",
    "matches_regex",
    "units",
];

impl LimitsFile {
    /// Parses `text`; `name` is the file as shown in messages.
    fn parse(text: &str, name: &str) -> (LimitsFile, Vec<LimitsProblem>) {
        let mut parser = Parser {
            text,
            problems: Vec::new(),
        };
        let (sections, parameters) = parser.document();
        let mut problems = parser.problems;
        for p in &mut problems {
            p.file = name.to_owned();
        }
        let file = LimitsFile {
            name: name.to_owned(),
            sha1: sha1_hex(text.as_bytes()),
            sections,
            parameters: Arc::new(parameters),
        };
        (file, problems)
    }

    /// What the record's metadata says of the file.
    pub(crate) fn metadata(&self) -> serde_json::Value {
        serde_json::json!({
            "path": self.name,
            "sha1": self.sha1,
            "parameters": *self.parameters,
        })
    }

    /// Checks the file against the phases known when it is loaded: the test's, else the
    /// program's `#[phase]` functions (phases may be added to the test after the file).
    fn check_at_load(&self, test_phases: &[Phase]) -> Vec<LimitsProblem> {
        let wanted: BTreeSet<&str> = self.sections.iter().map(|s| s.phase.as_str()).collect();
        let matches = |p: &Phase, names: &BTreeSet<&str>| {
            names.contains(p.function()) || names.contains(p.name())
        };
        let mut phases: Vec<Phase> = test_phases
            .iter()
            .filter(|p| matches(p, &wanted))
            .cloned()
            .collect();
        let in_test: BTreeSet<&str> = wanted
            .iter()
            .copied()
            .filter(|name| {
                phases
                    .iter()
                    .any(|p| p.function() == *name || p.name() == *name)
            })
            .collect();
        let elsewhere: BTreeSet<&str> = wanted.difference(&in_test).copied().collect();
        phases.extend(
            inventory::iter::<Registered>()
                .map(|r| r.0.clone())
                .filter(|p| matches(p, &elsewhere)),
        );
        let mut declared: Vec<(Phase, Option<Vec<Arc<MeasurementDecl>>>)> = phases
            .into_iter()
            .map(|p| {
                // A panicking declaration is the run's error to report, not the file's.
                let decls = catch(|| p.declare())
                    .ok()
                    .map(|d| d.into_iter().map(|d| Arc::new(d.decl)).collect());
                (p, decls)
            })
            .collect();
        let known = test_phase_names(test_phases);
        self.apply_to(
            declared.iter_mut().map(|(p, d)| (&*p, d.as_mut())),
            |phase| {
                format!(
                    "there is no phase `{phase}`: not in the test{known}, nor a #[phase] of the \
                     program (add phases made with Phase::dynamic before loading the limits file)"
                )
            },
            // Said at each run instead.
            &mut Vec::new(),
        )
    }

    /// Replaces the validators (and sets the units) of the measurements the file names, in the
    /// declarations of the phases about to run. Returns the problems, as `file:line: message`.
    pub(crate) fn apply<'a>(
        &self,
        phases: impl IntoIterator<Item = (&'a Phase, &'a mut Vec<Arc<MeasurementDecl>>)>,
        warnings: &mut Vec<String>,
    ) -> Vec<String> {
        let phases: Vec<(&Phase, Option<&mut Vec<Arc<MeasurementDecl>>>)> =
            phases.into_iter().map(|(p, d)| (p, Some(d))).collect();
        let known = test_phase_names(phases.iter().map(|(p, _)| *p));
        self.apply_to(
            phases,
            |phase| format!("there is no phase `{phase}` in the test{known}"),
            warnings,
        )
        .iter()
        .map(ToString::to_string)
        .collect()
    }

    /// [`apply`](Self::apply), for phases whose declarations may be unknown (`None`: the phase
    /// is there, its measurements are not checked).
    fn apply_to<'a>(
        &self,
        phases: impl IntoIterator<Item = (&'a Phase, Option<&'a mut Vec<Arc<MeasurementDecl>>>)>,
        unknown_phase: impl Fn(&str) -> String,
        warnings: &mut Vec<String>,
    ) -> Vec<LimitsProblem> {
        let mut phases: Vec<_> = phases.into_iter().collect();
        let mut problems = Vec::new();
        let mut problem = |line: usize, message: String| {
            problems.push(LimitsProblem {
                file: self.name.clone(),
                line,
                message,
            });
        };
        // Which section set each measurement (phase index, measurement index) → line.
        let mut set_by: HashMap<(usize, usize), usize> = HashMap::new();
        for s in &self.sections {
            let mut phase_found = false;
            let mut measurement_found = false;
            let mut names = Vec::new();
            for (pi, (phase, decls)) in phases.iter_mut().enumerate() {
                if phase.function() != s.phase && phase.name() != s.phase {
                    continue;
                }
                phase_found = true;
                let Some(decls) = decls else {
                    measurement_found = true;
                    continue;
                };
                for (di, decl) in decls.iter_mut().enumerate() {
                    names.push(decl.name.clone());
                    if decl.name != s.measurement {
                        continue;
                    }
                    measurement_found = true;
                    if let Some(first) = set_by.insert((pi, di), s.line) {
                        let (first, again) = (first.min(s.line), first.max(s.line));
                        problem(
                            again,
                            format!(
                                "the limits of measurement `{}` of phase `{}` are given twice \
                                 (line {first} gives them too)",
                                s.measurement,
                                phase.name()
                            ),
                        );
                        continue;
                    }
                    if let Err(errors) = self.set(s, phase.name(), decl, warnings) {
                        for (line, message) in errors {
                            problem(line, message);
                        }
                    }
                }
            }
            if !phase_found {
                problem(s.line, unknown_phase(&s.phase));
            } else if !measurement_found {
                names.sort();
                names.dedup();
                let has = if names.is_empty() {
                    " (it has none)".to_owned()
                } else {
                    format!(" (it has {})", quoted_list(&names))
                };
                problem(
                    s.line,
                    format!(
                        "phase `{}` has no measurement `{}`{has}",
                        s.phase, s.measurement
                    ),
                );
            }
        }
        problems.sort();
        problems.dedup();
        problems
    }

    /// Gives `decl` the section's validators (they replace the code's) and unit, or says what
    /// does not fit it.
    fn set(
        &self,
        s: &Section,
        phase: &str,
        decl: &mut Arc<MeasurementDecl>,
        warnings: &mut Vec<String>,
    ) -> Result<(), Vec<(usize, String)>> {
        let (validators, units) = s.build(decl, &s.phase)?;
        let decl = Arc::make_mut(decl);
        if let Some(validators) = validators {
            let band = |v: &[Validator]| v.iter().any(has_marginal_band);
            if band(&decl.validators) && !band(&validators) {
                // Said in the run's log (console and record), each run.
                warnings.push(format!(
                    "{}:{}: measurement `{}` of phase `{phase}` was declared with a marginal band \
                     that this entry doesn't give: the file's limits replace the code's, so the \
                     band is dropped (give `marginal = [low, high]` here to keep one)",
                    self.name, s.line, s.measurement,
                ));
            }
            decl.validators = validators;
        }
        if units.is_some() {
            decl.units = units;
        }
        Ok(())
    }
}

/// ` (its phases: `a`, `b`)`, or nothing for a test without phases.
fn test_phase_names<'a>(phases: impl IntoIterator<Item = &'a Phase>) -> String {
    let mut names: Vec<String> = phases.into_iter().map(|p| p.name().to_owned()).collect();
    names.dedup();
    if names.is_empty() {
        String::new()
    } else {
        format!(" (its phases: {})", quoted_list(&names))
    }
}

/// `` `a`, `b`, `c` ``, shortened past a dozen names.
fn quoted_list(names: &[String]) -> String {
    const SHOWN: usize = 12;
    let mut text = names
        .iter()
        .take(SHOWN)
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

fn kind_name(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Number => "a number",
        ValueKind::Text => "a string",
        ValueKind::Bool => "a boolean",
        ValueKind::Json => "a structured value (Json)",
        ValueKind::MultiDim => "a multi-dimensional value (Sweep)",
    }
}

impl FileLimit {
    /// The validator this limit makes for a measurement of `kind`, if it fits it.
    fn validator(&self, kind: ValueKind) -> Option<Validator> {
        match (self, kind) {
            (FileLimit::Numeric(v), ValueKind::Number) => Some(v.clone()),
            (FileLimit::Numeric(v), ValueKind::MultiDim) => {
                Some(Validator::AllValues(Box::new(v.clone())))
            }
            (FileLimit::Equals(_, Some(n)), ValueKind::Number | ValueKind::MultiDim) => {
                let equal = Validator::InRange {
                    minimum: Some(*n),
                    maximum: Some(*n),
                    marginal_minimum: None,
                    marginal_maximum: None,
                };
                Some(if kind == ValueKind::MultiDim {
                    Validator::AllValues(Box::new(equal))
                } else {
                    equal
                })
            }
            (FileLimit::Equals(serde_json::Value::String(s), _), ValueKind::Text) => {
                Some(Validator::EqualsText(s.clone()))
            }
            (FileLimit::Equals(serde_json::Value::Bool(b), _), ValueKind::Bool) => {
                Some(Validator::Equals(Value::Bool(*b)))
            }
            (FileLimit::Equals(json, _), ValueKind::Json) => {
                Some(Validator::Equals(Value::Json(json.clone())))
            }
            (FileLimit::Regex(re), ValueKind::Text) => Some(Validator::MatchesRegex(re.clone())),
            _ => None,
        }
    }
}

/// A section's validators for one measurement (`None`: keep the code's) and its unit.
type Built = (Option<Vec<Validator>>, Option<Unit>);

impl Section {
    /// The validators (`None`: keep the code's) and the unit for `decl`, or what does not fit
    /// it, as (line, message).
    fn build(&self, decl: &MeasurementDecl, phase: &str) -> Result<Built, Vec<(usize, String)>> {
        let mut errors = Vec::new();
        let holds = || {
            format!(
                "measurement `{}` of phase `{phase}` holds {}",
                self.measurement,
                kind_name(decl.kind)
            )
        };
        let mut validators = Vec::with_capacity(self.checks.len());
        for check in &self.checks {
            let validator = check.limit.validator(decl.kind);
            match validator {
                Some(v) => validators.push(v),
                None => {
                    let what = match &check.limit {
                        FileLimit::Numeric(_) => format!("`{}` is a numeric limit", check.key),
                        FileLimit::Equals(json, _) => {
                            format!("`equals = {json}` is {}", json_kind(json))
                        }
                        FileLimit::Regex(_) => "`matches_regex` is a limit of strings".to_owned(),
                    };
                    errors.push((check.line, format!("{what}, but {}", holds())));
                }
            }
        }
        let mut units = None;
        if let Some((text, line, unit)) = &self.units {
            if !matches!(decl.kind, ValueKind::Number | ValueKind::MultiDim) {
                errors.push((*line, format!("`units` are for numbers, but {}", holds())));
            } else if let Some(declared) = &decl.units {
                let same = unit.as_ref() == Some(declared)
                    || declared.suffix() == Some(text.as_str())
                    || declared.name() == text
                    || declared.code() == Some(text.as_str());
                if !same {
                    errors.push((
                        *line,
                        format!(
                            "`units = \"{text}\"`: the code records measurement `{}` of phase \
                             `{phase}` in {} ({}); a limits file can check a unit, not change it",
                            self.measurement,
                            declared.name(),
                            declared
                        ),
                    ));
                }
            } else {
                match unit {
                    Some(unit) => units = Some(unit.clone()),
                    None => errors.push((*line, unknown_unit(text))),
                }
            }
        }
        if errors.is_empty() {
            Ok(((!self.checks.is_empty()).then_some(validators), units))
        } else {
            Err(errors)
        }
    }
}

fn unknown_unit(text: &str) -> String {
    format!(
        "unknown unit `{text}`: give a UNECE unit's name, suffix or code (\"volt\", \"V\", \"VLT\")"
    )
}

fn json_kind(json: &serde_json::Value) -> &'static str {
    match json {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "a table",
    }
}

/// Walks the parsed document, collecting its problems (with lines; the file is set later).
/// What a section's keys say, read one after the other.
#[derive(Default)]
struct SectionKeys {
    /// Minimum, maximum, marginal minimum, marginal maximum.
    range: [Option<Limit>; 4],
    /// The key that sets the range (`in_range`, else `at_least` or `at_most`), and its line.
    range_key: Option<(&'static str, usize)>,
    one_sided: Vec<(&'static str, Range<usize>)>,
    marginal_line: Option<usize>,
    within_percent: Option<(Validator, usize)>,
    equals: Option<(serde_json::Value, Option<Limit>, usize)>,
    regex: Option<(Regex, usize)>,
    units: Option<(String, usize, Option<Unit>)>,
}

struct Parser<'t> {
    text: &'t str,
    problems: Vec<LimitsProblem>,
}

type Entry<'i> = (
    &'i Spanned<std::borrow::Cow<'i, str>>,
    &'i Spanned<DeValue<'i>>,
);

impl Parser<'_> {
    fn line(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        1 + self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    fn problem(&mut self, span: &Range<usize>, message: String) {
        let line = self.line(span);
        self.problems.push(LimitsProblem {
            file: String::new(),
            line,
            message,
        });
    }

    fn document(&mut self) -> (Vec<Section>, BTreeMap<String, serde_json::Value>) {
        let mut sections = Vec::new();
        let mut parameters = BTreeMap::new();
        let root = match DeTable::parse(self.text) {
            Ok(root) => root,
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                self.problem(&span, format!("invalid TOML: {}", e.message().trim()));
                return (sections, parameters);
            }
        };
        for (key, value) in root.get_ref() {
            let phase: &str = key.get_ref();
            if phase == "parameters" {
                match value.get_ref() {
                    DeValue::Table(table) => {
                        for (name, value) in table {
                            if let Some(json) =
                                self.json(value, &format!("parameter `{}`", name.get_ref()))
                            {
                                parameters.insert(name.get_ref().to_string(), json);
                            }
                        }
                    }
                    other => self.problem(
                        &key.span(),
                        format!(
                            "`parameters` should be a table ([parameters]), not {}",
                            article(other.type_str())
                        ),
                    ),
                }
                continue;
            }
            let DeValue::Table(measurements) = value.get_ref() else {
                self.problem(
                    &key.span(),
                    format!(
                        "`{phase}` = {}: limits go in a table per measurement, \
                         [{}.MEASUREMENT], and parameters in [parameters]",
                        value_text(value),
                        toml_key(phase)
                    ),
                );
                continue;
            };
            for (mkey, mvalue) in measurements {
                let measurement: &str = mkey.get_ref();
                let DeValue::Table(entries) = mvalue.get_ref() else {
                    self.problem(
                        &mkey.span(),
                        format!(
                            "[{}] `{measurement}` = {}: limits go in a table per measurement, \
                             [{}.MEASUREMENT] (`{measurement}` is not a measurement's table)",
                            toml_key(phase),
                            value_text(mvalue),
                            toml_key(phase),
                        ),
                    );
                    continue;
                };
                let line = self.line(&mkey.span());
                let entries: Vec<Entry<'_>> = entries.iter().collect();
                if let Some(section) = self.section(phase, measurement, line, &entries) {
                    sections.push(section);
                }
            }
        }
        (sections, parameters)
    }

    fn section(
        &mut self,
        phase: &str,
        measurement: &str,
        line: usize,
        entries: &[Entry<'_>],
    ) -> Option<Section> {
        let header = format!("[{}.{}]", toml_key(phase), toml_key(measurement));
        let before = self.problems.len();
        let mut keys = SectionKeys::default();
        for &(key, value) in entries {
            self.section_key(&header, &mut keys, key, value);
        }
        let units = keys.units.take();
        let checks = self.checks(&header, keys);
        if checks.is_empty() && units.is_none() && self.problems.len() == before {
            self.problem_at(
                line,
                format!(
                    "{header} gives no limits (keys: {})",
                    SECTION_KEYS.join(", ")
                ),
            );
        }
        (self.problems.len() == before).then(|| Section {
            phase: phase.to_owned(),
            measurement: measurement.to_owned(),
            line,
            checks,
            units,
        })
    }

    /// Reads one key of a section into `keys`.
    fn section_key(
        &mut self,
        header: &str,
        keys: &mut SectionKeys,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        value: &Spanned<DeValue<'_>>,
    ) {
        let span = value.span();
        let at = self.line(&span);
        let name: &str = key.get_ref();
        match name {
            "in_range" | "marginal" => self.range_key(header, keys, name, value),
            "at_least" | "at_most" => {
                let Some(n) = self.number(value) else {
                    self.problem(
                        &span,
                        format!(
                            "{header} `{name}` should be a number, not {}",
                            value_text(value)
                        ),
                    );
                    return;
                };
                let (i, static_name) = if name == "at_least" {
                    (0, "at_least")
                } else {
                    (1, "at_most")
                };
                keys.range[i] = Some(n);
                keys.one_sided.push((static_name, key.span()));
            }
            "within_percent" => keys.within_percent = self.within_percent(header, value),
            "equals" => {
                let json = self.json(value, &format!("{header} `equals`"));
                keys.equals = json.map(|j| (j, self.number(value), at));
            }
            "matches_regex" | "units" => self.text_key(header, keys, name, value),
            other => self.problem(
                &key.span(),
                format!(
                    "{header} unknown key `{other}` (a measurement's limits are {})",
                    SECTION_KEYS.join(", ")
                ),
            ),
        }
    }

    /// `in_range = [minimum, maximum]` or `marginal = [marginal minimum, marginal maximum]`.
    fn range_key(
        &mut self,
        header: &str,
        keys: &mut SectionKeys,
        name: &str,
        value: &Spanned<DeValue<'_>>,
    ) {
        let span = value.span();
        let at = self.line(&span);
        let expected = if name == "in_range" {
            "[minimum, maximum]"
        } else {
            "[marginal minimum, marginal maximum]"
        };
        let Some((lo, hi)) = self.pair(value) else {
            // Say which value is not a number, where that is what's wrong.
            let not_a_number = match value.get_ref().as_array().map(|a| &**a) {
                Some(items @ [_, _]) => items
                    .iter()
                    .zip(["first", "second"])
                    .find(|(v, _)| self.number(v).is_none())
                    .map(|(v, nth)| format!("its {nth} value is {}", value_text(v))),
                _ => None,
            };
            let got = not_a_number.unwrap_or_else(|| format!("not {}", value_text(value)));
            self.problem(
                &span,
                format!("{header} `{name}` should be {expected}, two numbers: {got}"),
            );
            return;
        };
        if name == "in_range" {
            keys.range[0] = Some(lo);
            keys.range[1] = Some(hi);
            keys.range_key = Some(("in_range", at));
        } else {
            keys.range[2] = Some(lo);
            keys.range[3] = Some(hi);
            keys.marginal_line = Some(at);
        }
    }

    /// `matches_regex = "..."` or `units = "V"`: strings.
    fn text_key(
        &mut self,
        header: &str,
        keys: &mut SectionKeys,
        name: &str,
        value: &Spanned<DeValue<'_>>,
    ) {
        let span = value.span();
        let at = self.line(&span);
        match (name, value.get_ref().as_str()) {
            ("matches_regex", Some(pattern)) => match Regex::new(pattern) {
                Ok(re) => keys.regex = Some((re, at)),
                Err(e) => self.problem(
                    &span,
                    format!("{header} regex /{pattern}/ does not compile: {e}"),
                ),
            },
            ("matches_regex", None) => self.problem(
                &span,
                format!(
                    "{header} `matches_regex` should be a string, not {}",
                    value_text(value)
                ),
            ),
            (_, Some(text)) => keys.units = Some((text.to_owned(), at, Unit::find(text))),
            (_, None) => self.problem(
                &span,
                format!(
                    "{header} `units` should be a string (\"V\", \"volt\", \"VLT\"), not {}",
                    value_text(value)
                ),
            ),
        }
    }

    /// The section's validators, in the order a section lists them: the range, then
    /// `within_percent`, `equals`, `matches_regex`.
    fn checks(&mut self, header: &str, keys: SectionKeys) -> Vec<Check> {
        let SectionKeys {
            range,
            mut range_key,
            one_sided,
            marginal_line,
            within_percent,
            equals,
            regex,
            units: _,
        } = keys;
        // `in_range` and `at_least`/`at_most` both set bounds: one or the other.
        if range_key.is_some() {
            for (name, span) in &one_sided {
                self.problem(
                    span,
                    format!("{header} `{name}` and `in_range` both set limits: keep one of them"),
                );
            }
        } else if let Some((name, span)) = one_sided.first() {
            range_key = Some((*name, self.line(span)));
        }
        let mut checks = Vec::new();
        if let Some((key, at)) = range_key {
            checks.push(self.range_check(header, range, key, at, marginal_line));
        } else if let Some(at) = marginal_line {
            self.problem_at(
                at,
                format!("{header} `marginal` needs `in_range`, `at_least` or `at_most`"),
            );
        }
        if let Some((validator, at)) = within_percent {
            checks.push(Check {
                key: "within_percent",
                line: at,
                limit: FileLimit::Numeric(validator),
            });
        }
        if let Some((json, number, at)) = equals {
            checks.push(Check {
                key: "equals",
                line: at,
                limit: FileLimit::Equals(json, number),
            });
        }
        if let Some((re, at)) = regex {
            checks.push(Check {
                key: "matches_regex",
                line: at,
                limit: FileLimit::Regex(re),
            });
        }
        checks
    }

    /// The range's validator (minimum, maximum, marginal minimum, marginal maximum), its
    /// limits checked.
    fn range_check(
        &mut self,
        header: &str,
        range: [Option<Limit>; 4],
        key: &'static str,
        at: usize,
        marginal_line: Option<usize>,
    ) -> Check {
        let [minimum, maximum, marginal_minimum, marginal_maximum] = range;
        let bounds = Validator::InRange {
            minimum,
            maximum,
            marginal_minimum: None,
            marginal_maximum: None,
        };
        let validator = Validator::InRange {
            minimum,
            maximum,
            marginal_minimum,
            marginal_maximum,
        };
        if let Err(e) = bounds.check_limits() {
            self.problem_at(at, format!("{header} {e}"));
        } else if let Err(e) = validator.check_limits() {
            self.problem_at(marginal_line.unwrap_or(at), format!("{header} {e}"));
        }
        Check {
            key,
            line: at,
            limit: FileLimit::Numeric(validator),
        }
    }

    fn problem_at(&mut self, line: usize, message: String) {
        self.problems.push(LimitsProblem {
            file: String::new(),
            line,
            message,
        });
    }

    /// `within_percent = { expected = 25.0, percent = 10, marginal_percent = 5 }`.
    fn within_percent(
        &mut self,
        header: &str,
        value: &Spanned<DeValue<'_>>,
    ) -> Option<(Validator, usize)> {
        let at = self.line(&value.span());
        let usage = "{ expected = 25.0, percent = 10 } (and optionally marginal_percent = 5)";
        let DeValue::Table(table) = value.get_ref() else {
            self.problem(
                &value.span(),
                format!(
                    "{header} `within_percent` should be a table, {usage}, not {}",
                    value_text(value)
                ),
            );
            return None;
        };
        let mut fields: [Option<Limit>; 3] = [None; 3];
        let names = ["expected", "percent", "marginal_percent"];
        let mut ok = true;
        for (key, v) in table {
            let name: &str = key.get_ref();
            let Some(i) = names.iter().position(|n| *n == name) else {
                self.problem(
                    &key.span(),
                    format!("{header} unknown key `{name}` in `within_percent`: {usage}"),
                );
                ok = false;
                continue;
            };
            match self.number(v) {
                Some(n) => fields[i] = Some(n),
                None => {
                    self.problem(
                        &v.span(),
                        format!(
                            "{header} `within_percent.{name}` should be a number, not {}",
                            value_text(v)
                        ),
                    );
                    ok = false;
                }
            }
        }
        let (Some(expected), Some(percent)) = (fields[0], fields[1]) else {
            if ok {
                self.problem(
                    &value.span(),
                    format!("{header} `within_percent` needs `expected` and `percent`: {usage}"),
                );
            }
            return None;
        };
        let validator = Validator::WithinPercent {
            expected,
            percent,
            marginal_percent: fields[2],
        };
        if let Err(e) = validator.check_limits() {
            self.problem(&value.span(), format!("{header} `within_percent`: {e}"));
            return None;
        }
        ok.then_some((validator, at))
    }

    /// A TOML number as a limit (integers stay integers: `0 <= x <= 5`).
    fn number(&self, value: &Spanned<DeValue<'_>>) -> Option<Limit> {
        if !matches!(value.get_ref(), DeValue::Integer(_) | DeValue::Float(_)) {
            return None;
        }
        match toml::Value::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(toml::Value::Integer(i)) => Some(Limit::from(i)),
            Ok(toml::Value::Float(f)) => Some(Limit::from(f)),
            _ => None,
        }
    }

    /// `[a, b]`: two numbers.
    fn pair(&self, value: &Spanned<DeValue<'_>>) -> Option<(Limit, Limit)> {
        match &**value.get_ref().as_array()? {
            [a, b] => Some((self.number(a)?, self.number(b)?)),
            _ => None,
        }
    }

    /// Any TOML value as JSON (dates become strings); `what` names it in a problem.
    fn json(&mut self, value: &Spanned<DeValue<'_>>, what: &str) -> Option<serde_json::Value> {
        let parsed = toml::Value::deserialize(ValueDeserializer::from(value.clone()));
        match parsed.map_err(|e| e.message().to_owned()).and_then(to_json) {
            Ok(json) => Some(json),
            Err(e) => {
                self.problem(&value.span(), format!("{what}: {e}"));
                None
            }
        }
    }
}

fn to_json(value: toml::Value) -> Result<serde_json::Value, String> {
    Ok(match value {
        toml::Value::String(s) => s.into(),
        toml::Value::Integer(i) => i.into(),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .ok_or_else(|| format!("{f} is not a finite number"))?
            .into(),
        toml::Value::Boolean(b) => b.into(),
        toml::Value::Datetime(d) => d.to_string().into(),
        toml::Value::Array(a) => a
            .into_iter()
            .map(to_json)
            .collect::<Result<Vec<_>, _>>()?
            .into(),
        toml::Value::Table(t) => serde_json::Value::Object(
            t.into_iter()
                .map(|(k, v)| to_json(v).map(|v| (k, v)))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// A value as the file writes it, short: `"4.75"`, `[1, 2, 3]`, a table.
fn value_text(value: &Spanned<DeValue<'_>>) -> String {
    match value.get_ref() {
        DeValue::String(s) => format!("the string {s:?}"),
        DeValue::Integer(i) => format!("the integer {}{}", i.as_str(), out_of_range(value)),
        DeValue::Float(f) => format!("the float {}{}", f.as_str(), out_of_range(value)),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        DeValue::Datetime(d) => format!("the datetime {d}"),
        DeValue::Array(a) => format!("an array of {} values", a.len()),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

/// Why a number as written can't be read (`1e309`, `99999999999999999999`), or nothing.
fn out_of_range(value: &Spanned<DeValue<'_>>) -> &'static str {
    match toml::Value::deserialize(ValueDeserializer::from(value.clone())) {
        Ok(_) => "",
        Err(_) => ", too large for a 64-bit number",
    }
}

fn article(type_str: &str) -> String {
    match type_str.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {type_str}"),
        _ => format!("a {type_str}"),
    }
}

/// A key as TOML writes it: bare when it can be, quoted otherwise.
fn toml_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

fn sha1_hex(bytes: &[u8]) -> String {
    use sha1::Digest;
    sha1::Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads limits and parameters from TOML text (`name` stands for the file in messages and in
/// the record) and checks them against `phases`: every problem is reported at once.
pub(crate) fn load(
    text: &str,
    name: &str,
    phases: &[Phase],
) -> Result<LimitsFile, LimitsFileError> {
    // The sections with problems are left out of the file, the others checked against the
    // phases.
    let (limits, mut problems) = LimitsFile::parse(text, name);
    problems.extend(limits.check_at_load(phases));
    if problems.is_empty() {
        Ok(limits)
    } else {
        problems.sort();
        problems.dedup();
        Err(LimitsFileError::Invalid { problems })
    }
}

impl LimitsFile {
    /// A file of parameters alone, set in code (for [`testing::Harness`](crate::testing::Harness)).
    pub(crate) fn parameters_only() -> Self {
        LimitsFile {
            name: "(parameters set in code)".to_owned(),
            sha1: String::new(),
            sections: Vec::new(),
            parameters: Parameters::default(),
        }
    }

    /// Sets one parameter, as the `[parameters]` table would.
    pub(crate) fn set_parameter(&mut self, name: String, value: serde_json::Value) {
        Arc::make_mut(&mut self.parameters).insert(name, value);
    }

    /// The parameters, for the phases' contexts.
    pub(crate) fn parameters(&self) -> Parameters {
        Arc::clone(&self.parameters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parameters::{ParameterError, parameter};

    fn parse(text: &str) -> Result<LimitsFile, String> {
        let (file, problems) = LimitsFile::parse(text, "limits.toml");
        if problems.is_empty() {
            Ok(file)
        } else {
            Err(lines(&problems))
        }
    }

    #[test]
    fn numbers_keep_their_form_and_sections_their_order_of_validators() {
        let file = parse(
            "[p.v]\nequals = 3\nin_range = [0, 5.0]\nmarginal = [1, 4]\n\
             within_percent = { expected = 2.5, percent = 100 }\n",
        )
        .unwrap();
        let shown: Vec<String> = file.sections[0]
            .checks
            .iter()
            .map(|c| match &c.limit {
                FileLimit::Numeric(v) => v.to_string(),
                FileLimit::Equals(j, n) => format!("{j} {n:?}"),
                FileLimit::Regex(r) => r.as_str().to_owned(),
            })
            .collect();
        assert_eq!(
            shown,
            [
                "0 <= Marginal:1 <= x <= Marginal:4 <= 5.0",
                "'x' is within 100% of 2.5.",
                "3 Some(Limit { value: 3.0, integer: true })"
            ]
        );
        assert_eq!(file.sections[0].line, 1);
    }

    #[test]
    fn lines_count_from_one() {
        let err = parse("\n\n[p.v]\nin_range = [5, 4]\n").unwrap_err();
        assert_eq!(
            err,
            "limits.toml:4: [p.v] minimum 5 is greater than maximum 4"
        );
    }

    #[test]
    fn parameters_are_json_and_read_as_any_type() {
        let file = parse(
            "[parameters]\nsettle_ms = 50\nname = \"J1\"\nwhen = 2024-01-02\nlist = [1, 2]\n",
        )
        .unwrap();
        let p = Some(&file.parameters);
        assert_eq!(parameter::<f64>(p, "settle_ms"), Ok(50.0));
        assert_eq!(parameter::<u8>(p, "settle_ms"), Ok(50));
        assert_eq!(parameter::<String>(p, "when"), Ok("2024-01-02".to_owned()));
        assert_eq!(parameter::<Vec<i32>>(p, "list"), Ok(vec![1, 2]));
        assert_eq!(
            parameter::<bool>(p, "nope"),
            Err(ParameterError::Missing {
                name: "nope".into()
            })
        );
        let err = parameter::<u32>(p, "name").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("parameter `name` = \"J1\" is not a `u32`: invalid type"),
            "{err}"
        );
        assert_eq!(
            parameter::<u32>(None, "x").unwrap_err().to_string(),
            "no parameter `x` (parameters are given in the [parameters] table of the test's limits file)"
        );
    }

    #[test]
    fn keys_are_quoted_when_they_must_be() {
        assert_eq!(toml_key("power_rails"), "power_rails");
        assert_eq!(toml_key("Power rails"), "\"Power rails\"");
    }
}
