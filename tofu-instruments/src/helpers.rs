//! Typed instruments: a DMM, a power supply and an electronic load, each a plug of its own
//! type (so a phase asks for `dmm: &mut Dmm, psu: &mut PowerSupply`), speaking the common SCPI
//! commands and returning `uom` quantities that go straight into `Si<…>` measurements.
//!
//! Each derefs to [`Instrument`] for anything else (`dmm.query("…")`).

use tofu_core::Plug;
use tofu_core::si::{ElectricCurrent, ElectricPotential, Power, ampere, volt, watt};

use crate::address::Address;
use crate::error::InstrumentError;
use crate::instrument::Instrument;

macro_rules! typed_instrument {
    ($(#[$doc:meta])* $ty:ident, $name:literal, safe: $safe:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $ty(Instrument);

        impl $ty {
            #[doc = concat!("A ", $name, " at an address (see [`Address`]), named `", $name, "` in the record.")]
            pub fn new(address: &str) -> Result<$ty, InstrumentError> {
                Ok($ty(Instrument::at($name, Address::parse(address)?)))
            }

            /// Wraps an instrument set up your way (name, timeout, calibration…).
            pub fn from_instrument(instrument: Instrument) -> $ty {
                $ty(instrument)
            }

            /// Changes the underlying instrument's settings: `Dmm::new(a)?.with(|i| i.timeout(d))`.
            pub fn with(self, f: impl FnOnce(Instrument) -> Instrument) -> $ty {
                $ty(f(self.0))
            }
        }

        impl std::ops::Deref for $ty {
            type Target = Instrument;
            fn deref(&self) -> &Instrument {
                &self.0
            }
        }

        impl std::ops::DerefMut for $ty {
            fn deref_mut(&mut self) -> &mut Instrument {
                &mut self.0
            }
        }

        impl Plug for $ty {
            fn setup(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
                self.0.setup()
            }

            fn teardown(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
                let safe: fn(&mut Instrument) -> Result<(), InstrumentError> = $safe;
                let made_safe = if self.0.scpi().is_ok() { safe(&mut self.0) } else { Ok(()) };
                self.0.close();
                Ok(made_safe?)
            }

            fn record_metadata(&self) -> Vec<(String, serde_json::Value)> {
                self.0.record_metadata()
            }
        }
    };
}

typed_instrument!(
    /// A digital multimeter: `MEAS:VOLT:DC?`, `MEAS:CURR:DC?`.
    Dmm, "dmm", safe: |_| Ok(())
);

typed_instrument!(
    /// A power supply: `VOLT`, `CURR` (the current limit), `OUTP 1|0`, `MEAS:VOLT?`,
    /// `MEAS:CURR?`. Its output is switched off at teardown.
    PowerSupply, "psu", safe: |i| i.write("OUTP 0")
);

typed_instrument!(
    /// An electronic load in constant-current mode: `CURR`, `INP 1|0`, `MEAS:VOLT?`,
    /// `MEAS:CURR?`, `MEAS:POW?`. Its input is switched off at teardown.
    ElectronicLoad, "load", safe: |i| i.write("INP 0")
);

/// A query whose answer is in volts.
fn volts(i: &mut Instrument, query: &str) -> Result<ElectricPotential, InstrumentError> {
    Ok(ElectricPotential::new::<volt>(i.query_f64(query)?))
}

/// A query whose answer is in amperes.
fn amperes(i: &mut Instrument, query: &str) -> Result<ElectricCurrent, InstrumentError> {
    Ok(ElectricCurrent::new::<ampere>(i.query_f64(query)?))
}

fn on_off(on: bool) -> &'static str {
    if on { "1" } else { "0" }
}

impl Dmm {
    /// Measures a DC voltage.
    pub fn measure_dc_voltage(&mut self) -> Result<ElectricPotential, InstrumentError> {
        volts(self, "MEAS:VOLT:DC?")
    }

    /// Measures a DC current.
    pub fn measure_dc_current(&mut self) -> Result<ElectricCurrent, InstrumentError> {
        amperes(self, "MEAS:CURR:DC?")
    }
}

impl PowerSupply {
    /// Sets the output voltage.
    pub fn set_voltage(&mut self, v: ElectricPotential) -> Result<(), InstrumentError> {
        self.write(&format!("VOLT {}", v.get::<volt>()))
    }

    /// Sets the current limit.
    pub fn set_current_limit(&mut self, i: ElectricCurrent) -> Result<(), InstrumentError> {
        self.write(&format!("CURR {}", i.get::<ampere>()))
    }

    /// Switches the output on or off.
    pub fn output(&mut self, on: bool) -> Result<(), InstrumentError> {
        self.write(&format!("OUTP {}", on_off(on)))
    }

    /// Measures the output voltage.
    pub fn measure_voltage(&mut self) -> Result<ElectricPotential, InstrumentError> {
        volts(self, "MEAS:VOLT?")
    }

    /// Measures the output current.
    pub fn measure_current(&mut self) -> Result<ElectricCurrent, InstrumentError> {
        amperes(self, "MEAS:CURR?")
    }
}

impl ElectronicLoad {
    /// Sets the current drawn (constant-current mode).
    pub fn set_current(&mut self, i: ElectricCurrent) -> Result<(), InstrumentError> {
        self.write(&format!("CURR {}", i.get::<ampere>()))
    }

    /// Switches the input on or off.
    pub fn input(&mut self, on: bool) -> Result<(), InstrumentError> {
        self.write(&format!("INP {}", on_off(on)))
    }

    /// Measures the voltage at its input.
    pub fn measure_voltage(&mut self) -> Result<ElectricPotential, InstrumentError> {
        volts(self, "MEAS:VOLT?")
    }

    /// Measures the current it draws.
    pub fn measure_current(&mut self) -> Result<ElectricCurrent, InstrumentError> {
        amperes(self, "MEAS:CURR?")
    }

    /// Measures the power it draws.
    pub fn measure_power(&mut self) -> Result<Power, InstrumentError> {
        Ok(Power::new::<watt>(self.query_f64("MEAS:POW?")?))
    }
}
