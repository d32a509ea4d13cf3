//! `regaudit tags`: every tag resolved as the registry of the target would
//! serve it, with its OCI referrers.

use std::collections::{BTreeSet, HashMap};

use super::problems;
use crate::audit::Audit;
use crate::digest::Digest;
use crate::report::tags::TagsReport;
use crate::report::SCHEMA_VERSION;
use crate::resolve::{ResolvedTag, Resolver, Role};
use crate::select::Selection;

/// Unknown repository names in the filter, for a clear error.
pub fn unknown_repositories<'a>(audit: &Audit, filter: &'a [String]) -> Vec<&'a str> {
    filter.iter().filter(|r| audit.inventory.repository(r).is_none()).map(String::as_str).collect()
}

/// Resolves every tag of the selected repositories (all when `filter` is
/// empty) in order, handing each to `visit` with its tree. One tag at a
/// time, so that memory does not grow with the number of trees.
pub fn for_each_tag(audit: &Audit, filter: &[String], mut visit: impl FnMut(ResolvedTag)) {
    let server = audit.server();
    let resolver = Resolver::new(&server);
    for repo in audit.inventory.repositories.iter().filter(|r| filter.is_empty() || filter.contains(&r.name)) {
        for tag in repo.tags.keys() {
            let mut t = resolver.tag(repo, tag);
            if audit.verification.is_some() {
                t.intact = match &t.tree {
                    Some(tree) => audit.intact(tree.digests()),
                    None => Some(false),
                };
            }
            visit(t);
        }
    }
}

/// Every digest the selected tags reach.
pub fn reachable_digests(audit: &Audit, filter: &[String], select: &Selection) -> BTreeSet<Digest> {
    let mut out = BTreeSet::new();
    for_each_tag(audit, filter, |t| {
        if select.keeps_tag(&t.tag) {
            out.extend(t.tree.iter().flat_map(|tree| tree.digests().cloned()))
        }
    });
    out
}

/// The tags of the `filter` repositories (all when empty) that `select`'s
/// `--tag` globs keep. The problems shown are those of the repositories.
/// How many revisions of each repository name each manifest as `subject`.
fn referrer_counts(audit: &Audit) -> HashMap<(&str, Digest), usize> {
    let mut out = HashMap::new();
    for repo in &audit.inventory.repositories {
        for (path, link) in repo.revisions.iter() {
            let digest = link.ok().unwrap_or(path);
            let Some(Ok(m)) = audit.contents.manifest(digest) else { continue };
            if let Some(subject) = m.subject().and_then(|s| s.digest.clone()) {
                *out.entry((repo.name.as_str(), subject)).or_default() += 1;
            }
        }
    }
    out
}

pub fn build(audit: &Audit, filter: &[String], select: &Selection) -> TagsReport {
    let mut tags = Vec::new();
    let mut reached = BTreeSet::new();
    let referrers = referrer_counts(audit);
    for_each_tag(audit, filter, |mut t| {
        if !select.keeps_tag(&t.tag) {
            return;
        }
        let manifests =
            t.tree.iter().flat_map(|tree| tree.walk()).filter(|n| matches!(n.role, Role::Manifest | Role::Child));
        t.referrers = manifests
            .filter_map(|n| n.parsed_digest.clone())
            .map(|d| referrers.get(&(t.repository.as_str(), d)).copied().unwrap_or(0))
            .sum();
        if !filter.is_empty() {
            reached.extend(t.tree.iter().flat_map(|tree| tree.digests().cloned()));
        }
        tags.push(ResolvedTag { tree: None, ..t })
    });
    // Given repositories, the problems shown (and counted) are theirs.
    let problems = if filter.is_empty() {
        audit.problems.clone()
    } else {
        let selected: Vec<&str> = filter.iter().map(String::as_str).collect();
        problems::of_selection(&audit.problems, &audit.inventory.repositories, &selected, &reached)
    };
    TagsReport {
        schema_version: SCHEMA_VERSION,
        target: audit.target,
        root: audit.root.path().display().to_string(),
        tags,
        problems,
        interrupted: audit.verification.as_ref().is_some_and(|v| v.interrupted),
    }
}
