//! Readings that follow the load: a DC-DC converter between the power supply and the
//! electronic load, as pure functions of the instruments' settings.

/// The converter's parameters (the description's `model: dc_dc_converter:` section).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConverterSpec {
    /// `device.property` holding the supply's voltage setting (V).
    pub supply_voltage: String,
    /// `device.property` holding the supply's output state (0/1).
    pub supply_output: String,
    /// `device.property` holding the supply's current limit (A).
    pub supply_current_limit: String,
    /// `device.property` holding the load's current setting (A).
    pub load_current: String,
    /// `device.property` holding the load's input state (0/1).
    pub load_input: String,
    /// Output voltage with no load (V).
    pub nominal_output: f64,
    /// How much the output drops per ampere of load (Ω).
    pub output_resistance: f64,
    /// Below this input voltage the converter is off (V).
    pub min_input: f64,
    /// Losses: fixed (W) …
    pub fixed_loss: f64,
    /// … proportional to the output current (V) …
    pub linear_loss: f64,
    /// … and to its square (Ω).
    pub resistive_loss: f64,
}

/// The instruments' settings the converter sees.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ConverterInputs {
    /// Supply voltage setting (V).
    pub supply_voltage: f64,
    /// Supply output on.
    pub supply_on: bool,
    /// Supply current limit (A).
    pub current_limit: f64,
    /// Load current setting (A).
    pub load_current: f64,
    /// Load input on.
    pub load_on: bool,
}

/// What the instruments read.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ConverterState {
    /// Input voltage (V), what the supply measures.
    pub vin: f64,
    /// Input current (A), what the supply measures.
    pub iin: f64,
    /// Output voltage (V), what the DMM and the load measure.
    pub vout: f64,
    /// Output current (A), what the load measures.
    pub iout: f64,
    /// Output power (W).
    pub pout: f64,
    /// Input power (W).
    pub pin: f64,
}

impl ConverterState {
    /// One of the readings by the name used in `{MODEL(name)}`.
    pub fn reading(&self, name: &str) -> Option<f64> {
        Some(match name {
            "vin" => self.vin,
            "iin" => self.iin,
            "vout" => self.vout,
            "iout" => self.iout,
            "pout" => self.pout,
            "pin" => self.pin,
            "efficiency" if self.pin > 0.0 => self.pout / self.pin,
            "efficiency" => 0.0,
            _ => return None,
        })
    }
}

/// The converter's steady state. The output drops with the load current (`output_resistance`);
/// losses are `fixed + linear·I + resistive·I²`, so the efficiency rises with the load, peaks,
/// then falls; the supply delivers `P_out / efficiency`. Below `min_input` (supply off, or held
/// down by its current limit) the converter is off and draws nothing.
pub fn converter(spec: &ConverterSpec, inputs: ConverterInputs) -> ConverterState {
    let vin = if inputs.supply_on {
        inputs.supply_voltage.max(0.0)
    } else {
        0.0
    };
    let off = ConverterState {
        vin,
        ..ConverterState::default()
    };
    if vin < spec.min_input {
        return off;
    }
    let iout = if inputs.load_on {
        inputs.load_current.max(0.0)
    } else {
        0.0
    };
    let vout = (spec.nominal_output - spec.output_resistance * iout).max(0.0);
    let pout = vout * iout;
    let pin = pout + spec.fixed_loss + spec.linear_loss * iout + spec.resistive_loss * iout * iout;
    let iin = pin / vin;
    if iin > inputs.current_limit {
        // The supply folds back to its limit: not enough input voltage, the converter stops.
        return off;
    }
    ConverterState {
        vin,
        iin,
        vout,
        iout,
        pout,
        pin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ConverterSpec {
        ConverterSpec {
            supply_voltage: "psu.voltage".into(),
            supply_output: "psu.output".into(),
            supply_current_limit: "psu.current_limit".into(),
            load_current: "load.current".into(),
            load_input: "load.input".into(),
            nominal_output: 3.3,
            output_resistance: 0.02,
            min_input: 4.5,
            fixed_loss: 0.06,
            linear_loss: 0.03,
            resistive_loss: 0.12,
        }
    }

    fn on(v: f64, limit: f64, load: f64) -> ConverterInputs {
        ConverterInputs {
            supply_voltage: v,
            supply_on: true,
            current_limit: limit,
            load_current: load,
            load_on: true,
        }
    }

    #[test]
    fn readings_follow_the_load() {
        // (inputs, vout, iout, iin)
        let cases = [
            (on(5.0, 2.0, 0.0), 3.3, 0.0, 0.012),
            (on(5.0, 2.0, 1.0), 3.28, 1.0, (3.28 + 0.21) / 5.0),
            (on(12.0, 2.0, 2.0), 3.26, 2.0, (6.52 + 0.6) / 12.0),
            (on(4.0, 2.0, 1.0), 0.0, 0.0, 0.0), // under the input minimum
            (on(5.0, 0.5, 1.0), 0.0, 0.0, 0.0), // supply limit folds it back
            (
                ConverterInputs {
                    supply_on: false,
                    ..on(5.0, 2.0, 1.0)
                },
                0.0,
                0.0,
                0.0,
            ),
            (
                ConverterInputs {
                    load_on: false,
                    ..on(5.0, 2.0, 1.0)
                },
                3.3,
                0.0,
                0.012,
            ),
        ];
        for (inputs, vout, iout, iin) in cases {
            let s = converter(&spec(), inputs);
            let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
            assert!(
                close(s.vout, vout) && close(s.iout, iout) && close(s.iin, iin),
                "{inputs:?} gave {s:?}"
            );
        }
    }

    #[test]
    fn efficiency_rises_then_falls() {
        let eff = |i: f64| {
            converter(&spec(), on(5.0, 5.0, i))
                .reading("efficiency")
                .unwrap_or(0.0)
        };
        assert!(eff(0.05) < eff(0.5) && eff(0.5) < eff(0.7));
        assert!(eff(2.5) < eff(0.7));
        assert!((0.9..0.96).contains(&eff(0.7)), "{}", eff(0.7));
        assert_eq!(converter(&spec(), on(5.0, 5.0, 1.0)).reading("nope"), None);
    }
}
