//! `registry garbage-collect`, predicted: the same repository walk, marking,
//! sweep and abort conditions as the real command of the target version
//! (docs/registry-rules.md §2 for the catalog walk, §6 for marking, sweep and
//! aborts, §7 for read faults). Pure: reads only the inventory, the decoded
//! contents and the registry-walk facts.
//!
//! One simulation gives the dry-run log (what `--dry-run` prints), where the
//! dry run aborts, and what the real run deletes before it finishes or
//! aborts. A second, lenient simulation treats every abort cause as fixed
//! (each with a stated assumption) to say what would go once it is.

//!
//! The rooms: `walk` (the catalog walk), [`mark`] (marking, and
//! [`mark::marked_blobs`] for one repository), `tags` (the tag lookup),
//! `layers` (v3's `_layers` check), `sweep` (deletions and the blob walk),
//! `faults` (what the tree reader could not see), `hazards`, `go_errors`
//! (the real command's error texts) and `marks` (the mark set). What differs
//! by version is asked of [`Target`] (`model::rules`).

use std::collections::HashSet;

use serde::Serialize;

use super::Target;
use crate::contents::Contents;
use crate::digest::Digest;
use crate::inventory::{Inventory, ReadFault, WalkFacts};
use crate::manifest::ManifestKind;
use marks::Marks;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GcOptions {
    pub target: Target,
    pub delete_untagged: bool,
    /// Keep the dry run's stdout lines in [`GcOutcome::log`]; only
    /// `--format gc-log` shows them, and formatting a line per blob costs.
    pub log: bool,
    /// The storage driver's name, which prefixes Go's storage errors.
    pub driver: &'static str,
}

/// Appends a line to the dry-run log, formatted only when the log is kept.
macro_rules! log {
    ($sim:expr, $($fmt:tt)*) => {
        if $sim.opts.log {
            let line = format!($($fmt)*);
            $sim.out.log.push(line);
        }
    };
}

mod faults;
mod go_errors;
mod hazards;
mod layers;
pub mod mark;
mod marks;
mod sweep;
mod tags;
mod walk;

pub use sweep::{digest_from_path, PathDigest};

/// The phase of the run in which it stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// Walking repositories and marking: nothing is deleted yet.
    Mark,
    /// Deleting manifests (real run only).
    DeleteManifests,
    /// Listing `blobs/` (after the manifests were deleted, in a real run).
    EnumerateBlobs,
    /// Deleting blobs (real run only).
    DeleteBlobs,
    /// Deleting `_layers` links (v3, real run only).
    DeleteLayerLinks,
}

/// Where and why the real command stops with `failed to garbage collect`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Abort {
    pub stage: Stage,
    /// For people: what is wrong.
    pub reason: String,
    /// The path at fault, relative to the storage root.
    pub path: String,
    /// What the real command prints on stderr (approximately: Go's wrapped
    /// error texts are reproduced where we know them).
    pub message: String,
    /// The process dies with a Go panic (exit status 2) instead of exit 1.
    pub panics: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ManifestDeletion {
    pub repository: String,
    pub digest: Digest,
    /// Tags whose history (`index/`) entry for this digest goes too.
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ManifestKind>,
    /// The manifest's own blob size, when its data exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The OCI `subject` this manifest refers to (signatures, SBOMs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlobDeletion {
    pub digest: String,
    pub size: u64,
    /// Repositories whose `_layers` still link this blob after the run.
    pub linked_by: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerLinkDeletion {
    pub repository: String,
    pub digest: Digest,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hazard {
    pub code: HazardCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// Stable hazard codes (kebab-case in JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HazardCode {
    /// 2.8 `--delete-untagged`: a child of a kept multi-arch image is deleted.
    MultiArchChildDeleted,
    /// An untagged OCI referrer (signature, SBOM...) is swept.
    ReferrerSwept,
    /// A `_layers` link is left pointing at a deleted blob.
    LayerLinkDangling,
    /// A blob is deleted although repositories still link it.
    LinkedBlobDeleted,
    /// A blob that a manifest which stays (revision or tag) needs is deleted.
    LiveBlobDeleted,
    /// A repository the walk never reaches: nothing in it is marked.
    RepositoryNotWalked,
}

/// A cause of abort assumed fixed by the lenient simulation, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub cause: Abort,
    pub assumption: String,
}

/// The outcome of one simulated run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GcOutcome {
    /// Repositories in the order the walk hands them to marking.
    pub repositories: Vec<String>,
    /// What `garbage-collect --dry-run` prints on stdout, up to any abort.
    pub log: Vec<String>,
    /// Where `--dry-run` aborts (marking or blob enumeration only).
    pub dry_run_abort: Option<Abort>,
    /// Where the real run aborts.
    pub abort: Option<Abort>,
    /// Size of the mark set (the dry run's "N blobs marked").
    pub marked: usize,
    /// Blobs the dry run lists as eligible (its "M blobs").
    pub eligible_blobs: usize,
    /// Manifests the dry run lists as eligible (its "K manifests").
    pub eligible_manifests: usize,
    /// What the real run deletes (only what it reaches before aborting).
    pub manifests: Vec<ManifestDeletion>,
    pub blobs: Vec<BlobDeletion>,
    pub layer_links: Vec<LayerLinkDeletion>,
    /// Directories the real run deletes recursively (relative to the root).
    pub removed_dirs: Vec<String>,
    /// Single files the real run deletes (v3 `_layers` links).
    pub removed_files: Vec<String>,
    /// Set when the real run aborts midway through deleting blobs, whose
    /// order is random: then some of `blobs` may survive.
    pub removes_uncertain: bool,
    pub hazards: Vec<Hazard>,
    /// Things the real run does that we do not model (symlinks it follows).
    pub unmodelled: Vec<String>,
    /// Lenient runs only: the abort causes assumed fixed.
    pub fixes: Vec<Fix>,
}

impl GcOutcome {
    /// The abort messages are written as the filesystem driver words them;
    /// another driver wraps the same errors in its own name
    /// (base.Base's `driverName: err`, and the PathNotFound/InvalidPath errors).
    fn name_driver(&mut self, driver: &str) {
        if driver == "filesystem" {
            return;
        }
        let ours = format!("{driver}: ");
        let aborts = self.abort.iter_mut().chain(self.dry_run_abort.iter_mut());
        for a in aborts.chain(self.fixes.iter_mut().map(|f| &mut f.cause)) {
            a.message = a.message.replace("filesystem: ", &ours);
        }
    }

    pub fn reclaimable_bytes(&self) -> u64 {
        self.blobs.iter().map(|b| b.size).sum()
    }
}

/// Predicts the real run; when it aborts, also the run with every cause fixed.
pub fn predict(
    inv: &Inventory,
    contents: &Contents,
    walk: &WalkFacts,
    opts: GcOptions,
) -> (GcOutcome, Option<GcOutcome>) {
    let strict = simulate(inv, contents, walk, opts, false);
    let fixed = strict.abort.is_some().then(|| simulate(inv, contents, walk, opts, true));
    (strict, fixed)
}

fn simulate(inv: &Inventory, contents: &Contents, walk: &WalkFacts, opts: GcOptions, lenient: bool) -> GcOutcome {
    let mut sim = Sim {
        inv,
        contents,
        walk,
        opts,
        lenient,
        out: GcOutcome::default(),
        marks: Marks::new(&inv.blobs),
        to_delete: Vec::new(),
        layer_deletes: Vec::new(),
        unread_layer_links: Vec::new(),
        unseen_layer_links: Vec::new(),
    };
    if sim.layout_behind_symlink() {
        return sim.out;
    }
    sim.symlinks_met();
    if let Err(abort) = sim.run() {
        sim.out.abort = Some(abort);
    }
    // A manifest the object store never delivered: the real run reads it,
    // and what it finds there is unknown (issue 15 §5).
    for (d, m) in contents.manifests.iter() {
        if let Err(e @ crate::manifest::ManifestError::StoreFailed(_)) = m {
            sim.out.unmodelled.push(format!("{}: {e}", crate::layout::blob_data(d)));
        }
    }
    sim.hazards();
    sim.out.name_driver(opts.driver);
    sim.out.unmodelled.sort();
    sim.out.unmodelled.dedup();
    // The tag lookup runs per manifest: a cause assumed fixed is listed once.
    let mut seen = HashSet::new();
    sim.out.fixes.retain(|f| seen.insert((f.cause.path.clone(), f.cause.message.clone())));
    sim.out
}

/// One step of the catalog walk: a repository handed to marking, or a
/// directory the walk fails to list (the run aborts there).
enum WalkStep {
    Repository(String),
    Fault(ReadFault),
}

/// A manifest queued for deletion: `ManifestDel{Name, Digest, Tags}`.
struct Queued {
    repository: String,
    digest: Digest,
    all_tags: Vec<String>,
}

/// One simulated run: what it has read, marked and queued so far, and its
/// outcome. Its methods live in the submodules, one stage each.
struct Sim<'a> {
    inv: &'a Inventory,
    contents: &'a Contents,
    walk: &'a WalkFacts,
    opts: GcOptions,
    lenient: bool,
    out: GcOutcome,
    marks: Marks<'a>,
    to_delete: Vec<Queued>,
    layer_deletes: Vec<(String, Digest)>,
    /// 2.8: faults under `_layers`, which the run never reads; only the
    /// hazards of deleted blobs would need what they hold.
    unread_layer_links: Vec<ReadFault>,
    /// 2.8: symlinks under `_layers`, likewise.
    unseen_layer_links: Vec<String>,
}

type Step<T> = Result<T, Abort>;

impl<'a> Sim<'a> {
    /// Strict: the abort. Lenient: records it as fixed and carries on.
    fn fail(&mut self, cause: Abort, assumption: &str) -> Step<()> {
        if self.lenient {
            self.out.fixes.push(Fix { cause, assumption: assumption.to_string() });
            Ok(())
        } else {
            Err(cause)
        }
    }

    fn run(&mut self) -> Step<()> {
        if let Err(a) = self.mark_all() {
            self.out.dry_run_abort = Some(a.clone());
            return Err(a);
        }
        if self.opts.target.gc_keeps_marked_queued_manifests() {
            self.unmark_referenced();
        }
        self.out.eligible_manifests = self.to_delete.len();
        let manifest_result = self.delete_manifests();
        let delete_set = match self.enumerate_blobs() {
            Ok(set) => set,
            Err(a) => {
                self.out.dry_run_abort = Some(a.clone());
                // A real run aborting earlier (deleting manifests) never gets here.
                return Err(manifest_result.err().unwrap_or(a));
            }
        };
        self.out.eligible_blobs = delete_set.len();
        self.out.marked = self.marks.len();
        log!(self, "");
        log!(
            self,
            "{} blobs marked, {} blobs and {} manifests eligible for deletion",
            self.out.marked,
            delete_set.len(),
            self.out.eligible_manifests
        );
        for d in delete_set.keys() {
            log!(self, "blob eligible for deletion: {d}");
        }
        let layer_deletes = std::mem::take(&mut self.layer_deletes);
        for (repo, d) in &layer_deletes {
            log!(self, "{repo}: layer link eligible for deletion: {d}");
        }
        manifest_result?;
        self.delete_blobs(&delete_set)?;
        self.delete_layer_links(&layer_deletes)
    }
}
