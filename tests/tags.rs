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

/// An index's `created` is the newest of its images' times compared as
/// instants: "10:00+09:00" is earlier than "05:00Z" although it sorts after
/// it as text. A time Go cannot read among several makes it unknown (null).
#[test]
fn index_created_compares_instants_across_offsets() {
    use sha2::{Digest as _, Sha256};
    fn build(times: [&str; 2]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let v2 = dir.path().join(common::V2);
        let repo = v2.join("repositories/app");
        let put = |bytes: &[u8]| {
            let hex = hex::encode(Sha256::digest(bytes));
            let blob = v2.join(format!("blobs/sha256/{}/{hex}", &hex[..2]));
            std::fs::create_dir_all(&blob).unwrap();
            std::fs::write(blob.join("data"), bytes).unwrap();
            (format!("sha256:{hex}"), bytes.len())
        };
        let link = |rel: String, d: &str| {
            let path = repo.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, d).unwrap();
        };
        let mut children = Vec::new();
        for (arch, created) in ["amd64", "arm64"].into_iter().zip(times) {
            let config = format!(
                r#"{{"architecture":"{arch}","os":"linux","created":"{created}","rootfs":{{"type":"layers","diff_ids":[]}}}}"#
            );
            let (config_digest, config_size) = put(config.as_bytes());
            link(format!("_layers/sha256/{}/link", &config_digest[7..]), &config_digest);
            let manifest = format!(
                r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{config_size}}},"layers":[]}}"#
            );
            let (d, size) = put(manifest.as_bytes());
            link(format!("_manifests/revisions/sha256/{}/link", &d[7..]), &d);
            children.push(format!(
                r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{d}","size":{size},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#
            ));
        }
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#,
            children.join(",")
        );
        let (d, _) = put(index.as_bytes());
        link(format!("_manifests/revisions/sha256/{}/link", &d[7..]), &d);
        link("_manifests/tags/multi/current/link".to_string(), &d);
        link(format!("_manifests/tags/multi/index/sha256/{}/link", &d[7..]), &d);
        dir
    }
    let created = |times| {
        let tree = build(times);
        let (_, v) = json(&["tags", tree.path().to_str().unwrap()]);
        assert_eq!(v["tags"][0]["kind"], "oci-index", "{v}");
        v["tags"][0]["created"].clone()
    };
    assert_eq!(created(["2024-01-01T10:00:00+09:00", "2024-01-01T05:00:00Z"]), "2024-01-01T05:00:00Z");
    assert_eq!(created(["2024-01-01T05:00:00Z", "2024-01-01T10:00:00+09:00"]), "2024-01-01T05:00:00Z");
    assert_eq!(created(["2024-01-01T05:00:00Z", "yesterday"]), serde_json::Value::Null);
}

/// A tag counts the OCI referrers whose subject is its manifest (the full
/// tree holds one, an artifact referring to oci/artifact:base).
#[test]
fn tags_count_their_referrers() {
    let (_, v) = json(&["tags", testdata("trees/full").to_str().unwrap()]);
    let counts: Vec<(String, u64)> = v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["referrers"].as_u64().unwrap() > 0)
        .map(|t| {
            (
                format!("{}:{}", t["repository"].as_str().unwrap(), t["tag"].as_str().unwrap()),
                t["referrers"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, [("oci/artifact:base".to_string(), 1)]);
    let text = regaudit(&["tags", testdata("trees/full").to_str().unwrap()]).stdout;
    assert!(text.lines().next().unwrap().ends_with("REFERRERS"), "{text}");
    let minimal = regaudit(&["tags", testdata("trees/minimal").to_str().unwrap()]).stdout;
    assert!(!minimal.contains("REFERRERS"), "the column only when a tag has referrers: {minimal}");
}
