//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod registry;
pub mod s3;

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(rel)
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary without colour.
pub fn regaudit(args: &[&str]) -> Run {
    let out =
        Command::new(env!("CARGO_BIN_EXE_regaudit")).args(args).env("NO_COLOR", "1").output().expect("run regaudit");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn json(args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let run = regaudit(&all);
    let mut v: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    // The provenance header changes every run (times, paths); snapshots leave it out.
    if let Some(o) = v.as_object_mut() {
        o.shift_remove("provenance");
    }
    (run.code, v)
}

/// Copies a tree, keeping symlinks as symlinks.
pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        let ft = entry.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A scratch copy of a testdata tree.
pub fn scratch(rel: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&testdata(rel), dir.path());
    dir
}

/// Every storage root in testdata, as `trees/NAME` then `broken/NAME`, sorted.
pub fn all_trees() -> Vec<String> {
    let mut out = Vec::new();
    for group in ["trees", "broken"] {
        let mut names: Vec<String> = std::fs::read_dir(testdata(group))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        out.extend(names.into_iter().map(|n| format!("{group}/{n}")));
    }
    out
}

pub const V2: &str = "docker/registry/v2";

/// Starts regaudit and waits until it has `file` open and has read from it
/// (its offset, from /proc, is past 0): it is then hashing that file. Only
/// hashing reads a layer's data, and the Ctrl-C handler is installed before
/// hashing starts (src/cli.rs `verify`), so a signal sent once this returns
/// meets the handler, however slow the machine.
#[allow(clippy::zombie_processes)] // the caller waits for the child it gets back
pub fn start_hashing(args: &[&str], file: &std::path::Path) -> std::process::Child {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_regaudit"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let fds = format!("/proc/{}/fd", child.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} never started hashing {}", file.display());
        }
        let reading = std::fs::read_dir(&fds).into_iter().flatten().flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|p| p == file)
                && std::fs::read_to_string(format!("/proc/{}/fdinfo/{}", child.id(), fd.file_name().to_string_lossy()))
                    .is_ok_and(|info| info.lines().any(|l| l.starts_with("pos:") && l.trim_end() != "pos:\t0"))
        });
        if reading {
            return child;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// The (path, action) pairs a `writes` operation predicts, from its JSON.
pub fn predicted_writes(op: &serde_json::Value) -> std::collections::BTreeSet<(String, String)> {
    op["writes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["path"].as_str().unwrap().to_string(), w["action"].as_str().unwrap().to_string()))
        .collect()
}
