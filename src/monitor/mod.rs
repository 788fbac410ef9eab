//! The per-container monitor process: holds stdio, writes the CRI log, records the exit.

pub mod log;
