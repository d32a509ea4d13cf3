//! v3's `_layers` check after marking a repository (docs/registry-rules.md
//! §6.2; registry/storage/garbagecollect.go `MarkAndSweep` at v3.1.1, see
//! `Target::gc_checks_layer_links`).

use super::go_errors::{abort, link_error_text};
use super::{Sim, Stage, Step};
use crate::digest::Digest;
use crate::inventory::{ReadFault, Repository, StrayLink};
use crate::layout;

impl<'a> Sim<'a> {
    /// v3 only: after marking a repository, queue its `_layers` links whose
    /// blob is not marked *yet*.
    pub(super) fn layer_link_check(&mut self, name: &str, repo: Option<&'a Repository>) -> Step<()> {
        let layers = format!("{}/_layers", layout::repo_dir(name));
        let faults: Vec<ReadFault> = self.inv.faults_below(&layers).cloned().collect();
        if !self.opts.target.gc_checks_layer_links() {
            // 2.8's run never reads `_layers`; only our hazards would.
            self.unread_layer_links.extend(faults);
            return Ok(());
        }
        let mut faults = faults.into_iter().peekable();
        if !repo.is_some_and(|r| r.has_layers_dir) {
            let path = format!("{}/_layers", layout::repo_dir(name));
            let message = format!(
                "failed to garbage collect: failed to mark: filesystem: Path not found: /docker/registry/v2/repositories/{name}/_layers"
            );
            return self.fail(
                abort(Stage::Mark, format!("{name} has no _layers directory"), path, message),
                "an empty _layers directory is created",
            );
        }
        let Some(repo) = repo else { return Ok(()) };
        let mut strays = repo.stray_links.iter().filter(|s| s.path.starts_with("_layers/")).peekable();
        for (path_digest, link) in &repo.layer_links {
            let path = layout::layer_link(name, path_digest);
            self.strays_before(repo, &mut strays, Some(&path), &mut faults, Self::stray_layer_link)?;
            self.faults_before(&mut faults, Some(&path), &Self::walk_fault_message)?;
            let content = match link {
                Ok(d) => d.clone(),
                Err(e) => {
                    let message = format!("failed to garbage collect: failed to mark: {}", link_error_text(e));
                    self.fail(
                        abort(Stage::Mark, format!("layer link {e}"), path, message),
                        "the link is rewritten to hold the digest its path names",
                    )?;
                    path_digest.clone()
                }
            };
            self.layer_link(repo, content, path_digest)?;
        }
        self.strays_before(repo, &mut strays, None, &mut faults, Self::stray_layer_link)?;
        self.faults_before(&mut faults, None, &Self::walk_fault_message)
    }

    /// A stray `link` below `_layers` (v3): enumerated like any other.
    pub(super) fn stray_layer_link(&mut self, repo: &'a Repository, s: &StrayLink, path: &str) -> Step<()> {
        match &s.link {
            Ok(d) => self.layer_link(repo, d.clone(), d),
            Err(e) => {
                let message = format!("failed to garbage collect: failed to mark: {}", link_error_text(e));
                self.fail(
                    abort(Stage::Mark, format!("stray layer link {e}"), path, message),
                    "the stray link is removed",
                )
            }
        }
    }

    /// One enumerated `_layers` link holding `content`: stat'ed through the
    /// layout's link of that digest, queued when its blob is not marked.
    pub(super) fn layer_link(&mut self, repo: &'a Repository, content: Digest, path_digest: &Digest) -> Step<()> {
        let name = &repo.name;
        self.stat_through_dir(repo, &layout::layer_link(name, &content))?;
        let linked = match repo.layer_links.get(&content) {
            Some(Ok(t)) => {
                self.stat_blob(t)?;
                self.inv.has_blob(t)
            }
            Some(Err(_)) if &content != path_digest => {
                let message = "failed to garbage collect: failed to mark: invalid checksum digest format".to_string();
                let path = layout::layer_link(name, &content);
                self.fail(
                    abort(Stage::Mark, "layer link is not a digest".to_string(), path, message),
                    "the link is rewritten to hold the digest its path names",
                )?;
                self.inv.has_blob(&content)
            }
            Some(Err(_)) => self.inv.has_blob(&content),
            None => false,
        };
        if linked && !self.marks.contains(&content) {
            self.layer_deletes.push((name.to_string(), content));
        }
        Ok(())
    }
}
