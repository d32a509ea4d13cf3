//! Marking (docs/registry-rules.md §6.1; registry/storage/garbagecollect.go
//! `MarkAndSweep`): every repository's revisions, resolved, loaded, and
//! their references marked; with `--delete-untagged`, untagged ones queued.
//! [`marked_blobs`] is the same rule for one repository on its own, without
//! aborts, for `du`.

use std::collections::BTreeSet;

use super::go_errors::{abort, link_error_text, walk_op};
use super::walk::walk_order;
use super::{Queued, Sim, Stage, Step, WalkStep};
use crate::contents::Contents;
use crate::digest::{Digest, LinkError};
use crate::inventory::{FaultOp, Inventory, LinkRef, ReadFault, Repository, StrayLink};
use crate::layout;
use crate::manifest::{Manifest, ManifestKind};
use crate::model::rules::SCHEMA1_GO_ERROR;
use crate::model::serve::LinkedBy;
use crate::model::Target;

impl<'a> Sim<'a> {
    pub(super) fn mark_all(&mut self) -> Step<()> {
        if !self.walk.repositories_dir {
            let path = format!("{}/repositories", layout::V2);
            self.fail(
                abort(
                    Stage::Mark,
                    "there is no repositories/ directory",
                    path,
                    "failed to garbage collect: failed to mark: filesystem: Path not found: /docker/registry/v2/repositories",
                ),
                "repositories/ is created empty",
            )?;
        }
        for step in self.walk_repositories() {
            match step {
                WalkStep::Repository(name) => {
                    self.out.repositories.push(name.clone());
                    log!(self, "{name}");
                    self.mark_repository(&name)?;
                }
                WalkStep::Fault(f) => {
                    // registry/storage/catalog.go: the walk's List fails.
                    let message = format!(
                        "failed to garbage collect: failed to mark: filesystem: {} {}: {}",
                        walk_op(&f),
                        self.abs(&f.path),
                        f.error
                    );
                    self.read_fault(Stage::Mark, &f, message)?;
                }
            }
        }
        Ok(())
    }

    /// The faults a repository's marking meets in `_manifests/revisions`
    /// (the manifest enumeration walks it), in path order; Ok(None) when
    /// what it holds cannot be known.
    pub(super) fn revision_faults(&mut self, name: &str) -> Step<Vec<ReadFault>> {
        let manifests = format!("{}/_manifests", layout::repo_dir(name));
        let revisions = format!("{manifests}/revisions");
        if let Some(f) = self.inv.fault_at(&manifests).filter(|f| f.op == FaultOp::List).cloned() {
            if f.traversable {
                self.out.unmodelled.push(format!(
                    "{manifests}: cannot be listed ({}), but the real run can still reach revisions/ below it, which was not read",
                    f.error
                ));
            } else {
                // linkedblobstore.go Enumerate: the walk opens revisions/ itself.
                let message = format!(
                    "failed to garbage collect: failed to mark: filesystem: filesystem: open {}: {}",
                    self.abs(&revisions),
                    f.error
                );
                self.read_fault(Stage::Mark, &f, message)?;
            }
        }
        Ok(self.inv.faults_below(&revisions).cloned().collect())
    }

    /// Go's message for a fault met while walking revisions or `_layers`.
    pub(super) fn walk_fault_message(&self, f: &ReadFault) -> String {
        let (extra, op) = match f.op {
            FaultOp::List => ("", walk_op(f)),
            FaultOp::Read => ("filesystem: ", "open"),
            FaultOp::Stat => ("filesystem: ", "stat"),
        };
        format!(
            "failed to garbage collect: failed to mark: filesystem: filesystem: {extra}{op} {}: {}",
            self.abs(&f.path),
            f.error
        )
    }

    pub(super) fn mark_repository(&mut self, name: &str) -> Step<()> {
        let dir = layout::repo_dir(name);
        // garbagecollect.go: reference.WithName, then the driver's path check.
        if let Some(why) = layout::repository_name_error(name, self.opts.target) {
            let message = format!(
                "failed to garbage collect: failed to mark: filesystem: failed to parse repo name {name}: {why}"
            );
            self.fail(
                abort(Stage::Mark, format!("repository name {name:?} is refused: {why}"), dir, message),
                "the repository directory is removed or renamed (its manifests are not marked here)",
            )?;
            return Ok(());
        }
        if !layout::storage_path_is_valid(name) {
            let message = format!("failed to garbage collect: failed to mark: filesystem: invalid path: /docker/registry/v2/repositories/{name}/_manifests/revisions");
            self.fail(
                abort(Stage::Mark, format!("repository name {name:?} is not a valid storage path"), dir, message),
                "the repository directory is removed or renamed (its manifests are not marked here)",
            )?;
            return Ok(());
        }
        let inv = self.inv;
        let mut faults = self.revision_faults(name)?.into_iter().peekable();
        let Some(repo) = inv.repository(name) else {
            // A marker without any repository data: nothing to enumerate.
            self.faults_before(&mut faults, None, &Self::walk_fault_message)?;
            return self.layer_link_check(name, None);
        };
        // Every `link` below revisions/, in the walk's order: the layout's
        // own, signature links of 2.0-2.4, and strays (`<hex>.bak/link`).
        let mut strays = repo.stray_links.iter().filter(|s| s.path.starts_with("_manifests/revisions/")).peekable();
        for (path_digest, link) in &repo.revisions {
            let path = layout::revision_link(name, path_digest);
            self.strays_before(repo, &mut strays, Some(&path), &mut faults, Self::stray_revision_link)?;
            self.faults_before(&mut faults, Some(&path), &Self::walk_fault_message)?;
            self.revision_link(repo, link, path_digest, &|| layout::revision_link(name, path_digest))?;
            for (rev, sig) in repo.signature_links.iter().filter(|(r, _)| r == path_digest) {
                let path = layout::signature_link(name, rev, sig);
                self.strays_before(repo, &mut strays, Some(&path), &mut faults, Self::stray_revision_link)?;
                self.revision_link(repo, Ok(sig), sig, &|| layout::signature_link(name, rev, sig))?;
            }
        }
        self.strays_before(repo, &mut strays, None, &mut faults, Self::stray_revision_link)?;
        self.faults_before(&mut faults, None, &Self::walk_fault_message)?;
        self.layer_link_check(name, Some(repo))
    }

    /// Handles, in the walk's order, the stray links that come before `upto`
    /// (all when None), with the faults met on the way.
    pub(super) fn strays_before<'s>(
        &mut self,
        repo: &'a Repository,
        strays: &mut std::iter::Peekable<impl Iterator<Item = &'s StrayLink>>,
        upto: Option<&str>,
        faults: &mut std::iter::Peekable<std::vec::IntoIter<ReadFault>>,
        handle: fn(&mut Self, &'a Repository, &StrayLink, &str) -> Step<()>,
    ) -> Step<()> {
        let dir = layout::repo_dir(&repo.name);
        while let Some(s) = strays.peek() {
            let path = format!("{dir}/{}", s.path);
            if upto.is_some_and(|u| walk_order(&path, u) != std::cmp::Ordering::Less) {
                break;
            }
            let s = strays.next().expect("peeked");
            self.faults_before(faults, Some(&path), &Self::walk_fault_message)?;
            handle(self, repo, s, &path)?;
        }
        Ok(())
    }

    /// A stray `link` below revisions/: enumerated like any other; its
    /// content is stat'ed through the layout's links.
    pub(super) fn stray_revision_link(&mut self, repo: &'a Repository, s: &StrayLink, path: &str) -> Step<()> {
        match &s.link {
            Ok(d) => {
                let Some(target) = self.resolve_manifest(repo, d)? else { return Ok(()) };
                self.ingest(repo, d, &target)
            }
            Err(e) => {
                let message = format!(
                    "failed to garbage collect: failed to mark: filesystem: filesystem: {}",
                    link_error_text(e)
                );
                self.fail(
                    abort(Stage::Mark, format!("stray revision link {e}"), path, message),
                    "the stray link is removed",
                )
            }
        }
    }

    /// Marking reads a link that is not a digest: the real run aborts.
    pub(super) fn invalid_link_while_marking(&mut self, reason: String, path: &str, e: &LinkError) -> Step<()> {
        let message =
            format!("failed to garbage collect: failed to mark: filesystem: filesystem: {}", link_error_text(e));
        self.fail(abort(Stage::Mark, reason, path, message), "the link is rewritten to hold the digest its path names")
    }

    /// One `link` file found under `_manifests/revisions`; `path` names it.
    pub(super) fn revision_link(
        &mut self,
        repo: &Repository,
        link: LinkRef,
        path_digest: &Digest,
        path: &dyn Fn() -> String,
    ) -> Step<()> {
        let content = match link {
            Ok(d) => d.clone(),
            Err(e) => {
                self.invalid_link_while_marking(format!("revision link {e}"), &path(), e)?;
                path_digest.clone()
            }
        };
        let Some(target) = self.resolve_manifest(repo, &content)? else {
            return Ok(()); // dangling: skipped silently
        };
        self.ingest(repo, &content, &target)
    }

    /// `Stat` of a manifest digest in a repository: the revision link, then
    /// (2.8) the `_layers` link; the data must exist. Ok(None) = unknown.
    pub(super) fn resolve_manifest(&mut self, repo: &Repository, d: &Digest) -> Step<Option<Digest>> {
        for &by in self.opts.target.manifest_links() {
            let revision = by == LinkedBy::Revision;
            let path = if revision { layout::revision_link(&repo.name, d) } else { layout::layer_link(&repo.name, d) };
            self.stat_through_dir(repo, &path)?;
            let link = if revision { repo.revisions.get(d) } else { repo.layer_links.get(d) };
            match link {
                None => continue,
                Some(Ok(t)) => {
                    self.stat_blob(t)?;
                    return Ok(self.inv.has_blob(t).then(|| t.clone()));
                }
                Some(Err(e)) => {
                    let path =
                        if revision { layout::revision_link(&repo.name, d) } else { layout::layer_link(&repo.name, d) };
                    self.invalid_link_while_marking(format!("link {e}"), &path, e)?;
                    return Ok(self.inv.has_blob(d).then(|| d.clone()));
                }
            }
        }
        Ok(None)
    }

    /// `Stat` reads the link at `path` (relative to the root): where a
    /// directory stands, the read fails and the run aborts.
    pub(super) fn stat_through_dir(&mut self, repo: &Repository, path: &str) -> Step<()> {
        let dir = layout::repo_dir(&repo.name);
        let rel = path.strip_prefix(&dir).and_then(|r| r.strip_prefix('/')).unwrap_or(path);
        if !repo.link_dirs.iter().any(|p| p == rel) {
            return Ok(());
        }
        let message = format!(
            "failed to garbage collect: failed to mark: filesystem: filesystem: filesystem: read {}: is a directory",
            self.abs(path)
        );
        self.fail(
            abort(Stage::Mark, format!("{path} is a directory, not a link"), path, message),
            "the directory is replaced by the link it should be",
        )
    }

    /// One enumerated manifest digest (`content`), whose data is `target`.
    pub(super) fn ingest(&mut self, repo: &Repository, content: &Digest, target: &Digest) -> Step<()> {
        let name = repo.name.clone();
        if self.opts.delete_untagged {
            let tags = self.lookup(repo, content)?;
            if tags.is_empty() {
                if !self.opts.target.gc_keeps_marked_queued_manifests() {
                    log!(self, "manifest eligible for deletion: {content}");
                }
                if !self.has_tags_dir(&name) {
                    if !self.opts.target.gc_aborts_without_tags_dir() {
                        log!(self, "manifest tags path of repository {name} does not exist");
                        return Ok(());
                    }
                    let path = format!("{}/_manifests/tags", layout::repo_dir(&name));
                    let message = format!(
                        "failed to garbage collect: failed to mark: filesystem: filesystem: failed to retrieve tags unknown repository name={name}"
                    );
                    self.fail(
                        abort(
                            Stage::Mark,
                            format!("{name} has an untagged manifest but no _manifests/tags directory"),
                            path,
                            message,
                        ),
                        "an empty _manifests/tags directory is created",
                    )?;
                }
                let all_tags = self.all_tags(repo);
                self.to_delete.push(Queued { repository: name, digest: content.clone(), all_tags });
                return Ok(());
            }
        }
        log!(self, "{name}: marking manifest {content} ");
        self.marks.insert_digest(content);
        self.mark_references(repo, content, target)
    }

    pub(super) fn mark_references(&mut self, repo: &Repository, d: &Digest, target: &Digest) -> Step<()> {
        let manifest = match self.load(d, target) {
            Ok(m) => m,
            Err(cause) => {
                self.fail(cause, "the manifest is kept, but references nothing (its blobs are not marked through it)")?;
                return Ok(());
            }
        };
        let name = &repo.name;
        let follows = self.opts.target.gc_marks_children();
        for r in manifest.references() {
            let new = self.marks.insert(r);
            if follows && !new {
                continue;
            }
            log!(self, "{name}: marking blob {}", r.digest_text());
            if !follows {
                continue;
            }
            // Follows references that are manifests of this repository.
            let Some(child) = r.digest.clone() else { continue };
            let exists = match repo.revisions.get(&child) {
                Some(Ok(t)) => self.inv.has_blob(t).then(|| t.clone()),
                _ => None,
            };
            if let Some(t) = exists {
                self.mark_references(repo, &child, &t)?;
            }
        }
        Ok(())
    }

    /// `manifestService.Get`.
    pub(super) fn load(&self, d: &Digest, target: &Digest) -> Step<&'a Manifest> {
        let path = layout::blob_data(target);
        let prefix = format!("failed to garbage collect: failed to mark: filesystem: filesystem: failed to retrieve manifest for digest {d}");
        match self.contents.manifest(target) {
            Some(Ok(m)) if m.kind == ManifestKind::Schema1 && !self.opts.target.loads_schema1() => Err(abort(
                Stage::Mark,
                format!("manifest {d} is schema1, which registry {} cannot load", self.opts.target),
                path,
                format!("{prefix}: {SCHEMA1_GO_ERROR}"),
            )),
            Some(Ok(m)) => Ok(m),
            Some(Err(crate::manifest::ManifestError::Unreadable(e))) => Err(abort(
                Stage::Mark,
                format!("manifest {d}'s data cannot be read: {}", crate::inventory::go_error_text(e)),
                path.clone(),
                format!("{prefix}: filesystem: open {}: {}", self.abs(&path), crate::inventory::go_error_text(e)),
            )),
            Some(Err(e @ crate::manifest::ManifestError::PanicsRegistry(_))) => {
                let mut cause = abort(Stage::Mark, format!("manifest {d} {e}"), path, self.opts.target.index_panic());
                cause.panics = true;
                Err(cause)
            }
            Some(Err(e)) => {
                let go = match e {
                    crate::manifest::ManifestError::UnknownMediaType(t) => {
                        format!("errors verifying manifest: unrecognized manifest content type {t}")
                    }
                    crate::manifest::ManifestError::UnknownSchemaVersion(v) => {
                        format!("unrecognized manifest schema version {v}")
                    }
                    other => other.to_string(),
                };
                Err(abort(Stage::Mark, format!("manifest {d} {e}"), path, format!("{prefix}: {go}")))
            }
            None => Err(abort(
                Stage::Mark,
                format!("manifest {d} could not be read"),
                path,
                format!("{prefix}: unreadable"),
            )),
        }
    }

    /// v3: queued manifests that ended up marked (by any repository) stay.
    pub(super) fn unmark_referenced(&mut self) {
        let queued = std::mem::take(&mut self.to_delete);
        for q in queued {
            if self.marks.contains(&q.digest) {
                continue;
            }
            log!(self, "manifest eligible for deletion: {{{} {} [{}]}}", q.repository, q.digest, q.all_tags.join(" "));
            self.to_delete.push(q);
        }
    }
}

/// What `garbage-collect` marks for one repository on its own
/// (registry/storage/garbagecollect.go `MarkAndSweep`, the rules of
/// [`Sim`]'s marking without its aborts and log): every revision (and
/// signature) link whose manifest resolves through the target's
/// [`Target::manifest_links`], and that manifest's references, followed into
/// this repository's manifests when [`Target::gc_marks_children`]. A
/// reference to a foreign layer that is not stored is left out (the real run
/// marks it, but no blob of the tree stands for it). Revisions that do not
/// resolve are not marked; they are returned too, since they have no data,
/// so a caller counting stored blobs counts them missing.
pub fn marked_blobs(repo: &Repository, inv: &Inventory, contents: &Contents, target: Target) -> BTreeSet<Digest> {
    // `Stat` of a manifest: its links in order; the data must exist.
    let resolve = |d: &Digest| {
        let link = target.manifest_links().iter().find_map(|by| match by {
            LinkedBy::Revision => repo.revisions.get(d),
            LinkedBy::Layers => repo.layer_links.get(d),
        });
        let data = match link? {
            Ok(t) => t.clone(),
            Err(_) => d.clone(),
        };
        inv.has_blob(&data).then_some(data)
    };
    let mut seen = BTreeSet::new();
    let mut revisions: Vec<Digest> =
        repo.revisions.iter().map(|(path, link)| link.ok().unwrap_or(path).clone()).collect();
    revisions.extend(repo.signature_links.iter().map(|(_, sig)| sig.clone()));
    // (digest, its data): revisions to mark, then children to follow.
    let mut stack = Vec::new();
    for d in revisions {
        match resolve(&d) {
            Some(data) => stack.push((d, data)),
            None => {
                seen.insert(d);
            }
        }
    }
    let mut followed = BTreeSet::new();
    while let Some((d, data)) = stack.pop() {
        seen.insert(d.clone());
        if !followed.insert(d) {
            continue;
        }
        let Some(Ok(m)) = contents.manifest(&data) else { continue };
        for r in m.references() {
            let Some(child) = &r.digest else { continue };
            if r.is_foreign() && !inv.has_blob(child) {
                continue;
            }
            seen.insert(child.clone());
            if target.gc_marks_children() {
                if let Some(Ok(t)) = repo.revisions.get(child) {
                    if inv.has_blob(t) {
                        stack.push((child.clone(), t.clone()));
                    }
                }
            }
        }
    }
    seen
}
