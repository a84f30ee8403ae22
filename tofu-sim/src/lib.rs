//! Simulated SCPI instruments that speak over real sockets, so tests and examples exercise the
//! same code as a bench.
//!
//! A [`Simulator`] is built from a description in pyvisa-sim's YAML format (devices,
//! dialogues, properties with getters, setters and specs, error queues, terminators); existing
//! descriptions work. It serves each device on a TCP address ([`Simulator::serve_tcp`], the
//! "SOCKET" style of port 5025) or on a pseudo-terminal ([`Simulator::serve_pty`], for serial
//! code). Faults are injected on demand ([`Simulator::inject`], [`Simulator::drop_connections`]),
//! from the description (a device's `faults:`) or from the `tofu-sim` command line.
//!
//! The shipped bench ([`Simulator::bench`], `descriptions/bench.yaml`) has a DMM, a power
//! supply and an electronic load around a simulated DC-DC converter: the readings follow the
//! settings (the output drops with the load current, the supply's current is
//! `P_out / (efficiency × V_in)`), so an efficiency sweep gives a plausible curve.
//!
//! ```no_run
//! let sim = tofu_sim::Simulator::bench();
//! let dmm = sim.serve_tcp("dmm", "127.0.0.1:0")?;
//! println!("DMM at {}", dmm.resource()); // TCPIP::127.0.0.1::PORT::SOCKET
//! # Ok::<(), tofu_sim::SimError>(())
//! ```
//!
//! tofu extensions to the format: a property of `type: block` is read and written as an
//! IEEE 488.2 definite-length block (its `default` is a size in bytes, or a string); `{MODEL(x)}`
//! in an answer reads the converter model of the top-level `model: dc_dc_converter:` section
//! (`vin`, `iin`, `vout`, `iout`, `pin`, `pout`, `efficiency`); an error queue's
//! `execution_error` is queued for a setter's value outside its specs; a device's `faults:` list
//! (`{kind: delay, ms: 500, on: "MEAS?", times: 1}`). Every device also answers `*OPC?` with `1`,
//! resets its properties on `*RST` and empties its error queues on `*CLS`.

mod bench;
mod description;
mod device;
mod fault;
mod format;
pub mod model;
mod server;
mod value;

use std::path::Path;
use std::sync::{Arc, Mutex};

pub use fault::{Fault, FaultRule};
#[cfg(unix)]
pub use server::PtyServer;
pub use server::TcpServer;
pub use value::definite_block;

use bench::Bench;
use description::Description;
use server::Shared;

/// The shipped bench description (DMM, power supply, electronic load, DC-DC converter).
pub const BENCH_YAML: &str = include_str!("../descriptions/bench.yaml");

/// What can go wrong building or serving a simulator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The description is not valid YAML or not pyvisa-sim's format.
    #[error("description {source_name}: {message}")]
    Description {
        /// The file (or `<text>`).
        source_name: String,
        /// What is wrong, with the device and property.
        message: String,
    },
    /// No device of that name.
    #[error("no device `{name}` in the description (it has: {known})")]
    UnknownDevice {
        /// The name asked for.
        name: String,
        /// The devices there are.
        known: String,
    },
    /// Binding, reading a file, opening a terminal.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// Simulated instruments: every device of one description, with their state shared by all
/// connections (a setting made on one connection is read on another, and the model links the
/// devices). Cheap to clone: clones share the state.
#[derive(Debug, Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
    resources: Vec<(String, String)>,
}

impl Simulator {
    /// The shipped bench: devices `dmm`, `psu` and `load`.
    pub fn bench() -> Simulator {
        match Simulator::from_yaml(BENCH_YAML) {
            Ok(sim) => sim,
            // The shipped description is checked by the tests; this can't happen.
            Err(e) => unreachable!("the shipped description is broken: {e}"),
        }
    }

    /// A simulator from a description's text.
    pub fn from_yaml(text: &str) -> Result<Simulator, SimError> {
        Simulator::parse(text, "<text>")
    }

    /// A simulator from a description file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Simulator, SimError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
            what: format!("reading {}", path.display()),
            source,
        })?;
        Simulator::parse(&text, &path.display().to_string())
    }

    fn parse(text: &str, source_name: &str) -> Result<Simulator, SimError> {
        let error = |message: String| SimError::Description {
            source_name: source_name.to_owned(),
            message,
        };
        let desc: Description = serde_norway::from_str(text).map_err(|e| error(e.to_string()))?;
        let bench = Bench::new(&desc).map_err(error)?;
        Ok(Simulator {
            shared: Arc::new(Shared {
                bench: Mutex::new(bench),
                connections: Mutex::new(Vec::new()),
                next_connection: std::sync::atomic::AtomicU64::new(0),
            }),
            resources: desc
                .resources
                .into_iter()
                .map(|(k, r)| (k, r.device))
                .collect(),
        })
    }

    /// The devices' names, in order.
    pub fn devices(&self) -> Vec<String> {
        self.shared
            .bench()
            .devices
            .iter()
            .map(|d| d.name.clone())
            .collect()
    }

    /// The description's resources: (address, device).
    pub fn resources(&self) -> &[(String, String)] {
        &self.resources
    }

    fn index(&self, device: &str) -> Result<usize, SimError> {
        let index = self.shared.bench().device(device);
        index.ok_or_else(|| SimError::UnknownDevice {
            name: device.to_owned(),
            known: self.devices().join(", "),
        })
    }

    /// Serves `device` on a TCP address (`"127.0.0.1:0"` picks a free port), one thread per
    /// connection, until the returned server is dropped.
    pub fn serve_tcp(
        &self,
        device: &str,
        addr: impl std::net::ToSocketAddrs + std::fmt::Display,
    ) -> Result<TcpServer, SimError> {
        let index = self.index(device)?;
        let what = format!("listening on {addr} for `{device}`");
        TcpServer::start(Arc::clone(&self.shared), index, device.to_owned(), addr)
            .map_err(|source| SimError::Io { what, source })
    }

    /// Serves `device` on a new pseudo-terminal, until the returned server is dropped.
    #[cfg(unix)]
    pub fn serve_pty(&self, device: &str) -> Result<PtyServer, SimError> {
        let index = self.index(device)?;
        PtyServer::start(Arc::clone(&self.shared), index).map_err(|source| SimError::Io {
            what: format!("opening a pseudo-terminal for `{device}`"),
            source,
        })
    }

    /// Adds a fault to `device` (checked before the description's own, newest first).
    pub fn inject(&self, device: &str, rule: FaultRule) -> Result<(), SimError> {
        let index = self.index(device)?;
        self.shared.bench().devices[index].faults.insert(0, rule);
        Ok(())
    }

    /// Removes every fault of `device`.
    pub fn clear_faults(&self, device: &str) -> Result<(), SimError> {
        let index = self.index(device)?;
        self.shared.bench().devices[index].faults.clear();
        Ok(())
    }

    /// Closes every open TCP connection to `device` now (the server keeps listening); returns
    /// how many were closed.
    pub fn drop_connections(&self, device: &str) -> Result<usize, SimError> {
        let index = self.index(device)?;
        Ok(self.shared.drop_connections(index))
    }

    /// A property's current value as text (a block: its length), for checks.
    pub fn property(&self, device: &str, property: &str) -> Result<Option<String>, SimError> {
        let index = self.index(device)?;
        Ok(self.shared.bench().devices[index].property_text(property))
    }
}
