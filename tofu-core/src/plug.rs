//! Plugs: the instruments and fixtures a test uses (power supplies, DMMs, serial ports…).
//!
//! A plug is a type of yours that implements [`Plug`]. The test is given one instance of each
//! plug ([`Test::plug`](crate::Test::plug)); phases ask for plugs by type in their signature
//! (`psu: &mut PowerSupply`) and get that instance. Setup runs before the first phase, in the
//! order the plugs were given; teardown runs once at the end of the run, in reverse order,
//! whatever happened (an error, a panic, a timeout, an abort).
//!
//! To swap a real instrument for a simulated one, have phases ask for a trait object
//! (`psu: &mut dyn Supply`, with `trait Supply: Plug`) and give the test either
//! `Box::new(RealSupply::open(..)) as Box<dyn Supply>` or a simulation.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::gate::Gate;
use crate::panic_capture::catch;

/// How long a plug's setup or teardown, or a phase, waits for a phase that was abandoned
/// (timed out or aborted) to let go of a plug (OpenHTF's `cancel_timeout_s`).
pub(crate) const PLUG_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a plug's setup or teardown may take unless the test says otherwise
/// ([`Test::plug_timeout`](crate::Test::plug_timeout)).
pub const DEFAULT_PLUG_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// An instrument or fixture with a life cycle.
pub trait Plug: Send + 'static {
    /// Prepares the instrument (open the port, reset…). An error makes the run ERROR, naming
    /// the plug.
    fn setup(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(())
    }

    /// Leaves the instrument safe (outputs off, port closed). Always called once per run
    /// whose setup succeeded.
    fn teardown(&mut self) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        Ok(())
    }

    /// What the plug adds to the run's record: each `(key, value)` is appended to the list
    /// `metadata.<key>` (created when absent). Asked once for each of the run's own plugs when
    /// the record is made (after the teardowns, also when a setup failed, so an instrument that
    /// failed its checks is still named), in the order the plugs were given. Instruments use
    /// it to list their identity under `"instruments"`. A reserved key (`test_name`,
    /// `station_id`…) or a key given a non-list value with [`Test::metadata`](crate::Test::metadata)
    /// is left as it is, with a warning. A station's shared plugs are asked once per batch,
    /// after their setup (while no slot holds them), and their entries go into every slot's
    /// record, after the slot's own plugs'.
    fn record_metadata(&self) -> Vec<(String, serde_json::Value)> {
        Vec::new()
    }
}

pub(crate) use crate::gate::SharedPlug;

/// What a plug's life-cycle call returns.
pub(crate) type PlugResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Which life-cycle call to make.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lifecycle {
    Setup,
    Teardown,
}

/// One plug of a test: the instance (a `Box<T>` behind `Any`), its name, and how to call its
/// [`Plug`] methods.
pub(crate) struct PlugEntry {
    pub(crate) type_id: TypeId,
    pub(crate) name: &'static str,
    pub(crate) instance: SharedPlug,
    pub(crate) call: fn(&mut (dyn Any + Send), Lifecycle) -> Option<PlugResult>,
    /// Calls [`Plug::record_metadata`].
    pub(crate) metadata: fn(&(dyn Any + Send)) -> Vec<(String, serde_json::Value)>,
    /// Set for a station's shared plug: one phase of one slot holds it at a time, and the
    /// station, not the slot's run, sets it up and tears it down.
    pub(crate) gate: Option<Arc<Gate>>,
}

impl fmt::Debug for PlugEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plug({})", self.name)
    }
}

impl PlugEntry {
    pub(crate) fn new<T: ?Sized + Plug>(plug: Box<T>) -> Self {
        fn call<T: ?Sized + Plug>(
            any: &mut (dyn Any + Send),
            step: Lifecycle,
        ) -> Option<PlugResult> {
            let plug: &mut T = any.downcast_mut::<Box<T>>()?;
            Some(match step {
                Lifecycle::Setup => plug.setup(),
                Lifecycle::Teardown => plug.teardown(),
            })
        }
        fn metadata<T: ?Sized + Plug>(any: &(dyn Any + Send)) -> Vec<(String, serde_json::Value)> {
            any.downcast_ref::<Box<T>>()
                .map(|plug| plug.record_metadata())
                .unwrap_or_default()
        }
        PlugEntry {
            type_id: TypeId::of::<T>(),
            name: short_name(std::any::type_name::<T>()),
            instance: Arc::new(Mutex::new(Box::new(plug))),
            call: call::<T>,
            metadata: metadata::<T>,
            gate: None,
        }
    }

    /// The plug made shared between a station's slots.
    pub(crate) fn into_shared(mut self) -> Self {
        self.gate = Some(Arc::new(Gate::default()));
        self
    }

    /// Another handle on the same shared plug, for one slot's test.
    pub(crate) fn share(&self) -> Self {
        PlugEntry {
            type_id: self.type_id,
            name: self.name,
            instance: Arc::clone(&self.instance),
            call: self.call,
            metadata: self.metadata,
            gate: self.gate.clone(),
        }
    }
}

/// A plug's name and the record metadata entries it gave.
pub(crate) type PlugMetadata = (&'static str, Vec<(String, serde_json::Value)>);

/// Asks each plug what it adds to the record ([`Plug::record_metadata`]). A plug still held by
/// a phase that timed out is not waited for (its entries are left out, with a warning); a
/// panic in `record_metadata` is logged and its entries left out.
pub(crate) fn record_metadata<'p>(
    plugs: impl IntoIterator<Item = &'p PlugEntry>,
) -> Vec<PlugMetadata> {
    let mut all = Vec::new();
    for plug in plugs {
        let entries = match plug.instance.try_lock() {
            Ok(guard) => catch(|| (plug.metadata)(&**guard)),
            Err(std::sync::TryLockError::Poisoned(p)) => {
                let guard = p.into_inner();
                catch(|| (plug.metadata)(&**guard))
            }
            Err(std::sync::TryLockError::WouldBlock) => {
                tracing::warn!(
                    "plug `{}` is still in use by a phase that timed out; its record metadata is left out",
                    plug.name
                );
                continue;
            }
        };
        match entries {
            Ok(entries) => all.push((plug.name, entries)),
            Err(panic) => tracing::error!(
                "plug `{}` panicked giving its record metadata at {}: {}",
                plug.name,
                panic.location,
                panic.message
            ),
        }
    }
    all
}

/// Appends the plugs' entries (from [`record_metadata`]) to the record's metadata: each
/// `(key, value)` to the list `key`, created when absent. A reserved key, or a key holding
/// something else than a list, is left as it is, with a warning.
pub(crate) fn add_record_metadata<'m>(
    extra: &mut std::collections::BTreeMap<String, serde_json::Value>,
    reserved: &[&str],
    metadata: impl IntoIterator<Item = &'m PlugMetadata>,
) {
    for (plug, entries) in metadata {
        for (key, value) in entries {
            if reserved.contains(&key.as_str()) {
                tracing::warn!(
                    "plug `{plug}`: metadata key `{key}` is reserved; its entry is left out"
                );
                continue;
            }
            match extra
                .entry(key.clone())
                .or_insert_with(|| serde_json::Value::Array(Vec::new()))
            {
                serde_json::Value::Array(list) => list.push(value.clone()),
                _ => tracing::warn!(
                    "plug `{plug}`: metadata key is not a list (set with Test::metadata); its entry is left out"
                ),
            }
        }
    }
}

fn short_name(full: &'static str) -> &'static str {
    let trimmed = full.trim_start_matches("dyn ");
    trimmed.rsplit("::").next().unwrap_or(trimmed)
}

/// The plugs a running phase asked for, lent to it for the phase's duration.
pub struct PlugSet<'a> {
    lent: Vec<(TypeId, &'static str, Option<&'a mut (dyn Any + Send)>)>,
}

impl fmt::Debug for PlugSet<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.lent.iter().map(|(_, name, _)| name))
            .finish()
    }
}

/// A phase asked for a plug the test does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the test has no plug `{0}`")]
pub struct MissingPlug(pub String);

impl<'a> PlugSet<'a> {
    pub(crate) fn new(lent: Vec<(TypeId, &'static str, &'a mut (dyn Any + Send))>) -> Self {
        PlugSet {
            lent: lent
                .into_iter()
                .map(|(id, name, p)| (id, name, Some(p)))
                .collect(),
        }
    }

    /// Takes the plug of type `T` (each plug once per phase).
    #[doc(hidden)]
    pub fn __take<T: ?Sized + 'static>(&mut self) -> Result<&'a mut T, MissingPlug> {
        let missing = || MissingPlug(short_name(std::any::type_name::<T>()).to_owned());
        let slot = self
            .lent
            .iter_mut()
            .find(|(id, _, p)| *id == TypeId::of::<T>() && p.is_some())
            .ok_or_else(missing)?;
        let any = slot.2.take().ok_or_else(missing)?;
        any.downcast_mut::<Box<T>>()
            .map(|b| &mut **b)
            .ok_or_else(missing)
    }
}

/// What a phase needs: its plugs' types and names.
pub type PlugNeeds = Vec<(TypeId, &'static str)>;

/// The type and name of `T`, for the phase's list of needed plugs.
#[doc(hidden)]
pub fn __need<T: ?Sized + 'static>() -> (TypeId, &'static str) {
    (TypeId::of::<T>(), short_name(std::any::type_name::<T>()))
}
