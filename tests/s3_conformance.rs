//! `regaudit CMD s3://BUCKET/PREFIX` against the real registry on S3 (issue
//! 15 §2, §4, §5), on one shared SeaweedFS (docs/s3.md):
//!
//! - gc: for every testdata tree uploaded to a bucket, and for images pushed
//!   through the real 2.8.2 on S3, the real `garbage-collect` dry run and
//!   real run in both modes against `regaudit gc s3://...`: dry-run lines and
//!   status, the keys that disappear, the abort status and message.
//! - served: a real modern-client pull (skopeo, every tag, `--all`) from the
//!   real registry serving the bucket against `tags[].served`; schema1 GETs
//!   against `writes` (what the registry PUTs to the store, seen at a proxy).
//! - read-only: every command through the recording proxy as the read-only
//!   `auditor`: GET and HEAD only, and enough rights for every command.
//! - faults: through the fault proxy, a few faults give the answer of no
//!   faults; persistent ones give exit 2 naming the key, never a verdict;
//!   Ctrl-C during a slow listing stops cleanly.

mod common;
use common::registry::{self, Registry};
use common::s3::{self, json_as, regaudit_as, regaudit_command, Bucket, Proxy, SeaweedFs, ADMIN, AUDITOR};
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `storage.s3.rootdirectory` `/regroot`: keys are `regroot/docker/registry/v2/...`.
const PREFIX: &str = "regroot";
const NOW: &str = "2026-11-29T12:00:00Z";
const SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Keys under `PREFIX`, relative to the storage root, with size and ETag.
fn keys(bucket: &Bucket) -> BTreeMap<String, s3::Object> {
    let cut = PREFIX.len() + 1;
    bucket.list(PREFIX).into_iter().map(|(k, o)| (k[cut..].to_string(), o)).collect()
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(str::to_string).collect();
    // Blob lines come in Go map order.
    v.sort();
    v
}

/// Runs `work` on every item, three at a time (most of the wall time is
/// waiting on processes), and returns every failure it reported.
fn in_parallel<T: Send>(items: Vec<T>, work: impl Fn(T) -> Vec<String> + Sync) -> Vec<String> {
    let queue = Mutex::new(items.into_iter());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| loop {
                let Some(item) = queue.lock().unwrap().next() else { break };
                let f = work(item);
                failures.lock().unwrap().extend(f);
            });
        }
    });
    failures.into_inner().unwrap()
}

// ---------------------------------------------------------------------------
// gc against the real garbage-collect on S3

/// The real message and ours agree; for Go's decoding errors only the part
/// naming the manifest must match (as tests/gc_conformance.rs).
fn same_message(ours: &str, real: &str) -> bool {
    let key = "failed to retrieve manifest for digest ";
    match ours.find(key) {
        Some(i) => {
            let upto = i + key.len() + 71;
            real.get(..upto) == ours.get(..upto)
        }
        None => ours.trim() == real.trim(),
    }
}

/// regaudit's prediction for `bucket` in one mode: the JSON report and the
/// `--format gc-log` run (its stdout mimics the real dry run's).
fn predict_gc(bucket: &Bucket, delete_untagged: bool) -> (i32, serde_json::Value, Run) {
    let url = bucket.url(PREFIX);
    let mut args = vec!["gc", url.as_str()];
    if delete_untagged {
        args.push("--delete-untagged");
    }
    let (code, v) = json_as(AUDITOR, &bucket.s3.endpoint(), &args);
    args.extend(["--format", "gc-log"]);
    let log = regaudit_as(AUDITOR, &bucket.s3.endpoint(), &args);
    (code, v, log)
}

fn abort_of(v: &serde_json::Value) -> Option<&serde_json::Value> {
    let a = &v["aborts"];
    (!a.is_null()).then_some(a)
}

/// The dry run of `mode` against a prediction made on the same bucket.
fn check_dry_run(label: &str, bucket: &Bucket, m: bool, failures: &mut Vec<String>) {
    let label = format!("{label} (delete_untagged={m})");
    let (code, predicted, log) = predict_gc(bucket, m);
    if code == 2 {
        failures.push(format!("{label}: regaudit gc exit 2: {}", log.stderr.trim()));
        return;
    }
    let dry = bucket.garbage_collect(PREFIX, true, m);
    let dry_aborts = abort_of(&predicted).is_some_and(|a| a["dry_run_too"] == true);
    if dry.status.success() == dry_aborts {
        failures.push(format!(
            "{label}: real dry run {:?} ({}), predicted abort {}",
            dry.status,
            String::from_utf8_lossy(&dry.stderr).trim(),
            predicted["aborts"]
        ));
    }
    let real_lines = sorted_lines(&String::from_utf8_lossy(&dry.stdout));
    let our_lines = sorted_lines(&log.stdout);
    if real_lines != our_lines {
        let only_real: Vec<_> = real_lines.iter().filter(|l| !our_lines.contains(l)).collect();
        let only_ours: Vec<_> = our_lines.iter().filter(|l| !real_lines.contains(l)).collect();
        failures.push(format!("{label}: dry-run lines differ\n  only real: {only_real:?}\n  only ours: {only_ours:?}"));
    }
    if dry_aborts {
        let real = String::from_utf8_lossy(&dry.stderr);
        if !same_message(&log.stderr, &real) {
            failures.push(format!(
                "{label}: dry-run abort message\n  ours: {}\n  real: {}",
                log.stderr.trim(),
                real.trim()
            ));
        }
    }
}

/// The real run of `mode` against a prediction made just before it.
fn check_real_run(label: &str, bucket: &Bucket, m: bool, failures: &mut Vec<String>) {
    let label = format!("{label} (delete_untagged={m}, real run)");
    let (code, predicted, _) = predict_gc(bucket, m);
    if code == 2 {
        failures.push(format!("{label}: regaudit gc exit 2: {predicted}"));
        return;
    }
    let before = keys(bucket);
    let real = bucket.garbage_collect(PREFIX, false, m);
    let after = keys(bucket);
    let created: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    if !created.is_empty() {
        failures.push(format!("{label}: the real GC created {created:?}"));
    }
    let removed: Vec<String> = before.keys().filter(|k| !after.contains_key(*k)).cloned().collect();
    let predicted_removes: Vec<String> = predicted["removes"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    if predicted_removes != removed {
        let missed: Vec<_> = removed.iter().filter(|k| !predicted_removes.contains(k)).collect();
        let extra: Vec<_> = predicted_removes.iter().filter(|k| !removed.contains(k)).collect();
        failures.push(format!(
            "{label}: removes differ\n  removed, not predicted: {missed:?}\n  predicted, kept: {extra:?}"
        ));
    }
    let aborts = abort_of(&predicted);
    if real.status.success() == aborts.is_some() {
        failures.push(format!(
            "{label}: real run {:?} ({}), predicted abort {}",
            real.status,
            String::from_utf8_lossy(&real.stderr).trim(),
            predicted["aborts"]
        ));
    }
    if let Some(a) = aborts {
        let ours = a["message"].as_str().unwrap_or_default();
        let real = String::from_utf8_lossy(&real.stderr);
        if !same_message(ours, &real) {
            failures.push(format!("{label}: abort message\n  ours: {ours}\n  real: {}", real.trim()));
        }
    }
}

/// Both dry runs on the bucket as it is, then the real run without
/// `--delete-untagged` on it and the real run with it on `twin` (the same
/// keys in another bucket): a second run on what a first one left would
/// meet SeaweedFS's stale prefixes (a "folder" whose last key went is
/// still listed for a while, docs/s3.md), which real S3 does not show.
fn check_gc(label: &str, bucket: &Bucket, twin: &Bucket) -> Vec<String> {
    let mut failures = Vec::new();
    let listed = keys(bucket);
    for m in [false, true] {
        check_dry_run(label, bucket, m, &mut failures);
    }
    if keys(bucket) != listed {
        failures.push(format!("{label}: a dry run changed the bucket"));
    }
    if keys(twin) != listed {
        failures.push(format!("{label}: the twin bucket holds other keys"));
    }
    check_real_run(label, bucket, false, &mut failures);
    check_real_run(label, twin, true, &mut failures);
    failures
}

#[test]
fn gc_matches_the_real_gc_on_s3_on_every_tree() {
    if !s3::require() {
        return;
    }
    let s3 = SeaweedFs::shared();
    let started = Instant::now();
    let failures = in_parallel(all_trees(), |rel| {
        let [bucket, twin] = ["gc", "gc2"].map(|l| s3.bucket(&format!("{l}-{rel}")));
        // broken/symlink: its symlinks are not uploaded (S3 holds none).
        bucket.upload(&testdata(&rel), PREFIX);
        twin.upload(&testdata(&rel), PREFIX);
        check_gc(&rel, &bucket, &twin)
    });
    eprintln!("gc on S3, {} trees: {:?}", all_trees().len(), started.elapsed());
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

/// Pushes with skopeo from `from` to `to` (`--all` for a list).
fn skopeo_copy(from: &str, to: &str, all: bool) -> Output {
    let mut cmd = Command::new("skopeo");
    cmd.args(["copy", "--src-tls-verify=false", "--dest-tls-verify=false"]);
    if all {
        cmd.arg("--all");
    }
    cmd.arg(from).arg(to).output().expect("run skopeo")
}

#[test]
fn gc_and_served_match_the_real_registry_on_images_pushed_through_it() {
    if !s3::require() {
        return;
    }
    let s3 = SeaweedFs::shared();
    let (_src_dir, src_root) = registry::scratch_copy(&testdata("trees/minimal-multi"));
    let source = Registry::serve(&src_root);
    let [bucket, twin] = ["pushed", "pushed2"].map(|l| s3.bucket(l));
    for b in [&bucket, &twin] {
        let reg = b.serve(PREFIX);
        // v1, the list, then the list again under v1: v1's first image is
        // left untagged (what --delete-untagged removes).
        for (src, dst, all) in [
            ("app:v1", "copied/app:v1", false),
            ("app:multi", "copied/app:multi", true),
            ("app:multi", "copied/app:v1", true),
        ] {
            let out = skopeo_copy(
                &format!("docker://127.0.0.1:{}/{src}", source.port),
                &format!("docker://{}/{dst}", reg.addr()),
                all,
            );
            assert!(out.status.success(), "skopeo {src} -> {dst}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let mut failures = Vec::new();
    let (served, pulled) = check_served("pushed", &bucket, &mut failures);
    assert!(pulled >= 2 && served >= 2, "{pulled} tags pulled, {served} served");
    failures.extend(check_gc("pushed", &bucket, &twin));
    // --delete-untagged removed v1's first image from the twin.
    let (kept, untagged_gone) = (keys(&bucket).len(), keys(&twin).len());
    assert!(untagged_gone < kept, "the real GC with --delete-untagged removed nothing ({untagged_gone} keys, {kept})");
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

// ---------------------------------------------------------------------------
// served against a modern-client pull; writes against schema1 GETs

/// `/BUCKET/regroot/KEY` (percent-encoded) as KEY relative to the storage root.
fn key_of_path(bucket: &Bucket, path: &str) -> Option<String> {
    let raw = path.strip_prefix(&format!("/{}/{PREFIX}/", bucket.name))?.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = raw.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b) if raw[i] == b'%' => {
                out.push(b);
                i += 3;
            }
            _ => {
                out.push(raw[i]);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Pulls every tag regaudit lists with skopeo (`--all`: every child, config
/// and layer) from the real registry serving the bucket, through a proxy
/// that must see no write. Returns (tags served, tags pulled).
fn check_served(label: &str, bucket: &Bucket, failures: &mut Vec<String>) -> (usize, usize) {
    let url = bucket.url(PREFIX);
    let (code, tags) = json_as(AUDITOR, &bucket.s3.endpoint(), &["tags", &url]);
    if code == 2 {
        failures.push(format!("{label}: regaudit tags exit 2: {tags}"));
        return (0, 0);
    }
    let proxy = Proxy::start(bucket.s3, &[]);
    let reg = bucket.serve_via(PREFIX, &proxy.endpoint());
    let (mut served, mut pulled) = (0, 0);
    for t in tags["tags"].as_array().unwrap() {
        let (repo, tag) = (t["repository"].as_str().unwrap(), t["tag"].as_str().unwrap());
        let dest = tempfile::tempdir().unwrap();
        let out = skopeo_copy(
            &format!("docker://{}/{repo}:{tag}", reg.addr()),
            &format!("dir:{}", dest.path().join("image").display()),
            true,
        );
        pulled += 1;
        let predicted = t["served"] == true;
        served += usize::from(predicted);
        let err = String::from_utf8_lossy(&out.stderr);
        // `served` is about statuses: the registry serves corrupt bytes
        // with 200; the client refuses them afterwards.
        let corrupt = err.contains("did not match") || err.contains("Digest did not match");
        let agree = out.status.success() == predicted || (predicted && corrupt);
        if !agree {
            failures.push(format!(
                "{label} {repo}:{tag}: skopeo pull {}, predicted served={predicted} {}\n  {}",
                if out.status.success() { "succeeded" } else { "failed" },
                t["not_served"],
                err.trim()
            ));
        }
    }
    let writes = proxy.writes();
    if !writes.is_empty() {
        failures.push(format!("{label}: the pulls wrote {writes:?}"));
    }
    (served, pulled)
}

/// Sends GET with a schema1 Accept and with none for every tag `writes`
/// names, to the real registry serving the bucket through a recording
/// proxy: what it PUTs and DELETEs must be what was predicted, and the
/// status too. After a request that wrote, the bucket is put back.
/// Returns the number of requests that wrote.
fn check_writes(label: &str, rel: &str, bucket: &Bucket, failures: &mut Vec<String>) -> usize {
    let url = bucket.url(PREFIX);
    let (code, prediction) = json_as(AUDITOR, &bucket.s3.endpoint(), &["writes", &url, "--now", NOW]);
    if !(code == 0 || code == 1 || (code == 2 && prediction["summary"]["incomplete"] == true)) {
        failures.push(format!("{label}: regaudit writes exit {code}"));
        return 0;
    }
    let ops: Vec<&serde_json::Value> =
        prediction["operations"].as_array().unwrap().iter().filter(|o| o["kind"] == "manifest-get-schema1").collect();
    let proxy = Proxy::start(bucket.s3, &[]);
    let reg = bucket.serve_via(PREFIX, &proxy.endpoint());
    let mut writing = 0;
    for op in ops {
        let (repo, tag) = (op["repository"].as_str().unwrap(), op["reference"].as_str().unwrap());
        for accept in [Some(SCHEMA1), None] {
            let before = keys(bucket);
            proxy.clear();
            let status = reg.get_accepting(&format!("/v2/{repo}/manifests/{tag}"), accept).unwrap_or(0);
            // The proxy records a request after answering it: let the
            // record settle before reading it.
            let mut seen = proxy.requests().len();
            loop {
                std::thread::sleep(Duration::from_millis(200));
                let now = proxy.requests().len();
                if now == seen {
                    break;
                }
                seen = now;
            }
            let after = keys(bucket);
            let mut wrote = BTreeSet::new();
            // What the listing shows (created, deleted), and every PUT
            // the proxy saw (a rewrite with the same bytes too).
            for k in after.keys().filter(|k| !before.contains_key(*k)) {
                wrote.insert((k.clone(), "create".to_string()));
            }
            for k in before.keys().filter(|k| !after.contains_key(*k)) {
                wrote.insert((k.clone(), "delete".to_string()));
            }
            for r in proxy.writes() {
                let Some(key) = key_of_path(bucket, &r.path) else {
                    wrote.insert((r.path.clone(), r.method.clone()));
                    continue;
                };
                let action = match r.method.as_str() {
                    "DELETE" => "delete",
                    "PUT" if before.contains_key(&key) => "modify",
                    "PUT" => "create",
                    other => other,
                };
                wrote.insert((key, action.to_string()));
            }
            let context = format!("{label} GET {repo}:{tag} Accept {accept:?}");
            let expected = predicted_writes(op);
            if wrote != expected {
                failures.push(format!("{context}: wrote {wrote:?}, predicted {expected:?}"));
            }
            if Some(u64::from(status)) != op["status"].as_u64() {
                failures.push(format!("{context}: status {status}, predicted {}", op["status"]));
            }
            if !wrote.is_empty() {
                writing += 1;
                restore(bucket, rel, &before);
            }
        }
    }
    writing
}

/// Puts the bucket back as `before` (the upload of testdata `rel`).
fn restore(bucket: &Bucket, rel: &str, before: &BTreeMap<String, s3::Object>) {
    let now = keys(bucket);
    let created: Vec<String> =
        now.keys().filter(|k| !before.contains_key(*k)).map(|k| format!("{PREFIX}/{k}")).collect();
    if !created.is_empty() {
        bucket.delete_keys(&created);
    }
    for (k, o) in before {
        if now.get(k) != Some(o) {
            bucket.put_file(&format!("{PREFIX}/{k}"), &testdata(rel).join(k));
        }
    }
    assert_eq!(&keys(bucket), before, "{rel}: the bucket is put back");
}

#[test]
fn served_and_writes_match_the_real_registry_on_s3_on_every_tree() {
    if !s3::require() {
        return;
    }
    let s3 = SeaweedFs::shared();
    let started = Instant::now();
    let totals = Mutex::new((0, 0, 0));
    let failures = in_parallel(all_trees(), |rel| {
        let bucket = s3.bucket(&format!("serve-{rel}"));
        bucket.upload(&testdata(&rel), PREFIX);
        let mut failures = Vec::new();
        let (served, pulled) = check_served(&rel, &bucket, &mut failures);
        let writing = check_writes(&rel, &rel, &bucket, &mut failures);
        let mut t = totals.lock().unwrap();
        *t = (t.0 + served, t.1 + pulled, t.2 + writing);
        failures
    });
    let (served, pulled, writing) = totals.into_inner().unwrap();
    eprintln!(
        "served on S3: {pulled} tags pulled, {served} predicted served, {writing} schema1 GETs wrote ({:?})",
        started.elapsed()
    );
    assert!(pulled > 30 && served > 20, "only {pulled} tags pulled, {served} served");
    assert!(writing >= 10, "only {writing} requests wrote");
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

// ---------------------------------------------------------------------------
// Read-only by construction

#[test]
fn every_command_only_reads_and_the_auditor_is_enough() {
    if !s3::require() {
        return;
    }
    let s3 = SeaweedFs::shared();
    let bucket = s3.bucket("read-only");
    bucket.upload(&testdata("trees/full"), PREFIX);
    let url = bucket.url(PREFIX);
    let proxy = Proxy::start(s3, &[]);
    let (_, tags) = json_as(AUDITOR, &s3.endpoint(), &["tags", &url]);
    let first = &tags["tags"][0];
    let reference = format!("{}:{}", first["repository"].as_str().unwrap(), first["tag"].as_str().unwrap());
    let dest = tempfile::tempdir().unwrap();
    let layout = dest.path().join("layout");
    let local = testdata("trees/full");
    let commands: Vec<Vec<&str>> = vec![
        vec!["scan", &url, "--verify"],
        vec!["tags", &url, "--verify"],
        vec!["inspect", &url, &reference],
        vec!["verify", &url],
        vec!["export", &url, &reference, layout.to_str().unwrap()],
        vec!["diff", &url, local.to_str().unwrap()],
        vec!["diff", &url, &url],
        vec!["du", &url],
        vec!["gc", &url, "--format", "gc-log"],
        vec!["gc", &url, "--delete-untagged", "--format", "json"],
        vec!["writes", &url, "--now", NOW],
        vec!["timeline", &url],
    ];
    let mut failures = Vec::new();
    for args in &commands {
        proxy.clear();
        let run = regaudit_as(AUDITOR, &proxy.endpoint(), args);
        let reqs = proxy.requests();
        // Exit 2 only for an answer that says what it does not model
        // (`writes` on a bucket with `_uploads`), never for a refusal.
        let incomplete = run.code == 2 && run.stderr.contains("regaudit: incomplete");
        if ![0, 1].contains(&run.code) && !incomplete {
            failures.push(format!("{args:?}: exit {}: {}", run.code, run.stderr.trim()));
        }
        if reqs.is_empty() {
            failures.push(format!("{args:?}: no request went through the proxy"));
        }
        let writes: Vec<_> = reqs.iter().filter(|r| !r.is_read()).collect();
        if !writes.is_empty() {
            failures.push(format!("{args:?}: sent {writes:?}"));
        }
        let denied: Vec<_> = reqs.iter().filter(|r| r.status == 403).collect();
        if !denied.is_empty() {
            failures.push(format!("{args:?}: the auditor was refused {denied:?}"));
        }
        for secret in [AUDITOR.secret_key, ADMIN.secret_key] {
            if run.stdout.contains(secret) || run.stderr.contains(secret) {
                failures.push(format!("{args:?}: a secret key appears in the output"));
            }
        }
        eprintln!("{args:?}: exit {}, {} requests", run.code, reqs.len());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// Faults never become answers

/// What must not change under faults: the exit code and the verdicts.
fn verdict(cmd: &str, code: i32, v: &serde_json::Value) -> serde_json::Value {
    match cmd {
        "gc" => {
            serde_json::json!({"code": code, "removes": v["removes"], "aborts": v["aborts"], "incomplete": v["incomplete"]})
        }
        _ => serde_json::json!({"code": code, "tags": v["tags"]}),
    }
}

/// A generated tree of a few thousand keys (several listing pages), and
/// trees/full beside it: both in one bucket, which every fault case reads.
fn fault_bucket(s3: &SeaweedFs) -> Bucket<'_> {
    let bucket = s3.bucket("faults");
    let dir = tempfile::tempdir().unwrap();
    let gen = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/gen-bench-tree"))
        .arg(dir.path())
        .args(["--repos", "100", "--tags", "4", "--layers", "3"])
        .output()
        .unwrap();
    assert!(gen.status.success(), "gen-bench-tree: {}", String::from_utf8_lossy(&gen.stderr));
    copy_tree(&testdata("trees/full"), dir.path());
    let up = bucket.upload(dir.path(), PREFIX);
    // gen-bench-tree's repositories all start with `t`: one listing range
    // of several pages, so a later page can fail.
    assert!(up.objects > 3000, "{} objects: the listing must take several pages", up.objects);
    bucket
}

#[test]
fn faults_are_ridden_out_or_reported_never_answered() {
    if !s3::require() {
        return;
    }
    let s3 = SeaweedFs::shared();
    let bucket = fault_bucket(s3);
    let url = bucket.url(PREFIX);
    let commands: [(&str, Vec<&str>); 2] =
        [("gc", vec!["gc", &url, "--delete-untagged"]), ("tags", vec!["tags", &url])];
    let baseline: Vec<serde_json::Value> = commands
        .iter()
        .map(|(cmd, args)| {
            let (code, v) = json_as(AUDITOR, &s3.endpoint(), args);
            assert!(code == 0 || code == 1, "{args:?} without faults: exit {code}: {v}");
            verdict(cmd, code, &v)
        })
        .collect();
    assert!(baseline[0]["removes"].as_array().is_some_and(|r| !r.is_empty()), "gc removes something: {}", baseline[0]);

    // A few faults: retried, the same answer.
    let few: Vec<Vec<&str>> = vec![
        vec!["--slowdown-every", "3", "--max-faults", "4"],
        vec!["--error500-every", "3", "--max-faults", "4"],
        vec!["--reset-every", "3", "--max-faults", "4"],
        vec!["--truncate-every", "3", "--max-faults", "4"],
        vec!["--list-page-fail", "2"],
        // One stall past the request timeout (30 s).
        vec!["--stall-every", "5", "--max-faults", "1", "--stall-seconds", "40"],
    ];
    let started = Instant::now();
    let mut failures = in_parallel(few, |faults| {
        let mut failures = Vec::new();
        for ((cmd, args), want) in commands.iter().zip(&baseline) {
            // A stall costs the 30 s request timeout: gc only.
            if faults.contains(&"--stall-every") && *cmd != "gc" {
                continue;
            }
            let proxy = Proxy::start(s3, &faults);
            let run = regaudit_as(AUDITOR, &proxy.endpoint(), &[args.as_slice(), &["--format", "json"]].concat());
            let injected = proxy.requests().iter().filter(|r| r.fault.is_some()).count();
            if injected == 0 {
                failures.push(format!("{faults:?} {cmd}: no fault was injected"));
            }
            let got = serde_json::from_str::<serde_json::Value>(&run.stdout)
                .map(|v| verdict(cmd, run.code, &v))
                .unwrap_or_else(|_| serde_json::json!({"code": run.code, "stderr": run.stderr}));
            if &got != want {
                failures.push(format!(
                    "{faults:?} {cmd} ({injected} faults): {}\n  without faults: {}",
                    short(&got),
                    short(want)
                ));
            }
        }
        failures
    });
    eprintln!("few faults: {:?}", started.elapsed());

    // Persistent faults: exit 2, the key named, no verdict.
    let manifest = bucket
        .list(PREFIX)
        .into_keys()
        .find(|k| k.contains("/_manifests/revisions/sha256/") && k.ends_with("/link"))
        .and_then(|k| k.split('/').rev().nth(1).map(str::to_string))
        .unwrap();
    let data_key = format!("docker/registry/v2/blobs/sha256/{}/{manifest}/data", &manifest[..2]);
    let get_data = format!("^GET /{}/{PREFIX}/{data_key}", bucket.name);
    // What must be named: the key, or for a listing the root's URL.
    let persistent: Vec<(Vec<String>, &str)> = vec![
        (vec!["--error500-every".into(), "1".into(), "--match".into(), get_data.clone()], data_key.as_str()),
        (vec!["--slowdown-every".into(), "1".into(), "--match".into(), "list-type=2".into()], url.as_str()),
        (vec!["--list-page-fail".into(), "1000".into()], url.as_str()),
    ];
    let started = Instant::now();
    failures.extend(in_parallel(persistent, |(faults, named)| {
        let faults: Vec<&str> = faults.iter().map(String::as_str).collect();
        let proxy = Proxy::start(s3, &faults);
        let mut failures = Vec::new();
        for format in ["json", "gc-log"] {
            let run = regaudit_as(AUDITOR, &proxy.endpoint(), &["gc", &url, "--delete-untagged", "--format", format]);
            let label = format!("{faults:?} gc --format {format}");
            if run.code != 2 {
                failures.push(format!("{label}: exit {}, not 2: {}", run.code, short(&run.stderr.trim().into())));
            }
            let injected = proxy.requests().iter().filter(|r| r.fault.is_some()).count();
            if injected == 0 {
                failures.push(format!("{label}: no fault was injected"));
            }
            if !run.stdout.contains(named) && !run.stderr.contains(named) {
                failures.push(format!(
                    "{label}: {named} is not named\n  {}\n  {}",
                    run.stdout.trim(),
                    run.stderr.trim()
                ));
            }
            if run.stdout.contains("eligible for deletion") {
                failures.push(format!("{label}: a gc-log verdict on a partial read"));
            }
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&run.stdout) {
                if v["removes"].as_array().is_some() && v["incomplete"] != true {
                    let why = short(&v["aborts"]["message"]);
                    failures.push(format!("{label}: a removes verdict on a partial read (aborts: {why})"));
                }
            }
        }
        let run = regaudit_as(AUDITOR, &proxy.endpoint(), &["tags", &url, "--format", "json"]);
        if run.code != 2 {
            failures.push(format!("{faults:?} tags: exit {}, not 2", run.code));
        }
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&run.stdout) {
            let verdicts =
                v["tags"].as_array().into_iter().flatten().any(|t| t["served"] == false && t["served_unknown"] != true);
            if verdicts && named == data_key {
                failures.push(format!("{faults:?} tags: a not-served verdict from an unread manifest"));
            }
        }
        failures
    }));
    eprintln!("persistent faults: {:?}", started.elapsed());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Ctrl-C while the listing stalls: regaudit stops within seconds and
/// prints no verdict. On a filesystem an interrupt outside hashing ends
/// the process by the signal (no handler yet), during hashing with exit 2
/// and `regaudit: interrupted`: either is clean.
#[test]
fn ctrl_c_during_a_slow_listing_stops_cleanly() {
    if !s3::require() {
        return;
    }
    let s3 = SeaweedFs::shared();
    let bucket = s3.bucket("ctrl-c");
    bucket.upload(&testdata("trees/minimal"), PREFIX);
    let proxy = Proxy::start(s3, &["--stall-every", "1", "--stall-seconds", "60", "--match", "list-type=2"]);
    let url = bucket.url(PREFIX);
    for args in [vec!["gc", url.as_str(), "--format", "json"], vec!["tags", url.as_str()]] {
        let child = regaudit_command(AUDITOR, &proxy.endpoint())
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the listing is under way: a connection to the proxy
        // (which records a request only once answered, here after the stall).
        let deadline = Instant::now() + Duration::from_secs(20);
        while !connected_to(proxy.port) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(connected_to(proxy.port), "{args:?}: regaudit never reached the proxy");
        std::thread::sleep(Duration::from_millis(300));
        let sent = Instant::now();
        Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
        let out = child.wait_with_output().unwrap();
        let took = sent.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(took < Duration::from_secs(10), "{args:?}: {took:?} after SIGINT");
        use std::os::unix::process::ExitStatusExt;
        let by_signal = out.status.signal() == Some(2);
        let reported = out.status.code() == Some(2) && stderr.contains("interrupted");
        assert!(by_signal || reported, "{args:?}: {:?}: {stderr}", out.status);
        eprintln!("{args:?}: stopped {took:?} after SIGINT: {:?}", out.status);
        assert!(!String::from_utf8_lossy(&out.stdout).contains("\"removes\": ["), "{args:?}: a verdict");
        proxy.clear();
    }
}

/// Whether a TCP connection to 127.0.0.1:`port` is established (from
/// /proc/net/tcp: local and remote addresses in hex).
fn connected_to(port: u16) -> bool {
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let remote = format!("0100007F:{port:04X}");
    tcp.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 3 && f[2] == remote && f[3] == "01"
    })
}

/// A value cut to 300 characters, for failure messages.
fn short(v: &serde_json::Value) -> String {
    let text = match v.as_str() {
        Some(s) => s.to_string(),
        None => v.to_string(),
    };
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}
