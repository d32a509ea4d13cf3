//! Conformance of `regaudit writes` with the real registry (Debian's
//! docker-registry 2.8.2): for every tree in testdata, every tag is fetched
//! by GET and HEAD with a schema1 Accept, with no Accept and with a modern
//! Accept, from a writable copy (diffing the tree around each request and
//! restoring it after) and from a read-only bind mount. What happened must
//! be what regaudit predicted.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::registry::{self, snapshot, Entry, Registry};
use common::{copy_tree, predicted_writes, testdata};
use sha2::{Digest as _, Sha256};

const NOW: &str = "2026-11-29T12:00:00Z";
const SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
const MODERN: &str = "application/vnd.docker.distribution.manifest.v2+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json, \
                      application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

fn predict(tree: &str) -> serde_json::Value {
    predict_at(&testdata(tree))
}

fn predict_at(root: &Path) -> serde_json::Value {
    let (code, v) = common::json(&["writes", root.to_str().unwrap(), "--now", NOW]);
    // Exit 2 with the report: a symlink the registry follows makes it incomplete
    // (issue 12); the operations it lists are still checked.
    let incomplete = code == 2 && v["summary"]["incomplete"] == true;
    assert!(code == 0 || code == 1 || incomplete, "{}: exit {code}", root.display());
    v
}

/// A file's content hash and mtime: a rewrite with the same bytes still counts.
/// (path, action) for every file created, modified or removed; removed
/// directories are listed as directories (a purge deletes one).
fn diff(before: &BTreeMap<String, Entry>, after: &BTreeMap<String, Entry>) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (p, e) in after {
        if *e == Entry::Dir {
            continue;
        }
        match before.get(p) {
            None => out.insert((p.clone(), "create".into())),
            Some(b) if b != e => out.insert((p.clone(), "modify".into())),
            _ => false,
        };
    }
    for (p, e) in before {
        if after.contains_key(p) {
            continue;
        }
        // Report the topmost removed path only.
        let parent_removed = Path::new(p).parent().is_some_and(|d| {
            let d = d.to_string_lossy();
            before.contains_key(d.as_ref()) && !after.contains_key(d.as_ref())
        });
        if !parent_removed {
            let _ = e;
            out.insert((p.clone(), "delete".into()));
        }
    }
    out
}

/// Puts the copy back as the testdata tree is.
fn restore(src: &Path, root: &Path) {
    std::fs::remove_dir_all(root.join("docker")).unwrap();
    let _ = std::fs::remove_file(root.join("scheduler-state.json"));
    copy_tree(src, root);
}

struct Request {
    method: &'static str,
    accept: Option<&'static str>,
}

const REQUESTS: [Request; 6] = [
    Request { method: "GET", accept: Some(SCHEMA1) },
    Request { method: "HEAD", accept: Some(SCHEMA1) },
    Request { method: "GET", accept: None },
    Request { method: "HEAD", accept: None },
    Request { method: "GET", accept: Some(MODERN) },
    Request { method: "HEAD", accept: Some(MODERN) },
];

fn send(reg: &Registry, repo: &str, tag: &str, r: &Request) -> u16 {
    let path = format!("/v2/{repo}/manifests/{tag}");
    let headers: Vec<(&str, &str)> = r.accept.iter().map(|a| ("Accept", *a)).collect();
    reg.request(r.method, &path, &headers).status
}

/// Serves `src` from a read-only bind mount in a private mount namespace.
fn serve_read_only(src: &Path, mnt: &Path, extra_env: &[(&str, &str)]) -> Registry {
    let script = format!(
        "mount --bind '{}' '{}' && mount -o remount,bind,ro '{}' && exec {} serve \"$0\"",
        src.display(),
        mnt.display(),
        mnt.display(),
        registry::BINARY
    );
    let env: Vec<(String, String)> = extra_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let wrap = move |cfg: &Path| {
        let mut c = Command::new("unshare");
        c.args(["-m", "sh", "-c", &script]).arg(cfg);
        c.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        c
    };
    Registry::serve_with(mnt, "", Some(&wrap))
}

/// A tree's failures, requests sent and requests that wrote.
type Checked = (Vec<String>, usize, usize);

/// Which mounts a check serves the tree from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mounts {
    /// A writable copy only.
    Writable,
    /// A writable copy, then a read-only bind mount (needs root: the tests
    /// that ask for it are `#[ignore = "needs root"]`).
    AlsoReadOnly,
}

/// Checks one tree.
fn check_tree(tree: &str, mounts: Mounts) -> Checked {
    check_root(tree, &testdata(tree), mounts)
}

fn check_root(tree: &str, src: &Path, mounts: Mounts) -> Checked {
    let src = src.to_path_buf();
    let prediction = predict_at(&src);
    let ops: Vec<&serde_json::Value> =
        prediction["operations"].as_array().unwrap().iter().filter(|o| o["kind"] == "manifest-get-schema1").collect();
    let mut failures = Vec::new();
    let (mut requests, mut writing) = (0, 0);
    let (_keep, root) = registry::scratch_copy(&src);
    let mut baseline = snapshot(&root);
    // Writable: what each request writes, and its status.
    let mut statuses: Vec<(usize, usize, u16)> = Vec::new();
    {
        let reg = Registry::serve(&root);
        for (i, op) in ops.iter().enumerate() {
            let (repo, tag) = (op["repository"].as_str().unwrap(), op["reference"].as_str().unwrap());
            for (j, r) in REQUESTS.iter().enumerate() {
                let status = send(&reg, repo, tag, r);
                requests += 1;
                let changes = diff(&baseline, &snapshot(&root));
                let converts = r.accept != Some(MODERN);
                let expected = if converts { predicted_writes(op) } else { BTreeSet::new() };
                let label = format!("{tree} {} {repo}:{tag} Accept {:?}", r.method, r.accept.map(|a| &a[..30]));
                if changes != expected {
                    failures.push(format!("{label}: wrote {changes:?}, predicted {expected:?}"));
                }
                if converts && Some(u64::from(status)) != op["status"].as_u64() {
                    failures.push(format!("{label}: status {status}, predicted {}", op["status"]));
                }
                if !changes.is_empty() {
                    writing += 1;
                    restore(&src, &root);
                    baseline = snapshot(&root);
                }
                statuses.push((i, j, status));
            }
        }
    }
    if mounts == Mounts::Writable {
        return (failures, requests, writing);
    }
    registry::require_root();
    // Read-only: every request predicted to write fails; every other one
    // answers as the writable registry did.
    let mnt = tempfile::tempdir().unwrap();
    let reg = serve_read_only(&root, mnt.path(), &[]);
    for (i, j, writable_status) in statuses {
        let op = ops[i];
        let r = &REQUESTS[j];
        let (repo, tag) = (op["repository"].as_str().unwrap(), op["reference"].as_str().unwrap());
        let status = send(&reg, repo, tag, r);
        requests += 1;
        let would_write = r.accept != Some(MODERN) && !predicted_writes(op).is_empty();
        let label = format!("{tree} read-only {} {repo}:{tag} Accept {:?}", r.method, r.accept.map(|a| &a[..30]));
        if would_write {
            if (200..300).contains(&status) || Some(u64::from(status)) != op["read_only_status"].as_u64() {
                failures.push(format!("{label}: predicted to write, answered {status}"));
            }
        } else if status != writable_status {
            failures.push(format!("{label}: answered {status}, writable answered {writable_status}"));
        }
    }
    (failures, requests, writing)
}

#[test]
fn manifest_requests_write_what_regaudit_predicts() {
    manifest_requests(Mounts::Writable);
}

/// The same requests, then on a read-only mount: every request predicted to
/// write fails; every other one answers as the writable registry did.
#[test]
#[ignore = "needs root"]
fn manifest_requests_on_a_read_only_mount_answer_as_predicted() {
    manifest_requests(Mounts::AlsoReadOnly);
}

fn manifest_requests(mounts: Mounts) {
    if !registry::require() {
        return;
    }
    let started = std::time::Instant::now();
    let trees = common::all_trees();
    assert!(trees.len() >= 20, "testdata holds {} trees", trees.len());
    // Two workers: the machine has two cores and each tree starts registries.
    let results: Vec<(String, Checked)> = std::thread::scope(|s| {
        let chunks: Vec<Vec<String>> = (0..2).map(|k| trees.iter().skip(k).step_by(2).cloned().collect()).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                s.spawn(move || chunk.into_iter().map(|t| (t.clone(), check_tree(&t, mounts))).collect::<Vec<_>>())
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let mut failures = Vec::new();
    let (mut requests, mut writing) = (0, 0);
    for (_, (f, r, w)) in results {
        failures.extend(f);
        requests += r;
        writing += w;
    }
    eprintln!("writes conformance: {requests} requests, {writing} of them wrote ({:?})", started.elapsed());
    // The suite must exercise writing requests, or it proves nothing.
    assert!(writing >= 20, "only {writing} requests wrote");
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

// ---------------------------------------------------------------------------
// Edge cases of the conversion, made from trees/minimal and checked the same way.

const EMPTY_TAR_HEX: &str = "a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4";

fn v2(root: &Path) -> PathBuf {
    root.join(common::V2)
}

fn put_blob(root: &Path, bytes: &[u8]) -> String {
    let hex = hex::encode(Sha256::digest(bytes));
    let dir = v2(root).join(format!("blobs/sha256/{}/{hex}", &hex[..2]));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("data"), bytes).unwrap();
    hex
}

fn put_link(root: &Path, rel: &str, content: &str) {
    let path = v2(root).join("repositories/app").join(rel).join("link");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// Tags `app:<tag>` with a schema2 image of minimal's layers and `config`.
fn tag_image(root: &Path, tag: &str, config: &serde_json::Value) {
    let config = serde_json::to_vec(config).unwrap();
    let config_hex = put_blob(root, &config);
    put_link(root, &format!("_layers/sha256/{config_hex}"), &format!("sha256:{config_hex}"));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.len(),
                   "digest": format!("sha256:{config_hex}")},
        "layers": [
            {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 326,
             "digest": "sha256:45eda0bf87a676d4b2c3c855d5566f1a4fbc3daaae0dc17523baa54afdbdf881"},
            {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 240,
             "digest": "sha256:7dc163e26ccb92ac81308796b63ad8d2e64fff0fa3837e2737b1895677dc08be"}
        ]
    });
    let m = put_blob(root, &serde_json::to_vec(&manifest).unwrap());
    let d = format!("sha256:{m}");
    put_link(root, &format!("_manifests/revisions/sha256/{m}"), &d);
    put_link(root, &format!("_manifests/tags/{tag}/current"), &d);
    put_link(root, &format!("_manifests/tags/{tag}/index/sha256/{m}"), &d);
}

fn minimal_config() -> serde_json::Value {
    let path = testdata(&format!(
        "trees/minimal/{}/blobs/sha256/78/7836251b9b37d6a17d985d95dc27f99cb145845ae5dcf01af1fc491c115e0bf9/data",
        common::V2
    ));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn gzipped_empty_tar() -> Vec<u8> {
    std::fs::read(testdata(&format!("trees/full/{}/blobs/sha256/a3/{EMPTY_TAR_HEX}/data", common::V2))).unwrap()
}

#[test]
fn conversion_edge_cases_write_what_regaudit_predicts() {
    conversion_edge_cases(Mounts::Writable);
}

#[test]
#[ignore = "needs root"]
fn conversion_edge_cases_on_a_read_only_mount_answer_as_predicted() {
    conversion_edge_cases(Mounts::AlsoReadOnly);
}

fn conversion_edge_cases(mounts: Mounts) {
    if !registry::require() {
        return;
    }
    let empty = format!("sha256:{EMPTY_TAR_HEX}");
    let layer_dir = format!("_layers/sha256/{EMPTY_TAR_HEX}");
    type Mutation<'a> = Box<dyn Fn(&Path) + 'a>;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        // (name, mutation, what the prediction for app:v1 must say)
        ("link-without-data", Box::new(|r| put_link(r, &layer_dir, &empty)), "modify"),
        ("link-with-newline", Box::new(|r| put_link(r, &layer_dir, &format!("{empty}\n"))), "400"),
        // Debian's build rejects uppercase hex (go-digest 1.0.0): 400, no write.
        ("link-uppercase", Box::new(|r| put_link(r, &layer_dir, &empty.to_uppercase().replace("SHA", "sha"))), "400"),
        (
            "config-link-uppercase",
            Box::new(|r| {
                let hex = "7836251b9b37d6a17d985d95dc27f99cb145845ae5dcf01af1fc491c115e0bf9";
                put_link(r, &format!("_layers/sha256/{hex}"), &format!("sha256:{}", hex.to_uppercase()));
            }),
            "500",
        ),
        (
            "link-and-data",
            Box::new(|r| {
                put_link(r, &layer_dir, &empty);
                put_blob(r, &gzipped_empty_tar());
            }),
            "200",
        ),
        ("data-only", Box::new(|r| drop(put_blob(r, &gzipped_empty_tar()))), "create"),
        (
            "config-without-rootfs",
            Box::new(|r| {
                let mut c = minimal_config();
                c.as_object_mut().unwrap().remove("rootfs");
                tag_image(r, "v1", &c);
            }),
            "0",
        ),
        (
            "too-many-non-empty-after-empty",
            Box::new(|r| {
                let mut c = minimal_config();
                c["history"].as_array_mut().unwrap().push(serde_json::json!({"created_by": "extra"}));
                tag_image(r, "v1", &c);
            }),
            "400",
        ),
        (
            "history-time-invalid",
            Box::new(|r| {
                let mut c = minimal_config();
                c["history"][0]["created"] = "yesterday".into();
                tag_image(r, "v1", &c);
            }),
            "400",
        ),
        (
            "no-history",
            Box::new(|r| {
                let mut c = minimal_config();
                c["history"] = serde_json::json!([]);
                tag_image(r, "v1", &c);
            }),
            "400",
        ),
    ];
    let mut failures = Vec::new();
    let mut writing = 0;
    for (name, mutate, expect) in &cases {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&testdata("trees/minimal"), dir.path());
        mutate(dir.path());
        let prediction = predict_at(dir.path());
        let op = prediction["operations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "manifest-get-schema1" && o["reference"] == "v1")
            .unwrap()
            .clone();
        let text = op.to_string();
        let shown = match *expect {
            "create" | "modify" => op["writes"].as_array().unwrap().iter().any(|w| w["action"] == *expect),
            status => op["status"] == status.parse::<u64>().unwrap(),
        };
        if !shown {
            failures.push(format!("{name}: expected {expect}, predicted {text}"));
        }
        let (f, _, w) = check_root(name, dir.path(), mounts);
        failures.extend(f);
        writing += w;
    }
    assert!(writing >= 8, "only {writing} requests wrote");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// Upload status: 2.8 needs an HMAC-signed `_state` token.

const SECRET: &str = "regaudit-conformance-secret";

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(msg).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().to_vec()
}

fn base64url(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push_str("%3D");
            }
        }
    }
    out
}

/// The token a registry with `SECRET` issued for this upload at `offset`.
fn upload_token(repo: &str, uuid: &str, offset: u64) -> String {
    let state = format!(r#"{{"Name":"{repo}","UUID":"{uuid}","Offset":{offset},"StartedAt":"{NOW}"}}"#);
    let mut token = hmac_sha256(SECRET.as_bytes(), state.as_bytes());
    token.extend_from_slice(state.as_bytes());
    base64url(&token)
}

fn serve_with_secret(root: &Path) -> Registry {
    let wrap = |cfg: &Path| {
        let mut c = Command::new(registry::BINARY);
        c.arg("serve").arg(cfg).env("REGISTRY_HTTP_SECRET", SECRET);
        c
    };
    Registry::serve_with(root, "", Some(&wrap))
}

fn data_size(root: &Path, repo: &str, uuid: &str) -> u64 {
    std::fs::metadata(root.join(format!("{}/repositories/{repo}/_uploads/{uuid}/data", common::V2)))
        .map(|m| m.len())
        .unwrap_or(0)
}

#[test]
fn upload_status_writes_what_regaudit_predicts() {
    upload_status(Mounts::Writable);
}

/// The same, then on a read-only mount: a status request predicted to write fails.
#[test]
#[ignore = "needs root"]
fn upload_status_on_a_read_only_mount_fails_where_it_would_write() {
    upload_status(Mounts::AlsoReadOnly);
}

fn upload_status(mounts: Mounts) {
    if !registry::require() {
        return;
    }
    let mut checked = 0;
    let mut failures = Vec::new();
    for tree in ["trees/full", "broken/upload-no-startedat"] {
        let src = testdata(tree);
        let prediction = predict(tree);
        let ops: Vec<&serde_json::Value> =
            prediction["operations"].as_array().unwrap().iter().filter(|o| o["kind"] == "upload-status").collect();
        assert!(!ops.is_empty(), "{tree} has uploads");
        let (_keep, root) = registry::scratch_copy(&src);
        let mut baseline = snapshot(&root);
        let mut tokens = Vec::new();
        {
            let reg = serve_with_secret(&root);
            for op in &ops {
                let (repo, uuid) = (op["repository"].as_str().unwrap(), op["reference"].as_str().unwrap());
                let token = upload_token(repo, uuid, data_size(&root, repo, uuid));
                for method in ["GET", "HEAD"] {
                    // Without a token: 404, nothing touched.
                    let plain = reg.request(method, &format!("/v2/{repo}/blobs/uploads/{uuid}"), &[]);
                    let changes = diff(&baseline, &snapshot(&root));
                    if plain.status != 404 || !changes.is_empty() {
                        failures.push(format!("{tree} {method} {uuid} without token: {} {changes:?}", plain.status));
                    }
                    // With the token: what regaudit predicts.
                    let r = reg.request(method, &format!("/v2/{repo}/blobs/uploads/{uuid}?_state={token}"), &[]);
                    let changes = diff(&baseline, &snapshot(&root));
                    let expected = predicted_writes(op);
                    if changes != expected {
                        failures.push(format!(
                            "{tree} {method} {uuid} with token ({}): wrote {changes:?}, predicted {expected:?}",
                            r.status
                        ));
                    }
                    checked += 1;
                    if !changes.is_empty() {
                        restore(&src, &root);
                        baseline = snapshot(&root);
                    }
                }
                tokens.push((repo.to_string(), uuid.to_string(), token, !predicted_writes(op).is_empty()));
            }
        }
        if mounts == Mounts::Writable {
            continue;
        }
        registry::require_root();
        let mnt = tempfile::tempdir().unwrap();
        let reg = serve_read_only(&root, mnt.path(), &[("REGISTRY_HTTP_SECRET", SECRET)]);
        for (repo, uuid, token, writes) in tokens {
            let r = reg.request("GET", &format!("/v2/{repo}/blobs/uploads/{uuid}?_state={token}"), &[]);
            if writes && (200..300).contains(&r.status) {
                failures.push(format!("{tree} read-only {uuid}: predicted to write, answered {}", r.status));
            }
        }
    }
    assert!(checked >= 4);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------
// Pull-through cache expiry: a proxy registry started on a tree whose
// entries have all expired deletes what regaudit predicts.

#[test]
fn proxy_expiry_deletes_what_regaudit_predicts() {
    if !registry::require() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&testdata("trees/proxy"), dir.path());
    let state_path = dir.path().join("scheduler-state.json");
    let state = std::fs::read_to_string(&state_path).unwrap();
    std::fs::write(&state_path, state.replace("2026-12-06T", "2020-12-06T")).unwrap();
    let prediction = predict_at(dir.path());
    assert_eq!(prediction["proxy"]["expired"], 4, "{prediction}");
    let mut expected = BTreeSet::new();
    for op in prediction["operations"].as_array().unwrap().iter().filter(|o| o["kind"] == "proxy-expiry") {
        expected.extend(predicted_writes(op));
    }
    let (_keep, root) = registry::scratch_copy(dir.path());
    let before = snapshot(&root);
    {
        // The proxy pings its remote at startup; expiry then runs at once.
        let (_remote_dir, remote_root) = registry::scratch_copy(&testdata("trees/minimal"));
        let remote = Registry::serve(&remote_root);
        let proxy = format!("proxy:\n  remoteurl: http://127.0.0.1:{}\n", remote.port);
        let _reg = Registry::serve_with(&root, &proxy, None);
        // The scheduler saves its state every 5 seconds.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(500));
            let s = std::fs::read_to_string(root.join("scheduler-state.json")).unwrap_or_default();
            if s.trim() == "{}" {
                break;
            }
        }
    }
    let changes = diff(&before, &snapshot(&root));
    assert_eq!(changes, expected);
}
