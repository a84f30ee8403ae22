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
        if self.integer && self.value.fract() == 0.0 && self.value.abs() < 9.007_199_254_740_992e15
        {
            write!(f, "{}", self.value as i64)
        } else {
            f.write_str(&python_float(self.value))
        }
    }
}

/// Writes a float as Python's `repr`/`str` does: the shortest digits that read back the same,
/// positional from 1e-4 up to 1e16 (always with a fractional part, `5.0`), otherwise in
/// exponent form with at least two exponent digits (`1e-06`, `1.5e+16`).
pub fn python_float(v: f64) -> String {
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

    #[test]
    fn integer_limits_are_written_without_a_fraction() {
        assert_eq!(Limit::from(5).to_string(), "5");
        assert_eq!(Limit::from(-3i64).to_string(), "-3");
        assert_eq!(Limit::from(5.0).to_string(), "5.0");
    }
}
