//! Serial ports (RS-232, USB CDC…), through `serialport` without libudev.

use std::io::{self, Read, Write};
use std::time::Duration;

use serialport::SerialPort;

use super::{Transport, socket_timeout};

/// An open serial port.
#[derive(Debug)]
pub struct SerialTransport {
    port: Box<dyn SerialPort>,
    timeout: Duration,
}

impl SerialTransport {
    /// Opens `path` at `baud`, 8 data bits, no parity, 1 stop bit, no flow control.
    pub fn open(path: &str, baud: u32) -> io::Result<SerialTransport> {
        let timeout = Duration::from_secs(1);
        let port = serialport::new(path, baud)
            .timeout(timeout)
            .open()
            .map_err(io::Error::from)?;
        Ok(SerialTransport { port, timeout })
    }

    fn timeout(&mut self, t: Duration) -> io::Result<()> {
        let t = socket_timeout(t);
        if self.timeout != t {
            self.port.set_timeout(t).map_err(io::Error::from)?;
            self.timeout = t;
        }
        Ok(())
    }
}

impl Transport for SerialTransport {
    fn write_all(&mut self, data: &[u8], timeout: Duration) -> io::Result<()> {
        self.timeout(timeout)?;
        self.port.write_all(data)?;
        self.port.flush()
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.timeout(timeout)?;
        self.port.read(buf)
    }

    fn clear(&mut self) -> io::Result<()> {
        self.port
            .clear(serialport::ClearBuffer::All)
            .map_err(io::Error::from)
    }
}
