//! The object-store [`Backend`]: directories are the key prefixes of one
//! flat listing made at first use ([`ObjectRoot::list_all`]); a link whose
//! listed size and ETag prove its content is not read ([`link_from_etag`]).
//!
//! Not declared in `storage/mod.rs` on branch h-objstore (the trait lives on
//! h-storage): after the merge, declare `pub mod s3_backend;` there.

use std::io::{self, Read};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};

use super::s3::{digest_named_by_link_path, link_from_etag, ObjectEntry, ObjectError, ObjectReader, ObjectRoot};
use super::{join, Backend, BlobRead, BlobReader, Capabilities, Entry, Kind, ObjectStat, Stamp, Version};

pub struct ObjectBackend {
    root: ObjectRoot,
    /// Every object under the root, sorted by key; listed once.
    listing: OnceLock<Result<Vec<ObjectEntry>, ObjectError>>,
    /// `--read-all`: read every link, infer none from its ETag.
    read_all: bool,
}

impl ObjectBackend {
    pub fn new(root: ObjectRoot, read_all: bool) -> ObjectBackend {
        ObjectBackend { root, listing: OnceLock::new(), read_all }
    }

    pub fn root(&self) -> &ObjectRoot {
        &self.root
    }

    fn listing(&self) -> io::Result<&[ObjectEntry]> {
        match self.listing.get_or_init(|| self.root.list_all()) {
            Ok(entries) => Ok(entries),
            Err(e) => Err(io_error(e)),
        }
    }

    /// The listed objects whose key starts with `prefix`.
    fn range(&self, prefix: &str) -> io::Result<&[ObjectEntry]> {
        let all = self.listing()?;
        let start = all.partition_point(|e| e.key.as_str() < prefix);
        let len = all[start..].partition_point(|e| e.key.starts_with(prefix));
        Ok(&all[start..start + len])
    }

    fn find(&self, key: &str) -> io::Result<Option<&ObjectEntry>> {
        let all = self.listing()?;
        Ok(all.binary_search_by(|e| e.key.as_str().cmp(key)).ok().map(|i| &all[i]))
    }

    /// Whether some key lies below `rel` (the root always "exists").
    fn is_dir(&self, rel: &str) -> io::Result<bool> {
        if rel.is_empty() {
            self.listing()?;
            return Ok(true);
        }
        Ok(!self.range(&format!("{rel}/"))?.is_empty())
    }

    /// A listed object that is not there: a directory or nothing.
    fn not_a_file(&self, key: &str) -> io::Error {
        match self.is_dir(key) {
            Ok(true) => {
                io::Error::new(io::ErrorKind::IsADirectory, format!("{}: a key prefix", self.root.url().url_of(key)))
            }
            Ok(false) => {
                io::Error::new(io::ErrorKind::NotFound, format!("{}: no such object", self.root.url().url_of(key)))
            }
            Err(e) => e,
        }
    }

    /// The content of the link `entry` known without a GET: the digest its
    /// path names, or for a tag's `current/link` one of the tag's index
    /// entries, when the ETag is the MD5 of it.
    fn inferred_link(&self, entry: &ObjectEntry) -> Option<String> {
        if self.read_all {
            return None;
        }
        let candidates: Vec<String> = match digest_named_by_link_path(&entry.key) {
            Some(d) => vec![d],
            None => {
                let tag = entry.key.strip_suffix("/current/link")?;
                let index = self.range(&format!("{tag}/index/")).ok()?;
                index.iter().filter_map(|e| digest_named_by_link_path(&e.key)).collect()
            }
        };
        link_from_etag(entry.size, entry.etag.as_deref(), candidates.iter().map(String::as_str)).map(str::to_string)
    }

    fn open_reader(&self, rel: &str) -> io::Result<ObjectReader> {
        match self.root.open_read(rel) {
            Ok(r) => Ok(r),
            Err(ObjectError::NotFound { .. }) if self.is_dir(rel).unwrap_or(false) => Err(not_regular(rel)),
            Err(e) => Err(io_error(&e)),
        }
    }
}

fn not_regular(rel: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{rel}: not a regular file"))
}

fn io_error(e: &ObjectError) -> io::Error {
    let kind = match e {
        ObjectError::NotFound { .. } => io::ErrorKind::NotFound,
        ObjectError::Unsupported(_) => io::ErrorKind::Unsupported,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e.to_string())
}

fn stamp(t: DateTime<Utc>) -> Stamp {
    Stamp { secs: t.timestamp(), nanos: t.timestamp_subsec_nanos() }
}

fn stat_of(entry: &ObjectEntry) -> ObjectStat {
    ObjectStat {
        kind: Kind::File,
        size: entry.size,
        modified: Some(stamp(entry.last_modified)),
        born: None,
        etag: entry.etag.clone(),
        file: None,
    }
}

/// A streaming GET: one version of the object from start to end.
struct ObjectBlob(ObjectReader);

impl Read for ObjectBlob {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl BlobRead for ObjectBlob {
    fn version(&self) -> io::Result<Version> {
        let e = self.0.entry();
        Ok(Version { size: e.size, tag: e.etag.clone().unwrap_or_default() })
    }
}

impl Backend for ObjectBackend {
    /// The key prefix, relative to the root, without a trailing slash.
    type Dir = String;

    fn capabilities(&self) -> Capabilities {
        Capabilities { directories: false, mtimes: true, symlinks: false, birth_times: false, etags: true }
    }

    fn open_dir(&self, rel: &str) -> io::Result<String> {
        if self.is_dir(rel)? {
            return Ok(rel.to_string());
        }
        Err(match self.find(rel)? {
            Some(_) => io::Error::new(io::ErrorKind::NotADirectory, format!("{rel}: an object, not a prefix")),
            None => io::Error::new(io::ErrorKind::NotFound, format!("{rel}: no key below it")),
        })
    }

    fn open_child_dir(&self, dir: &String, name: &str) -> io::Result<String> {
        self.open_dir(&join(dir, name))
    }

    fn list(&self, dir: &String) -> io::Result<Vec<Entry>> {
        let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
        let entries = self.range(&prefix)?;
        let mut out = Vec::new();
        let mut i = 0;
        while i < entries.len() {
            let rest = &entries[i].key[prefix.len()..];
            match rest.split_once('/') {
                Some((name, _)) => {
                    out.push(Entry { name: name.to_string(), utf8: true, kind: Kind::Dir });
                    let below = format!("{prefix}{name}/");
                    i += entries[i..].partition_point(|e| e.key.starts_with(&below)).max(1);
                }
                None => {
                    out.push(Entry { name: rest.to_string(), utf8: true, kind: Kind::File });
                    i += 1;
                }
            }
        }
        Ok(out)
    }

    fn read_small<'b>(&self, dir: &String, name: &str, _listed: bool, buf: &'b mut [u8]) -> io::Result<&'b [u8]> {
        let key = join(dir, name);
        let Some(entry) = self.find(&key)? else {
            return Err(self.not_a_file(&key));
        };
        if let Some(content) = self.inferred_link(entry) {
            let n = content.len().min(buf.len());
            buf[..n].copy_from_slice(&content.as_bytes()[..n]);
            return Ok(&buf[..n]);
        }
        let mut reader = self.open_reader(&key)?;
        let mut n = 0;
        while n < buf.len() {
            match reader.read(&mut buf[n..])? {
                0 => break,
                k => n += k,
            }
        }
        Ok(&buf[..n])
    }

    fn size_in(&self, dir: &String, name: &str) -> io::Result<u64> {
        let key = join(dir, name);
        match self.find(&key)? {
            Some(entry) => Ok(entry.size),
            None => Err(self.not_a_file(&key)),
        }
    }

    /// Exact here: whether a key lies two or more levels below.
    fn may_hold_dirs(&self, dir: &String, name: &str) -> bool {
        let prefix = format!("{}/", join(dir, name));
        match self.range(&prefix) {
            Ok(below) => below.iter().any(|e| e.key[prefix.len()..].contains('/')),
            Err(_) => true,
        }
    }

    fn kind(&self, rel: &str) -> io::Result<Kind> {
        if self.find(rel)?.is_some() {
            Ok(Kind::File)
        } else if self.is_dir(rel)? {
            Ok(Kind::Dir)
        } else {
            Err(io::Error::new(io::ErrorKind::NotFound, format!("{rel}: no such key or prefix")))
        }
    }

    fn traversable(&self, _rel: &str) -> bool {
        true
    }

    fn read_capped(&self, rel: &str, limit: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.open_reader(rel)?.take(limit as u64 + 1).read_to_end(&mut out)?;
        Ok(out)
    }

    fn open(&self, rel: &str) -> io::Result<BlobReader> {
        Ok(Box::new(ObjectBlob(self.open_reader(rel)?)))
    }

    fn open_with_stat(&self, rel: &str) -> io::Result<(BlobReader, ObjectStat)> {
        let reader = self.open_reader(rel)?;
        let stat = stat_of(reader.entry());
        Ok((Box::new(ObjectBlob(reader)), stat))
    }

    fn stat(&self, rel: &str) -> io::Result<ObjectStat> {
        if let Some(entry) = self.find(rel)? {
            return Ok(stat_of(entry));
        }
        if self.is_dir(rel)? {
            return Ok(ObjectStat { kind: Kind::Dir, size: 0, modified: None, born: None, etag: None, file: None });
        }
        Err(io::Error::new(io::ErrorKind::NotFound, format!("{rel}: no such key or prefix")))
    }
}
