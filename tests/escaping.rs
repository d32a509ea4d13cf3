//! Names from the tree cannot forge output, and names that are not UTF-8
//! survive: text escapes them, JSON keeps them exact (docs/json.md), and
//! repositories are counted as the real `/v2/_catalog` lists them. Also the
//! report fixes that show only the problems of what a report shows.
//!
//! Git cannot hold such names, so every tree is a scratch copy of
//! `trees/minimal` with the names made at runtime.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::Command;

use common::registry::{self, Registry};
use common::{scratch, V2};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_regaudit");
/// A repository name that clears the screen and prints in red on a terminal.
const FORGED: &[u8] = b"x\x1b[2J\x1b[31mFAKE";

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Run {
    fn text(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("text output is UTF-8")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.stdout)))
    }
}

/// Runs the binary without colour, so that any control byte in the output
/// can only come from a name.
fn run(args: &[&OsStr]) -> Run {
    let out = Command::new(BIN).args(args).env("NO_COLOR", "1").output().expect("run regaudit");
    Run { code: out.status.code().unwrap_or(-1), stdout: out.stdout, stderr: out.stderr }
}

fn run_str(args: &[&str]) -> Run {
    run(&args.iter().map(OsStr::new).collect::<Vec<_>>())
}

struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    fn minimal() -> Tree {
        Tree { dir: scratch("trees/minimal") }
    }

    fn root(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    fn repos(&self) -> PathBuf {
        self.dir.path().join(V2).join("repositories")
    }

    /// A copy of repository `app` (its tag `v1` included) under a raw name.
    fn copy_app(&self, name: &[u8]) -> PathBuf {
        let to = self.repos().join(OsStr::from_bytes(name));
        common::copy_tree(&common::testdata("trees/minimal").join(V2).join("repositories/app"), &to);
        to
    }

    /// Stores `bytes` under `digest` (which need not be their hash).
    fn put_blob_as(&self, digest_hex: &str, bytes: &[u8]) {
        let dir = self.dir.path().join(V2).join(format!("blobs/sha256/{}/{digest_hex}", &digest_hex[..2]));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("data"), bytes).unwrap();
    }

    fn write(&self, rel: &str, bytes: &[u8]) {
        let path = self.repos().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// The exact bytes of a name as docs/json.md says JSON carries it: each
/// U+0000 and the two hex digits after it stand for one byte.
fn json_name_bytes(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('\0') {
        out.extend_from_slice(&rest.as_bytes()[..i]);
        out.push(u8::from_str_radix(&rest[i + 1..i + 3], 16).expect("two hex digits after U+0000"));
        rest = &rest[i + 3..];
    }
    out.extend_from_slice(rest.as_bytes());
    out
}

/// The text form of a name, written independently of src/names.rs from the
/// rules in docs/json.md (ASCII and invalid bytes are all these tests use).
fn shown(name: &[u8]) -> String {
    let mut out = String::new();
    for &b in name {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            0..=0x1f | 0x7f..=0xff => out.push_str(&format!("\\x{b:02x}")),
            _ => out.push(char::from(b)),
        }
    }
    out
}

/// No byte of `out` but a newline is a control character.
#[track_caller]
fn assert_no_control_bytes(what: &str, out: &[u8]) {
    let bad: Vec<u8> = out.iter().copied().filter(|&b| (b < 0x20 && b != b'\n') || b == 0x7f).collect();
    assert!(bad.is_empty(), "{what}: control bytes {bad:x?} reach the terminal:\n{}", String::from_utf8_lossy(out));
}

#[test]
fn forged_names_never_reach_the_terminal_raw() {
    let tree = Tree::minimal();
    tree.copy_app(FORGED);
    // A newline splits a row; a tag name can hold one too.
    tree.copy_app(b"line\nbreak");
    let tag = tree.repos().join("app/_manifests/tags").join(OsStr::from_bytes(b"v\x1b]0;pwned\x07"));
    common::copy_tree(&tree.repos().join("app/_manifests/tags/v1"), &tag);
    let root = tree.root();
    for args in [
        vec!["scan", root],
        vec!["tags", root],
        vec!["du", root],
        vec!["writes", root],
        vec!["gc", root],
        vec!["gc", root, "--delete-untagged"],
        vec!["gc", root, "--format", "gc-log"],
        vec!["verify", root],
        vec!["inspect", root, "app:v1"],
    ] {
        let out = run_str(&args);
        assert_ne!(out.code, 2, "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert_no_control_bytes(&format!("{args:?} stdout"), &out.stdout);
        assert_no_control_bytes(&format!("{args:?} stderr"), &out.stderr);
    }
    // Each name shows once per row, escaped, and no row is split.
    let tags = run_str(&["tags", root]).text();
    let rows: Vec<&str> = tags.lines().take_while(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 1 + 4, "a header and four tags:\n{tags}");
    assert!(rows.iter().any(|r| r.starts_with(&format!("{} ", shown(FORGED)))), "{tags}");
    assert!(rows.iter().any(|r| r.starts_with("line\\nbreak ")), "{tags}");
    assert!(rows.iter().any(|r| r.starts_with("app ") && r.contains(" v\\x1b]0;pwned\\x07 ")), "{tags}");
    // gc-log: what the real dry run prints, names escaped.
    let log = run_str(&["gc", root, "--format", "gc-log"]);
    let log_text = log.text();
    // The run stops at the first name the grammar refuses, in byte order.
    assert!(log_text.lines().any(|l| l == "line\\nbreak"), "{log_text}");
    let err = String::from_utf8(log.stderr).unwrap();
    assert!(err.contains("failed to parse repo name line\\nbreak"), "{err}");
}

#[test]
fn columns_are_measured_on_the_escaped_form() {
    let tree = Tree::minimal();
    tree.copy_app(FORGED);
    tree.copy_app(b"bin\xff\xfe\xfd");
    let tags = run_str(&["tags", tree.root()]).text();
    let rows: Vec<&str> = tags.lines().take_while(|l| !l.is_empty()).collect();
    let column = |row: &str, cell: &str| row.find(cell).map(|i| row[..i].chars().count());
    let tag_at = column(rows[0], "TAG").unwrap();
    let served_at = column(rows[0], "SERVED").unwrap();
    for row in &rows[1..] {
        assert_eq!(column(row, " v1 ").map(|c| c + 1), Some(tag_at), "TAG column moves:\n{tags}");
        let last = row.rsplit("  ").next().unwrap();
        assert_eq!(row.chars().count() - last.chars().count(), served_at, "SERVED column moves:\n{tags}");
    }
    // The widest name sets the first column: its escaped form plus two spaces.
    assert_eq!(tag_at, shown(FORGED).len() + 2, "{tags}");
    let problems = run_str(&["scan", tree.root()]).text();
    assert!(problems.contains(&format!("repositories/{}\n", shown(b"bin\xff\xfe\xfd"))), "{problems}");
}

#[test]
fn names_that_are_not_utf8_stay_distinct_and_recoverable() {
    let tree = Tree::minimal();
    // Two names that U+FFFD would make the same; a literal backslash name
    // that an escape without a marker would confuse with the first.
    let names: [&[u8]; 4] = [b"app\xff", b"app\xfe", b"app\\xff", b"deep\xc3/sub"];
    for n in names {
        let dir = tree.repos().join(OsStr::from_bytes(n));
        std::fs::create_dir_all(dir.join("_layers")).unwrap();
    }
    let scan = run_str(&["scan", tree.root(), "--format", "json"]).json();
    assert_eq!(scan["inventory"]["repositories"], 1 + names.len());
    assert_eq!(scan["inventory"]["repositories_in_catalog"], 1 + names.len());
    // Every problem path is a real file name, bytes exact.
    let paths: Vec<Vec<u8>> =
        scan["problems"].as_array().unwrap().iter().map(|p| json_name_bytes(p["path"].as_str().unwrap())).collect();
    for p in &paths {
        assert!(
            std::fs::symlink_metadata(tree.dir.path().join(OsStr::from_bytes(p))).is_ok(),
            "{} is not in the tree",
            String::from_utf8_lossy(p)
        );
    }
    for n in [&b"app\xff"[..], b"app\xfe", b"deep\xc3"] {
        let want = [format!("{V2}/repositories/").as_bytes(), n].concat();
        assert!(paths.contains(&want), "no problem at {}", String::from_utf8_lossy(&want));
    }
    // The repositories themselves, in tags' and du's JSON.
    let du = run_str(&["du", tree.root(), "--format", "json"]).json();
    let mut listed: Vec<Vec<u8>> = du["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| json_name_bytes(r["repository"].as_str().unwrap()))
        .collect();
    listed.sort();
    let mut want: Vec<Vec<u8>> = names.iter().map(|n| n.to_vec()).chain([b"app".to_vec()]).collect();
    want.sort();
    assert_eq!(listed, want);
    // Text: distinct, escaped.
    let text = run_str(&["du", tree.root()]).text();
    for n in names {
        assert!(text.lines().any(|l| l.starts_with(&format!("{} ", shown(n)))), "{}: {text}", shown(n));
    }
}

#[test]
fn repositories_are_counted_as_the_real_catalog_lists_them() {
    if !registry::require() {
        return;
    }
    let tree = Tree::minimal();
    for n in [&b"app\xff"[..], b"app\xfe", b"ok\xff/sub", b"x\x1b[2J"] {
        std::fs::create_dir_all(tree.repos().join(OsStr::from_bytes(n)).join("_layers")).unwrap();
    }
    let real = Registry::serve(tree.dir.path()).request("GET", "/v2/_catalog?n=1000", &[]);
    assert_eq!(real.status, 200);
    let catalog: Value = serde_json::from_slice(&real.body).unwrap();
    let listed = catalog["repositories"].as_array().unwrap();
    // Go writes U+FFFD for each invalid byte: two entries print alike.
    assert_eq!(listed.iter().filter(|r| *r == &json!("app\u{fffd}")).count(), 2, "{catalog}");
    let scan = run_str(&["scan", tree.root(), "--format", "json"]).json();
    assert_eq!(scan["inventory"]["repositories_in_catalog"], listed.len(), "{catalog}");
    // Mapping ours to Go's form gives the catalog itself.
    let du = run_str(&["du", tree.root(), "--format", "json"]).json();
    let ours: Vec<String> = du["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| String::from_utf8_lossy(&json_name_bytes(r["repository"].as_str().unwrap())).into_owned())
        .collect();
    let theirs: Vec<String> = listed.iter().map(|r| r.as_str().unwrap().to_string()).collect();
    assert_eq!(ours, theirs);
}

#[test]
fn gc_log_is_the_real_dry_run_with_names_escaped() {
    if !registry::require() {
        return;
    }
    let tree = Tree::minimal();
    tree.copy_app(b"app\x1b[31m");
    let ours = run_str(&["gc", tree.root(), "--format", "gc-log"]);
    let real = registry::garbage_collect(tree.dir.path(), true, false);
    assert!(!real.status.success(), "the real run aborts on the name");
    assert_eq!(ours.code, 1);
    let lines = |out: &[u8]| {
        let mut l: Vec<String> = out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(shown).collect();
        l.sort();
        l
    };
    let mut ours_lines: Vec<String> = ours.text().lines().map(str::to_string).collect();
    ours_lines.sort();
    assert_eq!(ours_lines, lines(&real.stdout));
    assert!(ours_lines.contains(&"app\\x1b[31m".to_string()), "{ours_lines:?}");
    let real_err = shown(real.stderr.strip_suffix(b"\n").unwrap_or(&real.stderr));
    let ours_err = String::from_utf8(ours.stderr).unwrap();
    assert_eq!(ours_err.trim_end(), real_err.replace(tree.root(), ""));
}

/// A problem in `app/sub` (a repository nested in `app`) and one in `other`.
fn tree_with_problems_elsewhere() -> Tree {
    let tree = Tree::minimal();
    tree.copy_app(b"app/sub");
    tree.copy_app(b"other");
    tree.write("app/sub/_layers/stray", b"x");
    tree.write("other/_layers/stray", b"x");
    tree
}

fn problem_paths(v: &Value) -> Vec<String> {
    v["problems"].as_array().unwrap().iter().map(|p| p["path"].as_str().unwrap().to_string()).collect()
}

#[test]
fn inspect_leaves_out_problems_of_nested_repositories() {
    let tree = tree_with_problems_elsewhere();
    let out = run_str(&["inspect", tree.root(), "app:v1", "--format", "json"]);
    assert_eq!(out.code, 0, "{}", out.text());
    assert_eq!(problem_paths(&out.json()), Vec::<String>::new());
    let out = run_str(&["inspect", tree.root(), "app/sub:v1", "--format", "json"]);
    assert_eq!(out.code, 1);
    assert_eq!(problem_paths(&out.json()), [format!("{V2}/repositories/app/sub/_layers/stray")]);
    // A problem of app's own still shows.
    tree.write("app/_layers/stray", b"x");
    let out = run_str(&["inspect", tree.root(), "app:v1", "--format", "json"]);
    assert_eq!(out.code, 1);
    assert_eq!(problem_paths(&out.json()), [format!("{V2}/repositories/app/_layers/stray")]);
}

#[test]
fn tags_and_verify_of_some_repositories_report_only_their_problems() {
    let tree = tree_with_problems_elsewhere();
    let root = tree.root();
    // verify fails on damage by default: ask both about problems.
    for command in ["tags", "verify"] {
        let some = run_str(&[command, root, "app", "--format", "json", "--fail-on", "problems"]);
        assert_eq!(some.code, 0, "{command} app: {}", String::from_utf8_lossy(&some.stdout));
        assert_eq!(problem_paths(&some.json()), Vec::<String>::new(), "{command} app");
        let text = run_str(&[command, root, "app", "--fail-on", "problems"]);
        assert_eq!(text.code, 0);
        assert!(text.text().contains("No problems found."), "{command} app: {}", text.text());
        let sub = run_str(&[command, root, "app/sub", "--format", "json", "--fail-on", "problems"]);
        assert_eq!(sub.code, 1, "{command} app/sub");
        assert_eq!(problem_paths(&sub.json()), [format!("{V2}/repositories/app/sub/_layers/stray")]);
        // All repositories: the whole tree's problems, as before.
        let all = run_str(&[command, root, "--format", "json", "--fail-on", "problems"]);
        assert_eq!(all.code, 1);
        assert_eq!(problem_paths(&all.json()).len(), 2, "{command}");
    }
    // A damaged blob of app's tree is app's problem.
    let blobs = tree.dir.path().join(V2).join("blobs/sha256/7d");
    let data = std::fs::read_dir(&blobs).unwrap().next().unwrap().unwrap().path().join("data");
    std::fs::write(&data, b"corrupt").unwrap();
    let out = run_str(&["verify", root, "app", "--format", "json"]);
    assert_eq!(out.code, 1);
    assert!(problem_paths(&out.json()).iter().any(|p| p.starts_with(&format!("{V2}/blobs/sha256/7d/"))));
}

#[test]
fn inspect_keeps_the_truncation_sentence_out_of_the_node_column() {
    let tree = Tree::minimal();
    // An index stored under a digest it lists as its own child: the
    // registry does not check, so the walk meets a cycle.
    let fake = hex::encode(Sha256::digest(b"not this content"));
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": format!("sha256:{fake}"),
            "size": 1,
            "platform": {"architecture": "amd64", "os": "linux"}
        }]
    });
    tree.put_blob_as(&fake, &serde_json::to_vec(&index).unwrap());
    let link = format!("sha256:{fake}");
    tree.write(&format!("app/_manifests/revisions/sha256/{fake}/link"), link.as_bytes());
    tree.write("app/_manifests/tags/loop/current/link", link.as_bytes());
    let out = run_str(&["inspect", tree.root(), "app:loop"]).text();
    let table: Vec<&str> =
        out.lines().skip(2).take_while(|l| !l.is_empty()).filter(|l| !l.starts_with("  [")).collect();
    assert!(table[0].starts_with("NODE ") && table[0].ends_with("NOTE"), "{out}");
    let widest = table.iter().map(|l| l.chars().count()).max().unwrap();
    // The sentence in the NODE column made every row 130 characters or more.
    assert!(widest < 110, "rows are {widest} characters wide:\n{out}");
    assert!(table.iter().all(|l| !l.contains("refers back")), "{out}");
    assert!(table.iter().any(|l| l.ends_with("[1]")), "{out}");
    let note = out.lines().find(|l| l.trim_start().starts_with("[1] ")).unwrap_or_else(|| panic!("no note:\n{out}"));
    assert!(note.contains(&format!("manifest sha256:{fake} refers back to itself")), "{note}");
}
