//! Typed errors: each names the instrument and, where there is one, the command.

use std::time::Duration;

/// What went wrong talking to an instrument.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstrumentError {
    /// The address can't be read.
    #[error("instrument address `{address}`: {why}")]
    Address {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        why: String,
    },
    /// The connection could not be opened.
    #[error("{instrument}: can't connect to {address}: {source}")]
    Connect {
        /// The instrument's name.
        instrument: String,
        /// Its address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// No complete answer within the timeout.
    #[error("{instrument}: no answer to `{command}` within {timeout:?}")]
    Timeout {
        /// The instrument's name.
        instrument: String,
        /// The command.
        command: String,
        /// The timeout of the call.
        timeout: Duration,
    },
    /// The connection was closed by the instrument (or the network).
    #[error("{instrument}: connection lost during `{command}`: {why}")]
    ConnectionLost {
        /// The instrument's name.
        instrument: String,
        /// The command.
        command: String,
        /// What the system said.
        why: String,
    },
    /// Other I/O failures.
    #[error("{instrument}: I/O error during `{command}`: {source}")]
    Io {
        /// The instrument's name.
        instrument: String,
        /// The command.
        command: String,
        /// Why.
        source: std::io::Error,
    },
    /// The instrument reported an error (`SYST:ERR?`) after a command.
    #[error("{instrument}: `{command}` failed: {code},\"{message}\"")]
    Instrument {
        /// The instrument's name.
        instrument: String,
        /// The command after which the error was read.
        command: String,
        /// The SCPI error code (negative: standard errors).
        code: i32,
        /// The instrument's message.
        message: String,
    },
    /// The answer is not what the command gives (not text, not a number, not a block).
    #[error("{instrument}: bad answer to `{command}`: {why}: {answer:?}")]
    BadAnswer {
        /// The instrument's name.
        instrument: String,
        /// The command.
        command: String,
        /// What was expected.
        why: String,
        /// The answer (its first 200 characters, lossy).
        answer: String,
    },
    /// The instrument was used before its plug was set up, or after teardown.
    #[error("{instrument}: not connected (the plug is set up at the start of the run)")]
    NotConnected {
        /// The instrument's name.
        instrument: String,
    },
    /// The instrument's calibration is past its due date.
    #[error(
        "{instrument}: calibration expired on {due} (today is {today}); recalibrate it, or allow \
         it with warn_when_calibration_expired()"
    )]
    CalibrationExpired {
        /// The instrument's name and identity.
        instrument: String,
        /// The due date.
        due: chrono::NaiveDate,
        /// Today's date.
        today: chrono::NaiveDate,
    },
    /// The address is a VISA resource and VISA can't be used.
    #[error("{address}: {why}")]
    VisaUnavailable {
        /// The address.
        address: String,
        /// Why (no `visa` feature, no library found, or the library's error).
        why: String,
    },
}

/// The first 200 characters of an answer, for messages.
pub(crate) fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        out.push('…');
    }
    out
}
