//! Resolution of a tag to its tree and whether a pull of it is served:
//! docs/registry-rules.md §4 applied to every node.

use super::BOTH;
use crate::model::serve::Server;
use crate::model::Target;
use crate::resolve::{ResolvedTag, Resolver};
use crate::testkit::{TreeBuilder, OCI_INDEX, OCI_MANIFEST, SCHEMA2};

fn resolve(t: &TreeBuilder, target: Target, repo: &str, tag: &str) -> ResolvedTag {
    let b = t.build(target);
    let server = Server::new(&b.inv, &b.contents, target);
    Resolver::new(&server).tag(b.repo(repo), tag)
}

/// §4.1, §4.2: a tag whose manifest has data but no revision link: 2.8
/// still finds it through a `_layers` link, v3 does not; with neither link
/// both answer 404.
#[test]
fn a_tag_pointing_at_a_missing_revision() {
    let mut t = TreeBuilder::new();
    let unlinked = t.image_blobs("app", SCHEMA2, false);
    t.tag("app", "nowhere", &unlinked.manifest);
    let layers_only = t.image_blobs("app", SCHEMA2, false);
    t.layer_link("app", &layers_only.manifest);
    t.tag("app", "layers", &layers_only.manifest);
    for target in BOTH {
        let nowhere = resolve(&t, target, "app", "nowhere");
        assert!(!nowhere.served && !nowhere.served_unknown, "{target}: {nowhere:?}");
        assert_eq!(nowhere.digest.as_ref(), Some(&unlinked.manifest));
        let layers = resolve(&t, target, "app", "layers");
        assert_eq!(layers.served, target == Target::V2_8, "{target}: {:?}", layers.not_served);
    }
}

/// §4.2: a pull of an index needs every child; one whose data is gone
/// makes the tag not served, and the reason names it.
#[test]
fn an_index_with_a_missing_child_is_not_served() {
    let mut t = TreeBuilder::new();
    let amd64 = t.image("app", None, OCI_MANIFEST, false);
    let arm64 = t.image("app", None, OCI_MANIFEST, false);
    let children = [(amd64.manifest.clone(), OCI_MANIFEST), (arm64.manifest.clone(), OCI_MANIFEST)];
    t.index("app", "whole", OCI_INDEX, &children);
    for target in BOTH {
        let whole = resolve(&t, target, "app", "whole");
        assert!(whole.served, "{target}: {:?}", whole.not_served);
        assert_eq!(whole.platforms, ["linux/amd64", "linux/arm64"], "{target}");
    }
    t.remove_blob(&arm64.manifest);
    for target in BOTH {
        let broken = resolve(&t, target, "app", "whole");
        assert!(!broken.served && !broken.served_unknown, "{target}");
        let arm = arm64.manifest.to_string();
        assert!(broken.not_served.iter().any(|r| r.contains(&arm)), "{target}: {:?}", broken.not_served);
    }
}

/// §4.3: a schema1 tag is served by 2.8 (platform from its history) and
/// not by v3.
#[test]
fn a_schema1_tag_is_served_by_2_8_only() {
    let mut t = TreeBuilder::new();
    t.schema1("app", "old");
    for target in BOTH {
        let old = resolve(&t, target, "app", "old");
        assert_eq!(old.served, target == Target::V2_8, "{target}: {:?}", old.not_served);
        if target == Target::V2_8 {
            assert_eq!(old.platforms, ["linux/amd64"]);
        }
    }
}
