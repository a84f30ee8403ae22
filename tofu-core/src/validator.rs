//! Validators: the limits a measurement is checked against, as data.

use std::fmt;
use std::sync::Arc;

use crate::limit::{Limit, python_float};
use crate::value::Value;

/// A check on a measured value.
///
/// Validators are data: their limits can be read back ([`Validator::lower_limit`],
/// [`Validator::upper_limit`]) and each writes itself with [`Display`](fmt::Display) exactly as
/// OpenHTF 1.6.3 writes it into the record (`"4.5 <= x <= 5.5"`).
///
/// Build them with the functions of [`crate::declare`] inside `#[measures(...)]`.
#[derive(Clone)]
#[non_exhaustive]
pub enum Validator {
    /// Inclusive bounds, either one optional, with optional marginal bounds inside them.
    /// `minimum == maximum` is an equality check on a number (`equals(3)`).
    InRange {
        /// Lowest passing value.
        minimum: Option<Limit>,
        /// Highest passing value.
        maximum: Option<Limit>,
        /// Values from `minimum` up to this one pass but are marginal.
        marginal_minimum: Option<Limit>,
        /// Values from this one up to `maximum` pass but are marginal.
        marginal_maximum: Option<Limit>,
    },
    /// The value equals this boolean or structured value.
    Equals(Value),
    /// The string equals this one (written as OpenHTF writes it: an anchored regex).
    EqualsText(String),
    /// The string matches this regular expression at its start (Python's `re.match`).
    MatchesRegex(Regex),
    /// The value is within `percent` % of `expected` (inclusive).
    WithinPercent {
        /// The expected value.
        expected: Limit,
        /// Allowed deviation, in percent of `expected`.
        percent: Limit,
        /// Values deviating more than this (but within `percent`) are marginal.
        marginal_percent: Option<Limit>,
    },
    /// Every value of a multi-dimensional measurement passes the inner validator.
    AllValues(Box<Validator>),
    /// A user-defined check.
    Custom(Custom),
}

/// A compiled regular expression with its source text.
#[derive(Clone, Debug)]
pub struct Regex {
    source: String,
    anchored: regex::Regex,
}

impl Regex {
    /// Compiles `pattern`; matching is anchored at the start, as Python's `re.match`.
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        let anchored = regex::Regex::new(&format!(r"\A(?:{pattern})"))?;
        Ok(Regex {
            source: pattern.to_owned(),
            anchored,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    fn matches(&self, text: &str) -> bool {
        self.anchored.is_match(text)
    }
}

/// A user-defined validator: a name (written into the record) and a check.
#[derive(Clone)]
pub struct Custom {
    name: String,
    check: Arc<dyn Fn(&Value) -> bool + Send + Sync>,
}

impl fmt::Debug for Custom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Custom({:?})", self.name)
    }
}

impl Custom {
    /// A validator named `name` that passes when `check` returns true.
    pub fn new(
        name: impl Into<String>,
        check: impl Fn(&Value) -> bool + Send + Sync + 'static,
    ) -> Self {
        Custom {
            name: name.into(),
            check: Arc::new(check),
        }
    }

    /// The name written into the record.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What a validator says of one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The value passes.
    pub pass: bool,
    /// The value passes but lies in a marginal band.
    pub marginal: bool,
}

impl Verdict {
    const FAIL: Verdict = Verdict {
        pass: false,
        marginal: false,
    };

    fn pass(marginal: bool) -> Verdict {
        Verdict {
            pass: true,
            marginal,
        }
    }
}

impl Validator {
    /// Checks one value. A value of the wrong kind or NaN fails.
    ///
    /// # Panics
    ///
    /// When a custom check panics (the executor catches it and records it as the phase's
    /// error, with the measurement's name).
    pub fn check(&self, value: &Value) -> Verdict {
        match self {
            Validator::InRange {
                minimum,
                maximum,
                marginal_minimum,
                marginal_maximum,
            } => {
                let Some(v) = number(value) else {
                    return Verdict::FAIL;
                };
                let below = minimum.is_some_and(|m| v < m.value());
                let above = maximum.is_some_and(|m| v > m.value());
                if below || above {
                    return Verdict::FAIL;
                }
                let marginal = marginal_minimum.is_some_and(|m| v <= m.value())
                    || marginal_maximum.is_some_and(|m| v >= m.value());
                Verdict::pass(marginal)
            }
            Validator::Equals(expected) => Verdict {
                pass: equal_as_python(value, expected),
                marginal: false,
            },
            Validator::EqualsText(expected) => Verdict {
                pass: value.as_str() == Some(expected.as_str()),
                marginal: false,
            },
            Validator::MatchesRegex(re) => Verdict {
                pass: value.as_str().is_some_and(|s| re.matches(s)),
                marginal: false,
            },
            Validator::WithinPercent {
                expected,
                percent,
                marginal_percent,
            } => {
                let Some(v) = number(value) else {
                    return Verdict::FAIL;
                };
                // OpenHTF's arithmetic and comparisons exactly (`WithinPercent`): the bounds are
                // computed, then compared with; the marginal bands stop short of the limits.
                let expected = expected.value();
                let (minimum, maximum) = bounds(expected, percent.value());
                if !(minimum <= v && v <= maximum) {
                    return Verdict::FAIL;
                }
                let marginal = marginal_percent.is_some_and(|m| {
                    let (marginal_minimum, marginal_maximum) = bounds(expected, m.value());
                    (minimum < v && v <= marginal_minimum) || (marginal_maximum <= v && v < maximum)
                });
                Verdict::pass(marginal)
            }
            Validator::AllValues(inner) => {
                let Some(columns) = value.as_columns() else {
                    return Verdict::FAIL;
                };
                let mut marginal = false;
                for &v in columns.values() {
                    let verdict = inner.check(&Value::Number(v));
                    if !verdict.pass {
                        return Verdict::FAIL;
                    }
                    marginal |= verdict.marginal;
                }
                Verdict::pass(marginal)
            }
            // A panic goes on to the caller: the executor records it as the phase's ERROR.
            Validator::Custom(custom) => Verdict {
                pass: (custom.check)(value),
                marginal: false,
            },
        }
    }

    /// The lowest passing value, where this validator has one (TofuPilot's `lower_limit`).
    pub fn lower_limit(&self) -> Option<f64> {
        match self {
            Validator::InRange { minimum, .. } => minimum.map(Limit::value),
            Validator::WithinPercent {
                expected, percent, ..
            } => Some(expected.value() - band(expected.value(), percent.value())),
            Validator::AllValues(inner) => inner.lower_limit(),
            _ => None,
        }
    }

    /// The highest passing value, where this validator has one (TofuPilot's `upper_limit`).
    pub fn upper_limit(&self) -> Option<f64> {
        match self {
            Validator::InRange { maximum, .. } => maximum.map(Limit::value),
            Validator::WithinPercent {
                expected, percent, ..
            } => Some(expected.value() + band(expected.value(), percent.value())),
            Validator::AllValues(inner) => inner.upper_limit(),
            _ => None,
        }
    }

    /// The lowest and highest passing values of a validator written as text (its
    /// [`Display`](fmt::Display) form, as records hold it), where it has them: what
    /// [`Validator::lower_limit`] and [`Validator::upper_limit`] say of the validator itself.
    pub fn limits_from_text(text: &str) -> (Option<f64>, Option<f64>) {
        let text = text.strip_prefix("All values pass: ").unwrap_or(text);
        let number = |s: &str| s.trim().parse::<f64>().ok();
        if let Some(rest) = text.strip_prefix("'x' is within ") {
            let percent = rest.split_once("% of ").map(|(p, e)| (number(p), e));
            if let Some((Some(percent), rest)) = percent {
                let expected = number(
                    rest.split(". Marginal:")
                        .next()
                        .unwrap_or(rest)
                        .trim_end_matches('.'),
                );
                if let Some(expected) = expected {
                    let band = band(expected, percent);
                    return (Some(expected - band), Some(expected + band));
                }
            }
            return (None, None);
        }
        if let Some(v) = text.strip_prefix("x == ").and_then(number) {
            return (Some(v), Some(v));
        }
        let mut parts = text.split(" <= ");
        let Some(position) = parts.clone().position(|p| p == "x") else {
            return (None, None);
        };
        let parts: Vec<&str> = parts.by_ref().collect();
        let lower = parts[..position]
            .iter()
            .find(|p| !p.starts_with("Marginal:"))
            .and_then(|p| number(p));
        let upper = parts[position + 1..]
            .iter()
            .rev()
            .find(|p| !p.starts_with("Marginal:"))
            .and_then(|p| number(p));
        (lower, upper)
    }

    /// Checks the validator's own consistency: `minimum <= marginal_minimum <= marginal_maximum
    /// <= maximum`, finite limits, a non-negative percentage.
    pub(crate) fn check_limits(&self) -> Result<(), String> {
        match self {
            Validator::InRange {
                minimum,
                maximum,
                marginal_minimum,
                marginal_maximum,
            } => {
                let named = [
                    ("minimum", minimum),
                    ("marginal minimum", marginal_minimum),
                    ("marginal maximum", marginal_maximum),
                    ("maximum", maximum),
                ];
                if let Some((name, limit)) = named
                    .iter()
                    .find(|(_, l)| l.is_some_and(|l| !l.value().is_finite()))
                {
                    return Err(format!(
                        "{name} {} is not a finite number",
                        limit.map(|l| l.to_string()).unwrap_or_default()
                    ));
                }
                if minimum.is_none() && maximum.is_none() {
                    return Err("in_range needs a minimum or a maximum".into());
                }
                let present: Vec<(&str, Limit)> = named
                    .iter()
                    .filter_map(|(n, l)| l.map(|l| (*n, l)))
                    .collect();
                for pair in present.windows(2) {
                    let ((lo_name, lo), (hi_name, hi)) = (pair[0], pair[1]);
                    if lo.value() > hi.value() {
                        return Err(format!("{lo_name} {lo} is greater than {hi_name} {hi}"));
                    }
                }
                Ok(())
            }
            Validator::WithinPercent {
                expected,
                percent,
                marginal_percent,
            } => {
                if !expected.value().is_finite() {
                    return Err(format!("expected value {expected} is not a finite number"));
                }
                if percent.value().is_nan() || percent.value() < 0.0 {
                    return Err(format!("percent {percent} is negative or not a number"));
                }
                // Finite numbers whose band overflows (1e308 % of 1e308) would pass every value
                // and give TofuPilot infinite limits (as limits_file.rs refuses them).
                let band = expected.value() * percent.value() / 100.0;
                if !(expected.value().abs() + band.abs()).is_finite() {
                    return Err(format!("{percent}% of {expected} is not a finite number"));
                }
                if let Some(m) = marginal_percent
                    && !(0.0..=percent.value()).contains(&m.value())
                {
                    return Err(format!(
                        "marginal percent {m} is not between 0 and percent {percent}"
                    ));
                }
                Ok(())
            }
            Validator::AllValues(inner) => inner.check_limits(),
            _ => Ok(()),
        }
    }
}

/// Python's `==`, which OpenHTF's `Equals` validator applies: in lists and maps, numbers are
/// equal by value whether written as integers or floats (`[1, 2] == [1.0, 2.0]`).
fn equal_as_python(value: &Value, expected: &Value) -> bool {
    match (value, expected) {
        (Value::Json(a), Value::Json(b)) => json_equal(a, b),
        _ => value == expected,
    }
}

fn json_equal(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => {
            let integer = |n: &serde_json::Number| {
                n.as_i64()
                    .map(i128::from)
                    .or_else(|| n.as_u64().map(i128::from))
            };
            match (integer(x), integer(y)) {
                (Some(i), Some(j)) => i == j,
                _ => x.as_f64() == y.as_f64(),
            }
        }
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// A value as a number that can be compared (NaN can't).
fn number(value: &Value) -> Option<f64> {
    value.as_f64().filter(|v| !v.is_nan())
}

/// How far from `expected` a value may be: `percent` % of it.
fn band(expected: f64, percent: f64) -> f64 {
    (expected * percent / 100.0).abs()
}

/// The lowest and highest values within `percent` % of `expected`, computed as OpenHTF does.
fn bounds(expected: f64, percent: f64) -> (f64, f64) {
    let band = band(expected, percent);
    (expected - band, expected + band)
}

/// Escapes a string as Python's `re.escape` does (3.7 and later).
fn python_re_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\\t"),
            '\n' => out.push_str("\\\n"),
            '\r' => out.push_str("\\\r"),
            '\x0b' => out.push_str("\\\x0b"),
            '\x0c' => out.push_str("\\\x0c"),
            '(' | ')' | '[' | ']' | '{' | '}' | '?' | '*' | '+' | '-' | '|' | '^' | '$' | '\\'
            | '.' | '&' | '~' | '#' | ' ' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Writes a value as Python's `str()` would for OpenHTF's `Equals` validator.
fn python_str(value: &Value) -> String {
    match value {
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(v) => python_float(*v),
        Value::Text(s) => s.clone(),
        Value::Json(j) => j.to_string(),
        Value::Columns(c) => format!("<{} points>", c.len()),
    }
}

/// Writes an `InRange` validator as OpenHTF does, piece by piece (the most common validator,
/// written for every measurement of a record: no formatting machinery).
fn write_in_range(
    out: &mut impl fmt::Write,
    minimum: Option<Limit>,
    maximum: Option<Limit>,
    marginal_minimum: Option<Limit>,
    marginal_maximum: Option<Limit>,
) -> fmt::Result {
    if let (Some(lo), Some(hi)) = (minimum, maximum)
        && lo.value() == hi.value()
    {
        out.write_str("x == ")?;
        return lo.write_text(out);
    }
    if let Some(lo) = minimum {
        lo.write_text(out)?;
        out.write_str(" <= ")?;
    }
    if let Some(lo) = marginal_minimum {
        out.write_str("Marginal:")?;
        lo.write_text(out)?;
        out.write_str(" <= ")?;
    }
    out.write_str("x")?;
    if let Some(hi) = marginal_maximum {
        out.write_str(" <= Marginal:")?;
        hi.write_text(out)?;
    }
    if let Some(hi) = maximum {
        out.write_str(" <= ")?;
        hi.write_text(out)?;
    }
    Ok(())
}

impl Validator {
    /// Writes the validator as OpenHTF does (its [`Display`](fmt::Display)), the common
    /// `InRange` without the formatting machinery: a record writes one for each measurement.
    pub(crate) fn write_text(&self, out: &mut impl fmt::Write) -> fmt::Result {
        match self {
            Validator::InRange {
                minimum,
                maximum,
                marginal_minimum,
                marginal_maximum,
            } => write_in_range(
                out,
                *minimum,
                *maximum,
                *marginal_minimum,
                *marginal_maximum,
            ),
            other => write!(out, "{other}"),
        }
    }

    /// [`Validator::write_text`] into a new string.
    pub(crate) fn text(&self) -> String {
        let mut text = String::new();
        // Writing into a `String` can't fail.
        let _ = self.write_text(&mut text);
        text
    }
}

impl fmt::Display for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Validator::InRange { .. } => self.write_text(f),
            Validator::Equals(Value::Bool(b)) => {
                write!(f, "x == {}", if *b { "True" } else { "False" })
            }
            Validator::Equals(v) => write!(f, "'x' is equal to '{}'", python_str(v)),
            Validator::EqualsText(s) => write!(f, "'x' matches /^{}$/", python_re_escape(s)),
            Validator::MatchesRegex(re) => write!(f, "'x' matches /{}/", re.as_str()),
            Validator::WithinPercent {
                expected,
                percent,
                marginal_percent,
            } => {
                write!(f, "'x' is within {percent}% of {expected}.")?;
                if let Some(m) = marginal_percent {
                    write!(f, " Marginal: {m}% of {expected}")?;
                }
                Ok(())
            }
            Validator::AllValues(inner) => write!(f, "All values pass: {inner}"),
            Validator::Custom(custom) => f.write_str(&custom.name),
        }
    }
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Validator({self})")
    }
}

impl serde::Serialize for Validator {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Most validators' text is short: made on the stack and written as one string.
        let mut text = crate::limit::StackText::default();
        if self.write_text(&mut text).is_ok()
            && let Ok(text) = text.as_str()
        {
            return serializer.serialize_str(text);
        }
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_range(
        min: Option<Limit>,
        max: Option<Limit>,
        mmin: Option<Limit>,
        mmax: Option<Limit>,
    ) -> Validator {
        Validator::InRange {
            minimum: min,
            maximum: max,
            marginal_minimum: mmin,
            marginal_maximum: mmax,
        }
    }

    #[test]
    fn limits_read_back_from_the_text_are_the_validators_own() {
        let within = |e: f64, p: f64, m: Option<f64>| Validator::WithinPercent {
            expected: e.into(),
            percent: p.into(),
            marginal_percent: m.map(Into::into),
        };
        let validators = [
            in_range(Some(4.5.into()), Some(5.5.into()), None, None),
            in_range(None, Some(1e-6.into()), None, None),
            in_range(Some(1.into()), None, None, None),
            in_range(Some((-3).into()), Some((-3).into()), None, None),
            in_range(
                Some(4.5.into()),
                Some(5.5.into()),
                Some(4.6.into()),
                Some(5.4.into()),
            ),
            in_range(None, Some(5.5.into()), None, Some(5.4.into())),
            within(5.0, 10.0, None),
            within(-2.5, 4.0, Some(3.0)),
            Validator::AllValues(Box::new(in_range(
                Some(95.into()),
                Some(105.into()),
                None,
                None,
            ))),
            Validator::EqualsText("1.2.3".into()),
            Validator::Equals(Value::Bool(true)),
        ];
        for v in validators {
            assert_eq!(
                Validator::limits_from_text(&v.to_string()),
                (v.lower_limit(), v.upper_limit()),
                "{v}"
            );
        }
    }

    #[test]
    fn validators_are_written_as_openhtf_writes_them() {
        let cases = [
            (
                in_range(Some(4.5.into()), Some(5.5.into()), None, None),
                "4.5 <= x <= 5.5",
            ),
            (in_range(None, Some(1e-6.into()), None, None), "x <= 1e-06"),
            (in_range(Some(1.into()), None, None, None), "1 <= x"),
            (
                in_range(
                    Some(0.1.into()),
                    Some(0.5.into()),
                    Some(0.15.into()),
                    Some(0.45.into()),
                ),
                "0.1 <= Marginal:0.15 <= x <= Marginal:0.45 <= 0.5",
            ),
            (
                in_range(Some(3.into()), Some(3.into()), None, None),
                "x == 3",
            ),
            (Validator::Equals(Value::Bool(true)), "x == True"),
            (
                Validator::EqualsText("1.2.3".into()),
                r"'x' matches /^1\.2\.3$/",
            ),
            (
                Validator::MatchesRegex(Regex::new(r"^SN\d{6}$").unwrap()),
                r"'x' matches /^SN\d{6}$/",
            ),
            (
                Validator::WithinPercent {
                    expected: 25.0.into(),
                    percent: 10.into(),
                    marginal_percent: None,
                },
                "'x' is within 10% of 25.0.",
            ),
            (
                Validator::WithinPercent {
                    expected: 25.0.into(),
                    percent: 10.into(),
                    marginal_percent: Some(5.into()),
                },
                "'x' is within 10% of 25.0. Marginal: 5% of 25.0",
            ),
            (
                Validator::AllValues(Box::new(in_range(
                    Some(90.into()),
                    Some(110.into()),
                    None,
                    None,
                ))),
                "All values pass: 90 <= x <= 110",
            ),
            (
                Validator::Equals(Value::Json(serde_json::json!([1, 2]))),
                "'x' is equal to '[1,2]'",
            ),
        ];
        for (validator, want) in cases {
            assert_eq!(validator.to_string(), want);
        }
    }

    #[test]
    fn in_range_is_inclusive_and_marks_marginal_bands() {
        let v = in_range(
            Some(0.1.into()),
            Some(0.5.into()),
            Some(0.15.into()),
            Some(0.45.into()),
        );
        let verdict = |x: f64| v.check(&Value::Number(x));
        assert_eq!(
            verdict(0.1),
            Verdict {
                pass: true,
                marginal: true
            }
        );
        assert_eq!(
            verdict(0.3),
            Verdict {
                pass: true,
                marginal: false
            }
        );
        assert_eq!(
            verdict(0.47),
            Verdict {
                pass: true,
                marginal: true
            }
        );
        assert_eq!(
            verdict(0.5),
            Verdict {
                pass: true,
                marginal: true
            }
        );
        assert!(!verdict(0.51).pass);
        assert!(!verdict(0.09).pass);
        assert!(!verdict(f64::NAN).pass);
        assert!(!v.check(&Value::Text("0.3".into())).pass);
    }

    #[test]
    fn within_percent_bounds_and_limits() {
        let v = Validator::WithinPercent {
            expected: 25.0.into(),
            percent: 10.into(),
            marginal_percent: Some(5.into()),
        };
        assert!(v.check(&Value::Number(27.5)).pass);
        assert!(!v.check(&Value::Number(27.6)).pass);
        assert!(v.check(&Value::Number(26.5)).marginal);
        assert!(!v.check(&Value::Number(25.5)).marginal);
        // On a limit: passes, and is not marginal (OpenHTF's `marginal_maximum <= x < maximum`).
        for limit in [22.5, 27.5] {
            assert_eq!(
                v.check(&Value::Number(limit)),
                Verdict::pass(false),
                "{limit}"
            );
        }
        assert_eq!((v.lower_limit(), v.upper_limit()), (Some(22.5), Some(27.5)));
        // A value exactly on a bound OpenHTF computes (0.7 - 0.07 = 0.6299999999999999) passes,
        // as there, although its distance from 0.7 (0.07000000000000006) is more than the band.
        let v = Validator::WithinPercent {
            expected: 0.7.into(),
            percent: 10.into(),
            marginal_percent: None,
        };
        let lowest = 0.7 - (0.7f64 * 10.0 / 100.0).abs();
        assert!((lowest - 0.7f64).abs() > (0.7f64 * 10.0 / 100.0).abs());
        assert!(v.check(&Value::Number(lowest)).pass);
    }

    /// OpenHTF compares with Python's `==`: 1 == 1.0, and maps in any order.
    #[test]
    fn equals_json_compares_numbers_by_value_as_python_does() {
        let v = Validator::Equals(Value::Json(serde_json::json!([1, 2, {"a": 3}])));
        let check = |j: serde_json::Value| v.check(&Value::Json(j)).pass;
        assert!(check(serde_json::json!([1.0, 2.0, {"a": 3.0}])));
        assert!(check(serde_json::json!([1, 2, {"a": 3}])));
        assert!(!check(serde_json::json!([1, 2, {"a": 3.5}])));
        assert!(!check(serde_json::json!([1, 2])));
        assert!(!check(serde_json::json!([1, 2, {"b": 3}])));
        let m = Validator::Equals(Value::Json(serde_json::json!({"rail": "3V3", "ok": true})));
        assert!(
            m.check(&Value::Json(serde_json::json!({"ok": true, "rail": "3V3"})))
                .pass
        );
    }

    #[test]
    fn regex_matches_at_the_start_only_like_python() {
        let v = Validator::MatchesRegex(Regex::new(r"SN\d").unwrap());
        assert!(v.check(&Value::Text("SN1-extra".into())).pass);
        assert!(!v.check(&Value::Text("xSN1".into())).pass);
    }

    #[test]
    fn inconsistent_limits_are_reported_with_their_values() {
        let err = in_range(Some(5.5.into()), Some(4.5.into()), None, None)
            .check_limits()
            .unwrap_err();
        assert_eq!(err, "minimum 5.5 is greater than maximum 4.5");
        let err = in_range(
            Some(0.into()),
            Some(1.into()),
            Some(0.5.into()),
            Some(0.2.into()),
        )
        .check_limits()
        .unwrap_err();
        assert_eq!(
            err,
            "marginal minimum 0.5 is greater than marginal maximum 0.2"
        );
        let err = in_range(Some(f64::NAN.into()), None, None, None)
            .check_limits()
            .unwrap_err();
        assert_eq!(err, "minimum nan is not a finite number");
        assert!(
            in_range(Some(1.into()), Some(1.into()), None, None)
                .check_limits()
                .is_ok()
        );
    }

    #[test]
    fn a_panicking_custom_validator_panics_for_the_executor_to_record() {
        let v = Validator::Custom(Custom::new("explodes", |_| panic!("boom")));
        let check = std::panic::AssertUnwindSafe(|| v.check(&Value::Number(1.0)));
        assert!(std::panic::catch_unwind(check).is_err());
        assert_eq!(v.to_string(), "explodes");
    }
}
