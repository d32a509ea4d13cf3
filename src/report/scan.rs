//! `regaudit scan`: the first command to run. What is in the tree, what is
//! wrong with it, and (with `--verify`) whether its content is intact.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use super::table::{human_size, yes_no, Cell, Table, BAD, BOLD, DIM, GOOD, WARN};
use super::writes;
use super::{plural, plural_s, problems, wrap, Report};
use crate::model::Target;
use crate::names::ShownText;
use crate::problem::Problem;

#[derive(Serialize)]
pub struct ScanReport {
    pub schema_version: u32,
    pub target: Target,
    pub root: String,
    pub inventory: InventorySummary,
    pub tags: TagSummary,
    /// Null unless `--verify` was given.
    pub verification: Option<VerificationSummary>,
    /// The `writes` verdict: would serving this tree write, and how much.
    pub writes: writes::Summary,
    /// `garbage-collect` in its two modes: default, then `--delete-untagged`.
    pub gc: Vec<GcSummary>,
    pub problems: Vec<Problem>,
    /// Null without `--repo`; see [`ScanFilter`].
    pub filter: Option<ScanFilter>,
}

/// `--repo`: `tags`, `verification`, `writes`, `gc` and `problems` concern
/// the selected repositories (a blob when one of them references or links
/// it); `inventory` stays that of the whole tree.
#[derive(Serialize)]
pub struct ScanFilter {
    #[serde(flatten)]
    pub scope: crate::select::FilterNote,
    /// Problems of the whole tree that are not shown (elsewhere).
    pub problems_not_shown: usize,
}

#[derive(Serialize)]
pub struct GcSummary {
    pub delete_untagged: bool,
    /// Why the real run would abort; null when it completes.
    pub aborts: Option<String>,
    pub manifests: usize,
    pub blobs: usize,
    pub reclaimable_bytes: u64,
    pub files: usize,
    pub hazards: usize,
    /// The prediction does not cover something (see `regaudit gc`).
    pub incomplete: bool,
    /// Hazards as text counts them (see `gc::text_hazard_count`).
    #[serde(skip)]
    pub text_hazards: usize,
}

#[derive(Serialize)]
pub struct InventorySummary {
    pub repositories: usize,
    /// Listed by the target's catalog (`_layers` for 2.8, `_manifests` for 3).
    pub repositories_in_catalog: usize,
    pub tags: usize,
    /// Distinct manifests by kind (`unparseable` and `unknown-type` too).
    pub manifests: BTreeMap<&'static str, usize>,
    pub revision_links: usize,
    /// Revisions whose manifest names an OCI `subject` (signatures, SBOMs,
    /// attestations); `regaudit inspect` lists them under their subject.
    pub referrers: usize,
    pub layer_links: usize,
    pub blobs: usize,
    pub blob_bytes: u64,
    pub uploads: usize,
    pub upload_bytes: u64,
    pub files: u64,
}

#[derive(Serialize)]
pub struct TagSummary {
    pub total: usize,
    pub served: usize,
    pub not_served: usize,
    /// Not served only because a GET is not modelled: unknown, counted apart
    /// from `not_served`.
    pub served_unknown: usize,
}

#[derive(Serialize)]
pub struct VerificationSummary {
    pub blobs_checked: usize,
    pub bytes_hashed: u64,
    pub intact: usize,
    pub damaged: usize,
    pub interrupted: bool,
}

impl ScanReport {
    /// The conditions this scan cannot answer: its parts that are incomplete.
    fn unknown(&self) -> std::collections::BTreeSet<crate::exit_codes::Condition> {
        use crate::exit_codes::Condition::*;
        let mut unknown = std::collections::BTreeSet::new();
        if self.tags.served_unknown > 0 {
            unknown.insert(NotServed);
        }
        if self.writes.incomplete {
            unknown.insert(Writes);
        }
        if self.gc.iter().any(|g| !g.delete_untagged && g.incomplete) {
            unknown.extend([Aborts, Hazards, Deletions]);
        }
        unknown
    }
}

impl ScanReport {
    /// The verdict line: what `scan` fails on by default (problems of
    /// warning and above, tags not served), then what else is worth a look.
    fn verdict(&self) -> (String, anstyle::Style) {
        let serious = self.problems.iter().filter(|p| p.severity >= crate::problem::Severity::Warning).count();
        let t = &self.tags;
        let mut parts = Vec::new();
        if serious > 0 {
            parts.push(plural(serious, "problem (warning or error)", "problems (warning or error)"));
        }
        if t.not_served > 0 {
            parts.push(format!("{} not served", plural_s(t.not_served, "tag")));
        }
        if t.served_unknown > 0 {
            parts.push(format!("{} served or not: unknown", plural_s(t.served_unknown, "tag")));
        }
        if let Some(v) = self.verification.as_ref().filter(|v| v.damaged > 0) {
            parts.push(format!("{} damaged", plural_s(v.damaged, "blob")));
        }
        if parts.is_empty() {
            let all = if t.served == 1 {
                "the one tag is served".to_string()
            } else {
                format!("all {} tags served", t.served)
            };
            let none = if self.problems.is_empty() { "no problems" } else { "no warnings or errors" };
            (format!("OK: {none}, {all}"), GOOD)
        } else {
            (parts.join(", "), BAD)
        }
    }

    /// What to run next, for what this scan found.
    fn next_steps(&self) -> Vec<&'static str> {
        let mut next = Vec::new();
        if !self.problems.is_empty() {
            next.push("read the problems below (-v lists every one)");
        }
        if self.tags.not_served > 0 || self.tags.served_unknown > 0 {
            next.push("`regaudit tags` says why a tag is not served");
        }
        if self.verification.is_none() {
            next.push("`--verify` hashes every blob");
        }
        if self.writes.writing_operations > 0 {
            next.push("`regaudit writes` before serving it read-only");
        }
        if self.gc.iter().any(|g| g.aborts.is_some() || g.text_hazards > 0) {
            next.push("`regaudit gc` before collecting garbage");
        }
        next
    }
}

impl Report for ScanReport {
    /// Garbage collection counts as in plain `garbage-collect` (no `--delete-untagged`).
    fn findings(&self) -> crate::exit_codes::Findings {
        let gc = self.gc.iter().find(|g| !g.delete_untagged);
        crate::exit_codes::Findings {
            not_served: self.tags.not_served,
            damaged: self.verification.as_ref().map_or(0, |v| v.damaged),
            interrupted: self.verification.as_ref().is_some_and(|v| v.interrupted),
            writes: self.writes.writing_operations,
            aborts: gc.is_some_and(|g| g.aborts.is_some()),
            hazards: gc.map_or(0, |g| g.hazards),
            deletions: gc.map_or(0, |g| g.files),
            unknown: self.unknown(),
            ..Default::default()
        }
        .with_problems(&self.problems)
    }

    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        // The summary first (it fits 80x24): the verdict, the counts, what
        // to do next; the problems after it, grouped by code.
        let i = &self.inventory;
        writeln!(
            out,
            "{}Storage tree{} {}  (rules of registry {})",
            BOLD.render(),
            BOLD.render_reset(),
            ShownText(&self.root),
            self.target
        )?;
        if let Some(f) = &self.filter {
            let line = format!(
                "Filtered by --repo {}: tags, problems, writes and gc concern {} (a blob when one of them \
                 references or links it); the inventory counts the whole tree; {} elsewhere not shown.",
                f.scope.repo_globs.join(" --repo "),
                plural(f.scope.repositories.len(), "repository", "repositories"),
                plural(f.problems_not_shown, "problem", "problems"),
            );
            for line in wrap(&line, "", 80) {
                writeln!(out, "{}{line}{}", DIM.render(), DIM.render_reset())?;
            }
        }
        let (verdict, style) = self.verdict();
        writeln!(
            out,
            "{}Verdict:{} {}{verdict}{}",
            BOLD.render(),
            BOLD.render_reset(),
            style.render(),
            style.render_reset()
        )?;
        for line in wrap(&format!("Next: {}.", self.next_steps().join("; ")), "", 80) {
            writeln!(out, "{line}")?;
        }
        writeln!(out)?;
        let kinds: Vec<String> = i.manifests.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let mut t = Table::new(vec!["WHAT", "COUNT", "DETAIL"]).right_align(&[1]);
        let rows: Vec<(&str, String, String)> = vec![
            (
                "repositories",
                i.repositories.to_string(),
                format!("{} in the {} catalog", i.repositories_in_catalog, self.target),
            ),
            ("tags", self.tags.total.to_string(), {
                let t = &self.tags;
                let unknown =
                    if t.served_unknown > 0 { format!(", {} unknown", t.served_unknown) } else { String::new() };
                format!("{} served, {} not served{unknown}", t.served, t.not_served)
            }),
            ("manifests", i.manifests.values().sum::<usize>().to_string(), kinds.join(", ")),
            ("revision links", i.revision_links.to_string(), {
                let r = i.referrers;
                if r > 0 {
                    format!("{} (OCI subject; see `regaudit inspect`)", plural(r, "referrer", "referrers"))
                } else {
                    String::new()
                }
            }),
            ("layer links", i.layer_links.to_string(), String::new()),
            ("blobs", i.blobs.to_string(), human_size(i.blob_bytes)),
            ("uploads", i.uploads.to_string(), human_size(i.upload_bytes)),
            ("files", i.files.to_string(), String::new()),
        ];
        // DETAIL wraps (the manifest kinds) so that the table fits 80 columns.
        for (what, count, detail) in rows {
            let mut lines = wrap(&detail, "", 56).into_iter();
            t.push(vec![Cell::new(what), Cell::new(count), Cell::new(lines.next().unwrap_or_default())]);
            for more in lines {
                t.push(vec![Cell::new(""), Cell::new(""), Cell::new(more.trim_start())]);
            }
        }
        t.write(out)?;
        writeln!(out)?;
        if let Some(v) = &self.verification {
            writeln!(
                out,
                "Verified {} ({}){}: {} intact, {} damaged.",
                plural_s(v.blobs_checked, "blob"),
                human_size(v.bytes_hashed),
                if v.interrupted { ", interrupted" } else { "" },
                v.intact,
                v.damaged
            )?;
        }
        let w = &self.writes;
        let (verdict, style) = match (w.incomplete, w.writing_operations) {
            (true, 0) => ("unknown (not everything is modelled)", WARN),
            _ => yes_no(w.serves_read_only),
        };
        writeln!(
            out,
            "Serves read-only (registry {}): {}{verdict}{}  ({} of {} would write)",
            self.target,
            style.render(),
            style.render_reset(),
            w.writing_operations,
            plural_s(w.operations, "operation"),
        )?;
        for g in &self.gc {
            let mode = if g.delete_untagged { "garbage-collect -m" } else { "garbage-collect" };
            if g.incomplete {
                writeln!(
                    out,
                    "{mode}: {}incomplete{}: it reads what regaudit could not; see `regaudit gc`",
                    WARN.render(),
                    WARN.render_reset()
                )?;
                continue;
            }
            match &g.aborts {
                Some(reason) => {
                    let line = format!("{mode}: would abort: {}", ShownText(reason));
                    let line: String = if line.chars().count() > 80 {
                        line.chars().take(79).chain(std::iter::once('…')).collect()
                    } else {
                        line
                    };
                    writeln!(out, "{}{line}{}", BAD.render(), BAD.render_reset())?
                }
                None => writeln!(
                    out,
                    "{mode}: would delete {}, {} ({}); {}",
                    plural_s(g.manifests, "manifest"),
                    plural_s(g.blobs, "blob"),
                    human_size(g.reclaimable_bytes),
                    plural_s(g.text_hazards, "hazard")
                )?,
            }
        }
        writeln!(out)?;
        problems::write_grouped(&self.problems, out)
    }
}
