//! What a GET answers: docs/registry-rules.md §1.3, §4, §7 and §8.

use super::BOTH;
use crate::inventory::FaultOp;
use crate::layout;
use crate::model::serve::{Fetch, LinkedBy, Server};
use crate::model::Target;
use crate::testkit::{with_newline, TreeBuilder, SCHEMA2};

/// §4.3: for a client accepting the modern types, 2.8 serves a stored
/// schema1 manifest; v3 answers 500.
#[test]
fn a_schema1_manifest_is_served_by_2_8_and_a_500_in_3() {
    let mut t = TreeBuilder::new();
    let old = t.schema1("app", "old");
    for target in BOTH {
        let b = t.build(target);
        let server = Server::new(&b.inv, &b.contents, target);
        let (fetch, _) = server.manifest(b.repo("app"), &old.manifest);
        let expected = if target == Target::V2_8 { 200 } else { 500 };
        assert_eq!(fetch.http_status(), expected, "{target}: {fetch:?}");
    }
}

/// §4.2: a manifest linked only in `_layers` (as 2.1 wrote them) is found by
/// 2.8 through its fallback; v3 needs the revision link.
#[test]
fn a_manifest_linked_only_in_layers_is_found_by_2_8_only() {
    let mut t = TreeBuilder::new();
    let img = t.image_blobs("app", SCHEMA2, false);
    t.layer_link("app", &img.manifest);
    for target in BOTH {
        let b = t.build(target);
        let server = Server::new(&b.inv, &b.contents, target);
        let located = server.locate_manifest(b.repo("app"), &img.manifest);
        match target {
            Target::V2_8 => assert_eq!(located, Ok((LinkedBy::Layers, img.manifest.clone()))),
            Target::V3 => assert_eq!(located.map_err(|f| f.http_status()), Err(404)),
        }
    }
}

/// §4.2: a revision link whose manifest data is gone is a 404, both versions.
#[test]
fn a_revision_without_data_is_a_404() {
    let mut t = TreeBuilder::new();
    let img = t.image("app", Some("v1"), SCHEMA2, false);
    t.remove_blob(&img.manifest);
    for target in BOTH {
        let b = t.build(target);
        let server = Server::new(&b.inv, &b.contents, target);
        let (fetch, manifest) = server.manifest(b.repo("app"), &img.manifest);
        assert_eq!((fetch.http_status(), manifest.is_none()), (404, true), "{target}: {fetch:?}");
        // The tag still resolves to the digest: the 404 comes from the manifest.
        assert_eq!(server.tag(b.repo("app"), "v1"), Ok(img.manifest.clone()));
    }
}

/// §4.1 and §1.2: a tag without `current/link` is a 404; a link holding a
/// trailing newline is a 500, both versions.
#[test]
fn a_tag_without_current_link_is_a_404_and_an_invalid_one_a_500() {
    let mut t = TreeBuilder::new();
    let img = t.image("app", Some("v1"), SCHEMA2, false);
    t.empty_tag("app", "empty");
    t.tag_current_raw("app", "newline", &with_newline(&img.manifest));
    for target in BOTH {
        let b = t.build(target);
        let server = Server::new(&b.inv, &b.contents, target);
        let status = |tag: &str| server.tag(b.repo("app"), tag).map_err(|f| f.http_status());
        assert_eq!(status("v1"), Ok(img.manifest.clone()), "{target}");
        assert_eq!(status("empty"), Err(404), "{target}");
        assert_eq!(status("newline"), Err(500), "{target}");
        assert_eq!(status("absent"), Err(404), "{target}");
    }
}

/// §4.4: a blob needs its `_layers` link in the repository and the global
/// data; a manifest asked for as a blob is a 404 (not linked in `_layers`).
#[test]
fn a_blob_needs_its_layers_link_and_its_data() {
    let mut t = TreeBuilder::new();
    let img = t.image("app", Some("v1"), SCHEMA2, false);
    let gone = t.layer("app");
    t.remove_blob(&gone);
    for target in BOTH {
        let b = t.build(target);
        let server = Server::new(&b.inv, &b.contents, target);
        let app = b.repo("app");
        assert_eq!(server.blob(app, &img.layers[0]), Fetch::Ok, "{target}");
        assert_eq!(server.blob(app, &img.config), Fetch::Ok, "{target}");
        assert_eq!(server.blob(app, &img.manifest).http_status(), 404, "{target}");
        assert_eq!(server.blob(app, &gone).http_status(), 404, "{target}");
    }
}

/// §7: a link the registry cannot read (permission denied) is a 500 where
/// it meets it, and so is manifest data below a directory it cannot search.
#[test]
fn an_unreadable_link_or_data_directory_is_a_500() {
    let mut t = TreeBuilder::new();
    t.image("app", Some("v1"), SCHEMA2, false);
    let other = t.image("app", Some("v2"), SCHEMA2, false);
    t.tag_current_unreadable("app", "v1", "permission denied");
    // The shard directory of v2's manifest cannot be listed nor searched:
    // the reader never saw its data.
    t.remove_blob(&other.manifest);
    let dir = layout::blob_dir(&other.manifest);
    t.fault(dir.rsplit_once('/').expect("blobs/<alg>/<hh>/<hex>").0, FaultOp::List, "permission denied");
    for target in BOTH {
        let b = t.build(target);
        let server = Server::new(&b.inv, &b.contents, target);
        let app = b.repo("app");
        assert_eq!(server.tag(app, "v1").map_err(|f| f.http_status()), Err(500), "{target}");
        let (fetch, _) = server.manifest(app, &other.manifest);
        assert_eq!(fetch.http_status(), 500, "{target}: {fetch:?}");
    }
}

/// §7, §8: a symbolic link on the way to what a GET reads, or a directory
/// listed in vain above it, leaves the answer unknown, never a guess.
#[test]
fn a_symlinked_or_unlisted_revision_link_is_not_modelled() {
    let mut t = TreeBuilder::new();
    let img = t.image("app", Some("v1"), SCHEMA2, false);
    let hidden = t.image_blobs("app", SCHEMA2, false);
    t.symlink(&layout::revision_link("app", &hidden.manifest));
    // A revisions directory that can be searched but not listed: what it
    // holds was not read, though the registry reaches it.
    t.image("unlisted", Some("v1"), SCHEMA2, false);
    let unlisted = t.image_blobs("unlisted", SCHEMA2, false);
    t.traversable_fault(&format!("{}/_manifests/revisions/sha256", layout::repo_dir("unlisted")));
    for target in BOTH {
        let b = t.build(target);
        let server = Server::new(&b.inv, &b.contents, target);
        let (fetch, _) = server.manifest(b.repo("app"), &hidden.manifest);
        assert!(matches!(fetch, Fetch::Unmodelled(_)), "{target}: {fetch:?}");
        assert_eq!(server.manifest(b.repo("app"), &img.manifest).0, Fetch::Ok);
        let (fetch, _) = server.manifest(b.repo("unlisted"), &unlisted.manifest);
        assert!(matches!(fetch, Fetch::Unmodelled(_)), "{target}: {fetch:?}");
    }
}

/// §1.3: a name the API refuses (uppercase) is never served; a routable name
/// whose storage path the driver refuses (`:`) is a 500 on every GET.
#[test]
fn repository_names_the_api_or_the_driver_refuse() {
    let mut t = TreeBuilder::new();
    t.image("Upper", Some("v1"), SCHEMA2, false);
    t.image("host:5000/app", Some("v1"), SCHEMA2, false);
    for target in BOTH {
        let b = t.build(target);
        let server = Server::new(&b.inv, &b.contents, target);
        let status = |repo: &str| server.tag(b.repo(repo), "v1").map_err(|f| f.http_status());
        assert_eq!(status("Upper"), Err(404), "{target}");
        assert_eq!(status("host:5000/app"), Err(500), "{target}");
    }
}
