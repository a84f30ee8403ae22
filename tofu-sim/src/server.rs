//! Serving a simulator's devices: TCP on loopback (or any address), and pseudo-terminals.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::bench::{Action, Bench, message_end};

/// State shared by every connection of a simulator.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) bench: Mutex<Bench>,
    /// Open TCP connections (id, device, a handle on the stream), so they can be dropped on
    /// demand.
    pub(crate) connections: Mutex<Vec<(u64, usize, TcpStream)>>,
    /// The next connection's id.
    pub(crate) next_connection: std::sync::atomic::AtomicU64,
}

impl Shared {
    pub(crate) fn bench(&self) -> std::sync::MutexGuard<'_, Bench> {
        self.bench.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn connections(&self) -> std::sync::MutexGuard<'_, Vec<(u64, usize, TcpStream)>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Closes every open connection to `device`; returns how many.
    pub(crate) fn drop_connections(&self, device: usize) -> usize {
        let mut conns = self.connections();
        let before = conns.len();
        conns.retain(|(_, d, stream)| {
            if *d == device {
                let _ = stream.shutdown(Shutdown::Both);
                false
            } else {
                true
            }
        });
        before - conns.len()
    }
}

/// Reads messages from `input`, answers them on `output`, until the peer closes, a fault drops
/// the connection, or `stop` is set (checked whenever a read times out).
fn converse(
    shared: &Shared,
    device: usize,
    interface: &str,
    input: &mut dyn Read,
    output: &mut dyn Write,
    stop: &AtomicBool,
) -> io::Result<()> {
    let (q_eom, r_eom) = shared.bench().devices[device].eom(interface);
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut start = 0;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while let Some((len, next)) = message_end(&buf[start..], &q_eom) {
            let message = &buf[start..start + len];
            let action = shared.bench().message(device, message);
            start += next;
            match action {
                Action::Close => return Ok(()),
                Action::Nothing => {}
                Action::Send(mut answer, delay) => {
                    if !delay.is_zero() {
                        std::thread::sleep(delay);
                    }
                    answer.extend_from_slice(&r_eom);
                    output.write_all(&answer)?;
                    output.flush()?;
                }
            }
        }
        if start > 0 {
            buf.drain(..start);
            start = 0;
        }
        match input.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A device served on a TCP address; stops (and closes its connections) when dropped.
#[derive(Debug)]
pub struct TcpServer {
    addr: SocketAddr,
    device: String,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
    index: usize,
}

impl TcpServer {
    pub(crate) fn start(
        shared: Arc<Shared>,
        index: usize,
        device: String,
        addr: impl ToSocketAddrs,
    ) -> io::Result<TcpServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
            std::thread::Builder::new()
                .name(format!("tofu-sim {device} {addr}"))
                .spawn(move || accept_loop(&listener, &shared, index, &stop))?
        };
        tracing::debug!(%device, %addr, "simulator listening");
        Ok(TcpServer {
            addr,
            device,
            stop,
            accept: Some(accept),
            shared,
            index,
        })
    }

    /// The address it listens on (with the port chosen when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The device served.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The VISA-style address of this server: `TCPIP::127.0.0.1::PORT::SOCKET`.
    pub fn resource(&self) -> String {
        format!("TCPIP::{}::{}::SOCKET", self.addr.ip(), self.addr.port())
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept call.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        self.shared.drop_connections(self.index);
    }
}

fn accept_loop(
    listener: &TcpListener,
    shared: &Arc<Shared>,
    device: usize,
    stop: &Arc<AtomicBool>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            shared.connections().push((id, device, clone));
        }
        let (shared, stop) = (Arc::clone(shared), Arc::clone(stop));
        let spawned = std::thread::Builder::new()
            .name("tofu-sim connection".into())
            .spawn(move || {
                let mut input = &stream;
                let mut output = &stream;
                if let Err(e) = converse(
                    &shared,
                    device,
                    "TCPIP SOCKET",
                    &mut input,
                    &mut output,
                    &stop,
                ) {
                    tracing::debug!("simulator connection ended: {e}");
                }
                let _ = stream.shutdown(Shutdown::Both);
                shared.connections().retain(|(other, _, _)| *other != id);
            });
        if let Err(e) = spawned {
            tracing::error!("simulator: no thread for a connection: {e}");
        }
    }
}

/// A device served on a pseudo-terminal: open [`PtyServer::path`] as a serial port.
#[cfg(unix)]
#[derive(Debug)]
pub struct PtyServer {
    path: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The terminal's own end, kept open so the port stays usable between client opens.
    _held: serialport::TTYPort,
}

#[cfg(unix)]
impl PtyServer {
    pub(crate) fn start(shared: Arc<Shared>, index: usize) -> io::Result<PtyServer> {
        use serialport::SerialPort;
        let (mut master, held) = serialport::TTYPort::pair().map_err(io::Error::other)?;
        let path = held
            .name()
            .ok_or_else(|| io::Error::other("the pseudo-terminal has no name"))?;
        master
            .set_timeout(Duration::from_millis(200))
            .map_err(io::Error::other)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name(format!("tofu-sim pty {path}"))
                .spawn(move || {
                    let mut output = master.try_clone_native();
                    loop {
                        let result = match output.as_mut() {
                            Ok(out) => {
                                converse(&shared, index, "ASRL INSTR", &mut master, out, &stop)
                            }
                            Err(e) => Err(io::Error::other(e.to_string())),
                        };
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        if let Err(e) = result {
                            // EIO: no client has the terminal open; wait for the next one.
                            tracing::trace!("simulator pty: {e}");
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                })?
        };
        Ok(PtyServer {
            path,
            stop,
            thread: Some(thread),
            _held: held,
        })
    }

    /// The terminal's path (`/dev/pts/N`), to open as a serial port.
    pub fn path(&self) -> &str {
        &self.path
    }
}

#[cfg(unix)]
impl Drop for PtyServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
