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

/// `registry-v3 garbage-collect` (Distribution v3.1.1, /work/shared/tools).
const REGISTRY_V3: &str = "/work/shared/tools/registry-v3";

fn garbage_collect_v3(root: &std::path::Path) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yml");
    std::fs::write(&cfg, registry::config(root, 5999, "")).unwrap();
    std::process::Command::new(REGISTRY_V3).arg("garbage-collect").arg(&cfg).output().expect("run registry-v3")
}

/// Checks du's figures against a real garbage-collect on copies of `src`:
/// on the tree as it is, GC frees exactly the unreferenced bytes; after a
/// repository's own directories are removed, its unique bytes on top.
fn unique_bytes_are_what_gc_frees(
    src: &std::path::Path,
    target: &str,
    gc: &dyn Fn(&std::path::Path) -> std::process::Output,
) {
    let v = du_json(src.to_str().unwrap(), &["--target", target]);
    let unreferenced = v["total"]["unreferenced_bytes"].as_u64().unwrap();
    let (_dir, root) = registry::scratch_copy(src);
    let before = blob_bytes(&root);
    let out = gc(&root);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(before - blob_bytes(&root), unreferenced, "{target}: GC frees what du calls unreferenced");
    for usage in v["repositories"].as_array().unwrap() {
        let repo = usage["repository"].as_str().unwrap();
        let unique = usage["unique_bytes"].as_u64().unwrap();
        let (_dir, root) = registry::scratch_copy(src);
        // Its own directories only: repositories nested below it stay.
        for own in ["_manifests", "_layers", "_uploads"] {
            let _ = std::fs::remove_dir_all(root.join(V2).join("repositories").join(repo).join(own));
        }
        let before = blob_bytes(&root);
        let out = gc(&root);
        assert!(out.status.success(), "{target} {repo}: {}", String::from_utf8_lossy(&out.stderr));
        let freed = before - blob_bytes(&root);
        assert_eq!(
            freed,
            unique + unreferenced,
            "{target} {repo}: GC freed {freed}, du predicted {unique} + {unreferenced}"
        );
    }
}

/// trees/full with index child `2afd554a…` of multi/docker-list stored but
/// not linked as a revision.
fn full_with_an_unlinked_child() -> (tempfile::TempDir, std::path::PathBuf) {
    let child = "2afd554a6b3f25d6e68f3b1a5572935c130e948ffb0254164bb6ddc05e3a65b4";
    let (dir, src) = registry::scratch_copy(&testdata("trees/full"));
    let unlinked = src.join(V2).join("repositories/multi/docker-list/_manifests/revisions/sha256").join(child);
    std::fs::remove_dir_all(&unlinked).unwrap();
    (dir, src)
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
    let (_dir, src) = full_with_an_unlinked_child();
    unique_bytes_are_what_gc_frees(&src, "2.8", &|root| registry::garbage_collect(root, false, false));
}

/// The same with v3.1.1, which follows an index's children that are
/// revisions of the repository (the schema1 repository is removed: v3's
/// garbage-collect aborts on it).
#[test]
fn an_index_child_that_is_not_linked_v3() {
    if !std::path::Path::new(REGISTRY_V3).exists() {
        eprintln!("SKIPPED: {REGISTRY_V3} is not installed (see /work/shared/tools/README.md)");
        return;
    }
    let (_dir, src) = full_with_an_unlinked_child();
    std::fs::remove_dir_all(src.join(V2).join("repositories/legacy")).unwrap();
    unique_bytes_are_what_gc_frees(&src, "3", &garbage_collect_v3);
}
