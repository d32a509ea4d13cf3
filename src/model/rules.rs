//! Every decision that depends on the registry version, as methods on
//! [`Target`]: the one place to read what 2.8 and 3 do differently. Each
//! method names the upstream file and function it reproduces
//! (github.com/distribution/distribution at v2.8.2 and v3.1.1). What both
//! versions do alike stays with the code that models it (serve, writes, gc,
//! layout). Rules: docs/registry-rules.md, which points back here.

use super::serve::LinkedBy;
use super::Target;
use crate::inventory::Repository;
use crate::layout::{self, NAME_INVALID_FORMAT, NAME_TOO_LONG};
use crate::manifest::{media, Manifest, ManifestKind};

/// Why registry 3 answers 500 to a GET of a stored schema1 manifest.
pub const SCHEMA1_REFUSED: &str = "registry 3 cannot serve schema1 manifests";

/// Go's error when registry 3 loads a schema1 manifest (GC prints it).
pub const SCHEMA1_GO_ERROR: &str = "unrecognized manifest schema version 1";

/// Prefix of v3's reasons where 2.8 would convert to schema1.
const NO_CONVERSION: &str = "registry 3 has no schema1 conversion";

/// What a GET or HEAD by tag without schema2 in Accept does with the
/// manifest the tag names, before any child is looked at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LegacyGet {
    /// Answered with this status and reason, nothing converted.
    Answer(u16, String),
    /// The schema2 manifest is converted to schema1 (which may write).
    Convert,
    /// A Docker list: its first linux/amd64 child decides
    /// ([`Target::legacy_get_child`]).
    DefaultChild,
}

/// What that request does with a Docker list's linux/amd64 child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LegacyChild {
    /// The child is converted to schema1 (which may write).
    Convert,
    /// Answered with this status and reason, nothing converted.
    Answer(u16, String),
}

/// What a GET or HEAD of an upload's status asks of the client, and does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadStatusRule {
    /// What the client must hold for the request to reach the upload.
    pub condition: Option<&'static str>,
    pub reason: &'static str,
}

impl Target {
    // ----- repositories and names -------------------------------------------

    /// registry/storage/catalog.go `handleRepository`: the child directory
    /// that makes a directory a repository (2.8 `_layers`, 3 `_manifests`).
    pub fn catalog_marker(self) -> &'static str {
        match self {
            Target::V2_8 => "_layers",
            Target::V3 => "_manifests",
        }
    }

    /// registry/storage/catalog.go `Repositories`: whether the catalog (and
    /// garbage-collect's walk) lists `repo` (it has the marker directory).
    pub fn lists_in_catalog(self, repo: &Repository) -> bool {
        match self {
            Target::V2_8 => repo.has_layers_dir,
            Target::V3 => repo.has_manifests_dir,
        }
    }

    /// registry/storage/driver/walk.go `WalkFallback` at v2.8.2, used by
    /// catalog.go `Repositories`: an `_`-prefixed regular file ends the
    /// listing of its directory (`ErrSkipDir`), so later siblings are never
    /// visited. v3.1.1's walk skips only that file.
    pub fn catalog_walk_stops_at_skipped_file(self) -> bool {
        self == Target::V2_8
    }

    /// reference `WithName` (v2.8.2 reference/reference.go; v3.1.1 vendored
    /// github.com/distribution/reference reference.go): why the API and
    /// garbage-collect refuse a repository name, in Go's words; None when
    /// accepted. 2.8 limits the whole name before the grammar, v3 checks
    /// the grammar first and limits only the path after the domain.
    pub fn repository_name_error(self, name: &str) -> Option<&'static str> {
        match self {
            Target::V2_8 => {
                if crate::names::to_bytes(name).len() > 255 {
                    return Some(NAME_TOO_LONG);
                }
                layout::split_repository_name(name, self).is_none().then_some(NAME_INVALID_FORMAT)
            }
            Target::V3 => match layout::split_repository_name(name, self) {
                None => Some(NAME_INVALID_FORMAT),
                Some((_, path)) => (path.len() > 255).then_some(NAME_TOO_LONG),
            },
        }
    }

    /// reference/regexp.go `domainAndPort` at v3.1.1 (`ipv6address`): a
    /// domain may be an IPv6 literal `[…]`; 2.8.2's `domainRegexp` has no
    /// such form.
    pub fn domain_takes_ipv6(self) -> bool {
        self == Target::V3
    }

    // ----- manifests --------------------------------------------------------

    /// The manifest structs: v3.1.1's ocischema uses image-spec v1.1
    /// `v1.Descriptor` and decodes an OCI index as `ocischema.ImageIndex`
    /// (manifest/ocischema/manifest.go, index.go); 2.8.2 uses
    /// `distribution.Descriptor` and a manifest list (manifest/manifestlist).
    pub fn decodes_image_spec(self) -> bool {
        self == Target::V3
    }

    /// registry/storage/registry.go `Manifests` (`linkPathFns`): the links
    /// tried, in order, to find a manifest in a repository. 2.1 wrote
    /// manifests into `_layers`, so 2.8 still looks there; v3 does not.
    pub fn manifest_links(self) -> &'static [LinkedBy] {
        match self {
            Target::V2_8 => &[LinkedBy::Revision, LinkedBy::Layers],
            Target::V3 => &[LinkedBy::Revision],
        }
    }

    /// registry/storage/manifeststore.go `Get`: v3.1.1 has no schema1
    /// handler and refuses every schema1 manifest (a GET answers 500, GC
    /// aborts with [`SCHEMA1_GO_ERROR`]); 2.8.2 loads them.
    pub fn loads_schema1(self) -> bool {
        self == Target::V2_8
    }

    /// Why a GET of a decoded manifest of this kind fails for a client that
    /// accepts the four modern types (manifeststore.go `Get`, see
    /// [`Target::loads_schema1`]); None when it is served.
    pub fn refuses_kind(self, kind: ManifestKind) -> Option<&'static str> {
        (kind == ManifestKind::Schema1 && !self.loads_schema1()).then_some(SCHEMA1_REFUSED)
    }

    /// registry/storage/manifeststore.go `Get`: the type asserted on an
    /// index decoded without `mediaType` when the decode failed, whose nil
    /// value panics (2.8.2 a manifest list, v3.1.1 an OCI image index).
    pub fn index_panic(self) -> &'static str {
        match self {
            Target::V2_8 => {
                "panic: interface conversion: distribution.Manifest is nil, not *manifestlist.DeserializedManifestList"
            }
            Target::V3 => {
                "panic: interface conversion: distribution.Manifest is nil, not *ocischema.DeserializedImageIndex"
            }
        }
    }

    // ----- reads that write -------------------------------------------------

    /// registry/handlers/manifests.go `GetManifest`: a GET or HEAD by tag
    /// whose Accept header lacks schema2, on a manifest of this kind. 2.8.2
    /// converts schema2 to schema1 (`convertSchema2Manifest`); v3.1.1 has no
    /// conversion and serves OCI indexes whatever the header.
    pub fn legacy_get(self, m: &Manifest) -> LegacyGet {
        use LegacyGet::{Answer, Convert, DefaultChild};
        let answer = |status, reason: &str| Answer(status, reason.to_string());
        match (self, m.kind) {
            (_, ManifestKind::DockerList) => DefaultChild,
            (Target::V2_8, ManifestKind::Schema1) => {
                answer(200, "a stored schema1 manifest is served re-signed; nothing to convert")
            }
            (Target::V2_8, ManifestKind::Schema2) => Convert,
            (Target::V2_8, ManifestKind::OciManifest) => {
                answer(404, "OCI manifest, not accepted: 404 without conversion")
            }
            (Target::V2_8, ManifestKind::OciIndex) if m.media_type == media::OCI_INDEX => {
                answer(404, "OCI index, not accepted: 404 without conversion")
            }
            (Target::V2_8, ManifestKind::OciIndex) => answer(200, "an OCI index without mediaType is served as stored"),
            (Target::V3, ManifestKind::Schema1) => answer(500, SCHEMA1_REFUSED),
            (Target::V3, ManifestKind::Schema2) => {
                Answer(200, format!("{NO_CONVERSION}: serves the schema2 manifest as stored"))
            }
            (Target::V3, ManifestKind::OciManifest) => answer(404, "OCI manifest, not accepted: 404"),
            (Target::V3, ManifestKind::OciIndex) => {
                answer(200, "registry 3 serves OCI indexes whatever the Accept header")
            }
        }
    }

    /// registry/handlers/manifests.go `GetManifest`, the Docker list branch:
    /// the first linux/amd64 child `child` (short digest) of kind `kind`.
    /// 2.8.2 converts a schema2 child; v3.1.1 refuses it with 400.
    pub fn legacy_get_child(self, child: &str, kind: ManifestKind) -> LegacyChild {
        match (self, kind) {
            (Target::V2_8, ManifestKind::Schema2) => LegacyChild::Convert,
            (Target::V3, ManifestKind::Schema2) => LegacyChild::Answer(
                400,
                format!("{NO_CONVERSION}: the list's linux/amd64 child {child} is schema2, refused with 400"),
            ),
            (_, kind) => LegacyChild::Answer(
                200,
                format!("the list's linux/amd64 child {child} is {}, served as stored", kind.name()),
            ),
        }
    }

    /// registry/handlers/blobupload.go `blobUploadDispatcher` and
    /// `GetUploadStatus`: 2.8.2 needs the upload's `_state` token (HMAC of
    /// the HTTP secret) to reach the upload; v3.1.1 asks for none.
    pub fn upload_status(self) -> UploadStatusRule {
        match self {
            Target::V2_8 => UploadStatusRule {
                condition: Some("the client holds the upload's _state token"),
                reason: "with the upload's _state token, a status GET/HEAD reopens data and rewrites the empty hash \
                         state (without a token: 404 and no access; with an offset other than the size of data: \
                         the whole upload directory is deleted)",
            },
            Target::V3 => UploadStatusRule {
                condition: None,
                reason: "any status GET/HEAD reopens data and rewrites the empty hash state; registry 3 asks for no \
                         token",
            },
        }
    }

    /// registry/storage/purgeuploads.go `getOutstandingUploads` (`uuid.Parse`):
    /// whether the purger takes `s` as an upload's UUID. 2.8.2's uuid
    /// package takes only the 36-character hyphenated form; v3.1.1's
    /// google/uuid also 32 bare hex digits, `{…}` and `urn:uuid:…`.
    pub fn purger_accepts_uuid(self, s: &str) -> bool {
        let hyphenated = |s: &str| {
            s.len() == 36
                && s.bytes().enumerate().all(|(i, b)| match i {
                    8 | 13 | 18 | 23 => b == b'-',
                    _ => b.is_ascii_hexdigit(),
                })
        };
        match self {
            Target::V2_8 => hyphenated(s),
            Target::V3 => {
                hyphenated(s)
                    || (s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
                    || (s.len() == 38 && s.starts_with('{') && s.ends_with('}') && hyphenated(&s[1..37]))
                    || (s.len() == 45 && s[..9].eq_ignore_ascii_case("urn:uuid:") && hyphenated(&s[9..]))
            }
        }
    }

    // ----- garbage-collect --------------------------------------------------

    /// registry/storage/garbagecollect.go `markManifestReferences` (v3.1.1):
    /// a reference marked for the first time that is a manifest of this
    /// repository has its own references marked, recursively, and a
    /// reference already marked is neither logged nor followed. 2.8.2's
    /// `MarkAndSweep` marks (and logs) each reference without following it.
    pub fn gc_marks_children(self) -> bool {
        self == Target::V3
    }

    /// registry/storage/garbagecollect.go `MarkAndSweep` (v3.1.1): after a
    /// repository is marked, its `_layers` links are read and those whose
    /// blob is not marked yet are queued for removal. 2.8.2 never reads
    /// `_layers` in garbage-collect.
    pub fn gc_checks_layer_links(self) -> bool {
        self == Target::V3
    }

    /// registry/storage/garbagecollect.go `MarkAndSweep` (v3.1.1): an
    /// untagged manifest queued for deletion is kept when it ended up marked
    /// (by any repository), and the dry run logs the queue only then
    /// (`manifest eligible for deletion: {repo digest [tags]}`). 2.8.2 logs
    /// each one as it is queued and deletes them all.
    pub fn gc_keeps_marked_queued_manifests(self) -> bool {
        self == Target::V3
    }

    /// registry/storage/garbagecollect.go `MarkAndSweep` with
    /// `--delete-untagged`, a repository without `_manifests/tags`: 2.8.2's
    /// tag lookup fails (`unknown repository`) and the run aborts; v3.1.1
    /// logs that the path does not exist and skips its untagged revisions.
    pub fn gc_aborts_without_tags_dir(self) -> bool {
        self == Target::V2_8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{repository_name_is_valid, split_repository_name, storage_path_is_valid};
    use crate::manifest::{parse_manifest, parse_manifest_for, ManifestError};

    const BOTH: [Target; 2] = [Target::V2_8, Target::V3];

    #[test]
    fn catalog_markers() {
        assert_eq!(Target::V2_8.catalog_marker(), "_layers");
        assert_eq!(Target::V3.catalog_marker(), "_manifests");
    }

    #[test]
    fn manifest_links_by_version() {
        assert_eq!(Target::V2_8.manifest_links(), &[LinkedBy::Revision, LinkedBy::Layers]);
        assert_eq!(Target::V3.manifest_links(), &[LinkedBy::Revision]);
        assert_eq!(Target::V2_8.refuses_kind(ManifestKind::Schema1), None);
        assert_eq!(Target::V3.refuses_kind(ManifestKind::Schema1), Some(SCHEMA1_REFUSED));
        for t in BOTH {
            assert_eq!(t.refuses_kind(ManifestKind::Schema2), None);
        }
    }

    #[test]
    fn legacy_get_children() {
        assert_eq!(Target::V2_8.legacy_get_child("abc", ManifestKind::Schema2), LegacyChild::Convert);
        assert!(matches!(Target::V3.legacy_get_child("abc", ManifestKind::Schema2), LegacyChild::Answer(400, _)));
        for t in BOTH {
            assert!(matches!(t.legacy_get_child("abc", ManifestKind::OciManifest), LegacyChild::Answer(200, _)));
        }
    }

    #[test]
    fn purger_uuids() {
        let u = "64ebca46-afbe-4e93-9761-95216c3e8d7f";
        assert!(Target::V2_8.purger_accepts_uuid(u));
        assert!(Target::V2_8.purger_accepts_uuid(&u.to_uppercase()));
        assert!(!Target::V2_8.purger_accepts_uuid(&u.replace('-', "")));
        assert!(Target::V3.purger_accepts_uuid(&u.replace('-', "")));
        assert!(Target::V3.purger_accepts_uuid(&format!("{{{u}}}")));
        assert!(Target::V3.purger_accepts_uuid(&format!("urn:uuid:{u}")));
        assert!(!Target::V3.purger_accepts_uuid("pending"));
    }

    #[test]
    fn repository_names() {
        let error = |name: &str, t: Target| t.repository_name_error(name);
        for target in BOTH {
            for ok in ["a", "library/alpine", "org/team/app", "a.b_c__d---e", "Host.Example:5000/app", "localhost/x"] {
                assert!(repository_name_is_valid(ok, target), "{ok}");
            }
            for bad in ["", "Upper", "App", "a/", "/a", "a//b", "-a", "a-", "a..b", "a___b", "Upper/Case/"] {
                assert_eq!(error(bad, target), Some(NAME_INVALID_FORMAT), "{bad}");
            }
            assert_eq!(error(&"a".repeat(256), target), Some(NAME_TOO_LONG));
        }
        // 2.8 counts the whole name, before the grammar; v3 only the path after the domain.
        let domain_like = format!("abcdef/{}", "b".repeat(250));
        assert_eq!(error(&domain_like, Target::V2_8), Some(NAME_TOO_LONG));
        assert_eq!(error(&domain_like, Target::V3), None);
        assert_eq!(split_repository_name(&domain_like, Target::V3), Some((Some("abcdef"), &domain_like[7..])));
        let long_invalid = format!("abc/Upper{}", "b".repeat(260));
        assert_eq!(error(&long_invalid, Target::V2_8), Some(NAME_TOO_LONG));
        assert_eq!(error(&long_invalid, Target::V3), Some(NAME_INVALID_FORMAT));
        // An IPv6 domain exists only in v3's grammar; the driver refuses its path either way.
        assert!(repository_name_is_valid("[::1]:5000/app", Target::V3));
        assert!(!repository_name_is_valid("[::1]:5000/app", Target::V2_8));
        assert!(!storage_path_is_valid("[::1]:5000/app"));
        assert!(!storage_path_is_valid("host:5000/app"));
        assert!(storage_path_is_valid("Upper/a.b_c-d"));
    }

    #[test]
    fn v3_decodes_image_spec_descriptors() {
        let layer = |data: &str| format!(r#"{{"schemaVersion":2,"layers":[{{"data":{data}}}]}}"#);
        for (data, ok) in [
            (r#""AAAA""#, true),
            (r#""AA==""#, true),
            (r#""AB==""#, true),
            (r#""AA\r\n==""#, true),
            ("null", true),
            ("[0,255]", true),
            (r#""!!!notbase64""#, false),
            (r#""AAA""#, false),
            (r#""A===""#, false),
            (r#""AA==AA==""#, false),
            ("[256]", false),
            ("[-0]", false),
            ("5", false),
        ] {
            let body = layer(data);
            assert!(parse_manifest(body.as_bytes()).is_ok(), "2.8 skips data {data}");
            assert_eq!(parse_manifest_for(body.as_bytes(), Target::V3).is_ok(), ok, "v3 data {data}");
        }
        // v3's OCI index entries are v1.Descriptor: no `features`, and its own `annotations`.
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"platform":{"features":1}}]}"#;
        assert!(parse_manifest(index).is_err());
        assert!(parse_manifest_for(index, Target::V3).is_ok());
        let index = br#"{"schemaVersion":2,"manifests":[],"annotations":5}"#;
        assert_eq!(parse_manifest(index).map(|m| m.kind), Ok(ManifestKind::OciIndex));
        assert!(matches!(parse_manifest_for(index, Target::V3), Err(ManifestError::PanicsRegistry(_))));
    }
}
