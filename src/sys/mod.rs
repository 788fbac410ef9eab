//! The only place that talks to the kernel directly. Everything above calls these small
//! safe wrappers; every `unsafe` block carries a `SAFETY:` comment.

pub mod asyncfd;
pub mod beneath;
pub mod bpf;
pub mod console;
pub mod dirfd;
pub mod fdpass;
pub mod fs;
pub mod inroot;
pub mod kill;
pub mod mount;
pub mod netns;
pub mod ns;
pub mod owned;
pub mod pidfd;
pub mod poll;
pub mod process;
pub mod rlimit;
pub mod seccomp;
pub mod seqpacket;
pub mod signal;
pub mod spawn;
pub mod statfs;
pub mod terminal;
pub mod userns;
pub mod xfs;
