//! `regaudit timeline`: the events the filter keeps, and the files for a
//! bodyfile.

use crate::model::Target;
use crate::report::timeline::{BodyfileEntry, Filters, TimelineReport};
use crate::report::SCHEMA_VERSION;
use crate::storage::Stamp;
use crate::timeline::{Filter, Source, Timeline};

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
        bodyfile: bodyfile_entries(timeline, filter),
    }
}

/// One bodyfile entry per file with an event the filter keeps, plus one per
/// `startedat` whose own time is kept (that time as its only, modified, time).
fn bodyfile_entries(timeline: &Timeline, filter: &Filter) -> Vec<BodyfileEntry> {
    let mut entries = Vec::new();
    for file in &timeline.files {
        let events = file.events();
        if !events.iter().any(|e| filter.keeps_time(e.time)) {
            continue;
        }
        entries.push(BodyfileEntry { name: format!("{} ({})", file.meaning(), file.path), stat: file.stat.clone() });
        if let Some(e) = events.iter().find(|e| e.source == Source::Startedat && filter.keeps_time(e.time)) {
            let mut only = file.stat.clone();
            only.atime = Stamp { secs: 0, nanos: 0 };
            only.ctime = only.atime;
            only.btime = None;
            only.mtime = e.time;
            let name = format!("{} content: upload started ({})", file.meaning(), file.path);
            entries.push(BodyfileEntry { name, stat: only });
        }
    }
    entries
}
