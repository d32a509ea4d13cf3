//! What provenance records of the run's reads: the roots as resolved,
//! whether `O_NOATIME` held, and what each object-store root cost.

use std::path::{Path, PathBuf};

use crate::report::provenance::{ObjectStoreUse, Requests, RootId};

/// Each root as given and as resolved (canonical path, device, inode).
pub fn identify_roots(roots: &[PathBuf]) -> Vec<RootId> {
    roots.iter().map(|r| identify(r)).collect()
}

fn identify(given: &Path) -> RootId {
    use std::os::unix::fs::MetadataExt;
    // An object-store root resolves to its URL, normalized; no request is made.
    if let Some(url) = given.to_str().and_then(crate::storage::s3::RootUrl::parse) {
        return RootId {
            given: given.to_string_lossy().into_owned(),
            resolved: url.ok().map(|u| u.to_string()),
            device: None,
            inode: None,
            object_store: None,
        };
    }
    let resolved = std::fs::canonicalize(given).ok();
    // A stat reads the inode only: no access time changes.
    let meta = resolved.as_deref().and_then(|p| std::fs::metadata(p).ok());
    RootId {
        given: given.to_string_lossy().into_owned(),
        resolved: resolved.map(|p| p.to_string_lossy().into_owned()),
        device: meta.as_ref().map(|m| m.dev()),
        inode: meta.as_ref().map(|m| m.ino()),
        object_store: None,
    }
}

/// What each object-store root cost so far, attached to the root it was
/// opened for (in order: `diff` may name one bucket twice).
pub fn attach_object_store_use(roots: &mut [RootId]) {
    let mut used = crate::storage::object_roots();
    for root in roots.iter_mut() {
        let Some(i) = used.iter().position(|u| root.resolved.as_deref() == Some(u.url.as_str())) else { continue };
        let u = used.remove(i);
        let counts = u.stats.snapshot();
        root.object_store = Some(ObjectStoreUse {
            requests: Requests { list: counts.list, get: counts.get, head: counts.head, total: counts.total() },
            bytes_read: counts.bytes_read,
            objects_listed: u.objects_listed,
            listing_started: time(u.listing_started),
            listing_finished: time(u.listing_ended),
        });
    }
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// False once the kernel refused `O_NOATIME` on a read of the tree.
pub fn noatime_honoured() -> bool {
    crate::storage::noatime_honoured()
}
