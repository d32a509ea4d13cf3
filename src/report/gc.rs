//! `regaudit gc`: what `registry garbage-collect` would do to this tree.

use std::collections::BTreeSet;
use std::io::{self, Write};

use serde::Serialize;

use super::table::{human_size, Cell, Table, BAD, BOLD, DIM, WARN};
use super::Report;
use crate::model::gc::{Abort, BlobDeletion, Fix, Hazard, HazardCode, LayerLinkDeletion, ManifestDeletion};
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
    /// Null without `--repo`; else the lists above show only what concerns
    /// the selected repositories, and this keeps the whole run's totals.
    pub filter: Option<GcFilter>,
    #[serde(skip)]
    pub log: Vec<String>,
    #[serde(skip)]
    pub dry_run_message: Option<String>,
}

/// `--repo`: what the lists show, and the totals of the whole run, which
/// the prediction still models.
#[derive(Serialize)]
pub struct GcFilter {
    #[serde(flatten)]
    pub scope: crate::select::FilterNote,
    pub whole_run: GcTotals,
}

/// Counts of the whole run, whatever `--repo` shows.
#[derive(Serialize)]
pub struct GcTotals {
    pub manifests: usize,
    pub blobs: usize,
    pub layer_links: usize,
    pub reclaimable_bytes: u64,
    pub files: usize,
    pub hazards: usize,
    /// Hazards as text counts them ([`text_hazard_count`]).
    #[serde(skip)]
    pub text_hazards: usize,
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
    /// Every file the real run deletes, as a path below the storage root (its directory).
    pub removes: Vec<String>,
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

impl GcReport {
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

use super::{plural_s as plural, short_digests, shown, verbose, wrap, write_more, EXAMPLES, TEXT_WIDTH};

/// Rows shown of a long list without `--verbose`, and examples per hazard code.
const TABLE_ROWS: usize = 5;

/// One hazard as text shows it: a `linked-blob-deleted` with the
/// `layer-link-dangling` hazards of the same blob folded in (they say the
/// same thing about it; JSON keeps both).
struct TextHazard {
    code: String,
    message: String,
}

/// The JSON name of a model enum (hazard code, abort stage), for text.
// model::gc spells these only through serde; a hand-written `name()` there
// would replace this (that file belongs to the rules split).
fn json_name(value: impl Serialize) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn code_name(h: &Hazard) -> String {
    json_name(h.code)
}

fn text_hazards(hazards: &[Hazard]) -> Vec<TextHazard> {
    use std::collections::BTreeMap;
    let mut linkers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for h in hazards.iter().filter(|h| h.code == HazardCode::LayerLinkDangling) {
        if let (Some(d), Some(r)) = (&h.digest, &h.repository) {
            linkers.entry(d.as_str()).or_default().push(r.as_str());
        }
    }
    let folded: BTreeSet<&str> = hazards
        .iter()
        .filter(|h| h.code == HazardCode::LinkedBlobDeleted)
        .filter_map(|h| h.digest.as_deref())
        .filter(|d| linkers.contains_key(d))
        .collect();
    let mut out = Vec::new();
    for h in hazards {
        let digest = h.digest.as_deref().unwrap_or_default();
        match h.code {
            HazardCode::LayerLinkDangling if folded.contains(digest) => continue,
            HazardCode::LinkedBlobDeleted if folded.contains(digest) => {
                let repos = &linkers[digest];
                let names: Vec<String> = repos.iter().map(|r| names::escape(r).into_owned()).collect();
                let verb = if repos.len() == 1 { "links" } else { "link" };
                out.push(TextHazard {
                    code: code_name(h),
                    message: format!(
                        "blob {} is deleted although {} still {verb} it (_layers link left dangling)",
                        short_digests(digest),
                        names.join(", ")
                    ),
                });
            }
            _ => {
                out.push(TextHazard { code: code_name(h), message: short_digests(&ShownText(&h.message).to_string()) })
            }
        }
    }
    out
}

/// Hazards as text counts them (a blob still linked is one, not one per link).
pub fn text_hazard_count(hazards: &[Hazard]) -> usize {
    text_hazards(hazards).len()
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

/// Hazards grouped by code: a count, then a few examples each.
fn write_hazards(hazards: &[TextHazard], out: &mut dyn Write) -> io::Result<()> {
    let mut codes: Vec<&str> = Vec::new();
    for h in hazards {
        if !codes.contains(&h.code.as_str()) {
            codes.push(&h.code);
        }
    }
    for code in codes {
        let of_code: Vec<&TextHazard> = hazards.iter().filter(|h| h.code == code).collect();
        writeln!(out, "  {}warning{} {code} ({})", WARN.render(), WARN.render_reset(), of_code.len())?;
        let n = shown(of_code.len(), EXAMPLES);
        for h in &of_code[..n] {
            for line in wrap(&h.message, "    ", TEXT_WIDTH) {
                writeln!(out, "{line}")?;
            }
        }
        write_more(out, "    ", of_code.len() - n)?;
    }
    Ok(())
}

fn write_manifests(ms: &[ManifestDeletion], out: &mut dyn Write) -> io::Result<()> {
    let mut t = Table::new(vec!["REPOSITORY", "DIGEST", "KIND", "SIZE", "TAG HISTORY REMOVED"]).right_align(&[3]);
    let n = shown(ms.len(), TABLE_ROWS);
    for m in &ms[..n] {
        t.push(vec![
            Cell::name(&m.repository),
            Cell::new(m.digest.short()),
            Cell::new(m.kind.map(|k| k.name()).unwrap_or("-")),
            Cell::new(m.size.map(human_size).unwrap_or_else(|| "-".into())),
            Cell::new(if m.tags.is_empty() { "-".to_string() } else { escape_all(&m.tags) }),
        ]);
    }
    t.write(out)?;
    write_more(out, "", ms.len() - n)
}

fn write_blobs(bs: &[BlobDeletion], out: &mut dyn Write) -> io::Result<()> {
    let mut t = Table::new(vec!["DIGEST", "SIZE", "STILL LINKED BY"]).right_align(&[1]);
    let n = shown(bs.len(), TABLE_ROWS);
    for b in &bs[..n] {
        let linked = if b.linked_by.is_empty() { "-".to_string() } else { escape_all(&b.linked_by) };
        t.push(vec![Cell::name(&short_digests(&b.digest)), Cell::new(human_size(b.size)), Cell::new(linked)]);
    }
    t.write(out)?;
    write_more(out, "", bs.len() - n)
}

/// "31 hazards: 8 multi-arch-child-deleted, 21 linked-blob-deleted, ...".
fn hazard_counts(hazards: &[TextHazard]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for h in hazards {
        match counts.iter_mut().find(|(c, _)| *c == h.code) {
            Some((_, n)) => *n += 1,
            None => counts.push((&h.code, 1)),
        }
    }
    let parts: Vec<String> = counts.iter().map(|(c, n)| format!("{n}\u{a0}{c}")).collect();
    format!("{}: {}", plural(hazards.len(), "hazard"), parts.join(", "))
}

impl Report for GcReport {
    fn findings(&self) -> crate::exit_codes::Findings {
        use crate::exit_codes::Condition::*;
        crate::exit_codes::Findings {
            aborts: self.aborts.is_some(),
            hazards: self.hazards.len(),
            deletions: self.deletes.removes.len(),
            unknown: if self.incomplete { [Aborts, Hazards, Deletions].into() } else { Default::default() },
            ..Default::default()
        }
    }

    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        // The summary first (it fits 80x24): verdict, counts, what to do next.
        let mode = if self.delete_untagged { " --delete-untagged" } else { "" };
        writeln!(out, "{}registry {} garbage-collect{mode}{}", BOLD.render(), self.target, BOLD.render_reset())?;
        if let Some(f) = &self.filter {
            let w = &f.whole_run;
            let whole = format!(
                "{}, {} ({} reclaimable), {}, {}",
                plural(w.manifests, "manifest"),
                plural(w.blobs, "blob"),
                human_size(w.reclaimable_bytes),
                plural(w.files, "file"),
                plural(w.text_hazards, "hazard")
            );
            let line = format!(
                "Filtered by --repo {}: what concerns {} is shown (a blob when one of them references or \
                 links it); the run itself is modelled whole: {whole}.",
                f.scope.repo_globs.join(" --repo "),
                crate::report::plural(f.scope.repositories.len(), "repository", "repositories"),
            );
            for line in wrap(&line, "  ", 80) {
                writeln!(out, "{DIM_ON}{line}{DIM_OFF}", DIM_ON = DIM.render(), DIM_OFF = DIM.render_reset())?;
            }
        }
        if self.incomplete {
            writeln!(
                out,
                "  {}Incomplete{}: the real run follows or reads what regaudit could not (listed as not\n  \
                 modelled below); this answer does not cover it.",
                BAD.render(),
                BAD.render_reset()
            )?;
        }
        if let Some(a) = &self.aborts {
            let stage = json_name(a.abort.stage);
            let dry = if a.dry_run_too { "; --dry-run aborts too" } else { "; --dry-run does not" };
            writeln!(
                out,
                "  {}Would abort{} ({}{dry}): {}",
                BAD.render(),
                BAD.render_reset(),
                stage,
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
        let hazards = text_hazards(&self.hazards);
        if hazards.is_empty() {
            writeln!(out, "  No hazards.")?;
        } else {
            // The summary fits 80 columns.
            for line in wrap(&hazard_counts(&hazards), "  ", 80) {
                writeln!(out, "{line}")?;
            }
        }
        for u in &self.unmodelled {
            writeln!(out, "  {}not modelled{}: {}", WARN.render(), WARN.render_reset(), ShownText(u))?;
        }
        if self.aborts.is_some() {
            writeln!(out, "  Next: fix the cause of the abort; then read what it deletes once fixed.")?;
        } else if !hazards.is_empty() {
            writeln!(out, "  Next: read the hazards below before running garbage-collect.")?;
        }

        // Then the detail: grouped, a few examples each (all with --verbose).
        if !hazards.is_empty() {
            writeln!(out, "\nHazards:")?;
            write_hazards(&hazards, out)?;
        }
        if !self.deletes.manifests.is_empty() {
            writeln!(out, "\nManifests deleted ({}):", self.deletes.manifests.len())?;
            write_manifests(&self.deletes.manifests, out)?;
        }
        if !self.deletes.blobs.is_empty() {
            writeln!(out, "\nBlobs deleted ({}):", self.deletes.blobs.len())?;
            write_blobs(&self.deletes.blobs, out)?;
        }
        let links = &self.deletes.layer_links;
        if !links.is_empty() {
            writeln!(out, "\nLayer links deleted ({}):", links.len())?;
            let n = shown(links.len(), TABLE_ROWS);
            for l in &links[..n] {
                writeln!(out, "  {} {}", Shown(&l.repository), l.digest.short())?;
            }
            write_more(out, "  ", links.len() - n)?;
        }
        let files = &self.deletes.removes;
        if !files.is_empty() && verbose() {
            writeln!(out, "\nFiles removed ({}):", files.len())?;
            for f in files {
                writeln!(out, "  {}", Shown(f))?;
            }
        } else if !files.is_empty() {
            writeln!(out, "\nFiles removed: {} (-v lists them; --format json too)", files.len())?;
        }
        if let Some(f) = &self.would_delete_when_fixed {
            let hazards = text_hazards(&f.hazards);
            if !hazards.is_empty() {
                writeln!(out, "\nHazards once fixed ({}):", hazards.len())?;
                write_hazards(&hazards, out)?;
            }
            if !f.deletes.manifests.is_empty() {
                writeln!(out, "\nManifests deleted once fixed ({}):", f.deletes.manifests.len())?;
                write_manifests(&f.deletes.manifests, out)?;
            }
            if !f.deletes.blobs.is_empty() {
                writeln!(out, "\nBlobs deleted once fixed ({}):", f.deletes.blobs.len())?;
                write_blobs(&f.deletes.blobs, out)?;
            }
        }
        Ok(())
    }
}
