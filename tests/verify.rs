//! `regaudit verify`, `scan` and the `--verify` of `tags` and `inspect`.

mod common;

use std::process::{Command, Stdio};
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

/// 0-byte files cannot be memory-mapped: the buffered path hashes them.
#[test]
fn empty_blob_is_hashed_through_the_read_fallback() {
    let dir = scratch("trees/minimal");
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let blob = dir.path().join(format!("{V2}/blobs/sha256/e3/{empty}"));
    std::fs::create_dir_all(&blob).unwrap();
    std::fs::write(blob.join("data"), b"").unwrap();
    let (exit, v) = json(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(exit, 0, "{v}");
    assert_eq!(v["intact"], v["blobs_checked"]);
}

/// Ctrl-C stops hashing and prints what was verified so far.
#[test]
fn interrupt_reports_partial_results() {
    let dir = scratch("trees/minimal");
    // A large sparse blob keeps the hasher busy for a few seconds.
    let fake = "1111111111111111111111111111111111111111111111111111111111111111";
    let blob = dir.path().join(format!("{V2}/blobs/sha256/11/{fake}"));
    std::fs::create_dir_all(&blob).unwrap();
    std::fs::File::create(blob.join("data")).unwrap().set_len(16 << 30).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_regaudit"))
        .args(["verify", dir.path().to_str().unwrap(), "--format", "json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["interrupted"], true, "{v}");
    assert!(v["bytes_hashed"].as_u64().unwrap() < 16 << 30);
}
