//! SCPI over any transport: messages with their terminators, a timeout per call, IEEE 488.2
//! definite-length blocks both ways, `*IDN?`, `*OPC?`, `*RST`, `*CLS`, device clear, and the
//! error queue (`SYST:ERR?`) read after each command so an instrument error is an `Err` naming
//! the command. Every exchange is logged at DEBUG (target `tofu_instruments::transcript`),
//! which tofu records in the run's log.

use std::io;
use std::time::{Duration, Instant};

use crate::address::Address;
use crate::error::{InstrumentError, excerpt};
use crate::identity::Identity;
use crate::transport::{self, Transport};

/// The tracing target of the transcript.
pub const TRANSCRIPT_TARGET: &str = "tofu_instruments::transcript";

/// At most this many errors are read from the queue after one command (an instrument that
/// never says "no error" must not hang the station).
const MAX_DRAIN: usize = 32;

/// Settings of a session.
#[derive(Debug, Clone)]
pub struct ScpiOptions {
    /// Appended to every message (default `"\n"`).
    pub write_termination: Vec<u8>,
    /// Ends every answer (default `"\n"`).
    pub read_termination: Vec<u8>,
    /// How long a call waits for its answer (default 2 s).
    pub timeout: Duration,
    /// Read the error queue after each command and fail on an error (default on).
    pub check_errors: bool,
    /// The error query (default `SYST:ERR?`).
    pub error_query: String,
    /// Keep the transcript in memory too, for [`Scpi::take_transcript`] (default off).
    pub keep_transcript: bool,
}

impl Default for ScpiOptions {
    fn default() -> Self {
        ScpiOptions {
            write_termination: b"\n".to_vec(),
            read_termination: b"\n".to_vec(),
            timeout: Duration::from_secs(2),
            check_errors: true,
            error_query: "SYST:ERR?".to_owned(),
            keep_transcript: false,
        }
    }
}

/// A SCPI session with one instrument.
#[derive(Debug)]
pub struct Scpi {
    name: String,
    address: Option<Address>,
    transport: Option<Box<dyn Transport>>,
    options: ScpiOptions,
    /// Received bytes not yet consumed: `buf[start..]`.
    buf: Vec<u8>,
    /// Where each read lands.
    chunk: Box<[u8]>,
    start: usize,
    /// A call timed out: its answer may still come, so clear before the next.
    stale: bool,
    transcript: String,
    reconnects: u32,
}

/// An error read from the queue: `-222,"Data out of range"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScpiError {
    /// The code (0: no error).
    pub code: i32,
    /// The message, without its quotes.
    pub message: String,
}

impl ScpiError {
    /// Reads `-222,"Data out of range"` (also `+0,"No error"`, `0, No Error`).
    pub fn parse(answer: &str) -> Option<ScpiError> {
        let (code, message) = answer.split_once(',').unwrap_or((answer, ""));
        let code = code.trim().trim_start_matches('+').parse().ok()?;
        Some(ScpiError {
            code,
            message: message.trim().trim_matches('"').to_owned(),
        })
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

fn is_lost(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::NotConnected
            | io::ErrorKind::UnexpectedEof
    )
}

impl Scpi {
    /// Connects to `address`; `name` names the instrument in errors and in the transcript.
    pub fn connect(
        name: impl Into<String>,
        address: &Address,
        options: ScpiOptions,
    ) -> Result<Scpi, InstrumentError> {
        let name = name.into();
        let transport = transport::open(address, &name, options.timeout)?;
        let mut scpi = Scpi::over(name, transport, options);
        scpi.address = Some(address.clone());
        Ok(scpi)
    }

    /// A session over a transport opened elsewhere (it is not reconnected when it drops).
    pub fn over(
        name: impl Into<String>,
        transport: Box<dyn Transport>,
        options: ScpiOptions,
    ) -> Scpi {
        Scpi {
            name: name.into(),
            address: None,
            transport: Some(transport),
            options,
            buf: Vec::with_capacity(64 * 1024),
            chunk: vec![0; 64 * 1024].into_boxed_slice(),
            start: 0,
            stale: false,
            transcript: String::new(),
            reconnects: 0,
        }
    }

    /// The instrument's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The session's settings.
    pub fn options(&self) -> &ScpiOptions {
        &self.options
    }

    /// Changes the settings (timeout, error checks…).
    pub fn options_mut(&mut self) -> &mut ScpiOptions {
        &mut self.options
    }

    /// How many times the connection was re-established after it dropped.
    pub fn reconnects(&self) -> u32 {
        self.reconnects
    }

    /// The transcript kept since the last call (with [`ScpiOptions::keep_transcript`]).
    pub fn take_transcript(&mut self) -> String {
        std::mem::take(&mut self.transcript)
    }

    /// Closes the connection; later calls fail with `NotConnected` (or reconnect, for a
    /// session made with [`Scpi::connect`]).
    pub fn close(&mut self) {
        self.transport = None;
        self.buf.clear();
        self.start = 0;
    }

    fn log(&mut self, arrow: &str, text: &str) {
        tracing::debug!(target: TRANSCRIPT_TARGET, "{} {arrow} {text}", self.name);
        if self.options.keep_transcript {
            self.transcript.push_str(arrow);
            self.transcript.push(' ');
            self.transcript.push_str(text);
            self.transcript.push('\n');
        }
    }

    /// The transport, reconnected once if the link dropped since the last call.
    fn link(&mut self, command: &str) -> Result<&mut Box<dyn Transport>, InstrumentError> {
        let dropped = match self.transport.as_mut() {
            Some(t) => !t.is_open(),
            None => true,
        };
        if dropped {
            let Some(address) = self.address.clone() else {
                return Err(match self.transport {
                    None => InstrumentError::NotConnected {
                        instrument: self.name.clone(),
                    },
                    Some(_) => InstrumentError::ConnectionLost {
                        instrument: self.name.clone(),
                        command: command.to_owned(),
                        why: "the instrument closed the connection".to_owned(),
                    },
                });
            };
            let was_open = self.transport.is_some();
            self.close();
            if was_open {
                tracing::warn!(
                    "{}: the connection dropped; reconnecting to {address}",
                    self.name
                );
                self.reconnects += 1;
            }
            self.transport = Some(transport::open(&address, &self.name, self.options.timeout)?);
            self.stale = false;
        }
        if self.stale {
            self.stale = false;
            self.clear_input()?;
        }
        self.transport
            .as_mut()
            .ok_or_else(|| InstrumentError::NotConnected {
                instrument: self.name.clone(),
            })
    }

    fn io_error(&mut self, command: &str, e: io::Error) -> InstrumentError {
        if is_lost(&e) {
            self.close_after_loss();
            InstrumentError::ConnectionLost {
                instrument: self.name.clone(),
                command: command.to_owned(),
                why: e.to_string(),
            }
        } else {
            InstrumentError::Io {
                instrument: self.name.clone(),
                command: command.to_owned(),
                source: e,
            }
        }
    }

    /// After a loss the next call reconnects (when the address is known).
    fn close_after_loss(&mut self) {
        if self.address.is_some() {
            self.close();
        }
    }

    fn send_raw(&mut self, command: &str, bytes: &[u8]) -> Result<(), InstrumentError> {
        let timeout = self.options.timeout;
        let mut message = Vec::with_capacity(bytes.len() + self.options.write_termination.len());
        message.extend_from_slice(bytes);
        message.extend_from_slice(&self.options.write_termination);
        let result = self.link(command)?.write_all(&message, timeout);
        result.map_err(|e| self.io_error(command, e))
    }

    /// Reads more bytes into the buffer, before `deadline`.
    fn fill(
        &mut self,
        command: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), InstrumentError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.timed_out(command, timeout));
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let Some(transport) = self.transport.as_mut() else {
            return Err(InstrumentError::NotConnected {
                instrument: self.name.clone(),
            });
        };
        match transport.read(&mut self.chunk, left) {
            Ok(0) => {
                self.close_after_loss();
                Err(InstrumentError::ConnectionLost {
                    instrument: self.name.clone(),
                    command: command.to_owned(),
                    why: "the instrument closed the connection".to_owned(),
                })
            }
            Ok(n) => {
                self.buf.extend_from_slice(&self.chunk[..n]);
                Ok(())
            }
            Err(e) if is_timeout(&e) => Err(self.timed_out(command, timeout)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(self.io_error(command, e)),
        }
    }

    fn timed_out(&mut self, command: &str, timeout: Duration) -> InstrumentError {
        self.stale = true;
        self.log("!", &format!("no answer to {command} within {timeout:?}"));
        InstrumentError::Timeout {
            instrument: self.name.clone(),
            command: command.to_owned(),
            timeout,
        }
    }

    /// Reads one answer up to the read terminator (not included).
    fn read_answer(
        &mut self,
        command: &str,
        timeout: Duration,
    ) -> Result<Vec<u8>, InstrumentError> {
        let deadline = Instant::now() + timeout;
        // Bytes after `start` already searched (the buffer may move when it is filled).
        let mut scanned = 0;
        loop {
            let term = &self.options.read_termination;
            let from = self.start + scanned;
            let found = if term.len() == 1 {
                self.buf[from..].iter().position(|&b| b == term[0])
            } else {
                self.buf[from..]
                    .windows(term.len())
                    .position(|w| w == term.as_slice())
            };
            if let Some(i) = found {
                let end = from + i;
                let answer = self.buf[self.start..end].to_vec();
                self.start = end + term.len();
                return Ok(answer);
            }
            scanned = (self.buf.len() - self.start).saturating_sub(term.len().saturating_sub(1));
            self.fill(command, deadline, timeout)?;
        }
    }

    /// Throws away buffered input and what the instrument has pending.
    fn clear_input(&mut self) -> Result<(), InstrumentError> {
        self.buf.clear();
        self.start = 0;
        if let Some(t) = self.transport.as_mut() {
            let result = t.clear();
            return result.map_err(|e| self.io_error("device clear", e));
        }
        Ok(())
    }

    /// Sends a command without reading the error queue.
    pub fn send(&mut self, command: &str) -> Result<(), InstrumentError> {
        self.log(">", command);
        self.send_raw(command, command.as_bytes())
    }

    /// Sends a query and reads its answer as text, without reading the error queue.
    pub fn ask(&mut self, query: &str) -> Result<String, InstrumentError> {
        let timeout = self.options.timeout;
        self.ask_within(query, timeout)
    }

    fn ask_within(&mut self, query: &str, timeout: Duration) -> Result<String, InstrumentError> {
        self.send(query)?;
        let answer = self.read_answer(query, timeout)?;
        let answer = self.text(query, answer)?;
        self.log("<", &answer);
        Ok(answer)
    }

    fn text(&mut self, command: &str, answer: Vec<u8>) -> Result<String, InstrumentError> {
        match String::from_utf8(answer) {
            Ok(mut s) => {
                if s.ends_with('\r') {
                    s.pop();
                }
                Ok(s)
            }
            Err(e) => {
                let bytes = e.into_bytes();
                self.stale = true;
                self.log("<", &format!("{:?} (not text)", excerpt(&bytes)));
                Err(InstrumentError::BadAnswer {
                    instrument: self.name.clone(),
                    command: command.to_owned(),
                    why: "the answer is not text".to_owned(),
                    answer: excerpt(&bytes),
                })
            }
        }
    }

    /// Sends a command, then reads the error queue (unless checks are off): an error there
    /// is returned as [`InstrumentError::Instrument`] naming the command.
    pub fn write(&mut self, command: &str) -> Result<(), InstrumentError> {
        self.send(command)?;
        self.check(command)
    }

    /// Sends a query and returns its answer (terminator removed), then reads the error queue.
    pub fn query(&mut self, query: &str) -> Result<String, InstrumentError> {
        let timeout = self.options.timeout;
        self.query_within(query, timeout)
    }

    /// [`Scpi::query`] with its own timeout (a slow measurement, a long sweep).
    pub fn query_within(
        &mut self,
        query: &str,
        timeout: Duration,
    ) -> Result<String, InstrumentError> {
        let answer = self.ask_within(query, timeout)?;
        self.check(query)?;
        Ok(answer)
    }

    /// A query whose answer is a number (`+3.29812E+00`).
    pub fn query_f64(&mut self, query: &str) -> Result<f64, InstrumentError> {
        let answer = self.query(query)?;
        answer
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| InstrumentError::BadAnswer {
                instrument: self.name.clone(),
                command: query.to_owned(),
                why: "not a number".to_owned(),
                answer: excerpt(answer.as_bytes()),
            })
    }

    /// Sends `header` followed by `data` as a definite-length block
    /// (`TRAC:DATA #71048576<data>`), then reads the error queue.
    pub fn write_block(&mut self, header: &str, data: &[u8]) -> Result<(), InstrumentError> {
        let len = data.len().to_string();
        let mut message = Vec::with_capacity(header.len() + len.len() + data.len() + 3);
        message.extend_from_slice(header.as_bytes());
        message.push(b' ');
        message.push(b'#');
        message.extend_from_slice(len.len().to_string().as_bytes());
        message.extend_from_slice(len.as_bytes());
        message.extend_from_slice(data);
        self.log(">", &format!("{header} #<block of {} bytes>", data.len()));
        self.send_raw(header, &message)?;
        self.check(header)
    }

    /// Sends a query whose answer is a definite-length block and returns its data, then
    /// reads the error queue.
    pub fn query_block(&mut self, query: &str) -> Result<Vec<u8>, InstrumentError> {
        let timeout = self.options.timeout;
        self.query_block_within(query, timeout)
    }

    /// [`Scpi::query_block`] with its own timeout.
    pub fn query_block_within(
        &mut self,
        query: &str,
        timeout: Duration,
    ) -> Result<Vec<u8>, InstrumentError> {
        self.send(query)?;
        let deadline = Instant::now() + timeout;
        let data = self.read_block(query, deadline, timeout)?;
        self.log("<", &format!("#<block of {} bytes>", data.len()));
        self.check(query)?;
        Ok(data)
    }

    fn read_block(
        &mut self,
        query: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Vec<u8>, InstrumentError> {
        let bad = |s: &Scpi, why: &str| InstrumentError::BadAnswer {
            instrument: s.name.clone(),
            command: query.to_owned(),
            why: why.to_owned(),
            answer: excerpt(&s.buf[s.start..s.buf.len().min(s.start + 40)]),
        };
        // The header: `#`, one digit n, n digits of length.
        while self.buf.len() - self.start < 2 {
            self.fill(query, deadline, timeout)?;
        }
        if self.buf[self.start] != b'#' {
            self.stale = true;
            return Err(bad(self, "not a definite-length block (no leading #)"));
        }
        let n = match self.buf[self.start + 1] {
            d @ b'1'..=b'9' => usize::from(d - b'0'),
            _ => {
                self.stale = true;
                return Err(bad(
                    self,
                    "not a definite-length block (#0 or no digit count)",
                ));
            }
        };
        while self.buf.len() - self.start < 2 + n {
            self.fill(query, deadline, timeout)?;
        }
        let digits = &self.buf[self.start + 2..self.start + 2 + n];
        let Some(len) = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| d.parse::<usize>().ok())
        else {
            self.stale = true;
            return Err(bad(self, "the block's length is not a number"));
        };
        self.start += 2 + n;
        // The data, read straight into the result once the buffer is used up.
        let mut data = Vec::with_capacity(len);
        let buffered = (self.buf.len() - self.start).min(len);
        data.extend_from_slice(&self.buf[self.start..self.start + buffered]);
        self.start += buffered;
        while data.len() < len {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timed_out(query, timeout));
            }
            let have = data.len();
            data.resize(len, 0);
            let transport =
                self.transport
                    .as_mut()
                    .ok_or_else(|| InstrumentError::NotConnected {
                        instrument: self.name.clone(),
                    })?;
            match transport.read(&mut data[have..], left) {
                Ok(0) => {
                    self.close_after_loss();
                    return Err(InstrumentError::ConnectionLost {
                        instrument: self.name.clone(),
                        command: query.to_owned(),
                        why: format!("the connection closed after {have} of {len} bytes"),
                    });
                }
                Ok(got) => data.truncate(have + got),
                Err(e) if is_timeout(&e) => {
                    return Err(self.timed_out(query, timeout));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => data.truncate(have),
                Err(e) => return Err(self.io_error(query, e)),
            }
        }
        // The terminator after the block.
        let term_len = self.options.read_termination.len();
        while self.buf.len() - self.start < term_len {
            self.fill(query, deadline, timeout)?;
        }
        if self.buf[self.start..self.start + term_len] != self.options.read_termination[..] {
            self.stale = true;
            return Err(bad(self, "the block is longer than its header says"));
        }
        self.start += term_len;
        Ok(data)
    }

    /// Reads the error queue until it says "no error" (at most 32 entries).
    pub fn errors(&mut self) -> Result<Vec<ScpiError>, InstrumentError> {
        let query = self.options.error_query.clone();
        let timeout = self.options.timeout;
        let mut errors = Vec::new();
        for _ in 0..MAX_DRAIN {
            let answer = self.ask_within(&query, timeout)?;
            match ScpiError::parse(&answer) {
                Some(e) if e.code == 0 => break,
                Some(e) => errors.push(e),
                None => {
                    return Err(InstrumentError::BadAnswer {
                        instrument: self.name.clone(),
                        command: query,
                        why: "not an error queue entry (code,\"message\")".to_owned(),
                        answer: excerpt(answer.as_bytes()),
                    });
                }
            }
        }
        Ok(errors)
    }

    /// The error check after `command`: the first error read becomes the `Err` (the others
    /// are logged).
    fn check(&mut self, command: &str) -> Result<(), InstrumentError> {
        if !self.options.check_errors {
            return Ok(());
        }
        let mut errors = self.errors()?.into_iter();
        let Some(first) = errors.next() else {
            return Ok(());
        };
        for more in errors {
            tracing::warn!(
                "{}: also after `{command}`: {},\"{}\"",
                self.name,
                more.code,
                more.message
            );
        }
        Err(InstrumentError::Instrument {
            instrument: self.name.clone(),
            command: command.to_owned(),
            code: first.code,
            message: first.message,
        })
    }

    /// `*IDN?`: manufacturer, model, serial number, firmware.
    pub fn identify(&mut self) -> Result<Identity, InstrumentError> {
        self.query("*IDN?").map(|idn| Identity::parse(&idn))
    }

    /// `*OPC?`: waits until the instrument has finished what it was told, within `timeout`.
    pub fn wait_complete(&mut self, timeout: Duration) -> Result<(), InstrumentError> {
        let answer = self.query_within("*OPC?", timeout)?;
        if answer.trim() == "1" {
            Ok(())
        } else {
            Err(InstrumentError::BadAnswer {
                instrument: self.name.clone(),
                command: "*OPC?".to_owned(),
                why: "*OPC? answers 1".to_owned(),
                answer: excerpt(answer.as_bytes()),
            })
        }
    }

    /// `*RST` then `*OPC?`: the instrument in its default state.
    pub fn reset(&mut self) -> Result<(), InstrumentError> {
        self.write("*RST")?;
        let timeout = self.options.timeout;
        self.wait_complete(timeout)
    }

    /// `*CLS`: empties the error queue and the status registers (without reading them).
    pub fn clear_status(&mut self) -> Result<(), InstrumentError> {
        self.send("*CLS")
    }

    /// Device clear: throws away the instrument's pending answers and what is buffered here
    /// (VISA: `viClear`; sockets and serial ports: the pending input), then `*CLS`.
    pub fn device_clear(&mut self) -> Result<(), InstrumentError> {
        self.log(">", "<device clear>");
        self.link("device clear")?;
        self.clear_input()?;
        self.clear_status()
    }
}
