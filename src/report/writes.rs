//! `regaudit writes`: every write a registry serving this tree would make,
//! and the verdict on serving it from a read-only volume.

use std::io::{self, Write};

use serde::Serialize;

use super::table::{human_size, Cell, Table, BAD, BOLD, DIM, GOOD, WARN};
use super::{plural, plural_s, short_digests, short_path, shown, wrap, write_more, Report, EXAMPLES, TEXT_WIDTH};
use crate::model::writes::{Kind, Operation, ProxyState};
use crate::model::Target;
use crate::names::{Shown, ShownText};

#[derive(Serialize)]
pub struct WritesReport {
    pub schema_version: u32,
    pub target: Target,
    pub root: String,
    /// The time the prediction is made for (RFC 3339).
    pub now: String,
    /// The upload purge age, as given.
    pub purge_age: String,
    pub operations: Vec<Operation>,
    /// Present when the tree holds `scheduler-state.json` (a pull-through cache).
    pub proxy: Option<ProxyState>,
    /// Symlinks and read faults whose effect is not modelled.
    pub unmodelled: Vec<String>,
    /// Of the operations shown (with `--repo`, those on the selected repositories).
    pub summary: Summary,
    /// Null without `--repo`; else what it selects and the whole prediction's summary.
    pub filter: Option<WritesFilter>,
}

/// `--repo`: the operations shown are those on the selected repositories.
#[derive(Serialize)]
pub struct WritesFilter {
    #[serde(flatten)]
    pub scope: crate::select::FilterNote,
    pub whole_run: Summary,
}

#[derive(Default, Serialize)]
pub struct Summary {
    /// No operation writes anything, and nothing is unmodelled.
    pub serves_read_only: bool,
    /// Something is unmodelled: the verdict cannot be given (exit 2).
    pub incomplete: bool,
    pub operations: usize,
    pub writing_operations: usize,
    /// Writing operations that need something only a client can hold (an upload's token).
    pub conditional_operations: usize,
    /// Writes summed over operations (each predicted on its own, so a file may count more than once).
    pub creates: usize,
    pub modifies: usize,
    pub deletes: usize,
}

/// A written path as text shows it: below the operation's repository
/// directory (`_uploads/…`, `_layers/…`), else below `docker/registry/v2/`,
/// so that a line fits [`TEXT_WIDTH`] columns.
fn shown_path<'a>(path: &'a str, repository: &str) -> &'a str {
    let v2 = path.find("docker/registry/v2/").map_or(path, |i| &path[i + "docker/registry/v2/".len()..]);
    match v2.strip_prefix("repositories/").and_then(|r| r.strip_prefix(repository)) {
        Some(rest) if rest.starts_with("/_") => &rest[1..],
        _ => v2,
    }
}

/// `path` after `head`, broken after a `/` onto lines indented under the
/// path's start when it is wider than `width` (a long repository name).
fn fit_path(path: &str, head: &str, width: usize) -> Vec<String> {
    use unicode_width::UnicodeWidthStr;
    let indent = " ".repeat(head.width());
    let mut lines = Vec::new();
    let mut line = head.to_string();
    let mut empty = true;
    for part in path.split_inclusive('/') {
        if !empty && line.width() + part.width() > width {
            lines.push(std::mem::replace(&mut line, indent.clone()));
        }
        line.push_str(part);
        empty = false;
    }
    lines.push(line);
    lines
}

/// A reference in the table of every operation: a digest to 12 hex digits,
/// an upload UUID to 8 (the sections below and JSON have them whole), so
/// that rows fit [`TEXT_WIDTH`].
fn short_reference(reference: &str) -> String {
    let is_uuid = reference.len() == 36
        && reference.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    if is_uuid {
        format!("{}…", &reference[..8])
    } else {
        short_digests(reference)
    }
}

fn status_text(op: &Operation) -> String {
    match (op.status, op.read_only_status) {
        (Some(s), Some(r)) if s != r => format!("{s} (ro {r})"),
        (Some(s), _) => s.to_string(),
        _ => "-".into(),
    }
}

/// Operations grouped by kind, in first-seen order.
fn by_kind<'a>(ops: &[&'a Operation]) -> Vec<(&'static str, Vec<&'a Operation>)> {
    let mut groups: Vec<(&'static str, Vec<&Operation>)> = Vec::new();
    for op in ops {
        match groups.iter_mut().find(|(k, _)| *k == op.kind.name()) {
            Some((_, g)) => g.push(op),
            None => groups.push((op.kind.name(), vec![op])),
        }
    }
    groups
}

impl Report for WritesReport {
    fn findings(&self) -> crate::exit_codes::Findings {
        let unknown =
            if self.summary.incomplete { [crate::exit_codes::Condition::Writes].into() } else { Default::default() };
        crate::exit_codes::Findings { writes: self.summary.writing_operations, unknown, ..Default::default() }
    }

    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        // The verdict first, then what to do, then the detail.
        writeln!(
            out,
            "{}Writes of a registry {} serving this tree{} (now {}, upload purge age {})",
            BOLD.render(),
            self.target,
            BOLD.render_reset(),
            self.now,
            self.purge_age
        )?;
        let s = &self.summary;
        let mut scope = "";
        if let Some(f) = &self.filter {
            let w = &f.whole_run;
            let line = format!(
                "Filtered by --repo {}: the operations on {} are shown; the whole registry: {} of {} {}.",
                f.scope.repo_globs.join(" --repo "),
                plural(f.scope.repositories.len(), "repository", "repositories"),
                w.writing_operations,
                plural_s(w.operations, "operation"),
                if w.writing_operations == 1 { "writes" } else { "write" },
            );
            for line in wrap(&line, "", 80) {
                writeln!(out, "{}{line}{}", DIM.render(), DIM.render_reset())?;
            }
            scope = " (the selected repositories)";
        }
        let (verdict, style) = match (s.serves_read_only, s.writing_operations > 0) {
            (true, _) => ("yes", GOOD),
            (false, true) => ("no", BAD),
            (false, false) => ("unknown: the answer does not cover what is not modelled below", WARN),
        };
        writeln!(
            out,
            "{}serves read-only{scope}: {}{verdict}{}{}",
            BOLD.render(),
            style.render(),
            style.render_reset(),
            BOLD.render_reset()
        )?;
        writeln!(
            out,
            "{} of {} {} ({} only with a client's upload token): {}, {}, {}",
            s.writing_operations,
            plural_s(s.operations, "operation"),
            if s.writing_operations == 1 { "writes" } else { "write" },
            s.conditional_operations,
            plural_s(s.creates, "create"),
            plural(s.modifies, "modify", "modifies"),
            plural_s(s.deletes, "delete"),
        )?;
        if s.writing_operations > 0 {
            writeln!(out, "Next: serve it from a writable volume, or see what writes below (-v: every operation).")?;
        }
        writeln!(
            out,
            "\n{}manifest-get-schema1 = GET or HEAD by tag without schema2 in Accept (none at all counts);\n\
             STATUS = writable (ro = read-only mount); paths are below docker/registry/v2/, or below\n\
             the operation's repository directory when they start with _ (JSON: from the storage root){}",
            DIM.render(),
            DIM.render_reset()
        )?;
        if self.operations.is_empty() {
            writeln!(out, "\nNo tags, uploads or cache entries: nothing to predict.")?;
        } else if super::verbose() {
            writeln!(out)?;
            let mut table = Table::new(vec!["KIND", "REPOSITORY", "REFERENCE", "STATUS", "WRITES"]);
            for op in &self.operations {
                let (writes, style) = match (op.writes.len(), op.condition.is_some()) {
                    (0, _) => ("-".to_string(), GOOD),
                    (n, true) => (format!("{n} (cond.)"), WARN),
                    (n, false) => (n.to_string(), BAD),
                };
                table.push(vec![
                    Cell::new(op.kind.name()),
                    Cell::name(&op.repository),
                    Cell::name(&short_reference(&op.reference)),
                    Cell::new(status_text(op)),
                    Cell::styled(writes, style),
                ]);
            }
            table.write(out)?;
        }
        let writing: Vec<&Operation> = self.operations.iter().filter(|o| o.writes_anything()).collect();
        if !writing.is_empty() {
            writeln!(out, "\n{}Would write ({}):{}", BOLD.render(), writing.len(), BOLD.render_reset())?;
            for (kind, ops) in by_kind(&writing) {
                writeln!(out, "  {kind} ({})", ops.len())?;
                let n = shown(ops.len(), EXAMPLES);
                for op in &ops[..n] {
                    let status = match status_text(op).as_str() {
                        "-" => String::new(),
                        s => format!("  [{s}]"),
                    };
                    writeln!(out, "    {} {}{status}", Shown(&op.repository), Shown(&op.reference))?;
                    let mut why = op.reason.clone();
                    if let Some(c) = &op.condition {
                        why = format!("only if {c}: {why}");
                    }
                    if let (Kind::UploadPurge, Some(bytes)) = (op.kind, op.bytes) {
                        why = format!("{why} ({} of data)", human_size(bytes));
                    }
                    let why = short_digests(&ShownText(&why).to_string());
                    for line in wrap(&why, "      ", TEXT_WIDTH) {
                        writeln!(out, "{}{line}{}", DIM.render(), DIM.render_reset())?;
                    }
                    for w in &op.writes {
                        let path = short_path(&Shown(shown_path(&w.path, &op.repository)).to_string());
                        let head = format!("      {:<6}  ", w.action.name());
                        for line in fit_path(&path, &head, TEXT_WIDTH) {
                            writeln!(out, "{line}")?;
                        }
                    }
                }
                write_more(out, "    ", ops.len() - n)?;
            }
        }
        let quiet: Vec<&Operation> = self.operations.iter().filter(|o| !o.writes_anything()).collect();
        if !quiet.is_empty() {
            writeln!(out, "\n{}Writes nothing ({}):{}", BOLD.render(), quiet.len(), BOLD.render_reset())?;
            for (kind, ops) in by_kind(&quiet) {
                writeln!(out, "  {kind} ({})", ops.len())?;
                let n = shown(ops.len(), EXAMPLES);
                for op in &ops[..n] {
                    let line = format!(
                        "{} {}: {}",
                        Shown(&op.repository),
                        Shown(&op.reference),
                        short_digests(&ShownText(&op.reason).to_string())
                    );
                    for line in wrap(&line, "    ", TEXT_WIDTH) {
                        writeln!(out, "{line}")?;
                    }
                }
                write_more(out, "    ", ops.len() - n)?;
            }
        }
        if let Some(p) = &self.proxy {
            writeln!(
                out,
                "\n{}Pull-through cache:{} scheduler-state.json is present.",
                BOLD.render(),
                BOLD.render_reset()
            )?;
            match &p.error {
                Some(e) => {
                    writeln!(out, "  It cannot be read ({}): the registry fails to start with it.", ShownText(e))?
                }
                None => writeln!(out, "  {} entries, {} already expired at {}.", p.entries, p.expired, self.now)?,
            }
            writeln!(out, "  Every miss writes: the fetched manifest or blob, its links and scheduler-state.json.")?;
        }
        for u in &self.unmodelled {
            writeln!(out, "{}not modelled{}: {u}", WARN.render(), WARN.render_reset())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_paths_fit_the_text_width() {
        let upload = "docker/registry/v2/repositories/a/b/_uploads/50db9b6a-a630-46ed-9259-606d846f47f4/startedat";
        assert_eq!(shown_path(upload, "a/b"), "_uploads/50db9b6a-a630-46ed-9259-606d846f47f4/startedat");
        assert_eq!(shown_path(upload, "a"), &upload["docker/registry/v2/".len()..]);
        assert_eq!(shown_path("docker/registry/v2/blobs/sha256/ab/x/data", "a"), "blobs/sha256/ab/x/data");
        let long = format!("repositories/{}/_layers/sha256/{}/link", "n/".repeat(30), "ab".repeat(32));
        let lines = fit_path(&long, "      create  ", 100);
        assert!(lines.len() > 1 && lines.iter().all(|l| l.len() <= 100), "{lines:?}");
        assert_eq!(lines.concat().replace(' ', ""), format!("create{long}"));
        assert_eq!(fit_path("a/b", "  x ", 100), ["  x a/b"]);
        assert_eq!(short_reference("50db9b6a-a630-46ed-9259-606d846f47f4"), "50db9b6a…");
        assert_eq!(short_reference("v1.0"), "v1.0");
        assert_eq!(short_reference(&format!("sha256:{}", "ab".repeat(32))), "sha256:abababababab");
    }
}
