//! `regaudit gc` against the real `garbage-collect` of Debian's 2.8.2 and of
//! the provided v3.1.1 (`--target 3`): on a scratch copy of every testdata
//! tree (and a few variants made here), in both modes, the prediction must
//! match the real dry run (its stdout lines, its exit status) and the real
//! run (the exact set of files that disappear, its exit status, its error
//! message).

mod common;
use common::registry;

use std::path::Path;

use common::*;
use registry::{Changes, Real};

const TREES: &[&str] = &["trees/full", "trees/minimal", "trees/minimal-multi", "trees/proxy"];

fn broken_variants() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(testdata("broken"))
        .unwrap()
        .map(|e| format!("broken/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    v.sort();
    v
}

/// A variant made on the fly from a copy of a testdata tree.
type Tweak = fn(&Path);

fn v2(root: &Path) -> std::path::PathBuf {
    root.join(V2)
}

/// `broken/symlink` has `repositories/escape -> /tmp`: the real GC would
/// walk (and with --delete-untagged could delete) outside the copy. Point it
/// at an empty directory inside the copy instead; the blob `data` symlink to
/// /etc/hostname stays (GC only stats it).
fn contain_symlink(root: &Path) {
    let escape = v2(root).join("repositories/escape");
    if escape.symlink_metadata().is_ok() {
        std::fs::remove_file(&escape).unwrap();
        let inside = root.join("elsewhere");
        std::fs::create_dir_all(&inside).unwrap();
        std::os::unix::fs::symlink(&inside, &escape).unwrap();
    }
}

/// 2.8's walk stops listing a directory at an `_`-prefixed regular file:
/// `app` sorts after `_junk`, so it is never marked and its blobs go.
fn underscore_file(root: &Path) {
    std::fs::write(v2(root).join("repositories/_junk"), b"x").unwrap();
}

/// No `_manifests/tags` at all while a revision is live: 2.8 aborts under
/// --delete-untagged.
fn no_tags_dir(root: &Path) {
    std::fs::remove_dir_all(v2(root).join("repositories/app/_manifests/tags")).unwrap();
}

/// An empty `_manifests/tags` (all tags deleted through the API).
fn empty_tags_dir(root: &Path) {
    let tags = v2(root).join("repositories/app/_manifests/tags");
    std::fs::remove_dir_all(&tags).unwrap();
    std::fs::create_dir_all(&tags).unwrap();
}

/// A `tags/<name>` that is a regular file.
fn tag_is_file(root: &Path) {
    std::fs::write(v2(root).join("repositories/app/_manifests/tags/stray"), b"x").unwrap();
}

/// Missing `blobs/`: the blob enumeration aborts.
fn no_blobs(root: &Path) {
    std::fs::remove_dir_all(v2(root).join("blobs")).unwrap();
}

/// Missing `repositories/`: the walk aborts.
fn no_repositories(root: &Path) {
    std::fs::remove_dir_all(v2(root).join("repositories")).unwrap();
}

/// Untagged manifests plus a misplaced blob: under --delete-untagged the
/// real run deletes the manifests, then aborts enumerating blobs.
fn misplaced_after_untag(root: &Path) {
    let src = testdata("broken/blob-misplaced");
    copy_tree(&src.join(V2).join("blobs/sha256/3d"), &v2(root).join("blobs/sha256/3d"));
}

/// The real message, with the copy's absolute path taken out of both. Decoding errors are Go's own words:
/// for those only the part naming the manifest must match.
fn same_message(ours: &str, real: &str, root: &Path) -> bool {
    // Where Go prints an OS path (a failed read), both name the copy's root.
    let real = real.replace(root.to_str().unwrap(), "");
    let ours = ours.replace(root.to_str().unwrap(), "");
    let ours = ours.as_str();
    let key = "failed to retrieve manifest for digest ";
    match ours.find(key) {
        Some(i) => {
            let upto = i + key.len() + 71;
            real.get(..upto) == ours.get(..upto)
        }
        None => ours == real,
    }
}

/// The one revision of `trees/minimal` (tagged `v1`).
const MINIMAL_REVISION: &str = "42c9bca4f7b5c363565619d14477ea7d65d3d0c97ead6ec16cbab76b6de4e4e8";
/// One of its `_layers` links.
const MINIMAL_LAYER: &str = "7dc163e26ccb92ac81308796b63ad8d2e64fff0fa3837e2737b1895677dc08be";

fn minimal_app(root: &Path) -> std::path::PathBuf {
    v2(root).join("repositories/app")
}

/// Copies `link` (relative to the repository `app`) to `to`.
fn copy_link(root: &Path, link: &str, to: &str) {
    let app = minimal_app(root);
    std::fs::create_dir_all(app.join(to).parent().unwrap()).unwrap();
    std::fs::copy(app.join(link), app.join(to)).unwrap();
}

/// Removes the tag `v1`'s current link: the revision becomes untagged.
fn untag(root: &Path) {
    std::fs::remove_file(minimal_app(root).join("_manifests/tags/v1/current/link")).unwrap();
}

/// A copy of a revision link at `<hex>.bak/link`: GC enumerates it too, so
/// the manifest is marked twice.
fn revision_stray_copy(root: &Path) {
    let rev = format!("_manifests/revisions/sha256/{MINIMAL_REVISION}");
    copy_link(root, &format!("{rev}/link"), &format!("{rev}.bak/link"));
}

/// The same, untagged: under --delete-untagged the manifest is queued
/// twice, and the real run fails deleting it the second time.
fn revision_stray_untagged(root: &Path) {
    revision_stray_copy(root);
    untag(root);
}

/// A `link` directly under the algorithm directory, and one in a
/// directory below a revision: both enumerated.
fn revision_link_elsewhere(root: &Path) {
    let rev = format!("_manifests/revisions/sha256/{MINIMAL_REVISION}");
    copy_link(root, &format!("{rev}/link"), "_manifests/revisions/sha256/link");
    copy_link(root, &format!("{rev}/link"), &format!("{rev}/old/link"));
}

/// Moves the link `dir/link` to `dir/link/link`.
fn link_into_link_dir(dir: &Path, root: &Path) {
    std::fs::rename(dir.join("link"), root.join("link.tmp")).unwrap();
    std::fs::create_dir(dir.join("link")).unwrap();
    std::fs::rename(root.join("link.tmp"), dir.join("link/link")).unwrap();
}

/// A revision `link` that is a directory holding the link: the walk
/// enters it and reads the inner one, whose Stat then reads the outer one
/// and fails (both versions abort while marking).
fn revision_link_in_link_dir(root: &Path) {
    link_into_link_dir(&minimal_app(root).join(format!("_manifests/revisions/sha256/{MINIMAL_REVISION}")), root);
}

/// The same in `_layers`: only v3 reads it (its layer check aborts).
fn layer_link_in_link_dir(root: &Path) {
    link_into_link_dir(&minimal_app(root).join(format!("_layers/sha256/{MINIMAL_LAYER}")), root);
}

/// A copy of a `_layers` link at `<hex>.bak/link`, the manifest untagged:
/// v3 queues the layer link's removal twice and fails the second time.
fn layers_stray_untagged(root: &Path) {
    let layer = format!("_layers/sha256/{MINIMAL_LAYER}");
    copy_link(root, &format!("{layer}/link"), &format!("{layer}.bak/link"));
    untag(root);
}

/// The same copy in a subdirectory of the layer link's own directory,
/// which the fast walk does not list unless it sees the subdirectory.
fn layers_nested_stray_untagged(root: &Path) {
    let layer = format!("_layers/sha256/{MINIMAL_LAYER}");
    copy_link(root, &format!("{layer}/link"), &format!("{layer}/old/link"));
    untag(root);
}

/// A tag whose `current/link` is a directory: reading it fails, which
/// aborts --delete-untagged.
fn tag_link_is_dir(root: &Path) {
    std::fs::create_dir_all(minimal_app(root).join("_manifests/tags/bad/current/link")).unwrap();
}

/// A 257-character name whose first component looks like a domain: 2.8
/// counts the whole name (too long), v3 only the path after the domain.
fn long_domain_like_name(root: &Path) {
    let repos = v2(root).join("repositories");
    let long = repos.join("abcdef").join("b".repeat(250));
    std::fs::create_dir_all(long.parent().unwrap()).unwrap();
    std::fs::rename(repos.join("app"), &long).unwrap();
}

/// A tag whose name the storage driver refuses (`+`).
fn tag_outside_driver_charset(root: &Path) {
    let tags = minimal_app(root).join("_manifests/tags");
    copy_tree(&tags.join("v1"), &tags.join("v1+old"));
}

fn check(real: Real, name: &str, src: &Path, tweak: Option<Tweak>, delete_untagged: bool) {
    let label = format!("{name} (target {}, delete_untagged={delete_untagged})", real.target());
    let (_dir, root) = registry::scratch_copy(src);
    if let Some(t) = tweak {
        t(&root);
    }
    let root_s = root.to_str().unwrap();
    let mut args = vec!["gc", root_s, "--target", real.target()];
    if delete_untagged {
        args.push("--delete-untagged");
    }
    let (_, predicted) = json(&args);
    let log_args: Vec<&str> = args.iter().copied().chain(["--format", "gc-log"]).collect();
    let log = regaudit(&log_args);

    // Dry run: nothing changes; stdout and exit status match.
    let before = registry::snapshot(&root);
    let dry = registry::garbage_collect_real(real, &root, true, delete_untagged);
    assert!(Changes::between(&before, &registry::snapshot(&root)).is_empty(), "{label}: the dry run changed the tree");
    let aborts = &predicted["aborts"];
    let dry_aborts = !aborts.is_null() && aborts["dry_run_too"] == true;
    assert_eq!(!dry.status.success(), dry_aborts, "{label}: dry-run status {:?}, predicted {aborts}", dry.status);
    let mut real_lines: Vec<String> = String::from_utf8_lossy(&dry.stdout).lines().map(str::to_string).collect();
    let mut our_lines: Vec<String> = log.stdout.lines().map(str::to_string).collect();
    // Blob lines come in Go map order: compare as multisets.
    real_lines.sort();
    our_lines.sort();
    assert_eq!(our_lines, real_lines, "{label}: --dry-run stdout differs from --format gc-log");
    if dry_aborts {
        let real = String::from_utf8_lossy(&dry.stderr);
        assert!(
            same_message(&log.stderr, &real, &root),
            "{label}: dry-run abort message\n ours: {}\n real: {real}",
            log.stderr
        );
    }

    // Real run: exactly the predicted files disappear.
    let real = registry::garbage_collect_real(real, &root, false, delete_untagged);
    let after = registry::snapshot(&root);
    let changes = Changes::between(&before, &after).files(&after, &before);
    assert!(changes.created.is_empty() && changes.modified.is_empty(), "{label}: {changes:?}");
    let predicted_removes: Vec<String> =
        predicted["removes"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(predicted_removes, changes.removed, "{label}: removes");
    assert_eq!(!real.status.success(), !aborts.is_null(), "{label}: real status {:?}, predicted {aborts}", real.status);
    if !aborts.is_null() {
        let ours = aborts["message"].as_str().unwrap();
        let real = String::from_utf8_lossy(&real.stderr);
        assert!(same_message(ours, &real, &root), "{label}: abort message\n ours: {ours}\n real: {real}");
    }
}

fn every_tree(real: Real) {
    if !registry::require_real(real) {
        return;
    }
    let mut all: Vec<String> = TREES.iter().map(|s| s.to_string()).collect();
    all.extend(broken_variants());
    for rel in &all {
        let tweak: Option<Tweak> = (rel == "broken/symlink").then_some(contain_symlink as Tweak);
        for m in [false, true] {
            check(real, rel, &testdata(rel), tweak, m);
        }
    }
}

fn made_variants(real: Real) {
    if !registry::require_real(real) {
        return;
    }
    let variants: &[(&str, &str, Tweak)] = &[
        ("underscore-file", "trees/minimal", underscore_file),
        ("no-tags-dir", "trees/minimal-multi", no_tags_dir),
        ("empty-tags-dir", "trees/minimal-multi", empty_tags_dir),
        ("tag-is-file", "trees/minimal", tag_is_file),
        ("no-blobs", "trees/minimal", no_blobs),
        ("no-repositories", "trees/minimal", no_repositories),
        ("misplaced-after-untag", "trees/minimal-multi", misplaced_after_untag),
        ("revision-stray-copy", "trees/minimal", revision_stray_copy),
        ("revision-stray-untagged", "trees/minimal", revision_stray_untagged),
        ("revision-link-elsewhere", "trees/minimal", revision_link_elsewhere),
        ("revision-link-in-link-dir", "trees/minimal", revision_link_in_link_dir),
        ("layer-link-in-link-dir", "trees/minimal", layer_link_in_link_dir),
        ("layers-stray-untagged", "trees/minimal", layers_stray_untagged),
        ("layers-nested-stray-untagged", "trees/minimal", layers_nested_stray_untagged),
        ("tag-link-is-dir", "trees/minimal", tag_link_is_dir),
        ("long-domain-like-name", "trees/minimal", long_domain_like_name),
        ("tag-outside-driver-charset", "trees/minimal", tag_outside_driver_charset),
    ];
    for (name, base, tweak) in variants {
        for m in [false, true] {
            check(real, name, &testdata(base), Some(*tweak), m);
        }
    }
}

#[test]
fn gc_matches_the_real_registry_on_every_tree() {
    every_tree(Real::V2_8);
}

#[test]
fn gc_matches_the_real_registry_on_made_variants() {
    made_variants(Real::V2_8);
}

#[test]
fn gc_target_3_matches_the_real_v3_on_every_tree() {
    every_tree(Real::V3);
}

#[test]
fn gc_target_3_matches_the_real_v3_on_made_variants() {
    made_variants(Real::V3);
}
