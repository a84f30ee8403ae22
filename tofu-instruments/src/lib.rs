//! Instrument I/O for tofu: SCPI over TCP sockets, serial ports and VISA, instruments as plugs
//! whose identity goes into every record, and typed helpers for the common bench instruments.
//!
//! - [`Address`]: where an instrument is: `TCPIP::192.168.1.20::5025::SOCKET`,
//!   `tcp://host:5025`, `serial:///dev/ttyUSB0?baud=115200`, `ASRL/dev/ttyUSB0::INSTR`, or a
//!   VISA resource (feature `visa`, the vendor's library loaded at run time).
//! - [`Transport`]: bytes to and from an instrument ([`transport::tcp`],
//!   [`transport::serial`], `transport::visa`).
//! - [`Scpi`]: messages, a timeout per call, definite-length blocks both ways, `*IDN?`,
//!   `*OPC?`, `*RST`, `*CLS`, device clear, and the error queue read after each command, so an
//!   instrument error is an `Err` naming the command and the instrument's message (a phase
//!   returning it is ERROR with that message). Every exchange is logged at DEBUG, which tofu
//!   records in the run's log.
//! - [`Instrument`]: a plug: connected at setup (`*CLS`, `*IDN?`, calibration due date
//!   checked), closed at teardown, reconnected once when its connection dropped between uses;
//!   its identity is listed in the record's `metadata.instruments`.
//! - [`Dmm`], [`PowerSupply`], [`ElectronicLoad`]: typed plugs returning `uom` quantities.
//!
//! ```no_run
//! use tofu_core::prelude::*;
//! use tofu_instruments::{Dmm, PowerSupply};
//! use tofu_core::si::{ElectricPotential, volt};
//!
//! #[phase]
//! #[measures(rail: Si<volt> = in_range(3.2, 3.4))]
//! fn rail(m: &mut rail::Measurements, psu: &mut PowerSupply, dmm: &mut Dmm)
//!     -> Result<(), tofu_instruments::InstrumentError> {
//!     psu.set_voltage(ElectricPotential::new::<volt>(5.0))?;
//!     psu.output(true)?;
//!     m.rail.set(dmm.measure_dc_voltage()?);
//!     Ok(())
//! }
//!
//! fn main() -> Result<std::process::ExitCode, tofu_instruments::InstrumentError> {
//!     Ok(Test::new("FVT1")
//!         .plug(PowerSupply::new("TCPIP::192.168.1.21::5025::SOCKET")?)
//!         .plug(Dmm::new("TCPIP::192.168.1.20::5025::SOCKET")?)
//!         .phases([rail])
//!         .execute(|| "SN1")
//!         .exit_code())
//! }
//! ```

pub mod address;
mod error;
mod helpers;
mod identity;
mod instrument;
pub mod scpi;
pub mod transport;

pub use address::Address;
pub use error::InstrumentError;
pub use helpers::{Dmm, ElectronicLoad, PowerSupply};
pub use identity::{CalibrationPolicy, Identity, calibration_expired};
pub use instrument::{INSTRUMENTS_KEY, Instrument};
pub use scpi::{Scpi, ScpiError, ScpiOptions};
pub use transport::Transport;
