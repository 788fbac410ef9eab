//! The core both front doors serve (the CRI now, the Mesos operator API next): the image
//! store and the containerizer, with no transport type in sight. `daemon` builds it; a
//! door holds an `Arc<Core>` and translates its requests into calls on it.

use std::sync::Arc;

use crate::containerizer::Containerizer;
use crate::provisioner::store::Store;

pub struct Core {
    pub store: Arc<Store>,
    pub containerizer: Arc<Containerizer>,
    /// `--image-gc-config` exclusions, added to every manual prune.
    pub gc_excluded: Vec<String>,
}
