//! What a registry serving this tree unchanged answers to a client that
//! accepts all four modern manifest types (schema2, Docker list, OCI manifest,
//! OCI index). Rules: docs/registry-rules.md §4, and §7 for read faults;
//! what differs by version comes from [`super::rules`].

use serde::Serialize;

use super::Target;
use crate::contents::Contents;
use crate::digest::{Digest, LinkError};
use crate::inventory::{FaultOp, Inventory, LinkRef, Repository};
use crate::layout;
use crate::manifest::{Manifest, ManifestError};

/// The outcome of one GET, with the reason when it is not 200.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "kebab-case")]
pub enum Fetch {
    Ok,
    /// 404 (or 400 for a name the router refuses).
    NotFound(String),
    /// 500: the registry fails on what it reads.
    ServerError(String),
    /// No answer: the request panics the registry's handler and the
    /// connection is dropped (net/http recovers the panic without a reply).
    NoAnswer(String),
    /// Not known: the registry follows a symlink regaudit does not, or
    /// reads what regaudit could not.
    Unmodelled(String),
}

impl Fetch {
    pub fn is_ok(&self) -> bool {
        matches!(self, Fetch::Ok)
    }

    pub fn http_status(&self) -> u16 {
        match self {
            Fetch::Ok => 200,
            Fetch::NotFound(_) => 404,
            Fetch::ServerError(_) => 500,
            // The connection is dropped; for Unmodelled no status can be given.
            Fetch::NoAnswer(_) | Fetch::Unmodelled(_) => 0,
        }
    }

    /// The answer for people: the status, or what stands for one.
    pub fn status_text(&self) -> String {
        match self {
            Fetch::NoAnswer(_) => "no answer".into(),
            Fetch::Unmodelled(_) => "not modelled".into(),
            other => other.http_status().to_string(),
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Fetch::Ok => None,
            Fetch::NotFound(r) | Fetch::ServerError(r) | Fetch::NoAnswer(r) | Fetch::Unmodelled(r) => Some(r),
        }
    }
}

/// Which link let the registry find a manifest or blob in a repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkedBy {
    Revision,
    Layers,
}

pub struct Server<'a> {
    pub inv: &'a Inventory,
    pub contents: &'a Contents,
    pub target: Target,
}

/// Follows the first link that exists, like the registry's linked blob
/// statter: a missing link tries the next one, an invalid one is an error
/// (`path_of` names it then).
fn follow<'l>(
    inv: &Inventory,
    candidates: impl IntoIterator<Item = (LinkedBy, Option<LinkRef<'l>>)>,
    path_of: impl Fn(LinkedBy) -> String,
) -> Result<(LinkedBy, &'l Digest), Fetch> {
    for (by, link) in candidates {
        match link {
            None => match read_error(inv, &path_of(by)) {
                Some(f) => return Err(f),
                None => continue,
            },
            Some(Ok(d)) => return Ok((by, d)),
            Some(Err(e)) => return Err(link_failure(&path_of(by), e)),
        }
    }
    Err(Fetch::NotFound("not linked in the repository".into()))
}

/// The link of `d` in `repo` of that kind, as the walk read it.
fn link_of<'r>(repo: &'r Repository, d: &Digest, by: LinkedBy) -> Option<LinkRef<'r>> {
    match by {
        LinkedBy::Revision => repo.revisions.get(d),
        LinkedBy::Layers => repo.layer_links.get(d),
    }
}

fn link_path(repo: &Repository, d: &Digest, by: LinkedBy) -> String {
    match by {
        LinkedBy::Revision => layout::revision_link(&repo.name, d),
        LinkedBy::Layers => layout::layer_link(&repo.name, d),
    }
}

/// A file the registry reads at `rel` and cannot (the walk could not read
/// it, or cannot reach it): any error but "not found" is a 500 (seen with
/// 2.8.2 and 3.1.1 run as a user who cannot read it).
pub fn read_error(inv: &Inventory, rel: &str) -> Option<Fetch> {
    if let Some(s) = inv.symlink_above(rel) {
        let reading = if s == rel { String::new() } else { format!(" to read {rel}") };
        return Some(Fetch::Unmodelled(format!(
            "{s} is a symbolic link, which the registry follows{reading}; regaudit does not, so the answer is not known"
        )));
    }
    if let Some(f) = inv.fault_at(rel).filter(|f| f.vanished) {
        return Some(Fetch::Unmodelled(format!(
            "{} vanished while the tree was read; the answer is not known",
            f.path
        )));
    }
    if let Some(f) = inv.traversable_above(rel) {
        return Some(Fetch::Unmodelled(format!(
            "{} cannot be listed ({}), but the registry reads {rel} through it; the answer is not known",
            f.path, f.error
        )));
    }
    if inv.is_link_dir(rel) {
        return Some(Fetch::ServerError(format!(
            "{rel} is a directory, not a link: reading it fails and the registry answers 500"
        )));
    }
    let f = inv.unreachable(rel).or_else(|| inv.fault_at(rel).filter(|f| f.op != FaultOp::List && !f.vanished))?;
    let reading = if f.path == rel { String::new() } else { format!(" on the way to {rel}") };
    Some(Fetch::ServerError(format!("{} cannot be read ({}){reading}: the registry fails with 500", f.path, f.error)))
}

/// What reading an invalid link costs a request: the registry fails (500).
pub fn link_failure(path: &str, e: &LinkError) -> Fetch {
    Fetch::ServerError(format!("link {path} {e}"))
}

impl<'a> Server<'a> {
    pub fn new(inv: &'a Inventory, contents: &'a Contents, target: Target) -> Server<'a> {
        Server { inv, contents, target }
    }

    fn routable(&self, repo: &Repository) -> Result<(), Fetch> {
        if !repo.name_is_valid(self.target) {
            Err(Fetch::NotFound(format!("the API refuses the repository name {:?}", repo.name)))
        } else if !layout::storage_path_is_valid(&repo.name) {
            // Routed, but every path of it fails the driver's PathRegexp (seen: 500 in 2.8.2 and 3.1.1).
            Err(Fetch::ServerError(format!(
                "the storage driver refuses the paths of repository {:?} (a character outside [A-Za-z0-9._-]): \
                 the registry answers 500",
                repo.name
            )))
        } else {
            Ok(())
        }
    }

    /// Resolves a manifest digest in a repository to the digest whose data
    /// the registry reads, and the link it went through.
    pub fn locate_manifest(&self, repo: &Repository, d: &Digest) -> Result<(LinkedBy, Digest), Fetch> {
        self.routable(repo)?;
        let candidates = self.target.manifest_links().iter().map(|&by| (by, link_of(repo, d, by)));
        let (by, target) = follow(self.inv, candidates, |by| link_path(repo, d, by)).map_err(|f| match f {
            Fetch::NotFound(_) => Fetch::NotFound(format!("manifest {d} is not linked in {}", repo.name)),
            other => other,
        })?;
        if !self.inv.has_blob(target) {
            if let Some(f) = read_error(self.inv, &layout::blob_data(target)) {
                return Err(f);
            }
            return Err(Fetch::NotFound(format!("manifest {target} has no blob data")));
        }
        Ok((by, target.clone()))
    }

    /// GET /v2/<repo>/manifests/<digest>.
    pub fn manifest(&self, repo: &Repository, d: &Digest) -> (Fetch, Option<&'a Manifest>) {
        let target = match self.locate_manifest(repo, d) {
            Ok((_, t)) => t,
            Err(f) => return (f, None),
        };
        match self.contents.manifest(&target) {
            Some(Ok(m)) => (self.accepts(m), Some(m)),
            Some(Err(e @ ManifestError::PanicsRegistry(_))) => {
                (Fetch::NoAnswer(manifest_error_reason(&target, e)), None)
            }
            Some(Err(e @ ManifestError::StoreFailed(_))) => {
                (Fetch::Unmodelled(manifest_error_reason(&target, e)), None)
            }
            Some(Err(e)) => (Fetch::ServerError(manifest_error_reason(&target, e)), None),
            None => (Fetch::ServerError(format!("manifest {target} was not loaded")), None),
        }
    }

    /// What the target does with a decoded manifest for a modern client.
    fn accepts(&self, m: &Manifest) -> Fetch {
        match self.target.refuses_kind(m.kind) {
            Some(why) => Fetch::ServerError(why.into()),
            None => Fetch::Ok,
        }
    }

    /// GET /v2/<repo>/manifests/<tag>: the digest the tag resolves to.
    pub fn tag(&self, repo: &Repository, tag: &str) -> Result<Digest, Fetch> {
        self.routable(repo)?;
        if !layout::tag_name_is_valid(tag) {
            return Err(Fetch::NotFound(format!("the API refuses the tag name {tag:?}")));
        }
        match repo.tags.get(tag).and_then(|t| t.current.as_ref()) {
            None => match read_error(self.inv, &layout::tag_current_link(&repo.name, tag)) {
                Some(f) => Err(f),
                None => Err(Fetch::NotFound(format!("tag {tag} has no current link"))),
            },
            Some(Err(e)) => Err(link_failure(&layout::tag_current_link(&repo.name, tag), e)),
            Some(Ok(d)) => Ok(d.clone()),
        }
    }

    /// GET /v2/<repo>/blobs/<digest>: needs the repository's `_layers` link
    /// and the global data. Content is not re-hashed when serving.
    pub fn blob(&self, repo: &Repository, d: &Digest) -> Fetch {
        if let Err(f) = self.routable(repo) {
            return f;
        }
        match follow(self.inv, [(LinkedBy::Layers, repo.layer_links.get(d))], |by| link_path(repo, d, by)) {
            Err(Fetch::NotFound(_)) => Fetch::NotFound(format!("blob {d} is not linked in {}", repo.name)),
            Err(f) => f,
            Ok((_, target)) if !self.inv.has_blob(target) => read_error(self.inv, &layout::blob_data(target))
                .unwrap_or_else(|| Fetch::NotFound(format!("blob {target} has no data"))),
            Ok(_) => Fetch::Ok,
        }
    }
}

pub fn manifest_error_reason(d: &Digest, e: &ManifestError) -> String {
    format!("manifest {d} {e}")
}
