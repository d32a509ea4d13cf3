//! `regaudit scan`: the inventory summary, tags served, the writes verdict
//! and both garbage-collect modes, computed side by side.

use std::collections::BTreeMap;

use super::tags::for_each_tag;
use crate::audit::Audit;
use crate::manifest::ManifestError;
use crate::model::writes::Settings;
use crate::report::gc::{self as gc_report, GcReport};
use crate::report::scan::{GcSummary, InventorySummary, ScanFilter, ScanReport, TagSummary, VerificationSummary};
use crate::report::SCHEMA_VERSION;
use crate::select::Scope;
use crate::verify::Outcome;

impl GcSummary {
    fn of(r: &GcReport) -> GcSummary {
        GcSummary {
            delete_untagged: r.delete_untagged,
            aborts: r.aborts.as_ref().map(|a| a.abort.reason.clone()),
            manifests: r.deletes.manifests.len(),
            blobs: r.deletes.blobs.len(),
            reclaimable_bytes: r.deletes.reclaimable_bytes,
            files: r.deletes.removes.len(),
            hazards: r.hazards.len(),
            text_hazards: gc_report::text_hazard_count(&r.hazards),
            incomplete: r.incomplete,
        }
    }
}

/// With `scope` (`--repo`), what concerns the selected repositories; the
/// analyses still cover the whole tree (see [`super::gc::filter`]).
pub fn build(audit: &Audit, settings: &Settings, scope: Option<&Scope>) -> ScanReport {
    let selected: Vec<String> = scope.map(|s| s.repositories.iter().cloned().collect()).unwrap_or_default();
    let inv = &audit.inventory;
    let mut manifests: BTreeMap<&'static str, usize> = BTreeMap::new();
    for m in audit.contents.manifests.values() {
        let kind = match m {
            Ok(m) => m.kind.name(),
            Err(ManifestError::UnknownMediaType(_) | ManifestError::UnknownSchemaVersion(_)) => "unknown-type",
            Err(_) => "unparseable",
        };
        *manifests.entry(kind).or_default() += 1;
    }
    let in_catalog = inv.repositories.iter().filter(|r| audit.target.lists_in_catalog(r)).count();
    // The four analyses only read the audit: run them side by side.
    let count_tags = || {
        let (mut total, mut served, mut unknown) = (0, 0, 0);
        for_each_tag(audit, &selected, |t| {
            total += 1;
            served += usize::from(t.served);
            unknown += usize::from(t.served_unknown);
        });
        (total, served, unknown)
    };
    // The two gc models one after the other: each holds a mark set as large
    // as the tree's blobs, and running them together doubled peak memory.
    let gc_both = || {
        let walk = audit.root.registry_walks(&audit.inventory);
        [false, true]
            .map(|untagged| {
                let mut report = super::gc::build(audit, &walk, untagged, false);
                if let Some(scope) = scope {
                    super::gc::filter(&mut report, scope);
                }
                GcSummary::of(&report)
            })
            .into()
    };
    let ((total, served, served_unknown), (writes, gc)) =
        rayon::join(count_tags, || rayon::join(|| super::writes::summarize(audit, settings, scope), gc_both));
    let kept = |d: &crate::digest::Digest| scope.is_none_or(|s| s.blobs.contains(d));
    let mut problems = audit.problems.clone();
    problems.retain(|p| scope.is_none_or(|s| s.keeps_path(&p.path)));
    let filter =
        scope.map(|s| ScanFilter { scope: s.note(), problems_not_shown: audit.problems.len() - problems.len() });
    ScanReport {
        schema_version: SCHEMA_VERSION,
        target: audit.target,
        root: audit.root.path().display().to_string(),
        inventory: InventorySummary {
            repositories: inv.repositories.len(),
            repositories_in_catalog: in_catalog,
            // The whole tree's, with `--repo` too (`tags` below are the selected ones').
            tags: if scope.is_some() { inv.repositories.iter().map(|r| r.tags.len()).sum() } else { total },
            manifests,
            revision_links: inv.repositories.iter().map(|r| r.revisions.len()).sum(),
            referrers: inv
                .repositories
                .iter()
                .flat_map(|r| r.revisions.iter().map(|(path, link)| link.ok().unwrap_or(path).clone()))
                .filter(|d| matches!(audit.contents.manifest(d), Some(Ok(m)) if m.subject().is_some()))
                .count(),
            layer_links: inv.repositories.iter().map(|r| r.layer_links.len()).sum(),
            blobs: inv.blobs.len(),
            blob_bytes: inv.blobs.values().map(|b| b.size).sum(),
            uploads: inv.repositories.iter().map(|r| r.uploads.len()).sum(),
            upload_bytes: inv.repositories.iter().flat_map(|r| r.uploads.values()).filter_map(|u| u.data_size).sum(),
            files: inv.files,
        },
        tags: TagSummary { total, served, not_served: total - served - served_unknown, served_unknown },
        verification: audit.verification.as_ref().map(|v| VerificationSummary {
            blobs_checked: v.blobs.iter().filter(|(d, c)| kept(d) && c.outcome != Outcome::NotChecked).count(),
            bytes_hashed: v.bytes_hashed,
            intact: v.blobs.iter().filter(|(d, c)| kept(d) && c.is_intact()).count(),
            damaged: v
                .blobs
                .iter()
                .filter(|(d, c)| kept(d) && !c.is_intact() && c.outcome != Outcome::NotChecked)
                .count(),
            interrupted: v.interrupted,
        }),
        writes,
        gc,
        problems,
        filter,
    }
}
