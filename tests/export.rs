//! `regaudit export` checked with the real tools: skopeo reads the layout
//! and pushes it into a real registry (Distribution 2.8.2) with the same
//! manifest digests; umoci unpacks an exported OCI image; missing and
//! corrupt blobs, schema1 and unsafe destinations are refused.

mod common;

use std::path::Path;
use std::process::Command;

use common::registry;

use common::*;
use registry::Registry;

const ACCEPT_ALL: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

fn full() -> String {
    testdata("trees/full").to_str().unwrap().to_string()
}

fn export(root: &str, reference: &str, dest: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["export", root, reference, dest.to_str().unwrap()];
    args.extend(extra);
    regaudit(&args)
}

fn skopeo(args: &[&str]) -> std::process::Output {
    let out = Command::new("skopeo").args(args).output().expect("run skopeo (scripts/test installs it)");
    assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn index_json(dest: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dest.join("index.json")).unwrap()).unwrap()
}

fn tag_digest(root: &str, reference: &str) -> String {
    let (_, v) = json(&["inspect", root, reference]);
    v["digest"].as_str().unwrap().to_string()
}

#[test]
fn skopeo_pushes_exported_images_with_their_original_digests() {
    if !registry::require() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("registry");
    std::fs::create_dir_all(storage.join(V2)).unwrap();
    let reg = Registry::serve(&storage);
    // (reference, whether skopeo can name it in the layout). skopeo 1.9's
    // oci: transport only looks up OCI media types by name in index.json,
    // so Docker-typed images go to a layout of their own and are read as
    // `oci:DEST` (the layout's only manifest).
    let cases = [
        ("base/schema2:v1", false),
        ("multi/docker-list:latest", false),
        ("oci/app:1.0", true),
        ("multi/oci-index:latest", true),
        ("oci/artifact:base", true),
    ];
    for (i, (reference, by_name)) in cases.iter().enumerate() {
        let original = tag_digest(&full(), reference);
        let dest = work.path().join(format!("layout{i}"));
        let run = export(&full(), reference, &dest, &[]);
        assert_eq!(run.code, 0, "{reference}: {}{}", run.stdout, run.stderr);
        let tag = reference.rsplit_once(':').unwrap().1;
        let source = if *by_name { format!("oci:{}:{tag}", dest.display()) } else { format!("oci:{}", dest.display()) };
        let inspected = skopeo(&["inspect", "--raw", &source]);
        let raw_digest = format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&inspected.stdout)));
        assert_eq!(raw_digest, original, "{reference}: skopeo reads the original manifest bytes");
        let repo = format!("pushed/n{i}");
        let target = format!("docker://127.0.0.1:{}/{repo}:{tag}", reg.port);
        skopeo(&["copy", "--all", "--preserve-digests", "--dest-tls-verify=false", &source, &target]);
        let head = reg.request("HEAD", &format!("/v2/{repo}/manifests/{tag}"), &[("Accept", ACCEPT_ALL)]);
        assert_eq!(head.status, 200, "{reference}");
        assert_eq!(head.header("docker-content-digest"), Some(original.as_str()), "{reference}: pushed digest");
    }
}

#[test]
fn umoci_unpacks_an_exported_oci_image() {
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("layout");
    let run = export(&full(), "oci/app:1.0", &dest, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = skopeo(&["inspect", &format!("oci:{}:1.0", dest.display())]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Digest"].as_str().unwrap(), tag_digest(&full(), "oci/app:1.0"));
    let bundle = work.path().join("bundle");
    let mut cmd = Command::new("umoci");
    cmd.arg("unpack");
    if !registry::is_root() {
        cmd.arg("--rootless");
    }
    let out = cmd
        .arg("--image")
        .arg(format!("{}:1.0", dest.display()))
        .arg(&bundle)
        .output()
        .expect("run umoci (scripts/test installs it)");
    assert!(out.status.success(), "umoci: {}", String::from_utf8_lossy(&out.stderr));
    assert!(bundle.join("config.json").is_file());
    assert!(bundle.join("rootfs").read_dir().unwrap().next().is_some(), "rootfs is empty");
}

#[test]
fn export_report_text_and_json() {
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("layout");
    let run = export(&full(), "multi/oci-index:latest", &dest, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("export_oci_index_text", run.stdout.replace(dest.to_str().unwrap(), "[dest]"));
    let dest2 = work.path().join("layout2");
    let (code, mut v) = json(&["export", &full(), "base/schema2:v1", dest2.to_str().unwrap()]);
    assert_eq!(code, 0);
    v["root"] = "[root]".into();
    v["dest"] = "[dest]".into();
    insta::assert_json_snapshot!("export_schema2_json", v);
    // Every blob named in the report is in the layout, byte for byte.
    for b in v["blobs"].as_array().unwrap() {
        let d = b["digest"].as_str().unwrap().replace(':', "/");
        let bytes = std::fs::read(dest2.join("blobs").join(d)).unwrap();
        assert_eq!(bytes.len() as u64, b["size"].as_u64().unwrap());
    }
    assert_eq!(std::fs::read_to_string(dest2.join("oci-layout")).unwrap(), r#"{"imageLayoutVersion":"1.0.0"}"#);
}

#[test]
fn one_layout_holds_several_names_and_a_name_is_replaced() {
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("layout");
    assert_eq!(export(&full(), "oci/app:1.0", &dest, &[]).code, 0);
    assert_eq!(export(&full(), "multi/oci-index:latest", &dest, &[]).code, 0);
    let digest = tag_digest(&full(), "oci/app:1.0");
    let by_digest = format!("oci/app@{digest}");
    assert_eq!(export(&full(), &by_digest, &dest, &["--tag", "latest"]).code, 0);
    let names: Vec<(String, String)> = index_json(&dest)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(names, vec![("1.0".to_string(), digest.clone()), ("latest".to_string(), digest)]);
}

#[test]
fn schema1_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("layout");
    let run = export(&full(), "legacy/s1:old", &dest, &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("schema1"), "{}", run.stderr);
    assert!(!dest.exists());
}

#[test]
fn destinations_inside_the_root_or_not_a_layout_are_refused() {
    let tree = scratch("trees/minimal");
    let root = tree.path().to_str().unwrap();
    let before = registry::snapshot(tree.path());
    let inside = tree.path().join("docker/export");
    let run = export(root, "app:v1", &inside, &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("inside the storage root"), "{}", run.stderr);
    // Through a symlink that leads into the root, and a path that does not exist yet.
    let work = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(tree.path().join("docker"), work.path().join("link")).unwrap();
    let run = export(root, "app:v1", &work.path().join("link/new/dir"), &[]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stderr.contains("inside the storage root"), "{}", run.stderr);
    assert_eq!(registry::snapshot(tree.path()), before, "the tree was written to");
    // A non-empty directory that is not an OCI layout.
    let other = work.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("file"), "x").unwrap();
    let run = export(root, "app:v1", &other, &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("not an OCI image layout"), "{}", run.stderr);
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1);
}

#[test]
fn a_missing_blob_is_refused_unless_partial() {
    let root = testdata("broken/layer-missing-data");
    let root = root.to_str().unwrap();
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("layout");
    let run = export(root, "app:v1", &dest, &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("sha256:7dc163e26ccb92ac81308796b63ad8d2e64fff0fa3837e2737b1895677dc08be"),
        "{}",
        run.stderr
    );
    assert!(!dest.exists(), "nothing is written when refusing");
    let (code, v) = json(&["export", root, "app:v1", dest.to_str().unwrap(), "--allow-partial"]);
    assert_eq!(code, 1);
    assert_eq!(v["complete"], false);
    let statuses: Vec<&str> = v["blobs"].as_array().unwrap().iter().map(|b| b["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["copied", "copied", "copied", "not-served"]);
    assert_eq!(std::fs::read_dir(dest.join("blobs/sha256")).unwrap().count(), 3);
    assert_eq!(index_json(&dest)["manifests"].as_array().unwrap().len(), 1);
}

#[test]
fn a_corrupt_blob_is_refused_unless_partial() {
    let tree = scratch("trees/minimal");
    let layer = "sha256:7dc163e26ccb92ac81308796b63ad8d2e64fff0fa3837e2737b1895677dc08be";
    let data = tree
        .path()
        .join(V2)
        .join("blobs/sha256/7d/7dc163e26ccb92ac81308796b63ad8d2e64fff0fa3837e2737b1895677dc08be/data");
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();
    let root = tree.path().to_str().unwrap();
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("layout");
    let run = export(root, "app:v1", &dest, &[]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stderr.contains(&format!("layer {layer}: its {} bytes hash to", bytes.len())), "{}", run.stderr);
    assert!(!dest.exists(), "a DEST this run created is removed again");
    let (code, v) = json(&["export", root, "app:v1", dest.to_str().unwrap(), "--allow-partial"]);
    assert_eq!(code, 1);
    let corrupt: Vec<&str> = v["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["status"] == "corrupt")
        .map(|b| b["digest"].as_str().unwrap())
        .collect();
    assert_eq!(corrupt, [layer]);
    assert!(!dest.join("blobs/sha256").join(&layer[7..]).exists(), "corrupt bytes are not written");
    let leftovers: Vec<_> = std::fs::read_dir(dest.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// How to get a private mount namespace here: `unshare -m` as root,
/// `unshare -rm` (a user namespace) otherwise; None when neither works.
fn mount_namespace() -> Option<Vec<&'static str>> {
    let ok = |args: &[&str]| Command::new("unshare").args(args).arg("true").output().is_ok_and(|o| o.status.success());
    [vec!["-m", "--propagation", "private"], vec!["-rm", "--propagation", "private"]].into_iter().find(|a| ok(a))
}

/// Runs `script` (sh) in a private mount namespace with $BIN set to regaudit.
fn in_mount_namespace(ns: &[&str], script: &str) -> std::process::Output {
    Command::new("unshare")
        .args(ns)
        .args(["sh", "-c", script])
        .env("BIN", env!("CARGO_BIN_EXE_regaudit"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// ROOT given as a read-only bind mount of X with DEST under X used to pass
/// the path comparison and write into X; so did DEST under a bind mount of
/// a directory inside the tree, and a `--report-digest` file under X. All
/// are refused, and X is not touched.
#[test]
fn a_dest_reaching_the_tree_through_a_bind_mount_is_refused() {
    let Some(ns) = mount_namespace() else {
        eprintln!("SKIPPED: neither `unshare -m` nor `unshare -rm` works here, so no bind mount can be made");
        return;
    };
    let tree = scratch("trees/minimal");
    let x = tree.path().to_str().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mnt = work.path().join("ro-root");
    let blobs_mnt = work.path().join("blobs-elsewhere");
    std::fs::create_dir(&mnt).unwrap();
    std::fs::create_dir(&blobs_mnt).unwrap();
    let before = registry::snapshot(tree.path());
    // ROOT is the bind mount; DEST is under the original.
    let script = format!(
        "mount --bind {x} {m} && mount -o remount,bind,ro {m} && exec \"$BIN\" export {m} app:v1 {x}/docker/export",
        m = mnt.display()
    );
    let out = in_mount_namespace(&ns, &script);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("inside the storage root"), "{stderr}");
    // ROOT is the original; DEST is under a bind mount of its blobs directory.
    let script = format!(
        "mount --bind {x}/{V2}/blobs {b} && exec \"$BIN\" export {x} app:v1 {b}/new/layout",
        b = blobs_mnt.display()
    );
    let out = in_mount_namespace(&ns, &script);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("inside the storage root"), "{stderr}");
    // --report-digest, the other writer, compares the same way: its FILE
    // under the original, with ROOT given as the bind mount, is refused.
    let script = format!(
        "mount --bind {x} {m} && mount -o remount,bind,ro {m} && exec \"$BIN\" tags {m} --report-digest {x}/seal",
        m = mnt.display()
    );
    let out = in_mount_namespace(&ns, &script);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("inside the tree"), "{stderr}");
    assert_eq!(registry::snapshot(tree.path()), before, "the tree was written to");
    // The same bind mount, DEST outside the tree: exported.
    let dest = work.path().join("layout");
    let script = format!(
        "mount --bind {x} {m} && mount -o remount,bind,ro {m} && exec \"$BIN\" export {m} app:v1 {d}",
        m = mnt.display(),
        d = dest.display()
    );
    let out = in_mount_namespace(&ns, &script);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dest.join("index.json").is_file());
}

/// An existing layout whose `blobs` (or `blobs/sha256`) is a symlink into the
/// tree: refused before anything is created, under DEST or under the target.
#[test]
fn a_symlink_inside_an_existing_layout_is_refused_before_writing() {
    let tree = scratch("trees/minimal");
    let root = tree.path().to_str().unwrap();
    let before = registry::snapshot(tree.path());
    for (link, target) in [("blobs", "docker"), ("blobs/sha256", "docker/registry")] {
        let work = tempfile::tempdir().unwrap();
        let dest = work.path().join("layout");
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::write(dest.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        if link == "blobs/sha256" {
            std::fs::create_dir(dest.join("blobs")).unwrap();
        }
        std::os::unix::fs::symlink(tree.path().join(target), dest.join(link)).unwrap();
        let layout_before = registry::snapshot(&dest);
        let run = export(root, "app:v1", &dest, &[]);
        assert_eq!(run.code, 2, "{link}: {}", run.stdout);
        assert!(run.stderr.contains(&format!("{link} is a symlink")), "{link}: {}", run.stderr);
        assert_eq!(registry::snapshot(tree.path()), before, "{link}: the tree was written to");
        assert_eq!(registry::snapshot(&dest), layout_before, "{link}: DEST was written to");
    }
}
