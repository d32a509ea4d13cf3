//! What the tree reader could not see: symbolic links the real run would
//! follow and reads it would make that failed (docs/registry-rules.md §7, §8).

use super::go_errors::abort;
use super::{Sim, Stage, Step};
use crate::digest::Digest;
use crate::inventory::{is_at_or_below, FaultOp, ReadFault};
use crate::layout;

impl<'a> Sim<'a> {
    /// The absolute path, as Go's errors print it.
    pub(super) fn abs(&self, rel: &str) -> String {
        self.inv.root.join(rel).display().to_string()
    }

    /// `docker/`, `registry/`, `v2/`, `repositories/` or `blobs/` is a
    /// symbolic link: the real run walks what it points at, which was not
    /// read, so nothing can be predicted.
    pub(super) fn layout_behind_symlink(&mut self) -> bool {
        let top = [format!("{}/repositories", layout::V2), format!("{}/blobs", layout::V2)];
        let found: Vec<String> =
            self.inv.symlinks.iter().filter(|s| top.iter().any(|t| is_at_or_below(t, s))).cloned().collect();
        for s in &found {
            self.out.unmodelled.push(format!(
                "{s}: a symbolic link, which the real run follows; nothing behind it was read, so this prediction covers nothing"
            ));
        }
        !found.is_empty()
    }

    /// Symlinks the real run follows inside what it reads: repository data
    /// (not uploads, which it never reads) and directories under `blobs/`.
    /// Symlinked `data` files are modelled (the blob walk lists them) until a
    /// manifest must be read through one. Catalog-level ones are reported by
    /// the walk itself.
    pub(super) fn symlinks_met(&mut self) {
        let repos = format!("{}/repositories/", layout::V2);
        let blobs = format!("{}/blobs/", layout::V2);
        let mut notes = Vec::new();
        for s in &self.inv.symlinks {
            if let Some(rest) = s.strip_prefix(&repos) {
                let parts: Vec<&str> = rest.split('/').collect();
                let Some(i) = parts.iter().position(|p| p.starts_with('_')) else { continue };
                if parts[i] == "_uploads"
                    || i + 1 == parts.len() && self.walk.catalog_dirs.contains_key(&parts[..i].join("/"))
                {
                    continue;
                }
                // Tags are read only by --delete-untagged.
                if parts[i] == "_manifests" && parts.get(i + 1) == Some(&"tags") && !self.opts.delete_untagged {
                    continue;
                }
                let note = format!("{s}: a symbolic link, which the real run follows (not modelled)");
                if parts[i] == "_layers" && !self.opts.target.gc_checks_layer_links() {
                    // 2.8 never reads `_layers`; only the hazards would.
                    self.unseen_layer_links.push(note);
                    continue;
                }
                notes.push(note);
            } else if let Some(rest) = s.strip_prefix(&blobs) {
                if !rest.ends_with("/data") {
                    notes.push(format!(
                        "{s}: a symbolic link, which the real run's blob walk follows; the blobs behind it are not known"
                    ));
                }
            }
        }
        self.out.unmodelled.extend(notes);
        self.not_regular_met();
    }

    /// A FIFO, device or socket named `link` where the real run reads links
    /// (every `link` below `_manifests/revisions`, below `_layers` in v3,
    /// tag links with --delete-untagged): opening it may block for ever
    /// (2.8.2 hangs on a FIFO), which is not modelled.
    fn not_regular_met(&mut self) {
        let repos = format!("{}/repositories/", layout::V2);
        for s in &self.inv.not_regular {
            let Some(rest) = s.strip_prefix(&repos) else { continue };
            let parts: Vec<&str> = rest.split('/').collect();
            let Some(i) = parts.iter().position(|p| p.starts_with('_')) else { continue };
            if parts.last() != Some(&"link") {
                continue;
            }
            let read = match (parts[i], parts.get(i + 1)) {
                ("_manifests", Some(&"revisions")) => true,
                ("_manifests", Some(&"tags")) => self.opts.delete_untagged,
                ("_layers", _) => self.opts.target.gc_checks_layer_links(),
                _ => false,
            };
            if read {
                self.out.unmodelled.push(format!(
                    "{s}: a FIFO, device or socket where the real run reads a link; opening it may block for ever (not modelled)"
                ));
            }
        }
    }

    /// A symlink at or above `rel` that the registry would follow to read it.
    pub(super) fn symlink_on_the_way(&self, rel: &str) -> Option<String> {
        self.inv.symlinks.iter().find(|s| is_at_or_below(rel, s)).cloned()
    }

    /// A read the real run makes and we could not: strict, the abort with
    /// Go's message; lenient, the fault assumed gone, with what lies behind
    /// it unknown. A file that vanished under the walk is not modelled.
    pub(super) fn read_fault(&mut self, stage: Stage, f: &ReadFault, message: String) -> Step<()> {
        if f.vanished {
            self.out
                .unmodelled
                .push(format!("{}: vanished between listing and reading; the tree changed under the walk", f.path));
            return Ok(());
        }
        let what = match f.op {
            FaultOp::List => "cannot be listed",
            FaultOp::Read => "cannot be read",
            FaultOp::Stat => "cannot be examined",
        };
        let cause = abort(stage, format!("{} {what}: {}", f.path, f.error), f.path.clone(), message);
        if self.lenient {
            self.out.unmodelled.push(format!(
                "{}: assumed readable once fixed, but what it holds was never read; the answer once fixed leaves it out",
                f.path
            ));
        }
        self.fail(cause, "it is made readable by the user running garbage-collect")
    }

    /// Raises, in path order, every fault of `faults` at or before `upto`.
    pub(super) fn faults_before(
        &mut self,
        faults: &mut std::iter::Peekable<std::vec::IntoIter<ReadFault>>,
        upto: Option<&str>,
        message: &dyn Fn(&Self, &ReadFault) -> String,
    ) -> Step<()> {
        while let Some(f) = faults.next_if(|f| upto.is_none_or(|u| f.path.as_str() <= u)) {
            let m = message(self, &f);
            self.read_fault(Stage::Mark, &f, m)?;
        }
        Ok(())
    }

    /// Whether the blob data `d` can be stat'ed by the registry; when not,
    /// the abort (`stat <data>` fails) or an unmodelled symlink.
    pub(super) fn stat_blob(&mut self, d: &Digest) -> Step<()> {
        if self.inv.has_blob(d) {
            return Ok(());
        }
        let data = layout::blob_data(d);
        if let Some(s) = self.symlink_on_the_way(&data) {
            self.out.unmodelled.push(format!(
                "{s}: a symbolic link the real run follows to reach blob {d}; whether it exists is not known"
            ));
            return Ok(());
        }
        let fault = self.inv.unreachable(&data).or_else(|| self.inv.fault_at(&data).filter(|f| f.op == FaultOp::Stat));
        if let Some(f) = fault.cloned() {
            let message = format!(
                "failed to garbage collect: failed to mark: filesystem: filesystem: filesystem: stat {}: {}",
                self.abs(&data),
                f.error
            );
            self.read_fault(Stage::Mark, &f, message)?;
        }
        Ok(())
    }
}
