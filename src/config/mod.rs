//! Configuration: the command line (`cli`) and the daemon's settings made from it and
//! the `--config` file (`settings`).

pub mod cli;
pub mod settings;

pub use cli::*;
pub use settings::*;
