//! End-to-end tests of tofu: real executions, real files, real processes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abort;
mod compile_fail;
mod console;
mod differential;
mod disk;
mod edge_cases;
mod events;
mod example_binaries;
mod examples;
mod execution;
mod exit_codes;
mod flow;
mod function_length;
mod groups;
mod hostile_limits;
mod junit;
mod layers;
mod lifecycle;
mod limits_file;
mod mutate;
mod openhtf_compat;
mod openhtf_rules;
mod phase_faults;
mod plugs;
mod prompt;
mod properties;
mod report;
mod station;
mod station_page;
mod support;
mod testing;
mod timeouts;
mod tmpfs;
