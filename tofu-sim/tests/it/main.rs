//! The simulator from the outside: plain sockets sending raw bytes, the `tofu-sim` binary as a
//! real process, descriptions in pyvisa-sim's format.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary;
mod descriptions;
mod raw_socket;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A plain TCP client: sends bytes, reads until `\n`.
pub(crate) struct Raw(TcpStream);

impl Raw {
    pub(crate) fn connect(addr: impl std::net::ToSocketAddrs) -> Raw {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        Raw(s)
    }

    pub(crate) fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).unwrap();
    }

    /// One answer line, with its `\n`.
    pub(crate) fn line(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut byte = [0u8; 1];
        while !out.ends_with(b"\n") {
            match self.0.read(&mut byte) {
                Ok(0) => break,
                Ok(_) => out.push(byte[0]),
                Err(e) => panic!("reading after {:?}: {e}", String::from_utf8_lossy(&out)),
            }
        }
        out
    }

    pub(crate) fn ask(&mut self, q: &str) -> String {
        self.send(format!("{q}\n").as_bytes());
        String::from_utf8(self.line()).unwrap()
    }

    /// Whether nothing comes within `wait`.
    pub(crate) fn silent_for(&mut self, wait: Duration) -> bool {
        self.0.set_read_timeout(Some(wait)).unwrap();
        let mut byte = [0u8; 1];
        let silent = matches!(self.0.read(&mut byte), Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
        self.0
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        silent
    }

    /// Whether the server closed the connection.
    pub(crate) fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(self.0.read(&mut byte), Ok(0) | Err(_))
    }
}

/// Sends `message` on a serial port (a pseudo-terminal) and reads one answer line.
#[cfg(unix)]
pub(crate) fn ask_serial(path: &str, baud: u32, message: &[u8]) -> Vec<u8> {
    let mut port = serialport::new(path, baud)
        .timeout(Duration::from_secs(3))
        .open()
        .unwrap();
    port.write_all(message).unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\n") {
        port.read_exact(&mut byte).unwrap();
        answer.push(byte[0]);
    }
    answer
}
