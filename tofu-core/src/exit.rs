//! The exit code of a test program: what it tells a station's supervisor (a shell loop, a
//! line controller, CI) about the board and the station.
//!
//! | code | meaning |
//! |---|---|
//! | 0 ([`PASS`]) | the unit passed and every output (record, upload queue, report…) succeeded |
//! | 1 ([`FAIL`]) | the unit failed: a measurement out of limits, a phase that failed or stopped the test |
//! | 2 ([`ERROR`]) | the station is in trouble, not the board: a phase raised an error or panicked (a missing instrument, a bad declaration, no serial number), timed out, or the operator aborted (ERROR, TIMEOUT, ABORTED) |
//! | 3 ([`OUTPUT_FAILED`]) | the unit passed but an output failed: its record or upload may be missing |
//!
//! The unit's outcome comes first: a failed unit whose record also failed to write exits 1 (the
//! console says which output failed). A station's batch exits with the worst of its slots:
//! 2, then 1, then 3, then 0. A Rust panic outside the executor exits 101, as any Rust program.

use crate::outcome::Outcome;

/// The unit passed and every output succeeded.
pub const PASS: u8 = 0;
/// The unit failed.
pub const FAIL: u8 = 1;
/// ERROR, TIMEOUT or ABORTED: the station, not the board.
pub const ERROR: u8 = 2;
/// The unit passed, but an output (the record, the upload queue…) failed.
pub const OUTPUT_FAILED: u8 = 3;

/// The exit code of one run.
pub(crate) fn code(outcome: Outcome, outputs_ok: bool) -> u8 {
    match outcome {
        Outcome::Pass if outputs_ok => PASS,
        Outcome::Pass => OUTPUT_FAILED,
        Outcome::Fail => FAIL,
        Outcome::Error | Outcome::Timeout | Outcome::Aborted => ERROR,
    }
}

/// The exit code of a batch: the worst of its runs' codes.
pub(crate) fn worst(codes: impl IntoIterator<Item = u8>) -> u8 {
    let rank = |code: u8| match code {
        ERROR => 3,
        FAIL => 2,
        OUTPUT_FAILED => 1,
        _ => 0,
    };
    codes.into_iter().max_by_key(|&c| rank(c)).unwrap_or(PASS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_and_output_state_has_its_code() {
        let table = [
            (Outcome::Pass, true, PASS),
            (Outcome::Pass, false, OUTPUT_FAILED),
            (Outcome::Fail, true, FAIL),
            (Outcome::Fail, false, FAIL),
            (Outcome::Error, true, ERROR),
            (Outcome::Error, false, ERROR),
            (Outcome::Timeout, true, ERROR),
            (Outcome::Aborted, true, ERROR),
            (Outcome::Aborted, false, ERROR),
        ];
        for (outcome, outputs_ok, expected) in table {
            assert_eq!(
                code(outcome, outputs_ok),
                expected,
                "{outcome:?}, outputs ok {outputs_ok}"
            );
        }
    }

    #[test]
    fn a_batch_exits_with_its_worst_run() {
        let table: [(&[u8], u8); 7] = [
            (&[], PASS),
            (&[PASS, PASS], PASS),
            (&[PASS, OUTPUT_FAILED], OUTPUT_FAILED),
            (&[OUTPUT_FAILED, FAIL], FAIL),
            (&[FAIL, PASS, ERROR], ERROR),
            (&[ERROR, FAIL], ERROR),
            (&[PASS, FAIL, OUTPUT_FAILED], FAIL),
        ];
        for (codes, expected) in table {
            assert_eq!(worst(codes.iter().copied()), expected, "{codes:?}");
        }
    }
}
