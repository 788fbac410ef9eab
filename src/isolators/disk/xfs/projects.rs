//! Project ids: the configured range (`--xfs-project-range`) and which ids of it are in
//! use. Allocation is bookkeeping only; labelling directories is the parent module's.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};

use super::{project_of, set_project_tree, XfsError};

/// Mesos's default `--xfs_project_range`.
pub const DEFAULT_PROJECT_RANGE: &str = "[5000-10000]";

/// What is wrong with a `--xfs-project-range`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeProblem {
    #[error(
        "expected first-last, optionally in brackets and comma-separated, e.g. \"[5000-10000]\""
    )]
    Shape,
    #[error("{0:?} is not a project id (a whole number from 1 to 4294967295)")]
    NotAnId(String),
    #[error("{first}-{last} runs backwards")]
    Backwards { first: u32, last: u32 },
    #[error("it holds 0, which XFS reserves for \"no project\"")]
    HoldsZero,
}

/// Project ids to allocate from: one or more inclusive ranges, sorted and merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRange {
    ranges: Vec<RangeInclusive<u32>>,
}

impl ProjectRange {
    /// Parses Mesos's spelling, `[5000-10000]` (a Mesos ranges value, so also
    /// `[1-10,20-30]`), or the bare `5000-10000`.
    pub fn parse(input: &str) -> Result<ProjectRange, XfsError> {
        let fail = |problem| XfsError::Range {
            input: input.to_string(),
            problem,
        };
        let text = input.trim();
        let inner = match (text.strip_prefix('['), text.strip_suffix(']')) {
            (Some(rest), Some(_)) => &rest[..rest.len() - 1],
            (None, None) => text,
            _ => return Err(fail(RangeProblem::Shape)),
        };
        let mut ranges = Vec::new();
        for part in inner.split(',') {
            let (first, last) = part
                .split_once('-')
                .ok_or_else(|| fail(RangeProblem::Shape))?;
            let id = |s: &str| {
                let s = s.trim();
                if s.is_empty() {
                    return Err(fail(RangeProblem::Shape));
                }
                s.parse::<u32>()
                    .map_err(|_| fail(RangeProblem::NotAnId(s.to_string())))
            };
            let (first, last) = (id(first)?, id(last)?);
            if first > last {
                return Err(fail(RangeProblem::Backwards { first, last }));
            }
            if first == 0 {
                return Err(fail(RangeProblem::HoldsZero));
            }
            ranges.push(first..=last);
        }
        ranges.sort_by_key(|r| *r.start());
        let mut merged: Vec<RangeInclusive<u32>> = Vec::with_capacity(ranges.len());
        for r in ranges {
            match merged.last_mut() {
                Some(prev) if u64::from(*r.start()) <= u64::from(*prev.end()) + 1 => {
                    *prev = *prev.start()..=(*prev.end()).max(*r.end());
                }
                _ => merged.push(r),
            }
        }
        Ok(ProjectRange { ranges: merged })
    }

    pub fn contains(&self, id: u32) -> bool {
        self.ranges.iter().any(|r| r.contains(&id))
    }

    /// How many ids the range holds (Mesos's `project_ids_total`).
    pub fn len(&self) -> u64 {
        self.ranges
            .iter()
            .map(|r| u64::from(*r.end()) - u64::from(*r.start()) + 1)
            .sum()
    }

    /// Never true: a parsed range holds at least one id.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

impl FromStr for ProjectRange {
    type Err = XfsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProjectRange::parse(s)
    }
}

/// Mesos's spelling, `[5000-10000]` (`[1-10,20-30]`).
impl fmt::Display for ProjectRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .ranges
            .iter()
            .map(|r| format!("{}-{}", r.start(), r.end()))
            .collect();
        write!(f, "[{}]", parts.join(","))
    }
}

/// The project ids of one range: which are in use, which are free. Shared by the
/// isolator's hooks, so it locks itself; labelling a tree runs outside the lock.
pub struct Projects {
    range: ProjectRange,
    /// Ids in use, those outside the range (recovered after a range change) included.
    used: Mutex<BTreeSet<u32>>,
}

impl Projects {
    pub fn new(range: ProjectRange) -> Projects {
        Projects {
            range,
            used: Mutex::new(BTreeSet::new()),
        }
    }

    pub fn range(&self) -> &ProjectRange {
        &self.range
    }

    /// Ids the range holds (`containerizer/mesos/disk/project_ids_total`).
    pub fn total(&self) -> u64 {
        self.range.len()
    }

    /// Ids of the range not in use (`containerizer/mesos/disk/project_ids_free`).
    pub fn free(&self) -> u64 {
        let used = self.lock();
        let in_range = used.iter().filter(|id| self.range.contains(**id)).count();
        self.range.len() - in_range as u64
    }

    /// Takes the lowest free id.
    pub fn allocate(&self) -> Result<u32, XfsError> {
        let mut used = self.lock();
        for r in &self.range.ranges {
            // The first gap in the used ids from the start of this range.
            let mut candidate = *r.start();
            for &u in used.range(r.clone()) {
                if u != candidate {
                    break;
                }
                if candidate == *r.end() {
                    break;
                }
                candidate += 1;
            }
            if !used.contains(&candidate) {
                used.insert(candidate);
                return Ok(candidate);
            }
        }
        Err(XfsError::Exhausted {
            range: self.range.clone(),
            total: self.range.len(),
        })
    }

    /// Takes the lowest free id and labels `dir` and what is below it with it (see
    /// [`set_project_tree`]). The id goes back to the pool if labelling fails.
    pub fn assign(&self, dir: &Path) -> Result<u32, XfsError> {
        let id = self.allocate()?;
        if let Err(e) = set_project_tree(dir, id) {
            self.release(id);
            return Err(e);
        }
        Ok(id)
    }

    /// Returns `id` to the pool. Mesos does this only once the sandbox is gone (GC): a
    /// leftover symlink cannot be relabelled and would be charged to the next owner.
    pub fn release(&self, id: u32) {
        self.lock().remove(&id);
    }

    /// Learns the ids in use after a restart from the project ids of `dirs` (the
    /// sandboxes and volumes the daemon finds on disk): each non-zero one is taken,
    /// in range or not. Returns each dir's id (`None`: not labelled).
    pub fn recover(&self, dirs: &[&Path]) -> Result<Vec<Option<u32>>, XfsError> {
        let ids = dirs
            .iter()
            .map(|d| project_of(d))
            .collect::<Result<Vec<_>, _>>()?;
        self.lock().extend(ids.iter().flatten());
        Ok(ids)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeSet<u32>> {
        // One insert or remove at a time: never left half-changed by a panic.
        self.used.lock().unwrap_or_else(|e| e.into_inner())
    }
}
