//! Structural checks: the problems a tree holds for the target's rules
//! (docs/registry-rules.md §1.2, §2, §4, §5.3).

use super::BOTH;
use crate::checks::check;
use crate::layout;
use crate::model::Target;
use crate::problem::{Code, Problem};
use crate::testkit::{with_newline, TreeBuilder, OCI_INDEX, OCI_MANIFEST, SCHEMA2};

fn problems(t: &TreeBuilder, target: Target) -> Vec<Problem> {
    let b = t.build(target);
    check(&b.inv, &b.contents, target)
}

fn codes_at(problems: &[Problem], code: Code) -> Vec<&str> {
    problems.iter().filter(|p| p.code == code).map(|p| p.path.as_str()).collect()
}

/// A tree a registry push leaves has no problem.
#[test]
fn a_pushed_tree_has_no_problem() {
    let mut t = TreeBuilder::new();
    t.image("app", Some("v1"), SCHEMA2, true);
    let child = t.image("multi", None, OCI_MANIFEST, false);
    t.index("multi", "v1", OCI_INDEX, &[(child.manifest.clone(), OCI_MANIFEST)]);
    for target in BOTH {
        assert_eq!(problems(&t, target), [], "{target}");
    }
}

/// §4.1, §4.2: a tag whose manifest the registry cannot find (no revision
/// link) is `tag-dangling` at its `current/link`, both versions.
#[test]
fn a_tag_pointing_at_a_missing_revision_is_dangling() {
    let mut t = TreeBuilder::new();
    let img = t.image_blobs("app", SCHEMA2, false);
    t.tag("app", "v1", &img.manifest);
    for target in BOTH {
        let p = problems(&t, target);
        assert_eq!(codes_at(&p, Code::TagDangling), [layout::tag_current_link("app", "v1")], "{target}: {p:?}");
    }
}

/// §4.2: an index child without data is `child-missing` at the child's data path.
#[test]
fn an_index_child_without_data_is_missing() {
    let mut t = TreeBuilder::new();
    let child = t.image("app", None, OCI_MANIFEST, false);
    t.index("app", "v1", OCI_INDEX, &[(child.manifest.clone(), OCI_MANIFEST)]);
    t.remove_blob(&child.manifest);
    for target in BOTH {
        let p = problems(&t, target);
        assert_eq!(codes_at(&p, Code::ChildMissing), [layout::blob_data(&child.manifest)], "{target}: {p:?}");
    }
}

/// §2: the catalog marker is `_layers` in 2.8 and `_manifests` in v3; a
/// repository without the target's marker is missing from its catalog.
#[test]
fn the_catalog_marker_depends_on_the_target() {
    let mut t = TreeBuilder::new();
    t.image("app", Some("v1"), SCHEMA2, false);
    let img = t.image_blobs("app", SCHEMA2, false);
    t.revision("manifests-only", &img.manifest);
    t.tag("manifests-only", "v1", &img.manifest);
    t.layer_link("layers-only", &img.config);
    let dir = |name: &str| layout::repo_dir(name);
    let not_listed = |target| {
        problems(&t, target)
            .iter()
            .filter(|p| p.code == Code::RepositoryNotInCatalog)
            .map(|p| p.path.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(not_listed(Target::V2_8), [dir("manifests-only")]);
    assert_eq!(not_listed(Target::V3), [dir("layers-only")]);
}

/// §1.2: a revision link holding a trailing newline is `link-invalid`.
#[test]
fn a_revision_link_with_a_newline_is_invalid() {
    let mut t = TreeBuilder::new();
    let img = t.image_blobs("app", SCHEMA2, false);
    t.revision_raw("app", &img.manifest, &with_newline(&img.manifest));
    for target in BOTH {
        let p = problems(&t, target);
        assert_eq!(codes_at(&p, Code::LinkInvalid), [layout::revision_link("app", &img.manifest)], "{target}: {p:?}");
    }
}

/// §5.3: an upload without a readable `startedat` is never purged, which
/// is worth a warning.
#[test]
fn an_upload_without_startedat_is_never_purged() {
    let mut t = TreeBuilder::new();
    t.image("app", Some("v1"), SCHEMA2, false);
    let uuid = "0b6f4ad5-3f0e-4b8c-9d7a-1e2f3a4b5c6d";
    t.upload("app", uuid, None);
    for target in BOTH {
        let p = problems(&t, target);
        assert_eq!(codes_at(&p, Code::UploadWithoutStartedAt), [layout::upload_dir("app", uuid)], "{target}: {p:?}");
    }
}
