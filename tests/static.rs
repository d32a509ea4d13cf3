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
    let out =
        Command::new(root.join("scripts/build-static")).current_dir(root).output().expect("run scripts/build-static");
    assert!(out.status.success(), "scripts/build-static failed:\n{}", String::from_utf8_lossy(&out.stderr));
    root.join(String::from_utf8(out.stdout).unwrap().trim())
}

/// Where the Containerfile puts the binary (`COPY … DEST`), checking that the
/// image is what this test stands in for: FROM scratch, entrypoint regaudit.
fn image_binary_path() -> String {
    let containerfile = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Containerfile")).unwrap();
    let instructions: Vec<&str> =
        containerfile.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).collect();
    assert_eq!(instructions[0], "FROM scratch");
    assert!(instructions.contains(&r#"ENTRYPOINT ["regaudit"]"#), "{instructions:?}");
    let copy: Vec<&str> = instructions.iter().find(|l| l.starts_with("COPY ")).unwrap().split_whitespace().collect();
    assert_eq!(
        copy[1], "target/static/x86_64-unknown-linux-gnu/static/regaudit",
        "the image copies build-static's binary"
    );
    assert!(instructions.contains(&"ENV PATH=/usr/local/bin") && copy[2] == "/usr/local/bin/regaudit", "{copy:?}");
    copy[2].to_owned()
}

fn in_chroot(dir: &Path, args: &[&str]) -> Output {
    Command::new("chroot")
        .arg(dir)
        .arg(image_binary_path())
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .output()
        .expect("run chroot")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Needs root: chroot.
#[test]
#[ignore = "needs root"]
fn static_binary_scans_a_tree_in_an_empty_chroot() {
    common::registry::require_root();
    let bin = build_static();

    // Stripped and small: a file to carry to a rescue shell.
    let size = std::fs::metadata(&bin).unwrap().len();
    // 4.5 MB before object storage (issue 15); 12.3 MB with it (measured on
    // branch r2-s3cli, no crate of its own added): object_store with its S3,
    // GCS and Azure clients, reqwest, rustls with its crypto, tokio. A
    // bucket cannot be read without them; the limit keeps 1.7 MB of room.
    assert!(size < 14 * 1024 * 1024, "the static binary is {size} bytes, over 14 MiB");
    let sections = Command::new("readelf").arg("-S").arg(&bin).output().expect("readelf -S");
    let sections = text(&sections.stdout);
    assert!(!sections.contains(".debug_") && !sections.contains(".symtab"), "not stripped:\n{sections}");

    // No program interpreter and no shared libraries: nothing to find at run time.
    let elf = Command::new("readelf").args(["-l", "-d"]).arg(&bin).output().expect("readelf");
    let elf = text(&elf.stdout);
    assert!(!elf.contains("INTERP") && !elf.contains("NEEDED"), "not static:\n{elf}");

    let jail = tempfile::tempdir().unwrap();
    let inside = jail.path().join(image_binary_path().trim_start_matches('/'));
    std::fs::create_dir_all(inside.parent().unwrap()).unwrap();
    std::fs::copy(&bin, &inside).unwrap();
    copy_tree(&testdata("trees/full"), &jail.path().join("tree"));
    copy_tree(&testdata("broken/blob-corrupt"), &jail.path().join("broken"));
    let entries: Vec<_> = std::fs::read_dir(jail.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(entries.len(), 3, "the chroot holds only usr/ (the binary) and the trees: {entries:?}");

    // The same answers as the normal build gives outside (at a fixed time:
    // upload purging depends on it). Exit 0: a healthy tree (that serving it
    // would write is `writes`' question, not scan's).
    let now = "2026-12-01T00:00:00Z";
    let scan = in_chroot(jail.path(), &["scan", "/tree", "--now", now]);
    assert_eq!(scan.status.code(), Some(0), "{}{}", text(&scan.stdout), text(&scan.stderr));
    let outside = common::regaudit(&["scan", testdata("trees/full").to_str().unwrap(), "--now", now]);
    assert_eq!(
        text(&scan.stdout).replace("/tree", "ROOT"),
        outside.stdout.replace(testdata("trees/full").to_str().unwrap(), "ROOT")
    );
    assert!(text(&scan.stdout).contains("repositories"), "{}", text(&scan.stdout));
    assert!(scan.stderr.is_empty(), "{}", text(&scan.stderr));

    let json = in_chroot(jail.path(), &["scan", "/tree", "--verify", "--format", "json"]);
    let doc: serde_json::Value =
        serde_json::from_slice(&json.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&json.stderr)));
    assert_eq!(doc["root"], "/tree");
    assert_eq!(doc["schema_version"], 1);
    let verification = &doc["verification"];
    assert!(verification["blobs_checked"].as_u64().unwrap() > 10, "{verification}");
    assert_eq!(verification["damaged"], 0);
    assert_eq!(verification["intact"], verification["blobs_checked"]);

    let tags = in_chroot(jail.path(), &["tags", "/tree", "--format", "json"]);
    let tags: serde_json::Value =
        serde_json::from_slice(&tags.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&tags.stderr)));
    let (_, outside) = common::json(&["tags", testdata("trees/full").to_str().unwrap()]);
    assert_eq!(tags["tags"], outside["tags"]);
    assert!(tags["tags"].as_array().unwrap().len() > 5);

    // Findings still make exit 1 there: hashing finds the corrupt blob.
    let broken = in_chroot(jail.path(), &["scan", "/broken", "--verify", "--format", "json"]);
    assert_eq!(broken.status.code(), Some(1), "{}", text(&broken.stderr));
    let broken: serde_json::Value = serde_json::from_slice(&broken.stdout).unwrap();
    assert_eq!(broken["verification"]["damaged"], 1, "{broken}");

    // Reading never wrote: the tree in the chroot is still the tree in testdata.
    let diff = common::regaudit(&[
        "diff",
        testdata("trees/full").to_str().unwrap(),
        jail.path().join("tree").to_str().unwrap(),
    ]);
    assert_eq!(diff.code, 0, "{}", diff.stdout);
}
