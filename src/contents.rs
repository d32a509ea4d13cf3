//! Manifests and image configs read from blob data, on demand and in
//! parallel: only blobs that something names as a manifest or a config are
//! opened. Content-addressed, so one copy serves every repository.

use rayon::prelude::*;

use crate::digest::Digest;
use crate::inventory::Inventory;
use crate::manifest::{
    parse_config, parse_manifest_for, ConfigError, ImageConfig, Manifest, ManifestError, MANIFEST_READ_LIMIT,
};
use crate::model::Target;
use crate::sorted_map::SortedMap;
use crate::storage::StorageRoot;

#[derive(Debug, Default)]
pub struct Contents {
    /// Keyed by the digest whose data was read; only blobs with data.
    pub manifests: SortedMap<Digest, Result<Manifest, ManifestError>>,
    pub configs: SortedMap<Digest, Result<ImageConfig, ConfigError>>,
}

impl Contents {
    /// Reads every manifest the tree names, decoded as `target` does, and
    /// with `configs` their configs.
    /// Everything is gathered in sorted vectors: no hash tables, whose spare
    /// room would outweigh the (compact) manifests themselves.
    pub fn load(root: &StorageRoot, inv: &Inventory, configs: bool, target: Target) -> Contents {
        let mut wanted: Vec<Digest> = Vec::new();
        for repo in &inv.repositories {
            for (path_digest, link) in &repo.revisions {
                wanted.push(path_digest.clone());
                wanted.extend(link.ok().cloned());
            }
            for tag in repo.tags.values() {
                wanted.extend(tag.current.clone().and_then(Result::ok));
                wanted.extend(tag.index.values().filter_map(|l| l.ok().cloned()));
            }
        }
        // Indexes name further manifests; follow them until nothing is new.
        let mut manifests: Vec<(Digest, Result<Manifest, ManifestError>)> = Vec::new();
        while !wanted.is_empty() {
            wanted.sort_unstable();
            wanted.dedup();
            let known = |d: &Digest| manifests.binary_search_by(|(k, _)| k.cmp(d)).is_ok();
            wanted.retain(|d| inv.has_blob(d) && !known(d));
            // Tags and revisions name the same manifests many times over.
            wanted.shrink_to_fit();
            let loaded: Vec<(Digest, Result<Manifest, ManifestError>)> = std::mem::take(&mut wanted)
                .into_par_iter()
                .map(|d| {
                    let parsed = match root.read_blob(&d, MANIFEST_READ_LIMIT) {
                        Ok(bytes) => parse_manifest_for(&bytes, target),
                        Err(e) if crate::storage::is_store_failure(&e) => {
                            Err(ManifestError::StoreFailed(e.to_string()))
                        }
                        Err(e) => Err(ManifestError::Unreadable(e.to_string())),
                    };
                    (d, parsed)
                })
                .collect();
            for (_, parsed) in &loaded {
                if let Ok(m) = parsed {
                    wanted.extend(m.manifests.iter().filter_map(|c| c.digest.clone()));
                }
            }
            if manifests.is_empty() {
                manifests = loaded;
            } else {
                // Exact room: the map is built from this vector without a copy.
                manifests.reserve_exact(loaded.len());
                manifests.extend(loaded);
            }
            manifests.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        }
        let mut config_digests: Vec<Digest> = manifests
            .iter()
            .filter_map(|(_, m)| m.as_ref().ok()?.config.as_ref()?.digest.clone())
            .filter(|d| configs && inv.has_blob(d))
            .collect();
        config_digests.sort_unstable();
        config_digests.dedup();
        config_digests.shrink_to_fit();
        let configs: Vec<(Digest, Result<ImageConfig, ConfigError>)> = config_digests
            .into_par_iter()
            .map(|d| {
                let parsed = match root.read_blob(&d, MANIFEST_READ_LIMIT) {
                    Ok(bytes) => parse_config(&bytes),
                    Err(e) => Err(ConfigError::Unreadable(e.to_string())),
                };
                (d, parsed)
            })
            .collect();
        Contents { manifests: manifests.into_iter().collect(), configs: configs.into_iter().collect() }
    }

    pub fn manifest(&self, d: &Digest) -> Option<&Result<Manifest, ManifestError>> {
        self.manifests.get(d)
    }

    pub fn config(&self, d: &Digest) -> Option<&Result<ImageConfig, ConfigError>> {
        self.configs.get(d)
    }
}
