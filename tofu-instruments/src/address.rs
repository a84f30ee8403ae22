//! Instrument addresses: VISA resource strings and URLs.
//!
//! | address | transport |
//! |---|---|
//! | `TCPIP::192.168.1.20::5025::SOCKET` (also `TCPIP0::…`) | raw SCPI over TCP |
//! | `tcp://192.168.1.20:5025` | raw SCPI over TCP |
//! | `serial:///dev/ttyUSB0?baud=115200` (`serial://COM3?baud=9600`) | serial port |
//! | `ASRL/dev/ttyUSB0::INSTR` (`ASRL3::INSTR` is `COM3`) | serial port, 9600 baud |
//! | `visa://USB0::0x2A8D::0x0101::MY123::INSTR`, or any other VISA resource (`USB…`, `GPIB…`, `TCPIP::host::INSTR`) | the vendor's VISA library (feature `visa`) |

use crate::error::InstrumentError;

/// Where an instrument is and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Address {
    /// Raw SCPI over TCP ("SOCKET", usually port 5025).
    Tcp {
        /// Host name or IP address.
        host: String,
        /// Port.
        port: u16,
    },
    /// A serial port.
    Serial {
        /// `/dev/ttyUSB0`, `COM3`…
        path: String,
        /// Bits per second.
        baud: u32,
    },
    /// A VISA resource, opened through the vendor's library.
    Visa {
        /// The resource string.
        resource: String,
    },
}

impl Address {
    /// Reads an address; the error names it and says what is wrong.
    pub fn parse(text: &str) -> Result<Address, InstrumentError> {
        let bad = |why: &str| InstrumentError::Address {
            address: text.to_owned(),
            why: why.to_owned(),
        };
        let t = text.trim();
        if t.is_empty() {
            return Err(bad("it is empty"));
        }
        if let Some(rest) = t.strip_prefix("tcp://") {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| bad("write tcp://HOST:PORT"))?;
            return tcp(
                host.trim_start_matches('[').trim_end_matches(']'),
                port,
                &bad,
            );
        }
        if let Some(rest) = t.strip_prefix("serial://") {
            let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
            if path.is_empty() {
                return Err(bad("no port: write serial:///dev/ttyUSB0?baud=115200"));
            }
            let mut baud = 9600;
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                match pair.split_once('=') {
                    Some(("baud", b)) => {
                        baud = b
                            .parse()
                            .ok()
                            .filter(|&b: &u32| b > 0)
                            .ok_or_else(|| bad(&format!("baud `{b}` is not a rate")))?;
                    }
                    _ => return Err(bad(&format!("unknown option `{pair}` (known: baud)"))),
                }
            }
            return Ok(Address::Serial {
                path: path.to_owned(),
                baud,
            });
        }
        if let Some(resource) = t.strip_prefix("visa://") {
            if resource.is_empty() {
                return Err(bad("no VISA resource after visa://"));
            }
            return Ok(Address::Visa {
                resource: resource.to_owned(),
            });
        }
        if t.contains("://") {
            return Err(bad("unknown scheme (known: tcp://, serial://, visa://)"));
        }
        let parts: Vec<&str> = t.split("::").collect();
        let upper = parts[0].to_ascii_uppercase();
        if upper.starts_with("TCPIP") && parts.len() == 4 && parts[3].eq_ignore_ascii_case("SOCKET")
        {
            return tcp(parts[1], parts[2], &bad);
        }
        if upper.starts_with("ASRL") {
            if parts.len() != 2 || !parts[1].eq_ignore_ascii_case("INSTR") {
                return Err(bad("write ASRL<port>::INSTR"));
            }
            let port = &parts[0][4..];
            let path = if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
                format!("COM{port}")
            } else if port.is_empty() {
                return Err(bad("no port after ASRL"));
            } else {
                port.to_owned()
            };
            return Ok(Address::Serial { path, baud: 9600 });
        }
        if ["TCPIP", "USB", "GPIB", "VXI", "PXI"]
            .iter()
            .any(|p| upper.starts_with(p))
            && parts.len() >= 2
        {
            return Ok(Address::Visa {
                resource: t.to_owned(),
            });
        }
        Err(bad(
            "not an address: use TCPIP::HOST::PORT::SOCKET, tcp://HOST:PORT, \
             serial:///dev/ttyUSB0?baud=115200, ASRL/dev/ttyUSB0::INSTR or a VISA resource",
        ))
    }
}

fn tcp(
    host: &str,
    port: &str,
    bad: &dyn Fn(&str) -> InstrumentError,
) -> Result<Address, InstrumentError> {
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| bad(&format!("port `{port}` is not a TCP port (1-65535)")))?;
    Ok(Address::Tcp {
        host: host.to_owned(),
        port,
    })
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp { host, port } if host.contains(':') => {
                write!(f, "tcp://[{host}]:{port}")
            }
            Address::Tcp { host, port } => write!(f, "TCPIP::{host}::{port}::SOCKET"),
            Address::Serial { path, baud } => write!(f, "serial://{path}?baud={baud}"),
            Address::Visa { resource } => write!(f, "{resource}"),
        }
    }
}

impl std::str::FromStr for Address {
    type Err = InstrumentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Address {
        Address::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn reads_every_form() {
        let serial = |path: &str, baud| Address::Serial {
            path: path.into(),
            baud,
        };
        let visa = |r: &str| Address::Visa { resource: r.into() };
        let cases = [
            (
                "TCPIP::192.168.1.20::5025::SOCKET",
                tcp("192.168.1.20", 5025),
            ),
            (
                "TCPIP0::bench-dmm.local::5025::socket",
                tcp("bench-dmm.local", 5025),
            ),
            ("tcp://127.0.0.1:5025", tcp("127.0.0.1", 5025)),
            ("tcp://[::1]:5025", tcp("::1", 5025)),
            (
                "serial:///dev/ttyUSB0?baud=115200",
                serial("/dev/ttyUSB0", 115_200),
            ),
            ("serial://COM3", serial("COM3", 9600)),
            ("ASRL/dev/ttyACM0::INSTR", serial("/dev/ttyACM0", 9600)),
            ("ASRL3::INSTR", serial("COM3", 9600)),
            (
                "USB0::0x2A8D::0x0101::MY123::INSTR",
                visa("USB0::0x2A8D::0x0101::MY123::INSTR"),
            ),
            ("TCPIP::10.0.0.5::INSTR", visa("TCPIP::10.0.0.5::INSTR")),
            (
                "visa://TCPIP::10.0.0.5::5025::SOCKET",
                visa("TCPIP::10.0.0.5::5025::SOCKET"),
            ),
        ];
        for (text, want) in cases {
            match Address::parse(text) {
                Ok(got) => assert_eq!(got, want, "{text}"),
                Err(e) => panic!("{text}: {e}"),
            }
        }
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        let cases = [
            ("", "empty"),
            ("tcp://host", "tcp://HOST:PORT"),
            ("tcp://host:0", "port `0`"),
            ("TCPIP::host::http::SOCKET", "port `http`"),
            ("serial://?baud=9600", "no port"),
            ("serial:///dev/ttyS0?baud=fast", "baud `fast`"),
            (
                "serial:///dev/ttyS0?parity=even",
                "unknown option `parity=even`",
            ),
            ("http://x", "unknown scheme"),
            ("dmm", "not an address"),
            ("ASRL::INSTR", "no port"),
        ];
        for (text, want) in cases {
            match Address::parse(text) {
                Ok(a) => panic!("{text:?} was read as {a:?}"),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.contains(want) && msg.contains(text), "{text:?}: {msg}");
                }
            }
        }
    }

    #[test]
    fn displays_as_a_resource_it_reads_back() {
        for a in [tcp("10.0.0.1", 5025), tcp("::1", 5025)] {
            assert_eq!(Address::parse(&a.to_string()).ok(), Some(a.clone()));
        }
    }
}
