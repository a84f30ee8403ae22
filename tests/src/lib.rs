//! End-to-end tests of tofu live in `tests/`.
