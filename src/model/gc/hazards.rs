//! Hazards: what the run deletes that something still needs (not the
//! registry's rule, regaudit's warning about it).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::{Hazard, HazardCode, Sim};
use crate::digest::Digest;
use crate::layout;

impl<'a> Sim<'a> {
    pub(super) fn hazards(&mut self) {
        let inv = self.inv;
        if !self.out.blobs.is_empty() {
            let notes = std::mem::take(&mut self.unseen_layer_links);
            self.out
                .unmodelled
                .extend(notes.into_iter().map(|n| format!("{n}: the hazards of the deleted blobs may miss it")));
            for f in std::mem::take(&mut self.unread_layer_links) {
                self.out.unmodelled.push(format!(
                    "{}: cannot be read ({}); the real run does not read it, but the hazards of the deleted blobs may miss the links it holds",
                    f.path, f.error
                ));
            }
        }
        // Only blobs whose path spells a valid digest can be referenced.
        let deleted_blobs: HashSet<Digest> =
            self.out.blobs.iter().filter_map(|b| Digest::parse(&b.digest).ok()).collect();
        let removed_links: BTreeSet<(&str, &Digest)> =
            self.out.layer_links.iter().map(|l| (l.repository.as_str(), &l.digest)).collect();
        let deleted_manifests: BTreeSet<(&str, &Digest)> =
            self.out.manifests.iter().map(|m| (m.repository.as_str(), &m.digest)).collect();
        let mut hazards = Vec::new();

        // Links left behind, and who still links each deleted blob.
        let mut linked_by: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for repo in &inv.repositories {
            for (path_digest, link) in &repo.layer_links {
                let Ok(d) = link else { continue };
                if !deleted_blobs.contains(d) || removed_links.contains(&(repo.name.as_str(), d)) {
                    continue;
                }
                linked_by.entry(d.to_string()).or_default().insert(repo.name.clone());
                hazards.push(Hazard {
                    code: HazardCode::LayerLinkDangling,
                    message: format!(
                        "{} is left pointing at the deleted blob {d}",
                        layout::layer_link(&repo.name, path_digest)
                    ),
                    repository: Some(repo.name.clone()),
                    digest: Some(d.to_string()),
                });
            }
        }
        for b in &mut self.out.blobs {
            b.linked_by = linked_by.get(&b.digest).map(|s| s.iter().cloned().collect()).unwrap_or_default();
            if !b.linked_by.is_empty() {
                hazards.push(Hazard {
                    code: HazardCode::LinkedBlobDeleted,
                    message: format!(
                        "blob {} is deleted although {} still {} it",
                        b.digest,
                        b.linked_by.join(", "),
                        if b.linked_by.len() == 1 { "links" } else { "link" }
                    ),
                    repository: None,
                    digest: Some(b.digest.clone()),
                });
            }
        }

        // Manifests that stay, and what of theirs goes.
        for repo in &inv.repositories {
            for (rev, link) in &repo.revisions {
                let Ok(d) = link else { continue };
                if deleted_manifests.contains(&(repo.name.as_str(), d)) || !inv.has_blob(d) {
                    continue;
                }
                let Some(Ok(m)) = self.contents.manifest(d) else { continue };
                let tags: Vec<&String> = repo
                    .tags
                    .iter()
                    .filter(|(_, t)| matches!(&t.current, Some(Ok(c)) if c == rev))
                    .map(|(n, _)| n)
                    .collect();
                if deleted_blobs.contains(d) {
                    hazards.push(Hazard {
                        code: HazardCode::LiveBlobDeleted,
                        message: format!(
                            "the data of manifest {d} in {} is deleted, its revision link stays",
                            repo.name
                        ),
                        repository: Some(repo.name.clone()),
                        digest: Some(d.to_string()),
                    });
                }
                for r in m.references() {
                    let Some(child) = &r.digest else { continue };
                    if m.kind.is_index() && deleted_manifests.contains(&(repo.name.as_str(), child)) {
                        let platform = r.platform().map(|p| format!(" ({p})")).unwrap_or_default();
                        let whose = if tags.is_empty() {
                            format!("index {d}")
                        } else {
                            format!(
                                "{}:{} ({d})",
                                repo.name,
                                tags.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(",")
                            )
                        };
                        hazards.push(Hazard {
                            code: HazardCode::MultiArchChildDeleted,
                            message: format!(
                                "child {child}{platform} of {whose} is deleted; pulls of that platform will fail"
                            ),
                            repository: Some(repo.name.clone()),
                            digest: Some(child.to_string()),
                        });
                    } else if !m.kind.is_index() && deleted_blobs.contains(child) {
                        hazards.push(Hazard {
                            code: HazardCode::LiveBlobDeleted,
                            message: format!(
                                "blob {child} is deleted although manifest {d} in {} references it",
                                repo.name
                            ),
                            repository: Some(repo.name.clone()),
                            digest: Some(child.to_string()),
                        });
                    }
                }
            }
        }
        for m in &self.out.manifests {
            if let Some(subject) = &m.subject {
                hazards.push(Hazard {
                    code: HazardCode::ReferrerSwept,
                    message: format!(
                        "untagged referrer {} (of {subject}) in {} is deleted with its blobs",
                        m.digest, m.repository
                    ),
                    repository: Some(m.repository.clone()),
                    digest: Some(m.digest.to_string()),
                });
            }
        }
        hazards.sort_by(|a, b| (a.code, &a.repository, &a.digest).cmp(&(b.code, &b.repository, &b.digest)));
        hazards.dedup();
        self.out.hazards.append(&mut hazards);
    }
}
