//! `regaudit tags` and `regaudit inspect` on trees made by the real registry
//! and on hand-broken variants.

mod common;

use common::*;

fn redacted_json(args: &[&str]) -> (i32, serde_json::Value) {
    let (code, mut v) = json(args);
    v["root"] = "[root]".into();
    (code, v)
}

#[test]
fn tags_text_on_the_full_tree() {
    let root = testdata("trees/full");
    let run = regaudit(&["tags", root.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("tags_full_text", run.stdout);
}

#[test]
fn tags_json_on_the_full_tree() {
    let root = testdata("trees/full");
    let (code, v) = redacted_json(&["tags", root.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(v["schema_version"], 1);
    let tags = v["tags"].as_array().unwrap();
    assert!(!tags.is_empty());
    for t in tags {
        for field in ["repository", "tag", "digest", "served", "intact", "kind", "platforms", "size", "history"] {
            assert!(t.get(field).is_some(), "missing {field} in {t}");
        }
    }
    insta::assert_json_snapshot!("tags_full_json", v);
}

#[test]
fn tags_target_3_refuses_schema1() {
    let root = testdata("trees/full");
    let (code, v) = json(&["tags", root.to_str().unwrap(), "legacy/s1", "--target", "3"]);
    assert_eq!(code, 1);
    let t = &v["tags"][0];
    assert_eq!(t["served"], false);
    assert!(t["not_served"][0].as_str().unwrap().contains("500"), "{t}");
}

#[test]
fn root_can_be_any_level_down_to_v2() {
    let root = testdata("trees/minimal");
    for sub in ["", "docker", "docker/registry", "docker/registry/v2"] {
        let p = root.join(sub);
        let run = regaudit(&["tags", p.to_str().unwrap()]);
        assert_eq!(run.code, 0, "{sub}: {}", run.stderr);
        assert!(run.stdout.contains("app "), "{sub}: {}", run.stdout);
    }
}

#[test]
fn not_a_registry_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let run = regaudit(&["tags", dir.path().to_str().unwrap()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("is not a registry storage tree"), "{}", run.stderr);
    let run = regaudit(&["tags", "/nonexistent/regaudit"]);
    assert_eq!(run.code, 2);
    let run = regaudit(&["tags"]);
    assert_eq!(run.code, 2);
    let run = regaudit(&["tags", testdata("trees/minimal").to_str().unwrap(), "no/such/repo"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no repository no/such/repo"), "{}", run.stderr);
}

#[test]
fn inspect_tag_text_and_json() {
    let root = testdata("trees/full");
    let root = root.to_str().unwrap();
    for reference in
        ["base/schema2:v1", "multi/oci-index:latest", "multi/docker-list:latest", "legacy/s1:old", "oci/artifact:base"]
    {
        let run = regaudit(&["inspect", root, reference]);
        assert_eq!(run.code, 0, "{reference}: {}{}", run.stdout, run.stderr);
        insta::assert_snapshot!(format!("inspect_{}", reference.replace(['/', ':'], "_")), run.stdout);
    }
    let (code, v) = redacted_json(&["inspect", root, "multi/oci-index:latest"]);
    assert_eq!(code, 0);
    insta::assert_json_snapshot!("inspect_oci_index_json", v);
}

#[test]
fn inspect_shows_tag_history() {
    let root = testdata("trees/full");
    let (_, v) = json(&["inspect", root.to_str().unwrap(), "base/schema2:v1"]);
    assert_eq!(v["history"].as_array().unwrap().len(), 1, "{v}");
}

#[test]
fn inspect_by_digest_and_bad_references() {
    let root = testdata("trees/full");
    let root = root.to_str().unwrap();
    let (_, v) = json(&["tags", root, "multi/oci-index"]);
    let digest = v["tags"][0]["digest"].as_str().unwrap().to_string();
    let (code, v) = json(&["inspect", root, &format!("multi/oci-index@{digest}")]);
    assert_eq!(code, 0);
    assert_eq!(v["served"], true);
    assert_eq!(v["tree"]["children"].as_array().unwrap().len(), 2);
    assert_eq!(regaudit(&["inspect", root, "multi/oci-index"]).code, 2);
    assert_eq!(regaudit(&["inspect", root, "multi/oci-index:nope"]).code, 2);
    assert_eq!(regaudit(&["inspect", root, "nope:latest"]).code, 2);
}

/// Every hand-broken variant yields its problem code, exit 1, and no panic.
#[test]
fn broken_variants_report_their_problem() {
    let expected = [
        ("alias-link", "link-alias"),
        ("blob-misplaced", "blob-misplaced"),
        ("config-not-linked", "config-not-linked"),
        ("dangling-tag", "tag-dangling"),
        ("index-child-missing", "child-missing"),
        ("layer-missing-data", "layer-missing"),
        ("layer-not-linked", "layer-not-linked"),
        ("manifest-unknown-type", "manifest-unknown-type"),
        ("manifest-unparseable", "manifest-unparseable"),
        ("manifests-only-repo", "repository-not-in-catalog"),
        ("revision-link-empty", "link-invalid"),
        ("revision-missing-data", "revision-missing-data"),
        ("schema1-signatures", "signature-link"),
        ("stray-files", "unexpected-entry"),
        ("symlink", "symlink"),
        ("tag-link-newline", "link-invalid"),
        ("tag-link-uppercase", "link-invalid"),
        ("revision-link-uppercase", "link-invalid"),
        ("upload-no-startedat", "upload-without-started-at"),
        ("uppercase-repo", "repository-name-invalid"),
    ];
    let variants: Vec<String> = std::fs::read_dir(testdata("broken"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for (variant, _) in expected {
        assert!(variants.iter().any(|v| v == variant), "testdata/broken/{variant} is missing");
    }
    for (variant, code) in expected {
        let root = testdata(&format!("broken/{variant}"));
        let (exit, v) = redacted_json(&["tags", root.to_str().unwrap()]);
        let codes: Vec<&str> = v["problems"].as_array().unwrap().iter().map(|p| p["code"].as_str().unwrap()).collect();
        assert!(codes.contains(&code), "{variant}: expected {code}, got {codes:?}");
        let info_only = v["problems"].as_array().unwrap().iter().all(|p| p["severity"] == "info");
        let all_served = v["tags"].as_array().unwrap().iter().all(|t| t["served"] == true);
        // A tag served or not only by what is not modelled (a symlink) is unknown: exit 2.
        let unknown = v["tags"].as_array().unwrap().iter().any(|t| t["served_unknown"] == true);
        let want = if unknown {
            2
        } else if info_only && all_served {
            0
        } else {
            1
        };
        assert_eq!(exit, want, "{variant}");
        let text = regaudit(&["tags", root.to_str().unwrap()]);
        insta::assert_snapshot!(format!("broken_{variant}"), text.stdout);
    }
}

/// Git cannot keep an empty directory, so this variant is built here: a tag
/// directory with nothing in it. The real registry lists the tag and answers
/// 404 to its GET; regaudit reports `tag-empty` and the tag as not served.
#[test]
fn empty_tag_directory() {
    let dir = scratch("trees/minimal");
    std::fs::create_dir_all(dir.path().join(V2).join("repositories/app/_manifests/tags/ghost")).unwrap();
    let root = dir.path().to_str().unwrap();
    let (exit, v) = json(&["tags", root]);
    assert_eq!(exit, 1);
    let ghost = v["tags"].as_array().unwrap().iter().find(|t| t["tag"] == "ghost").expect("ghost is listed");
    assert_eq!(ghost["served"], false);
    assert!(ghost["digest"].is_null());
    assert!(ghost["not_served"][0].as_str().unwrap().contains("404"), "{ghost}");
    assert!(v["problems"].as_array().unwrap().iter().any(|p| p["code"] == "tag-empty"));

    if !common::registry::require() {
        return;
    }
    let reg = common::registry::Registry::serve(dir.path());
    let list = reg.request("GET", "/v2/app/tags/list", &[]);
    assert!(String::from_utf8_lossy(&list.body).contains("\"ghost\""), "2.8 lists the empty tag directory");
    assert_eq!(reg.request("GET", "/v2/app/manifests/ghost", &[]).status, 404);
}

/// A reader that stops early (`regaudit tags … | head`) ends the run quietly,
/// as with other Unix tools, instead of an error and exit 2.
#[test]
fn closed_stdout_is_not_an_error() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let dir = scratch("trees/minimal");
    let tags = dir.path().join(V2).join("repositories/app/_manifests/tags");
    let current = std::fs::read(tags.join("v1/current/link")).unwrap();
    // Enough tags that the output overflows the pipe's buffer.
    for i in 0..2000 {
        let link = tags.join(format!("t{i}/current"));
        std::fs::create_dir_all(&link).unwrap();
        std::fs::write(link.join("link"), &current).unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_regaudit"))
        .args(["tags", dir.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The pipe's read end is dropped here.
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}
