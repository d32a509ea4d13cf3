//! `--repo GLOB` and `--tag GLOB`: which repositories and tags a listing
//! shows. Parsed once, from the command line, into a [`Selection`].

use std::collections::{BTreeSet, HashSet};

use glob::Pattern;
use serde::Serialize;

use crate::audit::Audit;
use crate::digest::Digest;
use crate::model::gc::mark::marked_blobs;

/// Repository and tag name globs; an empty list keeps every name.
/// `*` matches `/` too (`base/*` takes `base/app/sub`).
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub repos: Vec<Pattern>,
    pub tags: Vec<Pattern>,
}

impl Selection {
    /// Validates the globs; the error names the option and the glob.
    pub fn parse(repos: &[String], tags: &[String]) -> Result<Selection, String> {
        let parse = |option: &str, globs: &[String]| {
            globs
                .iter()
                .map(|g| Pattern::new(g).map_err(|e| format!("invalid {option} glob {g:?}: {e}")))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Selection { repos: parse("--repo", repos)?, tags: parse("--tag", tags)? })
    }

    pub fn keeps_repository(&self, name: &str) -> bool {
        self.repos.is_empty() || self.repos.iter().any(|p| p.matches(name))
    }

    pub fn keeps_tag(&self, name: &str) -> bool {
        self.tags.is_empty() || self.tags.iter().any(|p| p.matches(name))
    }

    /// The globs as given, for a message.
    pub fn repo_globs(&self) -> String {
        self.repos.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// What `--repo` selects in one tree, for the commands whose analysis covers
/// the whole tree and whose output is filtered (`scan`, `diff`, `gc`,
/// `writes`): the repositories named and the blobs attributed to them.
/// A blob is attributed to a repository that references it (what garbage
/// collection marks for it from all its revisions: the manifests and what
/// they reference, see [`marked_blobs`]) or that links it in `_layers`.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub globs: Vec<String>,
    pub repositories: BTreeSet<String>,
    pub blobs: HashSet<Digest>,
}

/// The `filter` member of a filtered JSON document.
#[derive(Clone, Debug, Serialize)]
pub struct FilterNote {
    /// The `--repo` globs as given.
    pub repo_globs: Vec<String>,
    /// The repositories they select (in either tree, for `diff`).
    pub repositories: Vec<String>,
}

impl Scope {
    /// None without `--repo`; an error when the globs select no repository
    /// of any of `audits` (an empty selection would look like a clean tree).
    pub fn of(select: &Selection, audits: &[&Audit]) -> Result<Option<Scope>, String> {
        if select.repos.is_empty() {
            return Ok(None);
        }
        let mut scope =
            Scope { globs: select.repos.iter().map(|p| p.as_str().to_owned()).collect(), ..Scope::default() };
        for audit in audits {
            let inv = &audit.inventory;
            for repo in inv.repositories.iter().filter(|r| select.keeps_repository(&r.name)) {
                scope.repositories.insert(repo.name.clone());
                scope.blobs.extend(marked_blobs(repo, inv, &audit.contents, audit.target));
                scope.blobs.extend(repo.layer_links.keys().cloned());
                scope.blobs.extend(repo.layer_links.values().filter_map(Result::ok).cloned());
            }
        }
        if scope.repositories.is_empty() {
            let trees = if audits.len() > 1 { "either tree" } else { "this tree" };
            return Err(format!("no repository in {trees} matches --repo {}", select.repo_globs()));
        }
        Ok(Some(scope))
    }

    pub fn note(&self) -> FilterNote {
        FilterNote { repo_globs: self.globs.clone(), repositories: self.repositories.iter().cloned().collect() }
    }

    pub fn keeps_repository(&self, name: &str) -> bool {
        self.repositories.contains(name)
    }

    /// A digest as text (`sha256:…`) attributed to a selected repository.
    pub fn keeps_blob(&self, digest: &str) -> bool {
        Digest::parse(digest).is_ok_and(|d| self.blobs.contains(&d))
    }

    /// A path below the storage root: in a selected repository's directory,
    /// or the directory of an attributed blob. Other paths (the tree's own
    /// directories, blobs no selected repository reaches) are not kept.
    pub fn keeps_path(&self, path: &str) -> bool {
        match place(path) {
            Some(Place::Repository(name)) => self.keeps_repository(&name),
            Some(Place::Blob(digest)) => self.keeps_blob(&digest),
            None => false,
        }
    }
}

/// What a path below the storage root belongs to.
#[derive(Debug, PartialEq, Eq)]
pub enum Place {
    Repository(String),
    /// `alg:hex`.
    Blob(String),
}

/// `docker/registry/v2/repositories/NAME/_x/…` is NAME's (a name has no component that
/// starts with `_`: distribution's reference grammar); `…/blobs/ALG/XX/HEX/…`
/// is blob `ALG:HEX`.
pub fn place(path: &str) -> Option<Place> {
    let rest = path.strip_prefix("docker/registry/v2/").unwrap_or(path);
    if let Some(repo) = rest.strip_prefix("repositories/") {
        let parts: Vec<&str> = repo.split('/').take_while(|c| !c.starts_with('_')).collect();
        let name = parts.join("/");
        return (!name.is_empty()).then_some(Place::Repository(name));
    }
    let mut parts = rest.strip_prefix("blobs/")?.split('/');
    let (alg, _, hex) = (parts.next()?, parts.next()?, parts.next()?);
    Some(Place::Blob(format!("{alg}:{hex}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_keeps_all_and_globs_match_across_slashes() {
        let all = Selection::default();
        assert!(all.keeps_repository("a/b") && all.keeps_tag("x"));
        let s = Selection::parse(&["base/*".into(), "tools".into()], &["v1.*".into()]).unwrap();
        assert!(s.keeps_repository("base/app/sub") && s.keeps_repository("tools"));
        assert!(!s.keeps_repository("tools/x") && !s.keeps_repository("other"));
        assert!(s.keeps_tag("v1.2") && !s.keeps_tag("v2"));
        let err = Selection::parse(&["[".into()], &[]).unwrap_err();
        assert!(err.starts_with("invalid --repo glob \"[\""), "{err}");
    }

    #[test]
    fn paths_belong_to_a_repository_or_a_blob() {
        let repo = |n: &str| Some(Place::Repository(n.into()));
        assert_eq!(place("docker/registry/v2/repositories/nested/a/b/_layers/sha256/x/link"), repo("nested/a/b"));
        assert_eq!(place("docker/registry/v2/repositories/a/_uploads/u/data"), repo("a"));
        assert_eq!(place("docker/registry/v2/repositories/a"), repo("a"));
        let hex = "ab".repeat(32);
        assert_eq!(
            place(&format!("docker/registry/v2/blobs/sha256/ab/{hex}/data")),
            Some(Place::Blob(format!("sha256:{hex}")))
        );
        assert_eq!(place("docker/registry/v2/blobs/sha256"), None);
        assert_eq!(place("docker/registry/v2/scheduler-state.json"), None);
        assert_eq!(place("docker/registry/v2/repositories/x/v2/y/_layers"), repo("x/v2/y"));
    }
}
