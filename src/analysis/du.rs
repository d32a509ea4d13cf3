//! `regaudit du`: disk usage per repository.
//!
//! A repository *references* what garbage collection marks for it: its
//! manifest revisions and what they reference (configs, layers, index
//! children; with 2.8 not the children's own references, see [`crate::model::gc::mark::marked_blobs`]).
//! Only stored blobs count in bytes. Its *unique* bytes are the
//! blobs no other repository references: what deleting the repository and
//! then collecting garbage would free. `_layers` links do not keep blobs
//! alive, so they are reported apart, as *linked* bytes.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};

use crate::audit::Audit;
use crate::digest::Digest;
use crate::inventory::Inventory;
use crate::model::gc::mark::marked_blobs;
use crate::report::du::{DuReport, RepoUsage, SortKey, Totals};
use crate::report::SCHEMA_VERSION;

fn bytes<'a>(inv: &Inventory, digests: impl Iterator<Item = &'a Digest>) -> u64 {
    digests.filter_map(|d| inv.blob_size(d)).sum()
}

pub fn build(audit: &Audit, sort: SortKey) -> DuReport {
    let inv = &audit.inventory;
    let sets: Vec<BTreeSet<Digest>> =
        inv.repositories.iter().map(|r| marked_blobs(r, inv, &audit.contents, audit.target)).collect();
    let mut holders: HashMap<&Digest, usize> = HashMap::new();
    for set in &sets {
        for d in set {
            *holders.entry(d).or_default() += 1;
        }
    }
    let mut repositories: Vec<RepoUsage> = inv
        .repositories
        .iter()
        .zip(&sets)
        .map(|(repo, set)| {
            let present: Vec<&Digest> = set.iter().filter(|d| inv.has_blob(d)).collect();
            let unique = bytes(inv, present.iter().copied().filter(|d| holders.get(d) == Some(&1)));
            let referenced = bytes(inv, present.iter().copied());
            let linked: HashSet<&Digest> = repo.layer_links.values().filter_map(Result::ok).collect();
            RepoUsage {
                repository: repo.name.clone(),
                tags: repo.tags.len(),
                manifests: repo.revisions.len(),
                blobs: present.len(),
                referenced_bytes: referenced,
                unique_bytes: unique,
                shared_bytes: referenced - unique,
                linked_bytes: bytes(inv, linked.into_iter()),
                missing_blobs: set.len() - present.len(),
            }
        })
        .collect();
    match sort {
        SortKey::Name => {}
        SortKey::Size => repositories.sort_by_key(|r| Reverse(r.referenced_bytes)),
        SortKey::Unique => repositories.sort_by_key(|r| Reverse(r.unique_bytes)),
        SortKey::Shared => repositories.sort_by_key(|r| Reverse(r.shared_bytes)),
    }
    let all_referenced: Vec<&Digest> = holders.keys().copied().filter(|d| inv.has_blob(d)).collect();
    let referenced_bytes = bytes(inv, all_referenced.iter().copied());
    let stored_bytes = bytes(inv, inv.blobs.keys());
    let total = Totals {
        repositories: repositories.len(),
        tags: repositories.iter().map(|r| r.tags).sum(),
        manifests: repositories.iter().map(|r| r.manifests).sum(),
        stored_blobs: inv.blobs.len(),
        stored_bytes,
        referenced_blobs: all_referenced.len(),
        referenced_bytes,
        unique_bytes: repositories.iter().map(|r| r.unique_bytes).sum(),
        shared_bytes: bytes(inv, all_referenced.iter().copied().filter(|d| holders.get(d).is_some_and(|n| *n > 1))),
        unreferenced_blobs: inv.blobs.len() - all_referenced.len(),
        unreferenced_bytes: stored_bytes - referenced_bytes,
    };
    DuReport {
        schema_version: SCHEMA_VERSION,
        target: audit.target,
        root: audit.root.path().display().to_string(),
        sort,
        repositories,
        omitted: 0,
        total,
    }
}
