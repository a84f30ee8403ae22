//! Examples of tofu: see the `examples/` folder; each runs with `cargo run --example NAME`.
