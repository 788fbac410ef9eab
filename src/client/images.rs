//! `ucr images` and `ucr prune`.

use k8s_cri::v1 as cri;
use serde::Serialize;

use super::output::{self, bytes, short_id, Table};
use super::{ClientError, Conn};
use crate::config::{ListFlags, PruneFlags};
use crate::cri::admin_api::PruneImagesRequest;

#[derive(Debug, Serialize)]
struct ImageRow {
    id: String,
    repo_tags: Vec<String>,
    repo_digests: Vec<String>,
    size: u64,
    pinned: bool,
}

/// `name:tag` → (name, tag); the tag is after the last colon past the last slash, so a
/// registry's port is not taken for one.
fn split_tag(reference: &str) -> (&str, &str) {
    let slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[slash..].rfind(':') {
        Some(i) => (&reference[..slash + i], &reference[slash + i + 1..]),
        None => (reference, "<none>"),
    }
}

pub async fn images(flags: ListFlags) -> Result<(), ClientError> {
    let conn = Conn::open(&flags.endpoint.endpoint).await?;
    let mut list = conn
        .images()
        .list_images(cri::ListImagesRequest { filter: None })
        .await
        .map_err(ClientError::call("ListImages"))?
        .into_inner()
        .images;
    list.sort_by(|a, b| a.repo_tags.cmp(&b.repo_tags).then(a.id.cmp(&b.id)));
    let rows: Vec<ImageRow> = list
        .into_iter()
        .map(|i| ImageRow {
            id: i.id,
            repo_tags: i.repo_tags,
            repo_digests: i.repo_digests,
            size: i.size,
            pinned: i.pinned,
        })
        .collect();
    if flags.quiet {
        rows.iter().for_each(|r| println!("{}", r.id));
        return Ok(());
    }
    output::print(flags.output, &rows, || {
        let mut t = Table::new(&["IMAGE", "TAG", "IMAGE ID", "SIZE"]);
        for r in &rows {
            // One line per tag, as crictl and docker print them; an untagged image once.
            let mut names: Vec<(&str, &str)> = r.repo_tags.iter().map(|t| split_tag(t)).collect();
            if names.is_empty() {
                let repo = r
                    .repo_digests
                    .first()
                    .map(|d| d.split('@').next().unwrap_or(d));
                names.push((repo.unwrap_or("<none>"), "<none>"));
            }
            for (name, tag) in names {
                t.row(vec![
                    name.to_string(),
                    tag.to_string(),
                    short_id(&r.id).to_string(),
                    bytes(r.size),
                ]);
            }
        }
        t
    })
}

pub async fn prune(flags: PruneFlags) -> Result<(), ClientError> {
    let conn = Conn::open(&flags.endpoint.endpoint).await?;
    let report = conn
        .admin()
        .prune_images(PruneImagesRequest {
            excluded_images: flags.exclude,
        })
        .await
        .map_err(ClientError::call("PruneImages"))?
        .into_inner();
    for image in &report.removed_images {
        println!("removed {image}");
    }
    println!(
        "{} image(s), {} layer(s), {} reclaimed",
        report.removed_images.len(),
        report.removed_layers,
        bytes(report.reclaimed_bytes)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_after_the_registry_port() {
        assert_eq!(
            split_tag("127.0.0.1:5000/ucr-test/busybox:latest"),
            ("127.0.0.1:5000/ucr-test/busybox", "latest")
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/x"),
            ("127.0.0.1:5000/x", "<none>")
        );
        assert_eq!(split_tag("busybox:1.36"), ("busybox", "1.36"));
    }
}
