//! Catching panics from user code (phases, validators, output callbacks) with their message
//! and location, without the default panic message on the console.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    static CAUGHT: RefCell<Option<Panic>> = const { RefCell::new(None) };
}

/// A caught panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Panic {
    /// The panic message.
    pub(crate) message: String,
    /// `file:line:column`, where known.
    pub(crate) location: String,
}

/// A panic's message, when it is text (`panic!("…")` makes a `&str` or a `String`).
fn payload_message(payload: &(dyn std::any::Any + Send)) -> Option<String> {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
}

fn install_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(Cell::get) {
                return previous(info);
            }
            let message = payload_message(info.payload())
                .unwrap_or_else(|| "panic with a non-string payload".to_owned());
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            CAUGHT.with(|c| *c.borrow_mut() = Some(Panic { message, location }));
        }));
    });
}

/// Runs `f`, turning a panic into an `Err` with its message and location.
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> Result<R, Panic> {
    install_hook();
    let was = CATCHING.with(|c| c.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(was));
    result.map_err(|payload| {
        CAUGHT
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| Panic {
                message: payload_message(&*payload).unwrap_or_else(|| "panic".to_owned()),
                location: String::new(),
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_are_caught_with_message_and_location() {
        let line = line!() + 1;
        let err = catch(|| panic!("relay stuck at {}", 3)).unwrap_err();
        assert_eq!(err.message, "relay stuck at 3");
        assert!(
            err.location.starts_with(&format!("{}:{line}:", file!())),
            "{}",
            err.location
        );
        assert_eq!(catch(|| 7), Ok(7));
    }

    #[test]
    fn nested_catches_restore_the_outer_state() {
        let outer = catch(|| {
            let inner = catch(|| panic!("inner"));
            assert_eq!(inner.unwrap_err().message, "inner");
            panic!("outer")
        });
        assert_eq!(outer.unwrap_err().message, "outer");
    }
}
