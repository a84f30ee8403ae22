//! End-to-end tests of tofu: real executions, real files, real processes.

mod compile_fail;
mod examples;
mod execution;
mod openhtf_compat;
