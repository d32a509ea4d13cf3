//! An object-store root (`s3://`, `gs://`, `az://`) as a storage backend:
//! the flat listing of [`ObjectRoot::list_all`] and its reads behind
//! h-storage's [`FlatBackend`], which makes directories of key prefixes.

use std::io::{self, Read};
use std::sync::Arc;

use super::flat::{self, FlatBackend};
use super::s3::{ObjectError, ObjectRoot, RequestStats, RootUrl, Scheme};
use super::{LocateError, ObjectRootUse, ObjectSettings, RootName, Stamp, StorageRoot};
use crate::layout;

/// Opens `url`, lists it whole and checks that it holds a registry tree:
/// what [`StorageRoot::locate`] does for an object-store root. Every error
/// is one line naming the URL, never a credential.
pub fn locate(url: &RootUrl, settings: &ObjectSettings) -> Result<StorageRoot, LocateError> {
    let object_error = |e: ObjectError| LocateError::Object(one_line(&e.to_string()));
    let root = ObjectRoot::open(url, settings.options.clone()).map_err(object_error)?;
    let objects = Arc::new(std::sync::atomic::AtomicU64::new(0));
    crate::progress::object_store(settings.progress, &url.to_string(), root.request_stats(), objects.clone());
    let listing_started = chrono::Utc::now();
    let (backend, stats) = flat_backend(root).map_err(|e| LocateError::Object(listing_failed(url, &e.to_string())))?;
    let listing_ended = chrono::Utc::now();
    objects.store(backend.len() as u64, std::sync::atomic::Ordering::Relaxed);
    if !backend.has_dir(layout::V2) {
        return Err(LocateError::Object(not_a_registry(url, &backend)));
    }
    super::record_object_root(ObjectRootUse {
        url: url.to_string(),
        stats,
        listing_started,
        listing_ended,
        objects_listed: backend.len() as u64,
    });
    let backend = backend.read_all(settings.read_all);
    Ok(StorageRoot::new(RootName::Url(url.to_string()), None, Arc::new(backend)))
}

/// Why a listed root is not a registry tree, with the prefix to give
/// where the listing shows it.
fn not_a_registry(url: &RootUrl, backend: &FlatBackend<ObjectRoot>) -> String {
    let what = if backend.is_empty() {
        "no object under it".to_string()
    } else {
        format!("{} objects under it, none below {}/", backend.len(), layout::V2)
    };
    let v2_given = url.prefix == layout::V2 || url.prefix.ends_with(&format!("/{}", layout::V2));
    // A registry tree deeper down, named by the first key that has one.
    let marker = format!("/{}/", layout::V2);
    let deeper = backend.keys().find_map(|k| k.find(&marker).map(|i| &k[..i]));
    let hint = if v2_given {
        let above = url.prefix[..url.prefix.len() - layout::V2.len()].trim_end_matches('/');
        let root = RootUrl { prefix: above.to_string(), ..url.clone() };
        format!(" (give the storage root {root}, the registry's rootdirectory, not docker/registry/v2)")
    } else if let Some(sub) = deeper {
        let prefix = if url.prefix.is_empty() { sub.to_string() } else { format!("{}/{sub}", url.prefix) };
        format!(" (a registry tree is at {}: give that)", RootUrl { prefix, ..url.clone() })
    } else {
        " (PREFIX is the registry's storage rootdirectory without its leading slash)".to_string()
    };
    format!("{url} is not a registry storage tree: {what}{hint}")
}

/// Why the listing of `url` failed, in one line: the cause people can act
/// on first, then the store's own words (already free of credentials).
fn listing_failed(url: &RootUrl, message: &str) -> String {
    let detail = one_line(message);
    let has = |s: &str| detail.contains(s);
    let credentials = match url.scheme {
        Scheme::S3 => "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
        Scheme::Gcs => "GOOGLE_SERVICE_ACCOUNT or GOOGLE_APPLICATION_CREDENTIALS",
        Scheme::Azure => "AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY",
    };
    let why = if has("169.254.169.254") || (has("credential") && !has("403")) {
        format!("no credentials: set {credentials} for an identity that may list it")
    } else if has("403 Forbidden") || has("401 Unauthorized") || has("AccessDenied") || has("SignatureDoesNotMatch") {
        format!("access denied: check the credentials ({credentials}) and that they may list the bucket")
    } else if has("NoSuchBucket") || has("404 Not Found") {
        "no such bucket".to_string()
    } else if has("error sending request") || has("connect") || has("dns error") || has("timed out") {
        "the endpoint cannot be reached, even after retries".to_string()
    } else {
        "the listing failed, even after retries".to_string()
    };
    // The store's message starts with the URL already; keep what follows.
    let rest = detail.split_once(": listing failed: ").map_or(detail.as_str(), |(_, r)| r);
    format!("{url}: {why} ({})", rest.trim())
}

/// The first line of a message, so that an error is one line.
fn one_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    line.to_string()
}

/// Lists the whole root once (concurrently, by key ranges) and serves it as
/// a [`FlatBackend`]. The returned stats keep counting the reads made later.
pub fn flat_backend(root: ObjectRoot) -> io::Result<(FlatBackend<ObjectRoot>, Arc<RequestStats>)> {
    let stats = root.request_stats();
    let objects = root
        .list_all()
        .map_err(|e| io_error(&e))?
        .into_iter()
        .map(|e| flat::ObjectMeta {
            key: e.key,
            size: e.size,
            modified: Some(Stamp {
                secs: e.last_modified.timestamp(),
                nanos: e.last_modified.timestamp_subsec_nanos(),
            }),
            etag: e.etag,
        })
        .collect();
    Ok((FlatBackend::new(objects, root), stats))
}

impl flat::ObjectStore for ObjectRoot {
    fn get(&self, key: &str, limit: Option<u64>) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let reader = self.open_read(key).map_err(|e| read_error(key, &e))?;
        // A body cut short after the retries is the store's failure too.
        reader
            .take(limit.unwrap_or(u64::MAX))
            .read_to_end(&mut out)
            .map_err(|e| crate::storage::store_failure(key, e.to_string()))?;
        Ok(out)
    }

    fn driver_name(&self) -> &'static str {
        self.url().scheme.driver_name()
    }

    fn stream(&self, key: &str) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(self.open_read(key).map_err(|e| read_error(key, &e))?))
    }
}

/// A failed read of `key`: "not found" is an answer about the tree; any
/// other error left after the retries is the store's, recorded as unread.
fn read_error(key: &str, e: &ObjectError) -> io::Error {
    match e {
        ObjectError::NotFound { .. } | ObjectError::Unsupported(_) => io_error(e),
        _ => crate::storage::store_failure(key, e.to_string()),
    }
}

fn io_error(e: &ObjectError) -> io::Error {
    let kind = match e {
        ObjectError::NotFound { .. } => io::ErrorKind::NotFound,
        ObjectError::Unsupported(_) => io::ErrorKind::Unsupported,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e.to_string())
}
