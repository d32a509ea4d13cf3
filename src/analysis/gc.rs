//! `regaudit gc`: the garbage-collect prediction, with every file a
//! recursive delete takes read from the tree.

use std::collections::BTreeSet;

use crate::audit::Audit;
use crate::inventory::WalkFacts;
use crate::model::gc::{self, GcOptions, GcOutcome};
use crate::report::gc::{AbortReport, Deletions, GcReport, WhenFixed};
use crate::report::SCHEMA_VERSION;

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
