//! `regaudit writes` on trees made by the real registry and on hand-broken
//! variants: text and JSON snapshots, the JSON contract, options and exit codes.

mod common;

use common::*;

const NOW: &str = "2026-11-29T12:00:00Z";

fn redacted_json(args: &[&str]) -> (i32, serde_json::Value) {
    let (code, mut v) = json(args);
    v["root"] = "[root]".into();
    (code, v)
}

fn root(rel: &str) -> String {
    testdata(rel).to_str().unwrap().to_string()
}

#[test]
fn text_on_the_full_tree() {
    let run = regaudit(&["writes", &root("trees/full"), "--now", NOW]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.contains("serves read-only: no"), "{}", run.stdout);
    insta::assert_snapshot!("writes_full_text", run.stdout);
}

#[test]
fn json_contract_on_the_full_tree() {
    let (code, v) = redacted_json(&["writes", &root("trees/full"), "--now", NOW]);
    assert_eq!(code, 1);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["target"], "2.8");
    let ops = v["operations"].as_array().unwrap();
    for op in ops {
        for field in ["kind", "repository", "reference", "writes", "reason"] {
            assert!(op.get(field).is_some(), "missing {field} in {op}");
        }
        for w in op["writes"].as_array().unwrap() {
            assert!(["create", "modify", "delete"].contains(&w["action"].as_str().unwrap()), "{w}");
            assert!(!w["path"].as_str().unwrap().starts_with('/'), "{w}");
        }
    }
    // The empty tar is stored (legacy/s1 uploaded it) but linked only in
    // legacy/s1: every converted tag elsewhere links it, independently.
    let schema2 = |repo: &str, tag: &str| {
        ops.iter().find(|o| o["kind"] == "manifest-get-schema1" && o["repository"] == repo && o["reference"] == tag)
    };
    for tag in ["latest", "v1", "v2"] {
        let op = schema2("base/schema2", tag).unwrap();
        assert_eq!(op["writes"].as_array().unwrap().len(), 1, "{op}");
        assert_eq!(op["writes"][0]["action"], "create");
    }
    assert!(schema2("base/noempty", "1.0").unwrap()["writes"].as_array().unwrap().is_empty());
    assert!(schema2("oci/app", "1.0").unwrap()["writes"].as_array().unwrap().is_empty());
    assert_eq!(schema2("multi/no-amd64", "latest").unwrap()["status"], 404);
    insta::assert_json_snapshot!("writes_full_json", v);
}

#[test]
fn minimal_stores_and_links_the_empty_tar() {
    let (code, v) = redacted_json(&["writes", &root("trees/minimal"), "--now", NOW]);
    assert_eq!(code, 1);
    let writes = &v["operations"][0]["writes"];
    assert_eq!(
        writes[0]["path"],
        format!("{V2}/blobs/sha256/a3/a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4/data")
    );
    assert_eq!(writes[1]["path"], format!("{V2}/repositories/app/_layers/sha256/a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4/link"));
    assert_eq!(v["summary"]["serves_read_only"], false);
}

#[test]
fn nothing_writes_when_no_tag_resolves() {
    // The only tag's manifest has no data: 404, nothing converted.
    let run = regaudit(&["writes", &root("broken/revision-missing-data"), "--now", NOW]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.contains("serves read-only: yes"), "{}", run.stdout);
}

#[test]
fn target_3_has_no_conversion() {
    let (code, v) = redacted_json(&["writes", &root("trees/minimal-multi"), "--now", NOW, "--target", "3"]);
    assert_eq!(code, 0);
    assert_eq!(v["summary"]["serves_read_only"], true);
    let ops = v["operations"].as_array().unwrap();
    let multi = ops.iter().find(|o| o["reference"] == "multi").unwrap();
    assert_eq!(multi["status"], 400, "v3 refuses a schema2 child to a client without schema2: {multi}");
    let v1 = ops.iter().find(|o| o["reference"] == "v1").unwrap();
    assert_eq!(v1["status"], 200);
    insta::assert_json_snapshot!("writes_minimal_multi_v3_json", v);
}

#[test]
fn uploads_are_purged_by_age() {
    let tree = root("broken/upload-no-startedat");
    let run = regaudit(&["writes", &tree, "--now", NOW]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!("writes_uploads_text", run.stdout);
    let (_, v) = json(&["writes", &tree, "--now", NOW]);
    let purge = |uuid: &str| {
        v["operations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "upload-purge" && o["reference"] == uuid)
            .unwrap()
            .clone()
    };
    let old = purge("5e8a2b71-3d4f-4a6b-9c1d-2f7e8a9b0c32");
    assert_eq!(old["writes"][0]["action"], "delete");
    assert_eq!(
        old["writes"][0]["path"],
        format!("{V2}/repositories/app/_uploads/5e8a2b71-3d4f-4a6b-9c1d-2f7e8a9b0c32")
    );
    assert_eq!(old["bytes"], 35);
    let no_date = purge("0c6d1f54-9a3b-4c1e-8f2a-6b7d2e9c4a10");
    assert!(no_date["writes"].as_array().unwrap().is_empty());
    assert!(no_date["reason"].as_str().unwrap().contains("never purged"));
    // Strictly older: an upload started exactly at the cutoff stays.
    let dated_purge_at = |now: &str| {
        let (_, v) = json(&["writes", &tree, "--now", now, "--purge-age", "7d"]);
        let ops = v["operations"].as_array().unwrap().clone();
        ops.into_iter().find(|o| o["kind"] == "upload-purge" && o["time"].is_string()).unwrap()
    };
    let op = dated_purge_at("2020-01-08T00:00:00Z");
    assert!(op["writes"].as_array().unwrap().is_empty(), "{op}");
    let op = dated_purge_at("2020-01-08T00:00:01Z");
    assert_eq!(op["writes"].as_array().unwrap().len(), 1, "{op}");
}

#[test]
fn upload_status_is_conditional_on_the_token() {
    let (_, v) = json(&["writes", &root("trees/full"), "--now", NOW]);
    let status: Vec<&serde_json::Value> =
        v["operations"].as_array().unwrap().iter().filter(|o| o["kind"] == "upload-status").collect();
    assert_eq!(status.len(), 2);
    for op in status {
        assert!(op["condition"].as_str().unwrap().contains("_state token"), "{op}");
        assert_eq!(op["writes"][0]["action"], "modify", "hashstates/sha256/0 exists already: {op}");
    }
    // Registry 3 needs no token.
    let (_, v) = json(&["writes", &root("trees/full"), "--now", NOW, "--target", "3"]);
    let op = v["operations"].as_array().unwrap().iter().find(|o| o["kind"] == "upload-status").unwrap().clone();
    assert!(op.get("condition").is_none(), "{op}");
}

#[test]
fn proxy_entries_expire() {
    let tree = root("trees/proxy");
    let (_, v) = redacted_json(&["writes", &tree, "--now", NOW]);
    assert_eq!(v["proxy"]["entries"], 4);
    assert_eq!(v["proxy"]["expired"], 0);
    assert!(v["operations"].as_array().unwrap().iter().any(|o| o["kind"] == "proxy-miss"));
    // A week later everything has expired.
    let (code, v) = redacted_json(&["writes", &tree, "--now", "2026-12-07T00:00:00Z"]);
    assert_eq!(code, 1);
    assert_eq!(v["proxy"]["expired"], 4);
    let expiry: Vec<&serde_json::Value> =
        v["operations"].as_array().unwrap().iter().filter(|o| o["kind"] == "proxy-expiry").collect();
    let manifest = expiry.iter().find(|o| o["reference"].as_str().unwrap().starts_with("sha256:42c9")).unwrap();
    assert!(manifest["writes"].as_array().unwrap().iter().any(|w| w["path"]
        == format!("{V2}/repositories/app/_manifests/revisions/sha256/42c9bca4f7b5c363565619d14477ea7d65d3d0c97ead6ec16cbab76b6de4e4e8/link")));
    let blob = expiry.iter().find(|o| o["reference"].as_str().unwrap().starts_with("sha256:45ed")).unwrap();
    assert!(blob["writes"].as_array().unwrap().iter().any(|w| w["path"]
        == format!("{V2}/blobs/sha256/45/45eda0bf87a676d4b2c3c855d5566f1a4fbc3daaae0dc17523baa54afdbdf881")
        && w["action"] == "delete"));
    let run = regaudit(&["writes", &tree, "--now", "2026-12-07T00:00:00Z"]);
    assert!(run.stdout.contains("Every miss writes"), "{}", run.stdout);
    insta::assert_json_snapshot!("writes_proxy_expired_json", v);
}

#[test]
fn bad_options_exit_2() {
    let tree = root("trees/minimal");
    for args in [
        vec!["writes", &tree, "--purge-age", "week"],
        vec!["writes", &tree, "--purge-age", "-1h"],
        vec!["writes", &tree, "--purge-age", ""],
        vec!["writes", &tree, "--now", "yesterday"],
        vec!["writes", "/nonexistent/regaudit"],
    ] {
        let run = regaudit(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stdout);
        assert!(run.stderr.contains("regaudit:") || run.stderr.contains("error"), "{}", run.stderr);
    }
    for ok in ["168h", "30m", "7d", "1h30m"] {
        assert_eq!(regaudit(&["writes", &tree, "--purge-age", ok]).code, 1, "{ok}");
    }
}

#[test]
fn a_directory_where_the_empty_tar_link_belongs_stops_the_conversion() {
    let dir = scratch("trees/full");
    let link = dir.path().join(V2).join(
        "repositories/base/schema2/_layers/sha256/a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4/link",
    );
    std::fs::create_dir_all(&link).unwrap();
    let (_, v) = json(&["writes", dir.path().to_str().unwrap(), "--now", NOW]);
    let ops: Vec<&serde_json::Value> = v["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "manifest-get-schema1" && o["repository"] == "base/schema2")
        .collect();
    assert!(!ops.is_empty());
    for op in ops {
        assert_eq!(op["status"], 400, "{op}");
        assert!(op["writes"].as_array().unwrap().is_empty(), "{op}");
        assert!(op["reason"].as_str().unwrap().contains("link is a directory"), "{op}");
    }
    // Other repositories still link the empty tar.
    let mut others = v["operations"].as_array().unwrap().iter().filter(|o| o["repository"] == "copies/alpine");
    assert!(others.any(|o| !o["writes"].as_array().unwrap().is_empty()));
}
