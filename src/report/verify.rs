//! `regaudit verify`: every blob hashed, and which tags each damaged or
//! missing blob breaks.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};

use serde::Serialize;

use super::table::{human_size, Cell, Table, BAD, BOLD};
use super::tags::{for_each_tag, short};
use super::{problems, Report, SCHEMA_VERSION};
use crate::audit::Audit;
use crate::digest::Digest;
use crate::model::Target;
use crate::names;
use crate::problem::Problem;
use crate::resolve::Resolver;
use crate::verify::Outcome;

#[derive(Serialize)]
pub struct VerifyReport {
    pub schema_version: u32,
    pub target: Target,
    pub root: String,
    /// The repositories verified; empty means all blobs of the tree.
    pub repositories: Vec<String>,
    pub blobs_checked: usize,
    pub bytes_hashed: u64,
    /// True when Ctrl-C stopped hashing early: the report covers what was done.
    pub interrupted: bool,
    pub intact: usize,
    /// Every blob that is not intact, and every referenced blob with no data.
    pub damaged: Vec<Damaged>,
    pub problems: Vec<Problem>,
}

#[derive(Serialize)]
pub struct Damaged {
    pub digest: String,
    /// Size of the data; null when missing.
    pub size: Option<u64>,
    /// `missing`, `corrupt`, `truncated`, `unreadable` or `size-mismatch`.
    pub state: &'static str,
    /// The tags (`repo:tag`) whose pull this breaks.
    pub breaks: Vec<String>,
}

/// The blobs to hash: all of the tree, or what the given repositories reach
/// from their revisions and link in `_layers`.
pub fn blobs_to_verify(audit: &Audit, filter: &[String]) -> BTreeSet<Digest> {
    if filter.is_empty() {
        return audit.inventory.blobs.keys().cloned().collect();
    }
    let server = audit.server();
    let resolver = Resolver::new(&server);
    let mut out = BTreeSet::new();
    for repo in audit.inventory.repositories.iter().filter(|r| filter.contains(&r.name)) {
        for d in repo.revisions.keys() {
            out.extend(resolver.manifest(repo, d).digests().cloned());
        }
        out.extend(repo.layer_links.values().filter_map(Result::ok).cloned());
    }
    out
}

pub fn build(audit: &Audit, filter: &[String]) -> VerifyReport {
    let v = audit.verification.as_ref().expect("verify runs before its report");
    // Which tags reach each digest, and which reached digests have no data.
    let mut breaks: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    let mut missing: BTreeSet<Digest> = BTreeSet::new();
    for_each_tag(audit, filter, |t| {
        let Some(tree) = &t.tree else { return };
        for n in tree.walk() {
            if let Some(d) = &n.parsed_digest {
                breaks.entry(d.clone()).or_default().push(format!("{}:{}", t.repository, t.tag));
                if !n.present && !n.foreign {
                    missing.insert(d.clone());
                }
            }
        }
    });
    let tags_of = |d: &Digest| {
        let mut t = breaks.get(d).cloned().unwrap_or_default();
        t.dedup();
        t
    };
    let mut damaged: Vec<Damaged> = missing
        .iter()
        .map(|d| Damaged { digest: d.to_string(), size: None, state: "missing", breaks: tags_of(d) })
        .collect();
    damaged.extend(v.blobs.values().filter(|c| !c.is_intact() && c.outcome != Outcome::NotChecked).map(|c| Damaged {
        digest: c.digest.to_string(),
        size: Some(c.size),
        state: c.state(),
        breaks: tags_of(&c.digest),
    }));
    VerifyReport {
        schema_version: SCHEMA_VERSION,
        target: audit.target,
        root: audit.root.path().display().to_string(),
        repositories: filter.to_vec(),
        blobs_checked: v.blobs.values().filter(|c| c.outcome != Outcome::NotChecked).count(),
        bytes_hashed: v.bytes_hashed,
        interrupted: v.interrupted,
        intact: v.blobs.values().filter(|c| c.is_intact()).count(),
        damaged,
        // Given repositories, the problems shown (and counted) are theirs
        // and those of the blobs hashed for them.
        problems: if filter.is_empty() {
            audit.problems.clone()
        } else {
            let selected: Vec<&str> = filter.iter().map(String::as_str).collect();
            problems::of_selection(&audit.problems, &audit.inventory.repositories, &selected, v.blobs.keys())
        },
    }
}

impl VerifyReport {
    pub fn findings(&self) -> crate::exit_codes::Findings {
        crate::exit_codes::Findings { damaged: self.damaged.len(), interrupted: self.interrupted, ..Default::default() }
            .with_problems(&self.problems)
    }
}

impl Report for VerifyReport {
    fn json_lines(&self) -> Vec<(&'static str, serde_json::Value)> {
        let mut lines = super::rows("damaged", &self.damaged);
        lines.extend(super::rows("problem", &self.problems));
        let summary = serde_json::json!({
            "repositories": self.repositories,
            "blobs_checked": self.blobs_checked,
            "bytes_hashed": self.bytes_hashed,
            "intact": self.intact,
            "damaged": self.damaged.len(),
            "interrupted": self.interrupted,
        });
        lines.push(("summary", summary));
        lines
    }

    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "{}Verified {} blobs, {}{}: {} intact, {} damaged or missing.{}",
            BOLD.render(),
            self.blobs_checked,
            human_size(self.bytes_hashed),
            if self.interrupted { " before it was interrupted" } else { "" },
            self.intact,
            self.damaged.len(),
            BOLD.render_reset()
        )?;
        if !self.damaged.is_empty() {
            writeln!(out)?;
            let mut table = Table::new(vec!["STATE", "DIGEST", "SIZE", "BREAKS"]).right_align(&[2]);
            for d in &self.damaged {
                let breaks = if d.breaks.is_empty() {
                    "no tag".to_string()
                } else {
                    d.breaks.iter().map(|b| names::escape(b)).collect::<Vec<_>>().join(", ")
                };
                table.push(vec![
                    Cell::styled(d.state, BAD),
                    Cell::name(short(&d.digest)),
                    Cell::new(d.size.map(human_size).unwrap_or_else(|| "-".into())),
                    Cell::new(breaks),
                ]);
            }
            table.write(out)?;
        }
        writeln!(out)?;
        problems::write(&self.problems, out)
    }
}
