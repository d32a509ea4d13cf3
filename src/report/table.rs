//! Text building blocks: aligned tables, human sizes, styles.

use std::borrow::Cow;
use std::io::{self, Write};

use anstyle::{AnsiColor, Style};
use unicode_width::UnicodeWidthStr;

use crate::names;

pub const BOLD: Style = Style::new().bold();
pub const GOOD: Style = AnsiColor::Green.on_default();
pub const BAD: Style = AnsiColor::Red.on_default().bold();
pub const WARN: Style = AnsiColor::Yellow.on_default();
pub const DIM: Style = Style::new().dimmed();
pub const PLAIN: Style = Style::new();

/// `1023 B`, `1.2 KiB`, `3.4 MiB`...
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A SERVED cell: yes, no, or unknown when only what is not modelled stands
/// in the way.
pub fn served_cell(served: bool, unknown: bool) -> (&'static str, Style) {
    if !served && unknown {
        ("unknown", WARN)
    } else {
        yes_no(served)
    }
}

pub fn yes_no(b: bool) -> (&'static str, Style) {
    if b {
        ("yes", GOOD)
    } else {
        ("no", BAD)
    }
}

/// One styled cell.
#[derive(Clone, Debug)]
pub struct Cell {
    pub text: String,
    pub style: Style,
}

/// Text from the tree must not reach the terminal raw: every cell escapes
/// control characters and invalid bytes, so widths are those of what is shown.
fn shown(text: String) -> String {
    match names::escape_text(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(escaped) => escaped,
    }
}

impl Cell {
    /// A cell of text (a backslash in it is kept; see [`Cell::name`]).
    pub fn new(text: impl Into<String>) -> Cell {
        Cell { text: shown(text.into()), style: PLAIN }
    }

    pub fn styled(text: impl Into<String>, style: Style) -> Cell {
        Cell { text: shown(text.into()), style }
    }

    /// A name from the tree (repository, tag, path): escaped with
    /// [`names::escape`], so that distinct names stay distinct.
    pub fn name(name: &str) -> Cell {
        Cell { text: names::escape(name).into_owned(), style: PLAIN }
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Cell {
        Cell::new(s)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::new(s)
    }
}

/// A table whose columns are padded to their widest cell (in terminal
/// columns: a CJK character takes two, a combining mark none). Columns listed in
/// `right` are right-aligned (sizes, counts).
pub struct Table {
    pub headers: Vec<&'static str>,
    pub right: Vec<usize>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(headers: Vec<&'static str>) -> Table {
        Table { headers, right: Vec::new(), rows: Vec::new() }
    }

    pub fn right_align(mut self, columns: &[usize]) -> Table {
        self.right = columns.to_vec();
        self
    }

    pub fn push(&mut self, row: Vec<Cell>) {
        self.rows.push(row);
    }

    pub fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        self.write_streamed(out, || self.rows.iter())
    }

    /// Writes the header and the rows that `rows` makes (instead of the
    /// pushed ones), calling it twice: once to size the columns, once to
    /// write. A long listing is then never held as cells.
    pub fn write_streamed<R: AsRef<[Cell]>, I: Iterator<Item = R>>(
        &self,
        out: &mut dyn Write,
        rows: impl Fn() -> I,
    ) -> io::Result<()> {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.width()).collect();
        for row in rows() {
            for (width, cell) in widths.iter_mut().zip(row.as_ref()) {
                *width = (*width).max(cell.text.width());
            }
        }
        let header: Vec<Cell> = self.headers.iter().map(|h| Cell::styled(*h, BOLD)).collect();
        self.write_row(out, &widths, &header)?;
        for row in rows() {
            self.write_row(out, &widths, row.as_ref())?;
        }
        Ok(())
    }

    fn write_row(&self, out: &mut dyn Write, widths: &[usize], row: &[Cell]) -> io::Result<()> {
        let columns = widths.len();
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate().take(columns) {
            let pad = widths[i] - cell.text.width();
            let last = i + 1 == columns.min(row.len());
            let styled = format!("{}{}{}", cell.style.render(), cell.text, cell.style.render_reset());
            if self.right.contains(&i) {
                line.push_str(&" ".repeat(pad));
                line.push_str(&styled);
            } else {
                line.push_str(&styled);
                if !last {
                    line.push_str(&" ".repeat(pad));
                }
            }
            if !last {
                line.push_str("  ");
            }
        }
        writeln!(out, "{}", line.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 << 30), "5.0 GiB");
    }

    #[test]
    fn columns_align() {
        let mut t = Table::new(vec!["A", "SIZE"]).right_align(&[1]);
        t.push(vec!["long-name".into(), "1 B".into()]);
        t.push(vec!["x".into(), "10 KiB".into()]);
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        let text = anstream::adapter::strip_str(std::str::from_utf8(&out).unwrap()).to_string();
        assert_eq!(text, "A            SIZE\nlong-name     1 B\nx          10 KiB\n");
    }

    #[test]
    fn widths_are_terminal_columns_of_the_escaped_text() {
        let mut t = Table::new(vec!["NAME", "N"]);
        t.push(vec![Cell::name("倉庫"), "1".into()]);
        t.push(vec![Cell::name("a\u{1b}b"), "2".into()]);
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        let text = anstream::adapter::strip_str(std::str::from_utf8(&out).unwrap()).to_string();
        assert_eq!(text, "NAME    N\n倉庫    1\na\\x1bb  2\n");
    }
}
