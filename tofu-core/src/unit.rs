//! Units of measure: the UNECE Rec. 20 table that OpenHTF uses, plus custom units.

use std::borrow::Cow;
use std::fmt;

mod table;

pub use table::*;

/// A unit of measure as OpenHTF writes it: a name, a UNECE Rec. 20 code and a suffix.
///
/// Every unit of OpenHTF's table is a constant of this module, under OpenHTF's own
/// UPPER_SNAKE name ([`VOLT`], [`DEGREE_CELSIUS`], [`OHM`]…); [`ALL`] lists them all.
///
/// ```
/// use tofu_core::unit::{self, Unit};
/// assert_eq!(unit::VOLT.code(), Some("VLT"));
/// assert_eq!(Unit::find("mV"), Some(unit::MILLIVOLT));
/// let custom = Unit::custom("degree per second", "deg/s");
/// assert_eq!(custom.suffix(), Some("deg/s"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Unit {
    name: Cow<'static, str>,
    code: Option<Cow<'static, str>>,
    suffix: Option<Cow<'static, str>>,
}

impl Unit {
    /// The name, in a `const` context (a unit built at run time has none there: "").
    pub(crate) const fn const_name(&self) -> &str {
        match &self.name {
            Cow::Borrowed(name) => name,
            Cow::Owned(_) => "",
        }
    }

    /// A unit from the table (used by the generated constants).
    pub const fn new(
        name: &'static str,
        code: Option<&'static str>,
        suffix: Option<&'static str>,
    ) -> Self {
        Unit {
            name: Cow::Borrowed(name),
            code: match code {
                Some(c) => Some(Cow::Borrowed(c)),
                None => None,
            },
            suffix: match suffix {
                Some(s) => Some(Cow::Borrowed(s)),
                None => None,
            },
        }
    }

    /// A unit that the UNECE table lacks (degrees per second, g, counts…).
    ///
    /// It has no UNECE code; the record writes `"code": null`.
    pub fn custom(name: impl Into<String>, suffix: impl Into<String>) -> Self {
        Unit {
            name: Cow::Owned(name.into()),
            code: None,
            suffix: Some(Cow::Owned(suffix.into())),
        }
    }

    /// The unit's name, e.g. `"volt"`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The UNECE Rec. 20 code, e.g. `"VLT"`; `None` for custom units and [`NONE`].
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The suffix written after a value, e.g. `"V"`.
    pub fn suffix(&self) -> Option<&str> {
        self.suffix.as_deref()
    }

    /// Finds a unit of the table as OpenHTF's `units.Unit(...)` does: by suffix first (the last
    /// unit of the table with that suffix, so `"V"` is the volt), else by name; then by code.
    pub fn find(key: &str) -> Option<Unit> {
        if key.trim().is_empty() {
            return None;
        }
        ALL.iter()
            .rev()
            .find(|u| u.suffix() == Some(key))
            .or_else(|| ALL.iter().find(|u| u.name() == key))
            .or_else(|| ALL.iter().find(|u| u.code() == Some(key)))
            .cloned()
    }
}

impl fmt::Debug for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Unit({:?}, {:?}, {:?})",
            self.name(),
            self.code(),
            self.suffix()
        )
    }
}

impl fmt::Display for Unit {
    /// Writes the suffix, or the name where there is none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.suffix().unwrap_or(self.name()))
    }
}
