//! `regaudit gc` on the testdata trees: the JSON contract, text output, and
//! the v3 model. There is no v3 binary here: the v3 expectations below are
//! derived by hand from distribution v3.1.1's
//! registry/storage/garbagecollect.go (recursive marking, the `_manifests`
//! catalog marker, the `_layers` check, schema1 refused) and say so.

mod common;

use common::*;

fn gc(rel: &str, extra: &[&str]) -> (i32, serde_json::Value) {
    let root = testdata(rel);
    let mut args = vec!["gc", root.to_str().unwrap()];
    args.extend(extra);
    let (code, mut v) = json(&args);
    v["root"] = "[root]".into();
    (code, v)
}

fn digests(v: &serde_json::Value, field: &str) -> Vec<String> {
    v[field].as_array().unwrap().iter().map(|m| m["digest"].as_str().unwrap().to_string()).collect()
}

#[test]
fn json_contract() {
    let (code, v) = gc("trees/full", &["--delete-untagged"]);
    assert_eq!(code, 1);
    for field in ["schema_version", "target", "aborts", "manifests", "blobs", "reclaimable_bytes", "removes", "hazards"]
    {
        assert!(v.get(field).is_some(), "missing {field}");
    }
    assert!(v["aborts"].is_null());
    // The real 2.8.2 dry run says: 43 blobs marked, 25 blobs and 10 manifests eligible.
    assert_eq!(v["marked"], 43);
    assert_eq!(v["blobs"].as_array().unwrap().len(), 25);
    assert_eq!(v["manifests"].as_array().unwrap().len(), 10);
    let sizes: u64 = v["blobs"].as_array().unwrap().iter().map(|b| b["size"].as_u64().unwrap()).sum();
    assert_eq!(v["reclaimable_bytes"].as_u64().unwrap(), sizes);
    let codes: Vec<&str> = v["hazards"].as_array().unwrap().iter().map(|h| h["code"].as_str().unwrap()).collect();
    for code in ["multi-arch-child-deleted", "referrer-swept", "layer-link-dangling", "linked-blob-deleted"] {
        assert!(codes.contains(&code), "no {code} hazard in {codes:?}");
    }
    // The base/schema2 v1 history entry for A stays (A is still tagged latest).
    let removes: Vec<&str> = v["removes"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert!(removes.iter().all(|r| r.starts_with("docker/registry/v2/")), "{removes:?}");
}

#[test]
fn text_summary_comes_first() {
    let root = testdata("trees/minimal-multi");
    let run = regaudit(&["gc", root.to_str().unwrap(), "--delete-untagged"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    insta::assert_snapshot!("gc_minimal_multi_untagged_text", run.stdout);
}

#[test]
fn clean_tree_is_exit_0() {
    let (code, v) = gc("trees/minimal", &[]);
    assert_eq!(code, 0);
    assert_eq!(v["removes"].as_array().unwrap().len(), 0);
    insta::assert_json_snapshot!("gc_minimal_json", v);
}

#[test]
fn aborts_name_cause_and_path_and_what_goes_once_fixed() {
    let (_, v) = gc("broken/revision-link-empty", &[]);
    let a = &v["aborts"];
    assert_eq!(a["stage"], "mark");
    assert_eq!(a["dry_run_too"], true);
    assert!(a["path"].as_str().unwrap().ends_with(
        "/_manifests/revisions/sha256/42c9bca4f7b5c363565619d14477ea7d65d3d0c97ead6ec16cbab76b6de4e4e8/link"
    ));
    assert!(v["would_delete_when_fixed"]["assumptions"][0]["assumption"].as_str().unwrap().contains("rewritten"));
    assert_eq!(v["would_delete_when_fixed"]["removes"].as_array().unwrap().len(), 0);

    let (_, v) = gc("broken/blob-misplaced", &["--delete-untagged"]);
    assert_eq!(v["aborts"]["stage"], "enumerate-blobs");
    assert!(v["aborts"]["reason"].as_str().unwrap().contains("unsupported digest algorithm"));

    let (_, v) = gc("broken/tag-link-newline", &[]);
    assert!(v["aborts"].is_null(), "only --delete-untagged reads tag links");
}

#[test]
fn gc_log_is_the_dry_run_output() {
    let root = testdata("trees/minimal");
    let run = regaudit(&["gc", root.to_str().unwrap(), "--format", "gc-log"]);
    assert_eq!(
        run.stdout,
        "app\n\
         app: marking manifest sha256:42c9bca4f7b5c363565619d14477ea7d65d3d0c97ead6ec16cbab76b6de4e4e8 \n\
         app: marking blob sha256:7836251b9b37d6a17d985d95dc27f99cb145845ae5dcf01af1fc491c115e0bf9\n\
         app: marking blob sha256:45eda0bf87a676d4b2c3c855d5566f1a4fbc3daaae0dc17523baa54afdbdf881\n\
         app: marking blob sha256:7dc163e26ccb92ac81308796b63ad8d2e64fff0fa3837e2737b1895677dc08be\n\
         \n\
         4 blobs marked, 0 blobs and 0 manifests eligible for deletion\n"
    );
}

#[test]
fn gc_log_is_refused_by_other_commands() {
    let root = testdata("trees/minimal");
    let run = regaudit(&["tags", root.to_str().unwrap(), "--format", "gc-log"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("only for `regaudit gc`"), "{}", run.stderr);
}

// ----- v3: expectations derived from the v3.1.1 source, no binary -----

#[test]
fn v3_keeps_children_of_tagged_indexes() {
    // markManifestReferences recurses into references that are revisions of
    // the repository, and unmarkReferencedManifest drops marked candidates:
    // the untagged children of app:multi stay; every blob is marked.
    let (code, v) = gc("trees/minimal-multi", &["--delete-untagged", "--target", "3"]);
    assert_eq!(code, 0, "{v}");
    assert!(v["aborts"].is_null());
    assert_eq!(v["manifests"].as_array().unwrap().len(), 0);
    assert_eq!(v["blobs"].as_array().unwrap().len(), 0);
    assert_eq!(v["marked"], 11);
}

#[test]
fn v3_aborts_on_stored_schema1() {
    // Get of schema1 fails with "unrecognized manifest schema version 1".
    let (_, v) = gc("trees/full", &["--target", "3"]);
    assert_eq!(v["aborts"]["stage"], "mark");
    assert!(v["aborts"]["message"].as_str().unwrap().ends_with("unrecognized manifest schema version 1"));
    assert!(v["aborts"]["path"].as_str().unwrap().contains("37b430afb20e"), "{}", v["aborts"]);
    // Once fixed, multi-arch children stay (no 2.8 bug) and nothing tagged goes.
    let fixed = &v["would_delete_when_fixed"];
    assert!(!fixed.is_null());
    assert_eq!(fixed["manifests"].as_array().unwrap().len(), 0);
}

#[test]
fn v3_aborts_on_a_repository_without_layers() {
    // v3's catalog walk uses the `_manifests` marker, so ghostrepo is marked;
    // enumerating its missing `_layers` returns PathNotFound, which aborts.
    let (_, v) = gc("broken/manifests-only-repo", &["--target", "3"]);
    assert_eq!(v["repositories"], serde_json::json!(["app", "ghostrepo"]));
    assert!(v["aborts"]["path"].as_str().unwrap().ends_with("repositories/ghostrepo/_layers"));
    // 2.8 never sees ghostrepo and completes.
    let (_, v) = gc("broken/manifests-only-repo", &[]);
    assert!(v["aborts"].is_null());
    assert_eq!(v["repositories"], serde_json::json!(["app"]));
}

#[test]
fn v3_removes_unmarked_layer_links() {
    // revision-missing-data: the only revision is dangling (skipped), so no
    // blob is marked; the sweep deletes config and layers, and each `_layers`
    // link whose blob exists and is unmarked is queued and removed (only the
    // `link` file, path from the link's content).
    let (_, v) = gc("broken/revision-missing-data", &["--target", "3"]);
    assert!(v["aborts"].is_null());
    assert_eq!(v["blobs"].as_array().unwrap().len(), 3);
    let links = digests(&v, "layer_links");
    assert_eq!(links.len(), 3, "{v}");
    let removes: Vec<&str> = v["removes"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    for d in &links {
        let hex = d.strip_prefix("sha256:").unwrap();
        assert!(removes.contains(&format!("docker/registry/v2/repositories/app/_layers/sha256/{hex}/link").as_str()));
    }
    assert!(!v["hazards"].as_array().unwrap().iter().any(|h| h["code"] == "layer-link-dangling"));
}

#[test]
fn v3_skips_untagged_revisions_of_a_repository_without_tags_dir() {
    // With -m, All() on a missing tags dir returns ErrRepositoryUnknown:
    // v3 prints "manifest tags path of repository app does not exist" and
    // neither marks nor queues the revision.
    let dir = scratch("trees/minimal");
    std::fs::remove_dir_all(dir.path().join(V2).join("repositories/app/_manifests/tags")).unwrap();
    let root = dir.path().to_str().unwrap();
    let run = regaudit(&["gc", root, "-m", "--target", "3", "--format", "gc-log"]);
    assert!(run.stdout.contains("manifest tags path of repository app does not exist\n"), "{}", run.stdout);
    let (_, v) = json(&["gc", root, "-m", "--target", "3"]);
    assert!(v["aborts"].is_null());
    assert_eq!(v["manifests"].as_array().unwrap().len(), 0);
    // Its manifest blob and layers are unmarked, so they are swept.
    assert_eq!(v["blobs"].as_array().unwrap().len(), 4);
    // 2.8 aborts instead.
    let (_, v) = json(&["gc", root, "-m"]);
    assert!(v["aborts"]["message"].as_str().unwrap().contains("unknown repository name=app"));
}
