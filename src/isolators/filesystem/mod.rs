//! Filesystem isolators.

pub mod linux;
