//! The inventory: everything the tree holds, as the reader found it, before
//! any interpretation. Built by [`crate::tree`], read by everything else.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::digest::{Digest, LinkError};
use crate::layout;
use crate::problem::Problem;
use crate::sorted_map::SortedMap;

/// A link file's content, parsed strictly.
pub type Link = Result<Digest, LinkError>;

/// A link's content, borrowed from a [`LinkMap`].
pub type LinkRef<'a> = Result<&'a Digest, &'a LinkError>;

/// Link files of one kind (`_layers`, revisions, a tag's index), keyed by
/// the digest their path names. Nearly every link holds that same digest, so
/// only the others keep their content: 40 bytes a link instead of 88, in
/// the structure that grows with the tree.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LinkMap {
    /// Sorted, unique.
    keys: Box<[Digest]>,
    /// None when every link holds its key, the usual case.
    odd: Option<Box<OddLinks>>,
}

#[derive(Debug, PartialEq, Eq)]
struct OddLinks {
    /// One per key: [`SAME`] when the link holds its key, else an index
    /// into `other`.
    slots: Box<[u32]>,
    other: Box<[Link]>,
}

const SAME: u32 = u32::MAX;

impl LinkMap {
    pub fn get(&self, key: &Digest) -> Option<LinkRef<'_>> {
        let i = self.keys.binary_search(key).ok()?;
        Some(self.content(i))
    }

    pub fn contains_key(&self, key: &Digest) -> bool {
        self.get(key).is_some()
    }

    fn content(&self, i: usize) -> LinkRef<'_> {
        match &self.odd {
            Some(odd) if odd.slots[i] != SAME => odd.other[odd.slots[i] as usize].as_ref(),
            _ => Ok(&self.keys[i]),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Digest, LinkRef<'_>)> {
        (0..self.keys.len()).map(|i| (&self.keys[i], self.content(i)))
    }

    pub fn keys(&self) -> impl Iterator<Item = &Digest> {
        self.keys.iter()
    }

    pub fn values(&self) -> impl Iterator<Item = LinkRef<'_>> {
        self.iter().map(|(_, v)| v)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// When a key repeats, the first link is kept.
impl FromIterator<(Digest, Link)> for LinkMap {
    fn from_iter<I: IntoIterator<Item = (Digest, Link)>>(iter: I) -> Self {
        let links: SortedMap<Digest, Link> = iter.into_iter().collect();
        let mut keys = Vec::with_capacity(links.len());
        let mut slots = Vec::with_capacity(links.len());
        let mut other = Vec::new();
        for (key, link) in links {
            let slot = match link {
                Ok(content) if content == key => SAME,
                odd => {
                    other.push(odd);
                    u32::try_from(other.len() - 1).expect("fewer than 4 billion odd links")
                }
            };
            keys.push(key);
            slots.push(slot);
        }
        let odd = (!other.is_empty())
            .then(|| Box::new(OddLinks { slots: slots.into_boxed_slice(), other: other.into_boxed_slice() }));
        LinkMap { keys: keys.into_boxed_slice(), odd }
    }
}

impl<'a> IntoIterator for &'a LinkMap {
    type Item = (&'a Digest, LinkRef<'a>);
    type IntoIter = Box<dyn Iterator<Item = (&'a Digest, LinkRef<'a>)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[derive(Debug, Default)]
pub struct Inventory {
    /// The storage root (the directory holding `docker/`, or a URL).
    pub root: crate::storage::RootName,
    /// Blobs whose `data` file exists where the registry looks for it.
    pub blobs: SortedMap<Digest, Blob>,
    /// Sorted by name.
    pub repositories: Vec<Repository>,
    /// `scheduler-state.json` beside `docker/`, when present (proxy caches).
    pub scheduler_state: Option<Vec<u8>>,
    /// What the reader itself found wrong (symlinks, odd entries, I/O
    /// errors), sorted by path (see [`crate::problem::normalize`]).
    pub problems: Vec<Problem>,
    /// Files seen, for statistics.
    pub files: u64,
    /// Entries under `blobs/` (relative to it) that are not part of a
    /// canonical blob: misplaced, unexpected, symlinks. Sorted in the
    /// registry's walk order.
    pub blob_anomalies: Vec<PathBuf>,
    /// Every read the walk could not make (a directory it could not list,
    /// a file it could not open or examine), sorted by path. The models
    /// need them: what the reader could not see, the registry may meet.
    pub faults: Vec<ReadFault>,
    /// Symbolic links inside the layout (relative to the root), sorted. The
    /// registry follows them; regaudit does not, so what lies behind them
    /// is not in this inventory.
    pub symlinks: Vec<String>,
}

/// A read the walk could not make.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReadFault {
    /// Relative to the storage root.
    pub path: String,
    pub op: FaultOp,
    /// The OS error as Go prints it (`permission denied`,
    /// `input/output error`, `file name too long`...).
    pub error: String,
    /// For a directory that could not be listed: whether paths below it can
    /// still be reached (search permission without read permission).
    pub traversable: bool,
    /// The entry was listed, then was gone when opened: a tree changing
    /// under the walk, which no model can follow.
    pub vanished: bool,
}

/// What the walk was doing when a read failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FaultOp {
    /// Listing a directory (Go: `open <dir>`).
    List,
    /// Opening a file to read it (Go: `open <file>`).
    Read,
    /// Examining an entry (Go: `stat <path>`).
    Stat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blob {
    pub size: u64,
}

#[derive(Debug, Default)]
pub struct Repository {
    pub name: String,
    /// The `_layers` directory exists: the 2.8 catalog lists the repository.
    pub has_layers_dir: bool,
    /// The `_manifests` directory exists: the v3 catalog lists it.
    pub has_manifests_dir: bool,
    pub has_uploads_dir: bool,
    /// `_layers/<alg>/<hex>/link`, keyed by the digest in the path.
    pub layer_links: LinkMap,
    /// `_manifests/revisions/<alg>/<hex>/link`, keyed by the digest in the path.
    pub revisions: LinkMap,
    /// Old schema1 signature links: (revision, signature).
    pub signature_links: Vec<(Digest, Digest)>,
    pub tags: SortedMap<String, Tag>,
    pub uploads: BTreeMap<String, Upload>,
    /// Files named `link` below `_manifests/revisions` or `_layers` outside
    /// the layout's own places (`<hex>.bak/link`, a `link` directly under an
    /// algorithm directory, below a directory named `link`...), in the
    /// registry's walk order. Its GC reads them all. Rare, so kept apart.
    pub stray_links: Vec<StrayLink>,
    /// Where the layout has a `link` file and a directory stands instead
    /// (paths relative to the repository directory, in walk order). Reading
    /// one fails with `is a directory`.
    pub link_dirs: Vec<String>,
}

/// A `link` file the registry's GC enumerates though the layout has no
/// place for it (registry/storage/linkedblobstore.go `Enumerate` walks
/// every file named `link`).
#[derive(Debug, PartialEq, Eq)]
pub struct StrayLink {
    /// Relative to the repository directory.
    pub path: String,
    pub link: Link,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tag {
    /// `current/link`; None when the file is absent.
    pub current: Option<Link>,
    /// `index/<alg>/<hex>/link`: every manifest the tag has pointed at.
    pub index: LinkMap,
}

#[derive(Debug, Default)]
pub struct Upload {
    /// Raw text of `startedat` (None when the file is absent or unreadable).
    pub started_at: Option<String>,
    /// Size of `data`, when present.
    pub data_size: Option<u64>,
    /// `hashstates/<alg>/<offset>` files, as `<alg>/<offset>`.
    pub hashstates: Vec<String>,
}

impl Inventory {
    pub fn repository(&self, name: &str) -> Option<&Repository> {
        self.repositories.binary_search_by(|r| r.name.as_str().cmp(name)).ok().map(|i| &self.repositories[i])
    }

    pub fn blob_size(&self, d: &Digest) -> Option<u64> {
        self.blobs.get(d).map(|b| b.size)
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blobs.contains_key(d)
    }

    /// The read fault recorded at exactly `rel`.
    /// Whether a directory stands where the registry reads the link `rel`
    /// (a path relative to the root): reading it fails with "is a directory".
    pub fn is_link_dir(&self, rel: &str) -> bool {
        self.repositories.iter().any(|r| {
            let below = rel.strip_prefix(&layout::repo_dir(&r.name)).and_then(|x| x.strip_prefix('/'));
            below.is_some_and(|x| r.link_dirs.iter().any(|p| p == x))
        })
    }

    pub fn fault_at(&self, rel: &str) -> Option<&ReadFault> {
        let i = self.faults.partition_point(|f| f.path.as_str() < rel);
        self.faults.get(i).filter(|f| f.path == rel)
    }

    /// The fault that keeps the registry from reaching `rel` at all: a
    /// directory above it (or `rel` itself) that cannot be searched, the
    /// one nearest the root.
    pub fn unreachable(&self, rel: &str) -> Option<&ReadFault> {
        let mut end = 0;
        while end < rel.len() {
            end = rel[end + 1..].find('/').map_or(rel.len(), |i| end + 1 + i);
            if let Some(f) = self.fault_at(&rel[..end]) {
                if f.op == FaultOp::List && !f.traversable {
                    return Some(f);
                }
            }
        }
        None
    }

    /// A symlink at `rel` or at a directory above it.
    pub fn symlink_above(&self, rel: &str) -> Option<&String> {
        ancestors(rel)
            .find_map(|a| self.symlinks.binary_search_by(|s| s.as_str().cmp(a)).ok().map(|i| &self.symlinks[i]))
    }

    /// A directory above `rel` that could not be listed but can be searched:
    /// what lies below it was not read, though the registry reaches it.
    pub fn traversable_above(&self, rel: &str) -> Option<&ReadFault> {
        ancestors(rel).filter_map(|a| self.fault_at(a)).find(|f| f.op == FaultOp::List && f.traversable)
    }

    /// Faults at `rel` or below it, in path order.
    pub fn faults_below<'a>(&'a self, rel: &'a str) -> impl Iterator<Item = &'a ReadFault> + 'a {
        let i = self.faults.partition_point(|f| f.path.as_str() < rel);
        self.faults[i..].iter().take_while(move |f| is_at_or_below(&f.path, rel))
    }

    /// Symlinks at `rel` or below it, or above it (which the registry
    /// follows on the way to `rel`), in path order.
    pub fn symlinks_touching<'a>(&'a self, rel: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        self.symlinks.iter().filter(move |s| is_at_or_below(s, rel) || is_at_or_below(rel, s))
    }

    pub fn tag_count(&self) -> usize {
        self.repositories.iter().map(|r| r.tags.len()).sum()
    }
}

/// An OS error as Go prints it: Rust's "Permission denied (os error 13)"
/// is Go's "permission denied" (both come from the C library's table, Go's
/// in lower case).
pub fn go_error_text(rust: &str) -> String {
    let text = match rust.rfind(" (os error ") {
        Some(i) if rust.ends_with(')') => &rust[..i],
        _ => rust,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `rel` and the directories above it, longest first.
fn ancestors(rel: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(rel), |p| p.rsplit_once('/').map(|(up, _)| up))
}

/// Whether `path` is `dir` or lies below it (paths relative to the root).
pub fn is_at_or_below(path: &str, dir: &str) -> bool {
    path.strip_prefix(dir).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

impl Repository {
    pub fn new(name: String) -> Repository {
        Repository { name, ..Default::default() }
    }

    /// Whether the target's API routes this repository's name
    /// ([`layout::repository_name_is_valid`]).
    pub fn name_is_valid(&self, target: crate::model::Target) -> bool {
        layout::repository_name_is_valid(&self.name, target)
    }
}

/// What the registry's own directory walks see beyond the layout the
/// [`Inventory`] records: stray names among repository directories, `data`
/// files in odd places under `blobs/`. `garbage-collect` walks the tree with
/// these quirks, so modelling it needs them. Built by
/// [`crate::storage::StorageRoot::registry_walks`].
#[derive(Debug, Default)]
pub struct WalkFacts {
    /// `repositories/` exists (as a directory).
    pub repositories_dir: bool,
    /// `blobs/` exists (as a directory).
    pub blobs_dir: bool,
    /// Every directory the catalog walk can enter, relative to
    /// `repositories/` ("" is `repositories/` itself), with all its children
    /// sorted bytewise. `_`-prefixed directories are not entered.
    pub catalog_dirs: std::collections::BTreeMap<String, Vec<WalkEntry>>,
    /// Files named `data` under `blobs/` that are not a canonical blob in
    /// [`Inventory::blobs`] (misplaced, at another depth, or symlinks),
    /// relative to `blobs/`, in walk order.
    pub stray_blob_data: Vec<String>,
    /// Repositories (names relative to `repositories/`) whose
    /// `_manifests/tags` is a directory, with the names of its entries that
    /// are not directories (the registry lists them as tags).
    pub tags_dirs: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalkEntry {
    /// The name; bytes that are not UTF-8 are marked (see [`crate::names`]).
    pub name: String,
    pub kind: EntryKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File,
    /// Not followed by us; the registry follows it.
    Symlink,
    Other,
}

#[cfg(test)]
mod fault_tests {
    use super::*;

    fn fault(path: &str, traversable: bool) -> ReadFault {
        ReadFault {
            path: path.into(),
            op: FaultOp::List,
            error: "permission denied".into(),
            traversable,
            vanished: false,
        }
    }

    #[test]
    fn go_error_text_is_lower_case_without_the_code() {
        assert_eq!(go_error_text("Permission denied (os error 13)"), "permission denied");
        assert_eq!(go_error_text("File name too long (os error 36)"), "file name too long");
        assert_eq!(go_error_text("not a regular file"), "not a regular file");
    }

    #[test]
    fn a_fault_above_a_path_is_found_and_siblings_are_not() {
        let inv = Inventory {
            faults: vec![fault("a/b", false), fault("a/c", true)],
            symlinks: vec!["x/y".into()],
            ..Inventory::default()
        };
        assert_eq!(inv.unreachable("a/b/c/link").map(|f| f.path.as_str()), Some("a/b"));
        assert!(inv.unreachable("a/bb/link").is_none());
        // Searchable: reachable, but not read.
        assert!(inv.unreachable("a/c/link").is_none());
        assert_eq!(inv.traversable_above("a/c/link").map(|f| f.path.as_str()), Some("a/c"));
        assert_eq!(inv.symlink_above("x/y/z").map(String::as_str), Some("x/y"));
        assert!(inv.symlink_above("x/yz").is_none());
        assert_eq!(inv.faults_below("a").count(), 2);
        assert_eq!(inv.faults_below("a/b").count(), 1);
    }
}
