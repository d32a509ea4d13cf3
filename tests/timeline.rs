//! `regaudit timeline` on scratch copies of testdata trees whose mtimes the
//! test sets with `touch -d` (git keeps none), the bodyfile fed to the real
//! `mactime` (The Sleuth Kit), and the meaning of a tag link's time checked
//! against the real registry.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::registry::{self, Registry};
use common::{json, regaudit, scratch, V2};

/// Sets the mtime of every entry below `root` matched by `find` `pattern`
/// (a `-path` glob relative to the tree) to `when` (`touch -d` syntax).
fn touch(root: &Path, pattern: &str, when: &str) {
    let ok = Command::new("find")
        .arg(".")
        .args(["-path", pattern, "-exec", "touch", "-h", "-m", "-d", when, "{}", "+"])
        .current_dir(root)
        .status()
        .expect("run find/touch");
    assert!(ok.success(), "touch {pattern}");
}

/// minimal-multi with one time per kind of file, all in 2024: blobs, then
/// `_layers` links, revisions, tag index links, current links; `v1` set an
/// hour after `multi`.
fn fixed_tree() -> tempfile::TempDir {
    let dir = scratch("trees/minimal-multi");
    let root = dir.path();
    touch(root, "*", "2024-01-01T09:00:00Z");
    touch(root, "*/blobs/*/data", "2024-03-01T10:00:00Z");
    touch(root, "*/_layers/*/link", "2024-03-01T10:01:00Z");
    touch(root, "*/_manifests/revisions/*/link", "2024-03-01T10:02:00.250Z");
    touch(root, "*/tags/multi/index/*/link", "2024-03-01T10:03:00Z");
    touch(root, "*/tags/multi/current/link", "2024-03-01T10:03:00Z");
    touch(root, "*/tags/v1/index/*/link", "2024-03-01T11:03:00Z");
    touch(root, "*/tags/v1/current/link", "2024-03-01T11:03:00Z");
    dir
}

/// Birth times are the copy's (now), after every mtime above: `--until`
/// leaves them out, so the output does not depend on the filesystem.
const UNTIL: &str = "2025-01-01";

#[test]
fn text_in_utc() {
    let dir = fixed_tree();
    let root = dir.path().to_str().unwrap();
    let run = regaudit(&["timeline", root, "--utc", "--until", UNTIL]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("timeline_minimal_multi_text", run.stdout);
}

#[test]
fn json_document() {
    let dir = fixed_tree();
    let root = dir.path().to_str().unwrap();
    let (code, mut v) = json(&["timeline", root, "--until", UNTIL]);
    assert_eq!(code, 0);
    v["root"] = "[root]".into();
    insta::assert_json_snapshot!("timeline_minimal_multi_json", v);
    // Oldest first; a tag's current target is apart from its events.
    let times: Vec<&str> = v["events"].as_array().unwrap().iter().map(|e| e["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(v["tags"][1]["tag"], "v1");
    assert_eq!(v["tags"][1]["set_at"], "2024-03-01T11:03:00.000000000Z");
}

/// Inode, atime, ctime and crtime are the copy's; uid and gid whoever runs the test.
fn redact_bodyfile(text: &str) -> String {
    text.lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split('|').collect();
            assert_eq!(f.len(), 11, "{l}");
            for i in [2, 4, 5, 7, 9, 10] {
                f[i] = "_";
            }
            f.join("|") + "\n"
        })
        .collect()
}

#[test]
fn bodyfile() {
    let dir = fixed_tree();
    let root = dir.path().to_str().unwrap();
    let run = regaudit(&["timeline", root, "--format", "bodyfile"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!("timeline_minimal_multi_bodyfile", redact_bodyfile(&run.stdout));
    // The real times of each file, as stat sees them.
    for line in run.stdout.lines() {
        let f: Vec<&str> = line.split('|').collect();
        let path = f[1].rsplit_once(" (").unwrap().1.trim_end_matches(')');
        let m = std::fs::symlink_metadata(dir.path().join(path)).unwrap();
        assert_eq!(f[2], m.ino().to_string(), "{line}");
        assert_eq!(f[6], m.size().to_string(), "{line}");
        assert_eq!(f[8], m.mtime().to_string(), "{line}");
        assert_eq!(f[9], m.ctime().to_string(), "{line}");
    }
}

/// `mactime -d` rows: (date, size, type, name).
fn mactime(body: &Path) -> Vec<(String, String, String, String)> {
    let out = Command::new("mactime")
        .args(["-b", body.to_str().unwrap(), "-d", "-y", "-z", "UTC"])
        .output()
        .expect("run mactime (scripts/test installs sleuthkit)");
    assert!(out.status.success(), "mactime: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut rows = Vec::new();
    for line in text.lines().skip(1) {
        // Date,Size,Type,Mode,UID,GID,Meta,"File Name": the name is last and quoted.
        let (head, name) = line.split_once(",\"").unwrap();
        let f: Vec<&str> = head.split(',').collect();
        rows.push((f[0].to_string(), f[1].to_string(), f[2].to_string(), name.trim_end_matches('"').to_string()));
    }
    rows
}

#[test]
fn mactime_reads_the_bodyfile() {
    let dir = scratch("trees/full");
    let root = dir.path();
    touch(root, "*", "2024-01-01T09:00:00Z");
    touch(root, "*/base/schema2/_manifests/tags/v1/index/*/link", "2024-02-02T02:02:02Z");
    let body_dir = tempfile::tempdir().unwrap();
    let body = body_dir.path().join("body.txt");
    let run = regaudit(&["timeline", root.to_str().unwrap(), "--format", "bodyfile"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::write(&body, &run.stdout).unwrap();
    let rows = mactime(&body);
    // Every mtime event of the JSON timeline is a modified row of mactime, at its second, by its name.
    let (_, v) = json(&["timeline", root.to_str().unwrap()]);
    let mut modified: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (date, _, kind, name) in &rows {
        if kind.starts_with('m') {
            modified.entry(name.clone()).or_default().push(date.clone());
        }
    }
    let mut checked = 0;
    for e in v["events"].as_array().unwrap() {
        let path = e["path"].as_str().unwrap();
        let second = format!("{}Z", &e["time"].as_str().unwrap()[..19]);
        let dates: Vec<&String> =
            modified.iter().filter(|(name, _)| name.ends_with(&format!("({path})"))).flat_map(|(_, d)| d).collect();
        match e["source"].as_str().unwrap() {
            "mtime" | "startedat" => {
                assert!(dates.contains(&&second), "{path} at {second}: mactime has {dates:?}");
                checked += 1;
            }
            _ => {}
        }
    }
    assert!(checked > 100, "{checked}");
    // The tag's line, at the time the test set.
    let tag = rows
        .iter()
        .find(|r| r.0 == "2024-02-02T02:02:02Z" && r.3.starts_with("tag base/schema2:v1 -> sha256:"))
        .unwrap_or_else(|| panic!("no tag row in {rows:?}"));
    assert!(tag.2.starts_with('m'), "{tag:?}");
    // startedat's own time, as written by the registry that made the tree.
    assert!(rows.iter().any(|r| r.0 == "2026-11-29T11:41:03Z" && r.3.contains("startedat content: upload started")));
}

#[test]
fn filters() {
    let dir = fixed_tree();
    let root = dir.path().to_str().unwrap();
    let (_, v) = json(&["timeline", root, "--since", "2024-03-01T10:02:00Z", "--until", "2024-03-01T10:03:00Z"]);
    let kinds: Vec<&str> = v["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "manifest-written").count(), 4, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "tag-set").count(), 1, "{kinds:?}");
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    assert_eq!(v["filters"]["since"], "2024-03-01T10:02:00.000000000Z");
    // No repository matches: no tags, no events, not even blobs.
    let (_, v) = json(&["timeline", root, "--repo", "nope*"]);
    assert_eq!(v["events"], serde_json::json!([]));
    assert_eq!(v["tags"], serde_json::json!([]));
    let (_, v) = json(&["timeline", root, "--repo", "a?p", "--until", UNTIL]);
    assert_eq!(v["tags"].as_array().unwrap().len(), 2);
    assert!(v["events"].as_array().unwrap().iter().any(|e| e["kind"] == "blob-written"));
    for bad in [&["--since", "yesterday"][..], &["--until", "2024-13-01"], &["--repo", "[a"]] {
        let mut args = vec!["timeline", root];
        args.extend_from_slice(bad);
        let run = regaudit(&args);
        assert_eq!(run.code, 2, "{bad:?}");
        assert!(run.stderr.starts_with("regaudit: invalid"), "{}", run.stderr);
    }
    assert_eq!(regaudit(&["tags", root, "--format", "bodyfile"]).code, 2);
}

#[test]
fn uploads_startedat_and_its_mtime() {
    let dir = scratch("trees/full");
    let root = dir.path();
    let uploads = format!("{V2}/repositories/uploads/pending/_uploads");
    // One startedat file written when it says, the other touched later.
    touch(root, "*/50db9b6a-*/startedat", "2026-11-29T11:41:03Z");
    touch(root, "*/64ebca46-*/startedat", "2026-11-30T00:00:00Z");
    touch(root, "*/64ebca46-*/data", "2026-11-29T11:42:00Z");
    touch(root, "*/64ebca46-*/hashstates/sha256/39", "2026-11-29T11:42:00Z");
    let (_, v) = json(&["timeline", root.to_str().unwrap(), "--repo", "uploads/*"]);
    let events: Vec<(String, String, String)> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] != "birth")
        .filter_map(|e| {
            let path = e["path"].as_str().unwrap().strip_prefix(&uploads)?.to_string();
            Some((e["time"].as_str().unwrap().to_string(), e["source"].as_str().unwrap().to_string(), path))
        })
        .collect();
    let has = |t: &str, s: &str, p: &str| events.iter().any(|e| e.0 == t && e.1 == s && e.2.ends_with(p));
    assert!(has("2026-11-29T11:41:03.000000000Z", "startedat", "/50db9b6a-a630-46ed-9259-606d846f47f4/startedat"));
    assert!(!events.iter().any(|e| e.1 == "mtime" && e.2.ends_with("50db9b6a-a630-46ed-9259-606d846f47f4/startedat")));
    assert!(has("2026-11-29T11:41:03.000000000Z", "startedat", "/64ebca46-afbe-4e93-9761-95216c3e8d7f/startedat"));
    assert!(has("2026-11-30T00:00:00.000000000Z", "mtime", "/64ebca46-afbe-4e93-9761-95216c3e8d7f/startedat"));
    assert!(has("2026-11-29T11:42:00.000000000Z", "mtime", "/64ebca46-afbe-4e93-9761-95216c3e8d7f/data"));
    let hashstate = v["events"].as_array().unwrap().iter().find(|e| e["kind"] == "upload-hash-state").unwrap();
    assert!(hashstate["description"].as_str().unwrap().ends_with("hash state at byte 39 last saved"), "{hashstate}");
}

fn skopeo(args: &[&str]) {
    let out = Command::new("skopeo").args(args).output().expect("run skopeo");
    assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The real registry rewrites a tag's index link in place each time the tag
/// is set to that digest: the mtime moves to the last time, the inode (and
/// birth time) stay. Untouched links keep their time.
#[test]
fn a_tag_link_time_is_the_last_time_the_real_registry_set_it() {
    if !registry::require() {
        return;
    }
    let (_dir, root) = registry::scratch_copy(&common::testdata("trees/minimal-multi"));
    touch(&root, "*", "2024-01-01T09:00:00Z");
    let index = root.join(format!(
        "{V2}/repositories/app/_manifests/tags/multi/index/sha256/\
         88bf6b5ec651cd9a45f9f5af6f9f0ac52cb2060961dba50ed981b4240b285c62/link"
    ));
    let inode = std::fs::metadata(&index).unwrap().ino();
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);
    {
        let reg = Registry::serve(&root);
        let url = |r: &str| format!("docker://127.0.0.1:{}/{r}", reg.port);
        let tls = ["--src-tls-verify=false", "--dest-tls-verify=false", "--all", "--preserve-digests"];
        // Set `multi` again to the digest it already has, and `copy` to it anew.
        skopeo(&[&["copy"][..], &tls, &[&url("app:multi"), &url("app:multi")]].concat());
        skopeo(&[&["copy"][..], &tls, &[&url("app:multi"), &url("app:copy")]].concat());
    }
    let after = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(std::fs::metadata(&index).unwrap().ino(), inode, "rewritten in place");
    let (_, v) = json(&["timeline", root.to_str().unwrap()]);
    let recent = |e: &serde_json::Value| {
        let t = chrono::DateTime::parse_from_rfc3339(e["time"].as_str().unwrap()).unwrap();
        t >= before && t <= after
    };
    let tag_set: Vec<&serde_json::Value> =
        v["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "tag-set" && e["source"] == "mtime").collect();
    for e in &tag_set {
        let expect_recent = e["tag"] != "v1";
        assert_eq!(recent(e), expect_recent, "{e}");
        if e["tag"] == "multi" {
            assert!(e["description"].as_str().unwrap().contains("last set to sha256:88bf6b5e"), "{e}");
        }
    }
    assert_eq!(tag_set.len(), 3, "{tag_set:?}");
    // The current links say where each tag points now, and since when.
    let tags = v["tags"].as_array().unwrap();
    let copy = tags.iter().find(|t| t["tag"] == "copy").unwrap();
    assert_eq!(copy["digest"], "sha256:88bf6b5ec651cd9a45f9f5af6f9f0ac52cb2060961dba50ed981b4240b285c62");
    let set_at = chrono::DateTime::parse_from_rfc3339(copy["set_at"].as_str().unwrap()).unwrap();
    assert!(set_at >= before && set_at <= after);
    let v1 = tags.iter().find(|t| t["tag"] == "v1").unwrap();
    assert_eq!(v1["set_at"], "2024-01-01T09:00:00.000000000Z");
}
