//! The `#[phase]` and `#[measures]` attributes of tofu. Use them through `tofu`
//! (`use tofu::prelude::*;`) or `tofu_core`, which document them.
//!
//! The expansion names tofu-core's items by path. A user of the `tofu` crate has no
//! `tofu_core` in scope, so `tofu` re-exports the `__tofu_*` twins of the attributes, which
//! write `::tofu::__core` where these write `::tofu_core`: the crate that re-exports the macro
//! says where it lives, with no guess from the user's `Cargo.toml`.
//!
//! The crate is split as tokio-macros and tracing-attributes are: `parse` reads the
//! attributes and the function into a model, collecting every error (with
//! `syn::Error::combine`); `expand` writes the code. On errors the expansion still emits the
//! phase (with what could be read), so a typo gives one clear error, not twenty.

mod expand;
mod parse;

use proc_macro::TokenStream;
use quote::quote;

/// Makes a function a phase of a test.
///
/// ```ignore
/// #[phase(name = "Power on", repeat_limit = 5)]
/// #[measures(input_voltage: f64 = in_range(4.5, 5.5).units(VOLT))]
/// fn power_on(test: &mut PhaseContext, m: &mut power_on::Measurements) -> PhaseResult {
///     PhaseResult::Continue
/// }
/// ```
///
/// Options: `name` (the name shown in the record), `timeout_s` (seconds; the phase is
/// abandoned as TIMEOUT at the deadline), `repeat_on_measurement_fail` (run again while a
/// measurement fails, up to the repeat limit), `stop_on_measurement_fail` (a failed measurement
/// stops the test), `repeat_limit` (attempts allowed when the
/// phase returns `PhaseResult::Repeat`; 3 by default).
///
/// The function may take, in any order, `&mut PhaseContext` and `&mut <its name>::Measurements`
/// (the struct generated from `#[measures]`), and return `()`, `PhaseResult`, or a `Result` of
/// either whose error implements `Display`. The function's name becomes a
/// `tofu_core::Phase` constant to list in `Test::phases`.
#[proc_macro_attribute]
pub fn phase(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::phase(&quote!(::tofu_core), args.into(), item.into(), None).into()
}

/// Declares the measurements of a phase: `name: Kind = spec, …`.
///
/// `Kind` is `f64`, `String`, `bool`, `Json`, `Sweep<N>` (N coordinates per point) or
/// `Si<unit>` (a `uom` unit). `spec` is an expression of `tofu_core::declare`'s words:
/// `in_range(4.5, 5.5).units(VOLT).doc("…")`, `equals("1.2.3")`, `matches_regex(r"…")`,
/// `within_percent(25.0, 10)`, `dimensions([SECOND, VOLT, AMPERE]).units(OHM)`… It goes
/// together with `#[phase]`, above or below it.
#[proc_macro_attribute]
pub fn measures(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::measures_first(&quote!(::tofu_core), args.into(), item.into()).into()
}

/// `#[phase]` as re-exported by the `tofu` crate (paths through `::tofu::__core`).
#[doc(hidden)]
#[proc_macro_attribute]
pub fn __tofu_phase(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::phase(&quote!(::tofu::__core), args.into(), item.into(), None).into()
}

/// `#[measures]` as re-exported by the `tofu` crate (paths through `::tofu::__core`).
#[doc(hidden)]
#[proc_macro_attribute]
pub fn __tofu_measures(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::measures_first(&quote!(::tofu::__core), args.into(), item.into()).into()
}
