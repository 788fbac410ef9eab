//! The core both front doors serve (the CRI now, the Mesos operator API next): the image
//! store and the containerizer, with no transport type in sight. `daemon` builds it; a
//! door holds an `Arc<Core>` and translates its requests into calls on it.

use std::sync::Arc;

use crate::containerizer::{Containerizer, ContainerizerError};
use crate::isolators::docker::runtime::ImageRuntime;
use crate::provisioner::store::Store;

pub struct Core {
    pub store: Arc<Store>,
    pub containerizer: Arc<Containerizer>,
    /// `--image-gc-config` exclusions, added to every manual prune.
    pub gc_excluded: Vec<String>,
    /// What the daemon counts, for the doors' metrics.
    pub counters: crate::metrics::Counters,
}

impl Core {
    /// The runtime config of an image in the store (by reference or id): what a door needs
    /// to resolve a container's command by its rules before handing it over.
    pub fn image_runtime(&self, image: &str) -> Result<ImageRuntime, ContainerizerError> {
        let found = self
            .store
            .status(image)?
            .ok_or_else(|| ContainerizerError::ImageNotFound {
                image: image.to_string(),
            })?;
        let config = self.store.config(&found.id)?.unwrap_or_default();
        Ok(ImageRuntime::from_image_config_bytes(&config)?)
    }
}
