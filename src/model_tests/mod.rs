//! Unit tests of the pure models, per target, on trees built in memory by
//! [`crate::testkit`]. Each test holds one rule of docs/registry-rules.md
//! (cited by section) that the conformance tests checked against the real
//! registries (Distribution 2.8.2 and v3.1.1); a test failing here means a
//! model left that rule.

mod checks;
mod gc;
mod resolve;
mod serve;
mod writes;

use crate::model::Target;

const BOTH: [Target; 2] = [Target::V2_8, Target::V3];

/// The builder is only as good as its likeness to the reader: the same
/// tree, written to disk and read by the tree walker, gives the same
/// inventory and registry-walk facts.
#[test]
fn the_testkit_builds_what_the_reader_reads() {
    use crate::storage::{Leaves, StorageRoot};
    use crate::testkit::{with_newline, TreeBuilder, OCI_INDEX, OCI_MANIFEST, SCHEMA2};

    let mut t = TreeBuilder::new();
    t.image("app", Some("v1"), SCHEMA2, true);
    t.image("app", None, OCI_MANIFEST, false);
    t.schema1("org/old", "old");
    let child = t.image("org/multi", None, OCI_MANIFEST, false);
    t.index("org/multi", "v1", OCI_INDEX, &[(child.manifest.clone(), OCI_MANIFEST)]);
    let broken = t.image_blobs("app", SCHEMA2, false);
    t.revision_raw("app", &broken.manifest, &with_newline(&broken.manifest));
    t.tag_current_raw("app", "newline", &with_newline(&broken.manifest));
    t.empty_tag("app", "empty");
    t.layer_link("app", &broken.manifest);
    t.remove_blob(&broken.layers[0]);
    t.upload("app", "0b6f4ad5-3f0e-4b8c-9d7a-1e2f3a4b5c6d", Some("2026-01-01T00:00:00Z"));
    t.upload("app", "1b6f4ad5-3f0e-4b8c-9d7a-1e2f3a4b5c6d", None);
    let dir = tempfile::tempdir().expect("tempdir");
    t.write_to(dir.path()).expect("write the tree");
    let root = StorageRoot::locate(dir.path()).expect("a storage root");
    for target in BOTH {
        let built = t.build(target);
        for leaves in [Leaves::List, Leaves::OpenLinks] {
            let read = root.scan(leaves);
            assert_eq!(read.repositories.len(), 3);
            assert_eq!(format!("{:#?}", read.repositories), format!("{:#?}", built.inv.repositories));
            assert_eq!(format!("{:?}", read.blobs), format!("{:?}", built.inv.blobs));
            assert_eq!((read.faults.len(), read.symlinks.len()), (0, 0));
            let walk = root.registry_walks(&read);
            assert_eq!(format!("{:?}", walk.catalog_dirs), format!("{:?}", built.walk.catalog_dirs));
            assert_eq!(walk.tags_dirs, built.walk.tags_dirs);
            assert_eq!((walk.repositories_dir, walk.blobs_dir), (true, true));
        }
    }
}
