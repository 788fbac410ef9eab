//! ucr's admin API (proto/ucr/admin/v1/admin.proto): calls the CRI has no room for.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::admin_api::{
    admin_server, LayerProgress, LayerState as WireState, PruneImagesRequest, PruneImagesResponse,
    PullImageWithProgressRequest, PullProgress,
};
use super::status::{from_error, required};
use super::{instrument, Core};
use crate::provisioner::store::progress::{self, LayerState};

/// How often a watched pull reports: often enough for a smooth bar, rarely enough that a
/// slow client costs nothing (unchanged snapshots are not sent at all).
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

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
    type PullImageWithProgressStream =
        Pin<Box<dyn Stream<Item = Result<PullProgress, Status>> + Send + 'static>>;

    async fn pull_image_with_progress(
        &self,
        request: Request<PullImageWithProgressRequest>,
    ) -> Result<Response<Self::PullImageWithProgressStream>, Status> {
        let image = request.into_inner().image;
        instrument("PullImageWithProgress", &image.clone(), async move {
            required(&image, "image")?;
            let (tracker, pull) = self
                .core
                .store
                .pull_with_progress(&image, None)
                .map_err(|e| naming(&image, e))?;
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            // The pull itself is the store's (a shared flight): a client that goes away
            // stops only this reporting task, never the pull.
            tokio::spawn(async move {
                tokio::pin!(pull);
                let mut tick = tokio::time::interval(PROGRESS_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let mut last = Vec::new();
                let result = loop {
                    tokio::select! {
                        r = &mut pull => break r,
                        _ = tx.closed() => return,
                        _ = tick.tick() => {
                            let now = tracker.snapshot();
                            if now != last {
                                if tx.send(Ok(message(&now, String::new()))).await.is_err() {
                                    return;
                                }
                                last = now;
                            }
                        }
                    }
                };
                let last = match result {
                    Ok(done) => Ok(message(&tracker.snapshot(), done.id)),
                    Err(e) => Err(naming(&image, e)),
                };
                let _ = tx.send(last).await;
            });
            let stream: Self::PullImageWithProgressStream = Box::pin(ReceiverStream::new(rx));
            Ok(stream)
        })
        .await
    }

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

/// A pull's failure as a status whose message names the image.
fn naming(image: &str, e: crate::provisioner::store::StoreError) -> Status {
    let status = from_error(e);
    Status::new(
        status.code(),
        format!("pulling {image}: {}", status.message()),
    )
}

fn message(layers: &[progress::LayerProgress], image_ref: String) -> PullProgress {
    PullProgress {
        layers: layers
            .iter()
            .map(|l| LayerProgress {
                name: l.name.clone(),
                done: l.done,
                total: l.total.unwrap_or(0),
                state: match l.state {
                    LayerState::Waiting => WireState::Waiting,
                    LayerState::Downloading => WireState::Downloading,
                    LayerState::Done => WireState::Done,
                    LayerState::Exists => WireState::Exists,
                } as i32,
            })
            .collect(),
        image_ref,
    }
}
