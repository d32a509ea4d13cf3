//! The tree reader: the only code that touches the filesystem.
//!
//! Everything is opened read-only, without following symlinks, with
//! `O_NOATIME` where the kernel allows it (so access times stay as found),
//! and with `O_NONBLOCK` so a FIFO planted in the tree cannot hang us.
//! One parallel pass (rayon, per repository and per blob shard) lists the
//! tree, reads every link file and `startedat`, and builds the
//! [`Inventory`]. Blob contents are read later, on demand.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read};
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use rayon::prelude::*;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir};

use crate::digest::{parse_link, Digest, LINK_READ_LIMIT};
use crate::inventory::{
    go_error_text, Blob, EntryKind, FaultOp, Inventory, Link, ReadFault, Repository, StrayLink, Tag, WalkEntry,
    WalkFacts,
};
use crate::layout::{self, BlobPath, RepoPath};
use crate::problem::{normalize, Code, Problem};
use crate::sorted_map::SortedMap;

/// Longest `startedat` we read; a valid one is 20 bytes.
const STARTEDAT_READ_LIMIT: usize = 256;
/// Largest `scheduler-state.json` we read.
pub const SCHEDULER_STATE_READ_LIMIT: usize = 64 << 20;

/// Stack of each walker thread. The walks recurse once per directory level,
/// and a hostile tree nests directories as deep as a path can reach
/// (PATH_MAX, about 2,000 levels); beyond that opens fail and are reported.
/// Only the pages used are ever touched.
const WALKER_STACK: usize = 64 << 20;

/// Gives the global thread pool stacks deep enough for [`WALKER_STACK`]'s
/// worst case. Call before any parallel work; later calls do nothing.
pub fn configure_threads() {
    let _ = rayon::ThreadPoolBuilder::new().stack_size(WALKER_STACK).build_global();
}

#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error("{}: {}", .0.display(), go_error_text(&.1.to_string()))]
    Io(PathBuf, io::Error),
    #[error(
        "{0} is not a registry storage tree: no docker/registry/v2 directory in it or above it \
         (give the storage root that holds docker/, or docker/registry/v2 itself)"
    )]
    NotARegistry(PathBuf),
    #[error(
        "{0} is inside a registry storage tree, not its root: give the storage root {1} \
         (the directory that holds docker/)"
    )]
    InsideTheTree(PathBuf, PathBuf),
}

/// A located storage root: the directory that holds `docker/registry/v2`.
#[derive(Clone, Debug)]
pub struct StorageRoot {
    path: PathBuf,
    /// The first of `docker`, `docker/registry`, `docker/registry/v2` that is
    /// a symbolic link (relative to the root): the registry follows it, the
    /// walk does not.
    symlinked: Option<String>,
}

impl StorageRoot {
    /// Accepts the storage root, `docker/registry/v2`, or anything between.
    pub fn locate(arg: &Path) -> Result<StorageRoot, LocateError> {
        let abs = std::fs::canonicalize(arg).map_err(|e| LocateError::Io(arg.to_path_buf(), e))?;
        match std::fs::metadata(&abs) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(LocateError::NotARegistry(arg.to_path_buf())),
            Err(e) => return Err(LocateError::Io(arg.to_path_buf(), e)),
        }
        // A directory we may not read says so, rather than "not a registry".
        if let Err(e) = open(&abs, OFlags::DIRECTORY) {
            return Err(LocateError::Io(arg.to_path_buf(), e));
        }
        // The argument may name the root itself or one of the three levels below it.
        let suffixes: [&[&str]; 4] = [&[], &["docker"], &["docker", "registry"], &["docker", "registry", "v2"]];
        for suffix in suffixes {
            let ends_with = abs.iter().rev().take(suffix.len()).eq(suffix.iter().rev().map(OsStr::new));
            if !ends_with {
                continue;
            }
            let mut root = abs.clone();
            for _ in suffix {
                root.pop();
            }
            match std::fs::metadata(root.join(layout::V2)) {
                Ok(m) if m.is_dir() => {
                    let symlinked = ["docker", "docker/registry", layout::V2]
                        .into_iter()
                        .find(|rel| std::fs::symlink_metadata(root.join(rel)).is_ok_and(|m| m.is_symlink()))
                        .map(str::to_string);
                    return Ok(StorageRoot { path: root, symlinked });
                }
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(LocateError::Io(root.join(layout::V2), e));
                }
                _ => {}
            }
        }
        // Somewhere below docker/registry/v2: name the root instead.
        let parts: Vec<&OsStr> = abs.iter().collect();
        let inside =
            parts.windows(3).rposition(|w| w == [OsStr::new("docker"), OsStr::new("registry"), OsStr::new("v2")]);
        if let Some(i) = inside {
            let root: PathBuf = parts[..i].iter().collect();
            if root.join(layout::V2).is_dir() {
                return Err(LocateError::InsideTheTree(arg.to_path_buf(), root));
            }
        }
        Err(LocateError::NotARegistry(arg.to_path_buf()))
    }

    /// The first symlink among `docker`, `docker/registry` and
    /// `docker/registry/v2` (relative to the root), if any.
    pub fn symlinked_layout(&self) -> Option<&str> {
        self.symlinked.as_deref()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads up to `limit` + 1 bytes of a blob's data, so callers can tell
    /// "exactly at the limit" from "over it".
    pub fn read_blob(&self, d: &Digest, limit: usize) -> io::Result<Vec<u8>> {
        read_capped(&self.path.join(layout::blob_data(d)), limit)
    }

    /// Opens a blob's data for streaming, read-only, without following a
    /// symlink; refuses anything but a regular file.
    pub fn open_blob(&self, d: &Digest) -> io::Result<std::fs::File> {
        let file = std::fs::File::from(open(&self.path.join(layout::blob_data(d)), OFlags::empty())?);
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "blob data is not a regular file"));
        }
        Ok(file)
    }

    /// The registry's own walks of `repositories/` (the catalog) and
    /// `blobs/` (blob enumeration), reduced to what the [`Inventory`] does
    /// not hold. A second pass, made only by commands that model
    /// `garbage-collect`.
    pub fn registry_walks(&self, inv: &Inventory) -> WalkFacts {
        let v2 = self.path.join(layout::V2);
        let repos = v2.join("repositories");
        let blobs = v2.join("blobs");
        if self.symlinked.is_some() {
            // Nothing below a symlink is walked; the models say so.
            return WalkFacts::default();
        }
        let mut facts =
            WalkFacts { repositories_dir: is_real_dir(&repos), blobs_dir: is_real_dir(&blobs), ..WalkFacts::default() };
        if facts.repositories_dir {
            catalog_walk(&repos, String::new(), &mut facts.catalog_dirs);
            for (rel, entries) in &facts.catalog_dirs {
                if !entries.iter().any(|e| e.name == "_manifests" && e.kind == EntryKind::Dir) {
                    continue;
                }
                let tags = repos.join(crate::names::to_path(rel)).join("_manifests/tags");
                if is_real_dir(&tags) {
                    let files = sorted_entries(&tags)
                        .into_iter()
                        .filter(|e| e.kind != Kind::Dir)
                        .map(|e| crate::names::from_os(&e.name).into_owned())
                        .collect();
                    facts.tags_dirs.insert(rel.clone(), files);
                }
            }
        }
        // Canonical blobs are not stray; only where the scan found something
        // else can a stray `data` file be, so only there is walked again.
        if facts.blobs_dir {
            for rel in &inv.blob_anomalies {
                let mut parts: Vec<String> = rel.iter().map(|c| crate::names::from_os(c).into_owned()).collect();
                let path = blobs.join(rel);
                match std::fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => blob_data_walk(&path, &mut parts, &mut facts.stray_blob_data),
                    Ok(m) if parts.last().is_some_and(|n| n == "data") => {
                        let view: Vec<&str> = parts.iter().map(String::as_str).collect();
                        let canonical = m.is_file()
                            && matches!(
                                layout::classify_blob_path(&view, false),
                                BlobPath::Data { misplaced: false, .. }
                            );
                        if !canonical {
                            facts.stray_blob_data.push(parts.join("/"));
                        }
                    }
                    _ => {}
                }
            }
        }
        facts
    }

    /// Every entry that is not a directory at or below `rel` (a path
    /// relative to the storage root), as paths relative to the root: what a
    /// recursive delete of `rel` removes. Symlinks are listed, not followed.
    pub fn files_below(&self, rel: &str) -> Vec<String> {
        let mut out = Vec::new();
        let path = self.path.join(crate::names::to_path(rel));
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => files_below_dir(&path, rel, &mut out),
            Ok(_) => out.push(rel.to_string()),
            Err(_) => {}
        }
        out
    }

    /// One pass over the whole tree.
    pub fn scan(&self, leaves: Leaves) -> Inventory {
        let walker = Walker {
            root: &self.path,
            leaves,
            problems: Mutex::default(),
            blob_anomalies: Mutex::default(),
            faults: Mutex::default(),
            symlinks: Mutex::default(),
            files: AtomicU64::new(0),
        };
        let v2 = self.path.join(layout::V2);
        let mut blobs_dir = None;
        let mut repos_dir = None;
        let top = match &self.symlinked {
            Some(rel) => {
                walker.unexpected(&self.path.join(rel), Kind::Symlink, "");
                Vec::new()
            }
            None => walker.list(None, &v2),
        };
        for entry in top {
            match (entry.name.as_bytes(), entry.kind) {
                (b"blobs", Kind::Dir) => blobs_dir = Some(v2.join("blobs")),
                (b"repositories", Kind::Dir) => repos_dir = Some(v2.join("repositories")),
                _ => walker.unexpected(&v2.join(&entry.name), entry.kind, "not part of the registry layout"),
            }
        }
        let (blobs, repositories) = rayon::join(
            || blobs_dir.map(|d| walker.walk_blobs(&d)).unwrap_or_default(),
            || repos_dir.map(|d| walker.walk_repositories(&d, String::new())).unwrap_or_default(),
        );
        let mut repositories = repositories;
        repositories.sort_by(|a, b| a.name.cmp(&b.name));
        let scheduler_state = match read_capped(&self.path.join("scheduler-state.json"), SCHEDULER_STATE_READ_LIMIT) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                walker.fault(&self.path.join("scheduler-state.json"), FaultOp::Read, &e, "cannot be read");
                None
            }
        };
        let mut problems = walker.problems.into_inner().unwrap_or_else(|p| p.into_inner());
        normalize(&mut problems);
        let mut faults = walker.faults.into_inner().unwrap_or_else(|p| p.into_inner());
        faults.sort();
        faults.dedup_by(|a, b| a.path == b.path);
        let mut symlinks = walker.symlinks.into_inner().unwrap_or_else(|p| p.into_inner());
        symlinks.sort();
        symlinks.dedup();
        Inventory {
            root: self.path.clone(),
            blobs,
            repositories,
            scheduler_state,
            problems,
            files: walker.files.into_inner(),
            blob_anomalies: {
                let mut a = walker.blob_anomalies.into_inner().unwrap_or_else(|p| p.into_inner());
                a.sort_by(|x, y| x.components().cmp(y.components()));
                a
            },
            faults,
            symlinks,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Dir,
    File,
    Symlink,
    Other,
}

struct Entry {
    name: std::ffi::OsString,
    kind: Kind,
}

/// Set once the kernel refuses `O_NOATIME` (we do not own the files and
/// lack CAP_FOWNER); from then on we open without it.
static NOATIME_REFUSED: AtomicBool = AtomicBool::new(false);
/// Set once `openat2` proves unusable (a kernel before 5.6, or a seccomp
/// policy that refuses it); from then on we use plain `open`.
static OPENAT2_UNUSABLE: AtomicBool = AtomicBool::new(false);

/// Opens `path` read-only: never for writing, never creating, never
/// following a symlink in any component (`RESOLVE_NO_SYMLINKS`; the root
/// itself is canonical, so it has none), with `O_NOATIME` where allowed and
/// `O_NONBLOCK` so a FIFO cannot hang us.
fn open(path: &Path, extra: OFlags) -> io::Result<rustix::fd::OwnedFd> {
    let base = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | extra;
    if !NOATIME_REFUSED.load(Ordering::Relaxed) {
        match open_no_symlinks(path, base | OFlags::NOATIME) {
            Err(rustix::io::Errno::PERM) => NOATIME_REFUSED.store(true, Ordering::Relaxed),
            other => return other.map_err(io::Error::from),
        }
    }
    open_no_symlinks(path, base).map_err(io::Error::from)
}

fn open_no_symlinks(path: &Path, flags: OFlags) -> rustix::io::Result<rustix::fd::OwnedFd> {
    use rustix::io::Errno;
    if !OPENAT2_UNUSABLE.load(Ordering::Relaxed) {
        match rustix::fs::openat2(rustix::fs::CWD, path, flags, Mode::empty(), rustix::fs::ResolveFlags::NO_SYMLINKS) {
            Err(Errno::NOSYS) => OPENAT2_UNUSABLE.store(true, Ordering::Relaxed),
            // Either O_NOATIME was refused or a seccomp policy refuses
            // openat2 itself: a plain open tells them apart.
            Err(Errno::PERM) => {
                let plain = rustix::fs::open(path, flags, Mode::empty());
                if plain.is_ok() {
                    OPENAT2_UNUSABLE.store(true, Ordering::Relaxed);
                }
                return plain;
            }
            other => return other,
        }
    }
    rustix::fs::open(path, flags, Mode::empty())
}

/// Reads at most `limit` + 1 bytes of a regular file, never following a
/// symlink; anything else (a FIFO, a device, a directory) is refused, so a
/// planted `/dev/zero` cannot feed us forever.
pub fn read_capped(path: &Path, limit: usize) -> io::Result<Vec<u8>> {
    let file = std::fs::File::from(open(path, OFlags::empty())?);
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a regular file"));
    }
    let mut buf = Vec::new();
    file.take(limit as u64 + 1).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Fills `buf` (its length is the read limit + 1) from a small file known to
/// be regular, with one `read` when the file is smaller than that (a short
/// read of a regular file means its end). When the walk's listing is what
/// says it is regular, there is no `fstat` either: `O_NONBLOCK` keeps a file
/// swapped for a FIFO in the meantime from hanging us. Two syscalls fewer
/// per link than [`read_capped`], on the path that reads every link of the
/// tree. Returns what was read.
fn read_to_limit(mut file: std::fs::File, buf: &mut [u8]) -> io::Result<&[u8]> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => {
                filled += n;
                if filled < buf.len() {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(&buf[..filled])
}

fn list_dir(path: &Path) -> io::Result<Vec<Entry>> {
    list_fd(open(path, OFlags::DIRECTORY)?.as_fd())
}

/// Lists an open directory with `getdents64` on the descriptor itself.
fn list_fd(dir: BorrowedFd) -> io::Result<Vec<Entry>> {
    let mut buf = [MaybeUninit::<u8>::uninit(); 16 << 10];
    let mut raw = RawDir::new(dir, &mut buf);
    let mut out = Vec::new();
    while let Some(entry) = raw.next() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        let kind = match entry.file_type() {
            FileType::Directory => Kind::Dir,
            FileType::RegularFile => Kind::File,
            FileType::Symlink => Kind::Symlink,
            // Some filesystems do not fill d_type; ask lstat.
            FileType::Unknown => match rustix::fs::statat(dir, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                    FileType::Directory => Kind::Dir,
                    FileType::RegularFile => Kind::File,
                    FileType::Symlink => Kind::Symlink,
                    _ => Kind::Other,
                },
                Err(_) => Kind::Other,
            },
            _ => Kind::Other,
        };
        out.push(Entry { name: OsStr::from_bytes(name).to_os_string(), kind });
    }
    Ok(out)
}

/// A name inside a directory the walk holds open. Opening relative to that
/// descriptor makes the kernel resolve one path component instead of the
/// dozen of a full path: the largest single cost of a walk.
#[derive(Clone, Copy)]
struct At<'a> {
    dir: BorrowedFd<'a>,
    name: &'a str,
    /// The directory's path, for problems.
    parent: &'a Path,
    /// The directory listing named it (and said what it is).
    listed: bool,
}

impl At<'_> {
    /// The full path, built only when a problem needs it.
    fn path(&self) -> PathBuf {
        self.parent.join(self.name)
    }

    /// Opens the name read-only, never through a symlink (`RESOLVE_BENEATH`
    /// and `RESOLVE_NO_SYMLINKS`; or, without `openat2`, `O_NOFOLLOW` on a
    /// single component), with `O_NOATIME` where allowed.
    fn open(&self, extra: OFlags) -> io::Result<OwnedFd> {
        let base = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | extra;
        if !NOATIME_REFUSED.load(Ordering::Relaxed) {
            match self.open_flags(base | OFlags::NOATIME) {
                Err(rustix::io::Errno::PERM) => NOATIME_REFUSED.store(true, Ordering::Relaxed),
                other => return other.map_err(io::Error::from),
            }
        }
        self.open_flags(base).map_err(io::Error::from)
    }

    fn open_flags(&self, flags: OFlags) -> rustix::io::Result<OwnedFd> {
        use rustix::fs::ResolveFlags;
        use rustix::io::Errno;
        if !OPENAT2_UNUSABLE.load(Ordering::Relaxed) {
            let resolve = ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH;
            match rustix::fs::openat2(self.dir, self.name, flags, Mode::empty(), resolve) {
                Err(Errno::NOSYS) => OPENAT2_UNUSABLE.store(true, Ordering::Relaxed),
                // As in `open_no_symlinks`: O_NOATIME refused, or openat2 itself.
                Err(Errno::PERM) => {
                    let plain = rustix::fs::openat(self.dir, self.name, flags, Mode::empty());
                    if plain.is_ok() {
                        OPENAT2_UNUSABLE.store(true, Ordering::Relaxed);
                    }
                    return plain;
                }
                other => return other,
            }
        }
        rustix::fs::openat(self.dir, self.name, flags, Mode::empty())
    }

    /// Reads a small file the listing said is regular into `buf`; see
    /// [`read_to_limit`].
    fn read_listed<'b>(&self, buf: &'b mut [u8]) -> io::Result<&'b [u8]> {
        read_to_limit(std::fs::File::from(self.open(OFlags::empty())?), buf)
    }

    /// Reads a small file the listing has not seen: it may be missing or be
    /// anything, so its type is checked on the open descriptor first.
    fn read_unlisted<'b>(&self, buf: &'b mut [u8]) -> io::Result<&'b [u8]> {
        let fd = self.open(OFlags::empty())?;
        match FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) {
            FileType::RegularFile => {}
            FileType::Directory => return Err(io::ErrorKind::IsADirectory.into()),
            _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "not a regular file")),
        }
        read_to_limit(std::fs::File::from(fd), buf)
    }

    /// Link count of the entry, without following a symlink.
    #[allow(clippy::unnecessary_cast)] // `st_nlink` is u32 on some targets
    fn nlink(&self) -> Option<u64> {
        rustix::fs::statat(self.dir, self.name, AtFlags::SYMLINK_NOFOLLOW).ok().map(|st| st.st_nlink as u64)
    }

    /// Size of the entry, without following a symlink.
    fn size(&self) -> io::Result<u64> {
        Ok(rustix::fs::statat(self.dir, self.name, AtFlags::SYMLINK_NOFOLLOW)?.st_size as u64)
    }
}

fn is_real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

fn entry_kind(kind: Kind) -> EntryKind {
    match kind {
        Kind::Dir => EntryKind::Dir,
        Kind::File => EntryKind::File,
        Kind::Symlink => EntryKind::Symlink,
        Kind::Other => EntryKind::Other,
    }
}

/// Entries of a directory sorted bytewise, as the registry's walk sorts them.
/// An unlistable directory reads as empty (the scan reports it).
fn sorted_entries(dir: &Path) -> Vec<Entry> {
    let mut entries = list_dir(dir).unwrap_or_default();
    entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    entries
}

/// Records `dir` (named `rel` below `repositories/`) and descends into every
/// child directory the catalog walk enters: those not starting with `_`.
fn catalog_walk(dir: &Path, rel: String, out: &mut std::collections::BTreeMap<String, Vec<WalkEntry>>) {
    let entries = sorted_entries(dir);
    let mut recorded = Vec::with_capacity(entries.len());
    for e in &entries {
        let name = crate::names::from_os(&e.name).into_owned();
        if e.kind == Kind::Dir && !name.starts_with('_') {
            let child = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            catalog_walk(&dir.join(&e.name), child, out);
        }
        recorded.push(WalkEntry { name, kind: entry_kind(e.kind) });
    }
    out.insert(rel, recorded);
}

/// Collects the `data` files under `blobs/` that are not canonical blobs.
fn blob_data_walk(dir: &Path, parts: &mut Vec<String>, out: &mut Vec<String>) {
    for e in sorted_entries(dir) {
        let name = crate::names::from_os(&e.name).into_owned();
        parts.push(name);
        if e.kind == Kind::Dir {
            blob_data_walk(&dir.join(&e.name), parts, out);
        } else if parts.last().is_some_and(|n| n == "data") {
            let view: Vec<&str> = parts.iter().map(String::as_str).collect();
            let canonical = e.kind == Kind::File
                && matches!(layout::classify_blob_path(&view, false), BlobPath::Data { misplaced: false, .. });
            if !canonical {
                out.push(parts.join("/"));
            }
        }
        parts.pop();
    }
}

fn files_below_dir(dir: &Path, rel: &str, out: &mut Vec<String>) {
    for e in sorted_entries(dir) {
        let name = crate::names::from_os(&e.name);
        let child = format!("{rel}/{name}");
        if e.kind == Kind::Dir {
            files_below_dir(&dir.join(&e.name), &child, out);
        } else {
            out.push(child);
        }
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

struct Walker<'a> {
    root: &'a Path,
    leaves: Leaves,
    problems: Mutex<Vec<Problem>>,
    blob_anomalies: Mutex<Vec<PathBuf>>,
    faults: Mutex<Vec<ReadFault>>,
    symlinks: Mutex<Vec<String>>,
    files: AtomicU64,
}

impl Walker<'_> {
    fn rel(&self, path: &Path) -> String {
        crate::names::from_os(path.strip_prefix(self.root).unwrap_or(path).as_os_str()).into_owned()
    }

    fn problem(&self, code: Code, path: &Path, message: String) {
        use Code::*;
        // What the first pass does not accept under blobs/, the registry's
        // own blob walk still enters: remember where, for the gc model.
        if matches!(
            code,
            Symlink | NotRegularFile | WrongFileType | UnexpectedEntry | NonUtf8Name | NfsLeftover | BlobMisplaced
        ) {
            if let Ok(rel) = path.strip_prefix(self.root.join(layout::V2).join("blobs")) {
                self.blob_anomalies.lock().unwrap_or_else(|e| e.into_inner()).push(rel.to_path_buf());
            }
        }
        if code == Symlink {
            self.symlinks.lock().unwrap_or_else(|e| e.into_inner()).push(self.rel(path));
        }
        let p = Problem::new(code, self.rel(path), message);
        self.problems.lock().unwrap_or_else(|e| e.into_inner()).push(p);
    }

    /// Whether `rel` was met as a symlink or a failed read (so its absence
    /// from the inventory means nothing).
    fn was_unseen(&self, rel: &str) -> bool {
        let symlinks = self.symlinks.lock().unwrap_or_else(|e| e.into_inner());
        let faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        symlinks.iter().any(|s| s == rel) || faults.iter().any(|f| f.path == rel)
    }

    /// A read that failed: an `unreadable` problem, and (for OS errors) a
    /// [`ReadFault`] the models weigh.
    fn fault(&self, path: &Path, op: FaultOp, e: &io::Error, what: &str) {
        self.problem(Code::Unreadable, path, format!("{what}: {e}"));
        if e.raw_os_error().is_none() {
            return;
        }
        // Search permission without read permission still lets the
        // registry reach what lies below.
        let traversable = op == FaultOp::List && std::fs::symlink_metadata(path.join(".")).is_ok();
        let fault = ReadFault {
            path: self.rel(path),
            op,
            error: go_error_text(&e.to_string()),
            traversable,
            vanished: e.kind() == io::ErrorKind::NotFound,
        };
        self.faults.lock().unwrap_or_else(|e| e.into_inner()).push(fault);
    }

    fn unexpected(&self, path: &Path, kind: Kind, why: &str) {
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
        self.problem(code, path, msg);
    }

    /// Lists a directory, reporting (not failing on) errors.
    fn list(&self, dir: Option<BorrowedFd>, path: &Path) -> Vec<Entry> {
        let listed = match dir {
            Some(fd) => list_fd(fd),
            None => list_dir(path),
        };
        match listed {
            Ok(entries) => entries,
            Err(e) => {
                self.fault(path, FaultOp::List, &e, "directory cannot be listed");
                Vec::new()
            }
        }
    }

    /// Lists a directory, keeping only entries that can be walked: names that
    /// are UTF-8, and directories or regular files. Others are reported.
    fn children(&self, path: &Path) -> Vec<(String, Kind)> {
        self.children_of(None, path)
    }

    /// [`Walker::children`] of a directory already open as `dir`.
    fn children_of(&self, dir: Option<BorrowedFd>, path: &Path) -> Vec<(String, Kind)> {
        self.children_keeping(dir, path, false)
    }

    /// [`Walker::children`] of a directory of repository names, keeping a
    /// name that is not UTF-8 (marked, see [`crate::names`]): the catalog
    /// lists such a repository, though no request can address it.
    fn name_children(&self, path: &Path) -> Vec<(String, Kind)> {
        self.children_keeping(None, path, true)
    }

    fn children_keeping(&self, dir: Option<BorrowedFd>, path: &Path, keep_non_utf8: bool) -> Vec<(String, Kind)> {
        let mut out = Vec::new();
        for entry in self.list(dir, path) {
            let name = match entry.name.into_string() {
                Ok(name) => name,
                Err(name) => {
                    let msg = "name is not UTF-8, so the registry cannot address it";
                    self.problem(Code::NonUtf8Name, &path.join(&name), msg.into());
                    if !keep_non_utf8 {
                        continue;
                    }
                    crate::names::from_os(&name).into_owned()
                }
            };
            if name.starts_with(".nfs") && entry.kind != Kind::Dir {
                let msg = "is an NFS silly-rename leftover: a file deleted while a client still had it open; \
                           it goes away when that client closes it";
                self.problem(Code::NfsLeftover, &path.join(name), msg.into());
                continue;
            }
            match entry.kind {
                Kind::Dir | Kind::File => out.push((name, entry.kind)),
                kind => self.unexpected(&path.join(name), kind, ""),
            }
        }
        out.sort();
        out
    }

    /// Walks everything below `dir`, calling `visit` for every file and
    /// directory with its components relative to where the walk started
    /// (`parts` names `dir` itself); a directory is descended only when
    /// `visit` returns true.
    fn walk_subtree(&self, dir: &Path, parts: &[&str], visit: &mut dyn FnMut(At, &[&str], bool) -> bool) {
        match open(dir, OFlags::DIRECTORY) {
            Ok(fd) => self.walk_open(fd.as_fd(), &mut dir.to_path_buf(), parts, visit),
            Err(e) => self.fault(dir, FaultOp::List, &e, "directory cannot be listed"),
        }
    }

    /// The walk proper. `dir` is the open directory's path, extended and
    /// restored as the walk descends; one component list per directory is
    /// shared by its entries. Nothing here allocates per file but its name.
    fn walk_open(
        &self,
        fd: BorrowedFd,
        dir: &mut PathBuf,
        parts: &[&str],
        visit: &mut dyn FnMut(At, &[&str], bool) -> bool,
    ) {
        let children = self.children_of(Some(fd), dir);
        let mut view = Vec::with_capacity(parts.len() + 1);
        view.extend_from_slice(parts);
        view.push("");
        let mut files = 0;
        for (name, kind) in &children {
            let is_dir = *kind == Kind::Dir;
            files += u64::from(!is_dir);
            *view.last_mut().expect("view ends with this entry") = name;
            let at = At { dir: fd, name, parent: dir, listed: true };
            if visit(at, &view, is_dir) && is_dir {
                match at.open(OFlags::DIRECTORY) {
                    Ok(child) => {
                        dir.push(name);
                        self.walk_open(child.as_fd(), dir, &view, visit);
                        dir.pop();
                    }
                    Err(e) => self.fault(&at.path(), FaultOp::List, &e, "directory cannot be listed"),
                }
            }
        }
        self.files.fetch_add(files, Ordering::Relaxed);
    }

    fn walk_blobs(&self, blobs_dir: &Path) -> SortedMap<Digest, Blob> {
        // Shards (`<alg>/<hh>`) are the unit of parallel work.
        let mut shards = Vec::new();
        for (alg, kind) in self.children(blobs_dir) {
            let path = blobs_dir.join(&alg);
            match layout::classify_blob_path(&[&alg], kind == Kind::Dir) {
                BlobPath::Dir => {
                    for (hh, kind) in self.children(&path) {
                        match layout::classify_blob_path(&[&alg, &hh], kind == Kind::Dir) {
                            BlobPath::Dir => shards.push((alg.clone(), hh)),
                            BlobPath::Unexpected(why) => self.unexpected(&path.join(&hh), kind, why),
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
                let dir = blobs_dir.join(alg).join(hh);
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
                        match at.size() {
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
                            &self.root.join(layout::blob_dir(&digest)),
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

    /// Finds repositories below `dir` (whose name so far is `name`). A
    /// directory is a repository when it has `_`-prefixed children; the
    /// other children are further name components (nested repositories).
    fn walk_repositories(&self, dir: &Path, name: String) -> Vec<Repository> {
        let children = self.name_children(dir);
        let (data, nested): (Vec<_>, Vec<_>) = children.into_iter().partition(|(n, _)| n.starts_with('_'));
        let mut found: Vec<Repository> = nested
            .par_iter()
            .flat_map(|(child, kind)| {
                let path = dir.join(crate::names::to_path(child));
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
                    self.unexpected(&dir.join(crate::names::to_path(n)), *kind, "not part of the registry layout");
                }
            } else {
                found.push(self.read_repository(dir, name, &data));
            }
        }
        found
    }

    fn read_repository(&self, dir: &Path, name: String, data: &[(String, Kind)]) -> Repository {
        let mut repo = Repository::new(name);
        // Links arrive in sorted order; collecting them into the maps at the
        // end bulk-builds full B-tree nodes (inserting one by one in order
        // leaves every node half empty, which doubles the memory).
        let mut links = LinkBuffers::default();
        for (top, kind) in data {
            let path = dir.join(crate::names::to_path(top));
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

    fn read_link(&self, at: At) -> LinkRead {
        let mut buf = [0u8; LINK_READ_LIMIT + 1];
        let read = if at.listed { at.read_listed(&mut buf) } else { at.read_unlisted(&mut buf) };
        match read {
            Ok(bytes) => LinkRead::Content(parse_link(bytes)),
            // Unlisted: a link that is not there is simply not recorded.
            Err(e) if !at.listed && e.kind() == io::ErrorKind::NotFound => LinkRead::Nothing,
            Err(e) if !at.listed && e.kind() == io::ErrorKind::IsADirectory => LinkRead::Directory,
            Err(e) => {
                // Opened without listing its directory: when that directory
                // is what cannot be read, the fault is the directory's.
                let path = at.path();
                // Opened without listing: a symlink shows as ELOOP here.
                if !at.listed && e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
                    self.unexpected(&path, Kind::Symlink, "");
                    return LinkRead::Nothing;
                }
                if !at.listed {
                    if let Some(dir) = path.parent() {
                        if let Err(list_error) = list_dir(dir) {
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
    fn read_layout_link(&self, links: &mut LinkBuffers, at: At, parts: &[&str]) -> Option<Link> {
        match self.read_link(at) {
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
    fn strays(&self, links: &mut LinkBuffers, at: At, parts: &[&str], is_dir: bool, why: &str) {
        let is_link = parts.last() == Some(&"link");
        if is_dir && is_link && why == layout::DIR_FOR_FILE {
            links.link_dirs.push(parts.join("/"));
        }
        if !layout::gc_enumerates_links(parts) {
            return;
        }
        if !is_dir {
            if is_link {
                if let Some(link) = self.read_link(at).content() {
                    links.strays.push(StrayLink { path: parts.join("/"), link });
                }
            }
            return;
        }
        match at.open(OFlags::DIRECTORY) {
            Ok(fd) => self.walk_open(fd.as_fd(), &mut at.path(), parts, &mut |at, parts, is_dir| {
                if !is_dir && parts.last() == Some(&"link") {
                    if let Some(link) = self.read_link(at).content() {
                        links.strays.push(StrayLink { path: parts.join("/"), link });
                    }
                }
                is_dir
            }),
            Err(e) => self.fault(&at.path(), FaultOp::List, &e, "directory cannot be listed"),
        }
    }

    /// Records one entry of a repository; returns whether to descend.
    fn record(&self, repo: &mut Repository, links: &mut LinkBuffers, at: At, parts: &[&str], is_dir: bool) -> bool {
        match layout::classify_repo_path(parts, is_dir) {
            RepoPath::Dir if self.leaves == Leaves::OpenLinks && layout::holds_only_a_link(parts) => {
                // v3's GC reads every `link` below `_layers`, subdirectories
                // of a link's directory included: list one that has any (its
                // link count says; always where subdirectories are not
                // counted, as on btrfs). One stat, for layer links only.
                if parts[0] == "_layers" && at.nlink().is_none_or(|n| n != 2) {
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
                if let Some(link) = self.read_layout_link(links, at, parts) {
                    links.layers.push((d, link));
                }
                false
            }
            RepoPath::RevisionLink(d) => {
                if let Some(link) = self.read_layout_link(links, at, parts) {
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
                let current = self.read_layout_link(links, at, parts);
                tag_mut(links, tag).current = current;
                false
            }
            RepoPath::TagIndexLink(tag, d) => {
                if let Some(link) = self.read_layout_link(links, at, parts) {
                    tag_mut(links, tag).index.push((d, link));
                }
                false
            }
            RepoPath::UploadDir(uuid) => {
                repo.uploads.entry(uuid.to_string()).or_default();
                true
            }
            RepoPath::UploadData(uuid) => {
                match at.size() {
                    Ok(size) => repo.uploads.entry(uuid.to_string()).or_default().data_size = Some(size),
                    Err(e) => self.fault(&at.path(), FaultOp::Stat, &e, "cannot be examined"),
                }
                false
            }
            RepoPath::UploadStartedAt(uuid) => {
                let mut buf = [0u8; STARTEDAT_READ_LIMIT + 1];
                match at.read_listed(&mut buf) {
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

// Times and identities of single entries, for `timeline` and the evidence
// formats (DFXML, bodyfile). Appended here because only this module opens
// the tree.

/// Whether every open so far used `O_NOATIME` (false once the kernel
/// refused it: we neither own the files nor hold CAP_FOWNER).
pub fn noatime_honoured() -> bool {
    !NOATIME_REFUSED.load(Ordering::Relaxed)
}

/// A time as `statx` gives it: seconds since the Unix epoch and nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    pub secs: i64,
    pub nanos: u32,
}

/// What `statx` says of one entry, the entry itself and never a symlink's target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStat {
    pub device: u64,
    pub inode: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime: Stamp,
    pub mtime: Stamp,
    pub ctime: Stamp,
    /// Birth (creation) time, where the filesystem records one.
    pub btime: Option<Stamp>,
}

/// Stats `path` (absolute, below a canonical storage root) without
/// following a symlink in any component and without changing any access
/// time: its directory is opened as every open here is (no symlinks,
/// `O_NOATIME`; opening a directory does not read it), and `statx` on the
/// name reads only the inode.
pub fn stat_entry(path: &Path) -> io::Result<FileStat> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no file name"));
    };
    let dir = open(parent, OFlags::DIRECTORY)?;
    statx_at(dir.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW)
}

fn statx_fd(fd: BorrowedFd) -> io::Result<FileStat> {
    statx_at(fd, "", AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW)
}

fn statx_at<P: rustix::path::Arg>(dir: BorrowedFd, name: P, flags: AtFlags) -> io::Result<FileStat> {
    use rustix::fs::StatxFlags;
    let want = StatxFlags::BASIC_STATS | StatxFlags::BTIME;
    let st = rustix::fs::statx(dir, name, flags, want)?;
    let stamp = |t: rustix::fs::StatxTimestamp| Stamp { secs: t.tv_sec, nanos: t.tv_nsec };
    let has_btime = StatxFlags::from_bits_retain(st.stx_mask).contains(StatxFlags::BTIME);
    Ok(FileStat {
        device: rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor),
        inode: st.stx_ino,
        mode: u32::from(st.stx_mode),
        uid: st.stx_uid,
        gid: st.stx_gid,
        size: st.stx_size,
        atime: stamp(st.stx_atime),
        mtime: stamp(st.stx_mtime),
        ctime: stamp(st.stx_ctime),
        btime: has_btime.then(|| stamp(st.stx_btime)),
    })
}

/// Opens a regular file as every open here is (read-only, no symlinks,
/// `O_NOATIME`) and stats the descriptor before anything is read, so the
/// times are as found and of the very file then read.
pub fn open_with_stat(path: &Path) -> io::Result<(std::fs::File, FileStat)> {
    let fd = open(path, OFlags::empty())?;
    let stat = statx_fd(fd.as_fd())?;
    if FileType::from_raw_mode(stat.mode) != FileType::RegularFile {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a regular file"));
    }
    Ok((std::fs::File::from(fd), stat))
}
