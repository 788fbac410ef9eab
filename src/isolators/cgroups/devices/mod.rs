//! The device policy of the `cgroups/devices` isolator: which device nodes a container's
//! processes may open (read, write) or create (mknod), as rules in the cgroup v1
//! `devices.allow` syntax (`rules`), and what a rule list comes to (`effective`).

pub mod effective;
pub mod rules;
