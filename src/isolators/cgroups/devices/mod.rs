//! The device policy of the `cgroups/devices` isolator: which device nodes a container's
//! processes may open (read, write) or create (mknod), as rules in the cgroup v1
//! `devices.allow` syntax (`rules`), and how a rule list is put on a cgroup. The isolator
//! builds the list with `rules::policy` and hands it to `v1::apply_v1` or `v2::apply_v2`.
//!
//! cgroup v1 has a devices controller with files: the rules are written one per write
//! into `devices.allow` / `devices.deny` and the kernel keeps a default plus a list of
//! exceptions (`v1`). cgroup v2 has no devices files at all: the policy is an eBPF
//! program attached to the cgroup, which the kernel runs on every device access and which
//! returns allow or deny (`program`, loaded and attached by `v2`). So that both versions
//! do the same with a list, the program is generated from a model of what v1 makes of it
//! (`effective`), and both refuse the lists v1 would only half honour.
//!
//! On a hybrid host (v1 controllers, plus a cgroup2 mount without them) the kernel checks
//! both: the process's v1 devices cgroup and the programs of its cgroup2 cgroup. Either
//! one is enough to confine a container.

pub mod effective;
pub mod error;
pub mod insn;
pub mod program;
pub mod rules;
pub mod v1;
pub mod v2;

#[cfg(test)]
mod root_tests;
