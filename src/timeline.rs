//! `regaudit timeline`: every event the tree's metadata records, in time
//! order, built from the inventory and the times of each file it names.
//!
//! What a file's times mean follows from how the registry writes it
//! (registry/storage/driver/filesystem/driver.go `Writer`, `Move`): a link is
//! rewritten in place (open, truncate, write), so its birth time is the first
//! write and its mtime the last; blob data is appended to in `_uploads` and
//! then renamed into `blobs/`, so its mtime is the last append.

use std::path::Path;

use serde::Serialize;

use crate::digest::Digest;
use crate::inventory::{Inventory, Repository};
use crate::layout;
use crate::problem::{normalize, Code, Problem};
use crate::storage::{FileStat, Leaves, LocateError, Stamp, StorageRoot};

/// What an event says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A tag's index link for a digest written (`_manifests/tags/T/index/...`).
    TagSet,
    /// A manifest revision link written (`_manifests/revisions/...`).
    ManifestWritten,
    /// A blob linked into a repository (`_layers/...`).
    LayerLinked,
    /// A schema1 signature link (registries before 2.5).
    SignatureLinked,
    /// A blob's data written.
    BlobWritten,
    /// An upload started (`startedat`).
    UploadStarted,
    /// Data appended to an upload (`_uploads/U/data`).
    UploadAppended,
    /// An upload's hash state saved after a chunk (`hashstates/ALG/OFFSET`).
    UploadHashState,
}

/// Where an event's time comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The file's birth time (statx): its creation on this filesystem.
    Birth,
    /// The time written inside `startedat`.
    Startedat,
    /// The file's modification time: the last write.
    Mtime,
}

/// One file the timeline read, with what it means and its times.
#[derive(Clone, Debug)]
pub struct FileRecord {
    /// Relative to the storage root.
    pub path: String,
    pub kind: EventKind,
    pub repository: Option<String>,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
    pub upload: Option<String>,
    pub stat: FileStat,
    /// `startedat`'s own time, when the file holds a valid one.
    pub started_at: Option<i64>,
}

impl FileRecord {
    /// What the file records, in a few words (the bodyfile's name field).
    pub fn meaning(&self) -> String {
        let repo = self.repository.as_deref().unwrap_or("");
        let digest = self.digest.as_ref().map(Digest::to_string).unwrap_or_default();
        let upload = self.upload.as_deref().unwrap_or("");
        match self.kind {
            EventKind::TagSet => format!("tag {repo}:{} -> {digest}", self.tag.as_deref().unwrap_or("")),
            EventKind::ManifestWritten => format!("manifest {repo}@{digest}"),
            EventKind::LayerLinked => format!("layer {digest} linked into {repo}"),
            EventKind::SignatureLinked => format!("signature {digest} of {repo}"),
            EventKind::BlobWritten => format!("blob {digest} data"),
            EventKind::UploadStarted => format!("upload {upload} to {repo} startedat"),
            EventKind::UploadAppended => format!("upload {upload} to {repo} data"),
            EventKind::UploadHashState => {
                format!("upload {upload} to {repo} hash state at byte {}", self.path.rsplit('/').next().unwrap_or(""))
            }
        }
    }

    /// The sentence of the event this file's time of `source` records.
    fn describe(&self, source: Source) -> String {
        let repo = self.repository.as_deref().unwrap_or("");
        let digest = self.digest.as_ref().map(Digest::to_string).unwrap_or_default();
        let upload = self.upload.as_deref().unwrap_or("");
        if source == Source::Birth {
            // Only the file's creation is known: by the registry, or by a copy.
            let copied = self.stat.btime.is_some_and(|b| b > self.stat.mtime);
            let why = if copied { " after its last write, so by a copy, not by the registry" } else { "" };
            return format!("{}: file created{why}", self.meaning());
        }
        match self.kind {
            EventKind::TagSet => format!("tag {repo}:{} last set to {digest}", self.tag.as_deref().unwrap_or("")),
            EventKind::ManifestWritten => format!("manifest {digest} last put to {repo}"),
            EventKind::LayerLinked => format!("blob {digest} last linked into {repo}"),
            EventKind::SignatureLinked => format!("signature {digest} last linked in {repo}"),
            EventKind::BlobWritten => format!("blob {digest} data last written"),
            EventKind::UploadStarted if source == Source::Startedat => {
                format!("upload {upload} to {repo} started (the time in startedat)")
            }
            EventKind::UploadStarted => format!("upload {upload} to {repo}: startedat last written"),
            EventKind::UploadAppended => format!("upload {upload} to {repo}: data last appended"),
            EventKind::UploadHashState => {
                let offset = self.path.rsplit('/').next().unwrap_or("");
                format!("upload {upload} to {repo}: hash state at byte {offset} last saved")
            }
        }
    }

    /// The events this file records: its mtime, its birth time where the
    /// filesystem keeps one, and for `startedat` the time inside it (and
    /// then its mtime only when the two disagree).
    pub fn events(&self) -> Vec<Event> {
        let mut out = Vec::new();
        let mut push = |source, time: Stamp| {
            out.push(Event {
                time,
                kind: self.kind,
                source,
                repository: self.repository.clone(),
                tag: self.tag.clone(),
                digest: self.digest.as_ref().map(Digest::to_string),
                upload: self.upload.clone(),
                path: self.path.clone(),
                description: self.describe(source),
            })
        };
        match self.started_at {
            Some(secs) => {
                push(Source::Startedat, Stamp { secs, nanos: 0 });
                if self.stat.mtime.secs != secs {
                    push(Source::Mtime, self.stat.mtime);
                }
            }
            None => push(Source::Mtime, self.stat.mtime),
        }
        if let Some(b) = self.stat.btime {
            push(Source::Birth, b);
        }
        out
    }
}

/// One event, as rendered.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    #[serde(serialize_with = "serialize_stamp")]
    pub time: Stamp,
    pub kind: EventKind,
    pub source: Source,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload: Option<String>,
    pub path: String,
    pub description: String,
}

/// A tag's current target: what `current/link` holds, and when it was written.
#[derive(Clone, Debug, Serialize)]
pub struct CurrentTag {
    pub repository: String,
    pub tag: String,
    /// The digest `current/link` holds; null when it is missing or invalid.
    pub digest: Option<String>,
    pub path: String,
    /// mtime of `current/link`: the last time the tag was set (to anything).
    #[serde(serialize_with = "serialize_opt_stamp")]
    pub set_at: Option<Stamp>,
}

/// RFC 3339 in UTC with nanoseconds, e.g. `2026-01-31T12:00:00.123456789Z`.
pub fn rfc3339(t: Stamp) -> String {
    match chrono::DateTime::from_timestamp(t.secs, t.nanos) {
        Some(d) => d.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        None => format!("@{}.{:09}", t.secs, t.nanos),
    }
}

fn serialize_stamp<S: serde::Serializer>(t: &Stamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

fn serialize_opt_stamp<S: serde::Serializer>(t: &Option<Stamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&rfc3339(*t)),
        None => s.serialize_none(),
    }
}

/// Which events to keep.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub since: Option<Stamp>,
    pub until: Option<Stamp>,
    /// `--repo` and `--tag` globs. With tag globs, only the events and
    /// current tags of matching tags are kept.
    pub select: crate::select::Selection,
}

impl Filter {
    pub fn keeps_time(&self, t: Stamp) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
    }

    pub fn keeps_repository(&self, name: &str) -> bool {
        self.select.keeps_repository(name)
    }

    /// With `--tag`, only events about a matching tag.
    pub fn keeps_tag(&self, tag: Option<&str>) -> bool {
        self.select.tags.is_empty() || tag.is_some_and(|t| self.select.keeps_tag(t))
    }
}

/// Parses `--since`/`--until`: RFC 3339, or a date `YYYY-MM-DD` (midnight UTC).
pub fn parse_time(s: &str) -> Result<Stamp, String> {
    let parsed = chrono::DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&chrono::Utc)).or_else(|_| {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
    });
    match parsed {
        Ok(d) => Ok(Stamp { secs: d.timestamp(), nanos: d.timestamp_subsec_nanos() }),
        Err(_) => Err(format!("invalid time {s:?}: use RFC 3339 (2026-01-31T12:00:00Z) or a date (2026-01-31, UTC)")),
    }
}

/// Everything the timeline read from one tree.
pub struct Timeline {
    pub root: StorageRoot,
    /// Every file read, in path order.
    pub files: Vec<FileRecord>,
    pub tags: Vec<CurrentTag>,
    pub problems: Vec<Problem>,
}

impl Timeline {
    /// Scans the tree and stats every file the inventory names that carries
    /// an event. Files of repositories `filter` leaves out are not read.
    pub fn read(path: &Path, filter: &Filter) -> Result<Timeline, LocateError> {
        let root = StorageRoot::locate(path)?;
        let inventory = root.scan(Leaves::List);
        let mut reader = Reader { root: root.clone(), files: Vec::new(), problems: Vec::new() };
        let mut tags = Vec::new();
        let mut blobs = std::collections::BTreeSet::new();
        for repo in inventory.repositories.iter().filter(|r| filter.keeps_repository(&r.name)) {
            reader.repository(repo, &mut tags);
            blobs.extend(repo.layer_links.keys().cloned());
            blobs.extend(repo.revisions.keys().cloned());
        }
        let every_blob = filter.select.repos.is_empty() && filter.select.tags.is_empty();
        reader.blobs(&inventory, |d| every_blob || blobs.contains(d));
        let mut problems = inventory.problems;
        problems.extend(reader.problems);
        normalize(&mut problems);
        let mut files = reader.files;
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Timeline { root, files, tags, problems })
    }

    /// The events `filter` keeps, oldest first (ties in path order).
    pub fn events(&self, filter: &Filter) -> Vec<Event> {
        let mut events: Vec<Event> = self
            .files
            .iter()
            .flat_map(FileRecord::events)
            .filter(|e| filter.keeps_time(e.time) && filter.keeps_tag(e.tag.as_deref()))
            .collect();
        events.sort_by(|a, b| (a.time, &a.path, a.source).cmp(&(b.time, &b.path, b.source)));
        events
    }
}

struct Reader {
    root: StorageRoot,
    files: Vec<FileRecord>,
    problems: Vec<Problem>,
}

impl Reader {
    fn stat(&mut self, rel: &str) -> Option<FileStat> {
        match self.root.event_stat(rel) {
            Ok(st) => Some(st),
            Err(e) => {
                self.problems.push(Problem::new(Code::Unreadable, rel, format!("times cannot be read: {e}")));
                None
            }
        }
    }

    fn add(&mut self, path: String, kind: EventKind, what: Partial) {
        if let Some(stat) = self.stat(&path) {
            self.files.push(FileRecord {
                path,
                kind,
                repository: what.repository,
                tag: what.tag,
                digest: what.digest,
                upload: what.upload,
                stat,
                started_at: what.started_at,
            });
        }
    }

    fn repository(&mut self, repo: &Repository, tags: &mut Vec<CurrentTag>) {
        let name = || Some(repo.name.clone());
        for d in repo.layer_links.keys() {
            let what = Partial { repository: name(), digest: Some(d.clone()), ..Partial::default() };
            self.add(layout::layer_link(&repo.name, d), EventKind::LayerLinked, what);
        }
        for d in repo.revisions.keys() {
            let what = Partial { repository: name(), digest: Some(d.clone()), ..Partial::default() };
            self.add(layout::revision_link(&repo.name, d), EventKind::ManifestWritten, what);
        }
        for (revision, signature) in &repo.signature_links {
            let what = Partial { repository: name(), digest: Some(signature.clone()), ..Partial::default() };
            self.add(layout::signature_link(&repo.name, revision, signature), EventKind::SignatureLinked, what);
        }
        for (tag, t) in repo.tags.iter() {
            for d in t.index.keys() {
                let what = Partial {
                    repository: name(),
                    tag: Some(tag.clone()),
                    digest: Some(d.clone()),
                    ..Partial::default()
                };
                self.add(layout::tag_index_link(&repo.name, tag, d), EventKind::TagSet, what);
            }
            let path = layout::tag_current_link(&repo.name, tag);
            let set_at = match &t.current {
                Some(_) => self.stat(&path).map(|s| s.mtime),
                None => None,
            };
            let digest = t.current.as_ref().and_then(|l| l.as_ref().ok()).map(Digest::to_string);
            tags.push(CurrentTag { repository: repo.name.clone(), tag: tag.clone(), digest, path, set_at });
        }
        for (uuid, upload) in &repo.uploads {
            let dir = layout::upload_dir(&repo.name, uuid);
            let what = || Partial { repository: name(), upload: Some(uuid.clone()), ..Partial::default() };
            if let Some(text) = &upload.started_at {
                let started_at = crate::checks::parse_started_at(text);
                self.add(format!("{dir}/startedat"), EventKind::UploadStarted, Partial { started_at, ..what() });
            }
            if upload.data_size.is_some() {
                self.add(format!("{dir}/data"), EventKind::UploadAppended, what());
            }
            for rel in &upload.hashstates {
                self.add(format!("{dir}/hashstates/{rel}"), EventKind::UploadHashState, what());
            }
        }
    }

    fn blobs(&mut self, inventory: &Inventory, keep: impl Fn(&Digest) -> bool) {
        for d in inventory.blobs.keys().filter(|d| keep(d)) {
            let what = Partial { digest: Some(d.clone()), ..Partial::default() };
            self.add(layout::blob_data(d), EventKind::BlobWritten, what);
        }
    }
}

/// The identifying fields of a [`FileRecord`] being built.
#[derive(Default)]
struct Partial {
    repository: Option<String>,
    tag: Option<String>,
    digest: Option<Digest>,
    upload: Option<String>,
    started_at: Option<i64>,
}
