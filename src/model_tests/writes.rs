//! Reads that write: docs/registry-rules.md §5 (schema1 down-conversion,
//! upload status, upload purging).

use chrono::{DateTime, Duration, Utc};

use super::BOTH;
use crate::layout;
use crate::model::writes::{predict, Action, Kind, Operation, Settings, EMPTY_TAR};
use crate::model::Target;
use crate::testkit::{sha256, TreeBuilder, DOCKER_LIST, OCI_MANIFEST, SCHEMA2};

/// The gzipped empty tar the 2.8 conversion needs (32 bytes).
const EMPTY_TAR_BYTES: [u8; 32] = [
    31, 139, 8, 0, 0, 9, 110, 136, 0, 255, 98, 24, 5, 163, 96, 20, 140, 88, 0, 8, 0, 0, 255, 255, 46, 175, 181, 239, 0,
    4, 0, 0,
];

fn settings() -> Settings {
    let now: DateTime<Utc> = "2026-12-03T12:00:00Z".parse().expect("time");
    Settings { now, purge_age: Duration::hours(168) }
}

fn operations(t: &TreeBuilder, target: Target, kind: Kind) -> Vec<Operation> {
    let b = t.build(target);
    predict(&b.inv, &b.contents, target, &settings()).operations.into_iter().filter(|o| o.kind == kind).collect()
}

fn get_by_tag(t: &TreeBuilder, target: Target, tag: &str) -> Operation {
    let ops = operations(t, target, Kind::ManifestGetSchema1);
    ops.into_iter().find(|o| o.reference == tag).unwrap_or_else(|| panic!("no GET of {tag}"))
}

fn writes(op: &Operation) -> Vec<(String, Action)> {
    op.writes.iter().map(|w| (w.path.clone(), w.action)).collect()
}

#[test]
fn the_empty_tar_constant_is_what_the_registry_writes() {
    assert_eq!(sha256(&EMPTY_TAR_BYTES).to_string(), EMPTY_TAR);
}

/// §5.1: a GET by tag without schema2 in Accept converts a schema2 image to
/// schema1 in 2.8; a history entry with `empty_layer` needs the empty tar,
/// which it stores and links when the repository lacks it (a read-only
/// mount makes that a 400). v3 has no conversion and writes nothing.
#[test]
fn a_schema1_get_of_a_schema2_image_writes_the_empty_tar_in_2_8_only() {
    let mut t = TreeBuilder::new();
    t.image("app", Some("v1"), SCHEMA2, true);
    let empty = EMPTY_TAR.parse().expect("digest");
    for target in BOTH {
        let op = get_by_tag(&t, target, "v1");
        match target {
            Target::V2_8 => {
                let expected =
                    [(layout::blob_data(&empty), Action::Create), (layout::layer_link("app", &empty), Action::Create)];
                assert_eq!(writes(&op), expected);
                assert_eq!((op.status, op.read_only_status), (Some(200), Some(400)), "{op:?}");
            }
            Target::V3 => {
                assert!(writes(&op).is_empty(), "{op:?}");
                assert_eq!(op.status, Some(200), "{op:?}");
            }
        }
    }
}

/// §5.1: nothing is written when the repository already links the empty
/// tar and its data exists; with the data and no link, only the link.
#[test]
fn the_conversion_writes_only_what_is_missing() {
    let mut linked = TreeBuilder::new();
    linked.image("app", Some("v1"), SCHEMA2, true);
    let empty = linked.blob(&EMPTY_TAR_BYTES);
    let mut stored = TreeBuilder::new();
    stored.image("app", Some("v1"), SCHEMA2, true);
    stored.blob(&EMPTY_TAR_BYTES);
    linked.layer_link("app", &empty);
    let op = get_by_tag(&linked, Target::V2_8, "v1");
    assert!(writes(&op).is_empty(), "{op:?}");
    assert_eq!((op.status, op.read_only_status), (Some(200), Some(200)));
    let op = get_by_tag(&stored, Target::V2_8, "v1");
    assert_eq!(writes(&op), [(layout::layer_link("app", &empty), Action::Create)]);
}

/// §5.1 (facts §3.1): no empty layer in the history, no write; an OCI
/// manifest the client did not accept is a 404 without conversion.
#[test]
fn no_empty_layer_or_an_oci_manifest_writes_nothing() {
    let mut t = TreeBuilder::new();
    t.image("app", Some("plain"), SCHEMA2, false);
    t.image("app", Some("oci"), OCI_MANIFEST, true);
    let plain = get_by_tag(&t, Target::V2_8, "plain");
    assert!(writes(&plain).is_empty() && plain.status == Some(200), "{plain:?}");
    let oci = get_by_tag(&t, Target::V2_8, "oci");
    assert!(writes(&oci).is_empty() && oci.status == Some(404), "{oci:?}");
}

/// §5.3: the purger deletes `_uploads/<uuid>` whose `startedat` is older
/// than the age (168h by default); a recent one, or one without a readable
/// `startedat`, stays.
#[test]
fn uploads_are_purged_by_the_age_in_startedat() {
    let mut t = TreeBuilder::new();
    t.image("app", Some("v1"), SCHEMA2, false);
    let (old, recent, undated) = (
        "0b6f4ad5-3f0e-4b8c-9d7a-1e2f3a4b5c6d",
        "1b6f4ad5-3f0e-4b8c-9d7a-1e2f3a4b5c6d",
        "2b6f4ad5-3f0e-4b8c-9d7a-1e2f3a4b5c6d",
    );
    t.upload("app", old, Some("2026-11-26T11:59:59Z"));
    t.upload("app", recent, Some("2026-11-26T12:00:01Z"));
    t.upload("app", undated, None);
    for target in BOTH {
        let ops = operations(&t, target, Kind::UploadPurge);
        let purged: Vec<&str> = ops.iter().filter(|o| o.writes_anything()).map(|o| o.reference.as_str()).collect();
        assert_eq!(purged, [old], "{target}");
        let op = ops.iter().find(|o| o.reference == old).expect("purge of the old upload");
        assert_eq!(writes(op), [(layout::upload_dir("app", old), Action::Delete)], "{target}");
    }
}

/// §5.3: 2.8's purger takes only the hyphenated 36-character UUID; v3's
/// google/uuid also the 32 bare hex digits.
#[test]
fn a_bare_hex_upload_name_is_purged_by_3_only() {
    let mut t = TreeBuilder::new();
    t.image("app", Some("v1"), SCHEMA2, false);
    let bare = "0b6f4ad53f0e4b8c9d7a1e2f3a4b5c6d";
    t.upload("app", bare, Some("2026-01-01T00:00:00Z"));
    for target in BOTH {
        let ops = operations(&t, target, Kind::UploadPurge);
        let purged = ops.iter().any(|o| o.reference == bare && o.writes_anything());
        assert_eq!(purged, target == Target::V3, "{target}: {ops:?}");
    }
}

/// §5.2: a status GET/HEAD of an upload rewrites its hash state, both versions.
#[test]
fn an_upload_status_request_rewrites_the_hash_state() {
    let mut t = TreeBuilder::new();
    t.image("app", Some("v1"), SCHEMA2, false);
    let uuid = "0b6f4ad5-3f0e-4b8c-9d7a-1e2f3a4b5c6d";
    t.upload("app", uuid, Some("2026-12-03T11:00:00Z"));
    for target in BOTH {
        let ops = operations(&t, target, Kind::UploadStatus);
        let hashstate = format!("{}/hashstates/sha256/0", layout::upload_dir("app", uuid));
        assert_eq!(ops.len(), 1, "{target}");
        assert!(writes(&ops[0]).contains(&(hashstate, Action::Create)), "{target}: {:?}", ops[0]);
    }
}

/// §5.1 (facts §3.1, "Serving in v3"): a Docker list asked for by tag
/// without the list type: 2.8 converts its first linux/amd64 child (schema2)
/// and writes the empty tar; v3 refuses that child with 400, writing nothing.
#[test]
fn a_docker_list_converts_its_amd64_child_in_2_8_and_is_a_400_in_3() {
    let mut t = TreeBuilder::new();
    let amd64 = t.image("app", None, SCHEMA2, true);
    let arm64 = t.image("app", None, SCHEMA2, true);
    t.index("app", "v1", DOCKER_LIST, &[(amd64.manifest.clone(), SCHEMA2), (arm64.manifest.clone(), SCHEMA2)]);
    let empty = EMPTY_TAR.parse().expect("digest");
    for target in BOTH {
        let op = get_by_tag(&t, target, "v1");
        match target {
            Target::V2_8 => {
                let expected =
                    [(layout::blob_data(&empty), Action::Create), (layout::layer_link("app", &empty), Action::Create)];
                assert_eq!((writes(&op), op.status), (expected.to_vec(), Some(200)), "{op:?}");
            }
            Target::V3 => assert_eq!((writes(&op), op.status), (Vec::new(), Some(400)), "{op:?}"),
        }
    }
}
