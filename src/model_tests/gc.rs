//! `registry garbage-collect`: docs/registry-rules.md §2 (catalog walk), §6
//! (mark, `_layers` check, sweep, aborts).

use std::collections::BTreeSet;

use serde_json::json;

use super::BOTH;
use crate::digest::Digest;
use crate::model::gc::{predict, GcOptions, GcOutcome, HazardCode, Stage};
use crate::model::Target;
use crate::testkit::{with_newline, Built, TreeBuilder, OCI_INDEX, OCI_MANIFEST, SCHEMA2};

fn gc(b: &Built, target: Target, delete_untagged: bool) -> GcOutcome {
    predict(&b.inv, &b.contents, &b.walk, GcOptions { target, delete_untagged, log: true, driver: "filesystem" }).0
}

fn deleted_blobs(out: &GcOutcome) -> BTreeSet<String> {
    out.blobs.iter().map(|b| b.digest.clone()).collect()
}

fn set<'a>(digests: impl IntoIterator<Item = &'a Digest>) -> BTreeSet<String> {
    digests.into_iter().map(Digest::to_string).collect()
}

/// §6.1, §6.3: without `--delete-untagged` every revision is marked with its
/// references, tagged or not; only blobs nothing marks are swept.
#[test]
fn default_mode_keeps_untagged_images_and_sweeps_unreferenced_blobs() {
    let mut t = TreeBuilder::new();
    t.image("app", Some("v1"), SCHEMA2, false);
    t.image("app", None, OCI_MANIFEST, false);
    let orphan = t.blob(b"referenced by nothing");
    for target in BOTH {
        let out = gc(&t.build(target), target, false);
        assert_eq!(out.abort, None, "{target}");
        assert_eq!(deleted_blobs(&out), set([&orphan]), "{target}");
        assert!(out.manifests.is_empty(), "{target}: {:?}", out.manifests);
        assert!(out.log.contains(&format!("blob eligible for deletion: {orphan}")), "{target}: {:?}", out.log);
    }
}

/// §6.1, §6.3: with `--delete-untagged` an untagged revision is queued (its
/// revision directory goes) and its blobs, marked by nothing else, are swept.
#[test]
fn delete_untagged_sweeps_an_untagged_image() {
    let mut t = TreeBuilder::new();
    let kept = t.image("app", Some("v1"), SCHEMA2, false);
    let untagged = t.image("app", None, SCHEMA2, false);
    for target in BOTH {
        let out = gc(&t.build(target), target, true);
        assert_eq!(out.abort, None, "{target}");
        let manifests: Vec<(&str, &Digest)> =
            out.manifests.iter().map(|m| (m.repository.as_str(), &m.digest)).collect();
        assert_eq!(manifests, [("app", &untagged.manifest)], "{target}");
        let expected = set([&untagged.manifest, &untagged.config, &untagged.layers[0]]);
        assert_eq!(deleted_blobs(&out), expected, "{target}");
        for d in [&kept.manifest, &kept.config, &kept.layers[0]] {
            assert!(!deleted_blobs(&out).contains(&d.to_string()), "{target}: {d} of the tagged image");
        }
    }
}

/// §6.1: the multi-arch bug. With `--delete-untagged`, 2.8 deletes the
/// (untagged) children of a tagged index and their blobs; v3 follows the
/// index to its children linked in the repository and keeps them.
#[test]
fn delete_untagged_loses_a_tagged_index_children_in_2_8_only() {
    let mut t = TreeBuilder::new();
    let amd64 = t.image("app", None, OCI_MANIFEST, false);
    let arm64 = t.image("app", None, OCI_MANIFEST, false);
    t.index("app", "v1", OCI_INDEX, &[(amd64.manifest.clone(), OCI_MANIFEST), (arm64.manifest.clone(), OCI_MANIFEST)]);
    for target in BOTH {
        let out = gc(&t.build(target), target, true);
        assert_eq!(out.abort, None, "{target}");
        let manifests: BTreeSet<String> = out.manifests.iter().map(|m| m.digest.to_string()).collect();
        match target {
            Target::V2_8 => {
                assert_eq!(manifests, set([&amd64.manifest, &arm64.manifest]));
                let children_blobs = [&amd64.config, &amd64.layers[0], &arm64.config, &arm64.layers[0]];
                assert!(set(children_blobs).is_subset(&deleted_blobs(&out)), "{:?}", out.blobs);
                assert!(out.hazards.iter().any(|h| h.code == HazardCode::MultiArchChildDeleted), "{:?}", out.hazards);
            }
            Target::V3 => {
                assert!(manifests.is_empty(), "{manifests:?}");
                assert!(out.blobs.is_empty(), "{:?}", out.blobs);
            }
        }
    }
}

/// §6.1 (facts §4): 2.8 marks a schema1 manifest's `fsLayers`; v3 cannot
/// load schema1, so every stored schema1 revision aborts its GC while
/// marking, dry run included, before anything is deleted.
#[test]
fn a_schema1_revision_aborts_gc_in_3_only() {
    let mut t = TreeBuilder::new();
    let old = t.schema1("app", "old");
    let orphan = t.blob(b"referenced by nothing");
    for target in BOTH {
        let out = gc(&t.build(target), target, false);
        match target {
            Target::V2_8 => {
                assert_eq!(out.abort, None);
                assert_eq!(deleted_blobs(&out), set([&orphan]), "the schema1 layer {} is marked", old.layers[0]);
            }
            Target::V3 => {
                let abort = out.dry_run_abort.as_ref().expect("the dry run aborts");
                assert_eq!(abort.stage, Stage::Mark, "{abort:?}");
                assert_eq!(out.abort.as_ref().map(|a| a.stage), Some(Stage::Mark));
                assert!(out.blobs.is_empty() && out.manifests.is_empty(), "nothing is deleted: {out:?}");
            }
        }
    }
}

/// §1.2, §6.1: a revision link whose content is not a digest (a trailing
/// newline) aborts marking in both versions; nothing is deleted.
#[test]
fn an_invalid_revision_link_aborts_marking() {
    let mut t = TreeBuilder::new();
    t.image("app", Some("v1"), SCHEMA2, false);
    let broken = t.image_blobs("app", SCHEMA2, false);
    t.revision_raw("app", &broken.manifest, &with_newline(&broken.manifest));
    t.blob(b"referenced by nothing");
    for target in BOTH {
        let out = gc(&t.build(target), target, false);
        let abort = out.dry_run_abort.as_ref().unwrap_or_else(|| panic!("{target}: the dry run aborts"));
        assert_eq!(abort.stage, Stage::Mark, "{target}");
        assert!(abort.path.ends_with(&format!("{}/link", broken.manifest.hex())), "{target}: {}", abort.path);
        assert!(out.blobs.is_empty() && out.manifests.is_empty(), "{target}: nothing is deleted");
    }
}

/// §6.2, §6.3: v3 removes a `_layers` link whose blob nothing marks (after
/// sweeping the blob); 2.8 never removes `_layers` links and leaves them
/// dangling.
#[test]
fn an_unmarked_layers_link_is_removed_by_3_and_left_dangling_by_2_8() {
    let mut t = TreeBuilder::new();
    t.image("app", Some("v1"), SCHEMA2, false);
    let unused = t.layer("app");
    for target in BOTH {
        let out = gc(&t.build(target), target, false);
        assert_eq!(out.abort, None, "{target}");
        assert_eq!(deleted_blobs(&out), set([&unused]), "{target}");
        let removed: Vec<(&str, &Digest)> =
            out.layer_links.iter().map(|l| (l.repository.as_str(), &l.digest)).collect();
        match target {
            Target::V2_8 => {
                assert!(removed.is_empty(), "{removed:?}");
                assert!(out.hazards.iter().any(|h| h.code == HazardCode::LayerLinkDangling), "{:?}", out.hazards);
            }
            Target::V3 => assert_eq!(removed, [("app", &unused)]),
        }
    }
}

/// §2, §6.2: 2.8's catalog takes a directory with `_layers` as a
/// repository, v3 one with `_manifests`. A repository with revisions and no
/// `_layers` is never walked by 2.8 (nothing in it is marked, its blobs are
/// swept); v3 walks it, marks it, then aborts on the missing `_layers`.
#[test]
fn a_repository_without_layers_is_skipped_by_2_8_and_aborts_3() {
    let mut t = TreeBuilder::new();
    let layer = t.blob(b"a layer");
    let config =
        t.json_blob(&json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}));
    let manifest = t.json_blob(&json!({
        "schemaVersion": 2,
        "mediaType": SCHEMA2,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, "digest": config.to_string()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 7, "digest": layer.to_string()}],
    }));
    t.revision("manifests-only", &manifest);
    t.tag("manifests-only", "v1", &manifest);
    for target in BOTH {
        let out = gc(&t.build(target), target, false);
        match target {
            Target::V2_8 => {
                assert_eq!(out.abort, None);
                assert!(out.repositories.is_empty(), "{:?}", out.repositories);
                assert_eq!(deleted_blobs(&out), set([&layer, &config, &manifest]));
            }
            Target::V3 => {
                assert_eq!(out.repositories, ["manifests-only"]);
                let abort = out.dry_run_abort.as_ref().expect("the dry run aborts");
                assert_eq!(
                    (abort.stage, abort.path.as_str()),
                    (Stage::Mark, "docker/registry/v2/repositories/manifests-only/_layers")
                );
                assert!(out.blobs.is_empty(), "{:?}", out.blobs);
            }
        }
    }
}
