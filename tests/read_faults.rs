//! Read faults and symlinks inside the layout (issue 12): every answer is
//! either what the real registry does when run as the same user, or says
//! it is incomplete (`unmodelled`, exit 2).
//!
//! The fault cases need a user whom `chmod 000` stops: as root they run
//! regaudit and the real registry (2.8.2 and 3.1.1) as uid 65534 through
//! `setpriv`, on a scratch copy owned by that user; otherwise they skip,
//! saying why.

mod common;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::registry::{self, Registry};
use common::{regaudit, testdata, V2};

const NOBODY: &str = "65534";
const H42: &str = "42c9bca4f7b5c363565619d14477ea7d65d3d0c97ead6ec16cbab76b6de4e4e8";
const H45: &str = "45eda0bf87a676d4b2c3c855d5566f1a4fbc3daaae0dc17523baa54afdbdf881";

/// Whether the fault tests can run (they run regaudit and the registry as
/// uid 65534 through setpriv, which needs root: every one is
/// `#[ignore = "needs root"]`); says why not when they cannot.
fn can_drop_privileges() -> bool {
    registry::require_root();
    registry::require()
}

fn as_nobody(program: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args([&format!("--reuid={NOBODY}"), &format!("--regid={NOBODY}"), "--clear-groups", program]);
    c
}

/// A copy of `trees/minimal` owned by uid 65534, with `prepare` applied
/// (relative to v2/) and then `chmod 000` on `fault` (relative to v2/).
struct Faulty {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Faulty {
    fn new(fault: &str, prepare: &dyn Fn(&Path)) -> Faulty {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.path().join("root");
        common::copy_tree(&testdata("trees/minimal"), &root);
        prepare(&root.join(V2));
        let owned = Command::new("chown").args(["-R", &format!("{NOBODY}:{NOBODY}")]).arg(&root).status().unwrap();
        assert!(owned.success());
        std::fs::set_permissions(root.join(V2).join(fault), std::fs::Permissions::from_mode(0o000)).unwrap();
        Faulty { _dir: dir, root }
    }

    /// A registry config for this tree, readable by uid 65534.
    fn config(&self, port: u16) -> PathBuf {
        let cfg = self.root.with_extension("yml");
        std::fs::write(&cfg, registry::config(&self.root, port, "")).unwrap();
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
        cfg
    }

    fn regaudit(&self, args: &[&str]) -> (i32, serde_json::Value, String) {
        let out = as_nobody(env!("CARGO_BIN_EXE_regaudit"))
            .args(args)
            .arg(&self.root)
            .args(["--format", "json"])
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        (out.status.code().unwrap_or(-1), v, String::from_utf8_lossy(&out.stderr).into_owned())
    }

    fn real_gc(&self, binary: &str, flags: &[&str]) -> Output {
        let cfg = self.config(5000);
        as_nobody(binary).arg("garbage-collect").args(flags).arg(&cfg).output().unwrap()
    }
}

fn v3_binary() -> String {
    let out = Command::new("/work/shared/tools/registry-v3").arg("--path").output().expect("registry-v3 --path");
    assert!(out.status.success(), "registry-v3 is not usable: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn no_prepare(_: &Path) {}

/// The untagged manifest that `--delete-untagged` sweeps: v1's current link removed.
fn untag(v2: &Path) {
    std::fs::remove_dir_all(v2.join("repositories/app/_manifests/tags/v1/current")).unwrap();
}

struct Case {
    name: &'static str,
    fault: String,
    prepare: fn(&Path),
    flags: &'static [&'static str],
}

fn case(name: &'static str, fault: &str, prepare: fn(&Path), flags: &'static [&'static str]) -> Case {
    Case { name, fault: fault.to_string(), prepare, flags }
}

/// One fault at every stage where the real run meets it, and some it never meets.
fn cases() -> Vec<Case> {
    let revision = format!("repositories/app/_manifests/revisions/sha256/{H42}");
    vec![
        case("catalog: repositories/", "repositories", no_prepare, &[]),
        case("catalog: the repository", "repositories/app", no_prepare, &[]),
        case("marking: _manifests", "repositories/app/_manifests", no_prepare, &[]),
        case("marking: revisions/sha256", "repositories/app/_manifests/revisions/sha256", no_prepare, &[]),
        case("marking: a revision directory", &revision, no_prepare, &[]),
        case("marking: a revision link", &format!("{revision}/link"), no_prepare, &[]),
        case("marking: manifest data", &format!("blobs/sha256/42/{H42}/data"), no_prepare, &[]),
        case("marking: the manifest's shard", "blobs/sha256/42", no_prepare, &[]),
        case("blob enumeration (2.8) / layer check (3): a layer's shard", "blobs/sha256/45", no_prepare, &[]),
        case("never read: a layer's data", &format!("blobs/sha256/45/{H45}/data"), no_prepare, &[]),
        case("3 only: _layers", "repositories/app/_layers", no_prepare, &[]),
        case("3 only: a layer link", &format!("repositories/app/_layers/sha256/{H45}/link"), no_prepare, &[]),
        case("lookup: _manifests/tags", "repositories/app/_manifests/tags", no_prepare, &["--delete-untagged"]),
        case("lookup: a tag directory", "repositories/app/_manifests/tags/v1", no_prepare, &["--delete-untagged"]),
        case("default mode: a tag directory", "repositories/app/_manifests/tags/v1", no_prepare, &[]),
        case("sweep: a tag's index", "repositories/app/_manifests/tags/v1/index", untag, &["--delete-untagged"]),
        case(
            "sweep: a tag's index entry",
            &format!("repositories/app/_manifests/tags/v1/index/sha256/{H42}"),
            untag,
            &["--delete-untagged"],
        ),
    ]
}

/// Our abort message against the real stderr, which adds Go's log prefix
/// only in front (`failed to garbage collect: ...` is printed as is).
fn same_abort(ours: &str, real_stderr: &str) -> bool {
    real_stderr.lines().any(|l| l.trim_end() == ours) || real_stderr.trim_end().ends_with(ours)
}

#[test]
#[ignore = "needs root"]
fn gc_predicts_the_abort_the_real_run_makes_as_an_unprivileged_user() {
    if !can_drop_privileges() {
        return;
    }
    let v3 = v3_binary();
    let mut compared = 0;
    for c in cases() {
        for (target, binary) in [("2.8", registry::BINARY), ("3", v3.as_str())] {
            let label = format!("{} (--target {target} {:?})", c.name, c.flags);
            // Dry run first, then the real run on a fresh copy.
            for dry in [true, false] {
                let tree = Faulty::new(&c.fault, &|v2| (c.prepare)(v2));
                let mut args = vec!["gc", "--target", target];
                args.extend(c.flags);
                let (code, v, stderr) = tree.regaudit(&args);
                assert_eq!(v["incomplete"], false, "{label}: {v}");
                let mut flags: Vec<&str> = c.flags.to_vec();
                if dry {
                    flags.push("--dry-run");
                }
                let real = tree.real_gc(binary, &flags);
                let real_err = String::from_utf8_lossy(&real.stderr);
                let aborts = &v["aborts"];
                let predicted_abort = !aborts.is_null() && (!dry || aborts["dry_run_too"] == true);
                assert_eq!(
                    !real.status.success(),
                    predicted_abort,
                    "{label} dry={dry}: real {:?} {real_err}; predicted {aborts}",
                    real.status
                );
                if predicted_abort {
                    assert_eq!(code, 1, "{label}: {stderr}");
                    let ours = aborts["message"].as_str().unwrap();
                    assert!(same_abort(ours, &real_err), "{label} dry={dry}:\n ours: {ours}\n real: {real_err}");
                }
                compared += 1;
            }
        }
    }
    assert_eq!(compared, cases().len() * 4);
}

/// What the faults above give, stage by stage (checked against the real
/// run by the test above): the stage names are part of the contract.
#[test]
#[ignore = "needs root"]
fn gc_names_the_stage_and_path_of_a_read_fault() {
    if !can_drop_privileges() {
        return;
    }
    let expect = [("repositories/app", "mark"), ("blobs/sha256/45", "enumerate-blobs")];
    for (fault, stage) in expect {
        let tree = Faulty::new(fault, &no_prepare);
        let (_, v, _) = tree.regaudit(&["gc"]);
        let path = fault;
        assert_eq!(v["aborts"]["stage"], stage, "{fault}: {v}");
        assert_eq!(v["aborts"]["path"], format!("{V2}/{path}"), "{fault}: {v}");
        assert!(v["aborts"]["message"].as_str().unwrap().ends_with(": permission denied"), "{v}");
    }
    let tree = Faulty::new("repositories/app/_manifests/tags/v1/index", &untag);
    let (_, v, _) = tree.regaudit(&["gc", "--delete-untagged"]);
    assert_eq!(v["aborts"]["stage"], "delete-manifests", "{v}");
    assert_eq!(v["aborts"]["dry_run_too"], false, "{v}");
}

/// GET on a file the registry cannot read is a 500, not a 404: the writes
/// model's GET by tag says the same status as the real 2.8.2 run as that user.
#[test]
#[ignore = "needs root"]
fn a_get_that_meets_an_unreadable_file_is_a_500_as_in_the_real_registry() {
    if !can_drop_privileges() {
        return;
    }
    let faults = [
        "repositories/app/_manifests/tags/v1/current/link".to_string(),
        format!("repositories/app/_manifests/revisions/sha256/{H42}/link"),
        format!("blobs/sha256/42/{H42}/data"),
        "blobs/sha256/42".to_string(),
    ];
    let v3 = v3_binary();
    for fault in &faults {
        for (target, binary) in [("2.8", registry::BINARY), ("3", v3.as_str())] {
            let tree = Faulty::new(fault, &no_prepare);
            let (code, v, stderr) = tree.regaudit(&["writes", "--target", target]);
            assert_eq!(v["summary"]["incomplete"], false, "{fault}: {v}");
            assert_eq!(code, 0, "{fault}: {stderr}");
            let op = &v["operations"][0];
            assert_eq!(op["reference"], "v1");
            let wrap = |cfg: &Path| {
                // serve_with writes the config in a private directory: let uid 65534 read it.
                let dir = cfg.parent().unwrap();
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
                std::fs::set_permissions(cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
                let mut c = as_nobody(binary);
                c.arg("serve").arg(cfg);
                c
            };
            let reg = Registry::serve_with(&tree.root, "", Some(&wrap));
            let real = reg.request("GET", "/v2/app/manifests/v1", &[]);
            assert_eq!(real.status, 500, "{fault} ({target}): the real registry answered {}", real.status);
            assert_eq!(op["status"], real.status, "{fault} ({target}): predicted {op}");
            assert!(op["writes"].as_array().unwrap().is_empty(), "{fault}: {op}");
            // By digest too: inspect's manifest node is a 500 where the real one is.
            let by_digest = reg.request("GET", &format!("/v2/app/manifests/sha256:{H42}"), &[]);
            let run = as_nobody(env!("CARGO_BIN_EXE_regaudit"))
                .args(["inspect", "--target", target])
                .arg(&tree.root)
                .arg(format!("app@sha256:{H42}"))
                .args(["--format", "json"])
                .output()
                .unwrap();
            let inspected: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap_or_default();
            let ours = match inspected.pointer("/tree/fetch/status").and_then(|s| s.as_str()) {
                Some("ok") => 200,
                Some("server-error") => 500,
                Some("not-found") => 404,
                other => panic!("{fault} ({target}): inspect gave {other:?}: {inspected}"),
            };
            assert_eq!(ours, by_digest.status, "{fault} ({target}): GET by digest");
        }
    }
}

#[test]
#[ignore = "needs root"]
fn an_unreadable_repository_is_named_not_missing() {
    if !can_drop_privileges() {
        return;
    }
    let tree = Faulty::new("repositories/app", &no_prepare);
    for args in [&["tags"][..], &["inspect"][..]] {
        let mut cmd = as_nobody(env!("CARGO_BIN_EXE_regaudit"));
        cmd.args(args).arg(&tree.root).arg(if args[0] == "tags" { "app" } else { "app:v1" });
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("cannot be listed (permission denied)"), "{args:?}: {err}");
        assert!(!err.contains("no repository"), "{args:?}: {err}");
    }
    // gc: the catalog walk fails there; writes: the repository is not modelled.
    let (code, v, _) = tree.regaudit(&["writes"]);
    assert_eq!(code, 2);
    assert_eq!(v["summary"]["serves_read_only"], false);
    assert!(v["unmodelled"][0].as_str().unwrap().starts_with(&format!("{V2}/repositories/app:")), "{v}");
}

#[test]
#[ignore = "needs root"]
fn an_unreadable_root_says_permission_denied() {
    if !can_drop_privileges() {
        return;
    }
    let tree = Faulty::new("repositories", &no_prepare);
    std::fs::set_permissions(&tree.root, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = as_nobody(env!("CARGO_BIN_EXE_regaudit")).arg("scan").arg(&tree.root).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("permission denied"), "{err}");
    assert!(!err.contains("not a registry storage tree"), "{err}");
}

/// Not a fault case: runs as any user.
#[test]
fn a_root_inside_the_tree_names_the_storage_root() {
    let tree = common::scratch("trees/minimal");
    for below in ["repositories", "repositories/app", "blobs/sha256"] {
        let arg = tree.path().join(V2).join(below);
        let run = regaudit(&["scan", arg.to_str().unwrap()]);
        assert_eq!(run.code, 2, "{below}");
        let root = std::fs::canonicalize(tree.path()).unwrap();
        assert!(run.stderr.contains(&format!("give the storage root {}", root.display())), "{below}: {}", run.stderr);
    }
}

// ---------------------------------------------------------------------------
// Symlinks inside the layout: the registry follows them, regaudit does not;
// every prediction they affect is explicitly incomplete.

/// Moves `rel` (relative to the root) out of the tree and puts a symlink to it in its place.
fn symlinked(rel: &str) -> (tempfile::TempDir, PathBuf) {
    let tree = common::scratch("trees/minimal");
    let elsewhere = tree.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let at = tree.path().join(rel);
    let moved = elsewhere.join(at.file_name().unwrap());
    std::fs::rename(&at, &moved).unwrap();
    symlink(&moved, &at).unwrap();
    let root = tree.path().to_path_buf();
    (tree, root)
}

fn symlink_cases() -> Vec<String> {
    vec![
        "docker".into(),
        "docker/registry".into(),
        format!("{V2}"),
        format!("{V2}/blobs"),
        format!("{V2}/repositories"),
        format!("{V2}/repositories/app"),
        format!("{V2}/repositories/app/_manifests/revisions/sha256/{H42}/link"),
        format!("{V2}/blobs/sha256/42/{H42}/data"),
    ]
}

#[test]
fn a_symlink_the_registry_would_follow_makes_gc_incomplete() {
    for rel in symlink_cases() {
        for target in ["2.8", "3"] {
            let (_tree, root) = symlinked(&rel);
            let root_s = root.to_str().unwrap();
            let (code, v) = common::json(&["gc", "--target", target, root_s]);
            assert_eq!(code, 2, "{rel} {target}: {v}");
            assert_eq!(v["incomplete"], true, "{rel}: {v}");
            let listed = v["unmodelled"].as_array().unwrap().iter().any(|u| u.as_str().unwrap().starts_with(&rel));
            assert!(listed, "{rel}: {v}");
            // Never the false abort a missing blobs/ would give.
            assert!(v["aborts"].is_null(), "{rel}: {v}");
            let text = regaudit(&["gc", "--target", target, root_s]);
            assert!(text.stdout.contains("Incomplete"), "{rel}: {}", text.stdout);
            assert!(text.stdout.contains(&rel), "{rel}: {}", text.stdout);
        }
    }
}

#[test]
fn a_symlink_the_registry_would_follow_makes_writes_incomplete() {
    for rel in symlink_cases() {
        let (_tree, root) = symlinked(&rel);
        let root_s = root.to_str().unwrap();
        let (code, v) = common::json(&["writes", root_s]);
        assert_eq!(code, 2, "{rel}: {v}");
        assert_eq!(v["summary"]["serves_read_only"], false, "{rel}: {v}");
        assert_eq!(v["summary"]["incomplete"], true, "{rel}: {v}");
        assert!(v["unmodelled"].as_array().unwrap().iter().any(|u| u.as_str().unwrap().starts_with(&rel)), "{v}");
        let text = regaudit(&["writes", root_s]);
        assert!(text.stdout.contains("serves read-only: unknown"), "{rel}: {}", text.stdout);
        assert!(!text.stdout.contains("serves read-only: yes"), "{rel}: {}", text.stdout);
    }
}

/// The real GC does follow a symlinked docker/: it marks and deletes what
/// lies behind it, which is why "0 blobs, no hazards" would be wrong.
#[test]
fn the_real_gc_follows_a_symlinked_docker_directory() {
    if !registry::require() {
        return;
    }
    let (_tree, root) = symlinked("docker");
    // An unreferenced blob: the real run deletes it through the symlink.
    let orphan = root.join(V2).join("blobs/sha256/aa").join("a".repeat(64));
    std::fs::create_dir_all(&orphan).unwrap();
    std::fs::write(orphan.join("data"), "orphan").unwrap();
    let dry = registry::garbage_collect(&root, true, false);
    let out = String::from_utf8_lossy(&dry.stdout);
    assert!(out.contains("1 blobs and 0 manifests eligible for deletion"), "{out}");
    let (code, v) = common::json(&["gc", root.to_str().unwrap()]);
    assert_eq!((code, &v["incomplete"]), (2, &serde_json::Value::Bool(true)), "{v}");
}

#[test]
fn a_symlinked_repository_is_named_not_missing() {
    let (_tree, root) = symlinked(&format!("{V2}/repositories/app"));
    let root_s = root.to_str().unwrap();
    for args in [vec!["tags", root_s, "app"], vec!["inspect", root_s, "app:v1"]] {
        let run = regaudit(&args);
        assert_eq!(run.code, 2, "{args:?}");
        assert!(run.stderr.contains("is a symbolic link, which regaudit does not follow"), "{args:?}: {}", run.stderr);
    }
}

/// What the walk could not see is not reported as missing: the `symlink` or
/// `unreadable` problem says why, and no "404"/"no data" claim is made.
#[test]
fn unseen_is_not_missing_in_the_problems() {
    let missing = [
        "tag-empty",
        "tag-dangling",
        "tag-history-dangling",
        "revision-missing-data",
        "layer-missing",
        "config-missing",
        "layer-not-linked",
        "config-not-linked",
        "blob-without-data",
    ];
    for rel in symlink_cases().into_iter().skip(3) {
        let (_tree, root) = symlinked(&rel);
        let (_, v) = common::json(&["scan", root.to_str().unwrap()]);
        let problems = v["problems"].as_array().unwrap();
        assert!(problems.iter().any(|p| p["code"] == "symlink" && p["path"] == rel.as_str()), "{rel}: {v}");
        let wrong: Vec<&serde_json::Value> =
            problems.iter().filter(|p| missing.contains(&p["code"].as_str().unwrap())).collect();
        assert!(wrong.is_empty(), "{rel}: {wrong:?}");
    }
    // A served answer the symlink decides is not known, and says so.
    let (_tree, root) = symlinked(&format!("{V2}/blobs/sha256/42/{H42}/data"));
    let run = regaudit(&["inspect", root.to_str().unwrap(), "app:v1"]);
    assert!(run.stdout.contains("GET not modelled"), "{}", run.stdout);
}

/// An unreadable link, likewise: only the `unreadable` problem.
#[test]
#[ignore = "needs root"]
fn an_unreadable_link_is_not_missing_in_the_problems() {
    if !can_drop_privileges() {
        return;
    }
    for fault in [
        "repositories/app/_manifests/tags/v1/current/link".to_string(),
        format!("repositories/app/_layers/sha256/{H45}/link"),
    ] {
        let tree = Faulty::new(&fault, &no_prepare);
        let (_, v, _) = tree.regaudit(&["scan"]);
        let codes: Vec<&str> = v["problems"].as_array().unwrap().iter().map(|p| p["code"].as_str().unwrap()).collect();
        assert_eq!(codes, ["unreadable"], "{fault}: {v}");
    }
}

/// A symlink only matters where the real run reads: tags only under
/// `--delete-untagged`; `_layers` (2.8) only for the hazards of deleted blobs.
#[test]
fn a_symlink_the_run_never_reads_leaves_gc_complete() {
    let (_tree, root) = symlinked(&format!("{V2}/repositories/app/_manifests/tags/v1/current/link"));
    let root_s = root.to_str().unwrap();
    let (code, v) = common::json(&["gc", root_s]);
    assert_eq!((code, &v["incomplete"]), (0, &serde_json::Value::Bool(false)), "{v}");
    let (code, v) = common::json(&["gc", root_s, "--delete-untagged"]);
    assert_eq!((code, &v["incomplete"]), (2, &serde_json::Value::Bool(true)), "{v}");
    let (_tree, root) = symlinked(&format!("{V2}/repositories/app/_layers/sha256/{H45}/link"));
    let root_s = root.to_str().unwrap();
    let (code, v) = common::json(&["gc", root_s]);
    assert_eq!((code, &v["incomplete"]), (0, &serde_json::Value::Bool(false)), "nothing is deleted: {v}");
    let (code, v) = common::json(&["gc", "--target", "3", root_s]);
    assert_eq!((code, &v["incomplete"]), (2, &serde_json::Value::Bool(true)), "v3 reads _layers: {v}");
}

/// ENAMETOOLONG: a repository nested deeper than PATH_MAX. regaudit walks it
/// through descriptors, but the registry opens full paths: its walk fails
/// there, and so does the prediction, with the same message.
#[test]
fn a_path_too_long_for_the_registry_aborts_as_the_real_gc_does() {
    if !registry::require() {
        return;
    }
    let tree = common::scratch("trees/minimal");
    let base = tree.path().join(V2).join("repositories/deep");
    std::fs::create_dir(&base).unwrap();
    // The shell's cd has no path limit; 2,200 levels make a path of about 4,500 bytes.
    let made = Command::new("sh")
        .arg("-c")
        .arg("i=0; while [ $i -lt 2200 ]; do mkdir a && cd -P a || exit 1; i=$((i+1)); done; mkdir _layers")
        .current_dir(&base)
        .status()
        .unwrap();
    assert!(made.success());
    let v3 = v3_binary();
    for (target, binary) in [("2.8", registry::BINARY), ("3", v3.as_str())] {
        let (code, v) = common::json(&["gc", "--target", target, tree.path().to_str().unwrap()]);
        assert_eq!(code, 1, "{v}");
        let ours = v["aborts"]["message"].as_str().unwrap();
        assert!(ours.ends_with(": file name too long"), "{ours}");
        let cfg = tree.path().join("config.yml");
        std::fs::write(&cfg, registry::config(tree.path(), 5000, "")).unwrap();
        let real = Command::new(binary).args(["garbage-collect", "--dry-run"]).arg(&cfg).output().unwrap();
        std::fs::remove_file(&cfg).unwrap();
        assert!(!real.status.success());
        assert!(same_abort(ours, &String::from_utf8_lossy(&real.stderr)), "{target}: ours {ours}");
    }
}
