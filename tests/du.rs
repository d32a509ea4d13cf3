//! `regaudit du` on trees made by the real registry, and checked against it:
//! deleting a repository and collecting garbage frees exactly its unique
//! bytes (plus what was already unreferenced).

mod common;

use common::registry;

use common::*;

fn du_json(root: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["du", root];
    args.extend(extra);
    let (code, mut v) = json(&args);
    assert_eq!(code, 0);
    v["root"] = "[root]".into();
    v
}

#[test]
fn du_text_and_json_on_the_full_tree() {
    let root = testdata("trees/full");
    let run = regaudit(&["du", root.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("du_full_text", run.stdout);
    let v = du_json(root.to_str().unwrap(), &[]);
    for r in v["repositories"].as_array().unwrap() {
        let n = |f: &str| r[f].as_u64().unwrap();
        assert_eq!(n("unique_bytes") + n("shared_bytes"), n("referenced_bytes"), "{r}");
    }
    let t = &v["total"];
    let n = |f: &str| t[f].as_u64().unwrap();
    assert_eq!(n("unique_bytes") + n("shared_bytes"), n("referenced_bytes"));
    assert_eq!(n("referenced_bytes") + n("unreferenced_bytes"), n("stored_bytes"));
    insta::assert_json_snapshot!("du_full_json", v);
}

#[test]
fn du_sorts() {
    let root = testdata("trees/full");
    for (key, field) in [("size", "referenced_bytes"), ("unique", "unique_bytes"), ("shared", "shared_bytes")] {
        let v = du_json(root.to_str().unwrap(), &["--sort", key]);
        assert_eq!(v["sort"], key);
        let values: Vec<u64> =
            v["repositories"].as_array().unwrap().iter().map(|r| r[field].as_u64().unwrap()).collect();
        assert!(values.windows(2).all(|w| w[0] >= w[1]), "{key}: {values:?}");
    }
    let v = du_json(root.to_str().unwrap(), &["--sort", "name"]);
    let names: Vec<&str> =
        v["repositories"].as_array().unwrap().iter().map(|r| r["repository"].as_str().unwrap()).collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
}

/// Sum of the sizes of blob data files under a storage root.
fn blob_bytes(root: &std::path::Path) -> u64 {
    registry::snapshot(&root.join(V2).join("blobs"))
        .keys()
        .filter(|p| p.ends_with("/data"))
        .map(|p| std::fs::metadata(root.join(V2).join("blobs").join(p)).unwrap().len())
        .sum()
}

#[test]
fn unreferenced_blobs_are_what_garbage_collection_deletes() {
    if !registry::require() {
        return;
    }
    for tree in ["trees/full", "trees/minimal-multi"] {
        let (_dir, root) = registry::scratch_copy(&testdata(tree));
        let v = du_json(root.to_str().unwrap(), &[]);
        let before = blob_bytes(&root);
        let out = registry::garbage_collect(&root, false, false);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let freed = before - blob_bytes(&root);
        assert_eq!(freed, v["total"]["unreferenced_bytes"].as_u64().unwrap(), "{tree}");
    }
}

#[test]
fn deleting_a_repository_frees_its_unique_bytes() {
    if !registry::require() {
        return;
    }
    let src = testdata("trees/full");
    let v = du_json(src.to_str().unwrap(), &[]);
    let unreferenced = v["total"]["unreferenced_bytes"].as_u64().unwrap();
    let mut checked = 0;
    for repo in ["base/noempty", "base/schema2", "copies/alpine", "multi/docker-list", "oci/artifact"] {
        let usage = v["repositories"].as_array().unwrap().iter().find(|r| r["repository"] == repo).unwrap();
        let unique = usage["unique_bytes"].as_u64().unwrap();
        let (_dir, root) = registry::scratch_copy(&src);
        std::fs::remove_dir_all(root.join(V2).join("repositories").join(repo)).unwrap();
        let before = blob_bytes(&root);
        let out = registry::garbage_collect(&root, false, false);
        assert!(out.status.success(), "{repo}: {}", String::from_utf8_lossy(&out.stderr));
        let freed = before - blob_bytes(&root);
        assert_eq!(freed, unique + unreferenced, "{repo}: GC freed {freed}, du predicted {unique} + {unreferenced}");
        checked += 1;
    }
    assert_eq!(checked, 5);
}

/// An index child that is stored but has no revision link in its repository:
/// 2.8's garbage-collect marks the child (a reference of the index) but not
/// its config and layers, which only a revision of the child would keep. du
/// used to follow the child and count them as referenced.
#[test]
fn an_index_child_that_is_not_linked_keeps_nothing_of_its_own() {
    if !registry::require() {
        return;
    }
    let child = "2afd554a6b3f25d6e68f3b1a5572935c130e948ffb0254164bb6ddc05e3a65b4";
    let (_src_dir, src) = registry::scratch_copy(&testdata("trees/full"));
    let unlinked = src.join(V2).join("repositories/multi/docker-list/_manifests/revisions/sha256").join(child);
    std::fs::remove_dir_all(&unlinked).unwrap();
    let v = du_json(src.to_str().unwrap(), &[]);
    let unreferenced = v["total"]["unreferenced_bytes"].as_u64().unwrap();
    // Collecting garbage on the tree as it is frees exactly the unreferenced bytes.
    let (_dir, root) = registry::scratch_copy(&src);
    let before = blob_bytes(&root);
    let out = registry::garbage_collect(&root, false, false);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(before - blob_bytes(&root), unreferenced, "GC frees what du calls unreferenced");
    // Deleting any repository then collecting frees its unique bytes on top.
    for usage in v["repositories"].as_array().unwrap() {
        let repo = usage["repository"].as_str().unwrap();
        let unique = usage["unique_bytes"].as_u64().unwrap();
        let (_dir, root) = registry::scratch_copy(&src);
        // Its own directories only: repositories nested below it stay.
        for own in ["_manifests", "_layers", "_uploads"] {
            let _ = std::fs::remove_dir_all(root.join(V2).join("repositories").join(repo).join(own));
        }
        let before = blob_bytes(&root);
        let out = registry::garbage_collect(&root, false, false);
        assert!(out.status.success(), "{repo}: {}", String::from_utf8_lossy(&out.stderr));
        let freed = before - blob_bytes(&root);
        assert_eq!(freed, unique + unreferenced, "{repo}: GC freed {freed}, du predicted {unique} + {unreferenced}");
    }
}
