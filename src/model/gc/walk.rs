//! The catalog walk: which directories are repositories and in what order
//! marking meets them (docs/registry-rules.md §2; registry/storage/catalog.go
//! `Repositories`; the version's marker comes from `Target::catalog_marker`).

use super::{Hazard, HazardCode, Sim, WalkStep};
use crate::inventory::{EntryKind, FaultOp};
use crate::layout;

impl<'a> Sim<'a> {
    /// The catalog walk: repositories in the order the registry visits them,
    /// and where listing fails.
    pub(super) fn walk_repositories(&mut self) -> Vec<WalkStep> {
        let marker = self.opts.target.catalog_marker();
        let mut repos = Vec::new();
        self.walk_dir("", marker, &mut repos);
        repos
    }

    pub(super) fn walk_dir(&mut self, rel: &str, marker: &str, repos: &mut Vec<WalkStep>) {
        let dir = if rel.is_empty() { format!("{}/repositories", layout::V2) } else { layout::repo_dir(rel) };
        if let Some(f) = self.inv.fault_at(&dir).filter(|f| f.op == FaultOp::List) {
            repos.push(WalkStep::Fault(f.clone()));
            return;
        }
        let Some(entries) = self.walk.catalog_dirs.get(rel) else { return };
        let join = |name: &str| if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
        for (i, e) in entries.iter().enumerate() {
            let path = join(&e.name);
            if e.kind == EntryKind::Symlink {
                self.out.unmodelled.push(format!(
                    "{}: a symbolic link, which the real run follows (not modelled)",
                    layout::repo_dir(&path)
                ));
                continue;
            }
            let is_dir = e.kind == EntryKind::Dir;
            if e.name == marker || e.name.starts_with('_') {
                if e.name == marker {
                    // `repositories/_layers` itself names a repository "_layers".
                    repos.push(WalkStep::Repository(if rel.is_empty() { e.name.clone() } else { rel.to_string() }));
                }
                if !is_dir && self.opts.target.catalog_walk_stops_at_skipped_file() {
                    // 2.8's walk stops listing this directory at a skipped *file*.
                    for hidden in &entries[i + 1..] {
                        self.hidden(&join(&hidden.name), &path);
                    }
                    return;
                }
                continue;
            }
            if is_dir {
                self.walk_dir(&path, marker, repos);
            }
        }
    }

    /// Records the repositories at or below `rel` that the walk never reaches.
    pub(super) fn hidden(&mut self, rel: &str, by: &str) {
        let prefix = format!("{rel}/");
        let names: Vec<String> = self
            .inv
            .repositories
            .iter()
            .filter(|r| r.name == rel || r.name.starts_with(&prefix))
            .map(|r| r.name.clone())
            .collect();
        for name in names {
            self.out.hazards.push(Hazard {
                code: HazardCode::RepositoryNotWalked,
                message: format!(
                    "repository {name} is never walked: registry {} stops listing its directory at the file {}; \
                     nothing in it is marked",
                    self.opts.target,
                    layout::repo_dir(by)
                ),
                repository: Some(name),
                digest: None,
            });
        }
    }
}

/// The order of the registry's directory walk (registry/storage/driver/walk.go
/// `WalkFallback`): children sorted by path, each directory's subtree
/// right after it. For paths below one directory that is their order
/// component by component.
pub(super) fn walk_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}
