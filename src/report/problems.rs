//! The problems section shared by every text report.

use std::io::{self, Write};

use super::plural_s;
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
    format!(
        "{}: {}, {}, {} info",
        plural_s(problems.len(), "problem"),
        plural_s(count(Severity::Error), "error"),
        plural_s(count(Severity::Warning), "warning"),
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
        table.push(vec![severity_cell(p.severity), Cell::new(p.code.as_str()), Cell::name(&p.path)]);
        table.push(vec![Cell::new(""), Cell::new(""), Cell::styled(format!("  {}", p.message), DIM)]);
    }
    table.write(out)
}

/// Problems grouped by code, most severe first: a count per code, then a
/// few examples (every one with `--verbose`), paths and digests short and
/// messages wrapped to fit 100 columns.
pub fn write_grouped(problems: &[Problem], out: &mut dyn Write) -> io::Result<()> {
    use super::{short_digests, short_path, shown, wrap, write_more, EXAMPLES, TEXT_WIDTH};
    if problems.is_empty() {
        return writeln!(out, "No problems found.");
    }
    writeln!(out, "{}{}{}", BOLD.render(), count_line(problems), BOLD.render_reset())?;
    let mut codes: Vec<(Severity, String)> =
        problems.iter().map(|p| (p.severity, p.code.as_str().to_string())).collect();
    codes.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    codes.dedup();
    for (severity, code) in codes {
        let of_code: Vec<&Problem> =
            problems.iter().filter(|p| p.severity == severity && p.code.as_str() == code).collect();
        let cell = severity_cell(severity);
        writeln!(
            out,
            "  {}{}{} {code} ({})",
            cell.style.render(),
            cell.text,
            cell.style.render_reset(),
            of_code.len()
        )?;
        let n = shown(of_code.len(), EXAMPLES);
        for p in &of_code[..n] {
            writeln!(out, "    {}", short_path(&crate::names::escape(&p.path)))?;
            let message = short_digests(&crate::names::ShownText(&p.message).to_string());
            let message: Vec<String> = message.split(' ').map(short_path).collect();
            for line in wrap(&message.join(" "), "      ", TEXT_WIDTH) {
                writeln!(out, "{}{line}{}", DIM.render(), DIM.render_reset())?;
            }
        }
        write_more(out, "    ", of_code.len() - n)?;
    }
    Ok(())
}
