//! `regaudit inspect`: one reference's tree, its problems and referrers.

use std::collections::BTreeSet;

use super::problems;
use super::reference::Reference;
use crate::audit::Audit;
use crate::digest::Digest;
use crate::report::inspect::{InspectReport, Referrer};
use crate::report::SCHEMA_VERSION;
use crate::resolve::{Node, Resolver, Role};

/// The revisions of `repo` whose `subject` names one of `subjects`.
fn referrers(audit: &Audit, repo: &crate::inventory::Repository, subjects: &BTreeSet<&Digest>) -> Vec<Referrer> {
    let mut out = Vec::new();
    for (path, link) in repo.revisions.iter() {
        let digest = link.ok().unwrap_or(path).clone();
        let Some(Ok(m)) = audit.contents.manifest(&digest) else { continue };
        let Some(subject) = m.subject().and_then(|s| s.digest.clone()) else { continue };
        if !subjects.contains(&subject) {
            continue;
        }
        let tags = repo
            .tags
            .iter()
            .filter(|(_, t)| t.current.as_ref().and_then(|c| c.as_ref().ok()) == Some(&digest))
            .map(|(name, _)| name.clone())
            .collect();
        out.push(Referrer { digest, subject, artifact_type: m.artifact_type().to_string(), tags });
    }
    out
}

/// Every digest the reference reaches (to verify before building the report).
pub fn reachable_digests(audit: &Audit, reference: &Reference) -> BTreeSet<Digest> {
    let Some(repo) = audit.inventory.repository(reference.repository()) else { return BTreeSet::new() };
    let server = audit.server();
    let resolver = Resolver::new(&server);
    let tree = match reference {
        Reference::Tag { tag, .. } => resolver.tag(repo, tag).tree.map(|t| *t),
        Reference::Digest { digest, .. } => Some(resolver.manifest(repo, digest)),
    };
    tree.iter().flat_map(|t| t.digests().cloned()).collect()
}

pub fn build(audit: &Audit, reference: &Reference) -> Result<InspectReport, String> {
    let repo = audit.repository(reference.repository())?;
    let server = audit.server();
    let resolver = Resolver::new(&server);
    let (tag, digest, tree, history, not_served): (_, _, Option<Node>, _, _) = match reference {
        Reference::Tag { tag, .. } => {
            if !repo.tags.contains_key(tag) {
                return Err(format!("no tag {tag:?} in repository {:?}", repo.name));
            }
            let t = resolver.tag(repo, tag);
            (Some(tag.clone()), t.digest, t.tree.map(|t| *t), t.history, t.not_served)
        }
        Reference::Digest { digest, .. } => {
            let tree = resolver.manifest(repo, digest);
            let failures = tree.failures();
            (None, Some(digest.clone()), Some(tree), Vec::new(), failures)
        }
    };
    let mut tree = tree;
    if let (Some(t), Some(v)) = (tree.as_mut(), audit.verification.as_ref()) {
        v.annotate(t);
    }
    let problems = problems::of_selection(
        &audit.problems,
        &audit.inventory.repositories,
        &[&repo.name],
        tree.iter().flat_map(|t| t.walk()).filter_map(|n| n.parsed_digest.as_ref()),
    );
    let subjects: BTreeSet<&Digest> = tree
        .iter()
        .flat_map(|t| t.walk())
        .filter(|n| matches!(n.role, Role::Manifest | Role::Child))
        .filter_map(|n| n.parsed_digest.as_ref())
        .collect();
    let referrers = referrers(audit, repo, &subjects);
    Ok(InspectReport {
        referrers,
        schema_version: SCHEMA_VERSION,
        target: audit.target,
        root: audit.root.path().display().to_string(),
        reference: reference.to_string(),
        repository: repo.name.clone(),
        tag,
        digest,
        served: tree.as_ref().is_some_and(Node::served),
        served_unknown: tree.as_ref().is_some_and(Node::served_unknown),
        intact: match &tree {
            Some(t) => audit.intact(t.digests()),
            None => audit.verification.as_ref().map(|_| false),
        },
        not_served,
        history,
        tree,
        problems,
        interrupted: audit.verification.as_ref().is_some_and(|v| v.interrupted),
    })
}
