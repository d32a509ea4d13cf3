//! `regaudit tags`: one row per tag.

use std::io::{self, Write};

use serde::Serialize;

use super::table::{human_size, yes_no, Cell, Table, DIM};
use super::{problems, Report, SCHEMA_VERSION};
use crate::audit::Audit;
use crate::model::Target;
use crate::problem::Problem;
use crate::resolve::{ResolvedTag, Resolver};

#[derive(Serialize)]
pub struct TagsReport {
    pub schema_version: u32,
    pub target: Target,
    pub root: String,
    pub tags: Vec<ResolvedTag>,
    pub problems: Vec<Problem>,
}

/// Unknown repository names in the filter, for a clear error.
pub fn unknown_repositories<'a>(audit: &Audit, filter: &'a [String]) -> Vec<&'a str> {
    filter.iter().filter(|r| audit.inventory.repository(r).is_none()).map(String::as_str).collect()
}

pub fn build(audit: &Audit, filter: &[String]) -> TagsReport {
    let server = audit.server();
    let resolver = Resolver::new(&server);
    let tags = audit
        .inventory
        .repositories
        .iter()
        .filter(|r| filter.is_empty() || filter.contains(&r.name))
        .flat_map(|repo| repo.tags.keys().map(|t| resolver.tag(repo, t)).collect::<Vec<_>>())
        .collect();
    TagsReport {
        schema_version: SCHEMA_VERSION,
        target: audit.target,
        root: audit.root.path().display().to_string(),
        tags,
        problems: audit.problems.clone(),
    }
}

impl TagsReport {
    pub fn has_findings(&self) -> bool {
        self.problems.iter().any(Problem::is_finding) || self.tags.iter().any(|t| !t.served)
    }
}

impl Report for TagsReport {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut table =
            Table::new(vec!["REPOSITORY", "TAG", "DIGEST", "KIND", "PLATFORMS", "CREATED", "SIZE", "SERVED"])
                .right_align(&[6]);
        for t in &self.tags {
            let (served, style) = yes_no(t.served);
            let digest = t.digest.as_deref().map(short).unwrap_or("-");
            let platforms = if t.platforms.is_empty() { "-".to_string() } else { t.platforms.join(",") };
            table.push(vec![
                Cell::new(&t.repository),
                Cell::new(&t.tag),
                Cell::new(digest),
                Cell::new(t.kind.map(|k| k.name()).unwrap_or("-")),
                Cell::new(platforms),
                Cell::new(t.created.as_deref().unwrap_or("-")),
                Cell::new(human_size(t.size)),
                Cell::styled(served, style),
            ]);
        }
        if self.tags.is_empty() {
            writeln!(out, "No tags.")?;
        } else {
            table.write(out)?;
        }
        let unserved: Vec<&ResolvedTag> = self.tags.iter().filter(|t| !t.served).collect();
        if !unserved.is_empty() {
            writeln!(out, "\nNot served by registry {}:", self.target)?;
            for t in unserved {
                writeln!(out, "  {}:{}", t.repository, t.tag)?;
                for reason in &t.not_served {
                    writeln!(out, "    {}{reason}{}", DIM.render(), DIM.render_reset())?;
                }
            }
        }
        writeln!(out)?;
        problems::write(&self.problems, out)
    }
}

/// `sha256:` plus the first 12 hex characters.
pub fn short(digest: &str) -> &str {
    match digest.find(':') {
        Some(i) if digest.len() > i + 13 => &digest[..i + 13],
        _ => digest,
    }
}
