//! Integration tests of tofu-upload against a loopback server that answers like
//! TofuPilot, comparing every request with the captures of the official Python client
//! 2.26.1 in `fixtures/tofupilot/captured/`.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod attachments;
mod client;
mod comparison;
mod crash_loop;
mod create_run;
mod disk;
mod edge_cases;
#[path = "../../../tests/tests/it/example_binaries.rs"]
mod example_binaries;
mod examples;
mod faults;
mod get_runs;
mod hostile;
mod instruments;
mod logs;
#[path = "../../../tests/tests/it/mutate.rs"]
mod mutate;
mod openhtf;
mod outbox_command;
mod recover_command;
mod second_pass;
mod security;
mod station;
mod support;
#[path = "../../../tests/tests/it/tmpfs.rs"]
mod tmpfs;
mod uploader;
