//! Transports: how bytes reach an instrument. The SCPI layer ([`crate::Scpi`]) frames messages
//! on top of any of them.

use std::io;
use std::time::Duration;

pub mod serial;
pub mod tcp;
#[cfg(feature = "visa")]
pub mod visa;

use crate::address::Address;
use crate::error::InstrumentError;

/// The socket's timeout for a wait of `t`: rounded up to the millisecond, so that the calls of
/// a loop (each with what is left of its own timeout) find it already set and make no system
/// call for it; never zero (zero means "wait for ever" to the socket).
pub(crate) fn socket_timeout(t: Duration) -> Duration {
    let ms = t.as_nanos().div_ceil(1_000_000).max(1);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// A byte link to one instrument.
pub trait Transport: Send + std::fmt::Debug {
    /// Sends all of `data`, within `timeout`.
    fn write_all(&mut self, data: &[u8], timeout: Duration) -> io::Result<()>;

    /// Reads what is there (at least one byte), waiting up to `timeout`: `Ok(0)` when the
    /// instrument closed the link, an error of kind `TimedOut` or `WouldBlock` at the timeout.
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;

    /// Device clear: the instrument's pending output and what is buffered here are thrown away.
    fn clear(&mut self) -> io::Result<()>;

    /// Whether the link is still up, checked without waiting (false when the instrument
    /// closed it). Used to reconnect between uses.
    fn is_open(&mut self) -> bool {
        true
    }
}

/// Opens the transport an address names. `timeout` bounds the connection.
pub fn open(
    address: &Address,
    instrument: &str,
    timeout: Duration,
) -> Result<Box<dyn Transport>, InstrumentError> {
    match address {
        Address::Tcp { host, port } => tcp::TcpTransport::connect(host, *port, timeout)
            .map(|t| Box::new(t) as Box<dyn Transport>)
            .map_err(|source| InstrumentError::Connect {
                instrument: instrument.to_owned(),
                address: address.to_string(),
                source,
            }),
        Address::Serial { path, baud } => serial::SerialTransport::open(path, *baud)
            .map(|t| Box::new(t) as Box<dyn Transport>)
            .map_err(|source| InstrumentError::Connect {
                instrument: instrument.to_owned(),
                address: address.to_string(),
                source,
            }),
        #[cfg(feature = "visa")]
        Address::Visa { resource } => {
            visa::VisaTransport::open(resource, timeout).map(|t| Box::new(t) as Box<dyn Transport>)
        }
        #[cfg(not(feature = "visa"))]
        Address::Visa { resource } => Err(InstrumentError::VisaUnavailable {
            address: resource.clone(),
            why: "VISA resources need tofu-instruments' `visa` feature (and a vendor VISA \
                  library); raw sockets (TCPIP::HOST::PORT::SOCKET) and serial ports don't"
                .to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_timeouts_are_whole_milliseconds_never_zero() {
        let cases = [
            (Duration::ZERO, 1),
            (Duration::from_nanos(1), 1),
            (Duration::from_micros(1_999_001), 2000),
            (Duration::from_millis(2000), 2000),
            (Duration::from_micros(2_000_001), 2001),
        ];
        for (t, ms) in cases {
            assert_eq!(socket_timeout(t), Duration::from_millis(ms), "{t:?}");
        }
    }
}
