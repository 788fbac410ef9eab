//! `posix/rlimits` (ucr-spec.md §5.8): the container's resource limits
//! (`RLimitInfo.rlimits[]`), set by the launcher just before exec, while it is still root.
//! As in Mesos, a limit with neither value is unlimited, and one with a single value or
//! a soft value above the hard one cannot be set. Mesos only finds out at exec
//! (`TASK_FAILED`); the request is all we need to know it, so it is refused up front.

use crate::containerizer::types::{ContainerConfig, Pod};
use crate::isolators::{ContainerContext, Isolator, IsolatorError};
use crate::launcher::spec::Rlimit;
use crate::launcher::LaunchSpec;

pub struct Rlimits;

/// Why `r` cannot be set, if it cannot.
pub fn invalid(r: &Rlimit) -> Option<&'static str> {
    match (r.soft, r.hard) {
        (None, None) => None,
        (Some(soft), Some(hard)) if soft > hard => Some("the soft limit is above the hard limit"),
        (Some(_), Some(_)) => None,
        _ => Some("give both the soft and the hard limit, or neither (unlimited)"),
    }
}

impl Isolator for Rlimits {
    fn name(&self) -> &'static str {
        "posix/rlimits"
    }

    fn check(&self, c: &ContainerConfig, _pod: Option<&Pod>) -> Result<(), IsolatorError> {
        for r in &c.rlimits {
            if let Some(reason) = invalid(r) {
                return Err(IsolatorError::Invalid {
                    field: "rlimits",
                    value: format!("{:?} soft {:?} hard {:?}", r.resource, r.soft, r.hard),
                    reason,
                });
            }
        }
        Ok(())
    }

    fn prepare(
        &self,
        c: &ContainerContext<'_>,
        launch: &mut LaunchSpec,
    ) -> Result<(), IsolatorError> {
        launch.rlimits = c.config.rlimits.clone();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launcher::spec::RlimitResource;

    fn limit(soft: Option<u64>, hard: Option<u64>) -> Rlimit {
        Rlimit {
            resource: RlimitResource::Nofile,
            soft,
            hard,
        }
    }

    #[test]
    fn mesos_rules() {
        assert_eq!(invalid(&limit(None, None)), None);
        assert_eq!(invalid(&limit(Some(5), Some(5))), None);
        assert!(invalid(&limit(Some(6), Some(5))).is_some());
        assert!(invalid(&limit(Some(5), None)).is_some());
        assert!(invalid(&limit(None, Some(5))).is_some());
        let c = ContainerConfig {
            rlimits: vec![limit(Some(9), Some(1))],
            ..Default::default()
        };
        let e = Rlimits.check(&c, None).expect_err("soft > hard");
        assert!(e.to_string().contains("Nofile"), "{e}");
    }
}
