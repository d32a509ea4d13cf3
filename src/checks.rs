//! Structural checks: turns the inventory and the resolved manifests into
//! problems. No hashing here; verification adds its own findings.

use rayon::prelude::*;

use crate::contents::Contents;
use crate::digest::Digest;
use crate::inventory::{Inventory, LinkMap, LinkRef, Repository};
use crate::layout;
use crate::manifest::ManifestError;
use crate::model::serve::{Fetch, Server};
use crate::model::Target;
use crate::problem::{Code, Problem};
use crate::resolve::{Cut, Node, Resolver, Role};

pub fn check(inv: &Inventory, contents: &Contents, target: Target) -> Vec<Problem> {
    let server = Server::new(inv, contents, target);
    let resolver = Resolver::new(&server);
    // Repositories are independent: check them in parallel.
    let per_repo: Vec<Vec<Problem>> = inv
        .repositories
        .par_iter()
        .map(|repo| {
            let mut out = Vec::new();
            check_one(&mut out, &server, &resolver, repo, target);
            out
        })
        .collect();
    let mut out = inv.problems.clone();
    out.extend(per_repo.into_iter().flatten());
    crate::problem::normalize(&mut out);
    out
}

/// Every problem of one repository.
fn check_one(out: &mut Vec<Problem>, server: &Server, resolver: &Resolver, repo: &Repository, target: Target) {
    check_repository(out, repo, target);
    check_links(out, server.inv, repo);
    check_tags(out, server, repo);
    // Every revision, tagged or not: a pull by digest must work too.
    for d in repo.revisions.keys() {
        let tree = resolver.manifest(repo, d);
        check_tree(out, server.inv, repo, &tree);
    }
    for (n, upload) in &repo.uploads {
        let path = layout::upload_dir(&repo.name, n);
        match upload.started_at.as_deref() {
            None if unseen(server.inv, &format!("{path}/startedat")) => {}
            None => out.push(Problem::new(
                Code::UploadWithoutStartedAt,
                path,
                "upload has no readable startedat file, so the upload purger never removes it",
            )),
            Some(text) if parse_started_at(text).is_none() => out.push(Problem::new(
                Code::UploadStartedAtInvalid,
                path,
                format!("startedat {text:?} is not an RFC 3339 time, so the upload purger never removes it"),
            )),
            Some(_) => {}
        }
    }
}

/// Whether the walk could not see `rel`: a symlink on the way (which the
/// registry follows) or a read that failed. Then "missing" is not known,
/// and the `symlink` or `unreadable` problem already says why.
fn unseen(inv: &Inventory, rel: &str) -> bool {
    inv.symlink_above(rel).is_some()
        || inv.unreachable(rel).is_some()
        || inv.fault_at(rel).is_some()
        || inv.traversable_above(rel).is_some()
}

/// Parses `startedat` as the registry does (Go's time.RFC3339), to Unix seconds.
pub fn parse_started_at(text: &str) -> Option<i64> {
    crate::gojson::parse_go_rfc3339(text).map(|t| t.timestamp())
}

fn check_repository(out: &mut Vec<Problem>, repo: &Repository, target: Target) {
    let path = layout::repo_dir(&repo.name);
    if !repo.name_is_valid(target) {
        out.push(Problem::new(
            Code::RepositoryNameInvalid,
            &path,
            format!("repository name {:?} breaks the registry's name grammar: it cannot be pulled, and garbage-collect aborts on it", repo.name),
        ));
    }
    if !target.lists_in_catalog(repo) && (repo.has_layers_dir || repo.has_manifests_dir) {
        let marker = target.catalog_marker();
        out.push(Problem::new(
            Code::RepositoryNotInCatalog,
            &path,
            format!("repository has no {marker} directory, so the registry {target} catalog does not list it"),
        ));
    }
}

fn link_problem(out: &mut Vec<Problem>, path: impl FnOnce() -> String, link: LinkRef) -> bool {
    if let Err(e) = link {
        out.push(Problem::new(Code::LinkInvalid, path(), format!("link file {e}")));
        return true;
    }
    false
}

fn check_links(out: &mut Vec<Problem>, inv: &Inventory, repo: &Repository) {
    let layer_dangling = |target: &Digest| {
        (Code::LayerLinkDangling, format!("blob {target} has no data (a garbage-collected blob leaves this behind)"))
    };
    let revision_dangling = |target: &Digest| {
        (Code::RevisionMissingData, format!("manifest {target} has a revision link but no blob data"))
    };
    check_link_map(out, inv, &repo.layer_links, |d| layout::layer_link(&repo.name, d), layer_dangling);
    check_link_map(out, inv, &repo.revisions, |d| layout::revision_link(&repo.name, d), revision_dangling);
    let mut signed: Vec<&Digest> = repo.signature_links.iter().map(|(r, _)| r).collect();
    signed.dedup();
    for r in signed {
        out.push(Problem::new(
            Code::SignatureLink,
            format!("{}/signatures", layout::revision_dir(&repo.name, r)),
            "schema1 signature links from a registry before 2.5: ignored when serving, walked by garbage-collect",
        ));
    }
}

/// Checks one kind of link: valid content, alias, and data behind it.
fn check_link_map(
    out: &mut Vec<Problem>,
    inv: &Inventory,
    links: &LinkMap,
    path_of: impl Fn(&Digest) -> String,
    dangling: impl Fn(&Digest) -> (Code, String),
) {
    for (d, link) in links {
        let Ok(target) = link else {
            link_problem(out, || path_of(d), link);
            continue;
        };
        if target != d {
            let msg = format!("link names {target}, not the digest in its path");
            out.push(Problem::new(Code::LinkAlias, path_of(d), msg));
        }
        if !inv.has_blob(target) && !unseen(inv, &layout::blob_data(target)) {
            let (code, msg) = dangling(target);
            out.push(Problem::new(code, path_of(d), msg));
        }
    }
}

fn check_tags(out: &mut Vec<Problem>, server: &Server, repo: &Repository) {
    for (name, tag) in &repo.tags {
        let dir = || layout::tag_dir(&repo.name, name);
        if !layout::tag_name_is_valid(name) {
            out.push(Problem::new(Code::TagNameInvalid, dir(), format!("tag name {name:?} is refused by the API")));
        }
        for (d, link) in &tag.index {
            let path = || layout::tag_index_link(&repo.name, name, d);
            if !link_problem(out, path, link)
                && !server.inv.has_blob(link.expect("checked"))
                && !unseen(server.inv, &layout::blob_data(link.expect("checked")))
            {
                out.push(Problem::new(
                    Code::TagHistoryDangling,
                    path(),
                    format!("tag {name} once pointed at {d}, whose data is gone"),
                ));
            }
        }
        let current = || layout::tag_current_link(&repo.name, name);
        match &tag.current {
            None if unseen(server.inv, &current()) => {}
            None => out.push(Problem::new(
                Code::TagEmpty,
                dir(),
                format!("tag {name} has no current link: it is listed, but GET returns 404"),
            )),
            Some(link) if link_problem(out, current, link.as_ref()) => {}
            // An unroutable repository name is reported once, for the repository.
            Some(Ok(_)) if !repo.name_is_valid(server.target) => {}
            Some(Ok(d)) => {
                let unknown = |f: &Fetch| {
                    matches!(f, Fetch::Unmodelled(_))
                        || unseen(server.inv, &layout::revision_link(&repo.name, d))
                        || unseen(server.inv, &layout::blob_data(d))
                };
                if let Some(f) = server.locate_manifest(repo, d).err().filter(|f| !unknown(f)) {
                    let reason = f.reason().unwrap_or_default();
                    out.push(Problem::new(
                        Code::TagDangling,
                        current(),
                        format!("tag {name} points at {d}, which the registry cannot find: {reason}"),
                    ));
                }
            }
            Some(Err(_)) => unreachable!("handled by link_problem"),
        }
    }
}

/// Problems of one resolved manifest tree in `repo`. The root's own
/// presence is checked with its revision link.
fn check_tree(out: &mut Vec<Problem>, inv: &Inventory, repo: &Repository, node: &Node) {
    let name = &repo.name;
    let Some(d) = node.parsed_digest.as_ref() else {
        out.push(Problem::new(
            Code::ReferenceInvalidDigest,
            layout::repo_dir(name),
            format!("a manifest in {name} references {:?}, which is not a valid digest", node.digest),
        ));
        return;
    };
    // Paths are spelled out only for a problem: most nodes have none.
    let data = || layout::blob_data(d);
    let link = || layout::layer_link(name, d);
    match node.role {
        Role::Manifest | Role::Child => {
            if node.role == Role::Child && (unseen(inv, &data()) || matches!(node.fetch, Fetch::Unmodelled(_))) {
                // The symlink or unreadable problem says why it is not known.
            } else if node.role == Role::Child && !node.present {
                out.push(Problem::new(
                    Code::ChildMissing,
                    data(),
                    format!("child manifest {d} of an index in {name} has no data"),
                ));
            } else if node.role == Role::Child
                && !node.fetch.is_ok()
                && node.parses != Some(false)
                && !unseen(inv, &layout::revision_link(name, d))
            {
                let reason = node.fetch.reason().unwrap_or_default();
                out.push(Problem::new(
                    Code::ChildNotLinked,
                    layout::revision_link(name, d),
                    format!("child manifest {d} cannot be fetched from {name}: {reason}"),
                ));
            }
            if let Some(e) = &node.manifest_error {
                let code = match e {
                    ManifestError::UnknownSchemaVersion(_) | ManifestError::UnknownMediaType(_) => {
                        Code::ManifestUnknownType
                    }
                    ManifestError::Unreadable(_) | ManifestError::StoreFailed(_) => Code::Unreadable,
                    ManifestError::TooLarge | ManifestError::Malformed(_) | ManifestError::PanicsRegistry(_) => {
                        Code::ManifestUnparseable
                    }
                };
                out.push(Problem::new(code, data(), format!("manifest {d} {e}")));
            }
            if let Some(cut) = node.cut {
                let code = match cut {
                    Cut::Cycle => Code::IndexCycle,
                    Cut::TooDeep => Code::IndexTooDeep,
                    Cut::TooLarge => Code::IndexTooLarge,
                };
                out.push(Problem::new(code, data(), cut.describe(&node.digest)));
            }
        }
        Role::Config | Role::Layer if node.foreign => {}
        Role::Config | Role::Layer => {
            let (missing, unlinked, what) = match node.role {
                Role::Config => (Code::ConfigMissing, Code::ConfigNotLinked, "config"),
                _ => (Code::LayerMissing, Code::LayerNotLinked, "layer"),
            };
            if unseen(inv, &data()) || (node.linked.is_none() && unseen(inv, &link())) {
                // Not known: the symlink or unreadable problem says why.
            } else if !node.present {
                out.push(Problem::new(
                    missing,
                    data(),
                    format!("{what} {d} is used by a manifest in {name} but has no data"),
                ));
            } else if node.linked.is_none() {
                out.push(Problem::new(
                    unlinked,
                    link(),
                    format!("{what} {d} is used by a manifest in {name} but not linked there: a pull gets 404"),
                ));
            }
            if let (Some(false), Some(e)) = (node.parses, &node.error) {
                out.push(Problem::new(Code::ConfigUnparseable, data(), format!("config {d} {e}")));
            }
        }
    }
    for c in &node.children {
        check_tree(out, inv, repo, c);
    }
}
