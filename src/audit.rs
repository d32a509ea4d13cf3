//! One audit of one tree: locate, scan, load contents, check. Every command
//! starts here.

use std::collections::BTreeSet;
use std::path::Path;

use crate::digest::Digest;
use crate::progress::Progress;

use crate::checks;
use crate::contents::Contents;
use crate::inventory::{is_at_or_below, Inventory, Repository};
use crate::layout;
use crate::model::serve::Server;
use crate::model::Target;
use crate::problem::Problem;
use crate::storage::{Leaves, LocateError, StorageRoot};
use crate::verify::{self, Verification};

/// Why a repository cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    #[error(
        "repository {name:?} cannot be read: {link} is a symbolic link, which regaudit does not follow \
         (the registry does)"
    )]
    BehindSymlink { name: String, link: String },
    #[error("repository {name:?} cannot be read: {dir} cannot be listed ({error})")]
    Unlistable { name: String, dir: String, error: String },
    #[error("no repository {0:?} in this tree")]
    Missing(String),
}

impl From<RepositoryError> for String {
    fn from(e: RepositoryError) -> String {
        e.to_string()
    }
}

pub struct Audit {
    pub root: StorageRoot,
    pub target: Target,
    pub inventory: Inventory,
    pub contents: Contents,
    pub problems: Vec<Problem>,
    /// Set once blob contents were hashed.
    pub verification: Option<Verification>,
}

impl Audit {
    pub fn run(path: &Path, target: Target) -> Result<Audit, LocateError> {
        let root = StorageRoot::locate(path)?;
        let inventory = root.scan(Leaves::List);
        let contents = Contents::load(&root, &inventory, true, target);
        let problems = checks::check(&inventory, &contents, target);
        Ok(Audit { root, target, inventory, contents, problems, verification: None })
    }

    /// What modelling `garbage-collect` needs and no more: the inventory
    /// (read without listing the single-link directories, see
    /// [`Leaves::OpenLinks`]) and the manifests, without configs and without
    /// the problem checks (the gc report has its own aborts and hazards).
    /// `problems` holds only what the reader found.
    pub fn run_for_gc(path: &Path, target: Target) -> Result<Audit, LocateError> {
        let root = StorageRoot::locate(path)?;
        let inventory = root.scan(Leaves::OpenLinks);
        let contents = Contents::load(&root, &inventory, false, target);
        let problems = inventory.problems.clone();
        Ok(Audit { root, target, inventory, contents, problems, verification: None })
    }

    /// A repository of the tree, or the error to show when there is none.
    pub fn repository(&self, name: &str) -> Result<&Repository, RepositoryError> {
        self.inventory
            .repository(name)
            .ok_or_else(|| self.unseen(name).unwrap_or_else(|| RepositoryError::Missing(name.to_string())))
    }

    /// [`Audit::unseen`] as the text to show.
    pub fn why_unseen(&self, name: &str) -> Option<String> {
        self.unseen(name).map(|e| e.to_string())
    }

    /// Why a repository the walk did not find may still exist: its
    /// directory (or one above it) is a symlink regaudit does not follow,
    /// or could not be read.
    pub fn unseen(&self, name: &str) -> Option<RepositoryError> {
        let dir = layout::repo_dir(name);
        let repositories = format!("{}/repositories", layout::V2);
        let inv = &self.inventory;
        if let Some(s) = inv.symlinks.iter().find(|s| is_at_or_below(&dir, s)) {
            return Some(RepositoryError::BehindSymlink { name: name.to_string(), link: s.clone() });
        }
        let mut at = dir.as_str();
        loop {
            if let Some(f) = inv.fault_at(at) {
                return Some(RepositoryError::Unlistable {
                    name: name.to_string(),
                    dir: f.path.clone(),
                    error: f.error.clone(),
                });
            }
            match at.rsplit_once('/') {
                Some((up, _)) if is_at_or_below(up, &repositories) => at = up,
                _ => return None,
            }
        }
    }

    pub fn server(&self) -> Server<'_> {
        Server::new(&self.inventory, &self.contents, self.target)
    }

    /// Hashes the data of `digests` (those that exist) and adds what it finds
    /// to the problems.
    pub fn verify(&mut self, digests: &BTreeSet<Digest>, progress: &Progress) {
        let v = verify::verify(&self.root, &self.inventory, &self.contents, digests, progress);
        self.problems.extend(v.problems());
        crate::problem::normalize(&mut self.problems);
        self.verification = Some(v);
    }

    /// Whether every blob of `digests` is intact; None before verification
    /// or when it was interrupted before reaching them.
    pub fn intact<'a>(&self, digests: impl IntoIterator<Item = &'a Digest>) -> Option<bool> {
        self.verification.as_ref()?.all_intact(digests)
    }
}
