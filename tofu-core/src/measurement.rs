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
            Some(digits) => python_round(v, digits),
            None => v,
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

/// Rounds `v` to `digits` decimal places exactly as Python's `round(v, digits)` does, which is
/// what OpenHTF's `with_precision` applies: halfway cases go to the even digit, judged on the
/// float's exact binary value (`round(0.125, 2)` is 0.12, `round(2.675, 2)` is 2.67 since 2.675
/// is stored as 2.67499…); a negative `digits` rounds to tens, hundreds…; NaN, infinities and
/// values too large to have decimals are kept. Where Python raises `OverflowError` (rounding
/// the largest floats up to a power of ten beyond them) the value is kept.
pub(crate) fn python_round(v: f64, digits: i32) -> f64 {
    // Python's bounds (floatobject.c): past them the answer is `v`, or zero.
    const MAX_DIGITS: i32 = 323;
    const MIN_DIGITS: i32 = -308;
    if !v.is_finite() || v == 0.0 || digits > MAX_DIGITS {
        return v;
    }
    if digits < MIN_DIGITS {
        return 0.0 * v;
    }
    let rounded: Option<f64> = match usize::try_from(digits) {
        // Rust writes a float with a given number of decimals from its exact value, halfway
        // cases to even, as Python's dtoa does; reading it back is correctly rounded too.
        Ok(decimals) => format!("{v:.decimals$}").parse().ok(),
        Err(_) => round_to_power_of_ten(v, digits.unsigned_abs() as usize),
    };
    rounded.filter(|r| r.is_finite()).unwrap_or(v)
}

/// `v` rounded to a multiple of 10^`k` (`k` >= 1), halfway cases to even, from its exact value.
fn round_to_power_of_ten(v: f64, k: usize) -> Option<f64> {
    let whole = v.trunc();
    let has_fraction = whole != v;
    // Every digit of the whole part, exactly.
    let digits = format!("{:.0}", whole.abs());
    let digits = format!("{}{digits}", "0".repeat(k.saturating_sub(digits.len())));
    let (kept, rest) = digits.split_at(digits.len() - k);
    let half = format!("5{}", "0".repeat(k - 1));
    let kept = if kept.is_empty() { "0" } else { kept };
    let odd = kept.bytes().last().is_some_and(|d| (d - b'0') % 2 == 1);
    // Same length: comparing the digits as text compares the numbers.
    let up = match rest.cmp(half.as_str()) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Equal => has_fraction || odd,
        std::cmp::Ordering::Less => false,
    };
    let kept = if up { increment(kept) } else { kept.to_owned() };
    let sign = if v.is_sign_negative() { "-" } else { "" };
    format!("{sign}{kept}e{k}").parse().ok()
}

/// A string of decimal digits plus one.
fn increment(digits: &str) -> String {
    let mut out: Vec<u8> = digits.bytes().collect();
    for d in out.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return String::from_utf8_lossy(&out).into_owned();
        }
    }
    format!("1{}", String::from_utf8_lossy(&out))
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

    /// Each answer is Python 3.11's `round(x, n)`.
    #[test]
    fn precision_rounds_as_python_does() {
        let cases: [(f64, i32, f64); 20] = [
            (0.125, 2, 0.12),
            (2.675, 2, 2.67),
            (7.005, 2, 7.0),
            (0.375, 2, 0.38),
            (1e307, 2, 1e307),
            (-1e300, 3, -1e300),
            (25.0, -1, 20.0),
            (35.0, -1, 40.0),
            (25.3, -1, 30.0),
            (-4.0, -1, -0.0),
            (-0.4, 0, -0.0),
            (0.5, 0, 0.0),
            (1.5, 0, 2.0),
            (123456.0, -2, 123500.0),
            (150.0, -2, 200.0),
            (250.0, -2, 200.0),
            (5e-324, 400, 5e-324),
            (1.797_693_134_862_315_7e308, -300, 1.797_693_13e308),
            (7.0, -5, 0.0),
            (12.5, -400, 0.0),
        ];
        for (x, n, want) in cases {
            let got = python_round(x, n);
            assert!(
                got == want && got.is_sign_negative() == want.is_sign_negative(),
                "round({x:?}, {n}) = {got:?}, Python says {want:?}"
            );
        }
        assert!(python_round(f64::NAN, 2).is_nan());
        assert_eq!(python_round(f64::INFINITY, 2), f64::INFINITY);
    }

    /// OpenHTF stores 0.12 and fails `in_range(0.13, 1.0)`; a value stored 0.13 would pass.
    #[test]
    fn a_value_rounded_to_its_precision_is_stored_as_openhtf_stores_it() {
        let mut decl = MeasurementDecl::new("v", ValueKind::Number);
        decl.precision = Some(2);
        let mut slot = Slot::__new(&decl);
        Measurement::<f64>::__bind(&mut slot).set(0.125);
        assert_eq!(slot.take(), Some(Value::Number(0.12)));
        Measurement::<f64>::__bind(&mut slot).set(1e307);
        assert_eq!(slot.take(), Some(Value::Number(1e307)));
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
