//! What an export copies: the reference resolved as the registry would
//! serve it, and every blob of its tree with where its data is read from.

use std::collections::HashSet;

use super::ExportError;
use crate::analysis::reference::Reference;
use crate::audit::Audit;
use crate::digest::Digest;
use crate::manifest::{media, ManifestKind};
use crate::report::export::{BlobStatus, ExportedBlob};
use crate::resolve::{Node, Resolver, Role};

/// The media type a registry serves for a manifest kind; an OCI layout's
/// descriptor must carry it. Docker types stay Docker types, so digests match.
pub fn kind_media_type(kind: ManifestKind) -> &'static str {
    match kind {
        ManifestKind::Schema1 => media::SCHEMA1_SIGNED,
        ManifestKind::Schema2 => media::SCHEMA2,
        ManifestKind::DockerList => media::DOCKER_LIST,
        ManifestKind::OciManifest => media::OCI_MANIFEST,
        ManifestKind::OciIndex => media::OCI_INDEX,
    }
}

/// One blob to copy: the digest clients ask for, and the digest whose data
/// the registry reads for it (they differ only through an aliasing link).
pub struct Planned {
    pub wanted: Digest,
    pub source: Digest,
    /// Its entry in [`Plan::blobs`].
    pub index: usize,
}

/// What an export copies, decided from the tree before anything is written.
pub struct Plan {
    pub repository: String,
    /// The manifest index.json names.
    pub digest: Digest,
    pub kind: ManifestKind,
    /// The `org.opencontainers.image.ref.name` annotation.
    pub ref_name: Option<String>,
    /// Every distinct blob of the tree, in tree order (the top manifest first).
    pub blobs: Vec<ExportedBlob>,
    /// The blobs to copy.
    pub copies: Vec<Planned>,
    /// Why each blob that cannot be exported cannot.
    pub failures: Vec<String>,
}

/// Resolves `reference` as the registry would serve it and plans the copy;
/// `name` replaces the tag as the name in index.json.
pub fn plan(audit: &Audit, reference: &Reference, name: Option<String>) -> Result<Plan, ExportError> {
    let repo = audit.repository(reference.repository()).map_err(ExportError::Repository)?;
    let server = audit.server();
    let resolver = Resolver::new(&server);
    let (digest, default_name) = match reference {
        Reference::Tag { tag, .. } => {
            let d = server.tag(repo, tag).map_err(|f| ExportError::TagNotResolved {
                reference: reference.to_string(),
                reason: f.reason().unwrap_or_default().to_string(),
            })?;
            (d, Some(tag.clone()))
        }
        Reference::Digest { digest, .. } => (digest.clone(), None),
    };
    let tree = resolver.manifest(repo, &digest);
    if let Some(reason) = tree.fetch.reason() {
        return Err(ExportError::ManifestNotServed {
            reference: reference.to_string(),
            digest,
            reason: reason.to_string(),
        });
    }
    let Some(kind) = tree.kind else {
        return Err(ExportError::Undecodable { reference: reference.to_string(), digest });
    };
    if let Some(n) = tree.walk().into_iter().find(|n| n.kind == Some(ManifestKind::Schema1)) {
        return Err(ExportError::Schema1 { reference: reference.to_string(), digest: n.digest.clone() });
    }
    let (blobs, copies, failures) = blobs(audit, repo, &tree);
    Ok(Plan { repository: repo.name.clone(), digest, kind, ref_name: name.or(default_name), blobs, copies, failures })
}

/// What to copy, in tree order (the top manifest first), one entry per
/// distinct digest, and why the rest cannot be.
fn blobs(
    audit: &Audit,
    repo: &crate::inventory::Repository,
    tree: &Node,
) -> (Vec<ExportedBlob>, Vec<Planned>, Vec<String>) {
    let server = audit.server();
    let mut seen = HashSet::new();
    let mut blobs = Vec::new();
    let mut planned = Vec::new();
    let mut failures = Vec::new();
    for n in tree.walk() {
        if !seen.insert(n.digest.clone()) {
            continue;
        }
        let mut entry = ExportedBlob {
            role: n.role,
            digest: n.digest.clone(),
            media_type: n.media_type.as_ref().map(|m| m.to_string()),
            size: n.size,
            status: BlobStatus::Copied,
            reason: None,
        };
        if let Some(cut) = n.cut {
            failures.push(cut.describe(&n.digest));
        }
        let source = match (&n.parsed_digest, n.role) {
            _ if n.foreign => {
                entry.status = BlobStatus::Foreign;
                None
            }
            (None, _) => {
                entry.reason = Some(format!("{:?} is not a valid digest", n.digest));
                None
            }
            (Some(_), _) if !n.fetch.is_ok() => {
                entry.reason = n.fetch.reason().map(str::to_string);
                None
            }
            (Some(d), Role::Manifest | Role::Child) => match server.locate_manifest(repo, d) {
                Ok((_, source)) => Some((d.clone(), source)),
                Err(f) => {
                    entry.reason = f.reason().map(str::to_string);
                    None
                }
            },
            (Some(d), Role::Config | Role::Layer) => match repo.layer_links.get(d) {
                Some(Ok(source)) => Some((d.clone(), source.clone())),
                _ => {
                    entry.reason = Some(format!("blob {d} is not linked in {}", repo.name));
                    None
                }
            },
        };
        match source {
            Some((wanted, source)) => planned.push(Planned { wanted, source, index: blobs.len() }),
            None if entry.status == BlobStatus::Foreign => {}
            None => {
                entry.status = BlobStatus::NotServed;
                let why = entry.reason.clone().unwrap_or_default();
                failures.push(format!("{} {}: {why}", n.role.name(), n.digest));
            }
        }
        blobs.push(entry);
    }
    (blobs, planned, failures)
}
