//! Reports: one result model per command, rendered as text for people or as
//! JSON for programs. Every JSON document carries `schema_version`.

pub mod bodyfile;
pub mod dfxml;
pub mod diff;
pub mod du;
pub mod export;
pub mod gc;
pub mod inspect;
pub mod problems;
pub mod provenance;
pub mod scan;
pub mod table;
pub mod tags;
pub mod timeline;
pub mod verify;
pub mod writes;

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};

use serde::Serialize;

/// Version of the JSON documents. Bump on any incompatible change (a field
/// removed, renamed or retyped); adding fields is compatible.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
    /// JSON Lines: one object per row, each with `schema_version` and `type`.
    Jsonl,
    /// The lines `registry garbage-collect --dry-run` prints.
    GcLog,
    /// The Sleuth Kit bodyfile, for `mactime` and plaso.
    Bodyfile,
    /// Digital Forensics XML with a hash of every file read.
    Dfxml,
}

/// A command's result. JSON comes from `Serialize`; text from `write_text`.
pub trait Report: Serialize {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()>;

    /// What the report found, from which [`crate::exit_codes::FailOn::outcome`]
    /// decides the exit status. Reports that judge nothing find nothing.
    fn findings(&self) -> crate::exit_codes::Findings {
        crate::exit_codes::Findings::default()
    }

    /// `--format jsonl`: the rows of a listing, each with its `type`.
    fn json_lines(&self) -> Vec<(&'static str, serde_json::Value)> {
        Vec::new()
    }
}

static VERBOSE: AtomicBool = AtomicBool::new(false);

/// `--verbose`: text shows full lists instead of a few examples per kind.
pub fn set_verbose(on: bool) {
    VERBOSE.store(on, AtomicOrdering::Relaxed);
}

pub fn verbose() -> bool {
    VERBOSE.load(AtomicOrdering::Relaxed)
}

/// One JSON Lines object: `schema_version` and `type` first, then the row's
/// fields. Each line stands alone (no header line), so that `grep`, `jq -c
/// 'select(...)'` and log pipelines that split or sample lines keep the
/// version with every row.
fn json_line(kind: &str, row: serde_json::Value) -> serde_json::Value {
    let mut line = serde_json::Map::new();
    line.insert("schema_version".into(), SCHEMA_VERSION.into());
    line.insert("type".into(), kind.into());
    match row {
        serde_json::Value::Object(fields) => line.extend(fields),
        other => {
            line.insert("value".into(), other);
        }
    }
    serde_json::Value::Object(line)
}

/// Rows as JSON values, for [`Report::json_lines`].
pub fn rows<'a, T: Serialize + 'a>(
    kind: &'static str,
    items: impl IntoIterator<Item = &'a T>,
) -> Vec<(&'static str, serde_json::Value)> {
    items.into_iter().map(|i| (kind, serde_json::to_value(i).unwrap_or(serde_json::Value::Null))).collect()
}

/// Writes a report in the chosen format. Colour codes in text are stripped
/// by `out` when it is not a terminal or `NO_COLOR` is set.
pub fn emit(report: &impl Report, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Text => report.write_text(out),
        Format::Json => {
            match provenance::current() {
                Some(provenance) => serde_json::to_writer_pretty(&mut *out, &WithProvenance { provenance, report })?,
                None => serde_json::to_writer_pretty(&mut *out, report)?,
            }
            writeln!(out)
        }
        Format::Jsonl => {
            for (kind, row) in report.json_lines() {
                serde_json::to_writer(&mut *out, &json_line(kind, row))?;
                writeln!(out)?;
            }
            Ok(())
        }
        Format::GcLog => Err(io::Error::new(io::ErrorKind::InvalidInput, "--format gc-log is only for `regaudit gc`")),
        Format::Bodyfile => {
            Err(io::Error::new(io::ErrorKind::InvalidInput, "--format bodyfile is only for `timeline` and `verify`"))
        }
        Format::Dfxml => Err(io::Error::new(io::ErrorKind::InvalidInput, "--format dfxml is only for `verify`")),
    }
}

/// A JSON document with the provenance header first.
#[derive(Serialize)]
struct WithProvenance<'a, R: Serialize> {
    provenance: provenance::Provenance,
    #[serde(flatten)]
    report: &'a R,
}

/// Passes bytes through to `inner` and hashes them: what `--report-digest`
/// seals is exactly what reached stdout.
pub struct DigestingWriter<W: Write> {
    pub inner: W,
    pub hasher: std::sync::Arc<std::sync::Mutex<sha2::Sha256>>,
}

impl<W: Write> Write for DigestingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut *self.hasher.lock().unwrap_or_else(|p| p.into_inner()), &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// "1 manifest", "3 manifests", "1 repository", "2 repositories": the one
/// place text agrees a count with its noun.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `plural` with the regular English plural (`word` + "s").
pub fn plural_s(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Examples shown per kind (of problem, hazard, operation) in text without `--verbose`.
pub const EXAMPLES: usize = 3;

/// How many of `n` items text shows: `limit`, or all with `--verbose` or
/// when one more than `limit` ("1 more" would take the line it saves).
pub fn shown(n: usize, limit: usize) -> usize {
    if verbose() || n <= limit + 1 {
        n
    } else {
        n.min(limit)
    }
}

/// `… N more` after the examples shown, unless all were shown.
pub fn write_more(out: &mut dyn Write, indent: &str, more: usize) -> io::Result<()> {
    if more > 0 {
        let dim = table::DIM;
        writeln!(out, "{indent}{}… {more} more (-v lists all; --format json too){}", dim.render(), dim.render_reset())?;
    }
    Ok(())
}

/// Full `sha256:` digests inside a text shortened to 12 hex characters:
/// text lines fit 100 columns; JSON keeps the full digests.
pub fn short_digests(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("sha256:") {
        let (before, at) = rest.split_at(i);
        out.push_str(before);
        let hex = at["sha256:".len()..].bytes().take_while(u8::is_ascii_hexdigit).count();
        if hex == 64 {
            out.push_str(&at[.."sha256:".len() + 12]);
            rest = &at["sha256:".len() + 64..];
        } else {
            out.push_str("sha256:");
            rest = &at["sha256:".len()..];
        }
    }
    out.push_str(rest);
    out
}

/// Text lines fit [`TEXT_WIDTH`] columns: `text` after `indent`, broken at
/// spaces, continuation lines indented two more. A no-break space (U+00A0)
/// keeps two words together and is printed as a space.
pub const TEXT_WIDTH: usize = 100;

pub fn wrap(text: &str, indent: &str, width: usize) -> Vec<String> {
    use unicode_width::UnicodeWidthStr;
    let mut lines = Vec::new();
    let mut line = indent.to_string();
    let mut empty = true;
    let cont = format!("{indent}  ");
    for word in text.split(' ') {
        if !empty && line.width() + 1 + word.width() > width {
            lines.push(std::mem::replace(&mut line, cont.clone()));
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    lines.push(line);
    lines.into_iter().map(|l| l.replace('\u{a0}', " ")).collect()
}

/// A path for text without `--verbose`: each 64-hex component shortened to
/// 12 and `…` (with `--verbose`, and in JSON, paths are whole).
pub fn short_path(path: &str) -> String {
    if verbose() {
        return path.to_string();
    }
    path.split('/')
        .map(|c| {
            if c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()) {
                format!("{}…", &c[..12])
            } else {
                c.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_and_short_digests() {
        assert_eq!(plural_s(1, "manifest"), "1 manifest");
        assert_eq!(plural_s(0, "operation"), "0 operations");
        assert_eq!(plural(2, "repository", "repositories"), "2 repositories");
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(short_digests(&format!("blob {d} of x")), "blob sha256:abababababab of x");
        let long = "word ".repeat(30);
        let lines = wrap(long.trim_end(), "    ", 40);
        assert!(lines.iter().all(|l| l.len() <= 40) && lines.len() > 1, "{lines:?}");
        assert!(lines[1].starts_with("      word"), "{lines:?}");
        assert_eq!(wrap("short", "  ", 40), ["  short"]);
        let path = format!("a/_layers/sha256/{}/link", "cd".repeat(32));
        assert_eq!(short_path(&path), "a/_layers/sha256/cdcdcdcdcdcd…/link");
        assert_eq!(short_digests("sha256:abc and sha256:"), "sha256:abc and sha256:");
    }
}
