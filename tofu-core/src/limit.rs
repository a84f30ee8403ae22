//! Numbers in validator limits, written as OpenHTF (Python's `str()`) writes them.

use std::fmt;

/// A number used as a limit. It remembers whether it was given as an integer, so that
/// `in_range(0, 5)` is written `0 <= x <= 5` and `in_range(0.0, 5.0)` is written
/// `0.0 <= x <= 5.0`, as OpenHTF writes them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(into = "f64")]
pub struct Limit {
    value: f64,
    integer: bool,
}

impl Limit {
    /// The limit as a float.
    pub fn value(self) -> f64 {
        self.value
    }
}

impl From<Limit> for f64 {
    fn from(limit: Limit) -> f64 {
        limit.value
    }
}

macro_rules! integer_limits {
    ($($t:ty),*) => {$(
        impl From<$t> for Limit {
            #[allow(clippy::cast_precision_loss, clippy::cast_lossless)]
            fn from(v: $t) -> Limit {
                Limit { value: v as f64, integer: true }
            }
        }
    )*};
}
integer_limits!(i8, i16, i32, i64, u8, u16, u32, u64, isize, usize);

impl From<f64> for Limit {
    fn from(value: f64) -> Limit {
        Limit {
            value,
            integer: false,
        }
    }
}

impl From<f32> for Limit {
    fn from(value: f32) -> Limit {
        Limit {
            value: f64::from(value),
            integer: false,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_text(f)
    }
}

impl Limit {
    /// Writes the limit as OpenHTF does ([`Display`](fmt::Display) without a formatter: a
    /// record writes two limits for each of its thousands of validators).
    pub(crate) fn write_text(self, out: &mut impl fmt::Write) -> fmt::Result {
        if self.integer && self.value.fract() == 0.0 && self.value.abs() < 9.007_199_254_740_992e15
        {
            #[allow(clippy::cast_possible_truncation)]
            write_integer(self.value as i64, out)
        } else {
            write_python_float(self.value, out)
        }
    }
}

/// Writes a whole number's digits (what `write!(out, "{v}")` writes, without the formatting
/// machinery).
fn write_integer(v: i64, out: &mut impl fmt::Write) -> fmt::Result {
    out.write_str(itoa::Buffer::new().format(v))
}

/// Writes a float as Python's `repr`/`str` does: the shortest digits that read back the same,
/// positional from 1e-4 up to 1e16 (always with a fractional part, `5.0`), otherwise in
/// exponent form with at least two exponent digits (`1e-06`, `1.5e+16`).
pub fn python_float(v: f64) -> String {
    let mut text = String::new();
    // Writing into a `String` can't fail.
    let _ = write_python_float(v, &mut text);
    text
}

/// Writes [`python_float`]'s text without allocating (validators write two limits each, and a
/// record may have thousands of validators).
pub(crate) fn write_python_float(v: f64, out: &mut impl fmt::Write) -> fmt::Result {
    if v.is_nan() {
        return out.write_str("nan");
    }
    if v.is_infinite() {
        return out.write_str(if v > 0.0 { "inf" } else { "-inf" });
    }
    if v == 0.0 {
        return out.write_str(if v.is_sign_negative() { "-0.0" } else { "0.0" });
    }
    // Whole numbers in the positional range (most limits: 5.0, 100.0): the integer and `.0`,
    // without the cost of finding the shortest digits (checked against it in the tests).
    if v.fract() == 0.0 && v.abs() < 1e16 {
        #[allow(clippy::cast_possible_truncation)]
        write_integer(v as i64, out)?;
        return out.write_str(".0");
    }
    // `{:e}` gives the shortest digits that read back as `v` (the same digits as `{}`), as
    // `[-]d[.ddd]e[-]x`.
    let mut sci = StackText::default();
    fmt::write(&mut sci, format_args!("{v:e}"))?;
    let sci = sci.as_str()?;
    let (mantissa, exponent) = sci.split_once('e').ok_or(fmt::Error)?;
    let exponent: i32 = exponent.parse().map_err(|_| fmt::Error)?;
    if !(-4..16).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return write!(out, "{mantissa}e{sign}{:02}", exponent.abs());
    }
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let mut digits = StackText::default();
    for part in mantissa.split('.') {
        fmt::Write::write_str(&mut digits, part)?;
    }
    let digits = digits.as_str()?;
    const ZEROS: &str = "0000000000000000";
    out.write_str(sign)?;
    match usize::try_from(exponent) {
        // `d.ddd` × 10^exponent, with the point inside or after the digits.
        Ok(exponent) => {
            let integer_digits = exponent + 1;
            match (digits.get(..integer_digits), digits.get(integer_digits..)) {
                (Some(integer), Some(fraction)) if !fraction.is_empty() => {
                    out.write_str(integer)?;
                    out.write_str(".")?;
                    out.write_str(fraction)
                }
                _ => {
                    out.write_str(digits)?;
                    let zeros = integer_digits.saturating_sub(digits.len());
                    out.write_str(ZEROS.get(..zeros).ok_or(fmt::Error)?)?;
                    out.write_str(".0")
                }
            }
        }
        // 0.000ddd
        Err(_) => {
            let zeros = usize::try_from(-exponent - 1).map_err(|_| fmt::Error)?;
            out.write_str("0.")?;
            out.write_str(ZEROS.get(..zeros).ok_or(fmt::Error)?)?;
            out.write_str(digits)
        }
    }
}

/// A short text on the stack (a float in exponent form is at most 24 bytes; most validators'
/// text fits too); a write that doesn't fit is an error.
pub(crate) struct StackText {
    bytes: [u8; 64],
    len: usize,
}

impl Default for StackText {
    fn default() -> Self {
        StackText {
            bytes: [0; 64],
            len: 0,
        }
    }
}

impl StackText {
    pub(crate) fn as_str(&self) -> Result<&str, fmt::Error> {
        std::str::from_utf8(&self.bytes[..self.len]).map_err(|_| fmt::Error)
    }
}

impl fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.bytes
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_as_python_writes_them() {
        for (v, want) in [
            (4.5, "4.5"),
            (5.0, "5.0"),
            (1e-6, "1e-06"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (1.5e16, "1.5e+16"),
            (1e15, "1000000000000000.0"),
            (-2.5e-7, "-2.5e-07"),
            (0.15000000000000002, "0.15000000000000002"),
            (25.0, "25.0"),
        ] {
            assert_eq!(python_float(v), want, "{v:e}");
        }
    }

    /// The first implementation (two `format!`s), kept to check the one without allocations.
    fn python_float_reference(v: f64) -> String {
        if v.is_nan() {
            return "nan".into();
        }
        if v.is_infinite() {
            return if v > 0.0 { "inf".into() } else { "-inf".into() };
        }
        if v == 0.0 {
            return if v.is_sign_negative() {
                "-0.0".into()
            } else {
                "0.0".into()
            };
        }
        let sci = format!("{v:e}");
        let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
        let exponent: i32 = exponent.parse().unwrap_or(0);
        if (-4..16).contains(&exponent) {
            let plain = format!("{v}");
            if plain.contains('.') {
                plain
            } else {
                format!("{plain}.0")
            }
        } else {
            let sign = if exponent < 0 { '-' } else { '+' };
            format!("{mantissa}e{sign}{:02}", exponent.abs())
        }
    }

    #[test]
    fn floats_are_written_as_before_without_allocating() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut values = vec![
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            5e-324,
            -5e-324,
            1e16,
            9_999_999_999_999_998.0,
            1e-4,
            9.999_999_999_999_999e-5,
            0.1 + 0.2,
            123_456_789_012_345.67,
            // Whole numbers around 2^52 and 2^53, where floats are 1 and 2 apart.
            4_503_599_627_370_497.0,
            9_007_199_254_740_994.0,
            -9_007_199_254_740_994.0,
            -1e15,
            100.0,
        ];
        for _ in 0..100_000 {
            // Any bit pattern (mostly tiny or huge numbers)…
            values.push(f64::from_bits(next()));
            // …and numbers of every size around the positional range, short and long.
            #[allow(clippy::cast_precision_loss)]
            let mantissa = (next() % 10_000_000_000_000_000) as f64 / 1e16;
            let exponent = i32::try_from(next() % 30).unwrap() - 9;
            let v = (1.0 + 9.0 * mantissa) * 10f64.powi(exponent);
            values.extend([v, -v, (v * 1000.0).round() / 1000.0, v.round()]);
        }
        for v in values {
            assert_eq!(python_float(v), python_float_reference(v), "{v:e}");
        }
    }

    #[test]
    fn integer_limits_are_written_without_a_fraction() {
        assert_eq!(Limit::from(5).to_string(), "5");
        assert_eq!(Limit::from(-3i64).to_string(), "-3");
        assert_eq!(Limit::from(5.0).to_string(), "5.0");
    }
}
