//! `regaudit export`: one image or index, exactly as the registry would serve
//! it from this tree, written as an OCI image layout in DEST. This is the
//! only code in the crate that writes, and it writes only under DEST: DEST
//! must not reach the tree by any path (compared by device and inode, and
//! by where bind mounts really are), everything below DEST is created
//! relative to its descriptor without following symlinks, and every blob
//! goes to a temporary file beside its final name, is hashed while it is
//! copied, and is renamed into place only when it matches its digest.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use serde::Serialize;
use serde_json::{json, Value};

use crate::audit::Audit;
use crate::digest::Digest;
use crate::hashing::copy_hashed;
use crate::manifest::{media, ManifestKind};
use crate::model::Target;
use crate::report::inspect::Reference;
use crate::report::table::{human_size, Cell, Table, BAD, BOLD, DIM, GOOD, WARN};
use crate::report::{Report, SCHEMA_VERSION};
use crate::resolve::{Node, Resolver, Role};

/// The annotation an OCI layout uses to name a manifest (`oci:DEST:TAG`).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub struct Options {
    /// Export what can be exported when blobs are missing or corrupt.
    pub allow_partial: bool,
    /// The name in `index.json`; defaults to the tag of a `repo:tag` reference.
    pub tag: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlobStatus {
    /// Copied and verified: its bytes hash to its digest.
    Copied,
    /// The registry would not serve it (no data, no link, invalid link...).
    NotServed,
    /// Its bytes do not hash to its digest; not written.
    Corrupt,
    /// A foreign (non-distributable) layer: fetched from its URLs, not copied.
    Foreign,
}

#[derive(Clone, Debug, Serialize)]
pub struct ExportedBlob {
    pub role: Role,
    pub digest: String,
    pub media_type: Option<String>,
    /// Bytes copied, or the stored size when not copied.
    pub size: Option<u64>,
    pub status: BlobStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Serialize)]
pub struct ExportReport {
    pub schema_version: u32,
    pub target: Target,
    pub root: String,
    pub reference: String,
    pub repository: String,
    /// The manifest written to `index.json`.
    pub digest: String,
    pub media_type: String,
    pub dest: String,
    /// The `org.opencontainers.image.ref.name` annotation; null for none.
    pub ref_name: Option<String>,
    /// Every blob was copied and verified (foreign layers aside).
    pub complete: bool,
    pub copied_bytes: u64,
    pub blobs: Vec<ExportedBlob>,
    /// What a reader of DEST should know, e.g. images skopeo cannot address.
    pub warnings: Vec<String>,
}

/// skopeo (containers/image `oci/layout/oci_transport.go`
/// `getManifestDescriptor`; checked with skopeo 1.9.3) looks `oci:DEST:NAME`
/// up only among OCI image manifests and indexes, and `oci:DEST` alone needs
/// a single entry: in a layout of two or more, an entry with a Docker media
/// type cannot be addressed. `entries` is index.json's (media type, name, digest) after the write.
fn unaddressable(entries: &[(String, Option<String>, String)], dest: &str) -> Vec<String> {
    if entries.len() < 2 {
        return Vec::new();
    }
    entries
        .iter()
        .filter(|(media_type, _, _)| ![media::OCI_MANIFEST, media::OCI_INDEX].contains(&media_type.as_str()))
        .map(|(_, name, digest)| {
            let name = name.as_deref().map(|n| format!(" ({n:?})")).unwrap_or_default();
            format!(
                "{digest}{name} has a Docker media type and {dest} now holds {} images: skopeo finds \
                 `oci:{dest}:NAME` only among OCI-typed entries and `oci:{dest}` only when it is alone, \
                 so it cannot address this image; export each Docker-typed image into a DEST of its own",
                entries.len()
            )
        })
        .collect()
}

impl ExportReport {
    pub fn findings(&self) -> crate::exit_codes::Findings {
        crate::exit_codes::Findings { partial: !self.complete, ..Default::default() }
    }
}

/// The media type a registry serves for a manifest kind; an OCI layout's
/// descriptor must carry it. Docker types stay Docker types, so digests match.
fn kind_media_type(kind: ManifestKind) -> &'static str {
    match kind {
        ManifestKind::Schema1 => media::SCHEMA1_SIGNED,
        ManifestKind::Schema2 => media::SCHEMA2,
        ManifestKind::DockerList => media::DOCKER_LIST,
        ManifestKind::OciManifest => media::OCI_MANIFEST,
        ManifestKind::OciIndex => media::OCI_INDEX,
    }
}

/// One blob to copy: the digest clients ask for, and the digest whose data
/// the registry reads for it (they differ only through an aliasing link).
struct Planned {
    wanted: Digest,
    source: Digest,
    index: usize,
}

pub fn export(audit: &Audit, reference: &Reference, dest: &Path, opts: &Options) -> Result<ExportReport, String> {
    let repo = audit.repository(reference.repository())?;
    let server = audit.server();
    let resolver = Resolver::new(&server);
    let (digest, default_name) = match reference {
        Reference::Tag { tag, .. } => {
            let d = server.tag(repo, tag).map_err(|f| {
                format!("{reference}: the registry would not resolve this tag: {}", f.reason().unwrap_or_default())
            })?;
            (d, Some(tag.clone()))
        }
        Reference::Digest { digest, .. } => (digest.clone(), None),
    };
    let ref_name = opts.tag.clone().or(default_name);
    let tree = resolver.manifest(repo, &digest);
    if let Some(reason) = tree.fetch.reason() {
        return Err(format!("{reference}: the registry would not serve manifest {digest}: {reason}"));
    }
    let Some(kind) = tree.kind else {
        return Err(format!("{reference}: manifest {digest} does not decode"));
    };
    if let Some(n) = tree.walk().into_iter().find(|n| n.kind == Some(ManifestKind::Schema1)) {
        return Err(format!(
            "{reference}: manifest {} is Docker schema1, which an OCI image layout cannot hold faithfully: \
             the image spec has no schema1 media type, schema1 has no config blob, and the registry stores \
             its signed payload without the signatures; nothing was written",
            n.digest
        ));
    }

    let (mut blobs, planned, mut failures) = plan(audit, repo, &tree);
    if !failures.is_empty() && !opts.allow_partial {
        return Err(refusal(reference, &failures, "nothing was written"));
    }

    let layout = Layout::prepare(audit.root.path(), dest)?;
    let mut copied_bytes = 0;
    for p in &planned {
        match layout.copy_blob(audit, p) {
            Ok(Copy::Verified(n)) => {
                copied_bytes += n;
                blobs[p.index].size = Some(n);
            }
            Ok(Copy::Mismatch(actual, n)) => {
                let why = format!("its {n} bytes hash to {actual}, not to {}", p.wanted);
                failures.push(format!("{} {}: {why}", blobs[p.index].role.name(), p.wanted));
                blobs[p.index].status = BlobStatus::Corrupt;
                blobs[p.index].reason = Some(why);
            }
            Ok(Copy::Unreadable(e)) => {
                let why = format!("its data cannot be read: {e}");
                failures.push(format!("{} {}: {why}", blobs[p.index].role.name(), p.wanted));
                blobs[p.index].status = BlobStatus::NotServed;
                blobs[p.index].reason = Some(why);
            }
            Err(e) => {
                layout.abandon();
                return Err(format!("{}: {e}", layout.dest.display()));
            }
        }
    }
    if !failures.is_empty() && !opts.allow_partial {
        layout.abandon();
        let what = if layout.created { "DEST was removed again" } else { "index.json was not changed" };
        return Err(refusal(reference, &failures, what));
    }
    let size = blobs.first().and_then(|b| b.size).unwrap_or(0);
    let media_type = kind_media_type(kind).to_string();
    if let Some(top) = blobs.first_mut() {
        top.media_type.get_or_insert_with(|| media_type.clone());
    }
    let entries = layout
        .write_index(&digest, &media_type, size, ref_name.as_deref())
        .map_err(|e| format!("{}: {e}", layout.dest.display()))?;
    let warnings = unaddressable(&entries, &dest.display().to_string());
    Ok(ExportReport {
        schema_version: SCHEMA_VERSION,
        target: audit.target,
        root: audit.root.path().display().to_string(),
        reference: reference.to_string(),
        repository: repo.name.clone(),
        digest: digest.to_string(),
        media_type,
        dest: dest.display().to_string(),
        ref_name,
        complete: failures.is_empty(),
        copied_bytes,
        blobs,
        warnings,
    })
}

fn refusal(reference: &Reference, failures: &[String], outcome: &str) -> String {
    format!(
        "{reference} cannot be exported whole ({outcome}; --allow-partial exports the rest):\n  {}",
        failures.join("\n  ")
    )
}

/// What to copy, in tree order (the top manifest first), one entry per
/// distinct digest, and why the rest cannot be.
fn plan(
    audit: &Audit,
    repo: &crate::inventory::Repository,
    tree: &Node,
) -> (Vec<ExportedBlob>, Vec<Planned>, Vec<String>) {
    let server = audit.server();
    let mut seen = HashSet::new();
    let mut blobs = Vec::new();
    let mut planned = Vec::new();
    let mut failures = Vec::new();
    for n in tree.walk() {
        if !seen.insert(n.digest.clone()) {
            continue;
        }
        let mut entry = ExportedBlob {
            role: n.role,
            digest: n.digest.clone(),
            media_type: n.media_type.as_ref().map(|m| m.to_string()),
            size: n.size,
            status: BlobStatus::Copied,
            reason: None,
        };
        if let Some(cut) = n.cut {
            failures.push(cut.describe(&n.digest));
        }
        let source = match (&n.parsed_digest, n.role) {
            _ if n.foreign => {
                entry.status = BlobStatus::Foreign;
                None
            }
            (None, _) => {
                entry.reason = Some(format!("{:?} is not a valid digest", n.digest));
                None
            }
            (Some(_), _) if !n.fetch.is_ok() => {
                entry.reason = n.fetch.reason().map(str::to_string);
                None
            }
            (Some(d), Role::Manifest | Role::Child) => match server.locate_manifest(repo, d) {
                Ok((_, source)) => Some((d.clone(), source)),
                Err(f) => {
                    entry.reason = f.reason().map(str::to_string);
                    None
                }
            },
            (Some(d), Role::Config | Role::Layer) => match repo.layer_links.get(d) {
                Some(Ok(source)) => Some((d.clone(), source.clone())),
                _ => {
                    entry.reason = Some(format!("blob {d} is not linked in {}", repo.name));
                    None
                }
            },
        };
        match source {
            Some((wanted, source)) => planned.push(Planned { wanted, source, index: blobs.len() }),
            None if entry.status == BlobStatus::Foreign => {}
            None => {
                entry.status = BlobStatus::NotServed;
                let why = entry.reason.clone().unwrap_or_default();
                failures.push(format!("{} {}: {why}", n.role.name(), n.digest));
            }
        }
        blobs.push(entry);
    }
    (blobs, planned, failures)
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

enum Copy {
    Verified(u64),
    Mismatch(Digest, u64),
    Unreadable(io::Error),
}

/// DEST as an OCI image layout being written. Everything under DEST is
/// reached from this descriptor one name at a time, never following a
/// symlink: a symlinked `blobs/` in an existing layout is refused, not used.
struct Layout {
    /// DEST's path, for messages and for removing a DEST this run created.
    dest: PathBuf,
    dir: OwnedFd,
    /// DEST did not exist before this run.
    created: bool,
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
pub fn reaches_tree(root: &Path, existing: &Path, missing: &[&OsStr]) -> Result<bool, String> {
    let root_err = |e: io::Error| format!("{}: {e}", root.display());
    let path_err = |e: io::Error| format!("{}: {e}", existing.display());
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
fn check_apart(root: &Path, dest: &Path, existing: &Path, missing: &[&OsStr]) -> Result<(), String> {
    if reaches_tree(root, existing, missing).map_err(|e| format!("{}: {e}", dest.display()))? {
        return Err(format!(
            "{}: DEST is inside the storage root {} (compared by device and inode, so bind mounts \
             and symlinks count); regaudit never writes there",
            dest.display(),
            root.display()
        ));
    }
    let contains = || format!("{}: DEST contains the storage root {}", dest.display(), root.display());
    if missing.is_empty() {
        let dest_id = ancestor_ids(existing).map_err(|e| format!("{}: {e}", dest.display()))?[0];
        if ancestor_ids(root).map_err(|e| format!("{}: {e}", root.display()))?.contains(&dest_id) {
            return Err(contains());
        }
    }
    let table = mounts();
    let canonical_root = fs::canonicalize(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let canonical_dest = fs::canonicalize(existing).map_err(|e| format!("{}: {e}", dest.display()))?;
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
fn split_existing(dest: &Path) -> Result<(PathBuf, Vec<&OsStr>), String> {
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
                    _ => {
                        return Err(format!(
                            "{}: cannot be resolved (a '..' below a missing directory)",
                            dest.display()
                        ))
                    }
                }
                existing = existing.parent().ok_or_else(|| format!("{}: cannot be resolved", dest.display()))?;
            }
            Err(e) => return Err(format!("{}: {e}", dest.display())),
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
    fn prepare(root: &Path, dest: &Path) -> Result<Layout, String> {
        let abs = if dest.is_absolute() {
            dest.to_path_buf()
        } else {
            std::env::current_dir().map_err(|e| format!("current directory: {e}"))?.join(dest)
        };
        let err = |e: io::Error| format!("{}: {e}", dest.display());
        let (existing, missing) = split_existing(&abs)?;
        check_apart(root, dest, &existing, &missing)?;
        if missing.is_empty() {
            if !fs::metadata(&existing).map_err(err)?.is_dir() {
                return Err(format!("{}: exists and is not a directory", dest.display()));
            }
            // DEST itself may be reached through symlinks the user chose; inside it, none is followed.
            let dir = fs::File::open(&existing).map(OwnedFd::from).map_err(err)?;
            let is_layout = stat_in(&dir, "oci-layout").map_err(err)?.is_some_and(|st| is_regular(&st));
            let empty = fs::read_dir(&existing).map_err(err)?.next().is_none();
            if !is_layout && !empty {
                return Err(format!(
                    "{}: exists, is not empty and is not an OCI image layout (no oci-layout file)",
                    dest.display()
                ));
            }
            for (path, st) in [("blobs", stat_in(&dir, "blobs")), ("index.json", stat_in(&dir, "index.json"))] {
                let is_symlink = st
                    .map_err(err)?
                    .is_some_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink);
                if is_symlink {
                    return Err(format!(
                        "{}: {path} is a symlink; regaudit follows no symlink inside DEST and wrote nothing",
                        dest.display()
                    ));
                }
            }
            // blobs/ itself is not a symlink (checked above).
            if let Ok(entries) = fs::read_dir(existing.join("blobs")) {
                if let Some(link) = entries.flatten().find(|e| e.file_type().is_ok_and(|t| t.is_symlink())) {
                    return Err(format!(
                        "{}: blobs/{} is a symlink; regaudit follows no symlink inside DEST and wrote nothing",
                        dest.display(),
                        link.file_name().to_string_lossy()
                    ));
                }
            }
            let dest = fs::canonicalize(&existing).map_err(err)?;
            return Ok(Layout { dest, dir, created: false });
        }
        let mut dir = fs::File::open(&existing).map(OwnedFd::from).map_err(err)?;
        let mut path = fs::canonicalize(&existing).map_err(err)?;
        for name in &missing {
            let name_str = name.to_str().ok_or_else(|| format!("{}: not UTF-8", dest.display()))?;
            rustix::fs::mkdirat(&dir, *name, Mode::from_raw_mode(0o755)).map_err(|e| err(e.into()))?;
            path.push(name);
            dir = open_dir(&dir, name_str).map_err(err)?;
        }
        // Abandoning removes DEST only: directories created above it stay.
        Ok(Layout { dest: path, dir, created: true })
    }

    /// Gives up: removes DEST when this run created it. Blobs already
    /// copied into an existing layout stay; they are verified content.
    fn abandon(&self) {
        if self.created {
            let _ = fs::remove_dir_all(&self.dest);
        }
    }

    fn copy_blob(&self, audit: &Audit, p: &Planned) -> io::Result<Copy> {
        let source = match audit.root.open_blob(&p.source) {
            Ok(f) => f,
            Err(e) => return Ok(Copy::Unreadable(e)),
        };
        let blobs = open_or_create_dir(&self.dir, "blobs")?;
        let dir = open_or_create_dir(&blobs, p.wanted.algorithm().name())?;
        let tmp = format!(".{}.regaudit-{}", p.wanted.hex(), std::process::id());
        let mut out = create_file(&dir, &tmp)?;
        let mut writer = WriteTracker { inner: io::BufWriter::new(&mut out), failed: false };
        let copied = copy_hashed(source, p.wanted.algorithm(), Some(&mut writer)).and_then(|r| {
            writer.flush()?;
            Ok(r)
        });
        let write_failed = writer.failed;
        drop(writer);
        let result = match copied {
            Ok((actual, n)) if actual == p.wanted => out
                .sync_all()
                .and_then(|_| rustix::fs::renameat(&dir, &tmp, &dir, p.wanted.hex()).map_err(io::Error::from))
                .map(|_| Copy::Verified(n)),
            Ok((actual, n)) => Ok(Copy::Mismatch(actual, n)),
            // A write error is DEST's problem and stops the export; a read error is the tree's.
            Err(e) if write_failed => Err(e),
            Err(e) => Ok(Copy::Unreadable(e)),
        };
        if !matches!(result, Ok(Copy::Verified(_))) {
            let _ = rustix::fs::unlinkat(&dir, &tmp, AtFlags::empty());
        }
        result
    }

    /// Adds the manifest to `index.json` (replacing an entry of the same
    /// name), writing `oci-layout` when missing; both atomically.
    /// Returns every entry of the new index.json: (media type, name, digest).
    fn write_index(
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

impl Report for ExportReport {
    fn write_text(&self, out: &mut dyn io::Write) -> io::Result<()> {
        let name = self.ref_name.as_deref().map(|n| format!(" as {n:?}")).unwrap_or_default();
        writeln!(
            out,
            "{}{}{}  →  {}{name}  ({})",
            BOLD.render(),
            self.reference,
            BOLD.render_reset(),
            self.dest,
            self.digest
        )?;
        writeln!(out)?;
        let mut table = Table::new(vec!["ROLE", "DIGEST", "SIZE", "STATUS"]).right_align(&[2]);
        for b in &self.blobs {
            let status = match b.status {
                BlobStatus::Copied => Cell::styled("copied, verified", GOOD),
                BlobStatus::Foreign => Cell::styled("foreign, not copied", DIM),
                BlobStatus::NotServed => {
                    Cell::styled(format!("NOT SERVED: {}", b.reason.as_deref().unwrap_or("")), BAD)
                }
                BlobStatus::Corrupt => Cell::styled(format!("CORRUPT: {}", b.reason.as_deref().unwrap_or("")), BAD),
            };
            table.push(vec![
                Cell::new(b.role.name()),
                Cell::new(crate::report::tags::short(&b.digest)),
                Cell::new(b.size.map(human_size).unwrap_or_default()),
                status,
            ]);
        }
        table.write(out)?;
        let copied = self.blobs.iter().filter(|b| b.status == BlobStatus::Copied).count();
        writeln!(
            out,
            "\n{copied} of {} blobs copied and verified, {}.",
            self.blobs.len(),
            human_size(self.copied_bytes)
        )?;
        if !self.complete {
            writeln!(out, "{}Partial export: some blobs are missing from DEST.{}", BAD.render(), BAD.render_reset())?;
        }
        for w in &self.warnings {
            let text = crate::report::short_digests(w);
            for line in crate::report::wrap(&format!("warning: {text}"), "", crate::report::TEXT_WIDTH) {
                writeln!(out, "{}{line}{}", WARN.render(), WARN.render_reset())?;
            }
        }
        Ok(())
    }
}
