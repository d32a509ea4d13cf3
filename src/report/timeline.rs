//! `regaudit timeline`: the events as a table (local time, or UTC), as
//! JSON, or as a Sleuth Kit bodyfile.

use std::io::{self, Write};

use serde::Serialize;

use super::table::{Cell, Table, BOLD, DIM};
use super::{bodyfile, problems, Report, SCHEMA_VERSION};
use crate::model::Target;
use crate::problem::Problem;
use crate::timeline::{CurrentTag, Event, Filter, Source, Timeline};
use crate::tree::Stamp;

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
    #[serde(skip)]
    bodyfile: Vec<String>,
}

#[derive(Serialize)]
pub struct Filters {
    pub since: Option<String>,
    pub until: Option<String>,
    pub repositories: Vec<String>,
    /// `--tag` globs: only events about matching tags.
    pub tags: Vec<String>,
}

pub fn build(timeline: &Timeline, filter: &Filter, target: Target, utc: bool) -> TimelineReport {
    let stamp = |t: Option<Stamp>| t.map(crate::timeline::rfc3339);
    let tags = timeline
        .tags
        .iter()
        .filter(|t| filter.keeps_repository(&t.repository) && filter.keeps_tag(Some(&t.tag)))
        .cloned()
        .collect();
    TimelineReport {
        schema_version: SCHEMA_VERSION,
        target,
        root: timeline.root.path().display().to_string(),
        filters: Filters {
            since: stamp(filter.since),
            until: stamp(filter.until),
            repositories: filter.select.repos.iter().map(|p| p.as_str().to_string()).collect(),
            tags: filter.select.tags.iter().map(|p| p.as_str().to_string()).collect(),
        },
        tags,
        events: timeline.events(filter),
        problems: timeline.problems.clone(),
        utc,
        bodyfile: bodyfile_lines(timeline, filter),
    }
}

/// One line per file with an event the filter keeps, plus one per
/// `startedat` whose own time is kept (that time as its only, modified, time).
fn bodyfile_lines(timeline: &Timeline, filter: &Filter) -> Vec<String> {
    let mut lines = Vec::new();
    for file in &timeline.files {
        let events = file.events();
        if !events.iter().any(|e| filter.keeps_time(e.time)) {
            continue;
        }
        let mut buf = Vec::new();
        let name = format!("{} ({})", file.meaning(), file.path);
        bodyfile::write_line(&mut buf, "0", &name, &file.stat).expect("writing to memory");
        if let Some(e) = events.iter().find(|e| e.source == Source::Startedat && filter.keeps_time(e.time)) {
            let mut only = file.stat.clone();
            only.atime = Stamp { secs: 0, nanos: 0 };
            only.ctime = only.atime;
            only.btime = None;
            only.mtime = e.time;
            let name = format!("{} content: upload started ({})", file.meaning(), file.path);
            bodyfile::write_line(&mut buf, "0", &name, &only).expect("writing to memory");
        }
        lines.push(String::from_utf8(buf).expect("bodyfile lines are UTF-8"));
    }
    lines
}

impl TimelineReport {
    pub fn findings(&self) -> crate::exit_codes::Findings {
        crate::exit_codes::Findings::default().with_problems(&self.problems)
    }

    /// The bodyfile: for `mactime -b FILE` or plaso.
    pub fn write_bodyfile(&self, out: &mut dyn Write) -> io::Result<()> {
        for line in &self.bodyfile {
            out.write_all(line.as_bytes())?;
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
