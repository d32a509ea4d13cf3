//! Manifests and image configs, decoded from their stored bytes by the
//! registry's own rules (distribution-facts §2): the kind comes from
//! `schemaVersion` and `mediaType` in the body, never from outside.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;

use crate::digest::Digest;
use crate::gojson::{self, Obj};

pub mod media {
    pub const SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
    pub const SCHEMA2: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    pub const OCI_NONDISTRIBUTABLE_PREFIX: &str = "application/vnd.oci.image.layer.nondistributable.";
}

/// Largest manifest or config we read; the registry refuses manifests over
/// 4 MiB on push, so anything larger is not something it wrote.
pub const MANIFEST_READ_LIMIT: usize = 4 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ManifestKind {
    Schema1,
    Schema2,
    DockerList,
    OciManifest,
    OciIndex,
}

impl ManifestKind {
    pub fn name(self) -> &'static str {
        match self {
            ManifestKind::Schema1 => "schema1",
            ManifestKind::Schema2 => "schema2",
            ManifestKind::DockerList => "docker-list",
            ManifestKind::OciManifest => "oci-manifest",
            ManifestKind::OciIndex => "oci-index",
        }
    }

    pub fn is_index(self) -> bool {
        matches!(self, ManifestKind::DockerList | ManifestKind::OciIndex)
    }
}

/// Names repeat across a tree's thousands of images: interned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Platform {
    pub architecture: Atom,
    pub os: Atom,
    #[serde(skip_serializing_if = "Atom::is_empty")]
    pub variant: Atom,
}

impl Platform {
    /// `architecture`, `os` and `variant`, as an index entry's platform and
    /// an image config both spell them.
    fn decode(o: &Obj) -> gojson::Result<Platform> {
        Ok(Platform {
            architecture: Atom::new(&o.string_or_empty("architecture")?),
            os: Atom::new(&o.string_or_empty("os")?),
            variant: Atom::new(&o.string_or_empty("variant")?),
        })
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

/// An interned string: a tree repeats a handful of media types and
/// platform names thousands of times, and a shared pointer is smaller than
/// a copy each (a thin one: the `Box` keeps the length out of the pointer).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Atom(Arc<Box<str>>);

impl Default for Atom {
    fn default() -> Atom {
        Atom::new("")
    }
}

/// Lets the interner find an atom by its text.
impl std::borrow::Borrow<str> for Atom {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// A media type, interned.
pub type MediaType = Atom;

impl Atom {
    pub fn new(s: &str) -> Atom {
        static INTERNED: OnceLock<Mutex<HashSet<Atom>>> = OnceLock::new();
        let mut set = INTERNED.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = set.get(s) {
            return found.clone();
        }
        let atom = Atom(Arc::new(s.into()));
        set.insert(atom.clone());
        atom
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::ops::Deref for Atom {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Atom {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Atom {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for Atom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for Atom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for Atom {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A reference from a manifest to a blob or another manifest. Go does not
/// validate the digest on decode, so an invalid one is kept as written.
/// Kept small: a tree holds one per layer of every image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: MediaType,
    pub digest: Option<Digest>,
    pub size: i64,
    /// What most descriptors lack; None when all of it is empty.
    rare: Option<Box<RareFields>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct RareFields {
    /// The digest as written, kept only when it does not parse.
    invalid_digest: Option<Box<str>>,
    urls: Vec<String>,
    platform: Option<Platform>,
}

impl Descriptor {
    fn decode(o: Option<Obj>) -> gojson::Result<Descriptor> {
        let Some(o) = o else {
            return Ok(Descriptor::from_digest_text(String::new()));
        };
        let digest_text = o.string_or_empty("digest")?;
        let platform = match o.object("platform")? {
            Some(p) => {
                // Decoded for type errors only; these fields are not reported.
                p.string("os.version")?;
                p.strings("os.features")?;
                p.strings("features")?;
                Some(Platform::decode(&p)?)
            }
            None => None,
        };
        o.string_map("annotations")?;
        let mut d = Descriptor::from_digest_text(digest_text);
        d.media_type = MediaType::new(o.string("mediaType")?.unwrap_or_default());
        d.size = o.int("size")?.unwrap_or(0);
        let urls = o.strings("urls")?;
        if !urls.is_empty() || platform.is_some() {
            let rare = d.rare.get_or_insert_with(Default::default);
            rare.urls = urls;
            rare.platform = platform;
        }
        Ok(d)
    }

    fn from_digest_text(digest_text: String) -> Descriptor {
        let digest = Digest::parse(&digest_text).ok();
        let rare = (digest.is_none() && !digest_text.is_empty())
            .then(|| Box::new(RareFields { invalid_digest: Some(digest_text.into_boxed_str()), ..Default::default() }));
        Descriptor { media_type: MediaType::default(), digest, size: 0, rare }
    }

    /// The digest as written in the manifest.
    pub fn digest_text(&self) -> String {
        match (&self.digest, self.rare.as_ref().and_then(|r| r.invalid_digest.as_deref())) {
            (Some(d), _) => d.to_string(),
            (None, Some(raw)) => raw.to_string(),
            (None, None) => String::new(),
        }
    }

    /// Where a client fetches a foreign layer.
    pub fn urls(&self) -> &[String] {
        self.rare.as_ref().map_or(&[], |r| &r.urls)
    }

    /// The platform an index names for this child.
    pub fn platform(&self) -> Option<&Platform> {
        self.rare.as_ref()?.platform.as_ref()
    }

    /// Foreign (non-distributable) layers live elsewhere; a client fetches
    /// them from their `urls`, not from the registry.
    pub fn is_foreign(&self) -> bool {
        self.media_type == media::DOCKER_FOREIGN_LAYER
            || self.media_type.starts_with(media::OCI_NONDISTRIBUTABLE_PREFIX)
    }
}

/// A decoded manifest, reduced to what we report and model. Kept small: a
/// tree holds every manifest it has at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub kind: ManifestKind,
    /// The body's `mediaType` field ("" when absent).
    pub media_type: MediaType,
    pub config: Option<Descriptor>,
    /// Layers; for schema1 the `fsLayers` blobSums, top layer first.
    pub layers: Box<[Descriptor]>,
    /// Children of a list or index.
    pub manifests: Box<[Descriptor]>,
    /// What few manifests have; None when all of it is empty.
    rare: Option<Box<RareManifestFields>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct RareManifestFields {
    subject: Option<Descriptor>,
    artifact_type: MediaType,
    schema1_architecture: Atom,
}

impl RareManifestFields {
    fn boxed(self) -> Option<Box<RareManifestFields>> {
        (self != RareManifestFields::default()).then(|| Box::new(self))
    }
}

impl Manifest {
    /// The OCI 1.1 `subject` this manifest is attached to (a signature's image).
    pub fn subject(&self) -> Option<&Descriptor> {
        self.rare.as_ref()?.subject.as_ref()
    }

    /// OCI 1.1 `artifactType` ("" when absent).
    pub fn artifact_type(&self) -> &str {
        self.rare.as_ref().map_or("", |r| &r.artifact_type)
    }

    /// Schema1 only: the architecture it names ("" otherwise).
    pub fn schema1_architecture(&self) -> &str {
        self.rare.as_ref().map_or("", |r| &r.schema1_architecture)
    }

    /// Every blob or manifest this one references, in document order.
    pub fn references(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(&self.layers).chain(&self.manifests)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("larger than the {} MiB manifest limit", MANIFEST_READ_LIMIT >> 20)]
    TooLarge,
    #[error("cannot be read: {0}")]
    Unreadable(String),
    #[error("does not decode: {0}")]
    Malformed(String),
    #[error("unrecognized schemaVersion {0}")]
    UnknownSchemaVersion(i64),
    #[error("unrecognized mediaType {0:?}")]
    UnknownMediaType(String),
}

impl ManifestError {
    /// Unknown kinds are a separate problem from broken JSON.
    pub fn is_unknown_kind(&self) -> bool {
        matches!(self, ManifestError::UnknownSchemaVersion(_) | ManifestError::UnknownMediaType(_))
    }
}

impl From<String> for ManifestError {
    fn from(s: String) -> Self {
        ManifestError::Malformed(s)
    }
}

/// Decodes stored manifest bytes as registry 2.8 does on GET.
pub fn parse_manifest(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    if bytes.len() > MANIFEST_READ_LIMIT {
        return Err(ManifestError::TooLarge);
    }
    let value = gojson::parse(bytes)?;
    // First pass: only `schemaVersion` and `mediaType` (manifest.Versioned).
    let top = gojson::object(&value, "manifest")?;
    let (version, media_type) = match top {
        Some(o) => (o.int("schemaVersion")?.unwrap_or(0), o.string_or_empty("mediaType")?),
        None => (0, String::new()),
    };
    let top = top.ok_or(ManifestError::UnknownSchemaVersion(0))?;
    match version {
        1 => parse_schema1(bytes, top),
        2 => {
            let kind = match media_type.as_str() {
                media::SCHEMA2 => ManifestKind::Schema2,
                media::OCI_MANIFEST => ManifestKind::OciManifest,
                media::DOCKER_LIST => ManifestKind::DockerList,
                media::OCI_INDEX => ManifestKind::OciIndex,
                // No mediaType: an index if `manifests` decodes to a non-nil
                // slice (`[]` counts, `null` does not), else an OCI manifest.
                "" if top.array("manifests")?.is_some() => ManifestKind::OciIndex,
                "" => ManifestKind::OciManifest,
                other => return Err(ManifestError::UnknownMediaType(other.to_string())),
            };
            parse_schema2_family(kind, media_type, top)
        }
        v => Err(ManifestError::UnknownSchemaVersion(v)),
    }
}

fn parse_schema2_family(kind: ManifestKind, media_type: String, o: Obj) -> Result<Manifest, ManifestError> {
    let (config, layers, manifests) = if kind.is_index() {
        let children = o.objects("manifests")?.into_iter().map(Descriptor::decode).collect::<Result<_, _>>()?;
        (None, Box::default(), children)
    } else {
        let config = Descriptor::decode(o.object("config")?)?;
        let layers = o.objects("layers")?.into_iter().map(Descriptor::decode).collect::<Result<_, _>>()?;
        (Some(config), layers, Box::default())
    };
    o.string_map("annotations")?;
    // `subject` and `artifactType` are OCI 1.1; 2.8 ignores them when serving
    // but they tell us what an artifact is attached to.
    let subject = o.object("subject").ok().flatten().and_then(|s| Descriptor::decode(Some(s)).ok());
    let artifact_type = MediaType::new(o.string("artifactType").ok().flatten().unwrap_or_default());
    Ok(Manifest {
        kind,
        media_type: MediaType::new(&media_type),
        config,
        layers,
        manifests,
        rare: RareManifestFields { subject, artifact_type, ..Default::default() }.boxed(),
    })
}

/// Schema1 goes through libtrust before decoding: the body must be a JSON
/// object whose last non-space byte is `}` and which has no trailing comma.
fn parse_schema1(bytes: &[u8], o: Obj) -> Result<Manifest, ManifestError> {
    let not_space = |b: &u8| !matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let close = bytes.iter().rposition(not_space);
    let before = close.and_then(|c| bytes[..c].iter().rposition(not_space));
    match (close, before) {
        (Some(c), Some(b)) if bytes[c] == b'}' && bytes[b] != b',' => {}
        _ => return Err(ManifestError::Malformed("not a JSON object libtrust can sign".into())),
    }
    o.string("name")?;
    o.string("tag")?;
    for h in o.objects("history")?.into_iter().flatten() {
        h.string("v1Compatibility")?;
    }
    let layers = o
        .objects("fsLayers")?
        .into_iter()
        .map(|l| {
            Ok(Descriptor::from_digest_text(l.map(|l| l.string_or_empty("blobSum")).transpose()?.unwrap_or_default()))
        })
        .collect::<gojson::Result<_>>()?;
    let schema1_architecture = Atom::new(&o.string_or_empty("architecture")?);
    Ok(Manifest {
        kind: ManifestKind::Schema1,
        media_type: MediaType::new(&o.string_or_empty("mediaType")?),
        config: None,
        layers,
        manifests: Box::default(),
        rare: RareManifestFields { schema1_architecture, ..Default::default() }.boxed(),
    })
}

/// An image config (Docker or OCI), reduced to what we report and what the
/// schema1 conversion needs. Kept small: a tree holds all of them at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub platform: Platform,
    pub created: Option<Box<str>>,
    /// `empty_layer` of each `history` entry, in order.
    pub history_empty_layers: Flags,
    /// The first history `created` that Go's `time.Time` cannot decode (the
    /// schema1 conversion then fails).
    pub bad_history_time: Option<Box<str>>,
    /// How many `rootfs.diff_ids` there are (their values are not needed).
    pub diff_ids: usize,
    /// `rootfs` is present and not null: 2.8's schema1 conversion
    /// dereferences it and panics without it.
    pub has_rootfs: bool,
}

impl ImageConfig {
    pub fn has_empty_layer(&self) -> bool {
        self.history_empty_layers.iter().any(|e| e)
    }
}

/// A sequence of booleans, a bit each: inline up to 64 (an image's history
/// rarely has more), so that a config needs no allocation for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flags {
    Inline { len: u8, bits: u64 },
    Spilled(Box<[bool]>),
}

impl Default for Flags {
    fn default() -> Flags {
        Flags::Inline { len: 0, bits: 0 }
    }
}

impl Flags {
    pub fn len(&self) -> usize {
        match self {
            Flags::Inline { len, .. } => usize::from(*len),
            Flags::Spilled(all) => all.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = bool> + '_ {
        (0..self.len()).map(move |i| match self {
            Flags::Inline { bits, .. } => bits >> i & 1 == 1,
            Flags::Spilled(all) => all[i],
        })
    }
}

impl FromIterator<bool> for Flags {
    fn from_iter<I: IntoIterator<Item = bool>>(iter: I) -> Flags {
        let all: Vec<bool> = iter.into_iter().collect();
        match u8::try_from(all.len()) {
            Ok(len) if len <= 64 => {
                Flags::Inline { len, bits: all.iter().rev().fold(0, |bits, &b| bits << 1 | u64::from(b)) }
            }
            _ => Flags::Spilled(all.into_boxed_slice()),
        }
    }
}

pub fn parse_config(bytes: &[u8]) -> Result<ImageConfig, String> {
    if bytes.len() > MANIFEST_READ_LIMIT {
        return Err(format!("larger than the {} MiB limit", MANIFEST_READ_LIMIT >> 20));
    }
    let value = gojson::parse(bytes)?;
    let o = gojson::object(&value, "config")?.ok_or("config is null")?;
    let mut bad_history_time = None;
    let history_empty_layers = o
        .objects("history")?
        .into_iter()
        .map(|h| {
            let Some(h) = h else { return Ok(false) };
            h.string("created_by")?; // decoded for type errors only
            if let Some(t) = h.string("created")? {
                if bad_history_time.is_none() && gojson::parse_go_rfc3339(t).is_none() {
                    bad_history_time = Some(t.into());
                }
            }
            h.bool("empty_layer")
        })
        .collect::<gojson::Result<_>>()?;
    if let Some(c) = o.object("config")? {
        c.string_map("Labels")?; // decoded for type errors only
    }
    let rootfs = o.object("rootfs")?;
    let diff_ids = match &rootfs {
        Some(r) => r.strings("diff_ids")?.len(),
        None => 0,
    };
    Ok(ImageConfig {
        platform: Platform::decode(&o)?,
        created: o.string("created")?.map(Box::from),
        history_empty_layers,
        bad_history_time,
        diff_ids,
        has_rootfs: rootfs.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4";

    fn kind(body: &str) -> Result<ManifestKind, ManifestError> {
        parse_manifest(body.as_bytes()).map(|m| m.kind)
    }

    #[test]
    fn kinds_follow_the_registry() {
        let s2 = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"digest":"{D}","size":1}},"layers":[]}}"#,
            media::SCHEMA2
        );
        assert_eq!(kind(&s2), Ok(ManifestKind::Schema2));
        assert_eq!(kind(r#"{"schemaVersion":2,"manifests":[]}"#), Ok(ManifestKind::OciIndex));
        assert_eq!(kind(r#"{"schemaVersion":2,"manifests":null,"config":{}}"#), Ok(ManifestKind::OciManifest));
        assert_eq!(kind(r#"{"schemaVersion":2,"config":{},"layers":[]}"#), Ok(ManifestKind::OciManifest));
        assert_eq!(kind(r#"{"schemaVersion":1,"fsLayers":[]}"#), Ok(ManifestKind::Schema1));
        assert_eq!(kind(r#"{"schemaVersion":3}"#), Err(ManifestError::UnknownSchemaVersion(3)));
        assert_eq!(kind(r#"{}"#), Err(ManifestError::UnknownSchemaVersion(0)));
        assert_eq!(
            kind(r#"{"schemaVersion":2,"mediaType":"x/y"}"#),
            Err(ManifestError::UnknownMediaType("x/y".into()))
        );
        assert!(matches!(kind(r#"{"schemaVersion":"2"}"#), Err(ManifestError::Malformed(_))));
        assert!(matches!(kind(r#"{"schemaVersion":2,"#), Err(ManifestError::Malformed(_))));
        assert!(matches!(kind(r#"{"schemaVersion":1,"fsLayers":[],}"#), Err(ManifestError::Malformed(_))));
    }

    #[test]
    fn descriptors_keep_invalid_digests() {
        let m = parse_manifest(
            br#"{"schemaVersion":2,"config":{"digest":"nope"},"layers":[{"digest":"sha256:x","size":3}]}"#,
        )
        .unwrap();
        assert_eq!(m.config.as_ref().unwrap().digest, None);
        assert_eq!(m.layers[0].digest_text(), "sha256:x");
        assert_eq!(m.layers[0].size, 3);
    }

    #[test]
    fn flags_keep_order_and_length() {
        for n in [0, 1, 63, 64, 65, 200] {
            let want: Vec<bool> = (0..n).map(|i| i % 3 == 0).collect();
            let flags: Flags = want.iter().copied().collect();
            assert_eq!(flags.len(), n);
            assert_eq!(flags.iter().collect::<Vec<_>>(), want, "{n} flags");
            assert_eq!(matches!(flags, Flags::Inline { .. }), n <= 64);
        }
    }

    #[test]
    fn config_fields() {
        let c = parse_config(
            br#"{"architecture":"arm64","os":"linux","variant":"v8","created":"2024-01-01T00:00:00Z",
                "config":{"Labels":{"a":"b"}},"rootfs":{"type":"layers","diff_ids":["sha256:1"]},
                "history":[{"created_by":"x","empty_layer":true},{}]}"#,
        )
        .unwrap();
        assert_eq!(c.platform.to_string(), "linux/arm64/v8");
        assert!(c.has_empty_layer());
        assert_eq!(c.bad_history_time, None);
        assert_eq!(c.history_empty_layers.iter().collect::<Vec<_>>(), [true, false]);
        assert_eq!(c.diff_ids, 1);
        assert!(parse_config(br#"{"history":[{"empty_layer":"yes"}]}"#).is_err());
        assert!(parse_config(br#"{"config":{"Labels":{"a":1}}}"#).is_err());
        let late = parse_config(br#"{"history":[{"created":"2024-01-01T00:00:00Z"},{"created":"yesterday"}]}"#);
        assert_eq!(late.unwrap().bad_history_time.as_deref(), Some("yesterday"));
    }
}
