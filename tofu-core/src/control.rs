//! Commands a front end (the station page, a remote tool, your own code) sends to a test or a
//! station while it runs: abort one slot, abort everything, answer a prompt.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::abort::Abort;
use crate::desk::{AnswerError, Desk, Reply};

/// What the runs under way can be told. Shared by a test or station and its [`Commands`].
#[derive(Debug, Default)]
pub(crate) struct Control {
    /// Each slot's run under way (a lone test is slot 0).
    runs: Mutex<Vec<Option<Arc<Abort>>>>,
    /// Each slot's prompt desk.
    desks: Mutex<Vec<Arc<Desk>>>,
}

impl Control {
    fn runs(&self) -> MutexGuard<'_, Vec<Option<Arc<Abort>>>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A run starts in `slot`: commands now reach its abort.
    pub(crate) fn run_started(&self, slot: usize, abort: &Arc<Abort>) {
        let mut runs = self.runs();
        if runs.len() <= slot {
            runs.resize(slot + 1, None);
        }
        runs[slot] = Some(Arc::clone(abort));
    }

    /// A test's (or slot's) desk: commands can answer its prompts.
    pub(crate) fn add_desk(&self, desk: &Arc<Desk>) {
        self.desks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(desk));
    }

    /// The run in `slot` has ended.
    pub(crate) fn run_ended(&self, slot: usize) {
        if let Some(run) = self.runs().get_mut(slot) {
            *run = None;
        }
    }
}

/// Sends commands to a [`Test`](crate::Test) or a [`Station`](crate::Station) while it runs,
/// from any thread. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Commands {
    pub(crate) control: Arc<Control>,
}

/// A command could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// No run is under way in that slot.
    #[error("no run is under way in slot {slot}")]
    NotRunning {
        /// The slot.
        slot: usize,
    },
    /// The prompt can't take that answer.
    #[error(transparent)]
    Answer(#[from] AnswerError),
}

impl Commands {
    /// Aborts the run of `slot` (0 for a lone test), as a first Ctrl-C would for it alone: the
    /// run is ABORTED, its teardowns run, its record is written. A second abort skips its
    /// teardowns.
    pub fn abort_slot(&self, slot: usize) -> Result<(), CommandError> {
        let abort = self
            .control
            .runs()
            .get(slot)
            .cloned()
            .flatten()
            .ok_or(CommandError::NotRunning { slot })?;
        abort.press();
        Ok(())
    }

    /// Answers the prompt `id` (from a `prompt_opened` event): the first answer wins, from
    /// here, the console or `--answer`. The asker checks it (a serial number's pattern, a
    /// number) and asks again, with a new prompt, when it refuses it.
    pub fn answer(&self, id: u64, value: impl Into<String>) -> Result<(), CommandError> {
        let value = value.into();
        let desks: Vec<Arc<Desk>> = self
            .control
            .desks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(desk) = desks.iter().find(|d| d.is_waiting(id)) else {
            return Err(AnswerError::NotOpen { id }.into());
        };
        desk.reply(
            id,
            Reply::Answer {
                value,
                by: "command".to_owned(),
            },
        )?;
        Ok(())
    }

    /// Aborts every run under way; returns how many were.
    pub fn abort_all(&self) -> usize {
        let runs: Vec<Arc<Abort>> = self.control.runs().iter().flatten().cloned().collect();
        for abort in &runs {
            abort.press();
        }
        runs.len()
    }
}
