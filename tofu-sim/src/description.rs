//! pyvisa-sim's YAML description format, read with serde, then checked and compiled into
//! [`crate::device::Device`]s.
//!
//! Read: `spec`, `devices` (each with `eom`, `error` as a string or as `response`,
//! `status_register` and `error_queue`, `dialogues`, `properties` with `default`, `getter`,
//! `setter` (`q`, `r`, `e`) and `specs` (`min`, `max`, `valid`, `type`)), and `resources`.
//! `channels` are not supported (an error says so). tofu's extensions: `type: block` for a
//! property read and written as an IEEE 488.2 block, `{MODEL(name)}` in answers with a top-level
//! `model:` section, `execution_error` in error queues (a setter's value out of its specs), and a
//! device's `faults`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::fault::FaultRule;
use crate::model::ConverterSpec;

/// A whole description file.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Description {
    #[serde(default)]
    #[allow(dead_code)]
    pub(crate) spec: Option<String>,
    pub(crate) devices: BTreeMap<String, DeviceDesc>,
    #[serde(default)]
    pub(crate) resources: BTreeMap<String, ResourceDesc>,
    #[serde(default)]
    pub(crate) model: Option<ModelDesc>,
}

/// The `model:` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelDesc {
    pub(crate) dc_dc_converter: ConverterSpec,
}

/// A resource: an address and the device behind it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ResourceDesc {
    pub(crate) device: String,
}

/// One device.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DeviceDesc {
    #[serde(default)]
    pub(crate) eom: BTreeMap<String, Eom>,
    #[serde(default)]
    pub(crate) error: Option<ErrorDesc>,
    #[serde(default)]
    pub(crate) dialogues: Vec<Dialogue>,
    #[serde(default)]
    pub(crate) properties: BTreeMap<String, PropertyDesc>,
    #[serde(default)]
    pub(crate) channels: Option<serde_norway::Value>,
    #[serde(default)]
    pub(crate) faults: Vec<FaultRule>,
}

/// End-of-message terminators for one interface type (`TCPIP SOCKET`, `ASRL INSTR`…).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Eom {
    pub(crate) q: String,
    pub(crate) r: String,
}

/// A fixed query and its answer (none when `r` is absent or `null_response`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Dialogue {
    pub(crate) q: String,
    #[serde(default)]
    pub(crate) r: Option<String>,
}

/// `error:` either one answer for every error, or the detailed form.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum ErrorDesc {
    Answer(String),
    Detailed {
        #[serde(default)]
        response: BTreeMap<String, String>,
        #[serde(default)]
        status_register: Vec<StatusRegisterDesc>,
        #[serde(default)]
        error_queue: Vec<ErrorQueueDesc>,
    },
}

/// A status register (`*ESR?`): a bit value per error kind.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct StatusRegisterDesc {
    pub(crate) q: String,
    #[serde(flatten)]
    pub(crate) bits: BTreeMap<String, i64>,
}

/// An error queue (`SYST:ERR?`): the answer when empty, and a message per error kind.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ErrorQueueDesc {
    pub(crate) q: String,
    pub(crate) default: String,
    #[serde(flatten)]
    pub(crate) messages: BTreeMap<String, String>,
}

/// A property: its value, how it is read and set, and its limits.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PropertyDesc {
    pub(crate) default: serde_norway::Value,
    #[serde(default)]
    pub(crate) getter: Option<Getter>,
    #[serde(default)]
    pub(crate) setter: Option<Setter>,
    #[serde(default)]
    pub(crate) specs: Specs,
}

/// How a property is read.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Getter {
    pub(crate) q: String,
    #[serde(default)]
    pub(crate) r: Option<String>,
}

/// How a property is set: the message's template, the answer, the answer to a bad value.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Setter {
    pub(crate) q: String,
    #[serde(default)]
    pub(crate) r: Option<String>,
    #[serde(default)]
    pub(crate) e: Option<String>,
}

/// A property's limits and type.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Specs {
    #[serde(default)]
    pub(crate) min: Option<f64>,
    #[serde(default)]
    pub(crate) max: Option<f64>,
    #[serde(default)]
    pub(crate) valid: Option<Vec<serde_norway::Value>>,
    #[serde(default, rename = "type")]
    pub(crate) kind: Option<String>,
}
