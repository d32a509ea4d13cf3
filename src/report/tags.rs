//! `regaudit tags`: one row per tag.

use std::io::{self, Write};

use serde::Serialize;

use super::table::{human_size, served_cell, yes_no, Cell, Table, DIM};
use super::{problems, Report};
use crate::digest::Digest;
use crate::model::Target;
use crate::names::{Shown, ShownText};
use crate::problem::Problem;
use crate::resolve::ResolvedTag;

#[derive(Serialize)]
pub struct TagsReport {
    pub schema_version: u32,
    pub target: Target,
    pub root: String,
    pub tags: Vec<ResolvedTag>,
    pub problems: Vec<Problem>,
    /// Present (true) only when Ctrl-C stopped `--verify` early.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// `tags --sort`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SortKey {
    /// Repository, then tag, ascending.
    #[default]
    Name,
    /// Bytes of the tag's tree, largest first.
    Size,
    /// The image's `created`, newest first (tags without one last).
    Created,
    /// Not served first (then unknown, then served).
    Served,
}

impl TagsReport {
    /// Orders the rows; ties keep name order.
    pub fn sort(&mut self, key: SortKey, reverse: bool) {
        use std::cmp::Reverse;
        match key {
            SortKey::Name => {}
            SortKey::Size => self.tags.sort_by_key(|t| Reverse(t.size)),
            // Compared as instants (offsets and precision vary); unparsable ones last.
            SortKey::Created => self.tags.sort_by_cached_key(|t| {
                Reverse(t.created.as_deref().and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok()))
            }),
            SortKey::Served => self.tags.sort_by_key(|t| (t.served, !t.served_unknown)),
        }
        if reverse {
            self.tags.reverse();
        }
    }
}

impl Report for TagsReport {
    fn findings(&self) -> crate::exit_codes::Findings {
        crate::exit_codes::Findings {
            not_served: self.tags.iter().filter(|t| !t.served && !t.served_unknown).count(),
            unknown: if self.tags.iter().any(|t| t.served_unknown) {
                [crate::exit_codes::Condition::NotServed].into()
            } else {
                Default::default()
            },
            damaged: self.tags.iter().filter(|t| t.intact == Some(false)).count(),
            ..Default::default()
        }
        .with_problems(&self.problems)
    }

    fn json_lines(&self) -> Vec<(&'static str, serde_json::Value)> {
        let mut lines = super::rows("tag", &self.tags);
        lines.extend(super::rows("problem", &self.problems));
        if self.interrupted {
            lines.push(("interrupted", serde_json::json!({})));
        }
        lines
    }

    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let verified = self.tags.iter().any(|t| t.intact.is_some());
        let mut headers = vec!["REPOSITORY", "TAG", "DIGEST", "KIND", "PLATFORMS", "CREATED", "SIZE", "SERVED"];
        if verified {
            headers.push("INTACT");
        }
        let with_referrers = self.tags.iter().any(|t| t.referrers > 0);
        if with_referrers {
            headers.push("REFERRERS");
        }
        let row = |t: &ResolvedTag| {
            let (served, style) = served_cell(t.served, t.served_unknown);
            let digest = t.digest.as_ref().map_or_else(|| "-".to_string(), Digest::short);
            let platforms = if t.platforms.is_empty() { "-".to_string() } else { t.platforms.join(",") };
            let mut row = vec![
                Cell::name(&t.repository),
                Cell::name(&t.tag),
                Cell::new(digest),
                Cell::new(t.kind.map(|k| k.name()).unwrap_or("-")),
                Cell::new(platforms),
                Cell::new(t.created.as_deref().unwrap_or("-")),
                Cell::new(human_size(t.size)),
                Cell::styled(served, style),
            ];
            if verified {
                row.push(match t.intact {
                    Some(b) => {
                        let (text, style) = yes_no(b);
                        Cell::styled(text, style)
                    }
                    None => Cell::new("-"),
                });
            }
            if with_referrers {
                row.push(Cell::new(t.referrers.to_string()));
            }
            row
        };
        if self.tags.is_empty() {
            writeln!(out, "No tags.")?;
        } else {
            Table::new(headers).right_align(&[6]).write_streamed(out, || self.tags.iter().map(row))?;
        }
        let groups = [
            (format!("Not served by registry {}:", self.target), false),
            (format!("Not known whether registry {} serves (not modelled):", self.target), true),
        ];
        for (heading, unknown) in groups {
            let listed: Vec<&ResolvedTag> =
                self.tags.iter().filter(|t| !t.served && t.served_unknown == unknown).collect();
            if listed.is_empty() {
                continue;
            }
            writeln!(out, "\n{heading}")?;
            for t in listed {
                writeln!(out, "  {}:{}", Shown(&t.repository), Shown(&t.tag))?;
                for reason in &t.not_served {
                    writeln!(out, "    {}{}{}", DIM.render(), ShownText(reason), DIM.render_reset())?;
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
