//! The image provisioner (Mesos UCR's name): turns image references into layers on disk.
//!
//! - `reference`: parsing and docker-style normalisation of image names;
//! - `puller/`: where image content comes from (a registry, or a local archive directory);
//! - `store/`: the content-addressed, deduplicated layer store, its metadata and GC;
//! - `backend/`: root filesystems built from layers (overlay, copy, bind);
//! - `testing` (tests only): the layer tar builder the unpack and backend suites share.

pub mod backend;
pub mod puller;
pub mod reference;
pub mod store;
#[cfg(test)]
pub(crate) mod testing;
