//! `regaudit du`: disk usage per repository.
//!
//! A repository *references* what garbage collection marks for it: its
//! manifest revisions and what they reference (configs, layers, index
//! children; with 2.8 not the children's own references, see [`referenced`]).
//! Only stored blobs count in bytes. Its *unique* bytes are the
//! blobs no other repository references: what deleting the repository and
//! then collecting garbage would free. `_layers` links do not keep blobs
//! alive, so they are reported apart, as *linked* bytes.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};

use crate::audit::Audit;
use crate::contents::Contents;
use crate::digest::Digest;
use crate::inventory::{Inventory, Repository};
use crate::model::Target;
use crate::report::du::{DuReport, RepoUsage, SortKey, Totals};
use crate::report::SCHEMA_VERSION;

/// What `garbage-collect` marks for one repository (`MarkAndSweep` in
/// registry/storage/garbagecollect.go, as modelled in `model::gc`): every
/// revision (and signature) link whose manifest resolves, and that
/// manifest's references. 2.8 marks the references of a revision without
/// following them: an index child's config and layers are kept only by a
/// revision of the child itself. v3 follows references that are revisions
/// of this repository, recursively.
fn referenced(repo: &Repository, inv: &Inventory, contents: &Contents, target: Target) -> BTreeSet<Digest> {
    let v2 = target == Target::V2_8;
    // `Stat` of a manifest: its revision link, then (2.8) its `_layers` link; the data must exist.
    let resolve = |d: &Digest, v2: bool| {
        let link = match repo.revisions.get(d) {
            Some(l) => Some(l),
            None if v2 => repo.layer_links.get(d),
            None => None,
        };
        let data = match link? {
            Ok(t) => t.clone(),
            Err(_) => d.clone(),
        };
        inv.has_blob(&data).then_some(data)
    };
    let mut seen = BTreeSet::new();
    let mut revisions: Vec<Digest> =
        repo.revisions.iter().map(|(path, link)| link.ok().unwrap_or(path).clone()).collect();
    revisions.extend(repo.signature_links.iter().map(|(_, sig)| sig.clone()));
    // (digest, its data): revisions to mark, then (v3) children to follow.
    let mut stack = Vec::new();
    for d in revisions {
        match resolve(&d, v2) {
            Some(data) => stack.push((d, data)),
            // Not marked, and stored nowhere: counted as missing.
            None => {
                seen.insert(d);
            }
        }
    }
    let mut followed = BTreeSet::new();
    while let Some((d, data)) = stack.pop() {
        seen.insert(d.clone());
        if !followed.insert(d) {
            continue;
        }
        let Some(Ok(m)) = contents.manifest(&data) else { continue };
        for r in m.references() {
            let Some(child) = &r.digest else { continue };
            // Foreign layers are not stored (marked all the same when they are).
            if r.is_foreign() && !inv.has_blob(child) {
                continue;
            }
            seen.insert(child.clone());
            if !v2 {
                if let Some(Ok(t)) = repo.revisions.get(child) {
                    if inv.has_blob(t) {
                        stack.push((child.clone(), t.clone()));
                    }
                }
            }
        }
    }
    seen
}

fn bytes<'a>(inv: &Inventory, digests: impl Iterator<Item = &'a Digest>) -> u64 {
    digests.filter_map(|d| inv.blob_size(d)).sum()
}

pub fn build(audit: &Audit, sort: SortKey) -> DuReport {
    let inv = &audit.inventory;
    let sets: Vec<BTreeSet<Digest>> =
        inv.repositories.iter().map(|r| referenced(r, inv, &audit.contents, audit.target)).collect();
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
