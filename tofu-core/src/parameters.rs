//! A test's parameters (the `[parameters]` table of its limits file), as phases read them.

use std::collections::BTreeMap;
use std::sync::Arc;

/// The parameters of a limits file, shared by the phases of a run.
pub(crate) type Parameters = Arc<BTreeMap<String, serde_json::Value>>;

/// A parameter could not be read; see [`PhaseContext::parameter`](crate::PhaseContext::parameter).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParameterError {
    /// The test's limits file has no such parameter (or the test has no limits file).
    #[error(
        "no parameter `{name}` (parameters are given in the [parameters] table of the test's limits file)"
    )]
    Missing {
        /// The parameter.
        name: String,
    },
    /// The value is not of the type asked for.
    #[error("parameter `{name}` = {value} is not a `{type_name}`: {message}")]
    WrongType {
        /// The parameter.
        name: String,
        /// Its value, as JSON.
        value: String,
        /// The type asked for.
        type_name: &'static str,
        /// Why it does not fit.
        message: String,
    },
}

/// Reads the parameter `name` as a `T`.
pub(crate) fn parameter<T: serde::de::DeserializeOwned>(
    parameters: Option<&Parameters>,
    name: &str,
) -> Result<T, ParameterError> {
    let value = parameters
        .and_then(|p| p.get(name))
        .ok_or_else(|| ParameterError::Missing {
            name: name.to_owned(),
        })?;
    T::deserialize(value).map_err(|e| ParameterError::WrongType {
        name: name.to_owned(),
        value: value.to_string(),
        type_name: std::any::type_name::<T>(),
        message: e.to_string(),
    })
}
