//! Resource limits (`setrlimit(2)`), for `posix/rlimits`: set by the container's first
//! process just before it execs, while it is still root (so a hard limit may be raised).

use std::io;

use serde::{Deserialize, Serialize};

/// The limits Linux has, by Mesos's names without `RLMT_` (`RLimitInfo.RLimit.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    As,
    Core,
    Cpu,
    Data,
    Fsize,
    Locks,
    Memlock,
    Msgqueue,
    Nice,
    Nofile,
    Nproc,
    Rss,
    Rtprio,
    Rttime,
    Sigpending,
    Stack,
}

impl Resource {
    fn raw(self) -> rustix::process::Resource {
        use rustix::process::Resource as R;
        match self {
            Resource::As => R::As,
            Resource::Core => R::Core,
            Resource::Cpu => R::Cpu,
            Resource::Data => R::Data,
            Resource::Fsize => R::Fsize,
            Resource::Locks => R::Locks,
            Resource::Memlock => R::Memlock,
            Resource::Msgqueue => R::Msgqueue,
            Resource::Nice => R::Nice,
            Resource::Nofile => R::Nofile,
            Resource::Nproc => R::Nproc,
            Resource::Rss => R::Rss,
            Resource::Rtprio => R::Rtprio,
            Resource::Rttime => R::Rttime,
            Resource::Sigpending => R::Sigpending,
            Resource::Stack => R::Stack,
        }
    }
}

/// Sets the calling process's `resource` limit; `None` is unlimited (`RLIM_INFINITY`).
pub fn set(resource: Resource, soft: Option<u64>, hard: Option<u64>) -> io::Result<()> {
    rustix::process::setrlimit(
        resource.raw(),
        rustix::process::Rlimit {
            current: soft,
            maximum: hard,
        },
    )?;
    Ok(())
}

/// The calling process's `resource` limit, soft and hard (`None`: unlimited).
pub fn get(resource: Resource) -> (Option<u64>, Option<u64>) {
    let r = rustix::process::getrlimit(resource.raw());
    (r.current, r.maximum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowering_a_limit_reads_back() {
        // Lowering the soft core limit needs no privilege, and harms no other test.
        let (_, hard) = get(Resource::Core);
        set(Resource::Core, Some(0), hard).expect("set");
        assert_eq!(get(Resource::Core), (Some(0), hard));
    }
}
