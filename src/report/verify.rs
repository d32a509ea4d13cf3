//! `regaudit verify`: every blob hashed, and which tags each damaged or
//! missing blob breaks.

use std::io::{self, Write};

use serde::Serialize;

use super::table::{human_size, Cell, Table, BAD, BOLD};
use super::tags::short;
use super::{problems, Report};
use crate::model::Target;
use crate::names;
use crate::problem::Problem;

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

impl Report for VerifyReport {
    fn findings(&self) -> crate::exit_codes::Findings {
        crate::exit_codes::Findings { damaged: self.damaged.len(), interrupted: self.interrupted, ..Default::default() }
            .with_problems(&self.problems)
    }

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
