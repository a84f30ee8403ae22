//! Outcomes and the rules that decide them: OpenHTF 1.6.3's, as pure functions.
//!
//! The rules follow `semantics.md` §3.3–3.6, without OpenHTF's defects: a skipped measurement
//! is recorded as `SKIPPED` (not a stale `UNSET`), and an attempt that was repeated is recorded
//! as `SKIP` (not a stale `FAIL`).

use serde::Serialize;

use crate::measurement::MeasurementDecl;
use crate::value::Value;

/// What a phase returns (OpenHTF's `PhaseResult`). `()` means [`PhaseResult::Continue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PhaseResult {
    /// Measurements decide the phase outcome; the test goes on.
    Continue,
    /// The phase fails whatever its measurements say; the test goes on.
    FailAndContinue,
    /// Run the phase again (up to its repeat limit; each attempt is recorded).
    Repeat,
    /// Ignore the phase's measurements; the test goes on.
    Skip,
    /// Stop the test: the phase is ERROR and the test FAIL.
    Stop,
    /// Inside a [`Subtest`](crate::Subtest): the phase fails and the rest of the subtest is
    /// skipped; the test goes on after the subtest. Outside a subtest it is an error.
    FailSubtest,
}

/// How a phase ended, as written in its record's `result`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PhaseExecution {
    /// The phase returned this result.
    Returned(PhaseResult),
    /// The phase returned an error or panicked.
    Error {
        /// The error's type (`"Panic"` for a panic); becomes the test's outcome detail code.
        exc_type: String,
        /// The message.
        exc_val: String,
        /// Where it happened (the panic location) or the error's source chain.
        exc_tb: String,
    },
    /// The phase ran out of time.
    Timeout,
    /// The operator aborted the test while the phase ran.
    Aborted,
}

impl PhaseExecution {
    /// Whether this ends the test (OpenHTF's "terminal" results).
    pub fn is_terminal(&self) -> bool {
        !matches!(
            self,
            PhaseExecution::Returned(
                PhaseResult::Continue
                    | PhaseResult::FailAndContinue
                    | PhaseResult::Repeat
                    | PhaseResult::Skip
                    | PhaseResult::FailSubtest
            )
        )
    }
}

/// A measurement's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MeasurementOutcome {
    /// Set, and every validator passed.
    Pass,
    /// Set, and a validator failed (or the value is NaN or infinite).
    Fail,
    /// Never set.
    Unset,
    /// Never set, in a phase that was skipped.
    Skipped,
}

/// A phase's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PhaseOutcome {
    /// Every measurement passed.
    Pass,
    /// A measurement failed or was not set, or the phase asked to fail.
    Fail,
    /// The phase was skipped or repeated.
    Skip,
    /// The phase raised an error, panicked, timed out, stopped the test or hit its repeat limit.
    Error,
}

/// The test's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// Every phase passed.
    Pass,
    /// A phase failed, or a phase stopped the test.
    Fail,
    /// A phase raised an error, or every phase was skipped.
    Error,
    /// A phase timed out.
    Timeout,
    /// The operator aborted the test.
    Aborted,
}

/// One entry of the test's `outcome_details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutcomeDetail {
    /// An error type, `STOP`, `TIMEOUT`, `ABORTED`, `ALL_SKIPPED`…
    pub code: String,
    /// Human-readable explanation.
    pub description: String,
}

impl OutcomeDetail {
    /// A detail with this code and description.
    pub fn new(code: impl Into<String>, description: impl Into<String>) -> Self {
        OutcomeDetail {
            code: code.into(),
            description: description.into(),
        }
    }
}

/// Decides a scalar or multi-dimensional measurement's outcome and marginal flag from its value.
///
/// An unset value is `UNSET` (`SKIPPED` when `phase_skipped`). NaN and infinities fail. With no
/// validators a set value passes.
///
/// # Panics
///
/// When a custom validator panics (see [`Validator::check`](crate::Validator::check)).
pub(crate) fn measurement_outcome(
    decl: &MeasurementDecl,
    value: Option<&Value>,
    phase_skipped: bool,
) -> (MeasurementOutcome, bool) {
    let Some(value) = value else {
        let outcome = if phase_skipped {
            MeasurementOutcome::Skipped
        } else {
            MeasurementOutcome::Unset
        };
        return (outcome, false);
    };
    let non_finite = match value {
        Value::Number(v) => !v.is_finite(),
        Value::Columns(c) => c.values().iter().any(|v| !v.is_finite()),
        _ => false,
    };
    if non_finite {
        return (MeasurementOutcome::Fail, false);
    }
    let mut marginal = false;
    for validator in &decl.validators {
        let verdict = validator.check(value);
        if !verdict.pass {
            return (MeasurementOutcome::Fail, false);
        }
        marginal |= verdict.marginal;
    }
    (MeasurementOutcome::Pass, marginal)
}

/// The code of the test's `outcome_details` entry for each failed multi-dimensional measurement.
pub const MULTIDIM_FAILURE: &str = "Multidim Measurement Failure";

/// How many points of a failed sweep its outcome detail lists (the measurement has them all).
pub const MULTIDIM_DETAIL_POINTS: usize = 100;

/// The description OpenHTF gives, in the test's `outcome_details`, to a multi-dimensional
/// measurement that did not pass in a FAIL phase: its name and outcome, its points as Python
/// writes a list of tuples, and its validators, one line each. Unlike OpenHTF, which writes
/// every point (a failed sweep of a million points would add 30 MB to the record and the
/// console), only the first [`MULTIDIM_DETAIL_POINTS`] are listed, then how many there are.
pub fn multidim_failure_description(
    decl: &MeasurementDecl,
    outcome: MeasurementOutcome,
    value: Option<&Value>,
) -> String {
    use std::fmt::Write as _;
    let outcome = match outcome {
        MeasurementOutcome::Pass => "PASS",
        MeasurementOutcome::Fail => "FAIL",
        MeasurementOutcome::Unset => "UNSET",
        MeasurementOutcome::Skipped => "SKIPPED",
    };
    let mut text = format!(
        " failed_item: {} (Outcome.{outcome})\n  measured_value: ",
        decl.name
    );
    match value.and_then(Value::as_columns).filter(|c| !c.is_empty()) {
        None => text.push_str("UNSET"),
        Some(columns) => {
            text.push('[');
            for (i, row) in columns.rows().take(MULTIDIM_DETAIL_POINTS).enumerate() {
                text.push_str(if i == 0 { "(" } else { ", (" });
                for (j, v) in row.iter().enumerate() {
                    if j > 0 {
                        text.push_str(", ");
                    }
                    text.push_str(&crate::limit::python_float(*v));
                }
                text.push(')');
            }
            if columns.len() > MULTIDIM_DETAIL_POINTS {
                // Writing into a String can't fail.
                let _ = write!(text, ", … ({} points)", columns.len());
            }
            text.push(']');
        }
    }
    text.push_str("\n  validators:");
    for validator in &decl.validators {
        // Writing into a String can't fail.
        let _ = write!(text, "\n   validator: {validator}");
    }
    text
}

/// What a phase's outcome depends on, for [`phase_outcome`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct MeasurementSummary {
    /// The measurement's outcome.
    pub outcome: MeasurementOutcome,
    /// It passed in a marginal band.
    pub marginal: bool,
    /// Its failure does not fail the phase.
    pub allow_fail: bool,
}

/// Decides a phase's outcome (OpenHTF's `PhaseState.finalize`, steps 1–5) and its marginal flag
/// (set only when the outcome is PASS).
///
/// `hit_repeat_limit` is true when the phase returned REPEAT on its last allowed attempt.
pub(crate) fn phase_outcome(
    execution: &PhaseExecution,
    measurements: &[MeasurementSummary],
    hit_repeat_limit: bool,
) -> (PhaseOutcome, Option<bool>) {
    if execution.is_terminal() || hit_repeat_limit {
        return (PhaseOutcome::Error, None);
    }
    match execution {
        PhaseExecution::Returned(PhaseResult::Repeat | PhaseResult::Skip) => {
            return (PhaseOutcome::Skip, None);
        }
        PhaseExecution::Returned(PhaseResult::FailAndContinue | PhaseResult::FailSubtest) => {
            return (PhaseOutcome::Fail, None);
        }
        _ => {}
    }
    let fails = measurements.iter().any(|m| match m.outcome {
        MeasurementOutcome::Fail => !m.allow_fail,
        MeasurementOutcome::Unset => true,
        MeasurementOutcome::Pass | MeasurementOutcome::Skipped => false,
    });
    if fails {
        return (PhaseOutcome::Fail, None);
    }
    (
        PhaseOutcome::Pass,
        Some(measurements.iter().any(|m| m.marginal)),
    )
}

/// The first thing that ended the test early, for [`test_outcome`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum Terminal {
    /// A phase (or the serial-number source, or the declarations) raised an error.
    Error {
        /// Error type.
        code: crate::error_code::ErrorCode,
        /// Message.
        description: String,
    },
    /// A phase timed out.
    Timeout {
        /// The phase's name.
        phase: String,
    },
    /// A phase returned STOP (or hit its repeat limit).
    Stop {
        /// The phase's name.
        phase: String,
    },
}

/// What the test outcome depends on, per phase record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PhaseSummary {
    /// The phase's outcome.
    pub outcome: PhaseOutcome,
    /// Its marginal flag.
    pub marginal: Option<bool>,
}

/// Decides the test's outcome, details and marginal flag (OpenHTF's rules, §3.6).
///
/// `multidim_failures` describes the multi-dimensional measurements that did not pass in FAIL
/// phases ([`multidim_failure_description`]), each of which adds a [`MULTIDIM_FAILURE`] detail
/// to a FAIL.
pub(crate) fn test_outcome(
    aborted: bool,
    first_terminal: Option<&Terminal>,
    phases: &[PhaseSummary],
    multidim_failures: &[String],
) -> (Outcome, Vec<OutcomeDetail>, Option<bool>) {
    if aborted {
        return (
            Outcome::Aborted,
            vec![OutcomeDetail::new("ABORTED", "Test aborted by operator.")],
            None,
        );
    }
    match first_terminal {
        Some(Terminal::Error { code, description }) => {
            return (
                Outcome::Error,
                vec![OutcomeDetail::new(code.to_string(), description.clone())],
                None,
            );
        }
        Some(Terminal::Timeout { phase }) => {
            return (
                Outcome::Timeout,
                vec![OutcomeDetail::new(
                    "TIMEOUT",
                    format!("Phase {phase} hit its timeout."),
                )],
                None,
            );
        }
        Some(Terminal::Stop { phase }) => {
            return (
                Outcome::Fail,
                vec![OutcomeDetail::new(
                    "STOP",
                    format!("Phase {phase} stopped the test run."),
                )],
                None,
            );
        }
        None => {}
    }
    // No phase record: PASS, and no marginal flag (OpenHTF sets it only after judging phases).
    if phases.is_empty() {
        return (Outcome::Pass, Vec::new(), None);
    }
    if phases.iter().any(|p| p.outcome == PhaseOutcome::Fail) {
        let details = multidim_failures
            .iter()
            .map(|description| OutcomeDetail::new(MULTIDIM_FAILURE, description.clone()))
            .collect();
        return (Outcome::Fail, details, None);
    }
    if phases.iter().all(|p| p.outcome == PhaseOutcome::Skip) {
        return (
            Outcome::Error,
            vec![OutcomeDetail::new(
                "ALL_SKIPPED",
                "All phases were unexpectedly skipped.",
            )],
            None,
        );
    }
    (
        Outcome::Pass,
        Vec::new(),
        Some(phases.iter().any(|p| p.marginal == Some(true))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::declare::{__declare, equals, in_range};
    use MeasurementOutcome as M;
    use PhaseOutcome as P;

    fn returned(r: PhaseResult) -> PhaseExecution {
        PhaseExecution::Returned(r)
    }

    fn meas(outcome: MeasurementOutcome) -> MeasurementSummary {
        MeasurementSummary {
            outcome,
            marginal: false,
            allow_fail: false,
        }
    }

    #[test]
    fn measurement_outcomes() {
        let range = __declare::<f64, _>("v", in_range(0, 10)).decl;
        let none = __declare::<f64, _>("n", crate::declare::__unspecified()).decl;
        let text = __declare::<String, _>("s", equals("a")).decl;
        let cases: [(&MeasurementDecl, Option<Value>, bool, MeasurementOutcome); 9] = [
            (&range, Some(Value::Number(5.0)), false, M::Pass),
            (&range, Some(Value::Number(11.0)), false, M::Fail),
            (&range, None, false, M::Unset),
            (&range, None, true, M::Skipped),
            (&range, Some(Value::Number(f64::NAN)), false, M::Fail),
            (&none, Some(Value::Number(f64::INFINITY)), false, M::Fail),
            (&none, Some(Value::Number(1.0)), false, M::Pass),
            (&text, Some(Value::Text("a".into())), false, M::Pass),
            (&text, Some(Value::Text("b".into())), false, M::Fail),
        ];
        for (decl, value, skipped, want) in cases {
            assert_eq!(
                measurement_outcome(decl, value.as_ref(), skipped).0,
                want,
                "{} = {value:?}",
                decl.name
            );
        }
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn phase_outcome_table() {
        let error = PhaseExecution::Error {
            exc_type: "E".into(),
            exc_val: "boom".into(),
            exc_tb: String::new(),
        };
        let pass = [meas(M::Pass)];
        let fail = [meas(M::Fail)];
        let allowed = [MeasurementSummary {
            outcome: M::Fail,
            marginal: false,
            allow_fail: true,
        }];
        let unset = [meas(M::Unset)];
        let skipped = [meas(M::Skipped)];
        let marginal = [MeasurementSummary {
            outcome: M::Pass,
            marginal: true,
            allow_fail: false,
        }];
        let cases: Vec<(
            PhaseExecution,
            &[MeasurementSummary],
            bool,
            (PhaseOutcome, Option<bool>),
        )> = vec![
            (
                returned(PhaseResult::Continue),
                &pass,
                false,
                (P::Pass, Some(false)),
            ),
            (
                returned(PhaseResult::Continue),
                &[],
                false,
                (P::Pass, Some(false)),
            ),
            (
                returned(PhaseResult::Continue),
                &marginal,
                false,
                (P::Pass, Some(true)),
            ),
            (
                returned(PhaseResult::Continue),
                &fail,
                false,
                (P::Fail, None),
            ),
            (
                returned(PhaseResult::Continue),
                &allowed,
                false,
                (P::Pass, Some(false)),
            ),
            (
                returned(PhaseResult::Continue),
                &unset,
                false,
                (P::Fail, None),
            ),
            (
                returned(PhaseResult::Continue),
                &skipped,
                false,
                (P::Pass, Some(false)),
            ),
            (
                returned(PhaseResult::FailAndContinue),
                &pass,
                false,
                (P::Fail, None),
            ),
            (returned(PhaseResult::Skip), &fail, false, (P::Skip, None)),
            (returned(PhaseResult::Repeat), &fail, false, (P::Skip, None)),
            (returned(PhaseResult::Repeat), &pass, true, (P::Error, None)),
            (returned(PhaseResult::Stop), &pass, false, (P::Error, None)),
            (
                returned(PhaseResult::FailSubtest),
                &pass,
                false,
                (P::Fail, None),
            ),
            (error, &pass, false, (P::Error, None)),
            (PhaseExecution::Timeout, &pass, false, (P::Error, None)),
            (PhaseExecution::Aborted, &pass, false, (P::Error, None)),
        ];
        for (execution, measurements, limit, want) in cases {
            assert_eq!(
                phase_outcome(&execution, measurements, limit),
                want,
                "{execution:?} {measurements:?} {limit}"
            );
        }
    }

    fn phase(outcome: PhaseOutcome, marginal: Option<bool>) -> PhaseSummary {
        PhaseSummary { outcome, marginal }
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn test_outcome_table() {
        let stop = Terminal::Stop { phase: "p".into() };
        let error = Terminal::Error {
            code: crate::error_code::ErrorCode::Phase("IoError".into()),
            description: "gone".into(),
        };
        let timeout = Terminal::Timeout { phase: "p".into() };
        let pass = phase(P::Pass, Some(false));
        let fail = phase(P::Fail, None);
        let skip = phase(P::Skip, None);
        let cases: Vec<(
            bool,
            Option<&Terminal>,
            Vec<PhaseSummary>,
            Outcome,
            Option<&str>,
            Option<bool>,
        )> = vec![
            (
                true,
                Some(&error),
                vec![pass],
                Outcome::Aborted,
                Some("ABORTED"),
                None,
            ),
            (
                false,
                Some(&error),
                vec![fail],
                Outcome::Error,
                Some("IoError"),
                None,
            ),
            (
                false,
                Some(&timeout),
                vec![pass],
                Outcome::Timeout,
                Some("TIMEOUT"),
                None,
            ),
            (
                false,
                Some(&stop),
                vec![pass],
                Outcome::Fail,
                Some("STOP"),
                None,
            ),
            (false, None, vec![], Outcome::Pass, None, None),
            (
                false,
                None,
                vec![pass, fail, skip],
                Outcome::Fail,
                None,
                None,
            ),
            (
                false,
                None,
                vec![skip, skip],
                Outcome::Error,
                Some("ALL_SKIPPED"),
                None,
            ),
            (
                false,
                None,
                vec![skip, pass],
                Outcome::Pass,
                None,
                Some(false),
            ),
            (
                false,
                None,
                vec![pass, phase(P::Pass, Some(true))],
                Outcome::Pass,
                None,
                Some(true),
            ),
        ];
        for (aborted, terminal, phases, want, code, marginal) in cases {
            let (outcome, details, m) = test_outcome(aborted, terminal, &phases, &[]);
            assert_eq!(outcome, want, "{aborted} {terminal:?} {phases:?}");
            assert_eq!(details.first().map(|d| d.code.as_str()), code);
            assert_eq!(m, marginal);
        }
    }

    #[test]
    fn failed_sweeps_are_named_in_the_details() {
        let fail = phase(P::Fail, None);
        let (_, details, _) = test_outcome(false, None, &[fail], &[" failed_item: iv".into()]);
        assert_eq!(
            details,
            vec![OutcomeDetail::new(
                "Multidim Measurement Failure",
                " failed_item: iv"
            )]
        );
    }

    /// OpenHTF 1.6.3's text for the same measurement, points and validators.
    #[test]
    fn failed_sweeps_are_described_as_openhtf_describes_them() {
        use crate::declare::{SECOND, dimensions, within_percent};
        use crate::value::Columns;
        let decl = __declare::<crate::Sweep<1>, _>(
            "m0",
            dimensions([SECOND])
                .each(equals(0.1))
                .each(within_percent(0.7, 1.0)),
        )
        .decl;
        let mut columns = Columns::new(1);
        for (x, v) in [(1.0, -5e299), (2.0, 2.675), (3.0, 0.707)] {
            columns.push(&[x], v);
        }
        assert_eq!(
            multidim_failure_description(&decl, M::Fail, Some(&Value::Columns(columns))),
            " failed_item: m0 (Outcome.FAIL)\n  measured_value: [(1.0, -5e+299), (2.0, 2.675), (3.0, 0.707)]\n  validators:\n   validator: All values pass: x == 0.1\n   validator: All values pass: 'x' is within 1.0% of 0.7."
        );
        let mut many = Columns::new(1);
        for i in 0..1_000_000 {
            many.push(&[f64::from(i)], 2.0);
        }
        let long = multidim_failure_description(&decl, M::Fail, Some(&Value::Columns(many)));
        assert!(
            long.contains("(99.0, 2.0), … (1000000 points)]\n  validators:"),
            "{}",
            &long[..200]
        );
        assert!(long.len() < 3_000, "{} bytes", long.len());
        let bare = __declare::<crate::Sweep<1>, _>("m1", dimensions([SECOND])).decl;
        assert_eq!(
            multidim_failure_description(&bare, M::Unset, None),
            " failed_item: m1 (Outcome.UNSET)\n  measured_value: UNSET\n  validators:"
        );
    }

    #[test]
    fn stop_details_name_the_phase() {
        let (_, details, _) = test_outcome(
            false,
            Some(&Terminal::Stop {
                phase: "flash".into(),
            }),
            &[],
            &[],
        );
        assert_eq!(details[0].description, "Phase flash stopped the test run.");
    }
}
