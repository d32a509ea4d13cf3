//! The filesystem backend: a storage tree on a local (or mounted)
//! filesystem, read through descriptors relative to the root's, with the
//! syscalls of [`sys`].

mod sys;

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, OFlags};

pub use sys::noatime_honoured;

use crate::inventory::go_error_text;
use crate::layout;
use crate::storage::{Backend, BlobRead, BlobReader, Capabilities, Entry, Kind, ObjectStat, StorageRoot, Version};

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
    /// An object-store root that cannot be listed or is not a registry
    /// tree (the message names the URL, never a credential).
    #[error("{0}")]
    Object(String),
}

/// A storage tree in a directory. Paths from the root are opened whole
/// (the root is canonical, so it has no symlink; and a path too long for
/// the kernel fails here as it fails for the registry), names within a
/// directory the walk holds open relative to its descriptor.
///
/// With `follow` (`--follow-symlinks`), symlinks are followed as the
/// registry's filesystem driver follows them (Go's `os.Open`, `os.Stat`:
/// registry/storage/driver/filesystem/driver.go, v2.8.2 and v3.1.1): every
/// open is of the whole path, so the kernel counts its symlinks as it does
/// for the registry, and a listed symlink is what its target is.
pub struct FsBackend {
    root: PathBuf,
    follow: bool,
}

/// An open directory. When following symlinks it also knows its path and
/// the identities of the directories it was reached through, so that a
/// symlink back to one of them is refused (`ELOOP`) instead of walked
/// forever.
pub struct FsDir {
    fd: OwnedFd,
    followed: Option<Followed>,
}

struct Followed {
    rel: String,
    /// (device, inode) of this directory and of every one above it on the
    /// way from the root.
    chain: Arc<Vec<(u64, u64)>>,
}

/// A name or a path relative to the root (marked names, see
/// [`crate::names`]) as the bytes it stands for.
fn os(rel: &str) -> std::borrow::Cow<'_, OsStr> {
    match crate::names::to_bytes(rel) {
        std::borrow::Cow::Borrowed(b) => std::borrow::Cow::Borrowed(OsStr::from_bytes(b)),
        std::borrow::Cow::Owned(b) => {
            std::borrow::Cow::Owned(<std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(b))
        }
    }
}

/// A blob's data file, streamed.
struct FsBlob(std::fs::File);

impl io::Read for FsBlob {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl BlobRead for FsBlob {
    fn version(&self) -> io::Result<Version> {
        use std::os::unix::fs::MetadataExt;
        let m = self.0.metadata()?;
        Ok(Version { size: m.len(), tag: format!("{}.{} {}.{}", m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()) })
    }

    fn sequential(&self) {
        // Only a hint for read-ahead; reading is correct without it.
        let _ = rustix::fs::fadvise(&self.0, 0, None, rustix::fs::Advice::Sequential);
    }
}

fn object_stat(st: crate::storage::FileStat) -> ObjectStat {
    ObjectStat {
        kind: sys::mode_kind(st.mode),
        size: st.size,
        modified: Some(st.mtime),
        born: st.btime,
        etag: None,
        file: Some(st),
    }
}

/// The error a directory met again below itself gives: the kernel's for a
/// symlink loop, which is what the registry meets walking it.
fn symlink_loop() -> io::Error {
    io::Error::from_raw_os_error(rustix::io::Errno::LOOP.raw_os_error())
}

impl FsBackend {
    /// The tree in the directory `root` (canonical); `follow`: follow
    /// symlinks as the registry does.
    pub fn new(root: PathBuf, follow: bool) -> FsBackend {
        FsBackend { root, follow }
    }

    /// The absolute path of `rel`.
    fn abs(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(os(rel))
        }
    }

    /// Opens `rel` as every open here is.
    fn open_rel(&self, rel: &str, flags: OFlags) -> io::Result<OwnedFd> {
        if self.follow {
            sys::open_following(rustix::fs::CWD, self.abs(rel), flags)
        } else {
            sys::open_at(rustix::fs::CWD, self.abs(rel), flags)
        }
    }

    fn open_regular(&self, rel: &str) -> io::Result<std::fs::File> {
        let file = std::fs::File::from(self.open_rel(rel, OFlags::empty())?);
        if !file.metadata()?.is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "blob data is not a regular file"));
        }
        Ok(file)
    }

    /// The identities of the directories on the way to `rel` (the root
    /// first), each as the path up to it resolves; `ELOOP` when one repeats.
    fn chain_to(&self, rel: &str) -> io::Result<Vec<(u64, u64)>> {
        let mut chain =
            vec![sys::identity(sys::open_following(rustix::fs::CWD, &self.root, OFlags::DIRECTORY)?.as_fd())?];
        let mut prefix = String::new();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            prefix = crate::storage::join(&prefix, part);
            let st = sys::stat_following(rustix::fs::CWD, self.abs(&prefix).as_os_str())?;
            #[allow(clippy::unnecessary_cast)] // the widths differ per target
            let id = (st.st_dev as u64, st.st_ino as u64);
            if chain.contains(&id) {
                return Err(symlink_loop());
            }
            chain.push(id);
        }
        Ok(chain)
    }

    /// Opens the directory at `rel` following symlinks, refusing one that
    /// is its own ancestor.
    fn open_dir_following(&self, rel: &str, parent: Option<&[(u64, u64)]>) -> io::Result<FsDir> {
        let fd = self.open_rel(rel, OFlags::DIRECTORY)?;
        let id = sys::identity(fd.as_fd())?;
        let mut chain = match parent {
            Some(p) => p.to_vec(),
            None => {
                let mut c = self.chain_to(rel)?;
                c.pop();
                c
            }
        };
        if chain.contains(&id) {
            return Err(symlink_loop());
        }
        chain.push(id);
        Ok(FsDir { fd, followed: Some(Followed { rel: rel.to_string(), chain: Arc::new(chain) }) })
    }

    /// What a listed symlink at `rel` leads to: its target's kind, or the
    /// symlink itself when it leads nowhere (dangling, a loop, no access;
    /// the scan asks again and reports why).
    fn resolve(&self, rel: &str) -> Kind {
        match sys::stat_following(rustix::fs::CWD, self.abs(rel).as_os_str()) {
            Ok(st) => sys::stat_kind(&st),
            Err(_) => Kind::Symlink,
        }
    }
}

impl Backend for FsBackend {
    type Dir = FsDir;

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            directories: true,
            mtimes: true,
            symlinks: true,
            birth_times: true,
            etags: false,
            driver: "filesystem",
        }
    }

    fn open_dir(&self, rel: &str) -> io::Result<FsDir> {
        if self.follow {
            return self.open_dir_following(rel, None);
        }
        Ok(FsDir { fd: self.open_rel(rel, OFlags::DIRECTORY)?, followed: None })
    }

    fn open_child_dir(&self, dir: &FsDir, name: &str) -> io::Result<FsDir> {
        match &dir.followed {
            Some(f) => self.open_dir_following(&crate::storage::join(&f.rel, name), Some(&f.chain)),
            None => Ok(FsDir { fd: sys::open_at(dir.fd.as_fd(), os(name), OFlags::DIRECTORY)?, followed: None }),
        }
    }

    fn list(&self, dir: &FsDir) -> io::Result<Vec<Entry>> {
        let mut entries = sys::list_fd(dir.fd.as_fd())?;
        if let Some(f) = &dir.followed {
            for e in entries.iter_mut().filter(|e| e.kind == Kind::Symlink) {
                e.kind = self.resolve(&crate::storage::join(&f.rel, &e.name));
            }
        }
        Ok(entries)
    }

    fn read_small<'b>(
        &self,
        dir: &FsDir,
        name: &str,
        listed: bool,
        _expect: Option<&crate::digest::Digest>,
        buf: &'b mut [u8],
    ) -> io::Result<&'b [u8]> {
        // One open and one read: nothing is inferred on a filesystem.
        let fd = match &dir.followed {
            Some(f) => self.open_rel(&crate::storage::join(&f.rel, name), OFlags::empty())?,
            None => sys::open_at(dir.fd.as_fd(), os(name), OFlags::empty())?,
        };
        if listed {
            sys::read_to_limit(fd, buf)
        } else {
            sys::read_unlisted(fd, buf)
        }
    }

    fn size_in(&self, dir: &FsDir, name: &str) -> io::Result<u64> {
        match &dir.followed {
            Some(f) => {
                let abs = self.abs(&crate::storage::join(&f.rel, name));
                Ok(sys::stat_following(rustix::fs::CWD, abs.as_os_str())?.st_size as u64)
            }
            None => sys::size_at(dir.fd.as_fd(), &os(name)),
        }
    }

    fn may_hold_dirs(&self, dir: &FsDir, name: &str) -> bool {
        if let Some(f) = &dir.followed {
            let abs = self.abs(&crate::storage::join(&f.rel, name));
            #[allow(clippy::unnecessary_cast)] // `st_nlink` is u32 on some targets
            return sys::stat_following(rustix::fs::CWD, abs.as_os_str()).map_or(true, |st| st.st_nlink as u64 != 2);
        }
        // A directory's link count is 2 plus its subdirectories; filesystems
        // that do not count them (btrfs) say 1.
        sys::nlink_at(dir.fd.as_fd(), &os(name)).is_none_or(|n| n != 2)
    }

    fn kind(&self, rel: &str) -> io::Result<Kind> {
        if self.follow {
            return Ok(sys::stat_kind(&sys::stat_following(rustix::fs::CWD, self.abs(rel).as_os_str())?));
        }
        sys::kind_at(rustix::fs::CWD, self.abs(rel).as_os_str())
    }

    fn follows_symlinks(&self) -> bool {
        self.follow
    }

    fn kind_unfollowed(&self, rel: &str) -> io::Result<Kind> {
        sys::kind_at(rustix::fs::CWD, self.abs(rel).as_os_str())
    }

    fn list_unfollowed(&self, dir: &FsDir) -> io::Result<Vec<Entry>> {
        sys::list_fd(dir.fd.as_fd())
    }

    fn traversable(&self, rel: &str) -> bool {
        std::fs::symlink_metadata(self.abs(rel).join(".")).is_ok()
    }

    fn read_capped(&self, rel: &str, limit: usize) -> io::Result<Vec<u8>> {
        sys::read_capped(self.open_rel(rel, OFlags::empty())?, limit)
    }

    fn open(&self, rel: &str) -> io::Result<BlobReader> {
        let file = self.open_regular(rel)?;
        Ok(Box::new(FsBlob(file)))
    }

    fn open_with_stat(&self, rel: &str) -> io::Result<(BlobReader, ObjectStat)> {
        let (file, stat) = if self.follow {
            let fd = self.open_rel(rel, OFlags::empty())?;
            let stat = sys::statx_fd(fd.as_fd())?;
            if sys::mode_kind(stat.mode) != Kind::File {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "not a regular file"));
            }
            (std::fs::File::from(fd), stat)
        } else {
            open_with_stat(&self.abs(rel))?
        };
        Ok((Box::new(FsBlob(file)), object_stat(stat)))
    }

    /// Its directory is opened as every open here is (no symlinks,
    /// `O_NOATIME`; opening a directory does not read it), and `statx` on
    /// the name reads only the inode. Following symlinks, the target's
    /// stat, as Go's `os.Stat` gives the registry.
    fn stat(&self, rel: &str) -> io::Result<ObjectStat> {
        if self.follow {
            let flags = AtFlags::empty();
            return sys::statx_at(rustix::fs::CWD, self.abs(rel).as_os_str(), flags).map(object_stat);
        }
        stat_entry(&self.abs(rel)).map(object_stat)
    }
}

/// Locates a storage root on the filesystem: accepts the storage root,
/// `docker/registry/v2`, or anything between.
pub fn locate(arg: &Path) -> Result<StorageRoot, LocateError> {
    locate_with(arg, follow_symlinks())
}

/// Whether [`locate`] follows symlinks: set once by the command line
/// (`--follow-symlinks`) for every tree the command reads.
static FOLLOW_SYMLINKS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes [`locate`] follow symlinks (`--follow-symlinks`) or not (the
/// forensic default).
pub fn set_follow_symlinks(follow: bool) {
    FOLLOW_SYMLINKS.store(follow, std::sync::atomic::Ordering::Relaxed);
}

fn follow_symlinks() -> bool {
    FOLLOW_SYMLINKS.load(std::sync::atomic::Ordering::Relaxed)
}

/// [`locate`], following symlinks as the registry does when `follow`.
pub fn locate_with(arg: &Path, follow: bool) -> Result<StorageRoot, LocateError> {
    let abs = std::fs::canonicalize(arg).map_err(|e| LocateError::Io(arg.to_path_buf(), e))?;
    match std::fs::metadata(&abs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(LocateError::NotARegistry(arg.to_path_buf())),
        Err(e) => return Err(LocateError::Io(arg.to_path_buf(), e)),
    }
    // A directory we may not read says so, rather than "not a registry".
    if let Err(e) = sys::open_at(rustix::fs::CWD, &abs, OFlags::DIRECTORY) {
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
                // Followed, a symlinked level is walked like any directory.
                let symlinked = ["docker", "docker/registry", layout::V2]
                    .into_iter()
                    .filter(|_| !follow)
                    .find(|rel| std::fs::symlink_metadata(root.join(rel)).is_ok_and(|m| m.is_symlink()))
                    .map(str::to_string);
                let backend = FsBackend::new(root.clone(), follow);
                return Ok(StorageRoot::new(root, symlinked, Arc::new(backend)));
            }
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(LocateError::Io(root.join(layout::V2), e));
            }
            _ => {}
        }
    }
    // Somewhere below docker/registry/v2: name the root instead.
    let parts: Vec<&OsStr> = abs.iter().collect();
    let inside = parts.windows(3).rposition(|w| w == [OsStr::new("docker"), OsStr::new("registry"), OsStr::new("v2")]);
    if let Some(i) = inside {
        let root: PathBuf = parts[..i].iter().collect();
        if root.join(layout::V2).is_dir() {
            return Err(LocateError::InsideTheTree(arg.to_path_buf(), root));
        }
    }
    Err(LocateError::NotARegistry(arg.to_path_buf()))
}

/// Stats an absolute `path` below a canonical storage root (see
/// [`Backend::stat`]). For callers that hold a path, not a
/// [`StorageRoot`]; prefer [`StorageRoot::stat`].
pub fn stat_entry(path: &Path) -> io::Result<crate::storage::FileStat> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no file name"));
    };
    let dir = sys::open_at(rustix::fs::CWD, parent, OFlags::DIRECTORY)?;
    sys::statx_at(dir.as_fd(), name, AtFlags::SYMLINK_NOFOLLOW)
}

/// Opens an absolute `path` as every open here is and stats it before
/// anything is read; prefer [`StorageRoot::open_with_stat`].
pub fn open_with_stat(path: &Path) -> io::Result<(std::fs::File, crate::storage::FileStat)> {
    let fd = sys::open_at(rustix::fs::CWD, path, OFlags::empty())?;
    let stat = sys::statx_fd(fd.as_fd())?;
    if sys::mode_kind(stat.mode) != Kind::File {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a regular file"));
    }
    Ok((std::fs::File::from(fd), stat))
}

/// With `--follow-symlinks`, the directories the tree at `root` leads to
/// through symlinks (canonical; those already inside `root` left out), and
/// those they lead to in turn: part of the tree as the registry sees it, so
/// a writer must keep away from them as from the root. Empty when not
/// following. Read as every walk here reads (`O_NOATIME`, no writes); a
/// symlink that cannot be resolved leads nowhere.
pub fn followed_targets(root: &Path) -> Vec<PathBuf> {
    if !follow_symlinks() {
        return Vec::new();
    }
    let Ok(root) = std::fs::canonicalize(root) else { return Vec::new() };
    let mut found = Vec::new();
    let mut pending = vec![root.clone()];
    let mut walked = std::collections::BTreeSet::new();
    while let Some(dir) = pending.pop() {
        if walked.insert(dir.clone()) {
            symlinked_dirs_below(&dir, &mut |target| {
                if !target.starts_with(&root) && !found.contains(&target) {
                    found.push(target.clone());
                    pending.push(target);
                }
            });
        }
    }
    found
}

/// Calls `found` with the canonical directory of every symlink below `dir`
/// (symlinks themselves not followed) that leads to a directory.
fn symlinked_dirs_below(dir: &Path, found: &mut dyn FnMut(PathBuf)) {
    let Ok(fd) = sys::open_at(rustix::fs::CWD, dir, OFlags::DIRECTORY) else { return };
    for entry in sys::list_fd(fd.as_fd()).unwrap_or_default() {
        let path = dir.join(os(&entry.name));
        match entry.kind {
            Kind::Dir => symlinked_dirs_below(&path, found),
            Kind::Symlink => {
                if let Ok(target) = std::fs::canonicalize(&path) {
                    if target.is_dir() {
                        found(target);
                    }
                }
            }
            _ => {}
        }
    }
}
