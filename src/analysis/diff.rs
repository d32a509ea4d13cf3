//! `regaudit diff`: what changed between two trees, and which blobs present
//! in both differ in content (each copy hashed).

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;

use crate::audit::Audit;
use crate::digest::Digest;
use crate::hashing::copy_hashed;
use crate::inventory::{Inventory, Tag};
use crate::report::diff::{
    BlobChanges, BlobEntry, Changes, ContentDiff, DiffFilter, DiffReport, HistoryEntry, ManifestEntry, TagChanges,
    TagEntry, TagMove, UploadEntry,
};
use crate::report::SCHEMA_VERSION;
use crate::select::Scope;

fn split<K: Ord + Clone>(a: &BTreeSet<K>, b: &BTreeSet<K>) -> (Vec<K>, Vec<K>) {
    (b.difference(a).cloned().collect(), a.difference(b).cloned().collect())
}

fn current_text(tag: &Tag) -> Option<String> {
    match &tag.current {
        None => None,
        Some(Ok(d)) => Some(d.to_string()),
        Some(Err(e)) => Some(format!("(invalid link: {e})")),
    }
}

/// (repository, tag) → tag, over the whole tree.
fn all_tags(inv: &Inventory) -> BTreeMap<(String, String), &Tag> {
    inv.repositories.iter().flat_map(|r| r.tags.iter().map(|(t, tag)| ((r.name.clone(), t.clone()), tag))).collect()
}

pub fn build(a: &Audit, b: &Audit, compare_content: bool) -> DiffReport {
    let (ia, ib) = (&a.inventory, &b.inventory);

    let names = |inv: &Inventory| inv.repositories.iter().map(|r| r.name.clone()).collect::<BTreeSet<_>>();
    let (added, removed) = split(&names(ia), &names(ib));
    let repositories = Changes { added, removed };

    let (ta, tb) = (all_tags(ia), all_tags(ib));
    let entry = |(repo, tag): &(String, String), t: &Tag| TagEntry {
        repository: repo.clone(),
        tag: tag.clone(),
        digest: current_text(t),
    };
    let mut tags = TagChanges { added: Vec::new(), removed: Vec::new(), moved: Vec::new() };
    let mut history = Changes { added: Vec::new(), removed: Vec::new() };
    for (key, t) in &tb {
        if !ta.contains_key(key) {
            tags.added.push(entry(key, t));
        }
    }
    for (key, old) in &ta {
        let Some(new) = tb.get(key) else {
            tags.removed.push(entry(key, old));
            continue;
        };
        let (o, n) = (current_text(old), current_text(new));
        if o != n {
            tags.moved.push(TagMove { repository: key.0.clone(), tag: key.1.clone(), old: o, new: n });
        }
        let (ka, kb): (BTreeSet<_>, BTreeSet<_>) =
            (old.index.keys().cloned().collect(), new.index.keys().cloned().collect());
        let (added, removed) = split(&ka, &kb);
        let h = |digest| HistoryEntry { repository: key.0.clone(), tag: key.1.clone(), digest };
        history.added.extend(added.into_iter().map(h));
        history.removed.extend(removed.into_iter().map(h));
    }

    let revisions = |inv: &Inventory| {
        inv.repositories
            .iter()
            .flat_map(|r| r.revisions.keys().map(|d| (r.name.clone(), d.clone())))
            .collect::<BTreeSet<_>>()
    };
    let (added, removed) = split(&revisions(ia), &revisions(ib));
    let manifest = |inv: &Inventory, v: Vec<(String, Digest)>| {
        v.into_iter()
            .map(|(repository, digest)| ManifestEntry { size: inv.blob_size(&digest), repository, digest })
            .collect::<Vec<_>>()
    };
    let manifests = Changes { added: manifest(ib, added), removed: manifest(ia, removed) };

    let blob_set = |inv: &Inventory| inv.blobs.keys().cloned().collect::<BTreeSet<_>>();
    let (sa, sb) = (blob_set(ia), blob_set(ib));
    let (added, removed) = split(&sa, &sb);
    let sized = |inv: &Inventory, v: Vec<Digest>| {
        v.into_iter().map(|digest| BlobEntry { size: inv.blob_size(&digest).unwrap_or(0), digest }).collect::<Vec<_>>()
    };
    let (added, removed) = (sized(ib, added), sized(ia, removed));
    let blobs = BlobChanges {
        added_bytes: added.iter().map(|b| b.size).sum(),
        removed_bytes: removed.iter().map(|b| b.size).sum(),
        added,
        removed,
    };

    let upload_set = |inv: &Inventory| {
        inv.repositories
            .iter()
            .flat_map(|r| r.uploads.iter().map(|(u, up)| ((r.name.clone(), u.clone()), up.data_size)))
            .collect::<BTreeMap<_, _>>()
    };
    let (ua, ub) = (upload_set(ia), upload_set(ib));
    let upload = |((repository, uuid), size): (&(String, String), &Option<u64>)| UploadEntry {
        repository: repository.clone(),
        uuid: uuid.clone(),
        size: *size,
    };
    let uploads = Changes {
        added: ub.iter().filter(|(k, _)| !ua.contains_key(*k)).map(upload).collect(),
        removed: ua.iter().filter(|(k, _)| !ub.contains_key(*k)).map(upload).collect(),
    };

    let both: Vec<&Digest> = sa.intersection(&sb).collect();
    let mut content_differs: Vec<ContentDiff> =
        both.par_iter().filter_map(|d| compare_copies(a, b, d, compare_content)).collect();
    content_differs.sort_by(|x, y| x.digest.cmp(&y.digest));

    DiffReport {
        schema_version: SCHEMA_VERSION,
        target: a.target,
        root: a.root.path().display().to_string(),
        root_b: b.root.path().display().to_string(),
        content_compared: compare_content,
        identical: false,
        repositories,
        tags,
        tag_history: history,
        manifests,
        blobs,
        uploads,
        content_differs,
        filter: None,
    }
    .with_identical()
}

impl DiffReport {
    fn with_identical(mut self) -> DiffReport {
        self.identical = self.repositories.is_empty()
            && self.tags.added.is_empty()
            && self.tags.removed.is_empty()
            && self.tags.moved.is_empty()
            && self.tag_history.is_empty()
            && self.manifests.is_empty()
            && self.blobs.added.is_empty()
            && self.blobs.removed.is_empty()
            && self.uploads.is_empty()
            && self.content_differs.is_empty();
        self
    }
}

/// `--repo`: keeps the changes of the selected repositories (in either
/// tree) and of the blobs attributed to them in either tree; `identical`
/// then answers for what is shown, and `filter` says whether the whole
/// trees are.
pub fn filter(report: DiffReport, scope: &Scope) -> DiffReport {
    let whole_trees_identical = report.identical;
    let repo = |r: &str| scope.keeps_repository(r);
    let mut r = report;
    r.repositories.added.retain(|n| repo(n));
    r.repositories.removed.retain(|n| repo(n));
    r.tags.added.retain(|t| repo(&t.repository));
    r.tags.removed.retain(|t| repo(&t.repository));
    r.tags.moved.retain(|t| repo(&t.repository));
    r.tag_history.added.retain(|t| repo(&t.repository));
    r.tag_history.removed.retain(|t| repo(&t.repository));
    r.manifests.added.retain(|m| repo(&m.repository));
    r.manifests.removed.retain(|m| repo(&m.repository));
    r.uploads.added.retain(|u| repo(&u.repository));
    r.uploads.removed.retain(|u| repo(&u.repository));
    r.blobs.added.retain(|b| scope.blobs.contains(&b.digest));
    r.blobs.removed.retain(|b| scope.blobs.contains(&b.digest));
    r.blobs.added_bytes = r.blobs.added.iter().map(|b| b.size).sum();
    r.blobs.removed_bytes = r.blobs.removed.iter().map(|b| b.size).sum();
    r.content_differs.retain(|c| scope.blobs.contains(&c.digest));
    r.filter = Some(DiffFilter { scope: scope.note(), whole_trees_identical });
    r.with_identical()
}

/// Hashes a blob's data in one tree: Ok(matches its digest).
fn intact(audit: &Audit, d: &Digest) -> Result<bool, String> {
    let file = audit.root.open_blob(d).map_err(|e| e.to_string())?;
    let (actual, _) = copy_hashed(file, d.algorithm(), None).map_err(|e| e.to_string())?;
    Ok(actual == *d)
}

fn compare_copies(a: &Audit, b: &Audit, d: &Digest, hash: bool) -> Option<ContentDiff> {
    let size_a = a.inventory.blob_size(d)?;
    let size_b = b.inventory.blob_size(d)?;
    let mut diff =
        ContentDiff { digest: d.clone(), size_a, size_b, a_intact: None, b_intact: None, reason: String::new() };
    if !hash {
        if size_a == size_b {
            return None;
        }
        diff.reason = format!("sizes differ: {size_a} B in A, {size_b} B in B");
        return Some(diff);
    }
    let (ra, rb) = (intact(a, d), intact(b, d));
    diff.a_intact = ra.as_ref().ok().copied();
    diff.b_intact = rb.as_ref().ok().copied();
    let state = |r: &Result<bool, String>| match r {
        Ok(true) => "intact".to_string(),
        Ok(false) => "corrupt (does not hash to its digest)".to_string(),
        Err(e) => format!("unreadable ({e})"),
    };
    // Two intact copies are the same bytes; anything else is a finding,
    // except two copies corrupt the same way, which is no difference.
    match (&ra, &rb) {
        (Ok(true), Ok(true)) => return None,
        (Ok(false), Ok(false)) if size_a == size_b && same_bytes(a, b, d) => return None,
        _ => {}
    }
    let sizes = if size_a == size_b { String::new() } else { format!("sizes differ ({size_a} B vs {size_b} B); ") };
    diff.reason = format!("{sizes}A is {}, B is {}", state(&ra), state(&rb));
    Some(diff)
}

/// Both copies corrupt: whether they are at least corrupt the same way.
fn same_bytes(a: &Audit, b: &Audit, d: &Digest) -> bool {
    let hash = |audit: &Audit| {
        let file = audit.root.open_blob(d).ok()?;
        copy_hashed(file, d.algorithm(), None).ok().map(|(h, _)| h)
    };
    matches!((hash(a), hash(b)), (Some(x), Some(y)) if x == y)
}
