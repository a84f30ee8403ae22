//! Phases: what `#[phase]` makes of a function.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::context::PhaseContext;
use crate::declare::{__declare, Accepts, Declared, Spec};
use crate::measurement::{Kind, Measurement, Slot, ValueKind};
use crate::outcome::PhaseResult;
use crate::plug::{PlugNeeds, PlugSet};

/// A phase of a test: made by `#[phase]` from a function of the same name, or built at run time
/// with [`Phase::dynamic`].
///
/// A cheap handle to clone; list phases in [`Test::phases`](crate::Test::phases) in the order
/// they run.
#[derive(Clone)]
pub struct Phase(Source);

#[derive(Clone)]
enum Source {
    Static(&'static PhaseDef),
    Dynamic(Arc<DynamicPhase>),
}

impl Phase {
    #[doc(hidden)]
    pub const fn __new(def: &'static PhaseDef) -> Self {
        Phase(Source::Static(def))
    }

    pub(crate) fn from_dynamic(phase: DynamicPhase) -> Self {
        Phase(Source::Dynamic(Arc::new(phase)))
    }

    /// Builds a phase at run time, for phases generated from data (one per channel, per
    /// configuration entry…). Its measurements are reached by name.
    ///
    /// ```
    /// use tofu_core::declare::in_range;
    /// use tofu_core::{Phase, unit::VOLT};
    ///
    /// let channel = 3;
    /// let phase = Phase::dynamic(format!("channel_{channel}"))
    ///     .measure::<f64, _>("offset", in_range(-0.01, 0.01).units(VOLT))
    ///     .run(move |_test, m| {
    ///         m.get::<f64>("offset")?.set(0.002 * f64::from(channel));
    ///         Ok::<(), tofu_core::phase::MeasurementAccessError>(())
    ///     });
    /// assert_eq!(phase.name(), "channel_3");
    /// ```
    pub fn dynamic(name: impl Into<String>) -> DynamicPhaseBuilder {
        DynamicPhaseBuilder::new(name.into())
    }

    /// The name shown in the record: the display name, or the function's name.
    pub fn name(&self) -> &str {
        match &self.0 {
            Source::Static(def) => def.options.name.unwrap_or(def.function),
            Source::Dynamic(d) => &d.name,
        }
    }

    /// The function's name (the phase's name for a dynamic phase).
    pub fn function(&self) -> &str {
        match &self.0 {
            Source::Static(def) => def.function,
            Source::Dynamic(d) => &d.name,
        }
    }

    /// Where the phase was written: module path, file, line.
    pub fn location(&self) -> (&str, &str, u32) {
        match &self.0 {
            Source::Static(def) => (def.module_path, def.file, def.line),
            Source::Dynamic(d) => (d.module_path, d.file, d.line),
        }
    }

    /// The phase's options.
    pub fn options(&self) -> PhaseOptions {
        match &self.0 {
            Source::Static(def) => def.options,
            Source::Dynamic(d) => d.options,
        }
    }

    /// The phase's doc comment.
    pub fn doc(&self) -> Option<&str> {
        match &self.0 {
            Source::Static(def) => def.doc,
            Source::Dynamic(_) => None,
        }
    }

    pub(crate) fn declare(&self) -> Vec<Declared> {
        match &self.0 {
            Source::Static(def) => (def.measurements)(),
            Source::Dynamic(d) => d.measurements.clone(),
        }
    }

    /// The plugs the phase asks for.
    pub(crate) fn plug_needs(&self) -> PlugNeeds {
        match &self.0 {
            Source::Static(def) => (def.plugs)(),
            Source::Dynamic(_) => Vec::new(),
        }
    }

    pub(crate) fn run(
        &self,
        ctx: &mut PhaseContext,
        slots: &mut [Slot],
        plugs: &mut PlugSet<'_>,
    ) -> PhaseReturn {
        match &self.0 {
            Source::Static(def) => (def.run)(ctx, slots, plugs),
            Source::Dynamic(d) => (d.run)(
                ctx,
                &mut DynamicMeasurements {
                    slots,
                    index: d.index.as_ref(),
                },
            ),
        }
    }
}

impl fmt::Debug for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (_, file, line) = self.location();
        write!(f, "Phase({} at {file}:{line})", self.name())
    }
}

type DynamicRun =
    dyn Fn(&mut PhaseContext, &mut DynamicMeasurements<'_>) -> PhaseReturn + Send + Sync;

/// A phase built at run time.
pub(crate) struct DynamicPhase {
    name: String,
    module_path: &'static str,
    file: &'static str,
    line: u32,
    options: PhaseOptions,
    measurements: Vec<Declared>,
    /// Where each measurement's slot is, by name, for phases with many measurements.
    index: Option<HashMap<String, usize>>,
    run: Box<DynamicRun>,
}

/// Above this many measurements, a dynamic phase finds a measurement by hashing its name
/// rather than comparing it with every name in turn (which made setting all of a phase's
/// measurements quadratic: 0.28 s for 10,000 of them).
const INDEX_ABOVE: usize = 16;

/// Each name's position among the declarations (the first, where a name is repeated: such a
/// phase is rejected before it runs), or `None` when there are few measurements.
fn name_index(measurements: &[Declared]) -> Option<HashMap<String, usize>> {
    (measurements.len() > INDEX_ABOVE).then(|| {
        let mut index = HashMap::with_capacity(measurements.len());
        for (i, m) in measurements.iter().enumerate() {
            index.entry(m.decl.name.clone()).or_insert(i);
        }
        index
    })
}

/// Builds a phase at run time; see [`Phase::dynamic`].
#[must_use]
pub struct DynamicPhaseBuilder {
    name: String,
    options: PhaseOptions,
    measurements: Vec<Declared>,
    location: &'static std::panic::Location<'static>,
}

impl fmt::Debug for DynamicPhaseBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DynamicPhaseBuilder({})", self.name)
    }
}

impl DynamicPhaseBuilder {
    #[track_caller]
    fn new(name: String) -> Self {
        DynamicPhaseBuilder {
            name,
            options: PhaseOptions::__new(None, None, None),
            measurements: Vec::new(),
            location: std::panic::Location::caller(),
        }
    }

    /// Declares a measurement of kind `K` (`f64`, `String`, `bool`, `Json`, `Sweep<N>`, `Si<unit>`)
    /// with a spec of [`crate::declare`]'s words.
    pub fn measure<K: Kind + Accepts<C>, C>(mut self, name: &str, spec: Spec<C>) -> Self {
        self.measurements.push(__declare::<K, C>(name, spec));
        self
    }

    /// How long an attempt may take before it is abandoned as TIMEOUT.
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// Runs the phase again while its measurements fail, up to the repeat limit.
    pub fn repeat_on_measurement_fail(mut self) -> Self {
        self.options.repeat_on_measurement_fail = true;
        self
    }

    /// A failed measurement stops the test.
    pub fn stop_on_measurement_fail(mut self) -> Self {
        self.options.stop_on_measurement_fail = true;
        self
    }

    /// The maximum number of attempts when the phase returns REPEAT (3 by default).
    pub fn repeat_limit(mut self, attempts: u32) -> Self {
        self.options.repeat_limit = Some(attempts);
        self
    }

    /// The phase's body.
    pub fn run<F, R>(self, body: F) -> Phase
    where
        F: Fn(&mut PhaseContext, &mut DynamicMeasurements<'_>) -> R + Send + Sync + 'static,
        R: IntoPhaseReturn,
    {
        let index = name_index(&self.measurements);
        Phase::from_dynamic(DynamicPhase {
            name: self.name,
            module_path: "",
            file: self.location.file(),
            line: self.location.line(),
            options: self.options,
            measurements: self.measurements,
            index,
            run: Box::new(move |ctx, m| body(ctx, m).into_phase_return()),
        })
    }
}

/// The measurements of a dynamic phase, reached by name.
#[derive(Debug)]
pub struct DynamicMeasurements<'a> {
    /// One per declared measurement, in declaration order.
    slots: &'a mut [Slot],
    index: Option<&'a HashMap<String, usize>>,
}

/// A dynamic phase asked for a measurement it does not have, or as the wrong kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MeasurementAccessError {
    /// No measurement of that name was declared.
    #[error("no measurement named `{0}` is declared in this phase")]
    Unknown(String),
    /// It was declared as another kind.
    #[error("measurement `{name}` is declared as {declared}, not {asked}")]
    WrongKind {
        /// The measurement.
        name: String,
        /// Its declared kind.
        declared: String,
        /// The kind asked for.
        asked: String,
    },
}

impl DynamicMeasurements<'_> {
    /// The typed handle of measurement `name`, which must have been declared as kind `K`.
    pub fn get<K: Kind>(
        &mut self,
        name: &str,
    ) -> Result<Measurement<'_, K>, MeasurementAccessError> {
        let position = match self.index {
            Some(index) => index.get(name).copied(),
            None => self.slots.iter().position(|s| s.name() == name),
        };
        let slot = position
            .and_then(|i| self.slots.get_mut(i))
            .filter(|s| s.name() == name)
            .ok_or_else(|| MeasurementAccessError::Unknown(name.to_owned()))?;
        let (kind, dimensions) = slot.kind();
        if kind != K::KIND || (kind == ValueKind::MultiDim && dimensions != K::DIMENSIONS) {
            let show = |k: ValueKind, n: usize| {
                if k == ValueKind::MultiDim {
                    format!("{k:?} with {n} dimensions")
                } else {
                    format!("{k:?}")
                }
            };
            return Err(MeasurementAccessError::WrongKind {
                name: name.to_owned(),
                declared: show(kind, dimensions),
                asked: show(K::KIND, K::DIMENSIONS),
            });
        }
        Ok(Measurement::__bind(slot))
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
    /// The types of the plugs the phase takes.
    pub plugs: fn() -> PlugNeeds,
    /// Runs the phase's body against the slots of its measurements and its plugs.
    pub run: fn(&mut PhaseContext, &mut [Slot], &mut PlugSet<'_>) -> PhaseReturn,
}

/// Options given in `#[phase(...)]`.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct PhaseOptions {
    /// The name shown in the record instead of the function's name.
    pub name: Option<&'static str>,
    /// The maximum number of attempts when the phase returns REPEAT (OpenHTF's default: 3).
    pub repeat_limit: Option<u32>,
    /// How long an attempt may take; see [`Test::phase_timeout`](crate::Test::phase_timeout).
    pub timeout: Option<std::time::Duration>,
    /// Run the phase again while its measurements fail (up to the repeat limit); the failed
    /// attempts are recorded as SKIP.
    pub repeat_on_measurement_fail: bool,
    /// A failed measurement stops the test (the phase's result becomes STOP).
    pub stop_on_measurement_fail: bool,
    /// Run the phase only when this returns true; otherwise it is left out of the record
    /// (OpenHTF's `run_if`).
    pub run_if: Option<fn() -> bool>,
    /// The condition's name, as written (for the record).
    pub run_if_name: Option<&'static str>,
}

impl PhaseOptions {
    /// OpenHTF's default number of attempts.
    pub const DEFAULT_REPEAT_LIMIT: u32 = 3;

    #[doc(hidden)]
    pub const fn __new(
        name: Option<&'static str>,
        repeat_limit: Option<u32>,
        timeout: Option<std::time::Duration>,
    ) -> Self {
        PhaseOptions {
            name,
            repeat_limit,
            timeout,
            repeat_on_measurement_fail: false,
            stop_on_measurement_fail: false,
            run_if: None,
            run_if_name: None,
        }
    }

    #[doc(hidden)]
    pub const fn __run_if(
        mut self,
        run_if: Option<fn() -> bool>,
        name: Option<&'static str>,
    ) -> Self {
        self.run_if = run_if;
        self.run_if_name = name;
        self
    }

    #[doc(hidden)]
    pub const fn __flags(
        mut self,
        repeat_on_measurement_fail: bool,
        stop_on_measurement_fail: bool,
    ) -> Self {
        self.repeat_on_measurement_fail = repeat_on_measurement_fail;
        self.stop_on_measurement_fail = stop_on_measurement_fail;
        self
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

    /// Runs a dynamic phase of `n` numbers `m0`… (plus a repeated `m0` and a sweep `s`) that
    /// sets them in reverse order; returns the values set, in declaration order.
    fn run_dynamic(n: usize) -> Vec<Option<crate::value::Value>> {
        use crate::declare::{dimensions, in_range};
        let mut builder = Phase::dynamic("many");
        for i in 0..n {
            builder = builder.measure::<f64, _>(&format!("m{i}"), in_range(0, 10));
        }
        let phase = builder
            .measure::<f64, _>("m0", in_range(0, 10))
            .measure::<crate::Sweep<2>, _>("s", dimensions(["a", "b"]))
            .run(move |_test, m| -> Result<(), MeasurementAccessError> {
                for i in (0..n).rev() {
                    #[allow(clippy::cast_precision_loss)]
                    m.get::<f64>(&format!("m{i}"))?.set(i as f64);
                }
                m.get::<crate::Sweep<2>>("s")?.push([1.0, 2.0], 3.0);
                assert_eq!(
                    m.get::<f64>("nope").err(),
                    Some(MeasurementAccessError::Unknown("nope".into()))
                );
                assert!(matches!(
                    m.get::<String>("m0"),
                    Err(MeasurementAccessError::WrongKind { .. })
                ));
                assert!(matches!(
                    m.get::<crate::Sweep<3>>("s"),
                    Err(MeasurementAccessError::WrongKind { .. })
                ));
                Ok(())
            });
        let mut slots: Vec<Slot> = phase
            .declare()
            .iter()
            .map(|d| Slot::__new(&d.decl))
            .collect();
        let mut ctx = PhaseContext::new("SN", "many", 1);
        assert_eq!(
            phase.run(&mut ctx, &mut slots, &mut PlugSet::new(Vec::new())),
            PhaseReturn::Result(PhaseResult::Continue)
        );
        slots.iter().map(Slot::take).collect()
    }

    #[test]
    fn dynamic_phases_find_measurements_by_name_with_or_without_an_index() {
        use crate::value::Value;
        for n in [1, INDEX_ABOVE - 1, INDEX_ABOVE, INDEX_ABOVE + 1, 300] {
            let values = run_dynamic(n);
            assert_eq!(values.len(), n + 2, "{n}");
            for (i, v) in values[..n].iter().enumerate() {
                #[allow(clippy::cast_precision_loss)]
                let want = Value::Number(i as f64);
                assert_eq!(v.as_ref(), Some(&want), "{n}: m{i}");
            }
            // A repeated name reaches the first measurement of that name.
            assert_eq!(values[n], None, "{n}");
            assert_eq!(
                values[n + 1]
                    .as_ref()
                    .and_then(|v| v.as_columns())
                    .map(|c| c.len()),
                Some(1)
            );
        }
    }
}
