//! `regaudit gc`: what `registry garbage-collect` would do to this tree.

use std::collections::BTreeSet;
use std::io::{self, Write};

use serde::Serialize;

use super::table::{human_size, Cell, Table, BAD, BOLD, DIM, WARN};
use super::{Report, SCHEMA_VERSION};
use crate::audit::Audit;
use crate::inventory::WalkFacts;
use crate::model::gc::{
    self, Abort, BlobDeletion, Fix, GcOptions, GcOutcome, Hazard, LayerLinkDeletion, ManifestDeletion,
};
use crate::model::Target;
use crate::names::{self, Shown, ShownText};

#[derive(Serialize)]
pub struct GcReport {
    pub schema_version: u32,
    pub target: Target,
    pub root: String,
    pub delete_untagged: bool,
    /// Null when the real run completes.
    pub aborts: Option<AbortReport>,
    #[serde(flatten)]
    pub deletes: Deletions,
    /// The directories it deletes recursively.
    pub removed_dirs: Vec<String>,
    /// True when the run aborts midway through its random-order blob deletion.
    pub removes_uncertain: bool,
    /// The dry run's summary counts.
    pub marked: usize,
    pub eligible_blobs: usize,
    pub eligible_manifests: usize,
    /// Repositories in the order the run marks them.
    pub repositories: Vec<String>,
    pub hazards: Vec<Hazard>,
    pub unmodelled: Vec<String>,
    /// True when something is unmodelled: the prediction does not cover it,
    /// and the exit status is 2.
    pub incomplete: bool,
    /// When the run aborts: what it deletes once every cause is fixed.
    pub would_delete_when_fixed: Option<WhenFixed>,
    #[serde(skip)]
    pub log: Vec<String>,
    #[serde(skip)]
    pub dry_run_message: Option<String>,
}

#[derive(Serialize)]
pub struct AbortReport {
    #[serde(flatten)]
    pub abort: Abort,
    /// `--dry-run` aborts too (it skips the deletions, where some aborts happen).
    pub dry_run_too: bool,
}

/// What a run deletes; the same for the prediction and for "once fixed".
#[derive(Serialize)]
pub struct Deletions {
    pub manifests: Vec<ManifestDeletion>,
    pub blobs: Vec<BlobDeletion>,
    /// v3 only: `_layers` links removed.
    pub layer_links: Vec<LayerLinkDeletion>,
    pub reclaimable_bytes: u64,
    /// Every file the real run deletes, relative to the storage root.
    pub removes: Vec<String>,
}

impl Deletions {
    fn of(audit: &Audit, o: &mut GcOutcome) -> Deletions {
        Deletions {
            removes: removes(audit, o),
            reclaimable_bytes: o.reclaimable_bytes(),
            manifests: std::mem::take(&mut o.manifests),
            blobs: std::mem::take(&mut o.blobs),
            layer_links: std::mem::take(&mut o.layer_links),
        }
    }
}

#[derive(Serialize)]
pub struct WhenFixed {
    pub assumptions: Vec<Fix>,
    /// What this answer cannot cover (a fault assumed fixed hides what lies behind it).
    pub unmodelled: Vec<String>,
    #[serde(flatten)]
    pub deletes: Deletions,
    pub hazards: Vec<Hazard>,
}

/// Files removed: every file below the removed directories (read from the
/// tree, since a recursive delete takes strays too) plus single files.
fn removes(audit: &Audit, o: &GcOutcome) -> Vec<String> {
    let mut files: BTreeSet<String> = o.removed_files.iter().cloned().collect();
    for dir in &o.removed_dirs {
        files.extend(audit.root.files_below(dir));
    }
    files.into_iter().collect()
}

/// With `log`, the report keeps the dry run's stdout for `--format gc-log`.
pub fn build(audit: &Audit, walk: &WalkFacts, delete_untagged: bool, log: bool) -> GcReport {
    let opts = GcOptions { target: audit.target, delete_untagged, log };
    let (mut o, fixed) = gc::predict(&audit.inventory, &audit.contents, walk, opts);
    let would_delete_when_fixed = fixed.map(|mut f| WhenFixed {
        deletes: Deletions::of(audit, &mut f),
        assumptions: f.fixes,
        unmodelled: f.unmodelled,
        hazards: f.hazards,
    });
    GcReport {
        schema_version: SCHEMA_VERSION,
        target: audit.target,
        root: audit.root.path().display().to_string(),
        delete_untagged,
        aborts: o.abort.clone().map(|abort| AbortReport { abort, dry_run_too: o.dry_run_abort.is_some() }),
        deletes: Deletions::of(audit, &mut o),
        removed_dirs: o
            .removed_dirs
            .iter()
            .chain(&o.removed_files)
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        removes_uncertain: o.removes_uncertain,
        marked: o.marked,
        eligible_blobs: o.eligible_blobs,
        eligible_manifests: o.eligible_manifests,
        dry_run_message: o.dry_run_abort.as_ref().map(|a| a.message.clone()),
        repositories: o.repositories,
        hazards: o.hazards,
        incomplete: !o.unmodelled.is_empty(),
        unmodelled: o.unmodelled,
        log: o.log,
        would_delete_when_fixed,
    }
}

impl GcReport {
    pub fn findings(&self) -> crate::exit_codes::Findings {
        use crate::exit_codes::Condition::*;
        crate::exit_codes::Findings {
            aborts: self.aborts.is_some(),
            hazards: self.hazards.len(),
            deletions: self.deletes.removes.len(),
            unknown: if self.incomplete { [Aborts, Hazards, Deletions].into() } else { Default::default() },
            ..Default::default()
        }
    }

    /// `--format gc-log`: the dry run's stdout; its abort message goes to `err`.
    pub fn write_log(&self, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<()> {
        // The real run prints names raw; we escape them (names::escape).
        for line in &self.log {
            writeln!(out, "{}", Shown(line))?;
        }
        if let Some(m) = &self.dry_run_message {
            // Its last newline is the real message's own.
            match m.strip_suffix('\n') {
                Some(m) => writeln!(err, "{}", ShownText(m))?,
                None => write!(err, "{}", ShownText(m))?,
            }
        }
        Ok(())
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

impl Deletions {
    /// One line for people: "2 manifests, 4 blobs (2.4 KiB reclaimable); 6 files".
    fn summary(&self) -> String {
        let mut parts = vec![
            plural(self.manifests.len(), "manifest"),
            format!("{} ({} reclaimable)", plural(self.blobs.len(), "blob"), human_size(self.reclaimable_bytes)),
        ];
        if !self.layer_links.is_empty() {
            parts.push(plural(self.layer_links.len(), "layer link"));
        }
        format!("{}; {}", parts.join(", "), plural(self.removes.len(), "file"))
    }
}

/// Names joined by commas, each escaped.
fn escape_all(names: &[String]) -> String {
    names.iter().map(|n| names::escape(n)).collect::<Vec<_>>().join(",")
}

fn write_hazards(hazards: &[Hazard], out: &mut dyn Write) -> io::Result<()> {
    for h in hazards {
        let code = serde_json::to_value(h.code).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        writeln!(out, "  {}warning{} {code}: {}", WARN.render(), WARN.render_reset(), ShownText(&h.message))?;
    }
    Ok(())
}

fn write_manifests(ms: &[ManifestDeletion], out: &mut dyn Write) -> io::Result<()> {
    let mut t = Table::new(vec!["REPOSITORY", "DIGEST", "KIND", "SIZE", "TAG HISTORY REMOVED"]).right_align(&[3]);
    for m in ms {
        t.push(vec![
            Cell::name(&m.repository),
            Cell::new(m.digest.to_string()),
            Cell::new(m.kind.map(|k| k.name()).unwrap_or("-")),
            Cell::new(m.size.map(human_size).unwrap_or_else(|| "-".into())),
            Cell::new(if m.tags.is_empty() { "-".to_string() } else { escape_all(&m.tags) }),
        ]);
    }
    t.write(out)
}

fn write_blobs(bs: &[BlobDeletion], out: &mut dyn Write) -> io::Result<()> {
    let mut t = Table::new(vec!["DIGEST", "SIZE", "STILL LINKED BY"]).right_align(&[1]);
    for b in bs {
        let linked = if b.linked_by.is_empty() { "-".to_string() } else { escape_all(&b.linked_by) };
        t.push(vec![Cell::name(&b.digest), Cell::new(human_size(b.size)), Cell::new(linked)]);
    }
    t.write(out)
}

impl Report for GcReport {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let mode = if self.delete_untagged { " --delete-untagged" } else { "" };
        writeln!(out, "{}registry {} garbage-collect{mode}{}", BOLD.render(), self.target, BOLD.render_reset())?;
        if self.incomplete {
            writeln!(
                out,
                "  {}Incomplete{}: the real run follows or reads what regaudit could not (listed as not modelled \
                 below); this answer does not cover it.",
                BAD.render(),
                BAD.render_reset()
            )?;
        }
        if let Some(a) = &self.aborts {
            let stage = serde_json::to_value(a.abort.stage).ok().and_then(|v| v.as_str().map(str::to_string));
            let dry = if a.dry_run_too { "; --dry-run aborts too" } else { "; --dry-run does not" };
            writeln!(
                out,
                "  {}Would abort{} ({}{dry}): {}",
                BAD.render(),
                BAD.render_reset(),
                stage.unwrap_or_default(),
                ShownText(&a.abort.reason)
            )?;
            writeln!(out, "    at {}", Shown(&a.abort.path))?;
            writeln!(out, "    {}{}{}", DIM.render(), ShownText(a.abort.message.trim_end()), DIM.render_reset())?;
            let deleted = self.deletes.summary();
            writeln!(out, "  Deleted before it aborts: {deleted}")?;
        } else {
            let deleted = self.deletes.summary();
            writeln!(out, "  Would delete: {deleted}")?;
        }
        if self.removes_uncertain {
            writeln!(out, "  (blobs are deleted in random order: some listed blobs may survive the abort)")?;
        }
        if let Some(f) = &self.would_delete_when_fixed {
            let deleted = f.deletes.summary();
            writeln!(out, "  Once fixed, would delete: {deleted}")?;
            for fix in &f.assumptions {
                writeln!(out, "    assuming for {}: {}", Shown(&fix.cause.path), ShownText(&fix.assumption))?;
            }
            for u in &f.unmodelled {
                writeln!(out, "    {}not covered{}: {u}", WARN.render(), WARN.render_reset())?;
            }
        }
        if self.hazards.is_empty() {
            writeln!(out, "  No hazards.")?;
        } else {
            writeln!(out, "  {}:", plural(self.hazards.len(), "hazard"))?;
            write_hazards(&self.hazards, out)?;
        }
        for u in &self.unmodelled {
            writeln!(out, "  {}not modelled{}: {}", WARN.render(), WARN.render_reset(), ShownText(u))?;
        }
        if !self.deletes.manifests.is_empty() {
            writeln!(out, "\nManifests deleted:")?;
            write_manifests(&self.deletes.manifests, out)?;
        }
        if !self.deletes.blobs.is_empty() {
            writeln!(out, "\nBlobs deleted:")?;
            write_blobs(&self.deletes.blobs, out)?;
        }
        if !self.deletes.layer_links.is_empty() {
            writeln!(out, "\nLayer links deleted:")?;
            for l in &self.deletes.layer_links {
                writeln!(out, "  {} {}", Shown(&l.repository), l.digest)?;
            }
        }
        if !self.deletes.removes.is_empty() {
            writeln!(out, "\nFiles removed:")?;
            for f in &self.deletes.removes {
                writeln!(out, "  {}", Shown(f))?;
            }
        }
        if let Some(f) = &self.would_delete_when_fixed {
            if !f.hazards.is_empty() {
                writeln!(out, "\nHazards once fixed:")?;
                write_hazards(&f.hazards, out)?;
            }
            if !f.deletes.manifests.is_empty() {
                writeln!(out, "\nManifests deleted once fixed:")?;
                write_manifests(&f.deletes.manifests, out)?;
            }
            if !f.deletes.blobs.is_empty() {
                writeln!(out, "\nBlobs deleted once fixed:")?;
                write_blobs(&f.deletes.blobs, out)?;
            }
        }
        Ok(())
    }
}
