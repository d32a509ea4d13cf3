//! `regaudit du`: disk usage per repository.
//!
//! A repository *references* every blob reachable from its manifest
//! revisions: the manifests themselves, index children (recursively),
//! configs and layers (foreign layers excluded: they are not stored). This
//! is what garbage collection marks for it. Its *unique* bytes are the
//! blobs no other repository references: what deleting the repository and
//! then collecting garbage would free. `_layers` links do not keep blobs
//! alive, so they are reported apart, as *linked* bytes.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{self, Write};

use serde::Serialize;

use super::table::{human_size, Cell, Table, BOLD};
use super::{Report, SCHEMA_VERSION};
use crate::audit::Audit;
use crate::contents::Contents;
use crate::digest::Digest;
use crate::inventory::{Inventory, Repository};
use crate::model::Target;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SortKey {
    /// Repository name, ascending.
    #[default]
    Name,
    /// Referenced bytes, largest first.
    Size,
    /// Unique bytes, largest first.
    Unique,
    /// Shared bytes, largest first.
    Shared,
}

#[derive(Clone, Debug, Serialize)]
pub struct RepoUsage {
    pub repository: String,
    pub tags: usize,
    /// Revision links (`_manifests/revisions`).
    pub manifests: usize,
    /// Distinct blobs reachable from the revisions and present in the tree.
    pub blobs: usize,
    pub referenced_bytes: u64,
    /// Bytes of blobs no other repository references.
    pub unique_bytes: u64,
    /// Bytes of blobs other repositories reference too.
    pub shared_bytes: u64,
    /// Bytes of the blobs its `_layers` links name (present ones).
    pub linked_bytes: u64,
    /// Referenced blobs with no data in the tree.
    pub missing_blobs: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct Totals {
    pub repositories: usize,
    pub tags: usize,
    pub manifests: usize,
    /// Every blob with data in the tree.
    pub stored_blobs: usize,
    pub stored_bytes: u64,
    /// Distinct blobs referenced by at least one repository.
    pub referenced_blobs: usize,
    pub referenced_bytes: u64,
    /// Sum of the repositories' unique bytes.
    pub unique_bytes: u64,
    /// Distinct bytes referenced by two or more repositories.
    pub shared_bytes: u64,
    /// Stored blobs no repository references (what garbage collection frees).
    pub unreferenced_blobs: usize,
    pub unreferenced_bytes: u64,
}

#[derive(Serialize)]
pub struct DuReport {
    pub schema_version: u32,
    pub target: Target,
    pub root: String,
    pub sort: SortKey,
    pub repositories: Vec<RepoUsage>,
    pub total: Totals,
}

/// Every digest reachable from a repository's revisions, through the
/// decoded manifests (cycle-safe: each digest is visited once).
fn referenced(repo: &Repository, contents: &Contents) -> BTreeSet<Digest> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<Digest> = repo.revisions.values().filter_map(|l| l.ok().cloned()).collect();
    while let Some(d) = stack.pop() {
        if !seen.insert(d.clone()) {
            continue;
        }
        let Some(Ok(m)) = contents.manifest(&d) else { continue };
        stack.extend(m.manifests.iter().filter_map(|c| c.digest.clone()));
        seen.extend(m.config.iter().filter_map(|c| c.digest.clone()));
        seen.extend(m.layers.iter().filter(|l| !l.is_foreign()).filter_map(|l| l.digest.clone()));
    }
    seen
}

fn bytes<'a>(inv: &Inventory, digests: impl Iterator<Item = &'a Digest>) -> u64 {
    digests.filter_map(|d| inv.blob_size(d)).sum()
}

pub fn build(audit: &Audit, sort: SortKey) -> DuReport {
    let inv = &audit.inventory;
    let sets: Vec<BTreeSet<Digest>> = inv.repositories.iter().map(|r| referenced(r, &audit.contents)).collect();
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
        total,
    }
}

impl Report for DuReport {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut table =
            Table::new(vec!["REPOSITORY", "TAGS", "MANIFESTS", "BLOBS", "REFERENCED", "UNIQUE", "SHARED", "LINKED"])
                .right_align(&[1, 2, 3, 4, 5, 6, 7]);
        for r in &self.repositories {
            let blobs = if r.missing_blobs > 0 {
                format!("{} (+{} missing)", r.blobs, r.missing_blobs)
            } else {
                r.blobs.to_string()
            };
            table.push(vec![
                Cell::name(&r.repository),
                Cell::new(r.tags.to_string()),
                Cell::new(r.manifests.to_string()),
                Cell::new(blobs),
                Cell::new(human_size(r.referenced_bytes)),
                Cell::new(human_size(r.unique_bytes)),
                Cell::new(human_size(r.shared_bytes)),
                Cell::new(human_size(r.linked_bytes)),
            ]);
        }
        let t = &self.total;
        table.push(
            [
                "TOTAL".to_string(),
                t.tags.to_string(),
                t.manifests.to_string(),
                t.referenced_blobs.to_string(),
                human_size(t.referenced_bytes),
                human_size(t.unique_bytes),
                human_size(t.shared_bytes),
                String::new(),
            ]
            .into_iter()
            .map(|s| Cell::styled(s, BOLD))
            .collect(),
        );
        table.write(out)?;
        writeln!(
            out,
            "\nStored: {} in {} blobs; referenced by no repository: {} in {} blobs.",
            human_size(t.stored_bytes),
            t.stored_blobs,
            human_size(t.unreferenced_bytes),
            t.unreferenced_blobs
        )
    }
}
