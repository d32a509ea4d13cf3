//! The garbage-collect model reads the tree without listing the directories
//! that hold a single link (`Leaves::OpenLinks`). That must record exactly
//! the links and blobs the full walk records, whatever sits in or instead of
//! those directories; only problems may differ.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::{all_trees, scratch, testdata, V2};
use regaudit::inventory::Inventory;
use regaudit::storage::{Leaves, StorageRoot};

fn both(root: &Path) -> (Inventory, Inventory) {
    let root = StorageRoot::locate(root).unwrap();
    (root.scan(Leaves::List), root.scan(Leaves::OpenLinks))
}

/// Everything the gc model reads from the inventory.
fn assert_same_links(root: &Path, what: &str) {
    let (full, direct) = both(root);
    assert_eq!(full.blobs.keys().collect::<Vec<_>>(), direct.blobs.keys().collect::<Vec<_>>(), "{what}: blobs");
    assert_eq!(full.repositories.len(), direct.repositories.len(), "{what}: repositories");
    for (a, b) in full.repositories.iter().zip(&direct.repositories) {
        let name = &a.name;
        assert_eq!(a.name, b.name, "{what}");
        assert_eq!(a.layer_links, b.layer_links, "{what}: {name} _layers");
        assert_eq!(a.revisions, b.revisions, "{what}: {name} revisions");
        assert_eq!(a.signature_links, b.signature_links, "{what}: {name} signatures");
        assert_eq!(a.stray_links, b.stray_links, "{what}: {name} stray links");
        assert_eq!(a.link_dirs, b.link_dirs, "{what}: {name} links that are directories");
        assert_eq!(
            a.tags.iter().collect::<Vec<_>>(),
            b.tags.iter().collect::<Vec<_>>(),
            "{what}: {name} tags (current and index)"
        );
        assert_eq!(
            (a.has_layers_dir, a.has_manifests_dir, a.has_uploads_dir),
            (b.has_layers_dir, b.has_manifests_dir, b.has_uploads_dir),
            "{what}: {name}"
        );
    }
    assert_eq!(full.blob_anomalies, direct.blob_anomalies, "{what}: blob anomalies");
}

#[test]
fn every_testdata_tree_gives_the_same_links() {
    for tree in all_trees() {
        assert_same_links(&testdata(&tree), &tree);
    }
}

#[test]
fn oddities_in_single_link_directories_give_the_same_links() {
    let dir = scratch("trees/full");
    let repo = dir.path().join(V2).join("repositories/base/noempty");
    let layers: Vec<_> = std::fs::read_dir(repo.join("_layers/sha256")).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(layers.len() >= 3, "the full tree has layer links to break");
    // A directory without its link, a link that is a directory, a symlink, a FIFO.
    std::fs::remove_file(layers[0].join("link")).unwrap();
    std::fs::remove_file(layers[1].join("link")).unwrap();
    std::fs::create_dir(layers[1].join("link")).unwrap();
    let content = std::fs::read(layers[2].join("link")).unwrap();
    std::fs::remove_file(layers[2].join("link")).unwrap();
    std::fs::write(dir.path().join("outside"), &content).unwrap();
    symlink(dir.path().join("outside"), layers[2].join("link")).unwrap();
    // A stray beside a tag's current link, and a FIFO as a history link.
    let tag = repo.join("_manifests/tags/1.0");
    std::fs::write(tag.join("current/link.bak"), b"sha256:0").unwrap();
    let history = std::fs::read_dir(tag.join("index/sha256")).unwrap().next().unwrap().unwrap().path();
    std::fs::remove_file(history.join("link")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        history.join("link"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    assert_same_links(dir.path(), "hand-broken copy of trees/full");

    // The direct reads still report what they could not read.
    let (_, direct) = both(dir.path());
    let codes: Vec<_> = direct.problems.iter().map(|p| (p.code, p.path.as_str())).collect();
    assert!(
        codes.iter().any(|(_, p)| p.ends_with(&format!("{}/link", layers[2].file_name().unwrap().to_string_lossy()))),
        "the symlinked link is reported: {codes:?}"
    );
}

/// Every `link` below revisions/ and `_layers` that Go's walk reads, in its
/// order, is kept by both walks, and links that are directories are named.
#[test]
fn stray_links_and_link_directories_are_kept_by_both_walks() {
    let dir = scratch("trees/minimal");
    let app = dir.path().join(V2).join("repositories/app");
    let rev = std::fs::read_dir(app.join("_manifests/revisions/sha256")).unwrap().next().unwrap().unwrap().path();
    let layer = std::fs::read_dir(app.join("_layers/sha256")).unwrap().next().unwrap().unwrap().path();
    let content = std::fs::read(rev.join("link")).unwrap();
    let put = |p: &Path| {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, &content).unwrap();
    };
    put(&rev.with_extension("bak").join("link"));
    put(&app.join("_manifests/revisions/sha256/link"));
    put(&rev.join("old/deeper/link"));
    put(&app.join("_layers/sha256/zz/link"));
    // Beside a layer link, in a subdirectory: the fast walk must list that directory.
    let other_layer = std::fs::read_dir(app.join("_layers/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p != &layer && p.file_name().unwrap() != "zz")
        .unwrap();
    put(&other_layer.join("sub/link"));
    // A layer link that is a directory holding one; a tag's current link that is a directory.
    let layer_link = std::fs::read(layer.join("link")).unwrap();
    std::fs::remove_file(layer.join("link")).unwrap();
    std::fs::create_dir(layer.join("link")).unwrap();
    std::fs::write(layer.join("link/link"), &layer_link).unwrap();
    std::fs::create_dir_all(app.join("_manifests/tags/bad/current/link")).unwrap();
    assert_same_links(dir.path(), "strays in a copy of trees/minimal");

    let (full, _) = both(dir.path());
    let repo = &full.repositories[0];
    let rev_rel = format!("_manifests/revisions/sha256/{}", rev.file_name().unwrap().to_string_lossy());
    let layer_rel = format!("_layers/sha256/{}", layer.file_name().unwrap().to_string_lossy());
    let strays: Vec<&str> = repo.stray_links.iter().map(|s| s.path.as_str()).collect();
    // Go's walk order: siblings sorted, each subtree right after its directory.
    let mut layer_strays = vec![format!("{layer_rel}/link/link"), "_layers/sha256/zz/link".to_string()];
    let other_rel_path = format!("_layers/sha256/{}/sub/link", other_layer.file_name().unwrap().to_string_lossy());
    layer_strays.push(other_rel_path);
    layer_strays.sort_by(|a, b| a.split('/').cmp(b.split('/')));
    let expected: Vec<String> = layer_strays
        .into_iter()
        .chain([
            format!("{rev_rel}/old/deeper/link"),
            format!("{rev_rel}.bak/link"),
            "_manifests/revisions/sha256/link".to_string(),
        ])
        .collect();
    assert_eq!(strays, expected);
    let other_rel = format!("_layers/sha256/{}/sub/link", other_layer.file_name().unwrap().to_string_lossy());
    assert!(strays.contains(&other_rel.as_str()), "{strays:?}");
    assert!(repo.stray_links.iter().all(|s| s.link.is_ok()));
    assert_eq!(repo.link_dirs, [format!("{layer_rel}/link"), "_manifests/tags/bad/current/link".to_string()]);
}
