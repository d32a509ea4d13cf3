//! The real registry (Debian's docker-registry, Distribution 2.8.2) for
//! conformance tests: serve a copy of a tree on loopback, send raw HTTP
//! requests, run garbage-collect, and diff trees before and after.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

pub const BINARY: &str = "docker-registry";

/// Whether the real registry is installed (scripts/test installs it).
pub fn available() -> bool {
    Command::new(BINARY).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// Fails loudly when the registry is missing: conformance must not pass
/// silently. Set REGAUDIT_SKIP_CONFORMANCE=1 to skip on purpose.
pub fn require() -> bool {
    if std::env::var_os("REGAUDIT_SKIP_CONFORMANCE").is_some() {
        eprintln!("conformance skipped: REGAUDIT_SKIP_CONFORMANCE is set");
        return false;
    }
    assert!(available(), "{BINARY} is not installed: run scripts/test, which installs it");
    true
}

/// Which real registry a conformance check runs: Debian's 2.8.2, or the
/// v3.1.1 binary provided beside the project (`../shared/tools/registry-v3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Real {
    V2_8,
    V3,
}

impl Real {
    /// The `--target` value whose rules this registry follows.
    pub fn target(self) -> &'static str {
        match self {
            Real::V2_8 => "2.8",
            Real::V3 => "3",
        }
    }

    fn command(self) -> Command {
        match self {
            Real::V2_8 => Command::new(BINARY),
            Real::V3 => Command::new(v3_binary().expect("registry-v3 is not provided")),
        }
    }
}

/// The real v3.1.1 registry, where `../shared/tools` is beside the project
/// (a developer's machine and CI; not a user's clone).
pub fn v3_binary() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/registry-v3");
    p.is_file().then_some(p)
}

/// Whether the v3 checks can run; says why not when they cannot. The 2.8.2
/// checks never skip this way ([`require`]).
pub fn require_v3() -> bool {
    if std::env::var_os("REGAUDIT_SKIP_CONFORMANCE").is_some() {
        eprintln!("v3 conformance skipped: REGAUDIT_SKIP_CONFORMANCE is set");
        return false;
    }
    if v3_binary().is_none() {
        eprintln!("v3 conformance skipped: ../shared/tools/registry-v3 is not beside the project");
        return false;
    }
    true
}

/// Checks for `real`, or false (with the reason printed) when they must skip.
pub fn require_real(real: Real) -> bool {
    match real {
        Real::V2_8 => require(),
        Real::V3 => require_v3(),
    }
}

pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// For the tests marked `#[ignore = "needs root"]` (scripts/test runs them
/// with `--include-ignored` when it is root, as CI is): included without
/// root, they fail instead of passing without checking anything.
pub fn require_root() {
    assert!(is_root(), "this test needs root; it is ignored unless included (scripts/test includes it as root)");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A registry config for `storage_root`, listening on loopback `port`.
/// `extra` is appended at top level (YAML), e.g. a `compatibility:` block.
pub fn config(storage_root: &Path, port: u16, extra: &str) -> String {
    format!(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}",
        storage_root.display()
    )
}

pub struct Registry {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Serves `storage_root` (the directory holding docker/).
    pub fn serve(storage_root: &Path) -> Registry {
        Registry::serve_with(storage_root, "", None)
    }

    /// Serves `storage_root` with the registry of version `real`.
    pub fn serve_real(real: Real, storage_root: &Path) -> Registry {
        let serve = move |cfg: &Path| {
            let mut c = real.command();
            c.arg("serve").arg(cfg);
            c
        };
        Registry::serve_with(storage_root, "", Some(&serve))
    }

    /// `wrap`: a command prefix run around the registry (e.g. an unshare
    /// script that makes the tree read-only first).
    pub fn serve_with(storage_root: &Path, extra: &str, wrap: Option<&dyn Fn(&Path) -> Command>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config(storage_root, port, extra)).unwrap();
        let mut cmd = match wrap {
            Some(w) => w(&cfg),
            None => {
                let mut c = Command::new(BINARY);
                c.arg("serve").arg(&cfg);
                c
            }
        };
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start docker-registry");
        let reg = Registry { child, port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = reg.try_request("GET", "/v2/", &[]) {
                if r.status == 200 {
                    return reg;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not start on port {}", reg.port);
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
        self.try_request(method, path, headers).unwrap_or_else(|e| Response {
            status: 0,
            headers: Vec::new(),
            body: e.to_string().into_bytes(),
        })
    }

    fn try_request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        Response::parse(&raw)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Response {
    /// 0 when the connection closed without a response (a registry panic).
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    fn parse(raw: &[u8]) -> std::io::Result<Response> {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n");
        let Some(split) = split else {
            return Ok(Response { status: 0, headers: Vec::new(), body: raw.to_vec() });
        };
        let head = String::from_utf8_lossy(&raw[..split]);
        let mut lines = head.split("\r\n");
        let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Ok(Response { status, headers, body: raw[split + 4..].to_vec() })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Runs `docker-registry garbage-collect` on `storage_root`.
pub fn garbage_collect(storage_root: &Path, dry_run: bool, delete_untagged: bool) -> Output {
    garbage_collect_real(Real::V2_8, storage_root, dry_run, delete_untagged)
}

/// Runs `garbage-collect` of the registry of version `real` on `storage_root`.
pub fn garbage_collect_real(real: Real, storage_root: &Path, dry_run: bool, delete_untagged: bool) -> Output {
    run_garbage_collect(real.command(), &config(storage_root, free_port(), ""), dry_run, delete_untagged)
}

/// Runs `registry garbage-collect` through `registry` (the binary, set up
/// with its environment) on a registry configured by `config_yml`.
pub fn run_garbage_collect(mut registry: Command, config_yml: &str, dry_run: bool, delete_untagged: bool) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.yml");
    std::fs::write(&cfg, config_yml).unwrap();
    registry.arg("garbage-collect");
    if dry_run {
        registry.arg("--dry-run");
    }
    if delete_untagged {
        registry.arg("--delete-untagged");
    }
    registry.arg(&cfg).output().expect("run docker-registry garbage-collect")
}

/// What a file or directory is, for before/after comparisons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Dir,
    /// Content hash and mtime (ns): a rewrite with the same bytes counts too.
    File(String, u128),
    Symlink(PathBuf),
}

/// Every path below `root` (relative), with content hashes of files.
pub fn snapshot(root: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    // What cannot be listed is left out, as before; symlinks are not followed.
    for e in walkdir::WalkDir::new(root).min_depth(1).into_iter().flatten() {
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let ft = e.file_type();
        if ft.is_symlink() {
            out.insert(rel, Entry::Symlink(std::fs::read_link(p).unwrap()));
        } else if ft.is_dir() {
            out.insert(rel, Entry::Dir);
        } else {
            let bytes = std::fs::read(p).unwrap_or_default();
            let mtime = e
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .map(|t| t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos())
                .unwrap_or(0);
            out.insert(rel, Entry::File(hex::encode(Sha256::digest(&bytes)), mtime));
        }
    }
    out
}

/// Paths created, modified and removed between two snapshots.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub created: Vec<String>,
    pub modified: Vec<String>,
    pub removed: Vec<String>,
}

impl Changes {
    pub fn between(before: &BTreeMap<String, Entry>, after: &BTreeMap<String, Entry>) -> Changes {
        let mut c = Changes::default();
        for (p, e) in after {
            match before.get(p) {
                None => c.created.push(p.clone()),
                Some(b) if b != e => c.modified.push(p.clone()),
                _ => {}
            }
        }
        c.removed = before.keys().filter(|p| !after.contains_key(*p)).cloned().collect();
        c
    }

    pub fn is_empty(&self) -> bool {
        self.created.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }

    /// Files only (directories dropped), for comparing with predictions that
    /// list files.
    pub fn files(self, after: &BTreeMap<String, Entry>, before: &BTreeMap<String, Entry>) -> Changes {
        let is_file = |m: &BTreeMap<String, Entry>, p: &String| !matches!(m.get(p), Some(Entry::Dir));
        Changes {
            created: self.created.into_iter().filter(|p| is_file(after, p)).collect(),
            modified: self.modified.into_iter().filter(|p| is_file(after, p)).collect(),
            removed: self.removed.into_iter().filter(|p| is_file(before, p)).collect(),
        }
    }
}

/// A writable scratch copy of a testdata tree.
pub fn scratch_copy(src: &Path) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    super::copy_tree(src, dir.path());
    let p = dir.path().to_path_buf();
    (dir, p)
}
