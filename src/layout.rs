//! The storage layout: what a path under `docker/registry/v2` means, and the
//! paths of every object, relative to the storage root (as all output is).
//!
//! Pure functions only; the tree reader feeds them path components.

use crate::digest::{Algorithm, Digest};
use crate::model::Target;

/// The registry's data directory, relative to the storage root.
pub const V2: &str = "docker/registry/v2";

pub fn repo_dir(repo: &str) -> String {
    format!("{V2}/repositories/{repo}")
}

fn digest_dir(d: &Digest) -> String {
    format!("{}/{}", d.algorithm().name(), d.hex())
}

pub fn blob_dir(d: &Digest) -> String {
    let hex = d.hex();
    format!("{V2}/blobs/{}/{}/{}", d.algorithm().name(), &hex[..2], hex)
}

pub fn blob_data(d: &Digest) -> String {
    format!("{}/data", blob_dir(d))
}

pub fn layer_link(repo: &str, d: &Digest) -> String {
    format!("{}/_layers/{}/link", repo_dir(repo), digest_dir(d))
}

pub fn revision_dir(repo: &str, d: &Digest) -> String {
    format!("{}/_manifests/revisions/{}", repo_dir(repo), digest_dir(d))
}

pub fn revision_link(repo: &str, d: &Digest) -> String {
    format!("{}/link", revision_dir(repo, d))
}

pub fn signature_link(repo: &str, revision: &Digest, signature: &Digest) -> String {
    format!("{}/signatures/{}/link", revision_dir(repo, revision), digest_dir(signature))
}

pub fn tag_dir(repo: &str, tag: &str) -> String {
    format!("{}/_manifests/tags/{tag}", repo_dir(repo))
}

pub fn tag_current_link(repo: &str, tag: &str) -> String {
    format!("{}/current/link", tag_dir(repo, tag))
}

pub fn tag_index_dir(repo: &str, tag: &str, d: &Digest) -> String {
    format!("{}/index/{}", tag_dir(repo, tag), digest_dir(d))
}

pub fn tag_index_link(repo: &str, tag: &str, d: &Digest) -> String {
    format!("{}/link", tag_index_dir(repo, tag, d))
}

pub fn upload_dir(repo: &str, uuid: &str) -> String {
    format!("{}/_uploads/{uuid}", repo_dir(repo))
}

/// What a path inside a repository directory means. `parts` starts at the
/// `_layers`, `_manifests` or `_uploads` component.
#[derive(Debug, PartialEq, Eq)]
pub enum RepoPath<'a> {
    /// A directory the layout expects; it carries no data of its own.
    Dir,
    LayerLink(Digest),
    RevisionLink(Digest),
    /// Schema1 signature links kept by registries before 2.5.
    SignatureLink {
        revision: Digest,
        signature: Digest,
    },
    TagDir(&'a str),
    TagCurrentLink(&'a str),
    TagIndexLink(&'a str, Digest),
    UploadDir(&'a str),
    UploadData(&'a str),
    UploadStartedAt(&'a str),
    UploadHashState(&'a str),
    /// Anything else, with the reason it does not fit the layout.
    Unexpected(&'static str),
}

/// What a path inside `blobs/` means. `parts` starts below `blobs`.
#[derive(Debug, PartialEq, Eq)]
pub enum BlobPath {
    Dir,
    /// `<alg>/<hh>/<hex>`: one blob's directory. `misplaced` when `<hh>` is
    /// not the start of `<hex>`, so the registry would never look there.
    BlobDir {
        digest: Digest,
        misplaced: bool,
    },
    Data {
        digest: Digest,
        misplaced: bool,
    },
    Unexpected(&'static str),
}

const FILE_FOR_DIR: &str = "a file where the layout has a directory";
pub const DIR_FOR_FILE: &str = "a directory where the layout has a file";

/// Shapes a structural check: `want_dir` says which type the layout expects.
fn shaped<T>(is_dir: bool, want_dir: bool, value: T) -> Result<T, &'static str> {
    match (is_dir, want_dir) {
        (true, false) => Err(DIR_FOR_FILE),
        (false, true) => Err(FILE_FOR_DIR),
        _ => Ok(value),
    }
}

fn path_digest(alg: &str, hex: &str) -> Result<Digest, &'static str> {
    let alg = Algorithm::from_name(alg).ok_or("unknown digest algorithm directory")?;
    Digest::from_parts(alg, hex).map_err(|_| "directory name is not a valid digest")
}

fn algorithm_dir(alg: &str) -> Result<(), &'static str> {
    Algorithm::from_name(alg).map(|_| ()).ok_or("unknown digest algorithm directory")
}

pub fn classify_repo_path<'a>(parts: &[&'a str], is_dir: bool) -> RepoPath<'a> {
    use RepoPath::*;
    let r: Result<RepoPath<'a>, &'static str> = (|| match parts {
        ["_layers"] | ["_manifests"] | ["_uploads"] | ["_manifests", "revisions"] | ["_manifests", "tags"] => {
            shaped(is_dir, true, Dir)
        }
        ["_layers", alg] | ["_manifests", "revisions", alg] => {
            algorithm_dir(alg)?;
            shaped(is_dir, true, Dir)
        }
        ["_layers", alg, hex] | ["_manifests", "revisions", alg, hex] => {
            path_digest(alg, hex)?;
            shaped(is_dir, true, Dir)
        }
        ["_layers", alg, hex, "link"] => shaped(is_dir, false, LayerLink(path_digest(alg, hex)?)),
        ["_manifests", "revisions", alg, hex, "link"] => shaped(is_dir, false, RevisionLink(path_digest(alg, hex)?)),
        ["_manifests", "revisions", alg, hex, "signatures", rest @ ..] => {
            let revision = path_digest(alg, hex)?;
            match rest {
                [] => shaped(is_dir, true, Dir),
                [salg] => {
                    algorithm_dir(salg)?;
                    shaped(is_dir, true, Dir)
                }
                [salg, shex] => {
                    path_digest(salg, shex)?;
                    shaped(is_dir, true, Dir)
                }
                [salg, shex, "link"] => {
                    let signature = path_digest(salg, shex)?;
                    shaped(is_dir, false, SignatureLink { revision, signature })
                }
                _ => Err("not part of the registry layout"),
            }
        }
        ["_manifests", "tags", tag] => shaped(is_dir, true, TagDir(tag)),
        ["_manifests", "tags", _, "current"] | ["_manifests", "tags", _, "index"] => shaped(is_dir, true, Dir),
        ["_manifests", "tags", tag, "current", "link"] => shaped(is_dir, false, TagCurrentLink(tag)),
        ["_manifests", "tags", _, "index", alg] => {
            algorithm_dir(alg)?;
            shaped(is_dir, true, Dir)
        }
        ["_manifests", "tags", _, "index", alg, hex] => {
            path_digest(alg, hex)?;
            shaped(is_dir, true, Dir)
        }
        ["_manifests", "tags", tag, "index", alg, hex, "link"] => {
            shaped(is_dir, false, TagIndexLink(tag, path_digest(alg, hex)?))
        }
        ["_uploads", uuid] => shaped(is_dir, true, UploadDir(uuid)),
        ["_uploads", uuid, "data"] => shaped(is_dir, false, UploadData(uuid)),
        ["_uploads", uuid, "startedat"] => shaped(is_dir, false, UploadStartedAt(uuid)),
        ["_uploads", _, "hashstates"] => shaped(is_dir, true, Dir),
        ["_uploads", _, "hashstates", alg] => {
            algorithm_dir(alg)?;
            shaped(is_dir, true, Dir)
        }
        ["_uploads", uuid, "hashstates", _, _] => shaped(is_dir, false, UploadHashState(uuid)),
        _ => Err("not part of the registry layout"),
    })();
    r.unwrap_or_else(Unexpected)
}

/// Whether a repository directory (`parts` as for [`classify_repo_path`])
/// exists only to hold one `link` file. Revision directories do not: old
/// registries kept signature links in them too.
pub fn holds_only_a_link(parts: &[&str]) -> bool {
    matches!(parts, ["_layers", _, _] | ["_manifests", "tags", _, "current"] | ["_manifests", "tags", _, "index", _, _])
}

/// Whether the registry's GC enumerates the `link` files at or below
/// `parts` (as for [`classify_repo_path`]): every one below
/// `_manifests/revisions` (2.8 and v3) and `_layers` (v3's layer check)
/// (registry/storage/linkedblobstore.go `Enumerate`).
pub fn gc_enumerates_links(parts: &[&str]) -> bool {
    matches!(parts, ["_layers", _, ..] | ["_manifests", "revisions", _, ..])
}

/// `<hh>` below an algorithm directory. Checked at every depth, so a blob
/// below a malformed shard is never taken for a canonical one.
fn shard_dir(hh: &str) -> Result<(), &'static str> {
    if hh.len() != 2 || !hh.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err("shard directory is not two lowercase hex characters");
    }
    Ok(())
}

pub fn classify_blob_path(parts: &[&str], is_dir: bool) -> BlobPath {
    use BlobPath::*;
    let r = (|| match parts {
        [alg] => {
            algorithm_dir(alg)?;
            shaped(is_dir, true, Dir)
        }
        [alg, hh] => {
            algorithm_dir(alg)?;
            shard_dir(hh)?;
            shaped(is_dir, true, Dir)
        }
        [alg, hh, hex] => {
            shard_dir(hh)?;
            let digest = path_digest(alg, hex)?;
            let misplaced = !hex.starts_with(hh);
            shaped(is_dir, true, BlobDir { digest, misplaced })
        }
        [alg, hh, hex, "data"] => {
            shard_dir(hh)?;
            let digest = path_digest(alg, hex)?;
            let misplaced = !hex.starts_with(hh);
            shaped(is_dir, false, Data { digest, misplaced })
        }
        _ => Err("not part of the registry layout"),
    })();
    r.unwrap_or_else(Unexpected)
}

/// Go's `reference.ErrNameTooLong`, the same words in 2.8 and v3.
pub const NAME_TOO_LONG: &str = "repository name must not be more than 255 characters";
/// Go's `reference.ErrReferenceInvalidFormat`.
pub const NAME_INVALID_FORMAT: &str = "invalid reference format";

/// Why `reference.WithName` of the target's reference package refuses a
/// repository name ([`Target::repository_name_error`]).
pub fn repository_name_error(name: &str, target: Target) -> Option<&'static str> {
    target.repository_name_error(name)
}

/// Whether `reference.WithName` of the target accepts `name`.
pub fn repository_name_is_valid(name: &str, target: Target) -> bool {
    repository_name_error(name, target).is_none()
}

/// `anchoredNameRegexp` of the target's reference package: the optional
/// domain and the path, as Go's leftmost-first regexp captures them (a
/// first component that is a domain is the domain whenever the rest is a
/// path); None when the name does not match.
pub fn split_repository_name(name: &str, target: Target) -> Option<(Option<&str>, &str)> {
    if name.is_empty() {
        return None;
    }
    let all_components = |path: &str| path.split('/').all(is_name_component);
    if let Some((first, rest)) = name.split_once('/') {
        if is_domain(first, target) && all_components(rest) {
            return Some((Some(first), rest));
        }
    }
    all_components(name).then_some((None, name))
}

/// Whether the storage driver accepts the paths of repository `name`
/// (registry/storage/driver/storagedriver.go `PathRegexp`,
/// `^(/[A-Za-z0-9._-]+)+$`): a name the grammar accepts with `:` (a port)
/// or `[`/`]` (a v3 IPv6 domain) is refused there.
pub fn storage_path_is_valid(name: &str) -> bool {
    name.split('/').all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)))
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn is_name_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: &u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(&b[0]) || !alnum(&b[b.len() - 1]) {
        return false;
    }
    // Every run of separators must be ".", "_", "__" or dashes only.
    b.split(alnum)
        .filter(|s| !s.is_empty())
        .all(|sep| sep == b"." || sep == b"_" || sep == b"__" || sep.iter().all(|&x| x == b'-'))
}

/// `domain-component(\.domain-component)*(:[0-9]+)?`, where a domain
/// component is alphanumeric (any case) with inner dashes; v3 also takes an
/// IPv6 literal `\[[a-fA-F0-9:]+\]` as the host ([`Target::domain_takes_ipv6`]).
fn is_domain(d: &str, target: Target) -> bool {
    let port_ok = |p: Option<&str>| p.is_none_or(|p| !p.is_empty() && p.bytes().all(|x| x.is_ascii_digit()));
    if target.domain_takes_ipv6() && d.starts_with('[') {
        let Some(end) = d.find(']') else { return false };
        let inner = &d[1..end];
        let rest = &d[end + 1..];
        let port = if rest.is_empty() { None } else { rest.strip_prefix(':').or(Some("")) };
        return !inner.is_empty() && inner.bytes().all(|x| x.is_ascii_hexdigit() || x == b':') && port_ok(port);
    }
    let (host, port) = match d.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
    };
    host.split('.').all(component_ok) && port_ok(port)
}

/// Whether the API accepts `tag` as a tag: `[\w][\w.-]{0,127}`.
pub fn tag_name_is_valid(tag: &str) -> bool {
    let b = tag.as_bytes();
    let word = |x: &u8| x.is_ascii_alphanumeric() || *x == b'_';
    !b.is_empty() && b.len() <= 128 && word(&b[0]) && b[1..].iter().all(|x| word(x) || *x == b'.' || *x == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4";

    #[test]
    fn classifies_links() {
        let d = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        assert_eq!(classify_repo_path(&["_layers", "sha256", HEX, "link"], false), RepoPath::LayerLink(d.clone()));
        assert_eq!(
            classify_repo_path(&["_manifests", "revisions", "sha256", HEX, "link"], false),
            RepoPath::RevisionLink(d.clone())
        );
        assert_eq!(
            classify_repo_path(&["_manifests", "tags", "v1", "index", "sha256", HEX, "link"], false),
            RepoPath::TagIndexLink("v1", d.clone())
        );
        assert_eq!(
            classify_repo_path(&["_manifests", "tags", "v1", "current", "link"], false),
            RepoPath::TagCurrentLink("v1")
        );
        assert_eq!(classify_repo_path(&["_manifests", "tags", "v1"], true), RepoPath::TagDir("v1"));
    }

    #[test]
    fn flags_shape_errors() {
        assert_eq!(classify_repo_path(&["_layers", "sha256", HEX, "link"], true), RepoPath::Unexpected(DIR_FOR_FILE));
        assert_eq!(classify_repo_path(&["_layers", "sha256"], false), RepoPath::Unexpected(FILE_FOR_DIR));
        assert!(matches!(classify_repo_path(&["_layers", "md5"], true), RepoPath::Unexpected(_)));
        assert!(matches!(classify_repo_path(&["_layers", "sha256", "XYZ"], true), RepoPath::Unexpected(_)));
        assert!(matches!(classify_repo_path(&["_junk"], true), RepoPath::Unexpected(_)));
    }

    #[test]
    fn classifies_blobs() {
        let d = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        assert_eq!(
            classify_blob_path(&["sha256", "a3", HEX, "data"], false),
            BlobPath::Data { digest: d.clone(), misplaced: false }
        );
        assert_eq!(
            classify_blob_path(&["sha256", "ff", HEX, "data"], false),
            BlobPath::Data { digest: d, misplaced: true }
        );
        assert!(matches!(classify_blob_path(&["sha256", "A3"], true), BlobPath::Unexpected(_)));
    }

    #[test]
    fn tag_names() {
        assert!(tag_name_is_valid("latest"));
        assert!(tag_name_is_valid("_v1.0-rc"));
        assert!(!tag_name_is_valid(".hidden"));
        assert!(!tag_name_is_valid(&"a".repeat(129)));
    }
}
