//! Measurements declared in a `uom` unit: values given as quantities are converted to it, and a
//! quantity of the wrong dimension does not compile.
//!
//! Declare the measurement as `Si<unit>`, with the unit from [`uom::si`]; its UNECE unit is filled
//! in for you:
//!
//! ```
//! use tofu_core::si::{Si, ElectricPotential, millivolt, volt};
//! # use tofu_core::__private::{MeasurementDecl, ValueKind, Slot};
//! # let decl = MeasurementDecl::new("rail", ValueKind::Number);
//! # let mut slot = Slot::__new(&decl);
//! # let mut rail = tofu_core::Measurement::<Si<volt>>::__bind(&mut slot);
//! // #[measures(rail: Si<volt> = in_range(3.1, 3.5))]
//! rail.set(ElectricPotential::new::<millivolt>(3300.0)); // recorded as 3.3 V
//! rail.set(3.3); // a plain number is taken to be in volts
//! ```
//!
//! Setting a current into it is a compile error:
//!
//! ```compile_fail
//! use tofu_core::si::{Si, ElectricCurrent, ampere, volt};
//! # use tofu_core::__private::{MeasurementDecl, ValueKind, Slot};
//! # let decl = MeasurementDecl::new("rail", ValueKind::Number);
//! # let mut slot = Slot::__new(&decl);
//! # let mut rail = tofu_core::Measurement::<Si<volt>>::__bind(&mut slot);
//! rail.set(ElectricCurrent::new::<ampere>(1.0));
//! ```

use std::marker::PhantomData;

use crate::measurement::{IntoNumber, Kind, Measurement, MeasurementDecl, ValueKind};
use crate::unit::{self, Unit};

pub use uom::si::capacitance::{farad, microfarad, nanofarad, picofarad};
pub use uom::si::electric_current::{ampere, microampere, milliampere, nanoampere};
pub use uom::si::electric_potential::{kilovolt, microvolt, millivolt, volt};
pub use uom::si::electrical_resistance::{kiloohm, megaohm, ohm};
pub use uom::si::f64::{
    Capacitance, ElectricCurrent, ElectricPotential, ElectricalResistance, Frequency, Length, Mass,
    Power, Pressure, ThermodynamicTemperature, Time,
};
pub use uom::si::frequency::{hertz, kilohertz, megahertz};
pub use uom::si::length::{meter, millimeter};
pub use uom::si::mass::{gram, kilogram};
pub use uom::si::power::{milliwatt, watt};
pub use uom::si::pressure::{kilopascal, pascal};
pub use uom::si::thermodynamic_temperature::{degree_celsius, kelvin};
pub use uom::si::time::{microsecond, millisecond, second};

/// The kind of a numeric measurement declared in the `uom` unit `U` (`Si<volt>`).
#[derive(Debug, Clone, Copy)]
pub struct Si<U>(PhantomData<U>);

/// A `uom` unit that tofu knows the UNECE code of.
pub trait SiUnit {
    /// The unit as OpenHTF writes it.
    const UNIT: Unit;
}

/// A value that can be set into a measurement declared in the unit `U`.
#[diagnostic::on_unimplemented(
    message = "this value can't be set into a measurement declared in `{U}`",
    label = "expected a number or a quantity of the same dimension as `{U}`"
)]
pub trait IntoSi<U> {
    /// The value in `U`.
    fn into_unit(self) -> f64;
}

impl<U: SiUnit, T: IntoNumber> IntoSi<U> for T {
    fn into_unit(self) -> f64 {
        self.into_f64()
    }
}

impl<U: SiUnit> Kind for Si<U> {
    const KIND: ValueKind = ValueKind::Number;

    fn complete(decl: &mut MeasurementDecl) -> Result<(), String> {
        match &decl.units {
            Some(given) if *given != U::UNIT => Err(format!(
                "the unit comes from the kind `Si<{}>` ({}); remove `.units({})`",
                U::UNIT.name(),
                U::UNIT,
                given
            )),
            _ => {
                decl.units = Some(U::UNIT);
                Ok(())
            }
        }
    }
}

/// The unit of an `Si<U>` kind, for the compile-time check `#[measures]` writes when a spec
/// gives `.units(…)` to such a measurement. Not a public API.
#[doc(hidden)]
pub trait __SiKind {
    /// `U::UNIT`.
    const UNIT: Unit;
}

impl<U: SiUnit> __SiKind for Si<U> {
    const UNIT: Unit = U::UNIT;
}

/// Whether two units of the table are the same, at compile time. Not a public API.
#[doc(hidden)]
pub const fn __same_unit(a: &Unit, b: &Unit) -> bool {
    let (a, b) = (a.const_name().as_bytes(), b.const_name().as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

impl<U: SiUnit> Measurement<'_, Si<U>> {
    /// Sets the value: a quantity is converted to `U`, a plain number is taken to be in `U`.
    pub fn set(&mut self, value: impl IntoSi<U>) {
        self.slot().set_number(value.into_unit());
    }
}

/// Rounds to 12 significant digits, dropping the noise of unit conversion
/// (3300 mV is 3.3 V, not 3.3000000000000003 V).
fn round_significant(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let digits = 12 - 1 - v.abs().log10().floor() as i32;
    let scale = 10f64.powi(digits);
    let rounded = (v * scale).round() / scale;
    if rounded.is_finite() { rounded } else { v }
}

macro_rules! si_units {
    ($($quantity:ident: $($unit:ident => $code:path),+;)*) => {$($(
        impl SiUnit for $unit {
            const UNIT: Unit = $code;
        }
        impl IntoSi<$unit> for $quantity {
            fn into_unit(self) -> f64 {
                round_significant(self.get::<$unit>())
            }
        }
    )+)*};
}

si_units! {
    ElectricPotential: volt => unit::VOLT, millivolt => unit::MILLIVOLT, microvolt => unit::MICROVOLT, kilovolt => unit::KILOVOLT;
    ElectricCurrent: ampere => unit::AMPERE, milliampere => unit::MILLIAMPERE, microampere => unit::MICROAMPERE, nanoampere => unit::NANOAMPERE;
    ElectricalResistance: ohm => unit::OHM, kiloohm => unit::KILOOHM, megaohm => unit::MEGAOHM;
    Capacitance: farad => unit::FARAD, microfarad => unit::MICROFARAD, nanofarad => unit::NANOFARAD, picofarad => unit::PICOFARAD;
    Frequency: hertz => unit::HERTZ, kilohertz => unit::KILOHERTZ, megahertz => unit::MEGAHERTZ;
    Time: second => unit::SECOND, millisecond => unit::MILLISECOND, microsecond => unit::MICROSECOND;
    ThermodynamicTemperature: degree_celsius => unit::DEGREE_CELSIUS, kelvin => unit::KELVIN;
    Power: watt => unit::WATT, milliwatt => unit::MILLIWATT;
    Pressure: pascal => unit::PASCAL, kilopascal => unit::KILOPASCAL;
    Length: meter => unit::METRE, millimeter => unit::MILLIMETRE;
    Mass: kilogram => unit::KILOGRAM, gram => unit::GRAM;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measurement::Slot;
    use crate::value::Value;

    #[test]
    fn an_explicit_unit_must_agree_with_the_kind() {
        let d = crate::declare::__declare::<Si<volt>, _>(
            "v",
            crate::declare::in_range(3.1, 3.5).units(unit::MILLIVOLT),
        );
        assert_eq!(
            d.errors,
            ["the unit comes from the kind `Si<volt>` (V); remove `.units(mV)`"]
        );
        let d = crate::declare::__declare::<Si<volt>, _>("v", crate::declare::units(unit::VOLT));
        assert!(d.errors.is_empty());
    }

    #[test]
    fn quantities_are_converted_to_the_declared_unit() {
        let mut decl = MeasurementDecl::new("rail", ValueKind::Number);
        <Si<volt> as Kind>::complete(&mut decl).unwrap();
        assert_eq!(decl.units, Some(unit::VOLT));
        let mut slot = Slot::__new(&decl);
        Measurement::<Si<volt>>::__bind(&mut slot).set(ElectricPotential::new::<millivolt>(3300.0));
        assert_eq!(slot.take(), Some(Value::Number(3.3)));
        Measurement::<Si<millivolt>>::__bind(&mut slot).set(ElectricPotential::new::<volt>(1.5));
        assert_eq!(slot.take(), Some(Value::Number(1500.0)));
        Measurement::<Si<degree_celsius>>::__bind(&mut slot)
            .set(ThermodynamicTemperature::new::<kelvin>(300.0));
        let celsius = slot.take().and_then(|v| v.as_f64()).unwrap();
        assert!((celsius - 26.85).abs() < 1e-9, "{celsius}");
    }
}
