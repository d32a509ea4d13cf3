//! An object-store root (`s3://`, `gs://`, `az://`) as a storage backend:
//! the flat listing of [`ObjectRoot::list_all`] and its reads behind
//! h-storage's [`FlatBackend`], which makes directories of key prefixes.
//!
//! Not declared in `storage/mod.rs` on branch h-objstore (`flat` lives on
//! h-storage): after the merge, declare `pub mod s3_backend;` there.

use std::io::{self, Read};
use std::sync::Arc;

use super::flat::{self, FlatBackend};
use super::s3::{ObjectError, ObjectRoot, RequestStats};
use super::Stamp;

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
        let reader = self.open_read(key).map_err(|e| io_error(&e))?;
        reader.take(limit.unwrap_or(u64::MAX)).read_to_end(&mut out)?;
        Ok(out)
    }

    fn stream(&self, key: &str) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(self.open_read(key).map_err(|e| io_error(&e))?))
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
