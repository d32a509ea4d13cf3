//! Which problems belong to what a report shows.

use std::collections::BTreeSet;

use crate::digest::Digest;
use crate::inventory::Repository;
use crate::layout;
use crate::problem::Problem;

/// The problems of what a report shows: those of the `selected` repositories
/// and those of the blobs in `blobs`. A problem belongs to the deepest
/// repository whose directory holds its path, so a repository's selection
/// does not take in the repositories nested below it (`app/sub` for `app`).
pub fn of_selection<'a>(
    problems: &[Problem],
    repositories: &[Repository],
    selected: &[&str],
    blobs: impl IntoIterator<Item = &'a Digest>,
) -> Vec<Problem> {
    let blob_dirs: BTreeSet<String> = blobs.into_iter().map(layout::blob_dir).collect();
    let repos_dir = format!("{}/repositories/", layout::V2);
    let exists = |name: &str| repositories.binary_search_by(|r| r.name.as_str().cmp(name)).is_ok();
    let owner = |path: &str| -> Option<String> {
        let rel = path.strip_prefix(&repos_dir)?;
        let mut owner = None;
        let mut end = 0;
        for (i, part) in rel.split('/').enumerate() {
            if part.starts_with('_') {
                break;
            }
            end += part.len() + usize::from(i > 0);
            if exists(&rel[..end]) {
                owner = Some(rel[..end].to_string());
            }
        }
        owner
    };
    // A blob's directory is the first seven components of the paths in it
    // (`docker/registry/v2/blobs/<alg>/<hh>/<hex>`).
    let in_blob = |path: &str| {
        let dir = path.match_indices('/').nth(6).map_or(path, |(i, _)| &path[..i]);
        blob_dirs.contains(dir)
    };
    problems
        .iter()
        .filter(|p| in_blob(&p.path) || owner(&p.path).is_some_and(|o| selected.contains(&o.as_str())))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::problem::Code;

    #[test]
    fn nested_repositories_are_not_part_of_their_parent() {
        let repos: Vec<Repository> = ["app", "app/sub"].map(|n| Repository::new(n.into())).into();
        let at = |rel: &str| Problem::new(Code::TagEmpty, format!("{}/repositories/{rel}", layout::V2), "x");
        let all = vec![
            at("app/_manifests/tags/v1"),
            at("app/sub/_manifests/tags/v1"),
            at("app/sub"),
            at("app/stray"),
            at("appx/_layers"),
        ];
        let paths = |ps: Vec<Problem>| ps.into_iter().map(|p| p.path).collect::<Vec<_>>();
        let none: [&Digest; 0] = [];
        let app = paths(of_selection(&all, &repos, &["app"], none));
        assert_eq!(app, [all[0].path.clone(), all[3].path.clone()]);
        let sub = paths(of_selection(&all, &repos, &["app/sub"], none));
        assert_eq!(sub, [all[1].path.clone(), all[2].path.clone()]);
    }

    #[test]
    fn problems_anywhere_in_a_selected_blob_are_kept() {
        let blob: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        let other: Digest = format!("sha256:{}", "ac".repeat(32)).parse().unwrap();
        let at = |d: &Digest, rel: &str| Problem::new(Code::BlobCorrupt, format!("{}{rel}", layout::blob_dir(d)), "x");
        let all = vec![at(&blob, ""), at(&blob, "/data"), at(&blob, "/stray/deeper"), at(&other, "/data")];
        let kept = of_selection(&all, &[], &[], [&blob]);
        assert_eq!(kept, all[..3]);
    }
}
