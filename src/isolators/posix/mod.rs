//! POSIX isolators (Mesos's `posix/*`): `posix/rlimits`.

pub mod rlimits;
