//! Docker image semantics.

pub mod runtime;
