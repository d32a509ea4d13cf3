//! `regaudit gc`: the garbage-collect prediction, with every file a
//! recursive delete takes read from the tree.

use std::collections::BTreeSet;

use crate::audit::Audit;
use crate::inventory::WalkFacts;
use crate::model::gc::Hazard;
use crate::model::gc::{self, GcOptions, GcOutcome};
use crate::report::gc::{AbortReport, Deletions, GcFilter, GcReport, GcTotals, WhenFixed};
use crate::report::SCHEMA_VERSION;
use crate::select::{place, Place, Scope};

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

/// Files removed: every file below the removed directories (read from the
/// tree, since a recursive delete takes strays too) plus single files.
fn removes(audit: &Audit, o: &GcOutcome) -> Vec<String> {
    let mut files: BTreeSet<String> = o.removed_files.iter().cloned().collect();
    for dir in &o.removed_dirs {
        files.extend(audit.root.files_below(dir));
    }
    files.into_iter().collect()
}

/// One run of `garbage-collect`: the walks it makes read from the tree,
/// then [`build`].
pub fn predict(audit: &Audit, delete_untagged: bool, log: bool) -> GcReport {
    let walk = audit.root.registry_walks(&audit.inventory);
    build(audit, &walk, delete_untagged, log)
}

/// With `log`, the report keeps the dry run's stdout for `--format gc-log`.
pub fn build(audit: &Audit, walk: &WalkFacts, delete_untagged: bool, log: bool) -> GcReport {
    let opts = GcOptions { target: audit.target, delete_untagged, log, driver: audit.root.capabilities().driver };
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
        filter: None,
    }
}

/// `--repo`: keeps in the lists what concerns the selected repositories, and
/// the whole run's totals in `filter`. The prediction is unchanged: the run
/// marks and deletes across every repository whatever is shown. An abort,
/// what is unmodelled and the dry run's counts concern the whole run and stay.
pub fn filter(report: &mut GcReport, scope: &Scope) {
    let d = &report.deletes;
    let whole_run = GcTotals {
        manifests: d.manifests.len(),
        blobs: d.blobs.len(),
        layer_links: d.layer_links.len(),
        reclaimable_bytes: d.reclaimable_bytes,
        files: d.removes.len(),
        hazards: report.hazards.len(),
        text_hazards: crate::report::gc::text_hazard_count(&report.hazards),
    };
    filter_deletions(&mut report.deletes, scope);
    keep_hazards(&mut report.hazards, scope);
    report.removed_dirs.retain(|p| scope.keeps_path(p));
    if let Some(f) = &mut report.would_delete_when_fixed {
        filter_deletions(&mut f.deletes, scope);
        keep_hazards(&mut f.hazards, scope);
    }
    report.filter = Some(GcFilter { scope: scope.note(), whole_run });
}

/// A blob deleted is shown when a selected repository references or links
/// it (see [`Scope`]) or still links it after the run; a file when it lies
/// in a selected repository or in a shown blob's directory.
fn filter_deletions(d: &mut Deletions, scope: &Scope) {
    d.manifests.retain(|m| scope.keeps_repository(&m.repository));
    d.layer_links.retain(|l| scope.keeps_repository(&l.repository));
    d.blobs.retain(|b| scope.keeps_blob(&b.digest) || b.linked_by.iter().any(|r| scope.keeps_repository(r)));
    let shown: BTreeSet<&str> = d.blobs.iter().map(|b| b.digest.as_str()).collect();
    d.reclaimable_bytes = d.blobs.iter().map(|b| b.size).sum();
    d.removes.retain(|p| match place(p) {
        Some(Place::Repository(name)) => scope.keeps_repository(&name),
        Some(Place::Blob(digest)) => shown.contains(digest.as_str()),
        None => false,
    });
}

/// A hazard about a repository follows it; one about a blob alone follows
/// the blob's attribution; one about neither concerns the whole run and stays.
fn keep_hazards(hazards: &mut Vec<Hazard>, scope: &Scope) {
    hazards.retain(|h| match (&h.repository, &h.digest) {
        (Some(r), _) => scope.keeps_repository(r),
        (None, Some(d)) => scope.keeps_blob(d),
        (None, None) => true,
    });
}
