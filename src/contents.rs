//! Manifests and image configs read from blob data, on demand and in
//! parallel: only blobs that something names as a manifest or a config are
//! opened. Content-addressed, so one copy serves every repository.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use crate::digest::Digest;
use crate::inventory::Inventory;
use crate::manifest::{parse_config, parse_manifest, ImageConfig, Manifest, ManifestError, MANIFEST_READ_LIMIT};
use crate::sorted_map::SortedMap;
use crate::tree::StorageRoot;

#[derive(Debug, Default)]
pub struct Contents {
    /// Keyed by the digest whose data was read; only blobs with data.
    pub manifests: SortedMap<Digest, Result<Manifest, ManifestError>>,
    pub configs: SortedMap<Digest, Result<ImageConfig, String>>,
}

impl Contents {
    /// Reads every manifest the tree names, and with `configs` their configs.
    pub fn load(root: &StorageRoot, inv: &Inventory, configs: bool) -> Contents {
        let mut manifests: HashMap<Digest, Result<Manifest, ManifestError>> = HashMap::new();
        let mut wanted: HashSet<Digest> = HashSet::new();
        for repo in &inv.repositories {
            for (path_digest, link) in &repo.revisions {
                wanted.insert(path_digest.clone());
                wanted.extend(link.clone().ok());
            }
            for tag in repo.tags.values() {
                wanted.extend(tag.current.clone().and_then(Result::ok));
                wanted.extend(tag.index.values().filter_map(|l| l.clone().ok()));
            }
        }
        // Indexes name further manifests; follow them until nothing is new.
        while !wanted.is_empty() {
            let batch: Vec<Digest> = wanted.drain().filter(|d| inv.has_blob(d) && !manifests.contains_key(d)).collect();
            let loaded: Vec<(Digest, Result<Manifest, ManifestError>)> = batch
                .into_par_iter()
                .map(|d| {
                    let parsed = match root.read_blob(&d, MANIFEST_READ_LIMIT) {
                        Ok(bytes) => parse_manifest(&bytes),
                        Err(e) => Err(ManifestError::Unreadable(e.to_string())),
                    };
                    (d, parsed)
                })
                .collect();
            for (d, parsed) in loaded {
                if let Ok(m) = &parsed {
                    wanted.extend(m.manifests.iter().filter_map(|c| c.digest.clone()));
                }
                manifests.insert(d, parsed);
            }
        }
        let config_digests: HashSet<Digest> = manifests
            .values()
            .filter_map(|m| m.as_ref().ok()?.config.as_ref()?.digest.clone())
            .filter(|d| configs && inv.has_blob(d))
            .collect();
        let configs: Vec<(Digest, Result<ImageConfig, String>)> = config_digests
            .into_par_iter()
            .map(|d| {
                let parsed = match root.read_blob(&d, MANIFEST_READ_LIMIT) {
                    Ok(bytes) => parse_config(&bytes),
                    Err(e) => Err(format!("cannot be read: {e}")),
                };
                (d, parsed)
            })
            .collect();
        Contents { manifests: manifests.into_iter().collect(), configs: configs.into_iter().collect() }
    }

    pub fn manifest(&self, d: &Digest) -> Option<&Result<Manifest, ManifestError>> {
        self.manifests.get(d)
    }

    pub fn config(&self, d: &Digest) -> Option<&Result<ImageConfig, String>> {
        self.configs.get(d)
    }
}
