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
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let ft = entry.file_type().unwrap();
        if ft.is_dir() {
            copy_tree(&entry.path(), &target);
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
