//! The device policy of the `cgroups/devices` isolator: which device nodes a container's
//! processes may open (read, write) or create (mknod), as rules in the cgroup v1
//! `devices.allow` syntax (`rules`), what a rule list comes to (`effective`), how it is
//! written into a v1 devices cgroup (`v1`) and the cgroup v2 program deciding the same
//! (`program`, from the instructions in `insn`).

pub mod effective;
pub mod error;
pub mod insn;
pub mod program;
pub mod rules;
pub mod v1;
