//! Verification: hash blob data in parallel and compare with its digest and
//! with the sizes manifests declare for it.
//!
//! Files are read with read() into one reused buffer per thread, never
//! memory-mapped: a mapped file truncated by another process kills the
//! reader with SIGBUS, while read() just ends early. Memory stays at one
//! buffer per core whatever the blob sizes; a blob whose size or times
//! change while it is read is reported as such, not as corrupt.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;
use serde::Serialize;

use crate::contents::Contents;
use crate::digest::Digest;
use crate::hashing::Hasher;
use crate::inventory::Inventory;
use crate::layout;
use crate::problem::{Code, Problem};
use crate::progress::Progress;
use crate::storage::StorageRoot;

/// The read buffer of each hashing thread: also how often a large blob
/// checks for Ctrl-C. Small enough to stay in the L2 cache between the copy
/// and the hash, large enough that syscalls cost nothing.
const CHUNK: usize = 256 << 10;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Outcome {
    Intact,
    /// The content hashes to another digest.
    Corrupt {
        actual: String,
    },
    /// Shorter than a manifest says, and so hashing to another digest.
    Truncated {
        actual: String,
        declared: u64,
    },
    Unreadable {
        error: String,
    },
    /// Its size or times changed while it was read: what it holds is unknown.
    Changed {
        error: String,
    },
    /// Not hashed: verification was interrupted first.
    NotChecked,
}

#[derive(Clone, Debug, Serialize)]
pub struct BlobCheck {
    pub digest: Digest,
    pub size: u64,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Sizes manifests declare for this blob that differ from its data.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub declared_sizes: Vec<i64>,
}

impl BlobCheck {
    pub fn is_intact(&self) -> bool {
        self.outcome == Outcome::Intact && self.declared_sizes.is_empty()
    }

    /// One word for tables and the `content` field of tree nodes.
    pub fn state(&self) -> &'static str {
        match &self.outcome {
            Outcome::Intact if self.declared_sizes.is_empty() => "intact",
            Outcome::Intact => "size-mismatch",
            Outcome::Corrupt { .. } => "corrupt",
            Outcome::Truncated { .. } => "truncated",
            Outcome::Unreadable { .. } => "unreadable",
            // `state` is a closed set in the JSON contract; the problem code tells them apart.
            Outcome::Changed { .. } => "unreadable",
            Outcome::NotChecked => "not-checked",
        }
    }
}

#[derive(Debug, Default)]
pub struct Verification {
    /// Keyed by digest; every blob asked for that has data.
    pub blobs: BTreeMap<Digest, BlobCheck>,
    pub bytes_hashed: u64,
    pub interrupted: bool,
}

/// Set by the Ctrl-C handler; workers stop at the next chunk.
pub static CANCEL: AtomicBool = AtomicBool::new(false);

/// Declared sizes per digest, from every decoded manifest's descriptors.
pub fn declared_sizes(contents: &Contents) -> HashMap<Digest, BTreeSet<i64>> {
    let mut out: HashMap<Digest, BTreeSet<i64>> = HashMap::new();
    for m in contents.manifests.values().filter_map(|m| m.as_ref().ok()) {
        for desc in m.references().filter(|d| !d.media_type.is_empty() || d.size != 0) {
            if let Some(d) = &desc.digest {
                out.entry(d.clone()).or_default().insert(desc.size);
            }
        }
    }
    out
}

pub fn verify(
    root: &StorageRoot,
    inv: &Inventory,
    contents: &Contents,
    digests: &BTreeSet<Digest>,
    progress: &Progress,
) -> Verification {
    let declared = declared_sizes(contents);
    let mut work: Vec<(&Digest, u64)> = digests.iter().filter_map(|d| inv.blob_size(d).map(|s| (d, s))).collect();
    // Largest first, so one huge blob does not finish alone at the end.
    work.sort_by_key(|w| std::cmp::Reverse(w.1));
    let checks: Vec<BlobCheck> = work
        .par_iter()
        .map_init(
            || vec![0u8; CHUNK],
            |buf, (d, size)| {
                let outcome = if CANCEL.load(Ordering::Relaxed) {
                    Outcome::NotChecked
                } else {
                    hash_blob(root, d, *size, buf, progress)
                };
                let declared_sizes: Vec<i64> = declared
                    .get(*d)
                    .map(|s| s.iter().copied().filter(|s| *s != *size as i64).collect())
                    .unwrap_or_default();
                let outcome = match outcome {
                    Outcome::Corrupt { actual } => match declared_sizes.iter().copied().find(|s| *s > *size as i64) {
                        Some(longer) => Outcome::Truncated { actual, declared: longer as u64 },
                        None => Outcome::Corrupt { actual },
                    },
                    other => other,
                };
                BlobCheck { digest: (*d).clone(), size: *size, outcome, declared_sizes }
            },
        )
        .collect();
    progress.finish();
    let interrupted = checks.iter().any(|c| c.outcome == Outcome::NotChecked);
    let bytes_hashed = checks.iter().filter(|c| c.outcome != Outcome::NotChecked).map(|c| c.size).sum();
    Verification { blobs: checks.into_iter().map(|c| (c.digest.clone(), c)).collect(), bytes_hashed, interrupted }
}

/// Hashes one blob with its own algorithm and compares. `listed` is the
/// size the walk saw; `buf` is the calling thread's read buffer.
fn hash_blob(root: &StorageRoot, d: &Digest, listed: u64, buf: &mut [u8], progress: &Progress) -> Outcome {
    let unreadable = |e: std::io::Error| Outcome::Unreadable { error: e.to_string() };
    let mut file = match root.open_blob(d) {
        Ok(f) => f,
        Err(e) => return unreadable(e),
    };
    // What identifies the content without reading it: a write or a
    // truncation changes it.
    let before = match file.version() {
        Ok(v) => v,
        Err(e) => return unreadable(e),
    };
    if before.size != listed {
        return Outcome::Changed {
            error: format!("it had {listed} bytes when the tree was listed and {} now", before.size),
        };
    }
    file.sequential();
    let mut hasher = Hasher::new(d.algorithm());
    let mut read = 0u64;
    loop {
        if CANCEL.load(Ordering::Relaxed) {
            return Outcome::NotChecked;
        }
        match file.read(buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                progress.add(n as u64);
                read += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return unreadable(e),
        }
    }
    let after = match file.version() {
        Ok(v) => v,
        Err(e) => return unreadable(e),
    };
    if after != before || read != listed {
        return Outcome::Changed {
            error: format!("it had {listed} bytes when listed, {read} were read and it has {} now", after.size),
        };
    }
    let actual = hasher.finish();
    if &actual == d {
        Outcome::Intact
    } else {
        Outcome::Corrupt { actual: actual.to_string() }
    }
}

impl Verification {
    /// Problems for every blob that is not intact.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for c in self.blobs.values() {
            let path = layout::blob_data(&c.digest);
            match &c.outcome {
                Outcome::Intact | Outcome::NotChecked => {}
                Outcome::Corrupt { actual } => out.push(Problem::new(
                    Code::BlobCorrupt,
                    &path,
                    format!("blob {} hashes to {actual}: its content is corrupt", c.digest),
                )),
                Outcome::Truncated { actual, declared } => out.push(Problem::new(
                    Code::BlobTruncated,
                    &path,
                    format!(
                        "blob {} has {} of the {declared} bytes a manifest declares (hashes to {actual})",
                        c.digest, c.size
                    ),
                )),
                Outcome::Unreadable { error } => out.push(Problem::new(
                    Code::Unreadable,
                    &path,
                    format!("blob {} cannot be read: {error}", c.digest),
                )),
                Outcome::Changed { error } => out.push(Problem::new(
                    Code::BlobChanged,
                    &path,
                    format!("blob {} changed while it was hashed ({error}): its content is not known", c.digest),
                )),
            }
            if !c.declared_sizes.is_empty() && matches!(c.outcome, Outcome::Intact) {
                let sizes: Vec<String> = c.declared_sizes.iter().map(i64::to_string).collect();
                out.push(Problem::new(
                    Code::BlobSizeMismatch,
                    &path,
                    format!(
                        "blob {} has {} bytes but a manifest declares {}: clients reject it",
                        c.digest,
                        c.size,
                        sizes.join(" or ")
                    ),
                ));
            }
        }
        out
    }

    /// Marks every node of a tree with its blob's verified state.
    pub fn annotate(&self, node: &mut crate::resolve::Node) {
        if let Some(c) = node.parsed_digest.as_ref().and_then(|d| self.blobs.get(d)) {
            node.content = Some(c.state());
        }
        for child in &mut node.children {
            self.annotate(child);
        }
    }

    /// Whether every blob of `digests` that was checked is intact; None when
    /// some were not checked.
    pub fn all_intact<'a>(&self, digests: impl IntoIterator<Item = &'a Digest>) -> Option<bool> {
        let mut all = true;
        for d in digests {
            match self.blobs.get(d) {
                Some(c) if c.outcome == Outcome::NotChecked => return None,
                Some(c) => all &= c.is_intact(),
                None => all = false,
            }
        }
        Some(all)
    }
}
