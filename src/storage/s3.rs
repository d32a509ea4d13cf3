//! Object-store roots: `s3://BUCKET[/PREFIX]` (and `gs://`, `az://` through
//! the same crate), read-only and at the request floor.
//!
//! The Apache Arrow `object_store` crate does the signing, retries and
//! paging; a small tokio runtime hidden in [`ObjectRoot`] drives it so that
//! the rest of regaudit stays synchronous. Every HTTP request goes through
//! [`GuardedService`], which refuses anything but GET and HEAD to the store,
//! bounds the requests in flight, applies the optional rate limit and counts
//! requests by kind. Errors name the key and never carry a credential
//! ([`Scrubber`]).

use std::fmt;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::{BoxStream, StreamExt};
use md5::{Digest, Md5};
use object_store::aws::{AmazonS3, AmazonS3Builder, AmazonS3ConfigKey, AwsAuthorizer};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody, HttpResponse, HttpService,
    ReqwestConnector,
};
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::list::{PaginatedListOptions, PaginatedListResult, PaginatedListStore};
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectMeta, ObjectStore, ObjectStoreExt, RetryConfig};

/// Which service a root URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    S3,
    Gcs,
    Azure,
}

impl Scheme {
    /// `driverName` of the registry's storage driver for this service
    /// (registry/storage/driver/{s3-aws,gcs,azure}/, same in 2.8.2 and 3.1.1).
    pub fn driver_name(self) -> &'static str {
        match self {
            Scheme::S3 => "s3aws",
            Scheme::Gcs => "gcs",
            Scheme::Azure => "azure",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Scheme::S3 => "s3",
            Scheme::Gcs => "gs",
            Scheme::Azure => "az",
        }
    }
}

/// A parsed root URL: `s3://BUCKET[/PREFIX]`, `gs://BUCKET[/PREFIX]`,
/// `az://CONTAINER[/PREFIX]`. PREFIX is the registry's `rootdirectory`
/// without its leading slash; it is kept without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootUrl {
    pub scheme: Scheme,
    pub bucket: String,
    pub prefix: String,
}

impl RootUrl {
    /// Parses a root URL; `None` when `s` is not an object-store URL at all
    /// (a local path), an error when it is one but malformed.
    pub fn parse(s: &str) -> Option<Result<RootUrl, ObjectError>> {
        let (scheme, rest) = s.split_once("://")?;
        let scheme = match scheme {
            "s3" | "s3a" => Scheme::S3,
            "gs" => Scheme::Gcs,
            "az" | "azure" => Scheme::Azure,
            _ => return None,
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Some(Err(ObjectError::Config(format!("{s}: no bucket name after {}://", scheme.as_str()))));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|seg| seg == "." || seg == "..")
            || (!prefix.is_empty() && prefix.split('/').any(str::is_empty))
        {
            return Some(Err(ObjectError::Config(format!("{s}: the prefix has an empty, '.' or '..' segment"))));
        }
        Some(Ok(RootUrl { scheme, bucket: bucket.to_string(), prefix: prefix.to_string() }))
    }

    /// The full object key of `key`, a key relative to the root.
    pub fn full_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else if key.is_empty() {
            format!("{}/", self.prefix)
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    /// The URL naming `key` (relative to the root), for messages.
    pub fn url_of(&self, key: &str) -> String {
        let full = self.full_key(key);
        format!("{}://{}/{}", self.scheme.as_str(), self.bucket, full)
    }
}

impl fmt::Display for RootUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

/// An error from the object store, after retries. Never holds a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    #[error("{url}: no such object")]
    NotFound { url: String },
    #[error("{url}: larger than {cap} bytes")]
    TooLarge { url: String, cap: u64 },
    #[error("{url}: {message}")]
    Request { url: String, message: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Config(String),
}

/// Knobs of an object-store root.
#[derive(Debug, Clone)]
pub struct ObjectOptions {
    /// Requests in flight at most (every kind together).
    pub max_requests: usize,
    /// Requests started per second at most; `None` for no limit.
    pub rate_limit: Option<f64>,
    /// Retries of a request that failed with 5xx, 429, a reset or a timeout.
    pub max_retries: usize,
    /// No retry starts after this long since the first attempt.
    pub retry_timeout: Duration,
    /// One request (headers and body) times out after this long.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// List by key ranges fetched concurrently (see [`ObjectRoot::list_all`]);
    /// `false`: one flat listing, page after page (the fewest requests).
    pub split_ranges: bool,
    /// Settings named as the environment names them (`AWS_ACCESS_KEY_ID`,
    /// `AWS_ENDPOINT_URL`, ...), taking precedence over the environment.
    pub settings: Vec<(String, String)>,
}

impl Default for ObjectOptions {
    fn default() -> Self {
        ObjectOptions {
            max_requests: 32,
            rate_limit: None,
            max_retries: 10,
            retry_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            settings: Vec::new(),
            split_ranges: true,
        }
    }
}

/// What a backend can do beyond listing and reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectCapabilities {
    /// Single-part ETags are the MD5 of the content (S3 without SSE-KMS);
    /// [`link_from_etag`] may spare a GET. Checked per object all the same.
    pub etag_may_be_md5: bool,
    /// In-progress uploads are listable ([`ObjectRoot::list_multipart_uploads`]).
    pub multipart_uploads: bool,
}

/// One listed object. `key` is relative to the root prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectEntry {
    pub key: String,
    pub size: u64,
    pub last_modified: DateTime<Utc>,
    /// As the store sent it, quotes included.
    pub etag: Option<String>,
}

/// Times a listing page whose body was cut short is asked for again.
const LIST_BODY_RETRIES: u32 = 4;

/// Requests made, counted in [`GuardedService`] (each retry is a request).
#[derive(Debug, Default)]
pub struct RequestStats {
    list: AtomicU64,
    get: AtomicU64,
    head: AtomicU64,
    refused: AtomicU64,
    bytes_read: AtomicU64,
}

/// A snapshot of [`RequestStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub list: u64,
    pub get: u64,
    pub head: u64,
    /// Requests of another method that were refused without being sent.
    pub refused: u64,
    /// Object bytes delivered by GETs (listing bodies not included).
    pub bytes_read: u64,
}

impl RequestCounts {
    pub fn total(&self) -> u64 {
        self.list + self.get + self.head
    }
}

impl RequestStats {
    pub fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            list: self.list.load(Ordering::Relaxed),
            get: self.get.load(Ordering::Relaxed),
            head: self.head.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
        }
    }
}

/// Replaces every credential value in a message. The values come from the
/// environment the store was configured from, so no configured secret can
/// reach an error, a log line or a report.
#[derive(Debug, Default, Clone)]
struct Scrubber {
    secrets: Vec<String>,
}

/// Variables whose values are credentials, for every supported service.
const SECRET_VARIABLES: &[&str] = &[
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_MASTER_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_TOKEN",
    "AZURE_CLIENT_SECRET",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
];

impl Scrubber {
    fn new(settings: &[(String, String)]) -> Scrubber {
        let overrides = settings.iter().filter(|(k, _)| SECRET_VARIABLES.contains(&k.as_str())).map(|(_, v)| v.clone());
        let mut secrets: Vec<String> = SECRET_VARIABLES
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .chain(overrides)
            .filter(|v| v.len() >= 4)
            .collect();
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Scrubber { secrets }
    }

    fn scrub(&self, message: &str) -> String {
        let mut out = message.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[redacted]");
            }
        }
        // Signatures and signed-URL parameters are not secrets by themselves
        // but say nothing useful either.
        for marker in ["Signature=", "X-Amz-Signature=", "X-Amz-Security-Token=", "sig="] {
            let mut from = 0;
            while let Some(at) = out[from..].find(marker) {
                let start = from + at + marker.len();
                let end = out[start..]
                    .find(|c: char| c == '&' || c == '"' || c == '<' || c.is_whitespace())
                    .map_or(out.len(), |e| start + e);
                out.replace_range(start..end, "[redacted]");
                from = start + "[redacted]".len();
            }
        }
        out
    }
}

/// Every HTTP request of the store passes here: read-only by construction,
/// bounded in flight, rate limited, counted.
#[derive(Debug)]
struct GuardedService {
    inner: HttpClient,
    stats: Arc<RequestStats>,
    in_flight: Arc<tokio::sync::Semaphore>,
    rate: Option<Arc<RateLimit>>,
}

#[derive(Debug)]
struct RateLimit {
    interval: Duration,
    next: Mutex<Instant>,
}

impl RateLimit {
    /// How long the caller waits for its slot.
    fn reserve(&self) -> Duration {
        let now = Instant::now();
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let slot = (*next).max(now);
        *next = slot + self.interval;
        slot - now
    }
}

/// Hosts that hand out credentials (instance metadata, STS, OAuth): their
/// PUT/POST requests are part of signing in, not writes to the store.
fn is_credential_host(host: &str) -> bool {
    host == "169.254.169.254"
        || host == "169.254.170.2"
        || host == "metadata.google.internal"
        || host == "oauth2.googleapis.com"
        || host == "login.microsoftonline.com"
        || host.starts_with("sts.")
}

/// The kind of a request, by method and query: LIST, GET, HEAD, or `None`
/// for a method that would change the store.
fn request_kind(req: &HttpRequest) -> Option<&'static str> {
    let query = req.uri().query().unwrap_or("");
    let is_list = query.split('&').any(|p| {
        let name = p.split('=').next().unwrap_or("");
        matches!(name, "list-type" | "uploads" | "uploadId" | "comp" | "delimiter")
    }) || (req.uri().path().ends_with("/o") && query.contains("prefix"));
    match *req.method() {
        http::Method::GET if is_list => Some("LIST"),
        http::Method::GET => Some("GET"),
        http::Method::HEAD => Some("HEAD"),
        _ => None,
    }
}

#[async_trait::async_trait]
impl HttpService for GuardedService {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let host = req.uri().host().unwrap_or("").to_string();
        let counter = match request_kind(&req) {
            Some("LIST") => &self.stats.list,
            Some("GET") => &self.stats.get,
            Some(_) => &self.stats.head,
            None if is_credential_host(&host) => return self.inner.execute(req).await,
            None => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                // Unknown: never retried.
                return Err(HttpError::new(
                    HttpErrorKind::Unknown,
                    io::Error::other(format!("regaudit is read-only: refused a {} request", req.method())),
                ));
            }
        };
        let _permit = self.in_flight.acquire().await.map_err(|e| HttpError::new(HttpErrorKind::Unknown, e))?;
        if let Some(rate) = &self.rate {
            let wait = rate.reserve();
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        counter.fetch_add(1, Ordering::Relaxed);
        self.inner.execute(req).await
    }
}

/// Builds [`GuardedService`] around the crate's own reqwest client.
#[derive(Debug)]
struct GuardedConnector {
    stats: Arc<RequestStats>,
    in_flight: Arc<tokio::sync::Semaphore>,
    rate: Option<Arc<RateLimit>>,
}

impl HttpConnector for GuardedConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let inner = ReqwestConnector::default().connect(options)?;
        Ok(HttpClient::new(GuardedService {
            inner,
            stats: self.stats.clone(),
            in_flight: self.in_flight.clone(),
            rate: self.rate.clone(),
        }))
    }
}

/// What S3 needs beyond `object_store` to list multipart uploads.
#[derive(Debug)]
struct S3Extras {
    store: Arc<AmazonS3>,
    client: HttpClient,
    /// Path-style bucket URL, no trailing slash.
    bucket_url: String,
    region: String,
    max_retries: usize,
    backoff: BackoffConfig,
}

/// An object-store root opened read-only.
pub struct ObjectRoot {
    runtime: Arc<tokio::runtime::Runtime>,
    url: RootUrl,
    store: Arc<dyn ObjectStore>,
    lister: Arc<dyn PaginatedListStore>,
    s3: Option<S3Extras>,
    stats: Arc<RequestStats>,
    scrubber: Scrubber,
    options: ObjectOptions,
}

impl fmt::Debug for ObjectRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectRoot").field("url", &self.url).finish()
    }
}

impl ObjectRoot {
    /// Opens `url` with credentials, region and endpoint from the standard
    /// environment of its service (AWS_*, GOOGLE_*, AZURE_*). Sends no
    /// request: a wrong credential shows at the first listing.
    pub fn open(url: &RootUrl, options: ObjectOptions) -> Result<ObjectRoot, ObjectError> {
        let setting = |name: &str| {
            let set = options.settings.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
            set.or_else(|| std::env::var(name).ok())
        };
        let profile = if url.scheme == Scheme::S3 { aws_profile_settings(&setting) } else { Vec::new() };
        let all_settings: Vec<(String, String)> = profile.iter().chain(&options.settings).cloned().collect();
        let scrubber = Scrubber::new(&all_settings);
        let config_error =
            |e: object_store::Error| ObjectError::Config(format!("{url}: {}", scrubber.scrub(&e.to_string())));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("regaudit-objstore")
            .enable_all()
            .build()
            .map_err(|e| ObjectError::Config(format!("cannot start the I/O runtime: {e}")))?;
        let stats = Arc::new(RequestStats::default());
        let in_flight = Arc::new(tokio::sync::Semaphore::new(options.max_requests.max(1)));
        let rate = options.rate_limit.filter(|r| *r > 0.0).map(|r| {
            Arc::new(RateLimit { interval: Duration::from_secs_f64(1.0 / r), next: Mutex::new(Instant::now()) })
        });
        let connector = || GuardedConnector { stats: stats.clone(), in_flight: in_flight.clone(), rate: rate.clone() };
        let backoff = BackoffConfig::default();
        let retry = RetryConfig {
            backoff: backoff.clone(),
            max_retries: options.max_retries,
            retry_timeout: options.retry_timeout,
        };
        let mut client_options = ClientOptions::new()
            .with_timeout(options.request_timeout)
            .with_connect_timeout(options.connect_timeout)
            .with_pool_max_idle_per_host(options.max_requests.max(1));
        if let Some(bundle) = setting("AWS_CA_BUNDLE") {
            let pem = std::fs::read(&bundle)
                .map_err(|e| ObjectError::Config(format!("AWS_CA_BUNDLE {bundle}: cannot read it: {e}")))?;
            for certificate in object_store::Certificate::from_pem_bundle(&pem).map_err(config_error)? {
                client_options = client_options.with_root_certificate(certificate);
            }
        }
        let env_allows_http = setting("AWS_ALLOW_HTTP").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        // The crate's builders read their environment; entering the runtime
        // lets them spawn what they need.
        let _guard = runtime.enter();
        let (store, lister, s3): (Arc<dyn ObjectStore>, Arc<dyn PaginatedListStore>, _) = match url.scheme {
            Scheme::S3 => {
                let mut env = AmazonS3Builder::from_env();
                // The profile's values only where the environment has none.
                for (name, value) in &profile {
                    if std::env::var_os(name).is_none() {
                        if let Ok(key) = name.to_ascii_lowercase().parse() {
                            env = env.with_config(key, value);
                        }
                    }
                }
                for (name, value) in &options.settings {
                    if let Ok(key) = name.to_ascii_lowercase().parse() {
                        env = env.with_config(key, value);
                    }
                }
                let endpoint = env.get_config_value(&AmazonS3ConfigKey::Endpoint);
                let region =
                    env.get_config_value(&AmazonS3ConfigKey::Region).unwrap_or_else(|| "us-east-1".to_string());
                let allow_http = env_allows_http || endpoint.as_deref().is_some_and(|e| e.starts_with("http://"));
                client_options = client_options.with_allow_http(allow_http);
                let store = Arc::new(
                    env.with_bucket_name(&url.bucket)
                        .with_region(&region)
                        .with_client_options(client_options.clone())
                        .with_retry(retry)
                        .with_http_connector(connector())
                        .build()
                        .map_err(config_error)?,
                );
                let base = endpoint.unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
                let extras = S3Extras {
                    store: store.clone(),
                    client: connector().connect(&client_options).map_err(config_error)?,
                    bucket_url: format!("{}/{}", base.trim_end_matches('/'), url.bucket),
                    region,
                    max_retries: options.max_retries,
                    backoff,
                };
                (store.clone(), store, Some(extras))
            }
            Scheme::Gcs => {
                let store = Arc::new(
                    GoogleCloudStorageBuilder::from_env()
                        .with_bucket_name(&url.bucket)
                        .with_client_options(client_options.with_allow_http(env_allows_http))
                        .with_retry(retry)
                        .with_http_connector(connector())
                        .build()
                        .map_err(config_error)?,
                );
                (store.clone(), store, None)
            }
            Scheme::Azure => {
                let store = Arc::new(
                    MicrosoftAzureBuilder::from_env()
                        .with_container_name(&url.bucket)
                        .with_client_options(client_options.with_allow_http(env_allows_http))
                        .with_retry(retry)
                        .with_http_connector(connector())
                        .build()
                        .map_err(config_error)?,
                );
                (store.clone(), store, None)
            }
        };
        drop(_guard);
        Ok(ObjectRoot { runtime: Arc::new(runtime), url: url.clone(), store, lister, s3, stats, scrubber, options })
    }

    pub fn url(&self) -> &RootUrl {
        &self.url
    }

    pub fn capabilities(&self) -> ObjectCapabilities {
        ObjectCapabilities { etag_may_be_md5: self.url.scheme == Scheme::S3, multipart_uploads: self.s3.is_some() }
    }

    /// Requests made so far.
    pub fn requests(&self) -> RequestCounts {
        self.stats.snapshot()
    }

    /// The live counters, shared: they go on counting after the root is
    /// moved into a backend.
    pub fn request_stats(&self) -> Arc<RequestStats> {
        self.stats.clone()
    }

    fn request_error(&self, key: &str, e: &dyn fmt::Display) -> ObjectError {
        ObjectError::Request { url: self.url.url_of(key), message: self.scrubber.scrub(&e.to_string()) }
    }

    fn store_error(&self, key: &str, e: object_store::Error) -> ObjectError {
        match e {
            object_store::Error::NotFound { .. } => ObjectError::NotFound { url: self.url.url_of(key) },
            e => self.request_error(key, &e),
        }
    }

    fn path_of(&self, key: &str) -> Result<Path, ObjectError> {
        Path::parse(self.url.full_key(key)).map_err(|e| self.request_error(key, &e))
    }

    fn entry_of(&self, meta: ObjectMeta) -> Option<ObjectEntry> {
        let full = meta.location.as_ref();
        let key = if self.url.prefix.is_empty() {
            full
        } else {
            full.strip_prefix(self.url.prefix.as_str())?.strip_prefix('/')?
        };
        Some(ObjectEntry { key: key.to_string(), size: meta.size, last_modified: meta.last_modified, etag: meta.e_tag })
    }

    /// Every object under the root, flat, in key order. Listed by key ranges
    /// fetched concurrently (see `list_concurrently`); never relies on the
    /// store's listing order.
    pub fn list_all(&self) -> Result<Vec<ObjectEntry>, ObjectError> {
        self.list_under("")
    }

    /// Every object whose key (relative to the root) starts with `sub`,
    /// which is empty or ends with `/`.
    pub fn list_under(&self, sub: &str) -> Result<Vec<ObjectEntry>, ObjectError> {
        let mut entries = self.runtime.block_on(self.list_concurrently(sub))?;
        entries.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        entries.dedup_by(|a, b| a.key == b.key);
        entries.shrink_to_fit();
        Ok(entries)
    }

    /// Pages of one listing of the full-key prefix `prefix`, from
    /// `page_token` on: all of them, or only the next one when
    /// `first_page_only`. Returns the objects, the common prefixes (each
    /// ending with `/`) and the token of the page after the last one read.
    async fn list_pages(
        &self,
        prefix: &str,
        delimited: bool,
        mut page_token: Option<String>,
        first_page_only: bool,
    ) -> Result<(Vec<ObjectMeta>, Vec<String>, Option<String>), ObjectError> {
        let mut objects = Vec::new();
        let mut prefixes = Vec::new();
        loop {
            let opts = PaginatedListOptions {
                delimiter: delimited.then_some("/".into()),
                page_token: page_token.take(),
                ..Default::default()
            };
            let page = self.list_page(prefix, opts).await?;
            objects.extend(page.result.objects);
            prefixes.extend(page.result.common_prefixes.into_iter().map(|p| {
                let mut p = p.as_ref().to_string();
                p.push('/');
                p
            }));
            match page.page_token {
                Some(token) if !first_page_only => page_token = Some(token),
                next => return Ok((objects, prefixes, next)),
            }
        }
    }

    /// One page of a listing. The crate retries a request that fails, but
    /// not a response body cut short, so that page is asked for again here.
    async fn list_page(&self, prefix: &str, opts: PaginatedListOptions) -> Result<PaginatedListResult, ObjectError> {
        let mut cut_short = 0;
        loop {
            match self.lister.list_paginated(Some(prefix).filter(|p| !p.is_empty()), opts.clone()).await {
                Ok(page) => return Ok(page),
                // object_store's text for a body that ended early (its error type is private).
                Err(e) if cut_short < LIST_BODY_RETRIES && e.to_string().contains("response body") => {
                    cut_short += 1;
                    tokio::time::sleep(Duration::from_millis(100 << cut_short)).await;
                }
                Err(e) => return Err(self.listing_error(prefix, e)),
            }
        }
    }

    fn listing_error(&self, full_prefix: &str, e: object_store::Error) -> ObjectError {
        let url = format!("{}://{}/{full_prefix}", self.url.scheme.as_str(), self.url.bucket);
        ObjectError::Request { url, message: format!("listing failed: {}", self.scrubber.scrub(&e.to_string())) }
    }

    /// Every object under `sub`, near the floor of one flat listing
    /// (`ceil(objects / page size)` requests) yet with many listings in
    /// flight. The plan is sized from what is there, never from the order
    /// the store lists in (SeaweedFS lists in directory-walk order, AWS in
    /// byte order): a root that fits in one page is that page; a larger one
    /// is cut into prefixes, each of which is listed whole by prefix, so
    /// every key is found whatever the order (see [`ListJob`]).
    /// Each page's objects become entries as its job ends: the crate's
    /// `ObjectMeta` of every key are never all held at once.
    async fn list_concurrently(&self, sub: &str) -> Result<Vec<ObjectEntry>, ObjectError> {
        let base = self.url.full_key(sub);
        let (objects, _, next) = self.list_pages(&base, false, None, self.options.split_ranges).await?;
        if next.is_none() {
            return Ok(objects.into_iter().filter_map(|m| self.entry_of(m)).collect());
        }
        drop(objects);
        let mut found = Vec::new();
        let mut queue = std::collections::VecDeque::from([ListJob::Descend(base)]);
        let mut running = futures_util::stream::FuturesUnordered::new();
        // Each job makes one request at a time; GuardedService bounds them
        // all the same.
        let width = self.options.max_requests.max(1);
        loop {
            while running.len() < width {
                let Some(job) = queue.pop_front() else { break };
                running.push(self.run_list_job(job));
            }
            let Some(done) = running.next().await else { break };
            let (objects, next) = done?;
            found.extend(objects.into_iter().filter_map(|m| self.entry_of(m)));
            queue.extend(next);
        }
        Ok(found)
    }

    /// One step of the listing plan: the objects it listed and the jobs it
    /// leaves.
    async fn run_list_job(&self, job: ListJob) -> Result<(Vec<ObjectMeta>, Vec<ListJob>), ObjectError> {
        match job {
            ListJob::Descend(dir) => {
                let (objects, names, _) = self.list_pages(&dir, true, None, false).await?;
                // One name and nothing beside it: everything that made the
                // level large is below that name.
                if names.len() == 1 && objects.is_empty() {
                    return Ok((objects, vec![ListJob::Descend(names.into_iter().next().unwrap_or_default())]));
                }
                let next = group_names(&names).into_iter().map(|(prefix, names)| ListJob::Probe { prefix, names });
                Ok((objects, next.collect()))
            }
            ListJob::Probe { prefix, mut names } => {
                let (objects, _, next) = self.list_pages(&prefix, false, None, true).await?;
                let Some(token) = next else { return Ok((objects, Vec::new())) };
                if names.len() == 1 {
                    return Ok((Vec::new(), vec![ListJob::Descend(names.pop().unwrap_or_default())]));
                }
                match estimated_pages(&objects, &names) {
                    Some(pages) if pages <= SEQUENTIAL_PAGES => {
                        let (rest, _, _) = self.list_pages(&prefix, false, Some(token), false).await?;
                        let mut objects = objects;
                        objects.extend(rest);
                        Ok((objects, Vec::new()))
                    }
                    _ => {
                        let next =
                            group_names(&names).into_iter().map(|(prefix, names)| ListJob::Probe { prefix, names });
                        Ok((Vec::new(), next.collect()))
                    }
                }
            }
        }
    }

    /// GET of a small object, at most `cap` bytes; [`ObjectError::TooLarge`]
    /// past that (the read stops there).
    pub fn read_capped(&self, key: &str, cap: u64) -> Result<Vec<u8>, ObjectError> {
        let mut reader = self.open_read(key)?;
        let mut out = Vec::new();
        (&mut reader).take(cap + 1).read_to_end(&mut out).map_err(|e| self.request_error(key, &e))?;
        if out.len() as u64 > cap {
            return Err(ObjectError::TooLarge { url: self.url.url_of(key), cap });
        }
        Ok(out)
    }

    /// A streaming GET as `std::io::Read`. Errors while streaming (after
    /// the crate's retries) come out of `read` as `io::Error` whose message
    /// names the key.
    pub fn open_read(&self, key: &str) -> Result<ObjectReader, ObjectError> {
        let path = self.path_of(key)?;
        let result = self.runtime.block_on(self.store.get(&path)).map_err(|e| self.store_error(key, e))?;
        let entry = ObjectEntry {
            key: key.to_string(),
            size: result.meta.size,
            last_modified: result.meta.last_modified,
            etag: result.meta.e_tag.clone(),
        };
        Ok(ObjectReader {
            runtime: self.runtime.clone(),
            stats: self.stats.clone(),
            url: self.url.url_of(key),
            scrubber: self.scrubber.clone(),
            entry,
            stream: result.into_stream(),
            chunk: Bytes::new(),
        })
    }

    /// HEAD: the object's size, date and ETag; `None` when it does not exist.
    pub fn head(&self, key: &str) -> Result<Option<ObjectEntry>, ObjectError> {
        let path = self.path_of(key)?;
        match self.runtime.block_on(self.store.head(&path)) {
            Ok(meta) => Ok(Some(ObjectEntry {
                key: key.to_string(),
                size: meta.size,
                last_modified: meta.last_modified,
                etag: meta.e_tag,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.store_error(key, e)),
        }
    }

    /// In-progress multipart uploads whose key starts with `sub` (relative
    /// to the root), with their parts. S3 only: `object_store` writes
    /// multipart uploads but cannot list them, so ListMultipartUploads and
    /// ListParts are signed here with the crate's own [`AwsAuthorizer`].
    pub fn list_multipart_uploads(&self, sub: &str) -> Result<Vec<MultipartUpload>, ObjectError> {
        let Some(s3) = &self.s3 else {
            return Err(ObjectError::Unsupported(format!(
                "{}: listing in-progress uploads is only supported on s3://",
                self.url
            )));
        };
        self.runtime.block_on(async {
            let prefix = self.url.full_key(sub);
            let mut uploads = Vec::new();
            let mut markers: Option<(String, String)> = None;
            loop {
                let mut query = vec![("uploads", String::new()), ("prefix", prefix.clone())];
                if let Some((key, id)) = markers.take() {
                    query.push(("key-marker", key));
                    query.push(("upload-id-marker", id));
                }
                let body = self.s3_get(s3, "", &query, sub).await?;
                let page: xml::ListMultipartUploadsResult =
                    quick_xml::de::from_reader(&body[..]).map_err(|e| self.request_error(sub, &e))?;
                for u in page.uploads {
                    let Some(key) = self.relative_key(&u.key) else {
                        continue;
                    };
                    uploads.push(MultipartUpload {
                        key,
                        upload_id: u.upload_id,
                        initiated: u.initiated.and_then(|d| d.parse().ok()),
                        parts: Vec::new(),
                    });
                }
                match (page.is_truncated, page.next_key_marker, page.next_upload_id_marker) {
                    (Some(true), Some(k), Some(i)) => markers = Some((k, i)),
                    _ => break,
                }
            }
            for upload in &mut uploads {
                upload.parts = self.list_parts(s3, upload).await?;
            }
            Ok(uploads)
        })
    }

    fn relative_key(&self, full: &str) -> Option<String> {
        if self.url.prefix.is_empty() {
            return Some(full.to_string());
        }
        full.strip_prefix(self.url.prefix.as_str())?.strip_prefix('/').map(str::to_string)
    }

    async fn list_parts(&self, s3: &S3Extras, upload: &MultipartUpload) -> Result<Vec<UploadPart>, ObjectError> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut query = vec![("uploadId", upload.upload_id.clone())];
            if let Some(m) = marker.take() {
                query.push(("part-number-marker", m));
            }
            let full = self.url.full_key(&upload.key);
            let body = self.s3_get(s3, &full, &query, &upload.key).await?;
            let page: xml::ListPartsResult =
                quick_xml::de::from_reader(&body[..]).map_err(|e| self.request_error(&upload.key, &e))?;
            parts.extend(page.parts.into_iter().map(|p| UploadPart {
                number: p.part_number,
                size: p.size,
                etag: p.etag,
            }));
            match (page.is_truncated, page.next_part_number_marker) {
                (Some(true), Some(m)) => marker = Some(m),
                _ => return Ok(parts),
            }
        }
    }

    /// One signed GET on the bucket (`full_key` empty) or an object, with
    /// retries on 5xx, 429 and transport errors.
    async fn s3_get(
        &self,
        s3: &S3Extras,
        full_key: &str,
        query: &[(&str, String)],
        key_for_errors: &str,
    ) -> Result<Bytes, ObjectError> {
        let mut url =
            url::Url::parse(&format!("{}/", s3.bucket_url)).map_err(|e| self.request_error(key_for_errors, &e))?;
        if !full_key.is_empty() {
            url.path_segments_mut()
                .map_err(|_| self.request_error(key_for_errors, &"bad endpoint URL"))?
                .pop_if_empty()
                .extend(full_key.split('/'));
        }
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        let mut backoff = s3.backoff.init_backoff;
        let mut attempt = 0;
        loop {
            let credential =
                s3.store.credentials().get_credential().await.map_err(|e| self.store_error(key_for_errors, e))?;
            let mut request = http::Request::builder()
                .method(http::Method::GET)
                .uri(url.as_str())
                .body(HttpRequestBody::empty())
                .map_err(|e| self.request_error(key_for_errors, &e))?;
            AwsAuthorizer::new(&credential, "s3", &s3.region)
                .try_authorize(&mut request, None)
                .map_err(|e| self.store_error(key_for_errors, e))?;
            let (retryable, message): (bool, String) = match s3.client.execute(request).await {
                Ok(response) => {
                    let status = response.status();
                    match response.into_body().bytes().await {
                        Ok(body) if status.is_success() => return Ok(body),
                        Ok(body) => (
                            status.is_server_error() || status.as_u16() == 429,
                            format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(512)])),
                        ),
                        Err(e) => (true, e.to_string()),
                    }
                }
                Err(e) => (!matches!(e.kind(), HttpErrorKind::Unknown), e.to_string()),
            };
            if !retryable || attempt >= s3.max_retries {
                return Err(self.request_error(key_for_errors, &message));
            }
            attempt += 1;
            tokio::time::sleep(backoff).await;
            backoff = backoff.mul_f64(s3.backoff.base).min(s3.backoff.max_backoff);
        }
    }
}

/// The settings of the AWS profile (`AWS_PROFILE`, else `default`) from the
/// shared credentials and config files, named as the environment names them.
/// Credentials come from the profile only when `AWS_ACCESS_KEY_ID` is not
/// set. Static keys, region and endpoint only: SSO, roles and
/// `credential_process` are not supported (object_store has none of them).
fn aws_profile_settings(setting: &dyn Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    let home = std::env::var("HOME").unwrap_or_default();
    let profile = setting("AWS_PROFILE").unwrap_or_else(|| "default".to_string());
    let credentials = setting("AWS_SHARED_CREDENTIALS_FILE").unwrap_or_else(|| format!("{home}/.aws/credentials"));
    let config = setting("AWS_CONFIG_FILE").unwrap_or_else(|| format!("{home}/.aws/config"));
    let mut out = Vec::new();
    if setting("AWS_ACCESS_KEY_ID").is_none() {
        if let Ok(text) = std::fs::read_to_string(&credentials) {
            let values = ini_section(&text, &profile);
            for (file_key, name) in [
                ("aws_access_key_id", "AWS_ACCESS_KEY_ID"),
                ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
                ("aws_session_token", "AWS_SESSION_TOKEN"),
            ] {
                if let Some(v) = values.iter().find(|(k, _)| k == file_key) {
                    out.push((name.to_string(), v.1.clone()));
                }
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(&config) {
        // In the config file every profile but `default` is `[profile NAME]`.
        let section = if profile == "default" { profile.clone() } else { format!("profile {profile}") };
        let values = ini_section(&text, &section);
        for (file_key, name) in [("region", "AWS_REGION"), ("endpoint_url", "AWS_ENDPOINT_URL")] {
            if setting(name).is_none() {
                if let Some(v) = values.iter().find(|(k, _)| k == file_key) {
                    out.push((name.to_string(), v.1.clone()));
                }
            }
        }
    }
    out
}

/// The `key = value` lines of `[section]` in an INI-style AWS file.
fn ini_section(text: &str, section: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
        } else if inside {
            if let Some((k, v)) = line.split_once('=') {
                out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
    }
    out
}

/// An in-progress multipart upload (S3's form of a registry upload's data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartUpload {
    /// Relative to the root prefix.
    pub key: String,
    pub upload_id: String,
    pub initiated: Option<DateTime<Utc>>,
    pub parts: Vec<UploadPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadPart {
    pub number: u32,
    pub size: u64,
    pub etag: Option<String>,
}

mod xml {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ListMultipartUploadsResult {
        pub is_truncated: Option<bool>,
        pub next_key_marker: Option<String>,
        pub next_upload_id_marker: Option<String>,
        #[serde(rename = "Upload", default)]
        pub uploads: Vec<Upload>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct Upload {
        pub key: String,
        pub upload_id: String,
        pub initiated: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct ListPartsResult {
        pub is_truncated: Option<bool>,
        pub next_part_number_marker: Option<String>,
        #[serde(rename = "Part", default)]
        pub parts: Vec<Part>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "PascalCase")]
    pub struct Part {
        pub part_number: u32,
        pub size: u64,
        #[serde(rename = "ETag")]
        pub etag: Option<String>,
    }
}

/// A streaming GET, read synchronously.
/// Owns what it needs (the runtime included), so it may outlive the
/// borrow of its [`ObjectRoot`].
pub struct ObjectReader {
    runtime: Arc<tokio::runtime::Runtime>,
    stats: Arc<RequestStats>,
    url: String,
    scrubber: Scrubber,
    entry: ObjectEntry,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
}

impl ObjectReader {
    /// The size the GET announced.
    pub fn size(&self) -> u64 {
        self.entry.size
    }

    /// What the GET said of the object being read: the version streamed.
    pub fn entry(&self) -> &ObjectEntry {
        &self.entry
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.runtime.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => {
                    let message = self.scrubber.scrub(&e.to_string());
                    return Err(io::Error::other(format!("{}: {message}", self.url)));
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        self.stats.bytes_read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A step of the listing plan of [`ObjectRoot::list_concurrently`].
#[derive(Debug, PartialEq, Eq)]
enum ListJob {
    /// A large level: list it delimited (its own objects and the names
    /// below it), then probe the names in groups.
    Descend(String),
    /// `prefix` covers `names` (common prefixes, each ending with `/`):
    /// list its first page flat. Complete: done. Otherwise, by the size the
    /// page suggests, read on page after page (one stream, no waste), or
    /// split the names into smaller groups, or descend into a single name.
    Probe { prefix: String, names: Vec<String> },
}

/// A group whose listing is estimated at this many pages or fewer is read
/// on sequentially: splitting it would cost more in part-filled pages than
/// it gains in concurrency.
const SEQUENTIAL_PAGES: usize = 8;

/// Keys in a listing page (the store's default and maximum).
const PAGE_KEYS: usize = 1000;

/// The names split by their first character past their longest common
/// prefix: each group's prefix is a prefix of every name in it, so listing
/// it by prefix lists every key below those names (plus, at most, objects
/// beside them that the delimited listing has already returned).
fn group_names(names: &[String]) -> Vec<(String, Vec<String>)> {
    let Some(first) = names.first() else { return Vec::new() };
    if names.len() == 1 {
        return vec![(first.clone(), names.to_vec())];
    }
    let mut common = first.len();
    for name in &names[1..] {
        common = first.bytes().zip(name.bytes()).take(common).take_while(|(a, b)| a == b).count();
    }
    while !first.is_char_boundary(common) {
        common -= 1;
    }
    let mut groups: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for name in names {
        // Distinct names at one level all end with their only `/`: none is
        // a prefix of another, so each has a character past `common`.
        let next = name[common..].chars().next().map_or(0, char::len_utf8);
        groups.entry(name[..common + next].to_string()).or_default().push(name.clone());
    }
    groups.into_iter().collect()
}

/// How many pages listing all of `names` would take, judged from a first
/// page: the names it shows whole (all but the one its last key is under)
/// give the keys per name. `None` when it shows no name whole. An
/// estimate only: whatever it says, every key is listed.
fn estimated_pages(page: &[ObjectMeta], names: &[String]) -> Option<usize> {
    let mut sorted: Vec<&str> = names.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let name_of = |key: &str| {
        let i = sorted.partition_point(|n| *n <= key);
        (i > 0 && key.starts_with(sorted[i - 1])).then(|| i - 1)
    };
    let mut keys_per_name: std::collections::HashMap<usize, usize> = Default::default();
    let mut last = None;
    for object in page {
        if let Some(i) = name_of(object.location.as_ref()) {
            *keys_per_name.entry(i).or_default() += 1;
            last = Some(i);
        }
    }
    if let Some(last) = last {
        keys_per_name.remove(&last);
    }
    let whole = keys_per_name.len();
    if whole == 0 {
        return None;
    }
    let keys = keys_per_name.values().sum::<usize>() * names.len() / whole;
    Some(keys.div_ceil(PAGE_KEYS))
}

/// The size of a link: `sha256:` and 64 hex digits, no newline.
pub const LINK_SIZE: u64 = 71;

/// The digest a link's own path names: `.../_layers/<alg>/<hex>/link`,
/// `.../_manifests/revisions/<alg>/<hex>/link` and a tag's
/// `.../index/<alg>/<hex>/link` (registry/storage/paths.go). A tag's
/// `current/link` names none: its candidates are its index entries.
pub fn digest_named_by_link_path(key: &str) -> Option<String> {
    let mut segments = key.rsplit('/');
    if segments.next()? != "link" {
        return None;
    }
    let hex = segments.next()?;
    let alg = segments.next()?;
    let parent = segments.next()?;
    if !matches!(parent, "_layers" | "revisions" | "index") || alg.is_empty() || hex.is_empty() {
        return None;
    }
    Some(format!("{alg}:{hex}"))
}

/// The content of a link known from its listing alone: its size is
/// [`LINK_SIZE`] and its ETag (quotes stripped) is the MD5 of one of the
/// `candidates` (the digest its path names, or a tag's index entries for
/// its `current/link`). `None` means "read it": a multipart or SSE-KMS ETag,
/// another size, or content that is none of the candidates.
pub fn link_from_etag<'a>(
    size: u64,
    etag: Option<&str>,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    if size != LINK_SIZE {
        return None;
    }
    let etag = etag?.trim_matches('"');
    if etag.len() != 32 {
        return None;
    }
    candidates
        .into_iter()
        .find(|c| c.len() as u64 == LINK_SIZE && hex::encode(Md5::digest(c.as_bytes())).eq_ignore_ascii_case(etag))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn etag_of(s: &str) -> String {
        format!("\"{}\"", hex::encode(Md5::digest(s.as_bytes())))
    }

    #[test]
    fn etag_inference_needs_size_etag_and_candidate() {
        let etag = etag_of(D1);
        assert_eq!(link_from_etag(71, Some(&etag), [D1]), Some(D1));
        // Unquoted and upper case, as some stores send it.
        let bare = etag.trim_matches('"').to_uppercase();
        assert_eq!(link_from_etag(71, Some(&bare), [D2, D1]), Some(D1));
        assert_eq!(link_from_etag(72, Some(&etag), [D1]), None);
        assert_eq!(link_from_etag(71, None, [D1]), None);
        assert_eq!(link_from_etag(71, Some(&etag), [D2]), None);
        // Multipart ETag: "<md5>-<parts>".
        let multipart = format!("\"{}-1\"", etag.trim_matches('"'));
        assert_eq!(link_from_etag(71, Some(&multipart), [D1]), None);
        // A candidate of another length never matches, even by MD5.
        let short = "sha256:12";
        assert_eq!(link_from_etag(71, Some(&etag_of(short)), [short]), None);
    }

    #[test]
    fn link_paths_name_their_digest() {
        let hex1 = &D1[7..];
        let v2 = "docker/registry/v2/repositories/library/a";
        assert_eq!(digest_named_by_link_path(&format!("{v2}/_layers/sha256/{hex1}/link")).as_deref(), Some(D1));
        assert_eq!(
            digest_named_by_link_path(&format!("{v2}/_manifests/revisions/sha256/{hex1}/link")).as_deref(),
            Some(D1)
        );
        assert_eq!(
            digest_named_by_link_path(&format!("{v2}/_manifests/tags/t/index/sha256/{hex1}/link")).as_deref(),
            Some(D1)
        );
        assert_eq!(digest_named_by_link_path(&format!("{v2}/_manifests/tags/t/current/link")), None);
        assert_eq!(digest_named_by_link_path(&format!("{v2}/_layers/sha256/{hex1}/data")), None);
        assert_eq!(digest_named_by_link_path("link"), None);
    }

    #[test]
    fn root_urls() {
        let u = RootUrl::parse("s3://bucket/prefix/sub/").unwrap().unwrap();
        assert_eq!((u.scheme, u.bucket.as_str(), u.prefix.as_str()), (Scheme::S3, "bucket", "prefix/sub"));
        assert_eq!(u.to_string(), "s3://bucket/prefix/sub");
        assert_eq!(u.full_key("docker/x"), "prefix/sub/docker/x");
        let u = RootUrl::parse("gs://b").unwrap().unwrap();
        assert_eq!((u.scheme, u.prefix.as_str(), u.full_key("k").as_str()), (Scheme::Gcs, "", "k"));
        assert!(RootUrl::parse("/srv/registry").is_none());
        assert!(RootUrl::parse("http://x/y").is_none());
        assert!(RootUrl::parse("s3:///p").unwrap().is_err());
        assert!(RootUrl::parse("s3://b/a/../c").unwrap().is_err());
        assert!(RootUrl::parse("s3://b/a//c").unwrap().is_err());
    }

    #[test]
    fn scrubber_removes_secrets_and_signatures() {
        let s = Scrubber { secrets: vec!["AKIASECRETID".into(), "s3cr3tvalue".into()] };
        let out =
            s.scrub("<AWSAccessKeyId>AKIASECRETID</AWSAccessKeyId> key s3cr3tvalue url?X-Amz-Signature=abcdef&x=1");
        assert!(!out.contains("AKIASECRETID") && !out.contains("s3cr3tvalue") && !out.contains("abcdef"));
        assert!(out.contains("&x=1"));
    }

    #[test]
    fn names_are_grouped_past_their_common_prefix() {
        let dir = "p/docker/registry/v2/repositories/";
        let names: Vec<String> =
            ["team1/", "team10/", "team11/", "team2/", "tools/"].iter().map(|n| format!("{dir}{n}")).collect();
        let groups = group_names(&names);
        let prefixes: Vec<&str> = groups.iter().map(|(p, _)| &p[dir.len()..]).collect();
        assert_eq!(prefixes, ["te", "to"]);
        let inner = group_names(&groups[0].1);
        let prefixes: Vec<&str> = inner.iter().map(|(p, _)| &p[dir.len()..]).collect();
        assert_eq!(prefixes, ["team1", "team2"]);
        let inner = group_names(&inner[0].1);
        let prefixes: Vec<&str> = inner.iter().map(|(p, _)| &p[dir.len()..]).collect();
        assert_eq!(prefixes, ["team1/", "team10", "team11"]);
        // Every name is in exactly one group, under its prefix.
        for (prefix, members) in group_names(&names) {
            assert!(members.iter().all(|n| n.starts_with(&prefix)));
        }
        assert_eq!(group_names(&names).iter().map(|(_, m)| m.len()).sum::<usize>(), names.len());
        assert_eq!(group_names(&["é1/".into(), "é2/".into()]).len(), 2);
    }

    #[test]
    fn pages_are_estimated_from_the_names_a_page_shows_whole() {
        let meta = |key: String| ObjectMeta {
            location: Path::from(key),
            last_modified: Utc::now(),
            size: 71,
            e_tag: None,
            version: None,
        };
        let names: Vec<String> = (0..20).map(|i| format!("r/n{i:02}/")).collect();
        // 300 keys under each of n00..n02 and 100 of n03: 300 a name, 20 names.
        let page: Vec<ObjectMeta> = (0..4)
            .flat_map(|n| (0..if n < 3 { 300 } else { 100 }).map(move |k| meta(format!("r/n{n:02}/k{k}"))))
            .collect();
        assert_eq!(estimated_pages(&page, &names), Some(6));
        // One name only, not shown whole: no estimate.
        let page: Vec<ObjectMeta> = (0..1000).map(|k| meta(format!("r/n00/k{k}"))).collect();
        assert_eq!(estimated_pages(&page, &names), None);
    }

    #[test]
    fn only_get_and_head_reach_the_store() {
        let req = |method: &str, uri: &str| {
            http::Request::builder().method(method).uri(uri).body(HttpRequestBody::empty()).unwrap()
        };
        assert_eq!(request_kind(&req("GET", "http://h/b?list-type=2&prefix=p")), Some("LIST"));
        assert_eq!(request_kind(&req("GET", "http://h/b?uploads=&prefix=p")), Some("LIST"));
        assert_eq!(request_kind(&req("GET", "http://h/b/k?uploadId=1")), Some("LIST"));
        assert_eq!(request_kind(&req("GET", "http://h/b/key")), Some("GET"));
        assert_eq!(request_kind(&req("HEAD", "http://h/b/key")), Some("HEAD"));
        for method in ["PUT", "POST", "DELETE", "PATCH"] {
            assert_eq!(request_kind(&req(method, "http://h/b/key")), None, "{method}");
        }
        assert!(is_credential_host("169.254.169.254") && !is_credential_host("s3.amazonaws.com"));
    }

    #[test]
    fn aws_profiles_from_the_shared_files() {
        let dir = tempfile::tempdir().unwrap();
        let credentials = dir.path().join("credentials");
        let config = dir.path().join("config");
        std::fs::write(
            &credentials,
            "[default]\naws_access_key_id = AKIADEF\n[audit]\n# comment\naws_access_key_id=AKIAAUD\naws_secret_access_key = s3cret\n",
        )
        .unwrap();
        std::fs::write(
            &config,
            "[default]\nregion = eu-west-1\n[profile audit]\nregion = us-west-2\nendpoint_url = http://127.0.0.1:9\n",
        )
        .unwrap();
        let vars = |pairs: Vec<(&'static str, String)>| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
        };
        let files = vec![
            ("AWS_SHARED_CREDENTIALS_FILE", credentials.display().to_string()),
            ("AWS_CONFIG_FILE", config.display().to_string()),
        ];
        let mut audit = files.clone();
        audit.push(("AWS_PROFILE", "audit".to_string()));
        let got = aws_profile_settings(&vars(audit.clone()));
        let want: Vec<(String, String)> = [
            ("AWS_ACCESS_KEY_ID", "AKIAAUD"),
            ("AWS_SECRET_ACCESS_KEY", "s3cret"),
            ("AWS_REGION", "us-west-2"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
        let got = aws_profile_settings(&vars(files.clone()));
        assert_eq!(got[0], ("AWS_ACCESS_KEY_ID".to_string(), "AKIADEF".to_string()));
        assert_eq!(got.last().unwrap(), &("AWS_REGION".to_string(), "eu-west-1".to_string()));
        // Keys in the environment win: none from the profile.
        audit.push(("AWS_ACCESS_KEY_ID", "AKIAENV".to_string()));
        assert!(aws_profile_settings(&vars(audit))
            .iter()
            .all(|(k, _)| !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET")));
    }

    #[test]
    fn rate_limit_spaces_requests() {
        let rate = RateLimit { interval: Duration::from_millis(100), next: Mutex::new(Instant::now()) };
        let waits: Vec<Duration> = (0..3).map(|_| rate.reserve()).collect();
        assert!(waits[0] < Duration::from_millis(10));
        assert!(waits[1] > Duration::from_millis(80) && waits[2] > Duration::from_millis(180), "{waits:?}");
    }
}
