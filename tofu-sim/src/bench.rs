//! The devices of one description and what links them (the model): the state every
//! connection of a simulator shares.

use crate::description::Description;
use crate::device::{Device, Reply};
use crate::fault::{Fault, FaultRule};
use crate::model::{ConverterInputs, ConverterSpec, ConverterState, converter};

/// All devices of a description.
#[derive(Debug)]
pub(crate) struct Bench {
    pub(crate) devices: Vec<Device>,
    model: Option<ConverterSpec>,
}

/// What a connection does with one message.
#[derive(Debug)]
pub(crate) enum Action {
    /// Send this (terminator added), after the delay.
    Send(Vec<u8>, std::time::Duration),
    /// Send nothing.
    Nothing,
    /// Close the connection.
    Close,
}

impl Bench {
    pub(crate) fn new(desc: &Description) -> Result<Bench, String> {
        let devices = desc
            .devices
            .iter()
            .map(|(name, d)| Device::compile(name, d).map_err(|e| format!("device `{name}`: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let bench = Bench {
            devices,
            model: desc.model.as_ref().map(|m| m.dc_dc_converter.clone()),
        };
        if let Some(spec) = &bench.model {
            for path in [
                &spec.supply_voltage,
                &spec.supply_output,
                &spec.supply_current_limit,
                &spec.load_current,
                &spec.load_input,
            ] {
                let found = path
                    .rsplit_once('.')
                    .and_then(|(d, p)| bench.device(d).map(|i| bench.devices[i].has_property(p)));
                if found != Some(true) {
                    return Err(format!(
                        "model: `{path}` is not a device.property of this description"
                    ));
                }
            }
        }
        for (name, resource) in &desc.resources {
            if bench.device(&resource.device).is_none() {
                return Err(format!(
                    "resource `{name}`: there is no device `{}`",
                    resource.device
                ));
            }
        }
        Ok(bench)
    }

    pub(crate) fn device(&self, name: &str) -> Option<usize> {
        self.devices.iter().position(|d| d.name == name)
    }

    fn number(&self, path: &str) -> f64 {
        path.rsplit_once('.')
            .and_then(|(d, p)| self.device(d).and_then(|i| self.devices[i].number(p)))
            .unwrap_or(0.0)
    }

    fn model_state(&self) -> Option<ConverterState> {
        let spec = self.model.as_ref()?;
        Some(converter(
            spec,
            ConverterInputs {
                supply_voltage: self.number(&spec.supply_voltage),
                supply_on: self.number(&spec.supply_output) != 0.0,
                current_limit: self.number(&spec.supply_current_limit),
                load_current: self.number(&spec.load_current),
                load_on: self.number(&spec.load_input) != 0.0,
            },
        ))
    }

    /// Takes the first fault rule of `device` that applies, counting it.
    fn take_fault(&mut self, device: usize, message: &[u8], has_answer: bool) -> Option<Fault> {
        let faults = &mut self.devices[device].faults;
        let rule: &mut FaultRule = faults.iter_mut().find(|r| r.applies(message, has_answer))?;
        if let Some(n) = rule.times.as_mut() {
            *n -= 1;
        }
        Some(rule.fault.clone())
    }

    /// Executes one message on a device, faults included.
    pub(crate) fn message(&mut self, device: usize, message: &[u8]) -> Action {
        let message = message.trim_ascii();
        let drop_rule = self.devices[device]
            .faults
            .iter()
            .position(|r| r.fault == Fault::Drop && r.applies(message, false));
        if let Some(i) = drop_rule {
            if let Some(n) = self.devices[device].faults[i].times.as_mut() {
                *n -= 1;
            }
            tracing::debug!(device = %self.devices[device].name, "fault: connection dropped");
            return Action::Close;
        }
        let model = self.model_state();
        let reply = self.devices[device].handle(message, model.as_ref());
        let has_answer = matches!(reply, Reply::Answer(_));
        let fault = self.take_fault(device, message, has_answer);
        let answer = match reply {
            Reply::Answer(a) => Some(a),
            Reply::Silent => None,
        };
        match (fault, answer) {
            (Some(Fault::Error(e)), a) => {
                self.devices[device].push_error(&e);
                a.map_or(Action::Nothing, |a| Action::Send(a, Default::default()))
            }
            (Some(Fault::NoAnswer), _) => Action::Nothing,
            (Some(Fault::Garbage), Some(_)) => {
                Action::Send(b"\xff\xfe\x00garbage\x9d".to_vec(), Default::default())
            }
            (Some(Fault::Delay(d)), Some(a)) => Action::Send(a, d),
            (_, Some(a)) => Action::Send(a, Default::default()),
            (_, None) => Action::Nothing,
        }
    }
}

/// Finds the end of the first message in `buf`: `(length of the message, where the next one
/// starts)`. A definite-length block (`#<n><len><data>`) is taken whole, whatever bytes its data
/// holds; `None` while the message is incomplete.
pub(crate) fn message_end(buf: &[u8], terminator: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'#' {
            match block_len(&buf[i..]) {
                BlockScan::Complete(n) => {
                    i += n;
                    continue;
                }
                BlockScan::Incomplete => return None,
                BlockScan::NotABlock => {}
            }
        }
        if !terminator.is_empty() && buf[i..].starts_with(terminator) {
            return Some((i, i + terminator.len()));
        }
        i += 1;
    }
    None
}

enum BlockScan {
    Complete(usize),
    Incomplete,
    NotABlock,
}

/// The whole length of the block starting at `buf[0] == b'#'`.
fn block_len(buf: &[u8]) -> BlockScan {
    let Some(&d) = buf.get(1) else {
        return BlockScan::Incomplete;
    };
    if !(b'1'..=b'9').contains(&d) {
        return BlockScan::NotABlock;
    }
    let n = usize::from(d - b'0');
    let Some(digits) = buf.get(2..2 + n) else {
        return BlockScan::Incomplete;
    };
    let Some(len) = std::str::from_utf8(digits)
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
    else {
        return BlockScan::NotABlock;
    };
    let total = 2 + n + len;
    if buf.len() >= total {
        BlockScan::Complete(total)
    } else {
        BlockScan::Incomplete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_end_at_the_terminator_outside_blocks() {
        type Case<'a> = (&'a [u8], &'a [u8], Option<(usize, usize)>);
        let cases: &[Case<'_>] = &[
            (b"*IDN?\n", b"\n", Some((5, 6))),
            (b"*IDN?", b"\n", None),
            (b"VOLT 5\r\nOUTP 1\r\n", b"\r\n", Some((6, 8))),
            (b"TRAC:DATA #13a\nb\n", b"\n", Some((16, 17))),
            (b"TRAC:DATA #13a\n", b"\n", None),
            (b"TRAC:DATA #2", b"\n", None),
            (b"SER #x1\n", b"\n", Some((7, 8))),
            (b"#", b"\n", None),
        ];
        for (buf, term, want) in cases {
            assert_eq!(
                message_end(buf, term),
                *want,
                "{:?}",
                String::from_utf8_lossy(buf)
            );
        }
    }
}
