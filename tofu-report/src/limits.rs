//! Limits read back from validator strings, as OpenHTF (and tofu) write them:
//! `"4.5 <= x <= 5.5"`, `"0.1 <= Marginal:0.15 <= x <= Marginal:0.45 <= 0.5"`, `"x <= 1e-06"`,
//! `"x == 3"`, `"'x' is within 10% of 25.0."` (with `" Marginal: 5% of 25.0"`), and any of
//! those after `"All values pass: "`.

/// Numeric limits of a measurement, for drawing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Limits {
    pub(crate) lower: Option<f64>,
    pub(crate) upper: Option<f64>,
    pub(crate) marginal_lower: Option<f64>,
    pub(crate) marginal_upper: Option<f64>,
}

impl Limits {
    /// The limits of the first validator that has any (later ones fill what is still missing).
    pub(crate) fn from_validators<'a>(validators: impl IntoIterator<Item = &'a str>) -> Self {
        let mut limits = Limits::default();
        for text in validators {
            let found = parse(text);
            limits.lower = limits.lower.or(found.lower);
            limits.upper = limits.upper.or(found.upper);
            limits.marginal_lower = limits.marginal_lower.or(found.marginal_lower);
            limits.marginal_upper = limits.marginal_upper.or(found.marginal_upper);
        }
        limits
    }

    /// Whether `y` is outside the (hard) limits.
    pub(crate) fn outside(&self, y: f64) -> bool {
        self.lower.is_some_and(|lo| y < lo) || self.upper.is_some_and(|hi| y > hi)
    }

    /// Whether there is any limit at all.
    #[cfg(test)]
    pub(crate) fn any(&self) -> bool {
        self.lower.is_some()
            || self.upper.is_some()
            || self.marginal_lower.is_some()
            || self.marginal_upper.is_some()
    }
}

fn number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The limits one validator string states (none for regexes, custom validators…).
pub(crate) fn parse(text: &str) -> Limits {
    let text = text.trim();
    if let Some(inner) = text.strip_prefix("All values pass:") {
        return parse(inner);
    }
    if let Some(rest) = text.strip_prefix("'x' is within ") {
        return within_percent(rest).unwrap_or_default();
    }
    if let Some(value) = text.strip_prefix("x == ").and_then(number) {
        return Limits {
            lower: Some(value),
            upper: Some(value),
            ..Limits::default()
        };
    }
    let parts: Vec<&str> = text.split(" <= ").map(str::trim).collect();
    let Some(x) = parts.iter().position(|p| *p == "x") else {
        return Limits::default();
    };
    if parts.len() < 2 {
        return Limits::default();
    }
    let mut limits = Limits::default();
    for (i, part) in parts.iter().enumerate() {
        if i == x {
            continue;
        }
        let (marginal, value) = match part.strip_prefix("Marginal:") {
            Some(v) => (true, number(v)),
            None => (false, number(part)),
        };
        let Some(value) = value else {
            return Limits::default();
        };
        let slot = match (i < x, marginal) {
            (true, false) => &mut limits.lower,
            (true, true) => &mut limits.marginal_lower,
            (false, false) => &mut limits.upper,
            (false, true) => &mut limits.marginal_upper,
        };
        *slot = Some(value);
    }
    limits
}

/// `"10% of 25.0."` or `"10% of 25.0. Marginal: 5% of 25.0"`.
fn within_percent(rest: &str) -> Option<Limits> {
    let (percent, rest) = rest.split_once("% of ")?;
    let percent = number(percent)?;
    let (expected, marginal) = match rest.split_once(" Marginal: ") {
        Some((e, m)) => (e, Some(m)),
        None => (rest, None),
    };
    let expected = number(expected.trim().trim_end_matches('.'))?;
    let band = |p: f64| (expected * p / 100.0).abs();
    let marginal = marginal
        .and_then(|m| m.split_once('%'))
        .and_then(|(p, _)| number(p));
    Some(Limits {
        lower: Some(expected - band(percent)),
        upper: Some(expected + band(percent)),
        marginal_lower: marginal.map(|m| expected - band(m)),
        marginal_upper: marginal.map(|m| expected + band(m)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(lower: Option<f64>, upper: Option<f64>) -> Limits {
        Limits {
            lower,
            upper,
            ..Limits::default()
        }
    }

    #[test]
    fn reads_openhtf_validator_strings() {
        assert_eq!(parse("4.5 <= x <= 5.5"), l(Some(4.5), Some(5.5)));
        assert_eq!(
            parse("All values pass: 90 <= x <= 110"),
            l(Some(90.0), Some(110.0))
        );
        assert_eq!(parse("x <= 1e-06"), l(None, Some(1e-6)));
        assert_eq!(parse("1 <= x"), l(Some(1.0), None));
        assert_eq!(parse("x == 3"), l(Some(3.0), Some(3.0)));
        assert_eq!(
            parse("0.1 <= Marginal:0.15 <= x <= Marginal:0.45 <= 0.5"),
            Limits {
                lower: Some(0.1),
                upper: Some(0.5),
                marginal_lower: Some(0.15),
                marginal_upper: Some(0.45),
            }
        );
        let p = parse("'x' is within 10% of 25.0.");
        assert!((p.lower.unwrap() - 22.5).abs() < 1e-9 && (p.upper.unwrap() - 27.5).abs() < 1e-9);
        let m = parse("'x' is within 10% of -20. Marginal: 5% of -20");
        assert!((m.lower.unwrap() + 22.0).abs() < 1e-9);
        assert!((m.marginal_upper.unwrap() + 19.0).abs() < 1e-9);
    }

    #[test]
    fn other_validators_have_no_limits() {
        for text in [
            "'x' matches /^1\\.2\\.3$/",
            "x == True",
            "'x' is equal to 'abc'",
            "my_custom_check",
            "x <= nan",
            "",
        ] {
            assert!(!parse(text).any(), "{text}");
        }
    }

    #[test]
    fn first_validator_wins_and_others_fill_in() {
        let limits = Limits::from_validators(["x <= 5", "1 <= x <= 9"]);
        assert_eq!(limits, l(Some(1.0), Some(5.0)));
        assert!(limits.outside(0.5) && limits.outside(5.5) && !limits.outside(5.0));
    }
}
