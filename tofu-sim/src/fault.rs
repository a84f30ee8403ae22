//! Faults injected on demand: a late answer, no answer, garbage, a dropped connection, an
//! error in the instrument's queue.

use std::time::Duration;

use serde::Deserialize;

/// What goes wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The answer comes this much later.
    Delay(Duration),
    /// The message is executed but its answer never comes.
    NoAnswer,
    /// The answer is replaced by bytes that are not a reading (not even UTF-8).
    Garbage,
    /// The connection is closed instead of executing the message.
    Drop,
    /// The message is executed, and this error (e.g. `-222,"Data out of range"`) is queued.
    Error(String),
}

/// A fault, the messages it applies to, and how many times.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawRule")]
pub struct FaultRule {
    /// The fault.
    pub fault: Fault,
    /// Only messages starting with this (e.g. `MEAS:VOLT:DC?`); every message when `None`.
    pub on: Option<String>,
    /// How many times; for ever when `None`. Answer faults (delay, no answer, garbage) count
    /// only messages that have an answer.
    pub times: Option<usize>,
}

impl FaultRule {
    /// The fault on every message, for ever.
    pub fn always(fault: Fault) -> Self {
        FaultRule {
            fault,
            on: None,
            times: None,
        }
    }

    /// The fault once, on the next message starting with `command`.
    pub fn once_on(fault: Fault, command: impl Into<String>) -> Self {
        FaultRule {
            fault,
            on: Some(command.into()),
            times: Some(1),
        }
    }

    /// The fault once, on the next message.
    pub fn once(fault: Fault) -> Self {
        FaultRule {
            fault,
            on: None,
            times: Some(1),
        }
    }

    /// Parses the command line's form: `KIND[=ARG][,on=COMMAND][,times=N]`, where KIND is
    /// `delay=500ms` (or `=2s`), `no-answer`, `garbage`, `drop` or `error=-222,"Data out of
    /// range"` (the message may hold commas).
    pub fn parse(text: &str) -> Result<FaultRule, String> {
        let mut tokens: Vec<String> = Vec::new();
        for token in text.split(',') {
            let option = token.starts_with("on=") || token.starts_with("times=");
            let single = tokens.len() == 1;
            match tokens.last_mut() {
                Some(last) if !option && single => {
                    last.push(',');
                    last.push_str(token);
                }
                _ => tokens.push(token.to_owned()),
            }
        }
        let mut tokens = tokens.into_iter();
        let kind = tokens.next().unwrap_or_default();
        let (name, arg) = match kind.split_once('=') {
            Some((n, a)) => (n.trim(), Some(a.trim())),
            None => (kind.trim(), None),
        };
        let mut rule = FaultRule::always(Fault::from_parts(name, arg)?);
        for option in tokens {
            if let Some(on) = option.strip_prefix("on=") {
                rule.on = Some(on.to_owned());
            } else if let Some(n) = option.strip_prefix("times=") {
                rule.times =
                    Some(n.trim().parse().map_err(|_| {
                        format!("fault `{text}`: times must be a count, not `{n}`")
                    })?);
            } else {
                return Err(format!(
                    "fault `{text}`: `{option}` is neither on=COMMAND nor times=N"
                ));
            }
        }
        Ok(rule)
    }

    /// Whether the rule applies to `message`, given whether it has an answer.
    pub(crate) fn applies(&self, message: &[u8], has_answer: bool) -> bool {
        let answer_fault = matches!(
            self.fault,
            Fault::Delay(_) | Fault::NoAnswer | Fault::Garbage
        );
        self.times != Some(0)
            && (has_answer || !answer_fault)
            && self
                .on
                .as_ref()
                .is_none_or(|on| message.starts_with(on.as_bytes()))
    }
}

impl Fault {
    fn from_parts(name: &str, arg: Option<&str>) -> Result<Fault, String> {
        match (name, arg) {
            ("delay", Some(d)) => parse_duration(d).map(Fault::Delay),
            ("no-answer" | "no_answer", None) => Ok(Fault::NoAnswer),
            ("garbage", None) => Ok(Fault::Garbage),
            ("drop", None) => Ok(Fault::Drop),
            ("error", Some(message)) if !message.is_empty() => Ok(Fault::Error(message.to_owned())),
            ("delay" | "error", None) => Err(format!("fault `{name}` needs a value: `{name}=…`")),
            ("no-answer" | "no_answer" | "garbage" | "drop", Some(a)) => {
                Err(format!("fault `{name}` takes no value (got `{a}`)"))
            }
            _ => Err(format!(
                "unknown fault `{name}`: use delay=MS, no-answer, garbage, drop or error=MESSAGE"
            )),
        }
    }
}

/// `500ms`, `2s`, `1.5s`, or a bare number of milliseconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("bad delay `{text}`: write 500ms or 2s");
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        (text, 1e-3)
    };
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(value * scale).map_err(|_| bad())
}

/// The description's form: `{kind: delay, ms: 500, on: "MEAS?", times: 1}`,
/// `{kind: error, message: '-222,"Data out of range"'}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    kind: String,
    #[serde(default)]
    ms: Option<u64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    on: Option<String>,
    #[serde(default)]
    times: Option<usize>,
}

impl TryFrom<RawRule> for FaultRule {
    type Error = String;

    fn try_from(raw: RawRule) -> Result<Self, Self::Error> {
        let arg = match (raw.ms, raw.message) {
            (Some(ms), None) => Some(format!("{ms}ms")),
            (None, m) => m,
            (Some(_), Some(_)) => return Err("a fault has `ms` or `message`, not both".into()),
        };
        Ok(FaultRule {
            fault: Fault::from_parts(&raw.kind, arg.as_deref())?,
            on: raw.on,
            times: raw.times,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_command_line_form() {
        let cases: &[(&str, Result<FaultRule, ()>)] = &[
            ("drop", Ok(FaultRule::always(Fault::Drop))),
            (
                "delay=500ms,on=MEAS:VOLT:DC?,times=2",
                Ok(FaultRule {
                    fault: Fault::Delay(Duration::from_millis(500)),
                    on: Some("MEAS:VOLT:DC?".into()),
                    times: Some(2),
                }),
            ),
            (
                "error=-222,\"Data out of range\",times=1",
                Ok(FaultRule {
                    fault: Fault::Error("-222,\"Data out of range\"".into()),
                    on: None,
                    times: Some(1),
                }),
            ),
            (
                "delay=2s",
                Ok(FaultRule::always(Fault::Delay(Duration::from_secs(2)))),
            ),
            (
                "garbage,on=*IDN?",
                Ok(FaultRule::once_on(Fault::Garbage, "*IDN?")).map(|mut r| {
                    r.times = None;
                    r
                }),
            ),
            ("delay", Err(())),
            ("delay=soon", Err(())),
            ("drop=1", Err(())),
            ("explode", Err(())),
            ("drop,times=many", Err(())),
            ("error=", Err(())),
        ];
        for (text, want) in cases {
            assert_eq!(FaultRule::parse(text).map_err(|_| ()), *want, "{text}");
        }
    }

    #[test]
    fn answer_faults_wait_for_a_message_with_an_answer() {
        let garbage = FaultRule::once(Fault::Garbage);
        assert!(!garbage.applies(b"VOLT 5", false));
        assert!(garbage.applies(b"VOLT?", true));
        let drop = FaultRule::once_on(Fault::Drop, "OUTP");
        assert!(drop.applies(b"OUTP 1", false));
        assert!(!drop.applies(b"VOLT 5", false));
        let spent = FaultRule {
            times: Some(0),
            ..drop
        };
        assert!(!spent.applies(b"OUTP 1", false));
    }
}
