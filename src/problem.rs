//! Problems: everything wrong or noteworthy in a tree, each with a stable
//! code, a severity, the path it concerns and one sentence.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; not a finding (exit code stays 0).
    Info,
    /// Something is off but nothing a client fetches is broken by it.
    Warning,
    /// A client request would fail or a registry tool would misbehave.
    Error,
}

/// The stable problem codes. Their kebab-case names are part of the JSON
/// contract: add new ones, never rename.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    // What the reader sees on the filesystem.
    Symlink,
    UnexpectedEntry,
    WrongFileType,
    NotRegularFile,
    NonUtf8Name,
    Unreadable,
    NfsLeftover,
    // Blobs.
    BlobWithoutData,
    BlobMisplaced,
    // Repositories.
    RepositoryNameInvalid,
    RepositoryNotInCatalog,
    // Links.
    LinkInvalid,
    LayerLinkDangling,
    LinkAlias,
    SignatureLink,
    RevisionMissingData,
    // Tags.
    TagEmpty,
    TagNameInvalid,
    TagDangling,
    TagHistoryDangling,
    // Manifests and what they reference.
    ManifestUnparseable,
    ManifestUnknownType,
    ConfigUnparseable,
    IndexCycle,
    IndexTooDeep,
    IndexTooLarge,
    ReferenceInvalidDigest,
    ChildMissing,
    ChildNotLinked,
    ConfigMissing,
    ConfigNotLinked,
    LayerMissing,
    LayerNotLinked,
    // Verification (content hashed).
    BlobCorrupt,
    BlobTruncated,
    BlobSizeMismatch,
    /// Changed (size or times) while it was hashed.
    BlobChanged,
    // Uploads.
    UploadWithoutStartedAt,
    UploadStartedAtInvalid,
}

impl Code {
    pub fn severity(self) -> Severity {
        use Code::*;
        match self {
            LinkAlias | SignatureLink | TagHistoryDangling | LayerLinkDangling => Severity::Info,
            Symlink
            | UnexpectedEntry
            | NonUtf8Name
            | NfsLeftover
            | BlobWithoutData
            | RepositoryNotInCatalog
            | TagEmpty
            | UploadWithoutStartedAt
            | UploadStartedAtInvalid => Severity::Warning,
            WrongFileType
            | NotRegularFile
            | Unreadable
            | BlobMisplaced
            | RepositoryNameInvalid
            | LinkInvalid
            | RevisionMissingData
            | TagNameInvalid
            | TagDangling
            | ManifestUnparseable
            | ManifestUnknownType
            | ConfigUnparseable
            | IndexCycle
            | IndexTooDeep
            | IndexTooLarge
            | ReferenceInvalidDigest
            | ChildMissing
            | ChildNotLinked
            | ConfigMissing
            | ConfigNotLinked
            | LayerMissing
            | LayerNotLinked
            | BlobCorrupt
            | BlobTruncated
            | BlobSizeMismatch
            | BlobChanged => Severity::Error,
        }
    }

    pub fn as_str(self) -> String {
        // serde already knows the kebab-case name; reuse it.
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Problem {
    /// Relative to the storage root.
    pub path: String,
    pub code: Code,
    pub severity: Severity,
    pub message: String,
}

impl Problem {
    pub fn new(code: Code, path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem { code, severity: code.severity(), path: path.into(), message: message.into() }
    }
}

/// Sorts problems by path then code and drops exact repeats, so reports are
/// stable whatever order the parallel walk found them in.
pub fn normalize(problems: &mut Vec<Problem>) {
    problems.sort();
    problems.dedup();
}
