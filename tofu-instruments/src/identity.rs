//! Who an instrument is (`*IDN?`), and its calibration.

use serde_json::json;

/// The four fields of an `*IDN?` answer (IEEE 488.2: manufacturer, model, serial number,
/// firmware), and the answer itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Identity {
    /// `Keysight Technologies`
    pub manufacturer: String,
    /// `34465A`
    pub model: String,
    /// `MY12345678`
    pub serial_number: String,
    /// `A.02.17-02.40-02.17-00.52-02-01`
    pub firmware: String,
    /// The whole answer, as given.
    pub idn: String,
}

impl Identity {
    /// Reads an `*IDN?` answer; missing fields are empty, commas past the third stay in the
    /// firmware field.
    pub fn parse(idn: &str) -> Identity {
        let mut fields = idn.trim().splitn(4, ',').map(|f| f.trim().to_owned());
        Identity {
            manufacturer: fields.next().unwrap_or_default(),
            model: fields.next().unwrap_or_default(),
            serial_number: fields.next().unwrap_or_default(),
            firmware: fields.next().unwrap_or_default(),
            idn: idn.trim().to_owned(),
        }
    }
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.manufacturer, self.model)?;
        if !self.serial_number.is_empty() {
            write!(f, " s/n {}", self.serial_number)?;
        }
        Ok(())
    }
}

/// What to do with an instrument past its calibration due date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CalibrationPolicy {
    /// The run fails at the start (the plug's setup fails): the default.
    #[default]
    Fail,
    /// A warning in the log; the run goes on, and the record says it was expired.
    Warn,
}

/// Whether an instrument due on `due` is expired on `today` (the due date itself is still
/// valid).
pub fn calibration_expired(due: chrono::NaiveDate, today: chrono::NaiveDate) -> bool {
    today > due
}

/// The record's entry for one instrument (`metadata.instruments[]`).
pub(crate) fn record_entry(
    role: &str,
    address: &str,
    identity: Option<&Identity>,
    calibration_due: Option<chrono::NaiveDate>,
    today: chrono::NaiveDate,
) -> serde_json::Value {
    let mut entry = json!({
        "name": role,
        "address": address,
    });
    if let (Some(map), Some(id)) = (entry.as_object_mut(), identity) {
        map.insert("manufacturer".into(), json!(id.manufacturer));
        map.insert("model".into(), json!(id.model));
        map.insert("serial_number".into(), json!(id.serial_number));
        map.insert("firmware".into(), json!(id.firmware));
        map.insert("idn".into(), json!(id.idn));
    }
    if let (Some(map), Some(due)) = (entry.as_object_mut(), calibration_due) {
        map.insert("calibration_due".into(), json!(due.to_string()));
        map.insert(
            "calibration_expired".into(),
            json!(calibration_expired(due, today)),
        );
    }
    if let (Some(map), None) = (entry.as_object_mut(), identity) {
        map.insert("connected".into(), json!(false));
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_idn_answers() {
        let cases = [
            (
                "Keysight Technologies,34465A,MY12345678,A.02.17\n",
                ["Keysight Technologies", "34465A", "MY12345678", "A.02.17"],
            ),
            (
                "TOFU SIM, DMM-6500 ,DMM1",
                ["TOFU SIM", "DMM-6500", "DMM1", ""],
            ),
            (
                "RIGOL,DP832,DP8A1,00.01.16,extra",
                ["RIGOL", "DP832", "DP8A1", "00.01.16,extra"],
            ),
            ("", ["", "", "", ""]),
        ];
        for (idn, [m, model, sn, fw]) in cases {
            let id = Identity::parse(idn);
            assert_eq!(
                [
                    id.manufacturer.as_str(),
                    &id.model,
                    &id.serial_number,
                    &id.firmware
                ],
                [m, model, sn, fw],
                "{idn:?}"
            );
            assert_eq!(id.idn, idn.trim());
        }
    }

    #[test]
    fn calibration_is_valid_through_its_due_date() {
        let d = |s: &str| s.parse::<chrono::NaiveDate>().unwrap_or_default();
        let cases = [
            ("2026-12-01", "2026-11-30", false),
            ("2026-12-01", "2026-12-01", false),
            ("2026-12-01", "2026-12-02", true),
            ("2025-01-01", "2026-12-02", true),
        ];
        for (due, today, expired) in cases {
            assert_eq!(
                calibration_expired(d(due), d(today)),
                expired,
                "{due} {today}"
            );
        }
    }
}
