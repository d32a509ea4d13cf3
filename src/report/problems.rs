//! The problems section shared by every text report.

use std::io::{self, Write};

use super::table::{Cell, Table, BAD, BOLD, DIM, WARN};
use crate::problem::{Problem, Severity};

fn severity_cell(s: Severity) -> Cell {
    match s {
        Severity::Error => Cell::styled("error", BAD),
        Severity::Warning => Cell::styled("warning", WARN),
        Severity::Info => Cell::styled("info", DIM),
    }
}

pub fn count_line(problems: &[Problem]) -> String {
    let count = |s| problems.iter().filter(|p| p.severity == s).count();
    let plural = |n: usize, word: &str| if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") };
    format!(
        "{}: {}, {}, {} info",
        plural(problems.len(), "problem"),
        plural(count(Severity::Error), "error"),
        plural(count(Severity::Warning), "warning"),
        count(Severity::Info)
    )
}

pub fn write(problems: &[Problem], out: &mut dyn Write) -> io::Result<()> {
    if problems.is_empty() {
        return writeln!(out, "No problems found.");
    }
    writeln!(out, "{}{}{}", BOLD.render(), count_line(problems), BOLD.render_reset())?;
    let mut table = Table::new(vec!["SEVERITY", "CODE", "PATH"]);
    for p in problems {
        table.push(vec![severity_cell(p.severity), Cell::new(p.code.as_str()), Cell::new(&p.path)]);
        table.push(vec![Cell::new(""), Cell::new(""), Cell::styled(format!("  {}", p.message), DIM)]);
    }
    table.write(out)
}
