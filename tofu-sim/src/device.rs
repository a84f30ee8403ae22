//! One simulated device: its dialogues, properties and error queues, compiled from the
//! description, and how it answers a message.

use std::collections::VecDeque;

use crate::description::{DeviceDesc, ErrorDesc, PropertyDesc};
use crate::fault::FaultRule;
use crate::format::{Piece, Spec, Template, pieces};
use crate::model::ConverterState;
use crate::value::{Value, definite_block, pattern};

/// What a device says to a message.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Reply {
    /// Nothing (a command, or a query the device doesn't answer).
    Silent,
    /// An answer, without its terminator.
    Answer(Vec<u8>),
}

/// A compiled answer template.
type Answer = Vec<Piece>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Float,
    Int,
    Str,
    Block,
}

#[derive(Debug)]
struct Property {
    name: String,
    kind: Kind,
    default: Value,
    value: Value,
    getter: Option<(Vec<u8>, Option<Answer>)>,
    setter: Option<(Template, Option<Answer>, Option<Answer>)>,
    min: Option<f64>,
    max: Option<f64>,
    valid: Vec<Value>,
}

#[derive(Debug)]
struct Register {
    q: Vec<u8>,
    bits: Vec<(String, i64)>,
    value: i64,
}

#[derive(Debug)]
struct Queue {
    q: Vec<u8>,
    default: Vec<u8>,
    messages: Vec<(String, String)>,
    items: VecDeque<Vec<u8>>,
}

/// A device and its state.
#[derive(Debug)]
pub(crate) struct Device {
    pub(crate) name: String,
    /// (interface type, query terminator, answer terminator)
    eoms: Vec<(String, Vec<u8>, Vec<u8>)>,
    dialogues: Vec<(Vec<u8>, Option<Answer>)>,
    properties: Vec<Property>,
    error_answers: Vec<(String, Answer)>,
    registers: Vec<Register>,
    queues: Vec<Queue>,
    pub(crate) faults: Vec<FaultRule>,
    rng: u64,
}

fn answer(text: &str) -> Result<Option<Answer>, String> {
    if text == "null_response" {
        return Ok(None);
    }
    pieces(text).map(Some)
}

fn yaml_value(v: &serde_norway::Value, kind: Kind) -> Result<Value, String> {
    use serde_norway::Value as Y;
    Ok(match (kind, v) {
        (Kind::Float, Y::Number(n)) => Value::Float(n.as_f64().unwrap_or(0.0)),
        (Kind::Int, Y::Number(n)) => {
            Value::Int(n.as_i64().ok_or_else(|| format!("{n} is not an integer"))?)
        }
        (Kind::Str, Y::String(s)) => Value::Str(s.clone()),
        (Kind::Str, Y::Number(n)) => Value::Str(n.to_string()),
        (Kind::Block, Y::Number(n)) => Value::Block(pattern(
            n.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| format!("block size {n} is not a size"))?,
        )),
        (Kind::Block, Y::String(s)) => Value::Block(s.as_bytes().to_vec()),
        (_, other) => return Err(format!("{other:?} is not a {kind:?}")),
    })
}

impl Property {
    fn compile(name: &str, desc: &PropertyDesc) -> Result<Property, String> {
        let kind = match desc.specs.kind.as_deref() {
            Some("float") => Kind::Float,
            Some("int") => Kind::Int,
            Some("str") => Kind::Str,
            Some("block") => Kind::Block,
            None => match desc.default {
                serde_norway::Value::Number(ref n) if n.is_i64() => Kind::Int,
                serde_norway::Value::Number(_) => Kind::Float,
                _ => Kind::Str,
            },
            Some(other) => {
                return Err(format!(
                    "type `{other}` is not one of float, int, str, block"
                ));
            }
        };
        let default = yaml_value(&desc.default, kind).map_err(|e| format!("default: {e}"))?;
        let valid = desc
            .specs
            .valid
            .iter()
            .flatten()
            .map(|v| yaml_value(v, kind))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("valid: {e}"))?;
        let getter = match &desc.getter {
            Some(g) => Some((
                g.q.as_bytes().to_vec(),
                g.r.as_deref().map(answer).transpose()?.flatten(),
            )),
            None => None,
        };
        let setter = match &desc.setter {
            Some(s) => Some((
                Template::parse(&s.q)?,
                s.r.as_deref().map(answer).transpose()?.flatten(),
                s.e.as_deref().map(answer).transpose()?.flatten(),
            )),
            None => None,
        };
        Ok(Property {
            name: name.to_owned(),
            kind,
            value: default.clone(),
            default,
            getter,
            setter,
            min: desc.specs.min,
            max: desc.specs.max,
            valid,
        })
    }

    /// The value a setter's field stands for, if it is within the specs.
    fn accept(&self, field: &[u8], spec: Spec) -> Option<Value> {
        let value = if self.kind == Kind::Block {
            Value::Block(parse_block(field)?.to_vec())
        } else {
            let text = std::str::from_utf8(field).ok()?.trim();
            match self.kind {
                Kind::Int if !spec.is_float() => Value::Int(text.parse().ok()?),
                Kind::Int => Value::Int(text.parse::<f64>().ok()?.round() as i64),
                Kind::Float => Value::Float(text.parse::<f64>().ok().filter(|x| x.is_finite())?),
                Kind::Str | Kind::Block => Value::Str(text.to_owned()),
            }
        };
        let x = value.as_f64();
        let in_range = self.min.is_none_or(|min| x.is_none_or(|x| x >= min))
            && self.max.is_none_or(|max| x.is_none_or(|x| x <= max));
        let listed = self.valid.is_empty()
            || self.valid.iter().any(|v| match (v.as_f64(), x) {
                (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * a.abs().max(1.0),
                _ => *v == value,
            });
        (in_range && listed).then_some(value)
    }
}

/// The data of a definite-length block (`#<n><length><data>`), exactly.
pub(crate) fn parse_block(field: &[u8]) -> Option<&[u8]> {
    let rest = field.strip_prefix(b"#")?;
    let n = usize::from(rest.first()?.checked_sub(b'0')?);
    if n == 0 || n > 9 {
        return None;
    }
    let len: usize = std::str::from_utf8(rest.get(1..1 + n)?)
        .ok()?
        .parse()
        .ok()?;
    let data = rest.get(1 + n..)?;
    (data.len() == len).then_some(data)
}

impl Device {
    pub(crate) fn compile(name: &str, desc: &DeviceDesc) -> Result<Device, String> {
        if desc.channels.is_some() {
            return Err("`channels` are not supported by tofu-sim".into());
        }
        let mut error_answers = Vec::new();
        let mut registers = Vec::new();
        let mut queues = Vec::new();
        match &desc.error {
            None => {}
            Some(ErrorDesc::Answer(a)) => {
                if let Some(a) = answer(a)? {
                    error_answers.push(("command_error".to_owned(), a.clone()));
                    error_answers.push(("query_error".to_owned(), a));
                }
            }
            Some(ErrorDesc::Detailed {
                response,
                status_register,
                error_queue,
            }) => {
                for (kind, a) in response {
                    if let Some(a) = answer(a)? {
                        error_answers.push((kind.clone(), a));
                    }
                }
                for r in status_register {
                    registers.push(Register {
                        q: r.q.as_bytes().to_vec(),
                        bits: r.bits.iter().map(|(k, v)| (k.clone(), *v)).collect(),
                        value: 0,
                    });
                }
                for q in error_queue {
                    queues.push(Queue {
                        q: q.q.as_bytes().to_vec(),
                        default: q.default.as_bytes().to_vec(),
                        messages: q
                            .messages
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                        items: VecDeque::new(),
                    });
                }
            }
        }
        let dialogues = desc
            .dialogues
            .iter()
            .map(|d| {
                let r = d.r.as_deref().map(answer).transpose()?.flatten();
                Ok((d.q.as_bytes().to_vec(), r))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let properties = desc
            .properties
            .iter()
            .map(|(n, p)| Property::compile(n, p).map_err(|e| format!("property `{n}`: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Device {
            name: name.to_owned(),
            eoms: desc
                .eom
                .iter()
                .map(|(k, e)| (k.clone(), e.q.as_bytes().to_vec(), e.r.as_bytes().to_vec()))
                .collect(),
            dialogues,
            properties,
            error_answers,
            registers,
            queues,
            faults: desc.faults.clone(),
            rng: 0x9e37_79b9_7f4a_7c15,
        })
    }

    /// The (query, answer) terminators for an interface type, `"\n"` for both by default.
    pub(crate) fn eom(&self, interface: &str) -> (Vec<u8>, Vec<u8>) {
        self.eoms
            .iter()
            .find(|(k, _, _)| k == interface)
            .map(|(_, q, r)| (q.clone(), r.clone()))
            .unwrap_or_else(|| (b"\n".to_vec(), b"\n".to_vec()))
    }

    /// A property's value as a number (for the model).
    pub(crate) fn number(&self, property: &str) -> Option<f64> {
        self.properties
            .iter()
            .find(|p| p.name == property)
            .and_then(|p| p.value.as_f64())
    }

    /// Whether the device has this property.
    pub(crate) fn has_property(&self, property: &str) -> bool {
        self.properties.iter().any(|p| p.name == property)
    }

    /// A property's value, written as text (blocks: their length).
    pub(crate) fn property_text(&self, property: &str) -> Option<String> {
        let p = self.properties.iter().find(|p| p.name == property)?;
        Some(match &p.value {
            Value::Float(x) => x.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Str(s) => s.clone(),
            Value::Block(b) => format!("{} bytes", b.len()),
        })
    }

    /// Records an error of a kind (`command_error`…) in the registers and queues, and gives
    /// the answer the description has for it.
    fn error(&mut self, kind: &str) -> Option<Answer> {
        for r in &mut self.registers {
            if let Some((_, bit)) = r.bits.iter().find(|(k, _)| k == kind) {
                r.value |= bit;
            }
        }
        for q in &mut self.queues {
            let message = q.messages.iter().find(|(k, _)| k == kind).or_else(|| {
                (kind == "execution_error")
                    .then(|| q.messages.iter().find(|(k, _)| k == "command_error"))
                    .flatten()
            });
            if let Some((_, m)) = message {
                q.items.push_back(m.as_bytes().to_vec());
            }
        }
        self.error_answers
            .iter()
            .find(|(k, _)| k == kind)
            .or_else(|| {
                self.error_answers
                    .iter()
                    .find(|(k, _)| k == "command_error")
            })
            .map(|(_, a)| a.clone())
    }

    /// Puts a message (an injected fault's) into every error queue.
    pub(crate) fn push_error(&mut self, message: &str) {
        for q in &mut self.queues {
            q.items.push_back(message.as_bytes().to_vec());
        }
    }

    fn reset(&mut self) {
        for p in &mut self.properties {
            p.value = p.default.clone();
        }
    }

    fn clear_status(&mut self) {
        for q in &mut self.queues {
            q.items.clear();
        }
        for r in &mut self.registers {
            r.value = 0;
        }
    }

    /// Answers one message (its terminator removed).
    pub(crate) fn handle(&mut self, message: &[u8], model: Option<&ConverterState>) -> Reply {
        let message = message.trim_ascii();
        if let Some(q) = self.queues.iter_mut().find(|q| q.q == message) {
            return Reply::Answer(q.items.pop_front().unwrap_or_else(|| q.default.clone()));
        }
        if let Some(r) = self.registers.iter_mut().find(|r| r.q == message) {
            let value = std::mem::take(&mut r.value);
            return Reply::Answer(value.to_string().into_bytes());
        }
        if message == b"*RST" {
            self.reset();
        } else if message == b"*CLS" {
            self.clear_status();
        }
        if let Some((_, r)) = self.dialogues.iter().find(|(q, _)| q == message) {
            let r = r.clone();
            return self.render(r.as_ref(), None, model);
        }
        if let Some(i) = self
            .properties
            .iter()
            .position(|p| p.getter.as_ref().is_some_and(|(q, _)| q == message))
        {
            let p = &self.properties[i];
            if let Value::Block(data) = &p.value {
                return Reply::Answer(definite_block(data));
            }
            let r = p.getter.as_ref().and_then(|(_, r)| r.clone());
            let value = p.value.clone();
            return self.render(r.as_ref(), Some(&value), model);
        }
        for i in 0..self.properties.len() {
            let p = &self.properties[i];
            let Some((template, ok, bad)) = &p.setter else {
                continue;
            };
            let Some(field) = template.capture(message) else {
                continue;
            };
            return match p.accept(field, template.spec()) {
                Some(value) => {
                    let ok = ok.clone();
                    self.properties[i].value = value;
                    self.render(ok.as_ref(), None, model)
                }
                None => {
                    let bad = bad.clone();
                    let error = self.error("execution_error");
                    self.render(bad.or(error).as_ref(), None, model)
                }
            };
        }
        match message {
            b"*OPC?" => Reply::Answer(b"1".to_vec()),
            b"*RST" | b"*CLS" | b"*WAI" | b"*OPC" => Reply::Silent,
            _ => {
                let kind = if message.ends_with(b"?") {
                    "query_error"
                } else {
                    "command_error"
                };
                let a = self.error(kind);
                self.render(a.as_ref(), None, model)
            }
        }
    }

    /// Writes an answer template: plain fields take `value`; `{RANDOM(min, max, n)}` draws n
    /// numbers; `{MODEL(name)}` reads the model.
    fn render(
        &mut self,
        answer: Option<&Answer>,
        value: Option<&Value>,
        model: Option<&ConverterState>,
    ) -> Reply {
        let Some(answer) = answer else {
            return Reply::Silent;
        };
        let mut out = String::new();
        for piece in answer {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field { call: None, spec } => {
                    if let Some(v) = value {
                        out.push_str(&spec.render(v));
                    }
                }
                Piece::Field {
                    call: Some(call),
                    spec,
                } => out.push_str(&self.call(call, *spec, model)),
            }
        }
        Reply::Answer(out.into_bytes())
    }

    fn call(&mut self, call: &str, spec: Spec, model: Option<&ConverterState>) -> String {
        let (name, args) = match call.split_once('(') {
            Some((n, a)) => (n.trim(), a.trim_end_matches(')')),
            None => (call, ""),
        };
        match name {
            "MODEL" => {
                let reading = model.and_then(|m| m.reading(args.trim())).unwrap_or(0.0);
                spec.render(&Value::Float(reading))
            }
            "RANDOM" => {
                let nums: Vec<f64> = args
                    .split(',')
                    .filter_map(|a| a.trim().parse().ok())
                    .collect();
                let (lo, hi) = (
                    nums.first().copied().unwrap_or(0.0),
                    nums.get(1).copied().unwrap_or(1.0),
                );
                let n = nums.get(2).map_or(1, |n| n.max(1.0) as usize);
                (0..n)
                    .map(|_| {
                        self.rng ^= self.rng << 13;
                        self.rng ^= self.rng >> 7;
                        self.rng ^= self.rng << 17;
                        let unit = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
                        spec.render(&Value::Float(lo + (hi - lo) * unit))
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            }
            other => format!("{{{other}?}}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_read_exactly() {
        assert_eq!(parse_block(b"#13abc"), Some(&b"abc"[..]));
        assert_eq!(parse_block(b"#210abcdefghij"), Some(&b"abcdefghij"[..]));
        for bad in [&b"#14abc"[..], b"#0abc", b"#a3abc", b"13abc", b"#", b"#9"] {
            assert_eq!(parse_block(bad), None, "{bad:?}");
        }
    }
}
