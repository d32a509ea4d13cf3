//! `verify --format dfxml|bodyfile`: every file read as evidence, with its
//! stat and hash (links are read and hashed here).

use std::io;

use sha2::{Digest as _, Sha256};

use crate::audit::Audit;
use crate::inventory::Repository;
use crate::layout;
use crate::storage::{FileStat, StorageRoot};
use crate::verify::Outcome;

/// One file read: a blob's data or a link.
pub struct EvidenceFile {
    /// Relative to the storage root.
    pub path: String,
    pub stat: Option<FileStat>,
    /// (algorithm, lowercase hex) of the whole content, when known.
    pub hash: Option<(&'static str, String)>,
    /// Why something is missing (unreadable, not hashed...).
    pub error: Option<String>,
}

/// Every blob the verification hashed (or tried to) and every link of the
/// repositories verified (all when `filter` is empty), in path order.
pub fn evidence_files(audit: &Audit, filter: &[String]) -> Vec<EvidenceFile> {
    let root = &audit.root;
    let mut files = Vec::new();
    if let Some(v) = &audit.verification {
        for check in v.blobs.values() {
            let path = layout::blob_data(&check.digest);
            let (stat, stat_error) = match root.file_stat(&path) {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(format!("times cannot be read: {e}"))),
            };
            let alg = check.digest.algorithm().name();
            let (hash, error) = match &check.outcome {
                Outcome::Intact => (Some((alg, check.digest.hex())), None),
                Outcome::Corrupt { actual } | Outcome::Truncated { actual, .. } => {
                    let hex = actual.split_once(':').map_or(actual.as_str(), |(_, h)| h);
                    (Some((alg, hex.to_string())), None)
                }
                Outcome::Unreadable { error } => (None, Some(format!("cannot be read: {error}"))),
                Outcome::Changed { error } => (None, Some(format!("changed while hashed: {error}"))),
                Outcome::NotChecked => (None, Some("not hashed: verification was interrupted first".into())),
            };
            files.push(EvidenceFile { path, stat, hash, error: error.or(stat_error) });
        }
    }
    let repos = audit.inventory.repositories.iter().filter(|r| filter.is_empty() || filter.contains(&r.name));
    for repo in repos {
        for path in link_paths(repo) {
            files.push(read_link(root, path));
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files
}

fn link_paths(repo: &Repository) -> Vec<String> {
    let name = &repo.name;
    let mut out: Vec<String> = repo.layer_links.keys().map(|d| layout::layer_link(name, d)).collect();
    out.extend(repo.revisions.keys().map(|d| layout::revision_link(name, d)));
    for (tag, t) in repo.tags.iter() {
        if t.current.is_some() {
            out.push(layout::tag_current_link(name, tag));
        }
        out.extend(t.index.keys().map(|d| layout::tag_index_link(name, tag, d)));
    }
    out
}

/// Hashes a link whole, whatever its size, with the times it had when opened.
fn read_link(root: &StorageRoot, path: String) -> EvidenceFile {
    let hashed = root.open_with_file_stat(&path).and_then(|(mut file, stat)| {
        let mut hasher = Sha256::new();
        io::copy(&mut file, &mut hasher)?;
        Ok((hex::encode(hasher.finalize()), stat))
    });
    match hashed {
        Ok((hex, stat)) => EvidenceFile { path, stat: Some(stat), hash: Some(("sha256", hex)), error: None },
        Err(e) => EvidenceFile { path, stat: None, hash: None, error: Some(format!("cannot be read: {e}")) },
    }
}
