//! Reports: one result model per command, rendered as text for people or as
//! JSON for programs. Every JSON document carries `schema_version`.

pub mod diff;
pub mod du;
pub mod gc;
pub mod inspect;
pub mod problems;
pub mod scan;
pub mod table;
pub mod tags;
pub mod verify;
pub mod writes;

use std::io::{self, Write};

use serde::Serialize;

/// Version of the JSON documents. Bump on any incompatible change (a field
/// removed, renamed or retyped); adding fields is compatible.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
    /// The lines `registry garbage-collect --dry-run` prints.
    GcLog,
}

/// A command's result. JSON comes from `Serialize`; text from `write_text`.
pub trait Report: Serialize {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()>;
}

/// Writes a report in the chosen format. Colour codes in text are stripped
/// by `out` when it is not a terminal or `NO_COLOR` is set.
pub fn emit(report: &impl Report, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Text => report.write_text(out),
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            writeln!(out)
        }
        Format::GcLog => Err(io::Error::new(io::ErrorKind::InvalidInput, "--format gc-log is only for `regaudit gc`")),
    }
}
