//! Mistakes in a phase are compile errors with a clear message at the user's tokens.
//!
//! The `.stderr` snapshots are tied to the toolchain these machines have (rustc 1.95); refresh
//! them with `TRYBUILD=overwrite cargo test -p tests compile_fail` after a compiler upgrade.

#[test]
fn typos_and_type_errors_do_not_compile() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
