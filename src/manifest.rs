//! Manifests and image configs, decoded from their stored bytes by the
//! registry's own rules (docs/registry-rules.md §3): the kind comes from
//! `schemaVersion` and `mediaType` in the body, never from outside.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use serde::Serialize;

use crate::digest::Digest;
use crate::gojson::{self, Decoder, GoDecode, GoSlice, GoTime, StringMapShape, StringShape, StringsShape};
use crate::model::Target;

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
    /// Schema1: `os` and `created` of the top `history[0].v1Compatibility`.
    schema1_os: Atom,
    schema1_created: Option<String>,
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

    /// Schema1 only: the `os` its newest v1Compatibility names ("" otherwise).
    pub fn schema1_os(&self) -> &str {
        self.rare.as_ref().map_or("", |r| &r.schema1_os)
    }

    /// Schema1 only: the `created` its newest v1Compatibility records.
    pub fn schema1_created(&self) -> Option<&str> {
        self.rare.as_ref()?.schema1_created.as_deref()
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
    /// The object store failed to deliver it, even after retries: nothing
    /// is known about what the registry would read.
    #[error("could not be read from the object store (what the registry reads is unknown): {0}")]
    StoreFailed(String),
    #[error("does not decode: {0}")]
    Malformed(String),
    /// With no `mediaType`, Get asserts the failed index decode's nil result
    /// (registry/storage/manifeststore.go): a Go panic, no answer.
    #[error("does not decode as an index, which panics the registry: {0}")]
    PanicsRegistry(String),
    #[error("unrecognized schemaVersion {0}")]
    UnknownSchemaVersion(i64),
    #[error("unrecognized mediaType {0:?}")]
    UnknownMediaType(String),
}

/// Why an image config blob yields no config. The schema1 conversion
/// answers 500 when it cannot read the blob and 400 when it does not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("larger than the {} MiB limit", MANIFEST_READ_LIMIT >> 20)]
    TooLarge,
    /// The read failed (Go's error text).
    #[error("cannot be read: {0}")]
    Unreadable(String),
    /// Go's decode error.
    #[error("{0}")]
    Malformed(String),
}

impl From<String> for ManifestError {
    fn from(s: String) -> Self {
        ManifestError::Malformed(s)
    }
}

impl From<gojson::Error> for ManifestError {
    fn from(e: gojson::Error) -> Self {
        ManifestError::Malformed(e.to_string())
    }
}

// ---------------------------------------------------------------------------
// The Go structs the registry unmarshals stored manifests into, reduced to
// the fields it reads; every other key is skipped without conversion.

/// `manifest.Versioned` (manifest/versioned.go): the first look at a body.
#[derive(Default)]
struct Versioned {
    schema_version: i64,
    media_type: String,
}

const VERSIONED_FIELDS: [&str; 2] = ["schemaVersion", "mediaType"];

impl GoDecode for Versioned {
    fn go_decode(&mut self, d: &mut Decoder) -> gojson::Result<()> {
        d.struct_fields("Versioned", &VERSIONED_FIELDS, |d, i| match i {
            0 => self.schema_version.go_decode(d),
            _ => self.media_type.go_decode(d),
        })
    }
}

/// `v1.Platform` (image-spec descriptor.go) or, with `features`, the
/// manifest list's `PlatformSpec` (manifest/manifestlist/manifestlist.go).
#[derive(Default)]
struct GoPlatform<const SPEC: bool> {
    architecture: String,
    os: String,
    variant: String,
}

impl<const SPEC: bool> GoDecode for GoPlatform<SPEC> {
    fn go_decode(&mut self, d: &mut Decoder) -> gojson::Result<()> {
        let fields: &[&str] = if SPEC {
            &["architecture", "os", "os.version", "os.features", "variant", "features"]
        } else {
            &["architecture", "os", "os.version", "os.features", "variant"]
        };
        d.struct_fields("Platform", fields, |d, i| match i {
            0 => self.architecture.go_decode(d),
            1 => self.os.go_decode(d),
            2 => StringShape.go_decode(d),
            4 => self.variant.go_decode(d),
            _ => StringsShape.go_decode(d),
        })
    }
}

impl<const SPEC: bool> GoPlatform<SPEC> {
    fn platform(&self) -> Platform {
        Platform {
            architecture: Atom::new(&self.architecture),
            os: Atom::new(&self.os),
            variant: Atom::new(&self.variant),
        }
    }
}

/// `distribution.Descriptor` (blobs.go), whose `platform` is a
/// `*v1.Platform`; with `ENTRY`, the list's `ManifestDescriptor`, whose
/// `platform` is a `PlatformSpec` value that shadows it. With `V3`, v3.1.1's
/// `v1.Descriptor` (image-spec v1.1 specs-go/v1/descriptor.go), which adds
/// `data` (`[]byte`: base64) and `artifactType`.
#[derive(Default)]
struct GoDescriptor<const ENTRY: bool, const V3: bool> {
    media_type: String,
    size: i64,
    digest: String,
    urls: GoSlice<String>,
    /// Pointer: nil when absent or null. For an entry: a value, Some once an
    /// object was decoded into it.
    platform: Option<Box<GoPlatform<ENTRY>>>,
}

const DESCRIPTOR_FIELDS: [&str; 6] = ["mediaType", "size", "digest", "urls", "annotations", "platform"];
const V3_DESCRIPTOR_FIELDS: [&str; 8] =
    ["mediaType", "digest", "size", "urls", "annotations", "data", "platform", "artifactType"];

impl<const ENTRY: bool, const V3: bool> GoDecode for GoDescriptor<ENTRY, V3> {
    fn go_decode(&mut self, d: &mut Decoder) -> gojson::Result<()> {
        let fields: &[&str] = if V3 { &V3_DESCRIPTOR_FIELDS } else { &DESCRIPTOR_FIELDS };
        d.struct_fields("Descriptor", fields, |d, i| match fields[i] {
            "mediaType" => self.media_type.go_decode(d),
            "size" => self.size.go_decode(d),
            "digest" => self.digest.go_decode(d),
            "urls" => self.urls.go_decode(d),
            "annotations" => StringMapShape.go_decode(d),
            "data" => BytesShape.go_decode(d),
            "artifactType" => StringShape.go_decode(d),
            // A struct value: null leaves it as it was.
            _ if ENTRY && d.peek() == b'n' => {
                d.skip();
                Ok(())
            }
            _ => self.platform.go_decode(d),
        })
    }
}

impl<const ENTRY: bool, const V3: bool> GoDescriptor<ENTRY, V3> {
    fn descriptor(self) -> Descriptor {
        let mut d = Descriptor::from_digest_text(self.digest);
        d.media_type = MediaType::new(&self.media_type);
        d.size = self.size;
        let urls = self.urls.into_items();
        let platform = self.platform.map(|p| p.platform());
        if !urls.is_empty() || platform.is_some() {
            let rare = d.rare.get_or_insert_with(Default::default);
            rare.urls = urls;
            rare.platform = platform;
        }
        d
    }
}

/// A Go `[]byte` whose bytes nobody reads: a JSON string must be
/// `base64.StdEncoding` (encoding/json decode.go literalStore), an array
/// holds `uint8` numbers, `null` leaves it nil.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct BytesShape;

impl GoDecode for BytesShape {
    fn go_decode(&mut self, d: &mut Decoder) -> gojson::Result<()> {
        match d.peek() {
            b'"' => {
                let mut s = String::new();
                s.go_decode(d)?;
                go_std_base64_valid(&s)
                    .map_err(|at| gojson::Error::Invalid(format!("illegal base64 data at input byte {at}")))
            }
            _ => GoSlice::<U8Shape>::default().go_decode(d),
        }
    }
}

/// A Go `uint8` (an element of `[]byte` decoded from an array): an integer
/// literal that fits (`strconv.ParseUint` and `OverflowUint`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct U8Shape;

impl GoDecode for U8Shape {
    fn go_decode(&mut self, d: &mut Decoder) -> gojson::Result<()> {
        let mut n = 0i64;
        let refused = || gojson::Error::Type { found: "number", want: "uint8".into() };
        match d.peek() {
            b'-' | b'0'..=b'9' => {
                // ParseUint refuses a sign: "-0" fails too (an i64 reads it as 0).
                let signed = d.peek() == b'-';
                n.go_decode(d).map_err(|_| refused())?;
                (!signed && (0..=255).contains(&n)).then_some(()).ok_or_else(refused)
            }
            _ => n.go_decode(d).map_err(|e| e.retyped("int64", "uint8")),
        }
    }
}

/// Whether `s` decodes with Go's `base64.StdEncoding.Decode`
/// (encoding/base64 decodeQuantum): `\r` and `\n` are skipped anywhere, the
/// last quantum must be padded to 4 with `=` after 2 or 3 symbols, nothing
/// follows the padding, and non-zero trailing bits are accepted (not
/// Strict). The error is an offset near the one Go reports.
pub fn go_std_base64_valid(s: &str) -> Result<(), usize> {
    let symbol = |b: u8| b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
    let bytes: Vec<(usize, u8)> = s.bytes().enumerate().filter(|(_, b)| !matches!(b, b'\r' | b'\n')).collect();
    let data = bytes.iter().take_while(|(_, b)| symbol(*b)).count();
    let pad = bytes[data..].iter().take_while(|(_, b)| *b == b'=').count();
    let at = |i: usize| bytes.get(i).map_or(s.len(), |(o, _)| *o);
    if data + pad < bytes.len() {
        return Err(at(data + pad));
    }
    match (data % 4, pad) {
        (0, 0) | (2, 2) | (3, 1) => Ok(()),
        _ => Err(at(data)),
    }
}

/// `schema2.Manifest`, `ocischema.Manifest` (with `annotations`) and
/// `manifestlist.ManifestList` (with `manifests`), as one struct whose field
/// table depends on the kind decoded; with `V3`, v3.1.1's, whose
/// descriptors are `v1.Descriptor`, and `ocischema.ImageIndex` (an OCI index
/// is no longer a manifest list there: its entries are plain descriptors).
/// `subject` and `artifactType` (OCI 1.1) are not Go fields in 2.8.2 nor in
/// 3.1.1's `ocischema.Manifest`: read leniently, for reporting only.
#[derive(Default)]
struct GoImage<const V3: bool> {
    versioned: Versioned,
    config: GoDescriptor<false, V3>,
    layers: GoSlice<GoDescriptor<false, V3>>,
    manifests: GoSlice<GoDescriptor<true, V3>>,
    /// v3's `ocischema.ImageIndex.Manifests`.
    index_manifests: GoSlice<GoDescriptor<false, V3>>,
    subject: Option<Box<GoDescriptor<false, false>>>,
    artifact_type: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum GoImageType {
    Schema2,
    Oci,
    List,
    /// v3's `ocischema.ImageIndex` (manifest/ocischema/index.go).
    Index,
}

impl<const V3: bool> GoImage<V3> {
    fn decode(bytes: &[u8], ty: GoImageType) -> gojson::Result<GoImage<V3>> {
        let fields: &[&str] = match ty {
            GoImageType::Schema2 => &["schemaVersion", "mediaType", "config", "layers"],
            GoImageType::Oci => &["schemaVersion", "mediaType", "config", "layers", "annotations"],
            GoImageType::List => &["schemaVersion", "mediaType", "manifests"],
            GoImageType::Index => &["schemaVersion", "mediaType", "manifests", "annotations"],
        };
        let mut m = GoImage::default();
        let mut d = Decoder::new(bytes)?;
        d.struct_fields("Manifest", fields, |d, i| match fields[i] {
            "schemaVersion" => m.versioned.schema_version.go_decode(d),
            "mediaType" => m.versioned.media_type.go_decode(d),
            "config" => m.config.go_decode(d),
            "layers" => m.layers.go_decode(d),
            "manifests" if ty == GoImageType::Index => m.index_manifests.go_decode(d),
            "manifests" => m.manifests.go_decode(d),
            _ => StringMapShape.go_decode(d),
        })?;
        if ty == GoImageType::Oci {
            // Not decoded by the registry: what reads it must not fail the manifest.
            let mut d = Decoder::new(bytes)?;
            let _ = d.struct_fields("Manifest", &["subject", "artifactType"], |d, i| {
                let start = d.clone();
                let r = if i == 0 { m.subject.go_decode(d) } else { m.artifact_type.go_decode(d) };
                if r.is_err() {
                    *d = start;
                    d.skip();
                }
                Ok(())
            });
        }
        Ok(m)
    }

    /// Go's `Manifests != nil` for the index the decode produced.
    fn has_manifests(&self, ty: GoImageType) -> bool {
        if ty == GoImageType::Index {
            !self.index_manifests.is_nil()
        } else {
            !self.manifests.is_nil()
        }
    }

    fn manifest(self, kind: ManifestKind) -> Manifest {
        let subject = self.subject.map(|s| s.descriptor());
        let manifests: Box<[Descriptor]> = if self.index_manifests.is_nil() {
            self.manifests.into_items().into_iter().map(GoDescriptor::descriptor).collect()
        } else {
            self.index_manifests.into_items().into_iter().map(GoDescriptor::descriptor).collect()
        };
        Manifest {
            kind,
            media_type: MediaType::new(&self.versioned.media_type),
            config: (!kind.is_index()).then(|| self.config.descriptor()),
            layers: self.layers.into_items().into_iter().map(GoDescriptor::descriptor).collect(),
            manifests,
            rare: RareManifestFields {
                subject,
                artifact_type: MediaType::new(&self.artifact_type),
                ..Default::default()
            }
            .boxed(),
        }
    }
}

/// Decodes stored manifest bytes as registry 2.8.2 (the default target) does on GET and in GC
/// (registry/storage/manifeststore.go Get).
pub fn parse_manifest(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    parse_manifest_for(bytes, Target::default())
}

/// Decodes stored manifest bytes as the target registry does on GET and in
/// GC (registry/storage/manifeststore.go Get, at v2.8.2 or v3.1.1). Schema1
/// is decoded by 2.8.2's rules for both: v3 refuses every schema1 manifest,
/// which the models say from its kind.
pub fn parse_manifest_for(bytes: &[u8], target: Target) -> Result<Manifest, ManifestError> {
    if target.decodes_image_spec() {
        parse_image::<true>(bytes)
    } else {
        parse_image::<false>(bytes)
    }
}

fn parse_image<const V3: bool>(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    if bytes.len() > MANIFEST_READ_LIMIT {
        return Err(ManifestError::TooLarge);
    }
    let mut versioned = Versioned::default();
    gojson::unmarshal(bytes, &mut versioned)?;
    // 2.8.2 decodes an OCI index as a manifest list; v3.1.1 as an ImageIndex.
    let index = if V3 { GoImageType::Index } else { GoImageType::List };
    match versioned.schema_version {
        1 => parse_schema1(bytes),
        2 => {
            let (ty, kind) = match versioned.media_type.as_str() {
                media::SCHEMA2 => (GoImageType::Schema2, ManifestKind::Schema2),
                media::OCI_MANIFEST => (GoImageType::Oci, ManifestKind::OciManifest),
                media::DOCKER_LIST => (GoImageType::List, ManifestKind::DockerList),
                media::OCI_INDEX => (index, ManifestKind::OciIndex),
                "" => {
                    // An index if it decodes as one with a non-nil `manifests`
                    // (`[]` counts, `null` does not), else an OCI manifest. An
                    // index that fails to decode makes Get assert a nil
                    // interface: the registry panics.
                    let list = GoImage::<V3>::decode(bytes, index)
                        .map_err(|e| ManifestError::PanicsRegistry(e.to_string()))?;
                    if list.has_manifests(index) {
                        return Ok(list.manifest(ManifestKind::OciIndex));
                    }
                    (GoImageType::Oci, ManifestKind::OciManifest)
                }
                other => return Err(ManifestError::UnknownMediaType(other.to_string())),
            };
            Ok(GoImage::<V3>::decode(bytes, ty)?.manifest(kind))
        }
        v => Err(ManifestError::UnknownSchemaVersion(v)),
    }
}

/// `schema1.FSLayer`.
#[derive(Default)]
struct FsLayer(String);

impl GoDecode for FsLayer {
    fn go_decode(&mut self, d: &mut Decoder) -> gojson::Result<()> {
        d.struct_fields("FSLayer", &["blobSum"], |d, _| self.0.go_decode(d))
    }
}

/// `schema1.History`: its `v1Compatibility` text (the same Go decode as a
/// `StringShape`, kept: the first one carries the image's os and created).
#[derive(Default)]
struct History(String);

impl GoDecode for History {
    fn go_decode(&mut self, d: &mut Decoder) -> gojson::Result<()> {
        d.struct_fields("History", &["v1Compatibility"], |d, _| self.0.go_decode(d))
    }
}

/// What text shows of a schema1 image: `os` and `created` of
/// `history[0].v1Compatibility` (the top layer's v1 image JSON). Read for
/// display only; an unreadable one shows nothing.
#[derive(serde::Deserialize)]
struct V1Compatibility {
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    created: Option<String>,
}

/// Schema1 (registry/storage/signedmanifesthandler.go Unmarshal): libtrust
/// first decodes the body into `map[string]interface{}` (every number a
/// float64), needs its last non-space byte to be `}` with no comma before,
/// and appends a signature after the last member (an empty object breaks
/// that); then the payload decodes into `schema1.Manifest`.
fn parse_schema1(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    gojson::unmarshal_any_map(bytes)?;
    // json.Unmarshal hands SignedManifest.UnmarshalJSON the object without
    // the space before it, but libtrust's format length counts that space:
    // the payload it cuts out is then broken JSON.
    if bytes.first().is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')) {
        return Err(ManifestError::Malformed(
            "schema1 with space before the object: libtrust cuts its payload at the wrong offset".into(),
        ));
    }
    let not_space = |b: &u8| !matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let close = bytes.iter().rposition(not_space);
    let before = close.and_then(|c| bytes[..c].iter().rposition(not_space));
    match (close, before) {
        (Some(c), Some(b)) if bytes[c] == b'}' && !matches!(bytes[b], b',' | b'{') => {}
        _ => return Err(ManifestError::Malformed("not a JSON object libtrust can sign".into())),
    }
    let (mut versioned, mut arch) = (Versioned::default(), String::new());
    let mut layers: GoSlice<FsLayer> = GoSlice::default();
    let mut history: GoSlice<History> = GoSlice::default();
    let mut d = Decoder::new(bytes)?;
    let fields = ["schemaVersion", "mediaType", "name", "tag", "architecture", "fsLayers", "history"];
    d.struct_fields("Manifest", &fields, |d, i| match i {
        0 => versioned.schema_version.go_decode(d),
        1 => versioned.media_type.go_decode(d),
        2 | 3 => StringShape.go_decode(d),
        4 => arch.go_decode(d),
        5 => layers.go_decode(d),
        _ => history.go_decode(d),
    })?;
    let v1: Option<V1Compatibility> =
        history.into_items().into_iter().next().and_then(|h| serde_json::from_str(&h.0).ok());
    let (os, created) = v1.map(|v| (v.os.unwrap_or_default(), v.created)).unwrap_or_default();
    Ok(Manifest {
        kind: ManifestKind::Schema1,
        media_type: MediaType::new(&versioned.media_type),
        config: None,
        layers: layers.into_items().into_iter().map(|l| Descriptor::from_digest_text(l.0)).collect(),
        manifests: Box::default(),
        rare: RareManifestFields {
            schema1_architecture: Atom::new(&arch),
            schema1_os: Atom::new(&os),
            schema1_created: created,
            ..Default::default()
        }
        .boxed(),
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

/// The schema1 conversion's `imageConfig` (manifest/schema1/config_builder.go
/// Build): `rootfs`, `history` and `architecture` decode by Go's rules;
/// `os`, `variant` and `created` are read leniently, for reporting only.
#[derive(Default)]
struct GoConfig {
    rootfs: Option<Box<GoRootFs>>,
    history: GoSlice<GoHistory>,
    architecture: String,
    os: String,
    variant: String,
    created: String,
}

#[derive(Default)]
struct GoRootFs {
    diff_ids: GoSlice<StringShape>,
}

impl GoDecode for GoRootFs {
    fn go_decode(&mut self, d: &mut Decoder) -> gojson::Result<()> {
        d.struct_fields("imageRootFS", &["type", "diff_ids", "base_layer"], |d, i| match i {
            1 => self.diff_ids.go_decode(d),
            _ => StringShape.go_decode(d),
        })
    }
}

#[derive(Default)]
struct GoHistory {
    created: GoTime,
    empty_layer: bool,
}

impl GoDecode for GoHistory {
    fn go_decode(&mut self, d: &mut Decoder) -> gojson::Result<()> {
        let fields = ["created", "author", "created_by", "comment", "empty_layer"];
        d.struct_fields("imageHistory", &fields, |d, i| match i {
            0 => self.created.go_decode(d),
            4 => self.empty_layer.go_decode(d),
            _ => StringShape.go_decode(d),
        })
    }
}

pub fn parse_config(bytes: &[u8]) -> Result<ImageConfig, ConfigError> {
    if bytes.len() > MANIFEST_READ_LIMIT {
        return Err(ConfigError::TooLarge);
    }
    let mut c = GoConfig::default();
    let mut d = Decoder::new(bytes).map_err(|e| ConfigError::Malformed(e.to_string()))?;
    let fields = ["rootfs", "history", "architecture", "os", "variant", "created"];
    let decoded = d.struct_fields("imageConfig", &fields, |d, i| {
        let lenient = |d: &mut Decoder, s: &mut String| {
            let start = d.clone();
            if s.go_decode(d).is_err() {
                *d = start;
                d.skip();
            }
            Ok(())
        };
        match i {
            0 => c.rootfs.go_decode(d),
            1 => c.history.go_decode(d),
            2 => c.architecture.go_decode(d),
            3 => lenient(d, &mut c.os),
            4 => lenient(d, &mut c.variant),
            _ => lenient(d, &mut c.created),
        }
    });
    // Time.UnmarshalJSON ends the decode: kept apart, as the conversion's own outcome.
    if let Err(e) = decoded {
        return match e.bad_time() {
            Some(text) => Ok(ImageConfig { bad_history_time: Some(text.into()), ..Default::default() }),
            None => Err(ConfigError::Malformed(e.to_string())),
        };
    }
    let history = c.history.items();
    Ok(ImageConfig {
        platform: Platform {
            architecture: Atom::new(&c.architecture),
            os: Atom::new(&c.os),
            variant: Atom::new(&c.variant),
        },
        created: (!c.created.is_empty()).then(|| c.created.into()),
        history_empty_layers: history.iter().map(|h| h.empty_layer).collect(),
        bad_history_time: None,
        diff_ids: c.rootfs.as_ref().map_or(0, |r| r.diff_ids.items().len()),
        has_rootfs: c.rootfs.is_some(),
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
    fn decodes_as_go_does() {
        let oci = |rest: &str| parse_manifest(format!(r#"{{"schemaVersion":2,{rest}}}"#).as_bytes());
        // The last key wins whatever its case; U+017F folds to s.
        let m = oci(&format!(r#""mediaType":"x","MEDIATYPE":"y","mediaType":"{}","layers":[]"#, media::OCI_MANIFEST));
        assert_eq!(m.unwrap().kind, ManifestKind::OciManifest);
        let m = oci("\"layer\u{17f}\":[{\"size\":1}],\"\u{17f}chemaVersion\":2").unwrap();
        assert_eq!(m.layers.len(), 1);
        // A repeated object merges; null leaves the struct as it was.
        let m = oci(&format!(r#""config":{{"digest":"{D}"}},"config":{{"size":3}},"config":null"#)).unwrap();
        let config = m.config.unwrap();
        assert_eq!((config.digest_text().as_str(), config.size), (D, 3));
        // The first type error fails the decode, even when fixed later.
        assert!(oci(r#""config":{"size":"1"},"config":{"size":1}"#).is_err());
        // Unknown fields are skipped unconverted, however deep.
        let deep = format!(r#""x":{}1e999{}"#, "[".repeat(9999), "]".repeat(9999));
        assert!(oci(&deep).is_ok());
        // No mediaType: `manifests` that does not decode panics the registry.
        assert!(matches!(oci(r#""manifests":"x""#), Err(ManifestError::PanicsRegistry(_))));
        assert_eq!(oci(r#""manifests":[],"manifests":null"#).unwrap().kind, ManifestKind::OciManifest);
        // Layer platforms are v1.Platform (no `features`); index entries' are PlatformSpec.
        assert!(oci(r#""layers":[{"platform":{"features":1}}]"#).is_ok());
        assert!(oci(r#""manifests":[{"platform":{"features":1}}]"#).is_err());
        // Schema1: every number must fit a float64, anywhere.
        assert!(parse_manifest(br#"{"schemaVersion":1,"x":1e999}"#).is_err());
        assert!(parse_manifest(br#"{"schemaVersion":1,"x":1e99}"#).is_ok());
        assert!(parse_manifest(b"{\"schemaVersion\":1,\"x\":1}\n ").is_ok());
        assert!(parse_manifest(b"\n{\"schemaVersion\":1,\"x\":1}").is_err());
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
        // The conversion's imageConfig has no `config`: its labels are never decoded.
        assert!(parse_config(br#"{"config":{"Labels":{"a":1}}}"#).is_ok());
        assert!(parse_config(br#"{"rootfs":{"diff_ids":[1]}}"#).is_err());
        let escaped = parse_config(br#"{"history":[{"created":"2024-01-01T00:00:00\u005a"}]}"#).unwrap();
        assert!(escaped.bad_history_time.is_some());
        let late = parse_config(br#"{"history":[{"created":"2024-01-01T00:00:00Z"},{"created":"yesterday"}]}"#);
        assert_eq!(late.unwrap().bad_history_time.as_deref(), Some("yesterday"));
    }
}
