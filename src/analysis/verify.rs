//! `regaudit verify`: which blobs to hash, and which tags each damaged or
//! missing blob breaks.

use std::collections::{BTreeMap, BTreeSet};

use super::problems;
use super::tags::for_each_tag;
use crate::audit::Audit;
use crate::digest::Digest;
use crate::report::verify::{Damaged, VerifyReport};
use crate::report::SCHEMA_VERSION;
use crate::resolve::Resolver;
use crate::verify::Outcome;

/// The blobs to hash: all of the tree, or what the given repositories reach
/// from their revisions and link in `_layers`.
pub fn blobs_to_verify(audit: &Audit, filter: &[String]) -> BTreeSet<Digest> {
    if filter.is_empty() {
        return audit.inventory.blobs.keys().cloned().collect();
    }
    let server = audit.server();
    let resolver = Resolver::new(&server);
    let mut out = BTreeSet::new();
    for repo in audit.inventory.repositories.iter().filter(|r| filter.contains(&r.name)) {
        for d in repo.revisions.keys() {
            out.extend(resolver.manifest(repo, d).digests().cloned());
        }
        out.extend(repo.layer_links.values().filter_map(Result::ok).cloned());
    }
    out
}

pub fn build(audit: &Audit, filter: &[String]) -> VerifyReport {
    let v = audit.verification.as_ref().expect("verify runs before its report");
    // Which tags reach each digest, and which reached digests have no data.
    let mut breaks: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    let mut missing: BTreeSet<Digest> = BTreeSet::new();
    for_each_tag(audit, filter, |t| {
        let Some(tree) = &t.tree else { return };
        for n in tree.walk() {
            if let Some(d) = &n.parsed_digest {
                breaks.entry(d.clone()).or_default().push(format!("{}:{}", t.repository, t.tag));
                if !n.present && !n.foreign {
                    missing.insert(d.clone());
                }
            }
        }
    });
    let tags_of = |d: &Digest| {
        let mut t = breaks.get(d).cloned().unwrap_or_default();
        t.dedup();
        t
    };
    let mut damaged: Vec<Damaged> = missing
        .iter()
        .map(|d| Damaged { digest: d.to_string(), size: None, state: "missing", breaks: tags_of(d) })
        .collect();
    damaged.extend(v.blobs.values().filter(|c| !c.is_intact() && c.outcome != Outcome::NotChecked).map(|c| Damaged {
        digest: c.digest.to_string(),
        size: Some(c.size),
        state: c.state(),
        breaks: tags_of(&c.digest),
    }));
    VerifyReport {
        schema_version: SCHEMA_VERSION,
        target: audit.target,
        root: audit.root.path().display().to_string(),
        repositories: filter.to_vec(),
        blobs_checked: v.blobs.values().filter(|c| c.outcome != Outcome::NotChecked).count(),
        bytes_hashed: v.bytes_hashed,
        interrupted: v.interrupted,
        intact: v.blobs.values().filter(|c| c.is_intact()).count(),
        damaged,
        // Given repositories, the problems shown (and counted) are theirs
        // and those of the blobs hashed for them.
        problems: if filter.is_empty() {
            audit.problems.clone()
        } else {
            let selected: Vec<&str> = filter.iter().map(String::as_str).collect();
            problems::of_selection(&audit.problems, &audit.inventory.repositories, &selected, v.blobs.keys())
        },
    }
}
