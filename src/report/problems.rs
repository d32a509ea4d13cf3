//! The problems section shared by every text report.

use std::collections::BTreeSet;
use std::io::{self, Write};

use super::table::{Cell, Table, BAD, BOLD, DIM, WARN};
use crate::digest::Digest;
use crate::inventory::Repository;
use crate::layout;
use crate::problem::{Problem, Severity};

fn severity_cell(s: Severity) -> Cell {
    match s {
        Severity::Error => Cell::styled("error", BAD),
        Severity::Warning => Cell::styled("warning", WARN),
        Severity::Info => Cell::styled("info", DIM),
    }
}

pub fn count_line(problems: &[Problem]) -> String {
    let count = |s| problems.iter().filter(|p| p.severity == s).count();
    let plural = |n: usize, word: &str| if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") };
    format!(
        "{}: {}, {}, {} info",
        plural(problems.len(), "problem"),
        plural(count(Severity::Error), "error"),
        plural(count(Severity::Warning), "warning"),
        count(Severity::Info)
    )
}

pub fn write(problems: &[Problem], out: &mut dyn Write) -> io::Result<()> {
    if problems.is_empty() {
        return writeln!(out, "No problems found.");
    }
    writeln!(out, "{}{}{}", BOLD.render(), count_line(problems), BOLD.render_reset())?;
    let mut table = Table::new(vec!["SEVERITY", "CODE", "PATH"]);
    for p in problems {
        table.push(vec![severity_cell(p.severity), Cell::new(p.code.as_str()), Cell::name(&p.path)]);
        table.push(vec![Cell::new(""), Cell::new(""), Cell::styled(format!("  {}", p.message), DIM)]);
    }
    table.write(out)
}

/// Problems grouped by code, most severe first: a count per code, then a
/// few examples (every one with `--verbose`), paths and digests short and
/// messages wrapped to fit 100 columns.
pub fn write_grouped(problems: &[Problem], out: &mut dyn Write) -> io::Result<()> {
    use super::{short_digests, short_path, verbose, wrap, TEXT_WIDTH};
    const EXAMPLES: usize = 3;
    if problems.is_empty() {
        return writeln!(out, "No problems found.");
    }
    writeln!(out, "{}{}{}", BOLD.render(), count_line(problems), BOLD.render_reset())?;
    let mut codes: Vec<(Severity, String)> =
        problems.iter().map(|p| (p.severity, p.code.as_str().to_string())).collect();
    codes.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    codes.dedup();
    for (severity, code) in codes {
        let of_code: Vec<&Problem> =
            problems.iter().filter(|p| p.severity == severity && p.code.as_str() == code).collect();
        let cell = severity_cell(severity);
        writeln!(
            out,
            "  {}{}{} {code} ({})",
            cell.style.render(),
            cell.text,
            cell.style.render_reset(),
            of_code.len()
        )?;
        let n = if verbose() || of_code.len() <= EXAMPLES + 1 { of_code.len() } else { EXAMPLES };
        for p in &of_code[..n] {
            writeln!(out, "    {}", short_path(&crate::names::escape(&p.path)))?;
            let message = short_digests(&crate::names::ShownText(&p.message).to_string());
            let message: Vec<String> = message.split(' ').map(short_path).collect();
            for line in wrap(&message.join(" "), "      ", TEXT_WIDTH) {
                writeln!(out, "{}{line}{}", DIM.render(), DIM.render_reset())?;
            }
        }
        if of_code.len() > n {
            writeln!(
                out,
                "    {}… {} more (-v lists all; --format json too){}",
                DIM.render(),
                of_code.len() - n,
                DIM.render_reset()
            )?;
        }
    }
    Ok(())
}

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
