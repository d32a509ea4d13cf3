//! Every write a registry serving this tree would make on its own or on a
//! read: the schema1 down-conversion of GET/HEAD by tag (2.8 only), upload
//! status requests, the upload purger and a pull-through cache's expiry.
//! Rules: docs/registry-rules.md §5 (schema1 conversion §5.1, upload status
//! §5.2, purging §5.3, proxy expiry §5.4).
//!
//! Each operation is predicted against the tree as it is, independently of
//! the others: two tags needing the same empty-tar link both list it.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::Serialize;

use super::rules::{LegacyChild, LegacyGet};
use super::serve::{Fetch, Server};
use super::Target;
use crate::contents::Contents;
use crate::digest::Digest;
use crate::gojson::{self, parse_go_rfc3339};
use crate::inventory::{FaultOp, Inventory, LinkRef, Repository, Upload};
use crate::layout;
use crate::manifest::{ConfigError, ImageConfig, Manifest};
use crate::problem::Code;

/// The gzipped empty tar the conversion needs for `empty_layer` history entries.
pub const EMPTY_TAR: &str = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4";

/// `scheduler-state.json`, relative to the storage root.
pub const SCHEDULER_STATE: &str = "scheduler-state.json";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// GET or HEAD of a manifest by tag without schema2 in Accept.
    ManifestGetSchema1,
    /// GET or HEAD of `/v2/<repo>/blobs/uploads/<uuid>`.
    UploadStatus,
    /// The upload purger (after startup, then every interval).
    UploadPurge,
    /// A pull-through cache entry's TTL expiry.
    ProxyExpiry,
    /// A pull-through cache fetching what it does not hold.
    ProxyMiss,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::ManifestGetSchema1 => "manifest-get-schema1",
            Kind::UploadStatus => "upload-status",
            Kind::UploadPurge => "upload-purge",
            Kind::ProxyExpiry => "proxy-expiry",
            Kind::ProxyMiss => "proxy-miss",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Modify,
    Delete,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Modify => "modify",
            Action::Delete => "delete",
        }
    }
}

/// One file (or, for deletions, directory) the operation writes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Write {
    /// Relative to the storage root.
    pub path: String,
    pub action: Action,
}

impl Write {
    fn new(path: String, action: Action) -> Write {
        Write { path, action }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Operation {
    pub kind: Kind,
    pub repository: String,
    /// A tag, a digest or an upload UUID.
    pub reference: String,
    /// Empty when the operation writes nothing.
    pub writes: Vec<Write>,
    pub reason: String,
    /// HTTP status a writable registry answers (0: connection dropped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// HTTP status when the tree is mounted read-only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_only_status: Option<u16>,
    /// What a client must hold for the write to happen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Bytes of upload data a purge deletes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// When the upload started or the cache entry expires (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

impl Operation {
    fn new(kind: Kind, repository: &str, reference: &str, reason: impl Into<String>) -> Operation {
        Operation {
            kind,
            repository: repository.to_string(),
            reference: reference.to_string(),
            writes: Vec::new(),
            reason: reason.into(),
            status: None,
            read_only_status: None,
            condition: None,
            bytes: None,
            time: None,
        }
    }

    pub fn writes_anything(&self) -> bool {
        !self.writes.is_empty()
    }
}

/// What the prediction depends on besides the tree.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub now: DateTime<Utc>,
    pub purge_age: Duration,
}

/// A pull-through cache's state file, as the scheduler reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProxyState {
    pub entries: usize,
    pub expired: usize,
    /// Why the scheduler cannot read the file (the registry then fails to start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Prediction {
    pub operations: Vec<Operation>,
    pub proxy: Option<ProxyState>,
    /// What the prediction cannot cover: see [`unmodelled`].
    pub unmodelled: Vec<String>,
}

pub fn predict(inv: &Inventory, contents: &Contents, target: Target, settings: &Settings) -> Prediction {
    let mut operations = Vec::new();
    let proxy = predict_each(inv, contents, target, settings, &mut |op| operations.push(op));
    Prediction { operations, proxy, unmodelled: unmodelled(inv) }
}

/// Symlinks the registry follows and reads the walk could not make whose
/// effect on requests is not modelled. A read the registry makes and fails
/// on is a 500 that writes nothing (seen with 2.8.2 run as that user), which
/// the serve model answers for tag links, revision links and blob data
/// (`serve::read_error`); everything else is listed here.
pub fn unmodelled(inv: &Inventory) -> Vec<String> {
    let mut out: Vec<String> = inv
        .symlinks
        .iter()
        .map(|s| format!("{s}: a symbolic link, which the registry follows; what lies behind it was not read"))
        .collect();
    let repos = format!("{}/repositories/", layout::V2);
    for f in &inv.faults {
        let answered_by_500 = !f.vanished
            && (f.op != FaultOp::List || !f.traversable)
            && match f.path.strip_prefix(&repos) {
                Some(rest) => {
                    let parts: Vec<&str> = rest.split('/').collect();
                    let data = parts.iter().position(|p| p.starts_with('_'));
                    // Tags and revisions: read by GET by tag, a 500 on failure.
                    data.is_some_and(|i| parts[i] == "_manifests" && parts.get(i + 1).is_none_or(|p| *p != "_uploads"))
                }
                // Blob data below a directory the registry cannot search.
                None => f.path.starts_with(&format!("{}/blobs/", layout::V2)) && f.op == FaultOp::List,
            };
        if !answered_by_500 {
            let what = if f.vanished { "vanished while the tree was read".to_string() } else { f.error.clone() };
            out.push(format!("{}: {what}; requests that read it are not modelled", f.path));
        }
    }
    if uploads_unmodelled(inv) {
        for repo in &inv.repositories {
            for uuid in repo.uploads.keys() {
                out.push(format!(
                    "{}: an upload in object storage, whose data the registry's s3 driver keeps as a multipart \
                     upload (registry/storage/driver/s3-aws/s3.go Writer); its status and purge requests are not \
                     modelled",
                    layout::upload_dir(&repo.name, uuid)
                ));
            }
        }
    }
    out
}

/// Uploads in object storage: the s3 driver resumes an upload's `data` from
/// its multipart upload, not from a listed object, so the filesystem's
/// upload rules do not carry over.
fn uploads_unmodelled(inv: &Inventory) -> bool {
    matches!(inv.root, crate::storage::RootName::Url(_))
}

/// [`predict`], handing each operation to `emit` as it is made instead of
/// keeping them: a summary then needs no memory per tag.
pub fn predict_each(
    inv: &Inventory,
    contents: &Contents,
    target: Target,
    settings: &Settings,
    emit: &mut dyn FnMut(Operation),
) -> Option<ProxyState> {
    let server = Server::new(inv, contents, target);
    for repo in &inv.repositories {
        for tag in repo.tags.keys() {
            emit(schema1_get(&server, repo, tag));
        }
    }
    for repo in inv.repositories.iter().filter(|_| !uploads_unmodelled(inv)) {
        for (uuid, upload) in &repo.uploads {
            emit(upload_status(target, repo, uuid, upload));
            emit(upload_purge(target, repo, uuid, upload, settings));
        }
    }
    inv.scheduler_state.as_deref().map(|bytes| proxy(inv, bytes, settings, emit))
}

// ---------------------------------------------------------------------------
// The schema1 down-conversion.

/// What a request ends with, before the read-only mount is considered.
struct Outcome {
    status: u16,
    writes: Vec<Write>,
    reason: String,
    /// False when the request meets what is not modelled (no status known).
    known: bool,
}

impl Outcome {
    fn answer(status: u16, reason: impl Into<String>) -> Outcome {
        Outcome { status, writes: Vec::new(), reason: reason.into(), known: true }
    }

    fn fetch(f: &Fetch) -> Outcome {
        let known = !matches!(f, Fetch::Unmodelled(_));
        Outcome { known, ..Outcome::answer(f.http_status(), f.reason().unwrap_or("served")) }
    }
}

fn schema1_get(server: &Server, repo: &Repository, tag: &str) -> Operation {
    let outcome = legacy_get(server, repo, tag);
    let unmodelled = !outcome.known;
    let mut op = Operation::new(Kind::ManifestGetSchema1, &repo.name, tag, outcome.reason);
    if unmodelled {
        // Listed under `unmodelled` too: no status can be given.
        return op;
    }
    // On a read-only mount the first write fails (EROFS) and the request
    // ends with 400 MANIFEST_INVALID; requests that write nothing are unchanged.
    op.read_only_status = Some(if outcome.writes.is_empty() { outcome.status } else { 400 });
    op.status = Some(outcome.status);
    op.writes = outcome.writes;
    op
}

/// Tag → manifest, as both versions do before looking at the kind.
fn tagged_manifest<'a>(server: &Server<'a>, repo: &Repository, tag: &str) -> Result<(Digest, &'a Manifest), Outcome> {
    let digest = server.tag(repo, tag).map_err(|f| Outcome::fetch(&f))?;
    match server.manifest(repo, &digest) {
        (Fetch::Ok, Some(m)) => Ok((digest, m)),
        (f, _) => Err(Outcome::fetch(&f)),
    }
}

/// The first `linux`/`amd64` entry of a Docker list (variant ignored), loaded.
fn default_child<'a>(
    server: &Server<'a>,
    repo: &Repository,
    list: &Manifest,
) -> Result<(Digest, &'a Manifest), Outcome> {
    let entry =
        list.manifests.iter().find(|c| c.platform().is_some_and(|p| p.architecture == "amd64" && p.os == "linux"));
    let Some(entry) = entry.filter(|e| !e.digest_text().is_empty()) else {
        return Err(Outcome::answer(404, "the manifest list has no linux/amd64 entry"));
    };
    let Some(child) = entry.digest.clone() else {
        return Err(Outcome::answer(
            500,
            format!("the linux/amd64 entry's digest {:?} is invalid", entry.digest_text()),
        ));
    };
    match server.manifest(repo, &child) {
        (Fetch::Ok, Some(m)) => Ok((child, m)),
        (f, _) => Err(Outcome::fetch(&f)),
    }
}

/// GET or HEAD by tag without schema2 in Accept: what the target does with
/// the kind it finds ([`Target::legacy_get`]), converting when it does.
fn legacy_get(server: &Server, repo: &Repository, tag: &str) -> Outcome {
    let (_, m) = match tagged_manifest(server, repo, tag) {
        Ok(found) => found,
        Err(o) => return o,
    };
    match server.target.legacy_get(m) {
        LegacyGet::Answer(status, reason) => Outcome::answer(status, reason),
        LegacyGet::Convert => convert(server, repo, m, "the schema2 manifest"),
        LegacyGet::DefaultChild => match default_child(server, repo, m) {
            Err(o) => o,
            Ok((child, c)) => match server.target.legacy_get_child(&child.short(), c.kind) {
                LegacyChild::Convert => {
                    convert(server, repo, c, &format!("the list's linux/amd64 child {}", child.short()))
                }
                LegacyChild::Answer(status, reason) => Outcome::answer(status, reason),
            },
        },
    }
}

/// 2.8's convertSchema2Manifest and configManifestBuilder.Build, up to the
/// point where the outcome is known.
fn convert(server: &Server, repo: &Repository, m: &Manifest, what: &str) -> Outcome {
    // 1. The config blob, through the repository's `_layers` link.
    let Some(config_digest) = m.config.as_ref().and_then(|c| c.digest.clone()) else {
        return Outcome::answer(500, format!("{what} names an invalid config digest; nothing is written"));
    };
    let config_target = match repo.layer_links.get(&config_digest) {
        None => {
            return Outcome::answer(400, format!("config {} is not linked; nothing is written", config_digest.short()))
        }
        // Debian's 2.8.2 is built with go-digest 1.0.0, which rejects
        // uppercase hex like any other invalid link (seen with the binary).
        Some(Err(e)) => return Outcome::answer(500, format!("config link {e}; nothing is written")),
        Some(Ok(t)) => t,
    };
    if !server.inv.has_blob(config_target) {
        return Outcome::answer(400, format!("config {} has no data; nothing is written", config_target.short()));
    }
    let config = match server.contents.config(config_target) {
        Some(Ok(c)) => c,
        Some(Err(e @ (ConfigError::Unreadable(_) | ConfigError::TooLarge))) => {
            return Outcome::answer(500, format!("config {} {e}; nothing is written", config_target.short()))
        }
        Some(Err(e @ ConfigError::Malformed(_))) => {
            return Outcome::answer(
                400,
                format!("config {} does not decode ({e}); nothing is written", config_target.short()),
            )
        }
        None => return Outcome::answer(500, format!("config {} was not loaded", config_target.short())),
    };
    // 2. Every layer digest must be valid.
    if let Some(bad) = m.layers.iter().find(|l| l.digest.is_none()) {
        return Outcome::answer(400, format!("layer digest {:?} is invalid; nothing is written", bad.digest_text()));
    }
    build(server, repo, config, m.layers.len(), what)
}

fn build(server: &Server, repo: &Repository, config: &ImageConfig, layers: usize, what: &str) -> Outcome {
    if let Some(bad) = &config.bad_history_time {
        return Outcome::answer(400, format!("history time {bad:?} does not decode; nothing is written"));
    }
    if config.history_empty_layers.is_empty() {
        return Outcome::answer(400, "the config has no history; nothing is written");
    }
    if !config.has_rootfs {
        return Outcome::answer(
            0,
            "the config has no rootfs: the conversion panics and drops the connection; nothing is written",
        );
    }
    if config.diff_ids != layers {
        return Outcome::answer(400, "rootfs.diff_ids and the layers differ in number; nothing is written");
    }
    // Walk the history as Build does: the first empty layer needs the empty
    // tar (once per request); too many non-empty entries fail, possibly
    // after that write.
    let mut writes: Option<Result<Vec<Write>, Outcome>> = None;
    let mut consumed = 0;
    for empty_layer in config.history_empty_layers.iter() {
        if empty_layer {
            if writes.is_none() {
                writes = Some(empty_tar(server, repo));
                if let Some(Err(_)) = writes {
                    break;
                }
            }
        } else if consumed >= config.diff_ids {
            let w = match writes {
                Some(Ok(w)) => w,
                _ => Vec::new(),
            };
            let after = if w.is_empty() { "nothing is written" } else { "after the empty tar was written" };
            return Outcome {
                status: 400,
                writes: w,
                reason: format!("too many non-empty history entries: 400 {after}"),
                known: true,
            };
        } else {
            consumed += 1;
        }
    }
    match writes {
        None => Outcome::answer(200, format!("{what} is converted; its history has no empty layer, so nothing is written")),
        Some(Err(o)) => o,
        Some(Ok(w)) if w.is_empty() => Outcome::answer(
            200,
            format!("{what} is converted; the empty tar is already linked in the repository and stored, so nothing is written"),
        ),
        Some(Ok(w)) => {
            let what_written = if w.len() == 2 { "stores the empty tar and links it" } else { "links the stored empty tar" };
            Outcome {
                status: 200,
                writes: w,
                reason: format!("converting {what} to schema1 {what_written} in the repository"),
                known: true,
            }
        }
    }
}

/// configManifestBuilder.emptyTar: stat through the repository's link, then
/// the global data; put the blob (data first, then the link) when unknown.
fn empty_tar(server: &Server, repo: &Repository) -> Result<Vec<Write>, Outcome> {
    let empty: Digest = EMPTY_TAR.parse().expect("constant digest");
    let link_path = layout::layer_link(&repo.name, &empty);
    let data_path = layout::blob_data(&empty);
    if has_wrong_type(server.inv, &link_path) {
        return Err(Outcome::answer(400, "the empty tar's link is a directory: 400, nothing is written"));
    }
    let link: Option<LinkRef> = repo.layer_links.get(&empty);
    let found = match link {
        None => false,
        // Uppercase hex included: Debian's 2.8.2 rejects it (go-digest 1.0.0).
        Some(Err(e)) => return Err(Outcome::answer(400, format!("the empty tar's link {e}: 400, nothing is written"))),
        Some(Ok(target)) => server.inv.has_blob(target),
    };
    if found {
        return Ok(Vec::new());
    }
    let mut writes = Vec::new();
    if !server.inv.has_blob(&empty) {
        if has_wrong_type(server.inv, &data_path) {
            return Err(Outcome::answer(400, "the empty tar's data path is a directory: 400, nothing is written"));
        }
        writes.push(Write::new(data_path, Action::Create));
    }
    let action = if link.is_some() { Action::Modify } else { Action::Create };
    writes.push(Write::new(link_path, action));
    Ok(writes)
}

/// Whether the reader found a directory where the layout has this file.
/// Asked once per tag: the reader's problems are sorted by path, so this
/// looks only at the ones for `path`.
fn has_wrong_type(inv: &Inventory, path: &str) -> bool {
    let first = inv.problems.partition_point(|p| p.path.as_str() < path);
    inv.problems[first..].iter().take_while(|p| p.path == path).any(|p| p.code == Code::WrongFileType)
}

// ---------------------------------------------------------------------------
// Uploads.

fn upload_status(target: Target, repo: &Repository, uuid: &str, upload: &Upload) -> Operation {
    let mut op = Operation::new(Kind::UploadStatus, &repo.name, uuid, "");
    let dir = layout::upload_dir(&repo.name, uuid);
    if !repo.name_is_valid(target) {
        op.reason = format!("the API refuses the repository name {:?}; the upload is unreachable", repo.name);
        return op;
    }
    let Some(started) = upload.started_at.as_deref() else {
        op.reason = "no startedat: the registry answers 404 without writing".into();
        return op;
    };
    if parse_go_rfc3339(started).is_none() {
        op.reason = format!("startedat {started:?} does not parse: the registry answers 500 without writing");
        return op;
    }
    if upload.data_size.is_none() {
        op.writes.push(Write::new(format!("{dir}/data"), Action::Create));
    }
    let hashstate = if upload.hashstates.iter().any(|h| h == "sha256/0") { Action::Modify } else { Action::Create };
    op.writes.push(Write::new(format!("{dir}/hashstates/sha256/0"), hashstate));
    let rule = target.upload_status();
    op.condition = rule.condition.map(str::to_string);
    op.reason = rule.reason.into();
    op
}

fn upload_purge(target: Target, repo: &Repository, uuid: &str, upload: &Upload, settings: &Settings) -> Operation {
    let mut op = Operation::new(Kind::UploadPurge, &repo.name, uuid, "");
    op.bytes = Some(upload.data_size.unwrap_or(0));
    if !is_purger_uuid(target, uuid) {
        op.reason = "the directory name is not a UUID the purger recognizes: never purged".into();
        return op;
    }
    let Some(text) = upload.started_at.as_deref() else {
        op.reason = "no startedat: never purged".into();
        return op;
    };
    let Some(started) = parse_go_rfc3339(text) else {
        op.reason = format!("startedat {text:?} does not parse as RFC 3339: never purged");
        return op;
    };
    op.time = Some(started.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
    let cutoff = settings.now - settings.purge_age;
    if started < cutoff {
        op.writes.push(Write::new(layout::upload_dir(&repo.name, uuid), Action::Delete));
        op.reason = format!(
            "started {} before the purge cutoff {}: deleted",
            op.time.as_deref().unwrap_or(""),
            rfc3339(cutoff)
        );
    } else {
        op.reason = format!(
            "started {} at or after the purge cutoff {}: kept",
            op.time.as_deref().unwrap_or(""),
            rfc3339(cutoff)
        );
    }
    op
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// Whether the upload purger takes `s` as an upload's UUID
/// ([`Target::purger_accepts_uuid`]).
pub fn is_purger_uuid(target: Target, s: &str) -> bool {
    target.purger_accepts_uuid(s)
}

/// Go-style durations as the registry's config takes them, plus days:
/// `168h`, `30m`, `1h30m`, `7d`, `90s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?}: use a number and a unit (s, m, h, d), e.g. 168h, 30m, 7d");
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::zero();
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: i64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit = rest.chars().next().ok_or_else(bad)?;
        rest = &rest[unit.len_utf8()..];
        let part = match unit {
            's' => Duration::try_seconds(n),
            'm' => Duration::try_minutes(n),
            'h' => Duration::try_hours(n),
            'd' => Duration::try_days(n),
            _ => None,
        }
        .ok_or_else(bad)?;
        total = total.checked_add(&part).ok_or_else(bad)?;
    }
    Ok(total)
}

// ---------------------------------------------------------------------------
// Pull-through caches.

struct SchedulerEntry {
    key: String,
    expiry: DateTime<Utc>,
    entry_type: i64,
}

/// Why the scheduler cannot read `scheduler-state.json` (the registry then
/// fails to start).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum SchedulerStateError {
    #[error("larger than regaudit reads")]
    TooLarge,
    #[error("not a JSON object")]
    NotObject,
    /// Go's decode error.
    #[error("{0}")]
    Json(#[from] crate::gojson::Error),
    #[error("entry {entry}: ExpiryData {text:?} is not RFC 3339")]
    BadExpiry { entry: String, text: String },
}

/// Why an expired entry deletes nothing but itself.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum ExpiryError {
    #[error("the key's digest {0:?} does not parse")]
    BadDigest(String),
    #[error("unknown EntryType {0}")]
    UnknownEntryType(i64),
}

/// Reads `scheduler-state.json` like the scheduler's `json.Unmarshal` into
/// `map[string]*schedulerEntry`.
fn parse_scheduler_state(bytes: &[u8]) -> Result<Vec<SchedulerEntry>, SchedulerStateError> {
    if bytes.len() > crate::storage::SCHEDULER_STATE_READ_LIMIT {
        return Err(SchedulerStateError::TooLarge);
    }
    let value = gojson::parse(bytes)?;
    let serde_json::Value::Object(map) = &value else {
        return if value.is_null() { Ok(Vec::new()) } else { Err(SchedulerStateError::NotObject) };
    };
    let mut out = Vec::new();
    for (name, v) in map {
        let Some(o) = gojson::object(v, name)? else {
            continue;
        };
        let key = o.string_or_empty("Key")?;
        // A missing time is Go's zero time (year 1): long expired.
        let expiry = match o.string("ExpiryData")? {
            Some(t) => parse_go_rfc3339(t)
                .ok_or_else(|| SchedulerStateError::BadExpiry { entry: name.clone(), text: t.to_string() })?,
            None => {
                Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).single().expect("Go's zero time, 0001-01-01, is representable")
            }
        };
        out.push(SchedulerEntry { key, expiry, entry_type: o.int("EntryType")?.unwrap_or(0) });
    }
    Ok(out)
}

fn proxy(inv: &Inventory, bytes: &[u8], settings: &Settings, emit: &mut dyn FnMut(Operation)) -> ProxyState {
    let mut miss = Operation::new(
        Kind::ProxyMiss,
        "*",
        "*",
        "a pull-through cache stores every manifest and blob it does not hold yet (data, links, tag links) and \
         records it in scheduler-state.json: every miss writes",
    );
    miss.writes.push(Write::new(SCHEDULER_STATE.into(), Action::Modify));
    emit(miss);
    let entries = match parse_scheduler_state(bytes) {
        Ok(e) => e,
        Err(e) => return ProxyState { entries: 0, expired: 0, error: Some(e.to_string()) },
    };
    let mut expired = 0;
    let mut ops: Vec<Operation> = Vec::new();
    for entry in &entries {
        let (repo_name, digest_text) = entry.key.split_once('@').unwrap_or((entry.key.as_str(), ""));
        let mut op = Operation::new(Kind::ProxyExpiry, repo_name, digest_text, "");
        let expiry = entry.expiry;
        op.time = Some(rfc3339(expiry));
        if expiry > settings.now {
            op.reason = format!("expires at {}, after now", rfc3339(expiry));
            ops.push(op);
            continue;
        }
        expired += 1;
        op.writes.push(Write::new(SCHEDULER_STATE.into(), Action::Modify));
        let deletes = expiry_deletes(inv, repo_name, digest_text, entry.entry_type);
        match deletes {
            Ok(d) => {
                let what = if entry.entry_type == 1 { "manifest" } else { "blob" };
                op.reason = if d.is_empty() {
                    format!(
                        "expired at {}: the entry is dropped; the {what} is not stored, so nothing else goes",
                        rfc3339(expiry)
                    )
                } else {
                    format!(
                        "expired at {}: the cached {what} is deleted (with storage.delete.enabled; otherwise only the \
                         entry is dropped)",
                        rfc3339(expiry)
                    )
                };
                op.writes.extend(d);
            }
            Err(why) => op.reason = format!("expired at {}: {why}; the entry is dropped", rfc3339(expiry)),
        }
        ops.push(op);
    }
    ops.sort_by(|a, b| (&a.repository, &a.reference).cmp(&(&b.repository, &b.reference)));
    ops.into_iter().for_each(emit);
    ProxyState { entries: entries.len(), expired, error: None }
}

/// What the expiry callbacks delete: a blob loses its `_layers` link and its
/// whole blob directory; a manifest loses its revision and `_layers` links.
/// Both first stat the object in the repository and give up if unknown.
fn expiry_deletes(
    inv: &Inventory,
    repo_name: &str,
    digest_text: &str,
    entry_type: i64,
) -> Result<Vec<Write>, ExpiryError> {
    let digest: Digest = digest_text.parse().map_err(|_| ExpiryError::BadDigest(digest_text.to_string()))?;
    let Some(repo) = inv.repository(repo_name) else {
        return Ok(Vec::new());
    };
    let present = |link: Option<LinkRef>| matches!(link, Some(Ok(t)) if inv.has_blob(t));
    match entry_type {
        0 => {
            if !present(repo.layer_links.get(&digest)) {
                return Ok(Vec::new());
            }
            Ok(vec![
                Write::new(layout::layer_link(repo_name, &digest), Action::Delete),
                Write::new(layout::blob_dir(&digest), Action::Delete),
            ])
        }
        1 => {
            let revision = repo.revisions.get(&digest);
            let layer = repo.layer_links.get(&digest);
            let stat_ok = match revision {
                Some(_) => present(revision),
                None => present(layer),
            };
            if !stat_ok {
                return Ok(Vec::new());
            }
            let mut out = Vec::new();
            if revision.is_some() {
                out.push(Write::new(layout::revision_link(repo_name, &digest), Action::Delete));
            }
            if layer.is_some() {
                out.push(Write::new(layout::layer_link(repo_name, &digest), Action::Delete));
            }
            Ok(out)
        }
        other => Err(ExpiryError::UnknownEntryType(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_rfc3339() {
        let t = |s| parse_go_rfc3339(s).map(rfc3339);
        assert_eq!(t("2020-01-01T00:00:00Z").as_deref(), Some("2020-01-01T00:00:00Z"));
        assert_eq!(t("2020-01-01T02:00:00+02:00").as_deref(), Some("2020-01-01T00:00:00Z"));
        assert_eq!(t("2026-12-06T11:41:06.193672429Z").as_deref(), Some("2026-12-06T11:41:06.193672429Z"));
        for bad in ["2020-01-01T00:00:00Z\n", "2020-01-01t00:00:00z", "2020-01-01 00:00:00Z", "2020-02-30T00:00:00Z"] {
            assert_eq!(t(bad), None, "{bad:?}");
        }
        assert_eq!(t("2020-01-01T24:00:00Z"), None);
        assert_eq!(t("2020-01-01T00:00:00"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("168h"), Ok(Duration::hours(168)));
        assert_eq!(parse_duration("7d"), Ok(Duration::days(7)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::minutes(90)));
        for bad in ["", "h", "10", "-1h", "1y", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
