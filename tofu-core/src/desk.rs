//! The prompt desk of a test (one per slot of a station): the questions a run asks the
//! operator, as requests any front end can answer — the console (stdin), `--answer` on the
//! command line, a command ([`Commands::answer`](crate::Commands::answer), the station page).
//! The first answer wins; the others find the prompt closed.
//!
//! Asking holds no lock anyone else needs: the question waits on the desk's own condition,
//! giving up at its timeout, at its run's abort, or when its phase is given up on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::abort::Abort;
use crate::bus::EventBus;
use crate::event::{EventKind, PromptKind};

/// The longest answer taken, in bytes: a serial number or a reading is short; a scanner or a
/// stdin that never sends a newline can't grow memory without bound.
pub const MAX_ANSWER: usize = 1024;

/// How often a waiting question looks at its abort and its phase.
const POLL: Duration = Duration::from_millis(20);

/// A test's (or a station slot's) open prompts.
#[derive(Debug)]
pub(crate) struct Desk {
    bus: Arc<EventBus>,
    slot: Option<usize>,
    open: Mutex<Vec<Open>>,
    changed: Condvar,
}

#[derive(Debug)]
struct Open {
    id: u64,
    /// A serial number is asked (what a slot waits for to start).
    serial: bool,
    reply: Option<Reply>,
}

/// What a front end gives a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// An answer, and who gave it (`console`, `args`, `command`…).
    Answer { value: String, by: String },
    /// Input came that can't be an answer (too long): the asker says why and asks again.
    Refused(String),
    /// The input ended (stdin closed): no answer will come from it.
    EndOfInput,
}

/// Why a prompt closed without an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Closed {
    /// Its time ran out.
    TimedOut,
    /// The run was aborted.
    Aborted,
    /// Its phase was given up on (its timeout passed).
    Stopped,
}

/// An answer could not be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    /// No open prompt has that id (it was answered, or closed, or never was).
    #[error("no open prompt {id} (answered already, closed, or unknown)")]
    NotOpen {
        /// The prompt's id.
        id: u64,
    },
    /// The answer is longer than [`MAX_ANSWER`] bytes.
    #[error("the answer is {len} bytes long; {MAX_ANSWER} at most")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
}

/// What a question waits for besides its answer.
#[derive(Debug, Clone)]
pub(crate) struct Waiting {
    pub(crate) abort: Arc<Abort>,
    pub(crate) level: u32,
    pub(crate) stop: Option<Arc<AtomicBool>>,
}

impl Desk {
    pub(crate) fn new(bus: Arc<EventBus>, slot: Option<usize>) -> Self {
        Desk {
            bus,
            slot,
            open: Mutex::new(Vec::new()),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Open>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a front end other than the console may answer (someone observes the events).
    pub(crate) fn is_observed(&self) -> bool {
        self.bus.is_observed()
    }

    /// Opens a prompt; returns its id. Answer it with [`Desk::answer`], wait with
    /// [`Desk::wait`].
    #[cfg(test)]
    pub(crate) fn open(&self, message: &str, kind: PromptKind) -> u64 {
        self.open_with_image(message, kind, None)
    }

    /// [`Desk::open`], showing an image (a `data:` URL) with the question.
    pub(crate) fn open_with_image(
        &self,
        message: &str,
        kind: PromptKind,
        image: Option<String>,
    ) -> u64 {
        let id = self.bus.next_prompt_id();
        let serial = matches!(kind, PromptKind::SerialNumber { .. });
        self.lock().push(Open {
            id,
            serial,
            reply: None,
        });
        self.bus.publish(
            self.slot,
            EventKind::PromptOpened {
                id,
                message: message.to_owned(),
                kind,
                image,
            },
        );
        id
    }

    /// Replies to prompt `id` (the first reply wins).
    pub(crate) fn reply(&self, id: u64, reply: Reply) -> Result<(), AnswerError> {
        if let Reply::Answer { value, .. } = &reply
            && value.len() > MAX_ANSWER
        {
            return Err(AnswerError::TooLong { len: value.len() });
        }
        let mut open = self.lock();
        let prompt = open
            .iter_mut()
            .find(|p| p.id == id && p.reply.is_none())
            .ok_or(AnswerError::NotOpen { id })?;
        prompt.reply = Some(reply);
        drop(open);
        self.changed.notify_all();
        Ok(())
    }

    /// The slot this desk belongs to (a lone test's: `None`).
    pub(crate) fn slot(&self) -> Option<usize> {
        self.slot
    }

    /// The open prompt asking for a serial number, if one waits.
    pub(crate) fn serial_prompt(&self) -> Option<u64> {
        self.lock()
            .iter()
            .find(|p| p.serial && p.reply.is_none())
            .map(|p| p.id)
    }

    /// Whether prompt `id` is still waiting for its answer.
    pub(crate) fn is_waiting(&self, id: u64) -> bool {
        self.lock().iter().any(|p| p.id == id && p.reply.is_none())
    }

    /// Waits for prompt `id`'s answer until `deadline`, the abort or the stop; the prompt is
    /// closed either way.
    pub(crate) fn wait(
        &self,
        id: u64,
        deadline: Option<Instant>,
        waiting: &Waiting,
    ) -> Result<Reply, Closed> {
        let mut open = self.lock();
        let ended = loop {
            if let Some(i) = open.iter().position(|p| p.id == id && p.reply.is_some())
                && let Some(reply) = open.remove(i).reply
            {
                break Ok(reply);
            }
            if waiting.abort.reached(waiting.level) {
                break Err(Closed::Aborted);
            }
            if waiting
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Relaxed))
            {
                break Err(Closed::Stopped);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                break Err(Closed::TimedOut);
            }
            let wait = deadline.map_or(POLL, |d| POLL.min(d - now));
            open = self
                .changed
                .wait_timeout(open, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        };
        open.retain(|p| p.id != id);
        drop(open);
        let kind = match &ended {
            Ok(Reply::Answer { value, by }) => EventKind::PromptAnswered {
                id,
                value: value.clone(),
                by: by.clone(),
            },
            Ok(Reply::Refused(reason)) => EventKind::PromptClosed {
                id,
                reason: reason.clone(),
            },
            Ok(Reply::EndOfInput) => EventKind::PromptClosed {
                id,
                reason: "end of input".to_owned(),
            },
            Err(closed) => EventKind::PromptClosed {
                id,
                reason: match closed {
                    Closed::TimedOut => "timed out",
                    Closed::Aborted => "the run was aborted",
                    Closed::Stopped => "its phase was given up on",
                }
                .to_owned(),
            },
        };
        self.bus.publish(self.slot, kind);
        ended
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn desk() -> Arc<Desk> {
        Arc::new(Desk::new(Arc::new(EventBus::new()), None))
    }

    fn waiting() -> Waiting {
        Waiting {
            abort: Arc::new(Abort::new()),
            level: 1,
            stop: None,
        }
    }

    fn answer(value: &str, by: &str) -> Reply {
        Reply::Answer {
            value: value.into(),
            by: by.into(),
        }
    }

    #[test]
    fn the_first_answer_wins_and_the_others_find_it_closed() {
        let desk = desk();
        let id = desk.open("Scan", PromptKind::Text);
        desk.reply(id, answer("SN1", "console")).unwrap();
        assert_eq!(
            desk.reply(id, answer("SN2", "page")),
            Err(AnswerError::NotOpen { id })
        );
        assert_eq!(
            desk.wait(id, None, &waiting()),
            Ok(answer("SN1", "console"))
        );
        assert!(!desk.is_waiting(id));
        assert_eq!(
            desk.reply(id, answer("late", "page")),
            Err(AnswerError::NotOpen { id })
        );
    }

    #[test]
    fn a_waiting_prompt_ends_at_its_timeout_its_abort_or_its_stop() {
        let desk = desk();
        let id = desk.open("q", PromptKind::Confirm);
        let soon = Some(Instant::now() + Duration::from_millis(30));
        assert_eq!(desk.wait(id, soon, &waiting()), Err(Closed::TimedOut));
        let w = waiting();
        let id = desk.open("q", PromptKind::Confirm);
        let abort = Arc::clone(&w.abort);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            abort.press();
        });
        assert_eq!(desk.wait(id, None, &w), Err(Closed::Aborted));
        let stop = Arc::new(AtomicBool::new(true));
        let w = Waiting {
            stop: Some(stop),
            ..waiting()
        };
        let id = desk.open("q", PromptKind::Confirm);
        assert_eq!(desk.wait(id, None, &w), Err(Closed::Stopped));
        assert!(desk.lock().is_empty());
    }

    #[test]
    fn an_answer_too_long_is_refused() {
        let desk = desk();
        let id = desk.open("q", PromptKind::Text);
        let long = "x".repeat(MAX_ANSWER + 1);
        assert_eq!(
            desk.reply(id, answer(&long, "page")),
            Err(AnswerError::TooLong {
                len: MAX_ANSWER + 1
            })
        );
        assert!(desk.is_waiting(id));
    }
}
