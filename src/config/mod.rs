//! Configuration: the command line (`cli`) and the daemon's settings made from it, the
//! `MESOS_*` environment and the `--config` file (`settings`, `names`); Mesos's
//! `--isolation` and `--image_providers` (`isolation`).

pub mod cli;
pub mod isolation;
pub mod names;
pub mod settings;

pub use cli::*;
pub use settings::*;
