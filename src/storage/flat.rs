//! A flat key space as a [`Backend`]: what object storage offers (one flat
//! listing of keys with size, last-modified and ETag; GET and HEAD), with
//! directories made from the key prefixes as the registry's own storage
//! drivers make them. No empty directories, no symlinks: the capabilities
//! say so.
//!
//! The listing is taken once, whole, and sorted here (listing order differs
//! between stores); every directory handle is a range of it. Reads go to an
//! [`ObjectStore`].

use std::io;

use crate::digest::Digest;
use crate::storage::{join, Backend, BlobRead, BlobReader, Capabilities, Entry, Kind, ObjectStat, Stamp, Version};

/// One listed object, its key relative to the storage root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    pub modified: Option<Stamp>,
    pub etag: Option<String>,
}

/// The reads an object store serves.
pub trait ObjectStore: Send + Sync + 'static {
    /// The object's first `limit` bytes (all of it when None): a ranged GET.
    fn get(&self, key: &str, limit: Option<u64>) -> io::Result<Vec<u8>>;
    /// The whole object, streamed.
    fn stream(&self, key: &str) -> io::Result<Box<dyn io::Read + Send>>;
    /// The real registry's driver for this store, as its errors name it.
    fn driver_name(&self) -> &'static str;
}

/// A storage tree in a flat key space.
pub struct FlatBackend<S> {
    /// Sorted by key bytes.
    objects: Vec<ObjectMeta>,
    store: S,
    /// Read every link, never inferring one from its size and ETag.
    read_all: bool,
}

impl<S: ObjectStore> FlatBackend<S> {
    /// The tree listed as `objects` (in any order), read from `store`.
    pub fn new(mut objects: Vec<ObjectMeta>, store: S) -> FlatBackend<S> {
        objects.sort_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
        FlatBackend { objects, store, read_all: false }
    }

    /// `--read-all`: every link is read, none inferred from its listing.
    pub fn read_all(mut self, yes: bool) -> FlatBackend<S> {
        self.read_all = yes;
        self
    }

    /// How many objects the listing holds.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Every listed key, in byte order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.objects.iter().map(|o| o.key.as_str())
    }

    /// Whether any object lies below `dir`.
    pub fn has_dir(&self, dir: &str) -> bool {
        !self.below(dir).is_empty()
    }

    fn find(&self, key: &str) -> Option<&ObjectMeta> {
        self.objects.binary_search_by(|o| o.key.as_bytes().cmp(key.as_bytes())).ok().map(|i| &self.objects[i])
    }

    /// The objects whose keys lie below `dir` ("" is the root).
    fn below(&self, dir: &str) -> &[ObjectMeta] {
        if dir.is_empty() {
            return &self.objects;
        }
        let prefix = format!("{dir}/");
        let start = self.objects.partition_point(|o| o.key.as_bytes() < prefix.as_bytes());
        let len = self.objects[start..].partition_point(|o| o.key.starts_with(&prefix));
        &self.objects[start..start + len]
    }

    fn meta(&self, rel: &str) -> io::Result<&ObjectMeta> {
        match self.find(rel) {
            Some(m) => Ok(m),
            None if !self.below(rel).is_empty() => Err(io::ErrorKind::IsADirectory.into()),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    /// For `<tag>/current/link`, the digests the tag's index lists
    /// (`<tag>/index/<alg>/<hex>/link`); nothing for any other file.
    fn tag_index_digests(&self, dir: &str, name: &str) -> Vec<String> {
        let Some(tag_dir) = dir.strip_suffix("/current").filter(|_| name == "link") else {
            return Vec::new();
        };
        let index = format!("{tag_dir}/index");
        self.below(&index)
            .iter()
            .filter_map(|o| {
                let parts: Vec<&str> = o.key[index.len() + 1..].split('/').collect();
                match parts.as_slice() {
                    [alg, hex, "link"] => Some(format!("{alg}:{hex}")),
                    _ => None,
                }
            })
            .collect()
    }

    fn object_stat(m: &ObjectMeta) -> ObjectStat {
        ObjectStat {
            kind: Kind::File,
            size: m.size,
            modified: m.modified,
            born: None,
            etag: m.etag.clone(),
            file: None,
        }
    }
}

/// An object streamed, with the version it was listed at.
struct FlatBlob {
    reader: Box<dyn io::Read + Send>,
    version: Version,
}

impl io::Read for FlatBlob {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

impl BlobRead for FlatBlob {
    fn version(&self) -> io::Result<Version> {
        Ok(self.version.clone())
    }
}

impl<S: ObjectStore> Backend for FlatBackend<S> {
    /// The directory's path relative to the root.
    type Dir = String;

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            directories: false,
            mtimes: true,
            symlinks: false,
            birth_times: false,
            etags: true,
            driver: self.store.driver_name(),
        }
    }

    fn open_dir(&self, rel: &str) -> io::Result<String> {
        if rel.is_empty() || !self.below(rel).is_empty() {
            Ok(rel.to_string())
        } else if self.find(rel).is_some() {
            Err(io::Error::new(io::ErrorKind::NotADirectory, "not a directory"))
        } else {
            Err(io::ErrorKind::NotFound.into())
        }
    }

    fn open_child_dir(&self, dir: &String, name: &str) -> io::Result<String> {
        self.open_dir(&join(dir, name))
    }

    fn list(&self, dir: &String) -> io::Result<Vec<Entry>> {
        let skip = if dir.is_empty() { 0 } else { dir.len() + 1 };
        let mut out: Vec<Entry> = Vec::new();
        for o in self.below(dir) {
            let rest = &o.key[skip..];
            let (name, kind) = match rest.split_once('/') {
                Some((name, _)) => (name, Kind::Dir),
                None => (rest, Kind::File),
            };
            // Keys under one directory are adjacent once sorted.
            if out.last().is_some_and(|e| e.name == name && e.kind == kind) {
                continue;
            }
            out.push(Entry { name: name.to_string(), utf8: crate::names::is_utf8(name), kind });
        }
        Ok(out)
    }

    fn read_small<'b>(
        &self,
        dir: &String,
        name: &str,
        _listed: bool,
        expect: Option<&Digest>,
        buf: &'b mut [u8],
    ) -> io::Result<&'b [u8]> {
        let key = join(dir, name);
        let meta = self.meta(&key)?;
        // Listed size and ETag prove the content: no GET. A link names the
        // digest its path implies; a tag's `current/link` one of the tag's
        // index entries (issue 15 §3).
        if !self.read_all {
            let candidates = match expect {
                Some(d) => vec![d.to_string()],
                None => self.tag_index_digests(dir, name),
            };
            let proven = crate::storage::s3::link_from_etag(
                meta.size,
                meta.etag.as_deref(),
                candidates.iter().map(String::as_str),
            );
            if let Some(d) = proven.filter(|d| d.len() <= buf.len()) {
                buf[..d.len()].copy_from_slice(d.as_bytes());
                return Ok(&buf[..d.len()]);
            }
        }
        let bytes = self.store.get(&key, Some(buf.len() as u64))?;
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        Ok(&buf[..n])
    }

    fn size_in(&self, dir: &String, name: &str) -> io::Result<u64> {
        Ok(self.meta(&join(dir, name))?.size)
    }

    fn may_hold_dirs(&self, dir: &String, name: &str) -> bool {
        // Exact here: a key two or more components below it.
        let rel = join(dir, name);
        self.below(&rel).iter().any(|o| o.key[rel.len() + 1..].contains('/'))
    }

    fn kind(&self, rel: &str) -> io::Result<Kind> {
        if rel.is_empty() || !self.below(rel).is_empty() {
            Ok(Kind::Dir)
        } else if self.find(rel).is_some() {
            Ok(Kind::File)
        } else {
            Err(io::ErrorKind::NotFound.into())
        }
    }

    fn traversable(&self, _: &str) -> bool {
        false
    }

    fn read_capped(&self, rel: &str, limit: usize) -> io::Result<Vec<u8>> {
        self.meta(rel).map_err(|e| refuse_dir(e, "not a regular file"))?;
        self.store.get(rel, Some(limit as u64 + 1))
    }

    fn open(&self, rel: &str) -> io::Result<BlobReader> {
        let m = self.meta(rel).map_err(|e| refuse_dir(e, "blob data is not a regular file"))?;
        let version = Version { size: m.size, tag: m.etag.clone().unwrap_or_default() };
        Ok(Box::new(FlatBlob { reader: self.store.stream(rel)?, version }))
    }

    fn open_with_stat(&self, rel: &str) -> io::Result<(BlobReader, ObjectStat)> {
        let stat = Self::object_stat(self.meta(rel).map_err(|e| refuse_dir(e, "not a regular file"))?);
        Ok((self.open(rel)?, stat))
    }

    fn stat(&self, rel: &str) -> io::Result<ObjectStat> {
        match self.kind(rel)? {
            Kind::File => Ok(Self::object_stat(self.meta(rel)?)),
            kind => Ok(ObjectStat { kind, size: 0, modified: None, born: None, etag: None, file: None }),
        }
    }
}

/// A directory where a file was asked for is refused as the filesystem
/// backend refuses it: reached, but not a regular file.
fn refuse_dir(e: io::Error, what: &'static str) -> io::Error {
    if e.kind() == io::ErrorKind::IsADirectory {
        io::Error::new(io::ErrorKind::InvalidData, what)
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::storage::{scan, walks, Leaves, StorageRoot};

    /// Objects in memory.
    struct Memory(BTreeMap<String, Vec<u8>>);

    impl ObjectStore for Memory {
        fn get(&self, key: &str, limit: Option<u64>) -> io::Result<Vec<u8>> {
            let data = self.0.get(key).ok_or(io::ErrorKind::NotFound)?;
            let n = limit.map_or(data.len(), |l| data.len().min(l as usize));
            Ok(data[..n].to_vec())
        }
        fn driver_name(&self) -> &'static str {
            "inmemory"
        }
        fn stream(&self, key: &str) -> io::Result<Box<dyn io::Read + Send>> {
            Ok(Box::new(io::Cursor::new(self.get(key, None)?)))
        }
    }

    /// Every regular file below `dir` as (key, bytes); whether the tree has
    /// anything a flat key space cannot hold (an empty directory, a
    /// symlink, a name that is not UTF-8).
    fn files(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) -> bool {
        let mut flat = true;
        let mut any = false;
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            any = true;
            let t = e.file_type().unwrap();
            if e.file_name().to_str().is_none() {
                return false;
            }
            if t.is_dir() {
                flat &= files(root, &e.path(), out);
            } else if t.is_file() {
                let key = e.path().strip_prefix(root).unwrap().to_str().unwrap().to_string();
                out.insert(key, std::fs::read(e.path()).unwrap());
            } else {
                flat = false;
            }
        }
        flat && any
    }

    fn trees() -> Vec<PathBuf> {
        let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
        let mut out = Vec::new();
        for group in ["trees", "broken"] {
            for e in std::fs::read_dir(base.join(group)).unwrap() {
                out.push(e.unwrap().path());
            }
        }
        out.sort();
        out
    }

    /// The same layout interpretation turns the filesystem walk and a flat
    /// listing of the same files into the same inventory and the same
    /// registry walks: every testdata tree a flat key space can hold.
    #[test]
    fn a_flat_listing_reads_as_the_same_tree() {
        let mut compared = 0;
        for tree in trees() {
            let mut objects = BTreeMap::new();
            if !files(&tree, &tree, &mut objects) {
                continue;
            }
            let root = StorageRoot::locate(&tree).unwrap();
            let metas = objects
                .iter()
                .map(|(k, v)| ObjectMeta { key: k.clone(), size: v.len() as u64, modified: None, etag: None })
                .collect();
            let flat = FlatBackend::new(metas, Memory(objects));
            for leaves in [Leaves::List, Leaves::OpenLinks] {
                let on_disk = root.scan(leaves);
                let listed = scan::scan(&flat, root.path(), leaves, None);
                assert_eq!(format!("{listed:#?}"), format!("{on_disk:#?}"), "{} ({leaves:?})", tree.display());
                let a = format!("{:#?}", walks::registry_walks(&flat, &listed));
                let b = format!("{:#?}", root.registry_walks(&on_disk));
                assert_eq!(a, b, "{}", tree.display());
            }
            compared += 1;
        }
        assert!(compared >= 20, "only {compared} trees compared");
    }

    /// Counts the GETs a store is asked for.
    struct Counting(Memory, std::sync::atomic::AtomicUsize);

    impl ObjectStore for Counting {
        fn get(&self, key: &str, limit: Option<u64>) -> io::Result<Vec<u8>> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.0.get(key, limit)
        }
        fn driver_name(&self) -> &'static str {
            "inmemory"
        }
        fn stream(&self, key: &str) -> io::Result<Box<dyn io::Read + Send>> {
            self.0.stream(key)
        }
    }

    #[test]
    fn a_tag_current_link_proven_by_its_etag_is_not_read() {
        use md5::Digest as _;
        let d = format!("sha256:{}", "ab".repeat(32));
        let tag = "docker/registry/v2/repositories/r/_manifests/tags/t";
        let keys = [format!("{tag}/current/link"), format!("{tag}/index/sha256/{}/link", "ab".repeat(32))];
        let etag = format!("\"{}\"", hex::encode(md5::Md5::digest(d.as_bytes())));
        let objects = keys
            .iter()
            .map(|k| ObjectMeta { key: k.clone(), size: 71, modified: None, etag: Some(etag.clone()) })
            .collect();
        let store = Memory(keys.iter().map(|k| (k.clone(), d.clone().into_bytes())).collect());
        let backend = FlatBackend::new(objects, Counting(store, Default::default()));
        let mut buf = [0u8; 1024];
        let dir = format!("{tag}/current");
        let read = backend.read_small(&dir, "link", true, None, &mut buf).unwrap();
        assert_eq!(read, d.as_bytes());
        assert_eq!(backend.store.1.load(std::sync::atomic::Ordering::SeqCst), 0, "the link was read");
    }
}
