//! What provenance records of the run's reads: the roots as resolved, and
//! whether `O_NOATIME` held.

use std::path::{Path, PathBuf};

use crate::report::provenance::RootId;

/// Each root as given and as resolved (canonical path, device, inode).
pub fn identify_roots(roots: &[PathBuf]) -> Vec<RootId> {
    roots.iter().map(|r| identify(r)).collect()
}

fn identify(given: &Path) -> RootId {
    use std::os::unix::fs::MetadataExt;
    let resolved = std::fs::canonicalize(given).ok();
    // A stat reads the inode only: no access time changes.
    let meta = resolved.as_deref().and_then(|p| std::fs::metadata(p).ok());
    RootId {
        given: given.to_string_lossy().into_owned(),
        resolved: resolved.map(|p| p.to_string_lossy().into_owned()),
        device: meta.as_ref().map(|m| m.dev()),
        inode: meta.as_ref().map(|m| m.ino()),
    }
}

/// False once the kernel refused `O_NOATIME` on a read of the tree.
pub fn noatime_honoured() -> bool {
    crate::storage::noatime_honoured()
}
