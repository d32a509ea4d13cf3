//! The sweep (docs/registry-rules.md §6.3, §6.4; registry/storage/garbagecollect.go
//! `MarkAndSweep`, vacuum.go): queued manifests, unmarked blobs found by the
//! blob walk (blobstore.go `Enumerate`), v3's queued `_layers` links.

use std::collections::{BTreeMap, BTreeSet};

use super::go_errors::{abort, walk_op};
use super::{BlobDeletion, LayerLinkDeletion, ManifestDeletion, Sim, Stage, Step};
use crate::digest::Digest;
use crate::inventory::{FaultOp, ReadFault};
use crate::layout;
use crate::manifest::{Descriptor, ManifestKind};

impl<'a> Sim<'a> {
    pub(super) fn delete_manifests(&mut self) -> Step<()> {
        let queued = std::mem::take(&mut self.to_delete);
        let mut removed: BTreeSet<String> = BTreeSet::new();
        let mut result = Ok(());
        for q in &queued {
            let repo = self.inv.repository(&q.repository);
            let mut tags = Vec::new();
            for t in &q.all_tags {
                let dir = layout::tag_index_dir(&q.repository, t, &q.digest);
                // vacuum.go RemoveManifest: stat the tag's index entry, then delete it.
                if let Err(a) = self.sweep_fault(&q.digest, &dir) {
                    result = Err(a);
                    break;
                }
                let has_entry = repo.and_then(|r| r.tags.get(t)).is_some_and(|tag| tag.index.contains_key(&q.digest))
                    || self.inv.faults_below(&dir).next().is_some();
                if has_entry && removed.insert(dir.clone()) {
                    self.out.removed_dirs.push(dir);
                    tags.push(t.clone());
                }
            }
            let rev_dir = layout::revision_dir(&q.repository, &q.digest);
            let exists = repo.is_some_and(|r| {
                r.revisions.contains_key(&q.digest) || r.signature_links.iter().any(|(rev, _)| rev == &q.digest)
            });
            if !exists || removed.contains(&rev_dir) {
                let message = format!(
                    "failed to garbage collect: failed to delete manifest {}: filesystem: Path not found: /{}",
                    q.digest,
                    rev_dir.trim_start_matches("docker/")
                );
                let cause = abort(
                    Stage::DeleteManifests,
                    format!("revision directory of {} is already gone when its deletion comes", q.digest),
                    rev_dir.clone(),
                    message.replace("/registry/v2", "/docker/registry/v2"),
                );
                if let Err(a) = self.fail(cause, "the duplicate (alias) revision link is removed") {
                    result = Err(a);
                    break;
                }
                continue;
            } else {
                removed.insert(rev_dir.clone());
                self.out.removed_dirs.push(rev_dir);
            }
            let (kind, size, subject) = self.describe(&q.digest);
            self.out.manifests.push(ManifestDeletion {
                repository: q.repository.clone(),
                digest: q.digest.clone(),
                tags,
                kind,
                size,
                subject,
            });
        }
        self.to_delete = queued;
        result
    }

    /// Faults met removing a tag's index entry `dir` for manifest `d`.
    pub(super) fn sweep_fault(&mut self, d: &Digest, dir: &str) -> Step<()> {
        let prefix = format!("failed to garbage collect: failed to delete manifest {d}: filesystem:");
        if let Some(f) = self.inv.unreachable(dir).filter(|f| f.path != dir).cloned() {
            let message = format!("{prefix} stat {}: {}", self.abs(dir), f.error);
            return self.sweep_read_fault(&f, message);
        }
        let above = std::path::Path::new(dir).parent().map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some(f) = self.inv.fault_at(&above).filter(|f| f.op == FaultOp::List && f.traversable).cloned() {
            self.out.unmodelled.push(format!(
                "{}: cannot be listed ({}); whether {dir} exists, which the real run removes, is not known",
                f.path, f.error
            ));
            return Ok(());
        }
        // os.RemoveAll opens every directory it empties.
        let listed: Vec<ReadFault> = self.inv.faults_below(dir).filter(|f| f.op == FaultOp::List).cloned().collect();
        if let Some(f) = listed.first() {
            let message = format!("{prefix} openfdat {}: {}", self.abs(&f.path), f.error);
            return self.sweep_read_fault(f, message);
        }
        Ok(())
    }

    pub(super) fn sweep_read_fault(&mut self, f: &ReadFault, message: String) -> Step<()> {
        self.read_fault(Stage::DeleteManifests, f, message)
    }

    pub(super) fn describe(&self, d: &Digest) -> (Option<ManifestKind>, Option<u64>, Option<String>) {
        let m = self.contents.manifest(d).and_then(|m| m.as_ref().ok());
        (m.map(|m| m.kind), self.inv.blob_size(d), m.and_then(|m| m.subject()).map(Descriptor::digest_text))
    }

    /// `blobStore.Enumerate`: every `data` file below `blobs/`, by the digest
    /// its path spells; the unmarked ones, with whether their canonical
    /// directory exists.
    pub(super) fn enumerate_blobs(&mut self) -> Step<BTreeMap<String, Option<Digest>>> {
        if !self.walk.blobs_dir {
            let cause = abort(
                Stage::EnumerateBlobs,
                "there is no blobs/ directory",
                format!("{}/blobs", layout::V2),
                "failed to garbage collect: error enumerating blobs: filesystem: Path not found: /docker/registry/v2/blobs",
            );
            self.fail(cause, "blobs/ is created empty")?;
        }
        let mut set: BTreeMap<String, Option<Digest>> = BTreeMap::new();
        for d in self.inv.blobs.keys() {
            if !self.marks.contains(d) {
                set.insert(d.to_string(), Some(d.clone()));
            }
        }
        // blobstore.go Enumerate: one walk of blobs/; a directory it cannot
        // list stops it, in path order among the stray data files.
        let blobs = format!("{}/blobs", layout::V2);
        let mut faults: Vec<ReadFault> = Vec::new();
        for f in self.inv.faults_below(&blobs) {
            match f.op {
                FaultOp::List => faults.push(f.clone()),
                // The walk only lists and stats; a failed stat of a data
                // file is an error we have not seen the registry make.
                FaultOp::Stat | FaultOp::Read => self.out.unmodelled.push(format!(
                    "{}: cannot be examined ({}); what the real run's blob walk does there is not known",
                    f.path, f.error
                )),
            }
        }
        let mut faults = faults.into_iter().peekable();
        let message = |sim: &Self, f: &ReadFault| {
            format!(
                "failed to garbage collect: error enumerating blobs: filesystem: {} {}: {}",
                walk_op(f),
                sim.abs(&f.path),
                f.error
            )
        };
        for rel in &self.walk.stray_blob_data.clone() {
            let path = format!("{}/blobs/{rel}", layout::V2);
            while let Some(f) = faults.next_if(|f| f.path <= path) {
                let m = message(self, &f);
                self.read_fault(Stage::EnumerateBlobs, &f, m)?;
            }
            match digest_from_path(rel) {
                PathDigest::Valid(s) => {
                    if !self.marks.contains_text(&s) {
                        // RemoveBlob deletes the canonical directory: it exists
                        // when the data sits in it (a symlinked `data`, say).
                        let canonical = Digest::parse(&s)
                            .ok()
                            .filter(|d| self.inv.has_blob(d) || path.starts_with(&format!("{}/", layout::blob_dir(d))));
                        set.entry(s).or_insert(canonical);
                    }
                }
                PathDigest::Invalid(why) => {
                    let cause = abort(
                        Stage::EnumerateBlobs,
                        format!("a data file at a path that does not spell a digest ({why})"),
                        path,
                        format!("failed to garbage collect: error enumerating blobs: filesystem: {why}"),
                    );
                    self.fail(cause, "the stray data file is moved away")?;
                }
                PathDigest::Panic => {
                    let mut cause = abort(
                        Stage::EnumerateBlobs,
                        "a data file whose directory name is shorter than 2 characters: the registry panics",
                        path,
                        "panic: runtime error: slice bounds out of range",
                    );
                    cause.panics = true;
                    self.fail(cause, "the stray data file is moved away")?;
                }
            }
        }
        for f in faults {
            let m = message(self, &f);
            self.read_fault(Stage::EnumerateBlobs, &f, m)?;
        }
        Ok(set)
    }

    pub(super) fn delete_blobs(&mut self, set: &BTreeMap<String, Option<Digest>>) -> Step<()> {
        let mut missing = None;
        for (s, canonical) in set {
            match canonical {
                Some(d) => {
                    self.out.removed_dirs.push(layout::blob_dir(d));
                    let size = self.inv.blob_size(d).unwrap_or(0);
                    self.out.blobs.push(BlobDeletion { digest: s.clone(), size, linked_by: Vec::new() });
                }
                None => missing = Some(s.clone()),
            }
        }
        if let Some(s) = missing {
            let cause = abort(
                Stage::DeleteBlobs,
                format!("blob {s} was found at a non-canonical path, so deleting its canonical directory fails"),
                format!("{}/blobs", layout::V2),
                format!("failed to garbage collect: failed to delete blob {s}: filesystem: Path not found"),
            );
            if !self.lenient {
                // Blobs are deleted in random order: which went first is unknown.
                self.out.removes_uncertain = true;
            }
            self.fail(cause, "the stray data file is moved away")?;
        }
        Ok(())
    }

    pub(super) fn delete_layer_links(&mut self, queued: &[(String, Digest)]) -> Step<()> {
        let mut removed = BTreeSet::new();
        for (repo, d) in queued {
            let path = layout::layer_link(repo, d);
            if !removed.insert(path.clone()) {
                let cause = abort(
                    Stage::DeleteLayerLinks,
                    format!(
                        "the _layers link of {d} in {repo} is queued twice (an alias or stray link names it) and is gone the second time"
                    ),
                    path.clone(),
                    format!("failed to garbage collect: failed to delete layer link {d} of repo {repo}: filesystem: Path not found: /{path}"),
                );
                // garbagecollect.go ranges over a map of repositories: in
                // which order the others went is random.
                let repos: BTreeSet<&String> = queued.iter().map(|(r, _)| r).collect();
                if !self.lenient && repos.len() > 1 {
                    self.out.removes_uncertain = true;
                }
                self.fail(cause, "the alias or stray link is removed")?;
                continue;
            }
            self.out.removed_files.push(path);
            self.out.layer_links.push(LayerLinkDeletion { repository: repo.clone(), digest: d.clone() });
        }
        Ok(())
    }
}

/// What go's `digestFromPath` makes of a `data` path (relative to `blobs/`).
#[derive(Debug, PartialEq, Eq)]
pub enum PathDigest {
    Valid(String),
    Invalid(&'static str),
    /// `hex[:2]` on a name shorter than 2 bytes.
    Panic,
}

pub fn digest_from_path(rel: &str) -> PathDigest {
    // Mirrors path.Split / path.Dir / path.Base on the full driver path.
    let full = format!("/docker/registry/v2/blobs/{rel}");
    let trimmed = full.strip_suffix("/data").unwrap_or(&full);
    let (dir, hex) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
    // dir = path.Dir(dir): `dir` already lacks its trailing slash here.
    let (grand, next) = dir.rsplit_once('/').unwrap_or(("", dir));
    if hex.len() < 2 {
        return PathDigest::Panic;
    }
    let algo = if Some(next) == hex.get(..2) { grand.rsplit('/').next().unwrap_or("") } else { next };
    let text = format!("{algo}:{hex}");
    match Digest::parse(&text) {
        Ok(_) => PathDigest::Valid(text),
        Err(crate::digest::DigestError::UnsupportedAlgorithm(_)) => PathDigest::Invalid("unsupported digest algorithm"),
        Err(crate::digest::DigestError::WrongLength { .. }) => PathDigest::Invalid("invalid checksum digest length"),
        Err(_) => PathDigest::Invalid("invalid checksum digest format"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "3c8ee121945e6bd719ef6c4eae0a281d6c6218aa0a6c1d7e7c1fd1c92e59a6e2";

    #[test]
    fn digest_from_path_follows_go() {
        assert_eq!(digest_from_path(&format!("sha256/3c/{HEX}/data")), PathDigest::Valid(format!("sha256:{HEX}")));
        assert_eq!(
            digest_from_path(&format!("sha256/3d/{HEX}/data")),
            PathDigest::Invalid("unsupported digest algorithm")
        );
        // No shard level: the algorithm is the next directory up.
        assert_eq!(digest_from_path(&format!("sha256/{HEX}/data")), PathDigest::Valid(format!("sha256:{HEX}")));
        assert_eq!(digest_from_path("sha256/a/x/data"), PathDigest::Panic);
    }
}
