//! The S3 test bed proven with the real registry, before regaudit reads
//! S3 (docs/s3.md): every testdata tree uploaded to a bucket gives the real
//! 2.8.2 `garbage-collect` on S3 the same answers as on a filesystem copy
//! (except the differences the real registry itself shows, listed in
//! S3_DIFFERENCES and docs/s3.md); skopeo pushes through the real registry
//! on S3 write the keys a filesystem push writes; the proxy records a real
//! GC's requests and injects each fault; the read-only identity gets 403.
//! One SeaweedFS serves the whole binary (`SeaweedFs::shared`).

mod common;
use common::registry::{self, Changes};
use common::s3::{self, Bucket, Proxy, SeaweedFs, ADMIN, AUDITOR};
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The storage root's place in test buckets: `storage.s3.rootdirectory`
/// `/regroot`, so keys are `regroot/docker/registry/v2/...`.
const PREFIX: &str = "regroot";

/// Trees whose real GC answers differently on S3 than on a filesystem, and
/// why (each one is in docs/s3.md). Every other tree must agree exactly;
/// a difference listed here that no longer shows fails too.
const S3_DIFFERENCES: &[(&str, &str)] = &[];

fn lines(o: &Output) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect();
    // Blob lines come in Go map order.
    v.sort();
    v
}

/// Keys under the prefix, relative to the storage root.
fn keys(bucket: &Bucket, prefix: &str) -> BTreeMap<String, s3::Object> {
    let cut = if prefix.is_empty() { 0 } else { prefix.len() + 1 };
    bucket.list(prefix).into_iter().map(|(k, o)| (k[cut..].to_string(), o)).collect()
}

/// Regular files under `root`, relative (symlinks and directories left out).
fn files(root: &Path) -> BTreeSet<String> {
    registry::snapshot(root)
        .into_iter()
        .filter(|(_, e)| matches!(e, registry::Entry::File(..)))
        .map(|(p, _)| p)
        .collect()
}

/// What one tree shows on S3 and on the filesystem, run for run.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// Per dry run (modes false, true): exit status and sorted stdout lines.
    dry: Vec<(bool, Vec<String>)>,
    /// Per real run (false, then true on what the first left): exit status
    /// and the files (keys) that disappeared.
    real: Vec<(bool, Vec<String>)>,
}

fn on_filesystem(rel: &str) -> Outcome {
    let (_dir, root) = registry::scratch_copy(&testdata(rel));
    let dry = [false, true]
        .map(|m| {
            let o = registry::garbage_collect(&root, true, m);
            (o.status.success(), lines(&o))
        })
        .to_vec();
    let mut real = Vec::new();
    for m in [false, true] {
        let before = registry::snapshot(&root);
        let o = registry::garbage_collect(&root, false, m);
        let after = registry::snapshot(&root);
        let removed = Changes::between(&before, &after).files(&after, &before).removed;
        real.push((o.status.success(), removed));
    }
    Outcome { dry, real }
}

fn on_s3(s3: &SeaweedFs, rel: &str) -> Outcome {
    let bucket = s3.bucket(rel);
    let up = bucket.upload(&testdata(rel), PREFIX);
    let listed = keys(&bucket, PREFIX);
    assert_eq!(listed.len() as u64, up.objects, "{rel}: every uploaded file is listed");
    assert_eq!(listed.keys().cloned().collect::<BTreeSet<_>>(), files(&testdata(rel)), "{rel}: keys = files");
    let dry = [false, true]
        .map(|m| {
            let o = bucket.garbage_collect(PREFIX, true, m);
            (o.status.success(), lines(&o))
        })
        .to_vec();
    assert_eq!(keys(&bucket, PREFIX), listed, "{rel}: a dry run changed the bucket");
    let mut real = Vec::new();
    for m in [false, true] {
        let before = keys(&bucket, PREFIX);
        let o = bucket.garbage_collect(PREFIX, false, m);
        let after = keys(&bucket, PREFIX);
        let created: Vec<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
        assert!(created.is_empty(), "{rel}: GC created keys {created:?}");
        let removed = before.keys().filter(|k| !after.contains_key(*k)).cloned().collect();
        real.push((o.status.success(), removed));
    }
    Outcome { dry, real }
}

#[test]
fn real_gc_on_s3_matches_the_filesystem_on_every_tree() {
    if !s3::require() {
        return;
    }
    let s3 = SeaweedFs::shared();
    // A few trees at a time: most of the wall time is waiting on processes.
    let queue = std::sync::Mutex::new(all_trees().into_iter());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| loop {
                let Some(rel) = queue.lock().unwrap().next() else { break };
                let t = Instant::now();
                // S3 holds no symlinks: broken/symlink is a different tree
                // there (symlinks_are_skipped_by_the_upload).
                let fs = (rel != "broken/symlink").then(|| on_filesystem(&rel));
                let t_fs = t.elapsed();
                let on = on_s3(s3, &rel);
                eprintln!(
                    "{rel}: filesystem {:.1} s, S3 {:.1} s",
                    t_fs.as_secs_f64(),
                    (t.elapsed() - t_fs).as_secs_f64()
                );
                results.lock().unwrap().push((rel, fs, on));
            });
        }
    });
    let mut unexplained = Vec::new();
    let mut explained = BTreeSet::new();
    for (rel, fs, on) in results.into_inner().unwrap() {
        let Some(fs) = fs else { continue };
        if fs != on {
            match S3_DIFFERENCES.iter().find(|(t, _)| *t == rel) {
                Some(_) => {
                    explained.insert(rel.clone());
                }
                None => unexplained.push(format!("{rel}:\n  filesystem {fs:?}\n  s3         {on:?}")),
            }
        }
    }
    assert!(unexplained.is_empty(), "real GC differs on S3:\n{}", unexplained.join("\n"));
    for (t, why) in S3_DIFFERENCES {
        assert!(explained.contains(*t), "{t}: documented difference ({why}) no longer shows");
    }
}

#[test]
fn symlinks_are_skipped_by_the_upload() {
    if !s3::require() {
        return;
    }
    let bucket = SeaweedFs::shared().bucket("symlink");
    let up = bucket.upload(&testdata("broken/symlink"), PREFIX);
    let mut skipped: Vec<&str> = up.skipped.iter().map(|(p, _)| p.as_str()).collect();
    skipped.sort();
    let mut links: Vec<String> = registry::snapshot(&testdata("broken/symlink"))
        .into_iter()
        .filter(|(_, e)| matches!(e, registry::Entry::Symlink(_)))
        .map(|(p, _)| p)
        .collect();
    links.sort();
    assert!(!links.is_empty());
    assert_eq!(skipped, links, "every symlink is reported skipped, nothing else");
    assert_eq!(keys(&bucket, PREFIX).into_keys().collect::<BTreeSet<_>>(), files(&testdata("broken/symlink")));
}

/// Pushes two images (one a multi-platform list) with skopeo from the
/// registry at `from` (serving `trees/minimal-multi`) to the one at `to`.
/// Returns skopeo's debug lines about manifests, errors and fallbacks.
fn push_all(from: &str, to: &str) -> String {
    let mut notes = String::new();
    for (src, dst, all) in [("app:v1", "copied/app:v1", false), ("app:multi", "copied/app:multi", true)] {
        let mut cmd = Command::new("skopeo");
        cmd.args(["--debug", "copy", "--src-tls-verify=false", "--dest-tls-verify=false"]);
        if all {
            cmd.arg("--all");
        }
        let out = cmd.arg(format!("docker://{from}/{src}")).arg(format!("docker://{to}/{dst}")).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "skopeo {src} -> {to}: {err}");
        for l in err.lines().filter(|l| {
            (l.contains("manifests/") && l.contains("PUT"))
                || l.contains("rror")
                || l.contains("Trying")
                || l.contains("mount")
        }) {
            notes.push_str(l);
            notes.push('\n');
        }
    }
    notes
}

#[test]
fn skopeo_push_through_the_registry_on_s3_writes_the_keys_of_a_filesystem_push() {
    if !s3::require() {
        return;
    }
    let (_src_dir, src_root) = registry::scratch_copy(&testdata("trees/minimal-multi"));
    let source = registry::Registry::serve(&src_root);
    let source_addr = format!("127.0.0.1:{}", source.port);

    let fs_dir = tempfile::tempdir().unwrap();
    let (fs_notes, s3_notes);
    {
        let fs_reg = registry::Registry::serve(fs_dir.path());
        fs_notes = push_all(&source_addr, &format!("127.0.0.1:{}", fs_reg.port));
    }
    let bucket = SeaweedFs::shared().bucket("skopeo-push");
    {
        let reg = bucket.serve(PREFIX);
        s3_notes = push_all(&source_addr, &reg.addr());
        assert_eq!(reg.get_status("/v2/copied/app/manifests/v1"), Some(200), "{}", reg.log());
    }
    let on_s3 = keys(&bucket, PREFIX);
    let on_fs = files(fs_dir.path());
    assert_eq!(
        on_s3.keys().cloned().collect::<BTreeSet<_>>(),
        on_fs,
        "keys of an S3 push = files of a filesystem push\nskopeo to the filesystem:\n{fs_notes}\nskopeo to S3:\n{s3_notes}"
    );
    // Same bytes. The ETag is the MD5 of the content where the driver
    // wrote the key with one PUT (links); blob data arrives through a
    // multipart upload and a copy, whose ETag is `<md5 of part MD5s>-<parts>`.
    let mut multipart = Vec::new();
    for (k, o) in &on_s3 {
        let bytes = std::fs::read(fs_dir.path().join(k)).unwrap();
        assert_eq!(o.size, bytes.len() as u64, "{k}");
        if o.etag.contains('-') {
            multipart.push(k.clone());
        } else {
            assert_eq!(o.etag, md5_hex(&bytes), "{k}: ETag is the MD5 of the content");
        }
    }
    // Manifests are written with one PUT (MD5 ETags); layers and configs
    // come through the blob upload API (multipart).
    let manifests: BTreeSet<&str> =
        on_s3.keys().filter_map(|k| k.strip_suffix("/link")?.split("/_manifests/revisions/sha256/").nth(1)).collect();
    let uploaded: Vec<String> = on_s3
        .keys()
        .filter(|k| k.ends_with("/data") && !manifests.contains(k.rsplit('/').nth(1).unwrap()))
        .cloned()
        .collect();
    assert!(!manifests.is_empty());
    assert_eq!(multipart, uploaded, "multipart ETags on uploaded blobs' data, and only there");
}

/// MD5 in hex, by coreutils' md5sum (one use does not earn a crate).
fn md5_hex(bytes: &[u8]) -> String {
    let mut child = Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
}

#[test]
fn proxy_records_a_real_gc_and_the_auditor_cannot_write() {
    if !s3::require() {
        return;
    }
    let s3 = SeaweedFs::shared();
    let bucket = s3.bucket("proxy-record");
    // The bucket's root as the storage root (no rootdirectory).
    bucket.upload(&testdata("trees/full"), "");
    let direct = bucket.garbage_collect("", true, true);
    let proxy = Proxy::start(s3, &[]);
    let via = bucket.garbage_collect_via("", &proxy.endpoint(), true, true);
    assert!(via.status.success(), "{}", String::from_utf8_lossy(&via.stderr));
    assert_eq!(lines(&via), lines(&direct), "the proxy changes no answer");
    let reqs = proxy.requests();
    let lists = reqs.iter().filter(|r| r.is_list()).count();
    eprintln!("real dry run of trees/full on S3: {} requests, {lists} LIST", reqs.len());
    assert!(lists > 10 && reqs.len() > lists, "a GC lists and reads: {} requests, {lists} LIST", reqs.len());
    let odd: Vec<_> = reqs.iter().filter(|r| ![200, 206, 404].contains(&r.status)).collect();
    assert!(odd.is_empty(), "statuses other than 200, 206, 404: {odd:?}");
    assert_eq!(proxy.writes(), vec![], "the dry run only reads");

    // The real run deletes: the record shows it (the read-only check can fail).
    proxy.clear();
    let real = bucket.garbage_collect_via("", &proxy.endpoint(), false, true);
    assert!(real.status.success(), "{}", String::from_utf8_lossy(&real.stderr));
    let writes = proxy.writes();
    assert!(!writes.is_empty() && writes.iter().all(|r| r.method == "DELETE" || r.method == "POST"), "{writes:?}");

    // The read-only identity lists and reads, and gets 403 on PUT.
    let key = "docker/registry/v2/auditor-probe";
    assert_eq!(bucket.put_as(AUDITOR, key, "x"), 403);
    assert!(!keys(&bucket, "").contains_key(key));
    assert_eq!(bucket.list_as(AUDITOR, ""), bucket.list(""), "the auditor lists what the admin lists");
    assert_eq!(bucket.put_as(ADMIN, key, "x"), 200);
}

/// One raw request to the proxy: (status, declared length, body) or None
/// when the connection ended without a status line.
fn raw(proxy: &Proxy, target: &str) -> std::io::Result<(u16, Option<usize>, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(s, "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or(std::io::ErrorKind::UnexpectedEof)?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let len = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()));
    Ok((status, len, raw[split + 4..].to_vec()))
}

#[test]
fn proxy_injects_every_fault() {
    if !s3::require() {
        return;
    }
    let s3 = SeaweedFs::shared();
    // Unsigned requests: the store answers 403, which is enough to see
    // what the proxy does to an answer.
    let p = Proxy::start(s3, &["--slowdown-every", "2"]);
    assert_eq!(raw(&p, "/b/k").unwrap().0, 403);
    let (status, _, body) = raw(&p, "/b/k").unwrap();
    assert_eq!(status, 503);
    assert!(String::from_utf8_lossy(&body).contains("<Code>SlowDown</Code>"));
    assert_eq!(p.requests()[1].fault.as_deref(), Some("slowdown"));

    let p = Proxy::start(s3, &["--error500-every", "1", "--max-faults", "1"]);
    assert_eq!(raw(&p, "/b/k").unwrap().0, 500);
    assert_eq!(raw(&p, "/b/k").unwrap().0, 403, "--max-faults");

    let p = Proxy::start(s3, &["--reset-every", "1"]);
    let e = raw(&p, "/b/k").unwrap_err();
    assert!(matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof), "{e:?}");

    let p = Proxy::start(s3, &["--stall-every", "1", "--stall-seconds", "2"]);
    let t = Instant::now();
    assert!(raw(&p, "/b/k").is_err(), "a stall ends with no answer");
    assert!(t.elapsed() >= Duration::from_secs(2));

    let p = Proxy::start(s3, &["--truncate-every", "1"]);
    let (status, len, body) = raw(&p, "/b/k").unwrap();
    assert_eq!(status, 403);
    assert!(len.unwrap() > body.len(), "declared {len:?}, sent {}", body.len());

    let p = Proxy::start(s3, &["--list-page-fail", "2"]);
    assert_eq!(raw(&p, "/b?list-type=2&prefix=x").unwrap().0, 403, "the first page goes through");
    for _ in 0..2 {
        assert_eq!(raw(&p, "/b?list-type=2&continuation-token=abc").unwrap().0, 500);
    }
    assert_eq!(raw(&p, "/b?list-type=2&continuation-token=abc").unwrap().0, 403, "after M failures");

    let p = Proxy::start(s3, &["--error500-every", "1", "--match", "^HEAD "]);
    assert_eq!(raw(&p, "/b/k").unwrap().0, 403, "--match leaves other requests alone");
}

#[test]
fn a_real_gc_rides_out_slowdowns() {
    if !s3::require() {
        return;
    }
    let s3 = SeaweedFs::shared();
    let bucket = s3.bucket("slowdown");
    bucket.upload(&testdata("trees/minimal-multi"), PREFIX);
    let direct = bucket.garbage_collect(PREFIX, true, false);
    let proxy = Proxy::start(s3, &["--slowdown-every", "4"]);
    let via = bucket.garbage_collect_via(PREFIX, &proxy.endpoint(), true, false);
    assert!(via.status.success(), "{}", String::from_utf8_lossy(&via.stderr));
    assert_eq!(lines(&via), lines(&direct));
    let faults = proxy.requests().iter().filter(|r| r.fault.as_deref() == Some("slowdown")).count();
    assert!(faults > 0, "the proxy injected SlowDown");
}
