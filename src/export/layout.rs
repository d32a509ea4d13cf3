//! The OCI image layout writer: the only code in the crate that writes, and
//! it writes only under DEST. DEST must not reach the tree by any path
//! ([`reaches_tree`]: device and inode, and where bind mounts really are);
//! everything below DEST is created relative to its descriptor without
//! following symlinks; every blob goes to a temporary file beside its final
//! name, is hashed while it is copied, and is renamed into place only when
//! it matches its digest.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use serde_json::{json, Value};

use super::REF_NAME;
use crate::digest::Digest;
use crate::hashing::copy_hashed;
use crate::manifest::media;

/// Why DEST (or a `--report-digest` file) cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum DestError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    /// An error reaching DEST's place, reported under DEST's name.
    #[error("{}: {inner}", dest.display())]
    Within { dest: PathBuf, inner: Box<DestError> },
    #[error("current directory: {0}")]
    CurrentDir(io::Error),
    #[error("{}: cannot be resolved (a '..' below a missing directory)", .0.display())]
    DotDotBelowMissing(PathBuf),
    #[error("{}: cannot be resolved", .0.display())]
    Unresolvable(PathBuf),
    #[error("{}: not UTF-8", .0.display())]
    NotUtf8(PathBuf),
    #[error("{}: exists and is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("{}: exists, is not empty and is not an OCI image layout (no oci-layout file)", .0.display())]
    NotALayout(PathBuf),
    /// DEST or a name inside it is a symlink.
    #[error("{}: {name} is a symlink; regaudit follows no symlink inside DEST and wrote nothing", dest.display())]
    Symlink { dest: PathBuf, name: String },
    #[error(
        "{}: DEST is inside the storage root {} (compared by device and inode, so bind mounts \
         and symlinks count); regaudit never writes there",
        dest.display(),
        root.display()
    )]
    InsideTree { dest: PathBuf, root: PathBuf },
    #[error("{}: DEST contains the storage root {}", dest.display(), root.display())]
    ContainsTree { dest: PathBuf, root: PathBuf },
}

impl DestError {
    pub fn io(path: &Path, source: io::Error) -> DestError {
        DestError::Io { path: path.to_path_buf(), source }
    }
}

/// Remembers whether a write failed, to tell DEST's errors from the tree's.
struct WriteTracker<W: Write> {
    inner: W,
    failed: bool,
}

impl<W: Write> Write for WriteTracker<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf).inspect_err(|_| self.failed = true)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|_| self.failed = true)
    }
}

/// What copying one blob came to.
pub enum CopyOutcome {
    Verified(u64),
    Mismatch(Digest, u64),
    Unreadable(io::Error),
}

/// DEST as an OCI image layout being written. Everything under DEST is
/// reached from this descriptor one name at a time, never following a
/// symlink: a symlinked `blobs/` in an existing layout is refused, not used.
pub struct Layout {
    /// DEST's path, for messages and for removing a DEST this run created.
    pub dest: PathBuf,
    dir: OwnedFd,
    /// DEST did not exist before this run.
    pub created: bool,
}

/// A directory or file by identity: two paths to it (bind mounts, symlinks,
/// hard links) give the same pair.
type FileId = (u64, u64);

fn file_id(st: &rustix::fs::Stat) -> FileId {
    (st.st_dev, st.st_ino)
}

/// The identities of `dir` and of every directory above it.
fn ancestor_ids(dir: &Path) -> io::Result<Vec<FileId>> {
    let canonical = fs::canonicalize(dir)?;
    canonical.ancestors().map(|a| rustix::fs::stat(a).map(|st| file_id(&st)).map_err(io::Error::from)).collect()
}

/// One mount of /proc/self/mountinfo: which filesystem, which of its
/// directories is mounted, and where.
struct Mount {
    device: String,
    root: PathBuf,
    mount_point: PathBuf,
}

/// The mount table; empty when /proc is not available (the identity checks
/// still apply).
fn mounts() -> Vec<Mount> {
    // Octal escapes (\040 for a space) as the kernel writes them.
    fn unescape(field: &str) -> PathBuf {
        let b = field.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            let octal = b.get(i + 1..i + 4).filter(|o| o.iter().all(|c| (b'0'..=b'7').contains(c)));
            match octal {
                Some(o) if b[i] == b'\\' => {
                    out.push((o[0] - b'0') * 64 + (o[1] - b'0') * 8 + (o[2] - b'0'));
                    i += 4;
                }
                _ => {
                    out.push(b[i]);
                    i += 1;
                }
            }
        }
        PathBuf::from(std::ffi::OsString::from_vec(out))
    }
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            Some(Mount { device: f.get(2)?.to_string(), root: unescape(f.get(3)?), mount_point: unescape(f.get(4)?) })
        })
        .collect()
}

/// Where a canonical path lives on its filesystem: the device and the path
/// from that filesystem's own root. A bind mount of a directory of the tree
/// shows the tree's real location here, whatever its mount point.
fn physical(mounts: &[Mount], canonical: &Path) -> Option<(String, PathBuf)> {
    // The innermost mount holding the path; the last of equals is on top.
    let m = mounts
        .iter()
        .enumerate()
        .filter(|(_, m)| canonical.starts_with(&m.mount_point))
        .max_by_key(|(i, m)| (m.mount_point.components().count(), *i))?
        .1;
    let below = canonical.strip_prefix(&m.mount_point).ok()?;
    Some((m.device.clone(), if below.as_os_str().is_empty() { m.root.clone() } else { m.root.join(below) }))
}

/// Whether a path (`existing`, an existing directory, plus the `missing`
/// names below it) lies inside the storage root by any route: the same
/// directory by device and inode along its ancestors, or the same place on
/// the same filesystem (a bind mount of a directory inside the tree, or a
/// filesystem mounted inside it). Writers call this before writing anything.
pub fn reaches_tree(root: &Path, existing: &Path, missing: &[&OsStr]) -> Result<bool, DestError> {
    let root_err = |e: io::Error| DestError::io(root, e);
    let path_err = |e: io::Error| DestError::io(existing, e);
    let root_id = rustix::fs::stat(root).map(|st| file_id(&st)).map_err(|e| root_err(e.into()))?;
    if ancestor_ids(existing).map_err(path_err)?.contains(&root_id) {
        return Ok(true);
    }
    // A bind mount of a directory below the storage root has that directory's
    // identity, not the root's: compare where both really are on their
    // filesystems, and every filesystem mounted inside the tree.
    let table = mounts();
    let canonical_root = fs::canonicalize(root).map_err(root_err)?;
    let canonical = fs::canonicalize(existing).map_err(path_err)?;
    let mut regions: Vec<(String, PathBuf)> = physical(&table, &canonical_root).into_iter().collect();
    regions.extend(
        table
            .iter()
            .filter(|m| m.mount_point.starts_with(&canonical_root) && m.mount_point != canonical_root)
            .map(|m| (m.device.clone(), m.root.clone())),
    );
    Ok(physical(&table, &canonical).is_some_and(|(device, mut at)| {
        at.extend(missing);
        regions.iter().any(|(d, r)| *d == device && at.starts_with(r))
    }))
}

/// Refuses a DEST that reaches the storage root by any path, or that holds it.
/// `existing` is DEST's nearest existing directory (DEST itself when it
/// exists), `missing` the names below it still to create.
fn check_apart(root: &Path, dest: &Path, existing: &Path, missing: &[&OsStr]) -> Result<(), DestError> {
    // Errors name DEST as given, wherever along it they happened.
    if reaches_tree(root, existing, missing)
        .map_err(|e| DestError::Within { dest: dest.to_path_buf(), inner: Box::new(e) })?
    {
        return Err(DestError::InsideTree { dest: dest.to_path_buf(), root: root.to_path_buf() });
    }
    let contains = || DestError::ContainsTree { dest: dest.to_path_buf(), root: root.to_path_buf() };
    if missing.is_empty() {
        let dest_id = ancestor_ids(existing).map_err(|e| DestError::io(dest, e))?[0];
        if ancestor_ids(root).map_err(|e| DestError::io(root, e))?.contains(&dest_id) {
            return Err(contains());
        }
    }
    let table = mounts();
    let canonical_root = fs::canonicalize(root).map_err(|e| DestError::io(root, e))?;
    let canonical_dest = fs::canonicalize(existing).map_err(|e| DestError::io(dest, e))?;
    if let (Some((root_dev, root_at)), Some((device, mut at))) =
        (physical(&table, &canonical_root), physical(&table, &canonical_dest))
    {
        at.extend(missing);
        if root_dev == device && root_at.starts_with(&at) {
            return Err(contains());
        }
    }
    Ok(())
}

/// Splits DEST into its nearest existing directory and the names below it.
fn split_existing(dest: &Path) -> Result<(PathBuf, Vec<&OsStr>), DestError> {
    let mut existing = dest;
    let mut missing = Vec::new();
    loop {
        match fs::metadata(existing) {
            Ok(_) => {
                missing.reverse();
                return Ok((existing.to_path_buf(), missing));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match existing.components().next_back() {
                    Some(Component::Normal(name)) => missing.push(name),
                    _ => return Err(DestError::DotDotBelowMissing(dest.to_path_buf())),
                }
                existing = existing.parent().ok_or_else(|| DestError::Unresolvable(dest.to_path_buf()))?;
            }
            Err(e) => return Err(DestError::io(dest, e)),
        }
    }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY.union(OFlags::DIRECTORY).union(OFlags::NOFOLLOW).union(OFlags::CLOEXEC);

/// Opens directory `name` in `dir`, refusing a symlink.
fn open_dir(dir: impl AsFd, name: &str) -> io::Result<OwnedFd> {
    match rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty()) {
        Err(Errno::LOOP | Errno::NOTDIR) => Err(io::Error::other(format!(
            "{name} is a symlink or not a directory; regaudit follows no symlink inside DEST"
        ))),
        other => other.map_err(io::Error::from),
    }
}

/// Opens directory `name` in `dir`, creating it when missing.
fn open_or_create_dir(dir: impl AsFd, name: &str) -> io::Result<OwnedFd> {
    match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => open_dir(dir, name),
        Err(e) => Err(e.into()),
    }
}

/// A new file `name` in `dir` (never an existing one, never through a symlink).
fn create_file(dir: impl AsFd, name: &str) -> io::Result<fs::File> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(fs::File::from(rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o644))?))
}

/// What `name` in `dir` is, without following a symlink; None when absent.
fn stat_in(dir: impl AsFd, name: &str) -> io::Result<Option<rustix::fs::Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn is_regular(st: &rustix::fs::Stat) -> bool {
    rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile
}

impl Layout {
    /// Checks DEST, then creates it (when missing). Nothing is created
    /// before every check has passed.
    /// `root`: the tree's local directory; none for an object-store root,
    /// which no local DEST can reach.
    pub fn prepare(root: Option<&Path>, dest: &Path) -> Result<Layout, DestError> {
        let abs = if dest.is_absolute() {
            dest.to_path_buf()
        } else {
            std::env::current_dir().map_err(DestError::CurrentDir)?.join(dest)
        };
        let err = |e: io::Error| DestError::io(dest, e);
        let (existing, missing) = split_existing(&abs)?;
        if let Some(root) = root {
            check_apart(root, dest, &existing, &missing)?;
        }
        if missing.is_empty() {
            if !fs::metadata(&existing).map_err(err)?.is_dir() {
                return Err(DestError::NotADirectory(dest.to_path_buf()));
            }
            // DEST itself may be reached through symlinks the user chose; inside it, none is followed.
            let dir = fs::File::open(&existing).map(OwnedFd::from).map_err(err)?;
            let is_layout = stat_in(&dir, "oci-layout").map_err(err)?.is_some_and(|st| is_regular(&st));
            let empty = fs::read_dir(&existing).map_err(err)?.next().is_none();
            if !is_layout && !empty {
                return Err(DestError::NotALayout(dest.to_path_buf()));
            }
            for (path, st) in [("blobs", stat_in(&dir, "blobs")), ("index.json", stat_in(&dir, "index.json"))] {
                let is_symlink = st
                    .map_err(err)?
                    .is_some_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink);
                if is_symlink {
                    return Err(DestError::Symlink { dest: dest.to_path_buf(), name: path.to_string() });
                }
            }
            // blobs/ itself is not a symlink (checked above).
            if let Ok(entries) = fs::read_dir(existing.join("blobs")) {
                if let Some(link) = entries.flatten().find(|e| e.file_type().is_ok_and(|t| t.is_symlink())) {
                    let name = format!("blobs/{}", link.file_name().to_string_lossy());
                    return Err(DestError::Symlink { dest: dest.to_path_buf(), name });
                }
            }
            let dest = fs::canonicalize(&existing).map_err(err)?;
            return Ok(Layout { dest, dir, created: false });
        }
        let mut dir = fs::File::open(&existing).map(OwnedFd::from).map_err(err)?;
        let mut path = fs::canonicalize(&existing).map_err(err)?;
        for name in &missing {
            let name_str = name.to_str().ok_or_else(|| DestError::NotUtf8(dest.to_path_buf()))?;
            rustix::fs::mkdirat(&dir, *name, Mode::from_raw_mode(0o755)).map_err(|e| err(e.into()))?;
            path.push(name);
            dir = open_dir(&dir, name_str).map_err(err)?;
        }
        // Abandoning removes DEST only: directories created above it stay.
        Ok(Layout { dest: path, dir, created: true })
    }

    /// Gives up: removes DEST when this run created it. Blobs already
    /// copied into an existing layout stay; they are verified content.
    pub fn abandon(&self) {
        if self.created {
            let _ = fs::remove_dir_all(&self.dest);
        }
    }

    /// Copies `source` (the blob's data in the tree, as opened) to
    /// `blobs/ALG/HEX`, hashing it on the way: renamed into place only when
    /// it hashes to `wanted`.
    pub fn copy_blob(
        &self,
        source: io::Result<Box<dyn crate::storage::BlobRead>>,
        wanted: &Digest,
    ) -> io::Result<CopyOutcome> {
        let source = match source {
            Ok(f) => f,
            Err(e) => return Ok(CopyOutcome::Unreadable(e)),
        };
        let blobs = open_or_create_dir(&self.dir, "blobs")?;
        let dir = open_or_create_dir(&blobs, wanted.algorithm().name())?;
        let tmp = format!(".{}.regaudit-{}", wanted.hex(), std::process::id());
        let mut out = create_file(&dir, &tmp)?;
        let mut writer = WriteTracker { inner: io::BufWriter::new(&mut out), failed: false };
        let copied = copy_hashed(source, wanted.algorithm(), Some(&mut writer)).and_then(|r| {
            writer.flush()?;
            Ok(r)
        });
        let write_failed = writer.failed;
        drop(writer);
        let result = match copied {
            Ok((actual, n)) if actual == *wanted => out
                .sync_all()
                .and_then(|_| rustix::fs::renameat(&dir, &tmp, &dir, wanted.hex()).map_err(io::Error::from))
                .map(|_| CopyOutcome::Verified(n)),
            Ok((actual, n)) => Ok(CopyOutcome::Mismatch(actual, n)),
            // A write error is DEST's problem and stops the export; a read error is the tree's.
            Err(e) if write_failed => Err(e),
            Err(e) => Ok(CopyOutcome::Unreadable(e)),
        };
        if !matches!(result, Ok(CopyOutcome::Verified(_))) {
            let _ = rustix::fs::unlinkat(&dir, &tmp, AtFlags::empty());
        }
        result
    }

    /// Adds the manifest to `index.json` (replacing an entry of the same
    /// name), writing `oci-layout` when missing; both atomically.
    /// Returns every entry of the new index.json: (media type, name, digest).
    pub fn write_index(
        &self,
        d: &Digest,
        media_type: &str,
        size: u64,
        name: Option<&str>,
    ) -> io::Result<Vec<(String, Option<String>, String)>> {
        if stat_in(&self.dir, "oci-layout")?.is_none() {
            self.write_atomic("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let read_flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut index = match rustix::fs::openat(&self.dir, "index.json", read_flags, Mode::empty()) {
            Ok(fd) => {
                let mut bytes = Vec::new();
                io::Read::read_to_end(&mut fs::File::from(fd), &mut bytes)?;
                serde_json::from_slice::<Value>(&bytes)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("index.json: {e}")))?
            }
            Err(Errno::NOENT) => Value::Null,
            Err(e) => return Err(e.into()),
        };
        if !index.is_object() {
            index = json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": []});
        }
        let mut descriptor = json!({"mediaType": media_type, "digest": d.to_string(), "size": size});
        if let Some(name) = name {
            descriptor["annotations"] = json!({ REF_NAME: name });
        }
        let manifests = index
            .as_object_mut()
            .map(|o| o.entry("manifests").or_insert_with(|| json!([])))
            .and_then(Value::as_array_mut)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "index.json: manifests is not an array"))?;
        let digest_text = d.to_string();
        manifests.retain(|m| {
            let existing_name =
                m.pointer(&format!("/annotations/{}", REF_NAME.replace('/', "~1"))).and_then(Value::as_str);
            match name {
                Some(name) => existing_name != Some(name),
                None => !(existing_name.is_none() && m["digest"].as_str() == Some(digest_text.as_str())),
            }
        });
        manifests.push(descriptor);
        let name_of = |m: &Value| {
            m.pointer(&format!("/annotations/{}", REF_NAME.replace('/', "~1")))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let entries = manifests.iter().map(|m| (text(&m["mediaType"]), name_of(m), text(&m["digest"]))).collect();
        let mut bytes = serde_json::to_vec(&index).map_err(io::Error::other)?;
        bytes.push(b'\n');
        self.write_atomic("index.json", &bytes)?;
        Ok(entries)
    }

    fn write_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = format!(".{name}.regaudit-{}", std::process::id());
        let mut f = create_file(&self.dir, &tmp)?;
        let written = f.write_all(bytes).and_then(|_| f.sync_all());
        let renamed = written.and_then(|_| rustix::fs::renameat(&self.dir, &tmp, &self.dir, name).map_err(Into::into));
        if let Err(e) = renamed {
            let _ = rustix::fs::unlinkat(&self.dir, &tmp, AtFlags::empty());
            return Err(e);
        }
        Ok(())
    }
}
