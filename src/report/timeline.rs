//! `regaudit timeline`: the events as a table (local time, or UTC), as
//! JSON, or as a Sleuth Kit bodyfile.

use std::io::{self, Write};

use serde::Serialize;

use super::table::{Cell, Table, BOLD, DIM};
use super::{bodyfile, problems, Report};
use crate::analysis::{FileStat, Stamp};
use crate::model::Target;
use crate::problem::Problem;
use crate::timeline::{CurrentTag, Event, Source};

/// Said in the text output and the docs: what a link's time means.
const NOTE: &str = "Link times are the last time the registry wrote the link: it rewrites a tag's index link \
each time the tag is set to that digest, so that time is the last time the tag was set to it, not the first. \
A birth time is when the file was created on this filesystem: by the registry, or by whatever copied the tree here.";

#[derive(Serialize)]
pub struct TimelineReport {
    pub schema_version: u32,
    pub target: Target,
    pub root: String,
    pub filters: Filters,
    /// Every tag's current target, apart from the events.
    pub tags: Vec<CurrentTag>,
    /// Oldest first.
    pub events: Vec<Event>,
    pub problems: Vec<Problem>,
    /// Text only: times in UTC instead of local time.
    #[serde(skip)]
    pub utc: bool,
    /// `--format bodyfile`: one line per entry.
    #[serde(skip)]
    pub bodyfile: Vec<BodyfileEntry>,
}

/// One bodyfile line: what the file is, and its times.
pub struct BodyfileEntry {
    pub name: String,
    pub stat: FileStat,
}

#[derive(Serialize)]
pub struct Filters {
    pub since: Option<String>,
    pub until: Option<String>,
    pub repositories: Vec<String>,
    /// `--tag` globs: only events about matching tags.
    pub tags: Vec<String>,
}

impl TimelineReport {
    /// The bodyfile: for `mactime -b FILE` or plaso.
    pub fn write_bodyfile(&self, out: &mut dyn Write) -> io::Result<()> {
        for entry in &self.bodyfile {
            bodyfile::write_line(out, "0", &entry.name, &entry.stat)?;
        }
        Ok(())
    }

    fn time(&self, t: Stamp) -> String {
        let Some(utc) = chrono::DateTime::from_timestamp(t.secs, t.nanos) else {
            return crate::timeline::rfc3339(t);
        };
        if self.utc {
            utc.format("%Y-%m-%d %H:%M:%S%.6f UTC").to_string()
        } else {
            utc.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S%.6f %:z").to_string()
        }
    }
}

fn source_word(s: Source) -> &'static str {
    match s {
        Source::Mtime => "mtime",
        Source::Birth => "birth",
        Source::Startedat => "startedat",
    }
}

impl Report for TimelineReport {
    fn findings(&self) -> crate::exit_codes::Findings {
        crate::exit_codes::Findings::default().with_problems(&self.problems)
    }

    fn json_lines(&self) -> Vec<(&'static str, serde_json::Value)> {
        let mut lines = super::rows("event", &self.events);
        lines.extend(super::rows("current-tag", &self.tags));
        lines.extend(super::rows("problem", &self.problems));
        lines
    }

    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "{}{} events{}", BOLD.render(), self.events.len(), BOLD.render_reset())?;
        writeln!(out, "{}{NOTE}{}", DIM.render(), DIM.render_reset())?;
        if !self.events.is_empty() {
            writeln!(out)?;
            let mut table = Table::new(vec!["TIME", "FROM", "EVENT"]);
            for e in &self.events {
                table.push(vec![
                    Cell::new(self.time(e.time)),
                    Cell::styled(source_word(e.source), DIM),
                    Cell::new(&e.description),
                ]);
            }
            table.write(out)?;
        }
        if !self.tags.is_empty() {
            writeln!(out)?;
            writeln!(out, "{}Current tags{}", BOLD.render(), BOLD.render_reset())?;
            let mut table = Table::new(vec!["TAG", "DIGEST", "SET"]);
            for t in &self.tags {
                table.push(vec![
                    Cell::new(format!("{}:{}", t.repository, t.tag)),
                    Cell::new(t.digest.as_deref().unwrap_or("(no valid current link)")),
                    Cell::new(t.set_at.map(|s| self.time(s)).unwrap_or_else(|| "-".into())),
                ]);
            }
            table.write(out)?;
        }
        writeln!(out)?;
        problems::write(&self.problems, out)
    }
}
