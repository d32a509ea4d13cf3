//! The tag lookup of `--delete-untagged` (registry/storage/tagstore.go
//! `Lookup`, `All`): which tags name a manifest, and the aborts on the way.

use super::go_errors::{abort, link_error_text};
use super::{Sim, Stage, Step};
use crate::digest::{Digest, LinkError};
use crate::inventory::{FaultOp, Repository};
use crate::layout;

impl<'a> Sim<'a> {
    /// `Tags.Lookup`: the tags whose `current` names `d`.
    pub(super) fn lookup(&mut self, repo: &Repository, d: &Digest) -> Step<Vec<String>> {
        let mut found = Vec::new();
        // tagstore.go Lookup: lists tags/, then reads each tag's current/link.
        let prefix = format!(
            "failed to garbage collect: failed to mark: filesystem: filesystem: failed to retrieve tags for digest {d}: filesystem: open"
        );
        let tags_dir = format!("{}/_manifests/tags", layout::repo_dir(&repo.name));
        if let Some(f) = self.inv.unreachable(&tags_dir).or_else(|| self.inv.fault_at(&tags_dir)).cloned() {
            let message = format!("{prefix} {}: {}", self.abs(&tags_dir), f.error);
            self.read_fault(Stage::Mark, &f, message)?;
        }
        for tag in repo.tags.keys() {
            let link = layout::tag_current_link(&repo.name, tag);
            let fault = self.inv.unreachable(&link).or_else(|| self.inv.fault_at(&link)).cloned();
            if let Some(f) = fault {
                if f.op == FaultOp::List && f.traversable {
                    self.out.unmodelled.push(format!(
                        "{}: cannot be listed ({}), but the real run reads {link} through it, which was not read",
                        f.path, f.error
                    ));
                    continue;
                }
                let message = format!("{prefix} {}: {}", self.abs(&link), f.error);
                self.read_fault(Stage::Mark, &f, message)?;
            }
        }
        let files = self.walk.tags_dirs.get(&repo.name).cloned().unwrap_or_default();
        if let Some(file) = files.first() {
            let path = format!("{}/current/link", layout::tag_dir(&repo.name, file));
            let message = format!("failed to garbage collect: failed to mark: filesystem: filesystem: failed to retrieve tags for digest {d}: filesystem: open /docker/registry/v2/repositories/{}/_manifests/tags/{file}/current/link: not a directory", repo.name);
            self.fail(
                abort(Stage::Mark, format!("tags/{file} is a file, not a tag directory"), path, message),
                "the stray file is removed",
            )?;
        }
        // Tag directories whose names the walk could not keep (not UTF-8):
        // the driver refuses their paths as it refuses any other byte
        // outside its set.
        let tags_prefix = format!("{}/_manifests/tags/", layout::repo_dir(&repo.name));
        let unkept: Vec<String> = self
            .inv
            .problems
            .iter()
            .filter(|p| p.code == crate::problem::Code::NonUtf8Name)
            .filter_map(|p| p.path.strip_prefix(&tags_prefix).filter(|t| !t.contains('/')).map(str::to_string))
            .collect();
        let refused = repo.tags.keys().filter(|t| !layout::storage_path_is_valid(t)).chain(&unkept);
        if let Some(tag) = refused.min() {
            // tagstore.go Lookup reads each tag's current link through the
            // driver, whose PathRegexp refuses the path.
            let path = layout::tag_current_link(&repo.name, tag);
            let message = format!(
                "failed to garbage collect: failed to mark: filesystem: filesystem: failed to retrieve tags for digest {d}: filesystem: invalid path: /{path}"
            );
            self.fail(
                abort(Stage::Mark, format!("tag {tag:?} is not a valid storage path"), path, message),
                "the tag directory is removed or renamed",
            )?;
        }
        for (tag, t) in &repo.tags {
            // tagstore.go Lookup reads every tag's current link.
            if repo.link_dirs.iter().any(|p| {
                p.strip_prefix("_manifests/tags/").and_then(|r| r.strip_suffix("/current/link")) == Some(tag.as_str())
            }) {
                let path = layout::tag_current_link(&repo.name, tag);
                let message = format!(
                    "failed to garbage collect: failed to mark: filesystem: filesystem: failed to retrieve tags for digest {d}: filesystem: read {}: is a directory",
                    self.abs(&path)
                );
                self.fail(
                    abort(Stage::Mark, format!("tag {tag}'s current link is a directory"), path, message),
                    "the directory is replaced by the link it should be (or the tag removed)",
                )?;
                continue;
            }
            match &t.current {
                Some(Ok(c)) if c == d => found.push(tag.clone()),
                None | Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let message = format!(
                        "failed to garbage collect: failed to mark: filesystem: filesystem: failed to retrieve tags for digest {d}: {}",
                        link_error_text(e)
                    );
                    let path = layout::tag_current_link(&repo.name, tag);
                    self.fail(
                        abort(Stage::Mark, format!("tag {tag}'s current link {e}"), path, message),
                        "tag links are rewritten without the stray whitespace (or removed when that does not make a digest)",
                    )?;
                    // The fixed link: what it holds once trimmed.
                    if self.fixed_tag_target(repo, tag).as_ref() == Some(d) {
                        found.push(tag.clone());
                    }
                }
            }
        }
        Ok(found)
    }

    /// What a broken tag link names once trimmed: the tag's newest history
    /// entry is not known, so only the trimmed text counts.
    pub(super) fn fixed_tag_target(&self, repo: &Repository, tag: &str) -> Option<Digest> {
        // The inventory keeps only the parse error; the history index tells
        // us the candidates. A trailing-whitespace link names one of them.
        let t = repo.tags.get(tag)?;
        match &t.current {
            Some(Err(LinkError::TrailingWhitespace)) => {
                // Unique history entry: that is the digest the link names.
                let mut live = t.index.values().filter_map(Result::ok);
                let first = live.next()?.clone();
                live.next().is_none().then_some(first)
            }
            _ => None,
        }
    }

    pub(super) fn has_tags_dir(&self, repo: &str) -> bool {
        self.walk.tags_dirs.contains_key(repo)
    }

    /// All tag names (`Tags.All`), sorted.
    pub(super) fn all_tags(&self, repo: &Repository) -> Vec<String> {
        let mut tags: Vec<String> = repo.tags.keys().cloned().collect();
        tags.extend(self.walk.tags_dirs.get(&repo.name).into_iter().flatten().cloned());
        tags.sort();
        tags.dedup();
        tags
    }
}
