//! Every command on an object-store root (`s3://BUCKET/PREFIX`) against the
//! same command on the directory the bucket was loaded from: SeaweedFS
//! started by the suite (docs/s3.md), testdata trees uploaded with real S3
//! PUTs, regaudit run as the read-only auditor. The JSON documents must be
//! equal once `root` and `provenance` are left out.

mod common;
use common::s3::{self, Bucket, SeaweedFs, AUDITOR};
use common::*;

use std::path::Path;
use std::process::Command;

/// The registry's `rootdirectory` in the test buckets.
const PREFIX: &str = "regroot";

/// Runs regaudit as `who` against the store at `endpoint`, with nothing of
/// the caller's AWS environment.
fn run_as(endpoint: &str, env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regaudit"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .args(args)
        .env("NO_COLOR", "1")
        .env("AWS_ENDPOINT_URL", endpoint)
        .envs(env.iter().copied())
        .output()
        .expect("run regaudit");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn auditor(s3: &SeaweedFs, args: &[&str]) -> Run {
    run_as(&s3.endpoint(), &AUDITOR.env(), args)
}

/// A JSON document without what names the root or the run.
fn document(run: &Run) -> serde_json::Value {
    let mut v: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}\nstderr: {}", run.stdout, run.stderr));
    if let Some(o) = v.as_object_mut() {
        for field in ["provenance", "root", "root_b"] {
            o.shift_remove(field);
        }
    }
    v
}

/// A bucket holding testdata `tree` under [`PREFIX`].
fn loaded<'a>(s3: &'a SeaweedFs, tree: &str) -> Bucket<'a> {
    let bucket = s3.bucket(tree);
    let up = bucket.upload(&testdata(tree), PREFIX);
    assert!(up.objects > 0, "{tree}: nothing uploaded");
    bucket
}

#[test]
fn gc_on_a_bucket_equals_gc_on_the_directory() {
    if !s3::require() {
        return;
    }
    let s3 = SeaweedFs::shared();
    let bucket = loaded(s3, "trees/full");
    let url = format!("s3://{}/{PREFIX}", bucket.name);
    let dir = testdata("trees/full");
    let local = regaudit(&["gc", dir.to_str().unwrap(), "--format", "json"]);
    let remote = auditor(s3, &["gc", &url, "--format", "json"]);
    assert_eq!(remote.code, local.code, "{}", remote.stderr);
    assert_eq!(document(&remote), document(&local));
    let _ = Path::new("");
}
