//! The static binary runs where nothing else is: in an empty chroot holding
//! only the binary and a tree (no loader, no libc, no /proc, no /dev). This
//! stands in for the `FROM scratch` container image, since no container
//! engine runs on the machines that test this.
//!
//! Root only (chroot). It runs `scripts/build-static`, a release build into
//! `target/static` the first time (cargo reuses it while nothing changed).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{copy_tree, testdata};

fn build_static() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("scripts/build-static")).current_dir(root).output().expect("run scripts/build-static");
    assert!(out.status.success(), "scripts/build-static failed:\n{}", String::from_utf8_lossy(&out.stderr));
    root.join(String::from_utf8(out.stdout).unwrap().trim())
}

fn in_chroot(dir: &Path, args: &[&str]) -> Output {
    Command::new("chroot").arg(dir).arg("/regaudit").args(args).env_clear().env("NO_COLOR", "1").output().expect("run chroot")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn static_binary_scans_a_tree_in_an_empty_chroot() {
    if !common::registry::is_root() {
        eprintln!("\n*** SKIPPED static_binary_scans_a_tree_in_an_empty_chroot: chroot needs root ***\n");
        return;
    }
    let bin = build_static();

    // No program interpreter and no shared libraries: nothing to find at run time.
    let elf = Command::new("readelf").args(["-l", "-d"]).arg(&bin).output().expect("readelf");
    let elf = text(&elf.stdout);
    assert!(!elf.contains("INTERP") && !elf.contains("NEEDED"), "not static:\n{elf}");

    let jail = tempfile::tempdir().unwrap();
    std::fs::copy(&bin, jail.path().join("regaudit")).unwrap();
    copy_tree(&testdata("trees/full"), &jail.path().join("tree"));
    let entries: Vec<_> = std::fs::read_dir(jail.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries.len(), 2, "the chroot holds only the binary and the tree: {entries:?}");

    // The same answers as the normal build gives outside.
    let scan = in_chroot(jail.path(), &["scan", "/tree"]);
    assert_eq!(scan.status.code(), Some(1), "{}{}", text(&scan.stdout), text(&scan.stderr));
    let outside = common::regaudit(&["scan", testdata("trees/full").to_str().unwrap()]);
    assert_eq!(text(&scan.stdout).replace("/tree", "ROOT"), outside.stdout.replace(testdata("trees/full").to_str().unwrap(), "ROOT"));
    assert!(text(&scan.stdout).contains("repositories"), "{}", text(&scan.stdout));

    let json = in_chroot(jail.path(), &["scan", "/tree", "--verify", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&json.stderr)));
    assert_eq!(doc["root"], "/tree");
    assert_eq!(doc["schema_version"], 1);
    let verification = &doc["verification"];
    assert!(verification["blobs_checked"].as_u64().unwrap() > 10, "{verification}");
    assert_eq!(verification["damaged"], 0);
    assert_eq!(verification["intact"], verification["blobs_checked"]);

    let tags = in_chroot(jail.path(), &["tags", "/tree", "--format", "json"]);
    let tags: serde_json::Value = serde_json::from_slice(&tags.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&tags.stderr)));
    let (_, outside) = common::json(&["tags", testdata("trees/full").to_str().unwrap()]);
    assert_eq!(tags["tags"], outside["tags"]);
    assert!(tags["tags"].as_array().unwrap().len() > 5);

    // Reading never wrote: the tree in the chroot is still the tree in testdata.
    let diff = common::regaudit(&["diff", testdata("trees/full").to_str().unwrap(), jail.path().join("tree").to_str().unwrap()]);
    assert_eq!(diff.code, 0, "{}", diff.stdout);
}
