//! Pod networking. Kubernetes pods get their network from CNI plugins (as containerd and
//! CRI-O do); the Mesos `network/cni` isolator (ucr-spec.md §5.9) is the same idea with
//! an older result shape and no config lists, so one CNI library serves both.

pub mod cni;
