//! The scan: one parallel pass (rayon, per repository and per blob shard)
//! that lists the tree, reads every link file and `startedat`, and builds
//! the [`Inventory`]. Blob contents are read later, on demand.
//!
//! Backend-agnostic: what an entry is comes from its path components, its
//! kind, its size and its content ([`crate::layout`] classifies the paths);
//! the [`Backend`] only lists and reads.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::digest::{parse_link, Digest, LINK_READ_LIMIT};
use crate::inventory::{go_error_text, Blob, FaultOp, Inventory, Link, ReadFault, Repository, StrayLink, Tag};
use crate::layout::{self, BlobPath, RepoPath};
use crate::problem::{normalize, Code, Problem};
use crate::sorted_map::SortedMap;
use crate::storage::{join, Backend, Entry, Kind, RootName, SCHEDULER_STATE_READ_LIMIT};

/// Longest `startedat` we read; a valid one is 20 bytes.
const STARTEDAT_READ_LIMIT: usize = 256;

/// `docker/registry/v2/blobs/`, where the blob anomalies are recorded from.
const BLOBS: &str = "docker/registry/v2/blobs";

/// How the walk treats the directories that exist to hold one link file:
/// `_layers/<alg>/<hex>/`, a tag's `current/` and `index/<alg>/<hex>/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leaves {
    /// List them like every directory, so that anything beside the link is
    /// reported.
    List,
    /// Open their `link` directly: four syscalls instead of seven per link,
    /// the bulk of a walk. Strays beside those links go unreported, which
    /// suits only the garbage-collect model: it reports no problems, needs
    /// nothing from those directories but the link, and lists what it
    /// deletes again.
    OpenLinks,
}

/// One pass over the whole tree. `symlinked`: the first of `docker`,
/// `docker/registry`, `docker/registry/v2` that is a symbolic link, below
/// which nothing is walked.
pub fn scan<B: Backend>(backend: &B, root: &RootName, leaves: Leaves, symlinked: Option<&str>) -> Inventory {
    let walker = Walker::new(backend, leaves);
    let mut blobs_dir = false;
    let mut repos_dir = false;
    let top = match symlinked {
        Some(rel) => {
            walker.unexpected(rel, Kind::Symlink, "");
            Vec::new()
        }
        None => walker.list_rel(layout::V2),
    };
    for entry in top {
        match (entry.name.as_str(), entry.kind, entry.utf8) {
            ("blobs", Kind::Dir, true) => blobs_dir = true,
            ("repositories", Kind::Dir, true) => repos_dir = true,
            _ => walker.unexpected(&join(layout::V2, &entry.name), entry.kind, "not part of the registry layout"),
        }
    }
    let repos = join(layout::V2, "repositories");
    let (blobs, repositories) = rayon::join(
        || if blobs_dir { walker.walk_blobs(BLOBS) } else { SortedMap::default() },
        || if repos_dir { walker.walk_repositories(&repos, String::new()) } else { Vec::new() },
    );
    let scheduler_state = match backend.read_capped("scheduler-state.json", SCHEDULER_STATE_READ_LIMIT) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            walker.fault("scheduler-state.json", FaultOp::Read, &e, "cannot be read");
            None
        }
    };
    walker.into_inventory(root, blobs, repositories, scheduler_state)
}

/// A name inside a directory the walk holds open.
struct At<'a, D> {
    dir: &'a D,
    name: &'a str,
    /// The directory's path relative to the root, for problems.
    parent: &'a str,
    /// The directory listing named it (and said what it is).
    listed: bool,
}

impl<D> Clone for At<'_, D> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<D> Copy for At<'_, D> {}

impl<D> At<'_, D> {
    /// The path relative to the root, built only when a problem needs it.
    fn path(&self) -> String {
        join(self.parent, self.name)
    }
}

/// A tag's links as the walk finds them.
#[derive(Default)]
struct TagBuffer {
    current: Option<Link>,
    index: Vec<(Digest, Link)>,
}

/// A repository's links as the walk finds them, before they become maps.
#[derive(Default)]
struct LinkBuffers {
    layers: Vec<(Digest, Link)>,
    revisions: Vec<(Digest, Link)>,
    tags: std::collections::BTreeMap<String, TagBuffer>,
    strays: Vec<StrayLink>,
    link_dirs: Vec<String>,
}

/// What reading a link file found.
enum LinkRead {
    Content(Link),
    /// Opened without listing, and a directory: the caller treats it as the
    /// full walk treats a directory where a link belongs.
    Directory,
    /// Absent, or unreadable (reported).
    Nothing,
}

impl LinkRead {
    fn content(self) -> Option<Link> {
        match self {
            LinkRead::Content(l) => Some(l),
            _ => None,
        }
    }
}

type Visit<'v, D> = dyn FnMut(At<D>, &[&str], bool) -> bool + 'v;

struct Walker<'a, B: Backend> {
    backend: &'a B,
    leaves: Leaves,
    problems: Mutex<Vec<Problem>>,
    blob_anomalies: Mutex<Vec<PathBuf>>,
    faults: Mutex<Vec<ReadFault>>,
    symlinks: Mutex<Vec<String>>,
    files: AtomicU64,
}

impl<'a, B: Backend> Walker<'a, B> {
    fn new(backend: &'a B, leaves: Leaves) -> Self {
        Walker {
            backend,
            leaves,
            problems: Mutex::default(),
            blob_anomalies: Mutex::default(),
            faults: Mutex::default(),
            symlinks: Mutex::default(),
            files: AtomicU64::new(0),
        }
    }

    fn into_inventory(
        self,
        root: &RootName,
        blobs: SortedMap<Digest, Blob>,
        mut repositories: Vec<Repository>,
        scheduler_state: Option<Vec<u8>>,
    ) -> Inventory {
        repositories.sort_by(|a, b| a.name.cmp(&b.name));
        let mut problems = self.problems.into_inner().unwrap_or_else(|p| p.into_inner());
        normalize(&mut problems);
        let mut faults = self.faults.into_inner().unwrap_or_else(|p| p.into_inner());
        faults.sort();
        faults.dedup_by(|a, b| a.path == b.path);
        let mut symlinks = self.symlinks.into_inner().unwrap_or_else(|p| p.into_inner());
        symlinks.sort();
        symlinks.dedup();
        let mut blob_anomalies = self.blob_anomalies.into_inner().unwrap_or_else(|p| p.into_inner());
        blob_anomalies.sort_by(|x, y| x.components().cmp(y.components()));
        Inventory {
            root: root.clone(),
            blobs,
            repositories,
            scheduler_state,
            problems,
            files: self.files.into_inner(),
            blob_anomalies,
            faults,
            symlinks,
        }
    }

    fn problem(&self, code: Code, rel: &str, message: String) {
        use Code::*;
        // What the first pass does not accept under blobs/, the registry's
        // own blob walk still enters: remember where, for the gc model.
        if matches!(
            code,
            Symlink | NotRegularFile | WrongFileType | UnexpectedEntry | NonUtf8Name | NfsLeftover | BlobMisplaced
        ) {
            let below = match rel.strip_prefix(BLOBS) {
                Some("") => Some(PathBuf::new()),
                Some(rest) => rest.strip_prefix('/').map(crate::names::to_path),
                None => None,
            };
            if let Some(below) = below {
                self.blob_anomalies.lock().unwrap_or_else(|e| e.into_inner()).push(below);
            }
        }
        if code == Symlink {
            self.symlinks.lock().unwrap_or_else(|e| e.into_inner()).push(rel.to_string());
        }
        let p = Problem::new(code, rel, message);
        self.problems.lock().unwrap_or_else(|e| e.into_inner()).push(p);
    }

    /// Whether `rel` was met as a symlink or a failed read (so its absence
    /// from the inventory means nothing).
    fn was_unseen(&self, rel: &str) -> bool {
        let symlinks = self.symlinks.lock().unwrap_or_else(|e| e.into_inner());
        let faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        symlinks.iter().any(|s| s == rel) || faults.iter().any(|f| f.path == rel)
    }

    /// A read that failed: an `unreadable` problem, and a [`ReadFault`] the
    /// models weigh, unless the backend's own type check refused the entry
    /// (`InvalidData`: the entry was reached, and is not what was asked for).
    fn fault(&self, rel: &str, op: FaultOp, e: &io::Error, what: &str) {
        self.problem(Code::Unreadable, rel, format!("{what}: {e}"));
        if e.raw_os_error().is_none() && e.kind() == io::ErrorKind::InvalidData {
            return;
        }
        // Search permission without read permission still lets the
        // registry reach what lies below.
        let traversable = op == FaultOp::List && self.backend.traversable(rel);
        let fault = ReadFault {
            path: rel.to_string(),
            op,
            error: go_error_text(&e.to_string()),
            traversable,
            vanished: e.kind() == io::ErrorKind::NotFound,
        };
        self.faults.lock().unwrap_or_else(|e| e.into_inner()).push(fault);
    }

    fn unexpected(&self, rel: &str, kind: Kind, why: &str) {
        let (code, msg) = match kind {
            Kind::Symlink => (Code::Symlink, "is a symbolic link; regaudit does not follow it".to_string()),
            Kind::Other => {
                (Code::NotRegularFile, "is a device, FIFO or socket, which has no place in a registry tree".to_string())
            }
            _ if why.starts_with("a file where") || why.starts_with("a directory where") => {
                (Code::WrongFileType, format!("is {why}"))
            }
            Kind::Dir => (Code::UnexpectedEntry, format!("directory is {why}")),
            Kind::File => (Code::UnexpectedEntry, format!("file is {why}")),
        };
        self.problem(code, rel, msg);
    }

    /// Lists an open directory (at `rel`), reporting (not failing on) errors.
    fn list(&self, dir: &B::Dir, rel: &str) -> Vec<Entry> {
        match self.backend.list(dir) {
            Ok(entries) => entries,
            Err(e) => {
                self.fault(rel, FaultOp::List, &e, "directory cannot be listed");
                Vec::new()
            }
        }
    }

    /// Opens and lists the directory at `rel`, reporting errors.
    fn list_rel(&self, rel: &str) -> Vec<Entry> {
        match self.backend.open_dir(rel) {
            Ok(dir) => self.list(&dir, rel),
            Err(e) => {
                self.fault(rel, FaultOp::List, &e, "directory cannot be listed");
                Vec::new()
            }
        }
    }

    /// Lists a directory, keeping only entries that can be walked: names that
    /// are UTF-8, and directories or regular files. Others are reported.
    fn children(&self, rel: &str) -> Vec<(String, Kind)> {
        self.keep(self.list_rel(rel), rel, false)
    }

    /// [`Walker::children`] of a directory of repository names, keeping a
    /// name that is not UTF-8 (marked, see [`crate::names`]): the catalog
    /// lists such a repository, though no request can address it.
    fn name_children(&self, rel: &str) -> Vec<(String, Kind)> {
        self.keep(self.list_rel(rel), rel, true)
    }

    fn keep(&self, entries: Vec<Entry>, rel: &str, keep_non_utf8: bool) -> Vec<(String, Kind)> {
        let mut out = Vec::new();
        for entry in entries {
            if !entry.utf8 {
                let msg = "name is not UTF-8, so the registry cannot address it";
                self.problem(Code::NonUtf8Name, &join(rel, &entry.name), msg.into());
                if !keep_non_utf8 {
                    continue;
                }
            }
            let name = entry.name;
            if name.starts_with(".nfs") && entry.kind != Kind::Dir {
                let msg = "is an NFS silly-rename leftover: a file deleted while a client still had it open; \
                           it goes away when that client closes it";
                self.problem(Code::NfsLeftover, &join(rel, &name), msg.into());
                continue;
            }
            match entry.kind {
                Kind::Dir | Kind::File => out.push((name, entry.kind)),
                kind => self.unexpected(&join(rel, &name), kind, ""),
            }
        }
        out.sort();
        out
    }

    /// Walks everything below `rel`, calling `visit` for every file and
    /// directory with its components relative to where the walk started
    /// (`parts` names `rel` itself); a directory is descended only when
    /// `visit` returns true.
    fn walk_subtree(&self, rel: &str, parts: &[&str], visit: &mut Visit<B::Dir>) {
        match self.backend.open_dir(rel) {
            Ok(dir) => self.walk_open(&dir, &mut rel.to_string(), parts, visit),
            Err(e) => self.fault(rel, FaultOp::List, &e, "directory cannot be listed"),
        }
    }

    /// The walk proper. `rel` is the open directory's path, extended and
    /// restored as the walk descends; one component list per directory is
    /// shared by its entries. Nothing here allocates per file but its name.
    fn walk_open(&self, dir: &B::Dir, rel: &mut String, parts: &[&str], visit: &mut Visit<B::Dir>) {
        let children = self.keep(self.list(dir, rel), rel, false);
        let mut view = Vec::with_capacity(parts.len() + 1);
        view.extend_from_slice(parts);
        view.push("");
        let mut files = 0;
        for (name, kind) in &children {
            let is_dir = *kind == Kind::Dir;
            files += u64::from(!is_dir);
            *view.last_mut().expect("view ends with this entry") = name;
            let at = At { dir, name, parent: rel, listed: true };
            if visit(at, &view, is_dir) && is_dir {
                match self.backend.open_child_dir(dir, name) {
                    Ok(child) => {
                        let len = rel.len();
                        rel.push('/');
                        rel.push_str(name);
                        self.walk_open(&child, rel, &view, visit);
                        rel.truncate(len);
                    }
                    Err(e) => self.fault(&join(rel, name), FaultOp::List, &e, "directory cannot be listed"),
                }
            }
        }
        self.files.fetch_add(files, Ordering::Relaxed);
    }

    fn walk_blobs(&self, blobs_dir: &str) -> SortedMap<Digest, Blob> {
        // Shards (`<alg>/<hh>`) are the unit of parallel work.
        let mut shards = Vec::new();
        for (alg, kind) in self.children(blobs_dir) {
            let path = join(blobs_dir, &alg);
            match layout::classify_blob_path(&[&alg], kind == Kind::Dir) {
                BlobPath::Dir => {
                    for (hh, kind) in self.children(&path) {
                        match layout::classify_blob_path(&[&alg, &hh], kind == Kind::Dir) {
                            BlobPath::Dir => shards.push((alg.clone(), hh)),
                            BlobPath::Unexpected(why) => self.unexpected(&join(&path, &hh), kind, why),
                            _ => {}
                        }
                    }
                }
                BlobPath::Unexpected(why) => self.unexpected(&path, kind, why),
                _ => {}
            }
        }
        shards
            .par_iter()
            .map(|(alg, hh)| {
                let mut found = HashMap::new();
                let mut blob_dirs = Vec::new();
                let dir = format!("{blobs_dir}/{alg}/{hh}");
                self.walk_subtree(&dir, &[alg, hh], &mut |at, parts, is_dir| match layout::classify_blob_path(
                    parts, is_dir,
                ) {
                    BlobPath::BlobDir { digest, misplaced: true } => {
                        let msg =
                            format!("blob {digest} sits in the wrong shard directory; the registry never looks here");
                        self.problem(Code::BlobMisplaced, &at.path(), msg);
                        false
                    }
                    BlobPath::BlobDir { digest, misplaced: false } => {
                        blob_dirs.push(digest);
                        true
                    }
                    BlobPath::Data { digest, .. } => {
                        match self.backend.size_in(at.dir, at.name) {
                            Ok(size) => {
                                found.insert(digest, Blob { size });
                            }
                            Err(e) => self.fault(&at.path(), FaultOp::Stat, &e, "cannot be examined"),
                        }
                        false
                    }
                    BlobPath::Dir => true,
                    BlobPath::Unexpected(why) => {
                        self.unexpected(&at.path(), if is_dir { Kind::Dir } else { Kind::File }, why);
                        false
                    }
                });
                for digest in blob_dirs {
                    if !found.contains_key(&digest) && !self.was_unseen(&layout::blob_data(&digest)) {
                        self.problem(
                            Code::BlobWithoutData,
                            &layout::blob_dir(&digest),
                            format!("blob {digest} has a directory but no data file"),
                        );
                    }
                }
                found
            })
            .flat_map_iter(|found| found)
            .collect::<Vec<(Digest, Blob)>>()
            .into_iter()
            .collect()
    }

    /// Finds repositories below `rel` (whose name so far is `name`). A
    /// directory is a repository when it has `_`-prefixed children; the
    /// other children are further name components (nested repositories).
    fn walk_repositories(&self, rel: &str, name: String) -> Vec<Repository> {
        let children = self.name_children(rel);
        let (data, nested): (Vec<_>, Vec<_>) = children.into_iter().partition(|(n, _)| n.starts_with('_'));
        let mut found: Vec<Repository> = nested
            .par_iter()
            .flat_map(|(child, kind)| {
                let path = join(rel, child);
                if *kind != Kind::Dir {
                    self.unexpected(&path, *kind, "not part of the registry layout");
                    return Vec::new();
                }
                let child_name = if name.is_empty() { child.clone() } else { format!("{name}/{child}") };
                self.walk_repositories(&path, child_name)
            })
            .collect();
        if !data.is_empty() {
            if name.is_empty() {
                for (n, kind) in &data {
                    self.unexpected(&join(rel, n), *kind, "not part of the registry layout");
                }
            } else {
                found.push(self.read_repository(rel, name, &data));
            }
        }
        found
    }

    fn read_repository(&self, rel: &str, name: String, data: &[(String, Kind)]) -> Repository {
        let mut repo = Repository::new(name);
        // Links arrive in sorted order; collecting them into the maps at the
        // end bulk-builds full B-tree nodes (inserting one by one in order
        // leaves every node half empty, which doubles the memory).
        let mut links = LinkBuffers::default();
        for (top, kind) in data {
            let path = join(rel, top);
            let is_dir = *kind == Kind::Dir;
            if !is_dir {
                self.files.fetch_add(1, Ordering::Relaxed);
            }
            match layout::classify_repo_path(&[top], is_dir) {
                RepoPath::Dir => {}
                RepoPath::Unexpected(why) => {
                    self.unexpected(&path, *kind, why);
                    continue;
                }
                // A single component is a directory or unexpected; stay total.
                _ => {
                    self.unexpected(&path, *kind, "not part of the registry layout");
                    continue;
                }
            }
            match top.as_str() {
                "_layers" => repo.has_layers_dir = true,
                "_manifests" => repo.has_manifests_dir = true,
                _ => repo.has_uploads_dir = true,
            }
            self.walk_subtree(&path, &[top], &mut |at, parts, is_dir| {
                self.record(&mut repo, &mut links, at, parts, is_dir)
            });
        }
        repo.stray_links = links.strays;
        repo.link_dirs = links.link_dirs;
        repo.layer_links = links.layers.into_iter().collect();
        repo.revisions = links.revisions.into_iter().collect();
        repo.tags = links
            .tags
            .into_iter()
            .map(|(name, t)| (name, Tag { current: t.current, index: t.index.into_iter().collect() }))
            .collect();
        repo
    }

    /// Reads a link; `expect` is the content its path implies, if any.
    fn read_link(&self, at: At<B::Dir>, expect: Option<&Digest>) -> LinkRead {
        let mut buf = [0u8; LINK_READ_LIMIT + 1];
        match self.backend.read_small(at.dir, at.name, at.listed, expect, &mut buf) {
            Ok(bytes) => LinkRead::Content(parse_link(bytes)),
            // Unlisted: a link that is not there is simply not recorded.
            Err(e) if !at.listed && e.kind() == io::ErrorKind::NotFound => LinkRead::Nothing,
            Err(e) if !at.listed && e.kind() == io::ErrorKind::IsADirectory => LinkRead::Directory,
            Err(e) => {
                let path = at.path();
                // Opened without listing: a symlink shows as ELOOP here.
                if !at.listed && e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                    self.unexpected(&path, Kind::Symlink, "");
                    return LinkRead::Nothing;
                }
                // Opened without listing its directory: when that directory
                // is what cannot be read, the fault is the directory's.
                if !at.listed {
                    if let Some((dir, _)) = path.rsplit_once('/') {
                        if let Err(list_error) = self.backend.open_dir(dir).and_then(|d| self.backend.list(&d)) {
                            self.fault(dir, FaultOp::List, &list_error, "directory cannot be listed");
                            return LinkRead::Nothing;
                        }
                    }
                }
                self.fault(&path, FaultOp::Read, &e, "link cannot be read");
                LinkRead::Nothing
            }
        }
    }

    /// Reads a link where the layout has one; a directory found there
    /// without listing is taken as the full walk takes it.
    fn read_layout_link(
        &self,
        links: &mut LinkBuffers,
        at: At<B::Dir>,
        parts: &[&str],
        expect: Option<&Digest>,
    ) -> Option<Link> {
        match self.read_link(at, expect) {
            LinkRead::Content(l) => Some(l),
            LinkRead::Directory => {
                self.unexpected(&at.path(), Kind::Dir, layout::DIR_FOR_FILE);
                self.strays(links, at, parts, true, layout::DIR_FOR_FILE);
                None
            }
            LinkRead::Nothing => None,
        }
    }

    /// What the registry's GC still reads at an entry the layout does not
    /// expect (`why`): a `link` file below `_manifests/revisions` or
    /// `_layers`, and every one below such a directory (its walk enters
    /// them all); and a directory standing where a link belongs.
    fn strays(&self, links: &mut LinkBuffers, at: At<B::Dir>, parts: &[&str], is_dir: bool, why: &str) {
        let is_link = parts.last() == Some(&"link");
        if is_dir && is_link && why == layout::DIR_FOR_FILE {
            links.link_dirs.push(parts.join("/"));
        }
        if !layout::gc_enumerates_links(parts) {
            return;
        }
        if !is_dir {
            if is_link {
                if let Some(link) = self.read_link(at, None).content() {
                    links.strays.push(StrayLink { path: parts.join("/"), link });
                }
            }
            return;
        }
        match self.backend.open_child_dir(at.dir, at.name) {
            Ok(dir) => self.walk_open(&dir, &mut at.path(), parts, &mut |at, parts, is_dir| {
                if !is_dir && parts.last() == Some(&"link") {
                    if let Some(link) = self.read_link(at, None).content() {
                        links.strays.push(StrayLink { path: parts.join("/"), link });
                    }
                }
                is_dir
            }),
            Err(e) => self.fault(&at.path(), FaultOp::List, &e, "directory cannot be listed"),
        }
    }

    /// Records one entry of a repository; returns whether to descend.
    fn record(
        &self,
        repo: &mut Repository,
        links: &mut LinkBuffers,
        at: At<B::Dir>,
        parts: &[&str],
        is_dir: bool,
    ) -> bool {
        match layout::classify_repo_path(parts, is_dir) {
            RepoPath::Dir if self.leaves == Leaves::OpenLinks && layout::holds_only_a_link(parts) => {
                // v3's GC reads every `link` below `_layers`, subdirectories
                // of a link's directory included: list one that may have
                // any. One stat, for layer links only.
                if parts[0] == "_layers" && self.backend.may_hold_dirs(at.dir, at.name) {
                    return true;
                }
                let name = format!("{}/link", at.name);
                let link = At { name: &name, listed: false, ..at };
                self.record(repo, links, link, &[parts, &["link"]].concat(), false);
                false
            }
            RepoPath::Dir => true,
            RepoPath::Unexpected(why) => {
                self.unexpected(&at.path(), if is_dir { Kind::Dir } else { Kind::File }, why);
                self.strays(links, at, parts, is_dir, why);
                false
            }
            RepoPath::LayerLink(d) => {
                if let Some(link) = self.read_layout_link(links, at, parts, Some(&d)) {
                    links.layers.push((d, link));
                }
                false
            }
            RepoPath::RevisionLink(d) => {
                if let Some(link) = self.read_layout_link(links, at, parts, Some(&d)) {
                    links.revisions.push((d, link));
                }
                false
            }
            RepoPath::SignatureLink { revision, signature } => {
                repo.signature_links.push((revision, signature));
                false
            }
            RepoPath::TagDir(tag) => {
                tag_mut(links, tag);
                true
            }
            RepoPath::TagCurrentLink(tag) => {
                let current = self.read_layout_link(links, at, parts, None);
                tag_mut(links, tag).current = current;
                false
            }
            RepoPath::TagIndexLink(tag, d) => {
                if let Some(link) = self.read_layout_link(links, at, parts, Some(&d)) {
                    tag_mut(links, tag).index.push((d, link));
                }
                false
            }
            RepoPath::UploadDir(uuid) => {
                repo.uploads.entry(uuid.to_string()).or_default();
                true
            }
            RepoPath::UploadData(uuid) => {
                match self.backend.size_in(at.dir, at.name) {
                    Ok(size) => repo.uploads.entry(uuid.to_string()).or_default().data_size = Some(size),
                    Err(e) => self.fault(&at.path(), FaultOp::Stat, &e, "cannot be examined"),
                }
                false
            }
            RepoPath::UploadStartedAt(uuid) => {
                let mut buf = [0u8; STARTEDAT_READ_LIMIT + 1];
                match self.backend.read_small(at.dir, at.name, true, None, &mut buf) {
                    Ok(bytes) => {
                        repo.uploads.entry(uuid.to_string()).or_default().started_at =
                            Some(String::from_utf8_lossy(bytes).into_owned())
                    }
                    Err(e) => self.fault(&at.path(), FaultOp::Read, &e, "cannot be read"),
                }
                false
            }
            RepoPath::UploadHashState(uuid) => {
                let rel = parts[parts.len() - 2..].join("/");
                repo.uploads.entry(uuid.to_string()).or_default().hashstates.push(rel);
                false
            }
        }
    }
}

/// The tag's record, created on first sight; the name is copied only then.
fn tag_mut<'r>(links: &'r mut LinkBuffers, tag: &str) -> &'r mut TagBuffer {
    if !links.tags.contains_key(tag) {
        links.tags.insert(tag.to_string(), TagBuffer::default());
    }
    links.tags.get_mut(tag).expect("inserted above")
}
