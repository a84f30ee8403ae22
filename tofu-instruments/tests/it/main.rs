//! tofu-instruments against the simulator, over real TCP on 127.0.0.1 and a real
//! pseudo-terminal.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod plugs;
mod scpi_tcp;
#[cfg(unix)]
mod serial;
mod visa;

use std::time::Duration;

use tofu_instruments::{Address, Scpi, ScpiOptions};
use tofu_sim::{Simulator, TcpServer};

/// The shipped bench with one device served on a free loopback port.
pub(crate) fn serve(device: &str) -> (Simulator, TcpServer) {
    let sim = Simulator::bench();
    let server = sim.serve_tcp(device, "127.0.0.1:0").unwrap();
    (sim, server)
}

/// A SCPI session to a server, with a short timeout.
pub(crate) fn connect(server: &TcpServer) -> Scpi {
    let address = Address::parse(&server.resource()).unwrap();
    let options = ScpiOptions {
        timeout: Duration::from_millis(500),
        ..ScpiOptions::default()
    };
    Scpi::connect(server.device(), &address, options).unwrap()
}
