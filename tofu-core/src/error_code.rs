//! Why a run ended in an error, as a type: the record writes each as OpenHTF's string (the
//! outcome detail's `code`).

use std::fmt;

/// What ended a run in an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The measurement declarations, the plugs or the limits are invalid: nothing ran.
    InvalidDeclaration,
    /// A phase asks for a plug the test was not given: nothing ran.
    MissingPlug,
    /// No serial number could be had (no answer, end of input, refused by its pattern).
    SerialNumberUnavailable,
    /// The serial number is empty.
    InvalidSerialNumber,
    /// User code panicked outside a phase (a serial-number source, a `run_if` condition).
    Panic,
    /// A plug failed to set up (or timed out doing it).
    PlugSetupError,
    /// A station's shared plug is still held by a phase that was abandoned.
    SharedPlugUnavailable,
    /// The process ended during the run (found in its journal afterwards).
    ProcessEnded,
    /// A phase raised an error of this type (its `exc_type`).
    Phase(String),
}

impl ErrorCode {
    /// The code as the record writes it.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::InvalidDeclaration => "InvalidDeclaration",
            ErrorCode::MissingPlug => "MissingPlug",
            ErrorCode::SerialNumberUnavailable => "SerialNumberUnavailable",
            ErrorCode::InvalidSerialNumber => "InvalidSerialNumber",
            ErrorCode::Panic => "Panic",
            ErrorCode::PlugSetupError => "PlugSetupError",
            ErrorCode::SharedPlugUnavailable => "SharedPlugUnavailable",
            ErrorCode::ProcessEnded => "ProcessEnded",
            ErrorCode::Phase(exc_type) => exc_type,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
