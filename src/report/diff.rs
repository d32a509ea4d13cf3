//! `regaudit diff`: what changed between two copies of a storage tree (last
//! night's backup against today's): repositories, tags (added, removed,
//! moved, history), manifests, blobs with bytes, uploads, and blobs whose
//! content differs under the same digest (corruption in one copy).

use std::io::{self, Write};

use serde::Serialize;

use super::table::{human_size, Cell, Table, BAD, BOLD, GOOD};
use super::Report;
use crate::digest::Digest;
use crate::model::Target;
use crate::names::ShownText;

#[derive(Clone, Debug, Serialize)]
pub struct Changes<T> {
    pub added: Vec<T>,
    pub removed: Vec<T>,
}

impl<T> Changes<T> {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TagEntry {
    pub repository: String,
    pub tag: String,
    /// What `current/link` names; null when absent.
    pub digest: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TagMove {
    pub repository: String,
    pub tag: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HistoryEntry {
    pub repository: String,
    pub tag: String,
    pub digest: Digest,
}

#[derive(Clone, Debug, Serialize)]
pub struct ManifestEntry {
    pub repository: String,
    pub digest: Digest,
    /// Size of its blob data in the tree that has the revision; null when absent.
    pub size: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct BlobEntry {
    pub digest: Digest,
    pub size: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct BlobChanges {
    pub added: Vec<BlobEntry>,
    pub removed: Vec<BlobEntry>,
    pub added_bytes: u64,
    pub removed_bytes: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct UploadEntry {
    pub repository: String,
    pub uuid: String,
    pub size: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TagChanges {
    pub added: Vec<TagEntry>,
    pub removed: Vec<TagEntry>,
    pub moved: Vec<TagMove>,
}

/// A digest present in both trees whose two copies are not the same bytes.
#[derive(Clone, Debug, Serialize)]
pub struct ContentDiff {
    pub digest: Digest,
    pub size_a: u64,
    pub size_b: u64,
    /// Whether each copy hashes to the digest; null when not hashed (sizes
    /// already differ and hashing is off, or the copy cannot be read).
    pub a_intact: Option<bool>,
    pub b_intact: Option<bool>,
    pub reason: String,
}

#[derive(Serialize)]
pub struct DiffReport {
    pub schema_version: u32,
    pub target: Target,
    /// Tree A (the older one, by convention).
    pub root: String,
    pub root_b: String,
    /// Whether blobs present in both were hashed (off with --no-content).
    pub content_compared: bool,
    pub identical: bool,
    pub repositories: Changes<String>,
    pub tags: TagChanges,
    pub tag_history: Changes<HistoryEntry>,
    pub manifests: Changes<ManifestEntry>,
    pub blobs: BlobChanges,
    pub uploads: Changes<UploadEntry>,
    pub content_differs: Vec<ContentDiff>,
    /// Null without `--repo`; else the lists show what concerns the selected
    /// repositories, and `identical` answers for them.
    pub filter: Option<DiffFilter>,
}

/// `--repo`: what it selects (in either tree), and whether the whole trees
/// are identical.
#[derive(Serialize)]
pub struct DiffFilter {
    #[serde(flatten)]
    pub scope: crate::select::FilterNote,
    pub whole_trees_identical: bool,
}

fn section(out: &mut dyn Write, title: String, table: Table) -> io::Result<()> {
    if table.rows.is_empty() {
        return Ok(());
    }
    writeln!(out, "{}{title}{}", BOLD.render(), BOLD.render_reset())?;
    table.write(out)?;
    writeln!(out)
}

fn opt(s: &Option<String>) -> String {
    s.as_deref().map(super::tags::short).unwrap_or("-").to_string()
}

fn size_cell(s: Option<u64>) -> Cell {
    Cell::new(s.map(human_size).unwrap_or_else(|| "-".into()))
}

impl Report for DiffReport {
    fn findings(&self) -> crate::exit_codes::Findings {
        crate::exit_codes::Findings { differences: !self.identical, ..Default::default() }
    }

    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "A: {}\nB: {}", ShownText(&self.root), ShownText(&self.root_b))?;
        if let Some(f) = &self.filter {
            let whole = if f.whole_trees_identical { "identical" } else { "different" };
            let line = format!(
                "Filtered by --repo {}: the changes of {} are shown (a blob when one of them references or \
                 links it in either tree); the whole trees are {whole}.",
                f.scope.repo_globs.join(" --repo "),
                super::plural(f.scope.repositories.len(), "repository", "repositories"),
            );
            for line in super::wrap(&line, "", 80) {
                writeln!(out, "{}{line}{}", super::table::DIM.render(), super::table::DIM.render_reset())?;
            }
        }
        writeln!(out)?;
        let mut t = Table::new(vec!["CHANGE", "REPOSITORY"]);
        for r in &self.repositories.added {
            t.push(vec![Cell::styled("added", GOOD), Cell::name(r)]);
        }
        for r in &self.repositories.removed {
            t.push(vec![Cell::styled("removed", BAD), Cell::name(r)]);
        }
        section(out, format!("Repositories ({})", t.rows.len()), t)?;

        let mut t = Table::new(vec!["CHANGE", "REPOSITORY", "TAG", "OLD", "NEW"]);
        for e in &self.tags.added {
            t.push(vec![
                Cell::styled("added", GOOD),
                Cell::name(&e.repository),
                Cell::name(&e.tag),
                "-".into(),
                opt(&e.digest).into(),
            ]);
        }
        for e in &self.tags.removed {
            t.push(vec![
                Cell::styled("removed", BAD),
                Cell::name(&e.repository),
                Cell::name(&e.tag),
                opt(&e.digest).into(),
                "-".into(),
            ]);
        }
        for m in &self.tags.moved {
            t.push(vec![
                Cell::new("moved"),
                Cell::name(&m.repository),
                Cell::name(&m.tag),
                opt(&m.old).into(),
                opt(&m.new).into(),
            ]);
        }
        section(out, format!("Tags ({})", t.rows.len()), t)?;

        let mut t = Table::new(vec!["CHANGE", "REPOSITORY", "TAG", "DIGEST"]);
        for (what, list) in [("added", &self.tag_history.added), ("removed", &self.tag_history.removed)] {
            for h in list {
                t.push(vec![what.into(), Cell::name(&h.repository), Cell::name(&h.tag), Cell::new(h.digest.short())]);
            }
        }
        section(out, format!("Tag history ({})", t.rows.len()), t)?;

        let mut t = Table::new(vec!["CHANGE", "REPOSITORY", "DIGEST", "SIZE"]).right_align(&[3]);
        for (what, list) in [("added", &self.manifests.added), ("removed", &self.manifests.removed)] {
            for m in list {
                t.push(vec![what.into(), Cell::name(&m.repository), Cell::new(m.digest.short()), size_cell(m.size)]);
            }
        }
        section(out, format!("Manifests ({})", t.rows.len()), t)?;

        let mut t = Table::new(vec!["CHANGE", "DIGEST", "SIZE"]).right_align(&[2]);
        for (what, list) in [("added", &self.blobs.added), ("removed", &self.blobs.removed)] {
            for b in list {
                t.push(vec![what.into(), Cell::new(b.digest.short()), Cell::new(human_size(b.size))]);
            }
        }
        let title = format!(
            "Blobs ({} added, {}; {} removed, {})",
            self.blobs.added.len(),
            human_size(self.blobs.added_bytes),
            self.blobs.removed.len(),
            human_size(self.blobs.removed_bytes)
        );
        section(out, title, t)?;

        let mut t = Table::new(vec!["CHANGE", "REPOSITORY", "UPLOAD", "SIZE"]).right_align(&[3]);
        for (what, list) in [("added", &self.uploads.added), ("removed", &self.uploads.removed)] {
            for u in list {
                t.push(vec![what.into(), Cell::name(&u.repository), Cell::name(&u.uuid), size_cell(u.size)]);
            }
        }
        section(out, format!("Uploads ({})", t.rows.len()), t)?;

        let mut t = Table::new(vec!["DIGEST", "SIZE A", "SIZE B", "WHY"]).right_align(&[1, 2]);
        for c in &self.content_differs {
            t.push(vec![
                Cell::new(c.digest.short()),
                Cell::new(human_size(c.size_a)),
                Cell::new(human_size(c.size_b)),
                Cell::styled(&c.reason, BAD),
            ]);
        }
        section(out, format!("Same digest, different content ({})", t.rows.len()), t)?;

        let hashed = if self.content_compared {
            "blobs in both were hashed"
        } else {
            "contents not compared (--no-content): only sizes"
        };
        match (self.identical, &self.filter) {
            (true, None) => writeln!(out, "{}No differences{} ({hashed}).", GOOD.render(), GOOD.render_reset()),
            (false, None) => writeln!(out, "{}The trees differ{} ({hashed}).", BAD.render(), BAD.render_reset()),
            (true, Some(_)) => writeln!(
                out,
                "{}No differences in the selected repositories{} ({hashed}).",
                GOOD.render(),
                GOOD.render_reset()
            ),
            (false, Some(_)) => {
                writeln!(out, "{}The selected repositories differ{} ({hashed}).", BAD.render(), BAD.render_reset())
            }
        }
    }
}
