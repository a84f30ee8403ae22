//! What a running phase can do besides setting measurements (OpenHTF's `TestApi`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::abort::Abort;
use crate::desk::Desk;
use crate::parameters::Parameters;
use crate::record::Attachment;

/// The running phase's view of the test: the unit, attachments.
///
/// Phases take it as `test: &mut PhaseContext`. Log with `tracing`'s macros (`info!`, `warn!`…):
/// events are recorded into the run's record.
#[derive(Debug)]
pub struct PhaseContext {
    serial_number: String,
    phase_name: String,
    attempt: u32,
    /// Shared with the executor, so what was attached before a timeout or an abort is kept.
    pub(crate) attachments: Arc<Mutex<Vec<Attachment>>>,
    /// The parameters of the test's limits file, if it has one.
    pub(crate) parameters: Option<Parameters>,
    /// Set by the executor when it gives up on the phase (its timeout passed, or an abort).
    pub(crate) stop: Arc<AtomicBool>,
    /// The run's abort.
    pub(crate) abort: Arc<Abort>,
    /// Where the phase's questions go.
    pub(crate) desk: Arc<Desk>,
    /// How many presses stop this phase (2 in a teardown).
    pub(crate) abort_at: u32,
}

/// The phase was told to stop (its timeout passed, or the operator pressed Ctrl-C) while it
/// waited in [`PhaseContext::sleep`]. Return it with `?`: the phase ends and lets go of its
/// plugs, so that the teardowns can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the phase was stopped (its timeout passed or the run was aborted)")]
pub struct Stopped;

/// An attachment could not be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// An attachment of that name was already added in this phase.
    #[error("phase `{phase}` already has an attachment named `{name}`")]
    Duplicate {
        /// The phase.
        phase: String,
        /// The attachment's name.
        name: String,
    },
    /// The file could not be read.
    #[error("can't attach `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl PhaseContext {
    pub(crate) fn new(serial_number: &str, phase_name: &str, attempt: u32) -> Self {
        PhaseContext {
            serial_number: serial_number.to_owned(),
            phase_name: phase_name.to_owned(),
            attempt,
            attachments: Arc::default(),
            parameters: None,
            stop: Arc::new(AtomicBool::new(false)),
            abort: Arc::default(),
            desk: Arc::new(Desk::new(Arc::default(), None)),
            abort_at: 1,
        }
    }

    #[cfg(test)]
    fn take_attachments(&self) -> Vec<Attachment> {
        std::mem::take(
            &mut *self
                .attachments
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Waits `duration`, or less if the phase is told to stop meanwhile (its timeout passed
    /// or the operator pressed Ctrl-C); then returns [`Stopped`]. Use it for a phase's long
    /// waits (settling, programming, soaking) so that it can be stopped at once:
    ///
    /// ```no_run
    /// # use tofu_core::prelude::*;
    /// #[phase(timeout_s = 120)]
    /// fn soak(test: &mut PhaseContext) -> Result<(), tofu_core::context::Stopped> {
    ///     test.sleep(std::time::Duration::from_secs(60))?;
    ///     Ok(())
    /// }
    /// ```
    pub fn sleep(&self, duration: Duration) -> Result<(), Stopped> {
        // `Duration::MAX`: until stopped.
        let until = Instant::now().checked_add(duration);
        loop {
            if self.should_stop() {
                return Err(Stopped);
            }
            let left = until.map_or(Duration::MAX, |u| {
                u.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(left.min(Duration::from_millis(10)));
        }
    }

    /// Whether the phase has been told to stop: its timeout passed, or the operator pressed
    /// Ctrl-C. A phase that loops checks it to end early.
    pub fn should_stop(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.abort.reached(self.abort_at)
    }

    /// The serial number of the unit under test.
    pub fn serial_number(&self) -> &str {
        &self.serial_number
    }

    /// The running phase's name.
    pub fn phase_name(&self) -> &str {
        &self.phase_name
    }

    /// 1 on the first attempt, 2 after the first REPEAT, and so on.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// A parameter of the test's limits file (its `[parameters]` table; see
    /// [`crate::limits_file`]), as any type serde can read: `test.parameter::<f64>("settle_ms")?`.
    pub fn parameter<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<T, crate::parameters::ParameterError> {
        crate::parameters::parameter(self.parameters.as_ref(), name)
    }

    /// Asks the operator to confirm ("Insert the board, press Enter") and waits for Enter; see
    /// [`crate::prompt`] for where answers come from.
    pub fn prompt_confirm(&self, message: &str) -> Result<(), crate::prompt::PromptError> {
        crate::prompt::Prompt::new(message).confirm()
    }

    /// Asks the operator for a value (`let mm: f64 = test.prompt_value("Read the gauge")?`),
    /// asking again while the answer doesn't parse.
    pub fn prompt_value<T>(&self, message: &str) -> Result<T, crate::prompt::PromptError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        crate::prompt::Prompt::new(message).value()
    }

    /// A question to the operator with options:
    /// `test.prompt("Read the gauge").timeout(Duration::from_secs(30)).value::<f64>()?`.
    pub fn prompt(&self, message: &str) -> crate::prompt::Prompt {
        crate::prompt::Prompt::new(message)
    }

    /// Attaches bytes; the MIME type is guessed from the name (`rails.txt` → `text/plain`).
    pub fn attach(&mut self, name: &str, data: impl Into<Vec<u8>>) -> Result<(), AttachError> {
        let mimetype = mime_guess::from_path(name)
            .first()
            .map(|m| m.essence_str().to_owned());
        self.push(Attachment::new(name, mimetype, data.into()))
    }

    /// Attaches bytes with an explicit MIME type.
    pub fn attach_with_mimetype(
        &mut self,
        name: &str,
        data: impl Into<Vec<u8>>,
        mimetype: &str,
    ) -> Result<(), AttachError> {
        self.push(Attachment::new(
            name,
            Some(mimetype.to_owned()),
            data.into(),
        ))
    }

    /// Attaches a file under its own name; the MIME type is guessed from the name.
    pub fn attach_file(&mut self, path: impl AsRef<Path>) -> Result<(), AttachError> {
        let path = path.as_ref();
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        self.attach_file_as(path, &name)
    }

    /// Attaches a file under another name; the MIME type is guessed from the path, then the name.
    pub fn attach_file_as(
        &mut self,
        path: impl AsRef<Path>,
        name: &str,
    ) -> Result<(), AttachError> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|source| AttachError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mimetype = mime_guess::from_path(path)
            .first()
            .or_else(|| mime_guess::from_path(name).first())
            .map(|m| m.essence_str().to_owned());
        self.push(Attachment::new(name, mimetype, data))
    }

    fn push(&mut self, attachment: Attachment) -> Result<(), AttachError> {
        let mut attachments = self
            .attachments
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if attachments.iter().any(|a| a.name == attachment.name) {
            return Err(AttachError::Duplicate {
                phase: self.phase_name.clone(),
                name: attachment.name,
            });
        }
        attachments.push(attachment);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_get_a_guessed_type_and_a_sha1() {
        let mut ctx = PhaseContext::new("SN1", "p", 1);
        ctx.attach("rails.txt", "VCC=5.02\nVDD=3.30\n").unwrap();
        ctx.attach_with_mimetype(
            "blob.bin",
            (0u8..16).collect::<Vec<_>>(),
            "application/octet-stream",
        )
        .unwrap();
        let attachments = ctx.take_attachments();
        let a = &attachments[0];
        assert_eq!(a.mimetype.as_deref(), Some("text/plain"));
        // The sha1 OpenHTF wrote for the same bytes in sample_record.json.
        assert_eq!(a.sha1, "602184fac6c372eb0c552fed64897ec4835d729e");
        assert_eq!(
            attachments[1].sha1,
            "56178b86a57fac22899a9964185c2cc96e7da589"
        );
    }

    #[test]
    fn duplicate_names_and_missing_files_are_errors_naming_them() {
        let mut ctx = PhaseContext::new("SN1", "power_on", 1);
        ctx.attach("a.txt", "1").unwrap();
        let err = ctx.attach("a.txt", "2").unwrap_err();
        assert_eq!(
            err.to_string(),
            "phase `power_on` already has an attachment named `a.txt`"
        );
        let err = ctx.attach_file("/nonexistent/trace.csv").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("can't attach `/nonexistent/trace.csv`"),
            "{err}"
        );
    }

    #[test]
    fn files_keep_their_name_and_type() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trace.csv");
        std::fs::write(&path, "t,v\n0,1\n1,2\n").unwrap();
        let mut ctx = PhaseContext::new("SN1", "p", 1);
        ctx.attach_file(&path).unwrap();
        let a = &ctx.take_attachments()[0];
        assert_eq!(
            (a.name.as_str(), a.mimetype.as_deref(), a.size()),
            ("trace.csv", Some("text/csv"), 12)
        );
        assert_eq!(a.sha1, "1953bfb839f5e77d92c39b098c76c74f75004922");
    }
}
