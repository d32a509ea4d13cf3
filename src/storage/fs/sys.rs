//! The filesystem backend's system calls: the one read-only open, listing
//! with `getdents64`, small reads, `statx`.
//!
//! Everything is opened read-only, without following symlinks, with
//! `O_NOATIME` where the kernel allows it (so access times stay as found),
//! and with `O_NONBLOCK` so a FIFO planted in the tree cannot hang us.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir, ResolveFlags};
use rustix::io::Errno;

use crate::storage::{Entry, FileStat, Kind, Stamp};

/// Set once the kernel refuses `O_NOATIME` (we do not own the files and
/// lack CAP_FOWNER); from then on we open without it.
static NOATIME_REFUSED: AtomicBool = AtomicBool::new(false);
/// Set once `openat2` proves unusable (a kernel before 5.6, or a seccomp
/// policy that refuses it); from then on we use plain `openat`.
static OPENAT2_UNUSABLE: AtomicBool = AtomicBool::new(false);

/// Whether every open so far used `O_NOATIME` (false once the kernel
/// refused it: we neither own the files nor hold CAP_FOWNER).
pub fn noatime_honoured() -> bool {
    !NOATIME_REFUSED.load(Ordering::Relaxed)
}

/// Opens `path` relative to `dir` (or an absolute `path`, with
/// [`rustix::fs::CWD`]) read-only: never for writing, never creating, never
/// following a symlink in any component (`RESOLVE_NO_SYMLINKS`, and
/// `RESOLVE_BENEATH` for a relative path; without `openat2`, `O_NOFOLLOW` on
/// the last component), with `O_NOATIME` where allowed and `O_NONBLOCK` so a
/// FIFO cannot hang us. Opening relative to a directory the walk holds open
/// makes the kernel resolve one component instead of the dozen of a full
/// path: the largest single cost of a walk.
pub fn open_at<P: AsRef<OsStr>>(dir: BorrowedFd, path: P, extra: OFlags) -> io::Result<OwnedFd> {
    let path = path.as_ref();
    let base = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | extra;
    if !NOATIME_REFUSED.load(Ordering::Relaxed) {
        match open_no_symlinks(dir, path, base | OFlags::NOATIME) {
            Err(Errno::PERM) => NOATIME_REFUSED.store(true, Ordering::Relaxed),
            other => return other.map_err(io::Error::from),
        }
    }
    open_no_symlinks(dir, path, base).map_err(io::Error::from)
}

fn open_no_symlinks(dir: BorrowedFd, path: &OsStr, flags: OFlags) -> rustix::io::Result<OwnedFd> {
    if !OPENAT2_UNUSABLE.load(Ordering::Relaxed) {
        let mut resolve = ResolveFlags::NO_SYMLINKS;
        if !path.as_bytes().starts_with(b"/") {
            resolve |= ResolveFlags::BENEATH;
        }
        match rustix::fs::openat2(dir, path, flags, Mode::empty(), resolve) {
            Err(Errno::NOSYS) => OPENAT2_UNUSABLE.store(true, Ordering::Relaxed),
            // Either O_NOATIME was refused or a seccomp policy refuses
            // openat2 itself: a plain open tells them apart.
            Err(Errno::PERM) => {
                let plain = rustix::fs::openat(dir, path, flags, Mode::empty());
                if plain.is_ok() {
                    OPENAT2_UNUSABLE.store(true, Ordering::Relaxed);
                }
                return plain;
            }
            other => return other,
        }
    }
    rustix::fs::openat(dir, path, flags, Mode::empty())
}

/// Reads at most `limit` + 1 bytes of a regular file; anything else (a
/// FIFO, a device, a directory) is refused, so a planted `/dev/zero` cannot
/// feed us forever.
pub fn read_capped(fd: OwnedFd, limit: usize) -> io::Result<Vec<u8>> {
    let file = std::fs::File::from(fd);
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
pub fn read_to_limit(fd: OwnedFd, buf: &mut [u8]) -> io::Result<&[u8]> {
    let mut file = std::fs::File::from(fd);
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

/// Reads a small file the listing has not seen: it may be missing or be
/// anything, so its type is checked on the open descriptor first.
pub fn read_unlisted(fd: OwnedFd, buf: &mut [u8]) -> io::Result<&[u8]> {
    match FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) {
        FileType::RegularFile => {}
        FileType::Directory => return Err(io::ErrorKind::IsADirectory.into()),
        _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "not a regular file")),
    }
    read_to_limit(fd, buf)
}

fn kind_of(file_type: FileType) -> Kind {
    match file_type {
        FileType::Directory => Kind::Dir,
        FileType::RegularFile => Kind::File,
        FileType::Symlink => Kind::Symlink,
        _ => Kind::Other,
    }
}

/// What `name` in `dir` is, without following a symlink.
pub fn kind_at<P: rustix::path::Arg>(dir: BorrowedFd, name: P) -> io::Result<Kind> {
    Ok(kind_of(FileType::from_raw_mode(rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?.st_mode)))
}

/// Lists an open directory with `getdents64` on the descriptor itself.
pub fn list_fd(dir: BorrowedFd) -> io::Result<Vec<Entry>> {
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
            // Some filesystems do not fill d_type; ask lstat.
            FileType::Unknown => kind_at(dir, entry.file_name()).unwrap_or(Kind::Other),
            t => kind_of(t),
        };
        let (name, utf8) = match std::str::from_utf8(name) {
            Ok(name) => (name.to_string(), true),
            Err(_) => (crate::names::from_bytes(name).into_owned(), false),
        };
        out.push(Entry { name, utf8, kind });
    }
    Ok(out)
}

/// Link count of `name` in `dir`, without following a symlink.
#[allow(clippy::unnecessary_cast)] // `st_nlink` is u32 on some targets
pub fn nlink_at(dir: BorrowedFd, name: &OsStr) -> Option<u64> {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok().map(|st| st.st_nlink as u64)
}

/// Size of `name` in `dir`, without following a symlink.
pub fn size_at(dir: BorrowedFd, name: &OsStr) -> io::Result<u64> {
    Ok(rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?.st_size as u64)
}

pub fn statx_fd(fd: BorrowedFd) -> io::Result<FileStat> {
    statx_at(fd, "", AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW)
}

pub fn statx_at<P: rustix::path::Arg>(dir: BorrowedFd, name: P, flags: AtFlags) -> io::Result<FileStat> {
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

/// The kind `statx` gave as a mode.
pub fn mode_kind(mode: u32) -> Kind {
    kind_of(FileType::from_raw_mode(mode))
}

/// Opens `path` (absolute, or relative to `dir`) read-only as [`open_at`]
/// does, but following symbolic links in every component, as Go's `os.Open`
/// does for the registry's filesystem driver (`--follow-symlinks`). Opening
/// the whole path makes the kernel count its symlinks, so a loop fails with
/// `ELOOP` where it fails for the registry. Never for writing, never
/// creating.
pub fn open_following<P: AsRef<OsStr>>(dir: BorrowedFd, path: P, extra: OFlags) -> io::Result<OwnedFd> {
    let path = path.as_ref();
    let base = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | extra;
    if !NOATIME_REFUSED.load(Ordering::Relaxed) {
        match rustix::fs::openat(dir, path, base | OFlags::NOATIME, Mode::empty()) {
            Err(Errno::PERM) => NOATIME_REFUSED.store(true, Ordering::Relaxed),
            other => return other.map_err(io::Error::from),
        }
    }
    rustix::fs::openat(dir, path, base, Mode::empty()).map_err(io::Error::from)
}

/// `stat` following symlinks (Go's `os.Stat`), of `name` in `dir` or of an
/// absolute path.
pub fn stat_following<P: rustix::path::Arg>(dir: BorrowedFd, name: P) -> io::Result<rustix::fs::Stat> {
    Ok(rustix::fs::statat(dir, name, AtFlags::empty())?)
}

/// What `stat` following symlinks says an entry is.
pub fn stat_kind(st: &rustix::fs::Stat) -> Kind {
    kind_of(FileType::from_raw_mode(st.st_mode))
}

/// Device and inode of an open descriptor: a directory's identity, to tell
/// a symlink that leads back to one of its own ancestors.
pub fn identity(fd: BorrowedFd) -> io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(fd)?;
    #[allow(clippy::unnecessary_cast)] // the widths differ per target
    Ok((st.st_dev as u64, st.st_ino as u64))
}
