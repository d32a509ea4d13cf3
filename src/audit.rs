//! One audit of one tree: locate, scan, load contents, check. Every command
//! starts here.

use std::path::Path;

use crate::checks;
use crate::contents::Contents;
use crate::inventory::Inventory;
use crate::model::serve::Server;
use crate::model::Target;
use crate::problem::Problem;
use crate::tree::{LocateError, StorageRoot};

pub struct Audit {
    pub root: StorageRoot,
    pub target: Target,
    pub inventory: Inventory,
    pub contents: Contents,
    pub problems: Vec<Problem>,
}

impl Audit {
    pub fn run(path: &Path, target: Target) -> Result<Audit, LocateError> {
        let root = StorageRoot::locate(path)?;
        let inventory = root.scan();
        let contents = Contents::load(&root, &inventory);
        let problems = checks::check(&inventory, &contents, target);
        Ok(Audit { root, target, inventory, contents, problems })
    }

    pub fn server(&self) -> Server<'_> {
        Server::new(&self.inventory, &self.contents, self.target)
    }

    pub fn has_findings(&self) -> bool {
        self.problems.iter().any(Problem::is_finding)
    }
}
