//! Asking the operator: the unit's serial number, confirmations, values read at the bench.
//!
//! The serial number comes from code (`test.execute(|| "SN")`), from the command line
//! (`--serial SN` or `--serial=SN`, with [`SerialNumber::from_args`]) or from the console, typed
//! or scanned (a barcode scanner types the code and presses Enter):
//!
//! ```no_run
//! use tofu_core::prelude::*;
//!
//! # #[phase] fn check() {}
//! fn main() -> std::process::ExitCode {
//!     let serial = tofu_core::prompt::serial_number()
//!         .message("Scan the board's serial number")
//!         .pattern(r"^PCB\d{2}A\d{4}$") // asks again, saying why, until an answer matches
//!         .from_args(); // `--serial PCB01A0001` skips the question
//!     Test::new("FVT1")
//!         .phases([check])
//!         .execute(|| serial.ask()) // an error (no terminal, end of input…) is in the record
//!         .exit_code()
//! }
//! ```
//!
//! Phases ask through their [`PhaseContext`](crate::PhaseContext):
//!
//! ```no_run
//! use std::time::Duration;
//! use tofu_core::prelude::*;
//! use tofu_core::prompt::PromptError;
//!
//! #[phase]
//! #[measures(gap: f64 = in_range(3.2, 3.4).units(MILLIMETRE))]
//! fn gauge(test: &mut PhaseContext, m: &mut gauge::Measurements) -> Result<(), PromptError> {
//!     test.prompt_confirm("Insert the board, press Enter")?;
//!     let gap: f64 = test.prompt("Read the gauge (mm)").timeout(Duration::from_secs(60)).value()?;
//!     m.gap.set(gap); // a bad answer ("3,3", "") is refused and asked again
//!     Ok(())
//! }
//! ```
//!
//! The rules:
//!
//! - Questions are written on stderr (stdout is for the summary); answers are read from stdin,
//!   one line each, without surrounding spaces (a scanner's `\r\n` included).
//! - When stdin is not a terminal (CI, a pipe, a service), a question fails at once with an error
//!   naming it, instead of waiting for an answer nobody can type; unless answers are meant to
//!   come from stdin: set `TOFU_PROMPT_STDIN=1` ([`STDIN_VAR`]) or call
//!   [`answers_from_stdin(true)`](answers_from_stdin). Then the answers are read from the pipe,
//!   in order (`printf 'PCB01A0001\n\n3.3\n' | TOFU_PROMPT_STDIN=1 ./station`), and echoed on
//!   stderr.
//! - The end of stdin is an error, not an empty answer.
//! - With a timeout, a question unanswered in time fails with an error naming it and the delay.
//!   Stdin is read on a helper thread, started by the first question: a program that asks the
//!   operator should not read stdin otherwise. A line typed after a question timed out answers
//!   the next one.
//! - A phase returning a [`PromptError`] ends as ERROR with the message; a serial-number source
//!   returning one ends the run as ERROR with the code `SerialNumberUnavailable` (see
//!   [`IntoSerialNumber`]), and its record is still written.
//! - Answers are logged at DEBUG level, so they are in the record's logs.
//!
//! The `*_from` methods ask over any reader and writer (an in-memory buffer, a socket), which
//! is how a station with another console, or a test, drives them; a timeout applies to stdin
//! only.

use std::borrow::Cow;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, BufRead, IsTerminal, Write};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The environment variable that lets prompts read their answers from a stdin that is not a
/// terminal (a pipe): any value but empty, `0`, `false`, `no`, `off`.
pub const STDIN_VAR: &str = "TOFU_PROMPT_STDIN";

static ANSWERS_FROM_STDIN: AtomicBool = AtomicBool::new(false);

/// Lets prompts read their answers from stdin even when it is not a terminal (as
/// `TOFU_PROMPT_STDIN=1` does), for a program driven through a pipe. `false` leaves the decision
/// to the environment variable.
pub fn answers_from_stdin(yes: bool) {
    ANSWERS_FROM_STDIN.store(yes, Ordering::Relaxed);
}

fn stdin_allowed() -> bool {
    ANSWERS_FROM_STDIN.load(Ordering::Relaxed) || switch_is_on(std::env::var_os(STDIN_VAR))
}

fn switch_is_on(value: Option<OsString>) -> bool {
    value.is_some_and(|v| {
        let v = v.to_string_lossy().trim().to_ascii_lowercase();
        !matches!(v.as_str(), "" | "0" | "false" | "no" | "off")
    })
}

/// A question could not be answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PromptError {
    /// Stdin is not a terminal, and answers were not allowed to come from it.
    #[error("no terminal to ask '{prompt}' (stdin is not a TTY); {hint}")]
    NoTerminal {
        /// The question.
        prompt: String,
        /// How to give the answer instead.
        hint: String,
    },
    /// Stdin ended before an acceptable answer.
    #[error("no answer to '{prompt}': end of input (stdin is closed)")]
    EndOfInput {
        /// The question.
        prompt: String,
    },
    /// No answer came in time.
    #[error("no answer to '{prompt}' within {}", seconds(*timeout))]
    Timeout {
        /// The question.
        prompt: String,
        /// How long it waited for an answer.
        timeout: Duration,
    },
    /// Reading the answer failed.
    #[error("can't read the answer to '{prompt}': {source}")]
    Io {
        /// The question.
        prompt: String,
        /// Why.
        source: io::Error,
    },
    /// The value given on the command line is missing or refused.
    #[error("{0}")]
    InvalidArgument(String),
    /// The pattern answers must match is not a valid regex.
    #[error("the pattern of '{prompt}' is not a valid regex: {reason}")]
    InvalidPattern {
        /// The question.
        prompt: String,
        /// The regex compiler's message.
        reason: String,
    },
}

/// `30 s`, `0.25 s`.
fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// The hint of [`PromptError::NoTerminal`] for questions only stdin can answer.
const STDIN_HINT: &str = "pass the answers in order with --answer VALUE, or set TOFU_PROMPT_STDIN=1 to read them from stdin";

/// The answers given on the command line (`--answer VALUE`, repeatable), for the phases'
/// prompts in the order they ask.
static ARG_ANSWERS: Mutex<Option<std::collections::VecDeque<String>>> = Mutex::new(None);

/// The next `--answer` of the command line, if one is left.
fn next_arg_answer() -> Option<String> {
    let mut answers = ARG_ANSWERS.lock().unwrap_or_else(PoisonError::into_inner);
    answers
        .get_or_insert_with(|| answers_in(std::env::args_os().skip(1)))
        .pop_front()
}

/// The values of `--answer X` and `--answer=X`, up to a `--`.
fn answers_in(args: impl Iterator<Item = OsString>) -> std::collections::VecDeque<String> {
    let args: Vec<String> = args
        .map(|a| a.to_string_lossy().into_owned())
        .take_while(|a| a != "--")
        .collect();
    let mut answers = std::collections::VecDeque::new();
    let mut i = 0;
    while i < args.len() {
        if let Some(value) = args[i].strip_prefix("--answer=") {
            answers.push_back(value.to_owned());
        } else if args[i] == "--answer"
            && let Some(value) = args.get(i + 1)
        {
            answers.push_back(value.clone());
            i += 1;
        }
        i += 1;
    }
    answers
}

/// A source of the unit's serial number: the command line, else a question on the console.
///
/// Made by [`serial_number()`]; use it as `test.execute(|| serial.ask())`.
#[derive(Debug, Clone)]
#[must_use]
pub struct SerialNumber {
    message: String,
    pattern: Option<String>,
    from_args: bool,
    timeout: Option<Duration>,
}

/// A serial-number source asking "Scan the serial number", accepting any non-empty answer.
pub fn serial_number() -> SerialNumber {
    SerialNumber {
        message: "Scan the serial number".to_owned(),
        pattern: None,
        from_args: false,
        timeout: None,
    }
}

impl SerialNumber {
    /// The question shown to the operator.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// A regex the serial number must match (`^…$` to match all of it); a typed answer that
    /// doesn't is refused, saying why, and asked again.
    pub fn pattern(mut self, regex: impl Into<String>) -> Self {
        self.pattern = Some(regex.into());
        self
    }

    /// Takes the serial number from the command line when it has `--serial SN` or
    /// `--serial=SN` (the last one given), without asking; it must match the pattern too.
    pub fn from_args(mut self) -> Self {
        self.from_args = true;
        self
    }

    /// Waits at most this long for each answer.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The serial number: from the command line (with [`from_args`](Self::from_args)), else
    /// asked on stderr and read from stdin, until a valid one is given.
    pub fn ask(&self) -> Result<String, PromptError> {
        let pattern = self.compile()?;
        if self.from_args
            && let Some(serial) = serial_from_args(std::env::args_os().skip(1))?
        {
            return check_serial(&serial, pattern.as_ref())
                .map(|()| serial.trim().to_owned())
                .map_err(|reason| {
                    PromptError::InvalidArgument(format!(
                        "the serial number given with --serial is refused: {reason}"
                    ))
                });
        }
        let hint = if self.from_args {
            "pass --serial SN or set TOFU_PROMPT_STDIN=1"
        } else {
            STDIN_HINT
        };
        with_stdin(&self.message, hint, |answers, out| {
            self.ask_over(answers, out, pattern.as_ref())
        })
    }

    /// Asks over `input` and `output` instead of stdin and stderr (no command line, no
    /// timeout).
    pub fn ask_from(
        &self,
        input: impl BufRead,
        mut output: impl Write,
    ) -> Result<String, PromptError> {
        let pattern = self.compile()?;
        self.ask_over(&mut Reader(input), &mut output, pattern.as_ref())
    }

    /// Why `serial` would be refused, if it would.
    pub fn check(&self, serial: &str) -> Result<(), String> {
        let pattern = self.compile().map_err(|e| e.to_string())?;
        check_serial(serial, pattern.as_ref())
    }

    fn compile(&self) -> Result<Option<regex::Regex>, PromptError> {
        self.pattern
            .as_deref()
            .map(regex::Regex::new)
            .transpose()
            .map_err(|e| PromptError::InvalidPattern {
                prompt: self.message.clone(),
                reason: e.to_string(),
            })
    }

    fn ask_over(
        &self,
        answers: &mut dyn Answers,
        out: &mut dyn Write,
        pattern: Option<&regex::Regex>,
    ) -> Result<String, PromptError> {
        ask(&self.message, self.timeout, answers, out, |answer| {
            check_serial(answer, pattern).map(|()| answer.to_owned())
        })
    }
}

fn check_serial(serial: &str, pattern: Option<&regex::Regex>) -> Result<(), String> {
    let serial = serial.trim();
    if serial.is_empty() {
        return Err("the serial number is empty".to_owned());
    }
    match pattern {
        Some(p) if !p.is_match(serial) => Err(format!(
            "'{serial}' does not match the pattern {}",
            p.as_str()
        )),
        _ => Ok(()),
    }
}

/// The value of the last `--serial SN` / `--serial=SN` before `--`, if any.
fn serial_from_args(
    args: impl IntoIterator<Item = OsString>,
) -> Result<Option<String>, PromptError> {
    let mut args = args.into_iter().map(|a| a.to_string_lossy().into_owned());
    let mut serial = None;
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        } else if arg == "--serial" {
            match args.next() {
                Some(value) if !value.starts_with("--") => serial = Some(value),
                _ => {
                    return Err(PromptError::InvalidArgument(
                        "--serial needs a value: --serial SN".to_owned(),
                    ));
                }
            }
        } else if let Some(value) = arg.strip_prefix("--serial=") {
            serial = Some(value.to_owned());
        }
    }
    Ok(serial)
}

/// A question to the operator, from a phase: [`PhaseContext::prompt`](crate::PhaseContext::prompt),
/// or [`Prompt::new`] anywhere else.
#[derive(Debug, Clone)]
#[must_use]
pub struct Prompt {
    message: String,
    timeout: Option<Duration>,
}

impl Prompt {
    /// A question showing `message`, waiting as long as it takes.
    pub fn new(message: impl Into<String>) -> Self {
        Prompt {
            message: message.into(),
            timeout: None,
        }
    }

    /// Waits at most this long for each answer.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Waits for Enter (any answer confirms).
    pub fn confirm(&self) -> Result<(), PromptError> {
        if let Some(answer) = next_arg_answer() {
            return self.confirm_from(io::Cursor::new(format!("{answer}\n")), io::stderr().lock());
        }
        with_stdin(&self.message, STDIN_HINT, |answers, out| {
            self.confirm_over(answers, out)
        })
    }

    /// A value typed by the operator, parsed with [`FromStr`]; an empty or unparsable answer is
    /// refused, saying why, and asked again.
    pub fn value<T>(&self) -> Result<T, PromptError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        if let Some(answer) = next_arg_answer() {
            return self.value_from(io::Cursor::new(format!("{answer}\n")), io::stderr().lock());
        }
        with_stdin(&self.message, STDIN_HINT, |answers, out| {
            self.value_over(answers, out)
        })
    }

    /// [`confirm`](Self::confirm) over `input` and `output` instead of stdin and stderr.
    pub fn confirm_from(
        &self,
        input: impl BufRead,
        mut output: impl Write,
    ) -> Result<(), PromptError> {
        self.confirm_over(&mut Reader(input), &mut output)
    }

    /// [`value`](Self::value) over `input` and `output` instead of stdin and stderr.
    pub fn value_from<T>(
        &self,
        input: impl BufRead,
        mut output: impl Write,
    ) -> Result<T, PromptError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.value_over(&mut Reader(input), &mut output)
    }

    fn confirm_over(
        &self,
        answers: &mut dyn Answers,
        out: &mut dyn Write,
    ) -> Result<(), PromptError> {
        ask(&self.message, self.timeout, answers, out, |_| Ok(()))
    }

    fn value_over<T>(
        &self,
        answers: &mut dyn Answers,
        out: &mut dyn Write,
    ) -> Result<T, PromptError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        ask(&self.message, self.timeout, answers, out, parse::<T>)
    }
}

fn parse<T>(answer: &str) -> Result<T, String>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    if answer.is_empty() {
        return Err("an answer is needed".to_owned());
    }
    answer.parse().map_err(|e| {
        let full = std::any::type_name::<T>();
        let short = full.rsplit("::").next().unwrap_or(full);
        format!("'{answer}' is not a valid {short} ({e})")
    })
}

/// Where answers come from, one line at a time.
trait Answers {
    /// The next line (untrimmed), `None` at the end of the input.
    fn next_line(&mut self, timeout: Option<Duration>) -> Result<Option<String>, LineError>;

    /// Whether what the operator types is already on the screen (a terminal echoes it).
    fn echoes(&self) -> bool;
}

enum LineError {
    TimedOut,
    Io(io::Error),
}

/// Answers read from any reader, without timeouts.
struct Reader<R>(R);

impl<R: BufRead> Answers for Reader<R> {
    fn next_line(&mut self, _timeout: Option<Duration>) -> Result<Option<String>, LineError> {
        read_line(&mut self.0).map_err(LineError::Io)
    }

    fn echoes(&self) -> bool {
        false
    }
}

/// A line, lossily decoded (a scanner's odd byte doesn't end the questions); `None` at the end.
fn read_line(input: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    match input.read_until(b'\n', &mut line)? {
        0 => Ok(None),
        _ => Ok(Some(String::from_utf8_lossy(&line).into_owned())),
    }
}

/// What the stdin thread sends: a line, the end, or the error that ended it.
type Line = io::Result<Option<String>>;

/// Answers received from the stdin thread, with timeouts.
struct Channel<'a> {
    lines: &'a Receiver<Line>,
    echoes: bool,
}

impl Answers for Channel<'_> {
    fn next_line(&mut self, timeout: Option<Duration>) -> Result<Option<String>, LineError> {
        let received = match timeout {
            None => self.lines.recv().ok(),
            Some(t) => match self.lines.recv_timeout(t) {
                Ok(line) => Some(line),
                Err(RecvTimeoutError::Timeout) => return Err(LineError::TimedOut),
                Err(RecvTimeoutError::Disconnected) => None,
            },
        };
        // Once the thread has sent the end (or an error) it is gone: the end, again.
        received.unwrap_or(Ok(None)).map_err(LineError::Io)
    }

    fn echoes(&self) -> bool {
        self.echoes
    }
}

/// The lines of stdin, read by a thread started on first use. Held for a whole question, so
/// that questions from two threads don't take each other's answers.
static STDIN_LINES: Mutex<Option<Receiver<Line>>> = Mutex::new(None);

std::thread_local! {
    /// Set while the executor takes a serial number it won't test (the test can't run): a
    /// serial given on the command line is taken, nobody is asked to scan a board.
    static NOT_ASKING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Calls `f` with asking on the console turned off on this thread: a prompt fails at once as
/// if there were no terminal; a value given on the command line is still taken.
pub(crate) fn without_asking<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            NOT_ASKING.with(|n| n.set(self.0));
        }
    }
    let _reset = Reset(NOT_ASKING.with(|n| n.replace(true)));
    f()
}

/// Runs `f` over stdin's answers and stderr, if stdin may be asked.
fn with_stdin<T>(
    prompt: &str,
    hint: &str,
    f: impl FnOnce(&mut dyn Answers, &mut dyn Write) -> Result<T, PromptError>,
) -> Result<T, PromptError> {
    if NOT_ASKING.with(std::cell::Cell::get) {
        return Err(PromptError::NoTerminal {
            prompt: prompt.to_owned(),
            hint: "not asked: the test can't run".to_owned(),
        });
    }
    let terminal = io::stdin().is_terminal();
    check_can_ask(prompt, hint, terminal, stdin_allowed())?;
    let mut lines = STDIN_LINES.lock().unwrap_or_else(PoisonError::into_inner);
    if lines.is_none() {
        *lines = Some(spawn_stdin_reader().map_err(|source| PromptError::Io {
            prompt: prompt.to_owned(),
            source,
        })?);
    }
    let Some(lines) = lines.as_ref() else {
        unreachable!("set just above")
    };
    let mut answers = Channel {
        lines,
        echoes: terminal,
    };
    f(&mut answers, &mut io::stderr().lock())
}

fn check_can_ask(
    prompt: &str,
    hint: &str,
    terminal: bool,
    stdin_allowed: bool,
) -> Result<(), PromptError> {
    if terminal || stdin_allowed {
        Ok(())
    } else {
        Err(PromptError::NoTerminal {
            prompt: prompt.to_owned(),
            hint: hint.to_owned(),
        })
    }
}

fn spawn_stdin_reader() -> io::Result<Receiver<Line>> {
    let (send, receive) = mpsc::channel();
    std::thread::Builder::new()
        .name("tofu-prompt-stdin".to_owned())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            loop {
                let line = read_line(&mut stdin);
                let last = !matches!(line, Ok(Some(_)));
                if send.send(line).is_err() || last {
                    break;
                }
            }
        })?;
    Ok(receive)
}

/// Asks `prompt` until `accept` takes an answer (trimmed), saying why each refused one is.
fn ask<T>(
    prompt: &str,
    timeout: Option<Duration>,
    answers: &mut dyn Answers,
    out: &mut dyn Write,
    mut accept: impl FnMut(&str) -> Result<T, String>,
) -> Result<T, PromptError> {
    // The console is best effort: an operator who can't see the question can still answer it.
    let within = timeout.map_or_else(String::new, |t| format!(" (within {})", seconds(t)));
    loop {
        let _ = write!(out, "{prompt}{within}\n> ");
        let _ = out.flush();
        let line = match answers.next_line(timeout) {
            Ok(Some(line)) => line,
            Ok(None) => {
                let _ = writeln!(out);
                return Err(PromptError::EndOfInput {
                    prompt: prompt.to_owned(),
                });
            }
            Err(LineError::TimedOut) => {
                let _ = writeln!(out);
                return Err(PromptError::Timeout {
                    prompt: prompt.to_owned(),
                    timeout: timeout.unwrap_or_default(),
                });
            }
            Err(LineError::Io(source)) => {
                let _ = writeln!(out);
                return Err(PromptError::Io {
                    prompt: prompt.to_owned(),
                    source,
                });
            }
        };
        let answer = line.trim();
        if !answers.echoes() {
            let _ = writeln!(out, "{answer}");
        }
        match accept(answer) {
            Ok(value) => {
                tracing::debug!("'{prompt}': answered {answer:?}");
                return Ok(value);
            }
            Err(reason) => {
                tracing::debug!("'{prompt}': answer {answer:?} refused: {reason}");
                let _ = writeln!(out, "{reason}; try again.");
                let _ = out.flush();
            }
        }
    }
}

/// What a serial-number source given to [`Test::execute`](crate::Test::execute) may return:
/// the serial number (`String`, `&str`…), or a `Result` of one with any error that implements
/// `Display` ([`PromptError`] among them).
///
/// An error ends the run before its first phase, as ERROR with the code
/// `SerialNumberUnavailable` and the error's message; the record is still written.
#[diagnostic::on_unimplemented(
    message = "a serial-number source can't return `{Self}`",
    label = "return a `String`, a `&str`, or a `Result` of one with an error that implements `Display`"
)]
pub trait IntoSerialNumber {
    /// The serial number, or why there is none.
    fn into_serial_number(self) -> Result<String, String>;

    /// Whether this says there is no unit at all (`None`: a station's empty slot, which then
    /// makes no run).
    fn is_no_unit(&self) -> bool {
        false
    }
}

/// `None` is no unit: a station leaves that slot empty (no run, no record); a single test
/// records it as an error (no serial number).
impl<S: IntoSerialNumber> IntoSerialNumber for Option<S> {
    fn into_serial_number(self) -> Result<String, String> {
        self.ok_or_else(|| "no unit (none was given)".to_owned())?
            .into_serial_number()
    }

    fn is_no_unit(&self) -> bool {
        self.is_none()
    }
}

impl IntoSerialNumber for String {
    fn into_serial_number(self) -> Result<String, String> {
        Ok(self)
    }
}

impl IntoSerialNumber for &str {
    fn into_serial_number(self) -> Result<String, String> {
        Ok(self.to_owned())
    }
}

impl IntoSerialNumber for &mut str {
    fn into_serial_number(self) -> Result<String, String> {
        Ok(self.to_owned())
    }
}

impl IntoSerialNumber for &String {
    fn into_serial_number(self) -> Result<String, String> {
        Ok(self.clone())
    }
}

impl IntoSerialNumber for Box<str> {
    fn into_serial_number(self) -> Result<String, String> {
        Ok(self.into())
    }
}

impl IntoSerialNumber for Cow<'_, str> {
    fn into_serial_number(self) -> Result<String, String> {
        Ok(self.into_owned())
    }
}

impl IntoSerialNumber for char {
    fn into_serial_number(self) -> Result<String, String> {
        Ok(self.into())
    }
}

impl<S: IntoSerialNumber, E: fmt::Display> IntoSerialNumber for Result<S, E> {
    fn into_serial_number(self) -> Result<String, String> {
        self.map_err(|e| e.to_string())?.into_serial_number()
    }
}

#[cfg(test)]
mod answer_arg_tests {
    use super::*;

    #[test]
    fn answers_are_read_from_the_command_line_in_order() {
        let args = [
            "--serial",
            "SN1",
            "--answer",
            "yes",
            "--answer=3.3",
            "--answer",
            "",
            "--",
            "--answer",
            "no",
        ];
        let answers = answers_in(args.iter().map(OsString::from));
        assert_eq!(answers, ["yes", "3.3", ""]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serial() -> SerialNumber {
        serial_number()
            .message("Scan the board's serial number")
            .pattern(r"^PCB\d{2}A\d{4}$")
    }

    /// Asks `serial()` over `input`; returns the answer and what the console showed.
    fn ask_serial(input: &str) -> (Result<String, PromptError>, String) {
        let mut console = Vec::new();
        let result = serial().ask_from(input.as_bytes(), &mut console);
        (result, String::from_utf8_lossy(&console).into_owned())
    }

    #[test]
    fn a_refused_serial_number_is_asked_again_saying_why() {
        let (result, console) = ask_serial("bad\n\n  PCB01A0001\r\n");
        assert_eq!(result.unwrap(), "PCB01A0001");
        assert_eq!(
            console,
            "Scan the board's serial number\n> bad\n\
             'bad' does not match the pattern ^PCB\\d{2}A\\d{4}$; try again.\n\
             Scan the board's serial number\n> \n\
             the serial number is empty; try again.\n\
             Scan the board's serial number\n> PCB01A0001\n"
        );
    }

    #[test]
    fn the_end_of_the_input_is_an_error_not_an_empty_answer() {
        for input in ["", "bad\n"] {
            let (result, _) = ask_serial(input);
            let err = result.unwrap_err();
            assert!(matches!(err, PromptError::EndOfInput { .. }), "{err:?}");
            assert_eq!(
                err.to_string(),
                "no answer to 'Scan the board's serial number': end of input (stdin is closed)"
            );
        }
        // The last line needs no line end.
        assert_eq!(ask_serial("PCB01A0001").0.unwrap(), "PCB01A0001");
    }

    #[test]
    fn serial_numbers_are_checked_without_asking() {
        assert_eq!(serial().check("PCB01A0001"), Ok(()));
        assert_eq!(
            serial().check("PCB1"),
            Err(r"'PCB1' does not match the pattern ^PCB\d{2}A\d{4}$".to_owned())
        );
        assert_eq!(
            serial_number().check(" "),
            Err("the serial number is empty".to_owned())
        );
        assert_eq!(serial_number().check("anything"), Ok(()));
    }

    #[test]
    fn an_invalid_pattern_is_an_error_before_asking() {
        let mut console = Vec::new();
        let err = serial_number()
            .pattern("PCB(")
            .ask_from("PCB(\n".as_bytes(), &mut console)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the pattern of 'Scan the serial number' is not a valid regex:"),
            "{err}"
        );
        assert!(console.is_empty());
    }

    #[test]
    fn values_are_parsed_and_asked_again_when_they_dont_parse() {
        let mut console = Vec::new();
        let value: f64 = Prompt::new("Read the gauge (mm)")
            .value_from("3,3\n\n 3.3 \n".as_bytes(), &mut console)
            .unwrap();
        assert_eq!(value, 3.3);
        let console = String::from_utf8_lossy(&console);
        assert!(
            console.contains("'3,3' is not a valid f64 (invalid float literal); try again.\n"),
            "{console}"
        );
        assert!(
            console.contains("an answer is needed; try again.\n"),
            "{console}"
        );
        assert_eq!(console.matches("Read the gauge (mm)\n> ").count(), 3);

        let n: u32 = Prompt::new("Count the LEDs")
            .value_from("-1\n4\n".as_bytes(), io::sink())
            .unwrap();
        assert_eq!(n, 4);
        let s: String = Prompt::new("Operator")
            .value_from("Ada\n".as_bytes(), io::sink())
            .unwrap();
        assert_eq!(s, "Ada");
        let err = Prompt::new("Read the gauge (mm)")
            .value_from::<f64>("x\n".as_bytes(), io::sink())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no answer to 'Read the gauge (mm)': end of input (stdin is closed)"
        );
    }

    #[test]
    fn any_line_confirms_and_the_end_does_not() {
        let confirm = Prompt::new("Insert the board, press Enter");
        confirm.confirm_from("\n".as_bytes(), io::sink()).unwrap();
        confirm.confirm_from("ok\n".as_bytes(), io::sink()).unwrap();
        let err = confirm.confirm_from("".as_bytes(), io::sink()).unwrap_err();
        assert!(matches!(err, PromptError::EndOfInput { .. }), "{err:?}");
    }

    #[test]
    fn the_serial_number_is_found_on_the_command_line() {
        let args = |a: &[&str]| serial_from_args(a.iter().map(OsString::from));
        assert_eq!(args(&[]).unwrap(), None);
        assert_eq!(args(&["--other", "x"]).unwrap(), None);
        assert_eq!(
            args(&["--serial", "PCB01A0001"]).unwrap().as_deref(),
            Some("PCB01A0001")
        );
        assert_eq!(
            args(&["-v", "--serial=PCB01A0002"]).unwrap().as_deref(),
            Some("PCB01A0002")
        );
        assert_eq!(
            args(&["--serial=A", "--serial", "B"]).unwrap().as_deref(),
            Some("B")
        );
        assert_eq!(args(&["--", "--serial", "B"]).unwrap(), None);
        for missing in [&["--serial"][..], &["--serial", "--verbose"]] {
            assert_eq!(
                args(missing).unwrap_err().to_string(),
                "--serial needs a value: --serial SN"
            );
        }
    }

    #[test]
    fn without_a_terminal_a_question_fails_at_once_saying_what_to_do() {
        let prompt = "Scan the serial number";
        let hint = "pass --serial SN or set TOFU_PROMPT_STDIN=1";
        assert_eq!(
            check_can_ask(prompt, hint, false, false)
                .unwrap_err()
                .to_string(),
            "no terminal to ask 'Scan the serial number' (stdin is not a TTY); \
             pass --serial SN or set TOFU_PROMPT_STDIN=1"
        );
        assert!(check_can_ask(prompt, hint, true, false).is_ok());
        assert!(check_can_ask(prompt, hint, false, true).is_ok());
    }

    #[test]
    fn the_stdin_switch_is_on_for_any_value_but_off_words() {
        for off in [
            None,
            Some(""),
            Some("0"),
            Some("false"),
            Some(" No "),
            Some("off"),
        ] {
            assert!(!switch_is_on(off.map(OsString::from)), "{off:?}");
        }
        for on in ["1", "yes", "true", "stdin"] {
            assert!(switch_is_on(Some(OsString::from(on))), "{on}");
        }
    }

    #[test]
    fn a_question_times_out_naming_itself_and_the_delay() {
        let (send, lines) = mpsc::channel::<Line>();
        let mut answers = Channel {
            lines: &lines,
            echoes: false,
        };
        let prompt = Prompt::new("Read the gauge (mm)").timeout(Duration::from_millis(50));
        let mut console = Vec::new();
        let started = std::time::Instant::now();
        let err = prompt
            .value_over::<f64>(&mut answers, &mut console)
            .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(
            err.to_string(),
            "no answer to 'Read the gauge (mm)' within 0.05 s"
        );
        assert!(
            String::from_utf8_lossy(&console)
                .starts_with("Read the gauge (mm) (within 0.05 s)\n> ")
        );

        // In time, it answers; the end of the thread's lines is the end of the input.
        send.send(Ok(Some("3.3\n".into()))).unwrap();
        let v: f64 = prompt.value_over(&mut answers, &mut io::sink()).unwrap();
        assert_eq!(v, 3.3);
        send.send(Ok(None)).unwrap();
        drop(send);
        for _ in 0..2 {
            let err = prompt
                .confirm_over(&mut answers, &mut io::sink())
                .unwrap_err();
            assert!(matches!(err, PromptError::EndOfInput { .. }), "{err:?}");
        }
    }

    #[test]
    fn a_terminal_is_not_echoed_to() {
        let (send, lines) = mpsc::channel::<Line>();
        send.send(Ok(Some("PCB01A0001\n".into()))).unwrap();
        let mut answers = Channel {
            lines: &lines,
            echoes: true,
        };
        let mut console = Vec::new();
        let sn = serial()
            .ask_over(
                &mut answers,
                &mut console,
                serial().compile().unwrap().as_ref(),
            )
            .unwrap();
        assert_eq!(sn, "PCB01A0001");
        assert_eq!(
            String::from_utf8_lossy(&console),
            "Scan the board's serial number\n> "
        );
    }

    #[test]
    fn serial_number_sources_return_strings_or_results() {
        let owned = String::from("SN3");
        assert_eq!("SN1".into_serial_number(), Ok("SN1".into()));
        assert_eq!(String::from("SN2").into_serial_number(), Ok("SN2".into()));
        assert_eq!((&owned).into_serial_number(), Ok("SN3".into()));
        assert_eq!(Cow::Borrowed("SN4").into_serial_number(), Ok("SN4".into()));
        assert_eq!(
            Ok::<_, PromptError>("SN5").into_serial_number(),
            Ok("SN5".into())
        );
        let err: Result<String, PromptError> = Err(PromptError::EndOfInput {
            prompt: "Scan".into(),
        });
        assert_eq!(
            err.into_serial_number(),
            Err("no answer to 'Scan': end of input (stdin is closed)".into())
        );
    }
}
