//! The words of `#[measures(...)]`: validators, units, dimensions and docs.
//!
//! Each measurement is declared as `name: Kind = spec`, where `spec` is a Rust expression built
//! from the functions of this module (they are in scope inside the attribute; nothing to import):
//!
//! ```
//! use tofu_core::prelude::*;
//!
//! #[phase]
//! #[measures(
//!     input_voltage: f64 = in_range(4.5, 5.5).units(VOLT).doc("Supply voltage at J1"),
//!     input_current: f64 = in_range(0.1, 0.5).marginal(0.15, 0.45).units(AMPERE),
//!     firmware_version: String = equals("1.2.3"),
//!     self_test_ok: bool = equals(true),
//!     serial: String = matches_regex(r"^SN\d{6}$"),
//!     temperature: f64 = within_percent(25.0, 10).units(DEGREE_CELSIUS).precision(2),
//!     iv_sweep: Sweep<3> = dimensions([SECOND, VOLT, AMPERE]).units(OHM).each(in_range(90, 110)),
//!     readings: f64,
//! )]
//! fn power_on(m: &mut power_on::Measurements) {
//!     m.input_voltage.set(5.02);
//!     m.iv_sweep.push([0.0, 0.05, 0.0005], 100.0);
//! }
//! # fn main() {}
//! ```
//!
//! A validator of the wrong kind for the declared type (`equals("1.2.3")` on an `f64`) is a
//! compile error, and so is an unknown one (rustc suggests the closest name).

use std::marker::PhantomData;

use crate::limit::Limit;
use crate::measurement::{Dimension, Json, Kind, MeasurementDecl, Sweep};
use crate::validator::{Custom, Regex, Validator};
use crate::value::Value;

pub use crate::unit::*;

/// Class markers: what kind of measurement a [`Spec`] can describe.
pub mod class {
    /// Any kind (docs, allow_fail only).
    #[derive(Debug)]
    pub enum Any {}
    /// Numbers.
    #[derive(Debug)]
    pub enum Number {}
    /// Strings.
    #[derive(Debug)]
    pub enum Text {}
    /// Booleans.
    #[derive(Debug)]
    pub enum Bool {}
    /// Structured values.
    #[derive(Debug)]
    pub enum Json {}
    /// Multi-dimensional values with `N` coordinates.
    #[derive(Debug)]
    pub enum MultiDim<const N: usize> {}
}

/// The declaration of a measurement under construction. `C` says which kinds it fits.
#[derive(Debug)]
#[must_use]
pub struct Spec<C> {
    validators: Vec<Validator>,
    units: Option<Unit>,
    dimensions: Vec<Dimension>,
    docstring: Option<String>,
    allow_fail: bool,
    precision: Option<i32>,
    errors: Vec<String>,
    class: PhantomData<C>,
}

impl<C> Default for Spec<C> {
    fn default() -> Self {
        Spec {
            validators: Vec::new(),
            units: None,
            dimensions: Vec::new(),
            docstring: None,
            allow_fail: false,
            precision: None,
            errors: Vec::new(),
            class: PhantomData,
        }
    }
}

impl<C> Spec<C> {
    fn with_validator(validator: Validator) -> Self {
        let mut spec = Spec::default();
        spec.push(validator);
        spec
    }

    fn push(&mut self, validator: Validator) {
        self.validators.push(validator);
    }

    fn recast<D>(self) -> Spec<D> {
        Spec {
            validators: self.validators,
            units: self.units,
            dimensions: self.dimensions,
            docstring: self.docstring,
            allow_fail: self.allow_fail,
            precision: self.precision,
            errors: self.errors,
            class: PhantomData,
        }
    }

    /// Describes the measurement (OpenHTF's docstring).
    pub fn doc(mut self, text: impl Into<String>) -> Self {
        self.docstring = Some(text.into());
        self
    }

    /// A failure of this measurement is recorded but does not fail the phase.
    pub fn allow_fail(mut self) -> Self {
        self.allow_fail = true;
        self
    }

    /// Adds the validators (and docs, units) of `other`; all validators must pass.
    pub fn and<D>(mut self, other: Spec<D>) -> Self
    where
        C: Combine<D>,
    {
        self.errors.extend(other.errors);
        self.validators.extend(other.validators);
        self.units = self.units.or(other.units);
        self.docstring = self.docstring.or(other.docstring);
        self.allow_fail |= other.allow_fail;
        self.precision = self.precision.or(other.precision);
        self
    }
}

/// Which specs [`Spec::and`] can join.
pub trait Combine<D> {}
impl<C> Combine<C> for C {}
impl Combine<class::Any> for class::Number {}
impl Combine<class::Any> for class::Text {}
impl Combine<class::Any> for class::Bool {}

impl Spec<class::Any> {
    /// Sets the unit of a number.
    pub fn units(self, unit: Unit) -> Spec<class::Number> {
        units(unit).and(self.recast::<class::Number>())
    }
}

impl Spec<class::Number> {
    /// Sets the unit (a constant of [`crate::unit`], or [`Unit::custom`]).
    pub fn units(mut self, unit: Unit) -> Self {
        self.units = Some(unit);
        self
    }

    /// Adds marginal bounds to the last `in_range`: values between a bound and its marginal
    /// bound pass but are marked marginal.
    pub fn marginal(
        mut self,
        marginal_minimum: impl Into<Limit>,
        marginal_maximum: impl Into<Limit>,
    ) -> Self {
        self.set_marginal(Some(marginal_minimum.into()), Some(marginal_maximum.into()));
        self
    }

    /// Adds a marginal lower bound to the last `in_range`.
    pub fn marginal_minimum(mut self, marginal_minimum: impl Into<Limit>) -> Self {
        self.set_marginal(Some(marginal_minimum.into()), None);
        self
    }

    /// Adds a marginal upper bound to the last `in_range`.
    pub fn marginal_maximum(mut self, marginal_maximum: impl Into<Limit>) -> Self {
        self.set_marginal(None, Some(marginal_maximum.into()));
        self
    }

    fn set_marginal(&mut self, lo: Option<Limit>, hi: Option<Limit>) {
        let last = self.validators.iter_mut().rev().find_map(|v| match v {
            Validator::InRange {
                marginal_minimum,
                marginal_maximum,
                ..
            } => Some((marginal_minimum, marginal_maximum)),
            _ => None,
        });
        match last {
            Some((mmin, mmax)) => {
                if lo.is_some() {
                    *mmin = lo;
                }
                if hi.is_some() {
                    *mmax = hi;
                }
            }
            None => self
                .errors
                .push("marginal bounds need an in_range validator before them".into()),
        }
    }

    /// Adds marginal deviation to the last `within_percent`.
    pub fn marginal_percent(mut self, percent: impl Into<Limit>) -> Self {
        let last = self.validators.iter_mut().rev().find_map(|v| match v {
            Validator::WithinPercent {
                marginal_percent, ..
            } => Some(marginal_percent),
            _ => None,
        });
        match last {
            Some(m) => *m = Some(percent.into()),
            None => self
                .errors
                .push("marginal_percent needs a within_percent validator before it".into()),
        }
        self
    }

    /// Rounds values to `digits` decimal places when they are set (OpenHTF's `with_precision`).
    pub fn precision(mut self, digits: i32) -> Self {
        self.precision = Some(digits);
        self
    }
}

impl<const N: usize> Spec<class::MultiDim<N>> {
    /// Sets the unit of the values.
    pub fn units(mut self, unit: Unit) -> Self {
        self.units = Some(unit);
        self
    }

    /// Every value (the last column) must pass `validator` (OpenHTF's `DimensionPivot`).
    pub fn each(mut self, validator: Spec<class::Number>) -> Self {
        self.errors.extend(validator.errors);
        self.validators.extend(
            validator
                .validators
                .into_iter()
                .map(|v| Validator::AllValues(Box::new(v))),
        );
        self
    }
}

/// Inclusive bounds on a number: `minimum <= x <= maximum`.
pub fn in_range(minimum: impl Into<Limit>, maximum: impl Into<Limit>) -> Spec<class::Number> {
    Spec::with_validator(Validator::InRange {
        minimum: Some(minimum.into()),
        maximum: Some(maximum.into()),
        marginal_minimum: None,
        marginal_maximum: None,
    })
}

/// A lower bound only: `minimum <= x`.
pub fn at_least(minimum: impl Into<Limit>) -> Spec<class::Number> {
    Spec::with_validator(Validator::InRange {
        minimum: Some(minimum.into()),
        maximum: None,
        marginal_minimum: None,
        marginal_maximum: None,
    })
}

/// An upper bound only: `x <= maximum`.
pub fn at_most(maximum: impl Into<Limit>) -> Spec<class::Number> {
    Spec::with_validator(Validator::InRange {
        minimum: None,
        maximum: Some(maximum.into()),
        marginal_minimum: None,
        marginal_maximum: None,
    })
}

/// The number is within `percent` % of `expected`, inclusive.
pub fn within_percent(
    expected: impl Into<Limit>,
    percent: impl Into<Limit>,
) -> Spec<class::Number> {
    Spec::with_validator(Validator::WithinPercent {
        expected: expected.into(),
        percent: percent.into(),
        marginal_percent: None,
    })
}

/// The string matches `pattern` from its start (Python's `re.match`).
pub fn matches_regex(pattern: &str) -> Spec<class::Text> {
    match Regex::new(pattern) {
        Ok(re) => Spec::with_validator(Validator::MatchesRegex(re)),
        Err(e) => {
            let mut spec = Spec::default();
            spec.errors
                .push(format!("regex /{pattern}/ does not compile: {e}"));
            spec
        }
    }
}

/// The value equals `expected`: a number, a string or a boolean.
pub fn equals<T: EqualsArg>(expected: T) -> Spec<T::Class> {
    Spec::with_validator(expected.validator())
}

/// The structured value equals `expected`.
pub fn equals_json(expected: impl Into<serde_json::Value>) -> Spec<class::Json> {
    Spec::with_validator(Validator::Equals(Value::Json(expected.into())))
}

/// A user-defined validator: `name` is written into the record, `check` decides.
///
/// ```
/// # use tofu_core::declare::*;
/// let even = custom("is even", |x: &f64| x % 2.0 == 0.0);
/// # let _ = even;
/// ```
pub fn custom<T: CustomArg>(
    name: &str,
    check: impl Fn(&T) -> bool + Send + Sync + 'static,
) -> Spec<T::Class> {
    Spec::with_validator(Validator::Custom(Custom::new(name, move |value| {
        T::extract(value).is_some_and(&check)
    })))
}

/// The unit of a number, without validators.
pub fn units(unit: Unit) -> Spec<class::Number> {
    Spec {
        units: Some(unit),
        ..Spec::default()
    }
}

/// A description only.
pub fn doc(text: impl Into<String>) -> Spec<class::Any> {
    Spec::default().doc(text)
}

/// The coordinates of a multi-dimensional measurement: units ([`SECOND`], [`VOLT`]…) or
/// free-text descriptions.
pub fn dimensions<const N: usize, D: Into<Dimension>>(
    dimensions: [D; N],
) -> Spec<class::MultiDim<N>> {
    Spec {
        dimensions: dimensions.into_iter().map(Into::into).collect(),
        ..Spec::default()
    }
}

/// A value that [`equals`] accepts.
#[diagnostic::on_unimplemented(
    message = "`equals` takes a number, a string or a boolean, not `{Self}`"
)]
pub trait EqualsArg {
    /// The class of measurement it applies to.
    type Class;
    /// The validator.
    fn validator(self) -> Validator;
}

impl EqualsArg for &str {
    type Class = class::Text;
    fn validator(self) -> Validator {
        Validator::EqualsText(self.to_owned())
    }
}
impl EqualsArg for String {
    type Class = class::Text;
    fn validator(self) -> Validator {
        Validator::EqualsText(self)
    }
}
impl EqualsArg for bool {
    type Class = class::Bool;
    fn validator(self) -> Validator {
        Validator::Equals(Value::Bool(self))
    }
}
macro_rules! equals_number {
    ($($t:ty),*) => {$(
        impl EqualsArg for $t {
            type Class = class::Number;
            fn validator(self) -> Validator {
                let limit = Limit::from(self);
                Validator::InRange { minimum: Some(limit), maximum: Some(limit), marginal_minimum: None, marginal_maximum: None }
            }
        }
    )*};
}
equals_number!(f64, f32, i8, i16, i32, i64, u8, u16, u32, u64, isize, usize);

/// A value type a [`custom`] validator can check.
pub trait CustomArg: Sized {
    /// The class of measurement it applies to.
    type Class;
    /// The value, if it is of this type.
    fn extract(value: &Value) -> Option<&Self>;
}
impl CustomArg for f64 {
    type Class = class::Number;
    fn extract(value: &Value) -> Option<&Self> {
        match value {
            Value::Number(v) => Some(v),
            _ => None,
        }
    }
}
impl CustomArg for String {
    type Class = class::Text;
    fn extract(value: &Value) -> Option<&Self> {
        match value {
            Value::Text(v) => Some(v),
            _ => None,
        }
    }
}
impl CustomArg for bool {
    type Class = class::Bool;
    fn extract(value: &Value) -> Option<&Self> {
        match value {
            Value::Bool(v) => Some(v),
            _ => None,
        }
    }
}
impl CustomArg for serde_json::Value {
    type Class = class::Json;
    fn extract(value: &Value) -> Option<&Self> {
        match value {
            Value::Json(v) => Some(v),
            _ => None,
        }
    }
}

/// Which specs a measurement kind accepts.
#[diagnostic::on_unimplemented(
    message = "this validator does not fit a `{Self}` measurement",
    label = "declared as `{Self}` here",
    note = "numbers take in_range/at_least/at_most/within_percent/equals(number), strings take equals(\"…\")/matches_regex, booleans take equals(true|false), and `Sweep<N>` needs dimensions([...]) with N entries"
)]
pub trait Accepts<C> {}

impl Accepts<class::Any> for f64 {}
impl Accepts<class::Number> for f64 {}
impl<U: crate::si::SiUnit> Accepts<class::Any> for crate::si::Si<U> {}
impl<U: crate::si::SiUnit> Accepts<class::Number> for crate::si::Si<U> {}
impl Accepts<class::Any> for String {}
impl Accepts<class::Text> for String {}
impl Accepts<class::Any> for bool {}
impl Accepts<class::Bool> for bool {}
impl Accepts<class::Any> for Json {}
impl Accepts<class::Json> for Json {}
impl<const N: usize> Accepts<class::MultiDim<N>> for Sweep<N> {}

/// A declaration with the errors found in it (limits out of order, a bad regex…).
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct Declared {
    pub decl: MeasurementDecl,
    pub errors: Vec<String>,
}

/// Turns a spec into the declaration of the measurement `name` of kind `K`.
#[doc(hidden)]
pub fn __declare<K: Kind + Accepts<C>, C>(name: &str, spec: Spec<C>) -> Declared {
    let mut decl = MeasurementDecl::new(name, K::KIND);
    decl.validators = spec.validators;
    decl.units = spec.units;
    decl.dimensions = spec.dimensions;
    decl.docstring = spec.docstring;
    decl.allow_fail = spec.allow_fail;
    decl.precision = spec.precision;
    // The limits are checked once the validators are complete (`.marginal(..)` changes them).
    let mut errors = spec.errors;
    errors.extend(
        decl.validators
            .iter()
            .filter_map(|v| v.check_limits().err()),
    );
    if let Err(e) = K::complete(&mut decl) {
        errors.push(e);
    }
    Declared { decl, errors }
}

/// A spec with nothing in it, for `name: Kind` declarations without `= …`.
#[doc(hidden)]
pub fn __unspecified() -> Spec<class::Any> {
    Spec::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::{OHM, SECOND, VOLT};

    #[test]
    fn specs_carry_validators_units_and_docs() {
        let d = __declare::<f64, _>("v", in_range(4.5, 5.5).units(VOLT).doc("rail").allow_fail());
        assert!(d.errors.is_empty());
        assert_eq!(d.decl.validators.len(), 1);
        assert_eq!(d.decl.validators[0].to_string(), "4.5 <= x <= 5.5");
        assert_eq!(d.decl.units, Some(VOLT));
        assert_eq!(d.decl.docstring.as_deref(), Some("rail"));
        assert!(d.decl.allow_fail);
    }

    #[test]
    fn limits_out_of_order_are_declaration_errors() {
        let d = __declare::<f64, _>("v", in_range(5.5, 4.5));
        assert_eq!(
            d.errors,
            vec!["minimum 5.5 is greater than maximum 4.5".to_owned()]
        );
        let d = __declare::<f64, _>("v", in_range(0.1, 0.5).marginal(0.45, 0.15));
        assert_eq!(
            d.errors,
            vec!["marginal minimum 0.45 is greater than marginal maximum 0.15".to_owned()]
        );
        let d = __declare::<String, _>("s", matches_regex("(unclosed"));
        assert!(
            d.errors[0].starts_with("regex /(unclosed/ does not compile"),
            "{:?}",
            d.errors
        );
    }

    /// A marginal band with nothing to apply it to is an error, not silently dropped.
    #[test]
    fn marginal_bands_without_their_validator_are_declaration_errors() {
        let d = __declare::<f64, _>("v", at_most(5).marginal_percent(1));
        assert_eq!(
            d.errors,
            ["marginal_percent needs a within_percent validator before it"]
        );
        let d = __declare::<f64, _>("v", within_percent(10, 5).marginal(9, 11));
        assert_eq!(
            d.errors,
            ["marginal bounds need an in_range validator before them"]
        );
        // A bad band and a bad limit are both reported.
        let d = __declare::<f64, _>(
            "v",
            in_range(5, 1).and(within_percent(10, 5).marginal(9, 11)),
        );
        assert_eq!(d.errors.len(), 2, "{:?}", d.errors);
    }

    #[test]
    fn sweeps_keep_dimensions_and_validate_each_value() {
        let d = __declare::<Sweep<2>, _>(
            "iv",
            dimensions([SECOND, VOLT])
                .units(OHM)
                .each(in_range(90, 110)),
        );
        assert_eq!(d.decl.dimensions.len(), 2);
        assert_eq!(
            d.decl.validators[0].to_string(),
            "All values pass: 90 <= x <= 110"
        );
    }

    #[test]
    fn custom_validators_check_values_of_their_type() {
        let d = __declare::<f64, _>("even", custom("is even", |x: &f64| x % 2.0 == 0.0));
        let v = &d.decl.validators[0];
        assert!(v.check(&Value::Number(4.0)).pass);
        assert!(!v.check(&Value::Number(3.0)).pass);
        assert!(!v.check(&Value::Text("4".into())).pass);
    }

    #[test]
    fn and_joins_validators() {
        let d = __declare::<f64, _>("v", at_least(0).and(at_most(10)).and(doc("both")));
        let shown: Vec<String> = d.decl.validators.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["0 <= x", "x <= 10"]);
        assert_eq!(d.decl.docstring.as_deref(), Some("both"));
    }
}
