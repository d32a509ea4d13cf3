//! The registry's own walks, as `garbage-collect` makes them: the catalog
//! walk of `repositories/`, the blob walk of `blobs/`, and what a recursive
//! delete removes. Backend-agnostic: listings and kinds only.

use std::collections::BTreeMap;

use crate::inventory::{EntryKind, Inventory, WalkEntry, WalkFacts};
use crate::layout::{self, BlobPath};
use crate::storage::{join, Backend, Entry, Kind};

/// See [`crate::storage::StorageRoot::registry_walks`].
pub fn registry_walks<B: Backend>(backend: &B, inv: &Inventory) -> WalkFacts {
    let repos = join(layout::V2, "repositories");
    let blobs = join(layout::V2, "blobs");
    let is_real_dir = |rel: &str| backend.kind(rel).is_ok_and(|k| k == Kind::Dir);
    let mut facts =
        WalkFacts { repositories_dir: is_real_dir(&repos), blobs_dir: is_real_dir(&blobs), ..WalkFacts::default() };
    if facts.repositories_dir {
        catalog_walk(backend, &repos, String::new(), &mut facts.catalog_dirs);
        if backend.follows_symlinks() {
            mark_aliases(backend, &repos, &mut facts.catalog_dirs);
        }
        for (rel, entries) in &facts.catalog_dirs {
            if !entries.iter().any(|e| e.name == "_manifests" && e.kind == EntryKind::Dir) {
                continue;
            }
            let tags = format!("{}/_manifests/tags", join(&repos, rel));
            if is_real_dir(&tags) {
                let files = sorted_entries(backend, &tags)
                    .into_iter()
                    .filter(|e| e.kind != Kind::Dir)
                    .map(|e| e.name)
                    .collect();
                facts.tags_dirs.insert(rel.clone(), files);
            }
        }
    }
    // Canonical blobs are not stray; only where the scan found something
    // else can a stray `data` file be, so only there is walked again.
    if facts.blobs_dir {
        for below in &inv.blob_anomalies {
            let mut parts: Vec<String> = below.iter().map(|c| crate::names::from_os(c).into_owned()).collect();
            let rel = if parts.is_empty() { blobs.clone() } else { format!("{blobs}/{}", parts.join("/")) };
            match backend.kind(&rel) {
                Ok(Kind::Dir) => blob_data_walk(backend, &rel, &mut parts, &mut facts.stray_blob_data),
                Ok(kind) if parts.last().is_some_and(|n| n == "data") => {
                    let view: Vec<&str> = parts.iter().map(String::as_str).collect();
                    let canonical = kind == Kind::File
                        && matches!(layout::classify_blob_path(&view, false), BlobPath::Data { misplaced: false, .. });
                    if !canonical {
                        facts.stray_blob_data.push(parts.join("/"));
                    }
                }
                _ => {}
            }
        }
    }
    facts
}

/// See [`crate::storage::StorageRoot::files_below`].
pub fn files_below<B: Backend>(backend: &B, rel: &str) -> Vec<String> {
    let mut out = Vec::new();
    // `os.RemoveAll` removes a symlink, never what it leads to.
    match backend.kind_unfollowed(rel) {
        Ok(Kind::Dir) => files_below_dir(backend, rel, &mut out),
        Ok(_) => out.push(rel.to_string()),
        Err(_) => {}
    }
    out
}

fn entry_kind(kind: Kind) -> EntryKind {
    match kind {
        Kind::Dir => EntryKind::Dir,
        Kind::File => EntryKind::File,
        Kind::Symlink => EntryKind::Symlink,
        Kind::Other => EntryKind::Other,
    }
}

/// Entries of a directory sorted bytewise, as the registry's walk sorts them.
/// An unlistable directory reads as empty (the scan reports it).
fn sorted_entries<B: Backend>(backend: &B, rel: &str) -> Vec<Entry> {
    let mut entries = backend.open_dir(rel).and_then(|d| backend.list(&d)).unwrap_or_default();
    // Followed, a symlink that leads nowhere is to the registry's walk a
    // path removed since the listing: "ignoring deleted path"
    // (registry/storage/driver/walk.go `WalkFallback`).
    entries.retain(|e| {
        e.kind != Kind::Symlink
            || !backend.kind(&join(rel, &e.name)).is_err_and(|err| err.kind() == std::io::ErrorKind::NotFound)
    });
    entries.sort_by(|a, b| crate::names::to_bytes(&a.name).cmp(&crate::names::to_bytes(&b.name)));
    entries
}

/// Records `dir` (named `name` below `repositories/`) and descends into
/// every child directory the catalog walk enters: those not starting with `_`.
fn catalog_walk<B: Backend>(backend: &B, dir: &str, name: String, out: &mut BTreeMap<String, Vec<WalkEntry>>) {
    let entries = sorted_entries(backend, dir);
    let mut recorded = Vec::with_capacity(entries.len());
    for e in entries {
        if e.kind == Kind::Dir && !e.name.starts_with('_') {
            let child = if name.is_empty() { e.name.clone() } else { format!("{name}/{}", e.name) };
            catalog_walk(backend, &join(dir, &e.name), child, out);
        }
        recorded.push(WalkEntry { name: e.name, kind: entry_kind(e.kind) });
    }
    out.insert(name, recorded);
}

/// Followed symlinks can make one directory a repository under two names
/// (`repositories/b -> a`): the catalog lists both, and a real
/// `--delete-untagged` run deletes a revision through one name, then fails
/// on it through the other (seen with 2.8.2: exit 1, "failed to delete
/// manifest ... Path not found"). That is not modelled: each symlink that
/// makes such an alias is recorded as a symlink, which the model lists as
/// not modelled.
fn mark_aliases<B: Backend>(backend: &B, repos: &str, dirs: &mut BTreeMap<String, Vec<WalkEntry>>) {
    let mut seen: BTreeMap<(u64, u64), Vec<(String, String)>> = BTreeMap::new();
    for (rel, entries) in dirs.iter() {
        for e in entries.iter().filter(|e| e.kind == EntryKind::Dir && !e.name.starts_with('_')) {
            let path = join(&join(repos, rel), &e.name);
            if let Some(file) = backend.stat(&path).ok().and_then(|s| s.file) {
                seen.entry((file.device, file.inode)).or_default().push((rel.clone(), e.name.clone()));
            }
        }
    }
    for (rel, name) in seen.into_values().filter(|v| v.len() > 1).flatten() {
        let path = join(&join(repos, &rel), &name);
        if backend.kind_unfollowed(&path).is_ok_and(|k| k == Kind::Symlink) {
            if let Some(e) = dirs.get_mut(&rel).and_then(|es| es.iter_mut().find(|e| e.name == name)) {
                e.kind = EntryKind::Symlink;
            }
        }
    }
}

/// Collects the `data` files under `blobs/` that are not canonical blobs.
fn blob_data_walk<B: Backend>(backend: &B, dir: &str, parts: &mut Vec<String>, out: &mut Vec<String>) {
    for e in sorted_entries(backend, dir) {
        parts.push(e.name.clone());
        if e.kind == Kind::Dir {
            blob_data_walk(backend, &join(dir, &e.name), parts, out);
        } else if parts.last().is_some_and(|n| n == "data") {
            let view: Vec<&str> = parts.iter().map(String::as_str).collect();
            let canonical = e.kind == Kind::File
                && matches!(layout::classify_blob_path(&view, false), BlobPath::Data { misplaced: false, .. });
            if !canonical {
                out.push(parts.join("/"));
            }
        }
        parts.pop();
    }
}

fn files_below_dir<B: Backend>(backend: &B, rel: &str, out: &mut Vec<String>) {
    let mut entries = backend.open_dir(rel).and_then(|d| backend.list_unfollowed(&d)).unwrap_or_default();
    entries.sort_by(|a, b| crate::names::to_bytes(&a.name).cmp(&crate::names::to_bytes(&b.name)));
    for e in entries {
        let child = format!("{rel}/{}", e.name);
        if e.kind == Kind::Dir {
            files_below_dir(backend, &child, out);
        } else {
            out.push(child);
        }
    }
}
