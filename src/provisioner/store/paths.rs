//! The store's on-disk layout. Nobody else builds these paths.
//!
//! ```text
//! <store dir>/                (--docker-store-dir, default <root>/images)
//!   meta.redb                 metadata database (images, refs, layers, configs)
//!   layers/<hex>/rootfs/      one unpacked layer, named by its diff id's hex,
//!                             whiteouts already in overlayfs form
//!   tmp/<random>/             in-flight work: a layer being unpacked, an archive being
//!                             read; renamed into layers/ only once verified, wiped at
//!                             start-up (anything here belongs to a pull that died)
//!   gc/<hex>.<nanos>/         layers being deleted (renamed first, so a crash midway
//!                             leaves nothing that looks live); wiped at start-up too
//! ```

use std::path::{Path, PathBuf};

use crate::provisioner::reference::Digest;

#[derive(Debug, Clone)]
pub struct StorePaths {
    root: PathBuf,
}

impl StorePaths {
    pub fn new(root: PathBuf) -> Self {
        StorePaths { root }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn db(&self) -> PathBuf {
        self.root.join("meta.redb")
    }
    pub fn layers(&self) -> PathBuf {
        self.root.join("layers")
    }
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.layers().join(diff_id.hex())
    }
    /// The directory a backend stacks: the layer's unpacked files.
    pub fn layer_rootfs(&self, diff_id: &Digest) -> PathBuf {
        self.layer_dir(diff_id).join("rootfs")
    }
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub fn gc(&self) -> PathBuf {
        self.root.join("gc")
    }
    /// A fresh, unique scratch path under tmp/ (not created).
    pub fn scratch(&self, purpose: &str) -> PathBuf {
        let nonce: u64 = rand::random();
        self.tmp().join(format!("{purpose}-{nonce:016x}"))
    }
}
