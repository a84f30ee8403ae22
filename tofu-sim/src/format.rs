//! The subset of Python's format mini-language that pyvisa-sim descriptions use: rendering a
//! value with a spec (`{:.2f}`, `{:+.8E}`, `{:d}`, `{:s}`, `{}`), and reading a setter's
//! message back with its template (`"VOLT {:.3f}"` matches `VOLT 5`, `VOLT 5.000`).

use crate::value::Value;

/// A parsed format spec: `[sign][0][width][.precision][type]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Spec {
    plus: bool,
    zero: bool,
    width: usize,
    precision: Option<usize>,
    kind: Option<char>,
}

impl Spec {
    /// Parses what follows the `:` of a replacement field.
    pub(crate) fn parse(text: &str) -> Result<Spec, String> {
        let mut spec = Spec::default();
        let mut rest = text;
        if let Some(r) = rest.strip_prefix('+') {
            spec.plus = true;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('-') {
            rest = r;
        }
        if let Some(r) = rest.strip_prefix('0') {
            spec.zero = true;
            rest = r;
        }
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            spec.width = rest[..digits]
                .parse()
                .map_err(|_| format!("bad width in format spec `{text}`"))?;
            rest = &rest[digits..];
        }
        if let Some(r) = rest.strip_prefix('.') {
            let digits = r.len() - r.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            spec.precision = Some(
                r[..digits]
                    .parse()
                    .map_err(|_| format!("bad precision in format spec `{text}`"))?,
            );
            rest = &r[digits..];
        }
        let mut chars = rest.chars();
        spec.kind = chars.next();
        if chars.next().is_some()
            || spec
                .kind
                .is_some_and(|k| !matches!(k, 'f' | 'F' | 'e' | 'E' | 'g' | 'G' | 'd' | 's'))
        {
            return Err(format!("unsupported format spec `{text}`"));
        }
        Ok(spec)
    }

    /// Whether the field reads a number (for setters).
    pub(crate) fn is_float(&self) -> bool {
        matches!(self.kind, Some('f' | 'F' | 'e' | 'E' | 'g' | 'G'))
    }

    /// Writes `value` as Python's `format(value, spec)` would (for the types above).
    pub(crate) fn render(&self, value: &Value) -> String {
        let body = match (value, self.kind) {
            (Value::Float(x), Some('f' | 'F')) => format!("{:.*}", self.precision.unwrap_or(6), x),
            (Value::Int(i), Some('f' | 'F')) => {
                format!("{:.*}", self.precision.unwrap_or(6), *i as f64)
            }
            (Value::Float(_) | Value::Int(_), Some(k @ ('e' | 'E'))) => {
                let x = value.as_f64().unwrap_or(0.0);
                python_exp(x, self.precision.unwrap_or(6), k == 'E')
            }
            (Value::Float(x), Some('d')) => format!("{}", x.round() as i64),
            (Value::Int(i), Some('d')) => format!("{i}"),
            (Value::Float(x), Some('g' | 'G') | None) => python_repr(*x),
            (Value::Int(i), _) => format!("{i}"),
            (Value::Float(x), Some(_)) => python_repr(*x),
            (Value::Str(s), _) => s.clone(),
            (Value::Block(b), _) => String::from_utf8_lossy(b).into_owned(),
        };
        let signed = if self.plus && !body.starts_with('-') && value.as_f64().is_some() {
            format!("+{body}")
        } else {
            body
        };
        if signed.len() >= self.width {
            signed
        } else if self.zero {
            let (sign, digits) = match signed.chars().next() {
                Some(c @ ('+' | '-')) => (c.to_string(), &signed[1..]),
                _ => (String::new(), signed.as_str()),
            };
            format!("{sign}{}{digits}", "0".repeat(self.width - signed.len()))
        } else {
            format!("{}{signed}", " ".repeat(self.width - signed.len()))
        }
    }
}

/// Python's `{:e}`: at least two exponent digits, with a sign.
fn python_exp(x: f64, precision: usize, upper: bool) -> String {
    let text = format!("{x:.precision$e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exponent),
    };
    let e = if upper { 'E' } else { 'e' };
    format!("{mantissa}{e}{sign}{digits:0>2}")
}

/// Python's `str(float)` for ordinary values (`5.0`, `0.1`).
fn python_repr(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

/// One piece of a template: literal text, or a replacement field (`{}` / `{:spec}` /
/// `{NAME(args):spec}`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Piece {
    Text(String),
    Field { call: Option<String>, spec: Spec },
}

/// Splits a template into pieces; `{{` and `}}` are literal braces.
pub(crate) fn pieces(template: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = template.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|p| p.1) == Some('{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek().map(|p| p.1) == Some('}') => {
                chars.next();
                text.push('}');
            }
            '{' => {
                let end = template[i..]
                    .find('}')
                    .map(|e| i + e)
                    .ok_or_else(|| format!("unclosed `{{` in `{template}`"))?;
                let field = &template[i + 1..end];
                // The spec follows the last `:` outside parentheses.
                let close = field.rfind(')').map_or(0, |p| p + 1);
                let (call, spec) = match field[close..].find(':') {
                    Some(colon) => (&field[..close + colon], &field[close + colon + 1..]),
                    None => (field, ""),
                };
                if !text.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut text)));
                }
                out.push(Piece::Field {
                    call: (!call.is_empty()).then(|| call.to_owned()),
                    spec: Spec::parse(spec)?,
                });
                while chars.peek().is_some_and(|&(j, _)| j <= end) {
                    chars.next();
                }
            }
            '}' => return Err(format!("single `}}` in `{template}`")),
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

/// A setter's template: literal text around one field (`VOLT {:f}`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    prefix: String,
    suffix: String,
    spec: Spec,
}

impl Template {
    /// Parses a setter's `q`; it must have exactly one plain field.
    pub(crate) fn parse(q: &str) -> Result<Template, String> {
        let parts = pieces(q)?;
        let fields = parts
            .iter()
            .filter(|p| matches!(p, Piece::Field { .. }))
            .count();
        if fields != 1 {
            return Err(format!(
                "setter `{q}` must have exactly one `{{}}` field, it has {fields}"
            ));
        }
        let mut prefix = String::new();
        let mut suffix = String::new();
        let mut spec = Spec::default();
        let mut seen = false;
        for p in parts {
            match p {
                Piece::Text(t) if seen => suffix.push_str(&t),
                Piece::Text(t) => prefix.push_str(&t),
                Piece::Field { call: Some(c), .. } => {
                    return Err(format!("setter `{q}` can't call `{c}`"));
                }
                Piece::Field {
                    call: None,
                    spec: s,
                } => {
                    spec = s;
                    seen = true;
                }
            }
        }
        Ok(Template {
            prefix,
            suffix,
            spec,
        })
    }

    /// The text of the field when `message` matches the template.
    pub(crate) fn capture<'m>(&self, message: &'m [u8]) -> Option<&'m [u8]> {
        let rest = message.strip_prefix(self.prefix.as_bytes())?;
        let field = rest.strip_suffix(self.suffix.as_bytes())?;
        (!field.is_empty()).then_some(field)
    }

    /// The field's spec.
    pub(crate) fn spec(&self) -> Spec {
        self.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_as_python_does() {
        let cases: &[(&str, Value, &str)] = &[
            (".2f", Value::Float(100.0), "100.00"),
            ("+.8E", Value::Float(1.0), "+1.00000000E+00"),
            ("+.8E", Value::Float(-0.00123), "-1.23000000E-03"),
            (".3e", Value::Float(12345.0), "1.234e+04"),
            ("d", Value::Int(1), "1"),
            ("d", Value::Float(2.0), "2"),
            ("s", Value::Str("P6V".into()), "P6V"),
            ("", Value::Float(5.0), "5.0"),
            ("", Value::Float(0.1), "0.1"),
            ("05d", Value::Int(-42), "-0042"),
            ("8.2f", Value::Float(3.2468), "    3.25"),
        ];
        for (spec, value, want) in cases {
            let got = Spec::parse(spec).map(|s| s.render(value));
            assert_eq!(got.as_deref(), Ok(*want), "spec {spec:?} of {value:?}");
        }
    }

    #[test]
    fn rejects_what_it_cannot_render() {
        for bad in ["x", ".2fz", "+.q"] {
            assert!(Spec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn splits_templates() {
        let p = pieces("{MODEL(vout):+.3E} V {{x}}").map_err(|e| e.to_string());
        assert_eq!(
            p,
            Ok(vec![
                Piece::Field {
                    call: Some("MODEL(vout)".into()),
                    spec: Spec::parse("+.3E").unwrap_or_default()
                },
                Piece::Text(" V {x}".into())
            ])
        );
        assert!(pieces("{:.2f").is_err());
        assert!(pieces("a } b").is_err());
    }

    #[test]
    fn setter_templates_capture_their_field() {
        let t = Template::parse("VOLT {:.3f} V").map_err(|e| e.to_string());
        let Ok(t) = t else { panic!("{t:?}") };
        assert_eq!(t.capture(b"VOLT 5.000 V"), Some(&b"5.000"[..]));
        assert_eq!(t.capture(b"VOLT 1e3 V"), Some(&b"1e3"[..]));
        assert_eq!(t.capture(b"VOLT V"), None);
        assert_eq!(t.capture(b"CURR 1 V"), None);
        assert!(Template::parse("VOLT").is_err());
        assert!(Template::parse("{} {}").is_err());
    }
}
