//! `regaudit verify`, `scan` and the `--verify` of `tags` and `inspect`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn root(rel: &str) -> String {
    testdata(rel).to_str().unwrap().to_string()
}

#[test]
fn corrupt_and_truncated_blobs_name_the_tags_they_break() {
    for (variant, state, code) in
        [("blob-corrupt", "corrupt", "blob-corrupt"), ("blob-truncated", "truncated", "blob-truncated")]
    {
        let (exit, v) = json(&["verify", &root(&format!("broken/{variant}"))]);
        assert_eq!(exit, 1, "{variant}");
        let damaged = v["damaged"].as_array().unwrap();
        assert_eq!(damaged.len(), 1, "{variant}: {v}");
        assert_eq!(damaged[0]["state"], state);
        assert_eq!(damaged[0]["breaks"], serde_json::json!(["app:v1"]));
        assert!(v["problems"].as_array().unwrap().iter().any(|p| p["code"] == code), "{variant}");
        let text = regaudit(&["verify", &root(&format!("broken/{variant}"))]);
        insta::assert_snapshot!(format!("verify_{variant}"), text.stdout);
    }
}

#[test]
fn missing_blobs_are_reported_with_their_tags() {
    let (exit, v) = json(&["verify", &root("broken/layer-missing-data")]);
    assert_eq!(exit, 1);
    let missing: Vec<_> = v["damaged"].as_array().unwrap().iter().filter(|d| d["state"] == "missing").collect();
    assert_eq!(missing.len(), 1, "{v}");
    assert_eq!(missing[0]["breaks"], serde_json::json!(["app:v1"]));
}

#[test]
fn a_whole_real_tree_is_intact() {
    let (exit, v) = json(&["verify", &root("trees/full")]);
    assert_eq!(exit, 0, "{v}");
    assert_eq!(v["damaged"], serde_json::json!([]));
    assert_eq!(v["intact"], v["blobs_checked"]);
    assert!(v["blobs_checked"].as_u64().unwrap() > 50);
    assert_eq!(v["interrupted"], false);
    // Only the blobs one repository reaches.
    let (_, one) = json(&["verify", &root("trees/full"), "base/schema2"]);
    assert!(one["blobs_checked"].as_u64().unwrap() < v["blobs_checked"].as_u64().unwrap());
    assert!(one["blobs_checked"].as_u64().unwrap() >= 5);
}

#[test]
fn tags_and_inspect_fill_in_intact() {
    let (exit, v) = json(&["tags", &root("broken/blob-corrupt"), "--verify"]);
    assert_eq!(exit, 1);
    assert_eq!(v["tags"][0]["intact"], false);
    assert_eq!(v["tags"][0]["served"], true, "the registry serves corrupt bytes with 200");
    let (exit, v) = json(&["tags", &root("trees/minimal"), "--verify"]);
    assert_eq!(exit, 0);
    assert_eq!(v["tags"][0]["intact"], true);
    let (_, v) = json(&["tags", &root("trees/minimal")]);
    assert!(v["tags"][0]["intact"].is_null(), "intact stays null without --verify");
    let run = regaudit(&["inspect", &root("broken/blob-corrupt"), "app:v1", "--verify"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!("inspect_verify_corrupt", run.stdout);
}

#[test]
fn scan_summarises_the_tree() {
    // Fixed time: the uploads' age decides the purge prediction.
    let now = "2026-12-01T00:00:00Z";
    let run = regaudit(&["scan", &root("trees/full"), "--verify", "--now", now]);
    // Serving it would write (schema1 conversion of tags with empty layers),
    // but writes are not scan's question: no problem, every tag served, exit 0.
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("scan_full_verify", run.stdout.replace(&root("trees/full"), "[root]"));
    let (exit, v) = json(&["scan", &root("trees/full"), "--now", now]);
    assert_eq!(exit, 0);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["inventory"]["repositories"], 14);
    assert!(v["verification"].is_null());
    assert_eq!(v["writes"]["serves_read_only"], false);
    assert_eq!(v["gc"][0]["delete_untagged"], false);
    assert_eq!(v["gc"][1]["delete_untagged"], true);
    assert!(v["gc"][1]["manifests"].as_u64().unwrap() > v["gc"][0]["manifests"].as_u64().unwrap());
    // A tree whose tags have no empty layers and no uploads serves read-only.
    let (_, v) = json(&["scan", &root("broken/revision-missing-data"), "--now", now]);
    assert!(v["gc"][0]["aborts"].is_null(), "{v}");
    let (exit, v) = json(&["scan", &root("broken/blob-truncated"), "--verify"]);
    assert_eq!(exit, 1);
    assert_eq!(v["verification"]["damaged"], 1);
}

/// A 0-byte blob hashes to the empty digest.
#[test]
fn an_empty_blob_is_intact() {
    let dir = scratch("trees/minimal");
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let blob = dir.path().join(format!("{V2}/blobs/sha256/e3/{empty}"));
    std::fs::create_dir_all(&blob).unwrap();
    std::fs::write(blob.join("data"), b"").unwrap();
    let (exit, v) = json(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(exit, 0, "{v}");
    assert_eq!(v["intact"], v["blobs_checked"]);
}

/// The layer of `app:v1` in trees/minimal, which every command that hashes reaches.
const LAYER: &str = "7dc163e26ccb92ac81308796b63ad8d2e64fff0fa3837e2737b1895677dc08be";

/// A copy of trees/minimal whose layer data is a 16 GiB sparse file: hashing
/// it keeps a run busy for seconds. Returns the tree and the data's path.
fn tree_with_huge_layer() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = scratch("trees/minimal");
    let data = dir.path().join(format!("{V2}/blobs/sha256/7d/{LAYER}/data"));
    std::fs::OpenOptions::new().write(true).open(&data).unwrap().set_len(16 << 30).unwrap();
    (dir, data)
}

/// One rule for every command that hashes: Ctrl-C prints the partial report,
/// which says it was interrupted, and exits 2.
#[test]
fn interrupted_hashing_exits_2_for_every_command() {
    let (dir, data) = tree_with_huge_layer();
    let tree = dir.path().to_str().unwrap();
    let commands: [&[&str]; 4] = [
        &["verify", tree],
        &["scan", tree, "--verify"],
        &["tags", tree, "--verify"],
        &["inspect", tree, "app:v1", "--verify"],
    ];
    for args in commands {
        for json_format in [true, false] {
            let mut all = args.to_vec();
            if json_format {
                all.extend(["--format", "json"]);
            }
            let child = start_hashing(&all, &data);
            Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{all:?}: {stderr}");
            assert!(stderr.contains("regaudit: interrupted"), "{all:?}: {stderr}");
            if json_format {
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                let flag = if args[0] == "scan" { &v["verification"]["interrupted"] } else { &v["interrupted"] };
                assert_eq!(flag, true, "{all:?}: {v}");
            } else if args[0] == "verify" || args[0] == "scan" {
                assert!(String::from_utf8_lossy(&out.stdout).contains("interrupted"), "{all:?}");
            }
        }
    }
    // Not interrupted: the field is false (verify, scan) or left out (tags, inspect).
    let (exit, v) = json(&["tags", &root("trees/minimal"), "--verify"]);
    assert_eq!((exit, v.get("interrupted")), (0, None), "{v}");
}

/// A blob truncated while it is hashed (it used to be memory-mapped, and
/// the process died of SIGBUS) is a problem with its path; the run goes on.
#[test]
fn a_blob_truncated_while_hashed_is_a_problem_not_a_crash() {
    let (dir, data) = tree_with_huge_layer();
    let root = dir.path().to_str().unwrap();
    let child = start_hashing(&["verify", root, "--format", "json"], &data);
    std::fs::OpenOptions::new().write(true).open(&data).unwrap().set_len(1 << 20).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "no signal death: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let path = format!("{V2}/blobs/sha256/7d/{LAYER}/data");
    let changed: Vec<_> = v["problems"].as_array().unwrap().iter().filter(|p| p["code"] == "blob-changed").collect();
    assert_eq!(changed.len(), 1, "{v}");
    assert_eq!(changed[0]["path"], path.as_str());
    assert_eq!(changed[0]["severity"], "error");
    assert!(!v["problems"].as_array().unwrap().iter().any(|p| p["code"] == "blob-corrupt"), "not called corrupt: {v}");
    assert_eq!(v["damaged"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["damaged"][0]["state"], "unreadable");
    // Every other blob was still hashed.
    assert_eq!(v["intact"].as_u64().unwrap() + 1, v["blobs_checked"].as_u64().unwrap(), "{v}");
    assert_eq!(v["interrupted"], false);
}

/// `--format gc-log` is refused while parsing, for every command but gc:
/// before any hashing, and before export creates DEST.
#[test]
fn gc_log_is_refused_before_any_work() {
    let (dir, _) = tree_with_huge_layer();
    let tree = dir.path().to_str().unwrap();
    let dest = dir.path().with_extension("export-dest");
    let commands: [&[&str]; 8] = [
        &["verify", tree],
        &["scan", tree, "--verify"],
        &["tags", tree, "--verify"],
        &["inspect", tree, "app:v1", "--verify"],
        &["export", tree, "app:v1", dest.to_str().unwrap()],
        &["du", tree],
        &["writes", tree],
        &["diff", tree, tree],
    ];
    for args in commands {
        let start = std::time::Instant::now();
        let mut all = args.to_vec();
        all.extend(["--format", "gc-log"]);
        let run = regaudit(&all);
        assert_eq!(run.code, 2, "{all:?}");
        assert!(run.stderr.contains("gc-log is only for `regaudit gc`"), "{all:?}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{all:?}");
        // 16 GiB were not hashed first.
        assert!(start.elapsed() < Duration::from_secs(5), "{all:?} took {:?}", start.elapsed());
    }
    assert!(!dest.exists(), "export created DEST before refusing");
    let run = regaudit(&["gc", tree, "--format", "gc-log"]);
    assert_ne!(run.code, 2, "{}", run.stderr);
}

/// Hashing memory is one buffer per thread, whatever the blob size (a
/// memory-mapped blob used to count whole in the peak RSS).
#[test]
fn hashing_memory_does_not_grow_with_the_blob() {
    let dir = scratch("trees/minimal");
    let data = dir.path().join(format!("{V2}/blobs/sha256/7d/{LAYER}/data"));
    std::fs::OpenOptions::new().write(true).open(&data).unwrap().set_len(128 << 20).unwrap();
    let rss = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(rss.path())
        .arg(env!("CARGO_BIN_EXE_regaudit"))
        .args(["verify", dir.path().to_str().unwrap(), "--format", "json"])
        .output()
        .expect("GNU time (scripts/test installs it)");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["bytes_hashed"].as_u64().unwrap() >= 128 << 20, "{v}");
    let kib: u64 = std::fs::read_to_string(rss.path()).unwrap().lines().last().unwrap().trim().parse().unwrap();
    // 5 MiB here; the mapped blob made it 135 MiB.
    assert!(kib < 48 << 10, "peak RSS {kib} KiB while hashing a 128 MiB blob");
}
