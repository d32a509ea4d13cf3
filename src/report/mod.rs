//! Reports: one result model per command, rendered as text for people or as
//! JSON for programs. Every JSON document carries `schema_version`.

pub mod bodyfile;
pub mod dfxml;
pub mod diff;
pub mod du;
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
    /// The Sleuth Kit bodyfile, for `mactime` and plaso.
    Bodyfile,
    /// Digital Forensics XML with a hash of every file read.
    Dfxml,
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
            match provenance::current() {
                Some(provenance) => serde_json::to_writer_pretty(&mut *out, &WithProvenance { provenance, report })?,
                None => serde_json::to_writer_pretty(&mut *out, report)?,
            }
            writeln!(out)
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
