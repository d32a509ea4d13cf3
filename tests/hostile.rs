//! Hostile trees: each defect gets a clear problem, never a panic, a hang
//! or unbounded memory. Trees are made at runtime from `trees/minimal`, and
//! every command runs on each (with a time limit and its peak RSS measured).

mod common;

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::registry::require_root;
use common::scratch;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_regaudit");
/// The image manifest of `app:v1` in `trees/minimal`.
const MANIFEST: &str = "sha256:42c9bca4f7b5c363565619d14477ea7d65d3d0c97ead6ec16cbab76b6de4e4e8";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Peak RSS any command may reach on these small trees, hostile or not.
const RSS_LIMIT_KIB: u64 = 150 * 1024;
/// A manifest of 4 MiB (the limit) made of tiny JSON values decodes into
/// about 25 times its size; `diff` decodes two trees at once.
const DENSE_RSS_LIMIT_KIB: u64 = 256 * 1024;

struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn minimal() -> Tree {
        Tree { dir: scratch("trees/minimal") }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn v2(&self) -> PathBuf {
        self.root().join("docker/registry/v2")
    }

    fn app(&self) -> PathBuf {
        self.v2().join("repositories/app")
    }

    /// Stores `bytes` as a blob; returns its digest.
    fn put_blob(&self, bytes: &[u8]) -> String {
        let hex = hex::encode(Sha256::digest(bytes));
        let dir = self.v2().join(format!("blobs/sha256/{}/{hex}", &hex[..2]));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("data"), bytes).unwrap();
        format!("sha256:{hex}")
    }

    fn write(&self, rel: impl AsRef<Path>, bytes: &[u8]) {
        let path = self.app().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }

    /// Stores a manifest, links it as a revision of `app`, and tags it.
    fn push_manifest(&self, bytes: &[u8], tag: Option<&str>) -> String {
        let d = self.put_blob(bytes);
        let hex = &d["sha256:".len()..];
        self.write(format!("_manifests/revisions/sha256/{hex}/link"), d.as_bytes());
        if let Some(tag) = tag {
            self.write(format!("_manifests/tags/{tag}/current/link"), d.as_bytes());
            self.write(format!("_manifests/tags/{tag}/index/sha256/{hex}/link"), d.as_bytes());
        }
        d
    }
}

fn index(children: &[&str]) -> Vec<u8> {
    let manifests: Vec<Value> = children
        .iter()
        .map(|d| json!({"mediaType": INDEX, "digest": d, "size": 1, "platform": {"architecture": "amd64", "os": "linux"}}))
        .collect();
    serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests})).unwrap()
}

struct Outcome {
    command: String,
    code: i32,
    json: Value,
    rss_kib: u64,
}

/// Runs one command with `--format json` under a time limit, measuring its
/// peak RSS; `as_nobody` runs it as uid 65534 (so permissions apply).
fn run(args: &[&str], as_nobody: bool) -> Outcome {
    let rss = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new("timeout");
    cmd.arg("120");
    cmd.arg("/usr/bin/time").arg("-f").arg("%M").arg("-o").arg(rss.path());
    if as_nobody {
        cmd.args(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]);
    }
    cmd.arg(BIN).args(args).args(["--format", "json", "--no-progress"]).env("NO_COLOR", "1");
    let out = cmd.output().unwrap();
    let command = args.join(" ");
    let code = out.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(code, 124, "`{command}` hung (killed after 120 s)");
    // time reports a signal death as "Command terminated by signal N".
    assert!(!stderr.contains("terminated by signal") && !stderr.contains("panicked"), "`{command}` crashed: {stderr}");
    let rss_kib: u64 = std::fs::read_to_string(rss.path())
        .unwrap()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no RSS for `{command}`: {stderr}"));
    // Exit 2 (could not run, e.g. the reference cannot be resolved) says why
    // on stderr instead of a report.
    let json = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(_) if code == 2 && stderr.starts_with("regaudit: ") => Value::Null,
        Err(e) => panic!("`{command}` exited {code} without JSON ({e}): {stderr}"),
    };
    Outcome { command, code, json, rss_kib }
}

/// Every command on `tree`; each must finish with a report (exit 0 or 1)
/// within the memory limit. Returns the outcomes, `scan` first.
fn run_all(tree: &Tree, as_nobody: bool) -> Vec<Outcome> {
    run_all_within(tree, as_nobody, RSS_LIMIT_KIB)
}

fn run_all_within(tree: &Tree, as_nobody: bool, rss_limit_kib: u64) -> Vec<Outcome> {
    let root = tree.root().to_str().unwrap();
    let dest = tempfile::tempdir().unwrap();
    if as_nobody {
        std::fs::set_permissions(dest.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let dest = dest.path().join("oci");
    let commands: Vec<Vec<&str>> = vec![
        vec!["scan", root, "--verify"],
        vec!["tags", root, "--verify"],
        vec!["inspect", root, "app:v1", "--verify"],
        vec!["verify", root],
        vec!["du", root],
        vec!["gc", root, "-m"],
        vec!["diff", root, root],
        vec!["export", root, "app:v1", dest.to_str().unwrap(), "--allow-partial"],
        vec!["timeline", root],
    ];
    let mut out = Vec::new();
    for args in commands {
        let o = run(&args, as_nobody);
        eprintln!("{}: exit {}, peak RSS {} KiB", o.command, o.code, o.rss_kib);
        // gc exits 2 with its report when a planted symlink makes it incomplete (issue 12).
        let incomplete = args[0] == "gc" && o.code == 2 && o.json["incomplete"] == true;
        // A tree cut by regaudit's own bounds (depth, node budget) is served
        // or not unknown: the report is there and the exit status is 2.
        let unknown = o.code == 2 && o.json.get("schema_version").is_some();
        let expect_report =
            (0..=1).contains(&o.code) || (args[0] == "inspect" || args[0] == "export") || incomplete || unknown;
        assert!(expect_report, "`{}` could not run (exit {}): {}", o.command, o.code, o.json);
        assert!(o.rss_kib < rss_limit_kib, "`{}` peaked at {} KiB", o.command, o.rss_kib);
        out.push(o);
    }
    out
}

/// The problems of a report as (code, path) pairs.
fn problems(v: &Value) -> Vec<(String, String)> {
    v["problems"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| (p["code"].as_str().unwrap_or("").to_string(), p["path"].as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

#[track_caller]
fn assert_problem(v: &Value, code: &str, path: &str) {
    let ps = problems(v);
    assert!(ps.iter().any(|(c, p)| c == code && p == path), "no {code} at {path} in {ps:#?}");
}

fn rel(tree: &Tree, path: &Path) -> String {
    path.strip_prefix(tree.root()).unwrap().to_string_lossy().into_owned()
}

#[test]
fn huge_manifest_and_huge_links_are_capped() {
    let tree = Tree::minimal();
    // 10 MiB of valid JSON whitespace after a valid manifest start.
    let mut huge =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#.to_vec();
    huge.resize(10 << 20, b' ');
    let d = tree.push_manifest(&huge, Some("huge"));
    // A 1 MiB link where a tag's current link belongs, and one for a layer.
    tree.write("_manifests/tags/big/current/link", &vec![b'a'; 1 << 20]);
    let layer = tree.app().join("_layers/sha256/45eda0bf87a676d4b2c3c855d5566f1a4fbc3daaae0dc17523baa54afdbdf881/link");
    std::fs::write(&layer, vec![b's'; 1 << 20]).unwrap();
    let outcomes = run_all(&tree, false);
    let scan = &outcomes[0].json;
    let hex = &d["sha256:".len()..];
    assert_problem(scan, "manifest-unparseable", &format!("docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]));
    let message = scan["problems"].as_array().unwrap().iter().find(|p| p["code"] == "manifest-unparseable").unwrap()
        ["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("4 MiB"), "{message}");
    assert_problem(scan, "link-invalid", "docker/registry/v2/repositories/app/_manifests/tags/big/current/link");
    assert_problem(scan, "link-invalid", &rel(&tree, &layer));
}

/// 4 MiB of tiny JSON values is within the manifest limit; decoding it must
/// not multiply into hundreds of MiB.
#[test]
fn dense_json_within_the_limit_stays_bounded() {
    let tree = Tree::minimal();
    let mut dense =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[],"x":["#.to_vec();
    while dense.len() < (4 << 20) - 16 {
        dense.extend_from_slice(b"[],");
    }
    dense.extend_from_slice(b"0]}");
    tree.push_manifest(&dense, Some("dense"));
    let mut deep = br#"{"schemaVersion":2,"x":"#.to_vec();
    deep.extend(std::iter::repeat_n(b'[', 100_000));
    tree.push_manifest(&deep, Some("deep-json"));
    let outcomes = run_all_within(&tree, false, DENSE_RSS_LIMIT_KIB);
    let scan = &outcomes[0].json;
    let unparseable = problems(scan).into_iter().filter(|(c, _)| c == "manifest-unparseable").count();
    assert_eq!(unparseable, 1, "the 100,000-deep JSON is unparseable, the dense one is a valid index");
}

#[test]
fn deep_chains_wide_indexes_and_index_bombs_are_cut() {
    let tree = Tree::minimal();
    // A chain of 100 indexes, each the only child of the one above.
    let mut child = MANIFEST.to_string();
    for _ in 0..100 {
        child = tree.push_manifest(&index(&[&child]), None);
    }
    tree.push_manifest(&index(&[&child]), Some("deep"));
    // 10,000 children: the same image over and over, and 10,000 missing ones.
    let same = vec![MANIFEST; 10_000];
    tree.push_manifest(&index(&same), Some("wide"));
    let missing: Vec<String> = (0..10_000).map(|i| format!("sha256:{:064x}", i)).collect();
    tree.push_manifest(&index(&missing.iter().map(String::as_str).collect::<Vec<_>>()), Some("missing"));
    // A bomb: four levels, each naming the level below 200 times
    // (200^4 paths to the same image): each distinct child is followed once.
    let mut level = MANIFEST.to_string();
    for _ in 0..4 {
        level = tree.push_manifest(&index(&vec![level.as_str(); 200]), None);
    }
    for tag in ["bomb", "bomb2", "bomb3"] {
        tree.write(format!("_manifests/tags/{tag}/current/link"), level.as_bytes());
    }
    // Three distinct images of 40,000 layers each (3.5 MB, within the 4 MiB
    // limit) under one index: more nodes than the budget (MAX_NODES), so the
    // third is cut.
    let layer = "sha256:45eda0bf87a676d4b2c3c855d5566f1a4fbc3daaae0dc17523baa54afdbdf881";
    let images: Vec<String> = (0..3)
        .map(|i| {
            let layers = vec![json!({"digest": layer, "size": i}); 40_000];
            let image = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"digest": layer, "size": 1}, "layers": layers});
            tree.push_manifest(&serde_json::to_vec(&image).unwrap(), None)
        })
        .collect();
    tree.push_manifest(&index(&images.iter().map(String::as_str).collect::<Vec<_>>()), Some("budget"));
    let outcomes = run_all(&tree, false);
    let scan = &outcomes[0].json;
    let codes: Vec<String> = problems(scan).into_iter().map(|(c, _)| c).collect();
    assert!(codes.contains(&"index-too-deep".to_string()), "{codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "index-too-large").count(), 1, "{codes:?}");
    let missing_children = codes.iter().filter(|c| *c == "child-missing").count();
    assert_eq!(missing_children, 10_000);
    let tags = &outcomes[1].json["tags"];
    let tag = |name: &str| tags.as_array().unwrap().iter().find(|t| t["tag"] == name).unwrap().clone();
    for name in ["bomb", "wide"] {
        assert_eq!(
            (tag(name)["served"].clone(), tag(name)["served_unknown"].clone()),
            (json!(true), json!(false)),
            "{name}"
        );
    }
    // Cut by regaudit's bounds, not by the registry's: not known.
    for name in ["budget", "deep"] {
        assert_eq!(
            (tag(name)["served"].clone(), tag(name)["served_unknown"].clone()),
            (json!(false), json!(true)),
            "{name}"
        );
    }
}

#[test]
fn non_utf8_names_are_reported() {
    let tree = Tree::minimal();
    let bad = |prefix: &Path, name: &[u8]| prefix.join(std::ffi::OsStr::from_bytes(name));
    let repo = bad(&tree.v2().join("repositories"), b"app\xff");
    std::fs::create_dir_all(repo.join("_layers")).unwrap();
    let tag = bad(&tree.app().join("_manifests/tags"), b"v\xff");
    std::fs::create_dir_all(tag.join("current")).unwrap();
    std::fs::write(tag.join("current/link"), MANIFEST).unwrap();
    let blob = bad(&tree.v2().join("blobs/sha256/45"), b"45\xff");
    std::fs::create_dir_all(&blob).unwrap();
    std::fs::write(blob.join("data"), "x").unwrap();
    let outcomes = run_all(&tree, false);
    let scan = &outcomes[0].json;
    for p in [&repo, &tag, &blob] {
        // JSON keeps each byte that is not UTF-8 as U+0000 and two hex
        // digits (docs/json.md); these names are otherwise ASCII.
        let bytes = p.strip_prefix(tree.root()).unwrap().as_os_str().as_bytes();
        let json: String = bytes
            .iter()
            .map(|&b| if b.is_ascii() { char::from(b).to_string() } else { format!("\0{b:02x}") })
            .collect();
        assert_problem(scan, "non-utf8-name", &json);
    }
}

/// Needs root to run regaudit as another user (setpriv).
#[test]
#[ignore = "needs root"]
fn unreadable_files_and_directories_are_reported() {
    require_root();
    let tree = Tree::minimal();
    let chmod = |p: &Path, mode: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    chmod(tree.root(), 0o755);
    let link = tree.app().join("_manifests/tags/v1/current/link");
    let layers = tree.app().join("_layers");
    let data = tree.v2().join("blobs/sha256/42/42c9bca4f7b5c363565619d14477ea7d65d3d0c97ead6ec16cbab76b6de4e4e8/data");
    let shard = tree.v2().join("blobs/sha256/7d");
    for p in [&link, &data] {
        chmod(p, 0o000);
    }
    for p in [&layers, &shard] {
        chmod(p, 0o000);
    }
    let outcomes = run_all(&tree, true);
    let scan = &outcomes[0].json;
    for p in [&link, &layers, &data, &shard] {
        assert_problem(scan, "unreadable", &rel(&tree, p));
    }
}

#[test]
fn wrong_file_types_are_reported() {
    let tree = Tree::minimal();
    // `_layers` as a file in a second repository, `link` as a directory,
    // and a blob's `data` as a directory.
    let other = tree.v2().join("repositories/other");
    std::fs::create_dir_all(other.join("_manifests")).unwrap();
    std::fs::write(other.join("_layers"), "").unwrap();
    let link = tree.app().join("_manifests/tags/v1/current/link");
    std::fs::remove_file(&link).unwrap();
    std::fs::create_dir(&link).unwrap();
    let data = tree.v2().join("blobs/sha256/78/7836251b9b37d6a17d985d95dc27f99cb145845ae5dcf01af1fc491c115e0bf9/data");
    std::fs::remove_file(&data).unwrap();
    std::fs::create_dir(&data).unwrap();
    let outcomes = run_all(&tree, false);
    let scan = &outcomes[0].json;
    for p in [other.join("_layers"), link, data] {
        assert_problem(scan, "wrong-file-type", &rel(&tree, &p));
    }
}

#[test]
fn nfs_leftovers_fifos_devices_and_symlinks_are_reported() {
    let tree = Tree::minimal();
    let nfs = [
        tree.v2().join("repositories/.nfs000000000123"),
        tree.app().join("_manifests/tags/.nfs0000000000456"),
        tree.v2().join("blobs/sha256/45/45eda0bf87a676d4b2c3c855d5566f1a4fbc3daaae0dc17523baa54afdbdf881/.nfs789"),
    ];
    for p in &nfs {
        std::fs::write(p, "deleted but open").unwrap();
    }
    // A FIFO as blob data, as a tag link and as the scheduler state: a
    // blocking open or read would hang.
    let data = tree.v2().join("blobs/sha256/7d/7dc163e26ccb92ac81308796b63ad8d2e64fff0fa3837e2737b1895677dc08be/data");
    let link = tree.app().join("_manifests/tags/v1/current/link");
    let state = tree.root().join("scheduler-state.json");
    for p in [&data, &link] {
        std::fs::remove_file(p).unwrap();
    }
    for p in [&data, &link, &state] {
        assert!(Command::new("mkfifo").arg(p).status().unwrap().success());
    }
    // A character device (/dev/zero's numbers) where a link belongs.
    let device =
        tree.app().join("_layers/sha256/7836251b9b37d6a17d985d95dc27f99cb145845ae5dcf01af1fc491c115e0bf9/link");
    std::fs::remove_file(&device).unwrap();
    let made_device = Command::new("mknod").arg(&device).args(["c", "1", "5"]).status().unwrap().success();
    // A symlink out of the tree, as a repository and as a link.
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), tree.v2().join("repositories/escape")).unwrap();
    let layer = tree.app().join("_layers/sha256/45eda0bf87a676d4b2c3c855d5566f1a4fbc3daaae0dc17523baa54afdbdf881/link");
    std::fs::remove_file(&layer).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &layer).unwrap();

    let outcomes = run_all(&tree, false);
    let scan = &outcomes[0].json;
    for p in &nfs {
        assert_problem(scan, "nfs-leftover", &rel(&tree, p));
    }
    for p in [&data, &link] {
        assert_problem(scan, "not-regular-file", &rel(&tree, p));
    }
    assert_problem(scan, "unreadable", "scheduler-state.json");
    if made_device {
        assert_problem(scan, "not-regular-file", &rel(&tree, &device));
    }
    assert_problem(scan, "symlink", "docker/registry/v2/repositories/escape");
    assert_problem(scan, "symlink", &rel(&tree, &layer));
}

/// Directories nested as deep as a path can go: the recursive walks must
/// not overflow their stacks.
#[test]
fn deeply_nested_directories_do_not_overflow_the_stack() {
    let tree = Tree::minimal();
    let base = tree.v2().join("repositories/deep");
    let room = 4000 - base.as_os_str().len();
    let nested = base.join(vec!["a"; room / 2].join("/"));
    std::fs::create_dir_all(&nested).unwrap();
    std::fs::create_dir(nested.join("_layers")).unwrap();
    let outcomes = run_all(&tree, false);
    let scan = &outcomes[0].json;
    assert!(problems(scan).iter().any(|(c, p)| c == "repository-name-invalid" && p.starts_with(&rel(&tree, &base))));
}
