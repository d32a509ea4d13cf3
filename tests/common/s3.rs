//! The S3 test bed (docs/s3.md): a real S3-compatible object store
//! (SeaweedFS) on loopback, test buckets loaded with real S3 PUTs, the real
//! registry 2.8.2 with its `s3` driver on a bucket, and a recording,
//! fault-injecting proxy (scripts/s3/proxy.py) to put between a client and
//! the store. The tools live in a venv that scripts/install-s3-testbed
//! makes; without it these tests skip, except in CI where they fail.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The identity with every right, for loading and clearing buckets.
pub const ADMIN: Identity = Identity { access_key: "AKIATEST", secret_key: "secrettest" };
/// A read-only identity (Read, List): PUT and DELETE get 403.
pub const AUDITOR: Identity = Identity { access_key: "AKIAREAD", secret_key: "readonly" };
/// The region every client names (SeaweedFS does not check it).
pub const REGION: &str = "us-east-1";

#[derive(Clone, Copy, Debug)]
pub struct Identity {
    pub access_key: &'static str,
    pub secret_key: &'static str,
}

impl Identity {
    /// The standard AWS variables for this identity.
    pub fn env(self) -> [(&'static str, &'static str); 3] {
        [("AWS_ACCESS_KEY_ID", self.access_key), ("AWS_SECRET_ACCESS_KEY", self.secret_key), ("AWS_REGION", REGION)]
    }
}

/// scripts/s3, where the test bed's Python tools are.
pub fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/s3")
}

/// The venv scripts/install-s3-testbed makes (same path rule as there).
pub fn venv_path() -> PathBuf {
    let base = match std::env::var_os("REGAUDIT_TESTBED") {
        Some(b) => PathBuf::from(b),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/regaudit-testbed"),
    };
    base.join("venv")
}

/// The venv when it is complete (weed, python and the install's stamp).
pub fn venv() -> Option<PathBuf> {
    let v = venv_path();
    (v.join("bin/weed").is_file() && v.join("bin/python").is_file() && v.join(".regaudit-requirements").is_file())
        .then_some(v)
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether the S3 tests can run. Says why not when they must skip; in CI
/// (`CI=true`) a missing tool is a failure, not a skip.
pub fn require() -> bool {
    if std::env::var_os("REGAUDIT_SKIP_CONFORMANCE").is_some() {
        eprintln!("S3 tests skipped: REGAUDIT_SKIP_CONFORMANCE is set");
        return false;
    }
    let registry_ok = super::registry::available();
    let missing = match (venv(), registry_ok) {
        (Some(_), true) => return true,
        (None, _) => {
            format!("the S3 test bed venv {} is not installed: run scripts/install-s3-testbed", venv_path().display())
        }
        (_, false) => format!("{} is not installed: run scripts/test", super::registry::BINARY),
    };
    assert!(!in_ci(), "{missing}");
    eprintln!("S3 tests skipped: {missing}");
    false
}

fn python() -> PathBuf {
    venv().expect("S3 test bed venv").join("bin/python")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One SeaweedFS server (master, volume, filer, S3 API) on loopback ports,
/// in a temp dir. A supervisor (scripts/s3/supervise.py) SIGKILLs it and
/// removes its data and /tmp sockets when this guard drops or this process
/// ends in any way (it watches a pipe from us), so a shared one in a static
/// is cleaned up too.
pub struct SeaweedFs {
    supervisor: Child,
    /// Closing it tells the supervisor to stop the server.
    stdin: Option<ChildStdin>,
    pub s3_port: u16,
    pub dir: PathBuf,
    buckets: AtomicUsize,
    /// `bucket.py serve`: one Python (and one boto3 import) for every chore.
    helper: Mutex<Option<Helper>>,
}

struct Helper {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl SeaweedFs {
    /// Starts a server and waits until its S3 API creates buckets (~4 s).
    pub fn start() -> SeaweedFs {
        let venv = venv().expect("S3 test bed venv");
        // The supervisor deletes the dir; keep it past the TempDir.
        let dir = tempfile::Builder::new().prefix("regaudit-seaweedfs.").tempdir().unwrap().keep();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let config = dir.join("s3.json");
        std::fs::write(&config, s3_identities()).unwrap();
        let [master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc] = [0; 8].map(|_| free_port());
        let weed = venv.join("bin/weed");
        let d = dir.display();
        let args: Vec<String> = vec![
            "server".into(),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            format!("-dir={d}/data"),
            format!("-master.port={master}"),
            format!("-master.port.grpc={master_grpc}"),
            "-master.telemetry=false".into(),
            format!("-volume.port={volume}"),
            format!("-volume.port.grpc={volume_grpc}"),
            // Every bucket takes 7 volumes of its own (sparse files).
            "-volume.max=300".into(),
            "-filer".into(),
            format!("-filer.port={filer}"),
            format!("-filer.port.grpc={filer_grpc}"),
            format!("-filer.localSocket={d}/filer.sock"),
            "-s3".into(),
            format!("-s3.port={s3}"),
            format!("-s3.port.grpc={s3_grpc}"),
            format!("-s3.localSocket={d}/s3.sock"),
            format!("-s3.config={}", config.display()),
            // Both default to fixed ports (8181, 9101): two servers would clash.
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
        ];
        let grpc = format!("{master_grpc},{volume_grpc},{filer_grpc},{s3_grpc}");
        let mut supervisor = Command::new(venv.join("bin/python"))
            .arg(scripts().join("supervise.py"))
            .args(["--dir", &d.to_string(), "--s3-port", &s3.to_string(), "--grpc-ports", &grpc, "--"])
            .arg(&weed)
            .args(&args)
            .envs(ADMIN.env())
            .env_remove("AWS_CA_BUNDLE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start scripts/s3/supervise.py");
        let stdin = supervisor.stdin.take();
        let mut line = String::new();
        BufReader::new(supervisor.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let fs = SeaweedFs {
            supervisor,
            stdin,
            s3_port: s3,
            dir: dir.clone(),
            buckets: AtomicUsize::new(0),
            helper: Mutex::new(None),
        };
        if line.trim() != "ready" {
            let log = std::fs::read_to_string(dir.join("weed.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            drop(fs);
            panic!(
                "SeaweedFS did not start: {}\n{}",
                line.trim(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        fs
    }

    /// The server this test binary shares: started on first use, stopped
    /// when the process exits (see the type's comment).
    pub fn shared() -> &'static SeaweedFs {
        static SHARED: OnceLock<SeaweedFs> = OnceLock::new();
        SHARED.get_or_init(SeaweedFs::start)
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// One request to `bucket.py serve` (started on first use) as `who`;
    /// panics with the script's error.
    fn call(&self, who: Identity, mut req: serde_json::Value) -> serde_json::Value {
        req["access_key"] = who.access_key.into();
        req["secret_key"] = who.secret_key.into();
        let mut guard = self.helper.lock().unwrap_or_else(|e| e.into_inner());
        let helper = guard.get_or_insert_with(|| {
            let mut child = Command::new(python())
                .arg(scripts().join("bucket.py"))
                .args(["--endpoint", &self.endpoint(), "serve"])
                .envs(ADMIN.env())
                .env_remove("AWS_CA_BUNDLE")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start scripts/s3/bucket.py serve");
            let stdin = child.stdin.take().unwrap();
            let stdout = BufReader::new(child.stdout.take().unwrap());
            Helper { child, stdin, stdout }
        });
        writeln!(helper.stdin, "{req}").unwrap();
        let mut line = String::new();
        helper.stdout.read_line(&mut line).unwrap();
        let answer: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("bucket.py serve answered {line:?}: {e}"));
        match answer.get("error") {
            Some(e) => panic!("bucket.py {}: {e}", req["op"]),
            None => answer["ok"].clone(),
        }
    }

    /// A new empty bucket, deleted with its objects when the guard drops.
    /// `label` makes the name readable (lowercased, cut to fit S3's rules).
    pub fn bucket(&self, label: &str) -> Bucket<'_> {
        let n = self.buckets.fetch_add(1, Ordering::Relaxed);
        let clean: String = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .take(40)
            .collect();
        let name = format!("t{n}-{}", clean.trim_matches('-'));
        self.call(ADMIN, serde_json::json!({"op": "create", "bucket": name}));
        Bucket { s3: self, name }
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        if let Some(mut h) = self.helper.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = h.child.kill();
            let _ = h.child.wait();
        }
        // End of file on the supervisor's stdin: it kills and cleans up.
        drop(self.stdin.take());
        let _ = self.supervisor.wait();
    }
}

/// The identities file: ADMIN with every right, AUDITOR read-only.
fn s3_identities() -> String {
    let id = |name: &str, who: Identity, actions: &str| {
        format!(
            r#"{{"name":"{name}","credentials":[{{"accessKey":"{}","secretKey":"{}"}}],"actions":[{actions}]}}"#,
            who.access_key, who.secret_key
        )
    };
    format!(
        r#"{{"identities":[{},{}]}}"#,
        id("admin", ADMIN, r#""Admin","Read","List","Tagging","Write""#),
        id("auditor", AUDITOR, r#""Read","List""#)
    )
}

/// What scripts/s3/upload.py reports.
#[derive(Debug)]
pub struct Upload {
    pub objects: u64,
    pub bytes: u64,
    /// Paths S3 cannot hold (symlinks, empty directories), with why.
    pub skipped: Vec<(String, String)>,
    pub seconds: f64,
}

/// An object as listed: size and ETag (the MD5 of its bytes for a plain PUT).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub size: u64,
    pub etag: String,
}

/// A test bucket on a [`SeaweedFs`]; deleted (objects first) on drop.
pub struct Bucket<'a> {
    pub s3: &'a SeaweedFs,
    pub name: String,
}

impl Bucket<'_> {
    /// Uploads every regular file under `dir` to `prefix/<relative path>`
    /// with one real PUT each (ETags are MD5s, checked by the script).
    pub fn upload(&self, dir: &Path, prefix: &str) -> Upload {
        let v = self.s3.call(
            ADMIN,
            serde_json::json!({"op": "upload", "bucket": self.name, "prefix": prefix, "dir": dir.to_str().unwrap()}),
        );
        Upload {
            objects: v["objects"].as_u64().unwrap(),
            bytes: v["bytes"].as_u64().unwrap(),
            skipped: v["skipped"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (s["path"].as_str().unwrap().to_string(), s["why"].as_str().unwrap().to_string()))
                .collect(),
            seconds: v["seconds"].as_f64().unwrap(),
        }
    }

    /// Every key under `prefix` (all keys for ""), with size and ETag.
    pub fn list(&self, prefix: &str) -> BTreeMap<String, Object> {
        self.list_as(ADMIN, prefix)
    }

    /// The same listing made by `who`.
    pub fn list_as(&self, who: Identity, prefix: &str) -> BTreeMap<String, Object> {
        let v = self.s3.call(who, serde_json::json!({"op": "list", "bucket": self.name, "prefix": prefix}));
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| {
                let obj = Object { size: o["size"].as_u64().unwrap(), etag: o["etag"].as_str().unwrap().to_string() };
                (o["key"].as_str().unwrap().to_string(), obj)
            })
            .collect()
    }

    /// PUTs `body` at `key` as `who`; returns the HTTP status (403 for the
    /// read-only identity).
    pub fn put_as(&self, who: Identity, key: &str, body: &str) -> u16 {
        let v = self.s3.call(who, serde_json::json!({"op": "put", "bucket": self.name, "key": key, "body": body}));
        v.as_u64().expect("bucket.py put status") as u16
    }

    /// The lines `regaudit` and the registry need for this bucket: an s3
    /// storage section with `rootdirectory` `/prefix` (none for "").
    /// `endpoint` is where the driver sends requests (the store or a proxy).
    pub fn registry_storage(&self, prefix: &str, endpoint: &str) -> String {
        let root = if prefix.is_empty() { String::new() } else { format!("    rootdirectory: /{prefix}\n") };
        format!(
            "  s3:\n    accesskey: {}\n    secretkey: {}\n    region: {REGION}\n    regionendpoint: {endpoint}\n    bucket: {}\n    secure: false\n    v4auth: true\n{root}",
            ADMIN.access_key, ADMIN.secret_key, self.name
        )
    }

    /// A config of the real registry for this bucket, listening on `port`.
    pub fn registry_config(&self, prefix: &str, endpoint: &str, port: u16) -> String {
        format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n{}  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n",
            self.registry_storage(prefix, endpoint)
        )
    }

    /// Runs the real 2.8.2 `garbage-collect` on `prefix` of this bucket.
    pub fn garbage_collect(&self, prefix: &str, dry_run: bool, delete_untagged: bool) -> Output {
        self.garbage_collect_via(prefix, &self.s3.endpoint(), dry_run, delete_untagged)
    }

    /// The same through `endpoint` (a proxy in front of the store).
    pub fn garbage_collect_via(&self, prefix: &str, endpoint: &str, dry_run: bool, delete_untagged: bool) -> Output {
        let config = self.registry_config(prefix, endpoint, free_port());
        super::registry::run_garbage_collect(registry_command(), &config, dry_run, delete_untagged)
    }

    /// Serves `prefix` of this bucket with the real 2.8.2 registry.
    pub fn serve(&self, prefix: &str) -> S3Registry {
        S3Registry::start(&self.registry_config(prefix, &self.s3.endpoint(), 0))
    }
}

impl Drop for Bucket<'_> {
    fn drop(&mut self) {
        // Objects first, then the bucket: its volumes are freed for others.
        let req = serde_json::json!({"op": "delete", "bucket": self.name});
        if std::thread::panicking() {
            // No second panic while unwinding; the server goes at exit anyway.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.s3.call(ADMIN, req)));
        } else {
            self.s3.call(ADMIN, req);
        }
    }
}

/// The real registry, with no AWS_* variable from our environment: the
/// config names everything, and with AWS_CA_BUNDLE set its s3 driver panics
/// at start (`LoadCustomCABundleError ... unsupported transport`).
pub fn registry_command() -> Command {
    let mut cmd = Command::new(super::registry::BINARY);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Every manifest type but schema1, for an Accept header.
pub const MODERN_MANIFESTS: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// The real registry serving a bucket; killed by pid and waited on drop.
pub struct S3Registry {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl S3Registry {
    /// `config` with `addr: 127.0.0.1:0` gets a free port put in.
    fn start(config: &str) -> S3Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config.replace("addr: 127.0.0.1:0\n", &format!("addr: 127.0.0.1:{port}\n"))).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = registry_command()
            .arg("serve")
            .arg(&cfg)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut reg = S3Registry { child, port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if reg.get_status("/v2/") == Some(200) {
                return reg;
            }
            if let Ok(Some(st)) = reg.child.try_wait() {
                panic!("docker-registry on S3 exited ({st}): {}", reg.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry on S3 did not start on port {}: {}", reg.port, reg.log());
    }

    /// What the registry wrote to its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The status of a GET, or None when nothing answered. It accepts every
    /// modern manifest type: a manifest GET without them makes 2.8 convert
    /// a schema2 manifest to schema1, which writes (the empty layer blob
    /// `sha256:a3ed95ca…` and its `_layers` link).
    pub fn get_status(&self, path: &str) -> Option<u16> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {MODERN_MANIFESTS}\r\nConnection: close\r\n\r\n")
            .ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).ok()?;
        String::from_utf8_lossy(&raw).split(' ').nth(1)?.parse().ok()
    }
}

impl Drop for S3Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request the proxy saw (scripts/s3/proxy.py's record file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    /// What the client got: the store's status, or the injected fault's
    /// (0 for a reset, stall or truncation).
    pub status: u16,
    /// The fault injected, if any (`slowdown`, `error500`, `reset`, ...).
    pub fault: Option<String>,
}

impl Request {
    /// GET with a listing query (ListObjects v2, ListMultipartUploads, or a
    /// v1 listing of the bucket itself): one LIST in the issue's counts.
    pub fn is_list(&self) -> bool {
        let params = || self.query.split('&').filter(|p| !p.is_empty());
        let bucket_level = self.path.trim_end_matches('/').matches('/').count() == 1;
        let v1 = ["prefix=", "delimiter=", "marker=", "max-keys="];
        self.method == "GET"
            && (params().any(|p| p.starts_with("list-type=") || p == "uploads" || p.starts_with("uploads="))
                || (bucket_level
                    && (params().next().is_none() || params().any(|p| v1.iter().any(|k| p.starts_with(k))))))
    }

    /// GET (LIST included) or HEAD: what a read-only client may send.
    pub fn is_read(&self) -> bool {
        self.method == "GET" || self.method == "HEAD"
    }
}

/// scripts/s3/proxy.py between a client and the store: records every
/// request and injects the faults its flags ask for (see the script).
pub struct Proxy {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Proxy {
    /// A proxy in front of `s3` with `faults` (proxy.py flags, e.g.
    /// `["--slowdown-every", "5"]`).
    pub fn start(s3: &SeaweedFs, faults: &[&str]) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests.jsonl");
        let mut child = Command::new(python())
            .arg(scripts().join("proxy.py"))
            .args(["--upstream", &format!("127.0.0.1:{}", s3.s3_port), "--record", log.to_str().unwrap()])
            .args(faults)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start scripts/s3/proxy.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("listening ").and_then(|p| p.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("proxy.py did not start: {line:?}");
        };
        Proxy { child, port, log, _dir: dir }
    }

    /// `http://127.0.0.1:PORT`, to give a client as its endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request recorded so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("proxy record line");
                Request {
                    method: v["method"].as_str().unwrap().to_string(),
                    path: v["path"].as_str().unwrap().to_string(),
                    query: v["query"].as_str().unwrap().to_string(),
                    status: v["status"].as_u64().unwrap() as u16,
                    fault: v["fault"].as_str().map(str::to_string),
                }
            })
            .collect()
    }

    /// Requests that are neither GET nor HEAD (a read-only client sends none).
    pub fn writes(&self) -> Vec<Request> {
        self.requests().into_iter().filter(|r| !r.is_read()).collect()
    }

    /// Forgets what was recorded (between two runs through one proxy).
    pub fn clear(&self) {
        std::fs::write(&self.log, b"").unwrap();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// For the tests of `regaudit ... s3://BUCKET/PREFIX` (tests/s3_conformance.rs).

impl Bucket<'_> {
    /// `s3://BUCKET/PREFIX` (`s3://BUCKET` for ""), the root regaudit reads.
    pub fn url(&self, prefix: &str) -> String {
        if prefix.is_empty() {
            format!("s3://{}", self.name)
        } else {
            format!("s3://{}/{prefix}", self.name)
        }
    }

    /// Deletes `keys` (full keys) as the admin.
    pub fn delete_keys(&self, keys: &[String]) {
        self.s3.call(ADMIN, serde_json::json!({"op": "delete_keys", "bucket": self.name, "keys": keys}));
    }

    /// PUTs the bytes of `file` at `key` as the admin; panics unless 200.
    pub fn put_file(&self, key: &str, file: &Path) {
        let v = self.s3.call(
            ADMIN,
            serde_json::json!({"op": "put_file", "bucket": self.name, "key": key, "file": file.to_str().unwrap()}),
        );
        assert_eq!(v.as_u64(), Some(200), "PUT {key}");
    }

    /// Serves `prefix` with the real 2.8.2, its driver sending every
    /// request to `endpoint` (a proxy recording what it writes).
    pub fn serve_via(&self, prefix: &str, endpoint: &str) -> S3Registry {
        S3Registry::start(&self.registry_config(prefix, endpoint, 0))
    }
}

/// The environment regaudit gets to read a bucket as `who` through
/// `endpoint`: the standard AWS variables and nothing else of ours
/// (any AWS_* of the caller's environment is removed first).
pub fn regaudit_command(who: Identity, endpoint: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regaudit"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(who.env()).env("AWS_ENDPOINT_URL", endpoint).env("NO_COLOR", "1");
    cmd
}

/// Runs regaudit as `who` against the store (or proxy) at `endpoint`.
pub fn regaudit_as(who: Identity, endpoint: &str, args: &[&str]) -> super::Run {
    let out = regaudit_command(who, endpoint).args(args).output().expect("run regaudit");
    super::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The same with `--format json`: exit code and the document (provenance
/// left out, as `common::json` does). Panics when stdout is no JSON.
pub fn json_as(who: Identity, endpoint: &str, args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let run = regaudit_as(who, endpoint, &all);
    let mut v: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("regaudit {all:?}: {e}\nexit {}\n{}\n{}", run.code, run.stdout, run.stderr));
    if let Some(o) = v.as_object_mut() {
        o.shift_remove("provenance");
    }
    (run.code, v)
}

impl S3Registry {
    /// The status of a GET with `accept` (none: no Accept header at all),
    /// or None when nothing answered.
    pub fn get_accepting(&self, path: &str, accept: Option<&str>) -> Option<u16> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let accept = accept.map(|a| format!("Accept: {a}\r\n")).unwrap_or_default();
        write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{accept}Connection: close\r\n\r\n").ok()?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).ok()?;
        String::from_utf8_lossy(&raw).split(' ').nth(1)?.parse().ok()
    }
}
