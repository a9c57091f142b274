//! Everything that speaks DNS. `model` and `diff` are pure: no I/O.
pub mod diff;
pub mod model;
