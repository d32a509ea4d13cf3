//! `regaudit export`: what was copied into DEST, blob by blob.

use std::io;

use serde::Serialize;

use super::table::{human_size, Cell, Table, BAD, BOLD, DIM, GOOD, WARN};
use super::Report;
use crate::model::Target;
use crate::resolve::Role;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BlobStatus {
    /// Copied and verified: its bytes hash to its digest.
    Copied,
    /// The registry would not serve it (no data, no link, invalid link...).
    NotServed,
    /// Its bytes do not hash to its digest; not written.
    Corrupt,
    /// A foreign (non-distributable) layer: fetched from its URLs, not copied.
    Foreign,
}

#[derive(Clone, Debug, Serialize)]
pub struct ExportedBlob {
    pub role: Role,
    pub digest: String,
    pub media_type: Option<String>,
    /// Bytes copied, or the stored size when not copied.
    pub size: Option<u64>,
    pub status: BlobStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Serialize)]
pub struct ExportReport {
    pub schema_version: u32,
    pub target: Target,
    pub root: String,
    pub reference: String,
    pub repository: String,
    /// The manifest written to `index.json`.
    pub digest: String,
    pub media_type: String,
    pub dest: String,
    /// The `org.opencontainers.image.ref.name` annotation; null for none.
    pub ref_name: Option<String>,
    /// Every blob was copied and verified (foreign layers aside).
    pub complete: bool,
    pub copied_bytes: u64,
    pub blobs: Vec<ExportedBlob>,
    /// What a reader of DEST should know, e.g. images skopeo cannot address.
    pub warnings: Vec<String>,
}

impl Report for ExportReport {
    fn findings(&self) -> crate::exit_codes::Findings {
        crate::exit_codes::Findings { partial: !self.complete, ..Default::default() }
    }

    fn write_text(&self, out: &mut dyn io::Write) -> io::Result<()> {
        let name = self.ref_name.as_deref().map(|n| format!(" as {n:?}")).unwrap_or_default();
        writeln!(
            out,
            "{}{}{}  →  {}{name}  ({})",
            BOLD.render(),
            self.reference,
            BOLD.render_reset(),
            self.dest,
            self.digest
        )?;
        writeln!(out)?;
        let mut table = Table::new(vec!["ROLE", "DIGEST", "SIZE", "STATUS"]).right_align(&[2]);
        for b in &self.blobs {
            let status = match b.status {
                BlobStatus::Copied => Cell::styled("copied, verified", GOOD),
                BlobStatus::Foreign => Cell::styled("foreign, not copied", DIM),
                BlobStatus::NotServed => {
                    Cell::styled(format!("NOT SERVED: {}", b.reason.as_deref().unwrap_or("")), BAD)
                }
                BlobStatus::Corrupt => Cell::styled(format!("CORRUPT: {}", b.reason.as_deref().unwrap_or("")), BAD),
            };
            table.push(vec![
                Cell::new(b.role.name()),
                Cell::new(super::tags::short(&b.digest)),
                Cell::new(b.size.map(human_size).unwrap_or_default()),
                status,
            ]);
        }
        table.write(out)?;
        let copied = self.blobs.iter().filter(|b| b.status == BlobStatus::Copied).count();
        writeln!(
            out,
            "\n{copied} of {} blobs copied and verified, {}.",
            self.blobs.len(),
            human_size(self.copied_bytes)
        )?;
        if !self.complete {
            writeln!(out, "{}Partial export: some blobs are missing from DEST.{}", BAD.render(), BAD.render_reset())?;
        }
        for w in &self.warnings {
            let text = super::short_digests(w);
            for line in super::wrap(&format!("warning: {text}"), "", super::TEXT_WIDTH) {
                writeln!(out, "{}{line}{}", WARN.render(), WARN.render_reset())?;
            }
        }
        Ok(())
    }
}
