//! Phases: what `#[phase]` makes of a function.

use std::fmt;

use crate::context::PhaseContext;
use crate::declare::Declared;
use crate::measurement::Slot;
use crate::outcome::PhaseResult;

/// A phase of a test, made by `#[phase]` from a function of the same name.
///
/// It is a cheap `Copy` handle; list phases in [`Test::phases`](crate::Test::phases) in the
/// order they run.
#[derive(Clone, Copy)]
pub struct Phase(&'static PhaseDef);

impl Phase {
    #[doc(hidden)]
    pub const fn __new(def: &'static PhaseDef) -> Self {
        Phase(def)
    }

    /// The name shown in the record: the display name, or the function's name.
    pub fn name(&self) -> &'static str {
        self.0.options.name.unwrap_or(self.0.function)
    }

    /// The phase's definition.
    pub fn def(&self) -> &'static PhaseDef {
        self.0
    }
}

impl fmt::Debug for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Phase({} at {}:{})",
            self.name(),
            self.0.file,
            self.0.line
        )
    }
}

/// Everything `#[phase]` knows about a phase, fixed at compile time.
#[doc(hidden)]
#[derive(Debug)]
pub struct PhaseDef {
    /// The function's name.
    pub function: &'static str,
    /// Where it was written.
    pub module_path: &'static str,
    /// Source file.
    pub file: &'static str,
    /// Source line.
    pub line: u32,
    /// The function's doc comment.
    pub doc: Option<&'static str>,
    /// Options from `#[phase(...)]`.
    pub options: PhaseOptions,
    /// Builds the measurement declarations (validators hold regexes and closures, so they are
    /// built at run time, once per test).
    pub measurements: fn() -> Vec<Declared>,
    /// Runs the phase's body against the slots of its measurements.
    pub run: fn(&mut PhaseContext, &mut [Slot]) -> PhaseReturn,
}

/// Options given in `#[phase(...)]`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct PhaseOptions {
    /// The name shown in the record instead of the function's name.
    pub name: Option<&'static str>,
    /// The maximum number of attempts when the phase returns REPEAT (OpenHTF's default: 3).
    pub repeat_limit: Option<u32>,
}

impl PhaseOptions {
    /// OpenHTF's default number of attempts.
    pub const DEFAULT_REPEAT_LIMIT: u32 = 3;

    #[doc(hidden)]
    pub const fn __new(name: Option<&'static str>, repeat_limit: Option<u32>) -> Self {
        PhaseOptions { name, repeat_limit }
    }
}

/// What a phase's body gave back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PhaseReturn {
    /// A result.
    Result(PhaseResult),
    /// An error, with its type's name and message.
    Error {
        /// The error type's name, e.g. `"Error"` for `std::io::Error`.
        type_name: String,
        /// The error's message and its sources.
        message: String,
    },
}

/// The return types a phase may have: `()`, [`PhaseResult`], or a `Result` of either with any
/// error that implements `Display` (`std::io::Error`, `Box<dyn Error>`, `anyhow::Error`…).
#[diagnostic::on_unimplemented(
    message = "a phase can't return `{Self}`",
    label = "return `()`, `PhaseResult`, or `Result<PhaseResult, E>` / `Result<(), E>` with `E: Display`"
)]
pub trait IntoPhaseReturn {
    /// Converts the body's return value.
    fn into_phase_return(self) -> PhaseReturn;
}

impl IntoPhaseReturn for () {
    fn into_phase_return(self) -> PhaseReturn {
        PhaseReturn::Result(PhaseResult::Continue)
    }
}

impl IntoPhaseReturn for PhaseResult {
    fn into_phase_return(self) -> PhaseReturn {
        PhaseReturn::Result(self)
    }
}

impl<T: IntoPhaseReturn, E: fmt::Display> IntoPhaseReturn for Result<T, E> {
    fn into_phase_return(self) -> PhaseReturn {
        match self {
            Ok(v) => v.into_phase_return(),
            Err(e) => PhaseReturn::Error {
                type_name: short_type_name::<E>(),
                message: e.to_string(),
            },
        }
    }
}

/// `std::io::Error` → `"Error"`, `Box<dyn std::error::Error>` → `"Box<dyn Error>"`.
fn short_type_name<E>() -> String {
    let full = std::any::type_name::<E>();
    let mut out = String::with_capacity(full.len());
    let mut segment = String::new();
    for c in full.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            segment.push(c);
        } else {
            out.push_str(segment.rsplit("::").next().unwrap_or(&segment));
            segment.clear();
            out.push(c);
        }
    }
    out.push_str(segment.rsplit("::").next().unwrap_or(&segment));
    out
}

/// A phase registered by `#[phase]`, for [`Test::registered_phases`](crate::Test::registered_phases).
#[doc(hidden)]
#[derive(Debug)]
pub struct Registered(pub Phase);

inventory::collect!(Registered);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_type_names_are_short() {
        assert_eq!(short_type_name::<std::io::Error>(), "Error");
        assert_eq!(
            short_type_name::<Box<dyn std::error::Error>>(),
            "Box<dyn Error>"
        );
        assert_eq!(short_type_name::<String>(), "String");
    }

    #[test]
    fn results_convert() {
        assert_eq!(
            ().into_phase_return(),
            PhaseReturn::Result(PhaseResult::Continue)
        );
        let err: Result<(), std::fmt::Error> = Err(std::fmt::Error);
        assert_eq!(
            err.into_phase_return(),
            PhaseReturn::Error {
                type_name: "Error".into(),
                message: "an error occurred when formatting an argument".into()
            }
        );
        let ok: Result<PhaseResult, String> = Ok(PhaseResult::Skip);
        assert_eq!(
            ok.into_phase_return(),
            PhaseReturn::Result(PhaseResult::Skip)
        );
    }
}
