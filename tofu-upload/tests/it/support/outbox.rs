//! Reading the outbox a test made.

use std::path::Path;

use tofu_upload::uploader::{Entry, Outbox, OutboxError};

/// The oldest entry of the outbox in `dir`, or why it can't be read.
pub fn try_first_entry(dir: impl AsRef<Path>) -> Result<Entry, OutboxError> {
    Outbox::open(dir.as_ref())
        .unwrap()
        .entries()
        .unwrap()
        .remove(0)
}

/// The oldest entry of the outbox in `dir`.
pub fn first_entry(dir: impl AsRef<Path>) -> Entry {
    try_first_entry(dir).unwrap()
}
