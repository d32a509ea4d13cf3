//! The Sleuth Kit bodyfile (format 3.x), one line per file:
//! `MD5|name|inode|mode_as_string|UID|GID|size|atime|mtime|ctime|crtime`,
//! times in whole seconds since the epoch, 0 where unknown. `mactime` and
//! plaso read it, so regaudit's times merge with other timelines.

use std::io::{self, Write};

use crate::analysis::evidence::EvidenceFile;
use crate::analysis::FileStat;

/// One bodyfile line: `hash` is the hex of the first field ("0" when none),
/// `name` says what the file is; '|', '\' and control characters in it are
/// written as `\xNN` (`\\` for '\') so each line keeps its eleven fields.
pub fn write_line(out: &mut dyn Write, hash: &str, name: &str, stat: &FileStat) -> io::Result<()> {
    writeln!(
        out,
        "{hash}|{}|{}|{}|{}|{}|{}|{}|{}|{}|{}",
        escape(name),
        stat.inode,
        mode_string(stat.mode),
        stat.uid,
        stat.gid,
        stat.size,
        stat.atime.secs,
        stat.mtime.secs,
        stat.ctime.secs,
        stat.btime.map_or(0, |b| b.secs),
    )
}

pub fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\x7c"),
            c if c.is_control() => {
                for b in c.to_string().bytes() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// The mode as `fls -m` writes it: the entry's type, `/`, then as `ls -l`
/// (`r/rrw-r--r--`).
pub fn mode_string(mode: u32) -> String {
    let kind = match mode & 0o170000 {
        0o040000 => 'd',
        0o120000 => 'l',
        0o010000 => 'p',
        0o140000 => 's',
        0o020000 => 'c',
        0o060000 => 'b',
        _ => 'r',
    };
    let mut s = format!("{kind}/{kind}");
    let bits = [(0o400, 'r'), (0o200, 'w'), (0o100, 'x'), (0o040, 'r'), (0o020, 'w'), (0o010, 'x')];
    for (bit, ch) in bits {
        s.push(if mode & bit != 0 { ch } else { '-' });
    }
    s.push(if mode & 0o004 != 0 { 'r' } else { '-' });
    s.push(if mode & 0o002 != 0 { 'w' } else { '-' });
    s.push(if mode & 0o001 != 0 { 'x' } else { '-' });
    s
}

/// `verify --format bodyfile`: every file read, its SHA-256 in the first
/// field where known ("0" otherwise, and for blobs of other algorithms),
/// its path (relative to the storage root) as the name.
pub fn write_evidence(files: &[EvidenceFile], out: &mut dyn Write) -> io::Result<()> {
    for f in files {
        let Some(stat) = &f.stat else { continue };
        let hash = match &f.hash {
            Some(("sha256", hex)) => hex.as_str(),
            _ => "0",
        };
        write_line(out, hash, &f.path, stat)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_and_names() {
        assert_eq!(mode_string(0o100644), "r/rrw-r--r--");
        assert_eq!(mode_string(0o040755), "d/drwxr-xr-x");
        assert_eq!(escape("a|b\\c\nd"), "a\\x7cb\\\\c\\x0ad");
    }
}
