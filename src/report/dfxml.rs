//! `regaudit verify --format dfxml`: Digital Forensics XML (DFXML 1.2, as
//! written by fiwalk, bulk_extractor and the Sleuth Kit tools), one
//! `fileobject` per blob and link read, with its path, size, MAC times and
//! hash, after a `creator` block saying what produced it, where and how.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::provenance;
use crate::analysis::evidence::EvidenceFile;
use crate::analysis::Stamp;

/// Escapes text for XML 1.0. Characters XML 1.0 cannot hold at all (most
/// control characters) are written as `\xNN`; the second value says so.
fn escape(s: &str) -> (String, bool) {
    let mut out = String::with_capacity(s.len());
    let mut lossy = false;
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                lossy = true;
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    (out, lossy)
}

fn text(s: &str) -> String {
    escape(s).0
}

fn iso(t: Stamp) -> String {
    crate::timeline::rfc3339(t)
}

/// Writes the whole DFXML document for `files`, read from the storage root `root`.
pub fn write(root: &str, files: &[EvidenceFile], out: &mut dyn Write) -> io::Result<()> {
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(
        "<dfxml version=\"1.1.1\" \
         xmlns=\"http://www.forensicswiki.org/wiki/Category:Digital_Forensics_XML\" \
         xmlns:dc=\"http://purl.org/dc/elements/1.1/\" \
         xmlns:regaudit=\"urn:regaudit\">\n",
    );
    x.push_str("  <metadata>\n    <dc:type>Hash List</dc:type>\n  </metadata>\n");
    creator(&mut x);
    let _ = writeln!(x, "  <source>\n    <image_filename>{}</image_filename>\n  </source>", text(root));
    out.write_all(x.as_bytes())?;
    for f in files {
        out.write_all(fileobject(f).as_bytes())?;
    }
    out.write_all(run_details().as_bytes())?;
    out.write_all(b"</dfxml>\n")
}

/// What DFXML's `execution_environment` has no place for, in regaudit's
/// own namespace (DFXML allows foreign elements at the end of the document):
/// the end time, the target, whether `O_NOATIME` held, and the roots.
fn run_details() -> String {
    let Some(p) = provenance::current() else { return String::new() };
    let mut x = String::new();
    let _ = writeln!(
        x,
        "  <regaudit:run finished=\"{}\" target=\"{}\" noatime_honoured=\"{}\">",
        p.finished,
        text(&p.target.to_string()),
        p.noatime_honoured
    );
    for r in &p.roots {
        let _ = write!(x, "    <regaudit:root given=\"{}\"", text(&r.given));
        if let (Some(resolved), Some(dev), Some(ino)) = (&r.resolved, r.device, r.inode) {
            let _ = write!(x, " resolved=\"{}\" device=\"{dev}\" inode=\"{ino}\"", text(resolved));
        }
        let _ = writeln!(x, "/>");
    }
    x.push_str("  </regaudit:run>\n");
    x
}

fn creator(x: &mut String) {
    let p = provenance::current();
    let _ = writeln!(x, "  <creator version=\"1.0\">");
    let _ = writeln!(x, "    <program>{}</program>", env!("CARGO_PKG_NAME"));
    let _ = writeln!(x, "    <version>{}</version>", env!("CARGO_PKG_VERSION"));
    let _ = writeln!(x, "    <execution_environment>");
    let uname = rustix::system::uname();
    let field = |c: &std::ffi::CStr| text(&c.to_string_lossy());
    let _ = writeln!(x, "      <os_sysname>{}</os_sysname>", field(uname.sysname()));
    let _ = writeln!(x, "      <os_release>{}</os_release>", field(uname.release()));
    let _ = writeln!(x, "      <os_version>{}</os_version>", field(uname.version()));
    let _ = writeln!(x, "      <host>{}</host>", field(uname.nodename()));
    let _ = writeln!(x, "      <arch>{}</arch>", field(uname.machine()));
    let user = provenance::user();
    if let Some(p) = &p {
        let _ = writeln!(x, "      <command_line>{}</command_line>", text(&p.arguments.join(" ")));
    }
    let _ = writeln!(x, "      <uid>{}</uid>", user.euid);
    if let Some(name) = &user.name {
        let _ = writeln!(x, "      <username>{}</username>", text(name));
    }
    if let Some(p) = &p {
        let _ = writeln!(x, "      <start_time>{}</start_time>", p.started);
    }
    let _ = writeln!(x, "    </execution_environment>");
    let _ = writeln!(x, "  </creator>");
}

fn fileobject(f: &EvidenceFile) -> String {
    let mut x = String::from("  <fileobject>\n");
    let (name, lossy) = escape(&f.path);
    let _ = writeln!(x, "    <filename>{name}</filename>");
    let mut errors: Vec<String> = f.error.iter().cloned().collect();
    if lossy {
        errors.push("the file name holds characters XML 1.0 cannot, written as \\xNN".into());
    }
    if !errors.is_empty() {
        let _ = writeln!(x, "    <error>{}</error>", text(&errors.join("; ")));
    }
    if let Some(s) = &f.stat {
        // The Sleuth Kit's name type letter and meta type number (TSK_FS_META_TYPE_ENUM).
        let (name_type, meta_type) = match s.mode & 0o170000 {
            0o100000 => ("r", 1),
            0o040000 => ("d", 2),
            0o010000 => ("p", 3),
            0o020000 => ("c", 4),
            0o060000 => ("b", 5),
            0o120000 => ("l", 6),
            0o140000 => ("s", 8),
            _ => ("-", 0),
        };
        let _ = writeln!(x, "    <name_type>{name_type}</name_type>");
        let _ = writeln!(x, "    <filesize>{}</filesize>", s.size);
        let _ = writeln!(x, "    <inode>{}</inode>", s.inode);
        let _ = writeln!(x, "    <meta_type>{meta_type}</meta_type>");
        let _ = writeln!(x, "    <mode>{}</mode>", s.mode & 0o7777);
        let _ = writeln!(x, "    <uid>{}</uid>", s.uid);
        let _ = writeln!(x, "    <gid>{}</gid>", s.gid);
        let _ = writeln!(x, "    <mtime>{}</mtime>", iso(s.mtime));
        let _ = writeln!(x, "    <ctime>{}</ctime>", iso(s.ctime));
        let _ = writeln!(x, "    <atime>{}</atime>", iso(s.atime));
        if let Some(b) = s.btime {
            let _ = writeln!(x, "    <crtime>{}</crtime>", iso(b));
        }
    }
    if let Some((alg, hex)) = &f.hash {
        let _ = writeln!(x, "    <hashdigest type=\"{alg}\">{hex}</hashdigest>");
    }
    x.push_str("  </fileobject>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup_and_flags_what_xml_cannot_hold() {
        assert_eq!(escape("a<b>&\"'"), ("a&lt;b&gt;&amp;&quot;&apos;".to_string(), false));
        assert_eq!(escape("x\u{1}y"), ("x\\x01y".to_string(), true));
    }
}
