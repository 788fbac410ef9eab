//! Linux process attributes, each an isolator of its own as in Mesos.

pub mod apparmor;
pub mod capabilities;
pub mod devices;
pub mod nnp;
pub mod seccomp;
pub mod selinux;
pub mod sysctls;
