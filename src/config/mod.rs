//! Configuration: the command line (`cli`) and the daemon's settings made from it, the
//! `MESOS_*` environment and the config files (`settings`, `names`, `file`: `--config`
//! and its drop-ins; `defaults`: `ucr config default`); Mesos's
//! `--isolation` and `--image_providers` (`isolation`).

pub mod cli;
pub mod defaults;
pub mod file;
pub mod isolation;
pub mod names;
pub mod settings;

pub use cli::*;
pub use settings::*;
