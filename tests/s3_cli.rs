//! Every command on an object-store root (`s3://BUCKET/PREFIX`) against the
//! same command on the directory the bucket was loaded from: SeaweedFS
//! started by the suite (docs/s3.md), testdata trees uploaded with real S3
//! PUTs, regaudit run as the read-only auditor. The JSON documents must be
//! equal once `root` and `provenance` are left out.

mod common;
use common::s3::{self, Bucket, SeaweedFs, AUDITOR};
use common::*;

use std::collections::{BTreeMap, BTreeSet};
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

/// A fixed time for the commands that predict at "now".
const NOW: &str = "2026-12-01T00:00:00Z";

/// Every command with its arguments after ROOT (`{ref}`: a reference of the
/// tree); `gc-log` output is compared as text.
fn commands(reference: &str) -> Vec<Vec<String>> {
    let v = |args: &[&str]| args.iter().map(|a| a.replace("{ref}", reference)).collect::<Vec<String>>();
    vec![
        v(&["scan", "--verify", "--now", NOW]),
        v(&["tags", "--verify"]),
        v(&["inspect", "{ref}", "--verify"]),
        v(&["verify"]),
        v(&["du"]),
        v(&["gc"]),
        v(&["gc", "--delete-untagged", "--target", "3"]),
        v(&["writes", "--now", NOW]),
    ]
}

/// Runs `command` (ROOT inserted after its name) on the directory and on
/// the bucket; returns a description of each difference.
fn compare(s3: &SeaweedFs, dir: &Path, url: &str, command: &[String], format: &str) -> Option<String> {
    let with_root = |root: &str| -> Vec<String> {
        let mut args = vec![command[0].clone(), root.to_string()];
        args.extend(command[1..].iter().cloned());
        args.extend(["--format".to_string(), format.to_string()]);
        args
    };
    let local_args = with_root(dir.to_str().unwrap());
    let remote_args = with_root(url);
    let local = regaudit(&local_args.iter().map(String::as_str).collect::<Vec<_>>());
    let remote = auditor(s3, &remote_args.iter().map(String::as_str).collect::<Vec<_>>());
    let (same, expected_code) = if local.code == 2 {
        // No document to compare: both must refuse alike.
        (remote.stdout.is_empty() && local.stdout.is_empty(), 2)
    } else if format == "json" {
        let (mut l, r) = (document(&local), document(&remote));
        // Go's storage errors name the driver, `s3aws` where the directory's
        // say `filesystem` (docs/registry-rules.md §10; held to the real
        // registry on S3 by tests/s3_conformance.rs).
        let mut r: serde_json::Value = serde_json::from_str(&r.to_string().replace("s3aws: ", "filesystem: ")).unwrap();
        let uploads = without_uploads(&mut l, &mut r);
        // `writes` is incomplete (exit 2) where uploads are unmodelled.
        let code = if uploads && command[0] == "writes" { 2 } else { local.code };
        (l == r, code)
    } else {
        (local.stdout == remote.stdout, local.code)
    };
    if expected_code != remote.code || !same {
        Some(format!(
            "{}: exit {} on the directory, {} on the bucket ({})\n--- directory:\n{}\n--- bucket:\n{}",
            remote_args.join(" "),
            local.code,
            remote.code,
            remote.stderr.trim(),
            local.stdout,
            remote.stdout
        ))
    } else {
        None
    }
}

/// The one difference the registry itself makes between a bucket and a
/// directory that the documents show: uploads. The s3 driver keeps an
/// upload's data as a multipart upload (s3-aws/s3.go `Writer`), so regaudit
/// lists every upload on a bucket as unmodelled, with no upload-status or
/// upload-purge operation (README, "Object storage"). Takes out of the directory's
/// document (`local`) what it predicts for uploads and out of the bucket's
/// (`remote`) the unmodelled entries, checking they name the same uploads,
/// and the summaries. Returns whether there were uploads.
fn without_uploads(local: &mut serde_json::Value, remote: &mut serde_json::Value) -> bool {
    const MARK: &str = "an upload in object storage";
    if let Some(w) = local.get_mut("writes") {
        // scan: the writes summary differs where there are uploads.
        let differs = w["operations"] != remote["writes"]["operations"];
        if differs {
            assert_eq!(remote["writes"]["incomplete"], true, "{}", remote["writes"]);
            local.as_object_mut().unwrap().shift_remove("writes");
            remote.as_object_mut().unwrap().shift_remove("writes");
        }
        return differs;
    }
    let Some(ops) = local.get_mut("operations").and_then(|o| o.as_array_mut()) else { return false };
    let mut dirs: Vec<String> = Vec::new();
    ops.retain(|op| {
        let upload = op["kind"].as_str().unwrap().starts_with("upload-");
        if upload && op["kind"] == "upload-status" {
            let path = op["writes"][0]["path"].as_str().or(op["path"].as_str()).unwrap_or_default().to_string();
            dirs.push(path);
        }
        !upload
    });
    let unmodelled = remote["unmodelled"].as_array_mut().unwrap();
    let named: Vec<String> = unmodelled
        .iter()
        .filter_map(|u| u.as_str())
        .filter(|u| u.contains(MARK))
        .map(|u| u.split_once(':').unwrap().0.to_string())
        .collect();
    unmodelled.retain(|u| !u.as_str().unwrap().contains(MARK));
    let uploads = !named.is_empty();
    assert_eq!(named.len(), dirs.len(), "unmodelled uploads {named:?}, upload-status operations {dirs:?}");
    if uploads {
        assert_eq!(remote["summary"]["incomplete"], true);
        local.as_object_mut().unwrap().shift_remove("summary");
        remote.as_object_mut().unwrap().shift_remove("summary");
    }
    uploads
}

/// Every command on the bucket gives the document it gives on the
/// directory, for `tree` (whose reference `reference` inspect reads).
fn equivalence(tree: &str, reference: &str) {
    let s3 = SeaweedFs::shared();
    let bucket = loaded(s3, tree);
    let url = format!("s3://{}/{PREFIX}", bucket.name);
    let dir = testdata(tree);
    let mut differences = Vec::new();
    for command in commands(reference) {
        differences.extend(compare(s3, &dir, &url, &command, "json"));
    }
    differences.extend(compare(s3, &dir, &url, &["gc".to_string()], "gc-log"));
    differences.extend(compare(s3, &dir, &url, &["diff".to_string(), dir.to_str().unwrap().to_string()], "json"));
    assert!(differences.is_empty(), "{tree}:\n{}", differences.join("\n\n"));
}

/// Every testdata tree that a bucket can hold whole (no symlink, no empty
/// directory: scripts/s3/upload.py reports what it leaves out), inspected at
/// its first tag.
#[test]
fn every_command_on_every_tree_a_bucket_can_hold() {
    if !s3::require() {
        return;
    }
    let s3 = SeaweedFs::shared();
    let mut compared = Vec::new();
    let mut differences = Vec::new();
    for tree in all_trees() {
        let bucket = s3.bucket(&tree);
        let up = bucket.upload(&testdata(&tree), PREFIX);
        if !up.skipped.is_empty() || up.objects == 0 {
            eprintln!("{tree}: not whole in a bucket ({:?})", up.skipped);
            continue;
        }
        let (_, tags) = json(&["tags", testdata(&tree).to_str().unwrap()]);
        let reference = tags["tags"]
            .as_array()
            .and_then(|t| t.first())
            .map(|t| format!("{}:{}", t["repository"].as_str().unwrap(), t["tag"].as_str().unwrap()));
        let url = format!("s3://{}/{PREFIX}", bucket.name);
        let dir = testdata(&tree);
        let mut commands = commands(reference.as_deref().unwrap_or("none:none"));
        commands.retain(|c| reference.is_some() || c[0] != "inspect");
        for command in commands {
            differences.extend(compare(s3, &dir, &url, &command, "json").map(|d| format!("{tree}: {d}")));
        }
        differences.extend(compare(s3, &dir, &url, &["gc".to_string()], "gc-log").map(|d| format!("{tree}: {d}")));
        compared.push(tree);
    }
    eprintln!("compared {} trees: {compared:?}", compared.len());
    assert!(compared.len() >= 15, "only {compared:?}");
    assert!(differences.is_empty(), "{}", differences.join("\n\n"));
}

#[test]
fn every_command_on_a_bucket_equals_the_directory_full() {
    if !s3::require() {
        return;
    }
    equivalence("trees/full", "nested/a:1");
}

#[test]
fn every_command_on_a_bucket_equals_the_directory_broken() {
    if !s3::require() {
        return;
    }
    equivalence("broken/blob-corrupt", "app:v1");
}

/// Every file of `dir`, relative path to bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().strip_prefix(dir).unwrap().display().to_string(), std::fs::read(e.path()).unwrap()))
        .collect()
}

#[test]
fn export_from_a_bucket_writes_the_layout_the_directory_gives() {
    if !s3::require() {
        return;
    }
    let s3 = SeaweedFs::shared();
    let bucket = loaded(s3, "trees/full");
    let url = format!("s3://{}/{PREFIX}", bucket.name);
    let out = tempfile::tempdir().unwrap();
    for reference in ["nested/a:1", "multi/oci-index:latest"] {
        let (a, b) = (out.path().join("from-dir"), out.path().join("from-bucket"));
        let _ = (std::fs::remove_dir_all(&a), std::fs::remove_dir_all(&b));
        let local = regaudit(&[
            "export",
            testdata("trees/full").to_str().unwrap(),
            reference,
            a.to_str().unwrap(),
            "--format",
            "json",
        ]);
        let remote = auditor(s3, &["export", &url, reference, b.to_str().unwrap(), "--format", "json"]);
        assert_eq!((local.code, remote.code), (0, 0), "{reference}: {}", remote.stderr);
        let (mut dl, mut dr) = (document(&local), document(&remote));
        dl.as_object_mut().unwrap().shift_remove("dest");
        dr.as_object_mut().unwrap().shift_remove("dest");
        assert_eq!(dr, dl, "{reference}");
        let written = files(&b);
        assert!(written.len() >= 3, "{reference}: {:?}", written.keys());
        assert_eq!(written, files(&a), "{reference}: the layouts differ");
    }
}

/// The timeline of a bucket has the events of the directory, at the times
/// S3 knows: LastModified (the upload) instead of the file's mtime, no
/// birth times; the times inside `startedat` are the same.
#[test]
fn timeline_of_a_bucket_has_the_directory_events_at_upload_times() {
    if !s3::require() {
        return;
    }
    let s3 = SeaweedFs::shared();
    let before = chrono::Utc::now() - chrono::Duration::seconds(2);
    let bucket = loaded(s3, "trees/full");
    let after = chrono::Utc::now() + chrono::Duration::seconds(2);
    let url = format!("s3://{}/{PREFIX}", bucket.name);
    let local = regaudit(&["timeline", testdata("trees/full").to_str().unwrap(), "--format", "json"]);
    let remote = auditor(s3, &["timeline", &url, "--format", "json"]);
    assert_eq!((local.code, remote.code), (0, 0), "{}", remote.stderr);
    let (dl, dr) = (document(&local), document(&remote));
    assert_eq!(dr["problems"], dl["problems"]);
    let events = |doc: &serde_json::Value, remote: bool| -> Vec<String> {
        let mut out: Vec<String> = doc["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["source"] != "birth")
            .map(|e| {
                let mut e = e.clone();
                let time = e.as_object_mut().unwrap().shift_remove("time").unwrap();
                if remote && e["source"] == "mtime" {
                    let t: chrono::DateTime<chrono::Utc> = time.as_str().unwrap().parse().unwrap();
                    assert!(before <= t && t <= after, "{e}: {t} is not the upload time");
                } else if e["source"] == "startedat" {
                    e["time"] = time;
                }
                e.to_string()
            })
            .collect();
        out.sort();
        out
    };
    let remote_events = events(&dr, true);
    assert!(remote_events.len() > 10, "{remote_events:?}");
    assert!(!dr["events"].as_array().unwrap().iter().any(|e| e["source"] == "birth"));
    assert_eq!(remote_events, events(&dl, false));
    let tags = |doc: &serde_json::Value| -> Vec<serde_json::Value> {
        doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let mut t = t.clone();
                t.as_object_mut().unwrap().shift_remove("set_at");
                t
            })
            .collect()
    };
    assert_eq!(tags(&dr), tags(&dl));
}

/// The provenance of a bucket's document: the URL, and what it cost.
#[test]
fn provenance_records_the_requests_bytes_and_listing_times() {
    if !s3::require() {
        return;
    }
    let s3 = SeaweedFs::shared();
    let bucket = loaded(s3, "trees/full");
    let url = format!("s3://{}/{PREFIX}/", bucket.name);
    let objects = bucket.list(PREFIX).len() as u64;
    let started = chrono::Utc::now();
    let run = auditor(s3, &["scan", &url, "--verify", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let trimmed = url.trim_end_matches('/');
    assert_eq!(v["root"], trimmed);
    let root = &v["provenance"]["roots"][0];
    assert_eq!(root["given"], url.as_str());
    assert_eq!(root["resolved"], trimmed);
    assert!(root["device"].is_null() && root["inode"].is_null(), "{root}");
    let cost = &root["object_store"];
    assert_eq!(cost["objects_listed"], objects, "{cost}");
    let n = |k: &str| cost["requests"][k].as_u64().unwrap();
    assert!(n("list") >= 1, "{cost}");
    // --verify reads every blob: at least one GET each, and their bytes.
    let blob_bytes: u64 = bucket
        .list(PREFIX)
        .iter()
        .filter(|(k, _)| k.ends_with("/data") && k.contains("/blobs/"))
        .map(|(_, o)| o.size)
        .sum();
    assert!(cost["bytes_read"].as_u64().unwrap() >= blob_bytes, "{cost} < {blob_bytes}");
    assert_eq!(n("total"), n("list") + n("get") + n("head"));
    let time = |k: &str| cost[k].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    assert!(started <= time("listing_started") && time("listing_started") <= time("listing_finished"), "{cost}");
    // docs/json.md documents exactly these fields (tests/json_docs.rs sees
    // only directory roots).
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md")).unwrap();
    let documented: BTreeSet<String> = docs
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.strip_prefix("roots[].object_store."))
        .map(str::to_string)
        .collect();
    let mut real = BTreeSet::new();
    for (k, v) in cost.as_object().unwrap() {
        real.insert(k.clone());
        if let Some(o) = v.as_object() {
            real.extend(o.keys().map(|sub| format!("{k}.{sub}")));
        }
    }
    assert_eq!(real, documented, "docs/json.md and the real object_store block differ");
    // --report-digest seals a bucket's report in a local file.
    let sealed = tempfile::tempdir().unwrap();
    let file = sealed.path().join("report.sha256");
    let run = auditor(s3, &["tags", &url, "--format", "json", "--report-digest", file.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let hex = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(run.stdout.as_bytes()));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), format!("{hex}  -\n"));
    // A directory root has none.
    let local = regaudit(&["scan", testdata("trees/full").to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&local.stdout).unwrap();
    assert!(v["provenance"]["roots"][0].get("object_store").is_none());
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
}

/// The requests a run on a bucket made, from its provenance.
fn cost(run: &Run, root: usize) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout, run.stderr));
    v["provenance"]["roots"][root]["object_store"].clone()
}

/// `--read-all` reads every link: more GETs, the same answer. Without it,
/// a link whose listed size and ETag prove its content is not read, so gc
/// GETs little more than the manifests. Diff of a bucket with itself: each
/// root has its own cost.
#[test]
fn read_all_reads_every_link_and_answers_the_same() {
    if !s3::require() {
        return;
    }
    let s3 = SeaweedFs::shared();
    let bucket = loaded(s3, "trees/full");
    let url = format!("s3://{}/{PREFIX}", bucket.name);
    let keys = bucket.list(PREFIX);
    let links = keys.keys().filter(|k| k.ends_with("/link")).count() as u64;
    let inferred = auditor(s3, &["gc", &url, "--format", "json"]);
    let read_all = auditor(s3, &["gc", &url, "--read-all", "--format", "json"]);
    assert!(inferred.code < 2 && read_all.code == inferred.code, "{}{}", inferred.stderr, read_all.stderr);
    assert_eq!(document(&inferred), document(&read_all));
    let (a, b) = (cost(&inferred, 0), cost(&read_all, 0));
    eprintln!("gc on trees/full ({} objects, {links} links): inferred {a}\nread-all {b}", keys.len());
    let gets = |c: &serde_json::Value| c["requests"]["get"].as_u64().unwrap();
    assert!(gets(&b) >= gets(&a) + links / 2, "--read-all made {} GETs, without {}", gets(&b), gets(&a));
    for command in [&["scan"][..], &["tags"], &["writes"], &["du"], &["verify"]] {
        let mut args: Vec<&str> = vec![command[0], &url];
        args.extend(&command[1..]);
        args.extend(["--format", "json"]);
        let run = auditor(s3, &args);
        eprintln!("{}: {}", command.join(" "), cost(&run, 0));
    }
    let diff = auditor(s3, &["diff", &url, &url, "--format", "json"]);
    assert_eq!(diff.code, 0, "{}", diff.stderr);
    let (first, second) = (cost(&diff, 0), cost(&diff, 1));
    assert!(first["requests"]["list"].as_u64().unwrap() >= 1 && second["requests"]["list"].as_u64().unwrap() >= 1);
}

/// On a terminal, stderr shows what a bucket costs as it goes (objects
/// listed, bytes read, requests by kind, rate); the line is gone before the
/// report. `script` gives regaudit a real pseudo-terminal; `--rate-limit`
/// makes the run last long enough to be drawn several times.
#[test]
fn progress_on_a_terminal_shows_the_cost() {
    if !s3::require() {
        return;
    }
    let s3 = SeaweedFs::shared();
    let bucket = loaded(s3, "trees/full");
    let url = format!("s3://{}/{PREFIX}", bucket.name);
    let objects = bucket.list(PREFIX).len();
    let regaudit = env!("CARGO_BIN_EXE_regaudit");
    let line = format!("{regaudit} gc {url} --rate-limit 20 --format gc-log 2>&1");
    let run = |extra: &str| {
        let mut cmd = Command::new("script");
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        let out = cmd
            .args(["-qec", &format!("{line} {extra}"), "/dev/null"])
            .env("AWS_ENDPOINT_URL", s3.endpoint())
            .envs(AUDITOR.env())
            .env("TERM", "xterm")
            .env_remove("NO_COLOR")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = run("");
    assert!(shown.contains(&format!("{url}: {objects} objects listed")), "{shown}");
    assert!(shown.contains("requests (1 LIST, ") && shown.contains("requests/s"), "{shown}");
    // The report itself is whole after the progress line.
    let report = auditor(s3, &["gc", &url, "--format", "gc-log"]);
    let last = report.stdout.lines().last().unwrap();
    assert!(shown.contains(last), "{last:?} not in {shown}");
    // --no-progress: none.
    let quiet = run("--no-progress");
    assert!(!quiet.contains("objects listed"), "{quiet}");
}

/// A command that cannot run: exit 2, nothing on stdout, one line on
/// stderr that says `want`, and no credential anywhere.
fn refused(run: &Run, want: &str, secrets: &[&str]) {
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "not one line: {}", run.stderr);
    assert!(lines[0].starts_with("regaudit: ") && lines[0].contains(want), "{:?} lacks {want:?}", lines[0]);
    for secret in secrets {
        assert!(!run.stderr.contains(secret), "{secret} echoed: {}", run.stderr);
    }
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    if !s3::require() {
        return;
    }
    let s3 = SeaweedFs::shared();
    let bucket = loaded(s3, "trees/minimal");
    let other = s3.bucket("not-a-registry");
    other.upload(&testdata("trees/minimal/docker/registry/v2/blobs"), "backup");
    let secrets = [AUDITOR.secret_key, AUDITOR.access_key];
    let at = |path: &str| format!("s3://{}/{path}", bucket.name);
    for command in [&["gc"][..], &["tags"], &["scan", "--verify"], &["timeline"], &["du"]] {
        let args = |url: &str| -> Vec<String> {
            let mut v = vec![command[0].to_string(), url.to_string()];
            v.extend(command[1..].iter().map(|a| a.to_string()));
            v
        };
        let go = |url: &str| {
            let a = args(url);
            auditor(s3, &a.iter().map(String::as_str).collect::<Vec<_>>())
        };
        // A prefix with nothing under it.
        refused(&go(&at("nope")), "no object under it", &secrets);
        // The v2 directory given instead of the root: the root is named.
        let v2 = go(&at(&format!("{PREFIX}/docker/registry/v2")));
        refused(&v2, &format!("give the storage root s3://{}/{PREFIX}", bucket.name), &secrets);
        // Objects, but no registry layout.
        refused(&go(&format!("s3://{}/backup", other.name)), "none below docker/registry/v2/", &secrets);
        // The bucket's top, above the registry's rootdirectory: the root is named.
        let above = go(&format!("s3://{}", bucket.name));
        refused(&above, &format!("a registry tree is at s3://{}/{PREFIX}: give that", bucket.name), &secrets);
        // No such bucket.
        let missing = go("s3://no-such-bucket-regaudit/x");
        refused(&missing, "s3://no-such-bucket-regaudit/x: no such bucket", &secrets);
    }
    let url = at(PREFIX);
    // Malformed URLs, and a URL where only a local path will do.
    refused(&auditor(s3, &["gc", "s3://"]), "s3://: no bucket name after s3://", &secrets);
    refused(&auditor(s3, &["du", &format!("{url}/../x")]), "the prefix has an empty, '.' or '..' segment", &secrets);
    let to_bucket = auditor(s3, &["export", &url, "base/schema2:latest", &at("out")]);
    refused(&to_bucket, "is an object-store URL: export writes to a local directory", &secrets);
    let digest_to_bucket = auditor(s3, &["gc", &url, "--report-digest", &at("digest")]);
    refused(&digest_to_bucket, "is an object-store URL: give a local file", &secrets);
    // A wrong secret: refused by the store, and not echoed.
    let wrong = run_as(
        &s3.endpoint(),
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAREAD"),
            ("AWS_SECRET_ACCESS_KEY", "wrong-secret-value"),
            ("AWS_REGION", "us-east-1"),
        ],
        &["gc", &url],
    );
    refused(&wrong, &format!("{url}: access denied"), &["wrong-secret-value", "AKIAREAD"]);
    // An endpoint where nothing listens.
    let started = std::time::Instant::now();
    let dead = run_as("http://127.0.0.1:9", &AUDITOR.env(), &["gc", &url, "--format", "json"]);
    refused(&dead, &format!("{url}: the endpoint cannot be reached"), &secrets);
    eprintln!("unreachable endpoint: exit 2 after {:?}: {}", started.elapsed(), dead.stderr.trim());
    eprintln!("wrong secret: {}", wrong.stderr.trim());
    // No credential at all (and no instance metadata to fall back on).
    let started = std::time::Instant::now();
    let none =
        run_as(&s3.endpoint(), &[("AWS_REGION", "us-east-1"), ("AWS_EC2_METADATA_DISABLED", "true")], &["gc", &url]);
    eprintln!("no credentials: exit {} after {:?}: {}", none.code, started.elapsed(), none.stderr.trim());
    refused(&none, &format!("{url}: no credentials"), &secrets);
}
