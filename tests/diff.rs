//! `regaudit diff` between trees: identical copies, a tree before and after
//! the real registry changed it, and copies corrupted by hand.

mod common;

use common::registry;

use std::process::Command;

use common::*;
use registry::Registry;

fn redacted(args: &[&str]) -> (i32, serde_json::Value) {
    let (code, mut v) = json(args);
    v["root"] = "[a]".into();
    v["root_b"] = "[b]".into();
    (code, v)
}

#[test]
fn identical_trees_have_no_differences() {
    let a = testdata("trees/full");
    let b = scratch("trees/full");
    let run = regaudit(&["diff", a.to_str().unwrap(), b.path().to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("No differences (blobs in both were hashed)."), "{}", run.stdout);
    let (code, v) = json(&["diff", a.to_str().unwrap(), b.path().to_str().unwrap()]);
    assert_eq!((code, &v["identical"]), (0, &serde_json::Value::Bool(true)));
}

#[test]
fn minimal_against_minimal_multi() {
    let a = testdata("trees/minimal");
    let b = testdata("trees/minimal-multi");
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let run = regaudit(&["diff", a, b]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!("diff_minimal_multi_text", run.stdout.replace(a, "[a]").replace(b, "[b]"));
    let (code, v) = redacted(&["diff", a, b]);
    assert_eq!(code, 1);
    insta::assert_json_snapshot!("diff_minimal_multi_json", v);
    // The other way round, additions become removals.
    let (_, r) = redacted(&["diff", b, a]);
    assert_eq!(r["blobs"]["removed_bytes"], v["blobs"]["added_bytes"]);
    assert_eq!(r["tags"]["removed"].as_array().unwrap().len(), 1);
}

fn skopeo(args: &[&str]) {
    let out = Command::new("skopeo").args(args).output().expect("run skopeo");
    assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn what_the_real_registry_changed() {
    if !registry::require() {
        return;
    }
    let a = testdata("trees/minimal-multi");
    let (_dir, b) = registry::scratch_copy(&a);
    let multi = "sha256:88bf6b5ec651cd9a45f9f5af6f9f0ac52cb2060961dba50ed981b4240b285c62";
    let child = "sha256:7af3ce31ac55f9978e9045b0bdd085373cecdb45f846375e043b9ba230a40a36";
    let upload;
    {
        let reg = Registry::serve(&b);
        let url = |r: &str| format!("docker://127.0.0.1:{}/{r}", reg.port);
        let tls = ["--src-tls-verify=false", "--dest-tls-verify=false", "--all", "--preserve-digests"];
        // Move v1 to the list; copy the list into a new repository.
        skopeo(&[&["copy"][..], &tls, &[&url("app:multi"), &url("app:v1")]].concat());
        skopeo(&[&["copy"][..], &tls, &[&url("app:multi"), &url("other/app:1")]].concat());
        let r = reg.request("POST", "/v2/app/blobs/uploads/", &[("Content-Length", "0")]);
        assert_eq!(r.status, 202);
        upload = r.header("docker-upload-uuid").unwrap().to_string();
        let r = reg.request("DELETE", &format!("/v2/other/app/manifests/{child}"), &[]);
        assert_eq!(r.status, 202);
    }
    let (code, v) = json(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(v["repositories"]["added"], serde_json::json!(["other/app"]));
    assert_eq!(v["tags"]["added"], serde_json::json!([{"repository": "other/app", "tag": "1", "digest": multi}]));
    assert_eq!(
        v["tags"]["moved"],
        serde_json::json!([{"repository": "app", "tag": "v1",
            "old": "sha256:42c9bca4f7b5c363565619d14477ea7d65d3d0c97ead6ec16cbab76b6de4e4e8", "new": multi}])
    );
    assert_eq!(v["tag_history"]["added"], serde_json::json!([{"repository": "app", "tag": "v1", "digest": multi}]));
    // The list and one child arrived in other/app; the other child was deleted there again.
    let added: Vec<(&str, &str)> = v["manifests"]["added"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["repository"].as_str().unwrap(), m["digest"].as_str().unwrap()))
        .collect();
    assert_eq!(added.len(), 2, "{added:?}");
    assert!(added.iter().all(|(r, d)| *r == "other/app" && *d != child), "{added:?}");
    assert_eq!(v["manifests"]["removed"], serde_json::json!([]));
    // Content-addressed: nothing new was stored, nothing was removed.
    assert_eq!(v["blobs"]["added"], serde_json::json!([]));
    assert_eq!(v["blobs"]["removed"], serde_json::json!([]));
    let uploads = v["uploads"]["added"].as_array().unwrap();
    assert_eq!(uploads.len(), 1);
    assert_eq!((uploads[0]["repository"].as_str(), uploads[0]["uuid"].as_str()), (Some("app"), Some(upload.as_str())));
    assert_eq!(v["content_differs"], serde_json::json!([]));
}

#[test]
fn a_copy_corrupted_under_the_same_digest() {
    let a = testdata("trees/full");
    let b = scratch("trees/full");
    let blobs = b.path().join(V2).join("blobs/sha256");
    // Same size, one byte flipped: only hashing finds it.
    let flipped = "45eda0bf87a676d4b2c3c855d5566f1a4fbc3daaae0dc17523baa54afdbdf881";
    let path = blobs.join(&flipped[..2]).join(flipped).join("data");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[20] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    // Truncated: the sizes already differ.
    let truncated = "cc3eb5adf75a6de6e11d150a9078ccc42535176bd28535b4ab7a5f2da4a95fda";
    let path = blobs.join(&truncated[..2]).join(truncated).join("data");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    let (a, b) = (a.to_str().unwrap(), b.path().to_str().unwrap());
    let (code, v) = redacted(&["diff", a, b]);
    assert_eq!(code, 1);
    insta::assert_json_snapshot!("diff_corrupt_content", v["content_differs"]);
    let found: Vec<&str> =
        v["content_differs"].as_array().unwrap().iter().map(|c| c["digest"].as_str().unwrap()).collect();
    assert_eq!(found, [format!("sha256:{flipped}"), format!("sha256:{truncated}")]);
    assert_eq!(v["content_differs"][0]["a_intact"], true);
    assert_eq!(v["content_differs"][0]["b_intact"], false);
    let (code, v) = redacted(&["diff", a, b, "--no-content"]);
    assert_eq!(code, 1);
    let found: Vec<&str> =
        v["content_differs"].as_array().unwrap().iter().map(|c| c["digest"].as_str().unwrap()).collect();
    assert_eq!(found, [format!("sha256:{truncated}")]);
    let run = regaudit(&["diff", a, b]);
    insta::assert_snapshot!("diff_corrupt_text", run.stdout.replace(a, "[a]").replace(b, "[b]"));
}
