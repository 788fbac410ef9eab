//! ucr's admin API (proto/ucr/admin/v1/admin.proto): calls the CRI has no room for.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::admin_api::{admin_server, PruneImagesRequest, PruneImagesResponse};
use super::status::from_error;
use super::{instrument, Core};

pub struct Admin {
    core: Arc<Core>,
}

impl Admin {
    pub fn new(core: Arc<Core>) -> Self {
        Admin { core }
    }
}

#[tonic::async_trait]
impl admin_server::Admin for Admin {
    async fn prune_images(
        &self,
        request: Request<PruneImagesRequest>,
    ) -> Result<Response<PruneImagesResponse>, Status> {
        let mut excluded = request.into_inner().excluded_images;
        // As Mesos does: the GC config's exclusions always apply.
        excluded.extend(self.core.gc_excluded.iter().cloned());
        instrument("PruneImages", "", async {
            let report = self
                .core
                .store
                .prune(&excluded, &|| true)
                .await
                .map_err(from_error)?;
            Ok(PruneImagesResponse {
                removed_images: report.images,
                removed_layers: report.layers,
                reclaimed_bytes: report.bytes,
            })
        })
        .await
    }
}
