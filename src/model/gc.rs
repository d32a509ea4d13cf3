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

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;

use super::Target;
use crate::contents::Contents;
use crate::digest::{Digest, LinkError};
use crate::inventory::{
    is_at_or_below, Blob, EntryKind, FaultOp, Inventory, LinkRef, ReadFault, Repository, StrayLink, WalkFacts,
};
use crate::layout;
use crate::manifest::{Descriptor, Manifest, ManifestKind};
use crate::sorted_map::SortedMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GcOptions {
    pub target: Target,
    pub delete_untagged: bool,
    /// Keep the dry run's stdout lines in [`GcOutcome::log`]; only
    /// `--format gc-log` shows them, and formatting a line per blob costs.
    pub log: bool,
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
        v2: opts.target == Target::V2_8,
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
    sim.hazards();
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

struct Sim<'a> {
    inv: &'a Inventory,
    contents: &'a Contents,
    walk: &'a WalkFacts,
    opts: GcOptions,
    lenient: bool,
    v2: bool,
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

/// The mark set. Go keys it by digest *string*, so a reference whose digest
/// does not parse is marked too, as written; such a string never equals a
/// valid digest's, so the kinds are kept apart: digests of blobs the tree
/// holds as one flag per blob (the set is as large as the tree), other
/// digests and invalid strings in small sets.
struct Marks<'a> {
    blobs: &'a SortedMap<Digest, Blob>,
    /// Indexed like `blobs`.
    stored: Vec<bool>,
    stored_count: usize,
    absent: HashSet<Digest>,
    invalid: HashSet<String>,
}

impl<'a> Marks<'a> {
    fn new(blobs: &'a SortedMap<Digest, Blob>) -> Marks<'a> {
        Marks {
            blobs,
            stored: vec![false; blobs.len()],
            stored_count: 0,
            absent: HashSet::new(),
            invalid: HashSet::new(),
        }
    }

    /// Marks a reference; false when it already was.
    fn insert(&mut self, r: &Descriptor) -> bool {
        match &r.digest {
            Some(d) => self.insert_digest(d),
            None => self.invalid.insert(r.digest_text()),
        }
    }

    fn insert_digest(&mut self, d: &Digest) -> bool {
        match self.blobs.position(d) {
            Some(i) if self.stored[i] => false,
            Some(i) => {
                self.stored[i] = true;
                self.stored_count += 1;
                true
            }
            None => self.absent.insert(d.clone()),
        }
    }

    fn contains(&self, d: &Digest) -> bool {
        match self.blobs.position(d) {
            Some(i) => self.stored[i],
            None => self.absent.contains(d),
        }
    }

    /// Whether Go's set holds this string.
    fn contains_text(&self, s: &str) -> bool {
        match Digest::parse(s) {
            Ok(d) => self.contains(&d),
            Err(_) => self.invalid.contains(s),
        }
    }

    fn len(&self) -> usize {
        self.stored_count + self.absent.len() + self.invalid.len()
    }
}

fn abort(stage: Stage, reason: impl Into<String>, path: impl Into<String>, message: impl Into<String>) -> Abort {
    Abort { stage, reason: reason.into(), path: path.into(), message: message.into(), panics: false }
}

/// Go's error text for a link the registry cannot parse.
fn link_error_text(e: &LinkError) -> &'static str {
    match e {
        // Seen with 2.8.2: a trailing newline fails the length check.
        LinkError::TrailingWhitespace => "invalid checksum digest length",
        LinkError::Invalid(crate::digest::DigestError::WrongLength { .. }) => "invalid checksum digest length",
        LinkError::Invalid(crate::digest::DigestError::UnsupportedAlgorithm(_)) => "unsupported digest algorithm",
        _ => "invalid checksum digest format",
    }
}

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
        if !self.v2 {
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

    // ----- what the tree reader could not see -----

    /// The absolute path, as Go's errors print it.
    fn abs(&self, rel: &str) -> String {
        self.inv.root.join(rel).display().to_string()
    }

    /// `docker/`, `registry/`, `v2/`, `repositories/` or `blobs/` is a
    /// symbolic link: the real run walks what it points at, which was not
    /// read, so nothing can be predicted.
    fn layout_behind_symlink(&mut self) -> bool {
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
    fn symlinks_met(&mut self) {
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
                if parts[i] == "_layers" && self.v2 {
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
    }

    /// A symlink at or above `rel` that the registry would follow to read it.
    fn symlink_on_the_way(&self, rel: &str) -> Option<String> {
        self.inv.symlinks.iter().find(|s| is_at_or_below(rel, s)).cloned()
    }

    /// A read the real run makes and we could not: strict, the abort with
    /// Go's message; lenient, the fault assumed gone, with what lies behind
    /// it unknown. A file that vanished under the walk is not modelled.
    fn read_fault(&mut self, stage: Stage, f: &ReadFault, message: String) -> Step<()> {
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
    fn faults_before(
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
    fn stat_blob(&mut self, d: &Digest) -> Step<()> {
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

    // ----- the repository walk -----

    /// The catalog walk: repositories in the order the registry visits them,
    /// and where listing fails.
    fn walk_repositories(&mut self) -> Vec<WalkStep> {
        let marker = if self.v2 { "_layers" } else { "_manifests" };
        let mut repos = Vec::new();
        self.walk_dir("", marker, &mut repos);
        repos
    }

    fn walk_dir(&mut self, rel: &str, marker: &str, repos: &mut Vec<WalkStep>) {
        let dir = if rel.is_empty() { format!("{}/repositories", layout::V2) } else { layout::repo_dir(rel) };
        if let Some(f) = self.inv.fault_at(&dir).filter(|f| f.op == FaultOp::List) {
            repos.push(WalkStep::Fault(f.clone()));
            return;
        }
        let Some(entries) = self.walk.catalog_dirs.get(rel) else { return };
        let join = |name: &str| if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
        for (i, e) in entries.iter().enumerate() {
            let path = join(&e.name);
            if e.kind == EntryKind::Symlink {
                self.out.unmodelled.push(format!(
                    "{}: a symbolic link, which the real run follows (not modelled)",
                    layout::repo_dir(&path)
                ));
                continue;
            }
            let is_dir = e.kind == EntryKind::Dir;
            if e.name == marker || e.name.starts_with('_') {
                if e.name == marker {
                    // `repositories/_layers` itself names a repository "_layers".
                    repos.push(WalkStep::Repository(if rel.is_empty() { e.name.clone() } else { rel.to_string() }));
                }
                if !is_dir && self.v2 {
                    // 2.8's walk stops listing this directory at a skipped *file*.
                    for hidden in &entries[i + 1..] {
                        self.hidden(&join(&hidden.name), &path);
                    }
                    return;
                }
                continue;
            }
            if is_dir {
                self.walk_dir(&path, marker, repos);
            }
        }
    }

    /// Records the repositories at or below `rel` that the walk never reaches.
    fn hidden(&mut self, rel: &str, by: &str) {
        let prefix = format!("{rel}/");
        let names: Vec<String> = self
            .inv
            .repositories
            .iter()
            .filter(|r| r.name == rel || r.name.starts_with(&prefix))
            .map(|r| r.name.clone())
            .collect();
        for name in names {
            self.out.hazards.push(Hazard {
                code: HazardCode::RepositoryNotWalked,
                message: format!(
                    "repository {name} is never walked: registry 2.8 stops listing its directory at the file {}; \
                     nothing in it is marked",
                    layout::repo_dir(by)
                ),
                repository: Some(name),
                digest: None,
            });
        }
    }

    // ----- marking -----

    fn mark_all(&mut self) -> Step<()> {
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
    fn revision_faults(&mut self, name: &str) -> Step<Vec<ReadFault>> {
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
    fn walk_fault_message(&self, f: &ReadFault) -> String {
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

    fn mark_repository(&mut self, name: &str) -> Step<()> {
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
    fn strays_before<'s>(
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
    fn stray_revision_link(&mut self, repo: &'a Repository, s: &StrayLink, path: &str) -> Step<()> {
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
    fn invalid_link_while_marking(&mut self, reason: String, path: &str, e: &LinkError) -> Step<()> {
        let message =
            format!("failed to garbage collect: failed to mark: filesystem: filesystem: {}", link_error_text(e));
        self.fail(abort(Stage::Mark, reason, path, message), "the link is rewritten to hold the digest its path names")
    }

    /// One `link` file found under `_manifests/revisions`; `path` names it.
    fn revision_link(
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
    fn resolve_manifest(&mut self, repo: &Repository, d: &Digest) -> Step<Option<Digest>> {
        let sources: &[bool] = if self.v2 { &[true, false] } else { &[true] };
        for &revision in sources {
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
    fn stat_through_dir(&mut self, repo: &Repository, path: &str) -> Step<()> {
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

    /// `Tags.Lookup`: the tags whose `current` names `d`.
    fn lookup(&mut self, repo: &Repository, d: &Digest) -> Step<Vec<String>> {
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
    fn fixed_tag_target(&self, repo: &Repository, tag: &str) -> Option<Digest> {
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

    fn has_tags_dir(&self, repo: &str) -> bool {
        self.walk.tags_dirs.contains_key(repo)
    }

    /// All tag names (`Tags.All`), sorted.
    fn all_tags(&self, repo: &Repository) -> Vec<String> {
        let mut tags: Vec<String> = repo.tags.keys().cloned().collect();
        tags.extend(self.walk.tags_dirs.get(&repo.name).into_iter().flatten().cloned());
        tags.sort();
        tags.dedup();
        tags
    }

    /// One enumerated manifest digest (`content`), whose data is `target`.
    fn ingest(&mut self, repo: &Repository, content: &Digest, target: &Digest) -> Step<()> {
        let name = repo.name.clone();
        if self.opts.delete_untagged {
            let tags = self.lookup(repo, content)?;
            if tags.is_empty() {
                if self.v2 {
                    log!(self, "manifest eligible for deletion: {content}");
                }
                if !self.has_tags_dir(&name) {
                    if !self.v2 {
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

    fn mark_references(&mut self, repo: &Repository, d: &Digest, target: &Digest) -> Step<()> {
        let manifest = match self.load(d, target) {
            Ok(m) => m,
            Err(cause) => {
                self.fail(cause, "the manifest is kept, but references nothing (its blobs are not marked through it)")?;
                return Ok(());
            }
        };
        let name = &repo.name;
        for r in manifest.references() {
            let new = self.marks.insert(r);
            if !self.v2 && !new {
                continue;
            }
            log!(self, "{name}: marking blob {}", r.digest_text());
            if self.v2 {
                continue;
            }
            // v3 recurses into references that are manifests of this repository.
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
    fn load(&self, d: &Digest, target: &Digest) -> Step<&'a Manifest> {
        let path = layout::blob_data(target);
        let prefix = format!("failed to garbage collect: failed to mark: filesystem: filesystem: failed to retrieve manifest for digest {d}");
        match self.contents.manifest(target) {
            Some(Ok(m)) if m.kind == ManifestKind::Schema1 && !self.v2 => Err(abort(
                Stage::Mark,
                format!("manifest {d} is schema1, which registry 3 cannot load"),
                path,
                format!("{prefix}: unrecognized manifest schema version 1"),
            )),
            Some(Ok(m)) => Ok(m),
            Some(Err(crate::manifest::ManifestError::Unreadable(e))) => Err(abort(
                Stage::Mark,
                format!("manifest {d}'s data cannot be read: {}", crate::inventory::go_error_text(e)),
                path.clone(),
                format!("{prefix}: filesystem: open {}: {}", self.abs(&path), crate::inventory::go_error_text(e)),
            )),
            Some(Err(e @ crate::manifest::ManifestError::PanicsRegistry(_))) => {
                // The type Get asserts: 2.8's manifest list, v3's OCI index (manifeststore.go Get).
                let message = if self.v2 {
                    "panic: interface conversion: distribution.Manifest is nil, not *manifestlist.DeserializedManifestList"
                } else {
                    "panic: interface conversion: distribution.Manifest is nil, not *ocischema.DeserializedImageIndex"
                };
                let mut cause = abort(Stage::Mark, format!("manifest {d} {e}"), path, message);
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

    /// v3 only: after marking a repository, queue its `_layers` links whose
    /// blob is not marked *yet*.
    fn layer_link_check(&mut self, name: &str, repo: Option<&'a Repository>) -> Step<()> {
        let layers = format!("{}/_layers", layout::repo_dir(name));
        let faults: Vec<ReadFault> = self.inv.faults_below(&layers).cloned().collect();
        if self.v2 {
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
    fn stray_layer_link(&mut self, repo: &'a Repository, s: &StrayLink, path: &str) -> Step<()> {
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
    fn layer_link(&mut self, repo: &'a Repository, content: Digest, path_digest: &Digest) -> Step<()> {
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

    /// v3: queued manifests that ended up marked (by any repository) stay.
    fn unmark_referenced(&mut self) {
        let queued = std::mem::take(&mut self.to_delete);
        for q in queued {
            if self.marks.contains(&q.digest) {
                continue;
            }
            log!(self, "manifest eligible for deletion: {{{} {} [{}]}}", q.repository, q.digest, q.all_tags.join(" "));
            self.to_delete.push(q);
        }
    }

    // ----- sweep -----

    fn delete_manifests(&mut self) -> Step<()> {
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
    fn sweep_fault(&mut self, d: &Digest, dir: &str) -> Step<()> {
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

    fn sweep_read_fault(&mut self, f: &ReadFault, message: String) -> Step<()> {
        self.read_fault(Stage::DeleteManifests, f, message)
    }

    fn describe(&self, d: &Digest) -> (Option<ManifestKind>, Option<u64>, Option<String>) {
        let m = self.contents.manifest(d).and_then(|m| m.as_ref().ok());
        (m.map(|m| m.kind), self.inv.blob_size(d), m.and_then(|m| m.subject()).map(Descriptor::digest_text))
    }

    /// `blobStore.Enumerate`: every `data` file below `blobs/`, by the digest
    /// its path spells; the unmarked ones, with whether their canonical
    /// directory exists.
    fn enumerate_blobs(&mut self) -> Step<BTreeMap<String, Option<Digest>>> {
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

    fn delete_blobs(&mut self, set: &BTreeMap<String, Option<Digest>>) -> Step<()> {
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

    fn delete_layer_links(&mut self, queued: &[(String, Digest)]) -> Step<()> {
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

    // ----- hazards -----

    fn hazards(&mut self) {
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

/// The call of the registry's walk that fails on a directory it cannot
/// list: `storagedriver.WalkFallback` stats each entry before listing it, so
/// a path too long for the kernel fails at the stat (seen with 2.8.2 and
/// 3.1.1), any other fault at the open.
fn walk_op(f: &ReadFault) -> &'static str {
    if f.error == "file name too long" {
        "stat"
    } else {
        "open"
    }
}

/// The order of the registry's directory walk (registry/storage/driver/walk.go
/// `WalkFallback`): children sorted by path, each directory's subtree
/// right after it. For paths below one directory that is their order
/// component by component.
fn walk_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
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
