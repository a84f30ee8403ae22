//! What follows one attempt of a phase: its outcome, whether it runs again, whether the test
//! stops. OpenHTF 1.6.3's rules (repeat, repeat limit, repeat on measurement fail, stop on
//! measurement fail, stop on first failure), as a pure function tested as a table.

use crate::outcome::{self, MeasurementSummary, PhaseExecution, PhaseOutcome, PhaseResult};

/// What the rules look at, besides the measurements.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttemptFacts {
    /// 1 for the first attempt.
    pub(crate) attempt: u32,
    /// The phase's repeat limit (at least 1).
    pub(crate) limit: u32,
    /// `#[phase(repeat_on_measurement_fail)]`.
    pub(crate) repeat_on_measurement_fail: bool,
    /// `#[phase(stop_on_measurement_fail)]`.
    pub(crate) stop_on_measurement_fail: bool,
    /// `Test::stop_on_first_failure`.
    pub(crate) stop_on_first_failure: bool,
}

/// Why an attempt stops the test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// The phase returned STOP, asked to repeat past its limit, or failed its measurements
    /// with `stop_on_measurement_fail`.
    Stopped,
    /// The phase failed and the test stops at its first failure.
    FirstFailure,
}

/// What follows the attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// How the attempt is recorded to have ended (a REPEAT past the limit becomes STOP).
    pub(crate) execution: PhaseExecution,
    /// The attempt's outcome (an attempt that is retried is SKIP).
    pub(crate) outcome: PhaseOutcome,
    /// Set only on PASS.
    pub(crate) marginal: Option<bool>,
    /// The phase runs again.
    pub(crate) again: bool,
    /// The test stops (besides errors and timeouts, which the execution says).
    pub(crate) stop: Option<StopReason>,
}

/// Applies the rules to one attempt.
pub(crate) fn decide(
    execution: PhaseExecution,
    measurements: &[MeasurementSummary],
    facts: AttemptFacts,
) -> Verdict {
    let repeat = execution == PhaseExecution::Returned(PhaseResult::Repeat);
    let hit_repeat_limit = repeat && facts.attempt >= facts.limit;
    let (mut outcome, marginal) =
        outcome::phase_outcome(&execution, measurements, hit_repeat_limit);
    let measurements_failed = outcome == PhaseOutcome::Fail
        && execution == PhaseExecution::Returned(PhaseResult::Continue);
    let retry =
        facts.repeat_on_measurement_fail && measurements_failed && facts.attempt < facts.limit;
    let mut execution = execution;
    let mut stop = None;
    if retry {
        outcome = PhaseOutcome::Skip;
    } else if measurements_failed && facts.stop_on_measurement_fail {
        execution = PhaseExecution::Returned(PhaseResult::Stop);
    } else if outcome == PhaseOutcome::Fail && facts.stop_on_first_failure {
        stop = Some(StopReason::FirstFailure);
    }
    if hit_repeat_limit {
        execution = PhaseExecution::Returned(PhaseResult::Stop);
    }
    if execution == PhaseExecution::Returned(PhaseResult::Stop) {
        stop = Some(StopReason::Stopped);
    }
    Verdict {
        execution,
        outcome,
        marginal,
        again: (repeat || retry) && !hit_repeat_limit,
        stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::MeasurementOutcome;

    const PASS: MeasurementSummary = MeasurementSummary {
        outcome: MeasurementOutcome::Pass,
        marginal: false,
        allow_fail: false,
    };
    const FAIL: MeasurementSummary = MeasurementSummary {
        outcome: MeasurementOutcome::Fail,
        marginal: false,
        allow_fail: false,
    };

    fn facts(attempt: u32, limit: u32) -> AttemptFacts {
        AttemptFacts {
            attempt,
            limit,
            repeat_on_measurement_fail: false,
            stop_on_measurement_fail: false,
            stop_on_first_failure: false,
        }
    }

    fn returned(r: PhaseResult) -> PhaseExecution {
        PhaseExecution::Returned(r)
    }

    /// (what it returned, its measurements, facts) => (recorded result, outcome, again, stop)
    type Row = (
        PhaseExecution,
        MeasurementSummary,
        AttemptFacts,
        PhaseExecution,
        PhaseOutcome,
        bool,
        Option<StopReason>,
    );

    #[test]
    fn the_rules_as_a_table() {
        use PhaseOutcome as O;
        use PhaseResult as R;
        let rofm = |attempt, limit| AttemptFacts {
            repeat_on_measurement_fail: true,
            ..facts(attempt, limit)
        };
        let somf = AttemptFacts {
            stop_on_measurement_fail: true,
            ..facts(1, 3)
        };
        let sfff = AttemptFacts {
            stop_on_first_failure: true,
            ..facts(1, 3)
        };
        // (what it returned, its measurements, facts) => (recorded result, outcome, again, stop)
        let table: Vec<Row> = vec![
            (
                returned(R::Continue),
                PASS,
                facts(1, 3),
                returned(R::Continue),
                O::Pass,
                false,
                None,
            ),
            (
                returned(R::Continue),
                FAIL,
                facts(1, 3),
                returned(R::Continue),
                O::Fail,
                false,
                None,
            ),
            (
                returned(R::Repeat),
                PASS,
                facts(1, 3),
                returned(R::Repeat),
                O::Skip,
                true,
                None,
            ),
            (
                returned(R::Repeat),
                PASS,
                facts(2, 3),
                returned(R::Repeat),
                O::Skip,
                true,
                None,
            ),
            (
                returned(R::Repeat),
                PASS,
                facts(3, 3),
                returned(R::Stop),
                O::Error,
                false,
                Some(StopReason::Stopped),
            ),
            (
                returned(R::Continue),
                FAIL,
                rofm(1, 3),
                returned(R::Continue),
                O::Skip,
                true,
                None,
            ),
            (
                returned(R::Continue),
                FAIL,
                rofm(3, 3),
                returned(R::Continue),
                O::Fail,
                false,
                None,
            ),
            (
                returned(R::Continue),
                PASS,
                rofm(1, 3),
                returned(R::Continue),
                O::Pass,
                false,
                None,
            ),
            (
                returned(R::Continue),
                FAIL,
                somf,
                returned(R::Stop),
                O::Fail,
                false,
                Some(StopReason::Stopped),
            ),
            (
                returned(R::FailAndContinue),
                PASS,
                somf,
                returned(R::FailAndContinue),
                O::Fail,
                false,
                None,
            ),
            (
                returned(R::Continue),
                FAIL,
                sfff,
                returned(R::Continue),
                O::Fail,
                false,
                Some(StopReason::FirstFailure),
            ),
            (
                returned(R::FailAndContinue),
                PASS,
                sfff,
                returned(R::FailAndContinue),
                O::Fail,
                false,
                Some(StopReason::FirstFailure),
            ),
            (
                returned(R::Stop),
                PASS,
                facts(1, 3),
                returned(R::Stop),
                O::Error,
                false,
                Some(StopReason::Stopped),
            ),
            (
                returned(R::Skip),
                FAIL,
                facts(1, 3),
                returned(R::Skip),
                O::Skip,
                false,
                None,
            ),
            (
                PhaseExecution::Timeout,
                PASS,
                sfff,
                PhaseExecution::Timeout,
                O::Error,
                false,
                None,
            ),
        ];
        for (i, (execution, m, f, recorded, outcome, again, stop)) in table.into_iter().enumerate()
        {
            let v = decide(execution, &[m], f);
            assert_eq!(
                (v.execution, v.outcome, v.again, v.stop),
                (recorded, outcome, again, stop),
                "row {i}"
            );
        }
    }
}
