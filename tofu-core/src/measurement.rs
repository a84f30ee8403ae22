//! Measurements: their declaration, and the typed handles phases set them through.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};

use crate::unit::{self, Unit};
use crate::validator::Validator;
use crate::value::{Columns, Value};

/// A measurement as declared in `#[measures(...)]`: everything but its value.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MeasurementDecl {
    /// Unique within its phase.
    pub name: String,
    /// What kind of value it holds.
    pub kind: ValueKind,
    /// Limits; all must pass.
    pub validators: Vec<Validator>,
    /// The unit of the value.
    pub units: Option<Unit>,
    /// For multi-dimensional measurements, one entry per coordinate.
    pub dimensions: Vec<Dimension>,
    /// What the measurement is.
    pub docstring: Option<String>,
    /// A failure of this measurement does not fail its phase.
    pub allow_fail: bool,
    /// Numbers are rounded to this many decimal places when set.
    pub precision: Option<i32>,
}

impl MeasurementDecl {
    /// A measurement with no validators, units or dimensions.
    pub fn new(name: impl Into<String>, kind: ValueKind) -> Self {
        MeasurementDecl {
            name: name.into(),
            kind,
            validators: Vec::new(),
            units: None,
            dimensions: Vec::new(),
            docstring: None,
            allow_fail: false,
            precision: None,
        }
    }
}

/// The kind of value a measurement holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum ValueKind {
    /// A number (`f64`, or a `uom` quantity in a declared unit).
    Number,
    /// A string.
    Text,
    /// A boolean.
    Bool,
    /// A structured value recorded as is.
    Json,
    /// Points of a multi-dimensional measurement.
    MultiDim,
}

/// One coordinate of a multi-dimensional measurement: a unit, or a free-text description.
#[derive(Debug, Clone, PartialEq)]
pub struct Dimension {
    /// The unit of the coordinate ([`unit::NO_DIMENSION`] for a description only).
    pub unit: Unit,
    /// Free text (empty when the unit says it all).
    pub description: String,
}

impl From<Unit> for Dimension {
    fn from(unit: Unit) -> Self {
        Dimension {
            unit,
            description: String::new(),
        }
    }
}

impl From<&str> for Dimension {
    /// A unit's name or suffix gives that unit, as in OpenHTF; any other text is a description.
    fn from(text: &str) -> Self {
        match Unit::find(text) {
            Some(unit) => Dimension {
                unit,
                description: String::new(),
            },
            None => Dimension {
                unit: unit::NO_DIMENSION,
                description: text.to_owned(),
            },
        }
    }
}

/// Where the value of one measurement is kept while its phase runs.
///
/// Slots belong to the executor, so a value set before a panic, an error, a timeout or an
/// abort is kept: the phase's handle and the executor share the value.
#[derive(Debug)]
pub struct Slot {
    /// What the slot holds (shared with the executor: no copy per attempt).
    decl: Arc<MeasurementDecl>,
    value: Arc<Mutex<Option<Value>>>,
}

impl Slot {
    #[doc(hidden)]
    pub fn __new(decl: &MeasurementDecl) -> Self {
        Slot::new(&Arc::new(decl.clone()))
    }

    pub(crate) fn new(decl: &Arc<MeasurementDecl>) -> Self {
        let value = (decl.kind == ValueKind::MultiDim)
            .then(|| Value::Columns(Columns::new(decl.dimensions.len())));
        Slot {
            decl: Arc::clone(decl),
            value: Arc::new(Mutex::new(value)),
        }
    }

    /// The executor's view of this slot: the same value.
    pub(crate) fn share(&self) -> Slot {
        Slot {
            decl: Arc::clone(&self.decl),
            value: Arc::clone(&self.value),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.decl.name
    }

    pub(crate) fn decl(&self) -> &Arc<MeasurementDecl> {
        &self.decl
    }

    pub(crate) fn kind(&self) -> (ValueKind, usize) {
        (self.decl.kind, self.decl.dimensions.len())
    }

    /// Runs `f` on the value (a phase still running on an abandoned thread may set it too).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Option<Value>) -> R) -> R {
        f(&mut self.value.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn take(&self) -> Option<Value> {
        self.with(Option::take)
            .filter(|v| !matches!(v, Value::Columns(c) if c.is_empty()))
    }

    pub(crate) fn set(&self, value: Value) {
        let replaced = self.with(|slot| slot.replace(value).is_some());
        if replaced {
            tracing::warn!(measurement = %self.decl.name, "measurement set again; the last value wins");
        }
    }

    pub(crate) fn set_number(&self, v: f64) {
        let v = match self.decl.precision {
            Some(digits) if v.is_finite() => {
                let scale = 10f64.powi(digits);
                (v * scale).round() / scale
            }
            _ => v,
        };
        self.set(Value::Number(v));
    }

    fn with_columns<R>(&self, f: impl FnOnce(&mut Columns) -> R) -> R {
        self.with(|value| {
            if !matches!(value, Some(Value::Columns(_))) {
                *value = Some(Value::Columns(Columns::default()));
            }
            match value {
                Some(Value::Columns(c)) => f(c),
                _ => unreachable!("set to columns just above"),
            }
        })
    }
}

/// The typed handle of one measurement, as a field of a phase's generated `Measurements`
/// struct. `K` is the kind declared in `#[measures(...)]`: `f64`, `String`, `bool`,
/// [`Json`], [`Sweep<N>`](Sweep) or [`Si<unit>`](crate::si::Si).
#[derive(Debug)]
pub struct Measurement<'a, K> {
    slot: &'a mut Slot,
    kind: PhantomData<K>,
}

impl<'a, K> Measurement<'a, K> {
    #[doc(hidden)]
    pub fn __bind(slot: &'a mut Slot) -> Self {
        Measurement {
            slot,
            kind: PhantomData,
        }
    }

    /// The measurement's name.
    pub fn name(&self) -> &str {
        self.slot.name()
    }

    /// Whether a value was set.
    pub fn is_set(&self) -> bool {
        self.slot.with(|value| match value {
            Some(Value::Columns(c)) => !c.is_empty(),
            other => other.is_some(),
        })
    }

    /// A copy of the value set so far.
    pub fn value(&self) -> Option<Value> {
        self.slot.with(|value| value.clone())
    }

    pub(crate) fn slot(&mut self) -> &mut Slot {
        self.slot
    }
}

/// Something that can be the value of a numeric measurement.
#[diagnostic::on_unimplemented(
    message = "`{Self}` can't be the value of a numeric measurement",
    label = "expected a number (f64, f32 or an integer)"
)]
pub trait IntoNumber {
    /// The number as `f64`.
    fn into_f64(self) -> f64;
}

macro_rules! into_number {
    ($($t:ty),*) => {$(
        impl IntoNumber for $t {
            #[allow(clippy::cast_precision_loss, clippy::cast_lossless)]
            fn into_f64(self) -> f64 { self as f64 }
        }
    )*};
}
into_number!(f64, f32, i8, i16, i32, i64, u8, u16, u32, u64, isize, usize);

impl Measurement<'_, f64> {
    /// Sets the value. NaN and infinities are recorded and fail the measurement.
    pub fn set(&mut self, value: impl IntoNumber) {
        self.slot.set_number(value.into_f64());
    }
}

impl Measurement<'_, String> {
    /// Sets the value.
    pub fn set(&mut self, value: impl Into<String>) {
        self.slot.set(Value::Text(value.into()));
    }
}

impl Measurement<'_, bool> {
    /// Sets the value.
    pub fn set(&mut self, value: bool) {
        self.slot.set(Value::Bool(value));
    }
}

/// The kind of a measurement whose value is structured data (lists, maps), recorded as is.
#[derive(Debug, Clone, Copy)]
pub enum Json {}

impl Measurement<'_, Json> {
    /// Sets the value.
    pub fn set(&mut self, value: impl Into<serde_json::Value>) {
        self.slot.set(Value::Json(value.into()));
    }

    /// Sets the value from anything serializable.
    pub fn set_serialized<T: serde::Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), serde_json::Error> {
        let value = serde_json::to_value(value)?;
        self.slot.set(Value::Json(value));
        Ok(())
    }
}

/// The kind of a multi-dimensional measurement with `N` coordinates per point, e.g. a sweep of
/// (time, voltage, current) → resistance is a `Sweep<3>`.
#[derive(Debug, Clone, Copy)]
pub enum Sweep<const N: usize> {}

/// Columns of unequal length given to [`Measurement::extend`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "measurement `{measurement}`: dimension {dimension} has {got} coordinates but there are {values} values"
)]
#[non_exhaustive]
pub struct ColumnLengthError {
    /// The measurement's name.
    pub measurement: String,
    /// Index of the offending dimension.
    pub dimension: usize,
    /// Its length.
    pub got: usize,
    /// The length of the value column.
    pub values: usize,
}

impl<const N: usize> Measurement<'_, Sweep<N>> {
    /// Adds one point: `N` coordinates and the value there.
    pub fn push(&mut self, coordinates: [f64; N], value: f64) {
        self.slot.with_columns(|c| c.push(&coordinates, value));
    }

    /// Adds many points at once, one slice per dimension plus the values, all of one length.
    pub fn extend(
        &mut self,
        coordinates: [&[f64]; N],
        values: &[f64],
    ) -> Result<(), ColumnLengthError> {
        if let Some((dimension, column)) = coordinates
            .iter()
            .enumerate()
            .find(|(_, c)| c.len() != values.len())
        {
            return Err(ColumnLengthError {
                measurement: self.slot.name().to_owned(),
                dimension,
                got: column.len(),
                values: values.len(),
            });
        }
        self.slot.with_columns(|c| c.extend(&coordinates, values));
        Ok(())
    }

    /// Reserves room for `additional` more points.
    pub fn reserve(&mut self, additional: usize) {
        self.slot.with_columns(|c| c.reserve(additional));
    }

    /// How many points were added.
    pub fn len(&self) -> usize {
        self.slot.with(|value| {
            value
                .as_ref()
                .and_then(Value::as_columns)
                .map_or(0, Columns::len)
        })
    }

    /// Whether no point was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A measurement kind: maps a declared type to the kind of value it holds.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a measurement kind",
    note = "declare a measurement as `name: f64`, `String`, `bool`, `Json`, `Sweep<N>` or `Si<unit>`"
)]
pub trait Kind {
    /// The kind of value.
    const KIND: ValueKind;
    /// For multi-dimensional kinds, the number of coordinates per point.
    const DIMENSIONS: usize = 0;
    /// Fills in what the kind implies (a `uom` unit's UNECE unit); says what contradicts it.
    fn complete(_decl: &mut MeasurementDecl) -> Result<(), String> {
        Ok(())
    }
}

impl Kind for f64 {
    const KIND: ValueKind = ValueKind::Number;
}
impl Kind for String {
    const KIND: ValueKind = ValueKind::Text;
}
impl Kind for bool {
    const KIND: ValueKind = ValueKind::Bool;
}
impl Kind for Json {
    const KIND: ValueKind = ValueKind::Json;
}
impl<const N: usize> Kind for Sweep<N> {
    const KIND: ValueKind = ValueKind::MultiDim;
    const DIMENSIONS: usize = N;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(kind: ValueKind) -> Slot {
        Slot::__new(&MeasurementDecl::new("m", kind))
    }

    #[test]
    fn precision_rounds_numbers_when_set() {
        let mut decl = MeasurementDecl::new("t", ValueKind::Number);
        decl.precision = Some(2);
        let mut slot = Slot::__new(&decl);
        Measurement::<f64>::__bind(&mut slot).set(25.123456);
        assert_eq!(slot.take(), Some(Value::Number(25.12)));
    }

    #[test]
    fn the_last_value_wins() {
        let mut slot = slot(ValueKind::Text);
        let mut m = Measurement::<String>::__bind(&mut slot);
        m.set("a");
        m.set(String::from("b"));
        assert_eq!(slot.take(), Some(Value::Text("b".into())));
    }

    #[test]
    fn sweep_columns_must_have_equal_lengths() {
        let mut decl = MeasurementDecl::new("iv", ValueKind::MultiDim);
        decl.dimensions = vec![unit::SECOND.into(), unit::VOLT.into()];
        let mut slot = Slot::__new(&decl);
        let mut m = Measurement::<Sweep<2>>::__bind(&mut slot);
        m.push([0.0, 1.0], 10.0);
        let err = m.extend([&[1.0, 2.0], &[1.0]], &[1.0, 2.0]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "measurement `iv`: dimension 1 has 1 coordinates but there are 2 values"
        );
        m.extend([&[1.0, 2.0], &[3.0, 4.0]], &[5.0, 6.0]).unwrap();
        assert_eq!(m.len(), 3);
        let columns = slot.take().unwrap();
        assert_eq!(
            columns.as_columns().unwrap().dimension(1),
            Some(&[1.0, 3.0, 4.0][..])
        );
    }

    #[test]
    fn an_empty_sweep_is_unset() {
        let mut decl = MeasurementDecl::new("iv", ValueKind::MultiDim);
        decl.dimensions = vec![unit::SECOND.into()];
        assert_eq!(Slot::__new(&decl).take(), None);
    }

    #[test]
    fn text_dimensions_become_units_when_they_name_one() {
        assert_eq!(Dimension::from("V").unit, unit::VOLT);
        let d = Dimension::from("channel");
        assert_eq!(
            (d.unit, d.description.as_str()),
            (unit::NO_DIMENSION, "channel")
        );
    }
}
