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
use std::cell::RefCell;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, BufRead, IsTerminal, Write};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::abort::Abort;
use crate::bus::EventBus;
use crate::desk::{Closed, Desk, MAX_ANSWER, Reply, Waiting};
use crate::event::PromptKind;

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
    /// The run was aborted (Ctrl-C, a signal, a command) while the question waited.
    #[error("no answer to '{prompt}': the run was aborted")]
    Aborted {
        /// The question.
        prompt: String,
    },
    /// The phase that asked was given up on (its timeout passed) while the question waited.
    #[error("no answer to '{prompt}': its phase was given up on (timeout)")]
    Stopped {
        /// The question.
        prompt: String,
    },
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
        let kind = PromptKind::SerialNumber {
            pattern: self.pattern.clone(),
        };
        with_desk(
            &self.message,
            kind,
            None,
            hint,
            self.timeout,
            |answers, out| self.ask_over(answers, out, pattern.as_ref()),
        )
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
    /// An image shown with the question by a front end (a `data:` URL).
    image: Option<String>,
}

impl Prompt {
    /// A question showing `message`, waiting as long as it takes.
    pub fn new(message: impl Into<String>) -> Self {
        Prompt {
            message: message.into(),
            timeout: None,
            image: None,
        }
    }

    /// Shows an image with the question on a front end that can (the station page): the
    /// connector to look at, the LED pattern to compare. `mimetype` is an image type
    /// (`image/png`, `image/jpeg`, `image/svg+xml`…); the console shows the text only.
    pub fn image(mut self, mimetype: &str, bytes: &[u8]) -> Self {
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode(bytes);
        self.image = Some(format!("data:{mimetype};base64,{data}"));
        self
    }

    /// A number within `min..=max`; an answer outside, empty or not a number is refused,
    /// saying why, and asked again.
    pub fn number(&self, min: f64, max: f64) -> Result<f64, PromptError> {
        let kind = PromptKind::Number {
            min: Some(min),
            max: Some(max),
        };
        self.ask_kind(kind, |answer| check_number(answer, min, max))
    }

    /// One of `options`: its text (any case) or its number from 1; another answer is refused
    /// and asked again. Returns the option as given.
    pub fn choice<S: AsRef<str>>(&self, options: &[S]) -> Result<String, PromptError> {
        let options: Vec<String> = options.iter().map(|o| o.as_ref().to_owned()).collect();
        let kind = PromptKind::Choice {
            options: options.clone(),
        };
        self.ask_kind(kind, |answer| check_choice(answer, &options))
    }

    /// The operator's judgement: `true` for `pass` (or `p`, `y`, `yes`), `false` for `fail`
    /// (or `f`, `n`, `no`); another answer is refused and asked again.
    pub fn pass_fail(&self) -> Result<bool, PromptError> {
        self.ask_kind(PromptKind::PassFail, check_pass_fail)
    }

    fn ask_kind<T>(
        &self,
        kind: PromptKind,
        accept: impl FnMut(&str) -> Result<T, String>,
    ) -> Result<T, PromptError> {
        with_desk(
            &self.message,
            kind,
            self.image.clone(),
            STDIN_HINT,
            self.timeout,
            |answers, out| ask(&self.message, self.timeout, answers, out, accept),
        )
    }

    /// Waits at most this long for each answer.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Waits for Enter (any answer confirms).
    pub fn confirm(&self) -> Result<(), PromptError> {
        with_desk(
            &self.message,
            PromptKind::Confirm,
            self.image.clone(),
            STDIN_HINT,
            self.timeout,
            |answers, out| self.confirm_over(answers, out),
        )
    }

    /// A value typed by the operator, parsed with [`FromStr`]; an empty or unparsable answer is
    /// refused, saying why, and asked again.
    pub fn value<T>(&self) -> Result<T, PromptError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        with_desk(
            &self.message,
            PromptKind::Value,
            self.image.clone(),
            STDIN_HINT,
            self.timeout,
            |answers, out| self.value_over(answers, out),
        )
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

/// A number answer within `min..=max`.
fn check_number(answer: &str, min: f64, max: f64) -> Result<f64, String> {
    let value: f64 = parse(answer)?;
    if !value.is_finite() || value < min || value > max {
        return Err(format!("'{answer}' is not between {min} and {max}"));
    }
    Ok(value)
}

/// One of `options`, by its text (any case) or its number from 1.
fn check_choice(answer: &str, options: &[String]) -> Result<String, String> {
    if let Some(option) = options.iter().find(|o| o.eq_ignore_ascii_case(answer)) {
        return Ok(option.clone());
    }
    if let Ok(n) = answer.parse::<usize>()
        && let Some(option) = n.checked_sub(1).and_then(|i| options.get(i))
    {
        return Ok(option.clone());
    }
    Err(format!("'{answer}' is not one of: {}", options.join(", ")))
}

/// `pass` or `fail` (and their short forms).
fn check_pass_fail(answer: &str) -> Result<bool, String> {
    match answer.to_ascii_lowercase().as_str() {
        "pass" | "p" | "y" | "yes" => Ok(true),
        "fail" | "f" | "n" | "no" => Ok(false),
        _ => Err(format!("'{answer}' is neither pass nor fail")),
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
    /// Input came that can't be an answer: say why, ask again.
    Refused(String),
    Aborted,
    Stopped,
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
    match read_bounded_line(input)? {
        StdinLine::Line(line) => Ok(Some(line)),
        StdinLine::TooLong(len) => Err(io::Error::other(too_long(len))),
        StdinLine::End => Ok(None),
    }
}

/// A line of input, at most [`MAX_ANSWER`] bytes (plus its end of line) kept in memory.
enum StdinLine {
    Line(String),
    /// A line this long was skipped.
    TooLong(usize),
    End,
}

fn too_long(len: usize) -> String {
    format!("the answer is {len} bytes long; {MAX_ANSWER} at most")
}

/// Reads a line, keeping at most [`MAX_ANSWER`] bytes of it (a longer one is skipped to its
/// end and said to be too long), so an input that never ends a line can't grow memory.
fn read_bounded_line(input: &mut impl BufRead) -> io::Result<StdinLine> {
    let mut line = Vec::new();
    let mut len = 0usize;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(match len {
                0 => StdinLine::End,
                n if n > MAX_ANSWER + 2 => StdinLine::TooLong(n),
                _ => StdinLine::Line(String::from_utf8_lossy(&line).into_owned()),
            });
        }
        let (chunk, ended) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let take = chunk.len();
        if len + take <= MAX_ANSWER + 2 {
            line.extend_from_slice(chunk);
        } else {
            line.clear();
        }
        len = len.saturating_add(take);
        input.consume(take);
        if ended {
            return Ok(if len > MAX_ANSWER + 2 {
                StdinLine::TooLong(len)
            } else {
                StdinLine::Line(String::from_utf8_lossy(&line).into_owned())
            });
        }
    }
}

thread_local! {
    /// The desk, abort and phase of the run asking on this thread (set by the executor).
    static ASKING: RefCell<Option<AskContext>> = const { RefCell::new(None) };
}

/// Where questions asked on a thread go, and what ends their wait.
#[derive(Debug, Clone)]
pub(crate) struct AskContext {
    pub(crate) desk: Arc<Desk>,
    pub(crate) waiting: Waiting,
}

thread_local! {
    /// Set while the executor takes a serial number it won't test (the test can't run): a
    /// serial given on the command line is taken, nobody is asked to scan a board.
    static NOT_ASKING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Calls `f` with asking turned off on this thread: a question fails at once as if no one
/// could answer it; a value given on the command line is still taken.
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

/// Runs `f` with questions asked on this thread going to `context`'s desk.
pub(crate) fn asking<R>(context: AskContext, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<AskContext>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            ASKING.with(|a| *a.borrow_mut() = previous);
        }
    }
    let _restore = Restore(ASKING.with(|a| a.borrow_mut().replace(context)));
    f()
}

/// The context of a question asked outside any run: a desk of its own, nothing to abort it.
fn lone_context() -> AskContext {
    AskContext {
        desk: Arc::new(Desk::new(Arc::new(EventBus::new()), None)),
        waiting: Waiting {
            abort: Arc::new(Abort::new()),
            level: 1,
            stop: None,
        },
    }
}

/// Asks on the run's desk (or one of its own outside a run): answered by `--answer`, the
/// console's stdin, or a command, whichever comes first. Fails at once when none can answer.
fn with_desk<T>(
    prompt: &str,
    kind: PromptKind,
    image: Option<String>,
    hint: &str,
    timeout: Option<Duration>,
    f: impl FnOnce(&mut dyn Answers, &mut dyn Write) -> Result<T, PromptError>,
) -> Result<T, PromptError> {
    if NOT_ASKING.with(std::cell::Cell::get) {
        return Err(PromptError::NoTerminal {
            prompt: prompt.to_owned(),
            hint: "not asked: the test can't run".to_owned(),
        });
    }
    let context = ASKING
        .with(|a| a.borrow().clone())
        .unwrap_or_else(lone_context);
    let terminal = io::stdin().is_terminal();
    let stdin = terminal || stdin_allowed();
    check_can_ask(
        prompt,
        hint,
        stdin || has_arg_answer() || context.desk.is_observed(),
    )?;
    let mut answers = DeskAnswers {
        context,
        message: prompt.to_owned(),
        kind,
        image,
        timeout,
        stdin,
        terminal,
        by: String::new(),
    };
    // No lock is held while the question waits: other slots go on logging.
    f(&mut answers, &mut io::stderr())
}

/// Answers given on a desk, one question at a time.
struct DeskAnswers {
    context: AskContext,
    message: String,
    kind: PromptKind,
    image: Option<String>,
    timeout: Option<Duration>,
    /// Stdin may answer.
    stdin: bool,
    terminal: bool,
    /// Who gave the last answer.
    by: String,
}

impl Answers for DeskAnswers {
    fn next_line(&mut self, _timeout: Option<Duration>) -> Result<Option<String>, LineError> {
        let desk = &self.context.desk;
        let id = desk.open_with_image(&self.message, self.kind.clone(), self.image.clone());
        if let Some(value) = next_arg_answer() {
            let _ = desk.reply(
                id,
                Reply::Answer {
                    value,
                    by: "args".to_owned(),
                },
            );
        } else if self.stdin {
            stdin_front::offer(desk, id).map_err(LineError::Io)?;
        }
        let deadline = self.timeout.and_then(|t| Instant::now().checked_add(t));
        match desk.wait(id, deadline, &self.context.waiting) {
            Ok(Reply::Answer { value, by }) => {
                self.by = by;
                Ok(Some(value))
            }
            Ok(Reply::Refused(reason)) => Err(LineError::Refused(reason)),
            Ok(Reply::EndOfInput) => Ok(None),
            Err(Closed::TimedOut) => Err(LineError::TimedOut),
            Err(Closed::Aborted) => Err(LineError::Aborted),
            Err(Closed::Stopped) => Err(LineError::Stopped),
        }
    }

    fn echoes(&self) -> bool {
        self.terminal && self.by == stdin_front::BY
    }
}

/// The console's stdin as a front end: each line answers the oldest question offered to it
/// that still waits; lines typed before a question (a scanner ahead of the screen) wait for
/// the next one. Stdin is the process's, so this is too; the questions belong to their desks.
mod stdin_front {
    use super::*;

    /// Who a stdin answer is from.
    pub(super) const BY: &str = "console";

    /// Lines typed ahead, kept at most.
    const TYPED_AHEAD: usize = 64;

    struct Front {
        started: bool,
        ended: bool,
        offers: VecDeque<(Weak<Desk>, u64)>,
        typed_ahead: VecDeque<Reply>,
    }

    static FRONT: Mutex<Front> = Mutex::new(Front {
        started: false,
        ended: false,
        offers: VecDeque::new(),
        typed_ahead: VecDeque::new(),
    });

    fn front() -> std::sync::MutexGuard<'static, Front> {
        FRONT.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Offers prompt `id` of `desk` to stdin.
    pub(super) fn offer(desk: &Arc<Desk>, id: u64) -> io::Result<()> {
        let mut front = front();
        if !front.started {
            std::thread::Builder::new()
                .name("tofu-prompt-stdin".to_owned())
                .spawn(read)?;
            front.started = true;
        }
        if let Some(reply) = front.typed_ahead.pop_front() {
            let _ = desk.reply(id, reply);
        } else if front.ended {
            let _ = desk.reply(id, Reply::EndOfInput);
        } else {
            front.offers.push_back((Arc::downgrade(desk), id));
        }
        Ok(())
    }

    /// Gives `reply` to the oldest offer still waiting; false when none is.
    fn deliver(front: &mut Front, reply: &Reply) -> bool {
        while let Some((desk, id)) = front.offers.pop_front() {
            if let Some(desk) = desk.upgrade()
                && desk.reply(id, reply.clone()).is_ok()
            {
                return true;
            }
        }
        false
    }

    fn read() {
        let mut stdin = io::stdin().lock();
        loop {
            let reply = match read_bounded_line(&mut stdin) {
                Ok(StdinLine::Line(value)) => Reply::Answer {
                    value,
                    by: BY.to_owned(),
                },
                Ok(StdinLine::TooLong(len)) => Reply::Refused(too_long(len)),
                Ok(StdinLine::End) | Err(_) => Reply::EndOfInput,
            };
            let end = reply == Reply::EndOfInput;
            let mut front = front();
            if end {
                front.ended = true;
                while deliver(&mut front, &Reply::EndOfInput) {}
                return;
            }
            if !deliver(&mut front, &reply) && front.typed_ahead.len() < TYPED_AHEAD {
                front.typed_ahead.push_back(reply);
            }
        }
    }
}

/// A question nobody can answer (no terminal, no `TOFU_PROMPT_STDIN`, no `--answer` left, no
/// observer of the run's events to answer with a command) fails at once, saying what to do.
fn check_can_ask(prompt: &str, hint: &str, can_answer: bool) -> Result<(), PromptError> {
    if can_answer {
        Ok(())
    } else {
        Err(PromptError::NoTerminal {
            prompt: prompt.to_owned(),
            hint: hint.to_owned(),
        })
    }
}

/// Whether a `--answer` is left on the command line.
fn has_arg_answer() -> bool {
    let mut answers = ARG_ANSWERS.lock().unwrap_or_else(PoisonError::into_inner);
    !answers
        .get_or_insert_with(|| answers_in(std::env::args_os().skip(1)))
        .is_empty()
}

/// `s` with its control characters made visible (`\u{1b}`, `\r`), so that an answer echoed
/// back (a barcode's bytes) can't drive the operator's terminal.
pub(crate) fn visible(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_control) {
        Cow::Owned(
            s.chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(s)
    }
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
            Err(LineError::Refused(reason)) => {
                let _ = writeln!(out, "\n{reason}; try again.");
                continue;
            }
            Err(LineError::Aborted) => {
                let _ = writeln!(out);
                return Err(PromptError::Aborted {
                    prompt: prompt.to_owned(),
                });
            }
            Err(LineError::Stopped) => {
                let _ = writeln!(out);
                return Err(PromptError::Stopped {
                    prompt: prompt.to_owned(),
                });
            }
        };
        let answer = line.trim();
        if !answers.echoes() {
            let _ = writeln!(out, "{}", visible(answer));
        }
        match accept(answer) {
            Ok(value) => {
                tracing::debug!("'{prompt}': answered {answer:?}");
                return Ok(value);
            }
            Err(reason) => {
                tracing::debug!("'{prompt}': answer {answer:?} refused: {reason}");
                let _ = writeln!(out, "{}; try again.", visible(&reason));
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
    fn numbers_choices_and_judgements_are_checked_as_tables() {
        for (answer, taken) in [
            ("3.3", Some(3.3)),
            ("3.2", Some(3.2)),
            ("3.5", None),
            ("-1", None),
            ("NaN", None),
            ("", None),
            ("x", None),
        ] {
            assert_eq!(check_number(answer, 3.2, 3.4).ok(), taken, "{answer}");
        }
        let options = ["Red".to_owned(), "Green".to_owned()];
        for (answer, taken) in [
            ("green", Some("Green")),
            ("1", Some("Red")),
            ("2", Some("Green")),
            ("0", None),
            ("3", None),
            ("blue", None),
        ] {
            assert_eq!(
                check_choice(answer, &options).ok().as_deref(),
                taken,
                "{answer}"
            );
        }
        for (answer, taken) in [
            ("PASS", Some(true)),
            ("p", Some(true)),
            ("fail", Some(false)),
            ("n", Some(false)),
            ("maybe", None),
        ] {
            assert_eq!(check_pass_fail(answer).ok(), taken, "{answer}");
        }
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
            check_can_ask(prompt, hint, false).unwrap_err().to_string(),
            "no terminal to ask 'Scan the serial number' (stdin is not a TTY); \
             pass --serial SN or set TOFU_PROMPT_STDIN=1"
        );
        assert!(check_can_ask(prompt, hint, true).is_ok());
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

    /// Answers on a desk of their own, as a run's questions are; the replies come from
    /// another thread (a page, a command), by the prompt id of the `prompt_opened` event.
    fn desk_answers(timeout: Option<Duration>) -> (DeskAnswers, crate::bus::Subscription) {
        let bus = Arc::new(EventBus::new());
        let events = bus.subscribe();
        let answers = DeskAnswers {
            context: AskContext {
                desk: Arc::new(Desk::new(bus, None)),
                waiting: Waiting {
                    abort: Arc::new(Abort::new()),
                    level: 1,
                    stop: None,
                },
            },
            message: "q".into(),
            kind: PromptKind::Value,
            image: None,
            timeout,
            stdin: false,
            terminal: false,
            by: String::new(),
        };
        (answers, events)
    }

    /// Replies to the next prompt opened on `events`' desk.
    fn reply_next(events: crate::bus::Subscription, desk: Arc<Desk>, replies: Vec<Reply>) {
        std::thread::spawn(move || {
            let mut replies = replies.into_iter();
            while let Some(crate::bus::Received::Event(e)) = events.recv() {
                if let crate::event::EventKind::PromptOpened { id, .. } = e.kind {
                    match replies.next() {
                        Some(reply) => desk.reply(id, reply).unwrap(),
                        None => return,
                    }
                }
            }
        });
    }

    fn said(value: &str) -> Reply {
        Reply::Answer {
            value: value.into(),
            by: "command".into(),
        }
    }

    #[test]
    fn a_question_times_out_naming_itself_and_the_delay() {
        let (mut answers, _events) = desk_answers(Some(Duration::from_millis(50)));
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
    }

    #[test]
    fn answers_come_from_any_front_end_refused_ones_are_asked_again_and_echoed_visibly() {
        let (mut answers, events) = desk_answers(None);
        let desk = Arc::clone(&answers.context.desk);
        reply_next(
            events,
            desk,
            vec![
                Reply::Refused(too_long(5000)),
                said("\u{1b}[2Jabc"),
                said("3.3"),
                Reply::EndOfInput,
            ],
        );
        let mut console = Vec::new();
        let v: f64 = Prompt::new("Read")
            .value_over(&mut answers, &mut console)
            .unwrap();
        assert_eq!(v, 3.3);
        let console = String::from_utf8_lossy(&console);
        assert!(
            console.contains("5000 bytes long; 1024 at most; try again"),
            "{console}"
        );
        assert!(console.contains("\\u{1b}[2Jabc"), "{console}");
        assert!(!console.contains('\u{1b}'), "{console}");
        let err = Prompt::new("Read")
            .confirm_over(&mut answers, &mut io::sink())
            .unwrap_err();
        assert!(matches!(err, PromptError::EndOfInput { .. }), "{err:?}");
    }

    #[test]
    fn an_abort_ends_a_waiting_question_at_once() {
        let (mut answers, _events) = desk_answers(None);
        let abort = Arc::clone(&answers.context.waiting.abort);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            abort.press();
        });
        let err = Prompt::new("Insert the board")
            .confirm_over(&mut answers, &mut io::sink())
            .unwrap_err();
        assert!(matches!(err, PromptError::Aborted { .. }), "{err:?}");
    }

    #[test]
    fn lines_are_read_bounded_and_a_long_one_is_skipped_whole() {
        let long = "9".repeat(MAX_ANSWER * 4);
        let input = format!("SN1\r\n{long}\nSN2\nlast");
        let mut input = io::Cursor::new(input.into_bytes());
        let mut lines = Vec::new();
        loop {
            match read_bounded_line(&mut input).unwrap() {
                StdinLine::Line(l) => lines.push(l),
                StdinLine::TooLong(n) => lines.push(format!("too long {n}")),
                StdinLine::End => break,
            }
        }
        assert_eq!(
            lines,
            [
                "SN1\r\n",
                &format!("too long {}", MAX_ANSWER * 4 + 1),
                "SN2\n",
                "last"
            ]
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
