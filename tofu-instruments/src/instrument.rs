//! [`Instrument`]: a SCPI instrument as a tofu plug: connected at setup (identity read,
//! calibration checked), closed at teardown, reconnected once when its connection dropped
//! between uses, and named in the record's `metadata.instruments`.

use std::time::Duration;

use chrono::NaiveDate;
use tofu_core::{AttachError, PhaseContext, Plug};

use crate::address::Address;
use crate::error::InstrumentError;
use crate::identity::{CalibrationPolicy, Identity, calibration_expired, record_entry};
use crate::scpi::{Scpi, ScpiError, ScpiOptions};

/// The record's metadata key listing the instruments of a run.
pub const INSTRUMENTS_KEY: &str = "instruments";

/// A SCPI instrument used by a test.
///
/// ```no_run
/// use tofu_instruments::Instrument;
/// let scope = Instrument::new("scope", "TCPIP::192.168.1.30::5025::SOCKET")?
///     .timeout(std::time::Duration::from_secs(5))
///     .calibration_due("2027-03-31".parse().expect("a date"));
/// // Test::new("FVT1").plug(scope)… and in a phase: `scope: &mut Instrument`.
/// # Ok::<(), tofu_instruments::InstrumentError>(())
/// ```
#[derive(Debug)]
pub struct Instrument {
    name: String,
    address: Address,
    options: ScpiOptions,
    reset_at_setup: bool,
    calibration_due: Option<NaiveDate>,
    policy: CalibrationPolicy,
    session: Option<Scpi>,
    identity: Option<Identity>,
}

impl Instrument {
    /// An instrument at an address (see [`Address`] for the forms); `name` names it in the
    /// record, the log and errors. Nothing is opened before [`Plug::setup`].
    pub fn new(name: impl Into<String>, address: &str) -> Result<Instrument, InstrumentError> {
        Ok(Instrument::at(name, Address::parse(address)?))
    }

    /// An instrument at an address already read.
    pub fn at(name: impl Into<String>, address: Address) -> Instrument {
        Instrument {
            name: name.into(),
            address,
            options: ScpiOptions::default(),
            reset_at_setup: false,
            calibration_due: None,
            policy: CalibrationPolicy::Fail,
            session: None,
            identity: None,
        }
    }

    /// How long each call waits for its answer (default 2 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = timeout;
        self
    }

    /// The message terminators (default `"\n"` both ways).
    pub fn terminations(mut self, write: &str, read: &str) -> Self {
        self.options.write_termination = write.as_bytes().to_vec();
        self.options.read_termination = read.as_bytes().to_vec();
        self
    }

    /// Whether the error queue is read after each command (default on).
    pub fn check_errors(mut self, check: bool) -> Self {
        self.options.check_errors = check;
        self
    }

    /// The error query, for instruments that don't know `SYST:ERR?`.
    pub fn error_query(mut self, query: impl Into<String>) -> Self {
        self.options.error_query = query.into();
        self
    }

    /// Sends `*RST` (and waits for `*OPC?`) at setup (default off).
    pub fn reset_at_setup(mut self, reset: bool) -> Self {
        self.reset_at_setup = reset;
        self
    }

    /// The calibration due date: recorded, and checked at setup (a run with the instrument
    /// past it fails at the start, unless [`Instrument::warn_when_calibration_expired`]).
    pub fn calibration_due(mut self, due: NaiveDate) -> Self {
        self.calibration_due = Some(due);
        self
    }

    /// An expired calibration is a warning, not a failure.
    pub fn warn_when_calibration_expired(mut self) -> Self {
        self.policy = CalibrationPolicy::Warn;
        self
    }

    /// Keeps the transcript in memory for [`Instrument::attach_transcript`] (it is always in
    /// the log at DEBUG).
    pub fn keep_transcript(mut self, keep: bool) -> Self {
        self.options.keep_transcript = keep;
        self
    }

    /// The instrument's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its address.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Its identity, once read at setup.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// What the record says of it (an entry of `metadata.instruments`).
    pub fn record_entry(&self) -> serde_json::Value {
        record_entry(
            &self.name,
            &self.address.to_string(),
            self.identity.as_ref(),
            self.calibration_due,
            chrono::Local::now().date_naive(),
        )
    }

    /// Opens the connection, clears the status (`*CLS`), resets if asked, reads `*IDN?` and
    /// checks the calibration: what [`Plug::setup`] does.
    pub fn connect(&mut self) -> Result<(), InstrumentError> {
        let mut session = Scpi::connect(self.name.clone(), &self.address, self.options.clone())?;
        session.clear_status()?;
        if self.reset_at_setup {
            session.reset()?;
        }
        let identity = session.identify()?;
        tracing::info!("{}: {} at {}", self.name, identity.idn, self.address);
        self.identity = Some(identity);
        self.session = Some(session);
        self.check_calibration(chrono::Local::now().date_naive())
    }

    fn check_calibration(&self, today: NaiveDate) -> Result<(), InstrumentError> {
        let Some(due) = self.calibration_due else {
            return Ok(());
        };
        if !calibration_expired(due, today) {
            return Ok(());
        }
        let error = InstrumentError::CalibrationExpired {
            instrument: match &self.identity {
                Some(id) => format!("{} ({id})", self.name),
                None => self.name.clone(),
            },
            due,
            today,
        };
        match self.policy {
            CalibrationPolicy::Fail => Err(error),
            CalibrationPolicy::Warn => {
                tracing::warn!("{error}");
                Ok(())
            }
        }
    }

    /// Closes the connection (what [`Plug::teardown`] does).
    pub fn close(&mut self) {
        if let Some(mut s) = self.session.take() {
            s.close();
        }
    }

    /// The SCPI session, for what the helpers don't cover.
    pub fn scpi(&mut self) -> Result<&mut Scpi, InstrumentError> {
        self.session
            .as_mut()
            .ok_or_else(|| InstrumentError::NotConnected {
                instrument: self.name.clone(),
            })
    }

    /// See [`Scpi::write`].
    pub fn write(&mut self, command: &str) -> Result<(), InstrumentError> {
        self.scpi()?.write(command)
    }

    /// See [`Scpi::query`].
    pub fn query(&mut self, query: &str) -> Result<String, InstrumentError> {
        self.scpi()?.query(query)
    }

    /// See [`Scpi::query_within`].
    pub fn query_within(
        &mut self,
        query: &str,
        timeout: Duration,
    ) -> Result<String, InstrumentError> {
        self.scpi()?.query_within(query, timeout)
    }

    /// See [`Scpi::query_f64`].
    pub fn query_f64(&mut self, query: &str) -> Result<f64, InstrumentError> {
        self.scpi()?.query_f64(query)
    }

    /// See [`Scpi::write_block`].
    pub fn write_block(&mut self, header: &str, data: &[u8]) -> Result<(), InstrumentError> {
        self.scpi()?.write_block(header, data)
    }

    /// See [`Scpi::query_block`].
    pub fn query_block(&mut self, query: &str) -> Result<Vec<u8>, InstrumentError> {
        self.scpi()?.query_block(query)
    }

    /// See [`Scpi::wait_complete`].
    pub fn wait_complete(&mut self, timeout: Duration) -> Result<(), InstrumentError> {
        self.scpi()?.wait_complete(timeout)
    }

    /// See [`Scpi::reset`].
    pub fn reset(&mut self) -> Result<(), InstrumentError> {
        self.scpi()?.reset()
    }

    /// See [`Scpi::device_clear`].
    pub fn device_clear(&mut self) -> Result<(), InstrumentError> {
        self.scpi()?.device_clear()
    }

    /// See [`Scpi::errors`].
    pub fn errors(&mut self) -> Result<Vec<ScpiError>, InstrumentError> {
        self.scpi()?.errors()
    }

    /// Attaches the transcript kept since the last call (with
    /// [`Instrument::keep_transcript`]) to the phase, as `<name>-transcript.txt`.
    pub fn attach_transcript(&mut self, test: &mut PhaseContext) -> Result<(), AttachError> {
        let text = self
            .session
            .as_mut()
            .map(Scpi::take_transcript)
            .unwrap_or_default();
        test.attach(&format!("{}-transcript.txt", self.name), text)
    }
}

impl Plug for Instrument {
    fn setup(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.connect()?)
    }

    fn teardown(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.close();
        Ok(())
    }

    fn record_metadata(&self) -> Vec<(String, serde_json::Value)> {
        vec![(INSTRUMENTS_KEY.to_owned(), self.record_entry())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_policy_decides_the_setup() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap_or_default();
        let Ok(base) = Instrument::new("dmm", "tcp://127.0.0.1:5025") else {
            panic!("address");
        };
        let due = base.calibration_due(d("2026-06-30"));
        assert!(due.check_calibration(d("2026-06-30")).is_ok());
        match due.check_calibration(d("2026-07-01")) {
            Err(e @ InstrumentError::CalibrationExpired { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("2026-06-30") && msg.contains("dmm"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
        let warn = due.warn_when_calibration_expired();
        assert!(warn.check_calibration(d("2027-01-01")).is_ok());
    }
}
