//! Raw SCPI over TCP: the "SOCKET" port (5025 on most instruments).

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::{Transport, socket_timeout};

/// A TCP connection to an instrument.
#[derive(Debug)]
pub struct TcpTransport {
    stream: TcpStream,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl TcpTransport {
    /// Connects, trying each address the host resolves to, each within `timeout`.
    pub fn connect(host: &str, port: u16, timeout: Duration) -> io::Result<TcpTransport> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
        for addr in (host, port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(stream) => {
                    // One message per packet, at once: instruments answer small messages.
                    stream.set_nodelay(true)?;
                    return Ok(TcpTransport {
                        stream,
                        read_timeout: None,
                        write_timeout: None,
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A transport over a connection made elsewhere.
    pub fn from_stream(stream: TcpStream) -> io::Result<TcpTransport> {
        stream.set_nodelay(true)?;
        Ok(TcpTransport {
            stream,
            read_timeout: None,
            write_timeout: None,
        })
    }
}

impl Transport for TcpTransport {
    fn write_all(&mut self, data: &[u8], timeout: Duration) -> io::Result<()> {
        let t = Some(socket_timeout(timeout));
        if self.write_timeout != t {
            self.stream.set_write_timeout(t)?;
            self.write_timeout = t;
        }
        self.stream.write_all(data)
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let t = Some(socket_timeout(timeout));
        if self.read_timeout != t {
            self.stream.set_read_timeout(t)?;
            self.read_timeout = t;
        }
        self.stream.read(buf)
    }

    fn clear(&mut self) -> io::Result<()> {
        // Raw sockets have no device-clear message: throw away whatever is pending.
        let mut sink = [0u8; 4096];
        self.stream.set_nonblocking(true)?;
        let result = loop {
            match self.stream.read(&mut sink) {
                Ok(0) => break Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.stream.set_nonblocking(false)?;
        result
    }

    #[cfg(unix)]
    #[allow(unsafe_code)]
    fn is_open(&mut self) -> bool {
        use std::os::fd::AsRawFd;
        let mut probe = [0u8; 1];
        // SAFETY: recv writes at most 1 byte into `probe`, on the socket this stream owns.
        let n = unsafe {
            libc::recv(
                self.stream.as_raw_fd(),
                probe.as_mut_ptr().cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        match n {
            0 => false,
            n if n > 0 => true,
            _ => matches!(
                io::Error::last_os_error().kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ),
        }
    }

    #[cfg(not(unix))]
    fn is_open(&mut self) -> bool {
        let mut probe = [0u8; 1];
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let open = match self.stream.peek(&mut probe) {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) => e.kind() == io::ErrorKind::WouldBlock,
        };
        open && self.stream.set_nonblocking(false).is_ok()
    }
}
