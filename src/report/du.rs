//! `regaudit du`: disk usage per repository.
//!
//! A repository *references* what garbage collection marks for it: its
//! manifest revisions and what they reference (configs, layers, index
//! children; with 2.8 not the children's own references, see [`crate::model::gc::mark::marked_blobs`]).
//! Only stored blobs count in bytes. Its *unique* bytes are the
//! blobs no other repository references: what deleting the repository and
//! then collecting garbage would free. `_layers` links do not keep blobs
//! alive, so they are reported apart, as *linked* bytes.

use std::io::{self, Write};

use serde::Serialize;

use super::table::{human_size, Cell, Table, BOLD};
use super::{plural, Report};
use crate::model::Target;
use crate::select::Selection;

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
    /// Repositories left out by `--repo` or `--top` (the total still counts them).
    pub omitted: usize,
    pub total: Totals,
}

impl DuReport {
    /// `--repo`, `--reverse`, `--top`: which rows are shown, in what order.
    /// The total stays that of the whole tree.
    pub fn select(&mut self, select: &Selection, reverse: bool, top: Option<usize>) {
        let before = self.repositories.len();
        self.repositories.retain(|r| select.keeps_repository(&r.repository));
        if reverse {
            self.repositories.reverse();
        }
        if let Some(n) = top {
            self.repositories.truncate(n);
        }
        self.omitted = before - self.repositories.len();
    }
}

impl Report for DuReport {
    fn json_lines(&self) -> Vec<(&'static str, serde_json::Value)> {
        let mut lines = super::rows("repository", &self.repositories);
        lines.extend(super::rows("total", [&self.total]));
        if self.omitted > 0 {
            lines.push(("omitted", serde_json::json!({ "repositories": self.omitted })));
        }
        lines
    }

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
        let total = if self.omitted > 0 { "TOTAL (all)" } else { "TOTAL" };
        table.push(
            [
                total.to_string(),
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
        if self.omitted > 0 {
            writeln!(out, "\n{} not shown (--repo, --top).", plural(self.omitted, "repository", "repositories"))?;
        }
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
